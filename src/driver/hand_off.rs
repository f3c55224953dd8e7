//! What a connection carries from one session to the next, and how it is
//! made clean again: the state a statement may leave (`Residue`), whether
//! the server committed or ended the transaction by itself, whether the
//! driver can go on after a cut-off round trip, and the reset.

use sqlx::Executor;

use super::residue::{self, Residue};
use super::{Conn, postgres};

impl Conn {
    /// Whether the server connection behind this one is shared with other
    /// clients between transactions (a transaction pooler): then nothing
    /// may outlive a transaction, and every statement runs inside one.
    pub(crate) fn shares_server(&self) -> bool {
        each_backend!(self, Conn(conn) => conn.transaction_settings().is_some())
    }

    /// What `sql` may leave on this connection beyond its transaction.
    pub(crate) fn residue(&self, sql: &str) -> Residue {
        match self {
            Self::Sqlite(_) => residue::sqlite(sql),
            Self::Postgres(_) => residue::postgres(sql),
            Self::MySql(_) => residue::mysql(sql),
        }
    }

    /// Whether `sql` commits the open transaction by itself (MariaDB DDL).
    pub(crate) fn commits_implicitly(&self, sql: &str) -> bool {
        self.has_implicit_commits() && residue::mysql_commits_implicitly(sql)
    }

    /// Whether the driver can use the connection again after a round trip
    /// was cut off mid-way (its future dropped): PostgreSQL's reads the
    /// pending reply first, SQLite's worker finishes the command anyway;
    /// MySQL's reads a half-read reply as the next one's.
    pub(crate) fn resumes_after_cut(&self) -> bool {
        !matches!(self, Self::MySql(_))
    }

    /// Reads the replies still pending after a round trip was cut off (see
    /// [`resumes_after_cut`](Self::resumes_after_cut)); the error the cut
    /// statement ended with, if it failed. sqlx's PostgreSQL connection
    /// hands a pending reply's error to the next round trip, so an empty
    /// one (a Sync) is repeated until it answers cleanly.
    pub(crate) async fn drain(&mut self) -> Result<Option<sqlx::Error>, sqlx::Error> {
        let Self::Postgres(conn) = self else {
            return Ok(None);
        };
        let mut failed = None;
        for _ in 0..4 {
            match sqlx::Connection::ping(&mut **conn).await {
                Ok(()) => return Ok(failed),
                Err(err) if super::is_fatal(&err) => return Err(err),
                Err(err) => failed = failed.or(Some(err)),
            }
        }
        Err(sqlx::Error::Protocol(
            "replies still pending after a cut round trip".into(),
        ))
    }

    /// Whether statements on this backend can end the open transaction by
    /// themselves (MySQL / MariaDB), so that after statements sqlreg did not
    /// see, the server must be asked whether one is still open.
    pub(crate) fn has_implicit_commits(&self) -> bool {
        matches!(self, Self::MySql(_))
    }

    /// Whether [`reset`](Self::reset) can undo a session's state on this
    /// backend; elsewhere such a connection is closed instead.
    pub(crate) fn resets(&self) -> bool {
        matches!(self, Self::Postgres(_))
    }

    /// Returns the connection to the state a new one of its pool has, for
    /// state a session left behind: PostgreSQL in one round trip (see
    /// `postgres::RESET`). Elsewhere it only forgets the default access mode
    /// (see [`resets`](Self::resets)).
    pub(crate) async fn reset(&mut self) -> Result<(), sqlx::Error> {
        if let Self::Postgres(conn) = self {
            (&mut **conn).execute(postgres::RESET).await?;
            conn.setup_again().await?;
        }
        each_backend!(self, Conn(conn) => conn.restore_defaults());
        Ok(())
    }
}
