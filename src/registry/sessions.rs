//! Handing out sessions: the guard forms (`get`, `get_read_only`,
//! `connection`) and the closure forms (`session`, `read_session`).

use std::panic::{AssertUnwindSafe, Location};
use std::sync::Arc;

use futures_util::FutureExt;

use super::SqlConnectionRegistry;
use crate::config::Isolation;
use crate::error::{Error, Result};
use crate::replication::ReplicationPosition;
use crate::session::{Mode, Session};

impl SqlConnectionRegistry {
    /// A session: one pooled connection whose transaction begins with the
    /// first statement. End it with [`Session::commit`] or
    /// [`Session::rollback`]; dropped without either, it rolls back and warns
    /// with the location of this call.
    ///
    /// # Errors
    ///
    /// [`Error::PoolTimeout`] when no connection frees up within
    /// `pool_timeout`, [`Error::Closed`] after [`close`](Self::close),
    /// [`Error::Connect`] when a new connection is needed and cannot be
    /// opened (refused, wrong password, no answer within `connect_timeout`).
    #[track_caller]
    pub fn get(&self) -> impl Future<Output = Result<Session>> + Send {
        self.open_session(Mode::Transaction, None, None, Location::caller())
    }

    /// A read-only session: PostgreSQL and MariaDB refuse writes in it
    /// (`BEGIN READ ONLY`); on SQLite it begins deferred, so it never takes
    /// the write lock and never waits for writers (SQLite does not enforce
    /// read-only transactions).
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    #[track_caller]
    pub fn get_read_only(&self) -> impl Future<Output = Result<Session>> + Send {
        self.open_session(Mode::ReadOnly, None, None, Location::caller())
    }

    /// A pooled connection in autocommit mode (core-lib's `connection()`):
    /// every statement commits by itself. Dropping it returns it to the pool.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    #[track_caller]
    pub fn connection(&self) -> impl Future<Output = Result<Session>> + Send {
        self.open_session(Mode::Autocommit, None, None, Location::caller())
    }

    /// Runs `body` in a session: commits when it returns `Ok`, rolls back when
    /// it returns `Err` or panics (the panic then continues), and always
    /// releases the connection. If the returned future is dropped midway, the
    /// transaction is rolled back before the connection is reused.
    ///
    /// # Errors
    ///
    /// `body`'s error, or an [`Error`] (converted into `E`) when no connection
    /// can be had or the commit fails.
    #[track_caller]
    pub fn session<T, E, F>(&self, body: F) -> impl Future<Output = Result<T, E>>
    where
        F: AsyncFnOnce(&Session) -> Result<T, E>,
        E: From<Error>,
    {
        self.run(Mode::Transaction, None, None, Location::caller(), body)
    }

    /// [`session`](Self::session) in a read-only transaction (see
    /// [`get_read_only`](Self::get_read_only)).
    ///
    /// # Errors
    ///
    /// As [`session`](Self::session); on PostgreSQL and MariaDB a write in
    /// `body` fails with [`Error::Query`].
    #[track_caller]
    pub fn read_session<T, E, F>(&self, body: F) -> impl Future<Output = Result<T, E>>
    where
        F: AsyncFnOnce(&Session) -> Result<T, E>,
        E: From<Error>,
    {
        self.run(Mode::ReadOnly, None, None, Location::caller(), body)
    }

    pub(super) async fn run<T, E, F>(
        &self,
        mode: Mode,
        isolation: Option<Isolation>,
        fresh_as: Option<&ReplicationPosition>,
        opened_at: &'static Location<'static>,
        body: F,
    ) -> Result<T, E>
    where
        F: AsyncFnOnce(&Session) -> Result<T, E>,
        E: From<Error>,
    {
        let session = self
            .open_session(mode, isolation, fresh_as, opened_at)
            .await?;
        let outcome = AssertUnwindSafe(body(&session)).catch_unwind().await;
        match outcome {
            Ok(Ok(value)) => {
                session.commit().await?;
                Ok(value)
            }
            Ok(Err(err)) => Err(session.fail(err).await),
            Err(panic) => {
                session.rollback().await;
                std::panic::resume_unwind(panic)
            }
        }
    }

    /// An autocommit session for sqlreg's own statements (creating the
    /// registered tables); `stats().acquired` counts only the application's.
    #[track_caller]
    pub(crate) fn own_connection(&self) -> impl Future<Output = Result<Session>> + Send {
        let opened_at = Location::caller();
        async move {
            let primary = self.inner.cluster.current();
            let conn = primary.acquire().await?;
            let context = Arc::clone(&primary.context);
            // No span: this is sqlreg's own work, not the application's.
            let span = tracing::Span::none();
            let session = Session::new(conn, context, Mode::Autocommit, None, opened_at, span);
            primary.context.publish_gauges();
            Ok(session)
        }
    }

    /// A session on a checked-out connection; `isolation` overrides the
    /// configured level for this session only. Read sessions go to a
    /// replica when the config lists any and one can serve them (at least
    /// as fresh as `fresh_as`), everything else to the primary.
    pub(super) async fn open_session(
        &self,
        mode: Mode,
        isolation: Option<Isolation>,
        fresh_as: Option<&ReplicationPosition>,
        opened_at: &'static Location<'static>,
    ) -> Result<Session> {
        let isolation = isolation.or(self.inner.config.session.isolation);
        if mode == Mode::ReadOnly
            && let Some(router) = &self.inner.router
            && let Some(session) = router.read_session(isolation, fresh_as, opened_at).await?
        {
            return Ok(session);
        }
        self.inner.cluster.session(mode, isolation, opened_at).await
    }
}
