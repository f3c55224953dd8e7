//! What every contender implements, and the two drivers that turn one
//! session into a measured run: a sequential loop and a fixed-time crowd
//! (W6's hot-row crowd is in `hot_row`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::{data, hot_row};

/// Errors from any driver or tool; the bench only reports them.
pub type BenchError = Box<dyn std::error::Error + Send + Sync>;
/// Result with [`BenchError`].
pub type Result<T, E = BenchError> = std::result::Result<T, E>;
/// A boxed, sendable future (trait objects cannot have `async fn`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The unit of work one session does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Check a connection out and give it back, no statement (W1).
    Checkout,
    /// BEGIN; SELECT … WHERE id = ?; COMMIT (W2, W4, W5 readers).
    SelectById,
    /// A session whose body fails after its SELECT (rolled back), then a good one (W3).
    FailThenSelect,
    /// BEGIN; INSERT …; COMMIT (W5 writers).
    Insert,
    /// BEGIN; read the hot row's counter; write it back plus one; COMMIT (W6).
    Increment,
    /// A write session updating one row, then a read session that must see
    /// the value written (W8's read-your-writes).
    WriteThenRead,
}

/// How a contender is driven for one run.
#[derive(Clone, Copy, Debug)]
pub enum Load {
    /// `ops` sessions one after another, ids from [`data::id_at`].
    Sequential { op: Op, ops: u64 },
    /// `tasks` tasks running sessions for `duration`; with `writers` > 0 the
    /// first `writers` tasks run [`Op::Insert`] and the rest `op`.
    Crowd {
        op: Op,
        tasks: usize,
        writers: usize,
        duration: Duration,
    },
    /// `tasks` tasks running [`Op::Increment`] on the hot row for `duration`;
    /// the counter is read before and after to count lost updates (W6).
    HotRow { tasks: usize, duration: Duration },
}

/// Failures counted by kind rather than aborting the run.
#[derive(Clone, Copy, Debug, Default)]
pub struct Failures {
    /// "database is locked" / SQLITE_BUSY.
    pub locked: u64,
    /// Pool checkout timeouts.
    pub timeouts: u64,
    /// Serialization failures, deadlocks, retries that ran out (W6).
    pub conflicts: u64,
}

impl Failures {
    /// Every failed session, whatever the kind.
    pub fn total(&self) -> u64 {
        self.locked + self.timeouts + self.conflicts
    }
}

/// One measured run.
#[derive(Clone, Debug, Default)]
pub struct Sample {
    /// Sessions completed (a W3 op counts its two sessions as one).
    pub ops: u64,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// Of `ops`, the sessions that wrote (W5's writers).
    pub writes: u64,
    /// Per-session latencies, when the driver records them.
    pub latencies: Vec<Duration>,
    /// Counted failures.
    pub failures: Failures,
    /// W6: committed sessions minus how far the counter rose.
    pub lost: i64,
    /// W6: attempts the library itself ran again (`None`: it never retries).
    pub retries: Option<u64>,
    /// W8: read sessions a replica served (`None`: the registry has none).
    pub on_replica: Option<u64>,
}

impl Sample {
    /// Completed operations per second.
    pub fn ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Called once when the measured part of a run begins, after whatever
/// start-up the contender does inside the run (a process, its connections).
pub type Mark<'a> = Box<dyn FnOnce() + Send + 'a>;

/// Anything that can be measured under a [`Load`].
pub trait Contender: Send + Sync {
    /// Runs the load once, calling `mark` as the measured part begins.
    fn run<'a>(&'a self, load: Load, mark: Mark<'a>) -> BoxFuture<'a, Result<Sample>>;
}

/// A library that runs one session of a kind at a time; the drivers below
/// make it a [`Contender`].
pub trait Client: Send + Sync + 'static {
    /// One session doing `op` with row `id`.
    fn session(&self, op: Op, id: i32, task: usize) -> BoxFuture<'_, Result<()>>;

    /// The hot row's committed counter (W6), read outside any measured session.
    fn counter(&self) -> BoxFuture<'_, Result<i64>> {
        Box::pin(async { Err("this contender does not run the hot-row workload".into()) })
    }

    /// Attempts the library has run again since it was built (`None`: it
    /// never retries on its own).
    fn retries(&self) -> Option<u64> {
        None
    }
}

/// Drives a [`Client`] with the sequential loop or the crowd.
pub struct Driven<C>(pub Arc<C>);

impl<C: Client> Contender for Driven<C> {
    fn run<'a>(&'a self, load: Load, mark: Mark<'a>) -> BoxFuture<'a, Result<Sample>> {
        Box::pin(async move {
            match load {
                Load::Sequential { op, ops } => {
                    mark();
                    sequential(&*self.0, op, ops).await
                }
                Load::Crowd {
                    op,
                    tasks,
                    writers,
                    duration,
                } => {
                    mark();
                    crowd(&self.0, op, tasks, writers, duration).await
                }
                Load::HotRow { tasks, duration } => {
                    hot_row::run(&self.0, tasks, duration, mark).await
                }
            }
        })
    }
}

async fn sequential<C: Client>(client: &C, op: Op, ops: u64) -> Result<Sample> {
    let started = Instant::now();
    for k in 0..ops {
        client.session(op, data::id_at(k), 0).await?;
    }
    Ok(Sample {
        ops,
        elapsed: started.elapsed(),
        ..Sample::default()
    })
}

/// `tasks` tasks running sessions until `duration` is up; the first
/// `writers` run [`Op::Insert`], the rest `op`.
pub async fn crowd<C: Client>(
    client: &Arc<C>,
    op: Op,
    tasks: usize,
    writers: usize,
    duration: Duration,
) -> Result<Sample> {
    let started = Instant::now();
    let deadline = started + duration;
    let handles: Vec<_> = (0..tasks)
        .map(|task| {
            let client = Arc::clone(client);
            let op = if task < writers { Op::Insert } else { op };
            tokio::spawn(async move { crowd_task(&*client, op, task, deadline).await })
        })
        .collect();
    let mut sample = Sample::default();
    for handle in handles {
        let part = handle.await??;
        sample.ops += part.ops;
        sample.writes += part.writes;
        sample.latencies.extend(part.latencies);
        sample.failures.locked += part.failures.locked;
        sample.failures.timeouts += part.failures.timeouts;
        sample.failures.conflicts += part.failures.conflicts;
    }
    sample.elapsed = started.elapsed();
    Ok(sample)
}

async fn crowd_task<C: Client>(
    client: &C,
    op: Op,
    task: usize,
    deadline: Instant,
) -> Result<Sample> {
    let mut sample = Sample::default();
    let mut k = task as u64 * 7;
    while Instant::now() < deadline {
        let began = Instant::now();
        match client.session(op, data::id_at(k), task).await {
            Ok(()) => {
                sample.ops += 1;
                sample.writes += u64::from(op == Op::Insert);
                sample.latencies.push(began.elapsed());
            }
            Err(err) => classify(&err.to_string(), &mut sample.failures)?,
        }
        k += 1;
    }
    Ok(sample)
}

/// Counts a lock, timeout or conflict failure; any other error ends the run.
fn classify(message: &str, failures: &mut Failures) -> Result<()> {
    let lower = message.to_ascii_lowercase();
    if CONFLICTS.iter().any(|c| lower.contains(c)) {
        failures.conflicts += 1;
    } else if lower.contains("database is locked") || lower.contains("database is busy") {
        failures.locked += 1;
    } else if lower.contains("timed out") || lower.contains("timeout") {
        failures.timeouts += 1;
    } else {
        return Err(message.into());
    }
    Ok(())
}

/// How each backend (and sqlreg, when its attempts ran out) words a conflict
/// between concurrent transactions.
const CONFLICTS: [&str; 4] = [
    "gave up after",
    "could not serialize access",
    "deadlock",
    "record has changed since last read",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_each_kind_of_failure_and_ends_on_others() {
        let mut failures = Failures::default();
        let counted = [
            "error returned from database: (code: 5) database is locked",
            "could not serialize access due to concurrent update",
            "Deadlock found when trying to get lock; try restarting transaction",
            "gave up after 3 attempt(s), each ended by a transient conflict; the last: database is locked",
            "pool timed out while waiting for an open connection",
        ];
        for message in counted {
            classify(message, &mut failures).unwrap();
        }
        assert_eq!(
            (failures.locked, failures.conflicts, failures.timeouts),
            (1, 3, 1)
        );
        assert_eq!(failures.total(), 5);
        assert!(classify("relation \"items\" does not exist", &mut failures).is_err());
    }
}
