//! SQLite done right: settings on every pooled connection, concurrent writers
//! without "database is locked", and an in-memory database that never hangs.

mod common;

use std::time::{Duration, Instant};

use common::item;
use common::{Kind, test_db};
use sea_orm::{ConnectionTrait, Statement};
use sqlreg::{Error, Session, SqlConnectionRegistry};

/// One pragma's value, read on the session's own connection.
async fn pragma(s: &Session, name: &str) -> String {
    let row = s
        .query_one_raw(Statement::from_string(
            s.get_database_backend(),
            format!("PRAGMA {name}"),
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index::<String>(0)
        .or_else(|_| row.try_get_by_index::<i64>(0).map(|n| n.to_string()))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_pooled_connection_gets_wal_busy_timeout_and_foreign_keys() {
    let db = test_db(Kind::SqliteFile, "pragmas").unwrap();
    let mut config = db.config.clone();
    config.session.pool_size = 4;
    config.session.max_overflow = 0;
    let registry = SqlConnectionRegistry::connect(config).await.unwrap();
    // Hold all four at once so each is a distinct connection.
    let mut sessions = Vec::new();
    for _ in 0..4 {
        sessions.push(registry.connection().await.unwrap());
    }
    assert_eq!(registry.stats().size, 4);
    for s in &sessions {
        assert_eq!(pragma(s, "journal_mode").await, "wal");
        assert_eq!(pragma(s, "busy_timeout").await, "5000");
        assert_eq!(pragma(s, "foreign_keys").await, "1");
        assert_eq!(pragma(s, "synchronous").await, "1", "NORMAL");
    }
}

#[sqlreg::test(entities(item::Entity))]
async fn concurrent_writers_never_see_database_is_locked(registry: SqlConnectionRegistry) {
    let deadline = Instant::now() + Duration::from_secs(3);
    let writers: Vec<_> = (0..8)
        .map(|writer| {
            let registry = registry.clone();
            tokio::spawn(async move {
                let (mut committed, mut failed) = (0u32, Vec::new());
                while Instant::now() < deadline {
                    let name = format!("w{writer}-{committed}");
                    match registry
                        .session(async |s| item::insert(s, &name).await)
                        .await
                    {
                        Ok(_) => committed += 1,
                        Err(err) => failed.push(err.to_string()),
                    }
                }
                (committed, failed)
            })
        })
        .collect();
    let mut total = 0;
    for writer in writers {
        let (committed, failed) = writer.await.unwrap();
        assert!(failed.is_empty(), "writer errors: {failed:?}");
        assert!(committed > 0, "every writer got through");
        total += committed;
    }
    let stored = registry
        .session(async |s| Ok::<_, Error>(item::count_on(s).await))
        .await
        .unwrap();
    assert_eq!(stored, i64::from(total), "every committed row is stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_memory_reader_is_not_blocked_by_an_open_writer() {
    let db = test_db(Kind::SqliteMemory, "memory").unwrap();
    let registry = item::registry(&db).await;
    registry
        .session(async |s| item::insert(s, "committed").await)
        .await
        .unwrap();

    let writer = registry.get().await.unwrap();
    item::insert(&writer, "uncommitted").await.unwrap();
    // A reader on another connection, while the write is open: it must see
    // the committed state at once, not wait for the writer.
    let read = tokio::time::timeout(Duration::from_secs(5), item::names(&registry)).await;
    assert_eq!(read.expect("the reader did not hang"), ["committed"]);
    writer.commit().await.unwrap();
    let mut names = item::names(&registry).await;
    names.sort();
    assert_eq!(
        names,
        ["committed", "uncommitted"],
        "all sessions share one database"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_memory_databases_of_two_registries_are_separate() {
    let first = item::registry(&test_db(Kind::SqliteMemory, "a").unwrap()).await;
    let second = item::registry(&test_db(Kind::SqliteMemory, "b").unwrap()).await;
    first
        .session(async |s| item::insert(s, "only in first").await)
        .await
        .unwrap();
    assert!(item::names(&second).await.is_empty());
    assert_eq!(item::names(&first).await, ["only in first"]);
}

/// sqlreg writes a bound LIMIT into a SQLite statement's text (so a cached
/// statement is not planned again at every run): sea-orm's `.one()`,
/// `.limit(n)` with changing `n`, and pages with a bound OFFSET still give
/// exactly the rows they ask for, run after run on the same connection.
#[sqlreg::test(entities(item::Entity))]
async fn limits_and_pages_return_the_rows_they_ask_for(registry: SqlConnectionRegistry) {
    use sea_orm::{EntityTrait, PaginatorTrait, QueryOrder, QuerySelect};

    registry
        .session(async |s| {
            for n in 0..10 {
                item::insert(s, &format!("n{n}")).await?;
            }
            Ok::<_, Error>(())
        })
        .await
        .unwrap();
    let names = |items: Vec<item::Model>| items.into_iter().map(|i| i.name).collect::<Vec<_>>();
    registry
        .read_session(async |s| {
            let ordered = || item::Entity::find().order_by_asc(item::Column::Id);
            for round in 0..3 {
                let first = ordered().one(s).await?.expect("a first item");
                assert_eq!(first.name, "n0", "round {round}");
                for limit in [1u64, 3, 7, 20] {
                    let got = names(ordered().limit(limit).all(s).await?);
                    let want: Vec<_> = (0..limit.min(10)).map(|n| format!("n{n}")).collect();
                    assert_eq!(got, want, "LIMIT {limit}, round {round}");
                }
                let pages = ordered().paginate(s, 4);
                assert_eq!(names(pages.fetch_page(2).await?), ["n8", "n9"]);
                assert_eq!(names(pages.fetch_page(1).await?), ["n4", "n5", "n6", "n7"]);
                assert_eq!(pages.num_items().await?, 10);
            }
            Ok::<_, Error>(())
        })
        .await
        .unwrap();
}
