//! The unit of work: one pooled connection and (at most) one transaction,
//! begun lazily by the first statement and always ended — committed, rolled
//! back, or, if its future is dropped, rolled back in the background — before
//! the connection goes back to the pool.

use std::panic::{AssertUnwindSafe, Location};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use futures_util::FutureExt;
use sea_orm::{ConnectionTrait, DbBackend, DbErr, ExecResult, QueryResult, RuntimeErr, Statement};
use tokio::sync::{MappedMutexGuard, Mutex, MutexGuard};

use crate::driver::{Conn, MemoryDatabase};
use crate::error::{Error, Result};

/// How long a rollback may take before the connection is closed instead.
const ROLLBACK_LIMIT: Duration = Duration::from_secs(5);

/// Whether statements run inside one transaction or each on its own.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// `get()` / `session()`: one transaction, begun by the first statement.
    Transaction,
    /// `connection()`: every statement commits by itself.
    Autocommit,
}

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
    state: Mutex<Option<Conn>>,
    backend: DbBackend,
    mode: Mode,
    opened_at: &'static Location<'static>,
    /// Counts this session as holding a connection until it is dropped.
    _lease: Lease,
    /// Keeps a private in-memory database alive while a session uses it.
    _memory: Option<Arc<MemoryDatabase>>,
}

/// One connection held by a session, counted in the registry's `in_use`.
pub(crate) struct Lease(Arc<AtomicU32>);

impl Lease {
    pub(crate) fn take(in_use: &Arc<AtomicU32>) -> Self {
        in_use.fetch_add(1, Ordering::Relaxed);
        Self(Arc::clone(in_use))
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("backend", &self.backend)
            .field("opened_at", &format_args!("{}", self.opened_at))
            .finish_non_exhaustive()
    }
}

impl Session {
    pub(crate) fn new(
        conn: Conn,
        backend: DbBackend,
        mode: Mode,
        opened_at: &'static Location<'static>,
        lease: Lease,
        memory: Option<Arc<MemoryDatabase>>,
    ) -> Self {
        Self {
            state: Mutex::new(Some(conn)),
            backend,
            mode,
            opened_at,
            _lease: lease,
            _memory: memory,
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
        let Some(mut conn) = self.state.get_mut().take() else {
            return Ok(());
        };
        let mut committed = Ok(());
        while committed.is_ok() && conn.transaction_depth() > 0 {
            committed = conn.commit().await;
        }
        if let Err(err) = committed {
            conn.rollback_all_or_close(ROLLBACK_LIMIT).await;
            return Err(Error::Commit(query_error(err)));
        }
        Ok(())
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
        if let Some(mut conn) = self.state.get_mut().take() {
            conn.rollback_all_or_close(ROLLBACK_LIMIT).await;
        }
    }

    /// Runs `body` inside a savepoint: its work is kept when it returns `Ok`
    /// and undone alone (the rest of the session stays) when it returns `Err`
    /// or panics.
    ///
    /// # Errors
    ///
    /// `body`'s own error, or the statement that opened or released the savepoint.
    pub async fn savepoint<T, E, F>(&self, body: F) -> Result<T, E>
    where
        F: AsyncFnOnce(&Session) -> Result<T, E>,
        E: From<Error>,
    {
        self.open_savepoint().await.map_err(Error::from)?;
        let outcome = AssertUnwindSafe(body(self)).catch_unwind().await;
        match outcome {
            Ok(Ok(value)) => {
                self.end_savepoint(true).await.map_err(Error::from)?;
                Ok(value)
            }
            Ok(Err(err)) => {
                self.end_savepoint(false).await.map_err(Error::from)?;
                Err(err)
            }
            Err(panic) => {
                let _ = self.end_savepoint(false).await;
                std::panic::resume_unwind(panic)
            }
        }
    }

    async fn open_savepoint(&self) -> Result<(), DbErr> {
        let mut state = self.ready(None).await?;
        let conn = state.as_mut().ok_or_else(finished)?;
        conn.begin(None).await.map_err(query_error)
    }

    /// Releases (`keep`) or rolls back the innermost savepoint.
    async fn end_savepoint(&self, keep: bool) -> Result<(), DbErr> {
        let mut state = self.state.lock().await;
        let conn = state.as_mut().ok_or_else(finished)?;
        let ended = if keep {
            conn.commit().await
        } else {
            conn.rollback().await
        };
        ended.map_err(query_error)
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
        MutexGuard::try_map(state, |state| state.as_mut().and_then(Conn::downcast_mut)).map_err(
            |_| {
                Error::Query(DbErr::Custom(format!(
                    "this session is on {:?}, not {}",
                    self.backend,
                    DB::NAME
                )))
            },
        )
    }

    /// The connection, with the transaction begun if this session has one.
    /// `first_sql` is the statement about to run (SQLite picks its BEGIN by it).
    async fn ready(&self, first_sql: Option<&str>) -> Result<MutexGuard<'_, Option<Conn>>, DbErr> {
        let mut state = self.state.lock().await;
        let conn = state.as_mut().ok_or_else(finished)?;
        if self.mode == Mode::Transaction && conn.transaction_depth() == 0 {
            conn.begin(first_sql).await.map_err(query_error)?;
        }
        Ok(state)
    }
}

fn finished() -> DbErr {
    DbErr::Custom("the session has already ended".into())
}

fn query_error(err: sqlx::Error) -> DbErr {
    DbErr::Query(RuntimeErr::SqlxError(Arc::new(err)))
}

fn exec_error(err: sqlx::Error) -> DbErr {
    DbErr::Exec(RuntimeErr::SqlxError(Arc::new(err)))
}

/// Runs one statement on the session's connection, beginning the transaction first.
macro_rules! on_connection {
    ($session:expr, $sql:expr, $conn:ident => $run:expr, $map_err:expr) => {{
        let mut state = $session.ready(Some($sql)).await?;
        let $conn = state.as_mut().ok_or_else(finished)?;
        $run.await.map_err($map_err)
    }};
}

#[async_trait::async_trait]
impl ConnectionTrait for Session {
    fn get_database_backend(&self) -> DbBackend {
        self.backend
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        on_connection!(self, &stmt.sql, conn => conn.execute(&stmt), exec_error)
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        on_connection!(self, sql, conn => conn.execute_unprepared(sql), exec_error)
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        on_connection!(self, &stmt.sql, conn => conn.fetch_optional(&stmt), query_error)
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        on_connection!(self, &stmt.sql, conn => conn.fetch_all(&stmt), query_error)
    }
}

impl Drop for Session {
    /// A session that ends without commit or rollback — dropped guard, panic,
    /// cancelled future — is rolled back off the caller's path; its connection
    /// goes back to the pool only once no transaction is open on it.
    fn drop(&mut self) {
        let Some(mut conn) = self.state.get_mut().take() else {
            return;
        };
        if conn.transaction_depth() == 0 {
            return;
        }
        tracing::warn!(
            opened_at = %self.opened_at,
            "session dropped inside a transaction without commit or rollback; rolling it back"
        );
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move { conn.rollback_all_or_close(ROLLBACK_LIMIT).await });
            }
            Err(_) => conn.close_on_drop(),
        }
    }
}
