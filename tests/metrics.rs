//! The pool's counters and gauges reach whatever `metrics` recorder the
//! application installed, labelled with the (redacted) database URL.

mod common;

use common::{Kind, item, test_db};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use sqlreg::Error;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_and_gauges_reach_the_installed_recorder() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder
        .install()
        .expect("the only recorder of this test binary");

    let db = test_db(Kind::SqliteMemory, "metrics").unwrap();
    let registry = item::registry(&db).await;
    for n in 0..3 {
        registry
            .session(async |s| item::insert(s, &format!("m{n}")).await)
            .await
            .unwrap();
    }
    let failed: Result<(), Error> = registry
        .session(async |_| Err(Error::NotFound("x".into())))
        .await;
    assert!(failed.is_err());
    let stats = registry.stats();

    let database = registry.url().redacted();
    // One snapshot: the debugging recorder reports counters as deltas since the last.
    let snapshot = snapshotter.snapshot().into_vec();
    let value_of = |name: &str| {
        snapshot
            .iter()
            .find(|(key, _, _, _)| {
                key.key().name() == name
                    && key
                        .key()
                        .labels()
                        .any(|l| l.key() == "database" && l.value() == database)
            })
            .map(|(_, _, _, value)| value)
    };
    assert_eq!(
        value_of("sqlreg_acquired_total"),
        Some(&DebugValue::Counter(stats.acquired))
    );
    assert_eq!(
        value_of("sqlreg_created_total"),
        Some(&DebugValue::Counter(stats.created))
    );
    assert_eq!(stats.acquired, 4, "four sessions: {stats:?}");
    let size = value_of("sqlreg_pool_size");
    assert!(
        matches!(size, Some(DebugValue::Gauge(value)) if value.into_inner() == f64::from(stats.size)),
        "{size:?} vs {stats:?}"
    );
}
