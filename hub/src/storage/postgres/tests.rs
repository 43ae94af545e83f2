//! What only the PostgreSQL store promises: its schema versions, and one
//! log shared by several instances (several pools on one database).
//! Behaviour every store shares is in `storage/meta_conformance.rs`.

use std::collections::BTreeSet;

use super::PgMetaStore;
use crate::storage::meta::{LogStore, MetaError};
use crate::storage::meta_conformance::{assert_checkpointed, key, postgres_url};

async fn schema_version(store: &PgMetaStore) -> i32 {
    store.client().await.unwrap().query_one("SELECT version FROM schema_version", &[]).await.unwrap().get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_opening_a_database_together_migrate_it_once() {
    let url = postgres_url().await;
    let (a, b) = tokio::join!(PgMetaStore::connect(&url), PgMetaStore::connect(&url));
    let (a, b) = (a.unwrap(), b.unwrap());
    let latest = i32::try_from(super::schema::latest_version()).unwrap();
    assert_eq!((schema_version(&a).await, schema_version(&b).await), (latest, latest));
    let rows: i64 =
        a.client().await.unwrap().query_one("SELECT count(*) FROM schema_version", &[]).await.unwrap().get(0);
    assert_eq!(rows, 1);
    a.append_log(&[b"one".to_vec()], Box::new(key().clone())).await.unwrap();
    drop((a, b));
    // Opening again keeps the data and runs no migration twice.
    let again = PgMetaStore::connect(&url).await.unwrap();
    assert_eq!(schema_version(&again).await, latest);
    assert_eq!(assert_checkpointed(&again).await, 1);

    // A database from a newer hub is refused, not downgraded.
    again.client().await.unwrap().execute("UPDATE schema_version SET version = version + 1", &[]).await.unwrap();
    let err = PgMetaStore::connect(&url).await.unwrap_err();
    assert!(matches!(err, MetaError::PostgresConfig(_)), "{err}");
}

/// Two instances (two pools on one database), each with several tasks
/// appending batches at once, with no sequencer in front: the log head's
/// row lock alone makes one dense log, each batch contiguous, each append
/// with its own checkpoint extending the one before.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_from_two_instances_make_one_log() {
    const TASKS_PER_INSTANCE: usize = 4;
    const APPENDS_PER_TASK: usize = 15;
    let url = postgres_url().await;
    let instances = [PgMetaStore::connect(&url).await.unwrap(), PgMetaStore::connect(&url).await.unwrap()];
    let mut tasks = Vec::new();
    for (instance, store) in instances.iter().enumerate() {
        for task in 0..TASKS_PER_INSTANCE {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let mut appended = Vec::new();
                for n in 0..APPENDS_PER_TASK {
                    let batch: Vec<Vec<u8>> =
                        (0..1 + n % 3).map(|i| format!("{instance}/{task}/{n}/{i}").into_bytes()).collect();
                    let first = store.append_log(&batch, Box::new(key().clone())).await.unwrap();
                    appended.push((first, batch));
                }
                appended
            }));
        }
    }
    let mut appended = Vec::new();
    for task in tasks {
        appended.extend(task.await.unwrap());
    }
    let store = &instances[0];
    let log = store.log_entries(0, u64::MAX >> 2).await.unwrap();
    let total: usize = appended.iter().map(|(_, batch)| batch.len()).sum();
    assert_eq!(log.len(), total, "every entry once");
    let mut firsts = BTreeSet::new();
    for (first, batch) in &appended {
        let at = usize::try_from(*first).unwrap();
        assert_eq!(&log[at..at + batch.len()], &batch[..], "a batch is contiguous at the index it was given");
        assert!(firsts.insert(*first));
    }
    // A checkpoint for every append, at exactly the sizes the appends left.
    for (first, batch) in &appended {
        let size = first + batch.len() as u64;
        let note = store.checkpoint(size).await.unwrap().unwrap_or_else(|| panic!("no checkpoint of size {size}"));
        assert_eq!(sealdrop_log::checkpoint::open(&note, &key().verifier()).unwrap().size, size);
    }
    let checkpoints: i64 =
        store.client().await.unwrap().query_one("SELECT count(*) FROM checkpoints", &[]).await.unwrap().get(0);
    assert_eq!(usize::try_from(checkpoints).unwrap(), appended.len());
    // The recomputed root is the latest checkpoint's, seen from either instance.
    assert_eq!(assert_checkpointed(&instances[1]).await, total as u64);
    let (n, root) = instances[1].recompute_log().await.unwrap();
    assert_eq!(sealdrop_log::tree::root_of_entries(&log), (n, root), "and an independent computation agrees");
}

#[tokio::test]
async fn recompute_catches_every_kind_of_edit() {
    let edits = [
        "UPDATE log_entries SET data = '\\x00' WHERE idx = 7",
        "UPDATE log_hashes SET hash = decode(repeat('00', 32), 'hex') WHERE idx = 5",
        "UPDATE log_hashes SET hash = '\\x00' WHERE idx = 0",
        "DELETE FROM log_entries WHERE idx = 3",
        "DELETE FROM log_entries WHERE idx = 19",
        "DELETE FROM log_hashes WHERE idx = 2",
        "INSERT INTO log_hashes (idx, hash) VALUES (1000, decode(repeat('00', 32), 'hex'))",
        "UPDATE log_head SET size = 21",
    ];
    for sql in edits {
        let store = PgMetaStore::connect(&postgres_url().await).await.unwrap();
        let entries: Vec<Vec<u8>> = (0..20).map(|i| format!("{{\"n\":{i}}}").into_bytes()).collect();
        store.append_log(&entries, Box::new(key().clone())).await.unwrap();
        assert_eq!(store.recompute_log().await.unwrap().0, 20);
        store.client().await.unwrap().execute(sql, &[]).await.unwrap();
        let err = store.recompute_log().await.unwrap_err();
        assert!(matches!(err, MetaError::LogInconsistent(_)), "{sql}: {err}");
    }
}

#[tokio::test]
async fn append_refuses_a_log_whose_checkpoint_does_not_match_its_entries() {
    let key = || Box::new(key().clone());
    for sql in ["DELETE FROM log_entries WHERE idx = 1", "DELETE FROM checkpoints", "UPDATE log_head SET size = 1"] {
        let store = PgMetaStore::connect(&postgres_url().await).await.unwrap();
        store.append_log(&[b"0".to_vec(), b"1".to_vec()], key()).await.unwrap();
        store.client().await.unwrap().execute(sql, &[]).await.unwrap();
        let err = store.append_log(&[b"2".to_vec()], key()).await.unwrap_err();
        assert!(matches!(err, MetaError::LogInconsistent(_)), "{sql}: {err}");
        let stored: i64 =
            store.client().await.unwrap().query_one("SELECT count(*) FROM log_entries", &[]).await.unwrap().get(0);
        assert!(stored <= 2, "{sql}: nothing was appended");
    }
}
