//! A sea-orm-migration `MigratorTrait` registered on the builder owns the
//! schema instead of a directory: applied on connect with `auto: true`,
//! exactly once when four instances start together, and on each test
//! database of `sqlreg::testing` — on SQLite, PostgreSQL and MariaDB.
#![cfg(feature = "sea-orm-migration")]

mod common;

use common::sql::count;
use common::{Kind, TestDb, test_db};
use sea_orm_migration::prelude::*;
use sqlreg::testing::TestDatabase;
use sqlreg::{DbConfig, MigrationsConfig, SqlConnectionRegistry};

struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateWidgets), Box::new(SeedWidget)]
    }
}

struct CreateWidgets;

impl MigrationName for CreateWidgets {
    fn name(&self) -> &str {
        "m0001_create_widgets"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateWidgets {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE TABLE widgets (id INT PRIMARY KEY, name VARCHAR(50) NOT NULL)",
            )
            .await
            .map(drop)
    }
}

struct SeedWidget;

impl MigrationName for SeedWidget {
    fn name(&self) -> &str {
        "m0002_seed_widget"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for SeedWidget {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("INSERT INTO widgets (id, name) VALUES (1, 'first')")
            .await
            .map(drop)
    }
}

async fn connect(config: DbConfig) -> sqlreg::Result<SqlConnectionRegistry> {
    let config = config.migrations(MigrationsConfig::new("unused", true));
    SqlConnectionRegistry::builder(config)
        .entity(common::item::Entity)
        .sea_orm_migrator::<Migrator>()
        .connect()
        .await
}

/// Four instances connecting at once: all connect, each migration ran once,
/// and the registered entity's table was left to the migrator.
async fn four_instances_apply_each_migration_once(db: TestDb) {
    // The database exists first, so the four reach their migrations together.
    SqlConnectionRegistry::connect(db.config.clone())
        .await
        .unwrap()
        .close()
        .await;
    let connects = (0..4).map(|_| tokio::spawn(connect(db.config.clone())));
    let registries: Vec<SqlConnectionRegistry> = futures_util::future::join_all(connects)
        .await
        .into_iter()
        .map(|joined| joined.unwrap().expect("every instance connects"))
        .collect();
    for registry in &registries {
        assert_eq!(count(registry, "SELECT COUNT(*) FROM widgets").await, 1);
    }
    assert_eq!(
        count(&registries[0], "SELECT COUNT(*) FROM seaql_migrations").await,
        2
    );
    let items = common::sql::run(&registries[0], "SELECT 1 FROM items WHERE 1 = 0").await;
    assert!(items.is_err(), "create_db made the entity's table");
}

/// A test database gets the migrator's schema.
async fn test_database_gets_the_migrators_schema(kind: Kind) {
    let builder = TestDatabase::builder().sea_orm_migrator::<Migrator>();
    let builder = match kind {
        Kind::SqliteFile => builder,
        _ => match common::maintenance_config(kind) {
            Some(config) => builder.config(config),
            None => return,
        },
    };
    builder
        .run(async |db| {
            assert_eq!(count(&db, "SELECT COUNT(*) FROM widgets").await, 1);
        })
        .await;
}

mod sqlite {
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn four_instances_apply_each_migration_once() {
        let db = super::test_db(super::Kind::SqliteFile, "seaorm_four").unwrap();
        super::four_instances_apply_each_migration_once(db).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn test_database_gets_the_migrators_schema() {
        super::test_database_gets_the_migrators_schema(super::Kind::SqliteFile).await;
    }
}

mod postgres {
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn four_instances_apply_each_migration_once() {
        if let Some(db) = super::test_db(super::Kind::Postgres, "seaorm_four") {
            super::four_instances_apply_each_migration_once(db).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn test_database_gets_the_migrators_schema() {
        super::test_database_gets_the_migrators_schema(super::Kind::Postgres).await;
    }
}

mod mariadb {
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn four_instances_apply_each_migration_once() {
        if let Some(db) = super::test_db(super::Kind::MariaDb, "seaorm_four") {
            super::four_instances_apply_each_migration_once(db).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn test_database_gets_the_migrators_schema() {
        super::test_database_gets_the_migrators_schema(super::Kind::MariaDb).await;
    }
}
