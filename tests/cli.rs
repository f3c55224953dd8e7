//! The `sqlreg` binary as an operator runs it: `init`, `check` and `exec` on
//! SQLite, plus the mistakes people make (a typo, a missing file). The server
//! cases (wrong password, server version) are in `tests/cli_servers.rs`.

use std::path::Path;

use assert_cmd::Command;
use predicates::prelude::*;
use predicates::str::contains;

/// The built binary, with no `SQLREG_CONFIG` from the caller's environment.
fn sqlreg(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sqlreg"));
    cmd.current_dir(dir).env_remove("SQLREG_CONFIG");
    cmd
}

fn write(dir: &Path, name: &str, yaml: &str) {
    std::fs::write(dir.join(name), yaml).unwrap();
}

#[test]
fn every_subcommand_has_help() {
    let dir = tempfile::tempdir().unwrap();
    sqlreg(dir.path()).arg("--help").assert().success().stdout(
        contains("check")
            .and(contains("exec"))
            .and(contains("init")),
    );
    for (command, option) in [
        ("check", "--all"),
        ("exec", "--rollback"),
        ("init", "--postgres"),
    ] {
        sqlreg(dir.path())
            .args([command, "--help"])
            .assert()
            .success()
            .stdout(contains(option));
    }
    sqlreg(dir.path())
        .arg("chek")
        .assert()
        .code(2)
        .stderr(contains("check"));
}

#[test]
fn init_writes_a_sqlite_config_that_check_accepts_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    sqlreg(dir.path())
        .arg("init")
        .assert()
        .success()
        .stdout(contains("config.yaml"));
    let written = std::fs::read_to_string(dir.path().join("config.yaml")).unwrap();
    assert!(
        written.contains("protocol: sqlite") && written.contains("# "),
        "{written}"
    );
    sqlreg(dir.path())
        .arg("check")
        .assert()
        .success()
        .stdout(contains("sqlite:///app.db"))
        .stdout(contains("missing; create_db will create it"))
        .stdout(contains("all 1 database reachable"));
    assert!(!dir.path().join("app.db").exists(), "check creates nothing");

    write(dir.path(), "config.yaml", "# mine\n");
    sqlreg(dir.path())
        .arg("init")
        .assert()
        .code(1)
        .stderr(contains("already exists; pass --force"));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("config.yaml")).unwrap(),
        "# mine\n"
    );
    sqlreg(dir.path())
        .args(["init", "--force"])
        .assert()
        .success();
    sqlreg(dir.path())
        .args(["init", "sub/dir", "--postgres"])
        .assert()
        .success();
    let postgres = std::fs::read_to_string(dir.path().join("sub/dir/config.yaml")).unwrap();
    assert!(postgres.contains("protocol: postgresql"), "{postgres}");
    assert!(
        postgres.contains("password: ${oc.env:DB_PASSWORD}"),
        "{postgres}"
    );
}

#[test]
fn exec_prints_rows_as_a_table_or_json_and_rolls_back_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "config.yaml",
        "core_lib:\n  db:\n    url: sqlite:///shop.db\n",
    );
    let exec = |args: &[&str]| sqlreg(dir.path()).arg("exec").args(args).assert();
    exec(&["CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, price REAL)"])
        .success()
        .stdout(contains("0 rows affected"));
    exec(&["INSERT INTO items (name, price) VALUES ('tea', 2.5), ('a long name', NULL)"])
        .success()
        .stdout(contains("2 rows affected").and(contains("committed")));
    exec(&["--rollback", "DELETE FROM items"])
        .success()
        .stdout(contains("2 rows affected").and(contains("rolled back")));
    exec(&[
        "config.yaml",
        "SELECT id, name, price FROM items ORDER BY id",
    ])
    .success()
    .stdout(contains(
        "id | name        | price\n\
             ---+-------------+------\n \
             1 | tea         |   2.5\n \
             2 | a long name | NULL\n\
             2 rows in ",
    ));
    let out = exec(&["--json", "SELECT name, price FROM items WHERE id = 1"]).success();
    let json: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"columns": ["name", "price"], "rows": [["tea", 2.5]]})
    );
    exec(&["SELECT nope FROM items"])
        .code(1)
        .stderr(contains("error: ").and(contains("no such column")));
}

#[test]
fn a_typo_in_a_key_is_reported_with_its_full_path() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "config.yaml",
        "core_lib:\n  db:\n    sesion:\n      pool_size: 3\n    url: {protocol: sqlite, file: a.db}\n",
    );
    sqlreg(dir.path())
        .arg("check")
        .assert()
        .code(1)
        .stdout(contains("config error at `core_lib.db.sesion`"))
        .stdout(contains("did you mean `session`?"))
        .stdout(contains("status     FAILED"));
    sqlreg(dir.path())
        .args(["check", "core_lib.db.url.fiel=x.db"])
        .assert()
        .code(1)
        .stderr(contains("`core_lib.db.url.fiel`").and(contains("did you mean `file`?")));
}

#[test]
fn check_all_reports_every_broken_section() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "app.yaml",
        "core_lib:
  db:
    url: sqlite://
  analytics_db:
    log_querys: true
    url: sqlite://
  legacy_db:
    url: oracle://scott:tiger@db/orcl
",
    );
    sqlreg(dir.path())
        .args(["check", "--all", "app.yaml"])
        .assert()
        .code(1)
        .stdout(contains("[db] core_lib.db"))
        .stdout(contains("`core_lib.analytics_db.log_querys`").and(contains("`log_queries`")))
        .stdout(contains("`core_lib.legacy_db.url`").and(contains("supported: sqlite")))
        .stdout(contains("2 of 3 databases failed"))
        .stdout(contains("tiger").not());
}

#[test]
fn config_comes_from_sqlreg_config_and_overrides_apply_before_validation() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "elsewhere.yaml",
        "core_lib:\n  db:\n    log_queries: false\n    session: {pool_size: 5}\n    url: sqlite://\n",
    );
    sqlreg(dir.path())
        .arg("check")
        .assert()
        .code(1)
        .stderr(contains("config.yaml").and(contains("cannot read the file")));
    sqlreg(dir.path())
        .env("SQLREG_CONFIG", dir.path().join("elsewhere.yaml"))
        .args([
            "check",
            "core_lib.db.log_queries=true",
            "core_lib.db.session.pool_size=0",
        ])
        .assert()
        .code(1)
        .stdout(contains(
            "`core_lib.db.session.pool_size`: must be at least 1",
        ));
    sqlreg(dir.path())
        .env("SQLREG_CONFIG", dir.path().join("elsewhere.yaml"))
        .args([
            "exec",
            "SELECT 42 AS answer",
            "core_lib.db.log_queries=true",
        ])
        .assert()
        .success()
        .stdout(contains("answer\n------\n    42\n"))
        .stderr(contains("sqlx::query").and(contains("SELECT 42 AS answer")));
}

#[test]
fn an_unreachable_server_fails_the_check() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "config.yaml",
        "core_lib:
  db:
    url: postgresql://app:Sup3r-s3cret@127.0.0.1:1/app
",
    );
    sqlreg(dir.path())
        .arg("check")
        .assert()
        .code(1)
        .stdout(contains("postgresql://app:***@127.0.0.1:1/app"))
        .stdout(contains("connection refused"))
        .stdout(contains("Sup3r-s3cret").not())
        .stderr(contains("Sup3r-s3cret").not());
}

#[test]
fn check_shows_values_from_the_environment_by_their_variable() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "config.yaml",
        "core_lib:
  db:
    url:
      protocol: postgresql
      username: app
      password: ${oc.env:SQLREG_CLI_T_PASSWORD}
      host: ${oc.env:SQLREG_CLI_T_HOST}
      port: 1
      file: app_db
",
    );
    let assert = sqlreg(dir.path())
        .env("SQLREG_CLI_T_PASSWORD", "Env-S3cret")
        .env("SQLREG_CLI_T_HOST", "127.0.0.1")
        .arg("check")
        .assert()
        .code(1)
        .stdout(contains(
            "url        postgresql://app:***@${oc.env:SQLREG_CLI_T_HOST}:1/app_db",
        ))
        .stdout(contains(
            "cannot connect to postgresql://app:***@${oc.env:SQLREG_CLI_T_HOST}:1/app_db",
        ))
        .stdout(contains("connection refused"));
    let out = assert.get_output();
    for stream in [&out.stdout, &out.stderr] {
        let text = String::from_utf8_lossy(stream);
        assert!(
            !text.contains("Env-S3cret") && !text.contains("127.0.0.1"),
            "{text}"
        );
    }
}

#[test]
fn check_json_is_the_same_report_as_one_document() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "config.yaml",
        "core_lib:
  db:
    session: {pool_size: 3, max_overflow: 1}
    url: sqlite://
  reports:
    url: sqlite:///reports.db
  broken:
    url: postgresql://app:Sup3r-s3cret@127.0.0.1:1/app
",
    );
    let output = sqlreg(dir.path())
        .args(["check", "--all", "--json"])
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(output).unwrap();
    assert!(!text.contains("Sup3r-s3cret"), "{text}");
    let report: serde_json::Value = serde_json::from_str(&text).expect("one JSON document");
    assert_eq!(report["config"], "config.yaml");
    assert_eq!(
        (report["reachable"].as_u64(), report["failed"].as_u64()),
        (Some(2), Some(1))
    );
    let databases = report["databases"].as_array().unwrap();
    let names: Vec<_> = databases
        .iter()
        .map(|db| db["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["broken", "db", "reports"]);

    let broken = &databases[0];
    assert_eq!(broken["status"], "FAILED");
    assert_eq!(
        broken["settings"]["url"],
        "postgresql://app:***@127.0.0.1:1/app"
    );
    assert!(
        broken["error"]
            .as_str()
            .unwrap()
            .contains("connection refused"),
        "{broken}"
    );

    let db = &databases[1];
    assert_eq!(db["status"], "OK");
    assert_eq!(db["path"], "core_lib.db");
    assert_eq!(db["database"], "exists");
    assert!(
        db["server"].as_str().unwrap().starts_with("SQLite 3."),
        "{db}"
    );
    assert!(db["round_trip_ms"].as_f64().unwrap() > 0.0, "{db}");
    assert_eq!(db["error"], serde_json::Value::Null);
    let settings = &db["settings"];
    assert_eq!(settings["max_connections"], 4);
    assert_eq!(settings["pool_timeout"], 30.0);
    assert_eq!(settings["statement_timeout"], serde_json::Value::Null);

    let reports = &databases[2];
    assert_eq!(
        (&reports["status"], &reports["database"]),
        (&"OK".into(), &"missing".into())
    );
    assert!(
        !dir.path().join("reports.db").exists(),
        "check creates nothing"
    );

    sqlreg(dir.path())
        .args(["check", "--json"])
        .assert()
        .success()
        .stdout(contains("\"failed\": 0"));
}

/// Options go where the synopsis shows them and after the positional
/// arguments alike, on every subcommand; a SQL text that starts with `-`
/// passes after `--`, which ends the options.
#[test]
fn options_are_taken_before_and_after_the_positional_arguments() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "app.yaml",
        "core_lib:\n  db:\n    url: sqlite:///shop.db\n    migrations: {path: migrations}\n",
    );
    let run = |args: &[&str]| sqlreg(dir.path()).args(args).assert();
    for args in [
        [
            "exec",
            "--path",
            "core_lib.db",
            "--json",
            "app.yaml",
            "SELECT 1 AS one",
        ],
        [
            "exec",
            "app.yaml",
            "--path",
            "core_lib.db",
            "--json",
            "SELECT 1 AS one",
        ],
        [
            "exec",
            "app.yaml",
            "SELECT 1 AS one",
            "--path",
            "core_lib.db",
            "--json",
        ],
    ] {
        let out = run(&args).success();
        let json: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
        assert_eq!(json["rows"], serde_json::json!([[1]]), "{args:?}");
    }
    run(&[
        "exec",
        "--json",
        "app.yaml",
        "--",
        "-- a comment first\nSELECT 2 AS two",
    ])
    .success()
    .stdout(contains("[[2]]"));
    for args in [
        ["check", "--json", "--path", "core_lib.db", "app.yaml"],
        ["check", "app.yaml", "--path", "core_lib.db", "--json"],
    ] {
        run(&args).success().stdout(contains("\"reachable\": 1"));
    }
    run(&[
        "migrate",
        "--path",
        "core_lib.db",
        "app.yaml",
        "new",
        "first",
    ])
    .success();
    for args in [
        ["migrate", "--path", "core_lib.db", "app.yaml", "status"],
        ["migrate", "app.yaml", "--path", "core_lib.db", "status"],
        ["migrate", "app.yaml", "status", "--path", "core_lib.db"],
    ] {
        run(&args).success().stdout(contains("first"));
    }
}
