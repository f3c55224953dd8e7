//! How far a server's history goes: a PostgreSQL WAL location or MariaDB's
//! last GTID per replication domain, and whether a replica that has replayed
//! up to one position has everything a commit at another produced.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// A point in a primary's history: what it had written when a commit
/// returned, or what a replica has replayed.
///
/// `Display` and `FromStr` round-trip (`0/3000148`, `0-1-42,1-2-7`), so a
/// caller can carry a position across processes (in a cookie, a header)
/// and later ask for data at least that fresh.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReplicationPosition {
    /// PostgreSQL: a WAL location (LSN), as `pg_current_wal_insert_lsn()` and
    /// `pg_last_wal_replay_lsn()` give it.
    Lsn(u64),
    /// MariaDB: the last GTID of each replication domain, as
    /// `@@gtid_binlog_pos` and `@@gtid_current_pos` give them.
    Gtid(GtidSet),
}

impl ReplicationPosition {
    /// Whether a server that has replayed up to `self` has everything that
    /// existed at `commit`. Positions of different kinds (a WAL location and
    /// GTIDs) never cover each other.
    #[must_use]
    pub fn covers(&self, commit: &Self) -> bool {
        match (self, commit) {
            (Self::Lsn(replayed), Self::Lsn(commit)) => replayed >= commit,
            (Self::Gtid(replayed), Self::Gtid(commit)) => replayed.covers(commit),
            _ => false,
        }
    }
}

/// MariaDB GTIDs (`domain-server-sequence`), the last one of each
/// replication domain. Within a domain sequence numbers only grow, whichever
/// server wrote them; domains are independent streams.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct GtidSet {
    /// Domain → (server id, sequence number).
    domains: BTreeMap<u32, (u32, u64)>,
}

impl GtidSet {
    /// Whether every domain of `commit` is here, at least as far.
    #[must_use]
    pub fn covers(&self, commit: &Self) -> bool {
        commit.domains.iter().all(|(domain, (_, sequence))| {
            self.domains
                .get(domain)
                .is_some_and(|(_, replayed)| replayed >= sequence)
        })
    }

    /// The last sequence number of `domain`, if the set has one.
    #[must_use]
    pub fn sequence(&self, domain: u32) -> Option<u64> {
        self.domains.get(&domain).map(|(_, sequence)| *sequence)
    }
}

impl fmt::Display for ReplicationPosition {
    /// `0/3000148` (PostgreSQL's own form) or `0-1-42,1-2-7` (MariaDB's).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Lsn(lsn) => write!(f, "{:X}/{:X}", lsn >> 32, lsn & 0xFFFF_FFFF),
            Self::Gtid(set) => set.fmt(f),
        }
    }
}

impl fmt::Display for GtidSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (domain, (server, sequence)) in &self.domains {
            if !first {
                f.write_str(",")?;
            }
            first = false;
            write!(f, "{domain}-{server}-{sequence}")?;
        }
        Ok(())
    }
}

impl FromStr for ReplicationPosition {
    type Err = String;

    /// A WAL location (`0/3000148`) or a GTID list (`0-1-42,1-2-7`; empty:
    /// nothing written yet).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        match text.split_once('/') {
            Some((high, low)) => {
                let half = |part: &str| {
                    u32::from_str_radix(part, 16)
                        .map_err(|_| format!("`{text}` is not a WAL location such as 0/3000148"))
                };
                Ok(Self::Lsn(
                    (u64::from(half(high)?) << 32) | u64::from(half(low)?),
                ))
            }
            None => text.parse().map(Self::Gtid),
        }
    }
}

impl FromStr for GtidSet {
    type Err = String;

    /// MariaDB's `domain-server-sequence` list, comma-separated.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut domains = BTreeMap::new();
        for gtid in text.split(',').map(str::trim).filter(|g| !g.is_empty()) {
            let bad = || format!("`{gtid}` is not a GTID such as 0-1-42");
            let mut parts = gtid.split('-');
            let (Some(domain), Some(server), Some(sequence), None) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return Err(bad());
            };
            let domain = domain.parse().map_err(|_| bad())?;
            let entry = (
                server.parse().map_err(|_| bad())?,
                sequence.parse().map_err(|_| bad())?,
            );
            domains.insert(domain, entry);
        }
        Ok(Self { domains })
    }
}

#[cfg(test)]
mod tests {
    use super::ReplicationPosition;

    fn position(text: &str) -> ReplicationPosition {
        text.parse().unwrap()
    }

    #[test]
    fn a_replayed_wal_location_covers_every_earlier_one() {
        let commit = position("1/3000148");
        assert_eq!(commit, ReplicationPosition::Lsn((1 << 32) | 0x300_0148));
        assert!(position("1/3000148").covers(&commit));
        assert!(position("2/0").covers(&commit));
        assert!(!position("1/3000147").covers(&commit));
        assert!(!position("0/FFFFFFFF").covers(&commit));
    }

    #[test]
    fn gtids_cover_domain_by_domain() {
        let commit = position("0-1-42,1-2-7");
        assert!(position("0-1-42,1-2-7").covers(&commit));
        // Another server id in the same domain: the sequence decides.
        assert!(position("0-3-50,1-2-9,2-1-1").covers(&commit));
        assert!(!position("0-1-41,1-2-7").covers(&commit));
        assert!(!position("0-1-99").covers(&commit), "domain 1 missing");
        // Nothing written yet is covered by anything.
        assert!(position("").covers(&position("")));
        assert!(position("0-1-1").covers(&position("")));
    }

    #[test]
    fn kinds_never_cover_each_other() {
        assert!(!position("0-1-42").covers(&position("0/1")));
        assert!(!position("0/1").covers(&position("0-1-42")));
    }

    #[test]
    fn positions_round_trip_through_text() {
        for text in ["0/3000148", "A/1", "0-1-42,1-2-7", ""] {
            assert_eq!(position(text).to_string(), text);
        }
        assert!("0-1".parse::<ReplicationPosition>().is_err());
        assert!("0/xyz".parse::<ReplicationPosition>().is_err());
    }
}
