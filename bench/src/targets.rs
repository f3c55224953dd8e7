//! The four databases the bench runs against, and how each library names them.

use std::path::PathBuf;

use crate::data::Dialect;
use crate::runner::Result;

/// One database under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// A SQLite file in WAL mode.
    SqliteFile,
    /// An in-memory SQLite database (each library's own notion of one).
    SqliteMemory,
    /// The local PostgreSQL server.
    Postgres,
    /// The local MariaDB server.
    MariaDb,
}

/// Where the servers and the SQLite file are, read from the environment
/// `scripts/db-servers.sh` exports.
#[derive(Clone, Debug)]
pub struct Servers {
    /// `postgres://…` for sqlx / sea-orm.
    pub pg_url: String,
    /// `mysql://…` for sqlx / sea-orm.
    pub mariadb_url: String,
    /// Directory for the SQLite file and tool scratch files.
    pub scratch: PathBuf,
    /// Environment variables by name (`SQLREG_TEST_*`).
    vars: Vec<(String, String)>,
}

impl Servers {
    /// Reads the servers' environment; `None` when the servers were not started.
    pub fn from_env() -> Option<Self> {
        let pg_url = std::env::var("SQLREG_TEST_PG_URL").ok()?;
        let mariadb_url = std::env::var("SQLREG_TEST_MARIADB_URL").ok()?;
        let scratch = PathBuf::from(std::env::var("SQLREG_TEST_DB_DIR").ok()?).join("bench");
        let vars = std::env::vars()
            .filter(|(k, _)| k.starts_with("SQLREG_TEST_"))
            .collect();
        Some(Self {
            pg_url,
            mariadb_url,
            scratch,
            vars,
        })
    }

    /// An exported `SQLREG_TEST_<name>` value.
    pub fn var(&self, name: &str) -> Result<&str> {
        let key = format!("SQLREG_TEST_{name}");
        self.vars
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
            .ok_or_else(|| {
                format!("{key} is not set (start the servers with scripts/bench.sh)").into()
            })
    }

    /// The SQLite file the file contenders share.
    pub fn sqlite_file(&self) -> PathBuf {
        self.scratch.join("bench.db")
    }

    /// The URL sqlx and sea-orm connect to.
    pub fn sqlx_url(&self, target: Target) -> String {
        match target {
            Target::SqliteFile => format!("sqlite://{}?mode=rwc", self.sqlite_file().display()),
            Target::SqliteMemory => "sqlite::memory:".into(),
            Target::Postgres => self.pg_url.clone(),
            Target::MariaDb => self.mariadb_url.clone(),
        }
    }

    /// The `url:` block of a core-lib style config for sqlreg (and the
    /// environment interpolation it uses, as a user's file would).
    pub fn yaml_url(&self, target: Target) -> String {
        let server = |protocol: &str, port: &str| {
            format!(
                "{{protocol: {protocol}, username: '${{oc.env:SQLREG_TEST_USER}}', \
                 password: '${{oc.env:SQLREG_TEST_PASSWORD}}', host: 127.0.0.1, \
                 port: '${{oc.env:{port}}}', file: '${{oc.env:SQLREG_TEST_DATABASE}}'}}"
            )
        };
        match target {
            Target::SqliteFile => format!(
                "{{protocol: sqlite, file: '{}'}}",
                self.sqlite_file().display()
            ),
            Target::SqliteMemory => "{protocol: sqlite}".into(),
            Target::Postgres => server("postgresql", "SQLREG_TEST_PG_PORT"),
            Target::MariaDb => server("mariadb", "SQLREG_TEST_MARIADB_PORT"),
        }
    }
}

impl Target {
    /// Its name in tables and charts.
    pub fn label(self) -> &'static str {
        match self {
            Self::SqliteFile => "SQLite file",
            Self::SqliteMemory => "SQLite memory",
            Self::Postgres => "PostgreSQL",
            Self::MariaDb => "MariaDB",
        }
    }

    /// The SQL it speaks.
    pub fn dialect(self) -> Dialect {
        match self {
            Self::SqliteFile | Self::SqliteMemory => Dialect::Sqlite,
            Self::Postgres => Dialect::Postgres,
            Self::MariaDb => Dialect::MySql,
        }
    }

    /// Whether each contender's in-memory database must be seeded by the contender itself.
    pub fn private_memory(self) -> bool {
        self == Self::SqliteMemory
    }
}
