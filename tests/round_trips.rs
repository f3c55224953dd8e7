//! Round trips per kind of session, counted on the wire by a relay between
//! the registry and the real server (tests/common/proxy.rs), so a later
//! change cannot add one silently. Each figure is what the session sends
//! after its connection is checked out, release included; issue 9's part 3
//! lowers some of them (a read session's BEGIN and COMMIT) and updates them here.

mod common;

use common::TestDb;
use common::proxy::{relayed, requests};
use sea_orm::ConnectionTrait;
use sqlreg::{Error, Session};

on_every_backend!(round_trips_per_session_kind);

async fn round_trips_per_session_kind(db: TestDb) {
    if matches!(
        db.kind,
        common::Kind::SqliteFile | common::Kind::SqliteMemory
    ) {
        return; // SQLite's hops are measured by the benchmark, not on a wire
    }
    let (registry, proxy) = relayed(&db).await;
    let one_statement = async |s: &Session| {
        s.execute_unprepared("SELECT 1").await?;
        Ok::<_, Error>(())
    };
    let empty = requests(&proxy, async || {
        registry
            .session(async |_| Ok::<_, Error>(()))
            .await
            .unwrap();
    })
    .await;
    let write = requests(&proxy, async || {
        registry.session(one_statement).await.unwrap();
    })
    .await;
    let read = requests(&proxy, async || {
        registry.read_session(one_statement).await.unwrap();
    })
    .await;
    let autocommit = requests(&proxy, async || {
        let s = registry.connection().await.unwrap();
        one_statement(&s).await.unwrap();
    })
    .await;
    println!(
        "{:?} round trips: empty {empty}, session {write}, read_session {read}, connection {autocommit}",
        db.kind
    );
    assert_eq!(empty, 0, "a session that runs nothing");
    assert_eq!(write, 3, "BEGIN, the statement, COMMIT");
    assert_eq!(read, 3, "BEGIN READ ONLY, the statement, COMMIT");
    assert_eq!(autocommit, 1, "the statement alone");
}
