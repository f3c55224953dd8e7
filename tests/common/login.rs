//! A login of one test's own (never the shared test user), whose password
//! the test rotates on the server (`ALTER ROLE … PASSWORD` on PostgreSQL,
//! `ALTER USER … IDENTIFIED BY` on MariaDB).

use sea_orm::ConnectionTrait;
use sqlreg::{Config, DbConfig, SqlConnectionRegistry};

use super::{Kind, TestDb};

/// The login's name and the statements that change its password and drop it.
pub struct Login {
    pub user: String,
    rotate: String,
    drop: String,
}

impl Login {
    /// Creates `user` (dropped first, should a run have left it) with the
    /// password `old`, able to read `db`'s database; [`rotate`](Self::rotate)
    /// changes the password to `new`.
    pub async fn create(
        admin: &SqlConnectionRegistry,
        db: &TestDb,
        user: String,
        old: &str,
        new: &str,
    ) -> Self {
        let (create, rotate, drop) = match db.kind {
            Kind::Postgres => (
                format!("CREATE ROLE {user} LOGIN PASSWORD '{old}'"),
                format!("ALTER ROLE {user} PASSWORD '{new}'"),
                format!("DROP ROLE IF EXISTS {user}"),
            ),
            _ => (
                format!(
                    "CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY '{old}'; \
                     GRANT SELECT ON `{}`.* TO '{user}'@'127.0.0.1'",
                    db.name
                ),
                format!("ALTER USER '{user}'@'127.0.0.1' IDENTIFIED BY '{new}'"),
                format!("DROP USER IF EXISTS '{user}'@'127.0.0.1'"),
            ),
        };
        as_admin(admin, &drop).await;
        as_admin(admin, &create).await;
        Self { user, rotate, drop }
    }

    /// Changes the password on the server.
    pub async fn rotate(&self, admin: &SqlConnectionRegistry) {
        as_admin(admin, &self.rotate).await;
    }

    /// Drops the login.
    pub async fn drop(self, admin: &SqlConnectionRegistry) {
        as_admin(admin, &self.drop).await;
    }
}

/// The test database on `db`'s server as `user`: `url_keys` adds to the
/// `url:` block (how the password comes, if it is not left to a provider),
/// `session` is the `session:` block.
pub fn config(db: &TestDb, user: &str, url_keys: &str, session: &str) -> DbConfig {
    let (protocol, port_var) = match db.kind {
        Kind::Postgres => ("postgresql", "SQLREG_TEST_PG_PORT"),
        _ => ("mariadb", "SQLREG_TEST_MARIADB_PORT"),
    };
    let yaml = format!(
        "db:
  create_db: false
  session: {session}
  url: {{protocol: {protocol}, username: {user}, {url_keys}
         host: 127.0.0.1, port: '${{oc.env:{port_var}}}', file: {name}}}
",
        name = db.name,
    );
    Config::from_yaml_str(&yaml).unwrap().at("db").unwrap()
}

/// Runs `sql` on an autocommit connection of the test user's registry.
async fn as_admin(admin: &SqlConnectionRegistry, sql: &str) {
    admin
        .connection()
        .await
        .unwrap()
        .execute_unprepared(sql)
        .await
        .unwrap();
}
