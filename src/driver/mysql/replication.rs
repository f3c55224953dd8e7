//! MariaDB's side of replication: a host's role, GTID positions as
//! [`ReplicationPosition::Gtid`], and `MASTER_GTID_WAIT` to wait for a
//! replica to apply one.
//!
//! MariaDB only: MySQL's GTIDs (`uuid:1-42`) and status tables differ, and
//! these statements fail there with the server's own error.

use std::time::Duration;

use sqlx::MySql;
use sqlx::mysql::MySqlConnection;

use super::super::connect;
use crate::config::DbConfig;
use crate::error::Result;
use crate::replication::{ReplicationPosition, Role, Standing};
use crate::url::DbUrl;

/// A plain connection to the host of `url`, as sessions connect.
pub(in crate::driver) async fn connect(url: &DbUrl, config: &DbConfig) -> Result<MySqlConnection> {
    let options = super::connect_options(url, config)?;
    connect::connect_once::<MySql>(&options, config.session.connect_timeout)
        .await
        .map_err(|err| connect::connect_error(url, connect::failure(&err, super::classify), &err))
}

/// A replica when `read_only` or when a replication thread runs (a replica
/// left writable is still one); writable unless `read_only`; its position
/// (a primary's binary log, a replica's applied GTIDs), in one round trip.
/// MariaDB has no timelines.
pub(in crate::driver) async fn role(conn: &mut MySqlConnection) -> Result<Standing, sqlx::Error> {
    let (read_only, replicating, written, applied): (
        i64,
        Option<i64>,
        Option<String>,
        Option<String>,
    ) = sqlx::query_as(
        "SELECT CAST(@@read_only AS SIGNED), \
               (SELECT CAST(VARIABLE_VALUE AS SIGNED) FROM information_schema.GLOBAL_STATUS \
                WHERE VARIABLE_NAME = 'SLAVES_RUNNING'), \
               CAST(@@gtid_binlog_pos AS CHAR), CAST(@@gtid_current_pos AS CHAR)",
    )
    .fetch_one(conn)
    .await?;
    let (role, position) = if read_only != 0 || replicating.unwrap_or(0) > 0 {
        (Role::Standby, applied)
    } else {
        (Role::Primary, written)
    };
    Ok(Standing {
        role,
        timeline: None,
        writable: read_only == 0,
        position: position
            .map(|text| text.parse().map_err(sqlx::Error::Protocol))
            .transpose()?,
    })
}

/// The GTIDs in the primary's binary log: every transaction committed
/// before this call, in every domain.
pub(in crate::driver) async fn commit_position(
    conn: &mut MySqlConnection,
) -> Result<Option<ReplicationPosition>, sqlx::Error> {
    gtids(conn, "SELECT CAST(@@gtid_binlog_pos AS CHAR)").await
}

/// The GTIDs the host has applied, replicated or its own.
pub(in crate::driver) async fn replay_position(
    conn: &mut MySqlConnection,
) -> Result<Option<ReplicationPosition>, sqlx::Error> {
    gtids(conn, "SELECT CAST(@@gtid_current_pos AS CHAR)").await
}

/// `MASTER_GTID_WAIT` for `target`, at most `bound`; whether the replica
/// applied it. A position that is not a GTID set is never applied here.
pub(in crate::driver) async fn wait_for(
    conn: &mut MySqlConnection,
    target: &ReplicationPosition,
    bound: Duration,
) -> Result<bool, sqlx::Error> {
    let ReplicationPosition::Gtid(set) = target else {
        return Ok(false);
    };
    let waited: i64 = sqlx::query_scalar("SELECT MASTER_GTID_WAIT(?, ?)")
        .bind(set.to_string())
        .bind(bound.as_secs_f64())
        .fetch_one(conn)
        .await?;
    Ok(waited == 0)
}

async fn gtids(
    conn: &mut MySqlConnection,
    sql: &'static str,
) -> Result<Option<ReplicationPosition>, sqlx::Error> {
    let text: Option<String> = sqlx::query_scalar(sql).fetch_one(conn).await?;
    text.map(|text| text.parse().map_err(sqlx::Error::Protocol))
        .transpose()
}
