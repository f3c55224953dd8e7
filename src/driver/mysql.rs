//! MySQL and MariaDB: connect options from the URL, a per-connection
//! statement time limit, and `CREATE DATABASE IF NOT EXISTS`.

use std::str::FromStr;

use sqlx::mysql::MySqlConnectOptions;
use sqlx::{Connection, Executor, MySql};

use super::connect::{self, PoolHooks};
use super::{Opened, Pool};
use crate::config::DbConfig;
use crate::error::{ConnectFailure, Error, Result};
use crate::url::DbUrl;

pub(super) async fn open(url: &DbUrl, config: &DbConfig, hooks: &PoolHooks) -> Result<Opened> {
    let options = connect_options(url, config)?;
    connect::verify::<MySql>(&options, url, config, classify, async || {
        create_database(url, config).await
    })
    .await?;
    // MariaDB's per-session statement limit, in seconds.
    let setup = config
        .session
        .statement_timeout
        .map(|limit| format!("SET SESSION max_statement_time = {}", limit.as_secs_f64()));
    let pool = connect::pool_options::<MySql>(config, hooks, setup).connect_lazy_with(options);
    Ok(Opened {
        pool: Pool::MySql(pool),
        memory: None,
    })
}

fn connect_options(url: &DbUrl, config: &DbConfig) -> Result<MySqlConnectOptions> {
    let options = MySqlConnectOptions::from_str(&url.to_sqlx_url()).map_err(|err| Error::Url {
        url: url.redacted(),
        message: connect::redact(url, &err.to_string()),
    })?;
    Ok(connect::with_logging(options, config))
}

pub(super) fn classify(err: &dyn sqlx::error::DatabaseError) -> Option<ConnectFailure> {
    let number = err
        .try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()?
        .number();
    match number {
        // ER_ACCESS_DENIED_ERROR, ER_DBACCESS_DENIED_ERROR
        1045 | 1044 => Some(ConnectFailure::AuthenticationFailed),
        // ER_BAD_DB_ERROR
        1049 => Some(ConnectFailure::UnknownDatabase),
        _ => None,
    }
}

/// Server shutdown (1053), connection killed (1927), gone away (2006), lost
/// during query (2013) and idle disconnect (4031) end the connection.
pub(super) fn is_fatal(err: &dyn sqlx::error::DatabaseError) -> bool {
    err.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
        .is_some_and(|err| matches!(err.number(), 1053 | 1927 | 2006 | 2013 | 4031))
}

/// `CREATE DATABASE IF NOT EXISTS` on a connection without a default database.
async fn create_database(url: &DbUrl, config: &DbConfig) -> Result<()> {
    let name = url.database().unwrap_or_default();
    let fail =
        |err: &sqlx::Error| connect::connect_error(url, ConnectFailure::CreateDatabaseFailed, err);
    let server = connect_options(&url.with_database(None), config)?;
    let mut conn = connect::connect_once::<MySql>(&server, config.session.connect_timeout)
        .await
        .map_err(|err| fail(&err))?;
    let sql = format!("CREATE DATABASE IF NOT EXISTS {}", quote_identifier(name));
    let created = conn.execute(sqlx::AssertSqlSafe(sql)).await;
    let _ = conn.close().await;
    created.map(drop).map_err(|err| fail(&err))
}

/// A MySQL identifier in backticks, embedded backticks doubled.
fn quote_identifier(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(super::quote_identifier("app"), "`app`");
        assert_eq!(super::quote_identifier("we`ird db"), "`we``ird db`");
    }
}
