//! The servers a registry's `url` names and which of them its sessions use
//! now. A plain URL names one server: sessions always go there and nothing
//! is probed. A multi-host URL (`postgresql://app@h1:5432,h2:5433/app`), or
//! one with `target_session_attrs`, is a cluster: a monitor asks every host
//! its role every [`monitor::INTERVAL`], sessions go to the host that fits
//! `target_session_attrs` (spread at random across all that fit with
//! `load_balance_hosts=random`), and when that host goes away or changes
//! role they go to the one that fits next — after a failover, the promoted
//! standby. Two primaries at once (split brain) are told apart by their
//! timelines (see `choice.rs`).

mod choice;
mod monitor;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use self::choice::{Choice, Seen};
use crate::config::DbConfig;
use crate::driver::{Connecting, Prober};
use crate::error::{Error, Result};
use crate::host::Host;
use crate::replication::LastWrite;
use crate::session::{Request, Session};
use crate::stats::HostStats;
use crate::url::{DbUrl, TargetSessionAttrs};

/// The hosts of the registry's `url`.
pub(crate) struct Cluster {
    /// The URL as written, every host in it.
    url: DbUrl,
    members: Arc<[Member]>,
    /// `None` for a plain URL: one host, never probed.
    watch: Option<Watched>,
    pool_timeout: Duration,
}

/// One host of the URL and what the monitor last saw of it.
struct Member {
    host: Host,
    seen: Mutex<Seen>,
}

/// A cluster's moving parts, shared with its monitor.
struct Watched {
    target: TargetSessionAttrs,
    load_balance: bool,
    shared: Arc<Shared>,
    monitor: tokio::task::AbortHandle,
}

/// What the monitor publishes.
struct Shared {
    /// Each host's `host:port`, for logs and errors.
    addresses: Vec<String>,
    choice: Mutex<Choice>,
    /// Counts finished monitor rounds, so a caller can wait for a fresh one.
    rounds: watch::Sender<u64>,
    /// Asks the monitor for a round now instead of at its next tick.
    wake: Notify,
    /// A serving host that lost a connection, and the round that must
    /// finish before sessions go to it again.
    suspect: Mutex<Option<(usize, u64)>>,
}

impl Member {
    fn seen(&self) -> Seen {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl Cluster {
    /// Connects to the server a plain `url` names, or — for a multi-host
    /// URL or one with `target_session_attrs` — asks every host its role,
    /// connects to the one that fits (the others when sessions need them)
    /// and starts the monitor. Write sessions record their commit position
    /// in `last_write` when given (read-your-writes on replicas).
    ///
    /// # Errors
    ///
    /// As [`Host::open`] for the chosen host; when every host is
    /// unreachable, the first host's connect error; [`Error::Acquire`] when
    /// hosts answer but none fits `target_session_attrs`.
    pub(crate) async fn open(
        url: DbUrl,
        config: &DbConfig,
        last_write: Option<Arc<LastWrite>>,
    ) -> Result<Self> {
        let pool_timeout = config.session.pool_timeout;
        let target = url.target_session_attrs();
        if target.is_none() && !url.is_multi_host() {
            let host = Host::open(url.clone(), config, Connecting::Eagerly, last_write).await?;
            let member = Member {
                host,
                seen: Mutex::new(Seen::default()),
            };
            return Ok(Self {
                url,
                members: Arc::from([member]),
                watch: None,
                pool_timeout,
            });
        }
        let target = target.unwrap_or(TargetSessionAttrs::Any);
        let urls = url.hosts();
        let addresses: Vec<String> = urls.iter().map(address).collect();
        let mut probers: Vec<Prober> = urls.iter().cloned().map(Prober::new).collect();
        let mut seen = monitor::survey(&mut probers, config).await;
        let mut choice = Choice::make(&seen, target, &addresses);
        if choice.serving.is_empty() && seen.iter().all(|s| matches!(s, Seen::Down(_))) {
            // Nothing answered: connecting to the first host says why — or
            // creates the missing database (`create_db`), and then every
            // host is asked again.
            Host::open(urls[0].clone(), config, Connecting::Eagerly, None).await?;
            seen = monitor::survey(&mut probers, config).await;
            choice = Choice::make(&seen, target, &addresses);
        }
        let Some(&serving) = choice.serving.first() else {
            return Err(Error::Acquire {
                url: url.redacted(),
                detail: choice.none_fit(target),
            });
        };
        let mut members = Vec::with_capacity(urls.len());
        for (index, (host_url, seen)) in urls.into_iter().zip(seen).enumerate() {
            let connecting = if index == serving {
                Connecting::Eagerly
            } else {
                Connecting::Lazily
            };
            let host = Host::open(host_url, config, connecting, last_write.clone()).await?;
            members.push(Member {
                host,
                seen: Mutex::new(seen),
            });
        }
        choice.announce(&addresses, None);
        let members: Arc<[Member]> = members.into();
        let shared = Arc::new(Shared {
            addresses,
            choice: Mutex::new(choice),
            rounds: watch::Sender::new(0),
            wake: Notify::new(),
            suspect: Mutex::new(None),
        });
        let monitor = monitor::spawn(
            Arc::clone(&members),
            probers,
            config.clone(),
            target,
            Arc::clone(&shared),
        );
        let load_balance = url.load_balance_hosts();
        Ok(Self {
            url,
            members,
            watch: Some(Watched {
                target,
                load_balance,
                shared,
                monitor,
            }),
            pool_timeout,
        })
    }

    /// The URL as written (its `Display` hides the password).
    pub(crate) fn url(&self) -> &DbUrl {
        &self.url
    }

    /// The host sessions go to now, without waiting: the one chosen last
    /// (the first host before any choice). For figures and logs.
    pub(crate) fn current(&self) -> &Host {
        let index = self
            .watch
            .as_ref()
            .and_then(|watch| watch.shared.pick(false))
            .unwrap_or(0);
        &self.members[index].host
    }

    /// A session on the host that fits `target_session_attrs`. When none
    /// does right now (a failover under way) or the chosen one refuses the
    /// connection, waits for the monitor to find one, up to `pool_timeout`.
    ///
    /// # Errors
    ///
    /// As [`Host::session`]; [`Error::Acquire`] when no host fits within
    /// `pool_timeout`, naming what each host was.
    pub(crate) async fn session(&self, request: &Request<'_>) -> Result<Session> {
        let Some(watch) = &self.watch else {
            return self.members[0].host.session(request).await;
        };
        let deadline = Instant::now() + self.pool_timeout;
        loop {
            let host = self.host(watch, deadline).await?;
            match host.session(request).await {
                Err(Error::Connect { .. }) if Instant::now() < deadline => {
                    // The host went away since the monitor last asked it.
                    host.context.note_lost_connection();
                }
                outcome => return outcome,
            }
        }
    }

    /// The host a session goes to, waiting for the monitor while none
    /// fits, or — after one of the chosen host's sessions lost its
    /// connection — until a round that began after the loss has looked at
    /// it again (every caller waits, not only the one that saw the loss, so
    /// none spends a retry on a dead pooled connection meanwhile).
    async fn host(&self, watch: &Watched, deadline: Instant) -> Result<&Host> {
        let mut rounds = watch.shared.rounds.subscribe();
        loop {
            let round = *rounds.borrow_and_update();
            let needed = match watch.shared.pick(watch.load_balance) {
                Some(index) => {
                    let host = &self.members[index].host;
                    if host.context.take_lost_connection() {
                        // A round under way may have asked before the loss.
                        watch.shared.suspect(index, round + 2);
                    }
                    match watch.shared.suspect_until(index) {
                        Some(needed) if needed > round => needed,
                        _ => return Ok(host),
                    }
                }
                None => round + 1,
            };
            watch.shared.wake.notify_one();
            let fresh = rounds.wait_for(|&done| done >= needed);
            if tokio::time::timeout_at(deadline, fresh).await.is_err() {
                return Err(Error::Acquire {
                    url: self.url.redacted(),
                    detail: format!(
                        "{} (waited pool_timeout, {:?})",
                        watch.shared.none_fit(watch.target),
                        self.pool_timeout
                    ),
                });
            }
        }
    }

    /// Each host's pool figures and, for a cluster, what it was when last
    /// asked.
    pub(crate) fn stats(&self) -> impl Iterator<Item = HostStats> + '_ {
        self.members.iter().map(|member| {
            let (role, timeline, down) = match member.seen() {
                Seen::Up(standing) => (Some(standing.role), standing.timeline, None),
                Seen::Down(reason) => (None, None, Some(reason)),
                Seen::Unknown => (None, None, None),
            };
            HostStats {
                url: member.host.url.redacted(),
                replica: false,
                down,
                lag_seconds: None,
                role,
                timeline,
                pool: member.host.stats(),
            }
        })
    }

    /// Stops the monitor and closes every host's pools; whether every
    /// connection closed within `grace`.
    pub(crate) async fn close(&self, grace: Duration) -> bool {
        if let Some(watch) = &self.watch {
            watch.monitor.abort();
        }
        let closing = self.members.iter().map(|m| m.host.pool.close(grace));
        futures_util::future::join_all(closing)
            .await
            .into_iter()
            .all(|closed| closed)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(watch) = &self.watch {
            watch.monitor.abort();
        }
    }
}

impl Shared {
    /// The index of a host that serves sessions now: the first that fits,
    /// or one of them at random when `load_balance`.
    fn pick(&self, load_balance: bool) -> Option<usize> {
        let choice = self.choice.lock().ok()?;
        if load_balance && choice.serving.len() > 1 {
            let turn = crate::random::below(choice.serving.len());
            return Some(choice.serving[turn]);
        }
        choice.serving.first().copied()
    }

    /// Holds sessions off host `index` until round `needed` has finished.
    fn suspect(&self, index: usize, needed: u64) {
        if let Ok(mut suspect) = self.suspect.lock() {
            *suspect = Some((index, needed));
        }
    }

    /// The round host `index` waits for, if it is suspect.
    fn suspect_until(&self, index: usize) -> Option<u64> {
        match *self.suspect.lock().ok()? {
            Some((suspect, needed)) if suspect == index => Some(needed),
            _ => None,
        }
    }

    fn none_fit(&self, target: TargetSessionAttrs) -> String {
        self.choice
            .lock()
            .map(|choice| choice.none_fit(target))
            .unwrap_or_default()
    }
}

/// `host:port` of a one-host URL, as logs and errors name a host.
fn address(url: &DbUrl) -> String {
    let host = url.host().unwrap_or_default();
    match url.port().or(url.backend().default_port()) {
        Some(port) if host.contains(':') => format!("[{host}]:{port}"),
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}
