//! What the topology's monitor last saw of one server, and whether a
//! session has lost a connection to it since the monitor last asked.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::sync::Notify;

use crate::replication::{ReplicationPosition, Standing};

/// What a server said when last asked.
#[derive(Debug, Clone, Default)]
pub(crate) enum Answer {
    /// Not asked yet.
    #[default]
    Unknown,
    /// It answered.
    Up(Standing),
    /// It could not be reached or asked; why.
    Down(String),
}

/// A server's health: the monitor's last answer, a replica's lag, and the
/// connections sessions lost since.
#[derive(Default)]
pub(crate) struct Health {
    seen: Mutex<Seen>,
    /// Connections sessions lost to the server, counted.
    lost: AtomicU64,
    /// How many of those a monitor round that began after them has
    /// answered for: the server is suspect while `lost` is ahead.
    cleared: AtomicU64,
    /// Wakes the monitor; set once a monitor watches the server.
    monitor: OnceLock<Arc<Notify>>,
}

/// What the monitor last wrote.
#[derive(Debug, Clone, Default)]
pub(crate) struct Seen {
    pub(crate) answer: Answer,
    /// A replica's lag behind the primary, judged from positions; `None`
    /// until both have been asked.
    pub(crate) lag: Option<Duration>,
    /// The newest position the server is known to have replayed.
    pub(crate) replayed: Option<ReplicationPosition>,
}

impl Health {
    /// From now on a lost connection wakes `monitor` for a round at once.
    pub(crate) fn watch(&self, monitor: Arc<Notify>) {
        let _ = self.monitor.set(monitor);
    }

    /// Counts a lost connection and wakes the monitor; whether a monitor
    /// watches the server (only then does suspicion keep sessions away).
    pub(crate) fn mark_suspect(&self) -> bool {
        let Some(monitor) = self.monitor.get() else {
            return false;
        };
        self.lost.fetch_add(1, Ordering::AcqRel);
        monitor.notify_one();
        true
    }

    /// Whether a session lost a connection that no round has answered for.
    pub(crate) fn is_suspect(&self) -> bool {
        self.lost.load(Ordering::Acquire) > self.cleared.load(Ordering::Acquire)
    }

    /// The losses counted so far; a monitor round takes this before it asks.
    pub(crate) fn losses(&self) -> u64 {
        self.lost.load(Ordering::Acquire)
    }

    /// What the monitor last saw.
    pub(crate) fn seen(&self) -> Seen {
        self.seen
            .lock()
            .map(|seen| seen.clone())
            .unwrap_or_default()
    }

    /// Records a round's `answer`, asked after `losses` connections were
    /// lost: an answer clears the suspicion those losses raised.
    pub(crate) fn record(&self, answer: Answer, losses: u64) {
        let up = matches!(answer, Answer::Up(_));
        self.update(|seen| seen.answer = answer);
        if up {
            self.cleared.fetch_max(losses, Ordering::AcqRel);
        }
    }

    /// Changes what was seen (a replica's lag, what it replayed).
    pub(crate) fn update(&self, change: impl FnOnce(&mut Seen)) {
        if let Ok(mut seen) = self.seen.lock() {
            change(&mut seen);
        }
    }

    /// Why the server takes no sessions now, if it does not: unreachable
    /// when last asked, or a connection lost since.
    pub(crate) fn down(&self) -> Option<String> {
        match self.seen().answer {
            Answer::Down(reason) => Some(reason),
            _ if self.is_suspect() => Some("a session lost its connection".to_owned()),
            _ => None,
        }
    }
}
