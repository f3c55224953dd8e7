//! The retrying session forms: `transaction(async |s| …)` and
//! `read_transaction(async |s| …)` run their body in a session and, when a
//! transient conflict ended the attempt, roll it back completely and run
//! the body again.

use std::panic::{AssertUnwindSafe, Location};
use std::sync::Arc;

use futures_util::FutureExt;

use super::SqlConnectionRegistry;
use crate::config::Isolation;
use crate::error::{Error, Result};
use crate::replication::ReplicationPosition;
use crate::retry::{Gate, Retry};
use crate::session::{Mode, Session};
use crate::stats::Counters;

/// How each attempt of the retrying form opens its session.
#[derive(Clone, Copy)]
pub(super) struct Retrying<'a> {
    /// [`Mode::Transaction`] or [`Mode::ReadOnly`].
    pub(super) mode: Mode,
    pub(super) isolation: Option<Isolation>,
    /// For reads: the position they must see.
    pub(super) fresh_as: Option<&'a ReplicationPosition>,
    pub(super) retry: Retry,
    pub(super) opened_at: &'static Location<'static>,
}

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
        self.run_retrying(self.retrying(Mode::Transaction), body)
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
        self.run_retrying(self.retrying(Mode::ReadOnly), body)
    }

    /// The config's retry settings for sessions in `mode`, opened here.
    #[track_caller]
    fn retrying(&self, mode: Mode) -> Retrying<'static> {
        Retrying {
            mode,
            isolation: None,
            fresh_as: None,
            retry: Retry::new(&self.inner.config.session.retry),
            opened_at: Location::caller(),
        }
    }

    pub(super) async fn run_retrying<T, E, F>(&self, how: Retrying<'_>, body: F) -> Result<T, E>
    where
        F: AsyncFnOnce(&Session) -> Result<T, E> + Clone,
        E: From<Error>,
    {
        let retry = how.retry;
        let mut attempt = 1;
        loop {
            let attempted = if how.mode == Mode::ReadOnly {
                // Reads fight over no hot row: they never wait at the gate.
                self.attempt(attempt, how, body.clone()).await
            } else {
                let pass = self.inner.gate.pass(retry.is_last_retry(attempt)).await;
                let attempted = Gate::within(self.attempt(attempt, how, body.clone())).await;
                drop(pass);
                attempted
            };
            let (conflict, server) = match attempted {
                Attempt::Done(outcome) => return outcome,
                Attempt::Conflict(conflict, server) => (conflict, server),
            };
            if !retry.allows_after(attempt) {
                return Err(Error::Conflict {
                    attempts: attempt,
                    last: Box::new(conflict),
                }
                .into());
            }
            let pause = retry.pause(attempt);
            tracing::info!(
                url = %self.inner.cluster.url(),
                attempt,
                pause_ms = pause.as_secs_f64() * 1000.0,
                cause = %conflict,
                "transaction ended by a transient conflict; rolled back, running it again"
            );
            server.retried();
            tokio::time::sleep(pause).await;
            attempt += 1;
        }
    }

    /// One attempt (numbered from 1): the body in a fresh session, then
    /// commit or rollback.
    async fn attempt<T, E, F>(&self, number: u32, how: Retrying<'_>, body: F) -> Attempt<T, E>
    where
        F: AsyncFnOnce(&Session) -> Result<T, E>,
        E: From<Error>,
    {
        let mut session = match self
            .open_session(how.mode, how.isolation, how.fresh_as, how.opened_at)
            .await
        {
            Ok(session) => session,
            Err(err) => return Attempt::Done(Err(err.into())),
        };
        session.observe_attempt(number);
        let server = session.counters();
        let outcome = AssertUnwindSafe(body(&session)).catch_unwind().await;
        let conflict = session.take_conflict();
        let result = match outcome {
            Ok(result) => result,
            Err(panic) => {
                session.rollback().await;
                std::panic::resume_unwind(panic)
            }
        };
        if let Some(conflict) = conflict {
            session.rollback().await;
            return Attempt::Conflict(Error::Query(conflict), server);
        }
        let value = match result {
            Ok(value) => value,
            Err(err) => return Attempt::Done(Err(session.fail(err).await)),
        };
        match session.commit().await {
            Ok(()) => Attempt::Done(Ok(value)),
            Err(err) if err.is_transient() => Attempt::Conflict(err, server),
            Err(err) => Attempt::Done(Err(err.into())),
        }
    }
}

/// How one attempt of the retrying form ended.
enum Attempt<T, E> {
    /// For good: committed, or failed in a way a retry would not fix.
    Done(Result<T, E>),
    /// Rolled back over a transient conflict on the server whose counters
    /// these are; another attempt may succeed.
    Conflict(Error, Arc<Counters>),
}
