//! The URL handed to sqlx's `ConnectOptions::from_str` — the only string
//! that holds the password — and how SQLAlchemy's query parameters map onto
//! the ones sqlx reads.
//!
//! sqlx 0.9 never rejects a parameter *name* (PostgreSQL warns and ignores,
//! MySQL silently ignores); it fails only on a bad *value* of one it knows
//! (`sslmode=maybe`), which is a real mistake worth failing on. So known
//! names pass through, the pymysql/mysqlclient spellings sqlx reads under
//! another name are renamed, and the rest are dropped with one warning that
//! names them instead of vanishing silently.

use percent_encoding::utf8_percent_encode;

use super::hosts::Host;
use super::{Backend, COMPONENT, DbUrl, SqliteTarget};

/// Parameters `PgConnectOptions` reads (sqlx-postgres 0.9 `options/parse.rs`),
/// but for `host` and `port`: a URL takes those out of its query as its hosts.
const POSTGRES_PARAMS: &[&str] = &[
    "sslmode",
    "ssl-mode",
    "sslrootcert",
    "ssl-root-cert",
    "ssl-ca",
    "sslcert",
    "ssl-cert",
    "sslkey",
    "ssl-key",
    "statement-cache-capacity",
    "hostaddr",
    "dbname",
    "user",
    "password",
    "application_name",
    "options",
];

/// Parameters `MySqlConnectOptions` reads (sqlx-mysql 0.9 `options/parse.rs`).
const MYSQL_PARAMS: &[&str] = &[
    "sslmode",
    "ssl-mode",
    "sslca",
    "ssl-ca",
    "charset",
    "collation",
    "sslcert",
    "ssl-cert",
    "sslkey",
    "ssl-key",
    "statement-cache-capacity",
    "socket",
    "timezone",
    "time-zone",
];

/// mysqlclient / pymysql spellings and the name sqlx reads them under.
const MYSQL_RENAMES: &[(&str, &str)] = &[
    ("ssl_mode", "ssl-mode"),
    ("ssl_ca", "ssl-ca"),
    ("ssl_cert", "ssl-cert"),
    ("ssl_key", "ssl-key"),
    ("unix_socket", "socket"),
    ("time_zone", "time-zone"),
];

impl DbUrl {
    /// The URL in sqlx's form (`postgres://…`, `mysql://…`; for SQLite
    /// `sqlite::memory:` or `sqlite://<path>`) with user, password and
    /// database percent-encoded as sqlx decodes them, and the effective port.
    /// Contains the password: use it only to build connect options.
    ///
    /// sqlx connects to one server, so this is the first host's URL: call it
    /// on one of [`DbUrl::hosts`] to reach another. `target_session_attrs`
    /// and `load_balance_hosts` are never in it (sqlreg applies them).
    pub(crate) fn to_sqlx_url(&self) -> String {
        let query = self.sqlx_query();
        match (&self.sqlite, self.backend) {
            (Some(SqliteTarget::Memory), _) => with_query("sqlite::memory:".to_owned(), &query),
            (Some(SqliteTarget::File(path)), _) => {
                with_query(format!("sqlite://{}", path.to_string_lossy()), &query)
            }
            (None, backend) => {
                let scheme = if backend == Backend::MySql {
                    "mysql"
                } else {
                    "postgres"
                };
                let first = self.hosts.first().map(|host| Host {
                    name: host.name.clone(),
                    port: self.port(),
                });
                let hosts: Vec<Host> = first.into_iter().collect();
                self.render(scheme, self.encoded_password(), &hosts, &query)
            }
        }
    }

    /// The password as the sqlx URL holds it (percent-encoded), for scrubbing
    /// it from driver messages as well as for building that URL.
    pub(crate) fn encoded_password(&self) -> Option<String> {
        self.password
            .as_deref()
            .map(|p| utf8_percent_encode(p, COMPONENT).to_string())
    }

    /// The query with SQLAlchemy-only names renamed or dropped (see the module docs).
    fn sqlx_query(&self) -> Vec<(String, String)> {
        let (known, renames) = match self.backend {
            Backend::Sqlite => return self.query.clone(),
            Backend::Postgres => (POSTGRES_PARAMS, &[][..]),
            Backend::MySql => (MYSQL_PARAMS, MYSQL_RENAMES),
        };
        let mut dropped = Vec::new();
        let mut kept = Vec::new();
        for (key, value) in &self.query {
            let name = renames
                .iter()
                .find(|(from, _)| from == key)
                .map_or(key.as_str(), |(_, to)| to);
            if known.contains(&name) || name.starts_with("options[") {
                kept.push((name.to_owned(), value.clone()));
            } else {
                dropped.push(key.as_str());
            }
        }
        if !dropped.is_empty() {
            tracing::warn!(
                url = %self,
                ignored = %dropped.join(", "),
                "query parameters not understood by the {} driver are ignored",
                self.backend
            );
        }
        kept
    }
}

fn with_query(mut url: String, query: &[(String, String)]) -> String {
    if !query.is_empty() {
        url.push('?');
        url.push_str(&super::encode_query(
            query.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        ));
    }
    url
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use sqlx::ConnectOptions;
    use sqlx::mysql::MySqlConnectOptions;
    use sqlx::postgres::PgConnectOptions;

    use crate::url::{DbUrl, UrlParts};

    const NASTY: [&str; 4] = [
        "p@ss:w/rd#%",
        "Pw-s3cr3t@sqlreg:/#%",
        "a b+c&d=e?f[g]",
        "ünï©ødé",
    ];

    /// The password sqlx will send, read back through its own URL builder.
    fn sqlx_password(options: &impl ConnectOptions) -> String {
        let url = options.to_url_lossy();
        percent_encoding::percent_decode_str(url.password().expect("password"))
            .decode_utf8()
            .expect("utf-8")
            .into_owned()
    }

    #[test]
    fn postgres_parts_reach_sqlx_intact() {
        for password in NASTY {
            let parts = UrlParts::new("postgresql+psycopg2")
                .credentials("us@r:x", password)
                .host("db.example")
                .file("my db/x")
                .query("sslmode", "disable")
                .query("application_name", "svc one");
            let url = DbUrl::from_parts(&parts).unwrap();
            let options = PgConnectOptions::from_str(&url.to_sqlx_url()).unwrap();
            assert_eq!(options.get_username(), "us@r:x");
            assert_eq!(options.get_host(), "db.example");
            assert_eq!(options.get_port(), 5432);
            assert_eq!(options.get_database(), Some("my db/x"));
            assert_eq!(options.get_application_name(), Some("svc one"));
            assert_eq!(sqlx_password(&options), password);
        }
    }

    #[test]
    fn mysql_string_reaches_sqlx_intact_with_renamed_params() {
        let text = "mysql+pymysql://root:p%40ss%3Aw%2Frd%23%25@10.0.0.5:3307/app\
                    ?charset=utf8mb4&ssl_mode=REQUIRED&binary_prefix=true";
        let url: DbUrl = text.parse().unwrap();
        let sqlx_url = url.to_sqlx_url();
        assert!(!sqlx_url.contains("binary_prefix"), "{sqlx_url}");
        let options = MySqlConnectOptions::from_str(&sqlx_url).unwrap();
        assert_eq!(options.get_username(), "root");
        assert_eq!(options.get_host(), "10.0.0.5");
        assert_eq!(options.get_port(), 3307);
        assert_eq!(options.get_database(), Some("app"));
        assert_eq!(options.get_charset(), "utf8mb4");
        assert!(matches!(
            options.get_ssl_mode(),
            sqlx::mysql::MySqlSslMode::Required
        ));
        assert_eq!(sqlx_password(&options), "p@ss:w/rd#%");
    }

    #[test]
    fn default_host_and_port_are_explicit_for_sqlx() {
        let url: DbUrl = "mariadb://app@/shop".parse().unwrap();
        let options = MySqlConnectOptions::from_str(&url.to_sqlx_url()).unwrap();
        assert_eq!(options.get_host(), "localhost");
        assert_eq!(options.get_port(), 3306);
        assert_eq!(options.get_database(), Some("shop"));
    }

    #[test]
    fn ipv6_host_is_bracketed_for_sqlx() {
        let url: DbUrl = "postgresql://u:pw@[::1]:6543/db".parse().unwrap();
        let sqlx_url = url.to_sqlx_url();
        assert!(
            sqlx_url.starts_with("postgres://u:pw@[::1]:6543/db"),
            "{sqlx_url}"
        );
        let options = PgConnectOptions::from_str(&sqlx_url).unwrap();
        assert_eq!(options.get_port(), 6543);
        assert!(options.get_host().contains("::1"), "{}", options.get_host());
    }

    #[test]
    fn a_host_that_is_a_directory_is_a_unix_socket_for_sqlx() {
        let parts = UrlParts::new("postgresql")
            .credentials("app", "pw")
            .host("/var/run/postgresql")
            .port(5433)
            .file("app");
        let from_parts = DbUrl::from_parts(&parts).unwrap();
        assert_eq!(from_parts.host(), Some("/var/run/postgresql"));
        assert_eq!(
            from_parts.redacted(),
            "postgresql://app:***@%2Fvar%2Frun%2Fpostgresql:5433/app"
        );
        let options = PgConnectOptions::from_str(&from_parts.to_sqlx_url()).unwrap();
        assert_eq!(
            options.get_socket().map(|dir| dir.as_path()),
            Some(std::path::Path::new("/var/run/postgresql"))
        );
        assert_eq!(options.get_port(), 5433);
        assert_eq!(options.get_database(), Some("app"));
        // libpq's and SQLAlchemy's string forms say the same.
        for text in [
            "postgresql://app:pw@%2Fvar%2Frun%2Fpostgresql:5433/app",
            "postgresql://app:pw@:5433/app?host=/var/run/postgresql",
        ] {
            let parsed: DbUrl = text.parse().unwrap();
            assert_eq!(parsed.to_sqlx_url(), from_parts.to_sqlx_url(), "{text}");
            assert!(parsed.query().is_empty(), "{text}");
        }
    }

    #[test]
    fn a_mysql_host_that_is_a_directory_says_where_the_socket_goes() {
        let parts = UrlParts::new("mariadb").host("/run/mysqld").file("app");
        let err = DbUrl::from_parts(&parts).unwrap_err().to_string();
        assert!(err.contains("unix_socket"), "{err}");
    }

    #[test]
    fn unknown_postgres_params_are_dropped_not_fatal() {
        let url: DbUrl = "postgresql+asyncpg://u@h/db?connect_timeout=5&sslmode=require"
            .parse()
            .unwrap();
        let sqlx_url = url.to_sqlx_url();
        assert_eq!(sqlx_url, "postgres://u@h:5432/db?sslmode=require");
        assert!(PgConnectOptions::from_str(&sqlx_url).is_ok());
    }

    #[test]
    fn a_multi_host_url_reaches_sqlx_one_host_at_a_time() {
        let url: DbUrl = "postgresql://app:pw@h1:5433,[::1],%2Frun%2Fpg/app\
                          ?target_session_attrs=read-write&load_balance_hosts=random&sslmode=disable"
            .parse()
            .unwrap();
        // The host choice is sqlreg's: sqlx never sees it, so nothing is
        // left for `sqlx_query` to warn about.
        assert_eq!(url.query(), [("sslmode".to_owned(), "disable".to_owned())]);
        assert_eq!(
            url.to_sqlx_url(),
            "postgres://app:pw@h1:5433/app?sslmode=disable",
            "the first host only"
        );
        let each: Vec<String> = url.hosts().iter().map(DbUrl::to_sqlx_url).collect();
        assert_eq!(
            each,
            [
                "postgres://app:pw@h1:5433/app?sslmode=disable",
                "postgres://app:pw@[::1]:5432/app?sslmode=disable",
                "postgres://app:pw@%2Frun%2Fpg:5432/app?sslmode=disable",
            ]
        );
        let socket = PgConnectOptions::from_str(&each[2]).unwrap();
        assert_eq!(
            socket.get_socket().map(|dir| dir.as_path()),
            Some(std::path::Path::new("/run/pg"))
        );

        let maria: DbUrl = "mariadb://app:pw@h1:3306,h2:3307/shop?target_session_attrs=primary"
            .parse()
            .unwrap();
        let second = MySqlConnectOptions::from_str(&maria.hosts()[1].to_sqlx_url()).unwrap();
        assert_eq!((second.get_host(), second.get_port()), ("h2", 3307));
        assert_eq!(sqlx_password(&second), "pw");
    }

    #[test]
    fn sqlite_targets_in_sqlx_form() {
        let memory: DbUrl = "sqlite://".parse().unwrap();
        assert_eq!(memory.to_sqlx_url(), "sqlite::memory:");
        let file: DbUrl = "sqlite:////tmp/x.db?mode=ro".parse().unwrap();
        assert_eq!(file.to_sqlx_url(), "sqlite:///tmp/x.db?mode=ro");
    }
}
