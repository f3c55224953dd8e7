//! Scenarios 6 and 7: a pool exhausted by slow sessions, and statements
//! that fail inside a session on a pool of one connection.

use std::time::Duration;

use sea_orm::ConnectionTrait;
use sqlreg::Error;

use super::harness::{self, HANG, Seen, backend_id, insert_session, sorted_names};
use crate::common::{Kind, TestDb, item};

/// Scenario 6: two sessions sleep on the only two connections; three more
/// callers time out with the pool's counts, and the sleepers still commit.
pub async fn exhausted_pool(db: TestDb, seen: Seen) {
    let registry = harness::registry(&db, |config| {
        config.session.pool_size = 2;
        config.session.max_overflow = 0;
        config.session.pool_timeout = Duration::from_millis(500);
    })
    .await;
    let sleep = match db.kind {
        Kind::Postgres => "SELECT pg_sleep(2)",
        _ => "SELECT SLEEP(2)",
    };
    let (inserted, mut sleeping) = tokio::sync::mpsc::channel(2);
    let sleepers: Vec<_> = (0..2)
        .map(|i| {
            let (registry, inserted) = (registry.clone(), inserted.clone());
            tokio::spawn(async move {
                registry
                    .session(async |s| {
                        item::insert(s, &format!("sleeper {i}")).await?;
                        inserted.send(()).await.unwrap();
                        s.execute_unprepared(sleep).await?;
                        Ok::<_, Error>(())
                    })
                    .await
            })
        })
        .collect();
    for _ in 0..2 {
        tokio::time::timeout(HANG, sleeping.recv())
            .await
            .expect("both sleepers got a connection");
    }

    let waiters = (0..3).map(|_| tokio::time::timeout(HANG, registry.get()));
    let waited = futures_util::future::join_all(waiters).await;
    for outcome in waited {
        let err = outcome
            .expect("a waiter hung")
            .expect_err("the pool is exhausted");
        seen.error(&err);
        println!("exhausted_pool {:?}: waiter got: {err}", db.kind);
        let Error::PoolTimeout {
            size,
            in_use,
            waiting,
            max,
            ..
        } = err
        else {
            panic!("expected a pool timeout, got {err:?}");
        };
        assert_eq!((size, in_use, max), (2, 2, 2), "{err}");
        assert!(waiting >= 1, "{err}");
        assert_eq!(err.status_code(), 503);
    }
    for sleeper in sleepers {
        let committed = tokio::time::timeout(HANG, sleeper)
            .await
            .expect("a sleeper hung")
            .expect("a sleeper panicked");
        committed.expect("the sleeper commits");
    }
    let names = sorted_names(&registry).await;
    println!(
        "exhausted_pool {:?}: rows after the sleepers committed: {names:?}; stats {:?}",
        db.kind,
        registry.stats()
    );
    assert_eq!(names, ["sleeper 0", "sleeper 1"]);
    assert_eq!(registry.stats().timed_out, 3);
    seen.text(format!("{registry:?}"));
}

/// Scenario 7: bad SQL and a unique violation inside sessions on a pool of
/// one: each session's earlier insert is rolled back, and the same
/// connection then serves a session that commits normally.
pub async fn failed_statement(db: TestDb, seen: Seen) {
    let registry = harness::registry(&db, |config| {
        config.session.pool_size = 1;
        config.session.max_overflow = 0;
    })
    .await;
    let connection = async || {
        let id = registry.session(async |s| Ok::<_, Error>(backend_id(s).await?));
        tokio::time::timeout(HANG, id).await.unwrap().unwrap()
    };
    let first = connection().await;
    insert_session(&registry, "existing").await.unwrap();

    let bad_sql = registry.session(async |s| {
        item::insert(s, "before bad sql").await?;
        s.execute_unprepared("SELEC 1 FROM nowhere").await?;
        Ok::<_, Error>(())
    });
    let bad_sql = tokio::time::timeout(HANG, bad_sql).await.unwrap();
    let bad_sql = bad_sql.expect_err("bad SQL fails");
    seen.error(&bad_sql);
    assert!(matches!(bad_sql, Error::Query(_)), "{bad_sql:?}");

    let duplicate = registry.session(async |s| {
        item::insert(s, "before duplicate").await?;
        item::insert(s, "existing").await?;
        Ok::<_, Error>(())
    });
    let duplicate = tokio::time::timeout(HANG, duplicate).await.unwrap();
    let duplicate = duplicate.expect_err("a unique violation fails");
    seen.error(&duplicate);
    assert!(matches!(duplicate, Error::Duplicate(_)), "{duplicate:?}");

    insert_session(&registry, "after failures").await.unwrap();
    let last = connection().await;
    let names = sorted_names(&registry).await;
    let stats = registry.stats();
    println!(
        "failed_statement {:?}: bad SQL -> {bad_sql}; duplicate -> {duplicate}; \
         connection {first} before, {last} after; rows {names:?}; stats {stats:?}",
        db.kind
    );
    assert_eq!(names, ["after failures", "existing"]);
    assert_eq!(first, last, "the one connection was reused, not replaced");
    assert_eq!((stats.size, stats.evicted), (1, 0));
    seen.text(format!("{registry:?}"));
}
