//! Counting hops to sqlx's SQLite worker threads, SQLite's round trips.
//!
//! sqlx runs each SQLite connection on a thread of its own
//! (`sqlx-sqlite-worker-N`) and hands it every command — BEGIN, a
//! statement, COMMIT, a ping — over a channel, each with the sender's
//! `tracing::Span::current()`, which the worker enters while it runs the
//! command. So a subscriber that reports one span as current while counting
//! (whatever task asks, sqlx's own return-to-pool tasks included), and
//! counts how often a worker thread enters it, counts the hops exactly.
//! It is the process's global subscriber, yet enables nothing: every
//! callsite stays disabled at the level check, as with no subscriber, and
//! while not counting there is no current span for a worker to enter.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_core::callsite::DefaultCallsite;
use tracing_core::field::FieldSet;
use tracing_core::metadata::{Kind, LevelFilter};
use tracing_core::span::Current;

static COUNTING: AtomicBool = AtomicBool::new(false);
static HOPS: AtomicU64 = AtomicU64::new(0);

static CALLSITE: DefaultCallsite = DefaultCallsite::new(&META);
static META: Metadata<'static> = Metadata::new(
    "sqlreg-bench hop",
    "sqlreg_bench::hops",
    Level::TRACE,
    None,
    None,
    None,
    FieldSet::new(&[], tracing_core::identify_callsite!(&CALLSITE)),
    Kind::SPAN,
);

/// How sqlx names its worker threads.
const WORKER: &str = "sqlx-sqlite-worker";

/// Installs the counter as the global subscriber (once, before any run).
///
/// # Errors
///
/// Another global subscriber is already installed.
pub fn install() -> Result<(), tracing::subscriber::SetGlobalDefaultError> {
    tracing::subscriber::set_global_default(HopCounter)
}

/// Starts counting; returns the hops so far.
pub fn start() -> u64 {
    COUNTING.store(true, Ordering::SeqCst);
    HOPS.load(Ordering::SeqCst)
}

/// Stops counting; returns the hops so far.
pub fn stop() -> u64 {
    COUNTING.store(false, Ordering::SeqCst);
    HOPS.load(Ordering::SeqCst)
}

struct HopCounter;

impl Subscriber for HopCounter {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        Interest::never()
    }

    fn enabled(&self, _: &Metadata<'_>) -> bool {
        false
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(LevelFilter::OFF)
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, _: &Event<'_>) {}

    fn enter(&self, _: &Id) {
        if COUNTING.load(Ordering::Relaxed)
            && std::thread::current()
                .name()
                .is_some_and(|name| name.starts_with(WORKER))
        {
            HOPS.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn exit(&self, _: &Id) {}

    fn current_span(&self) -> Current {
        if COUNTING.load(Ordering::Relaxed) {
            Current::new(Id::from_u64(1), &META)
        } else {
            Current::none()
        }
    }
}
