//! The unit of work: one pooled connection and (at most) one transaction,
//! begun lazily by the first statement and always ended — committed, rolled
//! back, or, if its future is dropped, rolled back in the background — before
//! the connection goes back to the pool.

mod ending;
mod leak_watch;
mod replay;
mod request;
mod savepoint;
mod sqlx_access;
mod state;
mod statements;

use std::panic::Location;
use std::sync::Arc;
use std::time::Duration;

use sea_orm::{DbErr, RuntimeErr};
use tokio::sync::{Mutex, MutexGuard};

use crate::config::Isolation;
use crate::driver::{self, Aborted, Conn};
use crate::error::Result;
use crate::observe::SessionSpan;
use crate::server::Server;
use crate::stats::{Counters, InUse};
use leak_watch::LeakWatch;
pub(crate) use request::{Mode, Request};
use savepoint::Interrupted;
pub use sqlx_access::SqlxConnection;
use state::{Abort, State};

/// How long a rollback may take before the connection is closed instead.
const ROLLBACK_LIMIT: Duration = Duration::from_secs(5);

/// A unit of work on one pooled connection.
///
/// Use it wherever sea-orm expects a connection (`Entity::find_by_id(1).one(&session)`,
/// `model.insert(&session)`), with raw SQL through
/// [`ConnectionTrait`](sea_orm::ConnectionTrait), or with sqlx directly through
/// [`Session::sqlx`]. The transaction begins with the first statement, so a
/// session that runs nothing costs no round trip.
///
/// End it with [`commit`](Session::commit) (or core-lib's [`close`](Session::close))
/// or [`rollback`](Session::rollback). Dropped without either, it rolls back and
/// logs a warning naming where it was opened.
pub struct Session {
    state: Mutex<State>,
    server: Arc<Server>,
    mode: Mode,
    /// The level the transaction begins with; `None` keeps the server's.
    isolation: Option<Isolation>,
    opened_at: &'static Location<'static>,
    leak_watch: Option<LeakWatch>,
    /// The session's span and timing.
    observed: SessionSpan,
    /// Counts the session in its server's `in_use` until it ends.
    in_use: Option<InUse>,
    /// A savepoint whose future was dropped before it ended, to undo.
    interrupted: Interrupted,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("backend", &self.server.backend())
            .field("opened_at", &format_args!("{}", self.opened_at))
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A session on a connection of `server`, as `request` describes it.
    ///
    /// # Errors
    ///
    /// [`Error::PoolTimeout`](crate::Error::PoolTimeout) when no connection
    /// frees up within `pool_timeout`, [`Error::Closed`](crate::Error::Closed)
    /// after the registry closed, [`Error::Connect`](crate::Error::Connect)
    /// when a new connection is needed and cannot be opened.
    pub(crate) async fn open(server: &Arc<Server>, request: &Request<'_>) -> Result<Self> {
        let observer = server.observer();
        let span = observer.session_span(request.mode.access(), request.opened_at);
        let conn = observer.wait_for(&span, server.acquire()).await?;
        server.counters().acquired();
        let session = Self::new(conn, server, request, span);
        // After `new`, so the published `in_use` counts this one.
        server.publish_gauges();
        Ok(session)
    }

    /// An autocommit session for sqlreg's own statements (creating the
    /// registered tables): no span, and `stats().acquired` counts only the
    /// application's sessions.
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open).
    pub(crate) async fn open_own(
        server: &Arc<Server>,
        opened_at: &'static Location<'static>,
    ) -> Result<Self> {
        let conn = server.acquire().await?;
        let request = Request::new(Mode::Autocommit, opened_at);
        let session = Self::new(conn, server, &request, tracing::Span::none());
        server.publish_gauges();
        Ok(session)
    }

    fn new(conn: Conn, server: &Arc<Server>, request: &Request<'_>, span: tracing::Span) -> Self {
        let leak_watch = server
            .leak_warning()
            .and_then(|threshold| LeakWatch::start(threshold, request.opened_at));
        Self {
            state: Mutex::new(State::new(conn)),
            in_use: Some(InUse::enter(server.counters())),
            server: Arc::clone(server),
            mode: request.mode,
            isolation: request.isolation,
            opened_at: request.opened_at,
            leak_watch,
            observed: SessionSpan::new(span, request.mode == Mode::Autocommit),
            interrupted: Interrupted::default(),
        }
    }

    /// Where the session was opened (the caller of `get()` or `session()`).
    #[must_use]
    pub fn opened_at(&self) -> &'static Location<'static> {
        self.opened_at
    }

    /// The counters of the server this session runs on, where the retrying
    /// form counts a retry its conflict caused.
    pub(crate) fn counters(&self) -> Arc<Counters> {
        Arc::clone(self.server.counters())
    }

    /// Numbers this session, on its span, as attempt `number` of the
    /// retrying form.
    pub(crate) fn observe_attempt(&self, number: u32) {
        self.observed
            .span()
            .record("sqlreg.session.attempt", number);
    }

    /// The state, with the connection ready for the next statement: the
    /// transaction begun if this session needs one.
    async fn ready(&self) -> Result<MutexGuard<'_, State>, DbErr> {
        self.prepare(false).await
    }

    /// As [`ready`](Self::ready); with `needs_transaction`, a read session
    /// that would run its statements on their own begins a transaction
    /// (for a savepoint).
    async fn prepare(&self, needs_transaction: bool) -> Result<MutexGuard<'_, State>, DbErr> {
        let mut state = self.state.lock().await;
        self.resume(&mut state).await?;
        self.settle(&mut state).await?;
        self.verify(&mut state).await?;
        let conn = state.usable()?;
        if conn.transaction_depth() > 0 {
            if state.left_transaction {
                self.begin_again(&mut state).await?;
            }
            return Ok(state);
        }
        let read_only = self.mode == Mode::ReadOnly;
        let transaction = match self.mode {
            Mode::Transaction => true,
            Mode::ReadOnly => needs_transaction || !conn.reads_without_transaction(self.isolation),
            // Behind a transaction pooler, a statement's halves (parse,
            // then execute) stay on one server connection only inside one.
            Mode::Autocommit => conn.shares_server(),
        };
        // Interrupted here, the connection's state is unknown: it is closed.
        state.in_flight = true;
        state.beginning = true;
        let conn = state.usable()?;
        let prepared = if transaction {
            let begin = conn.begin(read_only, self.isolation);
            self.server.within_limit(begin).await
        } else {
            // Outside a transaction, autocommit statements must be able to
            // write and a read session's must not.
            let access = conn.writes_by_default(self.mode == Mode::Autocommit);
            self.server.within_limit(access).await
        };
        state.in_flight = false;
        state.beginning = false;
        self.check(&mut state, prepared).await?;
        Ok(state)
    }

    /// Before the next round trip, when the last one was cut off by a
    /// cancellation and the body went on without it: PostgreSQL's pending
    /// replies are read and dropped first (sqlx would hand the cut
    /// statement's error to the next round trip and leave that one's reply
    /// pending), SQLite's worker finished the command anyway. A cut BEGIN
    /// (or change of access mode) leaves the transaction state unknown,
    /// and MySQL's driver cannot read a connection after any cut round
    /// trip: the connection is then closed and the session refuses to go on
    /// — nothing of it is committed.
    async fn resume(&self, state: &mut State) -> Result<(), DbErr> {
        if !state.in_flight || state.broken {
            return Ok(());
        }
        let beginning = state.beginning;
        let Some(conn) = state.conn.as_mut() else {
            return Ok(());
        };
        let drained = if beginning || !conn.resumes_after_cut() {
            None
        } else {
            self.server.within_limit(conn.drain()).await.ok()
        };
        if let Some(failed) = drained {
            state.in_flight = false;
            // The cut statement failed: on PostgreSQL that aborted the
            // transaction, which the commit must then refuse.
            if let Some(err) = failed
                && conn.transaction_depth() > 0
                && state.aborted.is_none()
            {
                let scope = conn.aborted_by(&err).await;
                if scope != Aborted::No {
                    state.aborted =
                        Some(Abort::by_statement(scope, driver::describe_failure(&err)));
                }
            }
            return Ok(());
        }
        state.broken = true;
        self.server.evict(conn);
        Err(DbErr::Custom(
            "a round trip of this session was cut off by a cancellation (a timeout around part \
             of the body) where the connection cannot be used again; the session cannot go on \
             and nothing of it is committed: start a new one"
                .into(),
        ))
    }

    /// After statements run through `Session::sqlx()` on MariaDB (see
    /// `State::unverified`): asks whether the transaction is still open.
    /// If it is not, those statements ended it — committed implicitly (DDL)
    /// or rolled back (a deadlock the caller ignored), sqlreg cannot tell —
    /// so the session refuses everything after, rather than run it outside
    /// a transaction, and reports what may have been committed.
    async fn verify(&self, state: &mut State) -> Result<(), DbErr> {
        if !state.unverified {
            return Ok(());
        }
        state.unverified = false;
        if state.usable()?.transaction_depth() == 0 {
            return Ok(());
        }
        state.in_flight = true;
        let conn = state.usable()?;
        let open = self.server.within_limit(conn.transaction_survived()).await;
        state.in_flight = false;
        if !self.check(state, open).await? {
            state
                .committed_by
                .get_or_insert_with(|| "a statement run through `Session::sqlx()`".into());
            state.aborted = Some(Abort::unobserved());
        }
        Ok(())
    }

    /// Begins the transaction again after the server committed it by itself
    /// (see `State::left_transaction`), so what follows stays one unit.
    async fn begin_again(&self, state: &mut State) -> Result<(), DbErr> {
        let read_only = self.mode == Mode::ReadOnly;
        state.in_flight = true;
        let begun = state.usable()?.begin_again(read_only, self.isolation);
        let begun = self.server.within_limit(begun).await;
        state.in_flight = false;
        self.check(state, begun).await?;
        state.left_transaction = false;
        Ok(())
    }

    /// Records what a failed round trip means for the session — a broken
    /// connection is closed instead of pooled, a transaction the server
    /// aborted refuses further statements and the commit, a conflict is
    /// remembered for a retry — and converts the error.
    async fn check<T>(
        &self,
        state: &mut State,
        outcome: Result<T, sqlx::Error>,
    ) -> Result<T, DbErr> {
        let err = match outcome {
            Ok(value) => return Ok(value),
            Err(err) => err,
        };
        let in_transaction = self.mode != Mode::Autocommit;
        let fatal = driver::is_fatal(&err);
        // A write refused as read-only in a session meant to write: the
        // host was demoted. Its connections are of no use for writes.
        let demoted = self.mode != Mode::ReadOnly && driver::refuses_writes(&err);
        if let Some(conn) = state.conn.as_mut()
            && !state.broken
        {
            if fatal {
                state.broken = true;
                self.server.lost(conn);
            } else {
                if demoted {
                    self.server.lost(conn);
                }
                if conn.transaction_depth() > 0 && state.aborted.is_none() {
                    let scope = conn.aborted_by(&err).await;
                    if scope != Aborted::No {
                        state.aborted =
                            Some(Abort::by_statement(scope, driver::describe_failure(&err)));
                    }
                }
            }
        }
        // A connection lost (or a write refused by a demoted primary) before
        // COMMIT takes its transaction with it: the server rolls it back, so
        // running it again — on the new primary — is safe.
        let retryable = in_transaction && (fatal || demoted || driver::is_conflict(&err));
        let err = query_error(driver::explain(err));
        if retryable {
            state.conflict = Some(err.clone());
        }
        Err(err)
    }
}

fn query_error(err: sqlx::Error) -> DbErr {
    DbErr::Query(RuntimeErr::SqlxError(Arc::new(err)))
}
