//! The `url:` key (and each item of `replicas:`) as written in a config:
//! one SQLAlchemy string or core-lib's parts, read so that errors inside
//! the parts keep their key path.

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor, value::MapAccessDeserializer};
use serde::{Deserialize, Serialize};

use super::{DbUrl, UrlParts};
use crate::error::Result;
use crate::redact;

/// The `url:` key: a string or a mapping of parts.
///
/// `Debug` hides the password; `Serialize` writes it (it is for writing
/// config files back out).
#[derive(Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum UrlConfig {
    /// A SQLAlchemy URL such as `postgresql+psycopg2://user:pw@host/db`.
    Text(String),
    /// core-lib's parts.
    Parts(UrlParts),
}

impl UrlConfig {
    /// The typed URL.
    ///
    /// # Errors
    ///
    /// [`Error::Url`](crate::Error::Url) if the string does not parse or the
    /// parts do not build.
    pub fn to_db_url(&self) -> Result<DbUrl> {
        match self {
            Self::Text(text) => text.parse(),
            Self::Parts(parts) => DbUrl::from_parts(parts),
        }
    }

    /// A replica's URL: the string parsed, or the parts laid over
    /// `primary` (every part not given is the primary's).
    ///
    /// # Errors
    ///
    /// [`Error::Url`](crate::Error::Url) if the string does not parse or the
    /// parts do not build (an unsupported dialect, a password without a
    /// user name).
    pub fn to_db_url_over(&self, primary: &DbUrl) -> Result<DbUrl> {
        match self {
            Self::Text(text) => text.parse(),
            Self::Parts(parts) => parts.over(primary),
        }
    }
}

impl From<&str> for UrlConfig {
    fn from(text: &str) -> Self {
        Self::Text(text.to_owned())
    }
}

impl From<String> for UrlConfig {
    fn from(text: String) -> Self {
        Self::Text(text)
    }
}

impl From<UrlParts> for UrlConfig {
    fn from(parts: UrlParts) -> Self {
        Self::Parts(parts)
    }
}

impl<'de> Deserialize<'de> for UrlConfig {
    /// A string, or a mapping read as [`UrlParts`] so errors inside it keep
    /// their key path (`url.hots`).
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        text_or_parts(
            d,
            "a URL string or a mapping with `protocol`, `host`, `file`, …",
            Self::Text,
            Self::Parts,
        )
    }
}

impl fmt::Debug for UrlConfig {
    /// A string is shown redacted; parts as [`UrlParts`]' `Debug`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Text(text) => debug_text(text, f),
            Self::Parts(parts) => f.debug_tuple("Parts").field(parts).finish(),
        }
    }
}

/// Reads a URL string (`text`) or a mapping of parts (`parts`); the mapping
/// is read through `P`'s own `Deserialize`, so errors inside it keep their
/// key path. `expecting` says what else was found.
fn text_or_parts<'de, D, P, T>(
    d: D,
    expecting: &'static str,
    text: fn(String) -> T,
    parts: fn(P) -> T,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    P: Deserialize<'de>,
{
    struct TextOrParts<P, T> {
        expecting: &'static str,
        text: fn(String) -> T,
        parts: fn(P) -> T,
    }

    impl<'de, P: Deserialize<'de>, T> Visitor<'de> for TextOrParts<P, T> {
        type Value = T;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.expecting)
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
            Ok((self.text)(v.to_owned()))
        }

        fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<T, M::Error> {
            P::deserialize(MapAccessDeserializer::new(map)).map(self.parts)
        }
    }

    d.deserialize_any(TextOrParts {
        expecting,
        text,
        parts,
    })
}

/// `Text("…")` with the URL redacted (masked as text if it does not parse).
fn debug_text(text: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let shown = text
        .parse::<DbUrl>()
        .map_or_else(|_| redact::mask_url_text(text), |u| u.redacted());
    f.debug_tuple("Text").field(&shown).finish()
}

#[cfg(test)]
mod tests {
    use super::UrlConfig;
    use crate::url::{DbUrl, UrlParts};

    fn primary() -> DbUrl {
        "postgresql+psycopg2://app:s3cret@primary:5432/app?sslmode=require&application_name=svc"
            .parse()
            .unwrap()
    }

    #[test]
    fn replica_parts_not_given_are_the_primarys() {
        let replica = UrlConfig::from(UrlParts::default().host("replica2"))
            .to_db_url_over(&primary())
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
    fn replica_parts_given_replace_the_primarys_and_query_keys_merge() {
        let mut parts = UrlParts::default().host("[::1]").port(6432);
        parts.username = Some("reader".into());
        parts.file = Some("app_ro".into());
        parts.query.insert("sslmode".into(), "disable".into());
        let replica = UrlConfig::from(parts).to_db_url_over(&primary()).unwrap();
        assert_eq!(replica.host(), Some("::1"));
        assert_eq!(replica.port(), Some(6432));
        assert_eq!(replica.username(), Some("reader"));
        assert_eq!(replica.database(), Some("app_ro"));
        assert_eq!(replica.query()[0], ("sslmode".into(), "disable".into()));
        assert_eq!(replica.query().len(), 2);
    }

    #[test]
    fn a_replica_password_file_replaces_the_primarys_password() {
        let mut parts = UrlParts::default().host("r1");
        parts.password_file = Some("/run/secrets/replica".into());
        let replica = UrlConfig::from(parts).to_db_url_over(&primary()).unwrap();
        assert_eq!(replica.password(), None);
        assert_eq!(
            replica.password_file(),
            Some(std::path::Path::new("/run/secrets/replica"))
        );
    }

    #[test]
    fn a_replica_string_stands_alone() {
        let replica = UrlConfig::from("postgresql://other@r1/x")
            .to_db_url_over(&primary())
            .unwrap();
        assert_eq!(replica.username(), Some("other"));
        assert_eq!(replica.password(), None);
        assert_eq!(replica.port(), Some(5432));
    }

    #[test]
    fn url_parts_without_a_protocol_say_so() {
        let err = UrlConfig::from(UrlParts::default().host("h"))
            .to_db_url()
            .unwrap_err();
        assert!(
            err.to_string().contains("`url.protocol` is missing"),
            "{err}"
        );
    }

    #[test]
    fn debug_hides_the_password() {
        let mut parts = UrlParts::default().host("r1");
        parts.password = Some("s3cret".into());
        let shown = format!(
            "{:?} {:?}",
            UrlConfig::from(parts),
            UrlConfig::from("postgresql://u:s3cret@r1/db")
        );
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("***"), "{shown}");
    }
}
