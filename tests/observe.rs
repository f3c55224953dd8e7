//! Spans and histograms as an operator's tooling receives them: a real
//! `tracing` subscriber layer and a real `metrics` recorder, on every backend.
//! A session is a span named by OpenTelemetry's database conventions, each
//! statement a child span; no password, bound value or literal shows.

mod common;

use std::sync::OnceLock;

use common::item::{self, Entity as Items};
use common::spans::{self, CapturedSpan};
use common::{Kind, TestDb, test_db, unique_name};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use sqlreg::{Config, Error};
use tracing::Instrument;

on_every_backend!(session_and_statement_spans_follow_the_database_conventions,);

/// The recorder of this binary, installed before any registry connects.
fn snapshotter() -> &'static Snapshotter {
    static SNAPSHOTTER: OnceLock<Snapshotter> = OnceLock::new();
    SNAPSHOTTER.get_or_init(|| {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        recorder
            .install()
            .expect("the only recorder of this binary");
        snapshotter
    })
}

fn expected_system(kind: Kind) -> &'static str {
    match kind {
        Kind::SqliteFile | Kind::SqliteMemory => "sqlite",
        Kind::Postgres => "postgresql",
        Kind::MariaDb => "mariadb",
    }
}

/// The captured spans, the root named `test_root` with `marker`, and the
/// session spans under it.
fn sessions_under(marker: &str) -> (Vec<CapturedSpan>, Vec<CapturedSpan>) {
    let all = spans::all();
    let root = all
        .iter()
        .find(|s| s.name == "test_root" && s.field("marker") == Some(marker))
        .expect("the test's root span")
        .clone();
    let sessions = spans::children(&all, &root);
    (all, sessions)
}

async fn session_and_statement_spans_follow_the_database_conventions(db: TestDb) {
    snapshotter();
    spans::capture();
    let registry = item::registry(&db).await;
    let marker = unique_name("root");
    let bound = unique_name("bound-secret");
    let literal = unique_name("literal-secret");

    let root = tracing::info_span!("test_root", marker = %marker);
    async {
        registry
            .session(async |s| {
                item::insert(s, &bound).await?;
                Items::find()
                    .filter(item::Column::Name.eq(bound.as_str()))
                    .one(s)
                    .await?;
                s.execute_unprepared(&format!(
                    "UPDATE items SET qty = 7 WHERE name = '{literal}'"
                ))
                .await?;
                Ok::<_, Error>(())
            })
            .await
            .unwrap();
        let failed: Result<(), Error> = registry
            .session(async |s| {
                s.execute_unprepared("SELECT * FROM no_such_table").await?;
                Ok(())
            })
            .await;
        assert!(failed.is_err());
        registry
            .read_session(async |s| Ok::<_, Error>(Items::find().all(s).await?))
            .await
            .unwrap();
        registry
            .transaction(async |s| Ok::<_, Error>(Items::find().all(s).await?))
            .await
            .unwrap();
    }
    .instrument(root)
    .await;
    registry.close().await;

    let (all, sessions) = sessions_under(&marker);
    let names: Vec<_> = sessions.iter().map(|s| s.name).collect();
    assert_eq!(names, ["sqlreg.session"; 4], "{sessions:#?}");
    let url = registry.url();
    for session in &sessions {
        assert!(session.closed, "closed at release: {session:?}");
        assert_eq!(
            session.field("db.system.name"),
            Some(expected_system(db.kind))
        );
        assert_eq!(session.field("db.namespace"), url.database(), "{session:?}");
        assert_eq!(session.field("server.address"), url.host(), "{session:?}");
        let port = url
            .port()
            .filter(|_| url.host().is_some())
            .map(|p| p.to_string());
        assert_eq!(session.field("server.port"), port.as_deref(), "{session:?}");
        assert!(
            session
                .field("code.file.path")
                .unwrap()
                .ends_with("observe.rs"),
            "where the session was opened: {session:?}"
        );
        for statement in spans::children(&all, session) {
            assert_eq!(statement.name, "sqlreg.statement");
            assert!(statement.closed);
            assert_eq!(statement.field("otel.kind"), Some("client"));
            assert_eq!(
                statement.field("db.system.name"),
                Some(expected_system(db.kind))
            );
            assert_eq!(statement.field("db.namespace"), url.database());
        }
    }

    let (committed, rolled_back, read) = (&sessions[0], &sessions[1], &sessions[2]);
    let retrying = &sessions[3];
    assert_eq!(committed.field("sqlreg.session.attempt"), None);
    assert_eq!(
        retrying.field("sqlreg.session.attempt"),
        Some("1"),
        "{retrying:?}"
    );
    assert_eq!(retrying.field("sqlreg.session.outcome"), Some("committed"));
    assert_eq!(committed.field("sqlreg.session.access"), Some("read_write"));
    assert_eq!(committed.field("sqlreg.session.outcome"), Some("committed"));
    assert_eq!(committed.field("error.type"), None);
    let statements = spans::children(&all, committed);
    let operations: Vec<_> = statements
        .iter()
        .filter_map(|s| s.field("db.operation.name"))
        .collect();
    let insert = statements
        .iter()
        .find(|s| s.field("db.operation.name") == Some("INSERT"))
        .expect("the INSERT's span");
    assert_eq!(
        insert.field("db.collection.name"),
        Some("items"),
        "{insert:?}"
    );
    assert_eq!(insert.field("otel.name"), Some("INSERT items"));
    let text = insert.field("db.query.text").unwrap();
    assert!(text.starts_with("INSERT INTO"), "{text}");
    assert!(
        text.contains("$1") || text.contains('?'),
        "placeholders: {text}"
    );
    let update = statements.last().expect("the UPDATE ran last");
    assert_eq!(
        update.field("db.query.text"),
        Some("UPDATE items SET qty = ? WHERE name = ?"),
        "the literal is hidden: {update:?}"
    );
    assert_eq!(update.field("otel.name"), Some("UPDATE items"));
    assert!(operations.contains(&"SELECT"), "{operations:?}");

    assert_eq!(
        rolled_back.field("sqlreg.session.outcome"),
        Some("rolled_back")
    );
    let failing = spans::children(&all, rolled_back);
    assert_eq!(failing.len(), 1, "{failing:#?}");
    let failing = &failing[0];
    assert_eq!(failing.field("otel.status_code"), Some("ERROR"));
    let error_type = failing.field("error.type").expect("error.type");
    assert_eq!(Some(error_type), failing.field("db.response.status_code"));
    let expected_code = match db.kind {
        Kind::Postgres => "42P01",
        Kind::MariaDb => "42S02",
        Kind::SqliteFile | Kind::SqliteMemory => "1",
    };
    assert_eq!(error_type, expected_code, "{failing:?}");
    assert_eq!(failing.field("db.collection.name"), Some("no_such_table"));

    assert_eq!(read.field("sqlreg.session.access"), Some("read_only"));
    assert_eq!(read.field("sqlreg.session.outcome"), Some("committed"));

    let password = std::env::var("SQLREG_TEST_PASSWORD").ok();
    for span in &all {
        for value in span.fields.values() {
            for secret in [Some(&bound), Some(&literal), password.as_ref()]
                .into_iter()
                .flatten()
            {
                assert!(!value.contains(secret.as_str()), "{secret} in {span:?}");
            }
        }
    }
}

/// Histogram samples of `name` for `database` with exactly `labels` besides it.
fn histogram(
    snapshot: &[(
        metrics_util::CompositeKey,
        Option<metrics::Unit>,
        Option<metrics::SharedString>,
        DebugValue,
    )],
    name: &str,
    database: &str,
    labels: &[(&str, &str)],
) -> usize {
    snapshot
        .iter()
        .filter(|(key, _, _, _)| {
            let key = key.key();
            let mut found: Vec<(String, String)> = key
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect();
            found.sort();
            let mut wanted: Vec<(String, String)> = labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .chain([("database".to_owned(), database.to_owned())])
                .collect();
            wanted.sort();
            key.name() == name && found == wanted
        })
        .map(|(_, _, _, value)| match value {
            DebugValue::Histogram(samples) => samples.len(),
            other => panic!("{name} is not a histogram: {other:?}"),
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn histograms_by_outcome_and_operation() {
    let snapshotter = snapshotter();
    let db = test_db(Kind::SqliteFile, "histograms").unwrap();
    let file = db.config.url.to_db_url().unwrap();
    let yaml = format!(
        "db:\n  session: {{pool_size: 1, max_overflow: 0, pool_timeout: 0.2}}\n  url: sqlite:///{}\n",
        file.database().unwrap()
    );
    let config = Config::from_yaml_str(&yaml).unwrap().at("db").unwrap();
    let registry = item::registry_with(config).await;
    let database = registry.url().redacted();
    // Counting starts here: a snapshot takes what was recorded so far.
    snapshotter.snapshot();

    for n in 0..2 {
        registry
            .session(async |s| item::insert(s, &format!("h{n}")).await)
            .await
            .unwrap();
    }
    let _ = registry
        .session(async |_| Err::<(), _>(Error::NotFound("x".into())))
        .await;
    let _ = registry
        .session(async |s| {
            s.execute_unprepared("SELECT * FROM no_such_table").await?;
            Ok::<_, Error>(())
        })
        .await;
    let conn = registry.connection().await.unwrap();
    conn.execute_unprepared("SELECT 1").await.unwrap();
    // The only connection is held: the next checkout times out.
    let timed_out = registry.get().await;
    assert!(matches!(timed_out, Err(Error::PoolTimeout { .. })));
    drop(conn);

    let after = snapshotter.snapshot().into_vec();
    let count = |name: &str, labels: &[(&str, &str)]| histogram(&after, name, &database, labels);
    let session = "sqlreg_session_duration_seconds";
    assert_eq!(count(session, &[("outcome", "committed")]), 2);
    assert_eq!(count(session, &[("outcome", "rolled_back")]), 2);
    assert_eq!(count(session, &[("outcome", "released")]), 1);
    assert_eq!(count(session, &[("outcome", "failed")]), 0);
    let wait = "sqlreg_connection_wait_seconds";
    assert_eq!(count(wait, &[("outcome", "acquired")]), 5);
    assert_eq!(count(wait, &[("outcome", "timed_out")]), 1);
    let statement = "sqlreg_statement_duration_seconds";
    assert!(count(statement, &[("operation", "INSERT"), ("outcome", "ok")]) >= 2);
    assert_eq!(
        count(statement, &[("operation", "SELECT"), ("outcome", "error")]),
        1
    );
    assert!(count(statement, &[("operation", "SELECT"), ("outcome", "ok")]) >= 1);

    let labels: std::collections::BTreeSet<String> = after
        .iter()
        .filter(|(key, _, _, _)| {
            key.key().name().starts_with("sqlreg_") && key.key().name().ends_with("_seconds")
        })
        .flat_map(|(key, _, _, _)| {
            key.key()
                .labels()
                .map(|l| l.key().to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(
        labels.into_iter().collect::<Vec<_>>(),
        ["database", "operation", "outcome"],
        "bounded labels only"
    );
}

/// A transaction that met a conflict and ran again: one session span per
/// attempt, numbered; the first rolled back, its failed statement's span
/// carrying the conflict's `error.type`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_attempt_of_a_retried_transaction_is_a_numbered_span() {
    snapshotter();
    spans::capture();
    let Some(db) = test_db(Kind::Postgres, "observe_attempts") else {
        return;
    };
    let registry = item::registry(&db).await;
    let row = registry
        .session(async |s| item::insert(s, "contended").await)
        .await
        .unwrap();
    let marker = unique_name("root");
    let attempts = std::sync::atomic::AtomicU32::new(0);
    let root = tracing::info_span!("test_root", marker = %marker);
    async {
        let update = format!("UPDATE items SET qty = qty + 1 WHERE id = {}", row.id);
        registry
            .isolation(sqlreg::Isolation::Serializable)
            .transaction(async |s| {
                Items::find_by_id(row.id).one(s).await?;
                let attempt = attempts.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if attempt == 0 {
                    // Another session changes the row this one has read:
                    // its own update then fails to serialize (40001).
                    let other = registry.get().await?;
                    other.execute_unprepared(&update).await?;
                    other.commit().await?;
                }
                s.execute_unprepared(&update).await?;
                Ok::<_, Error>(())
            })
            .await
            .unwrap();
    }
    .instrument(root)
    .await;
    registry.close().await;

    let (all, sessions) = sessions_under(&marker);
    let retried: Vec<_> = sessions
        .iter()
        .filter(|s| s.field("sqlreg.session.attempt").is_some())
        .collect();
    let numbers: Vec<_> = retried
        .iter()
        .map(|s| s.field("sqlreg.session.attempt").unwrap())
        .collect();
    assert_eq!(numbers, ["1", "2"], "{sessions:#?}");
    assert_eq!(
        retried[0].field("sqlreg.session.outcome"),
        Some("rolled_back")
    );
    let conflict: Vec<_> = spans::children(&all, retried[0])
        .into_iter()
        .filter_map(|statement| statement.field("error.type").map(str::to_owned))
        .collect();
    assert_eq!(conflict, ["40001"], "the statement that met the conflict");
    assert_eq!(
        retried[1].field("sqlreg.session.outcome"),
        Some("committed")
    );
}
