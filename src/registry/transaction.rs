//! The retrying session forms: `transaction(async |s| …)` and
//! `read_transaction(async |s| …)` run their body in a session and, when a
//! transient conflict ended the attempt, roll it back completely and run
//! the body again.

use std::panic::Location;

use super::SqlConnectionRegistry;
use crate::error::{Error, Result};
use crate::retry::Retry;
use crate::session::{Mode, Request, Session};

impl SqlConnectionRegistry {
    /// Runs `body` in a session like [`session`](Self::session) — commit on
    /// `Ok`, rollback on `Err` or panic, the connection always released — and
    /// runs it again when a transient conflict ended the attempt: a
    /// serialization failure or deadlock, a lock wait timeout, SQLite still
    /// locked after `busy_timeout`, or a connection lost before COMMIT was
    /// sent. Each attempt is rolled back completely before a jittered
    /// exponential pause (`session.retry`); an attempt that met a conflict is
    /// retried whatever `body` then returned. The last attempt of a
    /// transaction that kept losing waits for the registry's other
    /// `transaction` attempts in flight and runs alone, so a hot row cannot
    /// starve it (plain sessions and other processes still compete; do not
    /// let a body wait for a `transaction` it spawned as a separate task).
    ///
    /// **`body` may run more than once**: keep side effects outside the
    /// database (emails, HTTP calls, in-memory counters) after this call.
    /// Each attempt runs a clone of `body`, so it is `Clone` — as every
    /// closure is whose captures are references or `Clone` values. (A
    /// `Clone` async closure rather than `AsyncFn`: the futures of an
    /// `AsyncFn` called by reference cannot be proven `Send` by today's
    /// compiler, which would keep the call out of `tokio::spawn`.)
    /// A commit whose outcome is unknown (the connection was lost after
    /// COMMIT was sent) is reported, never retried.
    ///
    /// ```no_run
    /// # async fn run(db: sqlreg::SqlConnectionRegistry) -> sqlreg::Result<()> {
    /// use sea_orm::{ConnectionTrait, Statement};
    ///
    /// db.transaction(async |s| {
    ///     let backend = s.get_database_backend();
    ///     s.execute_raw(Statement::from_string(backend, "UPDATE counters SET n = n + 1")).await?;
    ///     Ok::<_, sqlreg::Error>(())
    /// })
    /// .await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// `body`'s own error (not retried); [`Error::Conflict`] when every
    /// attempt ended in a conflict, naming how many were made and the last
    /// conflict; [`Error::Commit`] for a commit that failed otherwise;
    /// the errors of [`get`](Self::get) when no connection can be had.
    #[track_caller]
    pub fn transaction<T, E, F>(&self, body: F) -> impl Future<Output = Result<T, E>>
    where
        F: AsyncFnOnce(&Session) -> Result<T, E> + Clone,
        E: From<Error>,
    {
        self.run(self.retrying(Mode::Transaction), move || body.clone())
    }

    /// [`read_session`](Self::read_session)'s retrying form, with
    /// [`transaction`](Self::transaction)'s rules: an attempt that a
    /// transient conflict ended is rolled back and `body` runs again. With
    /// replicas, this is what keeps a read whole when the replica it was
    /// sent to goes away: the lost connection marks the replica down, and
    /// the next attempt goes to another one or to the primary (by
    /// `routing.fallback`). Reads never queue behind the last attempt of a
    /// write `transaction`.
    ///
    /// ```no_run
    /// # async fn run(db: sqlreg::SqlConnectionRegistry) -> sqlreg::Result<()> {
    /// use sea_orm::{ConnectionTrait, Statement};
    ///
    /// let row = db
    ///     .read_transaction(async |s| {
    ///         let backend = s.get_database_backend();
    ///         s.query_one_raw(Statement::from_string(backend, "SELECT count(*) AS n FROM users"))
    ///             .await
    ///             .map_err(sqlreg::Error::from)
    ///     })
    ///     .await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`transaction`](Self::transaction); a write in `body` fails with
    /// [`Error::Query`] on PostgreSQL and MariaDB, as in `read_session`.
    #[track_caller]
    pub fn read_transaction<T, E, F>(&self, body: F) -> impl Future<Output = Result<T, E>>
    where
        F: AsyncFnOnce(&Session) -> Result<T, E> + Clone,
        E: From<Error>,
    {
        self.run(self.retrying(Mode::ReadOnly), move || body.clone())
    }

    /// A request in `mode`, opened here, retried by the config's settings.
    #[track_caller]
    fn retrying(&self, mode: Mode) -> Request<'static> {
        Request::new(mode, Location::caller())
            .retrying(Retry::new(&self.inner.config.session.retry))
    }
}
