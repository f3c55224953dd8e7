//! Named registries across SQLite, PostgreSQL and MariaDB side by side, and
//! a wrong password that stops the build and closes what was open.

mod common;

use std::time::Duration;

use common::sql::{count, run};
use common::{Kind, server_available, server_url_yaml, unique_name};
use sqlreg::{
    Backend, Config, ConnectFailure, Error, SqlConnectionRegistries, SqlConnectionRegistry,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_postgres_and_mariadb_side_by_side() {
    let test = "sqlite_postgres_and_mariadb_side_by_side";
    if !server_available(Kind::Postgres, test) || !server_available(Kind::MariaDb, test) {
        return;
    }
    let config = Config::from_yaml_str(&format!(
        "core_lib:\n  db:\n    url: {{protocol: sqlite}}\n  analytics_db:\n    url: {}\n  legacy_db:\n    url: {}\n",
        server_url_yaml(Kind::Postgres, &unique_name("multi_pg"), "{}"),
        server_url_yaml(Kind::MariaDb, &unique_name("multi_maria"), "{}"),
    ))
    .unwrap();
    let dbs = SqlConnectionRegistries::builder(&config)
        .discover("core_lib")
        .default("db")
        .connect()
        .await
        .unwrap();
    for (name, backend) in [
        ("db", Backend::Sqlite),
        ("analytics_db", Backend::Postgres),
        ("legacy_db", Backend::MySql),
    ] {
        let db = dbs.get(name).unwrap();
        assert_eq!(db.url().backend(), backend, "{name}");
        run(db, "CREATE TABLE marks (name VARCHAR(40))")
            .await
            .unwrap();
        run(db, &format!("INSERT INTO marks VALUES ('{name}')"))
            .await
            .unwrap();
        let rows = count(
            db,
            &format!("SELECT COUNT(*) FROM marks WHERE name = '{name}'"),
        )
        .await;
        assert_eq!(rows, 1, "{name}");
    }
    dbs.close_all().await;
    for (name, db) in dbs.iter() {
        assert!(
            matches!(db.get().await, Err(Error::Closed { .. })),
            "{name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_closes_the_databases_already_open() {
    if !server_available(
        Kind::Postgres,
        "a_wrong_password_closes_the_databases_already_open",
    ) {
        return;
    }
    let app = unique_name("partial");
    let config = Config::from_yaml_str(&format!(
        "core_lib:\n  db:\n    url: {}\n  broken_db:\n    url: {}\nwatch:\n  url: {}\n",
        server_url_yaml(
            Kind::Postgres,
            &app,
            &format!("{{application_name: {app}}}")
        ),
        server_url_yaml(Kind::Postgres, &app, "{}"),
        server_url_yaml(Kind::Postgres, &app, "{}"),
    ))
    .unwrap()
    .with_overrides(["core_lib.broken_db.url.password=not-the-password"])
    .unwrap();
    let given = SqlConnectionRegistry::connect(config.at("core_lib.db").unwrap())
        .await
        .unwrap();
    let observer = SqlConnectionRegistry::connect(config.at("watch").unwrap())
        .await
        .unwrap();
    let mine = format!("SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = '{app}'");
    run(&given, "SELECT 1").await.unwrap();
    assert_eq!(
        count(&observer, &mine).await,
        1,
        "the given registry holds a connection"
    );

    let err = SqlConnectionRegistries::builder(&config)
        .registry("db", given.clone())
        .section("core_lib.broken_db")
        .connect()
        .await
        .unwrap_err();
    assert_eq!(
        err.connect_failure(),
        Some(ConnectFailure::AuthenticationFailed),
        "{err}"
    );
    assert!(!err.to_string().contains("not-the-password"), "{err}");
    assert!(matches!(given.get().await, Err(Error::Closed { .. })));
    // The server ends a backend just after its client says goodbye.
    let mut open = count(&observer, &mine).await;
    for _ in 0..50 {
        if open == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        open = count(&observer, &mine).await;
    }
    assert_eq!(open, 0, "the given registry's connections are gone");
    observer.close().await;
}
