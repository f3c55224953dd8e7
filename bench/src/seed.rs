//! Fills the shared databases (SQLite file, PostgreSQL, MariaDB) once per run;
//! in-memory contenders seed their own private databases.

use std::str::FromStr;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};
use sqlx::{Connection, Executor, MySqlConnection, PgConnection, SqliteConnection};

use crate::runner::Result;
use crate::targets::{Servers, Target};

/// Recreates and fills `items` (and an empty `events`) on every shared target.
pub async fn shared(servers: &Servers) -> Result<()> {
    std::fs::create_dir_all(&servers.scratch)?;
    let file = servers.sqlite_file();
    let options = SqliteConnectOptions::from_str(&servers.sqlx_url(Target::SqliteFile))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal);
    let mut sqlite = SqliteConnection::connect_with(&options).await?;
    for sql in Target::SqliteFile.dialect().seed() {
        sqlite.execute(sqlx::AssertSqlSafe(sql)).await?;
    }
    sqlite.close().await?;
    let mut pg = PgConnection::connect(&servers.pg_url).await?;
    for sql in Target::Postgres.dialect().seed() {
        pg.execute(sqlx::AssertSqlSafe(sql)).await?;
    }
    pg.execute("ANALYZE items").await?;
    pg.close().await?;
    let mut maria = MySqlConnection::connect(&servers.mariadb_url).await?;
    for sql in Target::MariaDb.dialect().seed() {
        maria.execute(sqlx::AssertSqlSafe(sql)).await?;
    }
    maria.close().await?;
    debug_assert!(file.exists());
    Ok(())
}
