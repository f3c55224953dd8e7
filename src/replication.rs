//! Replication as sqlreg sees it: where a server's WAL or GTIDs stand
//! ([`ReplicationPosition`]), which hosts are primaries and which replay
//! another's changes ([`Role`]), how far behind a replica is, and
//! [`probe_hosts`], which asks each host of a section (what `sqlreg check`
//! shows), with who streams from whom ([`Streaming`]).

mod lag;
mod last_write;
mod position;
mod probe;
mod role;
mod streaming;

pub(crate) use self::lag::LagEstimator;
pub(crate) use self::last_write::LastWrite;
pub use self::position::{GtidSet, ReplicationPosition};
pub use self::probe::{HostProbe, HostState, probe_hosts};
pub(crate) use self::role::Standing;
pub use self::role::{ClusterMembership, Role};
pub use self::streaming::{Streaming, SyncState, WalReceiver, WalSender};
