//! How PostgreSQL connections are opened for each `session.pooler` mode.
//! A direct connection carries the registry's settings as startup
//! `options`, which every pooler refuses; behind a pooler in session mode
//! they are set once per connection, and behind one in transaction mode —
//! where the server connection is shared between transactions — inside
//! each transaction, so that nothing outlives it.

use std::time::Duration;

use sqlx::Postgres;
use sqlx::postgres::PgConnectOptions;

use super::super::connect::Opening;
use crate::config::{DbConfig, Pooler};

/// The connect options every connection to the server starts from: with
/// `statement_timeout` as a startup option on a direct connection.
pub(super) fn startup(options: PgConnectOptions, config: &DbConfig) -> PgConnectOptions {
    match config.session.statement_timeout {
        Some(limit) if config.session.pooler == Pooler::None => {
            options.options([("statement_timeout", millis(limit).as_str())])
        }
        _ => options,
    }
}

/// How session connections are opened. Read sessions rely on the server
/// refusing writes outside a transaction where they skip `BEGIN`: session
/// connections default to read-only, write sessions say `READ WRITE` in
/// their `BEGIN`. Behind a transaction pooler no default survives the
/// transaction, so every session runs in one and names its access mode.
pub(super) fn sessions(options: PgConnectOptions, config: &DbConfig) -> Opening<Postgres> {
    let limit = config.session.statement_timeout.map(millis);
    match config.session.pooler {
        Pooler::None => Opening {
            writes_by_default: false,
            ..Opening::new(options.options([("default_transaction_read_only", "on")]))
        },
        Pooler::Session => Opening {
            setup: Some(session_settings(true, limit.as_deref())),
            writes_by_default: false,
            ..Opening::new(options)
        },
        Pooler::Transaction => Opening {
            transaction_settings: Some(limit.map_or_else(String::new, |ms| {
                format!("SET LOCAL statement_timeout = {ms}")
            })),
            // Named statements would outlive the transaction on a server
            // connection that other clients share (sqlx numbers them per
            // client connection, so two clients' names collide).
            ..Opening::new(options.statement_cache_capacity(0))
        },
    }
}

/// How the engine's connections are opened: `statement_timeout` set once
/// per connection behind a pooler in session mode.
pub(super) fn engine(options: PgConnectOptions, config: &DbConfig) -> Opening<Postgres> {
    let limit = config.session.statement_timeout.map(millis);
    match (config.session.pooler, limit) {
        (Pooler::Session, Some(ms)) => Opening {
            setup: Some(session_settings(false, Some(&ms))),
            ..Opening::new(options)
        },
        _ => Opening::new(options),
    }
}

/// `SET` statements for a pooler in session mode, run once per connection.
fn session_settings(read_only: bool, statement_timeout: Option<&str>) -> String {
    let mut sql = Vec::new();
    if read_only {
        sql.push("SET default_transaction_read_only = on".to_owned());
    }
    if let Some(ms) = statement_timeout {
        sql.push(format!("SET statement_timeout = {ms}"));
    }
    sql.join("; ")
}

fn millis(limit: Duration) -> String {
    limit.as_millis().to_string()
}
