//! `log_queries`: with it on, every statement is logged through `tracing`
//! (target `sqlx::query`, INFO) with its SQL and duration, never with its
//! bound values; with it off (the default), statements are not logged.
//!
//! The log capture is shared by every test of this binary, so each test looks
//! only for lines carrying a marker no other test uses.

mod common;

use common::item::{self, Entity as Items};
use common::{TestDb, logs, unique_name};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use sqlreg::{Error, SqlConnectionRegistry};

on_every_backend!(logs_sql_and_duration_not_values, not_logged_by_default,);

/// The captured lines that contain `marker`.
fn lines_with(marker: &str) -> Vec<String> {
    logs::text()
        .lines()
        .filter(|line| line.contains(marker))
        .map(str::to_owned)
        .collect()
}

/// `SELECT <bound value> AS v, '<marker>' AS m`: the SQL text carries the
/// marker, the value travels only as a bound parameter.
fn select_with_bound_value(backend: DbBackend, marker: &str, value: &str) -> Statement {
    let placeholder = match backend {
        DbBackend::Postgres => "CAST($1 AS TEXT)",
        DbBackend::MySql => "CAST(? AS CHAR)",
        _ => "?",
    };
    Statement::from_sql_and_values(
        backend,
        format!("SELECT {placeholder} AS v, '{marker}' AS m"),
        [value.into()],
    )
}

async fn logs_sql_and_duration_not_values(db: TestDb) {
    logs::capture();
    let registry = SqlConnectionRegistry::builder(db.config.clone().log_queries(true))
        .entity(Items)
        .connect()
        .await
        .unwrap();
    let marker = unique_name("logged-marker");
    let bound = unique_name("bound-secret");
    let item_name = unique_name("item-secret");

    let echoed = registry
        .session(async |s| {
            let select = select_with_bound_value(s.get_database_backend(), &marker, &bound);
            let row = s.query_one_raw(select).await?.expect("one row");
            item::insert(s, &item_name).await?;
            Ok::<_, Error>(row.try_get::<String>("", "v")?)
        })
        .await
        .unwrap();
    assert_eq!(echoed, bound, "the value was bound and sent");
    assert_eq!(item::names(&registry).await, [item_name.as_str()]);

    let logged = lines_with(&marker);
    assert_eq!(logged.len(), 1, "the statement is logged once: {logged:#?}");
    let line = &logged[0];
    assert!(line.contains("INFO"), "at INFO: {line}");
    assert!(line.contains("sqlx::query"), "target sqlx::query: {line}");
    assert!(line.contains("SELECT"), "with its SQL: {line}");
    assert!(
        line.contains("elapsed=") && line.contains("elapsed_secs="),
        "with its duration: {line}"
    );

    // The ActiveModel insert's SQL is logged too (with placeholders only).
    let text = logs::text();
    assert!(
        text.lines()
            .any(|l| l.contains("sqlx::query") && l.contains("INSERT INTO")),
        "the INSERT is logged:\n{text}"
    );
    for secret in [&bound, &item_name] {
        assert!(
            !text.contains(secret.as_str()),
            "bound value {secret} appears in the log:\n{text}"
        );
    }
}

async fn not_logged_by_default(db: TestDb) {
    logs::capture();
    assert!(!db.config.log_queries, "log_queries defaults to false");
    let quiet = item::registry(&db).await;
    let marker = unique_name("unlogged-marker");
    let select = format!("SELECT '{marker}' AS m");
    quiet
        .session(async |s| {
            s.execute_unprepared(&select).await?;
            Ok::<_, Error>(())
        })
        .await
        .unwrap();
    quiet.engine().execute_unprepared(&select).await.unwrap();

    // A statement like it through a registry that logs, as a control: the
    // capture does see those (for in-memory SQLite another database, which
    // does not matter for a SELECT of a literal).
    let control = unique_name("control-marker");
    let logging = SqlConnectionRegistry::connect(db.config.clone().log_queries(true))
        .await
        .unwrap();
    logging
        .engine()
        .execute_unprepared(&format!("SELECT '{control}' AS m"))
        .await
        .unwrap();
    assert_eq!(
        lines_with(&control).len(),
        1,
        "the control statement is logged"
    );

    let logged = lines_with(&marker);
    assert!(
        logged.is_empty(),
        "logged with log_queries off: {logged:#?}"
    );
}
