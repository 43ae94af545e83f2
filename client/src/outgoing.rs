//! Sends that were cut off, kept to be continued without encrypting again:
//! under `<state>/outgoing/`, each drop's ciphertext spool (`<id>.age`, from
//! the byte the hub might not have had on) and its record (`<id>.json`, a
//! [`Pending`]). The upload that writes them is in [`crate::upload`].

use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use sealdrop_proto::drop::EncryptedTo;
use sealdrop_proto::ids::{DropId, PartyId};

use crate::error::{Error, ErrorCode, Result};

/// Where the spool and its record for drop `id` live.
pub fn spool_paths(state_dir: &Path, id: &DropId) -> (PathBuf, PathBuf) {
    let dir = outgoing_dir(state_dir);
    (dir.join(format!("{id}.age")), dir.join(format!("{id}.json")))
}

/// The folder of the spools and records of sends that were cut off.
pub fn outgoing_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("outgoing")
}

/// What a send that was cut off needs to finish later without encrypting
/// again: kept beside its spool in `<state>/outgoing/<drop id>.json`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Pending {
    /// The drop on the hub (still open).
    pub drop: DropId,
    /// What was asked for: the same request on the same files finds this record.
    pub fingerprint: String,
    /// Recipients, as resolved.
    pub recipients: Vec<PartyId>,
    /// The agreement.
    pub agreement: String,
    /// The keys the spool is encrypted to; if the directory lists other keys
    /// now, the spool is not used (it could be readable by a revoked key).
    pub encrypted_to: Vec<EncryptedTo>,
    /// When the hub created the drop.
    pub created: Timestamp,
    /// When it expires.
    pub expires: Timestamp,
    /// Digest of the whole ciphertext; `None` while the spool is being
    /// written (a record without one is from a send that was stopped and
    /// cannot be continued).
    pub digest: Option<SpoolDigest>,
    /// The spool holds the ciphertext from this byte on: what the hub
    /// might not have had when the upload broke (0 in records written
    /// before the spool was kept only on failure).
    #[serde(default)]
    pub base: u64,
}

/// SHA-256 and length of a finished spool.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SpoolDigest {
    /// Hex SHA-256.
    pub sha256: String,
    /// Bytes.
    pub len: u64,
}

impl Pending {
    /// Saves the record (atomically, 0600).
    pub fn save(&self, state_dir: &Path) -> Result<()> {
        let (_, record) = spool_paths(state_dir, &self.drop);
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| Error::new(ErrorCode::Internal, e.to_string()))?;
        crate::fsutil::write_atomic(&record, &bytes, true)
    }

    /// The finished, unchanged spool of the pending send that matches
    /// `fingerprint`, if there is one. Records that cannot be continued
    /// (stopped while encrypting, spool missing or of another length) are
    /// removed with their spools on the way.
    pub fn find(state_dir: &Path, fingerprint: &str) -> Option<Pending> {
        let entries = std::fs::read_dir(outgoing_dir(state_dir)).ok()?;
        let mut found = None;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) == Some("age") && !path.with_extension("json").exists() {
                // A spool whose send stopped before its record was saved.
                let _ = std::fs::remove_file(&path);
                continue;
            }
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let Some(p) = std::fs::read(&path).ok().and_then(|b| serde_json::from_slice::<Pending>(&b).ok()) else {
                continue;
            };
            let (spool, _) = spool_paths(state_dir, &p.drop);
            let spool_len = std::fs::metadata(&spool).map(|m| m.len()).ok();
            let usable = p.digest.as_ref().is_some_and(|d| spool_len.map(|n| p.base + n) == Some(d.len));
            if !usable {
                discard(state_dir, &p.drop);
            } else if p.fingerprint == fingerprint && found.is_none() {
                found = Some(p);
            }
        }
        found
    }
}

/// Whether drop `id` has a finished local copy that the same send run again
/// continues from (what [`Pending::find`] would return for it).
pub fn continuable(state_dir: &Path, id: &DropId) -> bool {
    let (spool, record) = spool_paths(state_dir, id);
    let Some(p) = std::fs::read(record).ok().and_then(|b| serde_json::from_slice::<Pending>(&b).ok()) else {
        return false;
    };
    let spool_len = std::fs::metadata(spool).map(|m| m.len()).ok();
    p.digest.is_some_and(|d| spool_len.map(|n| p.base + n) == Some(d.len))
}

/// Removes a drop's spool and record (what cannot be removed is left for
/// the next send to try again).
pub fn discard(state_dir: &Path, id: &DropId) {
    let (spool, record) = spool_paths(state_dir, id);
    let _ = std::fs::remove_file(spool);
    let _ = std::fs::remove_file(record);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_finds_its_spool_only_when_base_and_spool_make_up_the_whole_ciphertext() {
        let state = tempfile::tempdir().unwrap();
        let id = DropId::random();
        let (spool, _) = spool_paths(state.path(), &id);
        std::fs::create_dir_all(spool.parent().unwrap()).unwrap();
        let record = |base: u64, len: u64| Pending {
            drop: id.clone(),
            fingerprint: "f".into(),
            recipients: vec![],
            agreement: "a".into(),
            encrypted_to: vec![],
            created: Timestamp::UNIX_EPOCH,
            expires: Timestamp::UNIX_EPOCH,
            digest: Some(SpoolDigest { sha256: "00".repeat(32), len }),
            base,
        };
        std::fs::write(&spool, vec![1u8; 100]).unwrap();
        record(50, 150).save(state.path()).unwrap();
        assert_eq!(Pending::find(state.path(), "f").map(|p| p.base), Some(50));
        record(0, 150).save(state.path()).unwrap();
        assert!(Pending::find(state.path(), "f").is_none(), "a spool shorter than its record says is not used");
        assert!(!spool.exists(), "and it is removed");
        // A spool whose record was never saved is removed too.
        std::fs::write(&spool, b"orphan").unwrap();
        let (_, json) = spool_paths(state.path(), &id);
        let _ = std::fs::remove_file(json);
        assert!(Pending::find(state.path(), "f").is_none());
        assert!(!spool.exists());
    }
}
