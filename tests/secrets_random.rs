//! Random core-lib-shaped configs carrying one distinctive password in every
//! place a secret can be written — `url.password` in any YAML style, a URL
//! string, a query parameter, `${oc.env:…}`, a reference, `token` and
//! `*_secret` keys at any depth, a comment — with a fault or none (a
//! duplicate key, a number out of range, a type error, a broken
//! interpolation, a misspelled key, a syntax error, a bad override).
//! Through `Config` loading, `at(..)`, connecting (one database and many)
//! and the `sqlreg` binary, no output, error, `Debug` or log line shows the
//! password, and nothing panics.

mod common;

use std::fmt::Write as _;
use std::path::Path;

use common::{Kind, logs, server_available};
use sqlreg::{Config, ConnectFailure, SqlConnectionRegistries, SqlConnectionRegistry};

/// Configs tried through the library; every `CLI_EVERY`-th one through the binary too.
const CASES: u64 = 300;
const CLI_EVERY: u64 = 10;

/// xorshift64*: a few lines, and a failing case is rebuilt from its seed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Characters around the distinctive core that need quoting or encoding.
const PREFIXES: [&str; 5] = ["", "p@", "#", "ü", "a b"];
const SUFFIXES: [&str; 9] = [
    "",
    "@ss",
    ":/#%",
    "p@ss:w/rd",
    " sp ace",
    "ünï©",
    "\"q'",
    "\\b",
    "&a=b?c",
];

/// One generated config and what it needs around it.
struct Case {
    seed: u64,
    yaml: String,
    overrides: Vec<String>,
    /// The part of the password that must never be shown.
    core: String,
}

/// `text` as a YAML scalar: plain when it can be, else single or double quoted.
fn scalar(rng: &mut Rng, text: &str) -> String {
    let plain = text
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    match rng.below(3) {
        0 if plain => text.to_owned(),
        1 => format!("'{}'", text.replace('\'', "''")),
        _ => format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\"")),
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn encode(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

fn set_env(name: &str, value: &str) {
    // SAFETY: each name is set once, by the one test of this binary that
    // uses it, before the config that reads it is loaded.
    unsafe { std::env::set_var(name, value) };
}

/// Builds the config of `seed`.
fn case(seed: u64) -> Case {
    let mut rng = Rng::new(seed);
    let core: String = (0..8)
        .map(|_| *rng.pick(&['k', 'Q', '7', 'w', 'R', '3', 'v', 'M']))
        .collect();
    let core = format!("Zq{seed}x{core}");
    let full = format!("{}{core}{}", rng.pick(&PREFIXES), rng.pick(&SUFFIXES));
    let protocol = *rng.pick(&[
        "postgresql",
        "mysql",
        "mariadb",
        "sqlite",
        "postgresql+psycopg2",
    ]);
    let env_password = format!("SQLREG_RANDOM_{seed}_PASSWORD");
    let env_url = format!("SQLREG_RANDOM_{seed}_URL");
    set_env(&env_password, &full);
    let query = if rng.chance(25) && protocol != "sqlite" {
        format!("?{}={}", rng.pick(&["password", "token"]), encode(&full))
    } else {
        String::new()
    };
    let url_text = format!("{protocol}://app:{}@127.0.0.1:1/app{query}", encode(&full));
    set_env(&env_url, &url_text);

    let wrapped = rng.chance(30);
    let d = if wrapped { "      " } else { "    " };
    let mut yaml = String::from("core_lib:\n");
    if rng.chance(50) {
        let (a, b) = (scalar(&mut rng, &full), scalar(&mut rng, &full));
        let _ = write!(
            yaml,
            "  app:\n    api_token: {a}\n    nested:\n      client_secret: {b}\n    \
             services: [{{name: x, token: {b}}}]\n"
        );
    }
    let _ = writeln!(
        yaml,
        "  secrets:\n    db_password: {}",
        scalar(&mut rng, &full)
    );
    yaml.push_str("  db:\n");
    if wrapped {
        yaml.push_str(
            "    _target_: core_lib.connection.sql_alchemy.SqlAlchemyConnectionRegistry\n    \
             _instance_key_: main\n    config:\n",
        );
    }
    let _ = write!(
        yaml,
        "{d}log_queries: {}\n{d}create_db: false\n{d}session:\n{d}  pool_size: {}\n{d}  \
         connect_timeout: 2\n",
        rng.chance(50),
        1 + rng.below(9)
    );

    // The URL, as one of the ways core-lib configs write it. `lines` are the
    // parts form's lines, so a fault can repeat or misspell one.
    let password = match rng.below(7) {
        0 => format!("${{oc.env:{env_password}}}"),
        1 => "${core_lib.secrets.db_password}".to_owned(),
        2 => format!("|-\n{d}    {full}"),
        3 => format!("!!str {}", scalar(&mut rng, &full)),
        4 => format!("{} # rotated monthly", scalar(&mut rng, &full)),
        _ => scalar(&mut rng, &full),
    };
    let shape = rng.below(5);
    let mut lines: Vec<String> = Vec::new();
    let server = protocol != "sqlite";
    match shape {
        // core-lib's parts, one per line.
        0 | 1 => {
            lines.push(format!("{d}url:"));
            lines.push(format!("{d}  protocol: {protocol}"));
            lines.push(format!("{d}  username: app"));
            lines.push(format!("{d}  password: {password}"));
            if server {
                lines.push(format!("{d}  host: 127.0.0.1"));
                lines.push(format!("{d}  port: 1"));
                lines.push(format!("{d}  file: app"));
            }
            if rng.chance(20) && server {
                lines.push(format!(
                    "{d}  query:\n{d}    token: {}",
                    scalar(&mut rng, &full)
                ));
            }
        }
        // The parts as a flow mapping over two lines.
        2 if !password.contains('\n') && !password.contains('#') => {
            lines.push(format!("{d}url: {{protocol: {protocol}, username: app,"));
            lines.push(format!(
                "{d}  password: {password}, host: 127.0.0.1, port: 1, file: app}}"
            ));
        }
        3 => lines.push(format!("{d}url: '{url_text}'")),
        _ => lines.push(format!("{d}url: ${{oc.env:{env_url}}}")),
    }
    let parts = lines.iter().any(|line| line.contains("password: "));
    let password_line = lines.iter().position(|l| l.contains("password: "));

    let mut overrides = Vec::new();
    let mut tail = String::new();
    match rng.below(11) {
        // A key written twice, next to the password or as the password.
        0 => match password_line {
            Some(at) => {
                let again = lines[if rng.chance(50) { at } else { at - 1 }].clone();
                lines.insert(at + 1, again);
            }
            None => lines.push(lines[0].clone()),
        },
        // A number out of range: for YAML, for a pool, for a port.
        1 => {
            let port = lines.iter().position(|l| l.ends_with("port: 1"));
            match (rng.below(3), port) {
                (0, _) => yaml = yaml.replacen("pool_size: ", "pool_size: 1e999 #", 1),
                (1, _) => yaml = yaml.replacen("pool_size: ", "pool_size: 99999999999 #", 1),
                (_, Some(at)) => lines[at] = format!("{d}  port: 99999"),
                (_, None) => yaml = yaml.replacen("pool_size: ", "pool_size: -3 #", 1),
            }
        }
        // A type error echoing a URL.
        2 => {
            let key = rng.pick(&["sqlite", "log_queries"]);
            let _ = writeln!(tail, "{d}{key}: '{url_text}'");
        }
        // A broken interpolation in the password.
        3 => {
            if let Some(at) = password_line {
                let broken = match rng.below(3) {
                    0 => format!("'{}${{'", full.replace('\'', "''")),
                    1 => format!("'${{vault:{core}}}'"),
                    _ => format!("${{oc.env:SQLREG_RANDOM_{seed}_UNSET}}"),
                };
                lines[at] = format!("{d}  password: {broken}");
            }
        }
        // A misspelled password key, or a secret key where none is allowed.
        4 => match password_line {
            Some(at) => lines[at] = lines[at].replace("password:", "pasword:"),
            None => {
                let _ = writeln!(tail, "{d}db_password: {}", scalar(&mut rng, &full));
            }
        },
        // A syntax error right below the password.
        5 => {
            let at = password_line.unwrap_or(0);
            let broken = if rng.chance(50) {
                format!("{d}  oops: ]")
            } else {
                format!(
                    "{d}  password: \"{}",
                    full.replace('\\', "\\\\").replace('"', "\\\"")
                )
            };
            lines.insert(at + 1, broken);
        }
        // An unsupported dialect with credentials.
        6 => {
            lines = vec![format!(
                "{d}url: 'oracle://app:{}@127.0.0.1:1/app'",
                encode(&full)
            )];
        }
        // Overrides: malformed, or setting the password.
        7 => overrides.push(format!("core_lib.db.url.password:{core}")),
        8 if parts => overrides.push(format!("++core_lib.db.url.password={core}")),
        // A wrong type at the password.
        9 => {
            if let Some(at) = password_line {
                lines[at] = format!("{d}  password: [{}]", scalar(&mut rng, &full));
            }
        }
        _ => {}
    }
    if rng.chance(25) {
        let _ = writeln!(yaml, "{d}# until May: password: {full}");
    }
    for line in lines {
        yaml.push_str(&line);
        yaml.push('\n');
    }
    yaml.push_str(&tail);
    if rng.chance(30) {
        let _ = write!(yaml, "secret: |\n  {}\n", full.replace('\n', " "));
    }
    Case {
        seed,
        yaml,
        overrides,
        core,
    }
}

/// Everything the library shows about the case: errors and their `Debug`,
/// the config's `Debug`, the URL, the registry.
async fn through_the_library(case: &Case) -> String {
    let mut shown = String::new();
    let mut show = |text: String| {
        shown.push_str(&text);
        shown.push('\n');
    };
    let config = match Config::from_yaml_str(&case.yaml) {
        Ok(config) => config,
        Err(err) => {
            show(format!("{err}\n{err:?}"));
            return shown;
        }
    };
    show(format!("{config:?}"));
    let config = match config.with_overrides(&case.overrides) {
        Ok(config) => config,
        Err(err) => {
            show(format!("{err}\n{err:?}"));
            return shown;
        }
    };
    match config.sections_with_url("") {
        Ok(sections) => show(format!("{sections:?}")),
        Err(err) => show(format!("{err}\n{err:?}")),
    }
    match SqlConnectionRegistries::builder(&config)
        .discover("core_lib")
        .connect()
        .await
    {
        Ok(databases) => {
            show(format!("{databases:?}"));
            databases.close_all().await;
        }
        Err(err) => show(format!("{err}\n{err:?}")),
    }
    let db = match config.at("core_lib.db") {
        Ok(db) => db,
        Err(err) => {
            show(format!("{err}\n{err:?}"));
            return shown;
        }
    };
    show(format!("{db:?}"));
    match db.url.to_db_url() {
        Ok(url) => show(format!(
            "{url} {url:?} {}",
            config.mask("core_lib.db", &url.redacted())
        )),
        Err(err) => show(format!("{err}\n{err:?}")),
    }
    match SqlConnectionRegistry::connect(db).await {
        Ok(registry) => {
            show(format!("{registry:?} {}", registry.url()));
            registry.close().await;
        }
        Err(err) => show(format!("{err}\n{err:?}")),
    }
    shown
}

/// Both streams of `sqlreg check` (or `exec`) on the case's config file.
fn through_the_cli(case: &Case, dir: &Path) -> String {
    let file = dir.join(format!("config_{}.yaml", case.seed));
    std::fs::write(&file, &case.yaml).unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_sqlreg"));
    cmd.current_dir(dir).env_remove("SQLREG_CONFIG");
    if case.seed.is_multiple_of(2 * CLI_EVERY) {
        cmd.args(["exec", file.to_str().unwrap(), "SELECT 1"]);
    } else {
        cmd.args(["check", "--all", file.to_str().unwrap()]);
    }
    let out = cmd.args(&case.overrides).output().unwrap();
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The kinds of message the random configs must reach (a part of each),
/// so the test cannot pass by never producing them.
const KINDS: [&str; 13] = [
    "is written twice",
    "is not a finite number",
    "more than a pool can hold",
    "a port from 0 to 65535",
    "found string \"",
    "unclosed `${`",
    "unknown resolver",
    "is not set",
    "unknown key `pasword`",
    "unknown key `db_password`",
    "unsupported dialect",
    "an override is",
    "connection refused",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_message_shows_a_password_from_a_random_config() {
    logs::capture();
    let dir = tempfile::tempdir().unwrap();
    let mut cores = Vec::new();
    let mut reached = [0; KINDS.len()];
    let mut connected = 0;
    for seed in 1..=CASES {
        let case = case(seed);
        let shown = through_the_library(&case).await;
        for (kind, count) in KINDS.iter().zip(&mut reached) {
            *count += usize::from(shown.contains(kind));
        }
        connected += usize::from(shown.contains("SqlConnectionRegistry"));
        assert!(
            !shown.contains(&case.core),
            "seed {seed}: the library showed the password\n--- config\n{}--- shown\n{shown}",
            case.yaml
        );
        if seed.is_multiple_of(CLI_EVERY) {
            let shown = through_the_cli(&case, dir.path());
            assert!(
                !shown.contains(&case.core),
                "seed {seed}: the CLI showed the password\n--- config\n{}--- shown\n{shown}",
                case.yaml
            );
        }
        cores.push(case.core);
    }
    for (kind, count) in KINDS.iter().zip(reached) {
        assert!(count > 0, "no random config produced `{kind}`");
    }
    assert!(connected > 0, "no random config connected");
    let logged = logs::text();
    assert!(logged.contains("ignored for SQLite"), "{logged}");
    for core in &cores {
        assert!(!logged.contains(core.as_str()), "logged {core}:\n{logged}");
    }
}

/// A wrong password to a real server, in each way it can be written: the
/// server refuses it, and neither the error nor `sqlreg check` shows it.
async fn wrong_password_is_refused_and_not_shown(kind: Kind) {
    if !server_available(kind, "wrong_password_is_refused_and_not_shown") {
        return;
    }
    let (protocol, port_var) = match kind {
        Kind::Postgres => ("postgresql", "SQLREG_TEST_PG_PORT"),
        _ => ("mariadb", "SQLREG_TEST_MARIADB_PORT"),
    };
    let port = std::env::var(port_var).unwrap();
    let user = std::env::var("SQLREG_TEST_USER").unwrap();
    let host = std::env::var("SQLREG_TEST_HOST").unwrap_or_else(|_| "127.0.0.1".into());
    let dir = tempfile::tempdir().unwrap();
    for seed in 1..=6u64 {
        let mut rng = Rng::new(seed + 1000 * port.len() as u64);
        let core = format!("Zq{seed}Wrong{}", rng.below(1_000_000));
        let full = format!("{}{core}{}", rng.pick(&PREFIXES), rng.pick(&SUFFIXES));
        let env = format!("SQLREG_RANDOM_{protocol}_{seed}_PASSWORD");
        set_env(&env, &full);
        let url = match seed % 3 {
            0 => format!(
                "'{protocol}://{user}:{}@{host}:{port}/sqlreg_test'",
                encode(&full)
            ),
            1 => format!(
                "{{protocol: {protocol}, username: {user}, password: {}, host: '{host}', port: {port}, \
                 file: sqlreg_test}}",
                scalar(&mut rng, &full)
            ),
            _ => format!(
                "{{protocol: {protocol}, username: {user}, password: '${{oc.env:{env}}}', \
                 host: '{host}', port: {port}, file: sqlreg_test}}"
            ),
        };
        let yaml = format!("core_lib:\n  db:\n    create_db: false\n    url: {url}\n");
        let db = Config::from_yaml_str(&yaml)
            .unwrap()
            .at("core_lib.db")
            .unwrap();
        let err = SqlConnectionRegistry::connect(db).await.unwrap_err();
        assert_eq!(
            err.connect_failure(),
            Some(ConnectFailure::AuthenticationFailed),
            "{err}"
        );
        let shown = format!("{err}\n{err:?}");
        assert!(!shown.contains(&core), "{shown}");
        let case = Case {
            seed: 10_000 + seed,
            yaml,
            overrides: Vec::new(),
            core,
        };
        let shown = through_the_cli(&case, dir.path());
        assert!(shown.contains("authentication failed"), "{shown}");
        assert!(!shown.contains(&case.core), "{shown}");
    }
}

on_servers!(wrong_password_is_refused_and_not_shown);
