//! The service's shared state and its routes.

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use metrics_exporter_prometheus::PrometheusHandle;
use sqlreg::{SqlConnectionRegistries, SqlConnectionRegistry};

use crate::{health, users};

/// What every handler can reach; cheap to clone.
#[derive(Clone)]
pub struct App {
    /// Every database of the config, for `/health`.
    pub databases: SqlConnectionRegistries,
    /// The default database, holding the users table.
    pub users: SqlConnectionRegistry,
    prometheus: PrometheusHandle,
}

impl App {
    pub fn new(
        databases: SqlConnectionRegistries,
        prometheus: PrometheusHandle,
    ) -> sqlreg::Result<Self> {
        let users = databases.get_default()?.clone();
        Ok(Self {
            databases,
            users,
            prometheus,
        })
    }
}

pub fn router(app: App) -> Router {
    Router::new()
        .route("/users", post(users::create))
        .route(
            "/users/{id}",
            get(users::read).put(users::update).delete(users::delete),
        )
        .route("/health", get(health::report))
        .route("/metrics", get(metrics))
        .with_state(app)
}

/// Every series in Prometheus' text format, sqlreg's `sqlreg_*` among them.
async fn metrics(State(app): State<App>) -> impl IntoResponse {
    app.prometheus.run_upkeep();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.prometheus.render(),
    )
}
