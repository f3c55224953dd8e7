//! Read-only sessions: servers refuse writes in them, and on SQLite they
//! never take the write lock, so a writer does not wait for them.

mod common;

use std::time::Duration;

use common::item;
use common::{Kind, TestDb};
use sea_orm::ConnectionTrait;
use sqlreg::Error;

on_every_backend!(
    reads_work_and_servers_refuse_writes,
    sqlx_reader_does_not_block_a_writer
);

async fn reads_work_and_servers_refuse_writes(db: TestDb) {
    let registry = item::registry(&db).await;
    registry
        .session(async |s| item::insert(s, "existing").await)
        .await
        .unwrap();
    let read = registry
        .read_session(async |s| Ok::<_, Error>(item::count_on(s).await))
        .await;
    assert_eq!(read.unwrap(), 1);

    let write = registry
        .read_session(async |s| item::insert(s, "refused").await)
        .await;
    match db.kind {
        Kind::Postgres | Kind::MariaDb => {
            let err = write.expect_err("a write in a read-only transaction");
            assert!(matches!(err, Error::Query(_)), "{err:?}");
            assert!(err.to_string().to_lowercase().contains("read"), "{err}");
            assert_eq!(item::names(&registry).await, ["existing"]);
        }
        // SQLite has no read-only transactions: the session only begins deferred.
        Kind::SqliteFile | Kind::SqliteMemory => assert!(write.is_ok()),
    }
}

/// A read-only session holding an open transaction (begun through sqlx,
/// which cannot see its first statement) must not make a writer wait.
async fn sqlx_reader_does_not_block_a_writer(db: TestDb) {
    let mut config = db.config.clone();
    config.sqlite.busy_timeout = Duration::from_secs(10);
    let registry = item::registry_with(config).await;
    let reader = registry.get_read_only().await.unwrap();
    match db.kind {
        Kind::SqliteFile | Kind::SqliteMemory => {
            let mut conn = reader.sqlx::<sqlx::Sqlite>().await.unwrap();
            let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM items")
                .fetch_one(&mut *conn)
                .await
                .unwrap();
            assert_eq!(n, 0);
        }
        _ => {
            reader
                .execute_unprepared("SELECT COUNT(*) FROM items")
                .await
                .unwrap();
        }
    }
    let writer = tokio::time::timeout(
        Duration::from_secs(3),
        registry.session(async |s| item::insert(s, "written").await),
    )
    .await;
    assert!(
        writer
            .expect("the writer did not wait for the reader")
            .is_ok()
    );
    reader.commit().await.unwrap();
}
