//! A small drop stored whole: its rows, its ciphertext, its commit and its
//! log entry in one transaction, with the proof of the entry read in the
//! same call ([`WholeDropStore`]).
//!
//! Why a trait of its own: only a back end that keeps small ciphertexts in
//! the same database as the drops can do this (SQLite, with the tiered blob
//! store's inline rows). There a drop in one request (`PUT /v1/drops/{id}`)
//! went through five transactions and about a dozen trips to the database
//! thread (create, upload row, `set_upload`, promotion, commit, then three
//! reads for the proof), each writing the drop's pages to the WAL again;
//! this is one trip and one transaction (`bench/RESULTS.md`, issue 23).
//! Nothing of the drop exists until that transaction commits, so a crash
//! or a refusal leaves nothing behind, not even an open drop. Back ends
//! whose ciphertexts live elsewhere (PostgreSQL with files or an object
//! store) do not offer it, and such a drop goes the way a three-step send
//! stores it.

use async_trait::async_trait;
use bytes::Bytes;
use sealdrop_proto::ids::DropId;
use tlog_tiles::Hash;

use super::meta::{AppendTurn, CommitRecord, DropRecord, MetaError, NewDrop};

/// A drop in one request, checked and ready to store.
#[derive(Debug, Clone)]
pub struct WholeDrop {
    /// The drop as a create stores it (its idempotency key is handled as
    /// [`super::DropStore::create_drop`] handles it).
    pub drop: NewDrop,
    /// Its commit, with the `drop_committed` entry; `commit.content` is the
    /// digest of `ciphertext`.
    pub commit: CommitRecord,
    /// The ciphertext, at most [`WholeDropStore::max_len`] bytes.
    pub ciphertext: Bytes,
    /// The log size the sender verified last, for the consistency proof.
    pub known_size: Option<u64>,
}

/// The proof of an entry, read in the transaction that appended it.
#[derive(Debug, Clone, PartialEq)]
pub struct AppendedProof {
    /// The checkpoint signed for the append (its size is the entry's index + 1).
    pub checkpoint: String,
    /// The size that checkpoint covers.
    pub size: u64,
    /// The entry's audit path in that tree.
    pub inclusion: Vec<Hash>,
    /// The proof that the tree extends the one of `known_size` entries, when
    /// the sender gave a size no larger (empty when there is nothing to prove).
    pub consistency: Option<(u64, Vec<Hash>)>,
}

/// What [`WholeDropStore::put_whole`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum WholeOutcome {
    /// Stored and committed: the entry's index and its proof. `replaced` is
    /// an open drop of the same sender and idempotency key whose rows were
    /// deleted in the transaction (a three-step send cut off): its files
    /// are the caller's to discard.
    Committed { log_index: u64, replaced: Option<DropId>, proof: AppendedProof },
    /// The sender's drop under this idempotency key is committed already:
    /// nothing changed, and this is that drop.
    AlreadyCommitted(Box<DropRecord>),
}

/// Stores small drops whole (see the module docs).
#[async_trait]
pub trait WholeDropStore: Send + Sync {
    /// The largest ciphertext it stores this way.
    fn max_len(&self) -> u64;
    /// Creates drop `put.drop`, keeps its ciphertext as its committed blob,
    /// commits it with `put.commit` and appends the entry in `turn`, all in
    /// one transaction that ends the turn when it commits; returns once that
    /// transaction is durable. An id that exists already is an error (the
    /// caller looked it up under the drop's lock).
    async fn put_whole(&self, put: WholeDrop, turn: Box<dyn AppendTurn>) -> Result<WholeOutcome, MetaError>;
}
