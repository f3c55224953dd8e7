//! The unit of work: one pooled connection and (at most) one transaction,
//! begun lazily by the first statement and always ended — committed, rolled
//! back, or, if its future is dropped, rolled back in the background — before
//! the connection goes back to the pool.

mod context;
mod leak_watch;
mod replay;
mod savepoint;
mod state;
mod statements;

use std::panic::Location;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use sea_orm::{DbErr, RuntimeErr};
use tokio::sync::{MappedMutexGuard, Mutex, MutexGuard};

use crate::config::Isolation;
use crate::driver::{self, Aborted, Conn};
use crate::error::{Error, Result};
use crate::observe::{self, SessionOutcome, SessionSpan};
use crate::stats::Counters;
pub(crate) use context::{Mode, SessionContext};
use leak_watch::LeakWatch;
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
    context: Arc<SessionContext>,
    mode: Mode,
    /// The level the transaction begins with; `None` keeps the server's.
    isolation: Option<Isolation>,
    opened_at: &'static Location<'static>,
    leak_watch: Option<LeakWatch>,
    /// The session's span and timing.
    observed: SessionSpan,
    /// Whether the session has left `in_use` already.
    left: bool,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("backend", &self.context.backend)
            .field("opened_at", &format_args!("{}", self.opened_at))
            .finish_non_exhaustive()
    }
}

impl Session {
    pub(crate) fn new(
        conn: Conn,
        context: Arc<SessionContext>,
        mode: Mode,
        isolation: Option<Isolation>,
        opened_at: &'static Location<'static>,
        span: tracing::Span,
    ) -> Self {
        context.counters.in_use.fetch_add(1, Ordering::Relaxed);
        let leak_watch = context
            .leak_warning
            .and_then(|threshold| LeakWatch::start(threshold, opened_at));
        Self {
            state: Mutex::new(State::new(conn)),
            context,
            mode,
            isolation,
            opened_at,
            leak_watch,
            observed: SessionSpan::new(span, mode == Mode::Autocommit),
            left: false,
        }
    }

    /// Where the session was opened (the caller of `get()` or `session()`).
    #[must_use]
    pub fn opened_at(&self) -> &'static Location<'static> {
        self.opened_at
    }

    /// Commits what the session did and returns the connection to the pool.
    ///
    /// # Errors
    ///
    /// [`Error::Commit`] when nothing was committed: the database refused the
    /// commit (a deferred constraint, a serialization failure, a lost
    /// connection), or an earlier statement failed in a way that made the
    /// server abort the transaction (PostgreSQL after any error, MariaDB
    /// after a deadlock) — even if the caller ignored that error. The
    /// transaction is then rolled back and the connection still released.
    pub async fn commit(mut self) -> Result<()> {
        let state = self.state.get_mut();
        let Some(mut conn) = state.conn.take() else {
            return Ok(());
        };
        if state.broken {
            return Err(Error::Commit(DbErr::Custom(
                "the connection broke during the session; nothing was committed".into(),
            )));
        }
        if state.unobserved && state.aborted.is_none() && conn.transaction_depth() > 0 {
            match self.context.within_limit(conn.transaction_survived()).await {
                Ok(true) => {}
                Ok(false) => {
                    state.aborted = Some(Abort {
                        scope: Aborted::Whole,
                        cause: "a statement run through `Session::sqlx()` failed".into(),
                    });
                }
                Err(err) => return Err(self.commit_failed(conn, err).await),
            }
        }
        if let Some(abort) = self.state.get_mut().aborted.take() {
            let observer = &self.context.observer;
            self.observed.end(
                observer,
                SessionOutcome::Failed,
                Some("transaction_aborted"),
            );
            conn.rollback_all_or_close(ROLLBACK_LIMIT).await;
            self.end(conn);
            return Err(Error::Commit(DbErr::Custom(abort.commit_refusal())));
        }
        let wrote = self.mode == Mode::Transaction && conn.transaction_depth() > 0;
        let mut committed = Ok(());
        while committed.is_ok() && conn.transaction_depth() > 0 {
            committed = self.context.within_limit(conn.commit()).await;
        }
        match committed {
            Ok(()) => {
                if wrote {
                    self.context.note_commit(&mut conn).await;
                }
                let observer = &self.context.observer;
                self.observed.end(observer, SessionOutcome::Committed, None);
                self.end(conn);
                Ok(())
            }
            Err(err) => Err(self.commit_failed(conn, err).await),
        }
    }

    /// Cleans up after a failed commit: a lost connection is closed, anything
    /// else rolled back; either way the connection is released.
    async fn commit_failed(&mut self, mut conn: Conn, err: sqlx::Error) -> Error {
        let observer = &self.context.observer;
        let error_type = observe::error_type(&err);
        self.observed
            .end(observer, SessionOutcome::Failed, Some(&error_type));
        let lost = driver::is_fatal(&err);
        if lost {
            self.context.evict(&mut conn);
        } else {
            conn.rollback_all_or_close(ROLLBACK_LIMIT).await;
        }
        self.end(conn);
        if lost {
            return Error::Commit(DbErr::Custom(format!(
                "the connection was lost after COMMIT was sent ({err}): whether the transaction \
                 was committed is unknown, so it is never retried"
            )));
        }
        Error::Commit(query_error(driver::explain(err)))
    }

    /// The transient conflict (or lost connection) a statement of this
    /// session met, if any: the retrying form runs the transaction again.
    pub(crate) fn take_conflict(&mut self) -> Option<DbErr> {
        self.state.get_mut().conflict.take()
    }

    /// The counters of the server this session runs on, where the retrying
    /// form counts a retry its conflict caused.
    pub(crate) fn counters(&self) -> Arc<Counters> {
        Arc::clone(&self.context.counters)
    }

    /// Numbers this session, on its span, as attempt `number` of the
    /// retrying form.
    pub(crate) fn observe_attempt(&self, number: u32) {
        self.observed
            .span()
            .record("sqlreg.session.attempt", number);
    }

    /// Leaves `in_use` and hands the connection back to the pool (or closes it).
    fn end(&mut self, conn: Conn) {
        self.leave();
        self.context.release(conn);
    }

    /// Leaves `in_use` and stops the leak watch; idempotent.
    fn leave(&mut self) {
        if !self.left {
            self.left = true;
            self.context.counters.in_use.fetch_sub(1, Ordering::Relaxed);
            if let Some(watch) = self.leak_watch.take() {
                watch.finish();
            }
        }
    }

    /// core-lib's name for [`commit`](Session::commit): commit and release.
    ///
    /// # Errors
    ///
    /// As [`commit`](Session::commit).
    pub async fn close(self) -> Result<()> {
        self.commit().await
    }

    /// Rolls back what the session did and returns the connection to the pool.
    /// A connection that cannot be rolled back is closed instead.
    pub async fn rollback(mut self) {
        let state = self.state.get_mut();
        let Some(mut conn) = state.conn.take() else {
            return;
        };
        let outcome = if state.broken {
            SessionOutcome::Failed
        } else {
            conn.rollback_all_or_close(ROLLBACK_LIMIT).await;
            SessionOutcome::RolledBack
        };
        self.observed.end(&self.context.observer, outcome, None);
        self.end(conn);
    }

    /// The session's own sqlx connection, inside its transaction, for plain
    /// sqlx queries: `sqlx::query("…").execute(&mut *s.sqlx::<sqlx::Postgres>().await?)`.
    ///
    /// Hold it only while running statements: the session's other methods
    /// wait until it is dropped.
    /// Statements run this way bypass sqlreg: they get no span and no
    /// histogram entry.
    ///
    /// # Errors
    ///
    /// [`Error::Query`] if the session is not on `DB`'s backend, or if
    /// beginning the transaction fails.
    pub async fn sqlx<DB: sqlx::Database>(&self) -> Result<MappedMutexGuard<'_, DB::Connection>> {
        let mut state = self.prepare(true).await?;
        // Only a session that may write can lose work to an abort it did
        // not see; read sessions skip the check at commit.
        state.unobserved = self.mode == Mode::Transaction;
        MutexGuard::try_map(state, |state| {
            state.usable().ok().and_then(Conn::downcast_mut)
        })
        .map_err(|_| {
            Error::Query(DbErr::Custom(format!(
                "this session is on {:?}, not {}",
                self.context.backend,
                DB::NAME
            )))
        })
    }

    /// The state, with the connection ready for the next statement: the
    /// transaction begun if this session needs one.
    async fn ready(&self) -> Result<MutexGuard<'_, State>, DbErr> {
        self.prepare(false).await
    }

    /// As [`ready`](Self::ready); with `needs_transaction`, a read session
    /// that would run its statements on their own begins a transaction
    /// (for a savepoint, or statements sqlreg does not see).
    async fn prepare(&self, needs_transaction: bool) -> Result<MutexGuard<'_, State>, DbErr> {
        let mut state = self.state.lock().await;
        let conn = state.usable()?;
        if conn.transaction_depth() > 0 {
            return Ok(state);
        }
        let read_only = self.mode == Mode::ReadOnly;
        let transaction = match self.mode {
            Mode::Transaction => true,
            Mode::ReadOnly => needs_transaction || !conn.reads_without_transaction(self.isolation),
            Mode::Autocommit => false,
        };
        // Interrupted here, the connection's state is unknown: it is closed.
        state.beginning = true;
        let conn = state.usable()?;
        let prepared = if transaction {
            let begin = conn.begin(read_only, self.isolation);
            self.context.within_limit(begin).await
        } else {
            // Outside a transaction, autocommit statements must be able to
            // write and a read session's must not.
            let access = conn.writes_by_default(self.mode == Mode::Autocommit);
            self.context.within_limit(access).await
        };
        state.beginning = false;
        self.check(&mut state, prepared).await?;
        Ok(state)
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
        if let Some(conn) = state.conn.as_mut()
            && !state.broken
        {
            if fatal {
                state.broken = true;
                self.context.lost(conn);
            } else if conn.transaction_depth() > 0 && state.aborted.is_none() {
                let scope = conn.aborted_by(&err).await;
                if scope != Aborted::No {
                    state.aborted = Some(Abort {
                        scope,
                        cause: driver::describe_failure(&err),
                    });
                }
            }
        }
        // A connection lost before COMMIT takes its transaction with it: the
        // server rolls it back, so running it again is safe.
        let retryable = in_transaction && (fatal || driver::is_conflict(&err));
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

impl Drop for Session {
    /// A session that ends without commit or rollback — dropped guard, panic,
    /// cancelled future — is rolled back off the caller's path; its connection
    /// goes back to the pool only once no transaction is open on it.
    fn drop(&mut self) {
        self.leave();
        let state = self.state.get_mut();
        let outcome = if state.broken {
            SessionOutcome::Failed
        } else {
            SessionOutcome::RolledBack
        };
        self.observed.end(&self.context.observer, outcome, None);
        let Some(mut conn) = state.conn.take() else {
            return;
        };
        if state.beginning {
            self.context.evict(&mut conn);
        }
        if state.broken || state.beginning || conn.transaction_depth() == 0 {
            self.context.release(conn);
            return;
        }
        tracing::warn!(
            opened_at = %self.opened_at,
            "session dropped inside a transaction without commit or rollback; rolling it back"
        );
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let context = Arc::clone(&self.context);
                runtime.spawn(async move {
                    conn.rollback_all_or_close(ROLLBACK_LIMIT).await;
                    context.release(conn);
                });
            }
            Err(_) => conn.close_on_drop(),
        }
    }
}
