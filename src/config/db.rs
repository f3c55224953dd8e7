//! The typed `db` section: what one database needs — URL, pool sizing and
//! timeouts, logging, SQLite tuning — with core-lib's key names.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

use super::pooler::Pooler;
use super::transaction::{Isolation, RetryConfig};
use super::{MigrationsConfig, RoutingConfig, defaults, lenient};
use crate::credentials::{PasswordProvider, SharedProvider};
use crate::error::{Error, Result};
use crate::url::{Backend, DbUrl, UrlConfig};

/// One database's section (core-lib's `db:` block).
///
/// Build it from a file with [`Config::at`](crate::Config::at) or in code with
/// [`DbConfig::new`]. `Debug` never shows the password.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DbConfig {
    /// Log every statement with its duration through `tracing` (default `false`).
    #[serde(default = "defaults::log_queries", deserialize_with = "lenient::flag")]
    pub log_queries: bool,
    /// Create the database (and the registered tables) if missing (default `true`).
    #[serde(default = "defaults::create_db", deserialize_with = "lenient::flag")]
    pub create_db: bool,
    /// Pool sizing and timeouts.
    #[serde(default)]
    pub session: SessionConfig,
    /// Where the database is: one string or its parts. With `replicas`, the
    /// primary: it takes every session that may write.
    pub url: UrlConfig,
    /// Read replicas of `url` (default none): each a URL string, or the parts
    /// that differ from `url` (`{ host: replica2 }`). See
    /// [`DbConfig::replica_urls`].
    #[serde(default)]
    pub replicas: Vec<UrlConfig>,
    /// How read sessions use the replicas.
    #[serde(default)]
    pub routing: RoutingConfig,
    /// SQLite connection settings; ignored for other backends.
    #[serde(default)]
    pub sqlite: SqliteOptions,
    /// Schema migrations (default none: `create_db` creates the registered tables).
    #[serde(default)]
    pub migrations: Option<MigrationsConfig>,
    /// Set in code only: see [`DbConfig::password_provider`].
    #[serde(skip)]
    pub(crate) password_provider: Option<SharedProvider>,
}

/// Pool sizing and timeouts (core-lib's `session:` block plus extensions).
///
/// Durations are written in seconds (`30`, `0.5`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    /// Connections kept open (default 5).
    #[serde(deserialize_with = "lenient::connections")]
    pub pool_size: u32,
    /// Extra connections allowed under load, closed again when idle (default 10).
    #[serde(deserialize_with = "lenient::connections")]
    pub max_overflow: u32,
    /// How long a checkout waits for a free connection (default 30 s).
    #[serde(deserialize_with = "lenient::seconds")]
    pub pool_timeout: Duration,
    /// Connections older than this are replaced at checkout; `-1` in the file
    /// means never (`None`). Default 3600 s. Each connection's own lifetime
    /// is drawn once, when it opens, between half of this and all of it,
    /// so that connections opened together are not replaced together.
    #[serde(deserialize_with = "lenient::recycle_seconds")]
    pub pool_recycle: Option<Duration>,
    /// Test each connection at checkout and replace dead ones (default `false`).
    #[serde(deserialize_with = "lenient::flag")]
    pub pool_pre_ping: bool,
    /// Test at checkout only connections that sat idle at least this long
    /// (default none): a busy pool pays nothing, one left idle past a
    /// firewall's or server's idle cut-off finds out before the session.
    #[serde(deserialize_with = "lenient::optional_seconds")]
    pub pre_ping_idle: Option<Duration>,
    /// How long opening one connection may take (default 10 s).
    #[serde(deserialize_with = "lenient::seconds")]
    pub connect_timeout: Duration,
    /// Idle connections beyond `pool_size` are closed after this (default 600 s).
    #[serde(deserialize_with = "lenient::optional_seconds")]
    pub idle_timeout: Option<Duration>,
    /// Server-side limit per statement (default none).
    #[serde(deserialize_with = "lenient::optional_seconds")]
    pub statement_timeout: Option<Duration>,
    /// Statements slower than this are logged at WARN (default 1 s).
    #[serde(deserialize_with = "lenient::optional_seconds")]
    pub slow_query: Option<Duration>,
    /// A session held longer than this is reported with where it was opened (default none).
    #[serde(deserialize_with = "lenient::optional_seconds")]
    pub leak_warning: Option<Duration>,
    /// How long `close()` waits for sessions in flight before closing anyway (default 30 s).
    #[serde(deserialize_with = "lenient::seconds")]
    pub close_timeout: Duration,
    /// The isolation level every session asks for; `None` (the default)
    /// keeps the server's own (PostgreSQL: read committed, MariaDB:
    /// repeatable read; SQLite is always serializable).
    pub isolation: Option<Isolation>,
    /// How [`transaction`](crate::SqlConnectionRegistry::transaction) retries
    /// transient conflicts.
    pub retry: RetryConfig,
    /// The connection pooler between sqlreg and a PostgreSQL server
    /// (`none`, `session`, `transaction`; default `none`).
    pub pooler: Pooler,
}

/// SQLite settings applied to every connection (an extension beyond core-lib).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SqliteOptions {
    /// `PRAGMA journal_mode`: delete, truncate, persist, memory, wal or off (default wal).
    #[serde(deserialize_with = "lenient::keyword")]
    pub journal_mode: String,
    /// How long a connection waits for a lock before "database is locked" (default 5 s).
    #[serde(deserialize_with = "lenient::seconds")]
    pub busy_timeout: Duration,
    /// `PRAGMA synchronous`: off, normal, full or extra (default normal).
    #[serde(deserialize_with = "lenient::keyword")]
    pub synchronous: String,
    /// `PRAGMA foreign_keys` (default `true`).
    #[serde(deserialize_with = "lenient::flag")]
    pub foreign_keys: bool,
}

const JOURNAL_MODES: [&str; 6] = ["delete", "truncate", "persist", "memory", "wal", "off"];
const SYNCHRONOUS_MODES: [&str; 4] = ["off", "normal", "full", "extra"];

impl DbConfig {
    /// Sets `log_queries`.
    #[must_use]
    pub fn log_queries(mut self, on: bool) -> Self {
        self.log_queries = on;
        self
    }

    /// Sets `create_db`.
    #[must_use]
    pub fn create_db(mut self, on: bool) -> Self {
        self.create_db = on;
        self
    }

    /// Replaces the `session` block.
    #[must_use]
    pub fn session(mut self, session: SessionConfig) -> Self {
        self.session = session;
        self
    }

    /// Replaces the URL.
    #[must_use]
    pub fn url(mut self, url: impl Into<UrlConfig>) -> Self {
        self.url = url.into();
        self
    }

    /// Adds a read replica.
    #[must_use]
    pub fn replica(mut self, replica: impl Into<UrlConfig>) -> Self {
        self.replicas.push(replica.into());
        self
    }

    /// Replaces the `routing` block.
    #[must_use]
    pub fn routing(mut self, routing: RoutingConfig) -> Self {
        self.routing = routing;
        self
    }

    /// The replicas' URLs, each resolved against the primary's `url`, in the
    /// order written.
    ///
    /// # Errors
    ///
    /// [`Error::Url`] if `url` cannot be built; [`Error::Config`] at
    /// `replicas[i]` for the first replica whose URL cannot be built, that is
    /// another kind of server than `url`, or that is the server of a
    /// single-host `url`.
    pub fn replica_urls(&self) -> Result<Vec<DbUrl>> {
        let primary = self.url.to_db_url()?;
        if primary.backend() == Backend::Sqlite && !self.replicas.is_empty() {
            return Err(Error::config(
                "replicas",
                "SQLite has no replicas: a SQLite file is read and written in one place",
            ));
        }
        self.replicas
            .iter()
            .enumerate()
            .map(|(index, replica)| {
                let path = format!("replicas[{index}]");
                let url = replica.to_db_url_over(&primary).map_err(|err| match err {
                    Error::Url { url, message } => {
                        Error::config(&path, format!("invalid database url `{url}`: {message}"))
                    }
                    other => other,
                })?;
                if url.backend() != primary.backend() {
                    return Err(Error::config(
                        path,
                        format!(
                            "a replica is the same kind of server as `url` ({}), found {}",
                            primary.backend(),
                            url.backend()
                        ),
                    ));
                }
                // The hosts of a multi-host `url` take turns being the
                // primary: listing them as replicas lets their standbys
                // serve reads. A single-host `url` is the primary.
                if !primary.is_multi_host()
                    && (url.host(), url.port()) == (primary.host(), primary.port())
                {
                    return Err(Error::config(
                        path,
                        format!(
                            "`{url}` is the server of `url` itself; a replica names \
                             its own host or port"
                        ),
                    ));
                }
                Ok(url)
            })
            .collect()
    }

    /// Replaces the `sqlite` block.
    #[must_use]
    pub fn sqlite(mut self, sqlite: SqliteOptions) -> Self {
        self.sqlite = sqlite;
        self
    }

    /// Sets the `migrations` block.
    #[must_use]
    pub fn migrations(mut self, migrations: MigrationsConfig) -> Self {
        self.migrations = Some(migrations);
        self
    }

    /// Sets the [`PasswordProvider`] that gives the password of new
    /// connections, instead of `url.password` or `url.password_file` (see
    /// the README's "Rotating credentials in code"). It serves `url`'s
    /// hosts and the replicas that name no password of their own; SQLite
    /// ignores it. [`RegistryBuilder::password_provider`](crate::RegistryBuilder::password_provider)
    /// does the same. Clones of this config share its cached answers.
    #[must_use]
    pub fn password_provider(mut self, provider: impl PasswordProvider) -> Self {
        self.password_provider = Some(SharedProvider::new(provider));
        self
    }

    /// The registered password provider, if any.
    pub(crate) fn provider(&self) -> Option<&SharedProvider> {
        self.password_provider.as_ref()
    }

    /// Checks the rules types cannot express, one message per rule, each
    /// naming its key relative to the section (`session.pool_size`), and that
    /// the URL can be built.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for the first broken rule, [`Error::Url`] if the URL
    /// cannot be built.
    pub fn validate(&self) -> Result<()> {
        let session = &self.session;
        let rule = |ok: bool, path: &str, message: String| {
            if ok {
                Ok(())
            } else {
                Err(Error::config(path, message))
            }
        };
        rule(
            session.pool_size >= 1,
            "session.pool_size",
            format!("must be at least 1, found {}", session.pool_size),
        )?;
        rule(
            session
                .pool_size
                .checked_add(session.max_overflow)
                .is_some(),
            "session.max_overflow",
            format!(
                "pool_size + max_overflow must fit in {} connections",
                u32::MAX
            ),
        )?;
        for (path, value) in [
            ("session.pool_timeout", Some(session.pool_timeout)),
            ("session.connect_timeout", Some(session.connect_timeout)),
            ("session.pool_recycle", session.pool_recycle),
            ("session.idle_timeout", session.idle_timeout),
            ("session.statement_timeout", session.statement_timeout),
        ] {
            rule(
                value != Some(Duration::ZERO),
                path,
                "must be greater than 0 seconds (write null, or -1 for pool_recycle, to turn it off)"
                    .to_owned(),
            )?;
        }
        rule(
            session.retry.attempts >= 1,
            "session.retry.attempts",
            format!(
                "must be at least 1 (1 never retries), found {}",
                session.retry.attempts
            ),
        )?;
        rule(
            session.retry.backoff.min <= session.retry.backoff.max,
            "session.retry.backoff",
            format!(
                "min ({:?}) must not be greater than max ({:?})",
                session.retry.backoff.min, session.retry.backoff.max
            ),
        )?;
        one_of(
            &self.sqlite.journal_mode,
            "sqlite.journal_mode",
            &JOURNAL_MODES,
        )?;
        one_of(
            &self.sqlite.synchronous,
            "sqlite.synchronous",
            &SYNCHRONOUS_MODES,
        )?;
        let url = self.url.to_db_url()?;
        if self.password_provider.is_some() && url.backend() != Backend::Sqlite {
            let given = if url.password_file().is_some() {
                Some("url.password_file")
            } else if url.password().is_some() {
                Some("url.password")
            } else {
                None
            };
            if let Some(path) = given {
                return Err(Error::config(
                    path,
                    format!(
                        "`{path}` and a password provider are both set; give one \
                         (the provider is registered in code)"
                    ),
                ));
            }
        }
        if let Some(direct) = self.migrations.as_ref().and_then(|m| m.direct_url.as_ref()) {
            direct.to_db_url()?;
        }
        self.replica_urls().map(drop)
    }
}

fn one_of(value: &str, path: &str, allowed: &[&str]) -> Result<()> {
    if allowed.contains(&value.to_ascii_lowercase().as_str()) {
        Ok(())
    } else {
        Err(Error::config(
            path,
            format!("must be one of {}, found `{value}`", allowed.join(", ")),
        ))
    }
}

impl fmt::Debug for DbConfig {
    /// Field by field; the URL's own `Debug` hides the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbConfig")
            .field("log_queries", &self.log_queries)
            .field("create_db", &self.create_db)
            .field("session", &self.session)
            .field("url", &self.url)
            .field("replicas", &self.replicas)
            .field("routing", &self.routing)
            .field("sqlite", &self.sqlite)
            .field("migrations", &self.migrations)
            .field("password_provider", &self.password_provider)
            .finish()
    }
}
