//! sqlreg's latency histograms through the `metrics` facade, registered once
//! per database (no label lookup per event). Every label has a fixed set of
//! values: the database (its redacted URL), an outcome, an operation.

use std::time::Duration;

use metrics::Histogram;

use super::sql::Operation;

/// How a session ended, for its span and `sqlreg_session_duration_seconds`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum SessionOutcome {
    Committed,
    RolledBack,
    /// The commit failed or the connection broke.
    Failed,
    /// An autocommit connection (`connection()`) went back to the pool.
    Released,
}

impl SessionOutcome {
    const ALL: [Self; 4] = [
        Self::Committed,
        Self::RolledBack,
        Self::Failed,
        Self::Released,
    ];

    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Committed => "committed",
            Self::RolledBack => "rolled_back",
            Self::Failed => "failed",
            Self::Released => "released",
        }
    }
}

/// How waiting for a connection ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum WaitOutcome {
    Acquired,
    /// `pool_timeout` passed.
    TimedOut,
    /// The server could not be reached, or the registry was closed.
    Failed,
}

impl WaitOutcome {
    const ALL: [Self; 3] = [Self::Acquired, Self::TimedOut, Self::Failed];

    fn label(self) -> &'static str {
        match self {
            Self::Acquired => "acquired",
            Self::TimedOut => "timed_out",
            Self::Failed => "failed",
        }
    }
}

/// The histograms of one database.
pub(super) struct Histograms {
    session: [Histogram; 4],
    wait: [Histogram; 3],
    /// By operation, then `[ok, error]`.
    statement: [[Histogram; 2]; 5],
}

impl Histograms {
    /// Handles from the recorder installed now (install it before connecting).
    pub(super) fn new(database: &str) -> Self {
        let db = || database.to_owned();
        Self {
            session: SessionOutcome::ALL.map(|outcome| {
                metrics::histogram!(
                    "sqlreg_session_duration_seconds",
                    "database" => db(),
                    "outcome" => outcome.label()
                )
            }),
            wait: WaitOutcome::ALL.map(|outcome| {
                metrics::histogram!(
                    "sqlreg_connection_wait_seconds",
                    "database" => db(),
                    "outcome" => outcome.label()
                )
            }),
            statement: Operation::ALL.map(|operation| {
                ["ok", "error"].map(|outcome| {
                    metrics::histogram!(
                        "sqlreg_statement_duration_seconds",
                        "database" => db(),
                        "operation" => operation.label(),
                        "outcome" => outcome
                    )
                })
            }),
        }
    }

    pub(super) fn session(&self, outcome: SessionOutcome, held: Duration) {
        self.session[outcome as usize].record(held);
    }

    pub(super) fn wait(&self, outcome: WaitOutcome, waited: Duration) {
        self.wait[outcome as usize].record(waited);
    }

    pub(super) fn statement(&self, operation: Operation, ok: bool, took: Duration) {
        self.statement[operation as usize][usize::from(!ok)].record(took);
    }
}
