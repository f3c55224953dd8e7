//! The headline ratios: sqlreg's throughput over each peer's, per group.

use crate::contenders::Family;
use crate::harness::{GroupResult, Row};

/// The median ops/s of a row, if it has runs.
pub fn median(row: &Row) -> Option<f64> {
    row.throughput().map(|spread| spread.median)
}

/// sqlreg ÷ each peer (above 1: sqlreg is faster) for one group.
pub struct Ratios {
    /// sqlreg (sqlx body) ÷ sqlx pool.
    pub sqlx: Option<f64>,
    /// sqlreg (sqlx body) ÷ sqlx pool sending sqlreg's statements.
    pub sqlx_same: Option<f64>,
    /// sqlreg (entity body) ÷ sea-orm tuned.
    pub sea_orm: Option<f64>,
    /// sqlreg (entity body) ÷ core-lib.
    pub core_lib: Option<f64>,
    /// sqlreg (sqlx body) ÷ pgbench, same script.
    pub pgbench: Option<f64>,
    /// sqlreg (sqlx body) ÷ pgbench -S.
    pub pgbench_s: Option<f64>,
    /// sqlreg (sqlx body) ÷ mariadb-slap, same script.
    pub slap: Option<f64>,
    /// sqlreg (sqlx body) ÷ the group's limit.
    pub limit: Option<f64>,
    /// The limit's name.
    pub limit_label: &'static str,
    /// The contender with the highest median, whoever it is.
    pub fastest: &'static str,
}

impl GroupResult {
    /// The median of one contender, if it ran.
    pub fn median_of(&self, family: Family) -> Option<f64> {
        self.rows
            .iter()
            .find(|r| r.family == family)
            .and_then(median)
    }

    /// This group's headline ratios.
    pub fn ratios(&self) -> Ratios {
        let raw = self.median_of(Family::SqlregRaw);
        let entity = self.median_of(Family::SqlregEntity).or(raw);
        let over = |ours: Option<f64>, theirs: Family| Some(ours? / self.median_of(theirs)?);
        Ratios {
            sqlx: over(raw, Family::Sqlx),
            sqlx_same: over(raw, Family::SqlxSame),
            sea_orm: over(entity, Family::SeaOrmTuned),
            core_lib: over(entity, Family::CoreLib),
            pgbench: over(raw, Family::Pgbench),
            pgbench_s: over(raw, Family::PgbenchSelectOnly),
            slap: over(raw, Family::MariadbSlap),
            limit: over(raw, self.group.limit),
            limit_label: self.group.limit.label(self.group.setup.target),
            fastest: self
                .rows
                .iter()
                .filter_map(|row| Some((median(row)?, row.family)))
                .max_by(|a, b| a.0.total_cmp(&b.0))
                .map_or("—", |(_, family)| family.label(self.group.setup.target)),
        }
    }
}

/// `0.93×`, or `—` when either side is missing.
pub fn show(ratio: Option<f64>) -> String {
    ratio.map_or_else(|| "—".into(), |r| format!("{r:.2}×"))
}

/// One goal of issue 9: a measured figure and the bound it must meet.
pub struct Goal {
    /// What is compared, where.
    pub what: String,
    /// The measured figure (`None`: a side did not run).
    pub value: Option<f64>,
    /// The bound.
    pub bound: Bound,
    /// How the figure reads: `×`, ` hops/session`, ` timeouts`.
    pub unit: &'static str,
}

/// A goal's bound.
#[derive(Clone, Copy)]
pub enum Bound {
    /// The figure must be at least this.
    AtLeast(f64),
    /// The figure must be at most this.
    AtMost(f64),
}

impl Goal {
    /// Whether the run met it (`None`: not measured).
    pub fn met(&self) -> Option<bool> {
        let value = self.value?;
        Some(match self.bound {
            Bound::AtLeast(min) => value >= min,
            Bound::AtMost(max) => value <= max,
        })
    }
}
