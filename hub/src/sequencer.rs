//! The transfer log's sequencer: it orders the hub's appends to the log and
//! signs their checkpoints with the log key. Stores only store: during an
//! append a store computes the new tree head inside its transaction, has it
//! signed through the [`AppendTurn`] the sequencer handed it, stores the
//! checkpoint with the entries, and reports when the transaction has
//! committed, which ends the turn.
//!
//! Why a turn: the time in a new entry is read while the turn is held, so
//! entries' times never go back (which `audit verify` rightly refuses).
//! Instances sharing one database also take the turn among themselves
//! ([`Coordination::log_turn`]) and a turn's time is never before the log's
//! last entry's, so a clock behind another instance's cannot send times
//! back either (its entries then carry the last entry's time). The
//! append's order is fixed once its transaction commits; holding the turn
//! through the wait for the disk as well would make every commit wait for
//! the previous one's fsync, where concurrent commits otherwise share one
//! (group commit).

use std::sync::{Arc, Mutex, PoisonError};

use jiff::Timestamp;
use sealdrop_proto::keys::{NoteSigningKey, NoteVerifierKey};
use tlog_tiles::Hash;
use tokio::sync::OwnedMutexGuard;

use crate::storage::coordination::{Coordination, SharedTurn};
use crate::storage::meta::{AppendTurn, MetaError};

/// Orders appends to the log and signs its checkpoints.
pub struct Sequencer {
    /// Signs checkpoints and the hub's own statements.
    key: Arc<NoteSigningKey>,
    /// Held by the one request whose entries come next (see [`Turn`]).
    turn: Arc<tokio::sync::Mutex<()>>,
}

impl std::fmt::Debug for Sequencer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sequencer")
    }
}

impl Sequencer {
    /// A sequencer signing with `key`.
    pub fn new(key: NoteSigningKey) -> Self {
        Self { key: Arc::new(key), turn: Arc::new(tokio::sync::Mutex::new(())) }
    }

    /// The log key, which signs checkpoints and the hub's statements.
    pub fn key(&self) -> &NoteSigningKey {
        &self.key
    }

    /// The public half of the log key.
    pub fn verifier(&self) -> NoteVerifierKey {
        self.key.verifier()
    }

    /// A turn at the log: this instance's, then (when other instances
    /// share the stores) the stores', then the time its entries carry,
    /// `clock` but never before the log's last entry. Hand it to the
    /// append, which ends it once its transaction commits (dropping it
    /// ends it too). Take a drop's lock, if any, before this, never after.
    pub async fn turn(
        &self,
        coordination: &dyn Coordination,
        clock: impl FnOnce() -> Timestamp,
    ) -> Result<Turn, MetaError> {
        let local = Arc::clone(&self.turn).lock_owned().await;
        let shared = coordination.log_turn().await?;
        let now = clock();
        let now = shared.last_entry_time.map_or(now, |last| now.max(last));
        Ok(Turn { key: Arc::clone(&self.key), held: Mutex::new(Some((local, shared))), now })
    }
}

/// One request's turn at the log (see [`Sequencer::turn`]).
pub struct Turn {
    /// Signs the checkpoint of this turn's append.
    key: Arc<NoteSigningKey>,
    /// The turn itself (this instance's, and the stores'), until the
    /// append commits.
    held: Mutex<Option<(OwnedMutexGuard<()>, SharedTurn)>>,
    /// The time of the entries made in this turn.
    now: Timestamp,
}

impl Turn {
    /// The time the entries made in this turn carry (whole seconds, as
    /// [`crate::Hub::now`]).
    pub fn now(&self) -> Timestamp {
        self.now
    }
}

impl AppendTurn for Turn {
    fn sign_checkpoint(&self, size: u64, root: &Hash) -> String {
        sealdrop_log::checkpoint::sign(&self.key, size, root)
    }

    fn committed(&self) {
        drop(self.held.lock().unwrap_or_else(PoisonError::into_inner).take());
    }
}

/// The log key alone, for an append nothing else can race: creating a data
/// directory, starting the log while the hub opens, tests and benchmarks.
impl AppendTurn for NoteSigningKey {
    fn sign_checkpoint(&self, size: u64, root: &Hash) -> String {
        sealdrop_log::checkpoint::sign(self, size, root)
    }

    fn committed(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::coordination::Exclusive;

    #[tokio::test]
    async fn a_turn_ends_when_its_append_commits_or_when_it_is_dropped() {
        let sequencer = Sequencer::new(NoteSigningKey::generate("hub.test").unwrap());
        let turn = || sequencer.turn(&Exclusive, || Timestamp::UNIX_EPOCH);
        let first = turn().await.unwrap();
        assert!(sequencer.turn.try_lock().is_err(), "held");
        first.committed();
        assert!(sequencer.turn.try_lock().is_ok(), "given up at commit, while the turn object lives on");
        first.committed();
        drop(first);
        // An append that fails before committing gives the turn up when the turn is dropped.
        let failed = turn().await.unwrap();
        assert!(sequencer.turn.try_lock().is_err());
        drop(failed);
        assert!(sequencer.turn.try_lock().is_ok());
    }
}
