//! Loading config files: core-lib's shapes, interpolation, overrides, and the
//! errors a person sees when a key is wrong.

use std::path::Path;
use std::sync::Once;
use std::time::Duration;

use sqlreg::{
    Config, DbConfig, Error, SessionConfig, SqliteOptions, SqliteTarget, UrlConfig, UrlParts,
};

const ISSUE_YAML: &str = "\
core_lib:
  db:
    log_queries: false
    create_db: true
    session:
      pool_recycle: 3600
      pool_pre_ping: false
    url:
      protocol: sqlite
";

/// Sets the variables the interpolation tests read, once, before any of them
/// resolves `${oc.env:..}`; variables that must be missing are never set.
fn env() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: runs once, before any test that reads these variables, and
        // nothing in this test binary reads the environment through foreign code.
        unsafe {
            std::env::set_var("SQLREG_T_USER", "alice");
            std::env::set_var("SQLREG_T_PASSWORD", "Pw-s3cr3t@sqlreg:/#%");
            std::env::set_var("SQLREG_T_POOL_SIZE", "12");
            std::env::set_var("SQLREG_T_PORT", "6543");
            std::env::set_var("SQLREG_T_TRUE", "true");
            std::env::set_var("SQLREG_T_TIMEOUT", "2.5");
        }
    });
}

/// The `path` and `message` of a config error, or a panic naming what came instead.
fn config_error(result: sqlreg::Result<DbConfig>) -> (String, String) {
    match result {
        Err(Error::Config { path, message }) => (path, message),
        other => panic!("expected a config error, got {other:?}"),
    }
}

fn db(yaml: &str) -> sqlreg::Result<DbConfig> {
    Config::from_yaml_str(yaml)?.at("core_lib.db")
}

/// A `core_lib.db` section whose `session:` block holds `session`.
fn with_session(session: &str) -> String {
    format!("core_lib:\n  db:\n    url: sqlite://\n    session:\n      {session}\n")
}

#[test]
fn issue_yaml_loads_with_core_lib_defaults() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/issue.yaml");
    let db = Config::from_yaml_file(&path)
        .unwrap()
        .at("core_lib.db")
        .unwrap();
    assert_eq!(
        db,
        Config::from_yaml_str(ISSUE_YAML)
            .unwrap()
            .at("core_lib.db")
            .unwrap()
    );

    assert!(!db.log_queries);
    assert!(db.create_db);
    assert_eq!(db.url, UrlConfig::Parts(UrlParts::new("sqlite")));
    assert_eq!(db.session, SessionConfig::default());
    let s = &db.session;
    assert_eq!((s.pool_size, s.max_overflow), (5, 10));
    assert_eq!(s.pool_timeout, Duration::from_secs(30));
    assert_eq!(s.pool_recycle, Some(Duration::from_secs(3600)));
    assert!(!s.pool_pre_ping);
    assert_eq!(s.connect_timeout, Duration::from_secs(10));
    assert_eq!(s.idle_timeout, Some(Duration::from_secs(600)));
    assert_eq!(s.statement_timeout, None);
    assert_eq!(s.slow_query, Some(Duration::from_secs(1)));
    assert_eq!(s.leak_warning, None);
    let lite = &db.sqlite;
    assert_eq!(
        (lite.journal_mode.as_str(), lite.synchronous.as_str()),
        ("wal", "normal")
    );
    assert_eq!(lite.busy_timeout, Duration::from_secs(5));
    assert!(lite.foreign_keys);
    assert_eq!(
        db.url.to_db_url().unwrap().sqlite_target(),
        Some(&SqliteTarget::Memory)
    );
}

#[test]
fn wrapped_target_shape_is_read_from_config() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wrapped.yaml");
    let db = Config::from_yaml_file(path)
        .unwrap()
        .at("core_lib.data.sqlalchemy")
        .unwrap();
    assert!(db.log_queries);
    assert!(!db.create_db);
    assert_eq!(db.session.pool_size, 7);
    assert_eq!(db.session.pool_recycle, None);
    let url = db.url.to_db_url().unwrap();
    assert_eq!(url.dialect(), "postgresql+psycopg2");
    assert_eq!((url.host(), url.port()), (Some("db.internal"), Some(6432)));
    assert_eq!(
        (url.username(), url.database()),
        (Some("app"), Some("orders"))
    );
    assert_eq!(url.password(), Some("Pw-s3cr3t@sqlreg:/#%"));
}

#[test]
fn wrapped_shape_errors_point_inside_config() {
    let yaml =
        "db:\n  _target_: x.Y\n  config:\n    url: sqlite://\n    session:\n      pool_sise: 3\n";
    let (path, message) = config_error(Config::from_yaml_str(yaml).unwrap().at("db"));
    assert_eq!(path, "db.config.session.pool_sise");
    assert!(message.contains("did you mean `pool_size`?"), "{message}");

    let yaml = "db:\n  _target_: x.Y\n  confg:\n    url: sqlite://\n";
    let (path, message) = config_error(Config::from_yaml_str(yaml).unwrap().at("db"));
    assert_eq!(path, "db.confg");
    assert!(message.contains("did you mean `config`?"), "{message}");

    let (path, message) = config_error(
        Config::from_yaml_str("db:\n  _target_: x.Y\n")
            .unwrap()
            .at("db"),
    );
    assert_eq!(path, "db");
    assert!(message.contains("missing key `config`"), "{message}");
}

#[test]
fn env_interpolation_with_and_without_defaults() {
    env();
    let yaml = r#"
core_lib:
  db:
    url:
      protocol: postgresql
      username: ${oc.env:SQLREG_T_USER}
      password: ${oc.env:SQLREG_T_PASSWORD}
      host: ${oc.env:SQLREG_T_UNSET_HOST,db host.local}
      file: ${oc.env:SQLREG_T_UNSET_DB,'my, db'}
      query:
        application_name: svc-${oc.env:SQLREG_T_USER}-${oc.env:SQLREG_T_UNSET_X,}
"#;
    let db = db(yaml).unwrap();
    let url = db.url.to_db_url().unwrap();
    assert_eq!(url.username(), Some("alice"));
    assert_eq!(url.password(), Some("Pw-s3cr3t@sqlreg:/#%"));
    assert_eq!(url.host(), Some("db host.local"));
    assert_eq!(url.database(), Some("my, db"));
    assert_eq!(
        url.query(),
        [("application_name".to_owned(), "svc-alice-".to_owned())]
    );
}

#[test]
fn env_null_default_is_null() {
    let yaml = "core_lib:\n  db:\n    url:\n      protocol: mysql\n      username: u\n      \
                password: ${oc.env:SQLREG_T_UNSET_PW,null}\n";
    let url = db(yaml).unwrap().url.to_db_url().unwrap();
    assert_eq!(url.password(), None);
}

#[test]
fn missing_env_var_names_key_and_variable() {
    let yaml = "core_lib:\n  db:\n    url:\n      protocol: postgresql\n      username: u\n      \
                password: ${oc.env:SQLREG_T_UNSET_DB_PASSWORD}\n";
    let (path, message) = config_error(db(yaml));
    assert_eq!(path, "core_lib.db.url.password");
    assert_eq!(
        message,
        "environment variable `SQLREG_T_UNSET_DB_PASSWORD` is not set \
         (use `${oc.env:SQLREG_T_UNSET_DB_PASSWORD,default}` to give a default)"
    );
}

#[test]
fn a_broken_section_does_not_break_another() {
    let yaml =
        "other:\n  key: ${oc.env:SQLREG_T_UNSET_OTHER}\ncore_lib:\n  db:\n    url: sqlite://\n";
    let config = Config::from_yaml_str(yaml).unwrap();
    assert!(config.at("core_lib.db").is_ok());
    assert_eq!(config.value("other.key"), None);
    assert_eq!(
        config.value("core_lib.db.url"),
        Some(&serde_json::json!("sqlite://"))
    );
}

#[test]
fn numeric_and_boolean_strings_from_env_are_typed() {
    env();
    let yaml = "core_lib:\n  db:\n    log_queries: ${oc.env:SQLREG_T_TRUE}\n    session:\n      \
                pool_size: ${oc.env:SQLREG_T_POOL_SIZE}\n      pool_timeout: ${oc.env:SQLREG_T_TIMEOUT}\n    \
                url:\n      protocol: postgresql\n      port: ${oc.env:SQLREG_T_PORT}\n";
    let db = db(yaml).unwrap();
    assert!(db.log_queries);
    assert_eq!(db.session.pool_size, 12);
    assert_eq!(db.session.pool_timeout, Duration::from_millis(2500));
    assert_eq!(db.url.to_db_url().unwrap().port(), Some(6543));
}

#[test]
fn references_copy_scalars_and_mappings() {
    let yaml = r"
shared:
  host: db.internal
  pool: 9
  url:
    protocol: mysql+pymysql
    host: ${shared.host}
    file: app
core_lib:
  db:
    url: ${shared.url}
    session:
      pool_size: ${shared.pool}
      max_overflow: ${.pool_size}
    sqlite:
      journal_mode: \${not.interpolated}
";
    let config = Config::from_yaml_str(yaml).unwrap();
    assert_eq!(
        config.value("core_lib.db.session.pool_size"),
        Some(&serde_json::json!(9))
    );
    assert_eq!(
        config.value("core_lib.db.sqlite.journal_mode"),
        Some(&serde_json::json!("${not.interpolated}"))
    );
    let session = config.value("core_lib.db.session").unwrap();
    assert_eq!(session["max_overflow"], 9);
    let url = config.value("core_lib.db.url").unwrap();
    assert_eq!(url["host"], "db.internal");
    assert_eq!(url["protocol"], "mysql+pymysql");
}

#[test]
fn reference_cycles_and_missing_targets_are_named() {
    let yaml = "a:\n  x: ${b.y}\nb:\n  y: ${a.x}\ncore_lib:\n  db:\n    url: ${a.x}\n";
    let (_, message) = config_error(db(yaml));
    assert!(message.contains("interpolation cycle"), "{message}");
    assert!(message.contains("a.x -> b.y -> a.x"), "{message}");

    let yaml = "shared:\n  url: sqlite://\ncore_lib:\n  db:\n    url: ${shared.ulr}\n";
    let (path, message) = config_error(db(yaml));
    assert_eq!(path, "core_lib.db.url");
    assert!(message.contains("no key `ulr` under `shared`"), "{message}");
    assert!(message.contains("did you mean `url`?"), "{message}");
}

#[test]
fn unknown_resolver_is_named() {
    let (path, message) = config_error(db("core_lib:\n  db:\n    url: ${foo:bar}\n"));
    assert_eq!(path, "core_lib.db.url");
    assert!(message.contains("unknown resolver `foo`"), "{message}");
}

#[test]
fn misspelled_session_key_suggests_the_right_one() {
    let (path, message) = config_error(db(&with_session("pool_recyle: 3600")));
    assert_eq!(path, "core_lib.db.session.pool_recyle");
    assert!(
        message.starts_with("unknown key `pool_recyle`; did you mean `pool_recycle`?"),
        "{message}"
    );
    assert!(message.contains("pool_size, max_overflow"), "{message}");
}

#[test]
fn misspelled_url_key_keeps_its_path() {
    let yaml = "core_lib:\n  db:\n    url:\n      protocol: postgresql\n      hots: x\n";
    let (path, message) = config_error(db(yaml));
    assert_eq!(path, "core_lib.db.url.hots");
    assert!(message.contains("did you mean `host`?"), "{message}");
}

#[test]
fn unknown_key_far_from_any_lists_the_valid_ones() {
    let yaml = "core_lib:\n  db:\n    url: sqlite://\n    shards: []\n";
    let (path, message) = config_error(db(yaml));
    assert_eq!(path, "core_lib.db.shards");
    assert!(!message.contains("did you mean"), "{message}");
    assert!(
        message.contains(
            "valid keys: log_queries, create_db, session, url, replicas, routing, sqlite"
        ),
        "{message}"
    );
}

#[test]
fn wrong_type_names_path_and_expectation() {
    let (path, message) = config_error(db(&with_session("pool_size: abc")));
    assert_eq!(path, "core_lib.db.session.pool_size");
    assert_eq!(
        message,
        "expected a whole number of connections, found string \"abc\""
    );

    let (path, message) = config_error(db(&with_session("pool_timeout: [1]")));
    assert_eq!(path, "core_lib.db.session.pool_timeout");
    assert!(
        message.starts_with("expected a number of seconds"),
        "{message}"
    );
}

#[test]
fn out_of_range_values_name_the_key() {
    let (path, message) = config_error(db(&with_session("pool_size: 0")));
    assert_eq!(path, "core_lib.db.session.pool_size");
    assert!(message.contains("must be at least 1"), "{message}");

    let (path, message) = config_error(db(&with_session("pool_timeout: -1")));
    assert_eq!(path, "core_lib.db.session.pool_timeout");
    assert!(message.contains("must not be negative"), "{message}");

    let (path, message) = config_error(db(&with_session("pool_recycle: -5")));
    assert_eq!(path, "core_lib.db.session.pool_recycle");
    assert!(message.contains("-1 to never recycle"), "{message}");

    let yaml = "core_lib:\n  db:\n    url: sqlite://\n    sqlite:\n      journal_mode: wall\n";
    let (path, message) = config_error(db(yaml));
    assert_eq!(path, "core_lib.db.sqlite.journal_mode");
    assert!(
        message.contains("delete, truncate, persist, memory, wal, off"),
        "{message}"
    );
}

#[test]
fn recycle_minus_one_means_never_and_fractions_are_seconds() {
    let db = db(&with_session(
        "pool_recycle: -1\n      slow_query: 0.25\n      leak_warning: 60",
    ))
    .unwrap();
    assert_eq!(db.session.pool_recycle, None);
    assert_eq!(db.session.slow_query, Some(Duration::from_millis(250)));
    assert_eq!(db.session.leak_warning, Some(Duration::from_secs(60)));
    let db = db_off();
    assert_eq!(db.session.slow_query, None);
    assert_eq!(db.sqlite.journal_mode, "off");
}

/// `off` unquoted is a YAML 1.1 boolean; it still means `off`.
fn db_off() -> DbConfig {
    db(
        "core_lib:\n  db:\n    url: sqlite://\n    session:\n      slow_query: null\n    \
        sqlite:\n      journal_mode: off\n      synchronous: FULL\n",
    )
    .unwrap()
}

#[test]
fn missing_url_is_reported() {
    let (path, message) = config_error(db("core_lib:\n  db:\n    log_queries: true\n"));
    assert_eq!(path, "core_lib.db");
    assert_eq!(message, "missing key `url`");
}

#[test]
fn missing_section_names_the_nearest_key() {
    let config = Config::from_yaml_str(ISSUE_YAML).unwrap();
    let (path, message) = config_error(config.at("core_lib.dbs"));
    assert_eq!(path, "core_lib.dbs");
    assert!(
        message.contains("no key `dbs` under `core_lib` (did you mean `db`?)"),
        "{message}"
    );
    let (_, message) = config_error(config.at("corelib.db"));
    assert!(message.contains("did you mean `core_lib`?"), "{message}");
}

#[test]
fn overrides_apply_before_interpolation() {
    let yaml = "defaults:\n  pool: 3\ncore_lib:\n  db:\n    log_queries: false\n    \
                session:\n      pool_size: ${defaults.pool}\n    url: sqlite://\n";
    let config = Config::from_yaml_str(yaml)
        .unwrap()
        .with_overrides([
            "core_lib.db.log_queries=true",
            "defaults.pool=8",
            "+core_lib.db.session.max_overflow=0",
            "++core_lib.db.url=sqlite:///over.db",
        ])
        .unwrap();
    let db = config.at("core_lib.db").unwrap();
    assert!(db.log_queries);
    assert_eq!((db.session.pool_size, db.session.max_overflow), (8, 0));
    assert_eq!(db.url, UrlConfig::Text("sqlite:///over.db".to_owned()));

    let removed = config.with_overrides(["~core_lib.db.session"]).unwrap();
    assert_eq!(
        removed.at("core_lib.db").unwrap().session,
        SessionConfig::default()
    );
}

#[test]
fn override_of_a_misspelled_key_is_refused() {
    let err = Config::from_yaml_str(ISSUE_YAML)
        .unwrap()
        .with_overrides(["core_lib.db.log_querys=true"])
        .unwrap_err();
    let Error::Config { path, message } = err else {
        panic!("{err:?}")
    };
    assert_eq!(path, "core_lib.db.log_querys");
    assert!(message.contains("did you mean `log_queries`?"), "{message}");
    assert!(message.contains("+core_lib.db.log_querys="), "{message}");

    let err = Config::from_yaml_str(ISSUE_YAML)
        .unwrap()
        .with_overrides(["+core_lib.db.create_db=false"])
        .unwrap_err();
    assert!(err.to_string().contains("already set"), "{err}");
}

#[test]
fn debug_never_shows_the_password() {
    let secret = "Pw-s3cr3t@sqlreg:/#%";
    let parts = DbConfig::new(
        UrlParts::new("postgresql")
            .credentials("app", secret)
            .host("h"),
    );
    let text = DbConfig::new("postgresql://app:Pw-s3cr3t%40sqlreg%3A%2F%23%25@h/db");
    let unparseable = DbConfig::new("postgresql://app:Pw-s3cr3t@h:port/db");
    for config in [parts, text, unparseable] {
        let shown = format!("{config:?}");
        assert!(!shown.contains("Pw-s3cr3t"), "{shown}");
        assert!(shown.contains("***"), "{shown}");
    }
    let yaml = format!(
        "core_lib:\n  db:\n    url:\n      protocol: mysql\n      username: u\n      password: '{secret}'\n"
    );
    let config = Config::from_yaml_str(&yaml).unwrap();
    assert!(!format!("{config:?}").contains("s3cr3t"));
    assert!(!format!("{:?}", config.at("core_lib.db").unwrap()).contains("s3cr3t"));
}

#[test]
fn a_config_built_in_code_needs_no_file() {
    let db = DbConfig::new("sqlite:///app.db")
        .log_queries(true)
        .create_db(false)
        .session(SessionConfig {
            pool_size: 2,
            pool_recycle: None,
            ..SessionConfig::default()
        })
        .sqlite(SqliteOptions {
            journal_mode: "delete".to_owned(),
            ..SqliteOptions::default()
        });
    assert!(db.validate().is_ok());
    assert!(db.log_queries && !db.create_db);
    assert_eq!(db.session.pool_size, 2);
    assert_eq!(
        db.url.to_db_url().unwrap().sqlite_target(),
        Some(&SqliteTarget::File("app.db".into()))
    );

    let zero = db.clone().session(SessionConfig {
        pool_size: 0,
        ..SessionConfig::default()
    });
    let Err(Error::Config { path, message }) = zero.validate() else {
        panic!("pool_size 0 accepted")
    };
    assert_eq!(
        (path.as_str(), message.as_str()),
        ("session.pool_size", "must be at least 1, found 0")
    );

    let bad_url = db.url("oracle://scott@h/orcl");
    assert!(matches!(bad_url.validate(), Err(Error::Url { .. })));
}

#[test]
fn yaml_syntax_and_io_errors_name_the_source() {
    let Err(Error::Config { path, message }) =
        Config::from_yaml_str("core_lib:\n  db: [1\n  x: 2\n")
    else {
        panic!("malformed YAML accepted")
    };
    assert_eq!(path, "<yaml>");
    assert!(message.contains("line 3"), "{message}");

    let missing = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/nope.yaml");
    let Err(Error::Config { path, message }) = Config::from_yaml_file(&missing) else {
        panic!("missing file accepted")
    };
    assert_eq!(path, missing.display().to_string());
    assert!(message.starts_with("cannot read the file"), "{message}");
}

#[test]
fn an_unbuildable_url_is_reported_at_its_key_without_the_password() {
    let yaml = "core_lib:\n  db:\n    url: 'mssql+pyodbc://sa:Secr3t@dsn/db'\n";
    let (path, message) = config_error(db(yaml));
    assert_eq!(path, "core_lib.db.url");
    assert!(
        message.contains("supported: sqlite, postgresql"),
        "{message}"
    );
    assert!(!message.contains("Secr3t"), "{message}");

    let yaml = "core_lib:\n  db:\n    url:\n      protocol: postgresql\n      password: Secr3t\n";
    let (path, message) = config_error(db(yaml));
    assert_eq!(path, "core_lib.db.url");
    assert!(
        message.contains("`url.password` is set but `url.username` is empty"),
        "{message}"
    );
    assert!(!message.contains("Secr3t"), "{message}");
}

#[test]
fn a_section_of_the_wrong_shape_says_what_it_expected() {
    let (path, message) =
        config_error(db("core_lib:\n  db:\n    url: sqlite://\n    session: 5\n"));
    assert_eq!(path, "core_lib.db.session");
    assert_eq!(message, "expected a mapping, found integer `5`");
    let (path, message) = config_error(db("core_lib:\n  db: sqlite://\n"));
    assert_eq!(path, "core_lib.db");
    assert!(
        message.starts_with("expected a mapping of db keys"),
        "{message}"
    );
}
