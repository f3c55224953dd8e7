//! One read session's cost in instructions, for callgrind (wall-clock time
//! on a shared machine varies by ±10–20 %; instruction counts do not):
//!
//! ```sh
//! cargo build --release --example session_cost
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/examples/session_cost 0
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/examples/session_cost 2000
//! ```
//!
//! (the difference of the two totals / 2000 is one session). A last argument
//! `subscriber` installs a `tracing` subscriber at INFO writing nowhere, so
//! every span is built and recorded.

use sea_orm::{ConnectionTrait, Statement};
use sqlreg::{Config, Error, SqlConnectionRegistry};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let sessions: u32 = args.get(1).map_or(Ok(1000), |n| n.parse())?;
    if args.get(2).map(String::as_str) == Some("subscriber") {
        tracing_subscriber::fmt()
            .with_writer(std::io::sink)
            .with_max_level(tracing::Level::INFO)
            .init();
    }
    let dir = tempfile::tempdir()?;
    let yaml = format!(
        "db:\n  session: {{pool_size: 1}}\n  url: sqlite:///{}/cost.db\n",
        dir.path().display()
    );
    let db = SqlConnectionRegistry::connect(Config::from_yaml_str(&yaml)?.at("db")?).await?;
    db.session(async |s| {
        s.execute_unprepared("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
            .await?;
        s.execute_unprepared("INSERT INTO t VALUES (1, 'one')")
            .await?;
        Ok::<_, Error>(())
    })
    .await?;
    let read = async || {
        db.read_session(async |s| {
            let backend = s.get_database_backend();
            let select = Statement::from_sql_and_values(
                backend,
                "SELECT id, name FROM t WHERE id = ?",
                [1.into()],
            );
            s.query_one_raw(select)
                .await?
                .ok_or(Error::NotFound("row 1".into()))
        })
        .await
    };
    for _ in 0..100 {
        read().await?;
    }
    for _ in 0..sessions {
        read().await?;
    }
    db.close().await;
    Ok(())
}
