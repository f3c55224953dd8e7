//! What a session knows about its connection and its transaction: whether
//! the connection broke, whether the server aborted or committed the
//! transaction under it, the savepoints open, what the session left on the
//! connection for the next one — so that a session never reports a commit
//! the server did not make, and never hands on state it changed.

use sea_orm::DbErr;

use super::Mode;
use crate::driver::{self, Aborted, Conn, Residue};

/// The connection, and what happened to it and its transaction.
pub(super) struct State {
    pub(super) conn: Option<Conn>,
    /// A broken connection is never used again and is closed, not pooled.
    pub(super) broken: bool,
    /// A round trip was sent and its answer not yet read. If the session
    /// ends in that state (its future was dropped), a reply is pending and,
    /// for a BEGIN, the server may be inside a transaction sqlx does not
    /// know of: the connection is then closed, never pooled.
    pub(super) in_flight: bool,
    /// The round trip in flight began the transaction (or changed the
    /// connection's default access mode): cut off, it leaves the server's
    /// transaction state unknown to sqlx.
    pub(super) beginning: bool,
    /// Set once a statement made the server abort the transaction (or an
    /// interrupted savepoint could not be undone): nothing more runs in it,
    /// and commit refuses.
    pub(super) aborted: Option<Abort>,
    /// The last statement error after which running the whole transaction
    /// again may succeed (a conflict, or a connection lost before COMMIT).
    pub(super) conflict: Option<DbErr>,
    /// Statements ran through `Session::sqlx()` in a session that may write,
    /// whose failures sqlreg does not see; commit asks the server whether
    /// the transaction survived.
    pub(super) unobserved: bool,
    /// Statements ran through `Session::sqlx()` on a backend where they can
    /// end the transaction by themselves (MariaDB DDL), and the server was
    /// not asked since: the next statement asks first, so that nothing
    /// runs outside the transaction unnoticed.
    pub(super) unverified: bool,
    /// Savepoints open now, numbered from 1 (their level).
    pub(super) savepoints: u32,
    /// Savepoints opened so far: the next one's id (see `Conn::savepoint`)
    /// is one more.
    pub(super) savepoints_opened: u32,
    /// The statement after which the server committed the transaction by
    /// itself (MariaDB DDL): the work before it is committed whatever the
    /// session does next, so it is never retried.
    pub(super) committed_by: Option<String>,
    /// The server left the transaction (implicit commit): the next
    /// statement begins it again, so what follows stays one unit.
    pub(super) left_transaction: bool,
    /// What the session may have left on the connection beyond its
    /// transaction: the connection is reset or closed on release.
    pub(super) residue: Residue,
    /// An autocommit statement that may write ran: its position is not
    /// read, so reads stay on the primary until the monitor places it.
    pub(super) wrote_unplaced: bool,
    /// In a read session, a statement that may write (or change the
    /// transaction) ran, or one out of sight on the bare sqlx connection:
    /// its transaction is then committed and waited for like any other.
    pub(super) may_have_written: bool,
}

/// How and why the session's transaction can no longer commit.
pub(super) struct Abort {
    pub(super) scope: Aborted,
    cause: Cause,
}

enum Cause {
    /// A statement failed and the server aborted the transaction; its error.
    Statement(String),
    /// Statements run through `Session::sqlx()` ended the transaction.
    Unobserved,
    /// A savepoint's future was dropped after its work had become part of
    /// the transaction, so that work could not be undone alone.
    CancelledSavepoint,
}

impl Abort {
    /// The server aborted the transaction after `cause` (the database's words).
    pub(super) fn by_statement(scope: Aborted, cause: String) -> Self {
        Self {
            scope,
            cause: Cause::Statement(cause),
        }
    }

    /// `Session::sqlx()` statements left no transaction to commit.
    pub(super) fn unobserved() -> Self {
        Self {
            scope: Aborted::Whole,
            cause: Cause::Unobserved,
        }
    }

    /// A cancelled savepoint's work is in the transaction for good.
    pub(super) fn cancelled_savepoint() -> Self {
        Self {
            scope: Aborted::Whole,
            cause: Cause::CancelledSavepoint,
        }
    }

    /// What a statement attempted after the abort is told.
    fn refusal(&self) -> String {
        match &self.cause {
            Cause::Statement(cause) => format!(
                "the server aborted this session's transaction after an earlier statement \
                 failed ({cause}); nothing more can run in it. Run statements whose failure you \
                 mean to tolerate inside `savepoint(..)`"
            ),
            Cause::Unobserved => "a statement run through `Session::sqlx()` ended this \
                                  session's transaction; nothing more can run in it"
                .into(),
            Cause::CancelledSavepoint => "a savepoint of this session was cancelled after its \
                                          work had become part of the transaction, so it could \
                                          not be undone alone; nothing more can run in it and \
                                          nothing of it will be committed"
                .into(),
        }
    }

    /// What a commit after the abort reports.
    pub(super) fn commit_refusal(&self) -> String {
        match &self.cause {
            Cause::Statement(cause) => format!(
                "nothing was committed: an earlier statement failed and the server aborted the \
                 transaction ({cause}). Run statements whose failure you mean to tolerate inside \
                 `savepoint(..)`"
            ),
            Cause::Unobserved => "the transaction was over before COMMIT: a statement run \
                                  through `Session::sqlx()` failed (nothing was committed), or on \
                                  MariaDB committed it implicitly (DDL: what ran before it is \
                                  committed, nothing after it)"
                .into(),
            Cause::CancelledSavepoint => "nothing was committed: a savepoint of this session \
                                          was cancelled after its work had become part of the \
                                          transaction, so the whole transaction was rolled back"
                .into(),
        }
    }
}

impl State {
    /// Notes whether `sql`, about to run in a session of `mode`, may write
    /// where that decides something: a read session's COMMIT is then
    /// waited for, an autocommit write keeps reads on the primary until
    /// placed. A write session commits and is placed anyway: its text is
    /// not read.
    pub(super) fn note_possible_write(&mut self, mode: Mode, sql: &str) {
        match mode {
            Mode::ReadOnly => self.may_have_written |= driver::may_write(sql),
            Mode::Autocommit => self.wrote_unplaced |= driver::may_write(sql),
            Mode::Transaction => {}
        }
    }

    pub(super) fn new(conn: Conn) -> Self {
        Self {
            conn: Some(conn),
            broken: false,
            in_flight: false,
            beginning: false,
            aborted: None,
            conflict: None,
            unobserved: false,
            unverified: false,
            savepoints: 0,
            savepoints_opened: 0,
            committed_by: None,
            left_transaction: false,
            residue: Residue::None,
            wrote_unplaced: false,
            may_have_written: false,
        }
    }

    /// The connection, to run a statement on: refused once the session
    /// ended, its connection broke, or the server aborted its transaction.
    pub(super) fn usable(&mut self) -> Result<&mut Conn, DbErr> {
        if let Some(abort) = &self.aborted {
            return Err(DbErr::Custom(abort.refusal()));
        }
        self.open()
    }

    /// The connection, to roll back on: refused only once the session ended
    /// or its connection broke.
    pub(super) fn open(&mut self) -> Result<&mut Conn, DbErr> {
        match (&mut self.conn, self.broken) {
            (Some(_), true) => Err(DbErr::Custom(
                "the session's connection broke earlier (lost, or a round trip cut off by a \
                 cancellation); start a new session"
                    .into(),
            )),
            (Some(conn), false) => Ok(conn),
            (None, _) => Err(DbErr::Custom("the session has already ended".into())),
        }
    }

    /// A savepoint was rolled back: on PostgreSQL that undoes an abort.
    pub(super) fn savepoint_rolled_back(&mut self) {
        if self
            .aborted
            .as_ref()
            .is_some_and(|abort| abort.scope == Aborted::UntilSavepoint)
        {
            self.aborted = None;
        }
    }
}
