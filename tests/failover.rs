//! Failover on primary/standby pairs of the tests' own (never the shared
//! servers): 8 tasks write through the retrying form over a multi-host URL
//! while the primary crashes and the standby is promoted. Every session
//! that returned `Ok` must have its row on the new primary (with
//! synchronous replication: 0 lost); the figures — failed sessions, time
//! until writes succeed again, rows lost with asynchronous replication —
//! are printed (`-- --nocapture`). Then the old primary comes back: as a
//! standby (pg_rewind), or as a second read-write server (split brain).

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::pair::{MariaPair, PgPair};
use common::server::{self, count_rows, on_replica, read_on_replica};
use sea_orm::ConnectionTrait;
use sqlreg::replication::Role;
use sqlreg::{Config, DbConfig, Error, SqlConnectionRegistry};

const TASKS: i64 = 8;

/// A registry on `url` (a multi-host URL) that sessions keep using across
/// the failover: short timeouts so a dead host is noticed quickly; read
/// sessions go to `replicas`.
async fn registry(url: &str, replicas: &[String]) -> SqlConnectionRegistry {
    let replicas: Vec<String> = replicas.iter().map(|r| format!("'{r}'")).collect();
    let yaml = format!(
        "db:\n  url: '{url}'\n  create_db: false\n  replicas: [{}]\n  session:\n    \
         connect_timeout: 2\n    pool_timeout: 60\n",
        replicas.join(", ")
    );
    let config: DbConfig = Config::from_yaml_str(&yaml).unwrap().at("db").unwrap();
    let db = SqlConnectionRegistry::connect(config).await.unwrap();
    db.session(async |s| {
        s.execute_unprepared("CREATE TABLE ledger (task INT, seq INT, PRIMARY KEY (task, seq))")
            .await?;
        Ok::<_, Error>(())
    })
    .await
    .unwrap();
    db
}

/// What happened to the writes around one failover.
#[derive(Default)]
struct Outcomes {
    /// Rows whose session returned `Ok`, with when it returned.
    acknowledged: Vec<((i64, i64), Instant)>,
    /// Rows whose commit outcome the registry reported as unknown.
    unknown: Vec<(i64, i64)>,
    /// Other errors, as text.
    failed: Vec<String>,
}

/// Runs `TASKS` writers through `transaction()` while `failover` runs, and
/// until writes have succeeded again for a while after it. Returns the
/// outcomes and when the old primary was down (after `crash`).
async fn write_through(
    db: &SqlConnectionRegistry,
    crash: impl Future<Output = ()>,
    promote: impl Future<Output = ()>,
) -> (Outcomes, Instant, Instant) {
    let outcomes = Arc::new(Mutex::new(Outcomes::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..TASKS)
        .map(|task| {
            let (db, outcomes, stop) = (db.clone(), Arc::clone(&outcomes), Arc::clone(&stop));
            tokio::spawn(async move {
                let mut seq = 0;
                while !stop.load(Ordering::Relaxed) {
                    let written = db
                        .transaction(async move |s| {
                            let sql =
                                format!("INSERT INTO ledger (task, seq) VALUES ({task}, {seq})");
                            s.execute_unprepared(&sql).await?;
                            Ok::<_, Error>(())
                        })
                        .await;
                    let mut outcomes = outcomes.lock().unwrap();
                    match written {
                        Ok(()) => outcomes.acknowledged.push(((task, seq), Instant::now())),
                        Err(Error::Commit(_)) => outcomes.unknown.push((task, seq)),
                        Err(err) => outcomes.failed.push(err.to_string()),
                    }
                    seq += 1;
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(800)).await;
    crash.await;
    let crashed = Instant::now();
    promote.await;
    let promoted = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let after = outcomes
            .lock()
            .unwrap()
            .acknowledged
            .iter()
            .filter(|(_, at)| *at > promoted)
            .count();
        if after >= 50 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "writes never succeeded again after the failover"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.await.unwrap();
    }
    let outcomes = Arc::try_unwrap(outcomes)
        .ok()
        .unwrap()
        .into_inner()
        .unwrap();
    (outcomes, crashed, promoted)
}

/// The rows on the server at `url`, read with plain sqlx.
async fn rows_on(url: &str) -> BTreeSet<(i64, i64)> {
    use sqlx::Connection;
    let sql = "SELECT CAST(task AS BIGINT), CAST(seq AS BIGINT) FROM ledger";
    let rows: Vec<(i64, i64)> = if url.starts_with("postgres") {
        let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query_as(sql).fetch_all(&mut conn).await.unwrap()
    } else {
        let mut conn = sqlx::MySqlConnection::connect(url).await.unwrap();
        let sql = "SELECT CAST(task AS SIGNED), CAST(seq AS SIGNED) FROM ledger";
        sqlx::query_as(sql).fetch_all(&mut conn).await.unwrap()
    };
    rows.into_iter().collect()
}

/// Prints the figures and returns how many acknowledged rows are missing.
fn report(
    what: &str,
    outcomes: &Outcomes,
    crashed: Instant,
    promoted: Instant,
    rows: &BTreeSet<(i64, i64)>,
) -> usize {
    let lost = outcomes
        .acknowledged
        .iter()
        .filter(|(row, _)| !rows.contains(row))
        .count();
    let recovered = outcomes
        .acknowledged
        .iter()
        .map(|(_, at)| *at)
        .filter(|at| *at > crashed)
        .min()
        .expect("writes succeeded after the crash");
    let unknown_committed = outcomes
        .unknown
        .iter()
        .filter(|row| rows.contains(row))
        .count();
    println!(
        "{what}: {} sessions acknowledged, {lost} of them lost; {} failed ({:?}); {} commit outcomes \
         reported unknown ({unknown_committed} of those committed); writes succeeded again {:?} \
         after the crash ({:?} after the promotion returned)",
        outcomes.acknowledged.len(),
        outcomes.failed.len(),
        outcomes.failed.iter().take(3).collect::<Vec<_>>(),
        outcomes.unknown.len(),
        recovered - crashed,
        recovered.saturating_duration_since(promoted),
    );
    lost
}

/// Every session the failover interrupted ran again on the new primary:
/// none failed (a commit whose outcome is unknown is reported, not failed).
fn assert_all_retried(outcomes: &Outcomes) {
    assert!(
        outcomes.failed.is_empty(),
        "interrupted sessions are retried on the new primary: {:?}",
        outcomes.failed
    );
}

/// The port of the server a write session runs on.
async fn serving_port(db: &SqlConnectionRegistry) -> u16 {
    db.session(async |s| server::port(s).await).await.unwrap()
}

/// Waits until `host_stats()` says the host on `port` is `role`.
async fn wait_for_role(db: &SqlConnectionRegistry, port: u16, role: Role) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let hosts = db.host_stats();
        let seen = hosts
            .iter()
            .find(|h| h.url.contains(&format!(":{port}/")))
            .and_then(|h| h.role);
        if seen == Some(role) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "port {port} never became {role}: {hosts:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_failover_with_synchronous_replication_loses_nothing() {
    let Some(pair) = PgPair::start("failover_sync").await else {
        return;
    };
    pair.sync(true).await;
    let old_primary = pair.primary_port();
    // The first primary is listed as a replica too: once it is back as a
    // standby, reads may go to it.
    let db = registry(&pair.multi_host_url(), &[pair.url(old_primary)]).await;
    let (outcomes, crashed, promoted) =
        write_through(&db, pair.stop_primary(), pair.promote()).await;
    let new_primary = pair.primary_port();
    assert_ne!(new_primary, old_primary);
    let rows = rows_on(&pair.url(new_primary)).await;
    let lost = report(
        "PostgreSQL, synchronous",
        &outcomes,
        crashed,
        promoted,
        &rows,
    );
    assert_eq!(
        lost, 0,
        "with synchronous replication no acknowledged commit is lost"
    );
    assert_all_retried(&outcomes);
    assert_eq!(serving_port(&db).await, new_primary);

    // The old primary comes back as operators bring it: rewound into a
    // standby of the new one. Writes stay on the new primary.
    pair.rewind().await;
    wait_for_role(&db, old_primary, Role::Standby).await;
    for _ in 0..20 {
        assert_eq!(serving_port(&db).await, new_primary);
    }
    read_on_replica(&db, "ledger").await;
    let (rows, _) = read(&db).await.unwrap();
    assert_eq!(
        rows,
        count_on(&db).await,
        "the rewound standby serves every row the new primary has"
    );
    db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_failover_with_asynchronous_replication_reports_losses() {
    let Some(pair) = PgPair::start("failover_async").await else {
        return;
    };
    let db = registry(&pair.multi_host_url(), &[]).await;
    let (outcomes, crashed, promoted) =
        write_through(&db, pair.stop_primary(), pair.promote()).await;
    let rows = rows_on(&pair.url(pair.primary_port())).await;
    // What asynchronous replication loses is measured, not asserted: the
    // commits the standby had not received when the primary crashed.
    report(
        "PostgreSQL, asynchronous",
        &outcomes,
        crashed,
        promoted,
        &rows,
    );
    assert_all_retried(&outcomes);
    db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_split_brain_keeps_writes_on_the_newer_timeline() {
    common::logs::capture();
    let Some(pair) = PgPair::start("failover_split").await else {
        return;
    };
    let db = registry(&pair.multi_host_url(), &[]).await;
    let old_primary = pair.primary_port();
    pair.stop_primary().await;
    pair.promote().await;
    let new_primary = pair.primary_port();
    assert_eq!(serving_port(&db).await, new_primary);

    // The old primary starts again as a primary: two read-write servers.
    pair.split_brain().await;
    wait_for_role(&db, old_primary, Role::Primary).await;
    let hosts = db.host_stats();
    let timeline = |port: u16| {
        hosts
            .iter()
            .find(|h| h.url.contains(&format!(":{port}/")))
            .and_then(|h| h.timeline)
    };
    assert!(
        timeline(new_primary) > timeline(old_primary),
        "the promoted host is on the newer timeline: {hosts:#?}"
    );
    for _ in 0..20 {
        assert_eq!(
            serving_port(&db).await,
            new_primary,
            "writes never go to the old primary"
        );
    }
    let logs = common::logs::text();
    assert!(
        logs.contains("WARN") && logs.contains("split brain"),
        "the split brain is logged at WARN: {logs}"
    );
    db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_failover_to_the_second_host() {
    let Some(pair) = MariaPair::start("failover_mariadb").await else {
        return;
    };
    let url = format!("{}?target_session_attrs=read-write", pair.multi_host_url());
    let db = registry(&url, &[]).await;
    let old_primary = pair.primary_port();
    let (outcomes, crashed, promoted) =
        write_through(&db, pair.stop_primary(), pair.promote()).await;
    let new_primary = pair.primary_port();
    assert_ne!(new_primary, old_primary);
    let rows = rows_on(&pair.url(new_primary)).await;
    report("MariaDB, asynchronous", &outcomes, crashed, promoted, &rows);
    assert_all_retried(&outcomes);
    assert_eq!(serving_port(&db).await, new_primary);
    db.close().await;
}

/// The rows a read sees, and whether it ran on the standby; through the
/// retrying form, so a read that meets a connection the standby ended runs
/// again.
async fn read(db: &SqlConnectionRegistry) -> Result<(i64, bool), Error> {
    db.read_transaction(async |s| {
        Ok::<_, Error>((count_rows(s, "ledger").await?, on_replica(s).await?))
    })
    .await
}

/// The rows in `ledger`, as a write session (on the primary) sees them.
async fn count_on(db: &SqlConnectionRegistry) -> i64 {
    db.session(async |s| count_rows(s, "ledger").await)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_stopped_replica_sends_reads_to_the_primary_until_it_is_back() {
    let Some(pair) = PgPair::start("replica_stops").await else {
        return;
    };
    let yaml = format!(
        "db:\n  url: '{}'\n  create_db: false\n  replicas: ['{}']\n  session:\n    connect_timeout: 2\n",
        pair.url(pair.primary_port()),
        pair.url(pair.standby_port()),
    );
    let config: DbConfig = Config::from_yaml_str(&yaml).unwrap().at("db").unwrap();
    let db = SqlConnectionRegistry::connect(config).await.unwrap();
    db.session(async |s| {
        s.execute_unprepared("CREATE TABLE ledger (task INT, seq INT, PRIMARY KEY (task, seq))")
            .await?;
        s.execute_unprepared("INSERT INTO ledger VALUES (1, 1)")
            .await?;
        Ok::<_, Error>(())
    })
    .await
    .unwrap();
    read_on_replica(&db, "ledger").await;

    pair.standby(false).await;
    let (mut failed, mut on_primary) = (0, 0);
    for _ in 0..30 {
        match read(&db).await {
            Ok((rows, standby)) => {
                assert_eq!(rows, 1, "no wrong answer");
                assert!(!standby, "the stopped standby served nothing");
                on_primary += 1;
            }
            Err(err) => {
                println!("read on the stopped standby: {err}");
                failed += 1;
            }
        }
    }
    println!("standby stopped: {on_primary} of 30 reads on the primary, {failed} failed");
    // A read that took one of the standby's pooled connections loses it,
    // and runs again on the primary.
    assert_eq!(failed, 0, "reads failed");
    let hosts = db.host_stats();
    assert!(
        hosts[1].down.is_some(),
        "the standby is reported down: {hosts:#?}"
    );

    pair.standby(true).await;
    read_on_replica(&db, "ledger").await;
    assert!(db.host_stats()[1].down.is_none());
    db.close().await;
}
