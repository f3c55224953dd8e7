//! The replicas the test script starts beside each server, seen through
//! sqlreg: a registry pointed at the PostgreSQL standby or the MariaDB
//! replica reads what the primary committed, and a write there fails with the
//! server's own "read-only" error instead of vanishing; `sqlreg check` on a
//! section with `replicas:` shows each host's role, lag and round trip, and
//! (PostgreSQL) the standby as an asynchronous standby of the primary.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::Kind;
use common::item;
use sea_orm::{ConnectionTrait, EntityTrait, Statement};
use sqlreg::{Config, SqlConnectionRegistry};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{Connection, Executor};

mod servers {
    use super::*;
    on_servers!(
        replica_serves_what_the_primary_committed_and_refuses_writes,
        check_shows_each_hosts_role_lag_and_round_trip,
        check_lists_every_host_of_a_multi_host_url,
    );
}

/// The replica's port variable of `kind`'s test server; under `CI=true` a
/// missing one fails (through `common::maintenance_config`).
fn replica_port_var(kind: Kind) -> Option<&'static str> {
    common::maintenance_config(kind)?;
    let port_var = match kind {
        Kind::Postgres => "SQLREG_TEST_PG_STANDBY_PORT",
        _ => "SQLREG_TEST_MARIADB_REPLICA_PORT",
    };
    assert!(
        std::env::var_os(port_var).is_some(),
        "{port_var} is not set: run the suite through scripts/test.sh"
    );
    Some(port_var)
}

/// `sqlreg check --json` on the test script's database of `kind` with its
/// replica under `replicas:` (only the port differs from `url`) and
/// `routing` as given; the report, after checking no password was printed.
fn check_with_replica(kind: Kind, port_var: &str, routing: &str) -> serde_json::Value {
    let database = std::env::var("SQLREG_TEST_DATABASE").unwrap_or_else(|_| "sqlreg_test".into());
    let yaml = format!(
        "core_lib:\n  db:\n    url: {}\n    replicas:\n      - {{port: '${{oc.env:{port_var}}}'}}\n    routing: {routing}\n",
        common::server_url_yaml(kind, &database, "{}")
    );
    check(&yaml)
}

/// `sqlreg check --json` on the config `yaml`; the one section's report,
/// after checking no password was printed.
fn check(yaml: &str) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.yaml"), yaml).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_sqlreg"))
        .current_dir(dir.path())
        .env_remove("SQLREG_CONFIG")
        .args(["check", "--json"])
        .output()
        .unwrap();
    let password = std::env::var("SQLREG_TEST_PASSWORD").unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stdout.contains(&password) && !stderr.contains(&password),
        "password printed"
    );
    assert!(output.status.success(), "check failed:\n{stdout}\n{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    report["databases"][0].clone()
}

async fn check_shows_each_hosts_role_lag_and_round_trip(kind: Kind) {
    let Some(port_var) = replica_port_var(kind) else {
        return;
    };
    let db = check_with_replica(kind, port_var, "{}");
    assert_eq!(db["status"], "OK", "{db:#}");
    let hosts = db["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), 2, "{db:#}");
    let (primary, replica) = (&hosts[0], &hosts[1]);
    assert_eq!(primary["configured_as"], "primary");
    assert_eq!(primary["role"], "primary", "{primary:#}");
    assert_eq!(primary["lag"], serde_json::Value::Null);
    assert_eq!(replica["configured_as"], "replica");
    assert_eq!(replica["role"], "standby", "{replica:#}");
    assert!(
        replica["url"].as_str().unwrap().contains(port_var),
        "{replica:#}"
    );
    // A healthy replica is within the default replica_max_lag (5 s).
    assert!(replica["lag"].as_f64().is_some(), "{replica:#}");
    assert_eq!(replica["beyond_max_lag"], false, "{replica:#}");
    for host in hosts {
        assert!(host["round_trip_ms"].as_f64().unwrap() > 0.0, "{host:#}");
        assert!(host["position"].as_str().is_some(), "{host:#}");
    }
    if kind == Kind::Postgres {
        assert_eq!(primary["timeline"], replica["timeline"], "{db:#}");
        // The standby streams from the primary, which lists it and does not
        // wait for it (the test script's standby is asynchronous).
        let receiver = &replica["streaming"]["receiver"];
        assert_eq!(receiver["status"], "streaming", "{replica:#}");
        assert_eq!(receiver["upstream"], primary["url"], "{db:#}");
        assert_eq!(receiver["sync_state"], "async", "{db:#}");
        let name = receiver["name"].as_str().expect("the standby's name");
        let standbys = primary["streaming"]["standbys"].as_array().unwrap();
        assert!(
            standbys
                .iter()
                .any(|s| s["name"] == name && s["sync_state"] == "async"),
            "{primary:#}"
        );
        assert_eq!(
            primary["streaming"]["synchronous_standby_names"],
            serde_json::Value::Null,
            "{primary:#}"
        );
    } else {
        assert_eq!(replica["streaming"], serde_json::Value::Null, "{replica:#}");
    }
}

/// With replay paused on the standby and a write committed on the primary,
/// the standby is behind by more than `replica_max_lag` however long the
/// check samples: check says routing would skip it. Resumed afterwards,
/// whatever happened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_says_a_paused_standby_is_beyond_replica_max_lag() {
    let Some(port_var) = replica_port_var(Kind::Postgres) else {
        return;
    };
    let env = |name: &str| std::env::var(name).unwrap();
    let options = |port: &str| {
        PgConnectOptions::new()
            .host("127.0.0.1")
            .port(port.parse().unwrap())
            .username(&env("SQLREG_TEST_USER"))
            .password(&env("SQLREG_TEST_PASSWORD"))
            .database(
                &std::env::var("SQLREG_TEST_DATABASE").unwrap_or_else(|_| "sqlreg_test".into()),
            )
    };
    let mut standby = common::standby::admin().await;
    let mut primary = PgConnection::connect_with(&options(&env("SQLREG_TEST_PG_PORT")))
        .await
        .unwrap();
    common::standby::pause_replay(&mut standby).await;
    let outcome = async {
        // A committed transaction the standby cannot replay while paused.
        primary
            .execute(
                "CREATE TEMP TABLE paused_replay (x int); INSERT INTO paused_replay VALUES (1)",
            )
            .await?;
        Ok::<_, sqlx::Error>(
            tokio::task::spawn_blocking(move || {
                check_with_replica(Kind::Postgres, port_var, "{replica_max_lag: 0.3}")
            })
            .await,
        )
    }
    .await;
    common::standby::resume_replay(&mut standby).await;
    let db = outcome.unwrap().unwrap();
    let replica = &db["hosts"][1];
    assert_eq!(replica["role"], "standby", "{db:#}");
    assert_eq!(replica["beyond_max_lag"], true, "{db:#}");
    assert!(replica["lag"].as_f64().unwrap() > 0.3, "{db:#}");
    // Behind is not broken: the section is still usable.
    assert_eq!(db["status"], "OK", "{db:#}");
}

/// The registry of `database` on the replica of `kind`'s test server.
async fn replica_registry(kind: Kind, database: &str) -> SqlConnectionRegistry {
    let (port_var, protocol) = match kind {
        Kind::Postgres => ("SQLREG_TEST_PG_STANDBY_PORT", "postgresql"),
        _ => ("SQLREG_TEST_MARIADB_REPLICA_PORT", "mariadb"),
    };
    assert!(
        std::env::var_os(port_var).is_some(),
        "{port_var} is not set: run the suite through scripts/test.sh"
    );
    let yaml = format!(
        "db:
  create_db: false
  url:
    protocol: {protocol}
    username: ${{oc.env:SQLREG_TEST_USER}}
    password: ${{oc.env:SQLREG_TEST_PASSWORD}}
    host: 127.0.0.1
    port: ${{oc.env:{port_var}}}
    file: {database}
"
    );
    let config = Config::from_yaml_str(&yaml).unwrap().at("db").unwrap();
    // The database was just created on the primary: wait for it to arrive.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match SqlConnectionRegistry::connect(config.clone()).await {
            Ok(registry) => return registry,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(err) => panic!("the replica never got {database}: {err}"),
        }
    }
}

async fn replica_serves_what_the_primary_committed_and_refuses_writes(kind: Kind) {
    let Some(db) = common::test_db(kind, "replica_reads") else {
        return;
    };
    let primary = item::registry(&db).await;
    primary
        .session(async |s| item::insert(s, "replicated").await.map(drop))
        .await
        .unwrap();
    let replica = replica_registry(kind, &db.name).await;

    let deadline = Instant::now() + Duration::from_secs(20);
    let mut names = Vec::new();
    while names.is_empty() && Instant::now() < deadline {
        // The table itself may not have arrived yet either.
        names = replica
            .read_session(async |s| {
                let rows = item::Entity::find().all(s).await?;
                Ok::<_, sqlreg::Error>(rows.into_iter().map(|row| row.name).collect())
            })
            .await
            .unwrap_or_default();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(names, ["replicated"]);

    let role_sql = match kind {
        Kind::Postgres => "SELECT CASE WHEN pg_is_in_recovery() THEN 1 ELSE 0 END::bigint AS v",
        _ => "SELECT CAST(@@read_only AS SIGNED) AS v",
    };
    let engine = replica.engine();
    let role = engine
        .query_one_raw(Statement::from_string(
            engine.get_database_backend(),
            role_sql,
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "v")
        .unwrap();
    assert_eq!(role, 1, "the replica says it is one");

    if kind == Kind::Postgres {
        let write = replica
            .session(async |s| item::insert(s, "on the standby").await.map(drop))
            .await
            .expect_err("a standby refuses writes");
        // Refused at BEGIN READ WRITE: "cannot set transaction read-write
        // mode during recovery".
        let message = write.to_string();
        assert!(
            message.contains("read-write mode during recovery"),
            "{message}"
        );
    }
}

/// A multi-host `url` listing the replica first: check asks each host, and
/// measures the standby's lag against the host that is the primary.
async fn check_lists_every_host_of_a_multi_host_url(kind: Kind) {
    let Some(port_var) = replica_port_var(kind) else {
        return;
    };
    let (protocol, primary_var) = match kind {
        Kind::Postgres => ("postgresql", "SQLREG_TEST_PG_PORT"),
        _ => ("mariadb", "SQLREG_TEST_MARIADB_PORT"),
    };
    let database = std::env::var("SQLREG_TEST_DATABASE").unwrap_or_else(|_| "sqlreg_test".into());
    let yaml = format!(
        "core_lib:\n  db:\n    url: {{protocol: {protocol}, username: '${{oc.env:SQLREG_TEST_USER}}', \
         password: '${{oc.env:SQLREG_TEST_PASSWORD}}', \
         host: '127.0.0.1:${{oc.env:{port_var}}},127.0.0.1:${{oc.env:{primary_var}}}', \
         file: {database}, query: {{target_session_attrs: read-write}}}}\n"
    );
    let db = check(&yaml);
    assert_eq!(db["status"], "OK", "{db:#}");
    let hosts = db["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), 2, "{db:#}");
    let (standby, primary) = (&hosts[0], &hosts[1]);
    assert_eq!(standby["role"], "standby", "{standby:#}");
    assert_eq!(primary["role"], "primary", "{primary:#}");
    assert!(
        standby["lag"].as_f64().is_some(),
        "lag against the primary: {standby:#}"
    );
    assert_eq!(primary["lag"], serde_json::Value::Null, "{primary:#}");
}
