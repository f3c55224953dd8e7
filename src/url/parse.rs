//! Reading SQLAlchemy URL strings
//! (`dialect[+driver]://[user[:password]@][host][:port][/database][?query]`)
//! and the one constructor every [`DbUrl`] goes through.

use std::path::PathBuf;
use std::str::FromStr;

use percent_encoding::percent_decode_str;

use super::{Backend, DEFAULT_HOST, DbUrl, SUPPORTED, SqliteTarget};
use crate::error::Error;
use crate::redact;

/// The components of a URL before they are checked, already decoded.
#[derive(Default)]
pub(super) struct Components {
    pub(super) dialect: String,
    pub(super) username: Option<String>,
    pub(super) password: Option<String>,
    pub(super) host: Option<String>,
    pub(super) port: Option<u16>,
    pub(super) database: Option<String>,
    pub(super) query: Vec<(String, String)>,
}

/// Checks the components and builds the URL; the message says what is wrong.
pub(super) fn assemble(c: Components) -> Result<DbUrl, String> {
    let backend = Backend::from_dialect(&c.dialect)
        .ok_or_else(|| format!("unsupported dialect `{}` ({SUPPORTED})", c.dialect))?;
    let username = c.username.filter(|u| !u.is_empty());
    let password = c.password.filter(|p| !p.is_empty());
    let host = c.host.filter(|h| !h.is_empty());
    if password.is_some() && username.is_none() {
        return Err("a password is set but the user name is empty".to_owned());
    }
    let database = c.database.filter(|d| !d.is_empty());
    if backend == Backend::Sqlite {
        if username.is_some() || host.is_some() || c.port.is_some() {
            return Err("a SQLite URL has no user, host or port; valid forms are \
                        sqlite:// or sqlite:///:memory: (in memory), \
                        sqlite:///relative/file.db and sqlite:////absolute/file.db"
                .to_owned());
        }
        let target = sqlite_target(database.as_deref());
        return Ok(DbUrl {
            dialect: c.dialect,
            backend,
            username: None,
            password: None,
            host: None,
            port: None,
            database: database.filter(|_| target != SqliteTarget::Memory),
            sqlite: Some(target),
            query: c.query,
        });
    }
    if backend == Backend::MySql && host.as_deref().is_some_and(is_socket_dir) {
        return Err(
            "a MySQL/MariaDB host cannot be a directory; give the server's socket \
                    file as the query parameter `unix_socket` (url.query.unix_socket)"
                .to_owned(),
        );
    }
    Ok(DbUrl {
        dialect: c.dialect,
        backend,
        username,
        password,
        host: Some(host.unwrap_or_else(|| DEFAULT_HOST.to_owned())),
        port: c.port,
        database,
        sqlite: None,
        query: c.query,
    })
}

/// A host that starts with `/` is the directory of the server's unix socket,
/// as libpq (and so psycopg and core-lib) reads it.
pub(super) fn is_socket_dir(host: &str) -> bool {
    host.starts_with('/')
}

/// No name, an empty one, or `:memory:` is an in-memory database.
pub(super) fn sqlite_target(name: Option<&str>) -> SqliteTarget {
    match name {
        None | Some("" | ":memory:") => SqliteTarget::Memory,
        Some(path) => SqliteTarget::File(PathBuf::from(path)),
    }
}

impl FromStr for DbUrl {
    type Err = Error;

    /// Parses any SQLAlchemy URL: `sqlite://`, `sqlite:///rel.db`,
    /// `sqlite:////abs.db`, `postgresql+psycopg2://u:p%40ss@host:5432/db?sslmode=disable`,
    /// `mysql+pymysql://…`, `mariadb://…`, `postgresql://u@[::1]/db`.
    /// User, password and database are percent-decoded.
    ///
    /// # Errors
    ///
    /// [`Error::Url`] (with the password redacted) if the text is not a URL,
    /// the dialect is unsupported, the port is not a number, a password has
    /// no user name, or a SQLite URL names a host.
    fn from_str(text: &str) -> Result<Self, Error> {
        components(text.trim())
            .and_then(assemble)
            .map_err(|message| Error::Url {
                url: redact::mask_url_text(text),
                message,
            })
    }
}

/// Splits and decodes a URL string the way SQLAlchemy's `make_url` does.
fn components(text: &str) -> Result<Components, String> {
    let (dialect, rest) = text.split_once("://").ok_or_else(|| {
        "expected `dialect://…`, e.g. postgresql://user@host/db or sqlite:///file.db".to_owned()
    })?;
    if dialect.is_empty()
        || !dialect
            .chars()
            .all(|c| c.is_alphanumeric() || "+_".contains(c))
    {
        return Err(format!("`{dialect}` is not a dialect name ({SUPPORTED})"));
    }
    let (userinfo, rest) = split_userinfo(rest);
    let (location, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (hostport, database) = match location.split_once('/') {
        Some((hostport, database)) => (hostport, Some(database)),
        None => (location, None),
    };
    let (host, port) = split_host_port(hostport)?;
    let (username, password) = match userinfo {
        Some(info) => match info.split_once(':') {
            Some((user, password)) => (Some(user), Some(password)),
            None => (Some(info), None),
        },
        None => (None, None),
    };
    let mut query: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    Ok(Components {
        dialect: dialect.to_owned(),
        username: username.map(|u| decode(u, "user name")).transpose()?,
        password: password.map(|p| decode(p, "password")).transpose()?,
        host: socket_host(host, &mut query)?,
        port,
        database: database.map(|d| decode(d, "database")).transpose()?,
        query,
    })
}

/// The host, with a unix-socket directory written either way libpq reads
/// it: percent-encoded in place of the host (`postgresql://%2Fvar%2Frun%2Fpostgresql/db`)
/// or, with no host, as the one `host` query parameter
/// (`postgresql://user@/db?host=/var/run/postgresql`, SQLAlchemy's form),
/// which then leaves the query.
fn socket_host(
    host: Option<&str>,
    query: &mut Vec<(String, String)>,
) -> Result<Option<String>, String> {
    if let Some(host) = host {
        let decoded = decode(host, "host")?;
        return Ok(Some(if is_socket_dir(&decoded) {
            decoded
        } else {
            host.to_owned()
        }));
    }
    let mut hosts = query.iter().filter(|(key, _)| key == "host");
    match (hosts.next(), hosts.next()) {
        (Some((_, dir)), None) if is_socket_dir(dir) => {
            let dir = dir.clone();
            query.retain(|(key, _)| key != "host");
            Ok(Some(dir))
        }
        _ => Ok(None),
    }
}

/// `user:password` and what follows the `@`. The user info ends at the last
/// `@` before the path, so an unencoded `@` in a password still works; a `/`
/// before the first `:` means there is no user info (`sqlite:///a@b.db`).
fn split_userinfo(rest: &str) -> (Option<&str>, &str) {
    let Some(first_at) = rest.find('@') else {
        return (None, rest);
    };
    let user = rest[..first_at].split(':').next().unwrap_or_default();
    if user.contains('/') {
        return (None, rest);
    }
    let authority_end = rest[first_at..]
        .find(['/', '?'])
        .map_or(rest.len(), |i| first_at + i);
    let at = rest[..authority_end].rfind('@').unwrap_or(first_at);
    (Some(&rest[..at]), &rest[at + 1..])
}

/// `host:port`, `[::1]:port`, `host` or nothing.
fn split_host_port(hostport: &str) -> Result<(Option<&str>, Option<u16>), String> {
    let (host, port) = if let Some(bracketed) = hostport.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or_else(|| format!("unclosed `[` in the host `{hostport}`"))?;
        (host, after.strip_prefix(':'))
    } else {
        match hostport.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (hostport, None),
        }
    };
    let port = match port {
        None | Some("") => None,
        Some(port) => Some(
            port.parse::<u16>()
                .map_err(|_| format!("the port `{port}` is not a number from 0 to 65535"))?,
        ),
    };
    Ok(((!host.is_empty()).then_some(host), port))
}

fn decode(text: &str, what: &str) -> Result<String, String> {
    percent_decode_str(text)
        .decode_utf8()
        .map(|decoded| decoded.into_owned())
        .map_err(|_| format!("the {what} is not valid UTF-8 once percent-decoded"))
}
