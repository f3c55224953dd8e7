//! Where the primary's history stood after the newest write of a registry:
//! what a read session must see for read-your-writes.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use super::ReplicationPosition;

/// The newest commit position of a registry's writes.
#[derive(Debug, Default)]
pub(crate) struct LastWrite {
    position: Mutex<Option<ReplicationPosition>>,
    /// Writes whose position could not be read when they ended (autocommit
    /// statements, the engine, a commit whose outcome is unknown), counted.
    unplaced: AtomicU64,
    /// How many of those the monitor has placed: it read the primary's
    /// position in a round that began after them.
    placed: AtomicU64,
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
    }

    /// A write happened whose position is not known: only the primary is
    /// sure to have it until the monitor has placed it.
    pub(crate) fn unplaced(&self) {
        self.unplaced.fetch_add(1, Ordering::AcqRel);
    }

    /// The unplaced writes so far, if any is not placed yet; a monitor
    /// round takes this before it reads the primary's position.
    pub(crate) fn pending(&self) -> Option<u64> {
        let unplaced = self.unplaced.load(Ordering::Acquire);
        (unplaced > self.placed.load(Ordering::Acquire)).then_some(unplaced)
    }

    /// The primary was at `position` in a round that began after
    /// `unplaced` writes: they are all at or before it.
    pub(crate) fn place(&self, position: ReplicationPosition, unplaced: u64) {
        self.advance(position);
        self.placed.fetch_max(unplaced, Ordering::AcqRel);
    }

    /// What a read session must see: `Err(())` when only the primary is
    /// sure to have it, else the newest position recorded, if any.
    pub(crate) fn required(&self) -> Result<Option<ReplicationPosition>, ()> {
        if self.unplaced.load(Ordering::Acquire) > self.placed.load(Ordering::Acquire) {
            return Err(());
        }
        Ok(self.position.lock().ok().and_then(|last| last.clone()))
    }
}
