//! Scenarios 4 and 5: a server that stops answering (frozen with SIGSTOP)
//! and a server that is gone (stopped).

use std::time::{Duration, Instant};

use sqlreg::{ConnectFailure, Error, SqlConnectionRegistry};

use super::harness::{self, Seen, insert_session, sorted_names};
use super::server;
use crate::common::TestDb;

/// Hang guard for everything that happens while the server is frozen.
const FROZEN_GUARD: Duration = Duration::from_secs(20);

/// Hang guard for `connect()`, well below the default 30 s `pool_timeout`.
const PROMPT: Duration = Duration::from_secs(15);

/// Scenario 4: statements and checkouts against a frozen server end with a
/// timeout error; after it resumes, sessions succeed again.
pub async fn frozen_server(db: TestDb, seen: Seen) {
    let tune = |config: &mut sqlreg::DbConfig| {
        let session = &mut config.session;
        session.statement_timeout = Some(Duration::from_secs(1));
        session.connect_timeout = Duration::from_secs(1);
        session.pool_timeout = Duration::from_secs(2);
        session.pool_size = 1;
        session.max_overflow = 0;
    };
    // `open` holds one connection idle; `cold` has none yet.
    let open = harness::registry(&db, tune).await;
    harness::warm(&open, 1).await;
    let cold = cold_registry(&db, tune).await;

    let frozen_phase = async {
        let _frozen = server::freeze(db.kind);
        let started = Instant::now();
        let statement = open
            .session(async |s| crate::common::item::insert(s, "while frozen").await)
            .await;
        let statement_took = started.elapsed();
        let started = Instant::now();
        let checkout = cold.get().await;
        (statement, statement_took, checkout, started.elapsed())
    };
    let (statement, statement_took, checkout, checkout_took) =
        tokio::time::timeout(FROZEN_GUARD, frozen_phase)
            .await
            .unwrap_or_else(|_| {
                panic!("still waiting on the frozen server after {FROZEN_GUARD:?}")
            });
    // The server runs again from here on (the guard sent SIGCONT).
    let statement = statement.expect_err("a statement on a frozen server fails");
    let checkout = checkout.expect_err("a new connection to a frozen server fails");
    seen.error(&statement);
    seen.error(&checkout);
    println!(
        "frozen_server {:?}: statement on an open connection failed after {statement_took:?}: {statement}; \
         get() needing a new connection failed after {checkout_took:?}: {checkout}",
        db.kind
    );
    assert!(
        statement.to_string().contains("timed out"),
        "the statement's error says it timed out: {statement}"
    );
    assert!(
        matches!(
            checkout,
            Error::Connect {
                reason: ConnectFailure::TimedOut,
                ..
            } | Error::PoolTimeout { .. }
        ),
        "the checkout's error is a timeout: {checkout:?}"
    );

    let started = Instant::now();
    insert_session(&open, "after resume (open)").await.unwrap();
    insert_session(&cold, "after resume (cold)").await.unwrap();
    println!(
        "frozen_server {:?}: after SIGCONT both registries committed in {:?}",
        db.kind,
        started.elapsed()
    );
    assert_eq!(
        sorted_names(&open).await,
        ["after resume (cold)", "after resume (open)"]
    );
    seen.text(format!("{open:?}"));
}

/// Scenario 5: with the server stopped, `connect` says the connection is
/// refused, and existing registries say so promptly instead of waiting out
/// `pool_timeout`. After the server starts again, sessions succeed.
pub async fn stopped_server(db: TestDb, seen: Seen) {
    // Default pool_timeout (30 s): one registry never used, one warm with pre-ping.
    let warm = harness::registry(&db, |config| config.session.pool_pre_ping = true).await;
    let cold = cold_registry(&db, |_| {}).await;
    harness::warm(&warm, 1).await;

    let stopped = server::stop(db.kind).await;
    let started = Instant::now();
    let connect = tokio::time::timeout(PROMPT, SqlConnectionRegistry::connect(db.config.clone()))
        .await
        .expect("connect() to a stopped server returns promptly");
    let connect_took = started.elapsed();
    let connect = connect.expect_err("connect() to a stopped server fails");
    seen.error(&connect);
    assert_eq!(
        connect.connect_failure(),
        Some(ConnectFailure::Refused),
        "{connect:?}"
    );

    let timed = async |registry: &SqlConnectionRegistry, name: &str| {
        let started = Instant::now();
        // insert_session fails the test if this takes HANG (15 s), half the pool_timeout.
        let outcome = insert_session(registry, name).await;
        (outcome, started.elapsed())
    };
    let ((cold_outcome, cold_took), (warm_outcome, warm_took)) = tokio::join!(
        timed(&cold, "while stopped (cold)"),
        timed(&warm, "while stopped (warm)")
    );
    println!(
        "stopped_server {:?}: connect() failed in {connect_took:?}: {connect}",
        db.kind
    );
    for (which, outcome, took) in [
        ("cold", cold_outcome, cold_took),
        ("warm, pre-ping", warm_outcome, warm_took),
    ] {
        let err = outcome.expect_err("a session on a stopped server fails");
        seen.error(&err);
        println!("  {which} registry's next session failed after {took:?}: {err}");
        assert!(
            err.to_string().contains("refused"),
            "{which} registry: the error says the connection is refused: {err}"
        );
    }

    stopped.start().await;
    let started = Instant::now();
    let after_cold = insert_session(&cold, "after start (cold)").await;
    let after_warm = insert_session(&warm, "after start (warm)").await;
    println!(
        "stopped_server {:?}: after start: cold {after_cold:?}, warm {after_warm:?} in {:?}",
        db.kind,
        started.elapsed()
    );
    after_cold.expect("the cold registry works after the server starts");
    after_warm.expect("the warm registry works after the server starts");
    assert_eq!(
        sorted_names(&cold).await,
        ["after start (cold)", "after start (warm)"]
    );
    seen.text(format!("{cold:?} {warm:?}"));
}

/// A registry whose pool has not opened a connection yet (`connect` checks
/// the server with a connection of its own and closes it).
async fn cold_registry(
    db: &TestDb,
    tune: impl FnOnce(&mut sqlreg::DbConfig),
) -> SqlConnectionRegistry {
    let mut config = db.config.clone();
    tune(&mut config);
    let registry = SqlConnectionRegistry::connect(config)
        .await
        .expect("connect");
    assert_eq!(registry.stats().size, 0, "no pooled connection yet");
    registry
}
