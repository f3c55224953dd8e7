//! What a host is in its replication setup, as the server itself says.

use std::fmt;

/// Whether a host takes writes or replays another's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
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

/// What the role probe found on a host: enough to pick a host for a
/// multi-host URL's `target_session_attrs`, to tell two primaries apart,
/// and to judge a replica's lag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Standing {
    pub(crate) role: Role,
    /// PostgreSQL's timeline (higher after each promotion); `None` elsewhere.
    pub(crate) timeline: Option<u64>,
    /// Whether a session there may write by default: a primary not made
    /// read-only (PostgreSQL `default_transaction_read_only`, MariaDB
    /// `read_only`) — libpq's test for `read-write`.
    pub(crate) writable: bool,
    /// What a primary has written, or what a standby has replayed; `None`
    /// on SQLite (and on a standby that has replayed nothing yet).
    pub(crate) position: Option<super::ReplicationPosition>,
    /// The multi-writer cluster the host belongs to (Galera, while in its
    /// primary component): hosts of one cluster all take writes by design,
    /// which is no split brain. `None` elsewhere.
    pub(crate) cluster: Option<ClusterMembership>,
}

/// A node's place in a multi-writer cluster (MariaDB Galera), as the node
/// says.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct ClusterMembership {
    /// The cluster's identity (`wsrep_cluster_state_uuid`): the same on
    /// every node of one cluster.
    pub id: String,
    /// The node's state (`wsrep_local_state_comment`: `Synced`, `Donor/Desynced`, …).
    pub state: String,
    /// Nodes in the cluster's primary component (`wsrep_cluster_size`).
    pub size: u32,
}
