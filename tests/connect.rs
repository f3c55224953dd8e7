//! Connecting fails fast with the real cause — wrong password, unknown user,
//! nothing listening, a server that never answers — and no password ever
//! shows in an error, the registry's `Debug` or its URL.

mod common;

use std::net::{Ipv4Addr, TcpListener};
use std::time::{Duration, Instant};

use common::Kind;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use sqlreg::{Config, ConnectFailure, DbConfig, Error, SqlConnectionRegistry};

/// A wrong password that could not appear in a message by chance.
const WRONG_PASSWORD: &str = "Wr0ng-zebra%Pa55@7731:/#";

/// How long a connect that should time out after one second may take before
/// we call it a hang.
const HANG: Duration = Duration::from_secs(15);

/// Where to connect and as whom; `None` in a field means the test script's value.
struct Target<'a> {
    user: Option<&'a str>,
    password: Option<&'a str>,
    port: Option<u16>,
}

const TEST_SERVER: Target<'static> = Target {
    user: None,
    password: None,
    port: None,
};

/// A config for the test script's database on `kind`'s server, with the
/// parts of `target` replaced, and a one-second connect timeout. `None` when
/// the server is not available (see `common::test_db`).
fn config(kind: Kind, target: &Target<'_>) -> Option<DbConfig> {
    common::maintenance_config(kind)?;
    let (protocol, port_var) = match kind {
        Kind::Postgres => ("postgresql", "SQLREG_TEST_PG_PORT"),
        _ => ("mariadb", "SQLREG_TEST_MARIADB_PORT"),
    };
    let quoted = |value: Option<&str>, var: &str| match value {
        Some(value) => format!("'{}'", value.replace('\'', "''")),
        None => format!("${{oc.env:{var}}}"),
    };
    let port = target
        .port
        .map_or_else(|| format!("${{oc.env:{port_var}}}"), |p| p.to_string());
    let yaml = format!(
        "db:
  session:
    connect_timeout: 1
  url:
    protocol: {protocol}
    username: {user}
    password: {password}
    host: 127.0.0.1
    port: {port}
    file: ${{oc.env:SQLREG_TEST_DATABASE,sqlreg_test}}
",
        user = quoted(target.user, "SQLREG_TEST_USER"),
        password = quoted(target.password, "SQLREG_TEST_PASSWORD"),
    );
    Some(Config::from_yaml_str(&yaml).unwrap().at("db").unwrap())
}

/// The secrets a message must never contain: the test script's password and
/// the wrong one, as written and percent-encoded.
fn secrets() -> Vec<String> {
    let real = std::env::var("SQLREG_TEST_PASSWORD").expect("SQLREG_TEST_PASSWORD");
    assert!(
        real.len() >= 8,
        "a password distinctive enough to search for"
    );
    [real.as_str(), WRONG_PASSWORD]
        .iter()
        .flat_map(|p| {
            [
                (*p).to_owned(),
                utf8_percent_encode(p, NON_ALPHANUMERIC).to_string(),
            ]
        })
        .collect()
}

fn assert_no_password(what: &str, text: &str) {
    for secret in secrets() {
        assert!(!text.contains(&secret), "{what} shows a password: {text}");
    }
}

/// Connects, expecting a `Connect` error; checks it names `expected` and
/// shows no password in `Display` or `Debug`.
async fn connect_fails(config: DbConfig, expected: ConnectFailure, says: &str) -> Error {
    let err = SqlConnectionRegistry::connect(config).await.unwrap_err();
    let Error::Connect { reason, .. } = &err else {
        panic!("expected a connect error, got {err:?}");
    };
    assert_eq!(*reason, expected, "{err}");
    let display = err.to_string();
    assert!(display.contains(says), "`{display}` should say `{says}`");
    assert_no_password("Display", &display);
    assert_no_password("Debug", &format!("{err:?}"));
    err
}

async fn wrong_password_is_authentication_failed(kind: Kind) {
    let target = Target {
        password: Some(WRONG_PASSWORD),
        ..TEST_SERVER
    };
    let Some(config) = config(kind, &target) else {
        return;
    };
    connect_fails(
        config,
        ConnectFailure::AuthenticationFailed,
        "authentication failed",
    )
    .await;
}

async fn unknown_user_is_authentication_failed(kind: Kind) {
    let target = Target {
        user: Some("no_such_user_sqlreg"),
        ..TEST_SERVER
    };
    let Some(config) = config(kind, &target) else {
        return;
    };
    connect_fails(
        config,
        ConnectFailure::AuthenticationFailed,
        "authentication failed",
    )
    .await;
}

async fn closed_port_is_refused(kind: Kind) {
    // A port that was free a moment ago and has nothing listening now.
    let port = {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        listener.local_addr().unwrap().port()
    };
    let target = Target {
        port: Some(port),
        ..TEST_SERVER
    };
    let Some(config) = config(kind, &target) else {
        return;
    };
    connect_fails(config, ConnectFailure::Refused, "connection refused").await;
}

async fn silent_server_times_out(kind: Kind) {
    // The kernel completes the TCP handshake, but nobody ever accepts,
    // reads or answers.
    let silent = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let target = Target {
        port: Some(silent.local_addr().unwrap().port()),
        ..TEST_SERVER
    };
    let Some(config) = config(kind, &target) else {
        return;
    };
    assert_eq!(config.session.connect_timeout, Duration::from_secs(1));
    let started = Instant::now();
    connect_fails(config, ConnectFailure::TimedOut, "timed out").await;
    assert!(
        started.elapsed() < HANG,
        "connect hung for {:?} despite connect_timeout: 1",
        started.elapsed()
    );
    drop(silent);
}

async fn registry_debug_and_url_hide_the_password(kind: Kind) {
    let Some(config) = config(kind, &TEST_SERVER) else {
        return;
    };
    assert_no_password("DbConfig Debug", &format!("{config:?}"));
    let registry = SqlConnectionRegistry::connect(config).await.unwrap();
    let url = registry.url().to_string();
    assert!(
        url.contains(":***@"),
        "the URL says a password is set: {url}"
    );
    assert_no_password("url Display", &url);
    assert_no_password("url Debug", &format!("{:?}", registry.url()));
    assert_no_password("registry Debug", &format!("{registry:?}"));
    assert_no_password("config Debug", &format!("{:?}", registry.config()));
}

on_servers!(
    wrong_password_is_authentication_failed,
    unknown_user_is_authentication_failed,
    closed_port_is_refused,
    silent_server_times_out,
    registry_debug_and_url_hide_the_password,
);

/// A `url.host` that is a directory is the server's unix-socket directory,
/// as libpq (and core-lib through psycopg) reads it: the registry connects
/// through `<dir>/.s.PGSQL.<port>`, not over TCP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_host_that_is_a_directory_connects_through_the_unix_socket() {
    if common::maintenance_config(Kind::Postgres).is_none() {
        return;
    }
    let dir = std::env::var("SQLREG_TEST_PG_SOCKET_DIR")
        .expect("SQLREG_TEST_PG_SOCKET_DIR is not set: run the suite through scripts/test.sh");
    let yaml = format!(
        "db:
  create_db: false
  url:
    protocol: postgresql
    username: ${{oc.env:SQLREG_TEST_USER}}
    password: ${{oc.env:SQLREG_TEST_PASSWORD}}
    host: {dir}
    port: ${{oc.env:SQLREG_TEST_PG_PORT}}
    file: ${{oc.env:SQLREG_TEST_DATABASE,sqlreg_test}}
"
    );
    let config = Config::from_yaml_str(&yaml).unwrap().at("db").unwrap();
    let registry = SqlConnectionRegistry::connect(config).await.unwrap();
    assert_eq!(registry.url().host(), Some(dir.as_str()));
    // The server says the session came through a socket: no client address.
    let over_tcp: bool = registry
        .session(async |s| {
            let mut conn = s.sqlx::<sqlx::Postgres>().await?;
            let tcp: bool = sqlx::query_scalar("SELECT inet_client_addr() IS NOT NULL")
                .fetch_one(&mut *conn)
                .await?;
            Ok::<_, sqlreg::Error>(tcp)
        })
        .await
        .unwrap();
    assert!(!over_tcp, "the session came over TCP");
    registry.close().await;
}
