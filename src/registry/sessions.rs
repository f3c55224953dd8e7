//! Handing out sessions: the guard forms (`get`, `get_read_only`,
//! `connection`) and the closure forms (`session`, `read_session`).

use std::panic::Location;

use super::SqlConnectionRegistry;
use super::run::once;
use crate::error::{Error, Result};
use crate::session::{Mode, Request, Session};

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
        self.open_session(Request::new(Mode::Transaction, Location::caller()))
    }

    /// A read-only session: PostgreSQL and MariaDB refuse writes in it
    /// (`BEGIN READ ONLY`); on SQLite it begins deferred, so it never takes
    /// the write lock and never waits for writers (SQLite does not enforce
    /// read-only transactions). Its [`commit`](Session::commit) returns
    /// without waiting for a COMMIT that can change nothing (see the
    /// README's "Round trips per session").
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    #[track_caller]
    pub fn get_read_only(&self) -> impl Future<Output = Result<Session>> + Send {
        self.open_session(Request::new(Mode::ReadOnly, Location::caller()))
    }

    /// A pooled connection in autocommit mode (core-lib's `connection()`):
    /// every statement commits by itself. Dropping it returns it to the pool.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    #[track_caller]
    pub fn connection(&self) -> impl Future<Output = Result<Session>> + Send {
        self.open_session(Request::new(Mode::Autocommit, Location::caller()))
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
        self.run(
            Request::new(Mode::Transaction, Location::caller()),
            once(body),
        )
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
        self.run(Request::new(Mode::ReadOnly, Location::caller()), once(body))
    }

    /// An autocommit session for sqlreg's own statements (creating the
    /// registered tables); `stats().acquired` counts only the application's.
    #[track_caller]
    pub(crate) fn own_connection(&self) -> impl Future<Output = Result<Session>> + Send {
        let opened_at = Location::caller();
        Session::open_own(self.inner.topology.current(), opened_at)
    }
}
