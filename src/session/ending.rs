//! How a session ends: commit, rollback, a failed body, or its future
//! dropped — and the connection handed back (reset or closed first when the
//! session left state on it, closed when a reply may still be pending).

use std::sync::Arc;

use sea_orm::DbErr;

use super::state::Abort;
use super::{Mode, ROLLBACK_LIMIT, Session, query_error};
use crate::config::Isolation;
use crate::driver::{self, Conn, Residue};
use crate::error::{Error, Result};
use crate::observe::{self, SessionOutcome};

/// What becomes of a session's connection once the session is done with it.
#[derive(Clone, Copy)]
enum HandBack {
    /// Back to the pool (reset or closed first, where the session left
    /// state on it or a reply may be pending).
    Release,
    /// Its read-only transaction committed in a task, then back to the pool
    /// (see [`Session::commits_unwaited`]).
    CommitThenRelease,
}

impl Session {
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
        {
            let mut state = self.state.lock().await;
            // A connection that cannot go on after a cut round trip, or a
            // failure to undo an interrupted savepoint, is recorded in the
            // state (broken, aborted), which the commit below reports.
            if self.resume(&mut state).await.is_ok() {
                let _ = self.settle(&mut state).await;
            }
        }
        let committed = self.commit_settled().await;
        committed.map_err(|err| self.partly_committed(err))
    }

    /// [`commit`](Self::commit), once an interrupted savepoint was undone.
    async fn commit_settled(&mut self) -> Result<()> {
        let state = self.state.get_mut();
        let Some(mut conn) = state.conn.take() else {
            return Ok(());
        };
        close_if_dropped_dirty(&mut conn, state.residue);
        if state.broken {
            return Err(Error::Commit(DbErr::Custom(
                "the connection broke during the session (lost, or a round trip cut off by a \
                 cancellation); nothing was committed"
                    .into(),
            )));
        }
        if state.unobserved && state.aborted.is_none() && conn.transaction_depth() > 0 {
            match self.server.within_limit(conn.transaction_survived()).await {
                Ok(true) => {}
                Ok(false) => state.aborted = Some(Abort::unobserved()),
                Err(err) => return Err(self.commit_failed(conn, err).await),
            }
        }
        if let Some(abort) = self.state.get_mut().aborted.take() {
            let observer = &self.server.observer();
            self.observed.end(
                observer,
                SessionOutcome::Failed,
                Some("transaction_aborted"),
            );
            conn.rollback_all_or_close(ROLLBACK_LIMIT).await;
            self.end(conn);
            return Err(Error::Commit(DbErr::Custom(abort.commit_refusal())));
        }
        if self.commits_unwaited(&conn) {
            let observer = &self.server.observer();
            self.observed.end(observer, SessionOutcome::Committed, None);
            self.hand_back(conn, HandBack::CommitThenRelease);
            return Ok(());
        }
        let committing = conn.transaction_depth() > 0;
        let wrote = self.mode == Mode::Transaction && committing;
        let mut committed = Ok(());
        while committed.is_ok() && conn.transaction_depth() > 0 {
            committed = self.server.within_limit(conn.commit()).await;
        }
        match committed {
            Ok(()) => {
                if committing {
                    // A COMMIT that went through read every reply before it.
                    self.state.get_mut().in_flight = false;
                }
                if wrote {
                    self.server.record_commit(&mut conn).await;
                }
                let observer = &self.server.observer();
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
        let observer = &self.server.observer();
        let error_type = observe::error_type(&err);
        self.observed
            .end(observer, SessionOutcome::Failed, Some(&error_type));
        let lost = driver::is_fatal(&err);
        self.server.undo_failed_commit(&mut conn, &err).await;
        self.end(conn);
        if lost && self.mode == Mode::ReadOnly {
            return Error::Commit(DbErr::Custom(format!(
                "the connection was lost at the COMMIT of a read-only transaction ({err}); it \
                 wrote nothing, and `read_transaction` runs it again"
            )));
        }
        if lost {
            // Whether it committed is unknown: reads stay on the primary
            // until the monitor has read a position past this attempt.
            self.server.record_unplaced_write();
            return Error::Commit(DbErr::Custom(format!(
                "the connection was lost after COMMIT was sent ({err}): whether the transaction \
                 was committed is unknown, so it is never retried"
            )));
        }
        Error::Commit(query_error(driver::explain(err)))
    }

    /// The transient conflict (or lost connection) a statement of this
    /// session met, if any: the retrying form runs the transaction again.
    /// `None` once the server committed part of the session (see
    /// [`fail`](Self::fail)): running it again would repeat that part.
    pub(crate) fn take_conflict(&mut self) -> Option<DbErr> {
        let state = self.state.get_mut();
        if state.committed_by.is_some() {
            return None;
        }
        state.conflict.take()
    }

    /// Rolls the session back after its body failed with `err`, and says
    /// what the caller must know: `err` itself, unless the server committed
    /// part of the session under it — then [`Error::PartlyCommitted`],
    /// naming the statement, in its place.
    pub(crate) async fn fail<E: From<Error>>(mut self, err: E) -> E {
        let state = self.state.get_mut();
        let partial = state.committed_by.clone();
        let cause = state.conflict.take();
        self.rollback().await;
        match partial {
            Some(statement) => Error::PartlyCommitted {
                statement,
                cause: cause.map(|cause| Box::new(Error::Query(cause))),
            }
            .into(),
            None => err,
        }
    }

    /// `err`, a failed commit, as [`Error::PartlyCommitted`] when the server
    /// had committed part of the session before.
    fn partly_committed(&mut self, err: Error) -> Error {
        match self.state.get_mut().committed_by.take() {
            Some(statement) => Error::PartlyCommitted {
                statement,
                cause: Some(Box::new(err)),
            },
            None => err,
        }
    }

    /// Whether the session's transaction may end without the caller
    /// waiting for it: a read session's, in which nothing that may write
    /// ran (SQLite does not refuse writes in one), no savepoint is open,
    /// and the isolation is below SERIALIZABLE (where PostgreSQL may still
    /// refuse a read-only transaction at COMMIT). Its COMMIT can change
    /// nothing the session returns, so only the connection waits for it.
    fn commits_unwaited(&mut self, conn: &Conn) -> bool {
        let state = self.state.get_mut();
        self.mode == Mode::ReadOnly
            && !state.may_have_written
            && state.savepoints == 0
            && self.isolation != Some(Isolation::Serializable)
            && conn.transaction_depth() == 1
    }

    /// Leaves `in_use` and hands the connection back to the pool (or
    /// closes it), reset first if the session left state on it.
    fn end(&mut self, conn: Conn) {
        self.hand_back(conn, HandBack::Release);
    }

    /// Leaves `in_use` and hands the connection back as `how` says.
    fn hand_back(&mut self, mut conn: Conn, how: HandBack) {
        self.leave();
        let state = self.state.get_mut();
        // Placed after the last of its writes (a savepoint's commit too);
        // taken, so the drop that follows does not record it again.
        if std::mem::take(&mut state.wrote_unplaced) {
            self.server.record_unplaced_write();
        }
        // A statement whose future was dropped mid-round-trip (the body
        // went on without it) may still have a reply, or a BEGIN, pending.
        if state.in_flight {
            self.server.evict(&mut conn);
        }
        let residue = state.residue;
        match how {
            HandBack::CommitThenRelease if !state.in_flight => {
                self.server.commit_then_release(conn, residue);
            }
            _ => self.server.release(conn, residue),
        }
    }

    /// Leaves `in_use` and stops the leak watch; idempotent.
    fn leave(&mut self) {
        self.in_use = None;
        if let Some(watch) = self.leak_watch.take() {
            watch.finish();
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
        {
            // A connection that cannot go on after a cut round trip is
            // closed, not rolled back: the error is the caller's already.
            let mut state = self.state.lock().await;
            let _ = self.resume(&mut state).await;
        }
        let state = self.state.get_mut();
        let Some(mut conn) = state.conn.take() else {
            return;
        };
        close_if_dropped_dirty(&mut conn, state.residue);
        if let Some(statement) = &state.committed_by {
            tracing::warn!(
                opened_at = %self.opened_at,
                statement = %statement,
                "rolled back what ran after this statement; the server had committed the \
                 session's work before it (an implicit commit), which no rollback undoes"
            );
        }
        let outcome = if state.broken {
            SessionOutcome::Failed
        } else {
            // A ROLLBACK that went through read every reply before it.
            if conn.transaction_depth() > 0 {
                state.in_flight = false;
            }
            conn.rollback_all_or_close(ROLLBACK_LIMIT).await;
            SessionOutcome::RolledBack
        };
        self.observed.end(self.server.observer(), outcome, None);
        self.end(conn);
    }
}

/// A connection taken out of the session for its last round trip (COMMIT,
/// ROLLBACK) is dropped without [`Session::end`] when that round trip is
/// cut off; if the session left state on it that only closing undoes, it is
/// then closed, as `end` would have done. (A reset needs the round trip's
/// task; PostgreSQL and MariaDB close a connection cut off mid-transaction
/// anyway, SQLite's worker may have finished by then.)
fn close_if_dropped_dirty(conn: &mut Conn, residue: Residue) {
    if residue != Residue::None && !conn.resets() {
        conn.close_on_drop();
    }
}

impl Drop for Session {
    /// A session that ends without commit or rollback — dropped guard, panic,
    /// cancelled future — is rolled back off the caller's path; its connection
    /// goes back to the pool only once no transaction is open on it.
    fn drop(&mut self) {
        self.leave();
        let state = self.state.get_mut();
        if std::mem::take(&mut state.wrote_unplaced) {
            self.server.record_unplaced_write();
        }
        let outcome = if state.broken {
            SessionOutcome::Failed
        } else {
            SessionOutcome::RolledBack
        };
        self.observed.end(self.server.observer(), outcome, None);
        let Some(mut conn) = state.conn.take() else {
            return;
        };
        let residue = state.residue;
        // A reply still pending (a BEGIN, a statement, a savepoint cut off
        // mid-round-trip) is never handed to the next session: closed.
        if state.in_flight {
            self.server.evict(&mut conn);
        }
        if state.broken || state.in_flight || conn.transaction_depth() == 0 {
            self.server.release(conn, residue);
            return;
        }
        tracing::warn!(
            opened_at = %self.opened_at,
            "session dropped inside a transaction without commit or rollback; rolling it back"
        );
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let server = Arc::clone(&self.server);
                runtime.spawn(async move {
                    conn.rollback_all_or_close(ROLLBACK_LIMIT).await;
                    server.release(conn, residue);
                });
            }
            Err(_) => conn.close_on_drop(),
        }
    }
}
