//! Who streams from whom: a PostgreSQL host's WAL senders (the standbys
//! streaming from it, and which of them its commits wait for) and its WAL
//! receiver (the host it streams from), as the server says — what `sqlreg
//! check` shows of a primary/standby pair or a Patroni cluster. Read from
//! the server, not from Patroni's REST API.

use std::fmt;

/// A host's place in streaming replication (PostgreSQL).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct Streaming {
    /// `synchronous_standby_names` on a primary, when set (Patroni's
    /// `synchronous_mode` sets it to the synchronous standby's name);
    /// `None` when empty, and on a standby (where it does not apply).
    pub synchronous_standby_names: Option<String>,
    /// The standbys streaming from this host (`pg_stat_replication`): a
    /// primary's, or a cascading standby's.
    pub standbys: Vec<WalSender>,
    /// On a standby: the host it streams from (`pg_stat_wal_receiver`);
    /// `None` on a primary, and on a standby whose WAL receiver is not
    /// running (disconnected, or replaying from an archive only).
    pub receiver: Option<WalReceiver>,
}

/// One standby streaming from a host, as that host says
/// (`pg_stat_replication`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct WalSender {
    /// The standby's `application_name` (a Patroni node's name).
    pub name: String,
    /// `streaming`, `catchup`, `startup`, `backup` or `stopping`; `None`
    /// when the user may not see it (see [`WalSender::sync_state`]).
    pub state: Option<String>,
    /// Whether commits wait for it. `None` when the user may not see it:
    /// PostgreSQL shows it to superusers and members of `pg_read_all_stats`
    /// (`pg_monitor`) only.
    pub sync_state: Option<SyncState>,
    /// The standby's address and port as the host sees the connection
    /// (`client_addr`, `client_port`): `127.0.0.1:37750`; `None` over a
    /// unix socket, or when hidden.
    pub client: Option<String>,
}

/// What a standby streams from, as the standby says
/// (`pg_stat_wal_receiver`), and what the host it streams from says of it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct WalReceiver {
    /// The WAL receiver's status: `streaming`, `starting`, `waiting`,
    /// `restarting`, `stopping`; `None` when hidden (see
    /// [`WalSender::sync_state`]).
    pub status: Option<String>,
    /// The host it streams from and its port, as the standby connected to
    /// it (`sender_host`, `sender_port`: `127.0.0.1:5432`, or a socket
    /// directory); `None` when hidden (see [`WalSender::sync_state`]).
    pub sender: Option<String>,
    /// The name the standby gives itself (the `application_name` of its
    /// `primary_conninfo`): what its primary lists it as, and what
    /// `synchronous_standby_names` names. `None` when hidden.
    pub name: Option<String>,
    /// Filled in by [`probe_hosts`](super::probe_hosts), when one of the
    /// hosts it probed lists this standby among its WAL senders: that
    /// host's URL (password redacted)…
    pub upstream: Option<String>,
    /// … and the standby's `sync_state` there: whether that host's commits
    /// wait for this standby.
    pub sync_state: Option<SyncState>,
}

/// Whether a primary's commits wait for a standby (`pg_stat_replication.sync_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum SyncState {
    /// A synchronous standby: commits wait for it.
    Sync,
    /// Commits do not wait for it.
    Async,
    /// A candidate of quorum commit (`synchronous_standby_names = 'ANY n
    /// (…)'`): commits wait for `n` of the candidates.
    Quorum,
    /// Named in `synchronous_standby_names` but not (yet) waited for: it
    /// becomes synchronous if a synchronous standby goes away.
    Potential,
}

impl SyncState {
    /// The server's word for it; `None` for one sqlreg does not know.
    pub(crate) fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "sync" => Self::Sync,
            "async" => Self::Async,
            "quorum" => Self::Quorum,
            "potential" => Self::Potential,
            _ => return None,
        })
    }

    /// `synchronous standby`, `asynchronous standby`, …
    pub fn describe(self) -> &'static str {
        match self {
            Self::Sync => "synchronous standby",
            Self::Async => "asynchronous standby",
            Self::Quorum => "quorum synchronous standby",
            Self::Potential => "potential synchronous standby",
        }
    }
}

impl fmt::Display for SyncState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Sync => "sync",
            Self::Async => "async",
            Self::Quorum => "quorum",
            Self::Potential => "potential",
        })
    }
}

/// A probed host, for [`link`].
pub(crate) struct Linked<'s> {
    /// Its URL, password redacted.
    pub(crate) url: String,
    /// `host:port`, as a standby's `sender_host` and `sender_port` would
    /// name it.
    pub(crate) address: Option<String>,
    /// What it said; `None` for a host that did not answer, or that has no
    /// streaming replication (MariaDB, SQLite).
    pub(crate) streaming: Option<&'s mut Streaming>,
}

/// Joins each standby to the probed host that lists it among its WAL
/// senders, by the name the standby gives itself, and fills in its
/// [`WalReceiver::upstream`] and [`WalReceiver::sync_state`]. A name listed
/// by several hosts (two clusters whose nodes share names) is joined to the
/// one at the address the standby streams from, else to none.
pub(crate) fn link(hosts: &mut [Linked<'_>]) {
    let mut links = Vec::new();
    for (index, host) in hosts.iter().enumerate() {
        let Some(receiver) = host.streaming.as_ref().and_then(|s| s.receiver.as_ref()) else {
            continue;
        };
        let Some(name) = &receiver.name else {
            continue;
        };
        let listing: Vec<(usize, Option<SyncState>)> = hosts
            .iter()
            .enumerate()
            .filter(|(other, _)| *other != index)
            .filter_map(|(other, host)| {
                let sender = host
                    .streaming
                    .as_ref()?
                    .standbys
                    .iter()
                    .find(|s| &s.name == name)?;
                Some((other, sender.sync_state))
            })
            .collect();
        let found = if let [one] = listing.as_slice() {
            Some(*one)
        } else {
            listing.into_iter().find(|(other, _)| {
                receiver.sender.is_some() && hosts[*other].address == receiver.sender
            })
        };
        if let Some((upstream, sync_state)) = found {
            links.push((index, hosts[upstream].url.clone(), sync_state));
        }
    }
    for (index, upstream, sync_state) in links {
        if let Some(receiver) = hosts[index]
            .streaming
            .as_mut()
            .and_then(|s| s.receiver.as_mut())
        {
            receiver.upstream = Some(upstream);
            receiver.sync_state = sync_state;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn primary(names: &[(&str, SyncState)]) -> Streaming {
        Streaming {
            synchronous_standby_names: None,
            standbys: names
                .iter()
                .map(|(name, sync_state)| WalSender {
                    name: (*name).to_owned(),
                    state: Some("streaming".to_owned()),
                    sync_state: Some(*sync_state),
                    client: None,
                })
                .collect(),
            receiver: None,
        }
    }

    fn standby(name: &str, sender: &str) -> Streaming {
        Streaming {
            receiver: Some(WalReceiver {
                status: Some("streaming".to_owned()),
                sender: Some(sender.to_owned()),
                name: Some(name.to_owned()),
                upstream: None,
                sync_state: None,
            }),
            ..Streaming::default()
        }
    }

    fn host<'s>(url: &str, address: &str, streaming: &'s mut Streaming) -> Linked<'s> {
        Linked {
            url: url.to_owned(),
            address: Some(address.to_owned()),
            streaming: Some(streaming),
        }
    }

    /// Two primaries that both list a `pg2` (two clusters under one
    /// section): each standby is joined to the one it streams from.
    #[test]
    fn a_name_listed_twice_is_joined_by_the_sender_address() {
        let mut a = primary(&[("pg2", SyncState::Sync)]);
        let mut b = primary(&[("pg2", SyncState::Async)]);
        let mut on_b = standby("pg2", "10.0.0.2:5432");
        let mut on_nowhere = standby("pg2", "10.0.0.9:5432");
        let mut alone = standby("pg7", "10.0.0.1:5432");
        let mut hosts = [
            host("a", "10.0.0.1:5432", &mut a),
            host("b", "10.0.0.2:5432", &mut b),
            host("c", "10.0.0.3:5432", &mut on_b),
            host("d", "10.0.0.4:5432", &mut on_nowhere),
            host("e", "10.0.0.5:5432", &mut alone),
        ];
        link(&mut hosts);
        let receiver = on_b.receiver.unwrap();
        assert_eq!(receiver.upstream.as_deref(), Some("b"));
        assert_eq!(receiver.sync_state, Some(SyncState::Async));
        assert_eq!(on_nowhere.receiver.unwrap().upstream, None);
        assert_eq!(alone.receiver.unwrap().upstream, None);
    }
}
