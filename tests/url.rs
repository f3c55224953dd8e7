//! Database URLs: every SQLAlchemy form, core-lib's parts, and secrets that
//! never leak.

use std::path::PathBuf;

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use sqlreg::{Backend, DbUrl, Error, SqliteTarget, TargetSessionAttrs, UrlConfig, UrlParts};

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

/// Each listed host as (host, port), through the single-host URLs.
fn host_ports(u: &DbUrl) -> Vec<(String, u16)> {
    u.hosts()
        .iter()
        .map(|h| (h.host().unwrap().to_owned(), h.port().unwrap()))
        .collect()
}

fn pairs(list: &[(&str, u16)]) -> Vec<(String, u16)> {
    list.iter().map(|(h, p)| ((*h).to_owned(), *p)).collect()
}

#[test]
fn libpq_comma_form_lists_hosts_with_their_ports() {
    let text = "postgresql://app@h1:5432,h2:5433/app?target_session_attrs=read-write";
    let u = url(text);
    assert!(u.is_multi_host());
    assert_eq!((u.host(), u.port()), (Some("h1"), Some(5432)), "the first");
    assert_eq!(host_ports(&u), pairs(&[("h1", 5432), ("h2", 5433)]));
    assert_eq!(
        u.target_session_attrs(),
        Some(TargetSessionAttrs::ReadWrite)
    );
    assert!(!u.load_balance_hosts());
    assert!(u.query().is_empty(), "{:?}", u.query());
    assert_eq!(u.to_string(), text);

    let optional_ports = url("postgresql://app@h1,h2:5433/app");
    assert_eq!(
        host_ports(&optional_ports),
        pairs(&[("h1", 5432), ("h2", 5433)])
    );
    assert_eq!(
        optional_ports.to_string(),
        "postgresql://app@h1,h2:5433/app"
    );
    assert_eq!(optional_ports.target_session_attrs(), None);

    let ipv6 = url("postgresql://app@[::1]:5432,[::1]:5433/app");
    assert_eq!(host_ports(&ipv6), pairs(&[("::1", 5432), ("::1", 5433)]));
    assert_eq!(
        ipv6.to_string(),
        "postgresql://app@[::1]:5432,[::1]:5433/app"
    );

    let single = url("postgresql://app@h1/app");
    assert!(!single.is_multi_host());
    assert_eq!(single.hosts(), std::slice::from_ref(&single));
}

#[test]
fn sqlalchemy_repeated_host_parameters_list_hosts() {
    let u = url("postgresql+psycopg2://app:pw@/app?host=h1:5432&host=h2:5433&sslmode=disable");
    assert_eq!(host_ports(&u), pairs(&[("h1", 5432), ("h2", 5433)]));
    assert_eq!(
        u.query(),
        [("sslmode".to_owned(), "disable".to_owned())],
        "the host parameters leave the query"
    );
    assert_eq!(
        u.redacted(),
        "postgresql+psycopg2://app:***@h1:5432,h2:5433/app?sslmode=disable"
    );

    // Socket directories among the hosts; the authority's port is the
    // default of the hosts that name none.
    let mixed = url("postgresql://app@:5433/app?host=/var/run/postgresql&host=h2:5434&host=[::1]");
    assert_eq!(
        host_ports(&mixed),
        pairs(&[("/var/run/postgresql", 5433), ("h2", 5434), ("::1", 5433)])
    );
    assert_eq!(
        mixed.to_string(),
        "postgresql://app@%2Fvar%2Frun%2Fpostgresql:5433,h2:5434,[::1]:5433/app"
    );
    assert_eq!(mixed.host(), Some("/var/run/postgresql"));
}

#[test]
fn libpq_host_and_port_keywords_in_the_query_name_the_hosts() {
    // One port per host, in order; the keywords leave the query, so sqlx
    // never connects elsewhere than the hosts sqlreg reports.
    let u = url("postgresql://app@/app?host=h1,h2&port=5432,5433&sslmode=disable");
    assert_eq!(host_ports(&u), pairs(&[("h1", 5432), ("h2", 5433)]));
    assert_eq!(u.query(), [("sslmode".to_owned(), "disable".to_owned())]);
    assert_eq!(
        u.to_string(),
        "postgresql://app@h1:5432,h2:5433/app?sslmode=disable"
    );

    // One port for every host; an empty entry is the default port.
    let one = url("postgresql:///app?host=h1,h2&port=6000");
    assert_eq!(host_ports(&one), pairs(&[("h1", 6000), ("h2", 6000)]));
    let gap = url("postgresql:///app?host=h1,h2&port=,6001");
    assert_eq!(host_ports(&gap), pairs(&[("h1", 5432), ("h2", 6001)]));
    let no_host = url("postgresql://app@/app?port=5433");
    assert_eq!(host_ports(&no_host), pairs(&[("localhost", 5433)]));

    // As in libpq, the keywords win over what the authority says.
    let ports = url("postgresql://app@h1:5432,h2:5433/app?port=7000");
    assert_eq!(host_ports(&ports), pairs(&[("h1", 7000), ("h2", 7000)]));
    let host = url("postgresql://app@h1:5433/app?host=h2");
    assert_eq!(host_ports(&host), pairs(&[("h2", 5433)]));
    assert!(host.query().is_empty(), "{:?}", host.query());

    // core-lib parts carry them in `query`.
    let parts = UrlParts::new("postgresql")
        .host("h1,h2")
        .file("app")
        .query("port", "5432,5433");
    assert_eq!(
        host_ports(&DbUrl::from_parts(&parts).unwrap()),
        pairs(&[("h1", 5432), ("h2", 5433)])
    );

    let (shown, message) = url_error("postgresql://app:pw@/app?host=h1,h2&port=1,2,3".parse());
    assert!(
        message.contains("`port=1,2,3` lists 3 ports for 2 hosts"),
        "{message}"
    );
    assert!(!shown.contains("pw"), "{shown}");
    let (_, message) = url_error("postgresql://app@h1/app?port=fast".parse());
    assert!(message.contains("`fast` is not a number"), "{message}");
}

#[test]
fn mysql_and_mariadb_list_hosts_too() {
    let u = url("mysql://app@h1:3306,h2:3307/app");
    assert_eq!(u.backend(), Backend::MySql);
    assert_eq!(host_ports(&u), pairs(&[("h1", 3306), ("h2", 3307)]));
    assert_eq!(u.to_string(), "mysql://app@h1:3306,h2:3307/app");

    let maria =
        url("mariadb://app@h1,h2/app?load_balance_hosts=random&target_session_attrs=standby");
    assert_eq!(host_ports(&maria), pairs(&[("h1", 3306), ("h2", 3306)]));
    assert!(maria.load_balance_hosts());
    assert_eq!(
        maria.target_session_attrs(),
        Some(TargetSessionAttrs::Standby)
    );
    assert!(maria.query().is_empty(), "{:?}", maria.query());

    let (_, message) = url_error("mysql://app@h1,%2Frun%2Fmysqld/app".parse());
    assert!(message.contains("unix_socket"), "{message}");
}

#[test]
fn all_target_session_attrs_and_load_balance_values() {
    let all = [
        ("any", TargetSessionAttrs::Any),
        ("read-write", TargetSessionAttrs::ReadWrite),
        ("read-only", TargetSessionAttrs::ReadOnly),
        ("primary", TargetSessionAttrs::Primary),
        ("standby", TargetSessionAttrs::Standby),
        ("prefer-standby", TargetSessionAttrs::PreferStandby),
    ];
    for (spelling, attrs) in all {
        let u = url(&format!(
            "postgresql://app@h1,h2/app?target_session_attrs={spelling}"
        ));
        assert_eq!(u.target_session_attrs(), Some(attrs), "{spelling}");
        assert_eq!(attrs.to_string(), spelling);
    }
    assert!(!url("postgresql://a@h/d?load_balance_hosts=disable").load_balance_hosts());
    assert!(url("postgresql://a@h/d?load_balance_hosts=random").load_balance_hosts());
    assert!(!url("postgresql://a@h/d").load_balance_hosts());
}

#[test]
fn host_list_errors_say_what_is_wrong() {
    let (shown, message) = url_error("postgresql://app:secret@h1:5432,h2:54x3/app".parse());
    assert_eq!(
        message,
        "host 2 of 2 (`h2:54x3`): the port `54x3` is not a number from 0 to 65535"
    );
    assert!(!shown.contains("secret"), "{shown}");

    for list in ["h1,,h2", "h1,", ",h2"] {
        let (_, message) = url_error(format!("postgresql://app@{list}/app").parse());
        assert!(message.contains("is empty"), "{list}: {message}");
    }
    let (_, message) = url_error("postgresql://app@/app?host=h1&host=".parse());
    assert!(message.contains("host 2 of 2"), "{message}");

    let (_, message) = url_error("postgresql://app@h1,h2/app?target_session_attrs=master".parse());
    assert_eq!(
        message,
        "unknown target_session_attrs `master`; valid values: \
         any, read-write, read-only, primary, standby, prefer-standby"
    );
    let (_, message) = url_error("mysql://app@h1/app?load_balance_hosts=on".parse());
    assert!(
        message.contains("valid values: disable, random"),
        "{message}"
    );

    let (_, message) = url_error("sqlite://h1,h2/x.db".parse());
    assert!(
        message.contains("a SQLite URL has no user, host or port"),
        "{message}"
    );
}

#[test]
fn multi_host_urls_round_trip_through_display() {
    for text in [
        "postgresql://app@h1:5432,h2:5433/app?target_session_attrs=read-write",
        "postgresql+psycopg2://app@h1,[::1]:5433,%2Fvar%2Frun%2Fpostgresql/app?sslmode=require",
        "postgresql://app@/app?host=/tmp&host=h2:5434&load_balance_hosts=random",
        "mariadb://app@h1:3306,h2:3307/app?charset=utf8mb4&target_session_attrs=prefer-standby",
        "postgresql://h1,h2",
    ] {
        let u = url(text);
        assert_eq!(url(&u.to_string()), u, "{text} shown as {u}");
    }
    let first_then_second = url("postgresql://app@h1,h2/app");
    assert_ne!(
        first_then_second,
        url("postgresql://app@h2,h1/app"),
        "order matters"
    );
}

#[test]
fn hosts_are_single_host_urls_without_the_choice_parameters() {
    let u = url("postgresql://app:pw@h1:5432,h2:5433/app\
         ?target_session_attrs=primary&sslmode=require&load_balance_hosts=random");
    let hosts = u.hosts();
    assert_eq!(hosts.len(), 2);
    for (host, (name, port)) in hosts.iter().zip([("h1", 5432), ("h2", 5433)]) {
        assert!(!host.is_multi_host());
        assert_eq!((host.host(), host.port()), (Some(name), Some(port)));
        assert_eq!(host.target_session_attrs(), None);
        assert!(!host.load_balance_hosts());
        assert_eq!(
            (host.username(), host.password()),
            (Some("app"), Some("pw"))
        );
        assert_eq!(host.database(), Some("app"));
        assert_eq!(host.query(), u.query());
        assert_eq!(
            host.to_string(),
            format!("postgresql://app:***@{name}:{port}/app?sslmode=require")
        );
    }
    assert_eq!(
        u.to_string(),
        "postgresql://app:***@h1:5432,h2:5433/app\
         ?sslmode=require&target_session_attrs=primary&load_balance_hosts=random"
    );

    let single = url("postgresql://app@h1/app?target_session_attrs=read-only");
    assert_eq!(single.hosts(), [url("postgresql://app@h1/app")]);
    let sqlite = url("sqlite:///a.db");
    assert_eq!(sqlite.hosts(), std::slice::from_ref(&sqlite));
    assert!(!sqlite.is_multi_host());
}

#[test]
fn multi_host_display_hides_the_password_and_with_database_keeps_every_host() {
    for password in NASTY {
        let encoded = utf8_percent_encode(password, NON_ALPHANUMERIC).to_string();
        let u = url(&format!(
            "postgresql://app:{encoded}@h1:5432,h2:5433/app?target_session_attrs=read-write"
        ));
        assert_eq!(u.password(), Some(password));
        for shown in [u.redacted(), u.to_string(), format!("{u:?}")] {
            assert!(!shown.contains(password), "{shown}");
            assert!(!shown.contains(&encoded), "{shown}");
        }
        assert_eq!(
            u.to_string(),
            "postgresql://app:***@h1:5432,h2:5433/app?target_session_attrs=read-write"
        );
        let other = u.with_database(Some("postgres"));
        assert_eq!(host_ports(&other), host_ports(&u));
        assert_eq!(other.target_session_attrs(), u.target_session_attrs());
        assert_eq!(
            other.to_string(),
            "postgresql://app:***@h1:5432,h2:5433/postgres?target_session_attrs=read-write"
        );
    }
}

#[test]
fn parts_list_hosts_separated_by_commas() {
    let parts = UrlParts::new("postgresql")
        .credentials("app", "pw")
        .host("h1:5432,h2:5433")
        .file("app")
        .query("target_session_attrs", "read-write");
    let u = DbUrl::from_parts(&parts).unwrap();
    assert_eq!(
        u,
        url("postgresql://app:pw@h1:5432,h2:5433/app?target_session_attrs=read-write")
    );

    // `port` is the port of the hosts that name none.
    let default_port = UrlParts::new("postgresql")
        .host("h1, h2:5433, ::1, [::2]:5434, /var/run/postgresql")
        .port(6000);
    assert_eq!(
        host_ports(&DbUrl::from_parts(&default_port).unwrap()),
        pairs(&[
            ("h1", 6000),
            ("h2", 5433),
            ("::1", 6000),
            ("::2", 5434),
            ("/var/run/postgresql", 6000)
        ])
    );

    // A lone host keeps its meaning: a socket directory, a bare IPv6 address.
    for (host, expected) in [
        ("/var/run/postgresql", "/var/run/postgresql"),
        ("fe80::1", "fe80::1"),
        ("[fe80::1]", "fe80::1"),
        ("db.example", "db.example"),
    ] {
        let u = DbUrl::from_parts(&UrlParts::new("postgresql").host(host).port(5433)).unwrap();
        assert!(!u.is_multi_host(), "{host}");
        assert_eq!((u.host(), u.port()), (Some(expected), Some(5433)), "{host}");
    }

    let bad_port = UrlParts::new("mysql")
        .credentials("app", "secret")
        .host("h1,h2:x");
    let (shown, message) = url_error(DbUrl::from_parts(&bad_port));
    assert!(message.starts_with("host 2 of 2 (`h2:x`)"), "{message}");
    assert!(!shown.contains("secret"), "{shown}");
    let (_, message) = url_error(DbUrl::from_parts(
        &UrlParts::new("postgresql").host("h1,,h2"),
    ));
    assert!(message.contains("is empty"), "{message}");
    let (_, message) = url_error(DbUrl::from_parts(
        &UrlParts::new("postgresql").query("target_session_attrs", "writable"),
    ));
    assert!(message.contains("prefer-standby"), "{message}");
}

#[test]
fn url_config_parts_read_a_host_list() {
    let parts: UrlConfig = serde_json::from_value(serde_json::json!({
        "protocol": "mariadb",
        "host": "db1,db2:3307",
        "port": 3308,
        "file": "shop",
        "query": {"target_session_attrs": "read-write", "load_balance_hosts": "random"}
    }))
    .unwrap();
    let u = parts.to_db_url().unwrap();
    assert_eq!(host_ports(&u), pairs(&[("db1", 3308), ("db2", 3307)]));
    assert_eq!(
        u.target_session_attrs(),
        Some(TargetSessionAttrs::ReadWrite)
    );
    assert!(u.load_balance_hosts());
}
