//! The one background task that keeps the topology current: every
//! [`INTERVAL`], or at once when a session lost a connection, it asks every
//! server — the hosts of `url` and the replicas — its role and position in
//! one round trip each, over connections of its own (a [`Prober`] per
//! server, outside the pools), records the answers in each server's health,
//! and lets each set's policy judge them: which host of `url` serves, how
//! far each replica lags, where writes whose position was not read stand.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use tokio::sync::{Notify, watch};

use super::Sets;
use super::host_set::Round;
use crate::config::DbConfig;
use crate::driver::Prober;
use crate::server::{Answer, Server};

/// How often the servers are asked when nobody is waiting.
const INTERVAL: Duration = Duration::from_millis(200);

/// How long the first round, run before the registry is handed out, may
/// take: a server that has not answered by then is asked again later
/// (the registry's own connect already failed fast on the primary).
const FIRST_ROUND_LIMIT: Duration = Duration::from_secs(1);

/// The running monitor, as the topology holds it.
pub(super) struct Monitor {
    task: tokio::task::AbortHandle,
    /// Counts finished rounds, so a caller can wait for a fresh one.
    rounds: watch::Sender<u64>,
    /// Asks for a round now instead of at the next tick.
    wake: Arc<Notify>,
}

impl Monitor {
    /// Starts watching every server of `sets`; `probers` are the first
    /// servers' (the hosts of `url`, from the survey at connect time, or
    /// none), and the others get new ones. The first round runs before this
    /// returns (bounded by [`FIRST_ROUND_LIMIT`]), so the first read
    /// sessions already know which replicas answer and how far behind they
    /// are.
    pub(super) async fn start(sets: Arc<Sets>, mut probers: Vec<Prober>, config: DbConfig) -> Self {
        let servers: Vec<Arc<Server>> = sets.servers().cloned().collect();
        let surveyed = probers.len();
        probers.extend(
            servers[surveyed..]
                .iter()
                .map(|server| Prober::new(server.url().clone())),
        );
        let wake = Arc::new(Notify::new());
        for server in &servers {
            server.health().watch(Arc::clone(&wake));
        }
        let first = round(&sets, &servers, &mut probers, &config);
        let _ = tokio::time::timeout(FIRST_ROUND_LIMIT, first).await;
        let rounds = watch::Sender::new(0);
        let task = tokio::spawn({
            let (wake, rounds) = (Arc::clone(&wake), rounds.clone());
            async move {
                loop {
                    tokio::select! {
                        () = tokio::time::sleep(INTERVAL) => {}
                        () = wake.notified() => {}
                    }
                    round(&sets, &servers, &mut probers, &config).await;
                    rounds.send_modify(|done| *done += 1);
                }
            }
        });
        Self {
            task: task.abort_handle(),
            rounds,
            wake,
        }
    }

    /// The rounds finished so far, to wait on.
    pub(super) fn rounds(&self) -> watch::Receiver<u64> {
        self.rounds.subscribe()
    }

    /// Asks for a round now.
    pub(super) fn wake(&self) {
        self.wake.notify_one();
    }

    pub(super) fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One round: every server asked at once, then judged.
async fn round(sets: &Sets, servers: &[Arc<Server>], probers: &mut [Prober], config: &DbConfig) {
    // Taken before asking: a loss or write counted later is not covered.
    let losses: Vec<u64> = servers.iter().map(|s| s.health().losses()).collect();
    let unplaced = sets.last_write.as_ref().and_then(|w| w.pending());
    let answers = survey(probers, config).await;
    let mut round = Round {
        at: Instant::now(),
        primary: None,
        timeline: None,
    };
    for ((server, answer), losses) in servers.iter().zip(answers).zip(losses) {
        server.health().record(answer, losses);
    }
    sets.primary.observe(&round);
    if let Some(standing) = sets.primary_standing() {
        round.primary = standing.position;
        round.timeline = standing.timeline;
    }
    if let (Some(last_write), Some(unplaced), Some(position)) =
        (&sets.last_write, unplaced, &round.primary)
    {
        last_write.place(position.clone(), unplaced);
    }
    if let Some(replicas) = &sets.replicas {
        replicas.observe(&round);
    }
}

/// Asks every server its role and position at once, one prober per server
/// (kept open for the next round).
pub(super) async fn survey(probers: &mut [Prober], config: &DbConfig) -> Vec<Answer> {
    let asked = probers
        .iter_mut()
        .map(|prober| prober.ask(config, async |probe| probe.role().await));
    join_all(asked)
        .await
        .into_iter()
        .map(|answer| answer.map_or_else(Answer::Down, Answer::Up))
        .collect()
}
