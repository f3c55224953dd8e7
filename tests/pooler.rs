//! sqlreg behind PgBouncer (Debian's 1.18, started by the test script in
//! front of the test PostgreSQL): in transaction mode — server connections
//! shared between clients, four per database — every session form works,
//! read sessions still refuse writes, nothing a session does reaches
//! another client of the pooler, and statements that would are refused;
//! in session mode the registry's settings hold per connection. Without
//! `session.pooler`, the connect error names the setting. With a pooler in
//! front of the standby too (one pooler per host), replicas and multi-host
//! URLs work through them: reads on the replica, read-your-writes, the
//! probes of every host; and a failover, on a pair of the test's own with
//! a pooler in front of each server.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::item;
use common::server::{number, on_replica};
use common::{Kind, TestDb};
use sea_orm::{ConnectionTrait, Statement};
use sqlreg::{Config, DbConfig, Error, Isolation, Session, SqlConnectionRegistry};
use sqlx::Connection as _;

/// The pooler's port in `mode` (`transaction` or `session` in front of the
/// primary, `standby` — transaction mode — in front of the standby), from
/// the test script; `None` on a developer machine without it (a failure
/// under CI).
fn pooler_port(mode: &str) -> Option<u16> {
    let var = match mode {
        "transaction" => "SQLREG_TEST_PGBOUNCER_PORT",
        "standby" => "SQLREG_TEST_PGBOUNCER_STANDBY_PORT",
        _ => "SQLREG_TEST_PGBOUNCER_SESSION_PORT",
    };
    match std::env::var(var) {
        Ok(port) => Some(port.parse().expect("a port number")),
        Err(_) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true but {var} is not set: run the suite through scripts/test.sh")
        }
        Err(_) => {
            eprintln!("SKIPPED: no PgBouncer (run scripts/test.sh)");
            None
        }
    }
}

/// A fresh database on the test PostgreSQL, created over the direct URL
/// (PgBouncer reports a missing database in words of its own), then
/// reached through the pooler in `mode` with `session` settings (YAML flow
/// mapping entries).
async fn through_pooler(mode: &str, test: &str, session: &str) -> Option<(TestDb, DbConfig)> {
    let port = pooler_port(mode)?;
    let db = common::test_db(Kind::Postgres, test)?;
    SqlConnectionRegistry::connect(db.config.clone())
        .await
        .expect("the database, created directly")
        .close()
        .await;
    let yaml = format!(
        "db:
  url: {{protocol: postgresql, username: '${{oc.env:SQLREG_TEST_USER}}',
         password: '${{oc.env:SQLREG_TEST_PASSWORD}}', host: 127.0.0.1, port: {port},
         file: {name}}}
  session: {{{session}}}
",
        name = db.name
    );
    let config = Config::from_yaml_str(&yaml).unwrap().at("db").unwrap();
    Some((db, config))
}

/// A plain sqlx connection through the pooler in transaction mode, as
/// another application would have one (simple queries only, so it needs
/// no prepared statement of its own).
async fn other_client(database: &str) -> sqlx::PgConnection {
    let options = sqlx::postgres::PgConnectOptions::new()
        .host("127.0.0.1")
        .port(pooler_port("transaction").unwrap())
        .username(&std::env::var("SQLREG_TEST_USER").unwrap())
        .password(&std::env::var("SQLREG_TEST_PASSWORD").unwrap())
        .database(database)
        .statement_cache_capacity(0);
    sqlx::PgConnection::connect_with(&options).await.unwrap()
}

/// The text the first column of `sql`'s one row holds, on `conn`.
async fn show(conn: &mut sqlx::PgConnection, sql: &'static str) -> String {
    use sqlx::Row as _;
    let rows = sqlx::raw_sql(sql).fetch_all(&mut *conn).await.unwrap();
    rows[0].get::<String, _>(0)
}

async fn exec(s: &Session, sql: &str) -> Result<(), Error> {
    s.execute_unprepared(sql)
        .await
        .map(drop)
        .map_err(Error::from)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_setting_the_connect_error_names_it() {
    let Some((_db, mut config)) = through_pooler("transaction", "pooler_hint", "").await else {
        return;
    };
    config.session.pooler = sqlreg::Pooler::None;
    let err = SqlConnectionRegistry::connect(config).await.unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("unsupported startup parameter"),
        "{message}"
    );
    assert!(message.contains("session.pooler: transaction"), "{message}");
    assert!(!message.contains(&std::env::var("SQLREG_TEST_PASSWORD").unwrap()));
}

/// Four registries (four applications) share the pooler's four server
/// connections: 640 sessions of every form, none failing, every row there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_session_form_works_through_a_transaction_pooler() {
    let Some((db, config)) = through_pooler(
        "transaction",
        "pooler_forms",
        "pooler: transaction, statement_timeout: 5, pool_size: 3",
    )
    .await
    else {
        return;
    };
    let first = item::registry_with(config.clone()).await;
    first
        .connection()
        .await
        .unwrap()
        .execute_unprepared("CREATE TABLE counters (id int PRIMARY KEY, n int NOT NULL)")
        .await
        .unwrap();
    exec(
        &first.connection().await.unwrap(),
        "INSERT INTO counters VALUES (1, 0)",
    )
    .await
    .unwrap();
    let mut registries = vec![first];
    for _ in 1..4 {
        registries.push(
            SqlConnectionRegistry::connect(config.clone())
                .await
                .unwrap(),
        );
    }
    let failures = Arc::new(AtomicU32::new(0));
    let increments = Arc::new(AtomicU32::new(0));
    let mut tasks = Vec::new();
    for (client, registry) in registries.iter().enumerate() {
        for task in 0..2 {
            let registry = registry.clone();
            let (failures, increments) = (Arc::clone(&failures), Arc::clone(&increments));
            tasks.push(tokio::spawn(async move {
                for n in 0..80 {
                    let name = format!("c{client}t{task}n{n}");
                    let outcome = session_of_kind(&registry, n % 8, &name).await;
                    match outcome {
                        Ok(incremented) => {
                            increments.fetch_add(incremented, Ordering::SeqCst);
                        }
                        Err(err) => {
                            eprintln!("{name}: {err}");
                            failures.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                }
            }));
        }
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(failures.load(Ordering::SeqCst), 0, "sessions failed");
    let registry = &registries[0];
    // Kinds 0, 1 (its savepoint's row), 4 and 5 store one row each, per
    // ten of the 80 sessions of each of the eight tasks.
    let names = item::names(registry).await;
    assert_eq!(names.len(), 8 * 10 * 4, "rows lost or added");
    assert!(names.iter().all(|name| !name.ends_with("-undone")));
    let counter = registry
        .read_session(async |s| number(s, "SELECT n::bigint FROM counters WHERE id = 1").await)
        .await
        .unwrap();
    assert_eq!(counter, i64::from(increments.load(Ordering::SeqCst)));
    drop(db);
}

/// One session of kind `kind`; how many times it added to the counter.
async fn session_of_kind(
    registry: &SqlConnectionRegistry,
    kind: u32,
    name: &str,
) -> Result<u32, Error> {
    match kind {
        0 => registry
            .session(async |s| item::insert(s, name).await.map(drop))
            .await
            .map(|()| 0),
        1 => {
            registry
                .session(async |s| {
                    item::insert(s, name).await?;
                    let undone = format!("{name}-undone");
                    let failed = s
                        .savepoint(async |s| {
                            item::insert(s, &undone).await?;
                            Err::<(), _>(Error::NotFound("undo it".into()))
                        })
                        .await;
                    assert!(failed.is_err());
                    Ok::<_, Error>(0)
                })
                .await
        }
        2 => {
            registry
                .read_session(async |s| {
                    item::count_on(s)
                        .await
                        .ge(&0)
                        .then_some(0)
                        .ok_or(Error::NotFound("count".into()))
                })
                .await
        }
        3 => {
            registry
                .transaction(async |s| {
                    exec(s, "UPDATE counters SET n = n + 1 WHERE id = 1").await?;
                    Ok::<_, Error>(1)
                })
                .await
        }
        4 => {
            let s = registry.connection().await?;
            item::insert(&s, name).await.map(|_| 0)
        }
        5 => {
            registry
                .isolation(Isolation::Serializable)
                .transaction(async |s| {
                    item::insert(s, name).await?;
                    Ok::<_, Error>(0)
                })
                .await
        }
        6 => {
            registry
                .isolation(Isolation::RepeatableRead)
                .read_session(async |s| {
                    let first = item::count_on(s).await;
                    let second = item::count_on(s).await;
                    assert_eq!(first, second, "one snapshot for both");
                    Ok::<_, Error>(0)
                })
                .await
        }
        _ => {
            registry
                .session(async |s| {
                    // Settings that end with the transaction are fine.
                    exec(s, "SET LOCAL work_mem = '8MB'").await?;
                    number(s, "SELECT 1::bigint").await.map(|_| 0)
                })
                .await
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_sessions_refuse_writes_through_the_pooler() {
    let Some((_db, config)) =
        through_pooler("transaction", "pooler_read_only", "pooler: transaction").await
    else {
        return;
    };
    let registry = item::registry_with(config).await;
    let err = registry
        .read_session(async |s| item::insert(s, "refused").await.map(drop))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("read-only transaction"), "{err}");
    assert!(item::names(&registry).await.is_empty());
}

/// A session-level `SET` would stay on a server connection that the
/// pooler hands to other clients next: refused, saying what to use.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_state_is_refused_behind_a_transaction_pooler() {
    let Some((_db, config)) =
        through_pooler("transaction", "pooler_set", "pooler: transaction").await
    else {
        return;
    };
    let registry = item::registry_with(config).await;
    for sql in [
        "SET search_path TO elsewhere",
        "SELECT set_config('search_path', 'elsewhere', false)",
        "SELECT pg_advisory_lock(7)",
        "CREATE TEMP TABLE scratch (id int)",
        "LISTEN events",
    ] {
        let err = registry
            .session(async |s| exec(s, sql).await)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("SET LOCAL"), "{sql}: {err}");
        let conn = registry.connection().await.unwrap();
        let err = exec(&conn, sql).await.unwrap_err();
        assert!(
            err.to_string().contains("transaction pooler"),
            "{sql}: {err}"
        );
    }
    registry
        .session(async |s| exec(s, "SET LOCAL search_path TO public").await)
        .await
        .expect("SET LOCAL ends with the transaction");
}

/// After many sessions of a registry, another client of the same pooler
/// finds every server connection with the server's own defaults, and can
/// write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_clients_of_the_pooler_see_the_servers_defaults() {
    let Some((db, config)) = through_pooler(
        "transaction",
        "pooler_isolation",
        "pooler: transaction, statement_timeout: 3, pool_size: 4",
    )
    .await
    else {
        return;
    };
    let registry = item::registry_with(config).await;
    for n in 0..2000 {
        let name = format!("row{n}");
        match n % 4 {
            0 => registry
                .session(async |s| item::insert(s, &name).await.map(drop))
                .await
                .unwrap(),
            1 => drop(
                registry
                    .read_session(async |s| Ok::<_, Error>(item::count_on(s).await))
                    .await
                    .unwrap(),
            ),
            2 => {
                let s = registry.connection().await.unwrap();
                item::insert(&s, &name).await.unwrap();
            }
            _ => drop(
                registry
                    .session(async |s| exec(s, "SET search_path TO nowhere").await)
                    .await
                    .unwrap_err(),
            ),
        }
    }
    for round in 0..12 {
        let mut other = other_client(&db.name).await;
        assert_eq!(
            show(&mut other, "SHOW default_transaction_read_only").await,
            "off"
        );
        assert_eq!(show(&mut other, "SHOW statement_timeout").await, "0");
        assert_eq!(
            show(&mut other, "SHOW search_path").await,
            "\"$user\", public"
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "INSERT INTO items (name, qty) VALUES ('other{round}', 1)"
        )))
        .execute(&mut other)
        .await
        .expect("another client can write");
        other.close().await.unwrap();
    }
}

/// Migrations need a server session of their own: behind a transaction
/// pooler they run over `migrations.direct_url`, and without it they are
/// refused with an error that names the key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_run_over_the_direct_url_behind_a_transaction_pooler() {
    let Some((db, config)) =
        through_pooler("transaction", "pooler_migrate", "pooler: transaction").await
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("1_widgets.sql"),
        "CREATE TABLE widgets (id int PRIMARY KEY);\nINSERT INTO widgets VALUES (1);\n",
    )
    .unwrap();
    let without = config
        .clone()
        .migrations(sqlreg::MigrationsConfig::new(dir.path(), true));
    let err = SqlConnectionRegistry::connect(without).await.unwrap_err();
    assert!(err.to_string().contains("migrations.direct_url"), "{err}");

    let with = config.migrations(
        sqlreg::MigrationsConfig::new(dir.path(), true).direct_url(db.config.url.clone()),
    );
    let registry = SqlConnectionRegistry::connect(with).await.unwrap();
    let widgets = registry
        .read_session(async |s| number(s, "SELECT count(*) FROM widgets").await)
        .await
        .unwrap();
    assert_eq!(widgets, 1, "the migration ran once, through the direct url");
    let status = sqlreg::Migrations::from_dir(dir.path())
        .unwrap()
        .status(&registry)
        .await
        .unwrap();
    assert_eq!(status.len(), 1);
    assert_eq!(status[0].state, sqlreg::MigrationState::Applied);
}

/// Sessions cut off at random points through the pooler leave no server
/// connection inside a transaction and no stray row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_sessions_through_the_pooler_leave_nothing_behind() {
    let Some((db, config)) = through_pooler(
        "transaction",
        "pooler_cancel",
        "pooler: transaction, pool_size: 2",
    )
    .await
    else {
        return;
    };
    let registry = item::registry_with(config).await;
    let mut committed = Vec::new();
    let mut unknown = Vec::new();
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    for n in 0..400 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let name = format!("cut{n}");
        let done = AtomicU32::new(0);
        let outcome = tokio::time::timeout(
            Duration::from_micros(state % 4_000),
            registry.session(async |s| {
                item::insert(s, &name).await?;
                s.savepoint(async |s| exec(s, "SELECT 1").await).await?;
                done.store(1, Ordering::SeqCst);
                Ok::<_, Error>(())
            }),
        )
        .await;
        match outcome {
            Ok(Ok(())) => committed.push(name),
            Ok(Err(err)) => panic!("{name} failed instead of being cut off: {err}"),
            Err(_) if done.load(Ordering::SeqCst) == 1 => unknown.push(name),
            Err(_) => {}
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let names = item::names(&registry).await;
    for name in &committed {
        assert!(names.contains(name), "{name} was reported committed");
    }
    for name in &names {
        assert!(
            committed.contains(name) || unknown.contains(name),
            "{name} was cut off before its commit, yet stored"
        );
    }
    let direct = SqlConnectionRegistry::connect(db.config.clone())
        .await
        .unwrap();
    let idle_in_transaction = direct
        .connection()
        .await
        .unwrap()
        .query_one_raw(Statement::from_string(
            sea_orm::DbBackend::Postgres,
            format!(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}' \
                 AND state LIKE 'idle in transaction%'",
                db.name
            ),
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get_by_index::<i64>(0)
        .unwrap();
    assert_eq!(idle_in_transaction, 0);
    println!(
        "through the pooler: {} committed, {} cut off during COMMIT, {} cut off before",
        committed.len(),
        unknown.len(),
        400 - committed.len() - unknown.len()
    );
}

/// In session mode the pooler keeps a server connection per client
/// connection: the registry's settings are set once per connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_mode_pooler_keeps_the_registrys_settings() {
    let Some((_db, config)) = through_pooler(
        "session",
        "pooler_session_mode",
        "pooler: session, statement_timeout: 2, pool_size: 1, max_overflow: 0",
    )
    .await
    else {
        return;
    };
    let registry = item::registry_with(config).await;
    registry
        .session(async |s| item::insert(s, "kept").await.map(drop))
        .await
        .unwrap();
    let err = registry
        .read_session(async |s| item::insert(s, "refused").await.map(drop))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("read-only transaction"), "{err}");
    let err = registry
        .session(async |s| exec(s, "SELECT pg_sleep(3)").await)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("statement timeout"), "{err}");
    assert_eq!(item::names(&registry).await, ["kept"]);
    let timeout: Result<String, Error> = registry
        .read_session(async |s| {
            let row = s
                .query_one_raw(Statement::from_string(
                    sea_orm::DbBackend::Postgres,
                    "SHOW statement_timeout",
                ))
                .await?
                .unwrap();
            Ok(row.try_get_by_index::<String>(0)?)
        })
        .await;
    assert_eq!(timeout.unwrap(), "2s");

    // State a session leaves is reset, and the registry's settings are set
    // again: the next read session still refuses writes.
    registry
        .session(async |s| exec(s, "SET search_path TO nowhere").await)
        .await
        .unwrap();
    let err = registry
        .read_session(async |s| item::insert(s, "refused too").await.map(drop))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("read-only transaction"), "{err}");
    assert_eq!(item::names(&registry).await, ["kept"]);
}

/// A fresh database reached through the transaction pooler in front of the
/// primary (`session` settings as in [`through_pooler`]), committing with
/// `synchronous_commit = on` as production servers do (the test server
/// runs with it off, which delays streaming by up to `wal_writer_delay`;
/// the `options` startup parameter that tests/routing.rs uses for it is
/// refused by a pooler, so it is a setting of the database), and the port
/// of the pooler in front of the standby.
async fn replicated_through_poolers(test: &str, session: &str) -> Option<(TestDb, DbConfig, u16)> {
    let (db, config) = through_pooler("transaction", test, session).await?;
    let standby = pooler_port("standby")?;
    let direct = SqlConnectionRegistry::connect(db.config.clone())
        .await
        .unwrap();
    exec(
        &direct.connection().await.unwrap(),
        &format!("ALTER DATABASE \"{}\" SET synchronous_commit = on", db.name),
    )
    .await
    .unwrap();
    direct.close().await;
    Some((db, config, standby))
}

/// `url` → the transaction pooler in front of the primary, `replicas:` →
/// the one in front of the standby: read sessions are served by the
/// standby through its pooler, writes by the primary, the monitor's
/// probes reach both (the replica's lag is known, nobody is down), and a
/// read after a write always sees it — two registries (two applications)
/// with two tasks each, so that clients share the poolers' server
/// connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_behind_poolers_serve_reads_and_see_writes() {
    let Some((_db, config, standby)) =
        replicated_through_poolers("pooler_replicas", "pooler: transaction").await
    else {
        return;
    };
    let config = config.replica(sqlreg::UrlParts::default().port(standby));
    let first = item::registry_with(config.clone()).await;
    common::server::read_on_replica(&first, "items").await;
    let registries = [first, SqlConnectionRegistry::connect(config).await.unwrap()];
    let registry = &registries[0];
    let write_on_replica = registry
        .session(async |s| on_replica(s).await)
        .await
        .unwrap();
    assert!(!write_on_replica, "a write session runs on the primary");
    let err = registry
        .read_session(async |s| item::insert(s, "refused").await.map(drop))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("read-only transaction"), "{err}");

    let mut tasks = Vec::new();
    for (app, registry) in registries.iter().enumerate() {
        for task in 0..2 {
            let registry = registry.clone();
            tasks.push(tokio::spawn(async move {
                let (mut stale, mut served_by_replica) = (0, 0);
                for n in 0..50 {
                    let name = format!("a{app}t{task}n{n}");
                    registry
                        .session(async |s| item::insert(s, &name).await.map(drop))
                        .await
                        .unwrap();
                    let sql = format!("SELECT count(*) FROM items WHERE name = '{name}'");
                    let (seen, replica) = registry
                        .read_session(async |s| {
                            Ok::<_, Error>((number(s, &sql).await?, on_replica(s).await?))
                        })
                        .await
                        .unwrap();
                    stale += u32::from(seen == 0);
                    served_by_replica += u32::from(replica);
                }
                (stale, served_by_replica)
            }));
        }
    }
    let (mut stale, mut served_by_replica) = (0, 0);
    for task in tasks {
        let (task_stale, task_replica) = task.await.unwrap();
        stale += task_stale;
        served_by_replica += task_replica;
    }
    let trials = 2 * 2 * 50;
    // Another application reads fresh as a position carried as text.
    let position = registries[0]
        .write_position()
        .expect("writes were recorded");
    let carried = registries[1]
        .options()
        .fresh_as(position.to_string().parse().unwrap())
        .read_session(async |s| Ok::<_, Error>(item::count_on(s).await))
        .await
        .unwrap();
    assert!(
        carried >= 100,
        "the first application's 100 rows at least: {carried}"
    );
    // A few monitor rounds (every 200 ms) through both poolers.
    tokio::time::sleep(Duration::from_millis(600)).await;
    println!(
        "through PgBouncer (primary and standby): {trials} write-then-read trials, {stale} stale, \
         {served_by_replica} reads on the replica; {:#?}",
        registries[0].host_stats()
    );
    assert_eq!(stale, 0, "a read after a committed write never misses it");
    assert!(
        served_by_replica > trials / 2,
        "most reads are served by the replica ({served_by_replica} of {trials})"
    );
    for registry in registries {
        let hosts = registry.host_stats();
        assert_eq!(hosts.len(), 2, "{hosts:#?}");
        assert!(hosts[1].replica && hosts[1].pool.acquired > 0, "{hosts:#?}");
        assert!(
            hosts.iter().all(|host| host.down.is_none()),
            "every host answers its probes: {hosts:#?}"
        );
        assert!(
            hosts[1].lag_seconds.is_some(),
            "the replica's lag is known: {hosts:#?}"
        );
        registry.close().await;
    }
}

/// A multi-host URL listing the poolers in front of the standby and of the
/// primary, in that order, with `target_session_attrs=read-write`: every
/// session goes to the primary through its pooler, the hosts' roles are
/// known, and the probes of three registries' monitors and of
/// `probe_hosts` (`sqlreg check`), sharing the poolers' server connections
/// with the sessions, never fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_host_url_of_poolers_finds_the_primary() {
    let Some((_db, mut config, standby)) =
        replicated_through_poolers("pooler_multi_host", "pooler: transaction, pool_size: 2").await
    else {
        return;
    };
    let primary = pooler_port("transaction").unwrap();
    let sqlreg::UrlConfig::Parts(parts) = &mut config.url else {
        panic!("the test config gives the URL as parts");
    };
    parts.host = Some(format!("127.0.0.1:{standby},127.0.0.1:{primary}"));
    parts.port = None;
    parts
        .query
        .insert("target_session_attrs".into(), "read-write".into());
    let first = item::registry_with(config.clone()).await;
    let mut registries = vec![first];
    for _ in 1..3 {
        registries.push(
            SqlConnectionRegistry::connect(config.clone())
                .await
                .unwrap(),
        );
    }
    let mut tasks = Vec::new();
    for (client, registry) in registries.iter().enumerate() {
        let registry = registry.clone();
        tasks.push(tokio::spawn(async move {
            let mut on_the_standby = 0;
            for n in 0..60 {
                let name = format!("c{client}n{n}");
                registry
                    .session(async |s| item::insert(s, &name).await.map(drop))
                    .await
                    .unwrap();
                if registry
                    .read_session(async |s| on_replica(s).await)
                    .await
                    .unwrap()
                {
                    on_the_standby += 1;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            on_the_standby
        }));
    }
    let probes: Vec<_> = (0..4)
        .map(|_| {
            let config = config.clone();
            tokio::spawn(async move { sqlreg::replication::probe_hosts(&config).await })
        })
        .collect();
    for probe in probes {
        let found = probe.await.unwrap().unwrap();
        let roles: Vec<_> = found
            .iter()
            .map(|host| match &host.state {
                Ok(state) => state.role,
                Err(err) => panic!("{}: {err}", host.url),
            })
            .collect();
        assert_eq!(
            roles,
            [
                sqlreg::replication::Role::Standby,
                sqlreg::replication::Role::Primary
            ],
            "{found:#?}"
        );
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), 0, "no session ran on the standby");
    }
    assert_eq!(item::names(&registries[0]).await.len(), 3 * 60);
    for registry in &registries {
        let hosts = registry.host_stats();
        assert_eq!(hosts.len(), 2, "{hosts:#?}");
        assert_eq!(
            (hosts[0].role, hosts[1].role),
            (
                Some(sqlreg::replication::Role::Standby),
                Some(sqlreg::replication::Role::Primary)
            ),
            "{hosts:#?}"
        );
        assert!(
            hosts.iter().all(|host| host.down.is_none()),
            "every host answers its probes: {hosts:#?}"
        );
        assert_eq!(hosts[0].pool.acquired, 0, "{hosts:#?}");
        assert_eq!(registry.stats(), hosts[1].pool, "{hosts:#?}");
    }
    println!("{:#?}", registries[0].host_stats());
    for registry in registries {
        registry.close().await;
    }
}

/// Failover behind a pooler per host, on a pair of the test's own
/// (synchronous replication): a multi-host URL of the two poolers, four
/// tasks writing through `transaction()` while the primary crashes (its
/// pooler stays up) and the standby is promoted; writes continue through
/// the new primary's pooler and no acknowledged write is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_behind_poolers_keeps_writing() {
    use std::sync::Mutex;
    use std::sync::atomic::AtomicBool;
    use std::time::Instant;

    let Some(pair) = common::pair::PgPair::start("pooler_failover").await else {
        return;
    };
    pair.sync(true).await;
    let poolers = pair.poolers().await;
    let yaml = format!(
        "db:\n  url: '{}'\n  create_db: false\n  session:\n    pooler: transaction\n    \
         connect_timeout: 2\n    statement_timeout: 2\n    pool_timeout: 60\n",
        pair.multi_host_url_through(poolers)
    );
    let config: DbConfig = Config::from_yaml_str(&yaml).unwrap().at("db").unwrap();
    let db = SqlConnectionRegistry::connect(config).await.unwrap();
    db.session(async |s| {
        exec(
            s,
            "CREATE TABLE ledger (task INT, seq INT, PRIMARY KEY (task, seq))",
        )
        .await
    })
    .await
    .unwrap();

    let acknowledged = Arc::new(Mutex::new(Vec::<((i64, i64), Instant)>::new()));
    let failed = Arc::new(Mutex::new(Vec::<String>::new()));
    let unknown = Arc::new(AtomicU32::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..4i64)
        .map(|task| {
            let db = db.clone();
            let (acknowledged, failed, unknown, stop) = (
                Arc::clone(&acknowledged),
                Arc::clone(&failed),
                Arc::clone(&unknown),
                Arc::clone(&stop),
            );
            tokio::spawn(async move {
                let mut seq = 0i64;
                while !stop.load(Ordering::Relaxed) {
                    let sql = format!("INSERT INTO ledger (task, seq) VALUES ({task}, {seq})");
                    match db.transaction(async |s| exec(s, &sql).await).await {
                        Ok(()) => acknowledged
                            .lock()
                            .unwrap()
                            .push(((task, seq), Instant::now())),
                        Err(Error::Commit(_)) => drop(unknown.fetch_add(1, Ordering::SeqCst)),
                        Err(err) => failed.lock().unwrap().push(err.to_string()),
                    }
                    seq += 1;
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(800)).await;
    let old_primary = pair.primary_port();
    pair.stop_primary().await;
    let crashed = Instant::now();
    pair.promote().await;
    let promoted = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(120);
    while acknowledged
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, at)| *at > promoted)
        .count()
        < 50
    {
        assert!(
            Instant::now() < deadline,
            "writes never succeeded again after the failover: {:?}",
            failed.lock().unwrap().iter().take(5).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.await.unwrap();
    }
    let new_primary = pair.primary_port();
    assert_ne!(new_primary, old_primary);
    let mut direct = sqlx::PgConnection::connect(&pair.url(new_primary))
        .await
        .unwrap();
    let rows: Vec<(i64, i64)> = sqlx::query_as("SELECT task::bigint, seq::bigint FROM ledger")
        .fetch_all(&mut direct)
        .await
        .unwrap();
    let rows: std::collections::BTreeSet<_> = rows.into_iter().collect();
    let acknowledged = std::mem::take(&mut *acknowledged.lock().unwrap());
    let lost = acknowledged
        .iter()
        .filter(|(row, _)| !rows.contains(row))
        .count();
    let recovered = acknowledged
        .iter()
        .map(|(_, at)| *at)
        .filter(|at| *at > crashed)
        .min()
        .unwrap();
    let failed = std::mem::take(&mut *failed.lock().unwrap());
    let hosts = db.host_stats();
    println!(
        "failover behind poolers: {} acknowledged, {lost} lost, {} failed ({:?}), {} commit \
         outcomes unknown; writes again {:?} after the crash ({:?} after the promotion \
         returned); {hosts:#?}",
        acknowledged.len(),
        failed.len(),
        failed.iter().take(3).collect::<Vec<_>>(),
        unknown.load(Ordering::SeqCst),
        recovered - crashed,
        recovered.saturating_duration_since(promoted),
    );
    assert_eq!(
        lost, 0,
        "with synchronous replication nothing acknowledged is lost"
    );
    assert!(
        failed.is_empty(),
        "interrupted sessions ran again on the new primary"
    );
    assert_eq!(
        hosts[1].role,
        Some(sqlreg::replication::Role::Primary),
        "{hosts:#?}"
    );
    db.close().await;
}
