//! How sessions run their transactions: the isolation level they ask for and
//! how the retrying form ([`transaction`](crate::SqlConnectionRegistry::transaction))
//! retries transient conflicts.

use std::time::Duration;

use serde::Deserialize;

use super::keyword::keywords;
use super::lenient;

/// A transaction isolation level (`session.isolation`).
///
/// PostgreSQL and MariaDB apply it in the statement that begins the
/// transaction, at no extra round trip. SQLite transactions are always
/// serializable, which is at least what any level asks for, so SQLite
/// accepts every value and the same config works on every backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Isolation {
    /// Each statement sees what was committed before it started
    /// (PostgreSQL's default).
    ReadCommitted,
    /// Every statement sees the snapshot taken by the first one
    /// (MariaDB's default).
    RepeatableRead,
    /// As if the transactions ran one after another; conflicts fail with a
    /// serialization error that [`transaction`](crate::SqlConnectionRegistry::transaction) retries.
    Serializable,
}

impl Isolation {
    const NAMES: [(&'static str, Self); 3] = [
        ("read_committed", Self::ReadCommitted),
        ("repeatable_read", Self::RepeatableRead),
        ("serializable", Self::Serializable),
    ];

    /// The level as SQL writes it (`REPEATABLE READ`).
    #[must_use]
    pub fn sql(self) -> &'static str {
        match self {
            Self::ReadCommitted => "READ COMMITTED",
            Self::RepeatableRead => "REPEATABLE READ",
            Self::Serializable => "SERIALIZABLE",
        }
    }
}

keywords!(Isolation);

/// How the retrying form retries a transient conflict (`session.retry`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct RetryConfig {
    /// Attempts in all, the first included (default 3); 1 never retries.
    #[serde(deserialize_with = "lenient::connections")]
    pub attempts: u32,
    /// The pause before each retry.
    pub backoff: Backoff,
}

/// A jittered exponential backoff: the pause doubles from `min` up to `max`,
/// and each pause is drawn between half of it and all of it, so sessions that
/// collided once do not collide again in step.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct Backoff {
    /// The pause before the first retry, in seconds (default 0.005).
    #[serde(deserialize_with = "lenient::seconds")]
    pub min: Duration,
    /// The longest pause, in seconds (default 0.5).
    #[serde(deserialize_with = "lenient::seconds")]
    pub max: Duration,
}

impl RetryConfig {
    /// Sets how many attempts are made in all.
    #[must_use]
    pub fn attempts(mut self, attempts: u32) -> Self {
        self.attempts = attempts;
        self
    }

    /// Sets the shortest and the longest pause between attempts.
    #[must_use]
    pub fn backoff(mut self, min: Duration, max: Duration) -> Self {
        self.backoff = Backoff { min, max };
        self
    }
}

#[cfg(test)]
mod tests {
    use super::Isolation;

    #[test]
    fn levels_parse_as_config_and_sql_write_them() {
        assert_eq!("serializable".parse(), Ok(Isolation::Serializable));
        assert_eq!("REPEATABLE READ".parse(), Ok(Isolation::RepeatableRead));
        assert_eq!("read-committed".parse(), Ok(Isolation::ReadCommitted));
        let err = "snapshot".parse::<Isolation>().unwrap_err();
        assert!(
            err.contains("read_committed, repeatable_read, serializable"),
            "{err}"
        );
        assert_eq!(Isolation::RepeatableRead.to_string(), "repeatable_read");
    }
}
