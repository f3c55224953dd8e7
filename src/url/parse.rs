//! Reading SQLAlchemy URL strings
//! (`dialect[+driver]://[user[:password]@][host][:port][,host[:port]…][/database][?query]`)
//! and the one constructor every [`DbUrl`] goes through.

use std::path::PathBuf;
use std::str::FromStr;

use super::host_choice::HostChoice;
use super::hosts::{self, Host};
use super::{Backend, DEFAULT_HOST, DbUrl, SUPPORTED, SqliteTarget, decode, is_socket_dir};
use crate::error::Error;
use crate::redact;

/// The components of a URL before they are checked, already decoded.
#[derive(Default)]
pub(super) struct Components {
    pub(super) dialect: String,
    pub(super) username: Option<String>,
    pub(super) password: Option<String>,
    /// As written; a lone host may have an empty name (`:5433`), and no
    /// host at all is `localhost` too.
    pub(super) hosts: Vec<Host>,
    pub(super) database: Option<String>,
    pub(super) query: Vec<(String, String)>,
}

/// Checks the components and builds the URL; the message says what is wrong.
pub(super) fn assemble(c: Components) -> Result<DbUrl, String> {
    let backend = Backend::from_dialect(&c.dialect)
        .ok_or_else(|| format!("unsupported dialect `{}` ({SUPPORTED})", c.dialect))?;
    let username = c.username.filter(|u| !u.is_empty());
    let password = c.password.filter(|p| !p.is_empty());
    let mut hosts = c.hosts;
    if password.is_some() && username.is_none() {
        return Err("a password is set but the user name is empty".to_owned());
    }
    let database = c.database.filter(|d| !d.is_empty());
    if backend == Backend::Sqlite {
        let has_host = hosts.iter().any(|h| !h.name.is_empty() || h.port.is_some());
        if username.is_some() || has_host {
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
            hosts: Vec::new(),
            choice: HostChoice::default(),
            database: database.filter(|_| target != SqliteTarget::Memory),
            sqlite: Some(target),
            query: c.query,
            password_file: None,
        });
    }
    let mut query = c.query;
    // SQLAlchemy's form: with no host in the authority, `host=` parameters
    // name them (a socket directory, or several servers). For PostgreSQL
    // they are libpq's `host` keyword, which wins over the authority's, as
    // its `port` keyword does over the ports written with the hosts.
    let names_a_host = hosts.iter().any(|h| !h.name.is_empty());
    if !names_a_host || backend == Backend::Postgres {
        let default_port = hosts.first().and_then(|h| h.port);
        if let Some(listed) = hosts::from_query(&mut query, default_port)? {
            hosts = listed;
        }
    }
    if hosts.is_empty() {
        hosts.push(Host {
            name: String::new(),
            port: None,
        });
    }
    if backend == Backend::Postgres {
        hosts::take_port_param(&mut hosts, &mut query)?;
    }
    if backend == Backend::MySql && hosts.iter().any(|h| is_socket_dir(&h.name)) {
        return Err(
            "a MySQL/MariaDB host cannot be a directory; give the server's socket \
                    file as the query parameter `unix_socket` (url.query.unix_socket)"
                .to_owned(),
        );
    }
    for host in &mut hosts {
        if host.name.is_empty() {
            DEFAULT_HOST.clone_into(&mut host.name);
        }
    }
    let choice = HostChoice::take(&mut query)?;
    Ok(DbUrl {
        dialect: c.dialect,
        backend,
        username,
        password,
        hosts,
        choice,
        database,
        sqlite: None,
        query,
        password_file: None,
    })
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
    /// `mysql+pymysql://…`, `mariadb://…`, `postgresql://u@[::1]/db`, and
    /// several hosts: `postgresql://u@h1:5432,h2:5433/db`,
    /// `postgresql://u@/db?host=h1:5432&host=h2:5433`,
    /// `postgresql://u@/db?host=h1,h2&port=5432,5433` (for PostgreSQL the
    /// query's `host` and `port` are libpq's keywords and win over the
    /// authority). User, password and database are percent-decoded.
    ///
    /// # Errors
    ///
    /// [`Error::Url`] (with the password redacted) if the text is not a URL,
    /// the dialect is unsupported, a port is not a number, an entry of a
    /// host list is empty, a `port` list has neither one port nor one per
    /// host, a password has no user name, a SQLite URL names a host, or
    /// `target_session_attrs` / `load_balance_hosts` has a value libpq does
    /// not know.
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
    let hosts = hosts::from_authority(hostport)?;
    let (username, password) = match userinfo {
        Some(info) => match info.split_once(':') {
            Some((user, password)) => (Some(user), Some(password)),
            None => (Some(info), None),
        },
        None => (None, None),
    };
    let query = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    Ok(Components {
        dialect: dialect.to_owned(),
        username: username.map(|u| decode(u, "user name")).transpose()?,
        password: password.map(|p| decode(p, "password")).transpose()?,
        hosts,
        database: database.map(|d| decode(d, "database")).transpose()?,
        query,
    })
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
