//! Sessions hold under contention: many tasks doing read-modify-write on one
//! row lose no update and see no "database is locked"; deadlocks and
//! serialization failures are retried by the `transaction` form, whose failed
//! attempts leave nothing behind; a commit whose outcome is unknown is
//! reported, never retried.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::item;
use common::{Kind, TestDb};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ConnectionTrait, EntityTrait, QuerySelect};
use sqlreg::{Error, Isolation, OrNotFound, Session, SqlConnectionRegistry};
use tokio::sync::Barrier;

const TASKS: usize = 8;
const SESSIONS_PER_TASK: usize = 100;

/// Which session form a scenario drives.
#[derive(Clone, Copy, Debug)]
enum Form {
    /// `session(..)`: no retry.
    Plain,
    /// `transaction(..)` with this many attempts.
    Retrying(u32),
}

/// What became of the sessions of one hammering.
#[derive(Debug)]
struct Tally {
    committed: u64,
    failed: u64,
    /// How far the counter rose: `committed - counter` updates were lost.
    counter: i64,
    retries: u64,
    first_error: Option<String>,
}

impl Tally {
    fn lost(&self) -> i64 {
        i64::try_from(self.committed).unwrap() - self.counter
    }
}

/// The most common ORM pattern: read the row as an entity, change a field,
/// write it back — optionally reading it `FOR UPDATE`.
async fn bump(s: &Session, id: i32, for_update: bool) -> Result<(), Error> {
    let mut find = item::Entity::find_by_id(id);
    if for_update {
        find = find.lock_exclusive();
    }
    let row = find.one(s).await?.or_not_found("the counter row")?;
    let next = row.qty + 1;
    let mut active: item::ActiveModel = row.into();
    active.qty = Set(next);
    active.update(s).await?;
    Ok(())
}

/// `TASKS` tasks × `SESSIONS_PER_TASK` sessions bumping one counter row.
async fn hammer(
    registry: &SqlConnectionRegistry,
    isolation: Option<Isolation>,
    form: Form,
    for_update: bool,
) -> Tally {
    let name = format!("counter-{isolation:?}-{form:?}-{for_update}");
    let row = registry
        .session(async |s| item::insert(s, &name).await)
        .await
        .unwrap();
    let (id, start) = (row.id, i64::from(row.qty));
    let retries_before = registry.stats().retries;
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let registry = registry.clone();
            tokio::spawn(async move {
                let mut options = registry.options();
                if let Some(level) = isolation {
                    options = options.isolation(level);
                }
                let (mut committed, mut failed, mut first_error) = (0, 0, None);
                for _ in 0..SESSIONS_PER_TASK {
                    let body = async |s: &Session| bump(s, id, for_update).await;
                    let outcome = match form {
                        Form::Plain => options.session(body).await,
                        Form::Retrying(attempts) => {
                            options.clone().attempts(attempts).transaction(body).await
                        }
                    };
                    match outcome {
                        Ok(()) => committed += 1,
                        Err(err) => {
                            failed += 1;
                            first_error.get_or_insert(err.to_string());
                        }
                    }
                }
                (committed, failed, first_error)
            })
        })
        .collect();
    let mut tally = Tally {
        committed: 0,
        failed: 0,
        counter: 0,
        retries: 0,
        first_error: None,
    };
    for task in tasks {
        let (committed, failed, first_error) = task.await.unwrap();
        tally.committed += committed;
        tally.failed += failed;
        tally.first_error = tally.first_error.or(first_error);
    }
    let end = registry
        .read_session(async |s| {
            item::Entity::find_by_id(id)
                .one(s)
                .await?
                .or_not_found("counter")
        })
        .await
        .unwrap()
        .qty;
    tally.counter = i64::from(end) - start;
    tally.retries = registry.stats().retries - retries_before;
    tally
}

/// A registry whose pool has room for every task, so contention is on the
/// row, not on the pool.
async fn registry_for(db: &TestDb) -> SqlConnectionRegistry {
    let mut config = db.config.clone();
    config.session.pool_size = u32::try_from(TASKS).unwrap();
    item::registry_with(config).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file_read_modify_write_never_sees_database_is_locked() {
    let db = common::test_db(Kind::SqliteFile, "sqlite_rmw").unwrap();
    // The config `sqlreg init` writes: every key at its default.
    let registry = item::registry(&db).await;
    let tally = hammer(&registry, None, Form::Plain, false).await;
    println!("SQLite file, plain session, 8 x 100 read-modify-write: {tally:?}");
    assert_eq!(tally.failed, 0, "{tally:?}");
    assert_eq!(tally.lost(), 0, "{tally:?}");
    assert_eq!(tally.counter, (TASKS * SESSIONS_PER_TASK) as i64);
}

mod servers {
    use super::*;
    on_servers!(
        retrying_form_loses_no_update_under_serializable,
        deadlock_is_retried_and_failed_attempts_leave_nothing,
        lost_connection_before_commit_is_retried,
        lost_connection_during_commit_is_reported_not_retried,
    );
}

async fn retrying_form_loses_no_update_under_serializable(kind: Kind) {
    let Some(db) = common::test_db(kind, "serializable_rmw") else {
        return;
    };
    let registry = registry_for(&db).await;
    let serializable = Some(Isolation::Serializable);
    let tally = hammer(&registry, serializable, Form::Retrying(10), false).await;
    println!("{kind:?}, serializable, transaction() with 10 attempts: {tally:?}");
    assert_eq!(tally.failed, 0, "{tally:?}");
    assert_eq!(tally.lost(), 0, "{tally:?}");
    assert!(tally.retries > 0, "8 tasks on one row conflict: {tally:?}");

    let default_attempts = hammer(&registry, serializable, Form::Retrying(3), false).await;
    println!(
        "{kind:?}, serializable, transaction() with the default 3 attempts: {} of {} sessions \
         failed ({:.1} %), {} retries, {} lost",
        default_attempts.failed,
        default_attempts.failed + default_attempts.committed,
        100.0 * default_attempts.failed as f64
            / (default_attempts.failed + default_attempts.committed) as f64,
        default_attempts.retries,
        default_attempts.lost(),
    );
    assert_eq!(default_attempts.lost(), 0, "{default_attempts:?}");
    if let Some(error) = &default_attempts.first_error {
        assert!(error.contains("gave up after 3 attempt(s)"), "{error}");
    }

    if kind == Kind::MariaDb {
        let repeatable = Some(Isolation::RepeatableRead);
        let locked = hammer(&registry, repeatable, Form::Retrying(10), true).await;
        println!("MariaDB, repeatable_read + FOR UPDATE, transaction(): {locked:?}");
        assert_eq!((locked.failed, locked.lost()), (0, 0), "{locked:?}");

        // What the plain form does under REPEATABLE READ without FOR UPDATE:
        // InnoDB before 11.6 lets the second writer overwrite the first.
        let careless = hammer(&registry, repeatable, Form::Plain, false).await;
        println!("MariaDB, repeatable_read, plain session, no FOR UPDATE: {careless:?}");
        assert!(
            careless.lost() > 0 || careless.failed > 0,
            "either updates are lost (InnoDB < 11.6) or conflicts are reported: {careless:?}"
        );
    }
}

/// Two tasks update A then B and B then A, held at a barrier on their first
/// attempt. Each attempt first inserts a marker row: a failed attempt's
/// marker must be rolled back with it.
async fn deadlock_is_retried_and_failed_attempts_leave_nothing(kind: Kind) {
    let Some(db) = common::test_db(kind, "deadlock_retry") else {
        return;
    };
    let registry = registry_for(&db).await;
    for name in ["a", "b"] {
        registry
            .session(async |s| item::insert(s, name).await.map(drop))
            .await
            .unwrap();
    }

    // The plain form: one side gets an error it can act on.
    let barrier = Arc::new(Barrier::new(2));
    let plain = |first: &'static str, second: &'static str| {
        let (registry, barrier) = (registry.clone(), Arc::clone(&barrier));
        tokio::spawn(async move {
            registry
                .session(async |s| {
                    item::touch(s, first).await?;
                    barrier.wait().await;
                    Ok::<_, Error>(item::touch(s, second).await?)
                })
                .await
        })
    };
    let (one, two) = (plain("a", "b"), plain("b", "a"));
    let outcomes = [one.await.unwrap(), two.await.unwrap()];
    let errors: Vec<_> = outcomes.iter().filter_map(|o| o.as_ref().err()).collect();
    assert_eq!(errors.len(), 1, "{outcomes:?}");
    assert!(
        errors[0].is_transient(),
        "a deadlock is transient: {}",
        errors[0]
    );

    // The retrying form: both commit, at least one retry, no stray marker.
    let retries_before = registry.stats().retries;
    let barrier = Arc::new(Barrier::new(2));
    let retrying = |first: &'static str, second: &'static str| {
        let (registry, barrier) = (registry.clone(), Arc::clone(&barrier));
        tokio::spawn(async move {
            let runs = AtomicU32::new(0);
            registry
                .transaction(async |s| {
                    let run = runs.fetch_add(1, Ordering::SeqCst) + 1;
                    item::insert(s, &format!("marker-{first}-{run}")).await?;
                    item::touch(s, first).await?;
                    if run == 1 {
                        barrier.wait().await;
                    }
                    item::touch(s, second).await?;
                    Ok::<_, Error>(())
                })
                .await
                .map(|()| runs.load(Ordering::SeqCst))
        })
    };
    let (one, two) = (retrying("a", "b"), retrying("b", "a"));
    let runs = [one.await.unwrap().unwrap(), two.await.unwrap().unwrap()];
    let retries = registry.stats().retries - retries_before;
    println!("{kind:?}: deadlock retried: bodies ran {runs:?} times, {retries} retries counted");
    assert!(
        retries >= 1 && runs.iter().any(|&r| r > 1),
        "{runs:?}, {retries}"
    );
    let mut markers: Vec<_> = item::names(&registry)
        .await
        .into_iter()
        .filter(|n| n.starts_with("marker"))
        .collect();
    markers.sort();
    let expected = vec![
        format!("marker-a-{}", runs[0]),
        format!("marker-b-{}", runs[1]),
    ];
    assert_eq!(
        markers, expected,
        "only the committed attempts' markers remain"
    );
}

/// Kills the session's own connection from another registry.
async fn kill_own_connection(s: &Session, killer: &SqlConnectionRegistry) {
    let backend = s.get_database_backend();
    let (own_id, kill) = match backend {
        sea_orm::DbBackend::Postgres => (
            "SELECT pg_backend_pid()::bigint AS id",
            "SELECT pg_terminate_backend",
        ),
        _ => ("SELECT CAST(CONNECTION_ID() AS SIGNED) AS id", "KILL"),
    };
    let id: i64 = s
        .query_one_raw(sea_orm::Statement::from_string(backend, own_id))
        .await
        .unwrap()
        .unwrap()
        .try_get("", "id")
        .unwrap();
    let sql = match backend {
        sea_orm::DbBackend::Postgres => format!("{kill}({id})"),
        _ => format!("{kill} {id}"),
    };
    killer.engine().execute_unprepared(&sql).await.unwrap();
    // Let the server finish closing the socket.
    tokio::time::sleep(Duration::from_millis(100)).await;
}

async fn lost_connection_before_commit_is_retried(kind: Kind) {
    let Some(db) = common::test_db(kind, "lost_before_commit") else {
        return;
    };
    let registry = item::registry(&db).await;
    let killer = SqlConnectionRegistry::connect(db.config.clone())
        .await
        .unwrap();
    let runs = AtomicU32::new(0);
    registry
        .transaction(async |s| {
            let run = runs.fetch_add(1, Ordering::SeqCst) + 1;
            item::insert(s, &format!("run-{run}")).await?;
            if run == 1 {
                kill_own_connection(s, &killer).await;
                // The next statement finds the connection gone.
                item::insert(s, "after the kill").await?;
            }
            Ok::<_, Error>(())
        })
        .await
        .expect("the lost attempt is retried on a new connection");
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    assert_eq!(item::names(&registry).await, ["run-2"]);
    assert_eq!(registry.stats().retries, 1);
    assert!(
        registry.stats().evicted >= 1,
        "the dead connection was not pooled again"
    );
}

async fn lost_connection_during_commit_is_reported_not_retried(kind: Kind) {
    let Some(db) = common::test_db(kind, "lost_during_commit") else {
        return;
    };
    let registry = item::registry(&db).await;
    let killer = SqlConnectionRegistry::connect(db.config.clone())
        .await
        .unwrap();
    let runs = AtomicU32::new(0);
    let outcome = registry
        .transaction(async |s| {
            runs.fetch_add(1, Ordering::SeqCst);
            item::insert(s, "unknown fate").await?;
            // The body's last act: its connection dies before COMMIT reaches it.
            kill_own_connection(s, &killer).await;
            Ok::<_, Error>(())
        })
        .await;
    let err = outcome.expect_err("a commit on a dead connection cannot succeed");
    assert!(matches!(err, Error::Commit(_)), "{err:?}");
    assert!(
        !err.is_transient(),
        "an unknown outcome is not transient: {err}"
    );
    assert!(err.to_string().contains("unknown"), "{err}");
    assert_eq!(runs.load(Ordering::SeqCst), 1, "never retried");
    assert_eq!(registry.stats().retries, 0);
}

/// SQLite: past `busy_timeout` the plain form's error names the setting and
/// is transient; the retrying form waits the holder out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_busy_past_busy_timeout_is_named_and_retried() {
    let db = common::test_db(Kind::SqliteFile, "sqlite_busy").unwrap();
    let mut config = db.config.clone();
    config.sqlite.busy_timeout = Duration::from_millis(50);
    let registry = item::registry_with(config).await;

    let holder = registry.get().await.unwrap();
    item::insert(&holder, "held").await.unwrap();
    let err = registry
        .session(async |s| item::insert(s, "blocked").await.map(drop))
        .await
        .expect_err("the write lock is held longer than busy_timeout");
    assert!(err.is_transient(), "{err}");
    assert!(err.to_string().contains("sqlite.busy_timeout"), "{err}");

    let release = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        holder.commit().await.unwrap();
    });
    registry
        .options()
        .attempts(10)
        .transaction(async |s| item::insert(s, "waited").await.map(drop))
        .await
        .expect("retried until the holder committed");
    release.await.unwrap();
    assert!(registry.stats().retries >= 1);
    let mut names = item::names(&registry).await;
    names.sort();
    assert_eq!(names, ["held", "waited"]);
}
