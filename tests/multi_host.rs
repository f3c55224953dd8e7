//! Multi-host URLs on the test script's primary and its replica: each
//! `target_session_attrs` finds the host libpq would, an unreachable host is
//! passed over, `load_balance_hosts=random` spreads sessions, and a URL
//! whose hosts do not fit says what each one is. Which server served a
//! session is asked of the server itself. (Failover, which stops servers,
//! runs on pairs of its own: tests/failover.rs.)

mod common;

use std::time::{Duration, Instant};

use common::Kind;
use common::server::{count_rows, on_replica};
use sea_orm::ConnectionTrait;
use sqlreg::{DbConfig, Error, SqlConnectionRegistry, UrlConfig};

on_servers!(
    each_target_finds_its_host,
    an_unreachable_host_is_passed_over,
    load_balance_hosts_spreads_sessions,
    no_fitting_host_says_what_each_is,
    create_db_creates_the_database_through_a_multi_host_url,
);

fn port(var: &str) -> u16 {
    std::env::var(var)
        .unwrap_or_else(|_| panic!("{var} is not set: run the suite through scripts/test.sh"))
        .parse()
        .unwrap()
}

/// A port that was free a moment ago and has nothing listening now.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    listener.local_addr().unwrap().port()
}

/// The primary's and the replica's ports of `kind`'s test servers.
fn ports(kind: Kind) -> (u16, u16) {
    match kind {
        Kind::Postgres => (
            port("SQLREG_TEST_PG_PORT"),
            port("SQLREG_TEST_PG_STANDBY_PORT"),
        ),
        _ => (
            port("SQLREG_TEST_MARIADB_PORT"),
            port("SQLREG_TEST_MARIADB_REPLICA_PORT"),
        ),
    }
}

/// A fresh database on the primary with a table `items`, present on the
/// replica too; its config, to be pointed at several hosts.
async fn replicated_db(kind: Kind, test: &str) -> Option<DbConfig> {
    let db = common::test_db(kind, test)?;
    let plain = SqlConnectionRegistry::connect(db.config.clone())
        .await
        .unwrap();
    plain
        .session(async |s| {
            s.execute_unprepared("CREATE TABLE items (id INT PRIMARY KEY)")
                .await?;
            Ok::<_, Error>(())
        })
        .await
        .unwrap();
    plain.close().await;
    let (_, replica) = ports(kind);
    let on_replica = hosts(&db.config, &[replica], "").create_db(false);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let reached = match SqlConnectionRegistry::connect(on_replica.clone()).await {
            Ok(db) => {
                let seen = db
                    .read_session(async |s| count_rows(s, "items").await)
                    .await;
                db.close().await;
                seen.is_ok()
            }
            Err(_) => false,
        };
        if reached {
            return Some(db.config.create_db(false));
        }
        assert!(Instant::now() < deadline, "the replica never had the table");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `config` pointed at `ports` on the test host, in that order, with
/// `query` (`target_session_attrs=…`) added.
fn hosts(config: &DbConfig, ports: &[u16], query: &str) -> DbConfig {
    let mut config = config.clone();
    let UrlConfig::Parts(parts) = &mut config.url else {
        panic!("the test config gives the URL as parts");
    };
    let list: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    parts.host = Some(list.join(","));
    parts.port = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap();
        parts.query.insert(key.into(), value.into());
    }
    config
}

/// Where the sessions of a registry on `config` run: on the replica or not.
async fn lands_on_replica(config: DbConfig) -> bool {
    let db = SqlConnectionRegistry::connect(config).await.unwrap();
    let replica = db
        .read_session(async |s| on_replica(s).await)
        .await
        .unwrap();
    db.close().await;
    replica
}

async fn each_target_finds_its_host(kind: Kind) {
    let Some(config) = replicated_db(kind, "multi_host_targets").await else {
        return;
    };
    let (primary, replica) = ports(kind);
    // The replica is listed first: only `any` and the standby targets keep it.
    let expected = [
        ("any", true),
        ("read-write", false),
        ("primary", false),
        ("read-only", true),
        ("standby", true),
        ("prefer-standby", true),
    ];
    for (target, on_the_replica) in expected {
        let query = format!("target_session_attrs={target}");
        let config = hosts(&config, &[replica, primary], &query);
        assert_eq!(
            lands_on_replica(config).await,
            on_the_replica,
            "target_session_attrs={target} with the replica listed first"
        );
    }
    // Listed the other way round, `any` takes the primary and
    // `prefer-standby` still finds the replica.
    let any = hosts(&config, &[primary, replica], "target_session_attrs=any");
    assert!(!lands_on_replica(any).await, "`any` takes the first host");
    let prefer = hosts(
        &config,
        &[primary, replica],
        "target_session_attrs=prefer-standby",
    );
    assert!(
        lands_on_replica(prefer).await,
        "`prefer-standby` finds the standby"
    );

    // Writes work through the multi-host registry and reach the primary.
    let db = SqlConnectionRegistry::connect(hosts(
        &config,
        &[replica, primary],
        "target_session_attrs=read-write",
    ))
    .await
    .unwrap();
    db.session(async |s| {
        s.execute_unprepared("INSERT INTO items (id) VALUES (1)")
            .await?;
        Ok::<_, Error>(())
    })
    .await
    .unwrap();
    let seen = db
        .session(async |s| count_rows(s, "items").await)
        .await
        .unwrap();
    assert_eq!(seen, 1);
    let hosts = db.host_stats();
    assert_eq!(hosts.len(), 2, "{hosts:#?}");
    assert_eq!(
        hosts[0].role,
        Some(sqlreg::replication::Role::Standby),
        "{hosts:#?}"
    );
    assert_eq!(
        hosts[1].role,
        Some(sqlreg::replication::Role::Primary),
        "{hosts:#?}"
    );
    assert_eq!(
        hosts[0].pool.acquired, 0,
        "no session went to the standby: {hosts:#?}"
    );
    assert_eq!(db.stats(), hosts[1].pool, "stats() is the serving host's");
    db.close().await;
}

/// libpq's `port` keyword (`?port=5433,5432` beside `host: "h1,h2"`) gives
/// each host its port, on PostgreSQL, where libpq reads it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_port_keyword_gives_each_host_its_port() {
    let Some(config) = replicated_db(Kind::Postgres, "multi_host_port_keyword").await else {
        return;
    };
    let (primary, replica) = ports(Kind::Postgres);
    let listed = |target: &str| {
        let mut config = hosts(&config, &[], &format!("target_session_attrs={target}"));
        let UrlConfig::Parts(parts) = &mut config.url else {
            unreachable!("hosts() keeps the parts");
        };
        parts.host = Some("127.0.0.1,127.0.0.1".into());
        parts
            .query
            .insert("port".into(), format!("{replica},{primary}"));
        config
    };
    assert!(!lands_on_replica(listed("read-write")).await);
    assert!(lands_on_replica(listed("standby")).await);
    let db = SqlConnectionRegistry::connect(listed("any")).await.unwrap();
    let ports: Vec<Option<u16>> = db.url().hosts().iter().map(sqlreg::DbUrl::port).collect();
    assert_eq!(ports, [Some(replica), Some(primary)]);
    db.close().await;
}

async fn an_unreachable_host_is_passed_over(kind: Kind) {
    let Some(config) = replicated_db(kind, "multi_host_unreachable").await else {
        return;
    };
    let (primary, _) = ports(kind);
    let closed = closed_port();
    let config = hosts(
        &config,
        &[closed, primary],
        "target_session_attrs=read-write",
    );
    let db = SqlConnectionRegistry::connect(config).await.unwrap();
    let seen = db
        .session(async |s| count_rows(s, "items").await)
        .await
        .unwrap();
    assert_eq!(seen, 0);
    let hosts = db.host_stats();
    assert!(
        hosts[0].down.is_some(),
        "the closed port is reported down: {hosts:#?}"
    );
    assert!(hosts[1].down.is_none(), "{hosts:#?}");
    db.close().await;
}

async fn load_balance_hosts_spreads_sessions(kind: Kind) {
    let Some(config) = replicated_db(kind, "multi_host_balance").await else {
        return;
    };
    let (primary, replica) = ports(kind);
    let config = hosts(
        &config,
        &[primary, replica],
        "target_session_attrs=any&load_balance_hosts=random",
    );
    let db = SqlConnectionRegistry::connect(config).await.unwrap();
    let mut on_the_replica = 0;
    let trials = 40;
    for _ in 0..trials {
        if db
            .read_session(async |s| on_replica(s).await)
            .await
            .unwrap()
        {
            on_the_replica += 1;
        }
    }
    println!("{kind:?}: {on_the_replica} of {trials} sessions on the replica");
    assert!(
        (1..trials).contains(&on_the_replica),
        "sessions spread over both hosts: {on_the_replica} of {trials} on the replica"
    );
    db.close().await;
}

async fn no_fitting_host_says_what_each_is(kind: Kind) {
    let Some(config) = replicated_db(kind, "multi_host_none_fit").await else {
        return;
    };
    let (_, replica) = ports(kind);
    let closed = closed_port();
    let config = hosts(
        &config,
        &[replica, closed],
        "target_session_attrs=read-write",
    );
    let err = SqlConnectionRegistry::connect(config).await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::Acquire { .. }), "{err:?}");
    assert!(
        text.contains("no host fits target_session_attrs=read-write"),
        "{text}"
    );
    assert!(
        text.contains(&format!("127.0.0.1:{replica}: standby")),
        "{text}"
    );
    assert!(
        text.contains(&format!("127.0.0.1:{closed}: unreachable")),
        "{text}"
    );
    let password = std::env::var("SQLREG_TEST_PASSWORD").unwrap();
    assert!(!text.contains(&password), "no password in {text}");
}

async fn create_db_creates_the_database_through_a_multi_host_url(kind: Kind) {
    let Some(db) = common::test_db(kind, "multi_host_create_db") else {
        return;
    };
    let (primary, replica) = ports(kind);
    // No host has the database yet: none answers the role probe until the
    // first host (the primary) has created it.
    let config = hosts(
        &db.config,
        &[primary, replica],
        "target_session_attrs=read-write",
    );
    let registry = SqlConnectionRegistry::connect(config).await.unwrap();
    registry
        .session(async |s| {
            s.execute_unprepared("CREATE TABLE items (id INT PRIMARY KEY)")
                .await?;
            Ok::<_, Error>(())
        })
        .await
        .unwrap();
    let seen = registry
        .session(async |s| count_rows(s, "items").await)
        .await
        .unwrap();
    assert_eq!(seen, 0);
    registry.close().await;
}
