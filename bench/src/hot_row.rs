//! W6: 8 tasks doing read-modify-write on one hot row. The counter is read
//! before and after each run, so an update that a session reported committed
//! but that another overwrote shows up as lost.

use std::sync::Arc;
use std::time::Duration;

use crate::contenders::Family;
use crate::runner::{self, Client, Mark, Op, Result, Sample};
use crate::targets::Target;

/// The row every W6 session reads and writes back plus one (`items.qty`).
pub const ID: i32 = 1;

/// One measured run: the crowd on the hot row, then the counter's rise
/// against the sessions that reported a commit.
pub async fn run<C: Client>(
    client: &Arc<C>,
    tasks: usize,
    duration: Duration,
    mark: Mark<'_>,
) -> Result<Sample> {
    let before = client.counter().await?;
    let retries_before = client.retries();
    mark();
    let mut sample = runner::crowd(client, Op::Increment, tasks, 0, duration).await?;
    let rose = client.counter().await? - before;
    sample.lost = i64::try_from(sample.ops)? - rose;
    sample.retries = client
        .retries()
        .zip(retries_before)
        .map(|(after, before)| after - before);
    Ok(sample)
}

/// The isolation and session form a contender runs W6 with: the peers as
/// their docs show them, at the server's default; sqlreg with the retrying
/// form at `serializable`.
pub fn isolation(family: Family, target: Target) -> &'static str {
    match (family, target) {
        (Family::SqlregRaw | Family::SqlregEntity, Target::SqliteFile | Target::SqliteMemory) => {
            "serializable (`BEGIN IMMEDIATE`), `transaction`, 3 attempts"
        }
        (Family::SqlregRaw | Family::SqlregEntity, _) => "serializable, `transaction`, 3 attempts",
        (_, Target::SqliteFile | Target::SqliteMemory) => "default: deferred `BEGIN`",
        (_, Target::Postgres) => "default: read committed",
        (_, Target::MariaDb) => "default: repeatable read",
    }
}
