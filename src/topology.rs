//! The servers behind a registry and which one each session gets: the
//! hosts of `url` (one, or those of a multi-host URL) and the replicas,
//! each a [`Server`] with its health, watched by one monitor; the primary's
//! [`Failover`] policy picks the host that takes sessions, the replicas'
//! [`Reads`] policy where a read session may run. Read-your-writes lives
//! here: the newest write's position ([`LastWrite`]) decides which replica
//! is fresh enough.
//!
//! A plain URL without replicas is one server, never probed: nothing is
//! watched and every session goes there.

mod choice;
mod failover;
mod host_set;
mod monitor;
mod reads;

use std::sync::Arc;
use std::time::Duration;

use sea_orm::DatabaseConnection;
use tokio::time::Instant;

use self::choice::Choice;
use self::failover::Failover;
use self::host_set::HostSet;
use self::monitor::Monitor;
use self::reads::Reads;
use crate::config::DbConfig;
use crate::driver::{Connecting, Prober};
use crate::error::{Error, Result};
use crate::replication::{LastWrite, ReplicationPosition, Standing};
use crate::server::{Answer, Server};
use crate::session::{Mode, Request, Session};
use crate::stats::HostStats;
use crate::url::{DbUrl, TargetSessionAttrs};

/// The servers of one registry.
pub(crate) struct Topology {
    /// The URL as written, every host in it.
    url: DbUrl,
    /// The engine of the host the registry started on (see
    /// [`SqlConnectionRegistry::engine`](crate::SqlConnectionRegistry::engine)).
    engine: DatabaseConnection,
    sets: Arc<Sets>,
    /// `None` when nothing is watched (a plain URL, no replicas).
    monitor: Option<Monitor>,
    pool_timeout: Duration,
}

/// The sets of servers, shared with the monitor.
struct Sets {
    primary: HostSet<Failover>,
    replicas: Option<HostSet<Reads>>,
    /// The newest write's position; only with replicas.
    last_write: Option<Arc<LastWrite>>,
}

impl Sets {
    /// Every server, the hosts of `url` first.
    fn servers(&self) -> impl Iterator<Item = &Arc<Server>> {
        let replicas = self.replicas.iter().flat_map(|set| set.servers());
        self.primary.servers().iter().chain(replicas)
    }

    /// What the host of `url` that serves now said when last asked.
    fn primary_standing(&self) -> Option<Standing> {
        let server = &self.primary.servers()[self.primary.policy().pick()?];
        match server.health().seen().answer {
            Answer::Up(standing) => Some(standing),
            _ => None,
        }
    }
}

impl Topology {
    /// Connects to the server a plain `url` names, or — for a multi-host
    /// URL or one with `target_session_attrs` — asks every host its role,
    /// connects to the one that fits (the others when sessions need them);
    /// builds the replicas' pools (connected lazily: a replica that is down
    /// at startup only sends reads elsewhere), and starts the monitor when
    /// there is anything to watch.
    ///
    /// # Errors
    ///
    /// [`Error::Url`] or [`Error::Config`] for URLs that cannot be used;
    /// [`Error::Connect`] when the chosen host cannot be reached (when
    /// every host is unreachable, the first host's error);
    /// [`Error::Acquire`] when hosts answer but none fits
    /// `target_session_attrs`.
    pub(crate) async fn open(config: &DbConfig) -> Result<Self> {
        let url = config.url.to_db_url()?;
        let replica_urls = config.replica_urls()?;
        let last_write = (!replica_urls.is_empty()).then(|| Arc::new(LastWrite::default()));
        let (primary, probers) = open_primary(&url, config, last_write.clone()).await?;
        let replicas = if replica_urls.is_empty() {
            None
        } else {
            let mut servers = Vec::with_capacity(replica_urls.len());
            for replica in replica_urls {
                let server = Server::open(replica, config, Connecting::Lazily, None).await?;
                servers.push(Arc::new(server));
            }
            Some(HostSet::new(servers, Reads::new(config.routing.clone())))
        };
        let engine = primary
            .servers()
            .iter()
            .find_map(|server| server.database_connection())
            .expect("the host the registry starts on is opened eagerly, with an engine");
        let watched = primary.policy().chooses() || replicas.is_some();
        let sets = Arc::new(Sets {
            primary,
            replicas,
            last_write,
        });
        let monitor = if watched {
            Some(Monitor::start(Arc::clone(&sets), probers, config.clone()).await)
        } else {
            None
        };
        Ok(Self {
            url,
            engine,
            sets,
            monitor,
            pool_timeout: config.session.pool_timeout,
        })
    }

    /// The URL as written (its `Display` hides the password).
    pub(crate) fn url(&self) -> &DbUrl {
        &self.url
    }

    /// The sea-orm connection outside sessions: it stays on the host chosen
    /// when the registry connected.
    pub(crate) fn engine(&self) -> &DatabaseConnection {
        &self.engine
    }

    /// The host of `url` sessions go to now, without waiting (the first
    /// host while none fits). For the engine and figures.
    pub(crate) fn current(&self) -> &Arc<Server> {
        let index = self.sets.primary.policy().pick().unwrap_or(0);
        &self.sets.primary.servers()[index]
    }

    /// A session for `request`: a read session on a replica when one can
    /// serve it, else on the host of `url` that serves now. When none does
    /// (a failover under way) or the chosen one refuses the connection,
    /// waits for the monitor to find one, up to `pool_timeout`.
    ///
    /// # Errors
    ///
    /// As [`Session::open`]; [`Error::Acquire`] when no host fits within
    /// `pool_timeout`, naming what each host was, or when no replica is
    /// usable and `routing.fallback` is `error`.
    pub(crate) async fn session(&self, request: &Request<'_>) -> Result<Session> {
        if request.mode == Mode::ReadOnly
            && let Some(replicas) = &self.sets.replicas
            && let Ok(required) = self.required(request.fresh_as)
            && let Some(session) = replicas.read_session(required, request, &self.url).await?
        {
            return Ok(session);
        }
        let deadline = Instant::now() + self.pool_timeout;
        loop {
            let server = self.primary_server(deadline).await?;
            match Session::open(server, request).await {
                Err(Error::Connect { .. })
                    if self.sets.primary.policy().chooses() && Instant::now() < deadline =>
                {
                    // The host went away since the monitor last asked it.
                    server.mark_suspect();
                }
                outcome => return outcome,
            }
        }
    }

    /// The host of `url` a session goes to, waiting for the monitor while
    /// none fits, or — after one of the chosen host's sessions lost its
    /// connection — until a round that began after the loss has answered
    /// for it (every caller waits, not only the one that saw the loss, so
    /// none spends a retry on a dead pooled connection meanwhile).
    async fn primary_server(&self, deadline: Instant) -> Result<&Arc<Server>> {
        let failover = self.sets.primary.policy();
        let servers = self.sets.primary.servers();
        let Some(monitor) = self.monitor.as_ref().filter(|_| failover.chooses()) else {
            return Ok(&servers[0]);
        };
        let mut rounds = monitor.rounds();
        loop {
            let round = *rounds.borrow_and_update();
            if let Some(index) = failover.pick()
                && !servers[index].health().is_suspect()
            {
                return Ok(&servers[index]);
            }
            monitor.wake();
            let fresh = rounds.wait_for(|&done| done > round);
            if tokio::time::timeout_at(deadline, fresh).await.is_err() {
                return Err(Error::Acquire {
                    url: self.url.redacted(),
                    detail: failover.none_fit(self.pool_timeout),
                });
            }
        }
    }

    /// The position a read session must see: the caller's and, with
    /// `read_your_writes`, the newest write's; `Err` when only the primary
    /// is sure to have it.
    fn required(
        &self,
        fresh_as: Option<&ReplicationPosition>,
    ) -> Result<Option<ReplicationPosition>, ()> {
        let read_your_writes = self
            .sets
            .replicas
            .as_ref()
            .is_some_and(|set| set.policy().read_your_writes());
        let written = match &self.sets.last_write {
            Some(last_write) if read_your_writes => last_write.required()?,
            _ => None,
        };
        Ok(match (written, fresh_as) {
            (Some(written), Some(asked)) if written.covers(asked) => Some(written),
            (_, Some(asked)) => Some(asked.clone()),
            (written, None) => written,
        })
    }

    /// The newest write's commit position, if it is known (with replicas).
    pub(crate) fn write_position(&self) -> Option<ReplicationPosition> {
        self.sets.last_write.as_ref()?.required().ok().flatten()
    }

    /// Every server's figures: the hosts of `url` first, then the replicas.
    pub(crate) fn stats(&self) -> Vec<HostStats> {
        let replicas = self.sets.replicas.iter().flat_map(|set| set.stats(true));
        self.sets.primary.stats(false).chain(replicas).collect()
    }

    /// Stops the monitor and closes every server's pools; whether every
    /// connection of the hosts of `url` closed within `grace`.
    pub(crate) async fn close(&self, grace: Duration) -> bool {
        if let Some(monitor) = &self.monitor {
            monitor.stop();
        }
        let replicas = async {
            if let Some(set) = &self.sets.replicas {
                set.close(grace).await;
            }
        };
        let (closed, ()) = tokio::join!(self.sets.primary.close(grace), replicas);
        closed
    }
}

/// The hosts of `url`: one server for a plain URL; for a multi-host URL
/// (or one with `target_session_attrs`), every host asked its role first,
/// the one that fits connected eagerly, the others lazily. Returns the
/// probers the survey used, for the monitor.
async fn open_primary(
    url: &DbUrl,
    config: &DbConfig,
    last_write: Option<Arc<LastWrite>>,
) -> Result<(HostSet<Failover>, Vec<Prober>)> {
    let target = url.target_session_attrs();
    if target.is_none() && !url.is_multi_host() {
        let server = Server::open(url.clone(), config, Connecting::Eagerly, last_write).await?;
        return Ok((
            HostSet::new(vec![Arc::new(server)], Failover::fixed()),
            Vec::new(),
        ));
    }
    let target = target.unwrap_or(TargetSessionAttrs::Any);
    let urls = url.hosts();
    let addresses: Vec<String> = urls.iter().map(crate::server::address).collect();
    let mut probers: Vec<Prober> = urls.iter().cloned().map(Prober::new).collect();
    let mut answers = monitor::survey(&mut probers, config).await;
    let mut choice = Choice::make(&answers, target, &addresses);
    if choice.serving.is_empty() && answers.iter().all(|a| matches!(a, Answer::Down(_))) {
        // Nothing answered: connecting to the first host says why — or
        // creates the missing database (`create_db`), and then every host
        // is asked again.
        Server::open(urls[0].clone(), config, Connecting::Eagerly, None).await?;
        answers = monitor::survey(&mut probers, config).await;
        choice = Choice::make(&answers, target, &addresses);
    }
    let Some(&serving) = choice.serving.first() else {
        return Err(Error::Acquire {
            url: url.redacted(),
            detail: choice.none_fit(target),
        });
    };
    let mut servers = Vec::with_capacity(urls.len());
    for (index, (host_url, answer)) in urls.into_iter().zip(answers).enumerate() {
        let connecting = if index == serving {
            Connecting::Eagerly
        } else {
            Connecting::Lazily
        };
        let server = Server::open(host_url, config, connecting, last_write.clone()).await?;
        server.health().record(answer, 0);
        servers.push(Arc::new(server));
    }
    let failover = Failover::chosen(target, url.load_balance_hosts(), addresses, choice);
    Ok((HostSet::new(servers, failover), probers))
}
