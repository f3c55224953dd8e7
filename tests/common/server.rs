//! Asking a session's own server what it is and what it holds, for tests
//! that check where the registry sent a session.

use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, Statement};
use sqlreg::{Error, Session, SqlConnectionRegistry};

/// The first column of the one row `sql` returns, as a number.
pub async fn number(s: &Session, sql: &str) -> Result<i64, Error> {
    let row = s
        .query_one_raw(Statement::from_string(s.get_database_backend(), sql))
        .await?
        .expect("one row");
    Ok(row.try_get_by_index::<i64>(0)?)
}

/// Whether the session runs on a replica: PostgreSQL in recovery, MariaDB
/// `read_only`.
pub async fn on_replica(s: &Session) -> Result<bool, Error> {
    let sql = match s.get_database_backend() {
        sea_orm::DbBackend::Postgres => {
            "SELECT CASE WHEN pg_is_in_recovery() THEN 1 ELSE 0 END::bigint"
        }
        _ => "SELECT CAST(@@read_only AS SIGNED)",
    };
    Ok(number(s, sql).await? == 1)
}

/// The rows in `table`.
pub async fn count_rows(s: &Session, table: &str) -> Result<i64, Error> {
    let sql = match s.get_database_backend() {
        sea_orm::DbBackend::Postgres => format!("SELECT COUNT(*)::bigint FROM {table}"),
        _ => format!("SELECT COUNT(*) FROM {table}"),
    };
    number(s, &sql).await
}

/// The port the session's server listens on.
pub async fn port(s: &Session) -> Result<u16, Error> {
    let sql = match s.get_database_backend() {
        sea_orm::DbBackend::Postgres => "SELECT inet_server_port()::bigint",
        _ => "SELECT CAST(@@port AS SIGNED)",
    };
    Ok(u16::try_from(number(s, sql).await?).expect("a port"))
}

/// The server's id of the session's connection.
pub async fn backend_id(s: &Session) -> Result<i64, Error> {
    let sql = match s.get_database_backend() {
        sea_orm::DbBackend::Postgres => "SELECT pg_backend_pid()::bigint",
        _ => "SELECT CAST(CONNECTION_ID() AS SIGNED)",
    };
    number(s, sql).await
}

/// Reads through `db` until one runs on a replica that has `table` (it
/// replayed its creation); returns that read's connection id there.
pub async fn read_on_replica(db: &SqlConnectionRegistry, table: &str) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let read = db
            .read_session(async |s| {
                count_rows(s, table).await?;
                Ok::<_, Error>((on_replica(s).await?, backend_id(s).await?))
            })
            .await;
        if let Ok((true, id)) = read {
            // A read session's COMMIT runs after it returned: wait for the
            // connection to be back in the pool, where a caller ending it
            // expects it.
            let back = || db.host_stats().iter().all(|h| h.pool.idle == h.pool.size);
            assert!(
                super::eventually(back).await,
                "a connection never came back"
            );
            return id;
        }
        assert!(
            Instant::now() < deadline,
            "no read reached the replica: {read:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
