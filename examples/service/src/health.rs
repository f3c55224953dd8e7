//! `GET /health`: every database's reachability, round trip and pool, for
//! load balancers and people. 200 when all answer, 503 (same body) otherwise.

use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use futures_util::future::join_all;
use sea_orm::ConnectionTrait;
use serde::Serialize;
use sqlreg::{PoolStats, SqlConnectionRegistry};

use crate::app::App;

/// How long one database may take to answer before it counts as unreachable.
const PING_LIMIT: Duration = Duration::from_secs(3);

#[derive(Serialize)]
pub struct Health {
    status: &'static str,
    databases: Vec<DatabaseHealth>,
}

#[derive(Serialize)]
struct DatabaseHealth {
    name: String,
    /// The URL with the password masked.
    url: String,
    reachable: bool,
    /// The `SELECT 1` alone, without waiting for the connection.
    round_trip_ms: Option<f64>,
    error: Option<String>,
    pool: PoolStats,
}

/// Pings every database at once.
pub async fn report(State(app): State<App>) -> (StatusCode, Json<Health>) {
    let databases = join_all(app.databases.iter().map(|(name, db)| check(name, db))).await;
    let healthy = databases.iter().all(|db| db.reachable);
    let (status, word) = if healthy {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
    };
    let health = Health {
        status: word,
        databases,
    };
    (status, Json(health))
}

async fn check(name: &str, db: &SqlConnectionRegistry) -> DatabaseHealth {
    let ping = async {
        let conn = db.connection().await?;
        let started = Instant::now();
        conn.execute_unprepared("SELECT 1").await?;
        Ok::<_, sqlreg::Error>(started.elapsed())
    };
    let pinged = match tokio::time::timeout(PING_LIMIT, ping).await {
        Ok(Ok(round_trip)) => Ok(round_trip),
        Ok(Err(err)) => Err(err.to_string()),
        Err(_) => Err(format!("no answer within {PING_LIMIT:?}")),
    };
    DatabaseHealth {
        name: name.to_owned(),
        url: db.url().redacted(),
        reachable: pinged.is_ok(),
        round_trip_ms: pinged.as_ref().ok().map(|d| d.as_secs_f64() * 1000.0),
        error: pinged.err(),
        pool: db.stats(),
    }
}
