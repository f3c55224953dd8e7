//! What one call of a public form asks for: the session's mode, its
//! isolation level, how fresh a read must be, whether a conflict runs the
//! body again, and where the caller is. Every form of the registry builds
//! one; the topology picks a server for it, and the server opens the
//! session it describes.

use std::panic::Location;

use crate::config::Isolation;
use crate::replication::ReplicationPosition;
use crate::retry::Retry;

/// Whether statements run inside one transaction or each on its own.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// `get()` / `session()`: one transaction, begun by the first statement.
    Transaction,
    /// `get_read_only()` / `read_session()`: one read-only transaction.
    ReadOnly,
    /// `connection()`: every statement commits by itself.
    Autocommit,
}

impl Mode {
    /// The session span's `sqlreg.session.access`.
    pub(crate) fn access(self) -> &'static str {
        match self {
            Self::Transaction => "read_write",
            Self::ReadOnly => "read_only",
            Self::Autocommit => "autocommit",
        }
    }
}

/// One session (or one retrying run of sessions) as a caller asked for it.
#[derive(Clone, Copy)]
pub(crate) struct Request<'a> {
    pub(crate) mode: Mode,
    /// Overrides the configured level; `None` keeps the config's.
    pub(crate) isolation: Option<Isolation>,
    /// For reads: the position they must see.
    pub(crate) fresh_as: Option<&'a ReplicationPosition>,
    /// `None` for the plain forms: one attempt, the body's error as it is.
    pub(crate) retry: Option<Retry>,
    pub(crate) opened_at: &'static Location<'static>,
}

impl Request<'static> {
    /// A plain session in `mode`, opened at `opened_at`.
    pub(crate) fn new(mode: Mode, opened_at: &'static Location<'static>) -> Self {
        Self {
            mode,
            isolation: None,
            fresh_as: None,
            retry: None,
            opened_at,
        }
    }
}

impl Request<'_> {
    /// The same request, run again after transient conflicts by `retry`.
    pub(crate) fn retrying(self, retry: Retry) -> Self {
        Self {
            retry: Some(retry),
            ..self
        }
    }

    /// Whether a conflict may run the body again.
    pub(crate) fn retries(&self) -> bool {
        self.retry.is_some()
    }
}
