//! Per-drop locks that serialise the operations touching a drop's upload file
//! (upload and commit), so a commit can never promote a file that a
//! concurrent re-upload is still rewriting. Requests for different drops
//! never wait for each other.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sealdrop_proto::ids::DropId;
use tokio::sync::OwnedMutexGuard;

/// A lock per drop id, created on demand and forgotten once unused.
#[derive(Debug, Default)]
pub struct DropLocks {
    map: Mutex<HashMap<DropId, Arc<tokio::sync::Mutex<()>>>>,
}

impl DropLocks {
    /// Waits for and takes the lock of `id`; it is released when the guard drops.
    pub async fn lock(&self, id: &DropId) -> OwnedMutexGuard<()> {
        let lock = {
            let mut map = self.map.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            // Entries only the map refers to are neither held nor awaited.
            map.retain(|_, l| Arc::strong_count(l) > 1);
            Arc::clone(map.entry(id.clone()).or_default())
        };
        lock.lock_owned().await
    }

    /// Takes the lock of `id` if nobody holds it: the sweeper must not wait
    /// for an upload that may stream for hours, and leaves its drop alone.
    pub fn try_lock(&self, id: &DropId) -> Option<OwnedMutexGuard<()>> {
        let lock = {
            let mut map = self.map.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            map.retain(|_, l| Arc::strong_count(l) > 1);
            Arc::clone(map.entry(id.clone()).or_default())
        };
        lock.try_lock_owned().ok()
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

    #[tokio::test]
    async fn same_drop_waits_other_drops_do_not() {
        let locks = DropLocks::default();
        let a = DropId::random();
        let b = DropId::random();
        let held = locks.lock(&a).await;
        // A different drop is not blocked.
        let other = locks.lock(&b).await;
        drop(other);
        // The same drop is blocked until the guard drops.
        let mut waiting = Box::pin(locks.lock(&a));
        assert!(futures_util::poll!(&mut waiting).is_pending());
        drop(held);
        let again = waiting.await;
        drop(again);
        let _c = locks.lock(&DropId::random()).await;
        assert_eq!(locks.len(), 1, "unused entries are forgotten");
    }

    #[tokio::test]
    async fn try_lock_does_not_wait() {
        let locks = DropLocks::default();
        let a = DropId::random();
        let held = locks.lock(&a).await;
        assert!(locks.try_lock(&a).is_none(), "a held lock is not taken");
        drop(held);
        let taken = locks.try_lock(&a).expect("a free lock is taken");
        let mut waiting = Box::pin(locks.lock(&a));
        assert!(futures_util::poll!(&mut waiting).is_pending(), "try_lock holds it like lock");
        drop(taken);
        drop(waiting.await);
    }
}
