//! Throwaway databases for tests: where one named `name` lives on the
//! configured server (or, for SQLite, in the temporary directory), listing
//! them by name prefix, and dropping them.

use std::path::PathBuf;

use super::{mysql, postgres};
use crate::config::DbConfig;
use crate::error::{ConnectFailure, Error, Result};
use crate::url::{Backend, DbUrl};

/// The SQLite file inside a scratch directory.
const SQLITE_FILE: &str = "test.db";

/// Where scratch SQLite databases live: one directory each.
fn sqlite_dir(name: &str) -> PathBuf {
    std::env::temp_dir().join(name)
}

/// The URL of scratch database `name` on the server `url` points at; for
/// SQLite, a file in a new directory of its own.
pub(crate) fn prepare(url: &DbUrl, name: &str) -> Result<DbUrl> {
    match url.backend() {
        Backend::Sqlite => {
            let dir = sqlite_dir(name);
            std::fs::create_dir_all(&dir).map_err(|err| Error::Connect {
                url: url.redacted(),
                reason: ConnectFailure::CannotOpenFile,
                detail: format!("cannot create {}: {err}", dir.display()),
            })?;
            let file = dir.join(SQLITE_FILE);
            Ok(url.with_database(Some(&file.to_string_lossy())))
        }
        Backend::Postgres | Backend::MySql => Ok(url.with_database(Some(name))),
    }
}

/// The scratch databases whose names start with `prefix`.
pub(crate) async fn list(url: &DbUrl, config: &DbConfig, prefix: &str) -> Result<Vec<String>> {
    match url.backend() {
        Backend::Sqlite => Ok(std::fs::read_dir(std::env::temp_dir())
            .map(|entries| {
                entries
                    .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
                    .filter(|name| name.starts_with(prefix))
                    .collect()
            })
            .unwrap_or_default()),
        Backend::Postgres => postgres::databases_starting_with(url, config, prefix).await,
        Backend::MySql => mysql::databases_starting_with(url, config, prefix).await,
    }
}

/// Drops scratch database `name`; one that is already gone is no error.
pub(crate) async fn drop(url: &DbUrl, config: &DbConfig, name: &str) -> Result<()> {
    match url.backend() {
        Backend::Sqlite => match std::fs::remove_dir_all(sqlite_dir(name)) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(Error::Connect {
                url: url.redacted(),
                reason: ConnectFailure::Other,
                detail: format!("cannot remove {}: {err}", sqlite_dir(name).display()),
            }),
            _ => Ok(()),
        },
        Backend::Postgres => postgres::drop_database(url, config, name).await,
        Backend::MySql => mysql::drop_database(url, config, name).await,
    }
}
