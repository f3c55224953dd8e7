//! `sqlreg exec`: one statement in a session — committed unless `--rollback` —
//! with its rows as an aligned table or JSON, and the row count and time.

use std::process::ExitCode;
use std::time::Instant;

use sea_orm::{ConnectionTrait, Statement};
use sqlreg::{Backend, Session, SqlConnectionRegistry};

use crate::Failure;
use crate::inputs::{self, Inputs};
use crate::table::{self, Outcome, millis, plural};
use crate::value;

/// Arguments of `sqlreg exec`.
#[derive(clap::Args)]
pub struct Args {
    /// The database section to use, as a dotted path.
    #[arg(long, default_value = "core_lib.db")]
    path: String,
    /// Roll the session back instead of committing it.
    #[arg(long)]
    rollback: bool,
    /// Print the result as JSON ({"columns": [..], "rows": [[..]], ..}).
    #[arg(long)]
    json: bool,
    /// [CONFIG] (default: $SQLREG_CONFIG, else ./config.yaml), then the SQL,
    /// then overrides such as core_lib.db.log_queries=true.
    #[arg(value_name = "[CONFIG] SQL | KEY=VALUE", required = true)]
    args: Vec<String>,
}

pub async fn run(args: Args) -> Result<ExitCode, Failure> {
    let inputs = Inputs::sort(args.args);
    let (file, sql) = match inputs.plain.as_slice() {
        [sql] => (None, sql.as_str()),
        [file, sql] => (Some(file.as_str()), sql.as_str()),
        other => {
            return Err(format!(
                "expected [CONFIG] SQL, got {} arguments: {}",
                other.len(),
                inputs::shown(other)
            )
            .into());
        }
    };
    let (_, config) = inputs.load(file)?;
    // Connect errors quote the URL: shown as the config shows its own errors.
    let masked = |err: sqlreg::Error| config.mask(&args.path, &err.to_string());
    let registry = SqlConnectionRegistry::connect(config.at(&args.path)?)
        .await
        .map_err(masked)?;
    let session = registry.get().await.map_err(masked)?;
    let started = Instant::now();
    let ran = run_statement(&session, registry.url().backend(), sql).await;
    let elapsed = started.elapsed();
    let ended = match (&ran, args.rollback) {
        (Ok(_), false) => session.commit().await,
        _ => {
            session.rollback().await;
            Ok(())
        }
    };
    registry.close().await;
    let outcome = ran?;
    ended?;
    let verb = if args.rollback {
        "rolled back"
    } else {
        "committed"
    };
    let summary = match &outcome {
        Outcome::Rows { rows, .. } => plural(rows.len(), "row"),
        Outcome::Affected(n) => format!(
            "{} affected",
            plural(usize::try_from(*n).unwrap_or(usize::MAX), "row")
        ),
    };
    let summary = format!("{summary} in {:.2} ms, {verb}", millis(elapsed));
    if args.json {
        println!("{}", table::json(&outcome));
        eprintln!("{summary}");
    } else {
        print!("{}", table::render(&outcome));
        println!("{summary}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Prepares the statement to learn its columns: one with columns is a query
/// whose rows are fetched, one without is executed for its affected rows.
async fn run_statement(session: &Session, backend: Backend, sql: &str) -> sqlreg::Result<Outcome> {
    let columns = match backend {
        Backend::Sqlite => columns::<sqlx::Sqlite>(session, sql).await?,
        Backend::Postgres => columns::<sqlx::Postgres>(session, sql).await?,
        Backend::MySql => columns::<sqlx::MySql>(session, sql).await?,
    };
    let statement = Statement::from_string(session.get_database_backend(), sql);
    if columns.is_empty() {
        let done = session.execute_raw(statement).await?;
        return Ok(Outcome::Affected(done.rows_affected()));
    }
    let rows = session.query_all_raw(statement).await?;
    let rows = rows
        .iter()
        .map(|row| value::cells(row, columns.len()))
        .collect();
    Ok(Outcome::Rows { columns, rows })
}

/// The names of the columns `sql` returns (none for a statement without rows).
async fn columns<DB>(session: &Session, sql: &str) -> sqlreg::Result<Vec<String>>
where
    DB: sqlx::Database,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
{
    use sqlx::{Column, Executor, SqlSafeStr, Statement};

    let mut conn = session.sqlx::<DB>().await?;
    let prepared = (&mut conn)
        .prepare(sqlx::AssertSqlSafe(sql.to_owned()).into_sql_str())
        .await?;
    Ok(prepared
        .columns()
        .iter()
        .map(|c| c.name().to_owned())
        .collect())
}
