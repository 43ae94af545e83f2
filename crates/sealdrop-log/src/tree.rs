//! The log's Merkle tree (RFC 6962 / RFC 9162, as c2sp.org/tlog-tiles uses
//! it): an in-memory tree for building logs and proofs, proof verification,
//! and a streaming root computation for audits.
//!
//! All hashing goes through `tlog_tiles` ([`tlog_tiles::record_hash`],
//! [`tlog_tiles::node_hash`], [`tlog_tiles::stored_hashes`],
//! [`tlog_tiles::prove_record`], [`tlog_tiles::check_record`],
//! [`tlog_tiles::prove_tree`], [`tlog_tiles::check_tree`]). The empty tree's
//! root is SHA-256 of the empty string, as RFC 6962 defines it.

use tlog_tiles::{EMPTY_HASH, Hash, HashReader};

/// Why a proof could not be made or did not verify.
#[derive(Debug, thiserror::Error)]
pub enum ProofError {
    #[error("entry {index} is not in a tree of {size} entries")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("the tree has {have} entries, fewer than the {size} asked for")]
    SizeTooLarge { size: u64, have: u64 },
    #[error("the old tree size {old} is larger than the new tree size {new}")]
    OldLargerThanNew { old: u64, new: u64 },
    #[error("the proof does not verify: the entry or tree is not the one the root commits to")]
    InvalidProof,
    #[error("the proof is malformed: {0}")]
    Malformed(String),
    #[error("the stored tree is incomplete: {0}")]
    Storage(String),
    #[error(transparent)]
    Checkpoint(#[from] crate::checkpoint::CheckpointError),
    #[error(transparent)]
    Cosignature(#[from] crate::cosign::CosignError),
    #[error("only {found} of the {required} required witnesses cosigned the checkpoint")]
    TooFewWitnesses { found: usize, required: usize },
}

/// The RFC 6962 leaf hash of an entry: SHA-256(0x00 || entry).
pub fn leaf_hash(entry: &[u8]) -> Hash {
    tlog_tiles::record_hash(entry)
}

/// A whole log in memory: every stored hash of the tree (in the
/// `tlog_tiles` stored-hash order), so it can answer for any earlier size.
///
/// About 2 × 32 bytes per entry: fine for tests, tools and logs of a few
/// million entries.
#[derive(Clone, Debug, Default)]
pub struct MemoryTree {
    hashes: Vec<Hash>,
    size: u64,
}

impl HashReader for MemoryTree {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog_tiles::Error> {
        indexes
            .iter()
            .map(|&i| {
                usize::try_from(i)
                    .ok()
                    .and_then(|i| self.hashes.get(i))
                    .copied()
                    .ok_or(tlog_tiles::Error::IndexesNotInTree)
            })
            .collect()
    }
}

fn storage(e: tlog_tiles::Error) -> ProofError {
    ProofError::Storage(e.to_string())
}

impl MemoryTree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds a tree from entries.
    pub fn from_entries<E: AsRef<[u8]>>(entries: impl IntoIterator<Item = E>) -> Self {
        let mut tree = Self::new();
        for e in entries {
            tree.append(e.as_ref());
        }
        tree
    }

    /// Appends an entry; returns its index.
    pub fn append(&mut self, entry: &[u8]) -> u64 {
        self.append_leaf_hash(leaf_hash(entry))
    }

    /// Appends an entry given its leaf hash (see [`leaf_hash`]); returns its index.
    pub fn append_leaf_hash(&mut self, leaf: Hash) -> u64 {
        let index = self.size;
        let new = tlog_tiles::stored_hashes_for_record_hash(index, leaf, self)
            .expect("a memory tree holds every hash it has stored");
        self.hashes.extend(new);
        self.size += 1;
        index
    }

    /// The number of entries.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The root of the whole tree (SHA-256 of "" when empty).
    pub fn root(&self) -> Hash {
        self.root_at(self.size).expect("the tree's own size is always in range")
    }

    /// The root of the tree made of the first `size` entries.
    pub fn root_at(&self, size: u64) -> Result<Hash, ProofError> {
        if size > self.size {
            return Err(ProofError::SizeTooLarge { size, have: self.size });
        }
        if size == 0 {
            return Ok(EMPTY_HASH);
        }
        tlog_tiles::tree_hash(size, self).map_err(storage)
    }

    /// The inclusion proof (RFC 6962 audit path) of entry `index` in the
    /// tree of the first `size` entries.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, ProofError> {
        if size > self.size {
            return Err(ProofError::SizeTooLarge { size, have: self.size });
        }
        if index >= size {
            return Err(ProofError::IndexOutOfRange { index, size });
        }
        tlog_tiles::prove_record(size, index, self).map_err(storage)
    }

    /// The consistency proof from the tree of `old` entries to the tree of
    /// `new` entries. Empty when `old` is 0 or equal to `new` (nothing to
    /// prove; see [`verify_consistency`]).
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>, ProofError> {
        if new > self.size {
            return Err(ProofError::SizeTooLarge { size: new, have: self.size });
        }
        if old > new {
            return Err(ProofError::OldLargerThanNew { old, new });
        }
        if old == 0 || old == new {
            return Ok(Vec::new());
        }
        tlog_tiles::prove_tree(new, old, self).map_err(storage)
    }
}

/// The longest proof a tree of at most 2^64 entries can need.
const MAX_PROOF_HASHES: usize = 64;

/// Verifies that `leaf` (see [`leaf_hash`]) is entry `index` of the tree of
/// `size` entries whose root is `root`.
pub fn verify_inclusion(proof: &[Hash], index: u64, size: u64, leaf: Hash, root: Hash) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    if proof.len() > MAX_PROOF_HASHES {
        return Err(ProofError::InvalidProof);
    }
    tlog_tiles::check_record(&proof.to_vec(), size, root, index, leaf).map_err(|_| ProofError::InvalidProof)
}

/// Verifies that the tree of `new_size` entries with root `new_root` extends
/// the tree of `old_size` entries with root `old_root`.
///
/// As RFC 9162 section 2.1.4 defines the proof only for `0 < old < new`, the
/// two trivial cases are decided without one (as Sigsum and
/// transparency-dev do): equal sizes are consistent when the roots are equal
/// and the proof is empty; the empty tree (whose root must be SHA-256 of "")
/// is consistent with every tree, with an empty proof.
pub fn verify_consistency(
    proof: &[Hash],
    old_size: u64,
    old_root: Hash,
    new_size: u64,
    new_root: Hash,
) -> Result<(), ProofError> {
    if old_size > new_size {
        return Err(ProofError::OldLargerThanNew { old: old_size, new: new_size });
    }
    if old_size == new_size {
        return if proof.is_empty() && old_root == new_root { Ok(()) } else { Err(ProofError::InvalidProof) };
    }
    if old_size == 0 {
        return if proof.is_empty() && old_root == EMPTY_HASH { Ok(()) } else { Err(ProofError::InvalidProof) };
    }
    if proof.is_empty() || proof.len() > MAX_PROOF_HASHES {
        return Err(ProofError::InvalidProof);
    }
    tlog_tiles::check_tree(&proof.to_vec(), new_size, new_root, old_size, old_root)
        .map_err(|_| ProofError::InvalidProof)
}

/// Computes a tree's root while entries stream past, in O(log n) memory:
/// the right frontier of perfect subtrees (a compact range from 0), merged
/// with [`tlog_tiles::node_hash`] as each completes.
#[derive(Clone, Debug, Default)]
pub struct RootBuilder {
    /// Perfect subtrees' (height, hash), heights strictly decreasing.
    frontier: Vec<(u32, Hash)>,
    size: u64,
}

impl RootBuilder {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an entry.
    pub fn push(&mut self, entry: &[u8]) {
        self.push_leaf_hash(leaf_hash(entry));
    }

    /// Adds an entry by its leaf hash.
    pub fn push_leaf_hash(&mut self, leaf: Hash) {
        let mut hash = leaf;
        let mut height = 0;
        while let Some(&(h, left)) = self.frontier.last() {
            if h != height {
                break;
            }
            self.frontier.pop();
            hash = tlog_tiles::node_hash(left, hash);
            height += 1;
        }
        self.frontier.push((height, hash));
        self.size += 1;
    }

    /// The number of entries so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The root of the entries so far (SHA-256 of "" when there are none).
    pub fn root(&self) -> Hash {
        let mut it = self.frontier.iter().rev();
        let Some(&(_, mut hash)) = it.next() else { return EMPTY_HASH };
        for &(_, left) in it {
            hash = tlog_tiles::node_hash(left, hash);
        }
        hash
    }
}

/// The size and root of the tree of `entries`, streaming in O(log n) memory.
pub fn root_of_entries<E: AsRef<[u8]>>(entries: impl IntoIterator<Item = E>) -> (u64, Hash) {
    let mut b = RootBuilder::new();
    for e in entries {
        b.push(e.as_ref());
    }
    (b.size(), b.root())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ct_merkle::mem_backed_tree::MemoryBackedTree;
    use ct_merkle::{ConsistencyProof, InclusionProof, RootHash};
    use rand::{Rng, SeedableRng};
    use sha2_011::Sha256 as CtSha256;

    fn h(hex_str: &str) -> Hash {
        Hash(hex::decode(hex_str).unwrap().try_into().unwrap())
    }

    /// The RFC 6962 reference leaves of the Certificate Transparency test
    /// suite (certificate-transparency merkle_tree_test.cc, reused by
    /// Trillian and transparency-dev/merkle's testdata).
    fn ct_leaves() -> Vec<Vec<u8>> {
        ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]
            .iter()
            .map(|s| hex::decode(s).unwrap())
            .collect()
    }

    const CT_ROOTS: [&str; 8] = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    #[test]
    fn reference_vectors_roots_and_proofs() {
        let tree = MemoryTree::from_entries(ct_leaves());
        assert_eq!(tree.root_at(0).unwrap(), h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
        for (n, root) in CT_ROOTS.iter().enumerate() {
            let size = n as u64 + 1;
            assert_eq!(tree.root_at(size).unwrap(), h(root), "root of {size}");
            assert_eq!(root_of_entries(&ct_leaves()[..=n]), (size, h(root)));
        }
        // Inclusion proofs (index is zero-based here).
        let inclusion: [(u64, u64, &[&str]); 5] = [
            (0, 1, &[]),
            (
                0,
                8,
                &[
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                5,
                8,
                &[
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (2, 3, &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
            (
                1,
                5,
                &[
                    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                ],
            ),
        ];
        for (index, size, want) in inclusion {
            let want: Vec<Hash> = want.iter().map(|s| h(s)).collect();
            assert_eq!(tree.inclusion_proof(index, size).unwrap(), want, "inclusion {index} in {size}");
            let leaf = leaf_hash(&ct_leaves()[index as usize]);
            let root = tree.root_at(size).unwrap();
            verify_inclusion(&want, index, size, leaf, root).unwrap();
        }
        // Consistency proofs.
        let consistency: [(u64, u64, &[&str]); 5] = [
            (1, 1, &[]),
            (
                1,
                8,
                &[
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                6,
                8,
                &[
                    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (
                2,
                5,
                &[
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                ],
            ),
            (
                6,
                7,
                &[
                    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                    "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
        ];
        for (old, new, want) in consistency {
            let want: Vec<Hash> = want.iter().map(|s| h(s)).collect();
            assert_eq!(tree.consistency_proof(old, new).unwrap(), want, "consistency {old} -> {new}");
            let (r1, r2) = (tree.root_at(old).unwrap(), tree.root_at(new).unwrap());
            verify_consistency(&want, old, r1, new, r2).unwrap();
            if !want.is_empty() {
                assert!(verify_consistency(&want, old, r2, new, r1).is_err(), "swapped roots");
                assert!(verify_consistency(&want[..want.len() - 1], old, r1, new, r2).is_err(), "truncated");
            }
        }
    }

    /// The RFC 6962 section 2.1.3 example tree of seven leaves, by structure:
    /// audit paths [b, h, l], [c, g, l], [f, j, k], [i, k] and consistency
    /// proofs [c, d, g, l], [l], [i, j, k] (names as in the RFC's figure).
    #[test]
    fn rfc6962_seven_leaf_example() {
        let d: Vec<Vec<u8>> = (0..7u8).map(|i| vec![b'd', i]).collect();
        let tree = MemoryTree::from_entries(&d);
        let lf = |i: usize| leaf_hash(&d[i]);
        let (a, b, c, dd, e, f, d6) = (lf(0), lf(1), lf(2), lf(3), lf(4), lf(5), lf(6));
        let n = tlog_tiles::node_hash;
        let (g, hh, i, j) = (n(a, b), n(c, dd), n(e, f), d6);
        let (k, l) = (n(g, hh), n(i, j));
        assert_eq!(tree.root(), n(k, l));
        assert_eq!(tree.inclusion_proof(0, 7).unwrap(), vec![b, hh, l]);
        assert_eq!(tree.inclusion_proof(3, 7).unwrap(), vec![c, g, l]);
        assert_eq!(tree.inclusion_proof(4, 7).unwrap(), vec![f, j, k]);
        assert_eq!(tree.inclusion_proof(6, 7).unwrap(), vec![i, k]);
        assert_eq!(tree.consistency_proof(3, 7).unwrap(), vec![c, dd, g, l]);
        assert_eq!(tree.consistency_proof(4, 7).unwrap(), vec![l]);
        assert_eq!(tree.consistency_proof(6, 7).unwrap(), vec![i, j, k]);
    }

    #[test]
    fn trivial_consistency_cases_follow_rfc9162() {
        let tree = MemoryTree::from_entries([b"a", b"b"]);
        let (r0, r2) = (tree.root_at(0).unwrap(), tree.root());
        verify_consistency(&[], 0, r0, 2, r2).unwrap();
        verify_consistency(&[], 0, r0, 0, r0).unwrap();
        verify_consistency(&[], 2, r2, 2, r2).unwrap();
        assert!(verify_consistency(&[], 0, r2, 2, r2).is_err(), "the empty tree's root is SHA-256(\"\")");
        assert!(verify_consistency(&[r0], 0, r0, 2, r2).is_err(), "nothing to prove from the empty tree");
        assert!(verify_consistency(&[], 2, r2, 2, r0).is_err(), "same size, other root");
        assert!(verify_consistency(&[r2], 2, r2, 2, r2).is_err(), "same size, non-empty proof");
        assert!(verify_consistency(&[], 1, r2, 2, r2).is_err(), "empty proof for a real extension");
        assert!(matches!(verify_consistency(&[], 3, r2, 2, r2), Err(ProofError::OldLargerThanNew { .. })));
        assert!(tree.consistency_proof(0, 2).unwrap().is_empty());
        assert!(matches!(tree.consistency_proof(1, 3), Err(ProofError::SizeTooLarge { .. })));
        assert!(matches!(tree.inclusion_proof(2, 2), Err(ProofError::IndexOutOfRange { .. })));
        assert!(matches!(verify_inclusion(&[], 0, 0, r0, r0), Err(ProofError::IndexOutOfRange { .. })));
    }

    fn ct_root(t: &MemoryBackedTree<CtSha256, Vec<u8>>) -> Hash {
        Hash(t.root().as_bytes().as_slice().try_into().unwrap())
    }

    fn to_ct_bytes(p: &[Hash]) -> Vec<u8> {
        p.iter().flat_map(|h| h.0).collect()
    }

    fn from_ct_bytes(b: &[u8]) -> Vec<Hash> {
        b.chunks(32).map(|c| Hash(c.try_into().unwrap())).collect()
    }

    /// Cross-checks with ct-merkle, an independent RFC 6962 implementation:
    /// equal roots, and each side's proofs verify with the other's verifier.
    #[test]
    fn agrees_with_ct_merkle() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(6962);
        let mut ours = MemoryTree::new();
        let mut theirs: MemoryBackedTree<CtSha256, Vec<u8>> = MemoryBackedTree::new();
        let mut ct_roots = vec![];
        for size in 0..=300u64 {
            if size > 0 {
                let len = rng.gen_range(0..40);
                let entry: Vec<u8> = (0..len).map(|_| rng.r#gen()).collect();
                ours.append(&entry);
                theirs.push(entry);
            }
            let root = ours.root();
            if size > 0 {
                assert_eq!(root, ct_root(&theirs), "root of {size}");
            } else {
                assert_eq!(root, EMPTY_HASH);
            }
            ct_roots.push(theirs.root());
            assert_eq!(root_of_entries(theirs.items()), (size, root));
            if size == 0 {
                continue;
            }
            // A few random inclusion proofs each way.
            for _ in 0..3 {
                let idx = rng.gen_range(0..size);
                let p = ours.inclusion_proof(idx, size).unwrap();
                let ct_p = InclusionProof::<CtSha256>::from_bytes(to_ct_bytes(&p));
                theirs.root().verify_inclusion(&theirs.items()[idx as usize], idx, &ct_p).unwrap();
                let theirs_p = from_ct_bytes(theirs.prove_inclusion(idx as usize).as_bytes());
                let leaf = leaf_hash(&theirs.items()[idx as usize]);
                verify_inclusion(&theirs_p, idx, size, leaf, root).unwrap();
                // Tampered: a flipped bit, a wrong index, a wrong leaf.
                if let Some(first) = theirs_p.first() {
                    let mut bad = theirs_p.clone();
                    bad[0].0[0] ^= 1;
                    assert_ne!(bad[0], *first);
                    assert!(verify_inclusion(&bad, idx, size, leaf, root).is_err());
                    assert!(verify_inclusion(&theirs_p, (idx + 1) % size, size, leaf, root).is_err());
                }
                assert!(verify_inclusion(&theirs_p, idx, size, leaf_hash(b"not it"), root).is_err());
            }
            // A random consistency proof each way, from an older size.
            let old = rng.gen_range(1..=size);
            let p = ours.consistency_proof(old, size).unwrap();
            if old < size {
                let ct_p = ConsistencyProof::<CtSha256>::try_from_bytes(to_ct_bytes(&p)).unwrap();
                let old_root = RootHash::<CtSha256>::new(*ct_roots[old as usize].as_bytes(), old);
                theirs.root().verify_consistency(&old_root, &ct_p).unwrap();
                let theirs_p = from_ct_bytes(theirs.prove_consistency((size - old) as usize).as_bytes());
                assert_eq!(theirs_p, p);
                verify_consistency(&theirs_p, old, ours.root_at(old).unwrap(), size, root).unwrap();
                let mut bad = theirs_p.clone();
                let last = bad.len() - 1;
                bad[last].0[31] ^= 0x80;
                assert!(verify_consistency(&bad, old, ours.root_at(old).unwrap(), size, root).is_err());
                assert!(verify_consistency(&theirs_p, old, root, size, root).is_err());
            }
        }
    }

    #[test]
    fn root_builder_matches_memory_tree_at_every_size() {
        let mut tree = MemoryTree::new();
        let mut b = RootBuilder::new();
        assert_eq!(b.root(), EMPTY_HASH);
        for i in 0..1100u32 {
            let e = i.to_be_bytes();
            tree.append(&e);
            b.push(&e);
            assert_eq!(b.root(), tree.root(), "size {}", i + 1);
            assert!(b.frontier.len() <= 64);
        }
    }
}
