//! A session begins its transaction with its first statement: one that runs
//! nothing costs no round trip and opens no transaction — checked from the
//! database's side, each time against a session that does run a statement.

mod common;

use std::time::Duration;

use common::{Kind, TestDb};
use sea_orm::{ConnectionTrait, Statement};
use sqlreg::{Error, Session, SqlConnectionRegistry};

on_every_backend!(empty_sessions_never_begin);

/// A registry whose pool holds one connection (two for SQLite, whose check
/// needs a second writer), so every session below runs on the same server
/// connection.
async fn registry(db: &TestDb) -> SqlConnectionRegistry {
    let mut config = db.config.clone();
    config.session.pool_size = if matches!(db.kind, Kind::SqliteFile | Kind::SqliteMemory) {
        2
    } else {
        1
    };
    config.session.max_overflow = 0;
    config.sqlite.busy_timeout = Duration::from_millis(200);
    SqlConnectionRegistry::connect(config).await.unwrap()
}

/// The first row's column `name` of `sql`, run on `conn`.
async fn scalar<T: sea_orm::TryGetable>(conn: &impl ConnectionTrait, sql: &str, name: &str) -> T {
    conn.query_one_raw(Statement::from_string(conn.get_database_backend(), sql))
        .await
        .unwrap_or_else(|err| panic!("{sql}: {err}"))
        .expect("one row")
        .try_get::<T>("", name)
        .unwrap()
}

/// Every way a session can end without having run a statement.
async fn empty_sessions(registry: &SqlConnectionRegistry) {
    registry.get().await.unwrap().commit().await.unwrap();
    registry.get().await.unwrap().close().await.unwrap();
    registry.get().await.unwrap().rollback().await;
    drop(registry.get().await.unwrap());
    registry
        .session(async |_| Ok::<_, Error>(()))
        .await
        .unwrap();
    registry
        .session(async |_| Err::<(), _>(Error::NotFound("on purpose".into())))
        .await
        .unwrap_err();
}

async fn empty_sessions_never_begin(db: TestDb) {
    let registry = registry(&db).await;
    match db.kind {
        Kind::Postgres => postgres(&registry).await,
        Kind::MariaDb => mariadb(&registry).await,
        Kind::SqliteFile | Kind::SqliteMemory => sqlite(&registry).await,
    }
}

/// PostgreSQL: `pg_stat_activity` shows the session's backend `idle`, not
/// `idle in transaction`, while an empty session holds it.
async fn postgres(registry: &SqlConnectionRegistry) {
    let pid: i32 = scalar(
        &registry.connection().await.unwrap(),
        "SELECT pg_backend_pid() AS pid",
        "pid",
    )
    .await;
    let observer = common::maintenance_config(Kind::Postgres).unwrap();
    let observer = SqlConnectionRegistry::connect(observer).await.unwrap();
    let state = async || -> String {
        scalar(
            observer.engine(),
            &format!("SELECT state FROM pg_stat_activity WHERE pid = {pid}"),
            "state",
        )
        .await
    };

    let empty = registry.get().await.unwrap();
    assert_eq!(
        state().await,
        "idle",
        "an empty session began a transaction"
    );
    empty.commit().await.unwrap();
    empty_sessions(registry).await;
    assert_eq!(state().await, "idle");

    // Control: one statement is what begins the transaction.
    let busy = registry.get().await.unwrap();
    let same: i32 = scalar(&busy, "SELECT pg_backend_pid() AS pid", "pid").await;
    assert_eq!(same, pid, "the session is on the observed connection");
    assert_eq!(state().await, "idle in transaction");
    busy.commit().await.unwrap();
    assert_eq!(state().await, "idle");
}

/// MariaDB: the connection's own statement counters (`Com_begin`,
/// `Com_commit`, `Com_rollback`) do not move for empty sessions.
async fn mariadb(registry: &SqlConnectionRegistry) {
    async fn counters(registry: &SqlConnectionRegistry) -> (u64, i64, i64, i64) {
        let conn = registry.connection().await.unwrap();
        let status = |name: &str| {
            format!(
                "(SELECT CAST(VARIABLE_VALUE AS SIGNED) FROM information_schema.SESSION_STATUS \
                 WHERE VARIABLE_NAME = '{name}')"
            )
        };
        let sql = format!(
            "SELECT CONNECTION_ID() AS id, {} AS b, {} AS c, {} AS r",
            status("COM_BEGIN"),
            status("COM_COMMIT"),
            status("COM_ROLLBACK"),
        );
        let row = conn
            .query_one_raw(Statement::from_string(conn.get_database_backend(), sql))
            .await
            .unwrap()
            .unwrap();
        (
            row.try_get("", "id").unwrap(),
            row.try_get("", "b").unwrap(),
            row.try_get("", "c").unwrap(),
            row.try_get("", "r").unwrap(),
        )
    }

    let before = counters(registry).await;
    empty_sessions(registry).await;
    let after = counters(registry).await;
    assert_eq!(before.0, after.0, "still the same server connection");
    assert_eq!(
        (after.1, after.2, after.3),
        (before.1, before.2, before.3),
        "empty sessions sent BEGIN/COMMIT/ROLLBACK (begin, commit, rollback counts)"
    );

    // Control: a session that runs one statement sends BEGIN and COMMIT.
    registry
        .session(async |s| {
            s.execute_unprepared("SELECT 1").await?;
            Ok::<_, Error>(())
        })
        .await
        .unwrap();
    let control = counters(registry).await;
    assert_eq!(control.0, before.0);
    assert_eq!(
        (control.1, control.2),
        (after.1 + 1, after.2 + 1),
        "one BEGIN and one COMMIT"
    );
}

/// SQLite: a session whose first statement writes takes the write lock at
/// BEGIN; an empty session never sends BEGIN, so another connection can
/// still write while it is held.
async fn sqlite(registry: &SqlConnectionRegistry) {
    async fn write(conn: &Session, sql: &str) -> Result<(), String> {
        conn.execute_unprepared(sql)
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }
    let writer = registry.connection().await.unwrap();
    write(&writer, "CREATE TABLE marks (n INTEGER)")
        .await
        .unwrap();

    let empty = registry.get().await.unwrap();
    write(&writer, "INSERT INTO marks VALUES (1)")
        .await
        .expect("an empty session holds no lock");
    empty.commit().await.unwrap();

    // Control: a session that has written holds the write lock until it ends.
    let busy = registry.get().await.unwrap();
    write(&busy, "INSERT INTO marks VALUES (2)").await.unwrap();
    let blocked = write(&writer, "INSERT INTO marks VALUES (3)").await;
    assert!(
        blocked.as_ref().is_err_and(|e| e.contains("locked")),
        "{blocked:?}"
    );
    busy.rollback().await;
    write(&writer, "INSERT INTO marks VALUES (4)")
        .await
        .unwrap();
}
