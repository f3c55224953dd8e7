//! MySQL and MariaDB: connect options from the URL, a per-connection
//! statement time limit, and `CREATE DATABASE IF NOT EXISTS`.

use std::str::FromStr;

use sqlx::mysql::MySqlConnectOptions;
use sqlx::{Connection, Executor, MySql};

use super::connect;
use super::{Opened, Pool};
use crate::config::DbConfig;
use crate::error::{ConnectFailure, Error, Result};
use crate::url::DbUrl;

pub(super) async fn open(url: &DbUrl, config: &DbConfig) -> Result<Opened> {
    let options = connect_options(url, config)?;
    connect::verify::<MySql>(&options, url, config, classify, async || {
        create_database(url, config).await
    })
    .await?;
    let mut pool_options = connect::pool_options::<MySql>(config);
    if let Some(limit) = config.session.statement_timeout {
        // MariaDB's per-session limit, in seconds.
        let sql = format!("SET SESSION max_statement_time = {}", limit.as_secs_f64());
        pool_options = pool_options.after_connect(move |conn, _| {
            let sql = sql.clone();
            Box::pin(async move { conn.execute(sqlx::AssertSqlSafe(sql)).await.map(drop) })
        });
    }
    Ok(Opened {
        pool: Pool::MySql(pool_options.connect_lazy_with(options)),
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

fn classify(err: &dyn sqlx::error::DatabaseError) -> Option<ConnectFailure> {
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
