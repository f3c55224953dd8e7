//! Credentials that rotate: `url.password_file` is read for every new
//! connection, so after the password changes on the server (`ALTER ROLE` /
//! `ALTER USER`, as a secret store or an IAM token refresh does) and in the
//! file, new connections use the new one while open ones keep working until
//! they are recycled — without a restart. An unreadable file is a connect
//! error that names the file, never its content.

mod common;

use std::path::Path;

use common::login::{self, Login};
use common::{Kind, TestDb};
use sea_orm::ConnectionTrait;
use sqlreg::{ConnectFailure, DbConfig, Error, SqlConnectionRegistry};

const OLD: &str = "old-Rotating-secret-1";
const NEW: &str = "new-Rotating-secret-2";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_rotated_password_is_used_by_new_connections() {
    if let Some(db) = common::test_db(Kind::Postgres, "rotation") {
        a_rotated_password_is_used_by_new_connections(db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_a_rotated_password_is_used_by_new_connections() {
    if let Some(db) = common::test_db(Kind::MariaDb, "rotation") {
        a_rotated_password_is_used_by_new_connections(db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_password_file_is_named_not_shown() {
    let Some(db) = common::test_db(Kind::Postgres, "rotation_missing") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-secret");
    let err = SqlConnectionRegistry::connect(config(&db, "sqlreg", &missing))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Connect {
                reason: ConnectFailure::PasswordFile,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("no-such-secret"), "{err}");
}

/// The test database on `db`'s server as `user`, the password in `file`.
fn config(db: &TestDb, user: &str, file: &Path) -> DbConfig {
    let password_file = format!("password_file: '{}',", file.display());
    login::config(db, user, &password_file, "{pool_size: 1, max_overflow: 1}")
}

async fn a_rotated_password_is_used_by_new_connections(db: TestDb) {
    let admin = SqlConnectionRegistry::connect(db.config.clone())
        .await
        .unwrap();
    let login = Login::create(&admin, &db, format!("rot{}", std::process::id()), OLD, NEW).await;
    let user = login.user.clone();

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("db-password");
    std::fs::write(&file, format!("{OLD}\n")).unwrap();
    let registry = SqlConnectionRegistry::connect(config(&db, &user, &file))
        .await
        .expect("the password from the file, trailing newline ignored");
    let held = registry.get().await.unwrap();
    held.execute_unprepared("SELECT 1").await.unwrap();

    // The secret store rotates the password: on the server, then in the file.
    login.rotate(&admin).await;
    std::fs::write(&file, format!("{NEW}\n")).unwrap();

    // A second session needs a new connection: it reads the new password.
    let fresh = registry
        .get()
        .await
        .expect("a new connection, new password");
    fresh.execute_unprepared("SELECT 1").await.unwrap();
    fresh.commit().await.unwrap();
    // The connection opened with the old one keeps working.
    held.execute_unprepared("SELECT 1").await.unwrap();
    held.commit().await.unwrap();
    assert_eq!(registry.stats().created, 2, "{:?}", registry.stats());

    // A registry still given the old password is refused, and says so.
    std::fs::write(&file, OLD).unwrap();
    let err = SqlConnectionRegistry::connect(config(&db, &user, &file))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Connect {
                reason: ConnectFailure::AuthenticationFailed,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        !err.to_string().contains(OLD),
        "the password is never shown: {err}"
    );
    registry.close().await;
    login.drop(&admin).await;
}
