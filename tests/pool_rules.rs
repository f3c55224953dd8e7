//! The rules of sqlreg's own pool, beyond what tests/pool.rs shows for
//! QueuePool: a checkout of an idle connection and a release send nothing to
//! the server (counted by a relay between the registry and the real server),
//! overflow closes the moment it comes back, `pool_recycle` and
//! `pool_pre_ping` act at checkout, and the engine's connections count in
//! `stats()`.

mod common;

use std::time::{Duration, Instant};

use common::proxy::{SETTLE, relayed};
use common::{Kind, TestDb};
use sea_orm::{ConnectionTrait, Statement};
use sqlreg::{DbConfig, Error, SqlConnectionRegistry};

on_every_backend!(
    checkout_and_release_send_nothing,
    overflow_closes_the_moment_it_comes_back,
    recycle_replaces_a_connection_at_checkout,
    pre_ping_replaces_a_dead_connection,
    engine_connections_count_in_stats,
);

fn sized(config: &DbConfig, pool_size: u32, max_overflow: u32) -> DbConfig {
    let mut config = config.clone();
    config.session.pool_size = pool_size;
    config.session.max_overflow = max_overflow;
    config.session.pool_timeout = Duration::from_millis(500);
    config
}

fn is_sqlite(db: &TestDb) -> bool {
    matches!(db.kind, Kind::SqliteFile | Kind::SqliteMemory)
}

async fn checkout_and_release_send_nothing(db: TestDb) {
    if is_sqlite(&db) {
        return; // no network between the registry and the database
    }
    let (registry, proxy) = relayed(&db).await;
    let before = proxy.sent();
    let s = registry.get().await.unwrap();
    assert_eq!(
        proxy.sent(),
        before,
        "checking out an idle connection sends nothing"
    );
    s.commit().await.unwrap();
    tokio::time::sleep(SETTLE).await;
    assert_eq!(proxy.sent(), before, "nor does releasing it (no ping)");

    registry
        .session(async |s| Ok::<_, Error>(s.execute_unprepared("SELECT 1").await?))
        .await
        .unwrap();
    let after_commit = proxy.sent();
    tokio::time::sleep(SETTLE).await;
    assert_eq!(proxy.sent(), after_commit, "nothing follows the COMMIT");
    assert_eq!(registry.stats().created, 1, "one connection served it all");
}

async fn overflow_closes_the_moment_it_comes_back(db: TestDb) {
    let registry = SqlConnectionRegistry::connect(sized(&db.config, 2, 2))
        .await
        .unwrap();
    let mut held = Vec::new();
    for _ in 0..4 {
        let s = registry.connection().await.unwrap();
        s.execute_unprepared("SELECT 1").await.unwrap();
        held.push(s);
    }
    let mut sizes = Vec::new();
    for s in held {
        drop(s);
        let stats = registry.stats();
        sizes.push((stats.size, stats.idle));
    }
    // No waiting: the pool decides at the release itself.
    assert_eq!(
        sizes,
        [(4, 1), (4, 2), (3, 2), (2, 2)],
        "kept until pool_size are idle, then closed on return"
    );
    assert_eq!(registry.stats().closed, 2);
}

async fn recycle_replaces_a_connection_at_checkout(db: TestDb) {
    let mut config = sized(&db.config, 1, 0);
    config.session.pool_recycle = Some(Duration::from_secs(1));
    let registry = SqlConnectionRegistry::connect(config).await.unwrap();
    let select = async || {
        registry
            .session(async |s| Ok::<_, Error>(s.execute_unprepared("SELECT 1").await?))
            .await
            .unwrap();
    };
    select().await;
    select().await;
    assert_eq!(registry.stats().created, 1, "reused while young");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    select().await;
    let stats = registry.stats();
    assert_eq!(
        (stats.created, stats.closed, stats.size, stats.evicted),
        (2, 1, 1, 0),
        "the old one replaced at checkout: {stats:?}"
    );
}

/// The server's id for the connection `conn` runs on.
async fn server_id(conn: &impl ConnectionTrait) -> i64 {
    let backend = conn.get_database_backend();
    let sql = match backend {
        sea_orm::DbBackend::Postgres => "SELECT CAST(pg_backend_pid() AS BIGINT) AS id",
        _ => "SELECT CAST(CONNECTION_ID() AS SIGNED) AS id",
    };
    let row = conn
        .query_one_raw(Statement::from_string(backend, sql))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "id").unwrap()
}

/// Ends the server session `id` from another connection and waits until
/// the server no longer lists it.
async fn kill_and_wait(db: &TestDb, id: i64) {
    let killer = SqlConnectionRegistry::connect(db.config.clone())
        .await
        .unwrap();
    let k = killer.connection().await.unwrap();
    let (kill, alive) = match db.kind {
        Kind::Postgres => (
            format!("SELECT pg_terminate_backend({id})"),
            format!("SELECT 1 FROM pg_stat_activity WHERE pid = {id}"),
        ),
        _ => (
            format!("KILL CONNECTION {id}"),
            format!("SELECT 1 FROM information_schema.processlist WHERE id = {id}"),
        ),
    };
    k.execute_unprepared(&kill).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !k
        .query_all_raw(Statement::from_string(
            k.get_database_backend(),
            alive.clone(),
        ))
        .await
        .unwrap()
        .is_empty()
    {
        assert!(Instant::now() < deadline, "the killed connection lingers");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `pre_ping_idle`: only a connection that sat idle that long is tested at
/// checkout — one handed back a moment ago goes out as it is (a busy pool
/// pays nothing), one idle past the limit is replaced before a session
/// sees it.
async fn pre_ping_idle_tests_only_long_idle_connections(kind: Kind) {
    let Some(db) = common::test_db(kind, "pre_ping_idle") else {
        return;
    };
    let mut config = sized(&db.config, 1, 0);
    config.session.pre_ping_idle = Some(Duration::from_secs(2));
    let registry = SqlConnectionRegistry::connect(config).await.unwrap();
    let first = server_id(&registry.connection().await.unwrap()).await;
    kill_and_wait(&db, first).await;
    let recent = registry.connection().await.unwrap();
    let err = recent
        .execute_unprepared("SELECT 1")
        .await
        .expect_err("idle for less than pre_ping_idle: not tested, so the session finds it dead");
    drop((recent, err));

    let second = server_id(&registry.connection().await.unwrap()).await;
    assert_ne!(second, first);
    kill_and_wait(&db, second).await;
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let third = server_id(&registry.connection().await.unwrap()).await;
    assert_ne!(
        third, second,
        "idle past pre_ping_idle: tested and replaced at checkout"
    );
    let stats = registry.stats();
    assert_eq!(stats.created, 3, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_pre_ping_idle_tests_only_long_idle_connections() {
    pre_ping_idle_tests_only_long_idle_connections(Kind::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_pre_ping_idle_tests_only_long_idle_connections() {
    pre_ping_idle_tests_only_long_idle_connections(Kind::MariaDb).await;
}

async fn pre_ping_replaces_a_dead_connection(db: TestDb) {
    if is_sqlite(&db) {
        return; // no server to kill a connection on
    }
    let mut config = sized(&db.config, 1, 0);
    config.session.pool_pre_ping = true;
    let registry = SqlConnectionRegistry::connect(config).await.unwrap();
    let first = server_id(&registry.connection().await.unwrap()).await;
    kill_and_wait(&db, first).await;

    let second = server_id(&registry.connection().await.unwrap()).await;
    let stats = registry.stats();
    assert_ne!(second, first, "a new connection");
    assert_eq!(
        (stats.created, stats.evicted, stats.size),
        (2, 0, 1),
        "replaced at checkout before any session saw it: {stats:?}"
    );
}

async fn engine_connections_count_in_stats(db: TestDb) {
    let registry = SqlConnectionRegistry::connect(db.config.clone())
        .await
        .unwrap();
    assert_eq!(registry.stats().size, 0, "nothing opened before use");
    let engine = registry.engine();
    engine.execute_unprepared("SELECT 1").await.unwrap();
    let stats = registry.stats();
    assert_eq!((stats.size, stats.created), (1, 1), "{stats:?}");
    let queries = (0..6).map(|_| engine.execute_unprepared("SELECT 1"));
    for outcome in futures_util::future::join_all(queries).await {
        outcome.unwrap();
    }
    let stats = registry.stats();
    assert!(
        stats.size <= 2 && stats.created <= 2,
        "the engine's pool stays small: {stats:?}"
    );
    registry.close().await;
    assert_eq!(registry.stats().size, 0, "close closes the engine's too");
}
