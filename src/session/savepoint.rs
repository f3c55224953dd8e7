//! Nested units of work inside a session: a savepoint that is kept or
//! undone on its own — and undone, never kept, when its future is dropped
//! before it ended (a timeout, a cancelled task).

use std::panic::AssertUnwindSafe;
use std::sync::{Mutex, MutexGuard};

use futures_util::FutureExt;
use sea_orm::DbErr;

use super::Session;
use super::state::{Abort, State};
use crate::driver;
use crate::error::{Error, Result};

impl Session {
    /// Runs `body` inside a savepoint: its work is kept when it returns `Ok`
    /// and undone alone (the rest of the session stays) when it returns
    /// `Err`, panics, or is cancelled (its future dropped, say by
    /// `tokio::time::timeout`). A cancelled savepoint is undone by the
    /// session's next step; if it was cancelled while its work was being
    /// released into the transaction, that work can no longer be undone
    /// alone, and the session's later statements and its commit fail with
    /// an error that says so — its work is never committed.
    ///
    /// # Errors
    ///
    /// `body`'s own error, or the statement that opened or released the savepoint.
    pub async fn savepoint<T, E, F>(&self, body: F) -> Result<T, E>
    where
        F: AsyncFnOnce(&Session) -> Result<T, E>,
        E: From<Error>,
    {
        let mut guard = self.open_savepoint().await.map_err(Error::from)?;
        let outcome = AssertUnwindSafe(body(self)).catch_unwind().await;
        let keep = matches!(outcome, Ok(Ok(_)));
        guard.phase = if keep {
            Phase::Releasing
        } else {
            Phase::RollingBack
        };
        let ended = self.end_savepoint(guard.savepoint, keep).await;
        guard.phase = Phase::Ended;
        match outcome {
            Ok(Ok(value)) => ended.map(|()| value).map_err(|err| Error::from(err).into()),
            Ok(Err(err)) => {
                ended.map_err(Error::from)?;
                Err(err)
            }
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }

    /// Opens the next savepoint; the guard undoes it if the future is
    /// dropped before it ends.
    async fn open_savepoint(&self) -> Result<SavepointGuard<'_>, DbErr> {
        let mut state = self.prepare(true).await?;
        state.savepoints_opened += 1;
        let savepoint = Savepoint {
            level: state.savepoints + 1,
            id: state.savepoints_opened,
        };
        let mut guard = SavepointGuard {
            session: self,
            savepoint,
            phase: Phase::Opening,
        };
        state.in_flight = true;
        let opened = self
            .server
            .within_limit(state.usable()?.savepoint(savepoint.id))
            .await;
        state.in_flight = false;
        self.check(&mut state, opened).await?;
        state.savepoints = savepoint.level;
        guard.phase = Phase::Running;
        Ok(guard)
    }

    /// Releases (`keep`) or undoes `savepoint`. A savepoint whose
    /// statements made the server abort the transaction is undone even if
    /// its body succeeded — the server would not keep its work anyway — and
    /// reported as an error.
    async fn end_savepoint(&self, savepoint: Savepoint, keep: bool) -> Result<(), DbErr> {
        let Savepoint { level, id } = savepoint;
        let mut state = self.state.lock().await;
        self.resume(&mut state).await?;
        self.settle(&mut state).await?;
        if state.savepoints < level {
            // Undone already, with an interrupted savepoint around it.
            return if keep {
                state.usable().map(drop)
            } else {
                Ok(())
            };
        }
        let refused = if keep { state.usable().err() } else { None };
        let release = keep && refused.is_none();
        state.in_flight = true;
        let conn = state.open()?;
        let ended = if release {
            self.server.within_limit(conn.release_savepoint(id)).await
        } else {
            self.server.within_limit(conn.undo_savepoint(id)).await
        };
        state.in_flight = false;
        let ended = self.check(&mut state, ended).await;
        if ended.is_ok() {
            state.savepoints = level - 1;
            if !release {
                state.savepoint_rolled_back();
            }
        }
        match refused {
            Some(err) => Err(err),
            None => ended,
        }
    }

    /// Undoes the savepoint whose future was dropped before it ended, if
    /// any, before the session's next step. When its work was (or may have
    /// been) released into the transaction already, the undo fails, and the
    /// session refuses everything after: never commits that work.
    ///
    /// The savepoint is forgotten only once the undo's outcome is read: an
    /// undo cut off in turn is sent again by the step after, and fails if
    /// the first one ran — refusing the session, whose work's fate is then
    /// unknown, rather than committing work whose undo failed unseen.
    pub(super) async fn settle(&self, state: &mut State) -> Result<(), DbErr> {
        let Some(Savepoint { level, id }) = self.interrupted.current() else {
            return Ok(());
        };
        let gone = state.savepoints < level
            || state
                .open()
                .map_or(true, |conn| conn.transaction_depth() == 0);
        if gone {
            self.interrupted.forget(id);
            return Ok(()); // the transaction (or that savepoint) is gone already
        }
        state.in_flight = true;
        let conn = state.open()?;
        let undone = self.server.within_limit(conn.undo_savepoint(id)).await;
        state.in_flight = false;
        self.interrupted.forget(id);
        match undone {
            Ok(()) => {
                state.savepoints = level - 1;
                state.savepoint_rolled_back();
                Ok(())
            }
            Err(err) if driver::is_fatal(&err) => self.check(state, Err(err)).await,
            Err(_) => {
                state.savepoints = 0;
                state.aborted = Some(Abort::cancelled_savepoint());
                Ok(())
            }
        }
    }
}

/// One savepoint of a session: its depth, which the session counts, and
/// the id it is named by on the server, never reused in the session.
#[derive(Clone, Copy)]
struct Savepoint {
    /// 1 for the outermost.
    level: u32,
    id: u32,
}

/// Where a savepoint's future was when it was dropped.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// `SAVEPOINT` sent: the body has not run, nothing to undo (the server
    /// may hold the savepoint, empty, until the transaction ends; no later
    /// savepoint shares its name).
    Opening,
    /// The body is running.
    Running,
    /// `RELEASE SAVEPOINT` sent: the work may be part of the transaction
    /// now, and then the undo fails (which the session reports).
    Releasing,
    /// The body failed; the undo was sent.
    RollingBack,
    /// Ended normally.
    Ended,
}

/// Records an interrupted savepoint for the session's next step to undo.
struct SavepointGuard<'a> {
    session: &'a Session,
    savepoint: Savepoint,
    phase: Phase,
}

impl Drop for SavepointGuard<'_> {
    fn drop(&mut self) {
        if matches!(
            self.phase,
            Phase::Running | Phase::Releasing | Phase::RollingBack
        ) {
            self.session.interrupted.record(self.savepoint);
        }
    }
}

/// The outermost savepoint of a session whose future was dropped before
/// it ended. Outside the session's state lock: a savepoint's future may be
/// dropped while one of its statements holds it.
#[derive(Default)]
pub(super) struct Interrupted(Mutex<Option<Savepoint>>);

impl Interrupted {
    fn record(&self, savepoint: Savepoint) {
        let mut slot = self.slot();
        *slot = match *slot {
            Some(earlier) if earlier.level <= savepoint.level => Some(earlier),
            _ => Some(savepoint),
        };
    }

    fn current(&self) -> Option<Savepoint> {
        *self.slot()
    }

    /// Forgets savepoint `id`, undone (or found gone); one recorded
    /// meanwhile stays.
    fn forget(&self, id: u32) {
        let mut slot = self.slot();
        if slot.is_some_and(|savepoint| savepoint.id == id) {
            *slot = None;
        }
    }

    /// The slot; a panic elsewhere while it was held leaves it usable.
    fn slot(&self) -> MutexGuard<'_, Option<Savepoint>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
