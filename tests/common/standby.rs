//! The test script's PostgreSQL standby, its WAL replay paused and resumed
//! by a test (server-wide: tests that expect replay must not overlap).

use std::time::{Duration, Instant};

use sqlx::{Connection, PgConnection};

/// A connection to the standby's `postgres` database, where the test script
/// granted replay pause and resume (functions' privileges are per database).
pub async fn admin() -> PgConnection {
    let env = |name: &str| {
        std::env::var(name)
            .unwrap_or_else(|_| panic!("{name} is not set: run the suite through scripts/test.sh"))
    };
    let options = sqlx::postgres::PgConnectOptions::new()
        .host("127.0.0.1")
        .port(env("SQLREG_TEST_PG_STANDBY_PORT").parse().unwrap())
        .username(&env("SQLREG_TEST_USER"))
        .password(&env("SQLREG_TEST_PASSWORD"))
        .database("postgres");
    PgConnection::connect_with(&options).await.unwrap()
}

/// Pauses replay and waits until the standby says it is `paused`; resumes
/// it again before failing if it never does.
pub async fn pause_replay(standby: &mut PgConnection) {
    sqlx::query("SELECT pg_wal_replay_pause()")
        .execute(&mut *standby)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let state: String = sqlx::query_scalar("SELECT pg_get_wal_replay_pause_state()")
            .fetch_one(&mut *standby)
            .await
            .unwrap();
        if state == "paused" {
            return;
        }
        if Instant::now() >= deadline {
            resume_replay(standby).await;
            panic!("replay never paused");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Resumes replay.
pub async fn resume_replay(standby: &mut PgConnection) {
    sqlx::query("SELECT pg_wal_replay_resume()")
        .execute(standby)
        .await
        .unwrap();
}
