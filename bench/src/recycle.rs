//! `sqlreg-bench recycle`: how evenly `pool_recycle` replaces connections
//! under steady load (issue 22: "with `pool_size: 10`, `pool_recycle: 5`,
//! over a minute of steady load, connections replaced per second stay
//! ≤ 2× the mean"). Ten tasks run one-statement sessions on PostgreSQL
//! without pause; the ten connections open together, as at startup; each
//! second, the connections the registry opened (its own `created` count)
//! are the ones it replaced.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sea_orm::ConnectionTrait;
use sqlreg::{Config, DbConfig, SqlConnectionRegistry};

use crate::runner::Result;
use crate::targets::{Servers, Target};

const TASKS: usize = 10;

/// Runs the measurement (`quick`: 8 seconds, with `pool_recycle: 1`) and
/// prints the connections replaced in each second, their mean and the
/// busiest second's ratio to it.
pub async fn run(servers: &Servers, quick: bool) -> Result<()> {
    let (seconds, recycle) = if quick { (8, 1) } else { (60, 5) };
    let yaml = format!(
        "db:\n  url: {}\n  session:\n    pool_size: {TASKS}\n    max_overflow: 0\n    \
         pool_recycle: {recycle}\n",
        servers.yaml_url(Target::Postgres)
    );
    let config: DbConfig = Config::from_yaml_str(&yaml)?.at("db")?;
    let db = Arc::new(SqlConnectionRegistry::connect(config).await?);
    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let (db, stop) = (Arc::clone(&db), Arc::clone(&stop));
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    db.session(async |s| {
                        s.execute_unprepared("SELECT 1").await?;
                        Ok::<_, sqlreg::Error>(())
                    })
                    .await?;
                }
                Ok::<_, sqlreg::Error>(())
            })
        })
        .collect();
    while db.stats().size < u32::try_from(TASKS)? {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut last = db.stats().created;
    let mut replaced = Vec::with_capacity(seconds);
    for _ in 0..seconds {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let created = db.stats().created;
        replaced.push(created - last);
        last = created;
    }
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await??;
    }
    let total: u64 = replaced.iter().sum();
    #[allow(clippy::cast_precision_loss)] // a minute's count
    let mean = total as f64 / replaced.len() as f64;
    let busiest = replaced.iter().copied().max().unwrap_or(0);
    println!(
        "pool_size {TASKS}, pool_recycle {recycle} s, {TASKS} tasks on PostgreSQL for {seconds} s: \
         connections replaced per second {replaced:?}; {total} in all, mean {mean:.2}/s, busiest \
         second {busiest} = {:.2}× the mean",
        busiest as f64 / mean
    );
    Ok(())
}
