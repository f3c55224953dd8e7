//! sqlreg for code that is not async — CLIs, batch jobs, build scripts,
//! test helpers: the same registry and session forms with plain closures,
//! on a runtime of the registry's own.
//!
//! ```no_run
//! # fn run() -> sqlreg::Result<()> {
//! let config = sqlreg::Config::from_yaml_str("db:\n  url: sqlite://\n")?.at("db")?;
//! let db = sqlreg::blocking::SqlConnectionRegistry::connect(config)?;
//! db.session(|s| {
//!     s.execute("CREATE TABLE notes (body TEXT)")?;
//!     s.execute("INSERT INTO notes VALUES ('kept')")?;
//!     Ok::<_, sqlreg::Error>(())
//! })?;
//! # Ok(()) }
//! ```
//!
//! Each form keeps the async one's rules — commit on `Ok`, rollback on
//! `Err` or panic (the panic then continues), the connection always handed
//! back, `transaction` run again after a transient conflict — because it
//! *is* the async form: the body runs inside it on the calling thread
//! (`block_in_place`), and each statement waits on the registry's runtime.

use std::sync::Arc;

use sea_orm::{ConnectionTrait, ExecResult, QueryResult, Statement};
use tokio::runtime::{Handle, Runtime};

use crate::config::DbConfig;
use crate::error::{Error, Result};
use crate::stats::PoolStats;

/// A registry for code that is not async (see the [module](self) docs).
/// Cheap to clone; every clone shares the pool and the runtime.
#[derive(Clone)]
pub struct SqlConnectionRegistry {
    runtime: Arc<Runtime>,
    registry: crate::SqlConnectionRegistry,
}

impl std::fmt::Debug for SqlConnectionRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("blocking::SqlConnectionRegistry")
            .field(&self.registry)
            .finish()
    }
}

impl SqlConnectionRegistry {
    /// Connects as [`crate::SqlConnectionRegistry::connect`] does, on a
    /// runtime of its own (two worker threads: the pool's background work
    /// and the one running statement).
    ///
    /// # Errors
    ///
    /// [`Error::InsideRuntime`] when called from async code; otherwise the
    /// errors of [`crate::SqlConnectionRegistry::connect`].
    pub fn connect(config: DbConfig) -> Result<Self> {
        outside_runtime("connect")?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("sqlreg-blocking")
            .enable_all()
            .build()
            .map_err(|err| Error::Connect {
                url: String::new(),
                reason: crate::ConnectFailure::Other,
                detail: format!("cannot start the blocking registry's runtime: {err}"),
            })?;
        let registry = runtime.block_on(crate::SqlConnectionRegistry::connect(config))?;
        Ok(Self {
            runtime: Arc::new(runtime),
            registry,
        })
    }

    /// [`crate::SqlConnectionRegistry::session`] with a plain closure:
    /// commits when it returns `Ok`, rolls back on `Err` or panic.
    ///
    /// # Errors
    ///
    /// `body`'s error, [`Error::InsideRuntime`] from async code, or the
    /// errors of the async form (no connection, a failed commit).
    pub fn session<T, E, F>(&self, body: F) -> Result<T, E>
    where
        F: FnOnce(&Session<'_>) -> Result<T, E>,
        E: From<Error>,
    {
        outside_runtime("session")?;
        let handle = self.runtime.handle().clone();
        self.runtime.block_on(
            self.registry
                .session(async move |s| in_place(&handle, s, body)),
        )
    }

    /// [`crate::SqlConnectionRegistry::read_session`] with a plain closure.
    ///
    /// # Errors
    ///
    /// As [`session`](Self::session); a write in `body` fails on PostgreSQL
    /// and MariaDB.
    pub fn read_session<T, E, F>(&self, body: F) -> Result<T, E>
    where
        F: FnOnce(&Session<'_>) -> Result<T, E>,
        E: From<Error>,
    {
        outside_runtime("read_session")?;
        let handle = self.runtime.handle().clone();
        self.runtime.block_on(
            self.registry
                .read_session(async move |s| in_place(&handle, s, body)),
        )
    }

    /// [`crate::SqlConnectionRegistry::transaction`] with a plain closure:
    /// run again after a transient conflict, so `body` may run more than once.
    ///
    /// # Errors
    ///
    /// As the async form ([`Error::Conflict`] when every attempt met a
    /// conflict), and [`Error::InsideRuntime`] from async code.
    pub fn transaction<T, E, F>(&self, body: F) -> Result<T, E>
    where
        F: Fn(&Session<'_>) -> Result<T, E> + Clone,
        E: From<Error>,
    {
        outside_runtime("transaction")?;
        let handle = self.runtime.handle().clone();
        self.runtime.block_on(
            self.registry
                .transaction(async move |s| in_place(&handle, s, body)),
        )
    }

    /// [`crate::SqlConnectionRegistry::get`]: a session to end with
    /// [`Guard::commit`] or [`Guard::rollback`]; dropped without either, it
    /// rolls back.
    ///
    /// # Errors
    ///
    /// As [`session`](Self::session).
    #[track_caller]
    pub fn get(&self) -> Result<Guard> {
        outside_runtime("get")?;
        let opening = self.registry.get();
        let session = self.runtime.block_on(opening)?;
        Ok(Guard {
            session: Some(session),
            runtime: Arc::clone(&self.runtime),
        })
    }

    /// The pool's figures now.
    #[must_use]
    pub fn stats(&self) -> PoolStats {
        self.registry.stats()
    }

    /// The async registry underneath, for code that has both kinds.
    #[must_use]
    pub fn registry(&self) -> &crate::SqlConnectionRegistry {
        &self.registry
    }

    /// Closes the pool, waiting for sessions in flight as the async
    /// [`close`](crate::SqlConnectionRegistry::close) does.
    pub fn close(&self) {
        if outside_runtime("close").is_ok() {
            self.runtime.block_on(self.registry.close());
        }
    }
}

/// Runs a blocking body inside an async session form, on the calling
/// thread: `block_in_place` lets its statements wait on the runtime.
fn in_place<T, E, F>(handle: &Handle, session: &crate::Session, body: F) -> Result<T, E>
where
    F: FnOnce(&Session<'_>) -> Result<T, E>,
{
    tokio::task::block_in_place(|| body(&Session { session, handle }))
}

/// The blocking forms wait on their own runtime, which cannot happen on a
/// thread that is running async code already.
fn outside_runtime(method: &'static str) -> Result<()> {
    match Handle::try_current() {
        Ok(_) => Err(Error::InsideRuntime { method }),
        Err(_) => Ok(()),
    }
}

/// A session inside a blocking form: statements that wait for their result.
pub struct Session<'s> {
    session: &'s crate::Session,
    handle: &'s Handle,
}

impl Session<'_> {
    /// Runs SQL text without parameters (may hold several statements);
    /// the rows it changed.
    ///
    /// # Errors
    ///
    /// The statement's error, as [`Error::Query`] (or `NotFound` /
    /// `Duplicate` by its kind).
    pub fn execute(&self, sql: &str) -> Result<u64> {
        let done = self.handle.block_on(self.session.execute_unprepared(sql))?;
        Ok(done.rows_affected())
    }

    /// Runs a statement with bound values.
    ///
    /// # Errors
    ///
    /// As [`execute`](Self::execute).
    pub fn execute_raw(&self, statement: Statement) -> Result<ExecResult> {
        Ok(self.handle.block_on(self.session.execute_raw(statement))?)
    }

    /// The first row of a query, if any.
    ///
    /// # Errors
    ///
    /// As [`execute`](Self::execute).
    pub fn query_one(&self, statement: Statement) -> Result<Option<QueryResult>> {
        Ok(self
            .handle
            .block_on(self.session.query_one_raw(statement))?)
    }

    /// Every row of a query.
    ///
    /// # Errors
    ///
    /// As [`execute`](Self::execute).
    pub fn query_all(&self, statement: Statement) -> Result<Vec<QueryResult>> {
        Ok(self
            .handle
            .block_on(self.session.query_all_raw(statement))?)
    }

    /// Runs `body` inside a savepoint, as [`crate::Session::savepoint`]:
    /// kept on `Ok`, undone alone on `Err` or panic (the panic continues).
    ///
    /// # Errors
    ///
    /// `body`'s own error, or the statement that opened or released the
    /// savepoint.
    pub fn savepoint<T, E, F>(&self, body: F) -> Result<T, E>
    where
        F: FnOnce(&Session<'_>) -> Result<T, E>,
        E: From<Error>,
    {
        let handle = self.handle;
        handle.block_on(
            self.session
                .savepoint(async move |s| in_place(handle, s, body)),
        )
    }

    /// Waits for an async operation on [`inner`](Self::inner), such as a
    /// sea-orm entity query: `s.wait(user::Entity::find_by_id(1).one(s.inner()))`.
    pub fn wait<F: Future>(&self, operation: F) -> F::Output {
        self.handle.block_on(operation)
    }

    /// The async session, for sea-orm calls to pass to [`wait`](Self::wait).
    #[must_use]
    pub fn inner(&self) -> &crate::Session {
        self.session
    }
}

/// A session from [`SqlConnectionRegistry::get`], ended by
/// [`commit`](Self::commit) or [`rollback`](Self::rollback).
pub struct Guard {
    session: Option<crate::Session>,
    runtime: Arc<Runtime>,
}

impl Guard {
    /// The session's statements (see [`Session`]).
    #[must_use]
    pub fn statements(&self) -> Session<'_> {
        Session {
            session: self.session.as_ref().expect("present until ended"),
            handle: self.runtime.handle(),
        }
    }

    /// Commits and hands the connection back.
    ///
    /// # Errors
    ///
    /// As [`crate::Session::commit`].
    pub fn commit(mut self) -> Result<()> {
        let session = self.session.take().expect("present until ended");
        self.runtime.block_on(session.commit())
    }

    /// Rolls back and hands the connection back.
    pub fn rollback(mut self) {
        let session = self.session.take().expect("present until ended");
        self.runtime.block_on(session.rollback());
    }
}

impl Drop for Guard {
    /// Rolled back on the registry's runtime, as the async session is.
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            let _entered = self.runtime.enter();
            drop(session);
        }
    }
}
