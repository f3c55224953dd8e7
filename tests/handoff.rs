//! A session is whole or nothing, and nothing of it reaches the next user
//! of its connection: a cancelled savepoint is undone, never committed; a
//! MariaDB statement that commits implicitly is reported and never run
//! again; state set on the connection (`SET`, user variables, `PRAGMA`,
//! temporary tables, session locks) is gone for the next session; errors
//! that make a connection unfit close it. Every scenario runs on a pool of
//! one connection, so the next session gets the very connection the last
//! one used.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use common::{Kind, TestDb, item, proxy};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use sqlreg::{DbConfig, Error, Session, SqlConnectionRegistry};

on_every_backend!(
    a_cancelled_savepoint_is_undone_and_the_session_goes_on,
    a_savepoint_cancelled_mid_statement_is_undone,
    a_savepoint_cut_while_opening_is_never_what_a_later_undo_reaches,
    a_savepoint_whose_undo_is_cut_off_is_never_committed,
    a_sqlx_statement_cut_off_mid_round_trip_is_dealt_with,
    a_sqlx_statement_never_polled_sends_nothing,
    connection_state_does_not_reach_the_next_session,
    a_session_that_changes_nothing_keeps_its_connection,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_statement_cancelled_outside_a_transaction_closes_its_connection() {
    statement_cancelled_outside_a_transaction_closes_its_connection(Kind::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_statement_cancelled_outside_a_transaction_closes_its_connection() {
    statement_cancelled_outside_a_transaction_closes_its_connection(Kind::MariaDb).await;
}

/// A read session at READ COMMITTED runs without a transaction; a failing
/// statement on the bare `Session::sqlx()` connection is cut off after it
/// was sent, then a savepoint begins one. sqlx would hand the cut
/// statement's reply to that BEGIN as if it had failed, and the connection
/// would go back to the pool inside a transaction nobody knew of (the
/// hand-off fuzz found it, seed 1796479718580322966). The pending reply is
/// read first, and the pool's connection is idle and outside any transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_bare_sqlx_statement_cut_in_a_read_session_leaves_no_transaction() {
    let Some(db) = common::test_db(Kind::Postgres, "bare_cut_read") else {
        return;
    };
    let registry = one_connection(&db).await;
    registry
        .read_session(async |s| {
            {
                let mut conn = s.sqlx::<sqlx::Postgres>().await?;
                // Fails after 100 ms, so its reply cannot be back at the first poll.
                let failing = "DO $$ BEGIN PERFORM pg_sleep(0.1); RAISE EXCEPTION 'late'; END $$";
                let mut cut = std::pin::pin!(sqlx::query(failing).execute(&mut *conn));
                // Sent; its reply (an error) not read yet.
                assert!(futures_util::FutureExt::now_or_never(cut.as_mut()).is_none());
            }
            s.savepoint(async |s| exec(s, "SELECT 1").await).await
        })
        .await
        .expect("the read session goes on");
    let admin = SqlConnectionRegistry::connect(db.config.clone())
        .await
        .unwrap();
    let states = admin
        .session(async |s| {
            text(
                s,
                "SELECT COALESCE(string_agg(state, ','), '') FROM pg_stat_activity \
                 WHERE datname = current_database() AND pid <> pg_backend_pid()",
            )
            .await
        })
        .await
        .unwrap();
    assert!(
        !states.contains("in transaction"),
        "the pool's connection is in a transaction between sessions: {states}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_implicit_commit_is_reported_and_never_retried() {
    if let Some(db) = common::test_db(Kind::MariaDb, "implicit_commit") {
        implicit_commit_is_reported_and_never_retried(db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_work_after_an_implicit_commit_stays_one_unit() {
    if let Some(db) = common::test_db(Kind::MariaDb, "after_implicit_commit") {
        work_after_an_implicit_commit_stays_one_unit(db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_idle_in_transaction_timeout_closes_the_connection() {
    if let Some(db) = common::test_db(Kind::Postgres, "idle_timeout") {
        idle_in_transaction_timeout_closes_the_connection(db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_insert_or_rollback_ends_the_transaction() {
    if let Some(db) = common::test_db(Kind::SqliteFile, "or_rollback") {
        insert_or_rollback_ends_the_transaction(db).await;
    }
}

/// A registry on `db` whose pool holds exactly one connection.
async fn one_connection(db: &TestDb) -> SqlConnectionRegistry {
    one_connection_with(db.config.clone()).await
}

/// A registry on `config` whose pool holds exactly one connection.
async fn one_connection_with(mut config: DbConfig) -> SqlConnectionRegistry {
    config.session.pool_size = 1;
    config.session.max_overflow = 0;
    item::registry_with(config).await
}

/// Runs `sql` on `s`, for statements whose outcome is the point.
async fn exec(s: &Session, sql: &str) -> Result<(), Error> {
    s.execute_unprepared(sql)
        .await
        .map(drop)
        .map_err(Error::from)
}

/// The first column of the one row `sql` returns, as text.
async fn text(s: &Session, sql: &str) -> Result<String, Error> {
    let row = s
        .query_one_raw(Statement::from_string(s.get_database_backend(), sql))
        .await?
        .expect("one row");
    Ok(row.try_get_by_index::<String>(0)?)
}

/// The first column of the one row `sql` returns, as a number.
async fn number(s: &Session, sql: &str) -> Result<i64, Error> {
    common::server::number(s, sql).await
}

/// A statement that takes about a second on `backend`'s server.
fn slow_statement(backend: DbBackend) -> &'static str {
    match backend {
        DbBackend::Postgres => "SELECT pg_sleep(1)",
        DbBackend::MySql => "SELECT SLEEP(1)",
        // A recursive count that keeps SQLite's worker busy for a while.
        _ => {
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 30000000) \
             SELECT count(*) FROM n"
        }
    }
}

async fn a_cancelled_savepoint_is_undone_and_the_session_goes_on(db: TestDb) {
    let registry = one_connection(&db).await;
    registry
        .session(async |s| {
            item::insert(s, "a").await?;
            let cancelled = tokio::time::timeout(
                Duration::from_millis(100),
                s.savepoint(async |s| {
                    item::insert(s, "inner").await?;
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    Ok::<_, Error>(())
                }),
            )
            .await;
            assert!(cancelled.is_err(), "the savepoint should have been cut off");
            item::insert(s, "b").await?;
            Ok::<_, Error>(())
        })
        .await
        .expect("the session goes on after its savepoint was cancelled");
    let mut names = item::names(&registry).await;
    names.sort();
    assert_eq!(
        names,
        ["a", "b"],
        "the cancelled savepoint's row must not be committed"
    );
}

async fn a_savepoint_cancelled_mid_statement_is_undone(db: TestDb) {
    let registry = one_connection(&db).await;
    let outcome = registry
        .session(async |s| {
            item::insert(s, "a").await?;
            let slow = slow_statement(s.get_database_backend());
            let cancelled = tokio::time::timeout(
                Duration::from_millis(200),
                s.savepoint(async |s| {
                    item::insert(s, "inner").await?;
                    exec(s, slow).await
                }),
            )
            .await;
            assert!(cancelled.is_err(), "the savepoint should have been cut off");
            item::insert(s, "b").await?;
            Ok::<_, Error>(())
        })
        .await;
    went_on_unless_mariadb(&registry, db.kind, outcome).await;
}

/// A savepoint cut off while its `SAVEPOINT` was on the way is left on
/// the server (which ran it) but counted by no one; a later savepoint cut
/// off while its `RELEASE` was on the way can no longer be undone alone.
/// The session must then refuse to commit: undoing back to the stale
/// savepoint instead would throw away `b`, which the body was told was
/// done, and report the rest committed (what the fuzz found, seed
/// 1796379014712766924: savepoints were named by depth, so the two shared
/// a name). Each cut is certain: the reply is held back by a relay, or on
/// SQLite queued behind a slow statement still running on sqlx's worker.
/// On MariaDB, whose driver cannot go on after a cut, the first cut
/// already ends the session.
async fn a_savepoint_cut_while_opening_is_never_what_a_later_undo_reaches(db: TestDb) {
    let (registry, relay) = one_connection_relayed(&db).await;
    let releasing = AtomicBool::new(false);
    let outcome = registry
        .session(async |s| {
            item::insert(s, "a").await?;
            delay_reply_to(s, relay.as_ref(), "SAVEPOINT").await;
            let opening = tokio::time::timeout(
                Duration::from_millis(300),
                s.savepoint(async |_| Ok::<_, Error>(())),
            )
            .await;
            assert!(
                opening.is_err(),
                "the savepoint should be cut while opening"
            );
            item::insert(s, "b").await?;
            let cut = tokio::time::timeout(
                Duration::from_millis(300),
                s.savepoint(async |s| {
                    delay_reply_to(s, relay.as_ref(), "RELEASE").await;
                    releasing.store(true, Ordering::SeqCst);
                    Ok::<_, Error>(())
                }),
            )
            .await;
            assert!(cut.is_err(), "the savepoint should be cut while releasing");
            assert!(releasing.load(Ordering::SeqCst), "its body had finished");
            Ok::<_, Error>(())
        })
        .await;
    let err = outcome.expect_err("the last savepoint's work cannot be undone alone");
    let expected = match db.kind {
        Kind::MariaDb => "cut off by a cancellation",
        _ => "a savepoint of this session was cancelled",
    };
    assert!(err.to_string().contains(expected), "{err}");
    assert!(
        item::names(&registry).await.is_empty(),
        "nothing of the session is committed"
    );
}

/// A savepoint cut off while its `RELEASE` was on the way can no longer be
/// undone alone, which the next step's undo finds out — unless that step
/// is cut off in turn before the undo's reply is read. The session must
/// still refuse to commit: on SQLite, whose worker ran the failed undo
/// with no one to read its reply, the savepoint's work was committed.
async fn a_savepoint_whose_undo_is_cut_off_is_never_committed(db: TestDb) {
    let (registry, relay) = one_connection_relayed(&db).await;
    let outcome = registry
        .session(async |s| {
            item::insert(s, "a").await?;
            let releasing = tokio::time::timeout(
                Duration::from_millis(300),
                s.savepoint(async |s| {
                    item::insert(s, "inner").await?;
                    delay_reply_to(s, relay.as_ref(), "RELEASE").await;
                    Ok::<_, Error>(())
                }),
            )
            .await;
            assert!(
                releasing.is_err(),
                "the savepoint should be cut while releasing"
            );
            if let Some(relay) = &relay {
                // The RELEASE's reply comes in; the next step reads it, then undoes.
                tokio::time::sleep(Duration::from_secs(1)).await;
                relay.hold_reply_to_next("ROLLBACK", Duration::from_secs(1));
            } // SQLite's worker is still on the slow statement: the undo queues.
            let next = tokio::time::timeout(Duration::from_millis(300), item::insert(s, "b")).await;
            // MariaDB's driver cannot go on after the first cut: the session ends there.
            let Ok(inserted) = next else {
                return Ok::<_, Error>(());
            };
            inserted?;
            panic!("the next step should be cut off while undoing the savepoint");
        })
        .await;
    outcome.expect_err("the savepoint's work cannot be undone alone");
    assert!(
        item::names(&registry).await.is_empty(),
        "nothing of the session is committed"
    );
}

/// A registry of one connection on `db`, through a relay that can hold a
/// reply back (the relay; none for SQLite).
async fn one_connection_relayed(
    db: &TestDb,
) -> (SqlConnectionRegistry, Option<proxy::CountingProxy>) {
    if matches!(db.kind, Kind::SqliteFile | Kind::SqliteMemory) {
        return (one_connection(db).await, None);
    }
    let relay = proxy::CountingProxy::start(&db.config).await;
    let registry = one_connection_with(relay.route(&db.config)).await;
    (registry, Some(relay))
}

/// Makes the reply to the session's next request holding `word` come late
/// enough to cut it off with certainty: held back by `relay`, or on SQLite
/// queued behind a slow statement still running on sqlx's worker.
async fn delay_reply_to(s: &Session, relay: Option<&proxy::CountingProxy>, word: &'static str) {
    match relay {
        Some(relay) => relay.hold_reply_to_next(word, Duration::from_secs(1)),
        None => {
            let slow = slow_statement(s.get_database_backend());
            let cut = tokio::time::timeout(Duration::from_millis(50), exec(s, slow)).await;
            assert!(cut.is_err(), "the slow statement should have been cut off");
        }
    }
}

/// After a round trip cut off mid-statement between the rows `a` and `b`:
/// the session went on and committed both — except on MariaDB, whose sqlx
/// driver cannot read a connection whose reply was cut off, where the
/// session says so and keeps nothing.
async fn went_on_unless_mariadb(
    registry: &SqlConnectionRegistry,
    kind: Kind,
    outcome: Result<(), Error>,
) {
    let mut names = item::names(registry).await;
    names.sort();
    if kind == Kind::MariaDb {
        let err = outcome.expect_err("the session cannot go on");
        assert!(
            err.to_string().contains("cut off by a cancellation"),
            "{err}"
        );
        assert!(names.is_empty(), "{names:?}");
    } else {
        outcome.expect("the session goes on after its round trip was cut off");
        assert_eq!(names, ["a", "b"]);
    }
}

/// A statement run with the session's `SqlxConnection` as the executor is
/// cut off mid-round-trip and the body goes on: as with sqlreg's own
/// statements, PostgreSQL's reply is read first and SQLite's worker
/// finished it; on MariaDB, whose driver cannot read such a connection
/// again, the session refuses to go on and commits nothing.
async fn a_sqlx_statement_cut_off_mid_round_trip_is_dealt_with(db: TestDb) {
    let registry = one_connection(&db).await;
    let outcome = registry
        .session(async |s| {
            item::insert(s, "a").await?;
            let slow = slow_statement(s.get_database_backend());
            let cut =
                tokio::time::timeout(Duration::from_millis(200), raw_sqlx(s, db.kind, slow, true))
                    .await;
            assert!(cut.is_err(), "the statement should have been cut off");
            item::insert(s, "b").await?;
            Ok::<_, Error>(())
        })
        .await;
    went_on_unless_mariadb(&registry, db.kind, outcome).await;
    // The connection the next session gets works.
    registry
        .session(async |s| item::insert(s, "next").await.map(drop))
        .await
        .expect("the next session works");
}

/// A statement future from the session's `SqlxConnection` dropped before
/// its first poll sent nothing, so the session goes on as if it had never
/// been made (on MariaDB too, where a statement cut off mid-round-trip
/// ends the session).
async fn a_sqlx_statement_never_polled_sends_nothing(db: TestDb) {
    let registry = one_connection(&db).await;
    registry
        .session(async |s| {
            item::insert(s, "a").await?;
            macro_rules! dropped_unpolled {
                ($db:ty) => {{
                    let mut conn = s.sqlx::<$db>().await?;
                    // The executor's own method: it builds the round trip
                    // at once (`Query::execute` would not even do that).
                    drop(sqlx::Executor::execute(&mut conn, "SELECT 1"));
                }};
            }
            match db.kind {
                Kind::Postgres => dropped_unpolled!(sqlx::Postgres),
                Kind::MariaDb => dropped_unpolled!(sqlx::MySql),
                Kind::SqliteFile | Kind::SqliteMemory => dropped_unpolled!(sqlx::Sqlite),
            }
            item::insert(s, "b").await?;
            Ok::<_, Error>(())
        })
        .await
        .expect("the session goes on");
    let mut names = item::names(&registry).await;
    names.sort();
    assert_eq!(names, ["a", "b"]);
}

/// What a fresh connection of the registry shows for the settings the
/// scenario changes, read in a session.
async fn connection_state(s: &Session, kind: Kind) -> Result<Vec<String>, Error> {
    Ok(match kind {
        Kind::Postgres => vec![
            text(s, "SELECT current_setting('search_path')").await?,
            text(s, "SELECT current_setting('application_name')").await?,
            number(
                s,
                "SELECT count(*) FROM pg_class WHERE relpersistence = 't'",
            )
            .await?
            .to_string(),
            number(
                s,
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' \
                 AND pid = pg_backend_pid()",
            )
            .await?
            .to_string(),
            number(s, "SELECT count(*) FROM pg_listening_channels()")
                .await?
                .to_string(),
        ],
        Kind::MariaDb => vec![
            text(s, "SELECT CAST(COALESCE(@tenant, 'unset') AS CHAR)").await?,
            number(s, "SELECT @@SESSION.sql_mode = @@GLOBAL.sql_mode")
                .await?
                .to_string(),
            number(
                s,
                "SELECT CAST(COALESCE(IS_USED_LOCK('sqlreg_test_lock'), 0) AS SIGNED)",
            )
            .await?
            .to_string(),
        ],
        Kind::SqliteFile | Kind::SqliteMemory => vec![
            number(s, "PRAGMA foreign_keys").await?.to_string(),
            number(s, "SELECT count(*) FROM temp.sqlite_master")
                .await?
                .to_string(),
        ],
    })
}

/// Statements that change the connection beyond the transaction, as a
/// multi-tenant application runs them per request.
fn state_changes(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Postgres => &[
            "CREATE SCHEMA IF NOT EXISTS tenant_a",
            "SET search_path TO tenant_a",
            "SELECT set_config('application_name', 'tenant_a', false)",
            "CREATE TEMP TABLE scratch (id int)",
            "SELECT pg_advisory_lock(42)",
            "LISTEN tenant_events",
        ],
        Kind::MariaDb => &[
            "SET @tenant = 'a'",
            "SET SESSION sql_mode = ''",
            "SELECT GET_LOCK('sqlreg_test_lock', 0)",
        ],
        Kind::SqliteFile | Kind::SqliteMemory => &[
            "PRAGMA foreign_keys = OFF",
            "CREATE TEMP TABLE scratch (id)",
        ],
    }
}

async fn connection_state_does_not_reach_the_next_session(db: TestDb) {
    let registry = one_connection(&db).await;
    let fresh = registry
        .session(async |s| connection_state(s, db.kind).await)
        .await
        .unwrap();
    // Through every form: a write session, an autocommit connection, and
    // plain sqlx, on the bare connection (which sqlreg cannot read) and
    // with the session's `SqlxConnection` as the executor (which it reads).
    for form in ["session", "connection", "sqlx", "sqlx executor"] {
        let changes = state_changes(db.kind);
        match form {
            "session" => registry
                .session(async |s| {
                    for sql in changes {
                        exec(s, sql).await?;
                    }
                    Ok::<_, Error>(())
                })
                .await
                .unwrap(),
            "connection" => {
                let s = registry.connection().await.unwrap();
                for sql in changes {
                    exec(&s, sql).await.unwrap();
                }
                drop(s);
            }
            _ => registry
                .session(async |s| {
                    for sql in changes {
                        raw_sqlx(s, db.kind, sql, form == "sqlx executor").await?;
                    }
                    Ok::<_, Error>(())
                })
                .await
                .unwrap(),
        }
        let next = registry
            .session(async |s| connection_state(s, db.kind).await)
            .await
            .unwrap();
        assert_eq!(
            next, fresh,
            "state set through {form} reached the next session"
        );
        let read = registry
            .read_session(async |s| connection_state(s, db.kind).await)
            .await
            .unwrap();
        assert_eq!(
            read, fresh,
            "state set through {form} reached the next read session"
        );
    }
}

/// Runs `sql` through plain sqlx on the session's own connection: with the
/// session's `SqlxConnection` as the executor, or on the bare connection.
async fn raw_sqlx(s: &Session, kind: Kind, sql: &str, executor: bool) -> Result<(), Error> {
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    macro_rules! on {
        ($db:ty) => {{
            let mut conn = s.sqlx::<$db>().await?;
            if executor {
                sqlx::raw_sql(sql).execute(&mut conn).await.map(drop)
            } else {
                sqlx::raw_sql(sql).execute(&mut *conn).await.map(drop)
            }
        }};
    }
    match kind {
        Kind::Postgres => on!(sqlx::Postgres),
        Kind::MariaDb => on!(sqlx::MySql),
        Kind::SqliteFile | Kind::SqliteMemory => on!(sqlx::Sqlite),
    }
    .map_err(|err| Error::Query(sea_orm::DbErr::Custom(err.to_string())))
}

async fn a_session_that_changes_nothing_keeps_its_connection(db: TestDb) {
    let registry = one_connection(&db).await;
    for n in 0..5 {
        registry
            .session(async |s| {
                item::insert(s, &format!("row{n}")).await?;
                exec(s, "SELECT 1").await
            })
            .await
            .unwrap();
    }
    let stats = registry.stats();
    assert_eq!(stats.evicted, 0, "{stats:?}");
    // The engine pool of sea-orm may hold a connection of its own.
    let sessions = registry.stats().created;
    registry
        .session(async |s| {
            for sql in state_changes(db.kind) {
                exec(s, sql).await?;
            }
            Ok::<_, Error>(())
        })
        .await
        .unwrap();
    registry
        .session(async |s| item::insert(s, "after").await.map(drop))
        .await
        .unwrap();
    let reopened = registry.stats().created - sessions;
    match db.kind {
        // Reset in place (one round trip), not reopened.
        Kind::Postgres => assert_eq!(reopened, 0),
        // No reset that keeps the driver's own state: closed and reopened.
        _ => assert_eq!(reopened, 1),
    }
}

async fn statement_cancelled_outside_a_transaction_closes_its_connection(kind: Kind) {
    let Some(db) = common::test_db(kind, "cancelled_autocommit") else {
        return;
    };
    let registry = one_connection(&db).await;
    let pid_sql = match kind {
        Kind::Postgres => "SELECT CAST(pg_backend_pid() AS bigint)",
        _ => "SELECT CAST(CONNECTION_ID() AS SIGNED)",
    };
    let before = {
        let s = registry.connection().await.unwrap();
        let pid = number(&s, pid_sql).await.unwrap();
        let cancelled = tokio::time::timeout(
            Duration::from_millis(100),
            exec(&s, slow_statement(s.get_database_backend())),
        )
        .await;
        assert!(cancelled.is_err());
        pid
    };
    let s = registry.connection().await.unwrap();
    let after = number(&s, pid_sql).await.unwrap();
    assert_ne!(
        before, after,
        "a connection with a reply pending went back to the pool"
    );
}

/// A second connection holds a row lock, so the session's update waits
/// out `innodb_lock_wait_timeout` (1 s) and fails with 1205, a conflict
/// the retrying form would normally run again.
async fn implicit_commit_is_reported_and_never_retried(db: TestDb) {
    let registry = one_connection(&db).await;
    let blocker = SqlConnectionRegistry::connect(db.config.clone())
        .await
        .unwrap();
    registry
        .session(async |s| {
            exec(s, "CREATE TABLE hot (id int PRIMARY KEY, n int)").await?;
            exec(s, "INSERT INTO hot VALUES (1, 1)").await
        })
        .await
        .unwrap();
    let holder = blocker.get().await.unwrap();
    exec(&holder, "UPDATE hot SET n = 2 WHERE id = 1")
        .await
        .unwrap();

    let runs = AtomicU32::new(0);
    let outcome = registry
        .transaction(async |s| {
            runs.fetch_add(1, Ordering::SeqCst);
            exec(s, "SET SESSION innodb_lock_wait_timeout = 1").await?;
            item::insert(s, &format!("audit{}", runs.load(Ordering::SeqCst))).await?;
            exec(s, "CREATE TABLE IF NOT EXISTS ddl_made (id int)").await?;
            exec(s, "UPDATE hot SET n = 3 WHERE id = 1").await
        })
        .await;
    holder.rollback().await;
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "the body must not run again: {outcome:?}"
    );
    let err = outcome.expect_err("the update timed out");
    match &err {
        Error::PartlyCommitted { statement, cause } => {
            assert_eq!(statement, "CREATE TABLE IF NOT EXISTS ddl_made");
            let cause = cause.as_deref().expect("the lock wait timeout");
            assert!(cause.to_string().contains("1205"), "{cause}");
        }
        other => panic!("expected PartlyCommitted, got {other}"),
    }
    assert!(!err.is_transient());
    assert!(err.to_string().contains("partly committed"), "{err}");
    let mut names = item::names(&registry).await;
    names.sort();
    assert_eq!(names, ["audit1"], "what the DDL committed stays, once");
}

async fn work_after_an_implicit_commit_stays_one_unit(db: TestDb) {
    let registry = one_connection(&db).await;
    let err = registry
        .session(async |s| {
            item::insert(s, "before").await?;
            exec(s, "CREATE TABLE IF NOT EXISTS ddl_made (id int)").await?;
            item::insert(s, "after").await?;
            Err::<(), _>(Error::NotFound("the body gives up".into()))
        })
        .await
        .expect_err("the body failed");
    assert!(
        matches!(&err, Error::PartlyCommitted { statement, cause: None }
            if statement == "CREATE TABLE IF NOT EXISTS ddl_made"),
        "{err}"
    );
    assert_eq!(
        item::names(&registry).await,
        ["before"],
        "the row after the DDL belongs to a transaction that was rolled back"
    );
    // A session whose body succeeds commits both parts.
    registry
        .session(async |s| {
            exec(s, "DROP TABLE IF EXISTS ddl_made").await?;
            item::insert(s, "kept").await.map(drop)
        })
        .await
        .unwrap();
    let mut names = item::names(&registry).await;
    names.sort();
    assert_eq!(names, ["before", "kept"]);
}

async fn idle_in_transaction_timeout_closes_the_connection(db: TestDb) {
    let registry = one_connection(&db).await;
    let outcome = registry
        .session(async |s| {
            exec(s, "SET LOCAL idle_in_transaction_session_timeout = '200ms'").await?;
            item::insert(s, "lost").await?;
            tokio::time::sleep(Duration::from_millis(800)).await;
            item::insert(s, "too late").await.map(drop)
        })
        .await;
    let err = outcome.expect_err("the server ended the connection");
    assert!(
        err.to_string().contains("25P03") || err.to_string().contains("terminat"),
        "{err}"
    );
    assert_eq!(
        registry.stats().evicted,
        1,
        "the dead connection must not be pooled"
    );
    registry
        .session(async |s| item::insert(s, "next").await.map(drop))
        .await
        .expect("the next session gets a working connection");
    assert_eq!(item::names(&registry).await, ["next"]);
}

async fn insert_or_rollback_ends_the_transaction(db: TestDb) {
    let registry = one_connection(&db).await;
    registry
        .session(async |s| item::insert(s, "taken").await.map(drop))
        .await
        .unwrap();
    let outcome = registry
        .session(async |s| {
            item::insert(s, "a").await?;
            let refused = exec(
                s,
                "INSERT OR ROLLBACK INTO items (name, qty) VALUES ('taken', 1)",
            )
            .await;
            assert!(refused.is_err(), "the unique name is taken");
            // The body ignores the failure and goes on.
            let after = item::insert(s, "c").await;
            assert!(
                after.is_err(),
                "nothing may run after the rollback: {after:?}"
            );
            Ok::<_, Error>(())
        })
        .await;
    let err = outcome.expect_err("nothing can be committed");
    assert!(matches!(err, Error::Commit(_)), "{err}");
    assert_eq!(item::names(&registry).await, ["taken"]);
}

/// A write refused because the server only reads — what a demoted primary
/// answers — closes the connection instead of pooling it (the failover
/// monitor is told at the same time), and the session reports the refusal.
/// The test script's PostgreSQL standby, in recovery, stands in for a
/// demoted primary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_write_refused_as_read_only_closes_the_connection() {
    if !common::server_available(Kind::Postgres, "a_write_refused_as_read_only") {
        return;
    }
    let yaml = "db:
  create_db: false
  url: {protocol: postgresql, username: '${oc.env:SQLREG_TEST_USER}',
         password: '${oc.env:SQLREG_TEST_PASSWORD}', host: 127.0.0.1,
         port: '${oc.env:SQLREG_TEST_PG_STANDBY_PORT}',
         file: '${oc.env:SQLREG_TEST_DATABASE,sqlreg_test}'}
";
    let config = sqlreg::Config::from_yaml_str(yaml)
        .unwrap()
        .at("db")
        .unwrap();
    let registry = SqlConnectionRegistry::connect(config).await.unwrap();
    let err = registry
        .session(async |s| exec(s, "SELECT 1").await)
        .await
        .expect_err("a server in recovery refuses the write session");
    let message = err.to_string();
    assert!(
        message.contains("read-write mode during recovery"),
        "{message}"
    );
    assert_eq!(
        registry.stats().evicted,
        1,
        "the connection is closed, not pooled: {message}"
    );
}

/// The same on MariaDB: a user without `READ ONLY ADMIN` (which the test
/// user has, through ALL PRIVILEGES) is refused a write by the read-only
/// replica with 1290, as by a demoted primary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_a_write_refused_as_read_only_closes_the_connection() {
    let Some(admin_config) = common::maintenance_config(Kind::MariaDb) else {
        return;
    };
    let admin = SqlConnectionRegistry::connect(admin_config).await.unwrap();
    let user = format!("ro{}", std::process::id());
    let password = "Read-only-user-1";
    let database = std::env::var("SQLREG_TEST_DATABASE").unwrap_or_else(|_| "sqlreg_test".into());
    let admin_sql = async |sql: String| {
        let s = admin.connection().await.unwrap();
        s.execute_unprepared(&sql).await.unwrap();
    };
    admin_sql(format!("DROP USER IF EXISTS '{user}'@'127.0.0.1'")).await;
    admin_sql(format!(
        "CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY '{password}'; \
         GRANT ALL ON `{database}`.* TO '{user}'@'127.0.0.1'"
    ))
    .await;
    let yaml = format!(
        "db:
  create_db: false
  url: {{protocol: mariadb, username: {user}, password: {password}, host: 127.0.0.1,
         port: '${{oc.env:SQLREG_TEST_MARIADB_REPLICA_PORT}}', file: {database}}}
"
    );
    let config = sqlreg::Config::from_yaml_str(&yaml)
        .unwrap()
        .at("db")
        .unwrap();
    // The user reaches the replica through replication.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let registry = loop {
        match SqlConnectionRegistry::connect(config.clone()).await {
            Ok(registry) => break registry,
            Err(_) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(err) => panic!("the replica never learned of the user: {err}"),
        }
    };
    let err = registry
        .session(async |s| exec(s, "CREATE TABLE refused_on_the_replica (id int)").await)
        .await
        .expect_err("the read-only replica refuses the write");
    let message = err.to_string();
    assert!(
        message.contains("1290") || message.contains("read-only"),
        "{message}"
    );
    assert_eq!(
        registry.stats().evicted,
        1,
        "the connection is closed, not pooled: {message}"
    );
    registry.close().await;
    admin_sql(format!("DROP USER IF EXISTS '{user}'@'127.0.0.1'")).await;
}
