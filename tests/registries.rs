//! Many named databases from one config: discovery, names, the default,
//! duplicate names, partial failure and closing, on SQLite (the same on the
//! servers, side by side, is in `tests/registries_servers.rs`).

mod common;

use std::path::Path;

use common::sql::{count, run};
use sqlreg::{
    Config, ConnectFailure, DbSection, Error, SqlConnectionRegistries, SqlConnectionRegistry,
};

fn section(name: &str, path: &str) -> DbSection {
    DbSection {
        name: name.into(),
        path: path.into(),
    }
}

/// A config with SQLite file databases `db` and `analytics_db` in `dir`, and
/// core-lib's wrapped shape holding an in-memory one called `legacy`.
fn sqlite_config(dir: &Path) -> Config {
    Config::from_yaml_str(&format!(
        "core_lib:
  db:
    url: sqlite:///{main}
  analytics_db:
    create_db: true
    url: {{protocol: sqlite, file: {analytics}}}
  data:
    sqlalchemy:
      _target_: core_lib.connection.sql_alchemy_connection_registry.SqlAlchemyConnectionRegistry
      _instance_key_: legacy
      config:
        url: {{protocol: sqlite}}
  cache:
    ttl: 60
",
        main = dir.join("main.db").display(),
        analytics = dir.join("analytics.db").display(),
    ))
    .unwrap()
}

#[test]
fn discovery_names_plain_sections_by_key_and_wrapped_ones_by_instance_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = sqlite_config(dir.path());
    assert_eq!(
        config.sections_with_url("core_lib").unwrap(),
        [
            section("analytics_db", "core_lib.analytics_db"),
            section("legacy", "core_lib.data.sqlalchemy"),
            section("db", "core_lib.db"),
        ]
    );
    assert_eq!(config.section("core_lib.db"), section("db", "core_lib.db"));
    assert_eq!(
        config.section("core_lib.data.sqlalchemy"),
        section("legacy", "core_lib.data.sqlalchemy")
    );
    let err = config.sections_with_url("core_lib.dta").unwrap_err();
    assert!(
        matches!(&err, Error::Config { path, message } if path == "core_lib.dta" && message.contains("did you mean `data`")),
        "{err}"
    );
}

#[tokio::test]
async fn sqlite_databases_are_separate_and_found_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let config = sqlite_config(dir.path());
    let dbs = SqlConnectionRegistries::builder(&config)
        .discover("core_lib")
        .default("db")
        .connect()
        .await
        .unwrap();
    assert_eq!(
        dbs.names().collect::<Vec<_>>(),
        ["analytics_db", "legacy", "db"]
    );
    assert_eq!(dbs.default_name(), Some("db"));
    let main = dbs.get_default().unwrap();
    run(main, "CREATE TABLE events (id INTEGER PRIMARY KEY)")
        .await
        .unwrap();
    run(main, "INSERT INTO events VALUES (1)").await.unwrap();
    assert_eq!(
        count(dbs.get("db").unwrap(), "SELECT COUNT(*) FROM events").await,
        1
    );
    for other in ["analytics_db", "legacy"] {
        let err = run(dbs.get(other).unwrap(), "SELECT * FROM events")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("no such table"), "{other}: {err}");
    }
    assert!(
        dir.path().join("analytics.db").exists(),
        "create_db made the file"
    );
    dbs.close_all().await;
}

#[tokio::test]
async fn unknown_name_lists_the_known_names() {
    let dir = tempfile::tempdir().unwrap();
    let config = sqlite_config(dir.path());
    let dbs = SqlConnectionRegistries::builder(&config)
        .section("core_lib.db")
        .named("reports", "core_lib.analytics_db")
        .connect()
        .await
        .unwrap();
    let err = dbs.get("report").unwrap_err();
    assert!(
        matches!(&err, Error::UnknownDatabase { name, known } if name == "report" && known == &["db", "reports"]),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "no database named `report` (known: db, reports)"
    );
    // Two databases, neither called `default` nor marked: no default.
    let err = dbs.get_default().unwrap_err();
    assert!(
        matches!(err, Error::UnknownDatabase { ref name, .. } if name == "default"),
        "{err}"
    );
    dbs.close_all().await;

    let err = SqlConnectionRegistries::builder(&config)
        .section("core_lib.db")
        .default("main")
        .connect()
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "no database named `main` (known: db)");
}

#[tokio::test]
async fn a_database_named_default_or_the_only_one_is_the_default() {
    let dir = tempfile::tempdir().unwrap();
    let config = sqlite_config(dir.path());
    let only = SqlConnectionRegistries::builder(&config)
        .section("core_lib.analytics_db")
        .connect()
        .await
        .unwrap();
    assert_eq!(only.default_name(), Some("analytics_db"));
    assert!(only.get_default().is_ok());
    only.close_all().await;

    let named = SqlConnectionRegistries::builder(&config)
        .section("core_lib.analytics_db")
        .named("default", "core_lib.db")
        .connect()
        .await
        .unwrap();
    assert_eq!(named.default_name(), Some("default"));
    let url = named.get_default().unwrap().url().to_string();
    assert!(url.ends_with("main.db"), "{url}");
    named.close_all().await;
}

#[tokio::test]
async fn duplicate_names_are_rejected_before_anything_connects() {
    let dir = tempfile::tempdir().unwrap();
    let config = sqlite_config(dir.path());
    let err = SqlConnectionRegistries::builder(&config)
        .section("core_lib.analytics_db")
        .named("analytics_db", "core_lib.db")
        .connect()
        .await
        .unwrap_err();
    let Error::Config { path, message } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(path, "core_lib.db");
    assert!(
        message.contains("`analytics_db` is already used by `core_lib.analytics_db`"),
        "{message}"
    );
    assert!(
        !dir.path().join("analytics.db").exists(),
        "nothing was connected"
    );
}

#[tokio::test]
async fn an_invalid_section_stops_the_build_before_connecting() {
    let dir = tempfile::tempdir().unwrap();
    let config = sqlite_config(dir.path())
        .with_overrides(["+core_lib.db.sesion.pool_size=2"])
        .unwrap();
    let err = SqlConnectionRegistries::builder(&config)
        .discover("core_lib")
        .connect()
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Config { path, message } if path == "core_lib.db.sesion" && message.contains("did you mean `session`")),
        "{err}"
    );
    assert!(
        !dir.path().join("analytics.db").exists(),
        "nothing was connected"
    );
}

#[tokio::test]
async fn a_database_that_cannot_open_closes_the_ones_already_open() {
    let dir = tempfile::tempdir().unwrap();
    let config = sqlite_config(dir.path())
        .with_overrides(["core_lib.analytics_db.create_db=false"])
        .unwrap();
    let given = SqlConnectionRegistry::connect(config.at("core_lib.data.sqlalchemy").unwrap())
        .await
        .unwrap();
    let err = SqlConnectionRegistries::builder(&config)
        .registry("legacy", given.clone())
        .section("core_lib.db")
        .section("core_lib.analytics_db")
        .connect()
        .await
        .unwrap_err();
    assert_eq!(
        err.connect_failure(),
        Some(ConnectFailure::CannotOpenFile),
        "{err}"
    );
    let after = given.get().await.unwrap_err();
    assert!(matches!(after, Error::Closed { .. }), "{after}");
}

#[tokio::test]
async fn close_all_closes_every_database() {
    let dir = tempfile::tempdir().unwrap();
    let config = sqlite_config(dir.path());
    let dbs = SqlConnectionRegistries::builder(&config)
        .discover("")
        .connect()
        .await
        .unwrap();
    run(dbs.get("legacy").unwrap(), "SELECT 1").await.unwrap();
    dbs.close_all().await;
    for (name, db) in dbs.iter() {
        let err = db.get().await.unwrap_err();
        assert!(matches!(err, Error::Closed { .. }), "{name}: {err}");
    }
}
