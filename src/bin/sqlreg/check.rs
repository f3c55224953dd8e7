//! `sqlreg check`: validate the config, then for each database show its
//! resolved settings (password masked), connect, ping, and say whether
//! `create_db` would create anything. Changes nothing on the server.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, Statement};
use sqlreg::{Backend, Config, ConnectFailure, DbConfig, DbSection, Error, SqlConnectionRegistry};

use crate::Failure;
use crate::inputs::{self, Inputs};
use crate::table::{millis, plural};

/// Arguments of `sqlreg check`.
#[derive(clap::Args)]
pub struct Args {
    /// The database section to check, as a dotted path.
    #[arg(long, default_value = "core_lib.db", conflicts_with = "all")]
    path: String,
    /// Check every database section in the file (each mapping with a `url`).
    #[arg(long)]
    all: bool,
    /// The config file (default: $SQLREG_CONFIG, else ./config.yaml), then
    /// overrides such as core_lib.db.log_queries=true.
    #[arg(value_name = "CONFIG | KEY=VALUE")]
    args: Vec<String>,
}

pub async fn run(args: Args) -> Result<ExitCode, Failure> {
    let inputs = Inputs::sort(args.args);
    if inputs.plain.len() > 1 {
        return Err(format!(
            "expected one config file, got {} (an override is written `key=value`)",
            inputs::shown(&inputs.plain)
        )
        .into());
    }
    let (file, config) = inputs.load(inputs.plain.first().map(String::as_str))?;
    let sections = if args.all {
        config.sections_with_url("")?
    } else {
        vec![config.section(&args.path)]
    };
    if sections.is_empty() {
        return Err(format!(
            "{}: no database sections (mappings with a `url` key)",
            file.display()
        )
        .into());
    }
    println!("config {}", file.display());
    let mut failed = 0;
    for section in &sections {
        if !check(&config, section).await {
            failed += 1;
        }
    }
    if failed == 0 {
        println!("\nall {} reachable", plural(sections.len(), "database"));
        Ok(ExitCode::SUCCESS)
    } else {
        println!(
            "\n{failed} of {} failed",
            plural(sections.len(), "database")
        );
        Ok(ExitCode::FAILURE)
    }
}

/// Reports on one section; `true` when it is usable as configured. What it
/// prints goes through `Config::mask`: values from `${oc.env:..}` show as
/// their variable, secrets as `***`.
async fn check(config: &Config, section: &DbSection) -> bool {
    println!("\n[{}] {}", section.name, section.path);
    let fail = |err: &Error| fail(&config.mask(&section.path, &err.to_string()));
    let db = match config.at(&section.path) {
        Ok(db) => db,
        Err(err) => return fail(&err),
    };
    settings(&db, |text| config.mask(&section.path, text));
    // Connect without create_db, so checking never creates anything.
    match SqlConnectionRegistry::connect(db.clone().create_db(false)).await {
        Ok(registry) => {
            line("database", "exists; create_db has nothing to create");
            let reachable = match report_server(&registry).await {
                Ok(()) => true,
                Err(err) => fail(&err),
            };
            registry.close().await;
            reachable
        }
        Err(Error::Connect {
            reason: ConnectFailure::UnknownDatabase | ConnectFailure::CannotOpenFile,
            ..
        }) if db.create_db => {
            line(
                "database",
                "missing; create_db will create it on first connect",
            );
            line("status", "OK");
            true
        }
        Err(err) => fail(&err),
    }
}

fn settings(db: &DbConfig, mask: impl Fn(&str) -> String) {
    let s = &db.session;
    let url = db
        .url
        .to_db_url()
        .map_or_else(|e| e.to_string(), |url| url.redacted());
    line("url", &mask(&url));
    line(
        "pool",
        &format!(
            "pool_size {}, max_overflow {} (at most {} connections), pool_timeout {}, \
             pool_recycle {}, pool_pre_ping {}",
            s.pool_size,
            s.max_overflow,
            s.pool_size.saturating_add(s.max_overflow),
            seconds(Some(s.pool_timeout)),
            seconds(s.pool_recycle),
            s.pool_pre_ping
        ),
    );
    line(
        "timeouts",
        &format!(
            "connect {}, idle {}, statement {}, slow_query {}",
            seconds(Some(s.connect_timeout)),
            seconds(s.idle_timeout),
            seconds(s.statement_timeout),
            seconds(s.slow_query)
        ),
    );
    line(
        "flags",
        &format!("log_queries {}, create_db {}", db.log_queries, db.create_db),
    );
}

/// Server version and a timed `SELECT 1` on an already open connection.
async fn report_server(registry: &SqlConnectionRegistry) -> Result<(), Error> {
    let probe = async {
        let conn = registry.connection().await?;
        let backend = conn.get_database_backend();
        let version_sql = match registry.url().backend() {
            Backend::Sqlite => "SELECT 'SQLite ' || sqlite_version()",
            Backend::Postgres | Backend::MySql => "SELECT version()",
        };
        let version = conn
            .query_one_raw(Statement::from_string(backend, version_sql))
            .await?
            .map(|row| row.try_get_by_index::<String>(0))
            .transpose()?
            .unwrap_or_default();
        let started = Instant::now();
        conn.execute_unprepared("SELECT 1").await?;
        Ok::<_, Error>((version, started.elapsed()))
    };
    let (version, round_trip) = probe.await?;
    line("server", &version);
    line("ping", &format!("{:.2} ms round trip", millis(round_trip)));
    line("status", "OK");
    Ok(())
}

fn fail(shown: &str) -> bool {
    line("error", shown);
    line("status", "FAILED");
    false
}

fn line(label: &str, text: &str) {
    println!("  {label:<10} {text}");
}

fn seconds(value: Option<Duration>) -> String {
    value.map_or_else(|| "off".to_owned(), |d| format!("{}s", d.as_secs_f64()))
}
