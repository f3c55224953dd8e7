//! PostgreSQL's side of replication: a host's role and timeline, WAL
//! locations as [`ReplicationPosition::Lsn`], and waiting for a standby to
//! replay one (PostgreSQL 15 has no wait function: short polls, bounded).
//!
//! Every probe is one simple query (`sqlx::raw_sql`): one message and one
//! round trip, no prepared statement left on the server connection and
//! nothing read from the session. Behind a transaction pooler the probes
//! run outside a transaction, where each query may reach another server
//! connection: a named statement could collide with another client's
//! (42P05) or be missing there (26000), and an unnamed one's Parse and
//! Bind could land on two server connections. All these queries ask about
//! the server as a whole, so any of its connections answers the same.

use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnection, PgRow};
use sqlx::{Postgres, Row};

use super::super::connect;
use crate::config::DbConfig;
use crate::error::Result;
use crate::replication::{
    ReplicationPosition, Role, Standing, Streaming, SyncState, WalReceiver, WalSender,
};
use crate::url::DbUrl;

/// The first pause between two polls of a standby's replay position; it
/// doubles up to [`LONGEST_POLL`]. A caught-up standby replays a commit
/// within about a millisecond here, so the first polls are short.
const FIRST_POLL: Duration = Duration::from_millis(1);
/// The longest pause between two polls: a round trip every 16 ms at most.
const LONGEST_POLL: Duration = Duration::from_millis(16);

/// A plain connection to the host of `url`, as sessions connect.
pub(in crate::driver) async fn connect(url: &DbUrl, config: &DbConfig) -> Result<PgConnection> {
    let options = super::connect_options(url, config).await?;
    connect::connect_once::<Postgres>(&options, config.session.connect_timeout)
        .await
        .map_err(|err| connect::connect_error(url, connect::failure(&err, super::classify), &err))
}

/// Standby or primary, the timeline it is on — a primary's from the WAL
/// it writes (`pg_control_checkpoint()` lags a promotion until the next
/// checkpoint), a standby's from the WAL it receives — whether it takes
/// writes by default (libpq's `read-write` test), and how far its history
/// goes (as [`replay_position`]), in one round trip. Read on a connection
/// of its own, whose `default_transaction_read_only` is the server's.
/// Behind a transaction pooler that setting is the server's too, as long
/// as no client of the pooler leaves a session `SET` behind (sqlreg refuses
/// them there).
pub(in crate::driver) async fn role(conn: &mut PgConnection) -> Result<Standing, sqlx::Error> {
    let row = one_row(
        conn,
        "SELECT pg_is_in_recovery(), CASE WHEN pg_is_in_recovery() \
           THEN COALESCE((SELECT received_tli FROM pg_stat_wal_receiver), \
                         (SELECT timeline_id FROM pg_control_checkpoint()))::bigint \
           ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::bigint END, \
           current_setting('default_transaction_read_only'), \
           (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() \
            ELSE pg_current_wal_insert_lsn() END)::text",
    )
    .await?;
    let standby: bool = row.try_get(0)?;
    let timeline: Option<i64> = row.try_get(1)?;
    let read_only: String = row.try_get(2)?;
    let lsn: Option<String> = row.try_get(3)?;
    let role = if standby {
        Role::Standby
    } else {
        Role::Primary
    };
    Ok(Standing {
        role,
        timeline: timeline.and_then(|t| u64::try_from(t).ok()),
        writable: !standby && read_only == "off",
        position: lsn.as_deref().map(parse).transpose()?,
        cluster: None,
    })
}

/// Where the primary's WAL ends: at least the end of every commit that has
/// returned. The insert location, not the write location: with
/// `synchronous_commit = off` a commit returns before its record is written,
/// and a standby that replayed the write location could still miss it.
pub(in crate::driver) async fn commit_position(
    conn: &mut PgConnection,
) -> Result<Option<ReplicationPosition>, sqlx::Error> {
    let row = one_row(conn, "SELECT pg_current_wal_insert_lsn()::text").await?;
    let lsn: String = row.try_get(0)?;
    Ok(Some(parse(&lsn)?))
}

/// What the host has replayed: a standby's last replayed WAL location; a
/// primary has everything it wrote.
pub(in crate::driver) async fn replay_position(
    conn: &mut PgConnection,
) -> Result<Option<ReplicationPosition>, sqlx::Error> {
    let row = one_row(
        conn,
        "SELECT (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() \
                 ELSE pg_current_wal_insert_lsn() END)::text",
    )
    .await?;
    let lsn: Option<String> = row.try_get(0)?;
    lsn.as_deref().map(parse).transpose()
}

/// Polls the replay position until it covers `target` or `bound` has
/// passed; whether it did.
pub(in crate::driver) async fn wait_for(
    conn: &mut PgConnection,
    target: &ReplicationPosition,
    bound: Duration,
) -> Result<bool, sqlx::Error> {
    let deadline = Instant::now() + bound;
    let mut pause = FIRST_POLL;
    loop {
        if replay_position(conn)
            .await?
            .is_some_and(|replayed| replayed.covers(target))
        {
            return Ok(true);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(false);
        }
        tokio::time::sleep(pause.min(left)).await;
        pause = (pause * 2).min(LONGEST_POLL);
    }
}

/// Who streams from the host (`pg_stat_replication`: each standby's
/// `application_name`, state, `sync_state` and address, synchronous ones
/// first), what it streams from (`pg_stat_wal_receiver`) and, on a
/// primary, `synchronous_standby_names` — in one simple query, as the
/// other probes. `sqlreg check` asks it once per host; the monitor never
/// does. A user without `pg_read_all_stats` sees the standbys' names and
/// that a WAL receiver runs, but neither the standbys' state nor the
/// receiver's details (left `None`).
pub(in crate::driver) async fn streaming(
    conn: &mut PgConnection,
) -> Result<Streaming, sqlx::Error> {
    let row = one_row(
        conn,
        "SELECT CASE WHEN pg_is_in_recovery() THEN '' \
                ELSE current_setting('synchronous_standby_names') END, \
           r.pid IS NOT NULL, r.status, r.sender_host, r.sender_port, r.conninfo, \
           (SELECT json_agg(json_build_object('name', application_name, 'state', state, \
                     'sync_state', sync_state, 'addr', host(client_addr), 'port', client_port) \
                   ORDER BY CASE sync_state WHEN 'sync' THEN 0 WHEN 'quorum' THEN 1 \
                     WHEN 'potential' THEN 2 ELSE 3 END, application_name) \
              FROM pg_stat_replication)::text \
         FROM (SELECT 1) AS one LEFT JOIN pg_stat_wal_receiver AS r ON true",
    )
    .await?;
    let names: String = row.try_get(0)?;
    let receiving: Option<bool> = row.try_get(1)?;
    let status: Option<String> = row.try_get(2)?;
    let sender_host: Option<String> = row.try_get(3)?;
    let sender_port: Option<i32> = row.try_get(4)?;
    let conninfo: Option<String> = row.try_get(5)?;
    let senders: Option<String> = row.try_get(6)?;
    let senders: Vec<Sender> = match senders {
        Some(json) => serde_json::from_str(&json)
            .map_err(|err| sqlx::Error::Protocol(format!("pg_stat_replication as JSON: {err}")))?,
        None => Vec::new(),
    };
    Ok(Streaming {
        synchronous_standby_names: Some(names).filter(|names| !names.trim().is_empty()),
        standbys: senders
            .into_iter()
            .map(|sender| WalSender {
                name: sender.name.unwrap_or_default(),
                state: sender.state,
                sync_state: sender.sync_state.as_deref().and_then(SyncState::parse),
                client: sender
                    .addr
                    .map(|addr| match sender.port.filter(|port| *port >= 0) {
                        Some(port) => format!("{addr}:{port}"),
                        None => addr,
                    }),
            })
            .collect(),
        receiver: receiving.unwrap_or(false).then(|| WalReceiver {
            status,
            sender: sender_host.map(|host| match sender_port {
                Some(port) => format!("{host}:{port}"),
                None => host,
            }),
            name: conninfo.as_deref().and_then(application_name),
            upstream: None,
            sync_state: None,
        }),
    })
}

/// One row of `pg_stat_replication`, as [`streaming`] aggregates it.
#[derive(serde::Deserialize)]
struct Sender {
    name: Option<String>,
    state: Option<String>,
    sync_state: Option<String>,
    addr: Option<String>,
    port: Option<i32>,
}

/// The name a WAL receiver connected with, from its `conninfo`
/// (`keyword=value` pairs, unquoted): its `application_name`, else the
/// `fallback_application_name` PostgreSQL gave it (`cluster_name`, or
/// `walreceiver`).
fn application_name(conninfo: &str) -> Option<String> {
    let value = |key: &str| {
        conninfo
            .split_whitespace()
            .find_map(|pair| pair.strip_prefix(key)?.strip_prefix('='))
            .filter(|value| !value.is_empty())
            .map(str::to_owned)
    };
    value("application_name").or_else(|| value("fallback_application_name"))
}

/// The one row `sql` returns, as a simple query (see the module docs);
/// its values come as text, which sqlx decodes by the column's type.
async fn one_row(conn: &mut PgConnection, sql: &'static str) -> Result<PgRow, sqlx::Error> {
    sqlx::raw_sql(sql).fetch_one(conn).await
}

fn parse(lsn: &str) -> Result<ReplicationPosition, sqlx::Error> {
    lsn.parse()
        .map_err(|message: String| sqlx::Error::Protocol(message))
}

#[cfg(test)]
mod tests {
    use super::application_name;

    #[test]
    fn a_receivers_name_comes_from_its_conninfo() {
        let patroni = "user=replicator passfile=/tmp/pgpass channel_binding=prefer \
                       dbname=replication host=127.0.0.1 port=31510 application_name=pg2 \
                       fallback_application_name=sqlreg sslmode=prefer";
        assert_eq!(application_name(patroni).as_deref(), Some("pg2"));
        let unnamed = "user=postgres host=/run/pg port=5432 fallback_application_name=walreceiver";
        assert_eq!(application_name(unnamed).as_deref(), Some("walreceiver"));
        assert_eq!(application_name("user=postgres"), None);
    }
}
