//! Offline proofs of inclusion (c2sp.org/tlog-proof v1): an entry's index,
//! its inclusion proof and the checkpoint (with any cosignatures) it is
//! included in, as one text file (`.tlog-proof`) anyone holding the entry and
//! the log's key can check without the hub.
//!
//! ```text
//! c2sp.org/tlog-proof@v1
//! extra <base64 of the extra text>      (optional)
//! index <n>
//! <base64 hash>                         (zero or more)
//!
//! <checkpoint note, verbatim>
//! ```
//!
//! The spec's `extra` line carries opaque base64 data the verifier must not
//! trust; here it is text (encoded as UTF-8, then base64), e.g. a label.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use tlog_tiles::{Hash, HashReader};

use sealdrop_proto::keys::NoteVerifierKey;

use crate::checkpoint::{self, SignedCheckpoint};
use crate::cosign::{Cosigned, verify_cosignatures};
use crate::tree::{ProofError, leaf_hash, verify_inclusion};

/// The first line of every proof.
pub const PROOF_HEADER: &str = "c2sp.org/tlog-proof@v1";

/// The most hashes an inclusion proof in a tree of at most 2^64 entries has.
const MAX_HASHES: usize = 64;

/// An offline proof that an entry is in a checkpointed tree.
#[derive(Clone, Debug, PartialEq)]
pub struct OfflineProof {
    /// The entry's zero-based index.
    pub index: u64,
    /// The inclusion proof, from the leaf's sibling up to the root's child.
    pub hashes: Vec<Hash>,
    /// Unauthenticated extra text, if any.
    pub extra: Option<String>,
    /// The checkpoint note, verbatim with its signatures.
    pub checkpoint: String,
}

fn malformed(why: &str) -> ProofError {
    ProofError::Malformed(why.to_owned())
}

impl OfflineProof {
    /// Builds the proof for entry `index` against `checkpoint` (a note whose
    /// tree size the stored hashes in `reader` cover). The checkpoint is not
    /// verified here; a log building proofs of its own checkpoints need not.
    pub fn build<R: HashReader>(reader: &R, index: u64, checkpoint: &str) -> Result<Self, ProofError> {
        let text = crate::notes::split(checkpoint).ok_or_else(|| malformed("the checkpoint is not a signed note"))?;
        let cp = tlog_tiles::Checkpoint::from_bytes(text.text.as_bytes())
            .map_err(|_| malformed("the note is not a checkpoint"))?;
        if index >= cp.size() {
            return Err(ProofError::IndexOutOfRange { index, size: cp.size() });
        }
        let hashes =
            tlog_tiles::prove_record(cp.size(), index, reader).map_err(|e| ProofError::Storage(e.to_string()))?;
        Ok(Self { index, hashes, extra: None, checkpoint: checkpoint.to_owned() })
    }

    /// The proof as c2sp.org/tlog-proof text.
    pub fn to_text(&self) -> String {
        let mut out = String::with_capacity(64 + self.hashes.len() * 45 + self.checkpoint.len());
        out.push_str(PROOF_HEADER);
        out.push('\n');
        if let Some(extra) = &self.extra {
            out.push_str("extra ");
            out.push_str(&B64.encode(extra.as_bytes()));
            out.push('\n');
        }
        out.push_str(&format!("index {}\n", self.index));
        for h in &self.hashes {
            out.push_str(&B64.encode(h.0));
            out.push('\n');
        }
        out.push('\n');
        out.push_str(&self.checkpoint);
        out
    }

    /// Parses c2sp.org/tlog-proof text.
    pub fn from_text(text: &str) -> Result<Self, ProofError> {
        let mut rest = text
            .strip_prefix(PROOF_HEADER)
            .and_then(|r| r.strip_prefix('\n'))
            .ok_or_else(|| malformed("the first line must be `c2sp.org/tlog-proof@v1`"))?;
        let mut next_line = |what: &str| -> Result<&str, ProofError> {
            let (line, tail) = rest.split_once('\n').ok_or_else(|| malformed(&format!("it ends before {what}")))?;
            rest = tail;
            Ok(line)
        };
        let mut line = next_line("the index line")?;
        let mut extra = None;
        if let Some(b64) = line.strip_prefix("extra ") {
            let raw = B64.decode(b64).map_err(|_| malformed("the extra line is not base64"))?;
            extra = Some(String::from_utf8(raw).map_err(|_| malformed("the extra data is not UTF-8 text"))?);
            line = next_line("the index line")?;
        }
        let digits = line.strip_prefix("index ").ok_or_else(|| malformed("expected an `index <n>` line"))?;
        if digits.is_empty()
            || !digits.bytes().all(|b| b.is_ascii_digit())
            || (digits.len() > 1 && digits.starts_with('0'))
        {
            return Err(malformed("the index must be a decimal number without leading zeros"));
        }
        let index: u64 = digits.parse().map_err(|_| malformed("the index is too large"))?;
        let mut hashes = Vec::new();
        loop {
            let line = next_line("the blank line before the checkpoint")?;
            if line.is_empty() {
                break;
            }
            if hashes.len() == MAX_HASHES {
                return Err(malformed("the inclusion proof has more than 64 hashes"));
            }
            let raw = B64.decode(line).map_err(|_| malformed("a proof line is not base64"))?;
            let hash: [u8; 32] = raw.try_into().map_err(|_| malformed("a proof line is not a 32-byte hash"))?;
            hashes.push(Hash(hash));
        }
        if rest.is_empty() {
            return Err(malformed("the checkpoint is missing"));
        }
        Ok(Self { index, hashes, extra, checkpoint: rest.to_owned() })
    }

    /// Verifies the checkpoint's log signature and that `entry` is entry
    /// [`index`](Self::index) of its tree. Cosignatures are not looked at:
    /// see [`verify_witnessed`](Self::verify_witnessed).
    pub fn verify(&self, entry: &[u8], log_key: &NoteVerifierKey) -> Result<SignedCheckpoint, ProofError> {
        let cp = checkpoint::open(&self.checkpoint, log_key)?;
        verify_inclusion(&self.hashes, self.index, cp.size, leaf_hash(entry), cp.root)?;
        Ok(cp)
    }

    /// Like [`verify`](Self::verify), and also requires cosignatures by at
    /// least `required` of the `witnesses` (cosignature keys); a forged
    /// cosignature by a listed witness is an error.
    pub fn verify_witnessed(
        &self,
        entry: &[u8],
        log_key: &NoteVerifierKey,
        witnesses: &[NoteVerifierKey],
        required: usize,
    ) -> Result<(SignedCheckpoint, Vec<Cosigned>), ProofError> {
        let cp = self.verify(entry, log_key)?;
        let cosigned = verify_cosignatures(&self.checkpoint, witnesses)?;
        if cosigned.len() < required {
            return Err(ProofError::TooFewWitnesses { found: cosigned.len(), required });
        }
        Ok((cp, cosigned))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cosign::{add_cosignatures, cosign};
    use crate::tree::MemoryTree;
    use sealdrop_proto::keys::NoteSigningKey;

    fn log(n: u32) -> (NoteSigningKey, Vec<Vec<u8>>, MemoryTree, String) {
        let key = NoteSigningKey::generate("hub.example").unwrap();
        let entries: Vec<Vec<u8>> = (0..n).map(|i| format!("entry {i}").into_bytes()).collect();
        let tree = MemoryTree::from_entries(&entries);
        let cp = checkpoint::sign(&key, tree.size(), &tree.root());
        (key, entries, tree, cp)
    }

    #[test]
    fn round_trip_and_verify() {
        let (key, entries, tree, cp) = log(13);
        for index in [0u64, 6, 12] {
            let mut p = OfflineProof::build(&tree, index, &cp).unwrap();
            assert_eq!(p.hashes, tree.inclusion_proof(index, 13).unwrap());
            let text = p.to_text();
            assert!(text.starts_with(&format!("c2sp.org/tlog-proof@v1\nindex {index}\n")));
            assert!(text.ends_with(&format!("\n\n{cp}")));
            assert_eq!(OfflineProof::from_text(&text).unwrap(), p);
            let got = p.verify(&entries[index as usize], &key.verifier()).unwrap();
            assert_eq!((got.size, got.root), (13, tree.root()));
            p.extra = Some("drop d-abc\nline two".into());
            let text = p.to_text();
            assert!(text.contains("\nextra ZHJvcCBkLWFiYwpsaW5lIHR3bw==\nindex "));
            assert_eq!(OfflineProof::from_text(&text).unwrap(), p);
        }
        // A one-entry tree has an empty proof.
        let (key, entries, tree, cp) = log(1);
        let p = OfflineProof::build(&tree, 0, &cp).unwrap();
        assert!(p.hashes.is_empty());
        assert_eq!(p.to_text(), format!("c2sp.org/tlog-proof@v1\nindex 0\n\n{cp}"));
        OfflineProof::from_text(&p.to_text()).unwrap().verify(&entries[0], &key.verifier()).unwrap();
    }

    #[test]
    fn tampering_is_caught() {
        let (key, entries, tree, cp) = log(20);
        let p = OfflineProof::build(&tree, 5, &cp).unwrap();
        let vk = key.verifier();
        assert!(matches!(p.verify(b"entry 55", &vk), Err(ProofError::InvalidProof)), "tampered entry");
        let mut wrong = p.clone();
        wrong.index = 4;
        assert!(matches!(wrong.verify(&entries[5], &vk), Err(ProofError::InvalidProof)), "wrong index");
        assert!(wrong.verify(&entries[4], &vk).is_err(), "proof for 5 is not a proof for 4");
        wrong.index = 20;
        assert!(matches!(wrong.verify(&entries[5], &vk), Err(ProofError::IndexOutOfRange { .. })));
        // Another checkpoint of the same log (a different size): the path no longer leads to its root.
        let mut swapped = p.clone();
        swapped.checkpoint = checkpoint::sign(&key, 19, &tree.root_at(19).unwrap());
        assert!(matches!(swapped.verify(&entries[5], &vk), Err(ProofError::InvalidProof)), "swapped checkpoint");
        // A checkpoint with an edited root loses the log's signature.
        let mut edited = p.clone();
        edited.checkpoint = cp.replacen("\n20\n", "\n21\n", 1);
        assert!(matches!(edited.verify(&entries[5], &vk), Err(ProofError::Checkpoint(_))));
        // Another log's key.
        let other = NoteSigningKey::generate("hub.example").unwrap();
        assert!(matches!(p.verify(&entries[5], &other.verifier()), Err(ProofError::Checkpoint(_))));
        // A flipped hash.
        let mut bad = p.clone();
        bad.hashes[1].0[0] ^= 1;
        assert!(matches!(bad.verify(&entries[5], &vk), Err(ProofError::InvalidProof)));
    }

    #[test]
    fn witnessed() {
        let (key, entries, tree, cp) = log(9);
        let w = NoteSigningKey::generate("witness.camden").unwrap();
        let cp = add_cosignatures(&cp, &[cosign(&cp, &w, 99)]).unwrap();
        let p = OfflineProof::build(&tree, 3, &cp).unwrap();
        let p = OfflineProof::from_text(&p.to_text()).unwrap();
        let (_, cos) = p.verify_witnessed(&entries[3], &key.verifier(), &[w.cosigner_verifier()], 1).unwrap();
        assert_eq!(cos[0].time, 99);
        assert!(matches!(
            p.verify_witnessed(&entries[3], &key.verifier(), &[w.cosigner_verifier()], 2),
            Err(ProofError::TooFewWitnesses { found: 1, required: 2 })
        ));
    }

    #[test]
    fn malformed_text() {
        let (_, _, tree, cp) = log(4);
        let good = OfflineProof::build(&tree, 1, &cp).unwrap().to_text();
        let h = B64.encode([0u8; 32]);
        for bad in [
            String::new(),
            "c2sp.org/tlog-proof@v2\nindex 1\n\ncp\n".into(),
            "c2sp.org/tlog-proof@v1\nindex 01\n\ncp\n".into(),
            "c2sp.org/tlog-proof@v1\nindex -1\n\ncp\n".into(),
            "c2sp.org/tlog-proof@v1\nindex 18446744073709551616\n\ncp\n".into(),
            "c2sp.org/tlog-proof@v1\nindex 1\nnot base64!\n\ncp\n".into(),
            format!("c2sp.org/tlog-proof@v1\nindex 1\n{}\n\ncp\n", B64.encode([0u8; 31])),
            format!("c2sp.org/tlog-proof@v1\nindex 1\n{h}\n"),
            format!("c2sp.org/tlog-proof@v1\nindex 1\n{h}\n\n"),
            format!("c2sp.org/tlog-proof@v1\nextra !!\nindex 1\n{h}\n\ncp\n"),
            format!("c2sp.org/tlog-proof@v1\nindex 1\n{}\ncp\n", format!("{h}\n").repeat(65)),
            good.replacen("index 1", "extra AAAA\nextra AAAA\nindex 1", 1),
        ] {
            assert!(OfflineProof::from_text(&bad).is_err(), "{bad:?}");
        }
    }
}
