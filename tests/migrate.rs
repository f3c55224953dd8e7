//! Schema migrations from the `migrations:` block: applied on connect with
//! `auto: true` (then `create_db` leaves the entities' tables alone), once
//! only when several instances start together, stopped with the file and
//! statement named when one fails, refused when an applied file changed,
//! and reverted with `.down.sql` files — on SQLite, PostgreSQL and MariaDB.

mod common;

use std::path::Path;
use std::time::Duration;

use common::item::Entity as Items;
use common::sql::count;
use common::{Kind, TestDb, test_db};
use sqlreg::{
    DbConfig, Error, MigrationState, Migrations, MigrationsConfig, SqlConnectionRegistry,
};

/// Writes `files` (name, SQL) into a fresh migrations directory.
fn migrations_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, sql) in files {
        std::fs::write(dir.path().join(name), sql).unwrap();
    }
    dir
}

const CREATE_WIDGETS: (&str, &str) = (
    "1_create_widgets.sql",
    "CREATE TABLE widgets (id INT PRIMARY KEY, name VARCHAR(50) NOT NULL);\n",
);
const SEED_WIDGETS: (&str, &str) = (
    "2_seed_widgets.sql",
    "-- one row, to count how often this ran\nINSERT INTO widgets (id, name) VALUES (1, 'first');\n",
);

fn auto(db: &TestDb, dir: &Path) -> DbConfig {
    db.config
        .clone()
        .migrations(MigrationsConfig::new(dir, true))
}

async fn connect_with_items(config: DbConfig) -> sqlreg::Result<SqlConnectionRegistry> {
    SqlConnectionRegistry::builder(config)
        .entity(Items)
        .connect()
        .await
}

/// Whether the database has a table `name` (selecting from it works).
async fn has_table(db: &SqlConnectionRegistry, name: &str) -> bool {
    common::sql::run(db, &format!("SELECT 1 FROM {name} WHERE 1 = 0"))
        .await
        .is_ok()
}

fn states(statuses: &[sqlreg::MigrationStatus]) -> Vec<(i64, MigrationState)> {
    statuses
        .iter()
        .map(|s| (s.version, s.state.clone()))
        .collect()
}

/// A migration may empty `search_path` for the rest of its connection, as
/// the first statement of every `pg_dump` output does: the migrations after
/// it still apply and are recorded, and no session inherits the setting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_migration_that_empties_search_path() {
    if let Some(db) = test_db(Kind::Postgres, "empty_search_path") {
        migration_that_empties_search_path(db).await;
    }
}

async fn migration_that_empties_search_path(db: TestDb) {
    let dir = migrations_dir(&[
        (
            "1_dump.sql",
            "SELECT pg_catalog.set_config('search_path', '', false);\n\
             CREATE TABLE public.widgets (id INT PRIMARY KEY, name VARCHAR(50) NOT NULL);\n",
        ),
        SEED_WIDGETS_QUALIFIED,
    ]);
    let registry = connect_with_items(auto(&db, dir.path())).await.unwrap();
    assert_eq!(count(&registry, "SELECT COUNT(*) FROM widgets").await, 1);
    let status = Migrations::from_dir(dir.path())
        .unwrap()
        .status(&registry)
        .await
        .unwrap();
    assert_eq!(
        states(&status),
        [(1, MigrationState::Applied), (2, MigrationState::Applied)]
    );
    assert!(
        has_table(&registry, "widgets").await,
        "sessions lost the default search_path"
    );
}

const SEED_WIDGETS_QUALIFIED: (&str, &str) = (
    "2_seed_widgets.sql",
    "INSERT INTO public.widgets (id, name) VALUES (1, 'first');\n",
);

/// `auto: true` applies the pending migrations on connect, the registered
/// entity's table is not created (the migrations own the schema), a second
/// connect applies nothing again, and a new file is applied on the next one.
async fn auto_applies_pending_migrations_once(db: TestDb) {
    let dir = migrations_dir(&[CREATE_WIDGETS, SEED_WIDGETS]);
    let registry = connect_with_items(auto(&db, dir.path())).await.unwrap();
    assert_eq!(count(&registry, "SELECT COUNT(*) FROM widgets").await, 1);
    assert!(!has_table(&registry, "items").await, "create_db made items");
    let migrations = Migrations::from_dir(dir.path()).unwrap();
    let status = migrations.status(&registry).await.unwrap();
    assert_eq!(
        states(&status),
        [(1, MigrationState::Applied), (2, MigrationState::Applied)]
    );
    assert_eq!(status[1].description, "seed widgets");
    assert_eq!(status[1].checksum.len(), 48, "SHA-384");

    let again = connect_with_items(auto(&db, dir.path())).await.unwrap();
    assert_eq!(count(&again, "SELECT COUNT(*) FROM widgets").await, 1);

    std::fs::write(
        dir.path().join("3_second_widget.sql"),
        "INSERT INTO widgets (id, name) VALUES (2, 'second');",
    )
    .unwrap();
    let third = connect_with_items(auto(&db, dir.path())).await.unwrap();
    assert_eq!(count(&third, "SELECT COUNT(*) FROM widgets").await, 2);
    assert_eq!(
        count(&third, "SELECT COUNT(*) FROM _sqlx_migrations").await,
        3
    );
}

/// `auto: false` connects without migrating; `up` applies the pending ones
/// and says which, `up` again applies none; `up(to)` stops at a version.
async fn up_applies_pending_up_to_a_version(db: TestDb) {
    let dir = migrations_dir(&[CREATE_WIDGETS, SEED_WIDGETS]);
    let config = db
        .config
        .clone()
        .migrations(MigrationsConfig::new(dir.path(), false));
    let registry = connect_with_items(config).await.unwrap();
    assert!(!has_table(&registry, "widgets").await, "auto is off");
    let migrations = Migrations::from_config(registry.config()).unwrap().unwrap();
    assert_eq!(migrations.up(&registry, Some(1)).await.unwrap(), [1]);
    assert_eq!(count(&registry, "SELECT COUNT(*) FROM widgets").await, 0);
    assert_eq!(migrations.up(&registry, None).await.unwrap(), [2]);
    assert!(migrations.up(&registry, None).await.unwrap().is_empty());
    assert_eq!(count(&registry, "SELECT COUNT(*) FROM widgets").await, 1);
}

/// A migration failing at its second statement: the error names the file,
/// the statement and its line; the earlier migration stays applied. Where
/// DDL is transactional nothing of the failed one is left and it is still
/// pending; on MariaDB its first statement was committed, `status` shows it
/// DIRTY, and `up` then refuses, saying how to recover.
async fn failing_migration_names_file_and_statement(db: TestDb) {
    let dir = migrations_dir(&[
        CREATE_WIDGETS,
        (
            "2_broken.sql",
            "CREATE TABLE gadgets (id INT PRIMARY KEY);\nINSERT INTO no_such_table VALUES (1);\n",
        ),
    ]);
    let err = connect_with_items(auto(&db, dir.path())).await.unwrap_err();
    let Error::Migration {
        version,
        file,
        message,
    } = &err
    else {
        panic!("expected a migration error, got {err:?}");
    };
    assert_eq!(*version, Some(2));
    assert!(file.as_ref().unwrap().ends_with("2_broken.sql"), "{err}");
    assert!(message.contains("2_broken.sql"), "{err}");
    assert!(
        message.contains("statement 2 (line 2): `INSERT INTO no_such_table VALUES (1)`"),
        "{err}"
    );

    let plain = db
        .config
        .clone()
        .migrations(MigrationsConfig::new(dir.path(), false));
    let registry = SqlConnectionRegistry::connect(plain).await.unwrap();
    let migrations = Migrations::from_dir(dir.path()).unwrap();
    let status = states(&migrations.status(&registry).await.unwrap());
    if db.kind == Kind::MariaDb {
        assert_eq!(
            status,
            [(1, MigrationState::Applied), (2, MigrationState::Dirty)]
        );
        assert!(
            has_table(&registry, "gadgets").await,
            "DDL committed itself"
        );
        let again = migrations.up(&registry, None).await.unwrap_err();
        let text = again.to_string();
        assert!(text.contains("half-applied"), "{text}");
        assert!(
            text.contains("DELETE FROM _sqlx_migrations WHERE version = 2"),
            "{text}"
        );
    } else {
        assert_eq!(
            status,
            [(1, MigrationState::Applied), (2, MigrationState::Pending)]
        );
        assert!(!has_table(&registry, "gadgets").await, "rolled back");
        assert!(message.contains("rolled back"), "{err}");
    }
    assert!(has_table(&registry, "widgets").await, "migration 1 stays");

    // Recovery as the error and the README say; the failed attempt left no
    // migration lock behind (the next `up` would wait forever).
    if db.kind == Kind::MariaDb {
        common::sql::run(&registry, "DROP TABLE gadgets")
            .await
            .unwrap();
        common::sql::run(&registry, "DELETE FROM _sqlx_migrations WHERE version = 2")
            .await
            .unwrap();
    }
    std::fs::write(
        dir.path().join("2_broken.sql"),
        "CREATE TABLE gadgets (id INT PRIMARY KEY);\n",
    )
    .unwrap();
    let fixed = Migrations::from_dir(dir.path()).unwrap();
    let applied = tokio::time::timeout(Duration::from_secs(30), fixed.up(&registry, None))
        .await
        .expect("no migration lock left behind");
    assert_eq!(applied.unwrap(), [2]);
    assert!(has_table(&registry, "gadgets").await);
}

/// A file edited after it was applied: `status` shows it CHANGED and `up`
/// fails naming it, applying nothing.
async fn changed_file_is_an_error_naming_it(db: TestDb) {
    let dir = migrations_dir(&[CREATE_WIDGETS]);
    let registry = connect_with_items(auto(&db, dir.path())).await.unwrap();
    let edited = "CREATE TABLE widgets (id INT PRIMARY KEY);\n";
    std::fs::write(dir.path().join(CREATE_WIDGETS.0), edited).unwrap();
    std::fs::write(dir.path().join(SEED_WIDGETS.0), SEED_WIDGETS.1).unwrap();
    let migrations = Migrations::from_dir(dir.path()).unwrap();
    let status = migrations.status(&registry).await.unwrap();
    assert!(
        matches!(status[0].state, MigrationState::Changed { .. }),
        "{status:?}"
    );
    let err = migrations.up(&registry, None).await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("1_create_widgets.sql"), "{text}");
    assert!(text.contains("changed after it was applied"), "{text}");
    assert_eq!(count(&registry, "SELECT COUNT(*) FROM widgets").await, 0);
}

/// Reversible migrations: `down` reverts the newest one only, `down(to)`
/// everything newer than `to`; a migration without `.down.sql` is refused.
async fn down_reverts_newest_or_to_a_version(db: TestDb) {
    let dir = migrations_dir(&[
        ("1_widgets.up.sql", CREATE_WIDGETS.1),
        ("1_widgets.down.sql", "DROP TABLE widgets;"),
        (
            "2_gadgets.up.sql",
            "CREATE TABLE gadgets (id INT PRIMARY KEY);",
        ),
        ("2_gadgets.down.sql", "DROP TABLE gadgets;"),
    ]);
    let registry = connect_with_items(auto(&db, dir.path())).await.unwrap();
    let migrations = Migrations::from_dir(dir.path()).unwrap();
    assert_eq!(migrations.down(&registry, None).await.unwrap(), [2]);
    assert!(!has_table(&registry, "gadgets").await);
    assert!(has_table(&registry, "widgets").await);
    migrations.up(&registry, None).await.unwrap();
    assert_eq!(migrations.down(&registry, Some(0)).await.unwrap(), [2, 1]);
    assert!(!has_table(&registry, "widgets").await);

    let simple = migrations_dir(&[CREATE_WIDGETS]);
    let simple = Migrations::from_dir(simple.path()).unwrap();
    simple.up(&registry, None).await.unwrap();
    let err = simple.down(&registry, None).await.unwrap_err();
    assert!(err.to_string().contains("no `.down.sql`"), "{err}");
    assert!(has_table(&registry, "widgets").await, "nothing reverted");
}

/// Four instances of an application connecting at once with `auto: true`:
/// all of them connect, and each migration ran exactly once.
async fn concurrent_instances_apply_each_migration_once(db: TestDb) {
    let dir = migrations_dir(&[CREATE_WIDGETS, SEED_WIDGETS]);
    // The database exists first, so the four reach their migrations together.
    SqlConnectionRegistry::connect(db.config.clone())
        .await
        .unwrap()
        .close()
        .await;
    let connects = (0..4).map(|_| {
        let config = auto(&db, dir.path());
        tokio::spawn(connect_with_items(config))
    });
    let registries: Vec<SqlConnectionRegistry> = futures_util::future::join_all(connects)
        .await
        .into_iter()
        .map(|joined| joined.unwrap().expect("every instance connects"))
        .collect();
    assert_eq!(registries.len(), 4);
    for registry in &registries {
        assert_eq!(count(registry, "SELECT COUNT(*) FROM widgets").await, 1);
    }
    assert_eq!(
        count(&registries[0], "SELECT COUNT(*) FROM _sqlx_migrations").await,
        2
    );
}

/// One `#[tokio::test]` per backend that keeps a database between
/// registries (a SQLite file, PostgreSQL, MariaDB) for each scenario.
macro_rules! on_persistent_backends {
    ($($scenario:ident),* $(,)?) => {
        on_persistent_backends!(@kind sqlite_file, SqliteFile, $($scenario),*);
        on_persistent_backends!(@kind postgres, Postgres, $($scenario),*);
        on_persistent_backends!(@kind mariadb, MariaDb, $($scenario),*);
    };
    (@kind $module:ident, $kind:ident, $($scenario:ident),*) => {
        mod $module {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $scenario() {
                    if let Some(db) = super::test_db(super::Kind::$kind, stringify!($scenario)) {
                        super::$scenario(db).await;
                    }
                }
            )*
        }
    };
}

on_persistent_backends!(
    auto_applies_pending_migrations_once,
    up_applies_pending_up_to_a_version,
    failing_migration_names_file_and_statement,
    changed_file_is_an_error_naming_it,
    down_reverts_newest_or_to_a_version,
    concurrent_instances_apply_each_migration_once,
);

/// The `migrations:` block as written in a config file: defaults, and a
/// misspelled key named with its full path and the nearest valid key.
#[test]
fn migrations_block_is_read_from_yaml() {
    let yaml = "db:\n  url: sqlite://\n  migrations: {auto: true}\n";
    let config = sqlreg::Config::from_yaml_str(yaml)
        .unwrap()
        .at("db")
        .unwrap();
    assert_eq!(
        config.migrations,
        Some(MigrationsConfig::new("migrations", true))
    );
    let none = sqlreg::Config::from_yaml_str("db:\n  url: sqlite://\n")
        .unwrap()
        .at("db")
        .unwrap();
    assert_eq!(none.migrations, None, "no block, no migrations");

    let typo = "db:\n  url: sqlite://\n  migrations: {paht: db/migrations}\n";
    let err = sqlreg::Config::from_yaml_str(typo)
        .unwrap()
        .at("db")
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("db.migrations.paht"), "{text}");
    assert!(text.contains("did you mean `path`"), "{text}");
}
