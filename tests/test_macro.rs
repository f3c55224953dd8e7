//! `#[sqlreg::test]`: the test function gets a registry on a fresh database
//! (SQLite here: no test config in this repository), migrated and with its
//! fixtures; a test may return a `Result`; a panic still fails the test.

mod common;

use common::sql::{count, run};
use sqlreg::SqlConnectionRegistry;

#[sqlreg::test(migrations = "tests/migrations", fixtures("notes"))]
async fn starts_migrated_with_its_fixtures(db: SqlConnectionRegistry) {
    assert_eq!(count(&db, "SELECT COUNT(*) FROM notes").await, 1);
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM _sqlx_migrations").await,
        1,
        "tests/migrations applied"
    );
}

#[sqlreg::test(migrations = "tests/migrations")]
async fn may_return_a_result(db: SqlConnectionRegistry) -> Result<(), sqlreg::Error> {
    run(&db, "INSERT INTO notes (id, author) VALUES (1, 'me')").await?;
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM notes").await,
        1,
        "no fixture"
    );
    Ok(())
}

#[sqlreg::test(entities(common::item::Entity))]
async fn entities_get_their_tables(db: SqlConnectionRegistry) {
    db.session(async |s| common::item::insert(s, "made").await)
        .await
        .unwrap();
    assert_eq!(common::item::names(&db).await, ["made"]);
}

#[sqlreg::test]
#[should_panic(expected = "the body's own panic")]
async fn a_panic_fails_the_test(_db: SqlConnectionRegistry) {
    panic!("the body's own panic");
}
