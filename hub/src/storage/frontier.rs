//! The part of the log's Merkle tree an append or a recomputation needs in
//! memory: shared by the SQLite and PostgreSQL log stores.

use std::collections::BTreeMap;

use tlog_tiles::{Hash, HashReader, stored_hash_index};

/// The hashes a growing tree still needs: the root of each complete
/// subtree that has not yet been combined with its right sibling (at most
/// one per level), keyed by stored-hash index.
#[derive(Default)]
pub(super) struct Frontier(BTreeMap<u64, Hash>);

impl HashReader for Frontier {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog_tiles::Error> {
        indexes.iter().map(|i| self.0.get(i).copied().ok_or(tlog_tiles::Error::IndexesNotInTree)).collect()
    }
}

impl Frontier {
    /// The stored-hash indexes of the frontier of a tree of `size` entries:
    /// for each level `l` whose bit is set in `size`, the complete subtree
    /// of `2^l` entries ending at the last one. Appending to the tree and
    /// its root hash need exactly these.
    pub(super) fn indexes_at(size: u64) -> Vec<u64> {
        (0..64u8)
            .filter(|&level| size >> level & 1 == 1)
            .map(|level| stored_hash_index(level, (size >> level) - 1))
            .collect()
    }

    /// The frontier of a tree from its stored hashes at [`Frontier::indexes_at`].
    pub(super) fn from_stored(indexes: &[u64], hashes: &[Hash]) -> Self {
        Self(indexes.iter().copied().zip(hashes.iter().copied()).collect())
    }

    /// Takes in the stored hashes of entry `n`: `hashes[l]` is the node at
    /// level `l` over `n >> l`. The left siblings it consumed are no longer
    /// needed; its top node is a left child that will be.
    pub(super) fn advance(&mut self, n: u64, hashes: &[Hash]) {
        let top = hashes.len() - 1;
        for level in 0..top {
            // `level < top <= 64`, so the cast cannot truncate.
            self.0.remove(&stored_hash_index(level as u8, (n >> level) - 1));
        }
        self.0.insert(stored_hash_index(top as u8, n >> top), hashes[top]);
    }
}
