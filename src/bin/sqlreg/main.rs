//! The `sqlreg` command-line tool: check a config and its databases, run one
//! statement, or write a starter config. Thin: parse, call the library, print.

mod check;
mod exec;
mod init;
mod inputs;
mod migrate;
mod table;
mod value;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Config-driven SQL connection registry: check, query and start configs.
#[derive(Parser)]
#[command(name = "sqlreg", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate a config, connect to its databases, and report on each.
    Check(check::Args),
    /// Run one SQL statement in a session and print what it returns.
    Exec(exec::Args),
    /// Write a commented starter config.yaml.
    Init(init::Args),
    /// List, apply or revert schema migrations, or start a new one.
    Migrate(migrate::Args),
}

/// What a subcommand reports when it cannot do its job at all.
type Failure = Box<dyn std::error::Error>;

fn main() -> ExitCode {
    let cli = Cli::parse();
    log_to_stderr();
    let outcome = match cli.command {
        Command::Check(args) => runtime().block_on(check::run(args)),
        Command::Exec(args) => runtime().block_on(exec::run(args)),
        Command::Init(args) => init::run(&args),
        Command::Migrate(args) => runtime().block_on(migrate::run(args)),
    };
    outcome.unwrap_or_else(|err| {
        eprintln!("error: {err}");
        ExitCode::FAILURE
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// Warnings (slow queries, rollbacks) on stderr, plus each statement when a
/// config turns `log_queries` on.
fn log_to_stderr() {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::prelude::*;

    let filter = Targets::new()
        .with_default(LevelFilter::WARN)
        .with_target("sqlx::query", LevelFilter::INFO);
    tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .with(filter)
        .init();
}
