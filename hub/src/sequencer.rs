//! The transfer log's sequencer: it orders the hub's appends to the log and
//! signs their checkpoints with the log key. Stores only store: during an
//! append a store computes the new tree head inside its transaction, has it
//! signed through the [`AppendTurn`] the sequencer handed it, stores the
//! checkpoint with the entries, and reports when the transaction has
//! committed, which ends the turn.
//!
//! Why a turn: the time in a new entry is read while the turn is held, so
//! entries' times never go back (which `audit verify` rightly refuses). The
//! append's order is fixed once its transaction commits; holding the turn
//! through the wait for the disk as well would make every commit wait for
//! the previous one's fsync, where concurrent commits otherwise share one
//! (group commit).

use std::sync::{Arc, Mutex, PoisonError};

use sealdrop_proto::keys::{NoteSigningKey, NoteVerifierKey};
use tlog_tiles::Hash;
use tokio::sync::OwnedMutexGuard;

use crate::storage::meta::AppendTurn;

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

    /// A turn at the log: take it before reading the time that goes into
    /// new entries and hand it to the append, which ends it once its
    /// transaction commits (dropping it ends it too). Take a drop's lock,
    /// if any, before this, never after.
    pub async fn turn(&self) -> Turn {
        Turn::holding(Arc::clone(&self.key), Arc::clone(&self.turn).lock_owned().await)
    }
}

/// One request's turn at the log (see [`Sequencer::turn`]).
pub struct Turn {
    /// Signs the checkpoint of this turn's append.
    key: Arc<NoteSigningKey>,
    /// The turn itself, until the append commits.
    held: Mutex<Option<OwnedMutexGuard<()>>>,
}

impl Turn {
    fn holding(key: Arc<NoteSigningKey>, guard: OwnedMutexGuard<()>) -> Self {
        Self { key, held: Mutex::new(Some(guard)) }
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

    #[tokio::test]
    async fn a_turn_ends_when_its_append_commits_or_when_it_is_dropped() {
        let sequencer = Sequencer::new(NoteSigningKey::generate("hub.test").unwrap());
        let first = sequencer.turn().await;
        assert!(sequencer.turn.try_lock().is_err(), "held");
        first.committed();
        assert!(sequencer.turn.try_lock().is_ok(), "given up at commit, while the turn object lives on");
        first.committed();
        drop(first);
        // An append that fails before committing gives the turn up when the turn is dropped.
        let failed = sequencer.turn().await;
        assert!(sequencer.turn.try_lock().is_err());
        drop(failed);
        assert!(sequencer.turn.try_lock().is_ok());
    }
}
