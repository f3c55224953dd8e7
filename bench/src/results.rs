//! What a run measured: one row per contender, one result per group —
//! what the harness fills in and the report, tables, charts and ratios read.

use crate::contenders::{Family, Step};
use crate::runner::Sample;
use crate::stats::{Spread, percentile};
use crate::workloads::Group;

/// One contender's results in one group.
pub struct Row {
    /// Which contender.
    pub family: Family,
    /// The measured runs.
    pub runs: Vec<Sample>,
    /// Statements per op, as the server logged them; on SQLite, hops to
    /// sqlx's worker threads per op (`None`: not counted).
    pub statements: Option<f64>,
    /// Client instructions per op, counted under callgrind over several
    /// intervals (`None`: not counted).
    pub instructions: Option<Spread>,
    /// Why it has no (or fewer) results.
    pub error: Option<String>,
}

impl Row {
    /// The spread of the runs' ops/s; `None` without runs.
    pub fn throughput(&self) -> Option<Spread> {
        let values: Vec<f64> = self.runs.iter().map(|s| s.ops_per_sec()).collect();
        (!values.is_empty()).then(|| Spread::of(&values))
    }

    /// p50 and p99 of every latency the runs recorded, in milliseconds with
    /// `decimals` places (`—` without any).
    pub fn latency_percentiles(&self, decimals: usize) -> (String, String) {
        let mut latencies: Vec<_> = self
            .runs
            .iter()
            .flat_map(|s| s.latencies.iter().copied())
            .collect();
        let mut ms = |q| {
            percentile(&mut latencies, q).map_or_else(
                || "—".into(),
                |d| format!("{:.decimals$} ms", d.as_secs_f64() * 1e3),
            )
        };
        (ms(0.5), ms(0.99))
    }
}

/// A group and its rows.
pub struct GroupResult {
    /// What ran.
    pub group: Group,
    /// One row per contender, in table order.
    pub rows: Vec<Row>,
    /// `/proc/loadavg`'s 1-minute figure before and after the group.
    pub load_avg: (f64, f64),
    /// The session the sqlx pool replayed as sqlreg's statements, if it ran.
    pub replayed: Option<Vec<Step>>,
}
