//! A session is a sea-orm connection: every statement runs on the session's
//! own connection, inside its transaction, within the configured time limit.

use sea_orm::{ConnectionTrait, DbBackend, DbErr, ExecResult, QueryResult, RuntimeErr, Statement};

use super::Session;

/// Runs one statement: begins the transaction if needed, bounds the round
/// trip, and marks the connection broken on a fatal error.
macro_rules! run {
    ($session:expr, $sql:expr, $conn:ident => $round_trip:expr, $error_kind:path) => {{
        let mut state = $session.ready().await?;
        let $conn = state.usable()?;
        let outcome = $session
            .context
            .observer
            .statement(
                $session.observed.span(),
                $sql,
                $session.context.within_limit($round_trip),
            )
            .await;
        $session
            .check(&mut state, outcome)
            .await
            .map_err(|err| reclassify(err, $error_kind))
    }};
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
        self.context.backend
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
