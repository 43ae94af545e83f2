//! Checkpoints (c2sp.org/tlog-checkpoint): signed notes whose text is the
//! origin, the tree size and the base64 root hash, signed by the hub's log
//! key whose name is the origin.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use signed_note::Note;
use tlog_tiles::{Checkpoint, Hash};

use sealdrop_proto::keys::{NoteSigningKey, NoteVerifierKey};

/// Why a checkpoint was refused.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("the checkpoint is not a well-formed signed note")]
    Malformed,
    #[error("the checkpoint's origin is {found:?}, expected {expected:?}")]
    WrongOrigin { expected: String, found: String },
    #[error("the checkpoint is not signed by the log key {0}")]
    NotSigned(String),
    #[error("the checkpoint's signature by {0} does not verify: it was altered or forged")]
    BadSignature(String),
}

/// A checkpoint whose log signature verified.
#[derive(Clone, Debug, PartialEq)]
pub struct SignedCheckpoint {
    /// The log's origin.
    pub origin: String,
    /// Number of entries.
    pub size: u64,
    /// Root hash.
    pub root: Hash,
    /// The signed note exactly as received (with any cosignatures).
    pub note: String,
}

/// The checkpoint body (what the log key signs).
pub fn body(origin: &str, size: u64, root: &Hash) -> String {
    format!("{origin}\n{size}\n{}\n", B64.encode(root.0))
}

/// Signs a checkpoint with the log key (named after the origin).
pub fn sign(key: &NoteSigningKey, size: u64, root: &Hash) -> String {
    let mut note = Note::new(body(key.name(), size, root).as_bytes(), &[]).expect("checkpoint text is well-formed");
    note.add_sigs(&[key]).expect("log key names are validated");
    String::from_utf8(note.to_bytes()).expect("notes are UTF-8")
}

/// Verifies a checkpoint's log signature (other signatures, such as witness
/// cosignatures, are ignored here) and parses it.
pub fn open(note: &str, log_key: &NoteVerifierKey) -> Result<SignedCheckpoint, CheckpointError> {
    let parsed = Note::from_bytes(note.as_bytes()).map_err(|_| CheckpointError::Malformed)?;
    let cp = Checkpoint::from_bytes(parsed.text()).map_err(|_| CheckpointError::Malformed)?;
    if cp.origin() != log_key.name() {
        return Err(CheckpointError::WrongOrigin {
            expected: log_key.name().to_owned(),
            found: cp.origin().to_owned(),
        });
    }
    let list = signed_note::VerifierList::new(vec![Box::new(log_key.clone())]);
    match parsed.verify(&list) {
        Ok(_) => {}
        Err(signed_note::NoteError::UnverifiedNote) => return Err(CheckpointError::NotSigned(log_key.to_string())),
        Err(_) => return Err(CheckpointError::BadSignature(log_key.name().to_owned())),
    }
    Ok(SignedCheckpoint { origin: cp.origin().to_owned(), size: cp.size(), root: *cp.hash(), note: note.to_owned() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_open() {
        let key = NoteSigningKey::generate("hub.example.org").unwrap();
        let root = Hash([7u8; 32]);
        let note = sign(&key, 42, &root);
        assert!(note.starts_with("hub.example.org\n42\nBwcH"));
        let cp = open(&note, &key.verifier()).unwrap();
        assert_eq!((cp.size, cp.root), (42, root));
        let forged = note.replacen("\n42\n", "\n43\n", 1);
        assert!(matches!(open(&forged, &key.verifier()), Err(CheckpointError::BadSignature(_))));
        let other = NoteSigningKey::generate("hub.example.org").unwrap();
        assert!(matches!(open(&note, &other.verifier()), Err(CheckpointError::NotSigned(_))));
        let elsewhere = NoteSigningKey::generate("other.example").unwrap();
        assert!(matches!(open(&note, &elsewhere.verifier()), Err(CheckpointError::WrongOrigin { .. })));
    }
}
