//! The `url:` key as written in a config: one SQLAlchemy string or
//! core-lib's parts, read so that errors inside the parts keep their key path.

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
pub(super) fn text_or_parts<'de, D, P, T>(
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
pub(super) fn debug_text(text: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let shown = text
        .parse::<DbUrl>()
        .map_or_else(|_| redact::mask_url_text(text), |u| u.redacted());
    f.debug_tuple("Text").field(&shown).finish()
}
