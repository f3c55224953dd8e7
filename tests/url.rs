//! Database URLs: every SQLAlchemy form, core-lib's parts, and secrets that
//! never leak.

use std::path::PathBuf;

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use sqlreg::{Backend, DbUrl, Error, SqliteTarget, UrlConfig, UrlParts};

const NASTY: [&str; 4] = [
    "p@ss:w/rd#%",
    "Pw-s3cr3t@sqlreg:/#%",
    "sp ace+plus&amp=eq?q",
    "ünï©ødé",
];

fn url(text: &str) -> DbUrl {
    text.parse().unwrap_or_else(|err| panic!("{text}: {err}"))
}

fn url_error(result: sqlreg::Result<DbUrl>) -> (String, String) {
    match result {
        Err(Error::Url { url, message }) => (url, message),
        other => panic!("expected a URL error, got {other:?}"),
    }
}

fn sqlite_file(path: &str) -> Option<SqliteTarget> {
    Some(SqliteTarget::File(PathBuf::from(path)))
}

#[test]
fn dialects_map_to_backends() {
    for dialect in ["sqlite", "sqlite+pysqlite", "sqlite+aiosqlite"] {
        assert_eq!(
            Backend::from_dialect(dialect),
            Some(Backend::Sqlite),
            "{dialect}"
        );
    }
    for dialect in [
        "postgresql",
        "postgres",
        "postgresql+psycopg2",
        "postgresql+psycopg",
        "postgresql+asyncpg",
        "postgresql+pg8000",
    ] {
        assert_eq!(
            Backend::from_dialect(dialect),
            Some(Backend::Postgres),
            "{dialect}"
        );
    }
    for dialect in [
        "mysql",
        "mysql+pymysql",
        "mysql+mysqldb",
        "mysql+mysqlconnector",
        "mysql+aiomysql",
        "mysql+asyncmy",
        "mariadb",
        "mariadb+pymysql",
        "mariadb+mariadbconnector",
    ] {
        assert_eq!(
            Backend::from_dialect(dialect),
            Some(Backend::MySql),
            "{dialect}"
        );
    }
    for dialect in ["oracle", "mssql+pyodbc", "", "+psycopg2"] {
        assert_eq!(Backend::from_dialect(dialect), None, "{dialect}");
    }
    assert_eq!(
        [Backend::Sqlite, Backend::Postgres, Backend::MySql].map(|b| b.to_string()),
        ["sqlite", "postgresql", "mysql"]
    );
}

#[test]
fn unsupported_dialect_lists_the_supported_ones() {
    for text in ["oracle://scott:tiger@h/orcl", "mssql+pyodbc://u:p@dsn"] {
        let (shown, message) = url_error(text.parse());
        assert!(
            message.contains("supported: sqlite, postgresql (postgres), mysql, mariadb"),
            "{message}"
        );
        assert!(!shown.contains("tiger"), "{shown}");
    }
    let parts = UrlParts::new("oracle")
        .credentials("scott", "tiger")
        .host("h");
    let (shown, message) = url_error(DbUrl::from_parts(&parts));
    assert!(
        message.contains("unsupported dialect `oracle`"),
        "{message}"
    );
    assert!(!shown.contains("tiger"), "{shown}");
}

#[test]
fn sqlite_memory_forms() {
    for text in [
        "sqlite://",
        "sqlite:///:memory:",
        "sqlite:///",
        "sqlite+pysqlite://",
    ] {
        let u = url(text);
        assert_eq!(u.backend(), Backend::Sqlite, "{text}");
        assert_eq!(u.sqlite_target(), Some(&SqliteTarget::Memory), "{text}");
        assert_eq!(
            (u.host(), u.port(), u.database()),
            (None, None, None),
            "{text}"
        );
    }
}

#[test]
fn sqlite_file_forms() {
    let relative = url("sqlite:///rel.db");
    assert_eq!(relative.sqlite_target().cloned(), sqlite_file("rel.db"));
    assert_eq!(relative.database(), Some("rel.db"));
    assert_eq!(relative.to_string(), "sqlite:///rel.db");

    let absolute = url("sqlite:////abs/x.db");
    assert_eq!(absolute.sqlite_target().cloned(), sqlite_file("/abs/x.db"));
    assert_eq!(absolute.to_string(), "sqlite:////abs/x.db");

    let read_only = url("sqlite+aiosqlite:///data/file.db?mode=ro");
    assert_eq!(
        read_only.sqlite_target().cloned(),
        sqlite_file("data/file.db")
    );
    assert_eq!(read_only.query(), [("mode".to_owned(), "ro".to_owned())]);
    assert_eq!(read_only.dialect(), "sqlite+aiosqlite");
}

#[test]
fn sqlite_with_a_host_is_rejected_like_sqlalchemy() {
    let (_, message) = url_error("sqlite://somehost/x.db".parse());
    assert!(message.contains("sqlite:///relative/file.db"), "{message}");
}

#[test]
fn postgres_forms() {
    let u = url("postgresql://user:p%40ss@host:5432/db?sslmode=disable");
    assert_eq!(u.backend(), Backend::Postgres);
    assert_eq!(u.dialect(), "postgresql");
    assert_eq!((u.username(), u.password()), (Some("user"), Some("p@ss")));
    assert_eq!(
        (u.host(), u.port(), u.database()),
        (Some("host"), Some(5432), Some("db"))
    );
    assert_eq!(u.query(), [("sslmode".to_owned(), "disable".to_owned())]);
    assert_eq!(u.sqlite_target(), None);

    let driver = url("postgresql+psycopg2://scott@pg.example/test");
    assert_eq!(driver.dialect(), "postgresql+psycopg2");
    assert_eq!(driver.port(), Some(5432), "default port");
    assert_eq!(driver.password(), None);

    let alias = url("postgres://u@h:6000/d");
    assert_eq!(
        (alias.backend(), alias.port()),
        (Backend::Postgres, Some(6000))
    );

    let no_host = url("postgresql:///only_db");
    assert_eq!(
        (no_host.host(), no_host.database()),
        (Some("localhost"), Some("only_db"))
    );
}

#[test]
fn mysql_and_mariadb_forms() {
    let u = url("mysql+pymysql://root:pw@db:3307/shop?charset=utf8mb4&ssl_mode=REQUIRED");
    assert_eq!(
        (u.backend(), u.dialect()),
        (Backend::MySql, "mysql+pymysql")
    );
    assert_eq!(
        (u.host(), u.port(), u.database()),
        (Some("db"), Some(3307), Some("shop"))
    );
    assert_eq!(
        u.query(),
        [
            ("charset".to_owned(), "utf8mb4".to_owned()),
            ("ssl_mode".to_owned(), "REQUIRED".to_owned())
        ],
        "order kept"
    );
    let maria = url("mariadb://app@maria/app");
    assert_eq!(
        (maria.backend(), maria.port()),
        (Backend::MySql, Some(3306))
    );
}

#[test]
fn ipv6_hosts() {
    let u = url("postgresql://u@[::1]:5432/db");
    assert_eq!((u.host(), u.port()), (Some("::1"), Some(5432)));
    assert_eq!(u.to_string(), "postgresql://u@[::1]:5432/db");

    let parts = UrlParts::new("mysql").host("fe80::1").file("x");
    let from_parts = DbUrl::from_parts(&parts).unwrap();
    assert_eq!(from_parts.host(), Some("fe80::1"));
    assert_eq!(from_parts.to_string(), "mysql://[fe80::1]/x");
    assert_eq!(url(&from_parts.to_string()), from_parts);
}

#[test]
fn nasty_passwords_round_trip_from_parts_and_strings() {
    for password in NASTY {
        let parts = UrlParts::new("postgresql+psycopg2")
            .credentials("app user", password)
            .host("h")
            .file("db");
        let built = DbUrl::from_parts(&parts).unwrap();
        let encoded = utf8_percent_encode(password, NON_ALPHANUMERIC).to_string();
        let parsed = url(&format!("postgresql+psycopg2://app%20user:{encoded}@h/db"));
        for u in [&built, &parsed] {
            assert_eq!(u.password(), Some(password));
            assert_eq!(u.username(), Some("app user"));
            for shown in [u.redacted(), u.to_string(), format!("{u:?}")] {
                assert!(!shown.contains(password), "{shown}");
                assert!(!shown.contains(&encoded), "{shown}");
                assert!(shown.contains(":***@"), "{shown}");
            }
        }
        assert_eq!(built, parsed);
    }
}

#[test]
fn unencoded_at_sign_in_password_still_parses() {
    let u = url("postgresql://scott:ti@ger@host/db");
    assert_eq!(
        (u.username(), u.password()),
        (Some("scott"), Some("ti@ger"))
    );
    assert_eq!((u.host(), u.database()), (Some("host"), Some("db")));
}

#[test]
fn password_without_username_is_an_error() {
    let parts = UrlParts {
        password: Some("secret".to_owned()),
        host: Some("h".to_owned()),
        ..UrlParts::new("postgresql")
    };
    let (shown, message) = url_error(DbUrl::from_parts(&parts));
    assert_eq!(message, "`url.password` is set but `url.username` is empty");
    assert!(!shown.contains("secret"), "{shown}");

    let (shown, message) = url_error("postgresql://:secret@h/db".parse());
    assert!(message.contains("password"), "{message}");
    assert!(!shown.contains("secret"), "{shown}");
}

#[test]
fn errors_on_unparseable_strings_are_redacted() {
    let (shown, message) = url_error("postgresql://u:secret@host:notaport/db".parse());
    assert!(message.contains("port `notaport`"), "{message}");
    assert_eq!(shown, "postgresql://u:***@host:notaport/db");
    let (_, message) = url_error("just-a-path.db".parse());
    assert!(message.contains("dialect://"), "{message}");
}

#[test]
fn sqlite_parts_follow_core_lib_build_url() {
    let target = |parts: UrlParts| DbUrl::from_parts(&parts).unwrap().sqlite_target().cloned();
    assert_eq!(target(UrlParts::new("sqlite")), Some(SqliteTarget::Memory));
    assert_eq!(
        target(UrlParts::new("sqlite").file(":memory:")),
        Some(SqliteTarget::Memory)
    );
    assert_eq!(
        target(UrlParts::new("sqlite").file("app.db")),
        sqlite_file("app.db")
    );
    let joined = UrlParts {
        path: Some("/var/data".to_owned()),
        ..UrlParts::new("sqlite").file("app.db")
    };
    assert_eq!(target(joined), sqlite_file("/var/data/app.db"));
    let path_only = UrlParts {
        path: Some("data/only.db".to_owned()),
        ..UrlParts::new("sqlite")
    };
    assert_eq!(target(path_only), sqlite_file("data/only.db"));
}

#[test]
fn server_parts_take_the_database_from_file_or_path() {
    let from_file = DbUrl::from_parts(&UrlParts::new("mysql").file("shop")).unwrap();
    assert_eq!(
        (from_file.database(), from_file.host()),
        (Some("shop"), Some("localhost"))
    );
    let from_path = UrlParts {
        path: Some("/orders".to_owned()),
        ..UrlParts::new("postgresql")
    };
    assert_eq!(
        DbUrl::from_parts(&from_path).unwrap().database(),
        Some("orders")
    );
    let both = UrlParts {
        path: Some("/ignored".to_owned()),
        ..UrlParts::new("postgresql").file("wins")
    };
    assert_eq!(DbUrl::from_parts(&both).unwrap().database(), Some("wins"));
}

#[test]
fn with_database_switches_only_the_database() {
    let u = url("postgresql://u:pw@h:5433/app?sslmode=require");
    let maintenance = u.with_database(Some("postgres"));
    assert_eq!(maintenance.database(), Some("postgres"));
    assert_eq!(
        (maintenance.password(), maintenance.port()),
        (Some("pw"), Some(5433))
    );
    assert_eq!(maintenance.query(), u.query());
    assert_eq!(
        u.with_database(None).to_string(),
        "postgresql://u:***@h:5433?sslmode=require"
    );
    assert_eq!(
        url("sqlite:///a.db").with_database(None).sqlite_target(),
        Some(&SqliteTarget::Memory)
    );
}

#[test]
fn url_config_reads_a_string_or_parts() {
    let text: UrlConfig = serde_json::from_value(serde_json::json!("sqlite:///x.db")).unwrap();
    assert_eq!(text, UrlConfig::from("sqlite:///x.db"));

    let parts: UrlConfig = serde_json::from_value(serde_json::json!({
        "protocol": "postgresql",
        "port": "5433",
        "query": {"connect_timeout": 10, "sslmode": "require", "keepalives": true}
    }))
    .unwrap();
    let u = parts.to_db_url().unwrap();
    assert_eq!(u.port(), Some(5433));
    assert!(
        u.query()
            .contains(&("connect_timeout".to_owned(), "10".to_owned()))
    );
    assert!(
        u.query()
            .contains(&("keepalives".to_owned(), "true".to_owned()))
    );

    let err = serde_json::from_value::<UrlConfig>(
        serde_json::json!({"protocol": "mysql", "port": 70000}),
    )
    .unwrap_err();
    assert!(err.to_string().contains("port"), "{err}");
}
