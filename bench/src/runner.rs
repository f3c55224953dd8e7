//! What every contender implements, and the two drivers that turn one
//! session into a measured run: a sequential loop and a fixed-time crowd.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::data;

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
}

/// Failures counted by kind rather than aborting the run.
#[derive(Clone, Copy, Debug, Default)]
pub struct Failures {
    /// "database is locked" / SQLITE_BUSY.
    pub locked: u64,
    /// Pool checkout timeouts.
    pub timeouts: u64,
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
}

/// Drives a [`Client`] with the sequential loop or the crowd.
pub struct Driven<C>(pub Arc<C>);

impl<C: Client> Contender for Driven<C> {
    fn run<'a>(&'a self, load: Load, mark: Mark<'a>) -> BoxFuture<'a, Result<Sample>> {
        Box::pin(async move {
            mark();
            match load {
                Load::Sequential { op, ops } => sequential(&*self.0, op, ops).await,
                Load::Crowd {
                    op,
                    tasks,
                    writers,
                    duration,
                } => crowd(&self.0, op, tasks, writers, duration).await,
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

async fn crowd<C: Client>(
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

/// Counts a lock or timeout failure; any other error ends the run.
fn classify(message: &str, failures: &mut Failures) -> Result<()> {
    let lower = message.to_ascii_lowercase();
    if lower.contains("database is locked") || lower.contains("database is busy") {
        failures.locked += 1;
    } else if lower.contains("timed out") || lower.contains("timeout") {
        failures.timeouts += 1;
    } else {
        return Err(message.into());
    }
    Ok(())
}
