//! What operators see of sqlreg beyond logs: a `tracing` span per session
//! and a child span per statement, named and attributed by OpenTelemetry's
//! stable database conventions (`db.system.name`, `db.namespace`,
//! `server.address`, `db.operation.name`, `db.query.text` with every literal
//! replaced by `?`, `error.type`), and latency histograms through the
//! `metrics` facade. With no subscriber and no recorder installed, the cost
//! is a few clock reads per statement. Statements run through
//! [`Session::sqlx`](crate::Session::sqlx) bypass sqlreg, and so both.

mod histograms;
mod session_span;
mod sql;

use std::borrow::Cow;
use std::panic::Location;
use std::time::{Duration, Instant};

use sea_orm::DbBackend;
use tracing::field::Empty;
use tracing::{Instrument, Span};

use crate::driver;
use crate::error::Error;
use crate::url::DbUrl;
use histograms::Histograms;
pub(crate) use histograms::{SessionOutcome, WaitOutcome};
pub(crate) use session_span::SessionSpan;
use sql::Operation;

/// The attributes every span of one database carries, and its histograms.
pub(crate) struct Observer {
    system: &'static str,
    namespace: Option<String>,
    address: Option<String>,
    port: Option<u16>,
    identifier_quote: u8,
    histograms: Histograms,
}

impl Observer {
    pub(crate) fn new(url: &DbUrl, backend: DbBackend) -> Self {
        Self {
            system: driver::system_name(url),
            namespace: url.database().map(str::to_owned),
            address: url.host().map(str::to_owned),
            port: url.host().and(url.port()),
            identifier_quote: driver::identifier_quote(backend),
            histograms: Histograms::new(&url.redacted()),
        }
    }

    /// The span of a session about to wait for its connection: a child of
    /// the caller's current span (a request's, say), open until release.
    /// `access` is `read_write`, `read_only` or `autocommit`.
    pub(crate) fn session_span(&self, access: &'static str, opened_at: &Location<'_>) -> Span {
        tracing::info_span!(
            target: "sqlreg",
            "sqlreg.session",
            db.system.name = self.system,
            db.namespace = self.namespace.as_deref(),
            server.address = self.address.as_deref(),
            server.port = self.port,
            sqlreg.session.access = access,
            sqlreg.session.outcome = Empty,
            sqlreg.session.attempt = Empty,
            code.file.path = opened_at.file(),
            code.line.number = opened_at.line(),
            error.type = Empty,
            otel.status_code = Empty,
        )
    }

    /// Times the wait for a connection, inside the session's span; a
    /// failure ends the span with its error.
    pub(crate) async fn wait_for<T>(
        &self,
        span: &Span,
        acquire: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        let started = Instant::now();
        let acquired = acquire.instrument(span.clone()).await;
        let outcome = match &acquired {
            Ok(_) => WaitOutcome::Acquired,
            Err(Error::PoolTimeout { .. }) => WaitOutcome::TimedOut,
            Err(_) => WaitOutcome::Failed,
        };
        self.histograms.wait(outcome, started.elapsed());
        if let Err(err) = &acquired {
            span.record("sqlreg.session.outcome", SessionOutcome::Failed.label());
            failed(span, acquire_error_type(err));
        }
        acquired
    }

    /// Runs one statement's round trip inside its own span (a child of the
    /// session's) and times it.
    pub(crate) async fn statement<T>(
        &self,
        session: &Span,
        sql: &str,
        round_trip: impl Future<Output = Result<T, sqlx::Error>>,
    ) -> Result<T, sqlx::Error> {
        let span = tracing::info_span!(
            target: "sqlreg",
            parent: session,
            "sqlreg.statement",
            otel.name = Empty,
            otel.kind = "client",
            db.system.name = self.system,
            db.namespace = self.namespace.as_deref(),
            server.address = self.address.as_deref(),
            server.port = self.port,
            db.operation.name = Empty,
            db.collection.name = Empty,
            db.query.text = Empty,
            db.response.status_code = Empty,
            error.type = Empty,
            otel.status_code = Empty,
        );
        if !span.is_disabled() {
            self.describe(&span, sql);
        }
        let started = Instant::now();
        let outcome = round_trip.instrument(span.clone()).await;
        self.histograms
            .statement(Operation::of(sql), outcome.is_ok(), started.elapsed());
        if let Err(err) = &outcome {
            if let sqlx::Error::Database(db) = err
                && let Some(code) = db.code()
            {
                span.record("db.response.status_code", code.as_ref());
            }
            failed(&span, &error_type(err));
        }
        outcome
    }

    /// The statement's text with literals hidden, what it does and to which
    /// table, and the span's name after them (`SELECT items`).
    fn describe(&self, span: &Span, sql: &str) {
        let text = sql::sanitize(sql, self.identifier_quote);
        let operation = sql::operation_name(&text);
        let collection = sql::collection_name(&text);
        let name = match (&operation, &collection) {
            (Some(op), Some(table)) => format!("{op} {table}"),
            (Some(op), None) => op.clone(),
            (None, _) => self.system.to_owned(),
        };
        span.record("otel.name", name);
        span.record("db.operation.name", operation);
        span.record("db.collection.name", collection);
        span.record("db.query.text", text);
    }

    /// Ends a session's observation: its outcome on the span, its time
    /// holding the connection in the histogram.
    fn session_ended(&self, span: &Span, outcome: SessionOutcome, held: Duration) {
        span.record("sqlreg.session.outcome", outcome.label());
        self.histograms.session(outcome, held);
    }
}

/// Marks `span` failed with OpenTelemetry's `error.type`.
fn failed(span: &Span, error_type: &str) {
    span.record("error.type", error_type);
    span.record("otel.status_code", "ERROR");
}

/// `error.type` of a failed statement or commit: the server's error code
/// (SQLSTATE, SQLite's result code) when there is one, else the kind of failure.
pub(crate) fn error_type(err: &sqlx::Error) -> Cow<'static, str> {
    Cow::Borrowed(match err {
        sqlx::Error::Database(db) => {
            return db.code().map_or(Cow::Borrowed("database"), |code| {
                Cow::Owned(code.into_owned())
            });
        }
        sqlx::Error::Io(_) => "io",
        sqlx::Error::Tls(_) => "tls",
        sqlx::Error::Protocol(_) => "protocol",
        sqlx::Error::WorkerCrashed => "worker_crashed",
        sqlx::Error::PoolTimedOut => "pool_timeout",
        sqlx::Error::PoolClosed => "closed",
        sqlx::Error::RowNotFound => "row_not_found",
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => "decode",
        _ => "other",
    })
}

/// `error.type` of a session that got no connection.
fn acquire_error_type(err: &Error) -> &'static str {
    match err {
        Error::PoolTimeout { .. } => "pool_timeout",
        Error::Closed { .. } => "closed",
        Error::Connect { .. } => "connect",
        Error::Acquire { .. } => "acquire",
        _ => "other",
    }
}
