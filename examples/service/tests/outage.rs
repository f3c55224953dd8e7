//! `/health` turns 503 while a database is down and 200 again once it is
//! back: the service holds the test PostgreSQL server of `scripts/test.sh`
//! besides its SQLite users database, and the test stops that server.
//! Without the server this test is skipped, except under `CI=true`, where it fails.

mod harness;

use std::process::Command;
use std::time::{Duration, Instant};

use harness::Service;
use reqwest::StatusCode;
use serde_json::Value;

/// The PostgreSQL server's control script, or `None` (with a note) when the
/// suite was not started by `scripts/test.sh`.
fn postgres_control() -> Option<String> {
    match std::env::var("SQLREG_TEST_PG_RESTART") {
        Ok(script) => Some(script),
        Err(_) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true but SQLREG_TEST_PG_RESTART is not set: run through scripts/test.sh")
        }
        Err(_) => {
            eprintln!(
                "SKIPPED health_is_503_while_postgres_is_down: no server (run scripts/test.sh)"
            );
            None
        }
    }
}

/// Runs the control script with `action`; the server is started again when
/// the returned guard drops, whatever the test did.
struct Control(String);

impl Control {
    fn run(&self, action: &str) {
        let status = Command::new(&self.0).arg(action).status().unwrap();
        assert!(
            status.success(),
            "`{action}` of the PostgreSQL server failed"
        );
    }
}

/// A stopped server, started again when dropped (also when the test panics).
struct Stopped<'c>(&'c Control);

impl Stopped<'_> {
    fn start(self) {
        self.0.run("start");
        std::mem::forget(self);
    }
}

impl Drop for Stopped<'_> {
    fn drop(&mut self) {
        let _ = Command::new(&(self.0).0).arg("start").status();
    }
}

const YAML: &str = "core_lib:
  db:
    url: sqlite:///{dir}/users.db
  reports:
    create_db: false
    session:
      connect_timeout: 1
      pool_timeout: 2
    url:
      protocol: postgresql
      username: ${oc.env:SQLREG_TEST_USER}
      password: ${oc.env:SQLREG_TEST_PASSWORD}
      host: ${oc.env:SQLREG_TEST_HOST,127.0.0.1}
      port: ${oc.env:SQLREG_TEST_PG_PORT}
      file: ${oc.env:SQLREG_TEST_DATABASE,sqlreg_test}
";

async fn health(service: &Service) -> (StatusCode, Value) {
    let response = reqwest::get(service.url("/health")).await.unwrap();
    (response.status(), response.json().await.unwrap())
}

fn database<'h>(health: &'h Value, name: &str) -> &'h Value {
    health["databases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|db| db["name"] == name)
        .unwrap_or_else(|| panic!("no database {name} in {health}"))
}

#[tokio::test]
async fn health_is_503_while_postgres_is_down() {
    let Some(script) = postgres_control() else {
        return;
    };
    let control = Control(script);
    let service = Service::start(YAML);

    let (status, up) = health(&service).await;
    assert_eq!(status, StatusCode::OK, "{up}");
    assert_eq!(database(&up, "reports")["reachable"], true, "{up}");
    let password = std::env::var("SQLREG_TEST_PASSWORD").unwrap();
    assert!(!up.to_string().contains(&password), "password in {up}");

    control.run("stop");
    let stopped = Stopped(&control);
    let (status, down) = health(&service).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{down}");
    assert_eq!(down["status"], "unavailable");
    let reports = database(&down, "reports");
    assert_eq!(reports["reachable"], false, "{down}");
    assert_eq!(reports["round_trip_ms"], Value::Null);
    assert!(!reports["error"].as_str().unwrap().is_empty(), "{down}");
    assert_eq!(reports["pool"]["max"], 15, "{down}");
    assert_eq!(database(&down, "db")["reachable"], true, "{down}");
    assert!(!down.to_string().contains(&password), "password in {down}");

    stopped.start();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = health(&service).await;
        if status == StatusCode::OK {
            assert_eq!(database(&body, "reports")["reachable"], true);
            break;
        }
        assert!(Instant::now() < deadline, "still unhealthy: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
