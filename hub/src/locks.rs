//! Per-drop locks that serialise the operations touching a drop's upload
//! (upload, the upload's progress, commit, recall, the sweeper's end of a
//! drop), so a commit can never promote an upload that a concurrent
//! re-upload is still writing. Requests for different drops never wait for
//! each other.
//!
//! A lock is this instance's (a mutex in memory) and then, on stores that
//! other instances share, the stores' ([`Coordination::lock_drop`]: a
//! PostgreSQL advisory lock held on this instance's session), so it holds
//! across instances too; on the embedded stores the one process needs no
//! more. What must hold across instances, and what gives it:
//!
//! - **No double commit, no commit of a drop that ended**: the commit's
//!   conditional update (`state = 'open'` and the recorded upload equal to
//!   the one committed) in the commit's transaction; the lock is not needed.
//! - **An acknowledgement or a download never races a recall or the sweeper
//!   into the log**: `acknowledge`, `record_fetch` and `end_drop` each check
//!   the state in their transaction, which also takes the log head's row
//!   lock, so one of two racing changes sees the other's result.
//! - **A replay is refused everywhere**: the nonce's primary key.
//! - **Uploads of one drop never interleave, and a commit never promotes an
//!   upload being written**: only the lock gives this (the database learns
//!   of an upload when it ends). Without it across instances a sender whose
//!   retry reached another instance while its first request still streamed
//!   could leave the database vouching for bytes the store no longer holds.
//!   The object store adds its own guard (segments are written with
//!   `If-None-Match`, so two writers never overwrite one segment).
//! - **The sweeper never removes an upload being written**: it only tries
//!   the lock ([`DropLocks::try_lock`]) and leaves a held one alone.
//!
//! If an instance's lock session ends (the database restarted, the
//! connection broke), its locks go with it and the operations holding them
//! carry on unprotected until they end: the conditional updates above still
//! keep the drop's state and the log right, and the worst left is an upload
//! the commit then finds missing or changed, which it refuses (the sender
//! uploads again).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sealdrop_proto::ids::DropId;
use tokio::sync::OwnedMutexGuard;

use crate::storage::coordination::{Coordination, Held};
use crate::storage::meta::MetaError;

/// A drop's lock, held until dropped: this instance's, and the stores'.
pub struct DropGuard {
    /// The stores' lock (nothing on the embedded stores).
    _shared: Held,
    /// This instance's lock.
    _local: OwnedMutexGuard<()>,
}

/// A lock per drop id, created on demand and forgotten once unused.
#[derive(Debug, Default)]
pub struct DropLocks {
    map: Mutex<HashMap<DropId, Arc<tokio::sync::Mutex<()>>>>,
}

impl DropLocks {
    /// Waits for and takes the lock of `id`; it is released when the guard drops.
    pub async fn lock(&self, id: &DropId, coordination: &dyn Coordination) -> Result<DropGuard, MetaError> {
        let local = self.entry(id).lock_owned().await;
        let shared = coordination.lock_drop(id).await?;
        Ok(DropGuard { _shared: shared, _local: local })
    }

    /// Takes the lock of `id` if nobody holds it: the sweeper must not wait
    /// for an upload that may stream for hours, and leaves its drop alone.
    pub async fn try_lock(&self, id: &DropId, coordination: &dyn Coordination) -> Result<Option<DropGuard>, MetaError> {
        let Ok(local) = self.entry(id).try_lock_owned() else { return Ok(None) };
        Ok(coordination.try_lock_drop(id).await?.map(|shared| DropGuard { _shared: shared, _local: local }))
    }

    /// The mutex of `id`, created if need be.
    fn entry(&self, id: &DropId) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.map.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // Entries only the map refers to are neither held nor awaited.
        map.retain(|_, l| Arc::strong_count(l) > 1);
        Arc::clone(map.entry(id.clone()).or_default())
    }

    /// How many drops currently have a lock entry (for tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.map.lock().map(|m| m.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::coordination::Exclusive;

    #[tokio::test]
    async fn same_drop_waits_other_drops_do_not() {
        let locks = DropLocks::default();
        let a = DropId::random();
        let b = DropId::random();
        let held = locks.lock(&a, &Exclusive).await.unwrap();
        // A different drop is not blocked.
        let other = locks.lock(&b, &Exclusive).await.unwrap();
        drop(other);
        // The same drop is blocked until the guard drops.
        let mut waiting = Box::pin(locks.lock(&a, &Exclusive));
        assert!(futures_util::poll!(&mut waiting).is_pending());
        drop(held);
        let again = waiting.await.unwrap();
        drop(again);
        let _c = locks.lock(&DropId::random(), &Exclusive).await.unwrap();
        assert_eq!(locks.len(), 1, "unused entries are forgotten");
    }

    #[tokio::test]
    async fn try_lock_does_not_wait() {
        let locks = DropLocks::default();
        let a = DropId::random();
        let held = locks.lock(&a, &Exclusive).await.unwrap();
        assert!(locks.try_lock(&a, &Exclusive).await.unwrap().is_none(), "a held lock is not taken");
        drop(held);
        let taken = locks.try_lock(&a, &Exclusive).await.unwrap().expect("a free lock is taken");
        let mut waiting = Box::pin(locks.lock(&a, &Exclusive));
        assert!(futures_util::poll!(&mut waiting).is_pending(), "try_lock holds it like lock");
        drop(taken);
        drop(waiting.await.unwrap());
    }
}
