//! Per-party quotas (the limits and the counts of uploads in flight;
//! [`crate::service::quota`] enforces them): how much ciphertext one party may have the hub hold
//! (`max_held_bytes_per_party`: its committed drops not yet deleted, plus
//! the uploads of its open drops, finished, cut off or arriving now) and
//! how many uploads it may have open at once (`max_open_uploads_per_party`).
//! A member's key is enough to upload, so without them one party could
//! fill the hub's disk for everyone (four never-ending uploads wrote 12 GB
//! in 10 s) or hold connections and files open without end.
//!
//! Enforced while an upload streams, chunk by chunk, before the chunk is
//! written: a never-ending upload is stopped at the quota, not at its end.
//! A refused upload is discarded; nothing the party already stored is
//! touched (its recipients still fetch it, and it counts until deleted).
//!
//! How it is counted: what rests on the hub (committed drops, and the
//! uploads of open drops nobody is writing to) is read from the database
//! when an upload starts (one indexed query, plus the length of each cut
//! off upload), and what streams is counted here, in memory, per upload in
//! flight. An upload that ends moves its bytes from "streaming" to
//! "settled", which every upload still in flight adds to what it read at
//! its start, so two uploads of one party never miss each other's bytes.
//! Deletions elsewhere (delivery, recall, expiry) only make the counts an
//! over-estimate: before refusing, the hub reads the database again, and
//! refuses only if the fresh count is still over.
//!
//! Several instances on one database and one store of ciphertexts: what
//! streams on another instance is not in this one's memory, so there the
//! upload's start is noted in the database (its drop counts as an upload
//! begun) and what rests is read with every such upload's bytes as the
//! shared store holds them so far; an upload reads it again every
//! [`SHARED_REREAD_BYTES`](crate::service::quota::SHARED_REREAD_BYTES) it
//! receives. So the limits hold across instances, give or take what the
//! store cannot see yet: per upload in flight elsewhere, the bytes it
//! received since its last look plus the part of it the store has not
//! been sent yet (at most one 8 MiB segment on S3). An upload elsewhere
//! that has stored no byte yet does not count as open.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use sealdrop_proto::ids::{DropId, PartyId};

/// The default ciphertext a party may have the hub hold: 128 GiB, two of
/// the largest drops (`max_upload_bytes`, 64 GiB) at once, or years of a
/// London borough's ordinary sharing (lists and plans of a few MB each,
/// deleted as soon as every recipient has them, at most days later).
pub const DEFAULT_MAX_HELD_BYTES_PER_PARTY: u64 = 128 << 30;

/// The default uploads a party may have open at once: 16, four times the
/// four a split send runs side by side (to every London borough), with
/// room for a few members sending at the same time and for uploads cut
/// off and waiting to be continued.
pub const DEFAULT_MAX_OPEN_UPLOADS_PER_PARTY: u32 = 16;

/// The per-party quotas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quotas {
    /// Ciphertext bytes held: stored plus uploading.
    pub held_bytes: u64,
    /// Uploads open at once: arriving, or cut off and not yet committed.
    pub open_uploads: u32,
}

impl Default for Quotas {
    fn default() -> Self {
        Self { held_bytes: DEFAULT_MAX_HELD_BYTES_PER_PARTY, open_uploads: DEFAULT_MAX_OPEN_UPLOADS_PER_PARTY }
    }
}

/// One party's uploads in flight and what ended since.
#[derive(Debug, Default)]
pub(crate) struct Usage {
    /// Bytes each upload in flight has received (a continued upload's
    /// prefix included).
    pub(crate) streaming: HashMap<DropId, u64>,
    /// Bytes kept by uploads that ended, since the hub started.
    pub(crate) settled_bytes: u64,
    /// Uploads that ended keeping bytes, since the hub started.
    pub(crate) settled_uploads: u64,
}

/// The uploads in flight of every party.
#[derive(Debug, Default)]
pub struct Ledger {
    parties: Mutex<HashMap<PartyId, Usage>>,
}

impl Ledger {
    /// Runs `f` on `party`'s counts, under the ledger's lock.
    pub(crate) fn with<R>(&self, party: &PartyId, f: impl FnOnce(&mut Usage) -> R) -> R {
        let mut parties = self.parties.lock().unwrap_or_else(PoisonError::into_inner);
        let usage = parties.entry(party.clone()).or_default();
        let out = f(usage);
        // With no upload in flight nobody holds counts read against the
        // settled ones: the party's entry can go (and the counts restart).
        if usage.streaming.is_empty() {
            parties.remove(party);
        }
        out
    }
}
