//! sqlreg on a real Patroni cluster (the test script's: etcd, three
//! PostgreSQL 15 nodes in `synchronous_mode`, `ttl: 10`, `loop_wait: 2`,
//! HAProxy in front on Patroni's `/primary` and `/replica` checks with
//! `on-marked-down shutdown-sessions`), through sqlreg's public API only,
//! with two URL forms:
//!
//! - a multi-host URL of the three nodes with
//!   `target_session_attrs=read-write`;
//! - HAProxy's primary port as a single-host URL, with
//!   `target_session_attrs=read-write` (so sqlreg probes it and waits for
//!   it through a failover) and plain (never probed: sessions opened while
//!   HAProxy has no primary fail at once).
//!
//! 8 tasks per registry write through `db.transaction(..)` while the
//! leader's postmaster is SIGKILLed (Patroni restarts it in place), while
//! the leader's Patroni and postmaster are SIGKILLed (the synchronous
//! standby is promoted once the leader key expires), and through a planned
//! `patronictl switchover`. Figures are printed (`-- --nocapture`): rows
//! acknowledged, lost (asserted 0: synchronous mode), failed `transaction()`
//! calls (asserted 0 but for `Error::Commit`, a commit whose outcome the
//! lost connection hid — counted, and looked up), the time from the event
//! to the first write that began after it and committed, and the longest
//! pause between two commits. Reads through `replicas:` (the three nodes,
//! or HAProxy's replica port) keep working through a switchover and a
//! failover, and never miss the registry's own write.
//!
//! `sqlreg check` over the three nodes shows the leader as a primary with
//! its synchronous and asynchronous standbys, and each standby as one of
//! the leader, as Patroni's REST API says (from the servers alone).
//!
//! The tests share the cluster: each holds its lock for the whole run and
//! leaves it healthy (a leader, a synchronous standby, a third node
//! streaming).

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::patroni::Cluster;
use common::server::{self, number, on_replica};
use sea_orm::ConnectionTrait;
use sqlreg::{Config, DbConfig, Error, SqlConnectionRegistry};

const TASKS: i64 = 8;

/// Acknowledged writes each registry must see after an event before the
/// writers stop.
const AFTER: usize = 50;

/// The README's sample: the three nodes, libpq style, sessions to the one
/// that takes writes. `connect_timeout` short (a round of the monitor waits
/// for its slowest host), `pool_timeout` well above Patroni's `ttl` (10 s)
/// plus `loop_wait` (2 s): sessions wait that long for a new leader.
const MULTI_HOST_YAML: &str = "db:
  url: postgresql://${oc.env:SQLREG_TEST_USER}:${oc.env:PW}@${oc.env:HOSTS}/${oc.env:SQLREG_TEST_DATABASE}?target_session_attrs=read-write
  create_db: false
  session:
    connect_timeout: 2
    pool_timeout: 30
";

/// A registry on `url`, `replicas` under `replicas:` (read-your-writes on).
async fn registry(url: &str, replicas: &[String]) -> SqlConnectionRegistry {
    let replicas: Vec<String> = replicas.iter().map(|r| format!("'{r}'")).collect();
    let yaml = format!(
        "db:\n  url: '{url}'\n  create_db: false\n  replicas: [{}]\n  session:\n    \
         connect_timeout: 2\n    pool_timeout: 30\n",
        replicas.join(", ")
    );
    let config: DbConfig = Config::from_yaml_str(&yaml).unwrap().at("db").unwrap();
    SqlConnectionRegistry::connect(config).await.unwrap()
}

async fn create_table(db: &SqlConnectionRegistry, table: &str) {
    let sql = format!("CREATE TABLE {table} (task INT, seq INT, PRIMARY KEY (task, seq))");
    db.session(async |s| {
        s.execute_unprepared(&sql).await?;
        Ok::<_, Error>(())
    })
    .await
    .unwrap();
}

/// The port of the server a write session runs on (through HAProxy: the
/// node behind it).
async fn serving_port(db: &SqlConnectionRegistry) -> u16 {
    db.session(async |s| server::port(s).await).await.unwrap()
}

/// One registry writing, and what happened to its writes.
struct Writer {
    what: String,
    db: SqlConnectionRegistry,
    table: String,
    /// Whether its figures are asserted (the plain HAProxy URL's are only
    /// reported).
    strict: bool,
    outcomes: Arc<Mutex<Outcomes>>,
    /// The next row's `seq`, across events (the table keeps every row).
    seq: Arc<AtomicI64>,
}

#[derive(Default)]
struct Outcomes {
    /// Rows whose `transaction()` returned `Ok`: the row, when the call
    /// began and when it returned.
    acknowledged: Vec<((i64, i64), Instant, Instant)>,
    /// Rows whose commit outcome was reported unknown (`Error::Commit`).
    unknown: Vec<(i64, i64)>,
    /// Other errors, as text.
    failed: Vec<String>,
}

impl Writer {
    async fn new(what: &str, url: &str, strict: bool) -> Self {
        let db = registry(url, &[]).await;
        let table = common::unique_name("patroni_w");
        create_table(&db, &table).await;
        Self {
            what: what.to_owned(),
            db,
            table,
            strict,
            outcomes: Arc::default(),
            seq: Arc::default(),
        }
    }

    fn acknowledged_after(&self, at: Instant) -> usize {
        self.outcomes
            .lock()
            .unwrap()
            .acknowledged
            .iter()
            .filter(|(_, began, _)| *began > at)
            .count()
    }
}

/// Runs `TASKS` writers per registry through `transaction()` while `event`
/// runs (it returns the instant of the kill / switchover, and returns
/// itself once the cluster is healthy again), and until every registry has
/// had `AFTER` writes that began after that instant acknowledged.
async fn write_through(writers: &[Writer], event: impl Future<Output = Instant>) -> Instant {
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for writer in writers {
        for task in 0..TASKS {
            let (db, outcomes, stop, seq) = (
                writer.db.clone(),
                Arc::clone(&writer.outcomes),
                Arc::clone(&stop),
                Arc::clone(&writer.seq),
            );
            let sql = format!("INSERT INTO {} (task, seq) VALUES ({task}, ", writer.table);
            tasks.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let n = seq.fetch_add(1, Ordering::Relaxed);
                    let began = Instant::now();
                    let sql = format!("{sql}{n})");
                    let written = db
                        .transaction(async |s| {
                            s.execute_unprepared(&sql).await?;
                            Ok::<_, Error>(())
                        })
                        .await;
                    let failed = {
                        let mut outcomes = outcomes.lock().unwrap();
                        match written {
                            Ok(()) => {
                                let done = Instant::now();
                                outcomes.acknowledged.push(((task, n), began, done));
                                false
                            }
                            Err(Error::Commit(_)) => {
                                outcomes.unknown.push((task, n));
                                false
                            }
                            Err(err) => {
                                outcomes.failed.push(err.to_string());
                                true
                            }
                        }
                    };
                    // The plain HAProxy URL fails at once while HAProxy
                    // has no primary: no busy loop meanwhile.
                    if failed {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }));
        }
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    let at = event.await;
    let deadline = Instant::now() + Duration::from_secs(90);
    while writers.iter().any(|w| w.acknowledged_after(at) < AFTER) {
        assert!(
            Instant::now() < deadline,
            "writes never succeeded again after the event"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    at
}

/// The rows of `table` on the current leader, read with plain sqlx.
async fn rows_on_leader(cluster: &Cluster, table: &str) -> BTreeSet<(i64, i64)> {
    use sqlx::Connection;
    let (_, port) = cluster.leader().await;
    let mut conn = sqlx::PgConnection::connect(&cluster.url(port))
        .await
        .unwrap();
    let sql = format!("SELECT task::bigint, seq::bigint FROM {table}");
    let rows: Vec<(i64, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .fetch_all(&mut conn)
        .await
        .unwrap();
    rows.into_iter().collect()
}

/// Prints one writer's figures for `event` (at `at`), asserts them when it
/// is strict, and clears them for the next event.
async fn report(cluster: &Cluster, event: &str, at: Instant, writer: &Writer) {
    let rows = rows_on_leader(cluster, &writer.table).await;
    let mut outcomes = writer.outcomes.lock().unwrap();
    let lost = outcomes
        .acknowledged
        .iter()
        .filter(|(row, _, _)| !rows.contains(row))
        .count();
    let unknown_committed = outcomes
        .unknown
        .iter()
        .filter(|row| rows.contains(row))
        .count();
    let first = outcomes
        .acknowledged
        .iter()
        .filter(|(_, began, _)| *began > at)
        .map(|(_, _, done)| *done)
        .min()
        .expect("writes succeeded after the event");
    let mut commits: Vec<Instant> = outcomes.acknowledged.iter().map(|(_, _, d)| *d).collect();
    commits.sort();
    let paused = commits
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or_default();
    println!(
        "{event}, {}: {} acknowledged, {lost} lost; {} failed {:?}; {} commit outcomes unknown \
         ({unknown_committed} of them committed); first write begun after the event committed \
         {:.2} s after it; writes paused at most {:.2} s",
        writer.what,
        outcomes.acknowledged.len(),
        outcomes.failed.len(),
        outcomes.failed.iter().take(2).collect::<Vec<_>>(),
        outcomes.unknown.len(),
        (first - at).as_secs_f64(),
        paused.as_secs_f64(),
    );
    assert_eq!(
        lost, 0,
        "{}: synchronous mode loses no acknowledged commit",
        writer.what
    );
    if writer.strict {
        assert!(
            outcomes.failed.is_empty(),
            "{}: every interrupted transaction() ran again on the leader: {:?}",
            writer.what,
            outcomes.failed
        );
    }
    *outcomes = Outcomes::default();
}

/// The writers of the unplanned failover and switchover tests: the
/// multi-host URL, HAProxy with `target_session_attrs=read-write`, and
/// plain HAProxy (figures reported, failures not asserted).
async fn writers(cluster: &Cluster) -> Vec<Writer> {
    let haproxy = cluster.url(cluster.haproxy_port());
    vec![
        Writer::new("multi-host URL", &cluster.multi_host_url(), true).await,
        Writer::new(
            "HAProxy, target_session_attrs=read-write",
            &format!("{haproxy}?target_session_attrs=read-write"),
            true,
        )
        .await,
        Writer::new("HAProxy, plain", &haproxy, false).await,
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_url_forms_reach_the_leader() {
    let Some(cluster) = Cluster::get("both_url_forms_reach_the_leader") else {
        return;
    };
    let _lock = cluster.lock().await;
    let (_, leader) = cluster.leader().await;

    // The README's sample config, as a user writes it.
    let hosts: Vec<String> = cluster
        .ports()
        .iter()
        .map(|p| format!("127.0.0.1:{p}"))
        .collect();
    let pw: String = percent_encoding::utf8_percent_encode(
        &std::env::var("SQLREG_TEST_PASSWORD").unwrap(),
        percent_encoding::NON_ALPHANUMERIC,
    )
    .to_string();
    // SAFETY: no other thread of this test binary reads the environment
    // while this test sets these two (the tests hold the cluster lock).
    unsafe {
        std::env::set_var("HOSTS", hosts.join(","));
        std::env::set_var("PW", pw);
    }
    let config: DbConfig = Config::from_yaml_str(MULTI_HOST_YAML)
        .unwrap()
        .at("db")
        .unwrap();
    let db = SqlConnectionRegistry::connect(config).await.unwrap();
    for _ in 0..10 {
        assert_eq!(serving_port(&db).await, leader);
    }
    let roles: Vec<_> = db
        .host_stats()
        .iter()
        .map(|h| (h.url.clone(), h.role))
        .collect();
    println!("multi-host URL, hosts as sqlreg sees them: {roles:?}");
    db.close().await;

    for url in [
        cluster.url(cluster.haproxy_port()),
        format!(
            "{}?target_session_attrs=read-write",
            cluster.url(cluster.haproxy_port())
        ),
    ] {
        let db = registry(&url, &[]).await;
        for _ in 0..10 {
            assert_eq!(serving_port(&db).await, leader, "{url}");
        }
        db.close().await;
    }
    // HAProxy's replica port: a replica.
    let db = registry(&cluster.url(cluster.haproxy_replica_port()), &[]).await;
    let on = db
        .read_session(async |s| on_replica(s).await)
        .await
        .unwrap();
    assert!(on, "HAProxy's replica port leads to a replica");
    db.close().await;
}

/// `sqlreg check` (the binary) over the three nodes says what Patroni's
/// REST API says, from the servers alone: the leader a primary whose
/// standbys are the other two, exactly one of them synchronous
/// (`synchronous_mode: true`), each standby streaming from the leader —
/// in the text report and in `--json`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_shows_each_nodes_role() {
    let Some(cluster) = Cluster::get("check_shows_each_nodes_role") else {
        return;
    };
    let _lock = cluster.lock().await;
    let members = cluster.members().await;
    let role_of = |role: &str| -> (String, u16) {
        let found: Vec<_> = members.iter().filter(|m| m.role == role).collect();
        assert_eq!(found.len(), 1, "one {role}: {members:?}");
        (found[0].name.clone(), found[0].port)
    };
    let (leader, leader_port) = role_of("leader");
    let (sync, sync_port) = role_of("sync_standby");
    let (replica, replica_port) = role_of("replica");

    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        "core_lib:\n  db:\n    url: '{}'\n",
        cluster.multi_host_url()
    );
    std::fs::write(dir.path().join("config.yaml"), yaml).unwrap();
    let check = |json: bool| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_sqlreg"));
        command
            .arg("check")
            .current_dir(dir.path())
            .env_remove("SQLREG_CONFIG");
        if json {
            command.arg("--json");
        }
        let output = command.output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(output.status.success(), "{stdout}");
        assert!(
            !stdout.contains(&std::env::var("SQLREG_TEST_PASSWORD").unwrap()),
            "{stdout}"
        );
        stdout
    };

    // The text report: each node's line, then what it streams.
    let text = check(false);
    println!("{text}");
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let node = |port: u16| -> (&str, &str) {
        let at = format!("@127.0.0.1:{port}/");
        let index = lines
            .iter()
            .position(|l| l.starts_with("primary ") && l.contains(&at))
            .unwrap_or_else(|| panic!("no line for {port}:\n{text}"));
        (lines[index], lines[index + 1])
    };
    let (line, streams) = node(leader_port);
    assert!(line.contains(": primary, timeline "), "{text}");
    // `primary    <url>: primary, …`: the leader's URL as check shows it.
    let leader_url = line["primary".len()..].trim().split(": ").next().unwrap();
    assert!(
        streams.starts_with(&format!("standbys: {sync} synchronous (streaming")),
        "{text}"
    );
    assert!(
        streams.contains(&format!(", {replica} asynchronous (streaming")),
        "{text}"
    );
    // Patroni names the synchronous standby there (quoted or not, by version).
    let names = streams
        .split("; synchronous_standby_names ")
        .nth(1)
        .unwrap_or_else(|| panic!("no synchronous_standby_names:\n{text}"));
    assert_eq!(names.trim_matches('"'), sync, "{text}");
    let (line, streams) = node(sync_port);
    assert!(line.contains(": standby, timeline "), "{text}");
    assert!(
        streams.starts_with(&format!(
            "synchronous standby of {leader_url}, as {sync}, streaming from 127.0.0.1:{leader_port}"
        )),
        "{text}"
    );
    let (line, streams) = node(replica_port);
    assert!(line.contains(": standby, timeline "), "{text}");
    assert!(
        streams.starts_with(&format!(
            "asynchronous standby of {leader_url}, as {replica}, streaming from 127.0.0.1:{leader_port}"
        )),
        "{text}"
    );
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.starts_with("synchronous standby of "))
            .count(),
        1,
        "{text}"
    );
    assert!(text.contains("status     OK"), "{text}");

    // The same in `--json`.
    let report: serde_json::Value = serde_json::from_str(&check(true)).unwrap();
    let hosts = report["databases"][0]["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), 3, "{report:#}");
    let host = |port: u16| {
        hosts
            .iter()
            .find(|h| {
                h["url"]
                    .as_str()
                    .unwrap()
                    .contains(&format!("@127.0.0.1:{port}/"))
            })
            .unwrap_or_else(|| panic!("no host {port}: {report:#}"))
    };
    let primary = host(leader_port);
    assert_eq!(primary["role"], "primary", "{report:#}");
    assert_eq!(
        primary["streaming"]["synchronous_standby_names"],
        sync.as_str()
    );
    let standbys: Vec<(&str, &str)> = primary["streaming"]["standbys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap(),
                s["sync_state"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        standbys,
        [(sync.as_str(), "sync"), (replica.as_str(), "async")],
        "{report:#}"
    );
    assert_eq!(primary["streaming"]["receiver"], serde_json::Value::Null);
    let mut synchronous = 0;
    for (port, name, sync_state) in [
        (sync_port, &sync, "sync"),
        (replica_port, &replica, "async"),
    ] {
        let standby = host(port);
        assert_eq!(standby["role"], "standby", "{report:#}");
        let receiver = &standby["streaming"]["receiver"];
        assert_eq!(receiver["status"], "streaming", "{report:#}");
        assert_eq!(receiver["name"], name.as_str(), "{report:#}");
        assert_eq!(
            receiver["sender"],
            format!("127.0.0.1:{leader_port}"),
            "{report:#}"
        );
        assert_eq!(receiver["upstream"], primary["url"], "{report:#}");
        assert_eq!(receiver["sync_state"], sync_state, "{report:#}");
        synchronous += usize::from(receiver["sync_state"] == "sync");
    }
    assert_eq!(synchronous, 1, "{report:#}");
    println!("check: leader {leader}, synchronous standby {sync}, replica {replica}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unplanned_failover_loses_no_acknowledged_write() {
    let Some(cluster) = Cluster::get("unplanned_failover_loses_no_acknowledged_write") else {
        return;
    };
    let _lock = cluster.lock().await;
    let writers = writers(&cluster).await;

    // 1. The leader's postmaster dies; Patroni restarts it in place and
    //    keeps the leader lock.
    let (leader, leader_port) = cluster.leader().await;
    let at = write_through(&writers, async {
        let at = Instant::now();
        cluster.kill_postmaster(&leader).await;
        cluster.wait_healthy().await;
        at
    })
    .await;
    assert_eq!(
        cluster.leader().await.0,
        leader,
        "Patroni restarted the postmaster in place"
    );
    for writer in &writers {
        report(&cluster, "postmaster SIGKILLed", at, writer).await;
        assert_eq!(serving_port(&writer.db).await, leader_port);
    }

    // 2. The leader's Patroni and postmaster die; the synchronous standby
    //    takes the leader key once it expires. The old leader comes back
    //    as a replica.
    let (sync, sync_port) = cluster.sync_standby().await;
    let at = write_through(&writers, async {
        let at = Instant::now();
        cluster.kill_node(&leader).await;
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let members = cluster.members().await;
            if members
                .iter()
                .any(|m| m.role == "leader" && m.name != leader && m.state == "running")
            {
                break;
            }
            assert!(Instant::now() < deadline, "no new leader: {members:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        println!(
            "Patroni promoted a new leader {:.1} s after the kill",
            at.elapsed().as_secs_f64()
        );
        cluster.start_node(&leader).await;
        cluster.wait_healthy().await;
        at
    })
    .await;
    assert_eq!(
        cluster.leader().await,
        (sync, sync_port),
        "the synchronous standby took over"
    );
    for writer in &writers {
        report(&cluster, "Patroni and postmaster SIGKILLed", at, writer).await;
        assert_eq!(serving_port(&writer.db).await, sync_port);
    }
    for writer in writers {
        writer.db.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planned_switchover_fails_no_transaction() {
    let Some(cluster) = Cluster::get("planned_switchover_fails_no_transaction") else {
        return;
    };
    let _lock = cluster.lock().await;
    let writers = writers(&cluster).await;
    let (candidate, candidate_port) = cluster.sync_standby().await;
    let at = write_through(&writers, async {
        let at = Instant::now();
        cluster.switchover(&candidate).await;
        println!(
            "patronictl switchover returned after {:.1} s",
            at.elapsed().as_secs_f64()
        );
        cluster.wait_healthy().await;
        at
    })
    .await;
    assert_eq!(cluster.leader().await.0, candidate);
    for writer in &writers {
        report(&cluster, "switchover", at, writer).await;
        assert_eq!(serving_port(&writer.db).await, candidate_port);
    }
    for writer in writers {
        writer.db.close().await;
    }
}

/// What the readers saw.
#[derive(Default, Debug)]
struct Reads {
    total: u64,
    on_replica: u64,
    stale: u64,
    /// Each stale read: the port of the server that served it, whether it
    /// was in recovery, and the phase of the test (see `PHASE`).
    stale_at: Vec<(u16, bool, u8)>,
    failed: Vec<String>,
    write_failed: Vec<String>,
}

/// Where the reads test is: 0 before the switchover, 1 during it, 2 until
/// the leader is killed, 3 until a new leader, 4 until the old one is back
/// and the cluster healthy, 5 after.
static PHASE: AtomicU8 = AtomicU8::new(0);

/// 4 tasks: write a row through `transaction()`, then read it back through
/// `read_transaction()` on the same registry, until `stop`.
fn readers(
    db: &SqlConnectionRegistry,
    table: &str,
    stop: &Arc<AtomicBool>,
    reads: &Arc<Mutex<Reads>>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..4)
        .map(|task| {
            let (db, stop, reads) = (db.clone(), Arc::clone(stop), Arc::clone(reads));
            let table = table.to_owned();
            tokio::spawn(async move {
                let mut seq = 0;
                while !stop.load(Ordering::Relaxed) {
                    seq += 1;
                    let insert = format!("INSERT INTO {table} (task, seq) VALUES ({task}, {seq})");
                    let written = db
                        .transaction(async |s| {
                            s.execute_unprepared(&insert).await?;
                            Ok::<_, Error>(())
                        })
                        .await;
                    if let Err(err) = written {
                        reads.lock().unwrap().write_failed.push(err.to_string());
                        continue;
                    }
                    let select = format!(
                        "SELECT COUNT(*)::bigint FROM {table} WHERE task = {task} AND seq = {seq}"
                    );
                    let read = db
                        .read_transaction(async |s| {
                            Ok::<_, Error>((
                                number(s, &select).await?,
                                on_replica(s).await?,
                                server::port(s).await?,
                            ))
                        })
                        .await;
                    let mut reads = reads.lock().unwrap();
                    reads.total += 1;
                    match read {
                        Ok((found, replica, port)) => {
                            if found == 0 {
                                reads.stale += 1;
                                reads
                                    .stale_at
                                    .push((port, replica, PHASE.load(Ordering::Relaxed)));
                            }
                            reads.on_replica += u64::from(replica);
                        }
                        Err(err) => reads.failed.push(err.to_string()),
                    }
                }
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_follow_the_cluster_and_see_their_writes() {
    let Some(cluster) = Cluster::get("reads_follow_the_cluster_and_see_their_writes") else {
        return;
    };
    let _lock = cluster.lock().await;
    let nodes: Vec<String> = cluster.ports().iter().map(|p| cluster.url(*p)).collect();
    let forms = [
        (
            "multi-host URL, the three nodes as replicas",
            registry(&cluster.multi_host_url(), &nodes).await,
        ),
        (
            "HAProxy primary port, HAProxy replica port as the replica",
            registry(
                &format!(
                    "{}?target_session_attrs=read-write",
                    cluster.url(cluster.haproxy_port())
                ),
                &[cluster.url(cluster.haproxy_replica_port())],
            )
            .await,
        ),
    ];
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    let mut seen = Vec::new();
    for (what, db) in &forms {
        let table = common::unique_name("patroni_r");
        create_table(db, &table).await;
        let reads = Arc::new(Mutex::new(Reads::default()));
        tasks.extend(readers(db, &table, &stop, &reads));
        seen.push((*what, reads));
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    // A switchover, then a failover (the old leader comes back as a replica).
    let (candidate, _) = cluster.sync_standby().await;
    PHASE.store(1, Ordering::Relaxed);
    cluster.switchover(&candidate).await;
    cluster.wait_healthy().await;
    PHASE.store(2, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (leader, _) = cluster.leader().await;
    PHASE.store(3, Ordering::Relaxed);
    cluster.kill_node(&leader).await;
    let deadline = Instant::now() + Duration::from_secs(90);
    while cluster.leader().await.0 == leader {
        assert!(Instant::now() < deadline, "no new leader");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    PHASE.store(4, Ordering::Relaxed);
    cluster.start_node(&leader).await;
    cluster.wait_healthy().await;
    PHASE.store(5, Ordering::Relaxed);
    println!("members after the failover: {:?}", cluster.members().await);
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    for (what, reads) in &seen {
        let reads = reads.lock().unwrap();
        println!(
            "reads, {what}: {} read-after-write, {} on a replica, {} stale {:?} (port, in \
             recovery, phase), {} failed {:?}; {} writes failed {:?}",
            reads.total,
            reads.on_replica,
            reads.stale,
            reads.stale_at.iter().take(10).collect::<Vec<_>>(),
            reads.failed.len(),
            reads.failed.iter().take(2).collect::<Vec<_>>(),
            reads.write_failed.len(),
            reads.write_failed.iter().take(2).collect::<Vec<_>>(),
        );
    }
    for (what, reads) in &seen {
        let reads = reads.lock().unwrap();
        assert_eq!(
            reads.stale, 0,
            "{what}: a read missed the registry's own write"
        );
        assert!(
            reads.failed.is_empty(),
            "{what}: reads failed: {:?}",
            reads.failed
        );
        assert!(reads.on_replica > 0, "{what}: no read reached a replica");
    }
    for (_, db) in forms {
        db.close().await;
    }
}
