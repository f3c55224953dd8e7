//! The background task that keeps a cluster's choice current: every
//! [`INTERVAL`], or at once when a session asks, it asks every host its
//! role over a connection of its own (a [`Prober`], outside the pools),
//! chooses the hosts that serve, and drops the idle connections of a host
//! that no longer does.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;

use super::choice::{Choice, Seen};
use super::{Member, Shared};
use crate::config::DbConfig;
use crate::driver::Prober;
use crate::url::TargetSessionAttrs;

/// How often the hosts are asked when nobody is waiting.
pub(super) const INTERVAL: Duration = Duration::from_millis(200);

/// Starts the monitor on `probers` (one per member, in order, as the
/// first survey left them); it runs until aborted.
pub(super) fn spawn(
    members: Arc<[Member]>,
    mut probers: Vec<Prober>,
    config: DbConfig,
    target: TargetSessionAttrs,
    shared: Arc<Shared>,
) -> tokio::task::AbortHandle {
    let task = tokio::spawn(async move {
        loop {
            tokio::select! {
                () = tokio::time::sleep(INTERVAL) => {}
                () = shared.wake.notified() => {}
            }
            let seen = survey(&mut probers, &config).await;
            for (member, seen) in members.iter().zip(&seen) {
                if let Ok(mut last) = member.seen.lock() {
                    *last = seen.clone();
                }
            }
            let choice = Choice::make(&seen, target, &shared.addresses);
            let Ok(before) = shared
                .choice
                .lock()
                .map(|mut current| std::mem::replace(&mut *current, choice.clone()))
            else {
                return;
            };
            choice.announce(&shared.addresses, Some(&before));
            for index in before.serving {
                if !choice.serving.contains(&index) {
                    members[index].host.pool.drop_idle();
                }
            }
            shared.rounds.send_modify(|done| *done += 1);
        }
    });
    task.abort_handle()
}

/// Asks every host its role at once, one prober per host (kept open for
/// the next round).
pub(super) async fn survey(probers: &mut [Prober], config: &DbConfig) -> Vec<Seen> {
    let asked = probers
        .iter_mut()
        .map(|prober| prober.ask(config, async |probe| probe.role().await));
    join_all(asked)
        .await
        .into_iter()
        .map(|answer| answer.map_or_else(Seen::Down, Seen::Up))
        .collect()
}
