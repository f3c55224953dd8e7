//! The one way every session form runs: open a session for the request, run
//! the body, commit on `Ok`, roll back on `Err` or panic, release the
//! connection — and, for the retrying forms, do it again after a transient
//! conflict.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures_util::FutureExt;

use super::SqlConnectionRegistry;
use crate::error::{Error, Result};
use crate::retry::Gate;
use crate::session::{Mode, Request, Session};
use crate::stats::Counters;

impl SqlConnectionRegistry {
    /// Runs the body `attempt_body` makes in a session for `request`: once
    /// for a plain request; for a retrying one, again after each attempt a
    /// transient conflict ended, until `request.retry` allows no more.
    pub(super) async fn run<T, E, F>(
        &self,
        request: Request<'_>,
        mut attempt_body: impl FnMut() -> F,
    ) -> Result<T, E>
    where
        F: AsyncFnOnce(&Session) -> Result<T, E>,
        E: From<Error>,
    {
        let mut attempt = 1;
        loop {
            let attempted = match request.retry {
                Some(retry) if request.mode != Mode::ReadOnly => {
                    // Writes that keep losing over a hot row pass a gate
                    // where their last attempt runs alone.
                    let pass = self.inner.gate.pass(retry.is_last_retry(attempt)).await;
                    let attempted =
                        Gate::within(self.attempt(request, attempt, attempt_body())).await;
                    drop(pass);
                    attempted
                }
                _ => self.attempt(request, attempt, attempt_body()).await,
            };
            let (conflict, server) = match attempted {
                Attempt::Done(outcome) => return outcome,
                Attempt::Conflict(conflict, server) => (conflict, server),
            };
            // Only a retrying request reports conflicts.
            let Some(retry) = request.retry.filter(|retry| retry.allows_after(attempt)) else {
                return Err(Error::Conflict {
                    attempts: attempt,
                    last: Box::new(conflict),
                }
                .into());
            };
            let pause = retry.pause(attempt);
            tracing::info!(
                url = %self.url(),
                attempt,
                pause_ms = pause.as_secs_f64() * 1000.0,
                cause = %conflict,
                "transaction ended by a transient conflict; rolled back, running it again"
            );
            server.retried();
            tokio::time::sleep(pause).await;
            attempt += 1;
        }
    }

    /// One attempt (numbered from 1): the body in a fresh session, then
    /// commit or rollback. Only a retrying request looks for conflicts.
    async fn attempt<T, E, F>(&self, request: Request<'_>, number: u32, body: F) -> Attempt<T, E>
    where
        F: AsyncFnOnce(&Session) -> Result<T, E>,
        E: From<Error>,
    {
        let mut session = match self.open_session(request).await {
            Ok(session) => session,
            Err(err) => return Attempt::Done(Err(err.into())),
        };
        let retrying = request.retries();
        if retrying {
            session.observe_attempt(number);
        }
        let server = session.counters();
        let outcome = AssertUnwindSafe(body(&session)).catch_unwind().await;
        let conflict = if retrying {
            session.take_conflict()
        } else {
            None
        };
        let result = match outcome {
            Ok(result) => result,
            Err(panic) => {
                session.rollback().await;
                std::panic::resume_unwind(panic)
            }
        };
        if let Some(conflict) = conflict {
            session.rollback().await;
            return Attempt::Conflict(Error::Query(conflict), server);
        }
        let value = match result {
            Ok(value) => value,
            Err(err) => return Attempt::Done(Err(session.fail(err).await)),
        };
        match session.commit().await {
            Ok(()) => Attempt::Done(Ok(value)),
            // A read-only transaction wrote nothing, whatever its COMMIT met.
            Err(err) if retrying && (err.is_transient() || request.mode == Mode::ReadOnly) => {
                Attempt::Conflict(err, server)
            }
            Err(err) => Attempt::Done(Err(err.into())),
        }
    }

    /// A session for `request`; its isolation overrides the configured
    /// level for this session only (see [`Topology::session`](crate::topology::Topology::session)
    /// for the server it goes to).
    pub(super) async fn open_session(&self, request: Request<'_>) -> Result<Session> {
        let request = Request {
            isolation: request.isolation.or(self.inner.config.session.isolation),
            ..request
        };
        self.inner.topology.session(&request).await
    }
}

/// How one attempt ended.
enum Attempt<T, E> {
    /// For good: committed, or failed in a way a retry would not fix.
    Done(Result<T, E>),
    /// Rolled back over a transient conflict on the server whose counters
    /// these are; another attempt may succeed.
    Conflict(Error, Arc<Counters>),
}

/// The body of a plain form, made once.
pub(super) fn once<F>(body: F) -> impl FnMut() -> F {
    let mut body = Some(body);
    move || body.take().expect("a plain request makes one attempt")
}
