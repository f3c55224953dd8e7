//! Read-only sessions: servers refuse writes in them, and on SQLite they
//! never take the write lock, so a writer does not wait for them.

mod common;

use std::time::Duration;

use common::item;
use common::proxy::CountingProxy;
use common::{Kind, TestDb, eventually};
use sea_orm::{ConnectionTrait, EntityTrait};
use sqlreg::{Error, Isolation};

on_every_backend!(
    reads_work_and_servers_refuse_writes,
    sqlx_reader_does_not_block_a_writer
);

mod unwaited_commit {
    use super::{Kind, a_read_session_does_not_wait_for_its_commit as scenario};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        scenario(Kind::Postgres).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn mariadb() {
        scenario(Kind::MariaDb).await;
    }
}

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
        // SQLite has no read-only transactions: the session only begins
        // deferred, and what it wrote is committed (and waited for) like
        // any session's — through sqlx's bare connection too, out of sight.
        Kind::SqliteFile | Kind::SqliteMemory => {
            write.unwrap();
            registry
                .read_session(async |s| {
                    let mut conn = s.sqlx::<sqlx::Sqlite>().await?;
                    sqlx::query("INSERT INTO items (name, qty) VALUES ('bare', 1)")
                        .execute(&mut *conn)
                        .await?;
                    Ok::<_, Error>(())
                })
                .await
                .unwrap();
            assert_eq!(
                item::names(&registry).await,
                ["existing", "refused", "bare"]
            );
        }
    }
}

/// A read session at REPEATABLE READ (MariaDB's default) reads in a
/// transaction whose COMMIT can change nothing: it returns its rows
/// without waiting for that COMMIT. Here the COMMIT's reply never comes
/// (a relay drops it and then the connection): the session still returns
/// its rows, and the connection is closed rather than pooled, so the next
/// session reads on a new one.
async fn a_read_session_does_not_wait_for_its_commit(kind: Kind) {
    let Some(db) = common::test_db(kind, "read_commit_unwaited") else {
        return;
    };
    let registry = item::registry(&db).await;
    registry
        .session(async |s| item::insert(s, "kept").await)
        .await
        .unwrap();
    let proxy = CountingProxy::start(&db.config).await;
    let relayed = item::registry_with(proxy.route(&db.config)).await;
    let reads = relayed.isolation(Isolation::RepeatableRead);
    let read = async || {
        reads
            .read_session(async |s| {
                let items = item::Entity::find().all(s).await?;
                Ok::<_, Error>(items.into_iter().map(|i| i.name).collect::<Vec<_>>())
            })
            .await
    };
    proxy.cut_after_next_commit();
    assert_eq!(read().await.unwrap(), ["kept"]);
    assert!(
        eventually(|| relayed.stats().size == 0).await,
        "the connection whose COMMIT got no reply was closed"
    );
    assert_eq!(read().await.unwrap(), ["kept"]);
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
