//! What a host is in its replication setup, as the server itself says.

use std::fmt;

/// Whether a host takes writes or replays another's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Role {
    /// Takes writes: PostgreSQL not in recovery; MariaDB neither
    /// `read_only` nor replicating. SQLite is always one.
    Primary,
    /// Replays a primary's changes and refuses writes: a PostgreSQL hot
    /// standby (`pg_is_in_recovery()`); a MariaDB server that is
    /// `read_only` or runs a replication thread.
    Standby,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Primary => "primary",
            Self::Standby => "standby",
        })
    }
}
