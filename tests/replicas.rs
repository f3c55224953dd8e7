//! The replicas the test script starts beside each server, seen through
//! sqlreg: a registry pointed at the PostgreSQL standby or the MariaDB
//! replica reads what the primary committed, and a write there fails with the
//! server's own "read-only" error instead of vanishing.

mod common;

use std::time::{Duration, Instant};

use common::Kind;
use common::item;
use sea_orm::{ConnectionTrait, EntityTrait, Statement};
use sqlreg::{Config, SqlConnectionRegistry};

mod servers {
    use super::*;
    on_servers!(replica_serves_what_the_primary_committed_and_refuses_writes);
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
