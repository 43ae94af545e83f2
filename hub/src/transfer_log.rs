//! The hub's side of its signed transfer log (a C2SP transparency log):
//! making entries, reading the stored tree (checkpoints, tiles, entries,
//! proofs) through the async [`LogStore`], and checking the stored log
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
use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};

use sealdrop_log::cosign::add_cosignatures;
use sealdrop_log::tiles::{TileError, TilePath, encode_entry_bundle, hash_tile};
use tlog_tiles::{Hash, HashReader};

use crate::error::HubError;
use crate::storage::meta::setting;
use crate::storage::whole::AppendedProof;
use crate::storage::{CosignatureStore, LogStore, MetaError, SettingsStore};

/// The most cosignatures served with a checkpoint (signed-note readers accept 100 signatures).
const MAX_SERVED_COSIGNATURES: usize = 99;

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

/// The stored hashes a `tlog_tiles` computation reads, fetched ahead from
/// the async [`LogStore`] (`tlog_tiles` reads through a synchronous
/// [`HashReader`]): a hash not fetched yet reads as zeros and is noted as
/// missing, so a pass that missed any is run again once they are fetched.
#[derive(Default)]
struct FetchedHashes {
    known: HashMap<u64, Hash>,
    missing: RefCell<BTreeSet<u64>>,
}

impl HashReader for FetchedHashes {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog_tiles::Error> {
        let mut missing = self.missing.borrow_mut();
        Ok(indexes
            .iter()
            .map(|i| {
                self.known.get(i).copied().unwrap_or_else(|| {
                    missing.insert(*i);
                    Hash([0; 32])
                })
            })
            .collect())
    }
}

/// Runs `compute` over the stored tree. Each of `tlog_tiles`' functions
/// reads all its hashes in one call whose indexes depend only on the sizes
/// it is given, so the first pass learns them all, one trip to the store
/// fetches them, and the second pass computes from stored hashes only.
async fn over_stored_tree<T>(
    log: &dyn LogStore,
    compute: impl Fn(&FetchedHashes) -> Result<T, MetaError>,
) -> Result<T, MetaError> {
    let mut hashes = FetchedHashes::default();
    loop {
        let out = compute(&hashes);
        let missing: Vec<u64> = std::mem::take(hashes.missing.get_mut()).into_iter().collect();
        if missing.is_empty() {
            return out;
        }
        drop(out);
        // Every pass fetches hashes not known before, so this ends.
        let fetched = log.log_hashes(&missing).await?;
        hashes.known.extend(missing.into_iter().zip(fetched));
    }
}

/// The latest checkpoint with every witness cosignature stored for it (at
/// most 99, listed by witness name, so the choice is stable): a signed
/// note carries at most 100 signatures, the log's own and 99 others.
pub async fn cosigned_checkpoint(log: &dyn LogStore, cosignatures: &dyn CosignatureStore) -> Result<String, MetaError> {
    let latest =
        log.latest_checkpoint().await?.ok_or_else(|| MetaError::LogInconsistent("there is no checkpoint".into()))?;
    let mut lines = cosignatures.cosignatures(latest.size).await?;
    lines.truncate(MAX_SERVED_COSIGNATURES);
    add_cosignatures(&latest.note, &lines).map_err(|e| {
        MetaError::LogInconsistent(format!("the checkpoint of size {} with its cosignatures: {e}", latest.size))
    })
}

/// A tile's bytes (c2sp.org/tlog-tiles), or `None` if the log does not
/// (yet) reach it.
pub async fn read_tile(log: &dyn LogStore, tile: TilePath) -> Result<Option<Vec<u8>>, MetaError> {
    if !tile.in_tree(log.log_size().await?) {
        return Ok(None);
    }
    match tile {
        TilePath::Entries { .. } => {
            let Some((start, width)) = tile.span() else { return Ok(None) };
            let entries = log.log_entries(start, width).await?;
            if entries.len() as u64 != width {
                return Err(MetaError::LogInconsistent(format!("entries {start}..{} are missing", start + width)));
            }
            encode_entry_bundle(&entries).map(Some).map_err(|e| match e {
                TileError::EntryTooLarge(len) => MetaError::LogEntryTooLarge(len),
                other => MetaError::LogInconsistent(format!("bundling entries {start}..: {other}")),
            })
        }
        TilePath::Hashes { level, index, width } => {
            over_stored_tree(log, |hashes| {
                hash_tile(level, index, width, hashes)
                    .map(Some)
                    .map_err(|e| MetaError::LogInconsistent(format!("reading a tile: {e}")))
            })
            .await
        }
    }
}

/// Entry `index`'s bytes, or `None` if the log has no such entry yet.
pub async fn read_entry(log: &dyn LogStore, index: u64) -> Result<Option<Vec<u8>>, MetaError> {
    if index >= log.log_size().await? {
        return Ok(None);
    }
    Ok(log.log_entries(index, 1).await?.pop())
}

/// The RFC 6962 audit path of entry `index` in the tree of `size` entries
/// (both within the stored log).
pub async fn prove_inclusion(log: &dyn LogStore, index: u64, size: u64) -> Result<Vec<Hash>, MetaError> {
    over_stored_tree(log, |hashes| {
        tlog_tiles::prove_record(size, index, hashes).map_err(|e| tree_error("proving inclusion", e))
    })
    .await
}

/// The RFC 6962 proof that the tree of `new` entries extends the tree of
/// `old` (both within the stored log; empty when there is nothing to prove).
pub async fn prove_consistency(log: &dyn LogStore, old: u64, new: u64) -> Result<Vec<Hash>, MetaError> {
    if old == 0 || old == new {
        return Ok(Vec::new());
    }
    over_stored_tree(log, |hashes| {
        tlog_tiles::prove_tree(new, old, hashes).map_err(|e| tree_error("proving consistency", e))
    })
    .await
}

/// The proof a client needs to keep a receipt for entry `index`, taken from
/// the newest checkpoint (signed in the transaction that appended the entry,
/// or a later one): the checkpoint, the entry, its inclusion proof and,
/// when the client said which size it verified last (`known_size`, no
/// larger than the checkpoint's), the consistency proof from there.
/// Sent with the answer to the change, it saves the client four requests.
/// The entry and the hashes of both proofs are read together, after the
/// checkpoint.
pub async fn prove_appended(log: &dyn LogStore, index: u64, known_size: Option<u64>) -> Result<LogProof, MetaError> {
    let latest =
        log.latest_checkpoint().await?.ok_or_else(|| MetaError::LogInconsistent("there is no checkpoint".into()))?;
    let size = latest.size;
    if index >= size {
        return Err(MetaError::LogInconsistent(format!("entry {index} is not under the newest checkpoint ({size})")));
    }
    let entry = async {
        log.log_entries(index, 1)
            .await?
            .pop()
            .ok_or_else(|| MetaError::LogInconsistent(format!("log entry {index} is missing")))
    };
    let proofs = over_stored_tree(log, |hashes| {
        let inclusion =
            tlog_tiles::prove_record(size, index, hashes).map_err(|e| tree_error("proving inclusion", e))?;
        let consistency = match known_size {
            Some(old) if old <= size => {
                let hashes = if old == 0 || old == size {
                    Vec::new()
                } else {
                    tlog_tiles::prove_tree(size, old, hashes).map_err(|e| tree_error("proving consistency", e))?
                };
                Some(ConsistencyProof { old, new: size, hashes: hashes.iter().map(ToString::to_string).collect() })
            }
            _ => None,
        };
        Ok((inclusion, consistency))
    });
    let (entry, (inclusion, consistency)) = tokio::try_join!(entry, proofs)?;
    Ok(LogProof {
        checkpoint: latest.note,
        entry: B64.encode(&entry),
        inclusion: inclusion.iter().map(ToString::to_string).collect(),
        consistency,
    })
}

/// The answer's proof ([`prove_appended`]'s) from one a store read in the
/// transaction that appended `entry` ([`crate::storage::whole::AppendedProof`]).
pub fn appended_proof(appended: AppendedProof, entry: &[u8]) -> LogProof {
    let hex = |hashes: Vec<Hash>| hashes.iter().map(ToString::to_string).collect();
    LogProof {
        checkpoint: appended.checkpoint,
        entry: B64.encode(entry),
        inclusion: hex(appended.inclusion),
        consistency: appended.consistency.map(|(old, hashes)| ConsistencyProof {
            old,
            new: appended.size,
            hashes: hex(hashes),
        }),
    }
}

/// Turns a `tlog_tiles` failure while reading the stored tree into a store error.
fn tree_error(what: &str, e: tlog_tiles::Error) -> MetaError {
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
pub async fn check_on_open(
    log: &dyn LogStore,
    settings: &dyn SettingsStore,
    log_key: &NoteSigningKey,
    directory: &SignedDirectory,
    now: Timestamp,
) -> Result<u64, HubError> {
    let (size, root) = log.recompute_log().await.map_err(|e| match e {
        MetaError::LogInconsistent(m) => inconsistent(m),
        other => HubError::Meta(other),
    })?;
    let Some(latest) = log.latest_checkpoint().await? else {
        if size != 0 {
            return Err(inconsistent(format!("{size} entries are stored but no checkpoint covers them")));
        }
        if settings.setting(setting::LOG_STARTED).await?.is_some() {
            return Err(inconsistent("the log is empty, but this hub had started it: its entries were deleted"));
        }
        let entry = directory_entry(log_key, now, directory)?;
        log.append_log(&[entry], Box::new(log_key.clone())).await?;
        tracing::info!(directory_serial = directory.directory.serial, "started the transfer log");
        return Ok(1);
    };
    let verifier: NoteVerifierKey = log_key.verifier();
    let checkpoint = sealdrop_log::checkpoint::open(&latest.note, &verifier).map_err(|e| {
        inconsistent(format!(
            "the latest checkpoint (size {}) does not verify with the log key: {e} (if this is another instance of \
             the hub, give it a copy of the log key the hub was initialised with)",
            latest.size
        ))
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;
    use sealdrop_log::tree::MemoryTree;

    use super::*;
    use crate::storage::SqliteMetaStore;
    use crate::storage::meta::{AppendTurn, StoredCheckpoint};

    /// The SQLite log, counting the trips that read stored hashes.
    struct CountingLog {
        inner: SqliteMetaStore,
        hash_reads: AtomicUsize,
    }

    #[async_trait]
    impl LogStore for CountingLog {
        async fn append_log(&self, entries: &[Vec<u8>], turn: Box<dyn AppendTurn>) -> Result<u64, MetaError> {
            self.inner.append_log(entries, turn).await
        }
        async fn log_size(&self) -> Result<u64, MetaError> {
            self.inner.log_size().await
        }
        async fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, MetaError> {
            self.inner.latest_checkpoint().await
        }
        async fn checkpoint(&self, size: u64) -> Result<Option<String>, MetaError> {
            self.inner.checkpoint(size).await
        }
        async fn log_entries(&self, start: u64, count: u64) -> Result<Vec<Vec<u8>>, MetaError> {
            self.inner.log_entries(start, count).await
        }
        async fn log_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, MetaError> {
            self.hash_reads.fetch_add(1, Ordering::SeqCst);
            self.inner.log_hashes(indexes).await
        }
        async fn recompute_log(&self) -> Result<(u64, Hash), MetaError> {
            self.inner.recompute_log().await
        }
    }

    impl CountingLog {
        /// The trips made since the last call.
        fn trips(&self) -> usize {
            self.hash_reads.swap(0, Ordering::SeqCst)
        }
    }

    fn hex(hashes: &[Hash]) -> Vec<String> {
        hashes.iter().map(ToString::to_string).collect()
    }

    #[tokio::test]
    async fn the_log_reads_fetch_each_computations_hashes_in_one_trip_and_match_the_reference_tree() {
        let key = NoteSigningKey::generate("hub.test").unwrap();
        let entries: Vec<Vec<u8>> = (0..300).map(|i| format!("{{\"n\":{i}}}").into_bytes()).collect();
        let log = CountingLog { inner: SqliteMetaStore::open_in_memory().unwrap(), hash_reads: AtomicUsize::new(0) };
        for chunk in entries.chunks(64) {
            log.append_log(chunk, Box::new(key.clone())).await.unwrap();
        }
        let tree = MemoryTree::from_entries(&entries);
        log.trips();

        let proof = prove_appended(&log, 5, Some(100)).await.unwrap();
        assert_eq!(log.trips(), 1);
        assert_eq!(proof.inclusion, hex(&tlog_tiles::prove_record(300, 5, &tree).unwrap()));
        let consistency = proof.consistency.unwrap();
        assert_eq!((consistency.old, consistency.new), (100, 300));
        assert_eq!(consistency.hashes, hex(&tlog_tiles::prove_tree(300, 100, &tree).unwrap()));
        assert_eq!(B64.decode(&proof.entry).unwrap(), entries[5]);

        assert_eq!(prove_inclusion(&log, 299, 300).await.unwrap(), tlog_tiles::prove_record(300, 299, &tree).unwrap());
        assert_eq!(prove_consistency(&log, 100, 257).await.unwrap(), tlog_tiles::prove_tree(257, 100, &tree).unwrap());
        assert_eq!(log.trips(), 2);
        assert!(prove_consistency(&log, 0, 300).await.unwrap().is_empty());
        assert_eq!(log.trips(), 0, "nothing to prove, nothing read");

        for path in ["0/000", "0/001.p/44", "1/000.p/1"] {
            let tile = TilePath::parse(path).unwrap();
            let TilePath::Hashes { level, index, width } = tile else { panic!("{path} is a hash tile") };
            let want = hash_tile(level, index, width, &tree).unwrap();
            assert_eq!(read_tile(&log, tile).await.unwrap(), Some(want), "{path}");
            assert_eq!(log.trips(), 1, "{path}");
        }
        assert_eq!(read_tile(&log, TilePath::parse("0/002").unwrap()).await.unwrap(), None, "beyond the log");
        assert_eq!(read_entry(&log, 299).await.unwrap(), Some(entries[299].clone()));
        assert_eq!(read_entry(&log, 300).await.unwrap(), None);
    }
}
