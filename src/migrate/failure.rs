//! Turning sqlx's migration errors into ones that name the file, the
//! statement that failed, and how to recover.

use sqlx::migrate::MigrateError;

use super::{Migrations, discard, statements};
use crate::driver::MIGRATIONS_TABLE;
use crate::error::Error;
use crate::registry::MigrationConn;

/// Explains why applying migrations failed. The connection is discarded:
/// sqlx leaves its migration lock held when a migration fails.
pub(super) async fn explain(
    migrations: &Migrations,
    migrating: &mut MigrationConn,
    err: MigrateError,
) -> Error {
    discard(migrating);
    let file_of = |version: i64| migrations.file(version).cloned();
    let shown = |version: i64| match migrations.file(version) {
        Some(path) => format!("migration {version} ({})", path.display()),
        None => format!("migration {version}"),
    };
    let (version, message) = match err {
        MigrateError::ExecuteMigration(cause, version) => {
            let detail = cause.to_string();
            let statement = locate(migrations, migrating, version, &detail).await;
            let outcome = if migrating.conn.has_transactional_ddl() {
                "it was rolled back and the migrations before it stay applied".to_owned()
            } else {
                format!(
                    "this database commits each DDL statement on its own, so the statements \
                     before the failing one may have been applied; {}",
                    recovery(version)
                )
            };
            (
                Some(version),
                format!("{} failed{statement}: {detail}; {outcome}", shown(version)),
            )
        }
        MigrateError::VersionMismatch(version) => (
            Some(version),
            format!(
                "{} was changed after it was applied (its checksum differs from the one recorded); \
                 restore the file and put the change in a new migration",
                shown(version)
            ),
        ),
        MigrateError::VersionMissing(version) => (
            Some(version),
            format!(
                "migration {version} is applied to the database but has no file in {}",
                migrations.dir.display()
            ),
        ),
        MigrateError::Dirty(version) => (
            Some(version),
            format!(
                "{} was left half-applied by an earlier failure; {}",
                shown(version),
                recovery(version)
            ),
        ),
        other => (None, other.to_string()),
    };
    Error::Migration {
        file: version.and_then(file_of),
        version,
        message,
    }
}

/// How to recover from a half-applied migration on a backend without
/// transactional DDL.
pub(crate) fn recovery(version: i64) -> String {
    format!(
        "undo by hand what it applied, then `DELETE FROM {MIGRATIONS_TABLE} WHERE version = {version}` \
         and run `sqlreg migrate up` again"
    )
}

/// ` at statement N (line L): `SQL…`` for the statement that failed, or
/// nothing when it cannot be told.
async fn locate(
    migrations: &Migrations,
    migrating: &mut MigrationConn,
    version: i64,
    detail: &str,
) -> String {
    let Some(migration) = migrations
        .ups()
        .find(|m| m.version == version)
        .filter(|m| !m.no_tx)
    else {
        return String::new();
    };
    let found = statements::split(migration.sql.as_str());
    let texts: Vec<String> = found.iter().map(|s| s.text.clone()).collect();
    let index = match migrating.conn.first_failing(&texts).await {
        Some(index) => Some(index),
        None if !migrating.conn.has_transactional_ddl() => statements::named_in(&found, detail),
        None => None,
    };
    index
        .and_then(|index| found.get(index).map(|s| (index, s)))
        .map(|(index, statement)| {
            format!(
                " at statement {} (line {}): `{}`",
                index + 1,
                statement.line,
                statements::abbreviate(&statement.text)
            )
        })
        .unwrap_or_default()
}

/// A down migration failed; `failed` is the newest version still applied.
pub(super) fn revert_failed(
    migrations: &Migrations,
    failed: Option<i64>,
    err: &MigrateError,
) -> Error {
    let file = failed.and_then(|v| migrations.files.get(&(v, true)).cloned());
    let which = match (&failed, &file) {
        (Some(version), Some(path)) => format!("reverting {version} ({})", path.display()),
        (Some(version), None) => format!("reverting {version}"),
        _ => "reverting".to_owned(),
    };
    Error::Migration {
        version: failed,
        file,
        message: format!("{which} failed: {err}"),
    }
}

/// The migrations table could not be read.
pub(super) fn unreadable(err: &MigrateError) -> Error {
    Error::Migration {
        version: None,
        file: None,
        message: format!("cannot read `{MIGRATIONS_TABLE}`: {err}"),
    }
}
