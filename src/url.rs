//! The database URL: one typed [`DbUrl`] whichever way it was written — a
//! SQLAlchemy URL string or core-lib's `url:` parts — that never shows its
//! password except through [`DbUrl::password`] and the crate-internal sqlx URL.

mod host_choice;
mod hosts;
mod parse;
mod parts;
mod sqlx_url;
mod url_config;

use std::fmt;
use std::path::{Path, PathBuf};

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

use self::host_choice::HostChoice;
pub use self::host_choice::TargetSessionAttrs;
use self::hosts::Host;
pub use self::parts::UrlParts;
pub use self::url_config::UrlConfig;
use crate::redact;

/// Everything but RFC 3986's unreserved characters is encoded in user names,
/// passwords and database names, so `@ : / # % ?` can never end a component.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A host that starts with `/` is the directory of the server's unix socket,
/// as libpq (and so psycopg and core-lib) reads it.
fn is_socket_dir(host: &str) -> bool {
    host.starts_with('/')
}

/// Percent-decoded text; `what` names it in the error.
fn decode(text: &str, what: &str) -> Result<String, String> {
    percent_decode_str(text)
        .decode_utf8()
        .map(|decoded| decoded.into_owned())
        .map_err(|_| format!("the {what} is not valid UTF-8 once percent-decoded"))
}

/// Host used when a server URL names none. SQLAlchemy leaves this to the
/// driver, and libpq and libmysqlclient then use the local machine.
const DEFAULT_HOST: &str = "localhost";

/// The kinds of database sqlreg can connect to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// SQLite, a file or in memory.
    Sqlite,
    /// PostgreSQL.
    Postgres,
    /// MySQL and MariaDB (one wire protocol).
    MySql,
}

impl Backend {
    /// The backend of a SQLAlchemy dialect name, with or without `+driver`
    /// (`postgresql+psycopg2`, `mysql+pymysql`, `mariadb`, `sqlite+aiosqlite`).
    #[must_use]
    pub fn from_dialect(dialect: &str) -> Option<Self> {
        let name = dialect.split_once('+').map_or(dialect, |(name, _)| name);
        match name.to_ascii_lowercase().as_str() {
            "sqlite" => Some(Self::Sqlite),
            "postgresql" | "postgres" => Some(Self::Postgres),
            "mysql" | "mariadb" => Some(Self::MySql),
            _ => None,
        }
    }

    /// The port servers of this kind listen on unless told otherwise.
    #[must_use]
    pub fn default_port(self) -> Option<u16> {
        match self {
            Self::Sqlite => None,
            Self::Postgres => Some(5432),
            Self::MySql => Some(3306),
        }
    }
}

/// For error messages listing what [`Backend::from_dialect`] accepts.
const SUPPORTED: &str = "supported: sqlite, postgresql (postgres), mysql, mariadb, \
                         each with an optional +driver such as postgresql+psycopg2";

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgresql",
            Self::MySql => "mysql",
        })
    }
}

/// Where a SQLite database lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqliteTarget {
    /// A database that exists only while the registry is open.
    Memory,
    /// A file; a relative path is relative to the working directory.
    File(PathBuf),
}

/// A parsed database URL.
///
/// A server URL may list several hosts, as libpq and MySQL write them
/// (`postgresql://app@h1:5432,h2:5433/app?target_session_attrs=read-write`)
/// or as SQLAlchemy does (`postgresql://app@/app?host=h1:5432&host=h2:5433`);
/// [`DbUrl::host`] and [`DbUrl::port`] are the first one's, and
/// [`DbUrl::hosts`] gives one single-host URL per host.
///
/// `Display` and `Debug` show [`DbUrl::redacted`]; only
/// [`DbUrl::password`] gives the secret back.
#[derive(Clone, PartialEq, Eq)]
pub struct DbUrl {
    dialect: String,
    backend: Backend,
    username: Option<String>,
    password: Option<String>,
    /// At least one for a server, in the order written; none for SQLite.
    hosts: Vec<Host>,
    choice: HostChoice,
    database: Option<String>,
    sqlite: Option<SqliteTarget>,
    /// Without `host`, `target_session_attrs` and `load_balance_hosts`,
    /// which the fields above hold.
    query: Vec<(String, String)>,
    /// Where the password is read from for each new connection, if not
    /// given in `password`.
    password_file: Option<PathBuf>,
}

impl DbUrl {
    /// The file the password is read from for each new connection
    /// (`url.password_file`), if it is given that way.
    #[must_use]
    pub fn password_file(&self) -> Option<&Path> {
        self.password_file.as_deref()
    }

    /// The password in `password_file` now, one trailing newline removed;
    /// `None` when the URL has no password file.
    ///
    /// # Errors
    ///
    /// [`Error::Connect`](crate::Error::Connect) naming the file (never its
    /// content) when it cannot be read.
    pub fn read_password_file(&self) -> crate::Result<Option<String>> {
        let Some(path) = &self.password_file else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(path).map_err(|err| crate::Error::Connect {
            url: self.redacted(),
            reason: crate::ConnectFailure::PasswordFile,
            detail: format!("cannot read url.password_file `{}`: {err}", path.display()),
        })?;
        let password = text.strip_suffix('\n').unwrap_or(&text);
        Ok(Some(
            password.strip_suffix('\r').unwrap_or(password).to_owned(),
        ))
    }

    pub(crate) fn with_password_file(mut self, path: Option<PathBuf>) -> Self {
        self.password_file = path;
        self
    }

    /// The backend the dialect maps to.
    #[must_use]
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The dialect as written, e.g. `postgresql+psycopg2`.
    #[must_use]
    pub fn dialect(&self) -> &str {
        &self.dialect
    }

    /// The server's host (without IPv6 brackets) — the first one listed
    /// when there are several; `localhost` when the URL names none. `None`
    /// for SQLite. A host that starts with `/` is the directory of a
    /// PostgreSQL server's unix socket, as libpq reads it: sqlreg connects
    /// to `<dir>/.s.PGSQL.<port>`.
    #[must_use]
    pub fn host(&self) -> Option<&str> {
        self.hosts.first().map(|host| host.name.as_str())
    }

    /// The port of the first host, explicit or the backend's default.
    /// `None` for SQLite.
    #[must_use]
    pub fn port(&self) -> Option<u16> {
        let first = self.hosts.first()?;
        first.port.or_else(|| self.backend.default_port())
    }

    /// Whether the URL lists more than one host.
    #[must_use]
    pub fn is_multi_host(&self) -> bool {
        self.hosts.len() > 1
    }

    /// One URL per listed host, in the order written, each with that host
    /// alone and without `target_session_attrs` and `load_balance_hosts`
    /// (they say how to choose among the hosts, which the caller does):
    /// the URLs to connect with. A single-host URL, and a SQLite URL, gives
    /// itself without those two parameters.
    #[must_use]
    pub fn hosts(&self) -> Vec<DbUrl> {
        let single = |hosts: Vec<Host>| DbUrl {
            hosts,
            choice: HostChoice::default(),
            ..self.clone()
        };
        if self.hosts.is_empty() {
            return vec![single(Vec::new())];
        }
        self.hosts
            .iter()
            .map(|host| single(vec![host.clone()]))
            .collect()
    }

    /// The kind of server a connection wants (libpq's
    /// `target_session_attrs` query parameter); `None` when not given,
    /// which libpq reads as [`TargetSessionAttrs::Any`].
    #[must_use]
    pub fn target_session_attrs(&self) -> Option<TargetSessionAttrs> {
        self.choice.target
    }

    /// Whether the hosts are tried in a random order rather than as written
    /// (libpq's `load_balance_hosts=random`; `disable`, the default, is
    /// `false`).
    #[must_use]
    pub fn load_balance_hosts(&self) -> bool {
        self.choice.random
    }

    /// The user name, decoded.
    #[must_use]
    pub fn username(&self) -> Option<&str> {
        self.username.as_deref()
    }

    /// The password, decoded: the only way to read the secret.
    #[must_use]
    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// The database name for a server; the file path for a SQLite file;
    /// `None` for in-memory SQLite or a server URL without a database.
    #[must_use]
    pub fn database(&self) -> Option<&str> {
        self.database.as_deref()
    }

    /// The query parameters, in the order written, for the driver: without
    /// `target_session_attrs` and `load_balance_hosts` (see
    /// [`DbUrl::target_session_attrs`], [`DbUrl::load_balance_hosts`]) and
    /// without the `host` parameters that named the hosts.
    #[must_use]
    pub fn query(&self) -> &[(String, String)] {
        &self.query
    }

    /// Where a SQLite database lives; `None` for server backends.
    #[must_use]
    pub fn sqlite_target(&self) -> Option<&SqliteTarget> {
        self.sqlite.as_ref()
    }

    /// The same server with another database, e.g. a maintenance database to
    /// run `CREATE DATABASE` from (`None`: the server's default). For SQLite,
    /// the name is the file (`None`: in memory).
    #[must_use]
    pub fn with_database(&self, name: Option<&str>) -> DbUrl {
        let mut url = self.clone();
        url.database = name.map(str::to_owned);
        if url.backend == Backend::Sqlite {
            url.sqlite = Some(parse::sqlite_target(name));
        }
        url
    }

    /// The URL, every host in it, with the password, and query parameters
    /// such as `password=` or `token=`, replaced by `***`.
    #[must_use]
    pub fn redacted(&self) -> String {
        let password = self.password.as_ref().map(|_| redact::MASK.to_owned());
        let query: Vec<(String, String)> = self
            .query
            .iter()
            .map(|(key, value)| {
                let shown = if redact::is_secret_key(key) {
                    redact::MASK
                } else {
                    value
                };
                (key.clone(), shown.to_owned())
            })
            .chain(self.choice.params())
            .collect();
        self.render(&self.dialect, password, &self.hosts, &query)
    }

    /// The URL with this scheme, these hosts and this query; the password
    /// (already encoded) is given by the caller, so only `to_sqlx_url` puts
    /// the real one in.
    fn render(
        &self,
        scheme: &str,
        password: Option<String>,
        hosts: &[Host],
        query: &[(String, String)],
    ) -> String {
        let mut out = format!("{scheme}://");
        if let Some(target) = &self.sqlite {
            if let SqliteTarget::File(path) = target {
                out.push('/');
                out.push_str(&path.to_string_lossy());
            }
        } else {
            if let Some(user) = &self.username {
                out.extend(utf8_percent_encode(user, COMPONENT));
                if let Some(password) = password {
                    out.push(':');
                    out.push_str(&password);
                }
                out.push('@');
            }
            hosts::render(hosts, &mut out);
            if let Some(database) = &self.database {
                out.push('/');
                out.extend(utf8_percent_encode(database, COMPONENT));
            }
        }
        if !query.is_empty() {
            out.push('?');
            out.push_str(&encode_query(
                query.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            ));
        }
        out
    }
}

/// `a=1&b=x+y`, form-encoded as sqlx's `Url::query_pairs` decodes it.
fn encode_query<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

impl fmt::Display for DbUrl {
    /// The redacted URL.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Debug for DbUrl {
    /// The redacted URL.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DbUrl").field(&self.redacted()).finish()
    }
}
