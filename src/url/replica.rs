//! One item of a `replicas:` list: a whole URL string, or only the parts that
//! differ from the primary's `url` (`{ host: replica2 }`), the rest taken
//! from it — replicas usually differ from their primary by host alone.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::Deserializer;
use serde::{Deserialize, Serialize};

use super::DbUrl;
use super::hosts::Host;
use super::parse::{Components, assemble};
use super::parts::{masked_query, server_database};
use super::url_config::{debug_text, text_or_parts};
use crate::error::{Error, Result};
use crate::redact;

/// A replica's URL as written in `replicas:`.
///
/// `Debug` hides the password; `Serialize` writes it (for writing config
/// files back out).
#[derive(Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ReplicaUrl {
    /// A whole SQLAlchemy URL, as `url:` takes one.
    Text(String),
    /// The parts that differ from the primary's `url`.
    Parts(ReplicaParts),
}

/// The parts of a replica's URL that differ from the primary's; every part
/// not given is the primary's. `Debug` shows the password (and secret query
/// parameters) as `***`.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplicaParts {
    /// The dialect; it must name the same backend as the primary's.
    #[serde(default)]
    pub protocol: Option<String>,
    /// User name.
    #[serde(default)]
    pub username: Option<String>,
    /// Password.
    #[serde(default)]
    pub password: Option<String>,
    /// Host name, IP address, or (PostgreSQL) unix-socket directory.
    #[serde(default)]
    pub host: Option<String>,
    /// Port.
    #[serde(default, deserialize_with = "super::parts::lenient_port")]
    pub port: Option<u16>,
    /// The database name when `file` is absent.
    #[serde(default)]
    pub path: Option<String>,
    /// The database name.
    #[serde(default)]
    pub file: Option<String>,
    /// Query parameters; each one given replaces the primary's of that name,
    /// the others are kept (`sslmode` usually holds for every host).
    #[serde(default, deserialize_with = "super::parts::lenient_query")]
    pub query: BTreeMap<String, String>,
}

impl ReplicaParts {
    /// Parts with only this host.
    #[must_use]
    pub fn host(host: impl Into<String>) -> Self {
        Self {
            host: Some(host.into()),
            ..Self::default()
        }
    }

    /// Sets the port.
    #[must_use]
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }
}

impl ReplicaUrl {
    /// The replica's URL: the string parsed, or the parts laid over
    /// `primary`.
    ///
    /// # Errors
    ///
    /// [`Error::Url`] if the string does not parse or the parts do not build
    /// (an unsupported dialect, a password without a user name).
    pub fn to_db_url(&self, primary: &DbUrl) -> Result<DbUrl> {
        match self {
            Self::Text(text) => text.parse(),
            Self::Parts(parts) => parts.over(primary),
        }
    }
}

impl ReplicaParts {
    fn over(&self, primary: &DbUrl) -> Result<DbUrl> {
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
        let dialect = self
            .protocol
            .as_deref()
            .map_or_else(|| primary.dialect.clone(), |p| p.trim().to_owned());
        assemble(Components {
            dialect,
            username: given(&self.username, primary.username()),
            password: given(&self.password, primary.password()),
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
        .map_err(|message| self.fail(primary, message))
    }

    fn fail(&self, primary: &DbUrl, message: String) -> Error {
        let host = self.host.as_deref().or(primary.host()).unwrap_or_default();
        let port = self.port.or(primary.port()).map(|p| format!(":{p}"));
        Error::Url {
            url: redact::mask_url_text(&format!(
                "{}://{host}{}",
                self.protocol.as_deref().unwrap_or(primary.dialect()),
                port.unwrap_or_default()
            )),
            message,
        }
    }
}

impl From<&str> for ReplicaUrl {
    fn from(text: &str) -> Self {
        Self::Text(text.to_owned())
    }
}

impl From<ReplicaParts> for ReplicaUrl {
    fn from(parts: ReplicaParts) -> Self {
        Self::Parts(parts)
    }
}

impl<'de> Deserialize<'de> for ReplicaUrl {
    /// A string, or a mapping read as [`ReplicaParts`] so errors inside it
    /// keep their key path (`replicas[1].hots`).
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        text_or_parts(
            d,
            "a URL string or a mapping of the parts that differ from `url` (`host`, `port`, …)",
            Self::Text,
            Self::Parts,
        )
    }
}

impl fmt::Debug for ReplicaUrl {
    /// A string is shown redacted; parts as [`ReplicaParts`]' `Debug`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Text(text) => debug_text(text, f),
            Self::Parts(parts) => f.debug_tuple("Parts").field(parts).finish(),
        }
    }
}

impl fmt::Debug for ReplicaParts {
    /// Every field given, the password and secret query parameters as `***`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let query = masked_query(&self.query);
        f.debug_struct("ReplicaParts")
            .field("protocol", &self.protocol)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| redact::MASK))
            .field("host", &self.host)
            .field("port", &self.port)
            .field("path", &self.path)
            .field("file", &self.file)
            .field("query", &query)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::{ReplicaParts, ReplicaUrl};
    use crate::url::DbUrl;

    fn primary() -> DbUrl {
        "postgresql+psycopg2://app:s3cret@primary:5432/app?sslmode=require&application_name=svc"
            .parse()
            .unwrap()
    }

    #[test]
    fn parts_not_given_are_the_primarys() {
        let replica = ReplicaUrl::from(ReplicaParts::host("replica2"))
            .to_db_url(&primary())
            .unwrap();
        assert_eq!(replica.host(), Some("replica2"));
        assert_eq!(replica.port(), Some(5432));
        assert_eq!(replica.username(), Some("app"));
        assert_eq!(replica.password(), Some("s3cret"));
        assert_eq!(replica.database(), Some("app"));
        assert_eq!(replica.dialect(), "postgresql+psycopg2");
        assert_eq!(
            replica.query(),
            [
                ("sslmode".to_owned(), "require".to_owned()),
                ("application_name".to_owned(), "svc".to_owned())
            ]
        );
    }

    #[test]
    fn parts_given_replace_the_primarys_and_query_keys_merge() {
        let mut parts = ReplicaParts::host("[::1]").port(6432);
        parts.username = Some("reader".into());
        parts.file = Some("app_ro".into());
        parts.query.insert("sslmode".into(), "disable".into());
        let replica = ReplicaUrl::from(parts).to_db_url(&primary()).unwrap();
        assert_eq!(replica.host(), Some("::1"));
        assert_eq!(replica.port(), Some(6432));
        assert_eq!(replica.username(), Some("reader"));
        assert_eq!(replica.database(), Some("app_ro"));
        assert_eq!(replica.query()[0], ("sslmode".into(), "disable".into()));
        assert_eq!(replica.query().len(), 2);
    }

    #[test]
    fn a_string_stands_alone() {
        let replica = ReplicaUrl::from("postgresql://other@r1/x")
            .to_db_url(&primary())
            .unwrap();
        assert_eq!(replica.username(), Some("other"));
        assert_eq!(replica.password(), None);
        assert_eq!(replica.port(), Some(5432));
    }

    #[test]
    fn debug_hides_the_password() {
        let mut parts = ReplicaParts::host("r1");
        parts.password = Some("s3cret".into());
        let shown = format!(
            "{:?} {:?}",
            ReplicaUrl::from(parts),
            ReplicaUrl::from("postgresql://u:s3cret@r1/db")
        );
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("***"), "{shown}");
    }
}
