//! Session semantics (DESIGN.md "Session semantics"), each on every backend.

mod common;

use std::time::Duration;

use common::item::{self, Entity as Items};
use common::{Kind, TestDb, logs};
use sea_orm::{ConnectionTrait, EntityTrait};
use sqlreg::{Error, OrNotFound, SqlConnectionRegistry};

on_every_backend!(
    ok_commits,
    err_rolls_back,
    panic_rolls_back_and_continues,
    dropped_future_rolls_back_before_reuse,
    guard_commit_and_close_commit,
    guard_dropped_rolls_back_and_warns,
    failed_commit_is_reported_and_releases,
    entities_and_raw_sqlx_share_the_transaction,
    savepoint_rolls_back_alone,
    not_found_and_duplicate_are_classified,
    connection_autocommits_each_statement,
);

/// A registry whose pool has exactly one connection, so a connection
/// returned in a bad state is the one the next session gets.
async fn single_connection(db: &TestDb) -> SqlConnectionRegistry {
    let mut config = db.config.clone();
    config.session.pool_size = 1;
    config.session.max_overflow = 0;
    config.session.pool_timeout = Duration::from_secs(10);
    SqlConnectionRegistry::builder(config)
        .entity(Items)
        .connect()
        .await
        .unwrap()
}

/// A second registry (its own pool) on the same database, to look from outside.
async fn observer(db: &TestDb, registry: &SqlConnectionRegistry) -> SqlConnectionRegistry {
    if db.kind == Kind::SqliteMemory {
        // A private in-memory database is only visible through its own registry.
        return registry.clone();
    }
    SqlConnectionRegistry::connect(db.config.clone())
        .await
        .unwrap()
}

async fn ok_commits(db: TestDb) {
    let registry = item::registry(&db).await;
    let inserted = registry
        .session(async |s| item::insert(s, "committed").await)
        .await
        .unwrap();
    assert_eq!(inserted.name, "committed");
    let outside = observer(&db, &registry).await;
    assert_eq!(item::names(&outside).await, ["committed"]);
    assert_eq!(registry.stats().in_use, 0, "connection released");
}

async fn err_rolls_back(db: TestDb) {
    let registry = item::registry(&db).await;
    let result: Result<(), Error> = registry
        .session(async |s| {
            item::insert(s, "rolled back").await?;
            Err(Error::NotFound("on purpose".into()))
        })
        .await;
    assert!(matches!(result, Err(Error::NotFound(ref what)) if what == "on purpose"));
    assert!(item::names(&registry).await.is_empty());
    assert_eq!(registry.stats().in_use, 0, "connection released");
}

async fn panic_rolls_back_and_continues(db: TestDb) {
    let registry = single_connection(&db).await;
    let task = tokio::spawn({
        let registry = registry.clone();
        async move {
            registry
                .session(async |s| {
                    item::insert(s, "before panic").await?;
                    panic!("boom inside the session");
                    #[allow(unreachable_code)]
                    Ok::<_, Error>(())
                })
                .await
        }
    });
    let joined = task.await.unwrap_err();
    assert!(joined.is_panic(), "the panic continues past the session");
    // The only connection comes back outside any transaction: what the next
    // session commits is visible from another pool.
    registry
        .session(async |s| item::insert(s, "after panic").await)
        .await
        .unwrap();
    let outside = observer(&db, &registry).await;
    assert_eq!(item::names(&outside).await, ["after panic"]);
    assert_eq!(registry.stats().size, 1, "pool size intact");
}

async fn dropped_future_rolls_back_before_reuse(db: TestDb) {
    let registry = single_connection(&db).await;
    let cancelled = tokio::time::timeout(
        Duration::from_millis(300),
        registry.session(async |s| {
            item::insert(s, "cancelled").await?;
            std::future::pending::<()>().await;
            Ok::<_, Error>(())
        }),
    )
    .await;
    assert!(cancelled.is_err(), "the session future was cancelled");
    registry
        .session(async |s| item::insert(s, "next").await)
        .await
        .unwrap();
    let outside = observer(&db, &registry).await;
    assert_eq!(item::names(&outside).await, ["next"]);
}

async fn guard_commit_and_close_commit(db: TestDb) {
    let registry = item::registry(&db).await;
    let s = registry.get().await.unwrap();
    item::insert(&s, "by commit").await.unwrap();
    s.commit().await.unwrap();
    let s = registry.get().await.unwrap();
    item::insert(&s, "by close").await.unwrap();
    s.close().await.unwrap();
    let mut names = item::names(&observer(&db, &registry).await).await;
    names.sort();
    assert_eq!(names, ["by close", "by commit"]);
    assert_eq!(registry.stats().in_use, 0);
}

async fn guard_dropped_rolls_back_and_warns(db: TestDb) {
    logs::capture();
    let registry = single_connection(&db).await;
    let (s, line) = (registry.get().await.unwrap(), line!());
    item::insert(&s, "dropped").await.unwrap();
    drop(s);
    registry
        .session(async |s| item::insert(s, "kept").await)
        .await
        .unwrap();
    assert_eq!(item::names(&observer(&db, &registry).await).await, ["kept"]);
    let opened_at = format!("{}:{line}", file!());
    let warned = logs::text()
        .lines()
        .any(|l| l.contains("WARN") && l.contains("session dropped") && l.contains(&opened_at));
    assert!(warned, "a warning names {opened_at}:\n{}", logs::text());
}

async fn failed_commit_is_reported_and_releases(db: TestDb) {
    let registry = single_connection(&db).await;
    let outcome = match db.kind {
        // A deferred foreign key is checked only at COMMIT.
        Kind::SqliteFile | Kind::SqliteMemory | Kind::Postgres => {
            let deferred = "REFERENCES items(id) DEFERRABLE INITIALLY DEFERRED";
            let ddl = format!("CREATE TABLE orphans (item_id INTEGER {deferred})");
            registry.engine().execute_unprepared(&ddl).await.unwrap();
            registry
                .session(async |s| {
                    s.execute_unprepared("INSERT INTO orphans (item_id) VALUES (4242)")
                        .await?;
                    Ok::<_, Error>(())
                })
                .await
        }
        // MariaDB has no deferred constraints: kill the session's connection
        // from outside just before its COMMIT.
        Kind::MariaDb => {
            let killer = observer(&db, &registry).await;
            registry
                .session(async |s| {
                    item::insert(s, "lost").await?;
                    let me = s
                        .query_one_raw(sea_orm::Statement::from_string(
                            s.get_database_backend(),
                            "SELECT CONNECTION_ID() AS id",
                        ))
                        .await?
                        .unwrap()
                        .try_get::<u64>("", "id")?;
                    killer
                        .engine()
                        .execute_unprepared(&format!("KILL {me}"))
                        .await?;
                    Ok::<_, Error>(())
                })
                .await
        }
    };
    assert!(matches!(outcome, Err(Error::Commit(_))), "{outcome:?}");
    // The only connection was released: the next session gets one.
    registry
        .session(async |s| item::insert(s, "after failed commit").await)
        .await
        .unwrap();
    assert_eq!(item::names(&registry).await, ["after failed commit"]);
}

async fn entities_and_raw_sqlx_share_the_transaction(db: TestDb) {
    let registry = item::registry(&db).await;
    let s = registry.get().await.unwrap();
    item::insert(&s, "seen by sqlx").await.unwrap();
    let raw_count: i64 = match db.kind {
        Kind::SqliteFile | Kind::SqliteMemory => {
            let mut conn = s.sqlx::<sqlx::Sqlite>().await.unwrap();
            sqlx::query_scalar("SELECT COUNT(*) FROM items")
                .fetch_one(&mut *conn)
                .await
                .unwrap()
        }
        Kind::Postgres => {
            let mut conn = s.sqlx::<sqlx::Postgres>().await.unwrap();
            sqlx::query_scalar("SELECT COUNT(*) FROM items")
                .fetch_one(&mut *conn)
                .await
                .unwrap()
        }
        Kind::MariaDb => {
            let mut conn = s.sqlx::<sqlx::MySql>().await.unwrap();
            sqlx::query_scalar("SELECT COUNT(*) FROM items")
                .fetch_one(&mut *conn)
                .await
                .unwrap()
        }
    };
    assert_eq!(
        raw_count, 1,
        "sqlx sees the uncommitted row of the same transaction"
    );
    let wrong_backend = match db.kind {
        Kind::Postgres => s.sqlx::<sqlx::Sqlite>().await.map(drop),
        _ => s.sqlx::<sqlx::Postgres>().await.map(drop),
    };
    assert!(
        wrong_backend.is_err(),
        "asking for another backend's connection is an error"
    );
    s.rollback().await;
    assert!(item::names(&registry).await.is_empty());
}

async fn savepoint_rolls_back_alone(db: TestDb) {
    let registry = item::registry(&db).await;
    registry
        .session(async |s| {
            item::insert(s, "outer").await?;
            let inner: Result<(), Error> = s
                .savepoint(async |s| {
                    item::insert(s, "undone").await?;
                    Err(Error::NotFound("on purpose".into()))
                })
                .await;
            assert!(inner.is_err());
            s.savepoint(async |s| item::insert(s, "kept").await).await?;
            Ok::<_, Error>(())
        })
        .await
        .unwrap();
    let mut names = item::names(&registry).await;
    names.sort();
    assert_eq!(names, ["kept", "outer"]);
}

async fn not_found_and_duplicate_are_classified(db: TestDb) {
    let registry = item::registry(&db).await;
    let missing = registry
        .session(async |s| {
            Items::find_by_id(4711)
                .one(s)
                .await?
                .or_not_found("item 4711")
        })
        .await
        .unwrap_err();
    assert!(matches!(missing, Error::NotFound(ref what) if what == "item 4711"));
    assert_eq!(missing.status_code(), 404);

    let value = "unique-value-the-client-sent";
    registry
        .session(async |s| item::insert(s, value).await)
        .await
        .unwrap();
    let duplicate = registry
        .session(async |s| item::insert(s, value).await)
        .await
        .unwrap_err();
    assert!(matches!(duplicate, Error::Duplicate(_)), "{duplicate:?}");
    assert_eq!(duplicate.status_code(), 409);
    // The colliding value is the client's data: never in the error.
    for text in [duplicate.to_string(), format!("{duplicate:?}")] {
        assert!(!text.contains(value), "{text}");
    }
}

async fn connection_autocommits_each_statement(db: TestDb) {
    let registry = item::registry(&db).await;
    let conn = registry.connection().await.unwrap();
    item::insert(&conn, "autocommitted").await.unwrap();
    // Visible from another pool before this connection is even released.
    let outside = observer(&db, &registry).await;
    if db.kind != Kind::SqliteMemory {
        assert_eq!(item::count_on(outside.engine()).await, 1);
    }
    drop(conn);
    assert_eq!(item::names(&outside).await, ["autocommitted"]);
}
