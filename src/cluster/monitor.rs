//! The background task that keeps a cluster's choice current: every
//! [`INTERVAL`], or at once when a session asks, it asks every host its
//! role over a connection of its own (outside the pools, opened again after
//! a failure), chooses the hosts that serve, and drops the idle connections
//! of a host that no longer does.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;

use super::choice::{Choice, Seen};
use super::{Member, Shared};
use crate::config::DbConfig;
use crate::driver::{self, HostConn};
use crate::url::{DbUrl, TargetSessionAttrs};

/// How often the hosts are asked when nobody is waiting.
pub(super) const INTERVAL: Duration = Duration::from_millis(200);

/// Asks every host of `urls` once, over connections closed afterwards.
pub(super) async fn survey(urls: &[DbUrl], config: &DbConfig) -> Vec<Seen> {
    let mut conns = urls.iter().map(|_| None).collect::<Vec<_>>();
    let seen = ask_all(urls, &mut conns, config).await;
    join_all(conns.into_iter().flatten().map(HostConn::close)).await;
    seen
}

/// Starts the monitor; it runs until aborted.
pub(super) fn spawn(
    members: Arc<[Member]>,
    config: DbConfig,
    target: TargetSessionAttrs,
    shared: Arc<Shared>,
) -> tokio::task::AbortHandle {
    let task = tokio::spawn(async move {
        let urls: Vec<DbUrl> = members.iter().map(|m| m.host.url.clone()).collect();
        let mut conns = urls.iter().map(|_| None).collect::<Vec<_>>();
        loop {
            tokio::select! {
                () = tokio::time::sleep(INTERVAL) => {}
                () = shared.wake.notified() => {}
            }
            let seen = ask_all(&urls, &mut conns, &config).await;
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

/// Asks every host at once, reusing and replacing `conns` (one per host).
async fn ask_all(urls: &[DbUrl], conns: &mut [Option<HostConn>], config: &DbConfig) -> Vec<Seen> {
    join_all(
        urls.iter()
            .zip(conns.iter_mut())
            .map(|(url, conn)| ask(url, conn, config)),
    )
    .await
}

/// What one host says it is; `conn` is opened if needed and dropped when
/// it fails. Bounded by `connect_timeout`, so a host that stopped answering
/// cannot hold up the round.
async fn ask(url: &DbUrl, conn: &mut Option<HostConn>, config: &DbConfig) -> Seen {
    let limit = config.session.connect_timeout;
    let open = match conn {
        Some(open) => open,
        None => match HostConn::open(url, config).await {
            Ok(opened) => conn.insert(opened),
            Err(err) => return Seen::Down(err.to_string()),
        },
    };
    let seen = match tokio::time::timeout(limit, open.probe().role()).await {
        Ok(Ok(standing)) => return Seen::Up(standing),
        Ok(Err(err)) => Seen::Down(driver::describe_failure(&err)),
        Err(_) => Seen::Down("no answer within connect_timeout".to_owned()),
    };
    *conn = None;
    seen
}
