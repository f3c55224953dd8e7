//! What every fault scenario shares: one scenario at a time against the
//! servers, a registry built from the test's own database, and a record of
//! everything shown to the user so the password can be looked for in it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sea_orm::{ConnectionTrait, Statement};
use sqlreg::{DbConfig, Error, SqlConnectionRegistry, UrlConfig};

use crate::common::{self, Kind, TestDb, item, logs};

/// Scenarios restart, stop, freeze and kill things on the servers: never two at once.
static SERVER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Generous bound on one session: a session still running after it is hung.
pub const HANG: Duration = Duration::from_secs(15);

/// Runs `scenario` on a fresh database of `kind`, alone, with logs captured,
/// then checks that the password appears in nothing the scenario saw.
pub async fn run<Fut>(kind: Kind, test: &str, scenario: fn(TestDb, Seen) -> Fut)
where
    Fut: Future<Output = ()>,
{
    let _alone = SERVER.lock().await;
    logs::capture();
    let Some(db) = common::test_db(kind, test) else {
        return;
    };
    let seen = Seen::default();
    scenario(db, seen.clone()).await;
    seen.assert_no_password(test);
}

/// A registry on the test's database (creating the `items` table), with
/// the config adjusted by `tune` first.
pub async fn registry(db: &TestDb, tune: impl FnOnce(&mut DbConfig)) -> SqlConnectionRegistry {
    let mut config = db.config.clone();
    tune(&mut config);
    SqlConnectionRegistry::builder(config)
        .entity(item::Entity)
        .connect()
        .await
        .expect("connect")
}

/// Tags PostgreSQL connections with `name` through `url.query`, so they can
/// be found in `pg_stat_activity`.
pub fn application_name(config: &mut DbConfig, name: &str) {
    let UrlConfig::Parts(parts) = &mut config.url else {
        panic!("the test config gives the URL as parts");
    };
    parts
        .query
        .insert("application_name".to_owned(), name.to_owned());
}

/// Opens `n` connections at once (each runs a statement), returns them all,
/// and waits until the pool holds them idle.
pub async fn warm(registry: &SqlConnectionRegistry, n: u32) {
    let gets = (0..n).map(|_| registry.get());
    let sessions = futures_util::future::try_join_all(gets).await.expect("get");
    for s in &sessions {
        s.execute_unprepared("SELECT 1").await.expect("SELECT 1");
    }
    for s in sessions {
        s.commit().await.expect("commit");
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while registry.stats().idle < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "pool never held {n} idle connections: {:?}",
            registry.stats()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One session that inserts the item `name`, bounded by [`HANG`].
pub async fn insert_session(registry: &SqlConnectionRegistry, name: &str) -> Result<(), Error> {
    let session = registry.session(async |s| item::insert(s, name).await.map(drop));
    tokio::time::timeout(HANG, session)
        .await
        .unwrap_or_else(|_| panic!("session inserting {name:?} hung for {HANG:?}"))
}

/// The sorted names of the committed items.
pub async fn sorted_names(registry: &SqlConnectionRegistry) -> Vec<String> {
    let mut names = item::names(registry).await;
    names.sort();
    names
}

/// The server's id for the connection `conn` runs on.
pub async fn backend_id(conn: &impl ConnectionTrait) -> Result<i64, sea_orm::DbErr> {
    let backend = conn.get_database_backend();
    let sql = match backend {
        sea_orm::DbBackend::Postgres => "SELECT CAST(pg_backend_pid() AS BIGINT) AS id",
        _ => "SELECT CAST(CONNECTION_ID() AS SIGNED) AS id",
    };
    let row = conn
        .query_one_raw(Statement::from_string(backend, sql))
        .await?
        .expect("one row");
    row.try_get::<i64>("", "id")
}

/// Every error message and `Debug` output a scenario got, to be searched
/// for the password at the end.
#[derive(Clone, Default)]
pub struct Seen(Arc<Mutex<Vec<String>>>);

impl Seen {
    /// Records an error as a user would see it: `Display` and `Debug`.
    pub fn error(&self, err: &Error) {
        self.text(format!("{err}\n{err:?}"));
    }

    /// Records any other text shown to a user (a registry's `Debug`, …).
    pub fn text(&self, text: String) {
        self.0.lock().unwrap().push(text);
    }

    fn assert_no_password(&self, test: &str) {
        let password = std::env::var("SQLREG_TEST_PASSWORD").expect("SQLREG_TEST_PASSWORD");
        // Any encoding of the password keeps its leading plain characters.
        let plain: String = password
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || "-._~".contains(*c))
            .collect();
        let mut needles = vec![password.clone()];
        if plain.len() >= 6 {
            needles.push(plain);
        }
        let texts = self.0.lock().unwrap();
        for text in texts.iter() {
            for needle in &needles {
                assert!(!text.contains(needle.as_str()), "password in: {text}");
            }
        }
        let log = logs::text();
        for needle in &needles {
            assert!(!log.contains(needle.as_str()), "password in the log");
        }
        println!(
            "{test}: password absent from {} error/Debug texts and {} log lines",
            texts.len(),
            log.lines().count()
        );
    }
}
