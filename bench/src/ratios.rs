//! The headline ratios: sqlreg's throughput over each peer's, per group,
//! taken within each round (both ran in it, minutes apart at most) and
//! summarised over the rounds — not the ratio of two medians, which can
//! pair a slow round of one with a fast round of the other.

use crate::contenders::Family;
use crate::results::{GroupResult, Row};
use crate::stats::Spread;

/// The median ops/s of a row, if it has runs.
pub fn median(row: &Row) -> Option<f64> {
    row.throughput().map(|spread| spread.median)
}

/// sqlreg ÷ each peer (above 1: sqlreg is faster) for one group, per round.
pub struct Ratios {
    /// sqlreg (sqlx body) ÷ sqlx pool.
    pub sqlx: Option<Spread>,
    /// sqlreg (sqlx body) ÷ sqlx pool sending sqlreg's statements.
    pub sqlx_same: Option<Spread>,
    /// sqlreg (entity body) ÷ sea-orm tuned.
    pub sea_orm: Option<Spread>,
    /// sqlreg (entity body) ÷ core-lib.
    pub core_lib: Option<Spread>,
    /// sqlreg (sqlx body) ÷ pgbench, same script.
    pub pgbench: Option<Spread>,
    /// sqlreg (sqlx body) ÷ pgbench -S.
    pub pgbench_s: Option<Spread>,
    /// sqlreg (sqlx body) ÷ mariadb-slap, same script.
    pub slap: Option<Spread>,
    /// sqlreg (sqlx body) ÷ the group's limit.
    pub limit: Option<Spread>,
    /// The limit's name.
    pub limit_label: &'static str,
    /// The contender with the highest median, whoever it is.
    pub fastest: &'static str,
}

impl GroupResult {
    /// The median of one contender, if it ran.
    pub fn median_of(&self, family: Family) -> Option<f64> {
        self.row(family).and_then(median)
    }

    /// One contender's row, if it is in the group.
    pub fn row(&self, family: Family) -> Option<&Row> {
        self.rows.iter().find(|r| r.family == family)
    }

    /// `ours` ÷ `theirs` within each round both ran (a contender that fails
    /// is retired, so its runs are the first rounds): median and min–max.
    pub fn per_round(&self, ours: Family, theirs: Family) -> Option<Spread> {
        let (ours, theirs) = (self.row(ours)?, self.row(theirs)?);
        let rounds: Vec<f64> = ours
            .runs
            .iter()
            .zip(&theirs.runs)
            .map(|(a, b)| a.ops_per_sec() / b.ops_per_sec().max(1e-9))
            .collect();
        (!rounds.is_empty()).then(|| Spread::of(&rounds))
    }

    /// This group's headline ratios.
    pub fn ratios(&self) -> Ratios {
        let raw = Family::SqlregRaw;
        let entity = if self.median_of(Family::SqlregEntity).is_some() {
            Family::SqlregEntity
        } else {
            raw
        };
        Ratios {
            sqlx: self.per_round(raw, Family::Sqlx),
            sqlx_same: self.per_round(raw, Family::SqlxSame),
            sea_orm: self.per_round(entity, Family::SeaOrmTuned),
            core_lib: self.per_round(entity, Family::CoreLib),
            pgbench: self.per_round(raw, Family::Pgbench),
            pgbench_s: self.per_round(raw, Family::PgbenchSelectOnly),
            slap: self.per_round(raw, Family::MariadbSlap),
            limit: self.per_round(raw, self.group.limit),
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

/// `0.93× (0.88–1.01)`: the median per-round ratio and its range, or `—`.
pub fn show_rounds(ratio: Option<Spread>) -> String {
    ratio.map_or_else(
        || "—".into(),
        |r| format!("{:.2}× ({:.2}–{:.2})", r.median, r.min, r.max),
    )
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
