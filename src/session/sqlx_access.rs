//! Plain sqlx on a session's own connection, inside its transaction.

use sea_orm::DbErr;
use tokio::sync::{MappedMutexGuard, MutexGuard};

use super::{Mode, Session};
use crate::driver::{Conn, Residue};
use crate::error::{Error, Result};

impl Session {
    /// The session's own sqlx connection, inside its transaction, for plain
    /// sqlx queries: `sqlx::query("…").execute(&mut *s.sqlx::<sqlx::Postgres>().await?)`.
    ///
    /// Hold it only while running statements: the session's other methods
    /// wait until it is dropped.
    /// Statements run this way bypass sqlreg: they get no span and no
    /// histogram entry, and sqlreg cannot see whether they changed the
    /// connection's session state (`SET`, temporary tables, session locks):
    /// so that nothing reaches the next session, the connection is reset
    /// when the session ends (PostgreSQL: one round trip) or closed
    /// (MariaDB, SQLite). Code that only reads and writes rows uses
    /// [`sqlx_stateless`](Self::sqlx_stateless) and keeps the connection as is.
    ///
    /// # Errors
    ///
    /// [`Error::Query`] if the session is not on `DB`'s backend, or if
    /// beginning the transaction fails.
    pub async fn sqlx<DB: sqlx::Database>(&self) -> Result<MappedMutexGuard<'_, DB::Connection>> {
        self.sqlx_leaving::<DB>(Residue::Resettable).await
    }

    /// [`sqlx`](Self::sqlx) for statements that change no session state —
    /// no `SET` (but `SET LOCAL`), no temporary tables, session advisory
    /// locks, `LISTEN`, SQL-level `PREPARE`, user variables or `PRAGMA`s:
    /// the connection goes back to the pool without a reset. The promise is
    /// the caller's; state changed anyway reaches the next session.
    ///
    /// # Errors
    ///
    /// As [`sqlx`](Self::sqlx).
    pub async fn sqlx_stateless<DB: sqlx::Database>(
        &self,
    ) -> Result<MappedMutexGuard<'_, DB::Connection>> {
        self.sqlx_leaving::<DB>(Residue::None).await
    }

    /// The sqlx connection, noting that its statements may leave `residue`.
    async fn sqlx_leaving<DB: sqlx::Database>(
        &self,
        residue: Residue,
    ) -> Result<MappedMutexGuard<'_, DB::Connection>> {
        let mut state = self.prepare(true).await?;
        // Only a session that may write can lose work to an abort it did
        // not see; read sessions skip the check at commit.
        state.unobserved = self.mode == Mode::Transaction;
        state.unverified = state.unobserved && state.usable()?.has_implicit_commits();
        // Behind a transaction pooler no reset reaches the server connection
        // those statements ran on: what they change is the caller's to undo.
        if !state.usable()?.shares_server() {
            state.residue = state.residue.max(residue);
        }
        MutexGuard::try_map(state, |state| {
            state.usable().ok().and_then(Conn::downcast_mut)
        })
        .map_err(|_| {
            Error::Query(DbErr::Custom(format!(
                "this session is on {:?}, not {}",
                self.server.backend(),
                DB::NAME
            )))
        })
    }
}
