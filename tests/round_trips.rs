//! Round trips per kind of session, counted on the wire by a relay between
//! the registry and the real server (tests/common/proxy.rs) — for SQLite,
//! the statements its connection runs, one worker hop each — so a later
//! change cannot add one silently. Each figure is what the session sends
//! after its connection is checked out, release included. These are the
//! figures of the README's session table.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use common::proxy::{CountingProxy, relayed, requests};
use common::{Kind, TestDb, eventually};
use sea_orm::ConnectionTrait;
use sqlreg::{Error, Isolation, Session, SqlConnectionRegistry};

on_every_backend!(
    round_trips_per_session_kind,
    read_sessions_without_begin_still_refuse_writes
);

/// What each kind of session costs, in the order they run on one
/// connection (the order matters: some change the connection's default
/// access mode for the next).
#[derive(Debug, PartialEq)]
struct Figures {
    empty: u64,
    write: u64,
    read: u64,
    read_two_statements: u64,
    read_committed_two_statements: u64,
    write_after_read_committed: u64,
    repeatable_read: u64,
    read_savepoint: u64,
    first_autocommit: u64,
    autocommit: u64,
    read_after_autocommit: u64,
    sqlx_write: u64,
    sqlx_write_bare: u64,
    sqlx_read: u64,
}

/// The README's table, per backend.
fn expected(kind: Kind) -> Figures {
    match kind {
        Kind::Postgres => Figures {
            empty: 0,
            write: 3,                         // BEGIN READ WRITE, statement, COMMIT
            read: 1,                          // READ COMMITTED: the statement alone
            read_two_statements: 2,           // each alone
            read_committed_two_statements: 2, // the same, asked for
            write_after_read_committed: 3,
            repeatable_read: 3,       // BEGIN … READ ONLY, statement, COMMIT
            read_savepoint: 5,        // BEGIN, SAVEPOINT, statement, RELEASE, COMMIT
            first_autocommit: 2,      // the connection made writable once, then the statement
            autocommit: 1,            // the statement alone
            read_after_autocommit: 2, // the connection made read-only again, then the statement
            sqlx_write: 3,            // through `Session::sqlx()` as the executor: as `write`
            sqlx_write_bare: 4,       // on the bare connection: `SELECT 1` before COMMIT
            sqlx_read: 1,             // as `read`: the statement alone
        },
        Kind::MariaDb => Figures {
            empty: 0,
            write: 3,               // START TRANSACTION READ WRITE, statement, COMMIT
            read: 3,                // REPEATABLE READ: START TRANSACTION READ ONLY, …, COMMIT
            read_two_statements: 4, // sharing the transaction's snapshot
            read_committed_two_statements: 3, // the connection made read-only, then each alone
            write_after_read_committed: 4, // made writable again (DDL runs outside), then 3
            repeatable_read: 3,
            read_savepoint: 5,
            first_autocommit: 1, // MariaDB connections are writable already
            autocommit: 1,
            read_after_autocommit: 3,
            sqlx_write: 3,
            sqlx_write_bare: 4, // `SELECT @@in_transaction` before COMMIT
            sqlx_read: 3,
        },
        // Worker hops: statements SQLite ran.
        Kind::SqliteFile | Kind::SqliteMemory => Figures {
            empty: 0,
            write: 3,                         // BEGIN IMMEDIATE, statement, COMMIT
            read: 3,                          // BEGIN (deferred), statement, COMMIT
            read_two_statements: 4,           // one snapshot for both
            read_committed_two_statements: 2, // asked for: each alone
            write_after_read_committed: 3,
            repeatable_read: 3,
            read_savepoint: 5,
            first_autocommit: 1,
            autocommit: 1,
            read_after_autocommit: 3,
            sqlx_write: 3,
            sqlx_write_bare: 3, // SQLite has nothing to ask: its rare rollbacks show at COMMIT
            sqlx_read: 3,
        },
    }
}

/// Counts what the client sends: requests on the wire through the relay,
/// or for SQLite the statements its connection runs (SQLite's own trace),
/// until the connection is back in the pool (a read session's COMMIT is
/// sent after the session returned).
enum Counter {
    Wire(CountingProxy),
    Sqlite(Arc<AtomicU64>, SqlConnectionRegistry),
}

impl Counter {
    async fn count(&self, work: impl AsyncFnOnce()) -> u64 {
        match self {
            Self::Wire(proxy) => requests(proxy, work).await,
            Self::Sqlite(statements, registry) => {
                let before = statements.load(Ordering::SeqCst);
                work().await;
                let back = || registry.stats().idle == registry.stats().size;
                assert!(
                    eventually(back).await,
                    "the connection came back to the pool"
                );
                statements.load(Ordering::SeqCst) - before
            }
        }
    }
}

async fn round_trips_per_session_kind(db: TestDb) {
    let (registry, counter) = match db.kind {
        Kind::Postgres | Kind::MariaDb => {
            let (registry, proxy) = relayed(&db).await;
            (registry, Counter::Wire(proxy))
        }
        Kind::SqliteFile | Kind::SqliteMemory => {
            let mut config = db.config.clone();
            config.session.pool_size = 1;
            config.session.max_overflow = 0;
            let registry = SqlConnectionRegistry::connect(config).await.unwrap();
            let statements = sqlite_trace::install(&registry).await;
            (registry.clone(), Counter::Sqlite(statements, registry))
        }
    };
    let statements = |n: usize| {
        async move |s: &Session| {
            for _ in 0..n {
                s.execute_unprepared("SELECT 1").await?;
            }
            Ok::<_, Error>(())
        }
    };
    let session = async |n| registry.session(statements(n)).await.unwrap();
    let read = async |n| registry.read_session(statements(n)).await.unwrap();
    let at = async |level, n| {
        let options = registry.isolation(level);
        options.read_session(statements(n)).await.unwrap();
    };
    let autocommit = async || {
        let s = registry.connection().await.unwrap();
        statements(1)(&s).await.unwrap();
    };
    let sqlx_write = async |bare| {
        registry
            .session(async |s| select_1_through_sqlx(s, db.kind, bare).await)
            .await
            .unwrap();
    };
    // A statement's first run on a connection prepares it (a round trip of
    // its own on PostgreSQL and MariaDB; MariaDB's `SELECT @@in_transaction`
    // too): not what is counted.
    sqlx_write(false).await;
    sqlx_write(true).await;
    let figures = Figures {
        empty: counter.count(async || session(0).await).await,
        write: counter.count(async || session(1).await).await,
        read: counter.count(async || read(1).await).await,
        read_two_statements: counter.count(async || read(2).await).await,
        read_committed_two_statements: counter
            .count(async || at(Isolation::ReadCommitted, 2).await)
            .await,
        write_after_read_committed: counter.count(async || session(1).await).await,
        repeatable_read: counter
            .count(async || at(Isolation::RepeatableRead, 1).await)
            .await,
        read_savepoint: counter
            .count(async || {
                registry
                    .read_session(async |s| s.savepoint(statements(1)).await)
                    .await
                    .unwrap();
            })
            .await,
        first_autocommit: counter.count(async || autocommit().await).await,
        autocommit: counter.count(async || autocommit().await).await,
        read_after_autocommit: counter.count(async || read(1).await).await,
        sqlx_write: counter.count(async || sqlx_write(false).await).await,
        sqlx_write_bare: counter.count(async || sqlx_write(true).await).await,
        sqlx_read: counter
            .count(async || {
                registry
                    .read_session(async |s| select_1_through_sqlx(s, db.kind, false).await)
                    .await
                    .unwrap();
            })
            .await,
    };
    println!("{:?}: {figures:?}", db.kind);
    assert_eq!(figures, expected(db.kind));
}

/// `SELECT 1` with sqlx on the session's own connection: `Session::sqlx()`
/// as the executor, or the bare connection from `sqlx_stateless()` (out of
/// sqlreg's sight, but promised to leave nothing for a reset).
async fn select_1_through_sqlx(s: &Session, kind: Kind, bare: bool) -> Result<(), Error> {
    macro_rules! on {
        ($db:ty) => {
            if bare {
                let mut conn = s.sqlx_stateless::<$db>().await?;
                sqlx::query("SELECT 1").execute(&mut *conn).await?;
            } else {
                sqlx::query("SELECT 1")
                    .execute(&mut s.sqlx::<$db>().await?)
                    .await?;
            }
        };
    }
    match kind {
        Kind::Postgres => on!(sqlx::Postgres),
        Kind::MariaDb => on!(sqlx::MySql),
        Kind::SqliteFile | Kind::SqliteMemory => on!(sqlx::Sqlite),
    }
    Ok(())
}

/// SQLite's statement trace on the one connection of a registry: every
/// statement the connection starts (BEGIN and COMMIT included) adds one —
/// for sqlx, one worker hop each.
mod sqlite_trace {
    use std::ffi::{c_int, c_uint, c_void};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use libsqlite3_sys as ffi;
    use sqlreg::SqlConnectionRegistry;

    /// Called by SQLite at the start of every statement.
    unsafe extern "C" fn started(
        _event: c_uint,
        counter: *mut c_void,
        _statement: *mut c_void,
        _sql: *mut c_void,
    ) -> c_int {
        // SAFETY: `counter` is the `AtomicU64` leaked by `install`, never freed.
        unsafe { &*counter.cast::<AtomicU64>() }.fetch_add(1, Ordering::SeqCst);
        0
    }

    /// Installs the trace on the registry's only connection.
    pub async fn install(registry: &SqlConnectionRegistry) -> Arc<AtomicU64> {
        let counter = Arc::new(AtomicU64::new(0));
        let leaked = Arc::into_raw(Arc::clone(&counter))
            .cast_mut()
            .cast::<c_void>();
        let session = registry.connection().await.unwrap();
        let mut conn = session.sqlx_stateless::<sqlx::Sqlite>().await.unwrap();
        let mut handle = conn.lock_handle().await.unwrap();
        // SAFETY: the handle is this connection's open database; the
        // callback only reads the counter `leaked` points to, which lives
        // for the rest of the process.
        let rc = unsafe {
            ffi::sqlite3_trace_v2(
                handle.as_raw_handle().as_ptr(),
                ffi::SQLITE_TRACE_STMT as c_uint,
                Some(started),
                leaked,
            )
        };
        assert_eq!(rc, ffi::SQLITE_OK);
        counter
    }
}

/// A read session that skips BEGIN runs on a connection where the server
/// itself refuses writes, whatever the statement.
async fn read_sessions_without_begin_still_refuse_writes(db: TestDb) {
    if matches!(db.kind, Kind::SqliteFile | Kind::SqliteMemory) {
        return; // SQLite does not enforce read-only access (see the README)
    }
    let registry = SqlConnectionRegistry::connect(db.config.clone())
        .await
        .unwrap();
    let table = "refused_outside_transactions";
    registry
        .session(async |s| {
            s.execute_unprepared(&format!("CREATE TABLE {table} (id INT PRIMARY KEY)"))
                .await?;
            Ok::<_, Error>(())
        })
        .await
        .unwrap();
    for level in [None, Some(Isolation::ReadCommitted)] {
        let options = match level {
            Some(level) => registry.isolation(level),
            None => registry.options(),
        };
        let refused = options
            .read_session(async |s| {
                s.execute_unprepared(&format!("INSERT INTO {table} VALUES (1)"))
                    .await?;
                Ok::<_, Error>(())
            })
            .await;
        let message = refused.expect_err("a write in a read session").to_string();
        assert!(
            message.contains("read-only") || message.contains("READ ONLY"),
            "{level:?}: {message}"
        );
    }
    // An autocommit connection writes, and a read session after it on the
    // same connection is refused again.
    let s = registry.connection().await.unwrap();
    s.execute_unprepared(&format!("INSERT INTO {table} VALUES (2)"))
        .await
        .unwrap();
    drop(s);
    let refused = registry
        .read_session(async |s| {
            s.execute_unprepared(&format!("INSERT INTO {table} VALUES (3)"))
                .await?;
            Ok::<_, Error>(())
        })
        .await;
    assert!(refused.is_err(), "a read session after an autocommit one");
    let rows = registry
        .read_session(async |s| {
            let rows = s
                .query_all_raw(sea_orm::Statement::from_string(
                    s.get_database_backend(),
                    format!("SELECT id FROM {table}"),
                ))
                .await?;
            Ok::<_, Error>(rows.len())
        })
        .await
        .unwrap();
    assert_eq!(rows, 1, "only the autocommit insert is there");
}
