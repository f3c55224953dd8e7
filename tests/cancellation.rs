//! Cancellation fuzz: 10,000 sessions, each cut off by a random timeout of
//! 0–3 ms, mixing reads and writes on a pool of 4, half of them through the
//! plain `session` form and half through the retrying `transaction` form
//! (whose cancellation rules hold for every attempt). Afterwards nothing is left
//! inside a transaction, the pool is within its bounds, and exactly the rows
//! of sessions that reported a commit (plus possibly those cut off during
//! COMMIT itself, whose fate no client can know) are stored.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::item;
use common::{Kind, TestDb};
use sea_orm::{ConnectionTrait, Statement};
use sqlreg::{Error, Session, SqlConnectionRegistry};

on_every_backend!(cancelled_sessions_leave_no_transaction_and_no_stray_rows);

const SESSIONS: usize = 10_000;
const TASKS: usize = 4;

/// What became of one session.
#[derive(Clone, Copy, PartialEq)]
enum Fate {
    /// A read, or never started.
    Nothing,
    /// `session()` returned `Ok`: its row must be stored.
    Committed,
    /// Cut off before its body finished: its row must not be stored.
    CancelledBeforeCommit,
    /// Cut off after its body finished, i.e. during COMMIT: either way is right.
    CancelledDuringCommit,
}

/// A small xorshift generator: reproducible timeouts without a dependency.
struct Random(u64);

impl Random {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound
    }
}

async fn run_task(registry: SqlConnectionRegistry, task: usize) -> Vec<(String, Fate)> {
    let mut random = Random(0x9E37_79B9_7F4A_7C15 ^ (task as u64 + 1));
    let mut fates = Vec::new();
    for n in (task..SESSIONS).step_by(TASKS) {
        let name = format!("c{n}");
        let writes = n % 3 != 0;
        let body_done = Arc::new(AtomicBool::new(false));
        let timeout = Duration::from_micros(random.below(3_000));
        let body = async |s: &Session| {
            if writes {
                item::insert(s, &name).await?;
            } else {
                item::count_on(s).await;
            }
            body_done.store(true, Ordering::SeqCst);
            Ok::<_, Error>(())
        };
        let outcome = if n % 2 == 0 {
            tokio::time::timeout(timeout, registry.session(body)).await
        } else {
            tokio::time::timeout(timeout, registry.transaction(body)).await
        };
        let fate = match outcome {
            Ok(Ok(())) => Fate::Committed,
            Ok(Err(err)) => panic!("session {n} failed instead of being cancelled: {err}"),
            Err(_) if body_done.load(Ordering::SeqCst) => Fate::CancelledDuringCommit,
            Err(_) => Fate::CancelledBeforeCommit,
        };
        if writes {
            fates.push((name, fate));
        } else {
            fates.push((name, Fate::Nothing));
        }
    }
    fates
}

/// Connections of this test's database still inside a transaction.
async fn open_transactions(db: &TestDb, observer: &SqlConnectionRegistry) -> i64 {
    let sql = match db.kind {
        Kind::Postgres => format!(
            "SELECT COUNT(*) AS n FROM pg_stat_activity \
             WHERE datname = '{}' AND state LIKE 'idle in transaction%'",
            db.name
        ),
        Kind::MariaDb => format!(
            "SELECT COUNT(*) AS n FROM information_schema.innodb_trx t \
             JOIN information_schema.processlist p ON p.id = t.trx_mysql_thread_id \
             WHERE p.db = '{}'",
            db.name
        ),
        Kind::SqliteFile | Kind::SqliteMemory => return 0, // no server to ask
    };
    let engine = observer.engine();
    let row = engine
        .query_one_raw(Statement::from_string(engine.get_database_backend(), sql))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "n").unwrap()
}

async fn cancelled_sessions_leave_no_transaction_and_no_stray_rows(db: TestDb) {
    let mut config = db.config.clone();
    config.session.pool_size = 4;
    config.session.max_overflow = 0;
    let registry = item::registry_with(config).await;
    let started = Instant::now();
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| tokio::spawn(run_task(registry.clone(), task)))
        .collect();
    let mut fates = Vec::new();
    for task in tasks {
        fates.extend(task.await.unwrap());
    }
    let elapsed = started.elapsed();

    // Cancelled sessions roll back in the background: let them finish.
    let observer = if db.kind == Kind::SqliteMemory {
        registry.clone()
    } else {
        SqlConnectionRegistry::connect(db.config.clone())
            .await
            .unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut open = open_transactions(&db, &observer).await;
    while (registry.stats().in_use > 0 || open > 0) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        open = open_transactions(&db, &observer).await;
    }
    let stats = registry.stats();
    assert_eq!(open, 0, "a connection was left inside a transaction");
    assert!(stats.size <= stats.max, "{stats:?}");
    assert_eq!(stats.in_use, 0, "{stats:?}");

    let stored: HashSet<String> = item::names(&observer).await.into_iter().collect();
    let count = |wanted: Fate| fates.iter().filter(|(_, fate)| *fate == wanted).count();
    for (name, fate) in &fates {
        match fate {
            Fate::Committed => assert!(stored.contains(name), "committed {name} is missing"),
            Fate::CancelledBeforeCommit => {
                assert!(!stored.contains(name), "cancelled {name} was stored")
            }
            Fate::Nothing | Fate::CancelledDuringCommit => {}
        }
    }
    assert!(count(Fate::Committed) > 0 && count(Fate::CancelledBeforeCommit) > 0);
    println!(
        "{:?}: {SESSIONS} sessions in {elapsed:.2?}: {} committed, {} cancelled before commit, \
         {} cut off during commit, {} rows stored; pool {stats:?}",
        db.kind,
        count(Fate::Committed),
        count(Fate::CancelledBeforeCommit),
        count(Fate::CancelledDuringCommit),
        stored.len(),
    );
}
