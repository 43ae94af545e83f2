//! [`WholeDropStore`] on SQLite: a small drop's rows, its ciphertext (an
//! inline row at the blob stage, as the tiered blob store reads it), its
//! commit, its log entry and the entry's proof, in one transaction on one
//! trip to the database thread.

use async_trait::async_trait;
use rusqlite::params;
use tlog_tiles::{prove_record, prove_tree};

use super::drops::{insert_open_drop, mark_committed};
use super::log::{SqlHashReader, latest_checkpoint};
use super::{SqliteMetaStore, log, log_index};
use crate::storage::meta::{AppendTurn, CreateOutcome, MetaError};
use crate::storage::tiered::INLINE_MAX;
use crate::storage::whole::{AppendedProof, WholeDrop, WholeDropStore, WholeOutcome};

fn tree_error(what: &str, e: tlog_tiles::Error) -> MetaError {
    MetaError::LogInconsistent(format!("{what}: {e}"))
}

/// The proof of entry `index`, from inside the transaction `conn` that
/// appended it: the checkpoint it signed, the inclusion proof under it and
/// the consistency proof from `known_size` (when it is no larger).
fn prove_in(conn: &rusqlite::Connection, index: u64, known_size: Option<u64>) -> Result<AppendedProof, MetaError> {
    let (size, checkpoint) =
        latest_checkpoint(conn)?.ok_or_else(|| MetaError::LogInconsistent("the append left no checkpoint".into()))?;
    let reader = SqlHashReader(conn);
    let inclusion = prove_record(size, index, &reader).map_err(|e| tree_error("proving inclusion", e))?;
    let consistency = match known_size {
        Some(old) if old == 0 || old == size => Some((old, Vec::new())),
        Some(old) if old < size => {
            Some((old, prove_tree(size, old, &reader).map_err(|e| tree_error("proving consistency", e))?))
        }
        _ => None,
    };
    Ok(AppendedProof { checkpoint, size, inclusion, consistency })
}

#[async_trait]
impl WholeDropStore for SqliteMetaStore {
    fn max_len(&self) -> u64 {
        INLINE_MAX as u64
    }

    async fn put_whole(&self, put: WholeDrop, turn: Box<dyn AppendTurn>) -> Result<WholeOutcome, MetaError> {
        if put.ciphertext.len() > INLINE_MAX {
            return Err(MetaError::Corrupt(format!(
                "a ciphertext of {} bytes cannot be stored whole (at most {INLINE_MAX})",
                put.ciphertext.len()
            )));
        }
        self.blocking(move |db| {
            let WholeDrop { drop, commit, ciphertext, known_size } = put;
            let id = drop.id.as_str();
            db.appending(turn.as_ref(), |tx| {
                let replaced = match insert_open_drop(tx, &drop)? {
                    CreateOutcome::Created { replaced } => replaced,
                    CreateOutcome::AlreadyCommitted(earlier) => return Ok(WholeOutcome::AlreadyCommitted(earlier)),
                };
                if !mark_committed(tx, id, &commit, false)? {
                    return Err(MetaError::Corrupt(format!("drop {id}, stored a moment ago, is not open")));
                }
                // The blob stage directly: nothing reads this drop before
                // the transaction commits, and then it is committed.
                tx.prepare_cached(
                    "INSERT INTO inline_blobs (drop_id, stage, data) VALUES (?1, 'blob', ?2)
                     ON CONFLICT (drop_id) DO UPDATE SET stage = 'blob', data = excluded.data",
                )?
                .execute(params![id, &ciphertext[..]])?;
                let log_index = log::append(tx, std::slice::from_ref(&commit.log_entry), turn.as_ref())?;
                log_index::committed(tx, id, log::to_i64(log_index)?)?;
                let proof = prove_in(tx, log_index, known_size)?;
                Ok(WholeOutcome::Committed { log_index, replaced, proof })
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use bytes::Bytes;
    use sealdrop_proto::api::DropState;
    use sha2::{Digest as _, Sha256};
    use tlog_tiles::{check_record, check_tree, record_hash};
    use tokio::io::AsyncReadExt as _;

    use super::*;
    use crate::storage::meta::{ContentDigest, DropStore, LogStore, NewDrop};
    use crate::storage::meta_conformance::fixtures::{commit_record, key, keyed_drop, new_drop};
    use crate::storage::{BlobStore, FsBlobStore, TieredBlobStore};
    use crate::transfer_log::{appended_proof, prove_appended};

    /// A store on disk, with the tiered blob store that reads its inline rows.
    struct Setup {
        meta: SqliteMetaStore,
        blobs: TieredBlobStore,
        _dir: tempfile::TempDir,
    }

    fn setup() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let meta = SqliteMetaStore::open(&dir.path().join("hub.db")).unwrap();
        let blobs = TieredBlobStore::new(meta.inline_blobs(), Arc::new(FsBlobStore::open(dir.path()).unwrap()));
        Setup { meta, blobs, _dir: dir }
    }

    /// The log key, counting the appends that told it they committed.
    #[derive(Default)]
    struct CountingTurn(Arc<AtomicUsize>);

    impl AppendTurn for CountingTurn {
        fn sign_checkpoint(&self, size: u64, root: &tlog_tiles::Hash) -> String {
            key().sign_checkpoint(size, root)
        }

        fn committed(&self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn whole(drop: NewDrop, ciphertext: &[u8], known_size: Option<u64>) -> WholeDrop {
        let mut commit = commit_record("data-team");
        commit.content =
            ContentDigest { sha256: hex::encode(Sha256::digest(ciphertext)), len: ciphertext.len() as u64 };
        commit.log_entry = format!("{{\"committed\":\"{}\"}}", drop.id).into_bytes();
        WholeDrop { drop, commit, ciphertext: Bytes::copy_from_slice(ciphertext), known_size }
    }

    async fn put(s: &SqliteMetaStore, w: WholeDrop) -> (Result<WholeOutcome, MetaError>, usize) {
        let committed = Arc::new(AtomicUsize::new(0));
        let out = s.put_whole(w, Box::new(CountingTurn(Arc::clone(&committed)))).await;
        (out, committed.load(Ordering::SeqCst))
    }

    async fn blob(s: &Setup, id: &sealdrop_proto::ids::DropId) -> Option<Vec<u8>> {
        let mut read = s.blobs.open_blob(id).await.unwrap()?;
        let mut out = Vec::new();
        read.reader.read_to_end(&mut out).await.unwrap();
        Some(out)
    }

    async fn inline_rows(s: &SqliteMetaStore) -> i64 {
        s.blocking(|db| Ok(db.conn().query_row("SELECT count(*) FROM inline_blobs", [], |r| r.get(0))?)).await.unwrap()
    }

    #[tokio::test]
    async fn a_small_drop_is_stored_committed_and_logged_in_one_durable_transaction_with_its_proof() {
        let s = setup();
        for _ in 0..3 {
            put(&s.meta, whole(new_drop(&["islington"]), b"x", None)).await.0.unwrap();
        }
        let before = s.meta.log_size().await.unwrap();
        let syncs = s.meta.wal_syncs();

        let d = NewDrop { durable_now: false, ..new_drop(&["islington", "hackney"]) };
        let ciphertext: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
        let w = whole(d.clone(), &ciphertext, Some(before - 1));
        let entry = w.commit.log_entry.clone();
        let (out, committed) = put(&s.meta, w).await;
        let WholeOutcome::Committed { log_index, replaced, proof } = out.unwrap() else { panic!("not committed") };
        assert_eq!((log_index, replaced, committed), (before, None, 1), "one append, its turn ended once");
        assert!(s.meta.wal_syncs() > syncs, "answered only once durable");

        let rec = s.meta.drop_record(&d.id).await.unwrap().unwrap();
        assert_eq!(rec.state, DropState::Committed);
        assert_eq!(rec.commit_index, Some(log_index));
        assert_eq!(rec.content.as_ref().map(|c| c.len), Some(ciphertext.len() as u64));
        assert_eq!(rec.upload, None);
        assert_eq!(rec.recipients.len(), 2);
        assert_eq!(blob(&s, &d.id).await.as_deref(), Some(&ciphertext[..]), "the blob store serves the ciphertext");
        assert_eq!(s.meta.log_entries(log_index, 1).await.unwrap(), std::slice::from_ref(&entry));

        // The proof is the one the log would give, and it verifies.
        assert_eq!(proof.size, before + 1);
        let cp = sealdrop_log::checkpoint::open(&proof.checkpoint, &key().verifier()).unwrap();
        assert_eq!(cp.size, proof.size);
        check_record(&proof.inclusion, proof.size, cp.root, log_index, record_hash(&entry)).unwrap();
        let (old, hashes) = proof.consistency.clone().unwrap();
        assert_eq!(old, before - 1);
        let old_root =
            sealdrop_log::checkpoint::open(&s.meta.checkpoint(old).await.unwrap().unwrap(), &key().verifier())
                .unwrap()
                .root;
        check_tree(&hashes, proof.size, cp.root, old, old_root).unwrap();
        assert_eq!(appended_proof(proof, &entry), prove_appended(&s.meta, log_index, Some(before - 1)).await.unwrap());
    }

    #[tokio::test]
    async fn a_whole_drop_replaces_an_open_drop_of_its_key_and_a_committed_one_stops_it() {
        let s = setup();
        let open = keyed_drop("camden", "a");
        s.meta.create_drop(&open).await.unwrap();
        let first = NewDrop { id: sealdrop_proto::ids::DropId::random(), ..open.clone() };
        let (out, _) = put(&s.meta, whole(first.clone(), b"first", None)).await;
        let WholeOutcome::Committed { replaced, .. } = out.unwrap() else { panic!("not committed") };
        assert_eq!(replaced, Some(open.id.clone()));
        assert_eq!(s.meta.drop_record(&open.id).await.unwrap(), None, "the open drop's rows went");

        let size = s.meta.log_size().await.unwrap();
        let rows = inline_rows(&s.meta).await;
        let again = NewDrop { id: sealdrop_proto::ids::DropId::random(), ..open };
        let (out, committed) = put(&s.meta, whole(again.clone(), b"again", None)).await;
        let WholeOutcome::AlreadyCommitted(earlier) = out.unwrap() else { panic!("stored twice under one key") };
        assert_eq!((earlier.id, earlier.state), (first.id, DropState::Committed));
        assert_eq!(committed, 1, "the transaction committed, changing nothing");
        assert_eq!(s.meta.log_size().await.unwrap(), size);
        assert_eq!(s.meta.drop_record(&again.id).await.unwrap(), None);
        assert_eq!(inline_rows(&s.meta).await, rows, "no ciphertext kept for it");
    }

    #[tokio::test]
    async fn a_failed_whole_drop_leaves_nothing_behind() {
        let s = setup();
        let existing = new_drop(&["islington"]);
        s.meta.create_drop(&existing).await.unwrap();
        let size = s.meta.log_size().await.unwrap();

        // Its id is taken: the insert fails inside the transaction.
        let (out, committed) = put(&s.meta, whole(existing.clone(), b"bytes", None)).await;
        assert!(out.is_err(), "{out:?}");
        assert_eq!(committed, 0, "nothing committed");
        let rec = s.meta.drop_record(&existing.id).await.unwrap().unwrap();
        assert_eq!(rec.state, DropState::Open, "the existing drop is untouched");
        assert_eq!(s.meta.log_size().await.unwrap(), size);
        assert_eq!(inline_rows(&s.meta).await, 0);

        // Larger than the inline tier: refused before the database.
        let big = vec![7u8; INLINE_MAX + 1];
        let d = new_drop(&["islington"]);
        let (out, committed) = put(&s.meta, whole(d.clone(), &big, None)).await;
        assert!(out.is_err() && committed == 0);
        assert_eq!(s.meta.drop_record(&d.id).await.unwrap(), None);
        assert_eq!(s.meta.log_size().await.unwrap(), size);
    }
}
