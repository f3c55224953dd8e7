//! `sqlreg check` and `exec` against the test PostgreSQL and MariaDB: the
//! server version and ping, a missing database, a wrong password — and no
//! password in any output.

mod common;

use std::path::Path;

use assert_cmd::Command;
use common::{Kind, server_available, server_url_yaml, unique_name};
use predicates::prelude::*;
use predicates::str::contains;

fn sqlreg(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sqlreg"));
    cmd.current_dir(dir).env_remove("SQLREG_CONFIG");
    cmd
}

/// A temp dir whose config.yaml points `core_lib.db` at `database` on `kind`.
fn config_for(kind: Kind, database: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        "core_lib:\n  db:\n    url: {}\n",
        server_url_yaml(kind, database, "{}")
    );
    std::fs::write(dir.path().join("config.yaml"), yaml).unwrap();
    dir
}

fn password() -> String {
    std::env::var("SQLREG_TEST_PASSWORD").unwrap()
}

/// Neither stream shows the test password.
fn no_password(assert: &assert_cmd::assert::Assert) {
    let out = assert.get_output();
    for stream in [&out.stdout, &out.stderr] {
        let text = String::from_utf8_lossy(stream);
        assert!(!text.contains(&password()), "password printed:\n{text}");
    }
}

fn check_reports_server_version_and_ping(kind: Kind, server: &str) {
    let dir = config_for(kind, "sqlreg_test");
    let assert = sqlreg(dir.path()).arg("check").assert().success();
    no_password(&assert);
    assert
        .stdout(contains(
            ":***@${oc.env:SQLREG_TEST_HOST,127.0.0.1}:${oc.env:",
        ))
        .stdout(contains("exists; create_db has nothing to create"))
        .stdout(contains(format!("server     {server}")))
        .stdout(contains("ms round trip"))
        .stdout(contains("pool_size 5, max_overflow 10"))
        .stdout(contains("status     OK"));
}

fn check_says_create_db_would_create_a_missing_database(kind: Kind) {
    let name = unique_name("cli_missing");
    let dir = config_for(kind, &name);
    sqlreg(dir.path())
        .arg("check")
        .assert()
        .success()
        .stdout(contains("missing; create_db will create it"));
    // Still missing: check created nothing, so without create_db it fails.
    let assert = sqlreg(dir.path())
        .args(["check", "++core_lib.db.create_db=false"])
        .assert()
        .code(1);
    no_password(&assert);
    assert.stdout(contains("the database does not exist"));
    // exec connects as the application would, creating it.
    sqlreg(dir.path())
        .args(["exec", "SELECT 1 AS one, 'x' AS letter, NULL AS nothing"])
        .assert()
        .success()
        .stdout(contains(
            "one | letter | nothing\n----+--------+--------\n  1 | x      | NULL\n",
        ));
    sqlreg(dir.path())
        .args(["check", "++core_lib.db.create_db=false"])
        .assert()
        .success();
}

fn a_wrong_password_fails_without_printing_either_password(kind: Kind) {
    let dir = config_for(kind, "sqlreg_test");
    let assert = sqlreg(dir.path())
        .args(["check", "core_lib.db.url.password=Wr0ng-pa55"])
        .assert()
        .code(1);
    no_password(&assert);
    assert
        .stdout(contains("authentication failed"))
        .stdout(contains("Wr0ng-pa55").not())
        .stderr(contains("Wr0ng-pa55").not());
    let assert = sqlreg(dir.path())
        .args(["exec", "SELECT 1", "core_lib.db.url.password=Wr0ng-pa55"])
        .assert()
        .code(1);
    no_password(&assert);
    assert
        .stderr(contains("error: cannot connect").and(contains("authentication failed")))
        .stderr(contains("Wr0ng-pa55").not());
}

macro_rules! on_servers {
    ($($scenario:ident($($arg:expr),*)),* $(,)?) => {
        mod postgres {
            use super::*;
            $(
                #[test]
                fn $scenario() {
                    if server_available(Kind::Postgres, stringify!($scenario)) {
                        super::$scenario(Kind::Postgres $(, $arg.0)*);
                    }
                }
            )*
        }
        mod mariadb {
            use super::*;
            $(
                #[test]
                fn $scenario() {
                    if server_available(Kind::MariaDb, stringify!($scenario)) {
                        super::$scenario(Kind::MariaDb $(, $arg.1)*);
                    }
                }
            )*
        }
    };
}

on_servers!(
    check_reports_server_version_and_ping(("PostgreSQL 15", "10.11")),
    check_says_create_db_would_create_a_missing_database(),
    a_wrong_password_fails_without_printing_either_password(),
);
