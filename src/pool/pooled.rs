//! A connection checked out of the pool, and the rules for its return:
//! synchronous, without a round trip or a spawned task.

use std::ops::{Deref, DerefMut};

use deadpool::managed::Object;
use sqlx::Database;
use sqlx_core::transaction::TransactionManager;

use super::manager::{Slot, SqlxManager};

/// A pooled sqlx connection; dereferences to the backend's connection.
///
/// Dropping it returns the connection to the pool, unless its state is
/// unknown or it is surplus, in which case it is closed (its socket dropped;
/// the server ends the session and rolls back anything open):
/// - it was marked with [`close_on_release`](Self::close_on_release) (broken,
///   interrupted mid-round-trip);
/// - it is still inside a transaction;
/// - `pool_size` connections are idle already (QueuePool's overflow rule);
/// - the pool was closed.
pub(crate) struct Pooled<DB: Database> {
    object: Option<Object<SqlxManager<DB>>>,
    close_on_release: bool,
}

impl<DB: Database> Pooled<DB> {
    pub(super) fn new(object: Object<SqlxManager<DB>>) -> Self {
        Self {
            object: Some(object),
            close_on_release: false,
        }
    }

    /// Closes the connection instead of pooling it when it is released.
    pub(crate) fn close_on_release(&mut self) {
        self.close_on_release = true;
    }

    /// Whether statements outside a transaction may write on this connection
    /// (see [`Slot`]).
    pub(crate) fn writes_by_default(&self) -> bool {
        self.slot().writes_by_default
    }

    /// Records a change of the connection's default access mode.
    pub(crate) fn set_writes_by_default(&mut self, writes: bool) {
        self.slot_mut().writes_by_default = writes;
    }

    /// Behind a transaction pooler: the settings each transaction sets for
    /// itself (see `Fresh::transaction_settings`).
    pub(crate) fn transaction_settings(&self) -> Option<&str> {
        self.slot().transaction_settings.as_deref()
    }

    /// After a reset to the server's defaults: the pool's per-connection
    /// setup again (settings a pooler in session mode cannot take at
    /// startup), so the connection is as a new one of the pool.
    pub(crate) async fn setup_again(&mut self) -> Result<(), sqlx::Error> {
        let object = self.object.as_mut().expect("present until dropped");
        match Object::pool(object) {
            Some(pool) => pool.manager().set_up(&mut object.conn).await,
            None => Ok(()),
        }
    }

    /// After a reset: the connection's defaults are a new connection's again.
    pub(crate) fn restore_defaults(&mut self) {
        let object = self.object.as_mut().expect("present until dropped");
        if let Some(pool) = Object::pool(object) {
            object.writes_by_default = pool.manager().writes_by_default();
        }
    }

    fn slot(&self) -> &Slot<DB::Connection> {
        self.object.as_ref().expect("present until dropped")
    }

    fn slot_mut(&mut self) -> &mut Slot<DB::Connection> {
        self.object.as_mut().expect("present until dropped")
    }
}

impl<DB: Database> Deref for Pooled<DB> {
    type Target = DB::Connection;

    fn deref(&self) -> &DB::Connection {
        &self.slot().conn
    }
}

impl<DB: Database> DerefMut for Pooled<DB> {
    fn deref_mut(&mut self) -> &mut DB::Connection {
        &mut self.slot_mut().conn
    }
}

impl<DB: Database> Drop for Pooled<DB> {
    fn drop(&mut self) {
        let Some(object) = self.object.take() else {
            return;
        };
        let Some(pool) = Object::pool(&object) else {
            return; // the pool is gone: dropping the connection closes it
        };
        let manager = pool.manager();
        let clean = DB::TransactionManager::get_transaction_depth(&object.conn) == 0;
        let keep =
            !self.close_on_release && clean && !pool.is_closed() && manager.claim_idle_place();
        if keep {
            let mut object = object;
            object.idle_since = std::time::Instant::now();
            drop(object);
        } else {
            drop(Object::take(object));
        }
        if pool.is_closed() {
            manager.gone.notify_waiters();
        }
    }
}
