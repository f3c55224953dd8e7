//! The `routing:` block of a `db` section: how read sessions use the
//! `replicas:` — how far behind a replica may be, whether a read sees the
//! registry's own committed writes, and what happens when no replica will do.

use std::time::Duration;

use serde::Deserialize;

use super::keyword::keywords;
use super::lenient;

/// How read sessions are spread over the replicas (`routing:`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct RoutingConfig {
    /// A replica further behind the primary than this is skipped (default
    /// 5 s). Judged from WAL positions / GTIDs, so a replica that has
    /// replayed everything is never behind, however long the primary has
    /// been quiet.
    #[serde(deserialize_with = "lenient::seconds")]
    pub replica_max_lag: Duration,
    /// A read session started after a session of this registry committed a
    /// write sees that write (default `true`).
    #[serde(deserialize_with = "lenient::flag")]
    pub read_your_writes: bool,
    /// Whether the primary serves read sessions too (default `false`).
    #[serde(deserialize_with = "lenient::flag")]
    pub primary_reads: bool,
    /// What a read session does when no replica is usable (default
    /// [`Fallback::Primary`]).
    pub fallback: Fallback,
}

impl RoutingConfig {
    /// Sets `replica_max_lag`.
    #[must_use]
    pub fn replica_max_lag(mut self, lag: Duration) -> Self {
        self.replica_max_lag = lag;
        self
    }

    /// Sets `read_your_writes`.
    #[must_use]
    pub fn read_your_writes(mut self, on: bool) -> Self {
        self.read_your_writes = on;
        self
    }

    /// Sets `primary_reads`.
    #[must_use]
    pub fn primary_reads(mut self, on: bool) -> Self {
        self.primary_reads = on;
        self
    }

    /// Sets `fallback`.
    #[must_use]
    pub fn fallback(mut self, fallback: Fallback) -> Self {
        self.fallback = fallback;
        self
    }
}

/// What a read session does when no replica is usable (`routing.fallback`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Fallback {
    /// Read from the primary: slower for it, never wrong.
    Primary,
    /// Fail the read session with an error that says why, keeping the
    /// primary free for writes.
    Error,
}

impl Fallback {
    const NAMES: [(&'static str, Self); 2] = [("primary", Self::Primary), ("error", Self::Error)];
}

keywords!(Fallback);

#[cfg(test)]
mod tests {
    use super::Fallback;

    #[test]
    fn fallbacks_parse_and_print_as_written() {
        assert_eq!("Primary".parse(), Ok(Fallback::Primary));
        assert_eq!(" error".parse(), Ok(Fallback::Error));
        let err = "replica".parse::<Fallback>().unwrap_err();
        assert!(err.contains("primary, error"), "{err}");
        assert_eq!(Fallback::Error.to_string(), "error");
    }
}
