//! How OpenTelemetry's database conventions name each backend, and how its
//! SQL quotes identifiers (so literals can be told from names in span text).

use sea_orm::DbBackend;

use crate::url::{Backend, DbUrl};

/// `db.system.name`: `sqlite`, `postgresql`, `mysql`, or `mariadb` when the
/// URL's dialect says so (MariaDB and MySQL share one driver).
pub(crate) fn system_name(url: &DbUrl) -> &'static str {
    let dialect = url.dialect().split('+').next().unwrap_or_default();
    match url.backend() {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgresql",
        Backend::MySql if dialect.eq_ignore_ascii_case("mariadb") => "mariadb",
        Backend::MySql => "mysql",
    }
}

/// The character that quotes identifiers in the backend's SQL; any other
/// quote (MySQL's `"`) opens a string literal.
pub(crate) fn identifier_quote(backend: DbBackend) -> u8 {
    match backend {
        DbBackend::MySql => b'`',
        _ => b'"',
    }
}
