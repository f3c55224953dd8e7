//! Credentials that rotate, given in code: a `PasswordProvider` (an RDS IAM
//! token, a Vault dynamic secret) is asked for the password when a new
//! connection needs one and the last answer's TTL has run out; connections
//! opening together share one call. After the password changes on the
//! server (`ALTER ROLE` / `ALTER USER`) and in the secret store, new
//! connections use the new one once the TTL is over, while open ones keep
//! working until they are recycled. A failing provider is a connect error
//! that says so, with the provider's message and never a password.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::login::{self, Login};
use common::{Kind, TestDb};
use sea_orm::ConnectionTrait;
use sqlreg::{
    BoxError, Config, ConnectFailure, Credential, DbConfig, DbUrl, Error, PasswordFuture,
    PasswordProvider, SqlConnectionRegistry,
};

const OLD: &str = "old-Provided-secret-1";
const NEW: &str = "new-Provided-secret-2";
/// Long enough for the connections opened before the rotation on a slow machine.
const TTL: Duration = Duration::from_secs(4);

/// A secret store: the password it hands out now, how often it was asked,
/// and for which hosts.
#[derive(Clone, Default)]
struct Store {
    password: Arc<Mutex<String>>,
    calls: Arc<AtomicUsize>,
    asked_for: Arc<Mutex<Vec<DbUrl>>>,
}

impl Store {
    fn new(password: &str) -> Self {
        let store = Self::default();
        store.set(password);
        store
    }

    fn set(&self, password: &str) {
        *self.password.lock().unwrap() = password.to_owned();
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl PasswordProvider for Store {
    fn password<'a>(&'a self, host: &'a DbUrl) -> PasswordFuture<'a> {
        Box::pin(async move {
            self.calls.fetch_add(1, Ordering::SeqCst);
            self.asked_for.lock().unwrap().push(host.clone());
            // A round trip to the store: callers arriving meanwhile wait.
            tokio::time::sleep(Duration::from_millis(200)).await;
            let password = self.password.lock().unwrap().clone();
            Ok(Credential::new(password, TTL))
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_rotated_password_reaches_new_connections_after_the_ttl() {
    if let Some(db) = common::test_db(Kind::Postgres, "provider") {
        a_rotated_password_reaches_new_connections_after_the_ttl(db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_a_rotated_password_reaches_new_connections_after_the_ttl() {
    if let Some(db) = common::test_db(Kind::MariaDb, "provider") {
        a_rotated_password_reaches_new_connections_after_the_ttl(db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_failing_provider_is_a_clear_connect_error() {
    if let Some(db) = common::test_db(Kind::Postgres, "provider_fails") {
        a_failing_provider_is_a_clear_connect_error(db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_a_failing_provider_is_a_clear_connect_error() {
    if let Some(db) = common::test_db(Kind::MariaDb, "provider_fails") {
        a_failing_provider_is_a_clear_connect_error(db).await;
    }
}

/// The error connecting with `provider` ends in.
async fn refused(config: DbConfig, provider: impl PasswordProvider) -> Error {
    SqlConnectionRegistry::builder(config)
        .password_provider(provider)
        .connect()
        .await
        .unwrap_err()
}

#[tokio::test]
async fn a_provider_and_a_password_file_are_refused_together() {
    let yaml = "db:\n  url: {protocol: postgresql, username: app, password_file: /run/secrets/db, \
                host: 127.0.0.1, port: 1, file: app}";
    let config = Config::from_yaml_str(yaml).unwrap().at("db").unwrap();
    let err = refused(config, Store::new(OLD)).await;
    assert!(
        matches!(&err, Error::Config { path, .. } if path == "url.password_file"),
        "{err}"
    );
    assert!(err.to_string().contains("password provider"), "{err}");

    let config = DbConfig::new("postgresql://app:written-secret@127.0.0.1:1/app")
        .password_provider(Store::new(OLD));
    let err = SqlConnectionRegistry::connect(config).await.unwrap_err();
    assert!(
        matches!(&err, Error::Config { path, .. } if path == "url.password"),
        "{err}"
    );
    assert!(!err.to_string().contains("written-secret"), "{err}");
}

#[tokio::test]
async fn a_provider_that_does_not_answer_times_out() {
    let yaml = "db:\n  url: postgresql://app@127.0.0.1:1/app\n  session: {connect_timeout: 0.5}";
    let config = Config::from_yaml_str(yaml).unwrap().at("db").unwrap();
    let err = refused(config, |_: &DbUrl| {
        std::future::pending::<Result<Credential, BoxError>>()
    })
    .await;
    assert_eq!(
        err.connect_failure(),
        Some(ConnectFailure::PasswordProvider),
        "{err}"
    );
    assert!(err.to_string().contains("connect_timeout"), "{err}");
}

#[test]
fn debug_never_shows_the_password() {
    let config = DbConfig::new("postgresql://app@127.0.0.1/app").password_provider(Store::new(OLD));
    let shown = format!("{config:?}");
    assert!(shown.contains("PasswordProvider(..)"), "{shown}");
    let credential = Credential::new(OLD, TTL);
    assert_eq!(credential.password(), OLD);
    let shown = format!("{credential:?}");
    assert!(!shown.contains(OLD), "{shown}");
}

/// The test database on `db`'s server as `user`, no password: the
/// provider gives it.
fn config(db: &TestDb, user: &str) -> DbConfig {
    login::config(
        db,
        user,
        "",
        "{pool_size: 2, max_overflow: 3, pool_timeout: 5}",
    )
}

/// A login of its own for one test, named from `prefix`.
async fn create_login(admin: &SqlConnectionRegistry, db: &TestDb, prefix: &str) -> Login {
    let user = format!("{prefix}{}", std::process::id());
    Login::create(admin, db, user, OLD, NEW).await
}

/// Who the session's connection is logged in as.
async fn current_user(session: &sqlreg::Session) -> String {
    let sql = match session.get_database_backend() {
        sea_orm::DbBackend::Postgres => "SELECT current_user::text",
        _ => "SELECT SUBSTRING_INDEX(CURRENT_USER(), '@', 1)",
    };
    let backend = session.get_database_backend();
    let row = session
        .query_one_raw(sea_orm::Statement::from_string(backend, sql))
        .await
        .unwrap()
        .expect("one row");
    row.try_get_by_index(0).unwrap()
}

async fn a_rotated_password_reaches_new_connections_after_the_ttl(db: TestDb) {
    let admin = SqlConnectionRegistry::connect(db.config.clone())
        .await
        .unwrap();
    let login = create_login(&admin, &db, "prov").await;
    let store = Store::new(OLD);
    let registry = SqlConnectionRegistry::builder(config(&db, &login.user))
        .password_provider(store.clone())
        .connect()
        .await
        .expect("the provider's password");
    assert!(
        format!("{registry:?} {:?}", registry.config()).contains("PasswordProvider(..)"),
        "{:?}",
        registry.config()
    );
    assert!(!format!("{:?}", registry.config()).contains(OLD));

    // Two connections within the TTL: the provider was asked once.
    let first = registry.get().await.unwrap();
    let second = registry.get().await.unwrap();
    assert_eq!(current_user(&first).await, login.user);
    assert_eq!(current_user(&second).await, login.user);
    assert_eq!(registry.stats().created, 2, "{:?}", registry.stats());
    assert_eq!(store.calls(), 1, "asked again within the TTL");
    let asked = store.asked_for.lock().unwrap()[0].clone();
    assert_eq!(asked.username(), Some(login.user.as_str()));
    assert_eq!(asked.host(), Some("127.0.0.1"));
    assert_eq!(asked.password(), None);

    // The secret store rotates the password: on the server, then in the store.
    login.rotate(&admin).await;
    store.set(NEW);
    tokio::time::sleep(TTL + Duration::from_millis(100)).await;

    // Three sessions need new connections at once: one call, new password.
    let (a, b, c) = tokio::join!(registry.get(), registry.get(), registry.get());
    let opened = [
        a.expect("a new connection, new password"),
        b.expect("a new connection, new password"),
        c.expect("a new connection, new password"),
    ];
    for session in &opened {
        assert_eq!(current_user(session).await, login.user);
    }
    assert_eq!(
        store.calls(),
        2,
        "connections opening together share one call"
    );
    assert_eq!(registry.stats().created, 5, "{:?}", registry.stats());

    // The connections opened with the old password keep working.
    for session in [first, second].into_iter().chain(opened) {
        session.execute_unprepared("SELECT 1").await.unwrap();
        session.commit().await.unwrap();
    }
    // The engine's pool opens its first connection with the new password.
    registry
        .engine()
        .execute_unprepared("SELECT 1")
        .await
        .expect("the engine uses the newest password");

    // A registry still given the old password is refused, and says so.
    let stale = refused(config(&db, &login.user), Store::new(OLD)).await;
    assert_eq!(
        stale.connect_failure(),
        Some(ConnectFailure::AuthenticationFailed),
        "{stale}"
    );
    assert!(!stale.to_string().contains(OLD), "{stale}");

    registry.close().await;
    login.drop(&admin).await;
    admin.close().await;
}

async fn a_failing_provider_is_a_clear_connect_error(db: TestDb) {
    let admin = SqlConnectionRegistry::connect(db.config.clone())
        .await
        .unwrap();
    let login = create_login(&admin, &db, "provfail").await;

    // Failing from the start: the registry does not connect.
    let err = refused(config(&db, &login.user), |_: &DbUrl| async {
        Err::<Credential, BoxError>("vault is sealed".into())
    })
    .await;
    assert_eq!(
        err.connect_failure(),
        Some(ConnectFailure::PasswordProvider),
        "{err}"
    );
    let shown = err.to_string();
    assert!(shown.contains("password provider failed"), "{shown}");
    assert!(shown.contains("vault is sealed"), "{shown}");

    // Failing later: sessions that need a new connection get that error;
    // the connection already open keeps working.
    let healthy = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let switch = Arc::clone(&healthy);
    let registry = SqlConnectionRegistry::builder(config(&db, &login.user))
        .password_provider(move |_: &DbUrl| {
            let healthy = switch.load(Ordering::SeqCst);
            async move {
                if healthy {
                    Ok(Credential::new(OLD, Duration::ZERO))
                } else {
                    Err::<_, BoxError>(
                        format!("token service answered 503 (last was {OLD})").into(),
                    )
                }
            }
        })
        .connect()
        .await
        .unwrap();
    let held = registry.get().await.unwrap();
    healthy.store(false, Ordering::SeqCst);
    let err = registry.get().await.unwrap_err();
    assert_eq!(
        err.connect_failure(),
        Some(ConnectFailure::PasswordProvider),
        "{err}"
    );
    let shown = err.to_string();
    assert!(shown.contains("token service answered 503"), "{shown}");
    assert!(!shown.contains(OLD), "the password is never shown: {shown}");
    held.execute_unprepared("SELECT 1").await.unwrap();
    held.commit().await.unwrap();

    registry.close().await;
    login.drop(&admin).await;
    admin.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_replica_gets_its_password_from_the_provider() {
    let Some(db) = common::test_db(Kind::Postgres, "provider_replica") else {
        return;
    };
    let standby_port = std::env::var("SQLREG_TEST_PG_STANDBY_PORT")
        .expect("SQLREG_TEST_PG_STANDBY_PORT is not set: run the suite through scripts/test.sh");
    let admin = SqlConnectionRegistry::connect(db.config.clone())
        .await
        .unwrap();
    let login = create_login(&admin, &db, "provrep").await;
    let store = Store::new(OLD);
    // Reads go to the standby only, never to the primary.
    let yaml = format!(
        "db:
  create_db: false
  session: {{pool_size: 1, max_overflow: 1}}
  url: {{protocol: postgresql, username: {user}, host: 127.0.0.1,
         port: '${{oc.env:SQLREG_TEST_PG_PORT}}', file: {name}}}
  replicas: [{{port: '${{oc.env:SQLREG_TEST_PG_STANDBY_PORT}}'}}]
  routing: {{fallback: error}}
",
        user = login.user,
        name = db.name,
    );
    let config = Config::from_yaml_str(&yaml).unwrap().at("db").unwrap();
    let registry = SqlConnectionRegistry::builder(config)
        .password_provider(store.clone())
        .connect()
        .await
        .expect("the provider's password on the primary");

    // The role and the database reach the standby by replication.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let session = loop {
        match registry.get_read_only().await {
            Ok(session) => break session,
            Err(_) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(err) => panic!("no read session on the standby: {err}"),
        }
    };
    let backend = session.get_database_backend();
    let row = session
        .query_one_raw(sea_orm::Statement::from_string(
            backend,
            "SELECT pg_is_in_recovery()",
        ))
        .await
        .unwrap()
        .expect("one row");
    assert!(
        row.try_get_by_index::<bool>(0).unwrap(),
        "the read session runs on the standby"
    );
    assert_eq!(current_user(&session).await, login.user);
    drop(session);
    let ports: Vec<Option<u16>> = store
        .asked_for
        .lock()
        .unwrap()
        .iter()
        .map(DbUrl::port)
        .collect();
    assert!(
        ports.contains(&Some(standby_port.parse().unwrap())),
        "asked for the standby's own host: {ports:?}"
    );

    registry.close().await;
    login.drop(&admin).await;
    admin.close().await;
}
