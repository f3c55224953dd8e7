//! The blocking facade, from plain (non-async) test functions as a CLI or
//! a batch job would call it: the session forms commit on `Ok`, roll back
//! on `Err` and panic, `get()` guards commit or roll back, read sessions
//! refuse writes, and a call from inside a tokio runtime is an error that
//! says what to use — never a panic about nested runtimes. On every backend.

mod common;

use std::panic::AssertUnwindSafe;

use common::{Kind, TestDb};
use sea_orm::{ConnectionTrait, Statement};
use sqlreg::Error;
use sqlreg::blocking::{Session, SqlConnectionRegistry};

macro_rules! on_every_backend_blocking {
    ($($kind:ident => $name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                if let Some(db) = common::test_db(Kind::$kind, stringify!($name)) {
                    blocking_forms_keep_the_session_rules(db);
                }
            }
        )*
    };
}

on_every_backend_blocking!(
    SqliteFile => sqlite_file_blocking_forms,
    SqliteMemory => sqlite_memory_blocking_forms,
    Postgres => postgres_blocking_forms,
    MariaDb => mariadb_blocking_forms,
);

fn bodies(s: &Session<'_>) -> Result<Vec<String>, Error> {
    let backend = s.inner().get_database_backend();
    let rows = s.query_all(Statement::from_string(
        backend,
        "SELECT body FROM notes ORDER BY body",
    ))?;
    rows.iter()
        .map(|row| row.try_get_by_index::<String>(0).map_err(Error::from))
        .collect()
}

fn blocking_forms_keep_the_session_rules(db: TestDb) {
    let registry = SqlConnectionRegistry::connect(db.config.clone()).unwrap();
    registry
        .session(|s| {
            s.execute("CREATE TABLE notes (body VARCHAR(50) PRIMARY KEY)")?;
            s.execute("INSERT INTO notes VALUES ('committed')")
        })
        .unwrap();

    let failed = registry.session(|s| {
        s.execute("INSERT INTO notes VALUES ('failed')")?;
        Err::<(), _>(Error::NotFound("the body gives up".into()))
    });
    assert!(matches!(failed, Err(Error::NotFound(_))));

    let panicked = std::panic::catch_unwind(AssertUnwindSafe(|| {
        registry.session(|s| {
            s.execute("INSERT INTO notes VALUES ('panicked')")?;
            panic!("the body panics");
            #[allow(unreachable_code)]
            Ok::<_, Error>(())
        })
    }));
    assert!(panicked.is_err(), "the panic continues");

    registry
        .session(|s| {
            let undone = s.savepoint(|s| {
                s.execute("INSERT INTO notes VALUES ('undone')")?;
                Err::<(), _>(Error::NotFound("the savepoint gives up".into()))
            });
            assert!(undone.is_err());
            let panicked = std::panic::catch_unwind(AssertUnwindSafe(|| {
                s.savepoint(|s| {
                    s.execute("INSERT INTO notes VALUES ('panicked in a savepoint')")?;
                    panic!("the savepoint panics");
                    #[allow(unreachable_code)]
                    Ok::<_, Error>(())
                })
            }));
            assert!(panicked.is_err(), "the panic continues");
            s.savepoint(|s| s.execute("INSERT INTO notes VALUES ('savepoint')"))
        })
        .unwrap();

    let runs = std::cell::Cell::new(0);
    registry
        .transaction(|s| {
            runs.set(runs.get() + 1);
            s.execute("INSERT INTO notes VALUES ('retried form')")
        })
        .unwrap();
    assert_eq!(runs.get(), 1);

    let guard = registry.get().unwrap();
    guard
        .statements()
        .execute("INSERT INTO notes VALUES ('guard')")
        .unwrap();
    guard.commit().unwrap();
    let dropped = registry.get().unwrap();
    dropped
        .statements()
        .execute("INSERT INTO notes VALUES ('dropped')")
        .unwrap();
    drop(dropped);

    let write = registry.read_session(|s| s.execute("INSERT INTO notes VALUES ('read')"));
    if matches!(db.kind, Kind::Postgres | Kind::MariaDb) {
        assert!(write.is_err(), "a read session refuses writes");
    } else {
        write.unwrap(); // SQLite does not enforce read-only access
        registry
            .session(|s| s.execute("DELETE FROM notes WHERE body = 'read'"))
            .unwrap();
    }

    let stored = registry.read_session(bodies).unwrap();
    assert_eq!(stored, ["committed", "guard", "retried form", "savepoint"]);
    assert_eq!(registry.stats().in_use, 0, "every connection handed back");

    let err = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(async { registry.session(|s| s.execute("SELECT 1")) })
        .unwrap_err();
    assert!(
        matches!(err, Error::InsideRuntime { method: "session" }),
        "{err}"
    );
    assert!(err.to_string().contains("spawn_blocking"), "{err}");
    registry.close();
}
