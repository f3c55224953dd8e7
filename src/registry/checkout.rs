//! Checking a connection out of the pool, and saying clearly why it failed.

use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use futures_util::future::BoxFuture;

use super::SqlConnectionRegistry;
use crate::driver::{self, Conn};
use crate::error::{ConnectFailure, Error, Result};
use crate::stats::Gauge;

/// How long one probe's verdict on an unreachable server is reused by the
/// other callers waiting at the same time.
const PROBE_REUSE: Duration = Duration::from_secs(1);

/// Why a direct connection attempt failed: its class and the driver's message.
pub(super) type ProbeFailure = (ConnectFailure, String);

impl SqlConnectionRegistry {
    /// Checks a connection out, turning sqlx's errors into ones that say what
    /// the pool looked like. A checkout still waiting after `connect_timeout`
    /// while the pool is trying to open connections probes the server, so a
    /// server that is down is reported promptly with its cause.
    pub(super) async fn acquire(&self) -> Result<Conn> {
        let started = Instant::now();
        let waiter = Gauge::enter(&self.inner.counters.waiting);
        let mut acquire = FinishOnDrop(Some(self.inner.pool.acquire()));
        let connect_timeout = self.inner.config.session.connect_timeout;
        let acquired = match tokio::time::timeout(connect_timeout, &mut acquire).await {
            Ok(acquired) => acquired,
            Err(_) => {
                if let Some((reason, detail)) = self.probe().await {
                    return Err(Error::Connect {
                        url: self.inner.url.redacted(),
                        reason,
                        detail,
                    });
                }
                acquire.await
            }
        };
        let waiting = self.inner.counters.waiting.load(Ordering::Relaxed);
        drop(waiter);
        acquired.map_err(|err| self.acquire_error(err, started.elapsed(), waiting))
    }

    fn acquire_error(&self, err: sqlx::Error, waited: Duration, waiting: u32) -> Error {
        let url = self.inner.url.redacted();
        match err {
            sqlx::Error::PoolTimedOut => {
                self.inner.counters.timed_out();
                let stats = self.stats();
                let last_error = self
                    .inner
                    .last_probe
                    .try_lock()
                    .ok()
                    .and_then(|probe| probe.as_ref().and_then(|(_, found)| found.clone()))
                    .map(|(reason, detail)| format!("{reason} ({detail})"));
                Error::PoolTimeout {
                    url,
                    waited,
                    size: stats.size,
                    in_use: stats.in_use,
                    idle: stats.idle,
                    waiting,
                    max: stats.max,
                    last_error,
                }
            }
            sqlx::Error::PoolClosed => Error::Closed { url },
            other => Error::Acquire {
                detail: driver::redact(&self.inner.url, &other.to_string()),
                url,
            },
        }
    }

    /// Why the pool cannot open connections, if it is trying and failing:
    /// one direct connection attempt, whose verdict concurrent callers share.
    async fn probe(&self) -> Option<ProbeFailure> {
        let pool = &self.inner.pool;
        // sqlx counts connections still being opened in `size()`, so only
        // sessions holding connections say whether the pool is merely busy.
        if self.inner.counters.in_use.load(Ordering::Relaxed) >= pool.max_size() {
            return None;
        }
        let mut last = self.inner.last_probe.lock().await;
        if let Some((at, found)) = last.as_ref()
            && at.elapsed() < PROBE_REUSE
        {
            return found.clone();
        }
        let timeout = self.inner.config.session.connect_timeout;
        let found = pool.probe(&self.inner.url, timeout).await.err();
        *last = Some((Instant::now(), found.clone()));
        found
    }
}

/// A checkout that, if its caller gives up (a tight timeout, a cancelled
/// task), finishes in the background instead of being dropped: a connection
/// half-way through its handshake then lands in the pool for the next caller.
/// Dropping it would abandon the handshake, and under steady cancellation a
/// pool that needs a new connection would never get one.
struct FinishOnDrop(Option<BoxFuture<'static, Result<Conn, sqlx::Error>>>);

impl Future for FinishOnDrop {
    type Output = Result<Conn, sqlx::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(acquire) = self.0.as_mut() else {
            return Poll::Ready(Err(sqlx::Error::PoolClosed));
        };
        let outcome = std::task::ready!(acquire.poll_unpin(cx));
        self.0 = None;
        Poll::Ready(outcome)
    }
}

impl Drop for FinishOnDrop {
    fn drop(&mut self) {
        if let Some(acquire) = self.0.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(acquire);
        }
    }
}
