//! The unit of work: one pooled connection and (at most) one transaction,
//! begun lazily by the first statement and always ended — committed, rolled
//! back, or, if its future is dropped, rolled back in the background — before
//! the connection goes back to the pool.

mod context;
mod leak_watch;
mod savepoint;
mod statements;

use std::panic::Location;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use sea_orm::{DbErr, RuntimeErr};
use tokio::sync::{MappedMutexGuard, Mutex, MutexGuard};

use crate::driver::Conn;
use crate::error::{Error, Result};
pub(crate) use context::{Mode, SessionContext};
use leak_watch::LeakWatch;

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
    opened_at: &'static Location<'static>,
    leak_watch: Option<LeakWatch>,
    /// Whether the session has left `in_use` already.
    left: bool,
}

/// The connection, and whether it broke (a broken one is never used again
/// and is closed instead of pooled).
struct State {
    conn: Option<Conn>,
    broken: bool,
    /// A BEGIN was sent and its answer not yet read. If the session ends in
    /// that state (its future was dropped), the server may be inside a
    /// transaction that sqlx does not know of, so the connection is closed.
    beginning: bool,
}

impl State {
    /// The connection, if the session has not ended and it is not broken.
    fn usable(&mut self) -> Result<&mut Conn, DbErr> {
        match (&mut self.conn, self.broken) {
            (Some(_), true) => Err(DbErr::Custom(
                "the session's connection broke earlier; start a new session".into(),
            )),
            (Some(conn), false) => Ok(conn),
            (None, _) => Err(DbErr::Custom("the session has already ended".into())),
        }
    }
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
        opened_at: &'static Location<'static>,
    ) -> Self {
        context.counters.in_use.fetch_add(1, Ordering::Relaxed);
        let leak_watch = context
            .leak_warning
            .and_then(|threshold| LeakWatch::start(threshold, opened_at));
        Self {
            state: Mutex::new(State {
                conn: Some(conn),
                broken: false,
                beginning: false,
            }),
            context,
            mode,
            opened_at,
            leak_watch,
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
    /// [`Error::Commit`] when the database refuses the commit (a deferred
    /// constraint, a serialization failure, a lost connection). The
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
        let mut committed = Ok(());
        while committed.is_ok() && conn.transaction_depth() > 0 {
            committed = self.context.within_limit(conn.commit()).await;
        }
        let outcome = match committed {
            Ok(()) => Ok(()),
            Err(err) => {
                if conn.is_fatal(&err) {
                    self.context.evict(&mut conn);
                } else {
                    conn.rollback_all_or_close(ROLLBACK_LIMIT).await;
                }
                Err(Error::Commit(query_error(err)))
            }
        };
        self.end(conn);
        outcome
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
        if !state.broken {
            conn.rollback_all_or_close(ROLLBACK_LIMIT).await;
        }
        self.end(conn);
    }

    /// The session's own sqlx connection, inside its transaction, for plain
    /// sqlx queries: `sqlx::query("…").execute(&mut *s.sqlx::<sqlx::Postgres>().await?)`.
    ///
    /// Hold it only while running statements: the session's other methods
    /// wait until it is dropped.
    ///
    /// # Errors
    ///
    /// [`Error::Query`] if the session is not on `DB`'s backend, or if
    /// beginning the transaction fails.
    pub async fn sqlx<DB: sqlx::Database>(&self) -> Result<MappedMutexGuard<'_, DB::Connection>> {
        let state = self.ready(None).await?;
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

    /// The state, with the transaction begun if this session has one.
    /// `first_sql` is the statement about to run (SQLite picks its BEGIN by it).
    async fn ready(&self, first_sql: Option<&str>) -> Result<MutexGuard<'_, State>, DbErr> {
        let mut state = self.state.lock().await;
        let conn = state.usable()?;
        if self.mode != Mode::Autocommit && conn.transaction_depth() == 0 {
            state.beginning = true;
            let conn = state.usable()?;
            let read_only = self.mode == Mode::ReadOnly;
            let begun = self
                .context
                .within_limit(conn.begin(first_sql, read_only))
                .await;
            state.beginning = false;
            self.check(&mut state, begun)?;
        }
        Ok(state)
    }

    /// Marks the connection broken when `outcome` is a fatal error, so it is
    /// closed instead of pooled, and converts the error.
    fn check<T>(&self, state: &mut State, outcome: Result<T, sqlx::Error>) -> Result<T, DbErr> {
        outcome.map_err(|err| {
            if let Some(conn) = state.conn.as_mut()
                && !state.broken
                && conn.is_fatal(&err)
            {
                state.broken = true;
                self.context.evict(conn);
            }
            query_error(err)
        })
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
