//! The SQLite stores' tests.

use std::sync::Arc;

use rusqlite::{Connection, params};
use rusqlite_migration::Migrations;
use sealdrop_proto::api::DropState;
use sealdrop_proto::ids::DropId;

use super::SqliteMetaStore;
use super::schema::MIGRATIONS;
use crate::storage::meta::{AppendTurn, DropStore, LogStore, NewDrop, SettingsStore};
use crate::storage::meta_conformance::drops;
use crate::storage::meta_conformance::fixtures::*;

fn store() -> SqliteMetaStore {
    SqliteMetaStore::open_in_memory().unwrap()
}

#[tokio::test]
async fn an_idempotency_key_keeps_one_drop_per_party() {
    let s = store();
    let replaced = drops::an_idempotency_key_keeps_one_drop_per_party(&s).await;
    let orphans: i64 =
        s.db.conn()
            .query_row("SELECT count(*) FROM drop_recipients WHERE drop_id = ?1", [replaced.as_str()], |r| r.get(0))
            .unwrap();
    assert_eq!(orphans, 0, "the replaced drop's recipients are gone too");

    // The unique index holds even against a writer that skips the lookup.
    let dup = s.db.conn().execute(
        "INSERT INTO drops (id, sender, sender_member, agreement, created, expires, state, idempotency_key)
         VALUES (?1, 'camden', 'data-team', 'inner-fsm', 1, 2, 'open', ?2)",
        [DropId::random().as_str(), &"a".repeat(64)],
    );
    assert!(dup.is_err(), "{dup:?}");
}

/// A log turn that notes how many WAL syncs had run each time it was told
/// its append committed (in `committed_at`, which the test keeps a handle
/// on: the store takes the turn itself).
struct RecordingTurn {
    store: Arc<SqliteMetaStore>,
    committed_at: Arc<std::sync::Mutex<Vec<u64>>>,
}

impl RecordingTurn {
    /// A turn for `store`, and the handle on what it records.
    fn boxed(store: &Arc<SqliteMetaStore>) -> (Box<dyn AppendTurn>, Arc<std::sync::Mutex<Vec<u64>>>) {
        let committed_at = Arc::default();
        (Box::new(Self { store: Arc::clone(store), committed_at: Arc::clone(&committed_at) }), committed_at)
    }
}

impl AppendTurn for RecordingTurn {
    fn sign_checkpoint(&self, size: u64, root: &tlog_tiles::Hash) -> String {
        key().sign_checkpoint(size, root)
    }

    fn committed(&self) {
        self.committed_at.lock().unwrap().push(self.store.wal_syncs());
    }
}

#[tokio::test]
async fn the_log_turn_is_given_up_when_the_append_commits_before_its_sync() {
    let dir = tempfile::tempdir().unwrap();
    let s = Arc::new(SqliteMetaStore::open(&dir.path().join("hub.db")).unwrap());
    let before = s.wal_syncs();
    let (turn, committed_at) = RecordingTurn::boxed(&s);
    s.append_log(&[b"one".to_vec()], turn).await.unwrap();
    assert_eq!(*committed_at.lock().unwrap(), [before], "given up once the transaction committed, before the sync");
    assert!(s.wal_syncs() > before, "and the append was still made durable");
    assert_eq!(s.log_size().await.unwrap(), 1);

    // A change that fails before committing does not report a commit (the
    // turn ends when it is dropped: see `crate::sequencer`).
    let (failed, committed_at) = RecordingTurn::boxed(&s);
    let too_large = vec![b'x'; sealdrop_log::entry::MAX_ENTRY_BYTES + 1];
    assert!(s.append_log(&[too_large], failed).await.is_err());
    assert!(committed_at.lock().unwrap().is_empty());
    // And the next change reports its commit exactly once.
    let (later, committed_at) = RecordingTurn::boxed(&s);
    s.append_log(&[b"two".to_vec()], later).await.unwrap();
    assert_eq!(committed_at.lock().unwrap().len(), 1, "run exactly once");
}

#[tokio::test]
async fn reopening_a_file_keeps_data_and_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hub.db");
    let d = new_drop(&["islington"]);
    {
        let s = SqliteMetaStore::open(&path).unwrap();
        s.create_drop(&d).await.unwrap();
        s.append_log(&[b"one".to_vec(), b"two".to_vec(), b"three".to_vec()], Box::new(key().clone())).await.unwrap();
    }
    let s = SqliteMetaStore::open(&path).unwrap();
    assert_eq!(s.drop_state(&d.id).await.unwrap(), Some(DropState::Open));
    assert_eq!(assert_checkpointed(&s).await, 3);
}

#[tokio::test]
async fn a_database_from_before_the_log_is_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hub.db");
    {
        let mut conn = Connection::open(&path).unwrap();
        Migrations::from_slice(&MIGRATIONS[..1]).to_latest(&mut conn).unwrap();
        conn.execute("INSERT INTO settings (key, value) VALUES ('origin', 'old')", []).unwrap();
    }
    let s = SqliteMetaStore::open(&path).unwrap();
    assert_eq!(s.setting("origin").await.unwrap().as_deref(), Some("old"));
    assert_eq!((s.log_size().await.unwrap(), s.latest_checkpoint().await.unwrap()), (0, None));
}

#[tokio::test]
async fn a_database_from_before_idempotency_keys_is_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hub.db");
    let old = DropId::random();
    {
        let mut conn = Connection::open(&path).unwrap();
        Migrations::from_slice(&MIGRATIONS[..2]).to_latest(&mut conn).unwrap();
        conn.execute(
            "INSERT INTO drops (id, sender, sender_member, agreement, created, expires, state)
             VALUES (?1, 'camden', 'data-team', 'inner-fsm', 1000, 5000, 'open')",
            [old.as_str()],
        )
        .unwrap();
        conn.execute("INSERT INTO drop_recipients (drop_id, party) VALUES (?1, 'islington')", [old.as_str()]).unwrap();
    }
    let s = SqliteMetaStore::open(&path).unwrap();
    let rec = s.drop_record(&old).await.unwrap().unwrap();
    assert_eq!((rec.state, rec.sender.as_str(), rec.recipients.len()), (DropState::Open, "camden", 1));
    let sent = s.sent(&party("camden"), None).await.unwrap();
    assert_eq!((&sent[0].drop.id, &sent[0].idempotency_key), (&old, &None));
    // The old drop can still be committed, and keyed drops work beside it.
    commit(&s, &NewDrop { id: old.clone(), ..new_drop(&["islington"]) }).await;
    assert_eq!(s.drop_state(&old).await.unwrap(), Some(DropState::Committed));
    let keyed = keyed_drop("camden", "c");
    assert_eq!(created(s.create_drop(&keyed).await.unwrap()), None);
    assert_eq!(created(s.create_drop(&keyed_drop("camden", "c")).await.unwrap()), Some(keyed.id.clone()));
    assert_eq!(s.sent(&party("camden"), None).await.unwrap().len(), 2);
    drop(s);
    // Reopening an up-to-date database changes nothing.
    let s = SqliteMetaStore::open(&path).unwrap();
    assert_eq!(s.sent(&party("camden"), None).await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_database_from_before_upload_activity_is_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hub.db");
    let old = DropId::random();
    {
        let mut conn = Connection::open(&path).unwrap();
        Migrations::from_slice(&MIGRATIONS[..5]).to_latest(&mut conn).unwrap();
        conn.execute(
            "INSERT INTO drops (id, sender, sender_member, agreement, created, expires, state, upload_sha256, upload_len)
             VALUES (?1, 'camden', 'data-team', 'inner-fsm', 1000, 5000, 'open', ?2, 10)",
            params![old.as_str(), "a".repeat(64)],
        )
        .unwrap();
    }
    let s = SqliteMetaStore::open(&path).unwrap();
    // An upload from before counts from its drop's creation.
    assert_eq!(s.upload_activity(&old).await.unwrap(), Some(1000));
    assert_eq!(s.drop_record(&old).await.unwrap().unwrap().upload, Some(digest("a", 10)));
}

#[tokio::test]
async fn a_database_from_before_the_log_index_is_filled_from_the_log_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hub.db");
    // A real log: drop 0 (camden to hackney) is committed, fetched,
    // acknowledged and deleted as delivered; drop 1 the same (hackney to
    // islington), after directory 2 is published at entry 5.
    let log = sealdrop_log::testlog::generate(3, 2);
    let m = |i: usize| match log.entry(i) {
        sealdrop_log::entry::LogEntry::DropCommitted { manifest, .. } => {
            sealdrop_proto::note::peek_doc::<sealdrop_proto::drop::Manifest>(&manifest).unwrap()
        }
        other => panic!("entry {i} is not a commit: {other:?}"),
    };
    let (first, second) = (m(1), m(6));
    {
        let mut conn = Connection::open(&path).unwrap();
        Migrations::from_slice(&MIGRATIONS[..6]).to_latest(&mut conn).unwrap();
        for (idx, data) in log.entries.iter().enumerate() {
            conn.execute("INSERT INTO log_entries (idx, data) VALUES (?1, ?2)", params![idx as i64, data]).unwrap();
        }
        for d in [&first, &second] {
            conn.execute(
                "INSERT INTO drops (id, sender, sender_member, agreement, created, expires, state)
                 VALUES (?1, ?2, 'data-team', 'a', 1, 2, 'delivered')",
                [d.drop.as_str(), d.sender.as_str()],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO drop_recipients (drop_id, party) VALUES (?1, ?2)",
                [d.drop.as_str(), d.recipients[0].as_str()],
            )
            .unwrap();
        }
    }
    let s = SqliteMetaStore::open(&path).unwrap();
    let rec = s.drop_record(&first.drop).await.unwrap().unwrap();
    assert_eq!((rec.commit_index, rec.end_index), (Some(1), Some(4)));
    let r = &rec.recipients[0];
    assert_eq!((r.downloads, r.fetch_index, r.ack_index), (1, Some(2), Some(3)));
    let rec = s.drop_record(&second.drop).await.unwrap().unwrap();
    assert_eq!((rec.commit_index, rec.end_index), (Some(6), Some(9)));
    // Filled once: what the store records later is not recounted.
    s.db.conn().execute("UPDATE drop_recipients SET downloads = 7", []).unwrap();
    drop(s);
    let s = SqliteMetaStore::open(&path).unwrap();
    assert_eq!(s.drop_record(&first.drop).await.unwrap().unwrap().recipients[0].downloads, 7);
}

/// What a party holds is summed from an index alone: its cost does not
/// include reading every committed drop's row (each carries a manifest).
#[test]
fn a_partys_committed_bytes_are_summed_from_the_index_alone() {
    let s = store();
    let plan: Vec<String> =
        s.db.conn()
            .prepare(&format!("EXPLAIN QUERY PLAN {}", super::drops::COMMITTED_BYTES))
            .unwrap()
            .query_map(["camden"], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
    assert_eq!(plan, ["SEARCH drops USING COVERING INDEX drops_by_sender_state_size (sender=? AND state=?)"]);
}
