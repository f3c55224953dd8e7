//! `sqlreg check`: validate the config, then for each database show its
//! resolved settings (password masked), connect, ping, whether the
//! connection uses TLS, and say whether `create_db` would create anything;
//! with `replicas`, each host's role, position, lag and round trip. Changes
//! nothing on the server.
//! `--json` prints the same report as one JSON document.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, Statement};
use sqlreg::replication;
use sqlreg::{Backend, Config, ConnectFailure, DbSection, Error, Pooler, SqlConnectionRegistry};

use crate::Failure;
use crate::inputs::{self, Inputs};
use crate::table::millis;

mod report;

use self::report::{Report, SectionReport, Settings, TlsReport, print_text};

/// Arguments of `sqlreg check`.
#[derive(clap::Args)]
pub struct Args {
    /// The database section to check, as a dotted path.
    #[arg(long, default_value = "core_lib.db", conflicts_with = "all")]
    path: String,
    /// Check every database section in the file (each mapping with a `url`).
    #[arg(long)]
    all: bool,
    /// Print the report as one JSON document (for scripts and readiness probes).
    #[arg(long)]
    json: bool,
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
    let mut databases = Vec::with_capacity(sections.len());
    for section in &sections {
        databases.push(check(&config, section).await);
    }
    let failed = databases.iter().filter(|db| db.error.is_some()).count();
    let report = Report {
        config: file.display().to_string(),
        reachable: databases.len() - failed,
        failed,
        databases,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_text(&report);
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Checks one section: valid, reachable, usable as configured. What it
/// reports goes through `Config::mask`: values from `${oc.env:..}` show as
/// their variable, secrets as `***`.
async fn check(config: &Config, section: &DbSection) -> SectionReport {
    let mask = |text: &str| config.mask(&section.path, text);
    let mut report = SectionReport {
        name: section.name.clone(),
        path: section.path.clone(),
        settings: None,
        database: None,
        server: None,
        round_trip_ms: None,
        tls: None,
        hosts: Vec::new(),
        status: "FAILED",
        error: None,
    };
    let db = match config.at(&section.path) {
        Ok(db) => db,
        Err(err) => return report.failed(&err, mask),
    };
    let mut settings = Settings::of(&db);
    settings.url = mask(&settings.url);
    report.settings = Some(settings);
    // Connect without create_db, so checking never creates anything.
    match SqlConnectionRegistry::connect(db.clone().create_db(false)).await {
        Ok(registry) => {
            report.database = Some("exists");
            let probed = probe_server(&registry).await;
            let tls = probe_tls(&registry, db.session.pooler != Pooler::None).await;
            registry.close().await;
            match probed {
                Ok((version, round_trip)) => {
                    report.server = Some(version);
                    report.round_trip_ms = Some(millis(round_trip));
                    report.tls = tls;
                    report.status = "OK";
                    let multi_host = db.url.to_db_url().is_ok_and(|url| url.is_multi_host());
                    if db.replicas.is_empty() && !multi_host {
                        return report;
                    }
                    match replication::probe_hosts(&db).await {
                        Ok(hosts) => report.with_hosts(&db, &hosts, mask),
                        Err(err) => report.failed(&err, mask),
                    }
                }
                Err(err) => report.failed(&err, mask),
            }
        }
        Err(Error::Connect {
            reason: ConnectFailure::UnknownDatabase | ConnectFailure::CannotOpenFile,
            ..
        }) if db.create_db => {
            report.database = Some("missing");
            report.status = "OK";
            report
        }
        Err(err) => report.failed(&err, mask),
    }
}

/// Server version and a timed `SELECT 1` on an already open connection.
async fn probe_server(registry: &SqlConnectionRegistry) -> Result<(String, Duration), Error> {
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
    Ok((version, started.elapsed()))
}

/// The connection's TLS as the server sees it. `None` for SQLite and
/// whenever the server cannot tell (the probe's failure is not the check's).
async fn probe_tls(registry: &SqlConnectionRegistry, behind_pooler: bool) -> Option<TlsReport> {
    let backend = registry.url().backend();
    let conn = registry.connection().await.ok()?;
    let db_backend = conn.get_database_backend();
    let (on, version, cipher) = match backend {
        Backend::Sqlite => return None,
        Backend::Postgres => {
            let sql = "SELECT ssl, version, cipher FROM pg_stat_ssl WHERE pid = pg_backend_pid()";
            let row = conn
                .query_one_raw(Statement::from_string(db_backend, sql))
                .await
                .ok()??;
            let on: bool = row.try_get_by_index(0).ok()?;
            let version: Option<String> = row.try_get_by_index(1).ok()?;
            let cipher: Option<String> = row.try_get_by_index(2).ok()?;
            (on, version, cipher)
        }
        Backend::MySql => {
            let sql = "SHOW SESSION STATUS WHERE Variable_name IN ('Ssl_version', 'Ssl_cipher')";
            let rows = conn
                .query_all_raw(Statement::from_string(db_backend, sql))
                .await
                .ok()?;
            let (mut version, mut cipher) = (None, None);
            for row in rows {
                let name: String = row.try_get_by_index(0).ok()?;
                let value: String = row.try_get_by_index(1).ok()?;
                let value = Some(value).filter(|v| !v.is_empty());
                if name.eq_ignore_ascii_case("Ssl_version") {
                    version = value;
                } else {
                    cipher = value;
                }
            }
            (cipher.is_some(), version, cipher)
        }
    };
    Some(TlsReport {
        on,
        version,
        cipher,
        seen_by_server_behind_pooler: behind_pooler,
    })
}
