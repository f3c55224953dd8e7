//! Every kind of message that quotes a config, one test each: the secret in
//! it is masked, and the rest of what makes the message useful is still
//! there. The random configs are in `tests/secrets_random.rs`.

use sqlreg::{
    Config, DbConfig, DbUrl, Error, SqlConnectionRegistries, SqlConnectionRegistry, UrlConfig,
    UrlParts,
};

const PW: &str = "Hunter2-XYZ";

fn load(yaml: &str) -> Result<DbConfig, Error> {
    Config::from_yaml_str(yaml)?.at("core_lib.db")
}

/// The error's text, after checking that neither it nor its `Debug` shows `PW`.
fn message(result: Result<DbConfig, Error>) -> String {
    let err = result.expect_err("an error");
    let (shown, debug) = (err.to_string(), format!("{err:?}"));
    assert!(
        !shown.contains(PW) && !debug.contains(PW),
        "{shown}\n{debug}"
    );
    shown
}

#[test]
fn a_duplicate_key_says_which_and_where_it_was_first_written() {
    let yaml = format!(
        "core_lib:\n  db:\n    url:\n      protocol: postgresql\n      username: app\n      \
         password: {PW}\n      host: db.local\n      password: {PW}\n"
    );
    let shown = message(load(&yaml));
    assert!(
        shown.contains(
            "the key `password` is written twice under `core_lib.db.url`: \
             first at line 6, column 7, again at line 8, column 7"
        ),
        "{shown}"
    );
    assert!(!shown.contains("DuplicateKeyPolicy"), "{shown}");
    // The snippet is still there, with the secret masked.
    assert!(shown.contains("6 |       password: ***"), "{shown}");
    assert!(shown.contains("7 |       host: db.local"), "{shown}");
}

#[test]
fn a_number_out_of_range_quotes_its_lines_with_the_url_password_masked() {
    let yaml = format!(
        "core_lib:\n  db:\n    url: 'postgresql://app:{PW}@db.local/app'\n    session:\n      \
         pool_size: 1e999\n"
    );
    let shown = message(load(&yaml));
    assert!(shown.contains("`1e999` is not a finite number"), "{shown}");
    assert!(shown.contains("line 5"), "{shown}");
    assert!(
        shown.contains("url: 'postgresql://app:***@db.local/app'"),
        "{shown}"
    );
}

#[test]
fn a_type_error_echoing_a_url_masks_its_password() {
    let yaml = format!(
        "core_lib:\n  db:\n    url: sqlite://\n    sqlite: 'postgresql://u:{PW}@127.0.0.1:1/db'\n"
    );
    assert_eq!(
        message(load(&yaml)),
        "config error at `core_lib.db.sqlite`: expected a mapping, \
         found string \"postgresql://u:***@127.0.0.1:1/db\""
    );
}

#[test]
fn a_type_error_at_a_secret_key_masks_the_value() {
    let yaml = "core_lib:\n  db:\n    url:\n      protocol: mysql\n      username: u\n      \
                password: 12345678\n";
    assert_eq!(
        load(yaml).unwrap_err().to_string(),
        "config error at `core_lib.db.url.password`: expected a string, found integer `***`"
    );
    let shown = message(load(&yaml.replace("12345678", &format!("[{PW}]"))));
    assert_eq!(
        shown,
        "config error at `core_lib.db.url.password`: expected a string, found sequence"
    );
}

#[test]
fn interpolation_errors_in_a_secret_do_not_quote_it() {
    let yaml = format!(
        "core_lib:\n  db:\n    url:\n      protocol: mysql\n      username: u\n      password: '{PW}${{'\n"
    );
    let shown = message(load(&yaml));
    assert!(shown.starts_with("config error at `core_lib.db.url.password`: unclosed `${`"));

    let yaml = format!(
        "core_lib:\n  db:\n    url:\n      protocol: mysql\n      username: u\n      \
         password: 'x-${{vault:{PW}}}'\n"
    );
    let shown = message(load(&yaml));
    assert!(shown.contains("unknown resolver `vault`"), "{shown}");
}

#[test]
fn values_from_the_environment_are_shown_by_the_variables_name() {
    // SAFETY: set once, read only by this test's own config.
    unsafe {
        std::env::set_var("SQLREG_SECRETS_T_POOL", PW);
        std::env::set_var("SQLREG_SECRETS_T_URL", format!("oracle://u:{PW}@h/db"));
        std::env::set_var("SQLREG_SECRETS_T_NAME", PW);
    }
    let yaml = "core_lib:\n  db:\n    url: sqlite://\n    session:\n      \
                pool_size: ${oc.env:SQLREG_SECRETS_T_POOL}\n";
    assert_eq!(
        message(load(yaml)),
        "config error at `core_lib.db.session.pool_size`: expected a whole number of \
         connections, found string \"${oc.env:SQLREG_SECRETS_T_POOL}\""
    );

    let yaml = "core_lib:\n  db:\n    url: ${oc.env:SQLREG_SECRETS_T_URL}\n";
    let shown = message(load(yaml));
    assert!(
        shown.contains("invalid database url `${oc.env:SQLREG_SECRETS_T_URL}`"),
        "{shown}"
    );
    let yaml = "core_lib:\n  db:\n    url:\n      protocol: oracle\n      \
                host: ${oc.env:SQLREG_SECRETS_T_NAME}\n";
    let shown = message(load(yaml));
    assert!(
        shown.contains("invalid database url `oracle://${oc.env:SQLREG_SECRETS_T_NAME}/`"),
        "{shown}"
    );

    // Through references, to a value and to the mapping holding it.
    let yaml = "shared:\n  host: ${oc.env:SQLREG_SECRETS_T_NAME}\n  \
                url: {protocol: oracle, host: '${shared.host}'}\n\
                core_lib:\n  db:\n    url: ${shared.url}\n";
    let shown = message(load(yaml));
    assert!(
        shown.contains("invalid database url `oracle://${oc.env:SQLREG_SECRETS_T_NAME}/`"),
        "{shown}"
    );

    // A variable named by another variable: the inner one's value is not shown.
    let yaml = "core_lib:\n  db:\n    url: ${oc.env:${oc.env:SQLREG_SECRETS_T_NAME}}\n";
    let shown = message(load(yaml));
    assert!(
        shown.contains("environment variable `${oc.env:SQLREG_SECRETS_T_NAME}` is not set"),
        "{shown}"
    );
}

#[test]
fn an_unknown_key_next_to_a_password_names_the_key_not_the_value() {
    let yaml = format!(
        "core_lib:\n  db:\n    url:\n      protocol: mysql\n      username: u\n      pasword: {PW}\n"
    );
    let shown = message(load(&yaml));
    assert!(
        shown
            .contains("`core_lib.db.url.pasword`: unknown key `pasword`; did you mean `password`?"),
        "{shown}"
    );
    // Misspelled, it is still a password when a snippet quotes it.
    let shown = message(load(&format!("{yaml}    bad: [\n")));
    assert!(shown.contains("pasword: ***"), "{shown}");
}

#[test]
fn yaml_syntax_errors_mask_secrets_at_any_depth_and_in_flow_mappings() {
    let yaml = format!(
        "app:\n  api:\n    client_secret: {PW}\n    token: \"{PW}\"\n  oops: ]\n  \
         db: {{protocol: mysql, password: '{PW}', host: h}}\n"
    );
    let shown = message(Config::from_yaml_str(&yaml).and_then(|c| c.at("app.db")));
    assert!(shown.contains("client_secret: ***"), "{shown}");
    assert!(shown.contains("token: ***"), "{shown}");
    assert!(shown.contains("line 5"), "{shown}");
    assert!(shown.contains("password: ***, host: h}"), "{shown}");
}

#[test]
fn a_malformed_override_does_not_echo_its_value() {
    let config = Config::from_yaml_str("core_lib:\n  db:\n    url: sqlite://\n").unwrap();
    let err = config
        .with_overrides([format!("core_lib.db.url.password:{PW}")])
        .unwrap_err();
    let shown = err.to_string();
    assert!(!shown.contains(PW), "{shown}");
    assert!(shown.contains("`core_lib.db.url.password`"), "{shown}");
}

#[test]
fn debug_of_the_config_types_hides_passwords_and_secret_query_parameters() {
    let parts = UrlParts::new("postgresql")
        .credentials("app", PW)
        .host("h")
        .query("token", PW)
        .query("sslmode", "disable");
    let text = UrlConfig::Text(format!(
        "postgresql://app:{PW}@h/db?password={PW}&sslmode=disable"
    ));
    let db = DbConfig::new(parts.clone());
    for shown in [
        format!("{parts:?}"),
        format!("{text:?}"),
        format!("{db:?}"),
        format!("{:?}", text.to_db_url().unwrap()),
        text.to_db_url().unwrap().redacted(),
        format!(
            "{:?}",
            Config::from_yaml_str(&format!("a:\n  password: {PW}\n")).unwrap()
        ),
    ] {
        assert!(!shown.contains(PW), "{shown}");
        assert!(shown.contains("***") || shown.contains("keys"), "{shown}");
    }
    assert!(format!("{parts:?}").contains("\"sslmode\": \"disable\""));
    let url: DbUrl = format!("mysql://u:{PW}@h/db?token={PW}").parse().unwrap();
    assert_eq!(url.redacted(), "mysql://u:***@h/db?token=***");
}

#[tokio::test]
async fn a_refused_connection_does_not_show_the_password() {
    let url = format!("postgresql://app:{}@127.0.0.1:1/app", "p%40ss-Hunter2-XYZ");
    let err = SqlConnectionRegistry::connect(DbConfig::new(url.as_str()))
        .await
        .unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains(PW), "{shown}");
    assert!(
        shown.contains("postgresql://app:***@127.0.0.1:1/app"),
        "{shown}"
    );
}

#[tokio::test]
async fn many_databases_report_a_connect_error_as_the_config_shows_it() {
    // SAFETY: set once, read only by this test's own config.
    unsafe { std::env::set_var("SQLREG_SECRETS_T_HOST", "127.0.0.1") };
    let yaml = format!(
        "core_lib:\n  db:\n    url: {{protocol: postgresql, username: app, password: {PW}, \
         host: '${{oc.env:SQLREG_SECRETS_T_HOST}}', port: 1, file: app}}\n"
    );
    let config = Config::from_yaml_str(&yaml).unwrap();
    let err = SqlConnectionRegistries::builder(&config)
        .discover("core_lib")
        .connect()
        .await
        .unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(
        shown.contains("postgresql://app:***@${oc.env:SQLREG_SECRETS_T_HOST}:1/app"),
        "{shown}"
    );
    assert!(
        !shown.contains(PW) && !shown.contains("127.0.0.1"),
        "{shown}"
    );
    // What a program prints about the section goes through the same mask.
    let url = config.at("core_lib.db").unwrap().url.to_db_url().unwrap();
    assert_eq!(
        config.mask("core_lib.db", &url.redacted()),
        "postgresql://app:***@${oc.env:SQLREG_SECRETS_T_HOST}:1/app"
    );
}
