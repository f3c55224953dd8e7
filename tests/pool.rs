//! Pool semantics (SQLAlchemy's QueuePool is the reference), on every backend
//! where the scenario applies.

mod common;

use std::time::Duration;

use common::item;
use common::{Kind, TestDb, eventually, logs};
use sea_orm::{ConnectionTrait, Statement};
use sqlreg::{DbConfig, Error, Session, SqlConnectionRegistry};

on_every_backend!(
    checkout_beyond_the_limit_times_out_with_counts,
    overflow_connections_close_when_pool_size_are_idle,
    recycled_connections_are_replaced,
    leak_warning_names_where_the_session_was_opened,
    stats_count_what_happened,
    close_refuses_new_sessions_and_waits_for_running_ones,
    close_gives_up_waiting_after_close_timeout,
);

fn sized(db: &TestDb, pool_size: u32, max_overflow: u32) -> DbConfig {
    let mut config = db.config.clone();
    config.session.pool_size = pool_size;
    config.session.max_overflow = max_overflow;
    config.session.pool_timeout = Duration::from_millis(500);
    config
}

/// Opens `n` sessions at once, each on its own connection (a statement forces it open).
async fn hold(registry: &SqlConnectionRegistry, n: usize) -> Vec<Session> {
    let mut sessions = Vec::new();
    for _ in 0..n {
        let s = registry.connection().await.unwrap();
        s.execute_unprepared("SELECT 1").await.unwrap();
        sessions.push(s);
    }
    sessions
}

/// The server's id for the session's connection (SQLite has none).
async fn backend_pid(s: &Session, kind: Kind) -> i64 {
    let sql = match kind {
        Kind::Postgres => "SELECT pg_backend_pid()::bigint AS pid",
        Kind::MariaDb => "SELECT CAST(CONNECTION_ID() AS SIGNED) AS pid",
        Kind::SqliteFile | Kind::SqliteMemory => unreachable!("SQLite has no server process"),
    };
    let row = s
        .query_one_raw(Statement::from_string(s.get_database_backend(), sql))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "pid").unwrap()
}

async fn checkout_beyond_the_limit_times_out_with_counts(db: TestDb) {
    let registry = SqlConnectionRegistry::connect(sized(&db, 2, 1))
        .await
        .unwrap();
    let _held = hold(&registry, 3).await;
    let err = registry.get().await.unwrap_err();
    match &err {
        Error::PoolTimeout {
            size,
            in_use,
            waiting,
            max,
            ..
        } => {
            assert_eq!((*size, *in_use, *max), (3, 3, 3), "{err}");
            assert!(*waiting >= 1, "{err}");
        }
        other => panic!("expected a pool timeout, got {other:?}"),
    }
    let message = err.to_string();
    assert!(
        message.contains("size 3") && message.contains("in use 3"),
        "{message}"
    );
    assert_eq!(err.status_code(), 503);
    // Another registry on the same database is not affected.
    let other = SqlConnectionRegistry::connect(db.config.clone())
        .await
        .unwrap();
    other
        .session(async |s| Ok::<_, Error>(s.execute_unprepared("SELECT 1").await?))
        .await
        .unwrap();
}

async fn overflow_connections_close_when_pool_size_are_idle(db: TestDb) {
    let registry = SqlConnectionRegistry::connect(sized(&db, 2, 2))
        .await
        .unwrap();
    let held = hold(&registry, 4).await;
    assert_eq!(registry.stats().size, 4, "overflow opened under load");
    drop(held);
    assert!(
        eventually(|| registry.stats().size == 2 && registry.stats().idle == 2).await,
        "the two overflow connections closed, pool_size stay: {:?}",
        registry.stats()
    );
    // The two that stayed are reused, not reopened.
    let created = registry.stats().created;
    drop(hold(&registry, 2).await);
    assert_eq!(registry.stats().created, created);
}

async fn recycled_connections_are_replaced(db: TestDb) {
    if matches!(db.kind, Kind::SqliteFile | Kind::SqliteMemory) {
        return; // no server process to tell connections apart by
    }
    let mut config = sized(&db, 1, 0);
    config.session.pool_recycle = Some(Duration::from_secs(1));
    let registry = SqlConnectionRegistry::connect(config).await.unwrap();
    let s = registry.connection().await.unwrap();
    let first = backend_pid(&s, db.kind).await;
    drop(s);
    let s = registry.connection().await.unwrap();
    assert_eq!(backend_pid(&s, db.kind).await, first, "reused while young");
    drop(s);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let s = registry.connection().await.unwrap();
    assert_ne!(
        backend_pid(&s, db.kind).await,
        first,
        "replaced after pool_recycle"
    );
}

async fn leak_warning_names_where_the_session_was_opened(db: TestDb) {
    logs::capture();
    let mut config = db.config.clone();
    config.session.leak_warning = Some(Duration::from_millis(200));
    let registry = SqlConnectionRegistry::connect(config).await.unwrap();
    let (s, line) = (registry.get().await.unwrap(), line!());
    tokio::time::sleep(Duration::from_millis(600)).await;
    s.commit().await.unwrap();
    let opened_at = format!("{}:{line}", file!());
    let text = logs::text();
    let lines: Vec<_> = text.lines().filter(|l| l.contains(&opened_at)).collect();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("leak_warning") && l.contains("WARN")),
        "warned while held:\n{text}"
    );
    assert!(
        lines.iter().any(|l| l.contains("has returned")),
        "and when returned:\n{text}"
    );

    // A session returned in time is not reported.
    let (s, line) = (registry.get().await.unwrap(), line!());
    s.commit().await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let quick = format!("{}:{line}", file!());
    assert!(!logs::text().contains(&quick), "a short session is no leak");
}

async fn stats_count_what_happened(db: TestDb) {
    let registry = item::registry_with(sized(&db, 1, 0)).await;
    let before = registry.stats();
    for n in 0..3 {
        registry
            .session(async |s| item::insert(s, &format!("n{n}")).await)
            .await
            .unwrap();
    }
    let held = registry.get().await.unwrap();
    assert!(registry.get().await.is_err(), "pool of one is taken");
    drop(held);
    let after = registry.stats();
    assert_eq!(
        after.acquired - before.acquired,
        4,
        "three sessions and the held one"
    );
    assert_eq!(after.timed_out - before.timed_out, 1);
    assert_eq!(after.created, 1, "one connection served everything");
    assert_eq!((after.max, after.evicted, after.closed), (1, 0, 0));
}

async fn close_refuses_new_sessions_and_waits_for_running_ones(db: TestDb) {
    let registry = item::registry(&db).await;
    let running = registry.get().await.unwrap();
    item::insert(&running, "in flight").await.unwrap();
    let closing = tokio::spawn({
        let registry = registry.clone();
        async move { registry.close().await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !closing.is_finished(),
        "close waits for the running session"
    );
    assert!(matches!(registry.get().await, Err(Error::Closed { .. })));
    running.commit().await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), closing)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(registry.stats().size, 0, "every connection closed");
    if db.kind != Kind::SqliteMemory {
        let reopened = SqlConnectionRegistry::connect(db.config.clone())
            .await
            .unwrap();
        assert_eq!(
            item::names(&reopened).await,
            ["in flight"],
            "the running session committed"
        );
    }
}

async fn close_gives_up_waiting_after_close_timeout(db: TestDb) {
    let mut config = db.config.clone();
    config.session.close_timeout = Duration::from_millis(300);
    let registry = SqlConnectionRegistry::connect(config).await.unwrap();
    let stuck = registry.get().await.unwrap();
    let closed = tokio::time::timeout(Duration::from_secs(10), registry.close()).await;
    assert!(
        closed.is_ok(),
        "close returned although a session is still running"
    );
    assert!(matches!(registry.get().await, Err(Error::Closed { .. })));
    drop(stuck);
}
