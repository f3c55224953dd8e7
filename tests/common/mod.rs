//! What every integration test shares: a fresh database per test on each
//! backend, a test entity, and a log capture.
#![allow(dead_code)] // each test binary uses its own part of this module

pub mod item;
pub mod login;
pub mod logs;
pub mod pair;
pub mod patroni;
pub mod proxy;
pub mod server;
pub mod spans;
pub mod sql;
pub mod standby;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use sqlreg::{Config, DbConfig};

/// The backends every scenario runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    SqliteFile,
    SqliteMemory,
    Postgres,
    MariaDb,
}

/// Polls `condition` for up to five seconds: the pool takes connections
/// back asynchronously (a read session's COMMIT runs after it returned,
/// sqlx's pool pings in a task), so its figures settle a moment after a
/// session ends.
pub async fn eventually(mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    condition()
}

/// A database of its own for one test; its files go when it is dropped.
pub struct TestDb {
    pub kind: Kind,
    pub config: DbConfig,
    /// The database (server backends) or file (SQLite) name.
    pub name: String,
    _dir: Option<tempfile::TempDir>,
}

/// A name no other test in any run of this suite uses.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    // MariaDB refuses database names over 64 characters.
    let prefix: String = prefix.chars().take(24).collect();
    format!(
        "{prefix}_{}_{}_{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// The server backends' YAML, credentials from the test script's environment
/// through core-lib's `${oc.env:…}` interpolation.
fn server_yaml(protocol: &str, port_var: &str, database: &str) -> String {
    format!(
        "db:
  url:
    protocol: {protocol}
    username: ${{oc.env:SQLREG_TEST_USER}}
    password: ${{oc.env:SQLREG_TEST_PASSWORD}}
    host: ${{oc.env:SQLREG_TEST_HOST,127.0.0.1}}
    port: ${{oc.env:{port_var}}}
    file: {database}
"
    )
}

/// The one-line YAML mapping for a `url:` key pointing at `database` on the
/// test server of `kind`, credentials through `${oc.env:…}`; `query` is
/// extra YAML for its `query:` mapping (`{}` for none).
pub fn server_url_yaml(kind: Kind, database: &str, query: &str) -> String {
    let (protocol, port_var) = match kind {
        Kind::Postgres => ("postgresql", "SQLREG_TEST_PG_PORT"),
        _ => ("mariadb", "SQLREG_TEST_MARIADB_PORT"),
    };
    format!(
        "{{protocol: {protocol}, username: '${{oc.env:SQLREG_TEST_USER}}', \
         password: '${{oc.env:SQLREG_TEST_PASSWORD}}', host: '${{oc.env:SQLREG_TEST_HOST,127.0.0.1}}', \
         port: '${{oc.env:{port_var}}}', file: {database}, query: {query}}}"
    )
}

/// Whether the test server of `kind` is there; prints a `SKIPPED` note for
/// `test` when it is not (and fails under `CI=true`).
pub fn server_available(kind: Kind, test: &str) -> bool {
    let configured = servers_configured(kind);
    if !configured {
        eprintln!("SKIPPED {test} on {kind:?}: no server (run scripts/test.sh)");
    }
    configured
}

/// Whether the servers the test script starts are reachable from this run.
fn servers_configured(kind: Kind) -> bool {
    let port_var = match kind {
        Kind::Postgres => "SQLREG_TEST_PG_PORT",
        _ => "SQLREG_TEST_MARIADB_PORT",
    };
    let configured = std::env::var_os(port_var).is_some();
    if !configured && std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true but {port_var} is not set: run the suite through scripts/test.sh");
    }
    configured
}

/// A fresh database for `test` on `kind`, or `None` (with a note on stderr)
/// when that server is not available on a developer machine. Under `CI=true`
/// a missing server fails the test instead.
pub fn test_db(kind: Kind, test: &str) -> Option<TestDb> {
    let name = unique_name(test);
    let (yaml, dir) = match kind {
        Kind::SqliteMemory => ("db:\n  url:\n    protocol: sqlite\n".to_owned(), None),
        Kind::SqliteFile => {
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join(format!("{name}.db"));
            let yaml = format!("db:\n  url: sqlite:///{}\n", file.display());
            (yaml, Some(dir))
        }
        Kind::Postgres | Kind::MariaDb if !servers_configured(kind) => {
            eprintln!("SKIPPED {test} on {kind:?}: no server (run scripts/test.sh)");
            return None;
        }
        Kind::Postgres => (
            server_yaml("postgresql", "SQLREG_TEST_PG_PORT", &name),
            None,
        ),
        Kind::MariaDb => (
            server_yaml("mariadb", "SQLREG_TEST_MARIADB_PORT", &name),
            None,
        ),
    };
    let config = Config::from_yaml_str(&yaml).unwrap().at("db").unwrap();
    Some(TestDb {
        kind,
        config,
        name,
        _dir: dir,
    })
}

/// The config of `database` on the server of `kind` (credentials from the
/// test script), or `None` when that server is not available (as [`test_db`]).
pub fn server_config(kind: Kind, database: &str) -> Option<DbConfig> {
    let (protocol, port_var) = match kind {
        Kind::Postgres => ("postgresql", "SQLREG_TEST_PG_PORT"),
        Kind::MariaDb => ("mariadb", "SQLREG_TEST_MARIADB_PORT"),
        Kind::SqliteFile | Kind::SqliteMemory => panic!("{kind:?} is not a server"),
    };
    if !servers_configured(kind) {
        eprintln!("SKIPPED on {kind:?}: no server (run scripts/test.sh)");
        return None;
    }
    let yaml = server_yaml(protocol, port_var, database);
    Some(Config::from_yaml_str(&yaml).unwrap().at("db").unwrap())
}

/// The test script's own database on `kind`'s server (never created or
/// dropped by a test), for looking at the server from outside.
pub fn maintenance_config(kind: Kind) -> Option<DbConfig> {
    let database = std::env::var("SQLREG_TEST_DATABASE").unwrap_or_else(|_| "sqlreg_test".into());
    server_config(kind, &database).map(|config| config.create_db(false))
}

/// Declares one `#[tokio::test]` per backend for each scenario
/// `async fn name(db: TestDb)` in the calling file.
#[macro_export]
macro_rules! on_every_backend {
    ($($scenario:ident),* $(,)?) => {
        $crate::on_every_backend!(@kind sqlite_file, SqliteFile, $($scenario),*);
        $crate::on_every_backend!(@kind sqlite_memory, SqliteMemory, $($scenario),*);
        $crate::on_every_backend!(@kind postgres, Postgres, $($scenario),*);
        $crate::on_every_backend!(@kind mariadb, MariaDb, $($scenario),*);
    };
    (@kind $module:ident, $kind:ident, $($scenario:ident),*) => {
        mod $module {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    if let Some(db) = $crate::common::test_db($crate::common::Kind::$kind, stringify!($scenario)) {
                        super::$scenario(db).await;
                    }
                }
            )*
        }
    };
}

/// Declares one `#[tokio::test]` per server backend (PostgreSQL, MariaDB)
/// for each scenario `async fn name(kind: Kind)` in the calling file.
#[macro_export]
macro_rules! on_servers {
    ($($scenario:ident),* $(,)?) => {
        $crate::on_servers!(@kind postgres, Postgres, $($scenario),*);
        $crate::on_servers!(@kind mariadb, MariaDb, $($scenario),*);
    };
    (@kind $module:ident, $kind:ident, $($scenario:ident),*) => {
        mod $module {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario($crate::common::Kind::$kind).await;
                }
            )*
        }
    };
}
