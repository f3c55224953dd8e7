//! `create_db`: a missing database (PostgreSQL, MariaDB) or file (SQLite) is
//! created with the registered tables when it is on, idempotently; when it is
//! off, a missing database is an `UnknownDatabase` / `CannotOpenFile` connect
//! error and nothing is created — not the database, not the tables.

mod common;

use std::path::PathBuf;

use common::item::{self, Entity as Items};
use common::{Kind, TestDb, test_db};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use sqlreg::{ConnectFailure, DbConfig, Error, SqlConnectionRegistry, SqliteTarget};

/// A registry on the test script's own database, to look at the server from outside.
async fn maintenance(kind: Kind) -> SqlConnectionRegistry {
    let config = common::maintenance_config(kind).expect("server configured");
    SqlConnectionRegistry::connect(config)
        .await
        .expect("maintenance connect")
}

/// One `BIGINT` column `n` of the first row of `sql` with `values` bound.
async fn count(conn: &impl ConnectionTrait, sql: &str, values: Vec<sea_orm::Value>) -> i64 {
    let backend = conn.get_database_backend();
    conn.query_one_raw(Statement::from_sql_and_values(backend, sql, values))
        .await
        .unwrap_or_else(|err| panic!("{sql}: {err}"))
        .expect("one row")
        .try_get::<i64>("", "n")
        .expect("column n")
}

/// Whether the server has a database called exactly `name`, asked from
/// another database.
async fn database_exists(maintenance: &SqlConnectionRegistry, name: &str) -> bool {
    let sql = match maintenance.engine().get_database_backend() {
        DbBackend::Postgres => "SELECT COUNT(*) AS n FROM pg_database WHERE datname = $1",
        _ => "SELECT COUNT(*) AS n FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
    };
    count(maintenance.engine(), sql, vec![name.into()]).await == 1
}

/// Whether the database `conn` is on has a table called `table`.
async fn table_exists(conn: &impl ConnectionTrait, table: &str) -> bool {
    let sql = match conn.get_database_backend() {
        DbBackend::Postgres => {
            "SELECT COUNT(*) AS n FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_name = $1"
        }
        DbBackend::MySql => {
            "SELECT COUNT(*) AS n FROM information_schema.tables \
             WHERE table_schema = DATABASE() AND table_name = ?"
        }
        _ => "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name = ?",
    };
    count(conn, sql, vec![table.into()]).await == 1
}

/// The name of the database the registry is connected to, as the server says.
async fn current_database(registry: &SqlConnectionRegistry) -> String {
    let sql = match registry.engine().get_database_backend() {
        DbBackend::Postgres => "SELECT current_database() AS d",
        _ => "SELECT DATABASE() AS d",
    };
    registry
        .engine()
        .query_one_raw(Statement::from_string(
            registry.engine().get_database_backend(),
            sql,
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<String>("", "d")
        .unwrap()
}

/// The SQLite file of a file test database.
fn sqlite_file(config: &DbConfig) -> PathBuf {
    match config.url.to_db_url().unwrap().sqlite_target() {
        Some(SqliteTarget::File(path)) => path.clone(),
        other => panic!("not a SQLite file: {other:?}"),
    }
}

async fn connect_with_items(config: DbConfig) -> sqlreg::Result<SqlConnectionRegistry> {
    SqlConnectionRegistry::builder(config)
        .entity(Items)
        .connect()
        .await
}

// ---------------------------------------------------------------- servers

/// `create_db: true` (the default) on a database that does not exist and
/// whose name only works quoted: the database and the `items` table appear,
/// and connecting again with the same config changes nothing.
async fn creates_missing_database_and_tables_idempotently(kind: Kind) {
    // "Create-DB_<pid>_<n>_<nanos>": a hyphen and upper case letters.
    let Some(db) = test_db(kind, "Create-DB") else {
        return;
    };
    assert!(db.name.contains('-') && db.name.chars().any(|c| c.is_ascii_uppercase()));
    assert!(db.config.create_db, "create_db defaults to true");
    let outside = maintenance(kind).await;
    assert!(!database_exists(&outside, &db.name).await, "fresh name");

    let registry = connect_with_items(db.config.clone()).await.unwrap();
    assert!(
        database_exists(&outside, &db.name).await,
        "database created"
    );
    assert_eq!(current_database(&registry).await, db.name, "exact name");
    assert!(table_exists(registry.engine(), "items").await);
    registry
        .session(async |s| item::insert(s, "first").await)
        .await
        .unwrap();

    // Again, while the first registry is still open: no error, same rows.
    let again = connect_with_items(db.config.clone()).await.unwrap();
    assert_eq!(item::names(&again).await, ["first"]);
    again
        .session(async |s| item::insert(s, "second").await)
        .await
        .unwrap();
    let mut names = item::names(&registry).await;
    names.sort();
    assert_eq!(names, ["first", "second"], "both registries, one database");
    assert!(database_exists(&outside, &db.name).await);
}

/// `create_db: false` on a database that does not exist: the connect fails
/// with `UnknownDatabase`, and the database still does not exist.
async fn missing_database_without_create_db_fails(kind: Kind) {
    let Some(db) = test_db(kind, "Missing-DB") else {
        return;
    };
    let outside = maintenance(kind).await;
    let err = connect_with_items(db.config.clone().create_db(false))
        .await
        .unwrap_err();
    assert_eq!(
        err.connect_failure(),
        Some(ConnectFailure::UnknownDatabase),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("does not exist"),
        "the message says why: {err}"
    );
    assert!(
        !database_exists(&outside, &db.name).await,
        "create_db: false created {}",
        db.name
    );
}

/// `create_db: false` on a database that exists: it connects, but the
/// registered entities' tables are not created.
async fn existing_database_without_create_db_gets_no_tables(db: TestDb) {
    // The database (or file) exists, without tables.
    SqlConnectionRegistry::connect(db.config.clone())
        .await
        .unwrap()
        .close()
        .await;

    let registry = connect_with_items(db.config.clone().create_db(false))
        .await
        .unwrap();
    assert!(
        !table_exists(registry.engine(), "items").await,
        "create_db: false created the table"
    );
    let insert = registry
        .session(async |s| item::insert(s, "nowhere").await)
        .await;
    assert!(matches!(insert, Err(Error::Query(_))), "{insert:?}");
    registry.close().await;

    // The same check sees the table once create_db is on.
    let created = connect_with_items(db.config.clone()).await.unwrap();
    assert!(table_exists(created.engine(), "items").await);
}

// ---------------------------------------------------------------- SQLite

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_creates_missing_file_and_tables_idempotently() {
    let db = test_db(Kind::SqliteFile, "create_file").unwrap();
    let file = sqlite_file(&db.config);
    assert!(!file.exists());

    let registry = connect_with_items(db.config.clone()).await.unwrap();
    assert!(file.is_file(), "{} created", file.display());
    assert!(table_exists(registry.engine(), "items").await);
    registry
        .session(async |s| item::insert(s, "first").await)
        .await
        .unwrap();
    registry.close().await;

    let again = connect_with_items(db.config.clone()).await.unwrap();
    assert_eq!(item::names(&again).await, ["first"], "rows kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_missing_file_without_create_db_fails_and_creates_nothing() {
    let db = test_db(Kind::SqliteFile, "no_file").unwrap();
    let file = sqlite_file(&db.config);
    let dir = file.parent().unwrap().to_owned();

    let err = connect_with_items(db.config.clone().create_db(false))
        .await
        .unwrap_err();
    assert_eq!(
        err.connect_failure(),
        Some(ConnectFailure::CannotOpenFile),
        "{err:?}"
    );
    assert!(!file.exists(), "{} was created", file.display());
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert!(left.is_empty(), "files left behind: {left:?}");
}

on_servers!(
    creates_missing_database_and_tables_idempotently,
    missing_database_without_create_db_fails,
);

mod existing {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_file_without_create_db_gets_no_tables() {
        let db = test_db(Kind::SqliteFile, "no_tables").unwrap();
        existing_database_without_create_db_gets_no_tables(db).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_without_create_db_gets_no_tables() {
        if let Some(db) = test_db(Kind::Postgres, "no_tables") {
            existing_database_without_create_db_gets_no_tables(db).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn mariadb_without_create_db_gets_no_tables() {
        if let Some(db) = test_db(Kind::MariaDb, "no_tables") {
            existing_database_without_create_db_gets_no_tables(db).await;
        }
    }
}
