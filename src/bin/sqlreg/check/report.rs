//! What `sqlreg check` reports: the report's types (serialized as is for
//! `--json`) and their text form.

use std::time::Duration;

use serde::Serialize;
use sqlreg::replication::{HostProbe, Streaming};
use sqlreg::{DbConfig, Error};

use crate::table::{millis, plural};

/// The whole report: `{"config", "databases": [..], "reachable", "failed"}`.
#[derive(Serialize)]
pub(super) struct Report {
    pub(super) config: String,
    pub(super) databases: Vec<SectionReport>,
    pub(super) reachable: usize,
    pub(super) failed: usize,
}

/// What `check` found out about one section.
#[derive(Serialize)]
pub(super) struct SectionReport {
    pub(super) name: String,
    pub(super) path: String,
    /// `None` when the section itself is invalid.
    pub(super) settings: Option<Settings>,
    /// `exists`, or `missing` (create_db will create it).
    pub(super) database: Option<&'static str>,
    pub(super) server: Option<String>,
    pub(super) round_trip_ms: Option<f64>,
    /// The connection's TLS as the server sees it; `None` for SQLite, or
    /// when the server cannot say.
    pub(super) tls: Option<TlsReport>,
    /// With `replicas` or a multi-host `url`: every host, as probed.
    pub(super) hosts: Vec<HostReport>,
    /// `OK` or `FAILED`.
    pub(super) status: &'static str,
    pub(super) error: Option<String>,
}

/// Whether the checked connection uses TLS: PostgreSQL's `pg_stat_ssl`,
/// MariaDB's `Ssl_version` / `Ssl_cipher` for the session's own connection.
#[derive(Serialize)]
pub(super) struct TlsReport {
    pub(super) on: bool,
    pub(super) version: Option<String>,
    pub(super) cipher: Option<String>,
    /// Behind a pooler the server sees the pooler's connection, not sqlreg's.
    pub(super) seen_by_server_behind_pooler: bool,
}

/// One host of a section with `replicas` or a multi-host `url`.
#[derive(Serialize)]
pub(super) struct HostReport {
    pub(super) url: String,
    /// `primary` for a host of `url`, `replica` for an item of `replicas`.
    pub(super) configured_as: &'static str,
    /// `primary` or `standby`, as the server says.
    pub(super) role: Option<String>,
    pub(super) timeline: Option<u64>,
    /// What a primary has written / a standby has replayed.
    pub(super) position: Option<String>,
    pub(super) round_trip_ms: Option<f64>,
    /// Seconds a standby is behind the primary.
    pub(super) lag: Option<f64>,
    /// Whether routing would skip the replica (`lag` beyond `routing.replica_max_lag`).
    pub(super) beyond_max_lag: bool,
    /// A Galera node: `galera <cluster id>, <state>, <size> nodes`.
    pub(super) cluster: Option<String>,
    /// PostgreSQL: the standbys streaming from the host and whether each is
    /// synchronous (`standbys`, `synchronous_standby_names`), or what a
    /// standby streams from (`receiver`: its `sender`, its `name`, the
    /// checked host that lists it as `upstream` and its `sync_state` there).
    pub(super) streaming: Option<Streaming>,
    pub(super) error: Option<String>,
}

/// The resolved settings; durations in seconds, `null` for off.
#[derive(Serialize)]
pub(super) struct Settings {
    pub(super) url: String,
    pub(super) pool_size: u32,
    pub(super) max_overflow: u32,
    pub(super) max_connections: u32,
    pub(super) pool_timeout: f64,
    pub(super) pool_recycle: Option<f64>,
    pub(super) pool_pre_ping: bool,
    pub(super) connect_timeout: f64,
    pub(super) idle_timeout: Option<f64>,
    pub(super) statement_timeout: Option<f64>,
    pub(super) slow_query: Option<f64>,
    pub(super) log_queries: bool,
    pub(super) create_db: bool,
}

impl SectionReport {
    /// The probed hosts; one that cannot be reached fails the section.
    pub(super) fn with_hosts(
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
                streaming: None,
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
                    line.streaming = state.streaming.clone().map(|mut streaming| {
                        if let Some(receiver) = &mut streaming.receiver {
                            receiver.upstream = receiver.upstream.as_deref().map(&mask);
                        }
                        streaming
                    });
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

    pub(super) fn failed(mut self, err: &Error, mask: impl Fn(&str) -> String) -> Self {
        self.error = Some(mask(&err.to_string()));
        self.status = "FAILED";
        self
    }
}

impl Settings {
    pub(super) fn of(db: &DbConfig) -> Self {
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

pub(super) fn print_text(report: &Report) {
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
            for text in host.describe_streaming() {
                line("", &text);
            }
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

impl HostReport {
    /// Under a PostgreSQL host's line, who streams from it and what it
    /// streams from:
    /// `standbys: pg3 synchronous (streaming, from 127.0.0.1:37750), pg2
    /// asynchronous (…); synchronous_standby_names pg3` on a primary,
    /// `synchronous standby of <url>, as pg3, streaming from 127.0.0.1:5432`
    /// on a standby.
    fn describe_streaming(&self) -> Vec<String> {
        let Some(streaming) = &self.streaming else {
            return Vec::new();
        };
        let primary = self.role.as_deref() == Some("primary");
        let mut lines = Vec::new();
        let names = streaming
            .synchronous_standby_names
            .as_ref()
            .map(|names| format!("; synchronous_standby_names {names}"))
            .unwrap_or_default();
        if !streaming.standbys.is_empty() {
            let standbys: Vec<String> = streaming
                .standbys
                .iter()
                .map(|standby| {
                    let kind = standby
                        .sync_state
                        .map_or("(sync_state hidden: needs pg_read_all_stats)", |state| {
                            state.describe().trim_end_matches(" standby")
                        });
                    let mut details = Vec::new();
                    details.extend(standby.state.clone());
                    details.extend(standby.client.as_ref().map(|c| format!("from {c}")));
                    if details.is_empty() {
                        format!("{} {kind}", standby.name)
                    } else {
                        format!("{} {kind} ({})", standby.name, details.join(", "))
                    }
                })
                .collect();
            lines.push(format!("standbys: {}{names}", standbys.join(", ")));
        } else if primary {
            let waits = if names.is_empty() {
                ""
            } else {
                ": commits wait for a synchronous standby that is not there"
            };
            lines.push(format!("standbys: none streaming{names}{waits}"));
        }
        if let Some(receiver) = &streaming.receiver {
            let mut text = match (&receiver.upstream, receiver.sync_state) {
                (Some(upstream), Some(state)) => format!("{} of {upstream}", state.describe()),
                (Some(upstream), None) => format!("standby of {upstream}"),
                (None, _) if receiver.name.is_some() => {
                    "standby of a host not checked here".to_owned()
                }
                // Its name hidden, nothing tells whose standby it is.
                (None, _) => "standby".to_owned(),
            };
            text.extend(receiver.name.as_ref().map(|name| format!(", as {name}")));
            match (&receiver.status, &receiver.sender) {
                (Some(status), Some(sender)) => text.push_str(&format!(", {status} from {sender}")),
                (Some(status), None) => text.push_str(&format!(", {status}")),
                (None, _) => {
                    text.push_str(", its WAL receiver's details hidden: needs pg_read_all_stats");
                }
            }
            lines.push(text);
        } else if self.role.as_deref() == Some("standby") {
            lines.push("not streaming: no WAL receiver running".to_owned());
        }
        lines
    }
}

fn line(label: &str, text: &str) {
    println!("  {label:<10} {text}");
}

fn seconds(value: Option<f64>) -> String {
    value.map_or_else(|| "off".to_owned(), |s| format!("{s}s"))
}
