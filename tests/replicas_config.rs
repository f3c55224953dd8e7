//! The `replicas:` list and the `routing:` block of a `db` section: the
//! issue's YAML loads as written, parts not given come from `url`, and a
//! mistake is named by its key path without ever showing a password.

use std::time::Duration;

use sqlreg::{Config, DbConfig, Fallback, RoutingConfig, UrlParts};

/// Safe in a URL string unencoded, as the issue's YAML writes it.
const PASSWORD: &str = "Pw-s3cr3t-replica";

/// `yaml` with `${oc.env:SQLREG_R_PASSWORD}` (and the other variables these
/// tests read) set.
fn load(yaml: &str) -> sqlreg::Result<DbConfig> {
    // SAFETY: every test sets the same values, and nothing in this test
    // binary reads the environment through foreign code.
    unsafe {
        std::env::set_var("SQLREG_R_PASSWORD", PASSWORD);
        std::env::set_var("SQLREG_R_LAG", "2.5");
        std::env::set_var("SQLREG_R_FLAG", "no");
    }
    Config::from_yaml_str(yaml)?.at("core_lib.db")
}

fn config_error(yaml: &str) -> (String, String) {
    match load(yaml) {
        Err(sqlreg::Error::Config { path, message }) => (path, message),
        other => panic!("expected a config error, got {other:?}"),
    }
}

const ISSUE_YAML: &str = "
core_lib:
  db:
    url: postgresql://app:${oc.env:SQLREG_R_PASSWORD}@primary:5432/app?sslmode=disable
    replicas:
      - postgresql://app:${oc.env:SQLREG_R_PASSWORD}@replica1:5432/app
      - { host: replica2 }            # parts not given are taken from url
    routing:
      replica_max_lag: 5
      read_your_writes: true
      primary_reads: false
      fallback: primary
";

#[test]
fn the_issue_yaml_loads_and_parts_come_from_url() {
    let db = load(ISSUE_YAML).unwrap();
    assert_eq!(
        db.routing,
        RoutingConfig::default()
            .replica_max_lag(Duration::from_secs(5))
            .fallback(Fallback::Primary)
    );
    let replicas = db.replica_urls().unwrap();
    let shown: Vec<String> = replicas.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "postgresql://app:***@replica1:5432/app",
            "postgresql://app:***@replica2:5432/app?sslmode=disable",
        ]
    );
    assert_eq!(replicas[1].password(), Some(PASSWORD));
}

#[test]
fn routing_defaults_and_values_from_the_environment() {
    let db = load("core_lib: {db: {url: 'postgresql://app@primary/app'}}").unwrap();
    assert!(db.replicas.is_empty());
    assert_eq!(db.routing.replica_max_lag, Duration::from_secs(5));
    assert!(db.routing.read_your_writes);
    assert!(!db.routing.primary_reads);
    assert_eq!(db.routing.fallback, Fallback::Primary);
    assert_eq!(db.replica_urls().unwrap(), []);

    let db = load(
        "core_lib:
  db:
    url: {protocol: postgresql, username: app, host: primary, file: app}
    replicas: [{host: replica1, port: 6432}]
    routing:
      replica_max_lag: ${oc.env:SQLREG_R_LAG}
      read_your_writes: ${oc.env:SQLREG_R_FLAG}
      primary_reads: 'yes'
      fallback: ERROR
",
    )
    .unwrap();
    assert_eq!(db.routing.replica_max_lag, Duration::from_millis(2500));
    assert!(!db.routing.read_your_writes);
    assert!(db.routing.primary_reads);
    assert_eq!(db.routing.fallback, Fallback::Error);
    let replica = &db.replica_urls().unwrap()[0];
    assert_eq!(
        (replica.host(), replica.port()),
        (Some("replica1"), Some(6432))
    );
}

#[test]
fn misspelled_keys_are_named_with_a_suggestion() {
    let (path, message) = config_error(
        "core_lib: {db: {url: 'postgresql://app@p/app', routing: {replica_max_lagg: 1}}}",
    );
    assert_eq!(path, "core_lib.db.routing.replica_max_lagg");
    assert!(
        message.contains("did you mean `replica_max_lag`"),
        "{message}"
    );

    let (path, message) = config_error(
        "core_lib: {db: {url: 'postgresql://app@p/app', replicas: [{host: r1}, {hots: r2}]}}",
    );
    assert_eq!(path, "core_lib.db.replicas[1].hots");
    assert!(message.contains("did you mean `host`"), "{message}");

    let (path, message) = config_error(
        "core_lib: {db: {url: 'postgresql://app@p/app', routing: {fallback: replica}}}",
    );
    assert_eq!(path, "core_lib.db.routing.fallback");
    assert!(message.contains("primary, error"), "{message}");

    let (path, message) = config_error(
        "core_lib: {db: {url: 'postgresql://app@p/app', routing: {replica_max_lag: -1}}}",
    );
    assert_eq!(path, "core_lib.db.routing.replica_max_lag");
    assert!(message.contains("negative"), "{message}");
}

#[test]
fn replicas_that_cannot_be_replicas_are_refused() {
    for (replicas, says) in [
        (
            "['mariadb://app@r1/app']",
            "same kind of server as `url` (postgresql)",
        ),
        ("[{port: 5432}]", "server of `url` itself"),
        (
            "[{host: r1, protocol: oracle}]",
            "unsupported dialect `oracle`",
        ),
    ] {
        let (path, message) = config_error(&format!(
            "core_lib: {{db: {{url: 'postgresql://app@primary:5432/app', replicas: {replicas}}}}}"
        ));
        assert_eq!(path, "core_lib.db.replicas[0]", "{replicas}");
        assert!(message.contains(says), "{replicas}: {message}");
    }
    let (path, message) =
        config_error("core_lib: {db: {url: 'sqlite:///app.db', replicas: ['sqlite:///b.db']}}");
    assert_eq!(path, "core_lib.db.replicas");
    assert!(message.contains("SQLite has no replicas"), "{message}");
}

#[test]
fn no_password_in_debug_or_errors() {
    let db = load(ISSUE_YAML).unwrap();
    let mut with_parts = db.clone().replica({
        let mut parts = UrlParts::default().host("replica3");
        parts.password = Some(PASSWORD.to_owned());
        parts
    });
    with_parts.routing = RoutingConfig::default().primary_reads(true);
    let debug = format!("{with_parts:?}");
    assert!(!debug.contains(PASSWORD), "{debug}");
    assert!(debug.contains("replica3"), "{debug}");

    // A replica refused because of its password keeps it hidden.
    let (_, message) = config_error(
        "core_lib:
  db:
    url: postgresql://app@primary/app
    replicas:
      - {host: r1, username: '', password: '${oc.env:SQLREG_R_PASSWORD}'}
",
    );
    assert!(!message.contains(PASSWORD), "{message}");
    assert!(message.contains("user name is empty"), "{message}");
}
