//! Many named databases from one config: discovery, names, the default,
//! duplicate names, partial failure and closing — on SQLite, PostgreSQL and
//! MariaDB side by side.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{Kind, server_available, server_url_yaml, unique_name};
use sea_orm::{ConnectionTrait, Statement};
use sqlreg::{
    Backend, Config, ConnectFailure, DbSection, Error, SqlConnectionRegistries,
    SqlConnectionRegistry,
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

/// Runs one statement in a session of `db`.
async fn run(db: &SqlConnectionRegistry, sql: &str) -> sqlreg::Result<()> {
    db.session(async |s| {
        s.execute_unprepared(sql)
            .await
            .map(drop)
            .map_err(Error::from)
    })
    .await
}

async fn count(db: &SqlConnectionRegistry, sql: &str) -> i64 {
    let row = db
        .engine()
        .query_one_raw(Statement::from_string(
            db.engine().get_database_backend(),
            sql,
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index::<i64>(0).unwrap()
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
    assert!(
        matches!(
            err,
            Error::Connect {
                reason: ConnectFailure::CannotOpenFile,
                ..
            }
        ),
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
    assert!(
        matches!(
            err,
            Error::Connect {
                reason: ConnectFailure::AuthenticationFailed,
                ..
            }
        ),
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
