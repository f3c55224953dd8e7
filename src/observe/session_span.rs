//! One session's observation: its span, open from `get()` until the
//! session is dropped, and the time it held its connection.

use std::time::Instant;

use tracing::Span;

use super::{Observer, SessionOutcome, failed};

/// Carried by a session; ended once, by the first of commit, rollback or drop.
pub(crate) struct SessionSpan {
    span: Span,
    /// When the connection was checked out.
    held_since: Instant,
    autocommit: bool,
    ended: bool,
}

impl SessionSpan {
    /// Starts timing a session that has just got its connection.
    pub(crate) fn new(span: Span, autocommit: bool) -> Self {
        Self {
            span,
            held_since: Instant::now(),
            autocommit,
            ended: false,
        }
    }

    /// The session's span, the parent of its statements' spans.
    pub(crate) fn span(&self) -> &Span {
        &self.span
    }

    /// Records how the session ended (an autocommit connection is simply
    /// `released`) and, for a failure, its `error.type` (a broken connection
    /// when none is given); later calls do nothing.
    pub(crate) fn end(
        &mut self,
        observer: &Observer,
        outcome: SessionOutcome,
        error_type: Option<&str>,
    ) {
        if self.ended {
            return;
        }
        self.ended = true;
        let outcome = match outcome {
            SessionOutcome::Committed | SessionOutcome::RolledBack if self.autocommit => {
                SessionOutcome::Released
            }
            other => other,
        };
        if outcome == SessionOutcome::Failed {
            failed(&self.span, error_type.unwrap_or("broken_connection"));
        }
        observer.session_ended(&self.span, outcome, self.held_since.elapsed());
    }
}
