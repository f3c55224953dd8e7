//! Whether the server a read session landed on has replayed a position: the
//! read-your-writes check of routing, run as the session's first round trip
//! so that an interrupted check closes the connection like any other.

use super::Session;
use crate::error::Result;
use crate::replication::ReplicationPosition;
use std::time::Duration;

impl Session {
    /// Waits at most `bound` for the session's server to replay `position`;
    /// whether it did.
    ///
    /// # Errors
    ///
    /// [`Error::Query`](crate::Error::Query) when the server could not be asked.
    pub(crate) async fn replayed(
        &self,
        position: &ReplicationPosition,
        bound: Duration,
    ) -> Result<bool> {
        let mut state = self.state.lock().await;
        state.in_flight = true;
        let conn = state.usable()?;
        let waited = self
            .server
            .within_limit(conn.probe().wait_for(position, bound))
            .await;
        state.in_flight = false;
        Ok(self.check(&mut state, waited).await?)
    }
}
