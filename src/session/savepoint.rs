//! Nested units of work inside a session: a savepoint that is kept or
//! undone on its own.

use std::panic::AssertUnwindSafe;

use futures_util::FutureExt;
use sea_orm::DbErr;

use super::Session;
use crate::error::{Error, Result};

impl Session {
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
        let mut state = self.prepare(true).await?;
        let begun = state.usable()?.begin(false, None).await;
        self.check(&mut state, begun).await
    }

    /// Releases (`keep`) or rolls back the innermost savepoint. A savepoint
    /// whose statements made the server abort the transaction is rolled
    /// back even if its body succeeded — the server would not keep its work
    /// anyway — and reported as an error.
    async fn end_savepoint(&self, keep: bool) -> Result<(), DbErr> {
        let mut state = self.state.lock().await;
        let refused = if keep { state.usable().err() } else { None };
        let conn = state.open()?;
        let ended = if keep && refused.is_none() {
            conn.commit().await
        } else {
            conn.rollback().await
        };
        let ended = self.check(&mut state, ended).await;
        if ended.is_ok() && (!keep || refused.is_some()) {
            state.savepoint_rolled_back();
        }
        match refused {
            Some(err) => Err(err),
            None => ended,
        }
    }
}
