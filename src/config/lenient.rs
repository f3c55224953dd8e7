//! Lenient scalar deserializers for the `db` section. `${oc.env:..}` always
//! yields a string, so number and boolean keys also accept their text
//! (`"30"`, `"true"`), as OmegaConf's typed nodes do; durations are seconds,
//! whole or fractional.

use std::fmt;
use std::time::Duration;

use serde::de::{Deserializer, Error, Unexpected, Visitor};

/// A number as written in the file or the environment.
#[derive(Clone, Copy)]
enum Number {
    Unsigned(u64),
    Negative(i64),
    Fraction(f64),
}

/// Reads a [`Number`] from a number or a numeric string; `null` only if allowed.
struct NumberVisitor {
    expecting: &'static str,
    nullable: bool,
}

impl<'de> Visitor<'de> for NumberVisitor {
    type Value = Option<Number>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_u64<E: Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(Number::Unsigned(v)))
    }

    fn visit_i64<E: Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(
            u64::try_from(v).map_or(Number::Negative(v), Number::Unsigned),
        ))
    }

    fn visit_f64<E: Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Some(Number::Fraction(v)))
    }

    fn visit_str<E: Error>(self, v: &str) -> Result<Self::Value, E> {
        let text = v.trim();
        if let Ok(n) = text.parse::<i64>() {
            return self.visit_i64(n);
        }
        match text.parse::<f64>() {
            Ok(n) if n.is_finite() => self.visit_f64(n),
            _ => Err(E::invalid_type(Unexpected::Str(v), &self)),
        }
    }

    fn visit_unit<E: Error>(self) -> Result<Self::Value, E> {
        if self.nullable {
            Ok(None)
        } else {
            Err(E::invalid_type(Unexpected::Unit, &self))
        }
    }

    fn visit_none<E: Error>(self) -> Result<Self::Value, E> {
        self.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

const SECONDS: &str = "a number of seconds (e.g. 30 or 0.5)";

fn number<'de, D: Deserializer<'de>>(
    d: D,
    expecting: &'static str,
    nullable: bool,
) -> Result<Option<Number>, D::Error> {
    d.deserialize_any(NumberVisitor {
        expecting,
        nullable,
    })
}

fn to_duration<E: Error>(n: Number, negative_hint: &str) -> Result<Duration, E> {
    match n {
        Number::Unsigned(secs) => Ok(Duration::from_secs(secs)),
        Number::Negative(secs) => Err(E::custom(format!(
            "must not be negative{negative_hint}, found {secs}"
        ))),
        Number::Fraction(secs) if secs < 0.0 => Err(E::custom(format!(
            "must not be negative{negative_hint}, found {secs}"
        ))),
        Number::Fraction(secs) => Duration::try_from_secs_f64(secs)
            .map_err(|_| E::custom(format!("{secs} is not a usable number of seconds"))),
    }
}

/// A pool size: a non-negative whole number.
pub(crate) fn connections<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    const EXPECTING: &str = "a whole number of connections";
    match number(d, EXPECTING, false)? {
        Some(Number::Unsigned(n)) => u32::try_from(n)
            .map_err(|_| D::Error::custom(format!("{n} connections is more than a pool can hold"))),
        Some(Number::Negative(n)) => {
            Err(D::Error::custom(format!("must not be negative, found {n}")))
        }
        Some(Number::Fraction(n)) => Err(D::Error::invalid_type(Unexpected::Float(n), &EXPECTING)),
        None => Err(D::Error::invalid_type(Unexpected::Unit, &EXPECTING)),
    }
}

/// A required duration in seconds.
pub(crate) fn seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    match number(d, SECONDS, false)? {
        Some(n) => to_duration(n, ""),
        None => Err(D::Error::invalid_type(Unexpected::Unit, &SECONDS)),
    }
}

/// An optional duration in seconds; `null` turns it off.
pub(crate) fn optional_seconds<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Duration>, D::Error> {
    number(d, SECONDS, true)?
        .map(|n| to_duration(n, " (use null to turn it off)"))
        .transpose()
}

/// `pool_recycle`: seconds, with SQLAlchemy's `-1` (or `null`) meaning never.
pub(crate) fn recycle_seconds<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Duration>, D::Error> {
    match number(d, SECONDS, true)? {
        None | Some(Number::Negative(-1) | Number::Fraction(-1.0)) => Ok(None),
        Some(n) => to_duration(n, " (use -1 to never recycle)").map(Some),
    }
}

/// A boolean, also from the strings OmegaConf accepts (`"true"`, `"no"`, `"1"`, …).
pub(crate) fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    struct FlagVisitor;

    impl Visitor<'_> for FlagVisitor {
        type Value = bool;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("true or false")
        }

        fn visit_bool<E: Error>(self, v: bool) -> Result<bool, E> {
            Ok(v)
        }

        fn visit_u64<E: Error>(self, v: u64) -> Result<bool, E> {
            match v {
                0 => Ok(false),
                1 => Ok(true),
                _ => Err(E::invalid_value(Unexpected::Unsigned(v), &self)),
            }
        }

        fn visit_str<E: Error>(self, v: &str) -> Result<bool, E> {
            match v.trim().to_ascii_lowercase().as_str() {
                "true" | "yes" | "on" | "y" | "1" => Ok(true),
                "false" | "no" | "off" | "n" | "0" => Ok(false),
                _ => Err(E::invalid_value(Unexpected::Str(v), &self)),
            }
        }
    }

    d.deserialize_any(FlagVisitor)
}

/// A lower-cased keyword; YAML 1.1 reads a bare `off` as `false`, so that
/// counts as `"off"`.
pub(crate) fn keyword<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    struct KeywordVisitor;

    impl Visitor<'_> for KeywordVisitor {
        type Value = String;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a keyword")
        }

        fn visit_bool<E: Error>(self, v: bool) -> Result<String, E> {
            if v {
                Err(E::invalid_type(Unexpected::Bool(v), &self))
            } else {
                Ok("off".to_owned())
            }
        }

        fn visit_str<E: Error>(self, v: &str) -> Result<String, E> {
            Ok(v.trim().to_ascii_lowercase())
        }
    }

    d.deserialize_any(KeywordVisitor)
}
