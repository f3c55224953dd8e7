//! MySQL and MariaDB: connect options from the URL, a per-connection
//! statement time limit, and `CREATE DATABASE IF NOT EXISTS`.

pub(super) mod replication;

use std::str::FromStr;
use std::sync::Arc;

use sqlx::mysql::{MySqlConnectOptions, MySqlConnection};
use sqlx::{AssertSqlSafe, Connection, Executor, MySql, SqlSafeStr, SqlStr};

use super::conflict::{Aborted, mysql_number};
use super::connect::{self, Opening};
use super::{Connecting, Opened, Pool};
use crate::config::{DbConfig, Isolation};
use crate::error::{ConnectFailure, Error, Result};
use crate::replication::LastWrite;
use crate::stats::Counters;
use crate::url::DbUrl;

pub(super) async fn open(
    url: &DbUrl,
    config: &DbConfig,
    counters: Arc<Counters>,
    connecting: Connecting,
    writes: Option<Arc<LastWrite>>,
) -> Result<Opened> {
    let options = connect_options(url, config).await?;
    if connecting == Connecting::Eagerly {
        connect::verify::<MySql>(&options, url, config, classify, async || {
            create_database(url, config).await
        })
        .await?;
    }
    // MariaDB's per-session statement limit, in seconds.
    let setup = config
        .session
        .statement_timeout
        .map(|limit| format!("SET SESSION max_statement_time = {}", limit.as_secs_f64()));
    // Connections open writable: DDL commits the transaction around it and
    // runs outside it, so a write session needs a writable default (see
    // `begin_statement`). Read sessions name READ ONLY in START TRANSACTION,
    // or, at READ COMMITTED, make the connection read-only first.
    let sessions = Opening {
        setup: setup.clone(),
        password: connect::rotating::<MySql>(url, config, MySqlConnectOptions::password),
        ..Opening::new(options.clone())
    };
    // Only the server the registry starts on wraps its engine.
    let engine = (connecting == Connecting::Eagerly).then(|| Opening {
        setup,
        ..Opening::new(options)
    });
    let pools = connect::pools(sessions, engine, url, config, counters, classify, writes);
    Ok(Opened {
        pool: Pool::MySql(pools),
        memory: None,
    })
}

/// The options every connection to `url` starts from, with the password
/// from `url.password_file` or the password provider when one serves it.
async fn connect_options(url: &DbUrl, config: &DbConfig) -> Result<MySqlConnectOptions> {
    let mut options =
        MySqlConnectOptions::from_str(&url.to_sqlx_url()).map_err(|err| Error::Url {
            url: url.redacted(),
            message: connect::redact(url, &err.to_string()),
        })?;
    if let Some(password) = crate::credentials::password_now(url, config).await? {
        options = options.password(&password);
    }
    Ok(connect::with_logging(options, config))
}

pub(super) fn classify(err: &dyn sqlx::error::DatabaseError) -> Option<ConnectFailure> {
    match mysql_number(err)? {
        // ER_ACCESS_DENIED_ERROR, ER_DBACCESS_DENIED_ERROR
        1045 | 1044 => Some(ConnectFailure::AuthenticationFailed),
        // ER_BAD_DB_ERROR
        1049 => Some(ConnectFailure::UnknownDatabase),
        _ => None,
    }
}

/// InnoDB rolls the whole transaction back on a deadlock (1213) or a full
/// lock table (1206), and on a lock wait timeout (1205) when
/// `innodb_rollback_on_timeout` is on — asked of the server
/// (`@@in_transaction`), so only that rare error costs a round trip.
pub(super) async fn aborts_transaction(conn: &mut MySqlConnection, err: &sqlx::Error) -> Aborted {
    let sqlx::Error::Database(db) = err else {
        return Aborted::No;
    };
    match mysql_number(db.as_ref()) {
        Some(1213 | 1206) => Aborted::Whole,
        Some(1205) => {
            let open: Result<u64, _> = sqlx::query_scalar("SELECT @@in_transaction")
                .fetch_one(conn)
                .await;
            // Unknown (a MySQL without the variable, a broken connection):
            // assume the worst, so nothing is ever reported committed wrongly.
            if matches!(open, Ok(1)) {
                Aborted::No
            } else {
                Aborted::Whole
            }
        }
        _ => Aborted::No,
    }
}

/// The statement that begins a transaction. `START TRANSACTION` cannot carry
/// an isolation level, so the level is set for the next transaction in the
/// same query: still one round trip. The access mode is always named, as a
/// connection a read session made read-only may come next.
pub(super) fn begin_statement(read_only: bool, isolation: Option<Isolation>) -> SqlStr {
    let start = if read_only {
        "START TRANSACTION READ ONLY"
    } else {
        "START TRANSACTION READ WRITE"
    };
    match isolation {
        Some(level) => AssertSqlSafe(format!(
            "SET TRANSACTION ISOLATION LEVEL {}; {start}",
            level.sql()
        ))
        .into_sql_str(),
        None => start.into_sql_str(),
    }
}

/// Whether a read-only session may run its statements without a
/// transaction: only under READ COMMITTED, asked for explicitly. MariaDB's
/// default, REPEATABLE READ, gives every statement of a transaction the
/// first one's snapshot, which separate statements would not share.
pub(super) fn reads_without_transaction(isolation: Option<Isolation>) -> bool {
    isolation == Some(Isolation::ReadCommitted)
}

/// Changes whether statements outside a transaction may write.
pub(super) fn default_access_statement(writes: bool) -> &'static str {
    if writes {
        "SET SESSION TRANSACTION READ WRITE"
    } else {
        "SET SESSION TRANSACTION READ ONLY"
    }
}

/// `CREATE DATABASE IF NOT EXISTS` on a connection without a default database.
async fn create_database(url: &DbUrl, config: &DbConfig) -> Result<()> {
    let name = url.database().unwrap_or_default();
    let fail =
        |err: &sqlx::Error| connect::connect_error(url, ConnectFailure::CreateDatabaseFailed, err);
    let server = connect_options(&url.with_database(None), config).await?;
    let mut conn = connect::connect_once::<MySql>(&server, config.session.connect_timeout)
        .await
        .map_err(|err| fail(&err))?;
    let sql = format!("CREATE DATABASE IF NOT EXISTS {}", quote_identifier(name));
    let created = conn.execute(sqlx::AssertSqlSafe(sql)).await;
    let _ = conn.close().await;
    created.map(drop).map_err(|err| fail(&err))
}

/// A connection to `url`'s server without a default database.
async fn server(url: &DbUrl, config: &DbConfig) -> Result<MySqlConnection> {
    let options = connect_options(&url.with_database(None), config).await?;
    connect::connect_once::<MySql>(&options, config.session.connect_timeout)
        .await
        .map_err(|err| connect::connect_error(url, connect::failure(&err, classify), &err))
}

/// The server's databases whose names start with `prefix`.
pub(super) async fn databases_starting_with(
    url: &DbUrl,
    config: &DbConfig,
    prefix: &str,
) -> Result<Vec<String>> {
    let mut conn = server(url, config).await?;
    let names = sqlx::query_scalar(
        "SELECT CAST(SCHEMA_NAME AS CHAR) FROM information_schema.SCHEMATA \
         WHERE LOCATE(?, SCHEMA_NAME) = 1",
    )
    .bind(prefix)
    .fetch_all(&mut conn)
    .await;
    let _ = conn.close().await;
    Ok(names?)
}

/// Drops database `name` if it exists.
pub(super) async fn drop_database(url: &DbUrl, config: &DbConfig, name: &str) -> Result<()> {
    let mut conn = server(url, config).await?;
    let sql = format!("DROP DATABASE IF EXISTS {}", quote_identifier(name));
    let dropped = conn.execute(sqlx::AssertSqlSafe(sql)).await;
    let _ = conn.close().await;
    dropped.map(drop).map_err(Error::from)
}

/// How long an instance waits for another one's migrations (a year: the
/// server needs a number, and a migration may legitimately take hours).
const MIGRATION_LOCK_WAIT_SECONDS: u32 = 365 * 24 * 3600;

/// The named lock that keeps concurrent instances from migrating the same
/// database at once. sqlx's migrator asks for `GET_LOCK(name, -1)`, which
/// MySQL reads as "wait forever" but MariaDB answers at once with NULL,
/// without locking — so on MariaDB its migrations run concurrently.
pub(super) async fn lock_migrations(conn: &mut MySqlConnection) -> Result<(), sqlx::Error> {
    let locked: Option<i64> =
        sqlx::query_scalar("SELECT GET_LOCK(CONCAT('sqlreg-migrate:', MD5(DATABASE())), ?)")
            .bind(MIGRATION_LOCK_WAIT_SECONDS)
            .fetch_one(&mut *conn)
            .await?;
    if locked == Some(1) {
        Ok(())
    } else {
        Err(sqlx::Error::Protocol(
            "timed out waiting for another instance's migrations (GET_LOCK)".into(),
        ))
    }
}

/// Releases [`lock_migrations`]' lock.
pub(super) async fn unlock_migrations(conn: &mut MySqlConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT RELEASE_LOCK(CONCAT('sqlreg-migrate:', MD5(DATABASE())))")
        .execute(&mut *conn)
        .await
        .map(drop)
}

/// A MySQL identifier in backticks, embedded backticks doubled.
fn quote_identifier(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

#[cfg(test)]
mod tests {
    use crate::config::Isolation;

    #[test]
    fn begin_sets_the_level_in_the_same_query() {
        let begin = |read_only, level| super::begin_statement(read_only, level).as_str().to_owned();
        assert_eq!(begin(false, None), "START TRANSACTION READ WRITE");
        assert_eq!(begin(true, None), "START TRANSACTION READ ONLY");
        assert_eq!(
            begin(false, Some(Isolation::Serializable)),
            "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE; START TRANSACTION READ WRITE"
        );
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(super::quote_identifier("app"), "`app`");
        assert_eq!(super::quote_identifier("we`ird db"), "`we``ird db`");
    }
}
