//! Fault scenarios (issue 3), produced for real on the PostgreSQL and MariaDB
//! servers `scripts/test.sh` starts: restarts under load, killed backends,
//! a frozen server, a stopped server, an exhausted pool, failing statements.
//! Every scenario also checks that the test password never shows.
//!
//! `CI=true bash scripts/test.sh --test faults -- --nocapture` prints the
//! figures each scenario observed.

mod common;
mod faults {
    pub mod harness;
    pub mod outage;
    pub mod pool;
    pub mod server;
}

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use common::{Kind, TestDb};
use faults::harness::{self, Seen, insert_session, sorted_names};
use faults::outage::{frozen_server, stopped_server};
use faults::pool::{exhausted_pool, failed_statement};
use faults::server;
use sea_orm::{ConnectionTrait, Statement};
use sqlreg::SqlConnectionRegistry;

/// One `#[tokio::test]` per server for each scenario `async fn name(TestDb, Seen)`.
macro_rules! on_servers {
    ($($scenario:ident),* $(,)?) => {
        on_servers!(@kind postgres, Postgres, $($scenario),*);
        on_servers!(@kind mariadb, MariaDb, $($scenario),*);
    };
    (@kind $module:ident, $kind:ident, $($scenario:ident),*) => {
        mod $module {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    let kind = $crate::common::Kind::$kind;
                    $crate::harness::run(kind, stringify!($scenario), super::$scenario).await;
                }
            )*
        }
    };
}

on_servers!(
    restart_under_load,
    killed_backends_with_pre_ping,
    killed_backends_without_pre_ping,
    idle_pool_restart_with_pre_ping,
    frozen_server,
    stopped_server,
    exhausted_pool,
    failed_statement,
);

/// What one task of the restart scenario saw: when each session ended, the
/// item it inserted, and whether it committed.
type Outcomes = Vec<(Instant, String, Result<(), sqlreg::Error>)>;

/// Scenario 1: 8 tasks run sessions in a loop while the server restarts.
async fn restart_under_load(db: TestDb, seen: Seen) {
    const TASKS: usize = 8;
    let registry = harness::registry(&db, |_| {}).await;
    let running = Arc::new(AtomicBool::new(true));
    let restarted = Arc::new(OnceLock::<Instant>::new());
    let recovered = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let (registry, running) = (registry.clone(), running.clone());
            let (restarted, recovered) = (restarted.clone(), recovered.clone());
            tokio::spawn(async move {
                let mut outcomes = Outcomes::new();
                let mut counted = false;
                for round in 0.. {
                    if !running.load(Ordering::Relaxed) {
                        break;
                    }
                    let name = format!("task {task} round {round}");
                    let result = insert_session(&registry, &name).await;
                    let now = Instant::now();
                    if !counted && result.is_ok() && restarted.get().is_some_and(|&t| now > t) {
                        counted = true;
                        recovered.fetch_add(1, Ordering::Relaxed);
                    }
                    outcomes.push((now, name, result));
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                outcomes
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let took = server::restart(db.kind).await;
    let restarted = *restarted.get_or_init(Instant::now);
    // The loops go on until every task has committed again (at most 10 s),
    // and for at least 2 s.
    while restarted.elapsed() < Duration::from_secs(2)
        || (recovered.load(Ordering::Relaxed) < TASKS
            && restarted.elapsed() < Duration::from_secs(10))
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    running.store(false, Ordering::Relaxed);
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.expect("no task panics or hangs"));
    }

    let mut failures = Vec::new();
    let mut committed = Vec::new();
    let mut unknown = Vec::new();
    let mut recovery = Duration::ZERO;
    for (task, outcomes) in outcomes.iter().enumerate() {
        let recovered = outcomes
            .iter()
            .find(|(at, _, result)| *at > restarted && result.is_ok())
            .unwrap_or_else(|| panic!("task {task} never succeeded after the restart"));
        recovery = recovery.max(recovered.0 - restarted);
        for (_, name, result) in outcomes {
            match result {
                Ok(()) => committed.push(name.clone()),
                // A commit cut off by the restart may or may not have landed.
                Err(sqlreg::Error::Commit(_)) => unknown.push(name.clone()),
                Err(_) => {}
            }
            failures.extend(result.as_ref().err());
        }
    }
    for err in &failures {
        seen.error(err);
        let text = err.to_string().to_lowercase();
        assert!(
            matches!(
                err,
                sqlreg::Error::Query(_)
                    | sqlreg::Error::Commit(_)
                    | sqlreg::Error::Acquire { .. }
                    | sqlreg::Error::Connect { .. }
            ) && (text.contains("connection") || text.contains("communicating")),
            "a failure names its phase and the lost connection: {err:?}"
        );
    }
    let mut messages: Vec<String> = failures.iter().map(|e| e.to_string()).collect();
    messages.sort();
    messages.dedup();
    println!(
        "restart_under_load {:?}: restart took {took:?}; {} sessions committed, {} failed; \
         every task succeeded again within {recovery:?} after the restart returned; errors: {messages:#?}",
        db.kind,
        committed.len(),
        failures.len()
    );
    let rows = sorted_names(&registry).await;
    println!(
        "restart_under_load {:?}: {} rows checked; {} commits cut off, of which {} landed",
        db.kind,
        rows.len(),
        unknown.len(),
        unknown.iter().filter(|name| rows.contains(name)).count()
    );
    for name in &committed {
        assert!(rows.contains(name), "committed {name:?} is in the table");
    }
    for row in &rows {
        assert!(
            committed.contains(row) || unknown.contains(row),
            "{row:?} is in the table although its session failed before committing"
        );
    }
}

/// Kills every connection the registry opened, from another connection;
/// returns how many were killed.
async fn kill_backends(db: &TestDb, tag: &str) -> usize {
    let killer = SqlConnectionRegistry::connect(db.config.clone())
        .await
        .expect("connect killer");
    let conn = killer.connection().await.expect("killer connection");
    let backend = conn.get_database_backend();
    let query = |sql: String| conn.query_all_raw(Statement::from_string(backend, sql));
    let ours = match db.kind {
        Kind::Postgres => format!("FROM pg_stat_activity WHERE application_name = '{tag}'"),
        _ => format!(
            "FROM information_schema.processlist WHERE db = '{}' AND id <> CONNECTION_ID()",
            db.name
        ),
    };
    let killed = match db.kind {
        Kind::Postgres => {
            let sql = format!("SELECT pg_terminate_backend(pid) AS killed {ours}");
            let rows = query(sql).await.expect("pg_terminate_backend");
            rows.iter()
                .filter(|row| row.try_get::<bool>("", "killed").unwrap())
                .count()
        }
        _ => {
            let rows = query(format!("SELECT CAST(id AS SIGNED) AS id {ours}"))
                .await
                .expect("processlist");
            for row in &rows {
                let id: i64 = row.try_get("", "id").unwrap();
                conn.execute_unprepared(&format!("KILL CONNECTION {id}"))
                    .await
                    .expect("KILL CONNECTION");
            }
            rows.len()
        }
    };
    // Wait until the server has really let go of them.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !query(format!("SELECT 1 AS one {ours}"))
        .await
        .expect("list")
        .is_empty()
    {
        assert!(Instant::now() < deadline, "killed connections linger");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    killed
}

/// Scenario 2: a warm pool of 4 whose backends are all killed.
async fn killed_backends(db: TestDb, seen: Seen, pre_ping: bool) {
    let tag = db.name.clone();
    let registry = harness::registry(&db, |config| {
        config.session.pool_size = 4;
        config.session.max_overflow = 0;
        config.session.pool_pre_ping = pre_ping;
        harness::application_name(config, &tag);
    })
    .await;
    harness::warm(&registry, 4).await;
    let killed = kill_backends(&db, &tag).await;
    assert_eq!(killed, 4, "all 4 pooled connections killed");
    let before = registry.stats();

    let mut failed_at = Vec::new();
    let mut committed = Vec::new();
    for i in 0..20 {
        let name = format!("after kill {i:02}");
        match insert_session(&registry, &name).await {
            Ok(()) => committed.push(name),
            Err(err) => {
                seen.error(&err);
                println!("  session {i} failed: {err}");
                failed_at.push(i);
            }
        }
    }
    let after = registry.stats();
    let evicted = after.evicted - before.evicted;
    println!(
        "killed_backends {:?} pre_ping={pre_ping}: killed {killed}; failed sessions at {failed_at:?}; \
         {} committed; evicted +{evicted}; created +{}",
        db.kind,
        committed.len(),
        after.created - before.created
    );
    if pre_ping {
        assert!(failed_at.is_empty(), "with pre-ping no session fails");
    } else {
        assert!(
            failed_at.iter().all(|&i| i < killed),
            "at most one failure per killed connection, then only successes: {failed_at:?}"
        );
        assert_eq!(
            evicted,
            failed_at.len() as u64,
            "every broken connection is counted as evicted"
        );
    }
    assert_eq!(sorted_names(&registry).await, committed);
    seen.text(format!("{registry:?}"));
}

async fn killed_backends_with_pre_ping(db: TestDb, seen: Seen) {
    killed_backends(db, seen, true).await;
}

async fn killed_backends_without_pre_ping(db: TestDb, seen: Seen) {
    killed_backends(db, seen, false).await;
}

/// Scenario 3: the pool sits idle while the server restarts.
async fn idle_pool_restart_with_pre_ping(db: TestDb, seen: Seen) {
    let registry = harness::registry(&db, |config| {
        config.session.pool_size = 2;
        config.session.pool_pre_ping = true;
    })
    .await;
    harness::warm(&registry, 2).await;
    let took = server::restart(db.kind).await;
    let started = Instant::now();
    let outcome = insert_session(&registry, "after restart").await;
    if let Err(err) = &outcome {
        seen.error(err);
    }
    println!(
        "idle_pool_restart {:?}: restart took {took:?}; first session after it: {outcome:?} in {:?}",
        db.kind,
        started.elapsed()
    );
    outcome.expect("the first session after the restart succeeds");
    assert_eq!(sorted_names(&registry).await, ["after restart"]);
    seen.text(format!("{registry:?}"));
}
