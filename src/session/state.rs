//! What a session knows about its connection and its transaction: whether
//! the connection broke, whether the server aborted the transaction, and the
//! last transient conflict a statement met — so that a session never reports
//! a commit the server did not make.

use sea_orm::DbErr;

use crate::driver::{Aborted, Conn};

/// The connection, and what happened to it and its transaction.
pub(super) struct State {
    pub(super) conn: Option<Conn>,
    /// A broken connection is never used again and is closed, not pooled.
    pub(super) broken: bool,
    /// A BEGIN (or a change of the default access mode) was sent and its
    /// answer not yet read. If the session ends in that state (its future
    /// was dropped), the server may be inside a transaction that sqlx does
    /// not know of, so the connection is closed.
    pub(super) beginning: bool,
    /// Set once a statement made the server abort the transaction: nothing
    /// more runs in it, and commit refuses.
    pub(super) aborted: Option<Abort>,
    /// The last statement error after which running the whole transaction
    /// again may succeed (a conflict, or a connection lost before COMMIT).
    pub(super) conflict: Option<DbErr>,
    /// Statements ran through `Session::sqlx()` in a session that may write,
    /// whose failures sqlreg does not see; commit asks the server whether
    /// the transaction survived.
    pub(super) unobserved: bool,
}

/// How and why the server aborted the session's transaction.
pub(super) struct Abort {
    pub(super) scope: Aborted,
    /// The failed statement's error, as the database worded it.
    pub(super) cause: String,
}

impl Abort {
    /// What a statement attempted after the abort is told.
    fn refusal(&self) -> String {
        format!(
            "the server aborted this session's transaction after an earlier statement failed \
             ({}); nothing more can run in it. Run statements whose failure you mean to \
             tolerate inside `savepoint(..)`",
            self.cause
        )
    }

    /// What a commit after the abort reports.
    pub(super) fn commit_refusal(&self) -> String {
        format!(
            "nothing was committed: an earlier statement failed and the server aborted the \
             transaction ({}). Run statements whose failure you mean to tolerate inside \
             `savepoint(..)`",
            self.cause
        )
    }
}

impl State {
    pub(super) fn new(conn: Conn) -> Self {
        Self {
            conn: Some(conn),
            broken: false,
            beginning: false,
            aborted: None,
            conflict: None,
            unobserved: false,
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
                "the session's connection broke earlier; start a new session".into(),
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
