//! Where the primary's history stood after the newest write session of a
//! registry committed: what a read session must see for read-your-writes.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use super::ReplicationPosition;

/// The newest commit position of a registry's write sessions.
#[derive(Debug, Default)]
pub(crate) struct LastWrite {
    position: Mutex<Option<ReplicationPosition>>,
    /// A commit's position could not be read: only the primary is sure to
    /// have it, until the next commit's position is known.
    unknown: AtomicBool,
}

impl LastWrite {
    /// Records a commit's position; commits that finish out of order never
    /// move it back.
    pub(crate) fn advance(&self, position: ReplicationPosition) {
        if let Ok(mut last) = self.position.lock()
            && !last.as_ref().is_some_and(|last| last.covers(&position))
        {
            *last = Some(position);
        }
        self.unknown.store(false, Ordering::Release);
    }

    /// A commit happened whose position could not be read.
    pub(crate) fn unknown(&self) {
        self.unknown.store(true, Ordering::Release);
    }

    /// What a read session must see: `Err(())` when only the primary is
    /// sure to have it, else the newest position recorded, if any.
    pub(crate) fn required(&self) -> Result<Option<ReplicationPosition>, ()> {
        if self.unknown.load(Ordering::Acquire) {
            return Err(());
        }
        Ok(self.position.lock().ok().and_then(|last| last.clone()))
    }
}
