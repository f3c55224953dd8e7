//! An axum web service over sqlreg — the shape a backend engineer copies.
//!
//! `cargo run -p sqlreg-service -- --listen 127.0.0.1:8080` serves the users
//! of `service.yaml` (SQLite in memory, so it needs no server):
//! `POST /users`, `GET|PUT|DELETE /users/{id}`, `GET /health`, `GET /metrics`.
//! SIGTERM or Ctrl-C stops accepting, lets requests in flight finish, closes
//! the databases and exits 0.

mod api_error;
mod app;
mod health;
mod users;

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use sqlreg::{Config, SqlConnectionRegistries, SqlConnectionRegistry};
use tokio::net::TcpListener;

/// The section holding the users table; the service's default database.
const USERS_SECTION: &str = "core_lib.db";

/// Histogram buckets (seconds) for sqlreg's latency series: 100 µs to 10 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// The users service over sqlreg.
#[derive(Parser)]
#[command(name = "sqlreg-service", version)]
struct Args {
    /// Address to listen on; port 0 picks a free port (the chosen address is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// The config file.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/service.yaml"))]
    config: PathBuf,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    match serve(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    // Before connecting: sqlreg registers its series when a registry opens.
    let prometheus = install_prometheus()?;
    let config = Config::from_yaml_file(&args.config)?;
    let databases = open_databases(&config).await?;
    let listener = TcpListener::bind(args.listen).await?;
    println!("listening on http://{}", listener.local_addr()?);

    let router = app::router(app::App::new(databases.clone(), prometheus)?);
    let served = axum::serve(listener, router)
        .with_graceful_shutdown(shutdown_signal())
        .await;
    databases.close_all().await;
    served?;
    println!("stopped");
    Ok(())
}

/// The Prometheus recorder behind `/metrics`; sqlreg's `*_seconds` series
/// become histograms with [`LATENCY_BUCKETS`].
fn install_prometheus() -> Result<PrometheusHandle, Box<dyn std::error::Error>> {
    Ok(PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)?
        .install_recorder()?)
}

/// The users database (with its table) as the default, and every other
/// section under `core_lib`, all opened — or none, with the first error.
async fn open_databases(config: &Config) -> sqlreg::Result<SqlConnectionRegistries> {
    let users_section = config.section(USERS_SECTION);
    let users = SqlConnectionRegistry::builder(config.at(USERS_SECTION)?)
        .entity(users::Entity)
        .connect()
        .await?;
    let mut databases = SqlConnectionRegistries::builder(config)
        .registry(&users_section.name, users)
        .default(&users_section.name);
    for other in config.sections_with_url("core_lib")? {
        if other.path != users_section.path {
            databases = databases.section(&other.path);
        }
    }
    databases.connect().await
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};

    let mut terminate = signal(SignalKind::terminate()).expect("a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    tracing::info!("shutting down: finishing the requests in flight");
}
