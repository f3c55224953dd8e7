//! PostgreSQL: connect options from the URL, `statement_timeout` per
//! connection, and `CREATE DATABASE` through the `postgres` maintenance database.

mod pooler;
pub(super) mod replication;

use std::str::FromStr;
use std::sync::Arc;

use sqlx::postgres::PgConnectOptions;
use sqlx::{AssertSqlSafe, Connection, Postgres, SqlSafeStr, SqlStr};

use super::conflict::{Aborted, postgres_code};
use super::connect;
use super::{Connecting, Opened, Pool};
use crate::config::{DbConfig, Isolation};
use crate::error::{ConnectFailure, Error, Result};
use crate::replication::LastWrite;
use crate::stats::Counters;
use crate::url::DbUrl;

/// The database every PostgreSQL server has, used to create the missing one.
const MAINTENANCE_DATABASE: &str = "postgres";

pub(super) async fn open(
    url: &DbUrl,
    config: &DbConfig,
    counters: Arc<Counters>,
    connecting: Connecting,
    writes: Option<Arc<LastWrite>>,
) -> Result<Opened> {
    let options = connect_options(url, config).await?;
    let mut sessions = pooler::sessions(options.clone(), config);
    sessions.password = connect::rotating::<Postgres>(url, config, PgConnectOptions::password);
    if connecting == Connecting::Eagerly {
        // With the sessions' own options: a pooler that refuses them says
        // so now, not at the first session.
        connect::verify::<Postgres>(&sessions.options, url, config, classify, async || {
            create_database(url, config, &options).await
        })
        .await?;
    }
    // Only the server the registry starts on wraps its engine.
    let engine = (connecting == Connecting::Eagerly).then(|| pooler::engine(options, config));
    let pools = connect::pools(sessions, engine, url, config, counters, classify, writes);
    Ok(Opened {
        pool: Pool::Postgres(pools),
        memory: None,
    })
}

/// The options every connection to `url` starts from, with the password
/// from `url.password_file` or the password provider when one serves it.
async fn connect_options(url: &DbUrl, config: &DbConfig) -> Result<PgConnectOptions> {
    let mut options = PgConnectOptions::from_str(&url.to_sqlx_url()).map_err(|err| Error::Url {
        url: url.redacted(),
        message: connect::redact(url, &err.to_string()),
    })?;
    if let Some(password) = crate::credentials::password_now(url, config).await? {
        options = options.password(&password);
    }
    // Lets operators find (and tests kill) this application's connections.
    if options.get_application_name().is_none() {
        options = options.application_name("sqlreg");
    }
    Ok(connect::with_logging(
        pooler::startup(options, config),
        config,
    ))
}

pub(super) fn classify(err: &dyn sqlx::error::DatabaseError) -> Option<ConnectFailure> {
    match err.code().as_deref()? {
        // invalid_password, invalid_authorization_specification
        "28P01" | "28000" => Some(ConnectFailure::AuthenticationFailed),
        // invalid_catalog_name
        "3D000" => Some(ConnectFailure::UnknownDatabase),
        _ => None,
    }
}

/// Any statement error aborts a PostgreSQL transaction: the server then
/// refuses every statement until the innermost savepoint is rolled back, and
/// answers COMMIT with ROLLBACK.
pub(super) fn aborts_transaction(err: &sqlx::Error) -> Aborted {
    if matches!(err, sqlx::Error::Database(db) if postgres_code(db.as_ref()).is_some()) {
        Aborted::UntilSavepoint
    } else {
        Aborted::No
    }
}

/// The statement that begins a transaction: PostgreSQL takes the isolation
/// level and the access mode in `BEGIN` itself, so neither costs a round
/// trip. The access mode is always named: session connections default to
/// read-only.
/// Behind a transaction pooler, `settings` (`SET LOCAL …`) follow in the
/// same query: still one round trip.
pub(super) fn begin_statement(
    read_only: bool,
    isolation: Option<Isolation>,
    settings: Option<&str>,
) -> SqlStr {
    let mut statement = String::from("BEGIN");
    if let Some(level) = isolation {
        statement.push_str(" ISOLATION LEVEL ");
        statement.push_str(level.sql());
    }
    statement.push_str(if read_only {
        " READ ONLY"
    } else {
        " READ WRITE"
    });
    if let Some(settings) = settings.filter(|settings| !settings.is_empty()) {
        statement.push_str("; ");
        statement.push_str(settings);
    }
    AssertSqlSafe(statement).into_sql_str()
}

/// Whether a read-only session may run its statements without a
/// transaction and still see what it would see inside one: under READ
/// COMMITTED (PostgreSQL's default) every statement takes its own snapshot
/// either way.
pub(super) fn reads_without_transaction(isolation: Option<Isolation>) -> bool {
    matches!(isolation, None | Some(Isolation::ReadCommitted))
}

/// Returns a connection to the state it had when it was opened, for state a
/// session left on it: `DISCARD ALL` but for `DEALLOCATE ALL`, which would
/// drop the prepared statements sqlx has cached (SQL-level `PREPARE` closes
/// the connection instead). `RESET ALL` goes back to the startup options,
/// so `default_transaction_read_only` and `statement_timeout` are the
/// registry's again. One round trip.
pub(super) const RESET: &str = "CLOSE ALL; SET SESSION AUTHORIZATION DEFAULT; RESET ALL; \
     UNLISTEN *; SELECT pg_advisory_unlock_all(); DISCARD TEMP; DISCARD SEQUENCES";

/// Changes whether statements outside a transaction may write.
pub(super) fn default_access_statement(writes: bool) -> &'static str {
    if writes {
        "SET default_transaction_read_only = off"
    } else {
        "SET default_transaction_read_only = on"
    }
}

/// `CREATE DATABASE "<name>"` on the maintenance database; a database created
/// meanwhile by someone else counts as success: 42P04, or 23505 when the other
/// `CREATE DATABASE` was still running (a unique violation in `pg_database`).
async fn create_database(url: &DbUrl, config: &DbConfig, options: &PgConnectOptions) -> Result<()> {
    let name = url.database().unwrap_or_default();
    let fail =
        |err: &sqlx::Error| connect::connect_error(url, ConnectFailure::CreateDatabaseFailed, err);
    let maintenance = options.clone().database(MAINTENANCE_DATABASE);
    let mut conn = connect::connect_once::<Postgres>(&maintenance, config.session.connect_timeout)
        .await
        .map_err(|err| fail(&err))?;
    let sql = format!("CREATE DATABASE {}", quote_identifier(name));
    let created = sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(&mut conn)
        .await;
    let _ = conn.close().await;
    match created {
        Err(sqlx::Error::Database(db))
            if matches!(db.code().as_deref(), Some("42P04" | "23505")) =>
        {
            Ok(())
        }
        Err(err) => Err(fail(&err)),
        Ok(_) => Ok(()),
    }
}

/// A connection to the maintenance database of `url`'s server.
async fn maintenance(url: &DbUrl, config: &DbConfig) -> Result<sqlx::PgConnection> {
    let options = connect_options(url, config)
        .await?
        .database(MAINTENANCE_DATABASE);
    connect::connect_once::<Postgres>(&options, config.session.connect_timeout)
        .await
        .map_err(|err| connect::connect_error(url, connect::failure(&err, classify), &err))
}

/// The server's databases whose names start with `prefix`.
pub(super) async fn databases_starting_with(
    url: &DbUrl,
    config: &DbConfig,
    prefix: &str,
) -> Result<Vec<String>> {
    let mut conn = maintenance(url, config).await?;
    let names =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE starts_with(datname, $1)")
            .bind(prefix)
            .fetch_all(&mut conn)
            .await;
    let _ = conn.close().await;
    Ok(names?)
}

/// Drops database `name` if it exists, closing connections still on it.
pub(super) async fn drop_database(url: &DbUrl, config: &DbConfig, name: &str) -> Result<()> {
    let mut conn = maintenance(url, config).await?;
    let sql = format!(
        "DROP DATABASE IF EXISTS {} WITH (FORCE)",
        quote_identifier(name)
    );
    let dropped = sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(&mut conn)
        .await;
    let _ = conn.close().await;
    dropped.map(drop).map_err(Error::from)
}

/// The advisory lock key of sqlreg's migration lock ("sqlregmi" in ASCII).
/// sqlx's migrator takes its own as well; this one also covers migrators
/// that have none (sea-orm-migration).
const MIGRATION_LOCK_KEY: i64 = 0x7371_6c72_6567_6d69;

/// Waits for the migration lock of the database `conn` is on.
pub(super) async fn lock_migrations(conn: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(MIGRATION_LOCK_KEY)
        .execute(&mut *conn)
        .await
        .map(drop)
}

/// Releases [`lock_migrations`]' lock.
pub(super) async fn unlock_migrations(conn: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(MIGRATION_LOCK_KEY)
        .execute(&mut *conn)
        .await
        .map(drop)
}

/// A PostgreSQL identifier in double quotes, embedded quotes doubled.
pub(super) fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use crate::config::Isolation;

    #[test]
    fn begin_carries_isolation_and_access_mode() {
        let begin = |read_only, level| {
            super::begin_statement(read_only, level, None)
                .as_str()
                .to_owned()
        };
        assert_eq!(begin(false, None), "BEGIN READ WRITE");
        assert_eq!(begin(true, None), "BEGIN READ ONLY");
        assert_eq!(
            begin(true, Some(Isolation::Serializable)),
            "BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY"
        );
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(super::quote_identifier("app"), "\"app\"");
        assert_eq!(super::quote_identifier("we\"ird db"), "\"we\"\"ird db\"");
    }
}
