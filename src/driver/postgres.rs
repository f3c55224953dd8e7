//! PostgreSQL: connect options from the URL, `statement_timeout` per
//! connection, and `CREATE DATABASE` through the `postgres` maintenance database.

use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, Postgres};

use super::connect::{self, PoolHooks};
use super::{Opened, Pool};
use crate::config::DbConfig;
use crate::error::{ConnectFailure, Error, Result};
use crate::url::DbUrl;

/// The database every PostgreSQL server has, used to create the missing one.
const MAINTENANCE_DATABASE: &str = "postgres";

pub(super) async fn open(url: &DbUrl, config: &DbConfig, hooks: &PoolHooks) -> Result<Opened> {
    let options = connect_options(url, config)?;
    connect::verify::<Postgres>(&options, url, config, classify, async || {
        create_database(url, config, &options).await
    })
    .await?;
    let pool = connect::pool_options::<Postgres>(config, hooks, None).connect_lazy_with(options);
    Ok(Opened {
        pool: Pool::Postgres(pool),
        memory: None,
    })
}

fn connect_options(url: &DbUrl, config: &DbConfig) -> Result<PgConnectOptions> {
    let mut options = PgConnectOptions::from_str(&url.to_sqlx_url()).map_err(|err| Error::Url {
        url: url.redacted(),
        message: connect::redact(url, &err.to_string()),
    })?;
    // Lets operators find (and tests kill) this application's connections.
    if options.get_application_name().is_none() {
        options = options.application_name("sqlreg");
    }
    if let Some(limit) = config.session.statement_timeout {
        let millis = limit.as_millis().to_string();
        options = options.options([("statement_timeout", millis.as_str())]);
    }
    Ok(connect::with_logging(options, config))
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

/// Connection exceptions (class 08) and the server's shutdown / crash
/// recovery / admin-terminate codes (57P01–57P03) end the connection.
pub(super) fn is_fatal(err: &dyn sqlx::error::DatabaseError) -> bool {
    err.code()
        .is_some_and(|code| code.starts_with("08") || matches!(&*code, "57P01" | "57P02" | "57P03"))
}

/// `CREATE DATABASE "<name>"` on the maintenance database; a database created
/// meanwhile by someone else (42P04) counts as success.
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
        Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("42P04") => Ok(()),
        Err(err) => Err(fail(&err)),
        Ok(_) => Ok(()),
    }
}

/// A PostgreSQL identifier in double quotes, embedded quotes doubled.
fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(super::quote_identifier("app"), "\"app\"");
        assert_eq!(super::quote_identifier("we\"ird db"), "\"we\"\"ird db\"");
    }
}
