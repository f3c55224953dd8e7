//! The failover tests' own primary/standby pairs (tests/common/pair.rs over
//! scripts/db/pair.sh) do what those tests rely on, seen from a client:
//! replication, a crash, a promotion, pg_rewind of the old primary into a
//! standby of the new one, a split brain on two timelines, and a MariaDB
//! replica promoted to a writable primary.

mod common;

use std::time::{Duration, Instant};

use common::pair::{MariaPair, PgPair};
use sqlx::{Connection, MySqlConnection, PgConnection};

/// How long a change may take to reach a standby on a loaded machine.
const REPLICATION_WAIT: Duration = Duration::from_secs(60);

async fn pg(url: &str) -> PgConnection {
    PgConnection::connect(url).await.unwrap()
}

async fn in_recovery(conn: &mut PgConnection) -> bool {
    sqlx::query_scalar("SELECT pg_is_in_recovery()")
        .fetch_one(conn)
        .await
        .unwrap()
}

/// The server's timeline, from a checkpoint taken now (the control file
/// shows a new timeline only after one).
async fn timeline(conn: &mut PgConnection) -> i32 {
    sqlx::query("CHECKPOINT").execute(&mut *conn).await.unwrap();
    sqlx::query_scalar("SELECT timeline_id FROM pg_control_checkpoint()")
        .fetch_one(conn)
        .await
        .unwrap()
}

/// Waits until row `id` of `t` (and `t` itself) is visible through `conn`
/// (a standby replays asynchronously even when the primary's commit waited
/// for it).
async fn wait_for_pg_row(conn: &mut PgConnection, id: i32) {
    let deadline = Instant::now() + REPLICATION_WAIT;
    loop {
        let found = sqlx::query_scalar::<_, bool>("SELECT EXISTS (SELECT 1 FROM t WHERE id = $1)")
            .bind(id)
            .fetch_one(&mut *conn)
            .await;
        let found = match found {
            Ok(found) => found,
            // The standby has not replayed the CREATE TABLE yet.
            Err(sqlx::Error::Database(err)) if err.code().as_deref() == Some("42P01") => false,
            Err(err) => panic!("cannot read t: {err}"),
        };
        if found {
            return;
        }
        assert!(Instant::now() < deadline, "row {id} never replicated");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn insert_pg(conn: &mut PgConnection, id: i32) {
    sqlx::query("INSERT INTO t (id) VALUES ($1)")
        .bind(id)
        .execute(conn)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_pair_fails_over_and_rewinds_the_old_primary_into_a_standby() {
    let Some(pair) = PgPair::start("pg_pair_failover").await else {
        return;
    };
    let (first_primary, first_standby) = (pair.primary_port(), pair.standby_port());
    assert_ne!(first_primary, first_standby);
    assert!(pair.multi_host_url().contains(&format!(
        "127.0.0.1:{first_primary},127.0.0.1:{first_standby}/"
    )));

    pair.sync(true).await;
    let mut primary = pg(&pair.url(first_primary)).await;
    let mut standby = pg(&pair.url(first_standby)).await;
    assert!(!in_recovery(&mut primary).await);
    assert!(in_recovery(&mut standby).await);
    sqlx::query("CREATE TABLE t (id int PRIMARY KEY)")
        .execute(&mut primary)
        .await
        .unwrap();
    insert_pg(&mut primary, 1).await;
    wait_for_pg_row(&mut standby, 1).await;
    drop((primary, standby));

    pair.stop_primary().await;
    assert!(
        PgConnection::connect(&pair.url(first_primary))
            .await
            .is_err(),
        "the crashed primary still accepts connections"
    );
    pair.promote().await;
    assert_eq!(pair.primary_port(), first_standby);
    assert_eq!(pair.standby_port(), first_primary);
    let mut new_primary = pg(&pair.url(first_standby)).await;
    assert!(!in_recovery(&mut new_primary).await);
    // A commit that waited for the standby survived the crash; the promoted
    // server commits without a standby of its own (it did not inherit
    // synchronous_standby_names).
    wait_for_pg_row(&mut new_primary, 1).await;
    insert_pg(&mut new_primary, 2).await;

    pair.rewind().await;
    let mut old_primary = pg(&pair.url(first_primary)).await;
    assert!(in_recovery(&mut old_primary).await);
    wait_for_pg_row(&mut old_primary, 2).await;
    insert_pg(&mut new_primary, 3).await;
    wait_for_pg_row(&mut old_primary, 3).await;

    // Synchronous again, now towards the rewound server.
    pair.sync(true).await;
    insert_pg(&mut new_primary, 4).await;
    pair.sync(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_pair_split_brain_gives_two_writable_servers_on_different_timelines() {
    let Some(pair) = PgPair::start("pg_pair_split_brain").await else {
        return;
    };
    let (old, new) = (pair.primary_port(), pair.standby_port());
    // The old primary goes down synchronous: it must come back writable
    // anyway, not waiting for a standby it no longer has.
    pair.sync(true).await;
    pair.stop_primary().await;
    pair.promote().await;
    pair.split_brain().await;

    let mut old_conn = pg(&pair.url(old)).await;
    let mut new_conn = pg(&pair.url(new)).await;
    assert!(!in_recovery(&mut old_conn).await);
    assert!(!in_recovery(&mut new_conn).await);
    for conn in [&mut old_conn, &mut new_conn] {
        // A guard against a hang, not a timed assertion.
        tokio::time::timeout(
            REPLICATION_WAIT,
            sqlx::query("CREATE TABLE split (id int)").execute(conn),
        )
        .await
        .expect("a commit on a split-brain server hangs")
        .unwrap();
    }
    let (old_timeline, new_timeline) =
        (timeline(&mut old_conn).await, timeline(&mut new_conn).await);
    assert!(
        new_timeline > old_timeline,
        "the promoted server is on timeline {new_timeline}, the old primary on {old_timeline}"
    );
}

async fn mariadb(url: &str) -> MySqlConnection {
    MySqlConnection::connect(url).await.unwrap()
}

async fn read_only(conn: &mut MySqlConnection) -> bool {
    let value: i64 = sqlx::query_scalar("SELECT @@read_only")
        .fetch_one(conn)
        .await
        .unwrap();
    value != 0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_pair_promotes_its_replica_to_a_writable_primary() {
    let Some(pair) = MariaPair::start("mariadb_pair_failover").await else {
        return;
    };
    let (first_primary, first_replica) = (pair.primary_port(), pair.standby_port());
    assert!(pair.multi_host_url().contains(&format!(
        "127.0.0.1:{first_primary},127.0.0.1:{first_replica}/"
    )));
    let mut primary = mariadb(&pair.url(first_primary)).await;
    let mut replica = mariadb(&pair.url(first_replica)).await;
    assert!(!read_only(&mut primary).await);
    assert!(read_only(&mut replica).await);
    sqlx::query("CREATE TABLE t (id int PRIMARY KEY)")
        .execute(&mut primary)
        .await
        .unwrap();
    sqlx::query("INSERT INTO t (id) VALUES (1)")
        .execute(&mut primary)
        .await
        .unwrap();
    let deadline = Instant::now() + REPLICATION_WAIT;
    loop {
        let rows: Vec<i32> = sqlx::query_scalar("SELECT id FROM t")
            .fetch_all(&mut replica)
            .await
            .unwrap_or_default();
        if rows == [1] {
            break;
        }
        assert!(Instant::now() < deadline, "the row never replicated");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop((primary, replica));

    pair.stop_primary().await;
    assert!(
        MySqlConnection::connect(&pair.url(first_primary))
            .await
            .is_err(),
        "the crashed primary still accepts connections"
    );
    pair.promote().await;
    assert_eq!(pair.primary_port(), first_replica);
    assert_eq!(pair.standby_port(), first_primary);
    let mut new_primary = mariadb(&pair.url(first_replica)).await;
    assert!(!read_only(&mut new_primary).await);
    sqlx::query("INSERT INTO t (id) VALUES (2)")
        .execute(&mut new_primary)
        .await
        .unwrap();
    let rows: Vec<i32> = sqlx::query_scalar("SELECT id FROM t ORDER BY id")
        .fetch_all(&mut new_primary)
        .await
        .unwrap();
    assert_eq!(rows, [1, 2]);
}
