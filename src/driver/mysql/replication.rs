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
use crate::replication::{ClusterMembership, ReplicationPosition, Role, Standing};
use crate::url::DbUrl;

/// A plain connection to the host of `url`, as sessions connect.
pub(in crate::driver) async fn connect(url: &DbUrl, config: &DbConfig) -> Result<MySqlConnection> {
    let options = super::connect_options(url, config).await?;
    connect::connect_once::<MySql>(&options, config.session.connect_timeout)
        .await
        .map_err(|err| connect::connect_error(url, connect::failure(&err, super::classify), &err))
}

/// A replica when `read_only` or when a replication thread runs (a replica
/// left writable is still one); writable unless `read_only`; its position
/// (a primary's binary log, a replica's applied GTIDs), in one round trip.
/// MariaDB has no timelines.
///
/// A Galera node that is not ready for clients (`wsrep_ready` OFF: cut off
/// from the cluster's primary component, or still joining) answers this
/// query but refuses every statement that reads a table (1047): it is
/// reported as a failed probe, so it gets no sessions until it is back.
pub(in crate::driver) async fn role(conn: &mut MySqlConnection) -> Result<Standing, sqlx::Error> {
    let (read_only, replicating, written, applied, wsrep_ready, wsrep_state, cluster, size): RoleRow =
        sqlx::query_as(
            "SELECT CAST(@@read_only AS SIGNED), \
               (SELECT CAST(VARIABLE_VALUE AS SIGNED) FROM information_schema.GLOBAL_STATUS \
                WHERE VARIABLE_NAME = 'SLAVES_RUNNING'), \
               CAST(@@gtid_binlog_pos AS CHAR), CAST(@@gtid_current_pos AS CHAR), \
               (SELECT CAST(r.VARIABLE_VALUE AS CHAR) FROM information_schema.GLOBAL_STATUS r \
                JOIN information_schema.GLOBAL_VARIABLES o ON o.VARIABLE_NAME = 'WSREP_ON' \
                WHERE r.VARIABLE_NAME = 'WSREP_READY' AND o.VARIABLE_VALUE = 'ON'), \
               (SELECT CAST(VARIABLE_VALUE AS CHAR) FROM information_schema.GLOBAL_STATUS \
                WHERE VARIABLE_NAME = 'WSREP_LOCAL_STATE_COMMENT'), \
               (SELECT CAST(u.VARIABLE_VALUE AS CHAR) FROM information_schema.GLOBAL_STATUS u \
                JOIN information_schema.GLOBAL_STATUS s ON s.VARIABLE_NAME = 'WSREP_CLUSTER_STATUS' \
                WHERE u.VARIABLE_NAME = 'WSREP_CLUSTER_STATE_UUID' AND s.VARIABLE_VALUE = 'Primary'), \
               (SELECT CAST(VARIABLE_VALUE AS UNSIGNED) FROM information_schema.GLOBAL_STATUS \
                WHERE VARIABLE_NAME = 'WSREP_CLUSTER_SIZE')",
        )
        .fetch_one(&mut *conn)
        .await?;
    if wsrep_ready.as_deref() == Some("OFF") {
        return Err(sqlx::Error::Protocol(format!(
            "a Galera node not ready for clients (wsrep_ready OFF, state {})",
            wsrep_state.as_deref().unwrap_or("unknown")
        )));
    }
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
        cluster: cluster.map(|id| ClusterMembership {
            id,
            state: wsrep_state.unwrap_or_default(),
            size: size.map_or(0, |size| u32::try_from(size).unwrap_or(u32::MAX)),
        }),
    })
}

/// `@@read_only`, `SLAVES_RUNNING`, `@@gtid_binlog_pos`, `@@gtid_current_pos`,
/// `WSREP_READY` (only where `wsrep_on`: a server built with Galera but not
/// running it says OFF), `WSREP_LOCAL_STATE_COMMENT`, the Galera cluster's state
/// UUID while in its primary component, `WSREP_CLUSTER_SIZE`.
type RoleRow = (
    i64,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<u64>,
);

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
///
/// A Galera node (`wsrep_on`, `wsrep_gtid_mode`) applies the cluster's
/// transactions without a replication thread, so `MASTER_GTID_WAIT`, which
/// follows `gtid_slave_pos`, never sees them; its binary log holds the same
/// GTIDs as every other node's, so it is read instead until it covers
/// `target` or `bound` has passed. The first answer comes in the same round
/// trip as on any other server.
pub(in crate::driver) async fn wait_for(
    conn: &mut MySqlConnection,
    target: &ReplicationPosition,
    bound: Duration,
) -> Result<bool, sqlx::Error> {
    let ReplicationPosition::Gtid(set) = target else {
        return Ok(false);
    };
    let deadline = std::time::Instant::now() + bound;
    let (waited, galera_pos): (Option<i64>, Option<String>) = sqlx::query_as(
        "SELECT IF(@@wsrep_on = 1 AND @@wsrep_gtid_mode = 1, NULL, MASTER_GTID_WAIT(?, ?)), \
                IF(@@wsrep_on = 1 AND @@wsrep_gtid_mode = 1, CAST(@@gtid_binlog_pos AS CHAR), NULL)",
    )
    .bind(set.to_string())
    .bind(bound.as_secs_f64())
    .fetch_one(&mut *conn)
    .await?;
    let Some(mut committed) = galera_pos else {
        return Ok(waited == Some(0));
    };
    loop {
        let position: ReplicationPosition = committed.parse().map_err(sqlx::Error::Protocol)?;
        if position.covers(target) {
            return Ok(true);
        }
        if std::time::Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(GALERA_POLL).await;
        committed = sqlx::query_scalar("SELECT CAST(@@gtid_binlog_pos AS CHAR)")
            .fetch_one(&mut *conn)
            .await?;
    }
}

/// How often a Galera node's binary log position is read while waiting for
/// it to commit a GTID: a node applies a certified write set within a
/// millisecond or two on a LAN.
const GALERA_POLL: Duration = Duration::from_millis(1);

async fn gtids(
    conn: &mut MySqlConnection,
    sql: &'static str,
) -> Result<Option<ReplicationPosition>, sqlx::Error> {
    let text: Option<String> = sqlx::query_scalar(sql).fetch_one(conn).await?;
    text.map(|text| text.parse().map_err(sqlx::Error::Protocol))
        .transpose()
}
