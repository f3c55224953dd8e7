//! TLS against the test script's servers with TLS on, a PostgreSQL and a
//! MariaDB server of their own (scripts/db/tls.sh): verifying the
//! server's certificate and name with the CA the script made, a wrong CA, a
//! name the certificate does not hold, a server without TLS, and a login by
//! client certificate alone — through the registry, as an application
//! connects, with every failure saying what is wrong and no password.

mod common;

use common::Kind;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use sea_orm::{ConnectionTrait, Statement};
use sqlreg::{Config, ConnectFailure, DbConfig, Error, Session, SqlConnectionRegistry};
use tokio::net::{TcpListener, TcpStream};

/// The TLS server, the files and the certificate user the test script made.
struct Tls {
    port: u16,
    ca: String,
    other_ca: String,
    client_cert: String,
    client_key: String,
    cert_user: String,
}

/// The script's TLS files, or `None` (with a `SKIPPED` note) when the
/// servers are not there on a developer machine; under `CI=true` a missing
/// server or TLS setup fails the test.
fn tls(kind: Kind, test: &str) -> Option<Tls> {
    if !common::server_available(kind, test) {
        return None;
    }
    let var = |name: &str| std::env::var(name).ok();
    let port_var = match kind {
        Kind::Postgres => "SQLREG_TEST_PG_TLS_PORT",
        _ => "SQLREG_TEST_MARIADB_TLS_PORT",
    };
    let found = (|| {
        Some(Tls {
            port: var(port_var)?.parse().ok()?,
            ca: var("SQLREG_TEST_TLS_CA")?,
            other_ca: var("SQLREG_TEST_TLS_OTHER_CA")?,
            client_cert: var("SQLREG_TEST_TLS_CLIENT_CERT")?,
            client_key: var("SQLREG_TEST_TLS_CLIENT_KEY")?,
            cert_user: var("SQLREG_TEST_TLS_CERT_USER")?,
        })
    })();
    if found.is_none() {
        assert!(
            !std::env::var("CI").is_ok_and(|v| v == "true"),
            "CI=true but SQLREG_TEST_TLS_* are not set: run the suite through scripts/test.sh"
        );
        eprintln!("SKIPPED {test} on {kind:?}: servers without TLS (run scripts/test.sh)");
    }
    found
}

/// Each backend's names for the URL keys and modes.
struct Keys {
    mode: &'static str,
    verify_full: &'static str,
    verify_ca: &'static str,
    require: &'static str,
    disable: &'static str,
    ca: &'static str,
    cert: &'static str,
    key: &'static str,
}

fn keys(kind: Kind) -> Keys {
    match kind {
        Kind::Postgres => Keys {
            mode: "sslmode",
            verify_full: "verify-full",
            verify_ca: "verify-ca",
            require: "require",
            disable: "disable",
            ca: "sslrootcert",
            cert: "sslcert",
            key: "sslkey",
        },
        _ => Keys {
            mode: "ssl-mode",
            verify_full: "VERIFY_IDENTITY",
            verify_ca: "VERIFY_CA",
            require: "REQUIRED",
            disable: "DISABLED",
            ca: "ssl-ca",
            cert: "ssl-cert",
            key: "ssl-key",
        },
    }
}

/// A port the test script exported.
fn port(var: &str) -> u16 {
    std::env::var(var)
        .unwrap_or_else(|_| panic!("{var} is not set: run the suite through scripts/test.sh"))
        .parse()
        .unwrap()
}

/// Who logs in: the test user with its password, or a user with no password.
enum Login<'a> {
    Password,
    NoPassword(&'a str),
}

/// A config for the test database at `host:port` with `query` in its URL.
fn config(
    kind: Kind,
    login: &Login<'_>,
    host: &str,
    port: u16,
    query: &[(&str, &str)],
) -> DbConfig {
    let protocol = match kind {
        Kind::Postgres => "postgresql",
        _ => "mariadb",
    };
    let credentials = match login {
        Login::Password => "username: ${oc.env:SQLREG_TEST_USER}
    password: ${oc.env:SQLREG_TEST_PASSWORD}"
            .to_owned(),
        Login::NoPassword(user) => format!("username: {user}"),
    };
    let query: String = if query.is_empty() {
        " {}".to_owned()
    } else {
        query
            .iter()
            .map(|(key, value)| format!("\n      {key}: '{value}'"))
            .collect()
    };
    let yaml = format!(
        "db:
  create_db: false
  session:
    connect_timeout: 5
  url:
    protocol: {protocol}
    {credentials}
    host: '{host}'
    port: {port}
    file: ${{oc.env:SQLREG_TEST_DATABASE,sqlreg_test}}
    query:{query}
"
    );
    Config::from_yaml_str(&yaml).unwrap().at("db").unwrap()
}

/// The test password as written and percent-encoded.
fn assert_no_password(text: &str) {
    let password = std::env::var("SQLREG_TEST_PASSWORD").expect("SQLREG_TEST_PASSWORD");
    let encoded = utf8_percent_encode(&password, NON_ALPHANUMERIC).to_string();
    assert!(
        !text.contains(&password) && !text.contains(&encoded),
        "shows the password: {text}"
    );
}

/// Connects, expecting a `Connect` error of class `expected` whose message
/// says every one of `says`, and no password in `Display` or `Debug`.
async fn connect_fails(config: DbConfig, expected: ConnectFailure, says: &[&str]) -> String {
    let err = SqlConnectionRegistry::connect(config).await.unwrap_err();
    let Error::Connect { reason, .. } = &err else {
        panic!("expected a connect error, got {err:?}");
    };
    let display = err.to_string();
    assert_eq!(*reason, expected, "{display}");
    for part in says {
        assert!(display.contains(part), "`{display}` should say `{part}`");
    }
    assert_no_password(&display);
    assert_no_password(&format!("{err:?}"));
    eprintln!("{display}");
    display
}

/// What the server says about the session's connection: the TLS version
/// (PostgreSQL `pg_stat_ssl`) or cipher (MariaDB `Ssl_cipher`), `None` for
/// a plain connection.
async fn tls_in_use(s: &Session) -> Result<Option<String>, Error> {
    let backend = s.get_database_backend();
    if backend == sea_orm::DbBackend::Postgres {
        let sql = "SELECT ssl, coalesce(version, '') FROM pg_stat_ssl WHERE pid = pg_backend_pid()";
        let row = s
            .query_one_raw(Statement::from_string(backend, sql))
            .await?
            .expect("the session's own row in pg_stat_ssl");
        let on: bool = row.try_get_by_index(0)?;
        Ok(on.then(|| row.try_get_by_index::<String>(1)).transpose()?)
    } else {
        let sql = "SHOW SESSION STATUS LIKE 'Ssl_cipher'";
        let row = s
            .query_one_raw(Statement::from_string(backend, sql))
            .await?
            .expect("Ssl_cipher");
        let cipher: String = row.try_get_by_index(1)?;
        Ok(Some(cipher).filter(|c| !c.is_empty()))
    }
}

/// The user the server says the session runs as.
async fn current_user(s: &Session) -> Result<String, Error> {
    let backend = s.get_database_backend();
    let sql = match backend {
        sea_orm::DbBackend::Postgres => "SELECT current_user::text",
        _ => "SELECT CURRENT_USER()",
    };
    let row = s
        .query_one_raw(Statement::from_string(backend, sql))
        .await?
        .expect("one row");
    Ok(row.try_get_by_index(0)?)
}

/// Connects with `config` and returns what [`tls_in_use`] says.
async fn tls_of(config: DbConfig) -> Option<String> {
    let registry = SqlConnectionRegistry::connect(config).await.unwrap();
    let tls = registry
        .session(async |s| tls_in_use(s).await)
        .await
        .unwrap();
    registry.close().await;
    tls
}

async fn verify_full_with_the_right_ca_connects_over_tls(kind: Kind) {
    let Some(tls) = tls(kind, "verify_full_with_the_right_ca_connects_over_tls") else {
        return;
    };
    let k = keys(kind);
    // The certificate names both: an IP address and a DNS name.
    for host in ["127.0.0.1", "localhost"] {
        let query = [(k.mode, k.verify_full), (k.ca, tls.ca.as_str())];
        let config = config(kind, &Login::Password, host, tls.port, &query);
        let used = tls_of(config).await;
        assert!(
            used.is_some(),
            "{kind:?} via {host}: the connection is not TLS"
        );
    }
}

async fn the_default_mode_uses_tls_where_the_server_offers_it(kind: Kind) {
    let Some(tls) = tls(kind, "the_default_mode_uses_tls_where_the_server_offers_it") else {
        return;
    };
    let k = keys(kind);
    let port = tls.port;
    // sqlx's default (PostgreSQL `prefer`, MySQL `PREFERRED`): TLS when
    // offered, the certificate not checked.
    let default = tls_of(config(kind, &Login::Password, "127.0.0.1", port, &[])).await;
    assert!(default.is_some(), "the default mode did not use TLS");
    let query = [(k.mode, k.disable)];
    let plain = tls_of(config(kind, &Login::Password, "127.0.0.1", port, &query)).await;
    assert_eq!(plain, None, "TLS despite {}={}", k.mode, k.disable);
}

async fn a_wrong_ca_fails_saying_the_certificate_is_not_trusted(kind: Kind) {
    let Some(tls) = tls(
        kind,
        "a_wrong_ca_fails_saying_the_certificate_is_not_trusted",
    ) else {
        return;
    };
    let k = keys(kind);
    for mode in [k.verify_full, k.verify_ca] {
        let query = [(k.mode, mode), (k.ca, tls.other_ca.as_str())];
        let config = config(kind, &Login::Password, "127.0.0.1", tls.port, &query);
        connect_fails(
            config,
            ConnectFailure::Tls,
            &["certificate", "UnknownIssuer", &tls.other_ca],
        )
        .await;
    }
}

/// Relays every connection to 127.0.0.2 (any free port) to the server on
/// 127.0.0.1:`port`: the same server, reached at an address its
/// certificate does not name. Stops when dropped.
struct OtherAddress {
    port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl OtherAddress {
    async fn start(port: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.2:0").await.unwrap();
        let local = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(("127.0.0.1", port)).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
        Self { port: local, task }
    }
}

impl Drop for OtherAddress {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn a_name_the_certificate_does_not_hold_fails_verify_full(kind: Kind) {
    let Some(tls) = tls(
        kind,
        "a_name_the_certificate_does_not_hold_fails_verify_full",
    ) else {
        return;
    };
    let k = keys(kind);
    let other = OtherAddress::start(tls.port).await;
    let query = [(k.mode, k.verify_full), (k.ca, tls.ca.as_str())];
    connect_fails(
        config(kind, &Login::Password, "127.0.0.2", other.port, &query),
        ConnectFailure::Tls,
        &[
            "certificate not valid for name",
            "127.0.0.2",
            "does not name the host",
        ],
    )
    .await;
    // verify-ca checks the CA, not the name.
    let query = [(k.mode, k.verify_ca), (k.ca, tls.ca.as_str())];
    let verify_ca = config(kind, &Login::Password, "127.0.0.2", other.port, &query);
    assert!(tls_of(verify_ca).await.is_some());
}

async fn require_against_a_server_without_tls_fails_clearly(kind: Kind) {
    let Some(_) = tls(kind, "require_against_a_server_without_tls_fails_clearly") else {
        return;
    };
    let k = keys(kind);
    // The primary (like every server but the TLS ones) has no TLS.
    let plain = port(match kind {
        Kind::Postgres => "SQLREG_TEST_PG_PORT",
        _ => "SQLREG_TEST_MARIADB_PORT",
    });
    let query = [(k.mode, k.require)];
    let config = config(kind, &Login::Password, "127.0.0.1", plain, &query);
    connect_fails(
        config,
        ConnectFailure::Tls,
        &[
            "server does not support TLS",
            &format!("{}={}", k.mode, k.require),
        ],
    )
    .await;
}

async fn a_client_certificate_logs_in_without_a_password(kind: Kind) {
    let Some(tls) = tls(kind, "a_client_certificate_logs_in_without_a_password") else {
        return;
    };
    let k = keys(kind);
    let port = tls.port;
    let login = Login::NoPassword(&tls.cert_user);
    let query = [
        (k.mode, k.verify_full),
        (k.ca, tls.ca.as_str()),
        (k.cert, tls.client_cert.as_str()),
        (k.key, tls.client_key.as_str()),
    ];
    let registry = SqlConnectionRegistry::connect(config(kind, &login, "127.0.0.1", port, &query))
        .await
        .unwrap();
    let (user, used) = registry
        .session(async |s| Ok::<_, Error>((current_user(s).await?, tls_in_use(s).await?)))
        .await
        .unwrap();
    registry.close().await;
    assert!(user.starts_with(&tls.cert_user), "logged in as {user}");
    assert!(used.is_some(), "the connection is not TLS");

    // Without the certificate the same user is refused.
    let query = [(k.mode, k.verify_full), (k.ca, tls.ca.as_str())];
    let config = config(kind, &login, "127.0.0.1", port, &query);
    let says = match kind {
        Kind::Postgres => "connection requires a valid client certificate",
        _ => "Access denied",
    };
    connect_fails(config, ConnectFailure::AuthenticationFailed, &[says]).await;
}

/// `sqlreg check` on a config for the test database on the TLS server of
/// `kind` (port `port`) with `query` (a YAML mapping) in its URL: its
/// stdout, after checking it succeeded and printed no password.
fn sqlreg_check(kind: Kind, port: u16, query: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let protocol = match kind {
        Kind::Postgres => "postgresql",
        _ => "mariadb",
    };
    let yaml = format!(
        "core_lib:\n  db:\n    url: {{protocol: {protocol}, username: '${{oc.env:SQLREG_TEST_USER}}', \
         password: '${{oc.env:SQLREG_TEST_PASSWORD}}', host: 127.0.0.1, port: {port}, \
         file: sqlreg_test, query: {query}}}\n"
    );
    std::fs::write(dir.path().join("config.yaml"), yaml).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sqlreg"))
        .current_dir(dir.path())
        .env_remove("SQLREG_CONFIG")
        .arg("check")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "sqlreg check failed:\n{stdout}");
    assert_no_password(&stdout);
    assert_no_password(&String::from_utf8_lossy(&out.stderr));
    stdout
}

/// `check`'s `tls` line.
fn tls_line(stdout: &str) -> &str {
    stdout
        .lines()
        .find(|line| line.trim_start().starts_with("tls "))
        .unwrap_or_else(|| panic!("no tls line:\n{stdout}"))
}

/// `sqlreg check` says whether the connection uses TLS, and which.
async fn check_shows_the_connections_tls(kind: Kind) {
    let Some(tls) = tls(kind, "check_shows_the_connections_tls") else {
        return;
    };
    let k = keys(kind);
    let verified = format!("{{{}: {}, {}: '{}'}}", k.mode, k.verify_full, k.ca, tls.ca);
    let plain = format!("{{{}: {}}}", k.mode, k.disable);
    let (verified, plain) = tokio::task::spawn_blocking(move || {
        (
            sqlreg_check(kind, tls.port, &verified),
            sqlreg_check(kind, tls.port, &plain),
        )
    })
    .await
    .unwrap();
    let line = tls_line(&verified);
    assert!(line.contains("on, TLSv1."), "{line}");
    let line = tls_line(&plain);
    assert!(line.trim_start().starts_with("tls        off"), "{line}");
}

on_servers!(
    verify_full_with_the_right_ca_connects_over_tls,
    the_default_mode_uses_tls_where_the_server_offers_it,
    a_wrong_ca_fails_saying_the_certificate_is_not_trusted,
    a_name_the_certificate_does_not_hold_fails_verify_full,
    require_against_a_server_without_tls_fails_clearly,
    a_client_certificate_logs_in_without_a_password,
    check_shows_the_connections_tls,
);
