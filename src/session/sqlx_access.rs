//! Plain sqlx on a session's own connection, inside its transaction: as an
//! executor sqlreg watches (each statement's text and outcome, like its own
//! statements), or as the bare connection, which it cannot watch.

use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::task::Poll;

use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use futures_util::{FutureExt, StreamExt, ready};
use sea_orm::DbErr;
use sqlx::{Database, Either, Execute, Executor, SqlStr};
use tokio::sync::MutexGuard;

use super::state::State;
use super::{Mode, Session};
use crate::driver::{Conn, Residue};
use crate::error::{Error, Result};

impl Session {
    /// The session's own sqlx connection, inside its transaction, for plain
    /// sqlx queries: `sqlx::query("…").execute(&mut s.sqlx::<sqlx::Postgres>().await?)`.
    /// (A read session at READ COMMITTED has no transaction: these
    /// statements then run on their own, as its other statements do.)
    ///
    /// Used as the executor (`&mut conn`), it is watched like sqlreg's own
    /// statements: what each statement may leave on the connection is read
    /// from its text (a `SET` gets the connection reset when the session
    /// ends), and a commit after statements that all succeeded costs no
    /// extra round trip. Dereferenced to the bare connection (`&mut *conn`,
    /// or a method of the driver's connection), it is out of sqlreg's sight:
    /// a commit then first asks the server whether the transaction survived
    /// (one round trip), and the connection is reset when the session ends
    /// (PostgreSQL: one round trip) or closed (MariaDB, SQLite).
    ///
    /// Hold it only while running statements: the session's other methods
    /// wait until it is dropped.
    ///
    /// # Errors
    ///
    /// [`Error::Query`] if the session is not on `DB`'s backend, or if
    /// beginning the transaction fails.
    pub async fn sqlx<DB: Database>(&self) -> Result<SqlxConnection<'_, DB>> {
        self.sqlx_leaving::<DB>(Residue::Resettable).await
    }

    /// [`sqlx`](Self::sqlx), for a caller who promises that what runs on the
    /// bare connection changes no session state — no `SET` (but `SET LOCAL`),
    /// no temporary tables, session advisory locks, `LISTEN`, SQL-level
    /// `PREPARE`, user variables or `PRAGMA`s: the connection then goes back
    /// to the pool without a reset. The promise is the caller's; state
    /// changed anyway reaches the next session. (Statements run through the
    /// executor are read as with [`sqlx`](Self::sqlx) either way.)
    ///
    /// # Errors
    ///
    /// As [`sqlx`](Self::sqlx).
    pub async fn sqlx_stateless<DB: Database>(&self) -> Result<SqlxConnection<'_, DB>> {
        self.sqlx_leaving::<DB>(Residue::None).await
    }

    /// The sqlx connection; the bare one may leave `residue`. A read
    /// session at READ COMMITTED begins no transaction for it, as for its
    /// other statements: writes are refused by the connection's read-only
    /// default, and a `SET` that lifted it would be reset at release.
    async fn sqlx_leaving<DB: Database>(&self, residue: Residue) -> Result<SqlxConnection<'_, DB>> {
        let mut state = self.ready().await?;
        if state.usable()?.downcast_mut::<DB::Connection>().is_none() {
            return Err(Error::Query(DbErr::Custom(format!(
                "this session is on {:?}, not {}",
                self.server.backend(),
                DB::NAME
            ))));
        }
        Ok(SqlxConnection {
            state,
            mode: self.mode,
            bare_residue: residue,
            database: PhantomData,
        })
    }
}

/// A session's sqlx connection, from [`Session::sqlx`]: an [`Executor`]
/// whose statements sqlreg watches (`query.execute(&mut conn)`), and, by
/// dereference, the driver's bare connection, whose statements it cannot.
#[must_use = "run statements with it"]
pub struct SqlxConnection<'s, DB: Database> {
    state: MutexGuard<'s, State>,
    mode: Mode,
    /// What statements on the bare connection may leave behind.
    bare_residue: Residue,
    database: PhantomData<fn() -> DB>,
}

impl<DB: Database> SqlxConnection<'_, DB> {
    fn conn(&self) -> &Conn {
        self.state.conn.as_ref().expect("checked when made")
    }

    /// Notes what `sql`, about to run through the executor, may leave on
    /// the connection and whether it may change what commit must check.
    fn before(&mut self, sql: &str) {
        let conn = self.conn();
        let residue = conn.residue(sql);
        let shares_server = conn.shares_server();
        let ends_transaction = conn.transaction_depth() > 0 && conn.commits_implicitly(sql);
        let state = &mut *self.state;
        // Behind a transaction pooler no reset reaches the server connection
        // the statement ran on: what it changes is the caller's to undo.
        if !shares_server {
            state.residue = state.residue.max(residue);
        }
        // MariaDB DDL commits the transaction by itself: commit and the
        // next statement ask the server, as for the bare connection.
        if self.mode == Mode::Transaction && ends_transaction {
            state.unobserved = true;
            state.unverified = true;
        }
        state.note_possible_write(self.mode, sql);
    }

    /// The connection, and what the statement about to run on it records:
    /// its round trip in flight from its first poll until its last reply is
    /// read (cut off between, the session's next step deals with it as with
    /// its own statements), and, if it fails, that commit must ask the
    /// server whether the transaction survived (on MariaDB the next
    /// statement too: a deadlock ends it).
    fn watched(&mut self) -> (&mut DB::Connection, Watch<'_>) {
        let may_write = self.mode == Mode::Transaction;
        let State {
            conn,
            in_flight,
            unobserved,
            unverified,
            ..
        } = &mut *self.state;
        let conn = conn.as_mut().expect("checked when made");
        let implicit = conn.has_implicit_commits();
        let conn = conn.downcast_mut().expect("checked when made");
        let watch = Watch {
            in_flight,
            unobserved,
            unverified,
            may_write,
            implicit,
        };
        (conn, watch)
    }
}

/// What a statement through the executor records in the session's state.
struct Watch<'a> {
    in_flight: &'a mut bool,
    unobserved: &'a mut bool,
    unverified: &'a mut bool,
    may_write: bool,
    implicit: bool,
}

impl Watch<'_> {
    fn sent(&mut self) {
        *self.in_flight = true;
    }

    fn failed(&mut self) {
        if self.may_write {
            *self.unobserved = true;
            *self.unverified |= self.implicit;
        }
    }

    fn answered(&mut self) {
        *self.in_flight = false;
    }
}

impl<DB: Database> Deref for SqlxConnection<'_, DB> {
    type Target = DB::Connection;

    fn deref(&self) -> &DB::Connection {
        self.conn().downcast_ref().expect("checked when made")
    }
}

impl<DB: Database> DerefMut for SqlxConnection<'_, DB> {
    /// The bare connection: what runs on it is unseen, so commit asks the
    /// server first and the connection is reset (or closed) at the end.
    /// In a read session outside a transaction (READ COMMITTED) its last
    /// statement counts as in flight: if it was cut off, sqlx would hand its
    /// reply to the session's next round trip — a savepoint's BEGIN among
    /// them, leaving the server in a transaction sqlx does not know of — so
    /// the next step, the commit at the latest, reads what is pending first
    /// (on PostgreSQL one round trip; MariaDB's driver cannot, see the
    /// README).
    fn deref_mut(&mut self) -> &mut DB::Connection {
        let may_write = self.mode == Mode::Transaction;
        let autocommit = self.mode == Mode::Autocommit;
        let read_only = self.mode == Mode::ReadOnly;
        let state = &mut *self.state;
        let conn = state.conn.as_mut().expect("checked when made");
        state.unobserved |= may_write;
        state.unverified |= may_write && conn.has_implicit_commits();
        state.may_have_written = true;
        state.wrote_unplaced |= autocommit;
        state.in_flight |= read_only && conn.transaction_depth() == 0 && conn.resumes_after_cut();
        if !conn.shares_server() {
            state.residue = state.residue.max(self.bare_residue);
        }
        conn.downcast_mut().expect("checked when made")
    }
}

impl<DB: Database> fmt::Debug for SqlxConnection<'_, DB> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlxConnection")
            .field("database", &DB::NAME)
            .finish_non_exhaustive()
    }
}

/// The executor of one backend (one impl per backend: a generic one over
/// `DB::Connection` sends the trait solver round in circles).
macro_rules! watched_executor {
    ($($db:ty),+) => {$(
        impl<'c> Executor<'c> for &'c mut SqlxConnection<'_, $db> {
            type Database = $db;

            fn fetch_many<'e, 'q: 'e, E>(
                self,
                query: E,
            ) -> BoxStream<
                'e,
                Result<Either<<$db as Database>::QueryResult, <$db as Database>::Row>, sqlx::Error>,
            >
            where
                'c: 'e,
                E: 'q + Execute<'q, $db>,
            {
                let query = match Taken::from(query) {
                    Ok(query) => query,
                    Err(err) => return futures_util::stream::once(async { Err(err) }).boxed(),
                };
                self.before(query.sql.as_str());
                let (conn, mut watch) = self.watched();
                let mut replies = conn.fetch_many(query);
                let mut polled = false;
                futures_util::stream::poll_fn(move |cx| {
                    if !polled {
                        watch.sent();
                        polled = true;
                    }
                    let reply = ready!(replies.poll_next_unpin(cx));
                    match &reply {
                        // An error ends the statement's replies (callers
                        // such as `execute` stop reading at it).
                        Some(Err(_)) => {
                            watch.failed();
                            watch.answered();
                        }
                        None => watch.answered(),
                        Some(Ok(_)) => {}
                    }
                    Poll::Ready(reply)
                })
                .boxed()
            }

            fn fetch_optional<'e, 'q: 'e, E>(
                self,
                query: E,
            ) -> BoxFuture<'e, Result<Option<<$db as Database>::Row>, sqlx::Error>>
            where
                'c: 'e,
                E: 'q + Execute<'q, $db>,
            {
                let query = match Taken::from(query) {
                    Ok(query) => query,
                    Err(err) => return async { Err(err) }.boxed(),
                };
                self.before(query.sql.as_str());
                let (conn, mut watch) = self.watched();
                async move {
                    watch.sent();
                    let reply = conn.fetch_optional(query).await;
                    if reply.is_err() {
                        watch.failed();
                    }
                    watch.answered();
                    reply
                }
                .boxed()
            }

            fn prepare_with<'e>(
                self,
                sql: SqlStr,
                parameters: &'e [<$db as Database>::TypeInfo],
            ) -> BoxFuture<'e, Result<<$db as Database>::Statement, sqlx::Error>>
            where
                'c: 'e,
            {
                // Preparing runs nothing: only the round trip to watch.
                let (conn, mut watch) = self.watched();
                async move {
                    watch.sent();
                    let prepared = conn.prepare_with(sql, parameters).await;
                    watch.answered();
                    prepared
                }
                .boxed()
            }
        }
    )+};
}

watched_executor!(sqlx::Postgres, sqlx::MySql, sqlx::Sqlite);

/// A query taken apart so its text can be read before it runs (sqlx's
/// `Execute::sql` consumes the query).
struct Taken<DB: Database> {
    sql: SqlStr,
    statement: Option<DB::Statement>,
    arguments: Option<DB::Arguments>,
    persistent: bool,
}

impl<DB: Database> Taken<DB> {
    fn from<'q, E: Execute<'q, DB>>(mut query: E) -> Result<Self, sqlx::Error> {
        let arguments = query.take_arguments().map_err(sqlx::Error::Encode)?;
        Ok(Self {
            statement: query.statement().cloned(),
            persistent: query.persistent(),
            arguments,
            sql: query.sql(),
        })
    }
}

impl<DB: Database> Execute<'_, DB> for Taken<DB> {
    fn sql(self) -> SqlStr {
        self.sql
    }

    fn statement(&self) -> Option<&DB::Statement> {
        self.statement.as_ref()
    }

    fn take_arguments(&mut self) -> Result<Option<DB::Arguments>, sqlx::error::BoxDynError> {
        Ok(self.arguments.take())
    }

    fn persistent(&self) -> bool {
        self.persistent
    }
}
