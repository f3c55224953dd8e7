//! `sqlreg check`: validate the config, then for each database show its
//! resolved settings (password masked), connect, ping, whether the
//! connection uses TLS, and say whether `create_db` would create anything;
//! with `replicas`, each host's role, position, lag and round trip. Changes
//! nothing on the server.
//! `--json` prints the same report as one JSON document.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, Statement};
use serde::Serialize;
use sqlreg::replication::{self, HostProbe};
use sqlreg::{
    Backend, Config, ConnectFailure, DbConfig, DbSection, Error, Pooler, SqlConnectionRegistry,
};

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
    /// Print the report as one JSON document (for scripts and readiness probes).
    #[arg(long)]
    json: bool,
    /// The config file (default: $SQLREG_CONFIG, else ./config.yaml), then
    /// overrides such as core_lib.db.log_queries=true.
    #[arg(value_name = "CONFIG | KEY=VALUE")]
    args: Vec<String>,
}

/// The whole report: `{"config", "databases": [..], "reachable", "failed"}`.
#[derive(Serialize)]
struct Report {
    config: String,
    databases: Vec<SectionReport>,
    reachable: usize,
    failed: usize,
}

/// What `check` found out about one section.
#[derive(Serialize)]
struct SectionReport {
    name: String,
    path: String,
    /// `None` when the section itself is invalid.
    settings: Option<Settings>,
    /// `exists`, or `missing` (create_db will create it).
    database: Option<&'static str>,
    server: Option<String>,
    round_trip_ms: Option<f64>,
    /// The connection's TLS as the server sees it; `None` for SQLite, or
    /// when the server cannot say.
    tls: Option<TlsReport>,
    /// With `replicas` or a multi-host `url`: every host, as probed.
    hosts: Vec<HostReport>,
    /// `OK` or `FAILED`.
    status: &'static str,
    error: Option<String>,
}

/// Whether the checked connection uses TLS: PostgreSQL's `pg_stat_ssl`,
/// MariaDB's `Ssl_version` / `Ssl_cipher` for the session's own connection.
#[derive(Serialize)]
struct TlsReport {
    on: bool,
    version: Option<String>,
    cipher: Option<String>,
    /// Behind a pooler the server sees the pooler's connection, not sqlreg's.
    seen_by_server_behind_pooler: bool,
}

/// One host of a section with `replicas` or a multi-host `url`.
#[derive(Serialize)]
struct HostReport {
    url: String,
    /// `primary` for a host of `url`, `replica` for an item of `replicas`.
    configured_as: &'static str,
    /// `primary` or `standby`, as the server says.
    role: Option<String>,
    timeline: Option<u64>,
    /// What a primary has written / a standby has replayed.
    position: Option<String>,
    round_trip_ms: Option<f64>,
    /// Seconds a standby is behind the primary.
    lag: Option<f64>,
    /// Whether routing would skip the replica (`lag` beyond `routing.replica_max_lag`).
    beyond_max_lag: bool,
    /// A Galera node: `galera <cluster id>, <state>, <size> nodes`.
    cluster: Option<String>,
    error: Option<String>,
}

/// The resolved settings; durations in seconds, `null` for off.
#[derive(Serialize)]
struct Settings {
    url: String,
    pool_size: u32,
    max_overflow: u32,
    max_connections: u32,
    pool_timeout: f64,
    pool_recycle: Option<f64>,
    pool_pre_ping: bool,
    connect_timeout: f64,
    idle_timeout: Option<f64>,
    statement_timeout: Option<f64>,
    slow_query: Option<f64>,
    log_queries: bool,
    create_db: bool,
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

impl SectionReport {
    /// The probed hosts; one that cannot be reached fails the section.
    fn with_hosts(
        mut self,
        db: &DbConfig,
        hosts: &[HostProbe],
        mask: impl Fn(&str) -> String,
    ) -> Self {
        let max_lag = db.routing.replica_max_lag;
        for host in hosts {
            let mut line = HostReport {
                url: mask(&host.url),
                configured_as: if host.replica { "replica" } else { "primary" },
                role: None,
                timeline: None,
                position: None,
                round_trip_ms: None,
                lag: None,
                beyond_max_lag: false,
                cluster: None,
                error: None,
            };
            match &host.state {
                Ok(state) => {
                    line.role = Some(state.role.to_string());
                    line.timeline = state.timeline;
                    line.position = state.position.as_ref().map(ToString::to_string);
                    line.round_trip_ms = Some(millis(state.round_trip));
                    line.lag = state.lag.map(|lag| lag.as_secs_f64());
                    line.beyond_max_lag = state.lag.is_some_and(|lag| lag > max_lag);
                    line.cluster = state
                        .cluster
                        .as_ref()
                        .map(|c| format!("galera {}, {}, {} nodes", c.id, c.state, c.size));
                }
                Err(err) => {
                    let error = mask(&err.to_string());
                    self.error
                        .get_or_insert_with(|| format!("{}: {error}", line.url));
                    self.status = "FAILED";
                    line.error = Some(error);
                }
            }
            self.hosts.push(line);
        }
        self
    }

    fn failed(mut self, err: &Error, mask: impl Fn(&str) -> String) -> Self {
        self.error = Some(mask(&err.to_string()));
        self.status = "FAILED";
        self
    }
}

impl Settings {
    fn of(db: &DbConfig) -> Self {
        let s = &db.session;
        let url = db
            .url
            .to_db_url()
            .map_or_else(|e| e.to_string(), |url| url.redacted());
        let secs = |d: Option<Duration>| d.map(|d| d.as_secs_f64());
        Self {
            url,
            pool_size: s.pool_size,
            max_overflow: s.max_overflow,
            max_connections: s.pool_size.saturating_add(s.max_overflow),
            pool_timeout: s.pool_timeout.as_secs_f64(),
            pool_recycle: secs(s.pool_recycle),
            pool_pre_ping: s.pool_pre_ping,
            connect_timeout: s.connect_timeout.as_secs_f64(),
            idle_timeout: secs(s.idle_timeout),
            statement_timeout: secs(s.statement_timeout),
            slow_query: secs(s.slow_query),
            log_queries: db.log_queries,
            create_db: db.create_db,
        }
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

fn print_text(report: &Report) {
    println!("config {}", report.config);
    for db in &report.databases {
        println!("\n[{}] {}", db.name, db.path);
        if let Some(s) = &db.settings {
            line("url", &s.url);
            line(
                "pool",
                &format!(
                    "pool_size {}, max_overflow {} (at most {} connections), pool_timeout {}, \
                     pool_recycle {}, pool_pre_ping {}",
                    s.pool_size,
                    s.max_overflow,
                    s.max_connections,
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
                &format!("log_queries {}, create_db {}", s.log_queries, s.create_db),
            );
        }
        match db.database {
            Some("missing") => line(
                "database",
                "missing; create_db will create it on first connect",
            ),
            Some(_) => line("database", "exists; create_db has nothing to create"),
            None => {}
        }
        if let Some(server) = &db.server {
            line("server", server);
        }
        if let Some(round_trip) = db.round_trip_ms {
            line("ping", &format!("{round_trip:.2} ms round trip"));
        }
        if let Some(tls) = &db.tls {
            line("tls", &tls.describe());
        }
        for host in &db.hosts {
            line(host.configured_as, &host.describe());
        }
        if let Some(error) = &db.error {
            line("error", error);
        }
        line("status", db.status);
    }
    let total = plural(report.databases.len(), "database");
    if report.failed == 0 {
        println!("\nall {total} reachable");
    } else {
        println!("\n{} of {total} failed", report.failed);
    }
}

impl TlsReport {
    /// `on, TLSv1.3, TLS_AES_256_GCM_SHA384` or `off (a plain connection)`;
    /// behind a pooler, saying whose connection that is.
    fn describe(&self) -> String {
        let mut text = if self.on {
            let mut parts = vec!["on".to_owned()];
            parts.extend(self.version.clone());
            parts.extend(self.cipher.clone());
            parts.join(", ")
        } else {
            "off (a plain connection)".to_owned()
        };
        if self.seen_by_server_behind_pooler {
            text.push_str(
                " — as the server sees the pooler's connection, not sqlreg's to the pooler",
            );
        }
        text
    }
}

impl HostReport {
    /// `<url>: standby, timeline 1, at 0/3000148, lag 0.000s, 0.21 ms round trip`.
    fn describe(&self) -> String {
        let mut parts = Vec::new();
        parts.extend(self.role.clone());
        parts.extend(self.cluster.clone());
        parts.extend(self.timeline.map(|t| format!("timeline {t}")));
        parts.extend(self.position.as_ref().map(|p| format!("at {p}")));
        if let Some(lag) = self.lag {
            let beyond = if self.beyond_max_lag {
                " (beyond routing.replica_max_lag: reads skip it)"
            } else {
                ""
            };
            parts.push(format!("lag {lag:.3}s{beyond}"));
        }
        if self.configured_as == "replica"
            && self.role.as_deref() == Some("primary")
            && self.cluster.is_none()
        {
            parts.push("not replicating: it takes writes".to_owned());
        }
        parts.extend(
            self.round_trip_ms
                .map(|ms| format!("{ms:.2} ms round trip")),
        );
        parts.extend(self.error.clone());
        format!("{}: {}", self.url, parts.join(", "))
    }
}

fn line(label: &str, text: &str) {
    println!("  {label:<10} {text}");
}

fn seconds(value: Option<f64>) -> String {
    value.map_or_else(|| "off".to_owned(), |s| format!("{s}s"))
}
