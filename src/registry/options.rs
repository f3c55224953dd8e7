//! Per-session choices that differ from the config:
//! `db.isolation(Isolation::Serializable).transaction(async |s| …)`.

use std::panic::Location;

use super::SqlConnectionRegistry;
use super::run::once;
use crate::config::Isolation;
use crate::error::{Error, Result};
use crate::replication::ReplicationPosition;
use crate::retry::Retry;
use crate::session::{Mode, Request, Session};

/// Sessions of one registry with an isolation level or retry budget of their
/// own; made by [`SqlConnectionRegistry::isolation`] or
/// [`SqlConnectionRegistry::options`]. Cheap: it borrows the registry.
#[derive(Debug, Clone)]
#[must_use]
pub struct SessionOptions<'a> {
    registry: &'a SqlConnectionRegistry,
    isolation: Option<Isolation>,
    retry: Retry,
    fresh_as: Option<ReplicationPosition>,
}

impl SqlConnectionRegistry {
    /// Session forms with the config's settings, to change some of them for
    /// the sessions they open.
    pub fn options(&self) -> SessionOptions<'_> {
        SessionOptions {
            registry: self,
            isolation: None,
            retry: Retry::new(&self.inner.config.session.retry),
            fresh_as: None,
        }
    }

    /// Session forms whose transactions begin with this isolation level,
    /// whatever `session.isolation` says.
    pub fn isolation(&self, level: Isolation) -> SessionOptions<'_> {
        self.options().isolation(level)
    }
}

impl SessionOptions<'_> {
    /// Begins the transactions with this isolation level.
    pub fn isolation(mut self, level: Isolation) -> Self {
        self.isolation = Some(level);
        self
    }

    /// Read sessions see at least everything up to `position` (from
    /// [`SqlConnectionRegistry::write_position`], say, carried across HTTP
    /// requests as text): a replica that has not replayed it yet is waited
    /// for briefly, else the read goes to the primary.
    pub fn fresh_as(mut self, position: ReplicationPosition) -> Self {
        self.fresh_as = Some(position);
        self
    }

    /// Lets [`transaction`](Self::transaction) and
    /// [`read_transaction`](Self::read_transaction) make this many attempts
    /// in all.
    pub fn attempts(mut self, attempts: u32) -> Self {
        self.retry = self.retry.with_attempts(attempts);
        self
    }

    /// [`SqlConnectionRegistry::get`] with these options.
    ///
    /// # Errors
    ///
    /// As [`SqlConnectionRegistry::get`].
    #[track_caller]
    pub fn get(&self) -> impl Future<Output = Result<Session>> + Send {
        self.registry
            .open_session(self.request(Mode::Transaction, Location::caller()))
    }

    /// [`SqlConnectionRegistry::session`] with these options.
    ///
    /// # Errors
    ///
    /// As [`SqlConnectionRegistry::session`].
    #[track_caller]
    pub fn session<T, E, F>(&self, body: F) -> impl Future<Output = Result<T, E>>
    where
        F: AsyncFnOnce(&Session) -> Result<T, E>,
        E: From<Error>,
    {
        self.registry.run(
            self.request(Mode::Transaction, Location::caller()),
            once(body),
        )
    }

    /// [`SqlConnectionRegistry::get_read_only`] with these options: at READ
    /// COMMITTED a read session runs its statements without a transaction
    /// (see the README's session table).
    ///
    /// # Errors
    ///
    /// As [`SqlConnectionRegistry::get`].
    #[track_caller]
    pub fn get_read_only(&self) -> impl Future<Output = Result<Session>> + Send {
        self.registry
            .open_session(self.request(Mode::ReadOnly, Location::caller()))
    }

    /// [`SqlConnectionRegistry::read_session`] with these options.
    ///
    /// # Errors
    ///
    /// As [`SqlConnectionRegistry::read_session`].
    #[track_caller]
    pub fn read_session<T, E, F>(&self, body: F) -> impl Future<Output = Result<T, E>>
    where
        F: AsyncFnOnce(&Session) -> Result<T, E>,
        E: From<Error>,
    {
        self.registry
            .run(self.request(Mode::ReadOnly, Location::caller()), once(body))
    }

    /// [`SqlConnectionRegistry::transaction`] with these options.
    ///
    /// # Errors
    ///
    /// As [`SqlConnectionRegistry::transaction`].
    #[track_caller]
    pub fn transaction<T, E, F>(&self, body: F) -> impl Future<Output = Result<T, E>>
    where
        F: AsyncFnOnce(&Session) -> Result<T, E> + Clone,
        E: From<Error>,
    {
        let request = self.request(Mode::Transaction, Location::caller());
        self.registry
            .run(request.retrying(self.retry), move || body.clone())
    }

    /// [`SqlConnectionRegistry::read_transaction`] with these options.
    ///
    /// # Errors
    ///
    /// As [`SqlConnectionRegistry::read_transaction`].
    #[track_caller]
    pub fn read_transaction<T, E, F>(&self, body: F) -> impl Future<Output = Result<T, E>>
    where
        F: AsyncFnOnce(&Session) -> Result<T, E> + Clone,
        E: From<Error>,
    {
        let request = self.request(Mode::ReadOnly, Location::caller());
        self.registry
            .run(request.retrying(self.retry), move || body.clone())
    }

    /// A request in `mode` with these options, opened at `opened_at`.
    fn request(&self, mode: Mode, opened_at: &'static Location<'static>) -> Request<'_> {
        Request {
            mode,
            isolation: self.isolation,
            fresh_as: self.fresh_as.as_ref(),
            retry: None,
            opened_at,
        }
    }
}
