//! Running one statement and reading one number, for tests that only need
//! to see that a database answers.

use sea_orm::{ConnectionTrait, Statement};
use sqlreg::{Error, SqlConnectionRegistry};

/// Runs one statement in a session of `db`.
pub async fn run(db: &SqlConnectionRegistry, sql: &str) -> sqlreg::Result<()> {
    db.session(async |s| {
        s.execute_unprepared(sql)
            .await
            .map(drop)
            .map_err(Error::from)
    })
    .await
}

/// The first column of the first row of `sql`, as a number.
pub async fn count(db: &SqlConnectionRegistry, sql: &str) -> i64 {
    let row = db
        .engine()
        .query_one_raw(Statement::from_string(
            db.engine().get_database_backend(),
            sql,
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index::<i64>(0).unwrap()
}
