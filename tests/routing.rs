//! Read sessions routed to a real replica (the PostgreSQL standby and the
//! MariaDB GTID replica the test script starts), writes to the primary,
//! read-your-writes, lag and fallback. Which server served a session is
//! asked of the server itself.

mod common;

use std::time::{Duration, Instant};

use common::Kind;
use common::server::{count_rows, number, on_replica, read_on_replica};
use sea_orm::ConnectionTrait;
use sqlreg::config::{Fallback, RoutingConfig};
use sqlreg::{DbConfig, Error, Session, SqlConnectionRegistry, UrlParts};

on_servers!(
    reads_go_to_the_replica_and_writes_to_the_primary,
    reads_spread_over_replica_and_primary_with_primary_reads,
    a_read_after_a_write_sees_it,
    a_read_transaction_outlives_a_lost_replica_connection,
    an_autocommit_write_is_seen_by_the_next_read,
    a_replica_whose_lag_is_not_known_yet_serves_no_reads,
    a_commit_of_unknown_outcome_keeps_reads_on_the_primary,
);

/// Held for reading by every test that expects the standby to replay, and
/// for writing by the one that pauses it.
static REPLAY: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// The replica's port of `kind`'s test servers.
fn replica_port(kind: Kind) -> u16 {
    let var = match kind {
        Kind::Postgres => "SQLREG_TEST_PG_STANDBY_PORT",
        _ => "SQLREG_TEST_MARIADB_REPLICA_PORT",
    };
    let port = std::env::var(var)
        .unwrap_or_else(|_| panic!("{var} is not set: run the suite through scripts/test.sh"));
    port.parse().unwrap()
}

/// A fresh database on the primary, with the replica under `replicas:` and
/// a table `items (id, note)`; waits until the replica has the table.
async fn routed(kind: Kind, test: &str, routing: RoutingConfig) -> Option<SqlConnectionRegistry> {
    routed_with(kind, test, routing, |_| {})
        .await
        .map(|(db, _)| db)
}

/// [`routed`] with its config changed by `tune` first; returns the config too.
async fn routed_with(
    kind: Kind,
    test: &str,
    routing: RoutingConfig,
    tune: impl FnOnce(&mut DbConfig),
) -> Option<(SqlConnectionRegistry, DbConfig)> {
    let db = common::test_db(kind, test)?;
    let port = replica_port(kind);
    let mut config: DbConfig = db
        .config
        .clone()
        .replica(UrlParts::default().port(port))
        .routing(routing);
    tune(&mut config);
    if kind == Kind::Postgres {
        // The test server runs with synchronous_commit off, which delays
        // streaming by up to wal_writer_delay; production servers commit
        // with it on, as these sessions do.
        let sqlreg::UrlConfig::Parts(parts) = &mut config.url else {
            panic!("the test config gives the URL as parts");
        };
        parts
            .query
            .insert("options".into(), "-c synchronous_commit=on".into());
    }
    let registry = SqlConnectionRegistry::connect(config.clone())
        .await
        .unwrap();
    registry
        .session(async |s| {
            s.execute_unprepared("CREATE TABLE items (id INT PRIMARY KEY, note VARCHAR(40))")
                .await?;
            Ok::<_, Error>(())
        })
        .await
        .unwrap();
    read_on_replica(&registry, "items").await;
    Some((registry, config))
}

/// Ends connection `id` on the server `admin` runs on, and waits until it
/// is gone.
async fn kill(admin: &SqlConnectionRegistry, id: i64) {
    let (kill, alive) = match admin.url().backend() {
        sqlreg::Backend::Postgres => (
            format!("SELECT pg_terminate_backend({id})"),
            format!("SELECT COUNT(*)::bigint FROM pg_stat_activity WHERE pid = {id}"),
        ),
        _ => (
            format!("KILL CONNECTION {id}"),
            format!("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = {id}"),
        ),
    };
    let conn = admin.connection().await.unwrap();
    conn.execute_unprepared(&kill).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while number(&conn, &alive).await.unwrap() > 0 {
        assert!(Instant::now() < deadline, "connection {id} never ended");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    conn.commit().await.unwrap();
}

async fn a_read_transaction_outlives_a_lost_replica_connection(kind: Kind) {
    let _replaying = REPLAY.read().await;
    // One pooled connection per host, not pinged at checkout: the one the
    // server ends is the one the next read gets.
    let tune = |config: &mut DbConfig| {
        config.session.pool_size = 1;
        config.session.max_overflow = 0;
        config.session.pool_pre_ping = false;
    };
    let Some((db, config)) =
        routed_with(kind, "routing_read_retry", RoutingConfig::default(), tune).await
    else {
        return;
    };
    db.session(async |s| insert(s, 1).await).await.unwrap();
    let mut plain = config.clone();
    plain.replicas.clear();
    let sqlreg::UrlConfig::Parts(parts) = &mut plain.url else {
        panic!("the test config gives the URL as parts");
    };
    parts.port = Some(replica_port(kind));
    let replica = SqlConnectionRegistry::connect(plain).await.unwrap();

    // A read session on the connection the replica ended fails…
    kill(&replica, read_on_replica(&db, "items").await).await;
    let plain_read = db
        .read_session(async |s| count_rows(s, "items").await)
        .await;
    assert!(plain_read.is_err(), "{plain_read:?}");

    // …the retrying form runs again, elsewhere or on a new connection.
    kill(&replica, read_on_replica(&db, "items").await).await;
    let attempts = std::sync::atomic::AtomicU32::new(0);
    let rows = db
        .read_transaction(async |s| {
            attempts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            count_rows(s, "items").await
        })
        .await
        .unwrap();
    assert_eq!(rows, 1, "the read sees the committed row");
    assert_eq!(
        attempts.into_inner(),
        2,
        "the attempt on the ended connection ran again"
    );
    let hosts = db.host_stats();
    assert_eq!(
        (hosts[0].pool.retries, hosts[1].pool.retries),
        (0, 1),
        "the retry counts on the replica that lost the connection: {hosts:#?}"
    );
    replica.close().await;
    db.close().await;
}

async fn insert(s: &Session, id: i64) -> Result<(), Error> {
    s.execute_unprepared(&format!("INSERT INTO items (id, note) VALUES ({id}, 'n')"))
        .await?;
    Ok(())
}

async fn reads_go_to_the_replica_and_writes_to_the_primary(kind: Kind) {
    let _replaying = REPLAY.read().await;
    let Some(db) = routed(kind, "routing_roles", RoutingConfig::default()).await else {
        return;
    };
    let write_on_replica = db.session(async |s| on_replica(s).await).await.unwrap();
    assert!(!write_on_replica, "a write session runs on the primary");
    let guard_on_replica = {
        let s = db.get_read_only().await.unwrap();
        let replica = on_replica(&s).await.unwrap();
        s.commit().await.unwrap();
        replica
    };
    assert!(guard_on_replica, "get_read_only() runs on the replica");
    let refused = db.read_session(async |s| insert(s, 1).await).await;
    assert!(refused.is_err(), "a write in a read session is refused");

    let hosts = db.host_stats();
    assert_eq!(hosts.len(), 2, "{hosts:#?}");
    assert!(!hosts[0].replica && hosts[1].replica, "{hosts:#?}");
    assert!(
        hosts[1].pool.acquired > 0,
        "the replica served sessions: {hosts:#?}"
    );
    assert!(hosts[1].down.is_none(), "{hosts:#?}");
    assert_eq!(db.stats(), hosts[0].pool, "stats() is the primary's");
    db.close().await;
}

async fn reads_spread_over_replica_and_primary_with_primary_reads(kind: Kind) {
    let _replaying = REPLAY.read().await;
    let routing = RoutingConfig::default().primary_reads(true);
    let Some(db) = routed(kind, "routing_spread", routing).await else {
        return;
    };
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let db = db.clone();
            tokio::spawn(async move { db.read_session(async |s| on_replica(s).await).await })
        })
        .collect();
    let mut on_replica_count = 0;
    for task in tasks {
        if task.await.unwrap().unwrap() {
            on_replica_count += 1;
        }
    }
    assert!(
        (1..16).contains(&on_replica_count),
        "16 reads over both hosts, {on_replica_count} on the replica"
    );
}

async fn a_read_after_a_write_sees_it(kind: Kind) {
    let _replaying = REPLAY.read().await;
    let Some(db) = routed(kind, "routing_ryw", RoutingConfig::default()).await else {
        return;
    };
    let trials = 200;
    let (mut stale, mut served_by_replica) = (0, 0);
    for id in 0..trials {
        db.session(async |s| insert(s, id).await).await.unwrap();
        let (seen, replica) = db
            .read_session(async |s| {
                Ok::<_, Error>((count_rows(s, "items").await?, on_replica(s).await?))
            })
            .await
            .unwrap();
        if seen < id + 1 {
            stale += 1;
        }
        if replica {
            served_by_replica += 1;
        }
    }
    println!("{kind:?}: {trials} write-then-read trials, {served_by_replica} reads on the replica");
    assert_eq!(stale, 0, "a read after a committed write never misses it");
    assert!(
        served_by_replica > trials / 2,
        "most reads are served by the replica, not the primary ({served_by_replica} of {trials})"
    );
}

/// A replica that does not answer: reads go to the primary (or fail, with
/// `fallback: error`), without waiting on it again and again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_replica_sends_reads_to_the_primary_or_fails() {
    let Some(db) = common::test_db(Kind::Postgres, "routing_down") else {
        return;
    };
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let config = db.config.clone().replica(UrlParts::default().port(port));
    let registry = SqlConnectionRegistry::connect(config.clone())
        .await
        .unwrap();
    for _ in 0..3 {
        let replica = registry
            .read_session(async |s| on_replica(s).await)
            .await
            .unwrap();
        assert!(!replica, "served by the primary");
    }
    let hosts = registry.host_stats();
    assert!(
        hosts[1].down.is_some(),
        "the replica is reported down: {hosts:#?}"
    );
    assert_eq!(hosts[1].pool.acquired, 0, "{hosts:#?}");

    let strict = config.routing(RoutingConfig::default().fallback(Fallback::Error));
    let registry = SqlConnectionRegistry::connect(strict).await.unwrap();
    let failed = registry
        .read_session(async |s| on_replica(s).await)
        .await
        .expect_err("no replica and fallback: error");
    assert!(failed.to_string().contains("no replica"), "{failed}");
    let write = registry.session(async |s| on_replica(s).await).await;
    assert!(
        matches!(write, Ok(false)),
        "writes are unaffected: {write:?}"
    );
}

/// With replay paused on the standby, a read after a write goes to the
/// primary (never stale); once the standby is further behind than
/// `replica_max_lag`, plain reads skip it too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_standby_is_skipped() {
    let _pausing = REPLAY.write().await;
    let routing = RoutingConfig::default().replica_max_lag(Duration::from_millis(300));
    let Some(db) = routed(Kind::Postgres, "routing_paused", routing).await else {
        return;
    };
    let mut standby = common::standby::admin().await;
    common::standby::pause_replay(&mut standby).await;
    let outcome = async {
        let mut stale = 0;
        for id in 0..20 {
            db.session(async |s| insert(s, id).await).await.unwrap();
            let (seen, replica) = db
                .read_session(async |s| {
                    Ok::<_, Error>((count_rows(s, "items").await?, on_replica(s).await?))
                })
                .await
                .unwrap();
            assert!(!replica, "the paused standby cannot have the write");
            if seen < id + 1 {
                stale += 1;
            }
        }
        // Another registry (another process, say) without read-your-writes
        // sees the write when it carries the position as text.
        let position = db
            .write_position()
            .expect("a write was recorded")
            .to_string();
        let config = db.config().clone();
        let other_routing = config.routing.clone().read_your_writes(false);
        let other = SqlConnectionRegistry::connect(config.routing(other_routing))
            .await
            .unwrap();
        let carried = other
            .options()
            .fresh_as(position.parse().unwrap())
            .read_session(async |s| count_rows(s, "items").await)
            .await
            .unwrap();
        assert_eq!(
            carried, 20,
            "a read fresh as the carried position sees the write"
        );
        // The monitor sees the standby fall behind by more than 0.3 s.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let hosts = db.host_stats();
        let lag = hosts[1].lag_seconds.unwrap_or_default();
        (stale, lag)
    }
    .await;
    common::standby::resume_replay(&mut standby).await;
    let (stale, lag) = outcome;
    assert_eq!(stale, 0);
    assert!(lag > 0.3, "the standby's lag grows while paused: {lag}");
}

/// The replica of `kind` stops applying changes: PostgreSQL pauses replay,
/// MariaDB stops its SQL thread. Undone by [`resume`].
async fn pause(kind: Kind) {
    match kind {
        Kind::Postgres => common::standby::pause_replay(&mut common::standby::admin().await).await,
        _ => mariadb_replica("STOP SLAVE SQL_THREAD").await,
    }
}

async fn resume(kind: Kind) {
    match kind {
        Kind::Postgres => common::standby::resume_replay(&mut common::standby::admin().await).await,
        _ => mariadb_replica("START SLAVE SQL_THREAD").await,
    }
}

/// Runs `sql` on the MariaDB replica as the test user.
async fn mariadb_replica(sql: &str) {
    use sqlx::Connection;
    let url = std::env::var("SQLREG_TEST_MARIADB_URL").expect("run through scripts/test.sh");
    let options: sqlx::mysql::MySqlConnectOptions = url.parse().unwrap();
    let mut conn = sqlx::MySqlConnection::connect_with(&options.port(replica_port(Kind::MariaDb)))
        .await
        .unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut conn)
        .await
        .unwrap();
}

/// A write through `connection()` or the engine (autocommit, its position
/// never read) is seen by the next read session, with the replica paused but within
/// `replica_max_lag`: reads stay on the primary until the monitor has
/// read a position past the write.
async fn an_autocommit_write_is_seen_by_the_next_read(kind: Kind) {
    let _pausing = REPLAY.write().await;
    let routing = RoutingConfig::default().replica_max_lag(Duration::from_secs(60));
    let Some(db) = routed(kind, "routing_autocommit", routing).await else {
        return;
    };
    pause(kind).await;
    let outcome = async {
        let mut stale = 0;
        // The engine, outside sessions, is an autocommit writer too: the
        // first write since the replica paused.
        db.engine()
            .execute_unprepared("INSERT INTO items (id, note) VALUES (10, 'engine')")
            .await?;
        let seen = db
            .read_session(async |s| count_rows(s, "items").await)
            .await?;
        if seen < 1 {
            stale += 1;
        }
        for id in 0..10 {
            let conn = db.connection().await?;
            insert(&conn, id).await?;
            drop(conn);
            let seen = db
                .read_session(async |s| count_rows(s, "items").await)
                .await?;
            if seen < id + 2 {
                stale += 1;
            }
        }
        // Once the monitor has placed the writes, a read must see them:
        // the paused replica cannot, so the primary serves it.
        tokio::time::sleep(Duration::from_millis(600)).await;
        let seen = db
            .read_session(async |s| count_rows(s, "items").await)
            .await?;
        Ok::<_, Error>((stale, seen))
    }
    .await;
    resume(kind).await;
    let (stale, seen) = outcome.unwrap();
    assert_eq!(stale, 0, "a read after an autocommit write never misses it");
    assert_eq!(
        seen, 11,
        "a later read, after the monitor placed the writes"
    );
}

/// A replica far behind when the registry starts (replay stopped, rows
/// written since) serves no reads while its lag is unknown, even with a
/// `replica_max_lag` that a fresh history would call fresh.
async fn a_replica_whose_lag_is_not_known_yet_serves_no_reads(kind: Kind) {
    let _pausing = REPLAY.write().await;
    let routing = RoutingConfig::default()
        .replica_max_lag(Duration::from_secs(60))
        .read_your_writes(false);
    let Some((db, config)) = routed_with(kind, "routing_unknown_lag", routing, |_| {}).await else {
        return;
    };
    pause(kind).await;
    let outcome = async {
        for id in 0..5 {
            db.session(async |s| insert(s, id).await).await?;
        }
        // A new registry: its monitor's history starts now, after the
        // rows the replica lacks.
        let fresh = SqlConnectionRegistry::connect(config.clone()).await?;
        let mut on_the_replica = 0;
        for _ in 0..10 {
            let (seen, replica) = fresh
                .read_session(async |s| {
                    Ok::<_, Error>((count_rows(s, "items").await?, on_replica(s).await?))
                })
                .await?;
            if replica || seen < 5 {
                on_the_replica += 1;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let lag = fresh.host_stats()[1].lag_seconds;
        fresh.close().await;
        Ok::<_, Error>((on_the_replica, lag))
    }
    .await;
    resume(kind).await;
    let (on_the_replica, lag) = outcome.unwrap();
    assert_eq!(
        on_the_replica, 0,
        "no read goes to a replica whose lag is not known"
    );
    assert_eq!(lag, None, "its lag is shown as unknown");
}

/// A commit whose reply never came (the connection was lost after COMMIT
/// reached the server, which committed): the caller's natural "did it
/// commit?" read goes to the primary, never to the paused replica that
/// would answer "no" and invite a duplicate.
async fn a_commit_of_unknown_outcome_keeps_reads_on_the_primary(kind: Kind) {
    let _pausing = REPLAY.write().await;
    let routing = RoutingConfig::default().replica_max_lag(Duration::from_secs(60));
    let Some((_db, config)) = routed_with(kind, "routing_unknown_commit", routing, |_| {}).await
    else {
        return;
    };
    let proxy = common::proxy::CountingProxy::start(&config).await;
    let db = SqlConnectionRegistry::connect(proxy.route(&config))
        .await
        .unwrap();
    read_on_replica(&db, "items").await;
    pause(kind).await;
    let outcome = async {
        proxy.cut_after_next_commit();
        let committed = db.transaction(async |s| insert(s, 7).await).await;
        let seen = db
            .read_session(async |s| {
                Ok::<_, Error>((count_rows(s, "items").await?, on_replica(s).await?))
            })
            .await?;
        Ok::<_, Error>((committed, seen))
    }
    .await;
    resume(kind).await;
    let (committed, (seen, replica)) = outcome.unwrap();
    assert!(
        matches!(&committed, Err(Error::Commit(_))),
        "the commit's outcome is unknown: {committed:?}"
    );
    assert!(!replica, "the read after it goes to the primary");
    assert_eq!(seen, 1, "and sees that the commit went through");
}
