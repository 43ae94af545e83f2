//! What only the PostgreSQL store promises: its schema versions, and one
//! log shared by several instances (several pools on one database).
//! Behaviour every store shares is in `storage/meta_conformance.rs`.

use std::collections::BTreeSet;

use super::PgMetaStore;
use crate::storage::meta::{LogStore, MetaError};
use sealdrop_proto::ids::DropId;

use sealdrop_proto::api::DropState;

use crate::storage::meta::{CreateOutcome, DropStore, EndOutcome, FetchOutcome};
use crate::storage::meta_conformance::fixtures::{
    assert_checkpointed, commit_record, digest, end, entries, fetch, key, keyed_drop, new_drop, party,
};
use crate::storage::meta_conformance::{drops, postgres_url};

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

#[tokio::test]
async fn an_idempotency_key_keeps_one_drop_per_party() {
    let s = PgMetaStore::connect(&postgres_url().await).await.unwrap();
    let replaced = drops::an_idempotency_key_keeps_one_drop_per_party(&s).await;
    let client = s.client().await.unwrap();
    let orphans: i64 = client
        .query_one("SELECT count(*) FROM drop_recipients WHERE drop_id = $1", &[&replaced.as_str()])
        .await
        .unwrap()
        .get(0);
    assert_eq!(orphans, 0, "the replaced drop's recipients are gone too");

    // The unique index holds even against a writer that skips the lookup.
    let dup = client
        .execute(
            "INSERT INTO drops (id, sender, sender_member, agreement, created, expires, state, idempotency_key)
             VALUES ($1, 'camden', 'data-team', 'inner-fsm', 1, 2, 'open', $2)",
            &[&DropId::random().as_str(), &"a".repeat(64)],
        )
        .await;
    assert!(dup.is_err(), "{dup:?}");
}

/// One drop's steps taken at once on two instances: one commit wins, and
/// fetches racing a recall are either logged before its deletion or
/// refused, never logged after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_drop_changed_on_two_instances_at_once_changes_once() {
    let url = postgres_url().await;
    let (a, b) = (PgMetaStore::connect(&url).await.unwrap(), PgMetaStore::connect(&url).await.unwrap());
    let d = new_drop(&["islington"]);
    a.create_drop(&d).await.unwrap();
    assert!(b.set_upload(&d.id, Some(&digest("a", 10)), 2000).await.unwrap());
    let record = commit_record("data-team");
    let (on_a, on_b) = tokio::join!(
        a.commit_drop(&d.id, &record, Box::new(key().clone())),
        b.commit_drop(&d.id, &record, Box::new(key().clone()))
    );
    let mut won: Vec<u64> = [on_a.unwrap(), on_b.unwrap()].into_iter().flatten().collect();
    assert_eq!(won.pop(), Some(0), "exactly one commit, logged once");
    assert!(won.is_empty());

    let fetches = (0..4).map(|n| {
        let store = if n % 2 == 0 { a.clone() } else { b.clone() };
        let id = d.id.clone();
        tokio::spawn(async move { store.record_fetch(&id, &fetch("islington", 2500), Box::new(key().clone())).await })
    });
    let fetches: Vec<_> = fetches.collect();
    let recall = end(DropState::Recalled, 2600, true);
    let ended = b.end_drop(&d.id, &recall, Box::new(key().clone())).await.unwrap();
    let EndOutcome::Ended { log_index } = ended else { panic!("the recall was refused: {ended:?}") };
    for task in fetches {
        match task.await.unwrap().unwrap() {
            FetchOutcome::Recorded { log_index: at } => assert!(at < log_index, "a fetch logged after the recall"),
            FetchOutcome::NotCommitted => {}
            other => panic!("{other:?}"),
        }
    }
    let log = entries(&a).await;
    assert_eq!(log.len() as u64, log_index + 1, "the recall's entry is the log's last");
    assert_eq!(log.last().map(String::as_str), Some("{\"end\":1}"));
    let rec = a.drop_record(&d.id).await.unwrap().unwrap();
    assert_eq!(rec.state, DropState::Recalled);
    // The commit, then the logged fetches, then the recall.
    assert_eq!(rec.recipients[0].downloads, log_index - 1, "every logged fetch counted");
    assert_checkpointed(&b).await;
}

/// Creates with one new idempotency key on two instances at once: one drop
/// is kept and neither create fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_with_one_idempotency_key_keep_one_drop() {
    let url = postgres_url().await;
    let (a, b) = (PgMetaStore::connect(&url).await.unwrap(), PgMetaStore::connect(&url).await.unwrap());
    for round in 0..10 {
        let key = format!("{round:x}");
        let (first, second) = (keyed_drop("camden", &key), keyed_drop("camden", &key));
        let (on_a, on_b) = tokio::join!(a.create_drop(&first), b.create_drop(&second));
        let (on_a, on_b) = (on_a.unwrap(), on_b.unwrap());
        assert!(matches!(on_a, CreateOutcome::Created { .. }) && matches!(on_b, CreateOutcome::Created { .. }));
        let kept = a.drop_by_idempotency_key(&party("camden"), &key.repeat(64)).await.unwrap().unwrap();
        assert!(kept.id == first.id || kept.id == second.id);
    }
    assert_eq!(a.sent(&party("camden"), None).await.unwrap().len(), 10, "one drop per key");
}

/// The check under the log head's row lock: an append whose entry is timed
/// before the last entry's (an instance that appended without taking the
/// log's turn) is refused and changes nothing; bytes that are not entries
/// the hub makes carry no time and are not checked.
#[tokio::test]
async fn an_append_timed_before_the_last_entry_is_refused() {
    use jiff::Timestamp;
    use sealdrop_log::entry::LogEntry;
    let store = PgMetaStore::connect(&postgres_url().await).await.unwrap();
    let committed = |secs| {
        let committed = Timestamp::from_second(secs).unwrap();
        LogEntry::DropCommitted { committed, manifest: "m".into() }.to_bytes().unwrap()
    };
    store.append_log(&[committed(1_000)], Box::new(key().clone())).await.unwrap();
    store.append_log(&[committed(1_000), committed(1_001)], Box::new(key().clone())).await.unwrap();
    let err = store.append_log(&[committed(1_002), committed(999)], Box::new(key().clone())).await.unwrap_err();
    assert!(matches!(err, MetaError::LogTimeWentBack { .. }), "{err}");
    assert_eq!(assert_checkpointed(&store).await, 3, "the refused append left nothing");
    store.append_log(&[b"raw".to_vec()], Box::new(key().clone())).await.unwrap();
    store.append_log(&[committed(5)], Box::new(key().clone())).await.unwrap();
}
