//! `sqlreg::testing`: a database per test from the config, migrated and
//! loaded with fixtures; 16 tests writing the same rows of the same table at
//! once never see each other; the database is gone after the test, also
//! after a panic; leftovers of ended runs are dropped, never a live run's.

mod common;

use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::Kind;
use common::sql::{count, run};
use futures_util::FutureExt;
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use sqlreg::testing::{self, TestDatabase, TestDatabaseBuilder};
use sqlreg::{DbConfig, SqlConnectionRegistry};

/// A builder on `kind`: SQLite through the defaults (no config file: a
/// SQLite file), the servers through the test script's database section.
fn builder(kind: Kind) -> Option<TestDatabaseBuilder> {
    let builder = TestDatabase::builder()
        .migrations("tests/migrations")
        .fixtures(["notes"]);
    match kind {
        Kind::SqliteFile => Some(builder),
        _ => common::maintenance_config(kind).map(|config| builder.config(config)),
    }
}

/// One of 16 tests: the same three ids into the same table as every other
/// one — a shared database would reject them as duplicates — then only its
/// own rows and the fixture's are there.
async fn writes_alone(kind: Kind, test: u32) {
    let Some(builder) = builder(kind) else {
        return;
    };
    builder
        .run(async |db| {
            for id in 100..103 {
                let sql = format!("INSERT INTO notes (id, author) VALUES ({id}, 'test {test}')");
                run(&db, &sql).await.unwrap();
            }
            // Let the other tests' writes interleave with this one's reads.
            tokio::time::sleep(Duration::from_millis(20)).await;
            assert_eq!(count(&db, "SELECT COUNT(*) FROM notes").await, 4);
            let mine = format!("SELECT COUNT(*) FROM notes WHERE author = 'test {test}'");
            assert_eq!(count(&db, &mine).await, 3);
        })
        .await;
}

macro_rules! sixteen {
    ($module:ident, $kind:ident) => {
        mod $module {
            macro_rules! one {
                ($name:ident, $n:literal) => {
                    #[tokio::test]
                    async fn $name() {
                        super::writes_alone(super::Kind::$kind, $n).await;
                    }
                };
            }
            one!(t01, 1);
            one!(t02, 2);
            one!(t03, 3);
            one!(t04, 4);
            one!(t05, 5);
            one!(t06, 6);
            one!(t07, 7);
            one!(t08, 8);
            one!(t09, 9);
            one!(t10, 10);
            one!(t11, 11);
            one!(t12, 12);
            one!(t13, 13);
            one!(t14, 14);
            one!(t15, 15);
            one!(t16, 16);
        }
    };
}

sixteen!(parallel_sqlite, SqliteFile);
sixteen!(parallel_postgres, Postgres);
sixteen!(parallel_mariadb, MariaDb);

/// Whether scratch database `name` exists on `kind` (for SQLite, `name` is
/// the database file).
async fn exists(kind: Kind, name: &str) -> bool {
    if kind == Kind::SqliteFile {
        return PathBuf::from(name).exists();
    }
    let outside = SqlConnectionRegistry::connect(common::maintenance_config(kind).unwrap())
        .await
        .unwrap();
    let (sql, backend) = match kind {
        Kind::Postgres => (
            "SELECT COUNT(*) FROM pg_database WHERE datname = $1",
            DbBackend::Postgres,
        ),
        _ => (
            "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
            DbBackend::MySql,
        ),
    };
    let row = outside
        .engine()
        .query_one_raw(Statement::from_sql_and_values(backend, sql, [name.into()]))
        .await
        .unwrap()
        .unwrap();
    let found = row.try_get_by_index::<i64>(0).unwrap() == 1;
    outside.close().await;
    found
}

/// The test's database exists while it runs and is gone after it, both
/// when it returns and when it panics (the panic reaching the caller).
async fn dropped_after_the_test_even_on_panic(kind: Kind) {
    for panics in [false, true] {
        let Some(builder) = builder(kind) else {
            return;
        };
        let seen = Arc::new(Mutex::new(String::new()));
        let inside = Arc::clone(&seen);
        let outcome = AssertUnwindSafe(builder.run(async move |db| {
            let name = db.url().database().unwrap().to_owned();
            assert!(exists(kind, &name).await, "{name} exists during the test");
            *inside.lock().unwrap() = name;
            assert!(!panics, "the test body panics");
        }))
        .catch_unwind()
        .await;
        assert_eq!(outcome.is_err(), panics, "a panic reaches the caller");
        let name = seen.lock().unwrap().clone();
        assert!(!name.is_empty());
        assert!(
            !exists(kind, &name).await,
            "{name} still exists (panicked: {panics})"
        );
    }
}

/// The start time of process `pid`, as `/proc/<pid>/stat` gives it.
fn start_time(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 1..];
    after_name
        .split_whitespace()
        .nth(19)
        .unwrap()
        .parse()
        .unwrap()
}

/// Creates a scratch database called `name` on `kind` as a killed run would
/// have left it; returns what [`exists`] takes.
async fn leave_behind(kind: Kind, name: &str) -> String {
    if kind == Kind::SqliteFile {
        let dir = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("test.db"), b"").unwrap();
        return dir.join("test.db").to_string_lossy().into_owned();
    }
    // Created from outside, without connecting to it afterwards: a test of
    // this file running at the same time may clean it up (it belongs to an
    // ended process) at any moment, which is what this test checks anyway.
    let server = SqlConnectionRegistry::connect(common::maintenance_config(kind).unwrap())
        .await
        .unwrap();
    let conn = server.connection().await.unwrap();
    conn.execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    drop(conn);
    server.close().await;
    name.to_owned()
}

/// `remove_stale` drops the database of a process that has ended, and keeps
/// the one of a process still running and this process's own.
async fn stale_databases_of_ended_runs_are_dropped(kind: Kind) {
    let Some(builder) = builder(kind) else {
        return;
    };
    let mine = builder.create().await.unwrap();
    let config = match kind {
        Kind::SqliteFile => DbConfig::new("sqlite://"),
        _ => common::maintenance_config(kind).unwrap(),
    };
    let prefix = testing::name_prefix();
    let mut ended = std::process::Command::new("true").spawn().unwrap();
    let (ended_pid, ended_start) = (ended.id(), start_time(std::process::id()));
    ended.wait().unwrap();
    let mut running = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    let running_name = format!("{prefix}{}_{}_0", running.id(), start_time(running.id()));
    let ended_name = format!("{prefix}{ended_pid}_{ended_start}_0");
    let ended_db = leave_behind(kind, &ended_name).await;
    let running_db = leave_behind(kind, &running_name).await;

    // Other tests of this binary clean up too, so judge by what exists.
    let removed = testing::remove_stale(&config).await.unwrap();
    let still_running = exists(kind, &running_db).await;
    running.kill().unwrap();
    running.wait().unwrap();
    assert!(!removed.contains(&running_name), "{removed:?}");
    assert!(
        !exists(kind, &ended_db).await,
        "the ended run's database was dropped"
    );
    assert!(still_running, "a running suite's database is kept");
    let own = mine
        .registry()
        .session(async |s| {
            s.execute_unprepared("SELECT 1")
                .await
                .map(drop)
                .map_err(sqlreg::Error::from)
        })
        .await;
    assert!(own.is_ok(), "this process's own database is kept: {own:?}");
    mine.remove().await.unwrap();
    // The running one's owner is gone now: the next cleanup takes it.
    testing::remove_stale(&config).await.unwrap();
    assert!(!exists(kind, &running_db).await);
}

/// A fixture whose SQL fails is reported with its file, and nothing is left.
#[tokio::test]
async fn a_failing_fixture_names_its_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("broken.sql"),
        "INSERT INTO nowhere VALUES (1);",
    )
    .unwrap();
    let err = TestDatabase::builder()
        .migrations("tests/migrations")
        .fixtures_dir(dir.path())
        .fixtures(["broken"])
        .create()
        .await
        .err()
        .expect("the fixture fails");
    let text = err.to_string();
    assert!(
        text.contains("broken.sql") && text.contains("fixture failed"),
        "{text}"
    );
}

/// The entities' tables are created when there are no migrations, and the
/// section is read from a config file named by the test.
#[tokio::test]
async fn entities_without_migrations_from_a_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.yaml");
    std::fs::write(&file, "app:\n  db:\n    url: sqlite:///ignored.db\n").unwrap();
    TestDatabase::builder()
        .config_file(&file)
        .section("app.db")
        .entity(common::item::Entity)
        .run(async |db| {
            db.session(async |s| common::item::insert(s, "one").await)
                .await
                .unwrap();
            assert_eq!(common::item::names(&db).await, ["one"]);
        })
        .await;
    assert!(
        !dir.path().join("ignored.db").exists(),
        "the configured file is not used"
    );
}

/// One `#[tokio::test]` per backend (SQLite file, PostgreSQL, MariaDB) for
/// each scenario `async fn name(kind: Kind)`.
macro_rules! on_persistent {
    ($($scenario:ident),* $(,)?) => {
        on_persistent!(@kind sqlite, SqliteFile, $($scenario),*);
        on_persistent!(@kind postgres, Postgres, $($scenario),*);
        on_persistent!(@kind mariadb, MariaDb, $($scenario),*);
    };
    (@kind $module:ident, $kind:ident, $($scenario:ident),*) => {
        mod $module {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario(super::Kind::$kind).await;
                }
            )*
        }
    };
}

on_persistent!(
    dropped_after_the_test_even_on_panic,
    stale_databases_of_ended_runs_are_dropped,
);
