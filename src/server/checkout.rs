//! Checking a connection out of the pool, and saying clearly why it failed.

use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use futures_util::future::BoxFuture;

use super::Server;
use crate::driver::Conn;
use crate::error::{Error, Result};
use crate::pool::CheckoutError;
use crate::stats::Gauge;

impl Server {
    /// Checks a connection out, turning the pool's errors into ones that say
    /// what the pool looked like or why the server could not be reached.
    pub(crate) async fn acquire(&self) -> Result<Conn> {
        let started = Instant::now();
        let waiter = Gauge::enter(&self.counters.waiting);
        let acquired = FinishOnDrop(Some(self.pool.acquire())).await;
        let waiting = self.counters.waiting.load(Ordering::Relaxed);
        drop(waiter);
        acquired.map_err(|err| self.acquire_error(err, started.elapsed(), waiting))
    }

    fn acquire_error(&self, err: CheckoutError, waited: Duration, waiting: u32) -> Error {
        let url = self.url.redacted();
        match err {
            CheckoutError::TimedOut => {
                self.counters.timed_out();
                let stats = self.stats();
                Error::PoolTimeout {
                    url,
                    waited,
                    size: stats.size,
                    in_use: stats.in_use,
                    idle: stats.idle,
                    waiting,
                    max: stats.max,
                    last_error: self.pool.last_failure().map(|f| f.to_string()),
                }
            }
            CheckoutError::Closed => Error::Closed { url },
            CheckoutError::Connect(failure) => Error::Connect {
                url,
                reason: failure.reason,
                detail: failure.detail,
            },
        }
    }
}

/// A checkout that, if its caller gives up (a tight timeout, a cancelled
/// task), finishes in the background instead of being dropped: a connection
/// half-way through its handshake then lands in the pool for the next caller.
/// Dropping it would abandon the handshake, and under steady cancellation a
/// pool that needs a new connection would never get one.
struct FinishOnDrop(Option<BoxFuture<'static, Result<Conn, CheckoutError>>>);

impl Future for FinishOnDrop {
    type Output = Result<Conn, CheckoutError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(acquire) = self.0.as_mut() else {
            return Poll::Ready(Err(CheckoutError::Closed));
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
