//! `session.leak_warning`: a session held longer than the threshold is
//! reported once with where it was opened, and again when it returns.

use std::panic::Location;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

/// A timer that warns unless the session ends first.
pub(super) struct LeakWatch {
    timer: JoinHandle<()>,
    fired: Arc<AtomicBool>,
    started: Instant,
    opened_at: &'static Location<'static>,
}

impl LeakWatch {
    /// Starts the timer; `None` outside a tokio runtime (nothing to warn from).
    pub(super) fn start(
        threshold: Duration,
        opened_at: &'static Location<'static>,
    ) -> Option<Self> {
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let fired = Arc::new(AtomicBool::new(false));
        let timer = runtime.spawn({
            let fired = Arc::clone(&fired);
            async move {
                tokio::time::sleep(threshold).await;
                fired.store(true, Ordering::Relaxed);
                tracing::warn!(
                    %opened_at,
                    held_for = ?threshold,
                    "session held longer than leak_warning; is it leaking?"
                );
            }
        });
        Some(Self {
            timer,
            fired,
            started: Instant::now(),
            opened_at,
        })
    }

    /// The session ended: stop the timer, and say so if it had warned.
    pub(super) fn finish(self) {
        self.timer.abort();
        if self.fired.load(Ordering::Relaxed) {
            tracing::warn!(
                opened_at = %self.opened_at,
                held_for = ?self.started.elapsed(),
                "session reported by leak_warning has returned its connection"
            );
        }
    }
}
