//! Round trips per kind of session, counted on the wire by a relay between
//! the registry and the real server (tests/common/proxy.rs), so a later
//! change cannot add one silently. Each figure is what the session sends
//! after its connection is checked out, release included. These are the
//! figures of the README's session table.

mod common;

use common::proxy::{relayed, requests};
use common::{Kind, TestDb};
use sea_orm::ConnectionTrait;
use sqlreg::{Error, Isolation, Session, SqlConnectionRegistry};

on_every_backend!(
    round_trips_per_session_kind,
    read_sessions_without_begin_still_refuse_writes
);

async fn round_trips_per_session_kind(db: TestDb) {
    if matches!(db.kind, Kind::SqliteFile | Kind::SqliteMemory) {
        return; // SQLite's worker hops are counted by the benchmark, not on a wire
    }
    let postgres = db.kind == Kind::Postgres;
    let (registry, proxy) = relayed(&db).await;
    let statements = |n: usize| {
        async move |s: &Session| {
            for _ in 0..n {
                s.execute_unprepared("SELECT 1").await?;
            }
            Ok::<_, Error>(())
        }
    };
    let empty = requests(&proxy, async || {
        registry.session(statements(0)).await.unwrap();
    })
    .await;
    assert_eq!(empty, 0, "a session that runs nothing");
    let write = requests(&proxy, async || {
        registry.session(statements(1)).await.unwrap();
    })
    .await;
    assert_eq!(write, 3, "BEGIN READ WRITE, the statement, COMMIT");

    let read = requests(&proxy, async || {
        registry.read_session(statements(1)).await.unwrap();
    })
    .await;
    let read_twice = requests(&proxy, async || {
        registry.read_session(statements(2)).await.unwrap();
    })
    .await;
    if postgres {
        assert_eq!(
            read, 1,
            "READ COMMITTED: the statement alone, no BEGIN/COMMIT"
        );
        assert_eq!(read_twice, 2, "each statement alone");
    } else {
        assert_eq!(
            read, 3,
            "REPEATABLE READ: START TRANSACTION READ ONLY, statement, COMMIT"
        );
        assert_eq!(
            read_twice, 4,
            "the statements share the transaction's snapshot"
        );
    }
    let read_committed = requests(&proxy, async || {
        let options = registry.isolation(Isolation::ReadCommitted);
        options.read_session(statements(2)).await.unwrap();
    })
    .await;
    let write_after_read_committed = requests(&proxy, async || {
        registry.session(statements(1)).await.unwrap();
    })
    .await;
    if postgres {
        assert_eq!(read_committed, 2, "each statement alone");
        assert_eq!(
            write_after_read_committed, 3,
            "BEGIN READ WRITE, statement, COMMIT"
        );
    } else {
        assert_eq!(
            read_committed, 3,
            "the connection is made read-only, then each statement alone"
        );
        assert_eq!(
            write_after_read_committed, 4,
            "the connection is made writable again (DDL runs outside the transaction), then 3"
        );
    }
    let repeatable = requests(&proxy, async || {
        let options = registry.isolation(Isolation::RepeatableRead);
        options.read_session(statements(1)).await.unwrap();
    })
    .await;
    assert_eq!(repeatable, 3, "REPEATABLE READ needs the transaction");
    let savepoint = requests(&proxy, async || {
        registry
            .read_session(async |s| s.savepoint(statements(1)).await)
            .await
            .unwrap();
    })
    .await;
    assert_eq!(savepoint, 5, "BEGIN, SAVEPOINT, statement, RELEASE, COMMIT");

    let first_autocommit = requests(&proxy, async || {
        let s = registry.connection().await.unwrap();
        statements(1)(&s).await.unwrap();
    })
    .await;
    let autocommit = requests(&proxy, async || {
        let s = registry.connection().await.unwrap();
        statements(1)(&s).await.unwrap();
    })
    .await;
    let read_after_autocommit = requests(&proxy, async || {
        registry.read_session(statements(1)).await.unwrap();
    })
    .await;
    assert_eq!(autocommit, 1, "the statement alone");
    if postgres {
        assert_eq!(
            first_autocommit, 2,
            "the connection is made writable outside a transaction once, then the statement"
        );
        assert_eq!(
            read_after_autocommit, 2,
            "the connection is made read-only again, then the statement"
        );
    } else {
        assert_eq!(
            first_autocommit, 1,
            "MariaDB connections are writable already"
        );
        assert_eq!(
            read_after_autocommit, 3,
            "START TRANSACTION READ ONLY, statement, COMMIT"
        );
    }
    println!(
        "{:?} round trips: empty {empty}, session {write}, read_session {read} ({read_twice} for \
         two statements, {read_committed} at READ COMMITTED), connection {first_autocommit} then \
         {autocommit}",
        db.kind
    );
}

/// A read session that skips BEGIN runs on a connection where the server
/// itself refuses writes, whatever the statement.
async fn read_sessions_without_begin_still_refuse_writes(db: TestDb) {
    if matches!(db.kind, Kind::SqliteFile | Kind::SqliteMemory) {
        return; // SQLite does not enforce read-only access (see the README)
    }
    let registry = SqlConnectionRegistry::connect(db.config.clone())
        .await
        .unwrap();
    let table = "refused_outside_transactions";
    registry
        .session(async |s| {
            s.execute_unprepared(&format!("CREATE TABLE {table} (id INT PRIMARY KEY)"))
                .await?;
            Ok::<_, Error>(())
        })
        .await
        .unwrap();
    for level in [None, Some(Isolation::ReadCommitted)] {
        let options = match level {
            Some(level) => registry.isolation(level),
            None => registry.options(),
        };
        let refused = options
            .read_session(async |s| {
                s.execute_unprepared(&format!("INSERT INTO {table} VALUES (1)"))
                    .await?;
                Ok::<_, Error>(())
            })
            .await;
        let message = refused.expect_err("a write in a read session").to_string();
        assert!(
            message.contains("read-only") || message.contains("READ ONLY"),
            "{level:?}: {message}"
        );
    }
    // An autocommit connection writes, and a read session after it on the
    // same connection is refused again.
    let s = registry.connection().await.unwrap();
    s.execute_unprepared(&format!("INSERT INTO {table} VALUES (2)"))
        .await
        .unwrap();
    drop(s);
    let refused = registry
        .read_session(async |s| {
            s.execute_unprepared(&format!("INSERT INTO {table} VALUES (3)"))
                .await?;
            Ok::<_, Error>(())
        })
        .await;
    assert!(refused.is_err(), "a read session after an autocommit one");
    let rows = registry
        .read_session(async |s| {
            let rows = s
                .query_all_raw(sea_orm::Statement::from_string(
                    s.get_database_backend(),
                    format!("SELECT id FROM {table}"),
                ))
                .await?;
            Ok::<_, Error>(rows.len())
        })
        .await
        .unwrap();
    assert_eq!(rows, 1, "only the autocommit insert is there");
}
