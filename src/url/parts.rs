//! core-lib's URL parts (`protocol`, `username`, `password`, `host`, `port`,
//! `path`, `file`, `query`) and how they become a [`DbUrl`], as core-lib's
//! `build_url` does.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};

use super::hosts::{self, Host};
use super::parse::{Components, assemble};
use super::{Backend, DbUrl};
use crate::error::{Error, Result};
use crate::redact;

/// core-lib's URL parts: the `url:` key as a mapping, and each mapping in
/// `replicas:`, where every part not given is the primary's. `Debug` shows
/// the password (and secret query parameters such as `token`) as `***`.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UrlParts {
    /// The SQLAlchemy dialect, e.g. `sqlite`, `postgresql+psycopg2`, `mysql`.
    /// Required in `url`; a replica's is the primary's when absent.
    #[serde(default)]
    pub protocol: String,
    /// User name (plain text; encoded when the URL is built).
    #[serde(default)]
    pub username: Option<String>,
    /// Password (plain text; encoded when the URL is built). Needs `username`.
    #[serde(default)]
    pub password: Option<String>,
    /// A file holding the password (a Kubernetes secret, a Vault agent's
    /// output, an IAM token a sidecar refreshes), read again for every new
    /// connection so a rotated password is used without a restart; one
    /// trailing newline is ignored. Instead of `password`.
    #[serde(default)]
    pub password_file: Option<std::path::PathBuf>,
    /// Server host name or IP address (IPv6 as written, or bracketed to give
    /// it a port: `[::1]:5433`); `localhost` if absent. A directory
    /// (`/var/run/postgresql`) is where a PostgreSQL server's unix socket
    /// is, as libpq reads it. Several hosts are separated by commas, each
    /// with its own port or `port`'s: `h1:5432,h2:5433`.
    #[serde(default)]
    pub host: Option<String>,
    /// Server port, for every host that names none; the backend's default
    /// if absent.
    #[serde(default, deserialize_with = "lenient_port")]
    pub port: Option<u16>,
    /// Server: the database name when `file` is absent. SQLite: the directory
    /// of `file`, or the file itself when `file` is absent.
    #[serde(default)]
    pub path: Option<String>,
    /// Server: the database name. SQLite: the file (`:memory:` for memory).
    #[serde(default)]
    pub file: Option<String>,
    /// Query parameters passed to the driver; numbers and booleans become text.
    #[serde(default, deserialize_with = "lenient_query")]
    pub query: BTreeMap<String, String>,
}

impl UrlParts {
    /// Parts with this dialect and nothing else.
    #[must_use]
    pub fn new(protocol: impl Into<String>) -> Self {
        Self {
            protocol: protocol.into(),
            ..Self::default()
        }
    }

    /// Sets the user name and password.
    #[must_use]
    pub fn credentials(mut self, username: impl Into<String>, password: impl Into<String>) -> Self {
        self.username = Some(username.into());
        self.password = Some(password.into());
        self
    }

    /// Sets the host.
    #[must_use]
    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.host = Some(host.into());
        self
    }

    /// Sets the port.
    #[must_use]
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// Sets `file`: the database name, or the SQLite file.
    #[must_use]
    pub fn file(mut self, file: impl Into<String>) -> Self {
        self.file = Some(file.into());
        self
    }

    /// Adds a query parameter.
    #[must_use]
    pub fn query(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.query.insert(key.into(), value.into());
        self
    }
}

impl DbUrl {
    /// Builds the URL from core-lib's parts, as its `build_url` does: for a
    /// server the database is `file`, else `path` (without a leading `/`);
    /// for SQLite `path` + `file` are joined, either alone is the file, and
    /// neither (or `:memory:`) is an in-memory database. User, host and port
    /// are ignored for SQLite, with a warning.
    ///
    /// # Errors
    ///
    /// [`Error::Url`] if the dialect is unsupported, `password` is set
    /// without `username`, an entry of a `host` list is empty or has a port
    /// that is not a number, a PostgreSQL `query.port` has neither one port
    /// nor one per host, or `target_session_attrs` /
    /// `load_balance_hosts` in `query` has a value libpq does not know.
    pub fn from_parts(parts: &UrlParts) -> Result<DbUrl> {
        let fail = |message: String| Error::Url {
            url: redact::mask_url_text(&parts.sketch()),
            message,
        };
        let has_user = parts.username.as_deref().is_some_and(|u| !u.is_empty());
        if parts.password.is_some() && parts.password_file.is_some() {
            return Err(fail(
                "`url.password` and `url.password_file` are both set; give one".to_owned(),
            ));
        }
        if parts.password.as_deref().is_some_and(|p| !p.is_empty()) && !has_user {
            return Err(fail(
                "`url.password` is set but `url.username` is empty".to_owned(),
            ));
        }
        if parts.protocol.trim().is_empty() {
            return Err(fail(
                "`url.protocol` is missing: name the dialect (`sqlite`, `postgresql`, `mysql`, …)"
                    .to_owned(),
            ));
        }
        let backend = Backend::from_dialect(&parts.protocol);
        let sqlite = backend == Some(Backend::Sqlite);
        if sqlite && (has_user || parts.host.is_some() || parts.port.is_some()) {
            tracing::warn!(
                protocol = %parts.protocol,
                "url.username, url.password, url.host and url.port are ignored for SQLite"
            );
        }
        let database = if sqlite {
            match (parts.path.as_deref(), parts.file.as_deref()) {
                (Some(dir), Some(file)) if file != ":memory:" => Some(
                    std::path::Path::new(dir)
                        .join(file)
                        .to_string_lossy()
                        .into_owned(),
                ),
                (_, Some(file)) => Some(file.to_owned()),
                (path, None) => path.map(str::to_owned),
            }
        } else {
            server_database(parts.file.as_deref(), parts.path.as_deref())
        };
        let server = |value: &Option<String>| value.clone().filter(|_| !sqlite);
        let hosts = match (sqlite, parts.host.as_deref()) {
            (true, _) => Vec::new(),
            (false, Some(host)) => hosts::from_plain(host, parts.port).map_err(fail)?,
            (false, None) => vec![Host {
                name: String::new(),
                port: parts.port,
            }],
        };
        assemble(Components {
            dialect: parts.protocol.trim().to_owned(),
            username: server(&parts.username),
            password: server(&parts.password),
            hosts,
            database,
            query: parts.query.clone().into_iter().collect(),
        })
        .map(|url| url.with_password_file(parts.password_file.clone().filter(|_| !sqlite)))
        .map_err(fail)
    }
}

impl UrlParts {
    /// A replica's URL: these parts laid over `primary`'s, every part not
    /// given kept; each query parameter given replaces the primary's of
    /// that name (`sslmode` usually holds for every host). A replica that
    /// names neither `password` nor `password_file` keeps the primary's.
    pub(super) fn over(&self, primary: &DbUrl) -> Result<DbUrl> {
        let mut query = primary.query.clone();
        for (key, value) in &self.query {
            match query.iter_mut().find(|(name, _)| name == key) {
                Some(kept) => kept.1.clone_from(value),
                None => query.push((key.clone(), value.clone())),
            }
        }
        let given = |part: &Option<String>, kept: Option<&str>| {
            part.clone().or_else(|| kept.map(str::to_owned))
        };
        let database = server_database(self.file.as_deref(), self.path.as_deref())
            .or_else(|| primary.database.clone());
        let protocol = self.protocol.trim();
        let dialect = if protocol.is_empty() {
            primary.dialect.clone()
        } else {
            protocol.to_owned()
        };
        let own_secret = self.password.is_some() || self.password_file.is_some();
        let password = if own_secret {
            self.password.clone()
        } else {
            primary.password().map(str::to_owned)
        };
        let password_file = if own_secret {
            self.password_file.clone()
        } else {
            primary.password_file().map(Path::to_path_buf)
        };
        assemble(Components {
            dialect,
            username: given(&self.username, primary.username()),
            password,
            hosts: vec![Host {
                name: given(&self.host, primary.host())
                    .map(|h| h.trim_matches(['[', ']']).to_owned())
                    .unwrap_or_default(),
                port: self
                    .port
                    .or_else(|| primary.hosts.first().and_then(|h| h.port)),
            }],
            database,
            query,
        })
        .map(|url| url.with_password_file(password_file))
        .map_err(|message| Error::Url {
            url: redact::mask_url_text(&format!(
                "{}://{}{}",
                if protocol.is_empty() {
                    primary.dialect()
                } else {
                    protocol
                },
                self.host.as_deref().or(primary.host()).unwrap_or_default(),
                self.port
                    .or(primary.port())
                    .map(|p| format!(":{p}"))
                    .unwrap_or_default()
            )),
            message,
        })
    }
}

impl UrlParts {
    /// A rough `protocol://user:password@host:port/…` for error messages
    /// (redacted before use).
    fn sketch(&self) -> String {
        let user = self.username.as_deref().unwrap_or_default();
        let password = self.password.as_ref().map_or("", |_| ":***");
        let host = self.host.as_deref().unwrap_or_default();
        let port = self.port.map(|p| format!(":{p}")).unwrap_or_default();
        let path = [self.path.as_deref(), self.file.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join("/");
        let at = if user.is_empty() && password.is_empty() {
            ""
        } else {
            "@"
        };
        format!(
            "{}://{user}{password}{at}{host}{port}/{path}",
            self.protocol
        )
    }
}

impl fmt::Debug for UrlParts {
    /// Every field, the password and secret query parameters as `***`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let query = masked_query(&self.query);
        f.debug_struct("UrlParts")
            .field("protocol", &self.protocol)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| redact::MASK))
            .field("password_file", &self.password_file)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("path", &self.path)
            .field("file", &self.file)
            .field("query", &query)
            .finish()
    }
}

/// A server's database as core-lib's parts name it: `file`, else `path`
/// (without a leading `/`).
pub(super) fn server_database(file: Option<&str>, path: Option<&str>) -> Option<String> {
    file.or(path)
        .map(|name| name.trim_start_matches('/').to_owned())
}

/// Query parameters for `Debug`: secret ones (`password`, `token`, …) as `***`.
pub(super) fn masked_query(query: &BTreeMap<String, String>) -> BTreeMap<&str, &str> {
    query
        .iter()
        .map(|(key, value)| {
            let shown = if redact::is_secret_key(key) {
                redact::MASK
            } else {
                value.as_str()
            };
            (key.as_str(), shown)
        })
        .collect()
}

/// A port as a number or numeric string (from `${oc.env:..}`); `null` is absent.
pub(super) fn lenient_port<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u16>, D::Error> {
    match Scalar::deserialize(d)? {
        Scalar::Null => Ok(None),
        Scalar::Number(n) => n
            .as_u64()
            .and_then(|n| u16::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| de::Error::custom(format!("must be a port from 0 to 65535, found {n}"))),
        Scalar::Text(text) => text.trim().parse::<u16>().map(Some).map_err(|_| {
            de::Error::invalid_value(de::Unexpected::Str(&text), &"a port from 0 to 65535")
        }),
        Scalar::Bool(b) => Err(de::Error::invalid_type(
            de::Unexpected::Bool(b),
            &"a port from 0 to 65535",
        )),
    }
}

/// Query values as text, whatever scalar YAML made of them.
pub(super) fn lenient_query<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    let raw = Option::<BTreeMap<String, Scalar>>::deserialize(d)?.unwrap_or_default();
    Ok(raw
        .into_iter()
        .map(|(key, value)| {
            let text = match value {
                Scalar::Null => String::new(),
                Scalar::Bool(b) => b.to_string(),
                Scalar::Number(n) => n.to_string(),
                Scalar::Text(text) => text,
            };
            (key, text)
        })
        .collect())
}

/// One scalar value, kept as written.
#[derive(Deserialize)]
#[serde(untagged, expecting = "a string, number or boolean")]
enum Scalar {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    Text(String),
}
