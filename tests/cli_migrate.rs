//! `sqlreg migrate` as an operator runs it on a SQLite file: `new` writes a
//! reversible pair, `up` applies, `status` lists with checksums and fails
//! naming a file changed after it was applied, `down` reverts; and on
//! MariaDB, `status` showing a half-applied migration and how to recover.

mod common;

use std::path::Path;

use assert_cmd::Command;
use predicates::prelude::*;
use predicates::str::contains;

fn sqlreg(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sqlreg"));
    cmd.current_dir(dir).env_remove("SQLREG_CONFIG");
    cmd
}

const CONFIG: &str =
    "core_lib:\n  db:\n    url: sqlite:///app.db\n    migrations:\n      path: db/migrations\n";

#[test]
fn new_up_status_down_on_a_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.yaml"), CONFIG).unwrap();

    let created = sqlreg(dir.path())
        .args(["migrate", "new", "create_widgets"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let created = String::from_utf8(created).unwrap();
    let files: Vec<&str> = created
        .lines()
        .filter_map(|l| l.strip_prefix("created "))
        .collect();
    assert_eq!(files.len(), 2, "{created}");
    assert!(files[0].starts_with("db/migrations/") && files[0].ends_with("_create_widgets.up.sql"));
    assert!(files[1].ends_with("_create_widgets.down.sql"));
    std::fs::write(
        dir.path().join(files[0]),
        "CREATE TABLE widgets (id INTEGER PRIMARY KEY);\n",
    )
    .unwrap();
    std::fs::write(dir.path().join(files[1]), "DROP TABLE widgets;\n").unwrap();
    let version: String = Path::new(files[0])
        .file_name()
        .unwrap()
        .to_string_lossy()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    assert_eq!(version.len(), 14, "a UTC timestamp version: {version}");

    sqlreg(dir.path())
        .args(["migrate", "status"])
        .assert()
        .success()
        .stdout(
            contains("0 applied, 1 pending")
                .and(contains("pending"))
                .and(contains("create widgets")),
        );
    sqlreg(dir.path())
        .args(["migrate", "config.yaml", "up"])
        .assert()
        .success()
        .stdout(contains(format!("applied {version}")));
    sqlreg(dir.path())
        .args(["migrate", "up"])
        .assert()
        .success()
        .stdout(contains("nothing to apply"));
    sqlreg(dir.path())
        .args(["exec", "INSERT INTO widgets (id) VALUES (7)"])
        .assert()
        .success();
    sqlreg(dir.path())
        .args(["migrate", "status"])
        .assert()
        .success()
        .stdout(contains("1 applied, 0 pending").and(contains("applied ")));

    sqlreg(dir.path())
        .args(["migrate", "down"])
        .assert()
        .success()
        .stdout(contains(format!("reverted {version}")));
    sqlreg(dir.path())
        .args(["exec", "SELECT COUNT(*) FROM widgets"])
        .assert()
        .failure()
        .stderr(contains("no such table"));
}

#[test]
fn status_fails_naming_a_file_changed_after_it_was_applied() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.yaml"), CONFIG).unwrap();
    let migrations = dir.path().join("db/migrations");
    std::fs::create_dir_all(&migrations).unwrap();
    let file = migrations.join("1_widgets.sql");
    std::fs::write(&file, "CREATE TABLE widgets (id INTEGER PRIMARY KEY);\n").unwrap();
    sqlreg(dir.path())
        .args(["migrate", "up"])
        .assert()
        .success();

    std::fs::write(
        &file,
        "CREATE TABLE widgets (id INTEGER PRIMARY KEY, name TEXT);\n",
    )
    .unwrap();
    sqlreg(dir.path())
        .args(["migrate", "status"])
        .assert()
        .failure()
        .stdout(contains("CHANGED"))
        .stderr(contains("1_widgets.sql").and(contains("changed after it was applied")));
    sqlreg(dir.path())
        .args(["migrate", "up"])
        .assert()
        .failure()
        .stderr(contains("1_widgets.sql").and(contains("changed after it was applied")));
}

#[test]
fn mistakes_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.yaml"), CONFIG).unwrap();
    sqlreg(dir.path())
        .args(["migrate", "new"])
        .assert()
        .failure()
        .stderr(contains("`new` needs a NAME"));
    sqlreg(dir.path())
        .args(["migrate", "new", "add users!"])
        .assert()
        .failure()
        .stderr(contains("not a migration name"));
    sqlreg(dir.path())
        .args(["migrate", "sideways"])
        .assert()
        .failure()
        .stderr(contains("status | up | down | new NAME"));
    sqlreg(dir.path())
        .args(["migrate", "status"])
        .assert()
        .failure()
        .stderr(contains("cannot read the migrations in db/migrations"));
}

#[test]
fn mariadb_status_shows_a_half_applied_migration_and_how_to_recover() {
    if !common::server_available(common::Kind::MariaDb, "cli_half_applied") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let url = common::server_url_yaml(
        common::Kind::MariaDb,
        &common::unique_name("cli_dirty"),
        "{}",
    );
    let yaml = format!("core_lib:\n  db:\n    url: {url}\n    migrations: {{path: m}}\n");
    std::fs::write(dir.path().join("config.yaml"), yaml).unwrap();
    std::fs::create_dir(dir.path().join("m")).unwrap();
    std::fs::write(dir.path().join("m/1_a.sql"), "CREATE TABLE a (id INT);").unwrap();
    std::fs::write(
        dir.path().join("m/2_broken.sql"),
        "CREATE TABLE b (id INT);\nINSERT INTO nope VALUES (1);\n",
    )
    .unwrap();
    sqlreg(dir.path())
        .args(["migrate", "up"])
        .assert()
        .failure()
        .stderr(contains("2_broken.sql").and(contains("statement 2 (line 2)")));
    sqlreg(dir.path())
        .args(["migrate", "status"])
        .assert()
        .failure()
        .stdout(contains("DIRTY").and(contains("1 applied")))
        .stderr(
            contains("m/2_broken.sql")
                .and(contains("DELETE FROM _sqlx_migrations WHERE version = 2")),
        );
}
