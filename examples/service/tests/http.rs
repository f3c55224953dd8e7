//! The service as a client sees it: a real process on a free port, driven
//! over HTTP with reqwest, on a SQLite file.

mod harness;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use harness::{Service, samples, sqlite_yaml};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

/// The pool of these tests: at most 2 + 2 connections.
const POOL_MAX: f64 = 4.0;

fn service() -> Service {
    Service::start(&sqlite_yaml(2, 2))
}

async fn json_of(response: reqwest::Response) -> Value {
    response.json().await.expect("a JSON body")
}

#[tokio::test]
async fn users_crud_with_json_errors() {
    let service = service();
    let http = Client::new();

    let created = http
        .post(service.url("/users"))
        .json(&json!({"name": "Ada", "email": "ada@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let ada = json_of(created).await;
    assert_eq!(ada["name"], "Ada");
    assert_eq!(ada["email"], "ada@example.com");
    let id = ada["id"].as_i64().expect("a numeric id");

    let read = http
        .get(service.url(&format!("/users/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), StatusCode::OK);
    assert_eq!(json_of(read).await, ada);

    let duplicate = http
        .post(service.url("/users"))
        .json(&json!({"name": "Ada again", "email": "ada@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(duplicate.status(), StatusCode::CONFLICT);
    let error = json_of(duplicate).await;
    assert_eq!(error["status"], 409);
    assert!(
        error["error"].as_str().unwrap().starts_with("duplicate"),
        "{error}"
    );

    let updated = http
        .put(service.url(&format!("/users/{id}")))
        .json(&json!({"name": "Ada Lovelace", "email": "ada@example.org"}))
        .send()
        .await
        .unwrap();
    assert_eq!(updated.status(), StatusCode::OK);
    assert_eq!(
        json_of(updated).await,
        json!({"id": id, "name": "Ada Lovelace", "email": "ada@example.org"})
    );
    let reread = http
        .get(service.url(&format!("/users/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(reread).await["name"], "Ada Lovelace");

    let deleted = http
        .delete(service.url(&format!("/users/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    for request in [
        http.get(service.url(&format!("/users/{id}"))),
        http.delete(service.url(&format!("/users/{id}"))),
        http.put(service.url(&format!("/users/{id}")))
            .json(&json!({"name": "x", "email": "x@example.com"})),
    ] {
        let missing = request.send().await.unwrap();
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
        let error = json_of(missing).await;
        assert_eq!(error["status"], 404);
        assert_eq!(error["error"], format!("not found: user {id}"));
    }
}

#[tokio::test]
async fn unreadable_requests_are_400_with_a_json_error() {
    let service = service();
    let http = Client::new();
    let not_json = http
        .post(service.url("/users"))
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    let missing_field = http
        .post(service.url("/users"))
        .json(&json!({"name": "No email"}))
        .send()
        .await
        .unwrap();
    let no_content_type = http
        .post(service.url("/users"))
        .body("{\"name\": \"a\", \"email\": \"b\"}")
        .send()
        .await
        .unwrap();
    let bad_id = http.get(service.url("/users/abc")).send().await.unwrap();
    for response in [not_json, missing_field, no_content_type, bad_id] {
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let error = json_of(response).await;
        assert_eq!(error["status"], 400);
        assert!(!error["error"].as_str().unwrap().is_empty(), "{error}");
    }
    let missing_field = http
        .post(service.url("/users"))
        .json(&json!({"name": "No email"}))
        .send()
        .await
        .unwrap();
    let error = json_of(missing_field).await;
    assert!(
        error["error"].as_str().unwrap().contains("email"),
        "names the missing field: {error}"
    );
}

#[tokio::test]
async fn health_reports_each_database_with_its_pool() {
    let service = service();
    let response = reqwest::get(service.url("/health")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let health = json_of(response).await;
    assert_eq!(health["status"], "ok");
    let databases = health["databases"].as_array().unwrap();
    assert_eq!(databases.len(), 1, "{health}");
    let db = &databases[0];
    assert_eq!(db["name"], "db");
    assert_eq!(db["reachable"], true);
    assert!(db["url"].as_str().unwrap().ends_with("/users.db"), "{db}");
    let round_trip = db["round_trip_ms"].as_f64().expect("a round trip");
    assert!(round_trip > 0.0, "{db}");
    assert_eq!(db["error"], Value::Null);
    assert_eq!(db["pool"]["max"], 4);
    assert!(db["pool"]["size"].as_u64().unwrap() >= 1, "{db}");
    assert!(db["pool"]["acquired"].as_u64().unwrap() >= 1, "{db}");
}

#[tokio::test]
async fn two_hundred_concurrent_requests_all_answered_within_the_pool() {
    let service = Arc::new(service());
    let http = Client::new();

    // Watch the pool's gauges through /metrics while the load runs.
    let running = Arc::new(AtomicBool::new(true));
    let watcher = tokio::spawn({
        let (http, service, running) = (http.clone(), Arc::clone(&service), Arc::clone(&running));
        async move {
            let (mut size, mut in_use, mut polls) = (0.0_f64, 0.0_f64, 0);
            while running.load(Ordering::Relaxed) {
                let text = http
                    .get(service.url("/metrics"))
                    .send()
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap();
                size = samples(&text, "sqlreg_pool_size")
                    .into_iter()
                    .fold(size, f64::max);
                in_use = samples(&text, "sqlreg_pool_in_use")
                    .into_iter()
                    .fold(in_use, f64::max);
                polls += 1;
            }
            (size, in_use, polls)
        }
    });

    let requests = (0..200).map(|n| {
        let (http, service) = (http.clone(), Arc::clone(&service));
        tokio::spawn(async move {
            let response = if n % 2 == 0 {
                http.post(service.url("/users"))
                    .json(
                        &json!({"name": format!("user {n}"), "email": format!("u{n}@example.com")}),
                    )
                    .send()
                    .await
            } else {
                http.get(service.url(&format!("/users/{}", n / 2)))
                    .send()
                    .await
            };
            response.expect("answered").status()
        })
    });
    let statuses: Vec<StatusCode> = futures_util::future::join_all(requests)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    running.store(false, Ordering::Relaxed);
    let (max_size, max_in_use, polls) = watcher.await.unwrap();

    assert_eq!(statuses.len(), 200);
    let server_errors: Vec<_> = statuses.iter().filter(|s| s.is_server_error()).collect();
    assert!(server_errors.is_empty(), "5xx answers: {server_errors:?}");
    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    assert_eq!(created, 100, "every POST created its user: {statuses:?}");
    assert!(
        statuses
            .iter()
            .all(|s| [StatusCode::CREATED, StatusCode::OK, StatusCode::NOT_FOUND].contains(s)),
        "{statuses:?}"
    );
    assert!(polls > 0);
    assert!(max_size <= POOL_MAX, "pool size reached {max_size}");
    assert!(max_in_use <= POOL_MAX, "in use reached {max_in_use}");

    let health = json_of(reqwest::get(service.url("/health")).await.unwrap()).await;
    let pool = &health["databases"][0]["pool"];
    assert!(pool["acquired"].as_u64().unwrap() >= 200, "{pool}");
    assert!(
        pool["created"].as_u64().unwrap() <= 4 + pool["closed"].as_u64().unwrap(),
        "{pool}"
    );
    assert_eq!(pool["timed_out"], 0, "{pool}");
}

#[tokio::test]
async fn metrics_has_every_sqlreg_series_labelled_by_database() {
    let service = service();
    let http = Client::new();
    http.post(service.url("/users"))
        .json(&json!({"name": "Grace", "email": "grace@example.com"}))
        .send()
        .await
        .unwrap();
    let response = http.get(service.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain"),
    );
    let text = response.text().await.unwrap();
    for series in [
        "sqlreg_acquired_total",
        "sqlreg_created_total",
        "sqlreg_timed_out_total",
        "sqlreg_evicted_total",
        "sqlreg_pool_size",
        "sqlreg_pool_idle",
        "sqlreg_pool_in_use",
        "sqlreg_pool_waiting",
    ] {
        let values = samples(&text, series);
        assert_eq!(values.len(), 1, "one sample of {series}:\n{text}");
    }
    assert!(samples(&text, "sqlreg_acquired_total")[0] >= 1.0, "{text}");
    for histogram in [
        "sqlreg_session_duration_seconds_count",
        "sqlreg_connection_wait_seconds_count",
        "sqlreg_statement_duration_seconds_count",
    ] {
        let counts = samples(&text, histogram);
        assert!(!counts.is_empty(), "{histogram}:\n{text}");
        assert!(
            counts.iter().sum::<f64>() >= 1.0,
            "{histogram} counted:\n{text}"
        );
    }
    let database_label = "database=\"sqlite:///";
    assert!(
        text.lines()
            .filter(|l| l.starts_with("sqlreg_"))
            .all(|l| l.contains(database_label)),
        "every sqlreg series is labelled with its database:\n{text}"
    );
}

#[tokio::test]
async fn sigterm_closes_the_databases_and_exits_zero() {
    let mut service = service();
    let http = Client::new();
    let created = http
        .post(service.url("/users"))
        .json(&json!({"name": "Linus", "email": "linus@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let status = service.terminate();
    assert!(status.success(), "exit status {status:?}");
    assert!(
        service.printed().contains("stopped"),
        "{}",
        service.printed()
    );
    assert!(
        http.get(service.url("/health")).send().await.is_err(),
        "nothing listens after shutdown"
    );
}

/// A request still running when SIGTERM arrives is answered before the
/// service exits: here an insert waiting for a SQLite write lock that the
/// test holds, and lets go of only after the signal.
#[tokio::test]
async fn sigterm_lets_a_request_in_flight_finish() {
    let yaml = format!("{}    sqlite:\n      busy_timeout: 60\n", sqlite_yaml(2, 2));
    let mut service = Service::start(&yaml);
    let http = Client::new();
    // The service created the table; the test takes the write lock.
    let file = service.dir().join("users.db");
    let config = sqlreg::DbConfig::new(format!("sqlite:///{}", file.display()));
    let holder = sqlreg::SqlConnectionRegistry::connect(config)
        .await
        .unwrap();
    let lock = holder.get().await.unwrap();
    sea_orm::ConnectionTrait::execute_unprepared(&lock, "DELETE FROM users WHERE id < 0")
        .await
        .unwrap();
    let in_flight = tokio::spawn({
        let request = http
            .post(service.url("/users"))
            .json(&json!({"name": "Ada", "email": "ada@example.com"}));
        async move { request.send().await }
    });
    // Wait until the service holds a session for it (the insert is waiting).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let text = http
            .get(service.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if samples(&text, "sqlreg_pool_in_use")
            .iter()
            .any(|&n| n >= 1.0)
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the insert never started"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    service.signal_terminate();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    lock.commit().await.unwrap();
    let answered = in_flight
        .await
        .unwrap()
        .expect("the request in flight is answered");
    assert_eq!(answered.status(), StatusCode::CREATED);
    let status = tokio::task::spawn_blocking(move || {
        let status = service.wait_for_exit();
        (status, service)
    })
    .await
    .unwrap();
    assert!(status.0.success(), "exit status {:?}", status.0);
    let stored = holder
        .read_session(async |s| {
            let row = sea_orm::ConnectionTrait::query_one_raw(
                s,
                sea_orm::Statement::from_string(
                    sea_orm::DbBackend::Sqlite,
                    "SELECT COUNT(*) AS n FROM users WHERE email = 'ada@example.com'",
                ),
            )
            .await?
            .expect("one row");
            Ok::<_, sqlreg::Error>(row.try_get::<i64>("", "n")?)
        })
        .await
        .unwrap();
    assert_eq!(
        stored, 1,
        "the answered insert was committed before the exit"
    );
}
