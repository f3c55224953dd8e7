//! A session never reports a commit that did not happen: once the server has
//! aborted the transaction (PostgreSQL after any failed statement, MariaDB
//! after a deadlock), later statements are refused and the commit fails —
//! even when the body ignored the error. Savepoints keep tolerated failures
//! local. Isolation levels reach the server in the statement that begins the
//! transaction.

mod common;

use std::sync::Arc;

use common::item;
use common::{Kind, TestDb};
use sea_orm::ConnectionTrait;
use sqlreg::{Config, Error, Isolation, Session, SqlConnectionRegistry};
use tokio::sync::Barrier;

on_every_backend!(
    ignored_failure_never_commits_where_the_server_aborted,
    ignored_failure_in_a_guard_never_commits_where_the_server_aborted,
    failure_inside_a_savepoint_is_tolerated,
    isolation_from_config_is_accepted_on_every_backend,
);
mod servers {
    use super::*;
    on_servers!(
        statements_after_an_abort_are_refused_with_a_clear_error,
        deadlock_victim_that_ignores_the_error_does_not_commit,
        isolation_level_decides_what_a_second_read_sees,
        failure_ignored_through_sqlx_is_caught_at_commit,
    );
}

/// Whether the server aborts the whole transaction on a failed statement.
fn aborts_on_any_error(kind: Kind) -> bool {
    kind == Kind::Postgres
}

/// Inserts `first`, then `first` again (a duplicate key the body ignores),
/// and returns `Ok`, as a careless body would.
async fn insert_then_ignore_a_duplicate(s: &Session) -> Result<(), Error> {
    item::insert(s, "first").await?;
    let duplicate = item::insert(s, "first").await;
    assert!(duplicate.is_err(), "the second insert must fail");
    Ok(())
}

async fn ignored_failure_never_commits_where_the_server_aborted(db: TestDb) {
    let registry = item::registry(&db).await;
    let outcome = registry.session(insert_then_ignore_a_duplicate).await;
    check_ignored_failure(&db, &registry, outcome).await;
}

async fn ignored_failure_in_a_guard_never_commits_where_the_server_aborted(db: TestDb) {
    let registry = item::registry(&db).await;
    let session = registry.get().await.unwrap();
    insert_then_ignore_a_duplicate(&session).await.unwrap();
    let outcome = session.commit().await;
    check_ignored_failure(&db, &registry, outcome).await;
}

/// PostgreSQL: `Error::Commit` naming the abort, and the first row absent.
/// SQLite and MariaDB keep the transaction after a duplicate key: the commit
/// succeeds and the first row is there.
async fn check_ignored_failure(
    db: &TestDb,
    registry: &SqlConnectionRegistry,
    outcome: sqlreg::Result<()>,
) {
    let stored = item::names(registry).await;
    if aborts_on_any_error(db.kind) {
        let err = outcome.expect_err("a commit the server turned into a rollback reported Ok");
        assert!(matches!(err, Error::Commit(_)), "{err:?}");
        let message = err.to_string();
        assert!(message.contains("nothing was committed"), "{message}");
        assert!(message.contains("savepoint"), "{message}");
        assert!(
            stored.is_empty(),
            "rows of an aborted transaction: {stored:?}"
        );
    } else {
        outcome.expect("the server kept the transaction, so the commit succeeds");
        assert_eq!(stored, ["first"]);
    }
    assert_eq!(registry.stats().in_use, 0);
}

async fn failure_inside_a_savepoint_is_tolerated(db: TestDb) {
    let registry = item::registry(&db).await;
    registry
        .session(async |s| {
            item::insert(s, "before").await?;
            let tolerated = s
                .savepoint(async |s| item::insert(s, "before").await.map(drop))
                .await;
            assert!(
                matches!(tolerated, Err(Error::Duplicate(_))),
                "{tolerated:?}"
            );
            // The savepoint's own work may also succeed and then be kept.
            s.savepoint(async |s| item::insert(s, "inside").await.map(drop))
                .await?;
            item::insert(s, "after").await?;
            Ok::<_, Error>(())
        })
        .await
        .expect("a failure undone by its savepoint does not spoil the session");
    let mut stored = item::names(&registry).await;
    stored.sort();
    assert_eq!(stored, ["after", "before", "inside"]);
}

async fn isolation_from_config_is_accepted_on_every_backend(db: TestDb) {
    for level in ["read_committed", "repeatable_read", "serializable"] {
        let mut config = db.config.clone();
        config.session.isolation = Some(level.parse().unwrap());
        let registry = item::registry_with(config).await;
        registry
            .session(async |s| item::insert(s, level).await.map(drop))
            .await
            .unwrap_or_else(|err| panic!("{level}: {err}"));
        assert!(item::names(&registry).await.contains(&level.to_owned()));
        registry.close().await;
    }
}

async fn statements_after_an_abort_are_refused_with_a_clear_error(kind: Kind) {
    let Some(db) = common::test_db(kind, "refused_after_abort") else {
        return;
    };
    let registry = item::registry(&db).await;
    let session = registry.get().await.unwrap();
    item::insert(&session, "first").await.unwrap();
    let _ = item::insert(&session, "first").await;
    let next = item::insert(&session, "second").await;
    if aborts_on_any_error(kind) {
        let message = next.expect_err("statement after the abort").to_string();
        assert!(
            message.contains("aborted this session's transaction"),
            "{message}"
        );
        assert!(message.contains("savepoint"), "{message}");
        assert!(session.commit().await.is_err());
        assert!(item::names(&registry).await.is_empty());
    } else {
        next.unwrap();
        session.commit().await.unwrap();
        assert_eq!(item::names(&registry).await.len(), 2);
    }
}

/// Two sessions lock A then B and B then A; the deadlock victim ignores its
/// error and writes on. On MariaDB InnoDB has rolled its transaction back,
/// so without sqlreg's check the later write would commit on its own.
async fn deadlock_victim_that_ignores_the_error_does_not_commit(kind: Kind) {
    let Some(db) = common::test_db(kind, "ignored_deadlock") else {
        return;
    };
    let registry = item::registry(&db).await;
    for name in ["a", "b"] {
        registry
            .session(async |s| item::insert(s, name).await.map(drop))
            .await
            .unwrap();
    }
    let barrier = Arc::new(Barrier::new(2));
    let careless = |first: &'static str, second: &'static str, marker: &'static str| {
        let registry = registry.clone();
        let barrier = Arc::clone(&barrier);
        tokio::spawn(async move {
            registry
                .session(async |s| {
                    item::touch(s, first).await?;
                    barrier.wait().await;
                    let second_lock = item::touch(s, second).await;
                    if let Err(err) = &second_lock {
                        assert!(Error::from(err.clone()).is_transient(), "{err}");
                    }
                    // Ignores the error and writes on, as a careless body would.
                    let _ = item::insert(s, marker).await;
                    Ok::<_, Error>(second_lock.is_err())
                })
                .await
        })
    };
    let one = careless("a", "b", "marker-one");
    let two = careless("b", "a", "marker-two");
    let outcomes = [one.await.unwrap(), two.await.unwrap()];
    let stored = item::names(&registry).await;
    let committed: Vec<_> = outcomes.iter().filter(|o| matches!(o, Ok(false))).collect();
    assert_eq!(committed.len(), 1, "exactly one side wins: {outcomes:?}");
    let victim = outcomes
        .iter()
        .find(|o| !matches!(o, Ok(false)))
        .expect("one victim");
    let err = victim.as_ref().expect_err("the victim's commit must fail");
    assert!(matches!(err, Error::Commit(_)), "{err:?}");
    let markers: Vec<_> = stored.iter().filter(|n| n.starts_with("marker")).collect();
    assert_eq!(
        markers.len(),
        1,
        "only the winner's marker is stored: {stored:?}"
    );
}

/// Under READ COMMITTED a second read sees a row committed in between; under
/// REPEATABLE READ it still sees the first snapshot.
async fn isolation_level_decides_what_a_second_read_sees(kind: Kind) {
    let Some(db) = common::test_db(kind, "isolation_reads") else {
        return;
    };
    let registry = item::registry(&db).await;
    for (level, sees_new_row) in [
        (Isolation::ReadCommitted, true),
        (Isolation::RepeatableRead, false),
    ] {
        let session = registry.isolation(level).get().await.unwrap();
        let before = item::count_on(&session).await;
        registry
            .session(async |s| item::insert(s, &format!("{level}")).await.map(drop))
            .await
            .unwrap();
        let after = item::count_on(&session).await;
        session.commit().await.unwrap();
        assert_eq!(
            after > before,
            sees_new_row,
            "{level}: {before} then {after}"
        );
    }
    // The level from the config file reaches the server too.
    let yaml = format!(
        "db:\n  url: {}\n  session:\n    isolation: repeatable_read\n",
        common::server_url_yaml(kind, &db.name, "{}")
    );
    let config = Config::from_yaml_str(&yaml).unwrap().at("db").unwrap();
    let configured = item::registry_with(config).await;
    let session = configured.get().await.unwrap();
    let before = item::count_on(&session).await;
    registry
        .session(async |s| item::insert(s, "late").await.map(drop))
        .await
        .unwrap();
    assert_eq!(
        item::count_on(&session).await,
        before,
        "repeatable_read from the file"
    );
    session.commit().await.unwrap();
}

/// A statement run through `Session::sqlx()` fails and the body ignores it
/// — on the bare connection, where sqlreg never sees the error, and with
/// the session's `SqlxConnection` as the executor, which notes that one
/// failed — so commit asks the server. PostgreSQL had aborted the
/// transaction, so the commit is refused; MariaDB kept it.
async fn failure_ignored_through_sqlx_is_caught_at_commit(kind: Kind) {
    let Some(db) = common::test_db(kind, "sqlx_ignored") else {
        return;
    };
    let registry = item::registry(&db).await;
    for executor in [false, true] {
        let session = registry.get().await.unwrap();
        item::insert(&session, "first").await.unwrap();
        macro_rules! failing {
            ($db:ty) => {{
                let mut conn = session.sqlx::<$db>().await.unwrap();
                let query = sqlx::query("SELECT * FROM no_such_table");
                if executor {
                    query.execute(&mut conn).await.is_err()
                } else {
                    query.execute(&mut *conn).await.is_err()
                }
            }};
        }
        let failed = match kind {
            Kind::Postgres => failing!(sqlx::Postgres),
            _ => failing!(sqlx::MySql),
        };
        assert!(failed, "the statement must fail");
        let outcome = session.commit().await;
        if aborts_on_any_error(kind) {
            let err = outcome.expect_err("the server turned this commit into a rollback");
            assert!(err.to_string().contains("Session::sqlx()"), "{err}");
            assert!(item::names(&registry).await.is_empty());
        } else {
            outcome.unwrap();
            assert_eq!(item::names(&registry).await, ["first"]);
            registry
                .session(async |s| {
                    s.execute_unprepared("DELETE FROM items").await?;
                    Ok::<_, Error>(())
                })
                .await
                .unwrap();
        }
    }
}
