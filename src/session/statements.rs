//! A session is a sea-orm connection: every statement runs on the session's
//! own connection, inside its transaction, within the configured time limit.

use sea_orm::{ConnectionTrait, DbBackend, DbErr, ExecResult, QueryResult, RuntimeErr, Statement};

use super::state::State;
use super::{Mode, Session};
use crate::driver::{self, Residue};

/// Runs one statement: begins the transaction if needed, notes what the
/// statement may leave on the connection (and, on MariaDB, whether it
/// commits the transaction by itself), bounds the round trip, and marks the
/// connection broken on a fatal error.
macro_rules! run {
    ($session:expr, $sql:expr, $conn:ident => $round_trip:expr, $error_kind:path) => {{
        let mut state = $session.ready().await?;
        let commits = $session.before_statement(&mut state, $sql)?;
        let $conn = state.usable()?;
        let outcome = $session
            .server
            .observer()
            .statement(
                $session.observed.span(),
                $sql,
                $session.server.within_limit($round_trip),
            )
            .await;
        state.in_flight = false;
        if commits {
            $session.committed_under_it(&mut state, $sql);
        }
        let outcome = $session.check(&mut state, outcome).await;
        $session.end_autocommit(&mut state, outcome.is_ok()).await?;
        if state.wrote_unplaced {
            $session.server.record_unplaced_write();
        }
        outcome.map_err(|err| reclassify(err, $error_kind))
    }};
}

impl Session {
    /// Marks what `sql` may leave on the connection (see `Residue`) and the
    /// round trip as in flight; whether it commits the open transaction by
    /// itself (MariaDB DDL inside a session).
    fn before_statement(&self, state: &mut State, sql: &str) -> Result<bool, DbErr> {
        let conn = state.usable()?;
        let residue = conn.residue(sql);
        if residue != Residue::None && conn.shares_server() {
            return Err(DbErr::Custom(format!(
                "behind a transaction pooler (`session.pooler: transaction`), `{}` would change \
                 the server connection for the pooler's other clients: use `SET LOCAL`, \
                 `set_config(.., true)` or `pg_advisory_xact_lock` inside the session, or a URL \
                 that reaches the server directly",
                driver::statement_summary(sql)
            )));
        }
        let commits = self.mode == Mode::Transaction
            && conn.transaction_depth() > 0
            && conn.commits_implicitly(sql);
        state.residue = state.residue.max(residue);
        state.note_possible_write(self.mode, sql);
        state.in_flight = true;
        Ok(commits)
    }

    /// Behind a transaction pooler, a `connection()` statement runs in a
    /// transaction of its own (see `Session::prepare`): ended here, with
    /// the statement.
    async fn end_autocommit(&self, state: &mut State, succeeded: bool) -> Result<(), DbErr> {
        if self.mode != Mode::Autocommit {
            return Ok(());
        }
        let Ok(conn) = state.open() else {
            return Ok(());
        };
        if conn.transaction_depth() == 0 {
            return Ok(());
        }
        state.in_flight = true;
        let conn = state.open()?;
        let ended = if succeeded {
            self.server.within_limit(conn.commit()).await
        } else {
            self.server.within_limit(conn.rollback()).await
        };
        state.in_flight = false;
        // The failed statement's transaction is gone: the next one starts clean.
        state.aborted = None;
        self.check(state, ended).await
    }

    /// The server committed the transaction before running `sql` (and left
    /// it): what ran before is committed for good, and the next statement
    /// begins a new transaction. Noted whether `sql` itself succeeded: the
    /// commit happens first.
    fn committed_under_it(&self, state: &mut State, sql: &str) {
        tracing::warn!(
            opened_at = %self.opened_at,
            statement = %driver::statement_summary(sql),
            "the server committed this session's transaction implicitly before the statement; \
             the work before it is committed and will not be rolled back or retried"
        );
        state
            .committed_by
            .get_or_insert_with(|| driver::statement_summary(sql));
        state.left_transaction = true;
    }
}

/// `check` reports failures as query errors; sea-orm tells executes apart.
fn reclassify(err: DbErr, kind: fn(RuntimeErr) -> DbErr) -> DbErr {
    match err {
        DbErr::Query(runtime) => kind(runtime),
        other => other,
    }
}

#[async_trait::async_trait]
impl ConnectionTrait for Session {
    fn get_database_backend(&self) -> DbBackend {
        self.server.backend()
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        run!(self, &stmt.sql, conn => conn.execute(&stmt), DbErr::Exec)
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        run!(self, sql, conn => conn.execute_unprepared(sql), DbErr::Exec)
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        run!(self, &stmt.sql, conn => conn.fetch_optional(&stmt), DbErr::Query)
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        run!(self, &stmt.sql, conn => conn.fetch_all(&stmt), DbErr::Query)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn execute_errors_stay_execute_errors() {
        let runtime = RuntimeErr::Internal("x".into());
        assert!(matches!(
            reclassify(DbErr::Query(runtime), DbErr::Exec),
            DbErr::Exec(_)
        ));
    }
}
