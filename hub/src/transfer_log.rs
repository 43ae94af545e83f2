//! The hub's side of its signed transfer log (a C2SP transparency log):
//! making entries, reading the stored tree, and checking the stored log
//! before serving.
//!
//! The entries themselves, the checkpoint format, the tlog-tiles paths and
//! entry bundles and the cosignature lines are [`sealdrop_log`]'s; the
//! tables and the atomic append are the [`crate::storage`]'s. Entries hold
//! party ids, key names, hashes, sizes and times, never content or file
//! names (the hub never has them).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use jiff::Timestamp;
use sealdrop_log::entry::{EntryError, HubStatement, LogEntry};
use sealdrop_proto::api::{ConsistencyProof, LogProof};
use sealdrop_proto::directory::SignedDirectory;
use sealdrop_proto::keys::{NoteSigningKey, NoteVerifierKey};
use sealdrop_proto::note::sign_doc;
use tlog_tiles::{Hash, HashReader};

use crate::error::HubError;
use crate::storage::meta::setting;
use crate::storage::{LogStore, MetaError, MetaStore};

/// A statement in the hub's own name, signed with its log key.
pub fn hub_entry(log_key: &NoteSigningKey, statement: &HubStatement) -> LogEntry {
    LogEntry::Hub { statement: sign_doc(statement, log_key) }
}

/// The entry recording that the hub started enforcing `directory` at `time`.
pub fn directory_entry(
    log_key: &NoteSigningKey,
    time: Timestamp,
    directory: &SignedDirectory,
) -> Result<Vec<u8>, EntryError> {
    let statement =
        HubStatement::DirectoryPublished { time, serial: directory.directory.serial, sha256: directory.sha256_hex() };
    hub_entry(log_key, &statement).to_bytes()
}

/// Reads the tree's stored hashes through the log store.
pub struct StoreHashReader<'a>(pub &'a dyn LogStore);

impl HashReader for StoreHashReader<'_> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog_tiles::Error> {
        self.0.log_hashes(indexes).map_err(|e| tlog_tiles::Error::InvalidInput(e.to_string()))
    }
}

/// The proof a client needs to keep a receipt for entry `index`, taken from
/// the newest checkpoint (signed in the transaction that appended the entry,
/// or a later one): the checkpoint, the entry, its inclusion proof and,
/// when the client said which size it verified last (`known_size`, no
/// larger than the checkpoint's), the consistency proof from there.
/// Sent with the answer to the change, it saves the client four requests.
pub fn prove_appended(log: &dyn LogStore, index: u64, known_size: Option<u64>) -> Result<LogProof, MetaError> {
    let latest = log.latest_checkpoint()?.ok_or_else(|| MetaError::LogInconsistent("there is no checkpoint".into()))?;
    let size = latest.size;
    if index >= size {
        return Err(MetaError::LogInconsistent(format!("entry {index} is not under the newest checkpoint ({size})")));
    }
    let entry = log
        .log_entries(index, 1)?
        .pop()
        .ok_or_else(|| MetaError::LogInconsistent(format!("log entry {index} is missing")))?;
    let reader = StoreHashReader(log);
    let inclusion = tlog_tiles::prove_record(size, index, &reader).map_err(|e| tree_error("proving inclusion", e))?;
    let consistency = match known_size {
        Some(old) if old <= size => {
            let hashes = if old == 0 || old == size {
                Vec::new()
            } else {
                tlog_tiles::prove_tree(size, old, &reader).map_err(|e| tree_error("proving consistency", e))?
            };
            Some(ConsistencyProof { old, new: size, hashes: hashes.iter().map(ToString::to_string).collect() })
        }
        _ => None,
    };
    Ok(LogProof {
        checkpoint: latest.note,
        entry: B64.encode(&entry),
        inclusion: inclusion.iter().map(ToString::to_string).collect(),
        consistency,
    })
}

/// Turns a `tlog_tiles` failure while reading the stored tree into a store error.
pub fn tree_error(what: &str, e: tlog_tiles::Error) -> MetaError {
    MetaError::LogInconsistent(format!("{what}: {e}"))
}

fn inconsistent(message: impl Into<String>) -> HubError {
    HubError::LogInconsistent(message.into())
}

/// Checks the stored log before the hub serves anything: every stored hash
/// is recomputed from the entries, and the latest checkpoint must verify
/// with the log key, cover exactly the stored entries and have the
/// recomputed root. A log that fails is never served or appended to: the
/// hub would otherwise present two histories.
///
/// An empty log in a database from before the log existed is started with
/// the directory in force, so every log begins with a directory; an empty
/// log in a database that had started one is refused.
pub fn check_on_open(
    meta: &dyn MetaStore,
    log_key: &NoteSigningKey,
    directory: &SignedDirectory,
    now: Timestamp,
) -> Result<u64, HubError> {
    let (size, root) = meta.recompute_log().map_err(|e| match e {
        MetaError::LogInconsistent(m) => inconsistent(m),
        other => HubError::Meta(other),
    })?;
    let Some(latest) = meta.latest_checkpoint()? else {
        if size != 0 {
            return Err(inconsistent(format!("{size} entries are stored but no checkpoint covers them")));
        }
        if meta.setting(setting::LOG_STARTED)?.is_some() {
            return Err(inconsistent("the log is empty, but this hub had started it: its entries were deleted"));
        }
        let entry = directory_entry(log_key, now, directory)?;
        meta.append_log(&[entry], log_key)?;
        tracing::info!(directory_serial = directory.directory.serial, "started the transfer log");
        return Ok(1);
    };
    let verifier: NoteVerifierKey = log_key.verifier();
    let checkpoint = sealdrop_log::checkpoint::open(&latest.note, &verifier).map_err(|e| {
        inconsistent(format!("the latest checkpoint (size {}) does not verify with the log key: {e}", latest.size))
    })?;
    if checkpoint.size != latest.size {
        return Err(inconsistent(format!(
            "the checkpoint stored as size {} says size {}",
            latest.size, checkpoint.size
        )));
    }
    if checkpoint.size != size {
        return Err(inconsistent(format!(
            "the latest checkpoint covers {} entries but {size} are stored",
            checkpoint.size
        )));
    }
    if checkpoint.root != root {
        return Err(inconsistent(format!(
            "the tree hash recomputed from the {size} stored entries differs from the latest checkpoint's root"
        )));
    }
    Ok(size)
}
