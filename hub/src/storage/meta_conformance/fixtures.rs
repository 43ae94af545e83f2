//! What the metadata-store tests build their cases from: drops, records
//! and log checks, shared by the suite and each store's own tests.

use std::sync::OnceLock;

use sealdrop_proto::api::DropState;
use sealdrop_proto::ids::{DropId, PartyId};
use sealdrop_proto::keys::NoteSigningKey;

use super::MetaUnderTest;
use crate::storage::meta::{
    AckRecord, CommitRecord, ContentDigest, CreateOutcome, EndRecord, FetchRecord, NewDrop, StoredDirectory,
};

/// The log key every test store signs with.
pub(in crate::storage) fn key() -> &'static NoteSigningKey {
    static KEY: OnceLock<NoteSigningKey> = OnceLock::new();
    KEY.get_or_init(|| NoteSigningKey::generate("hub.test").unwrap())
}

pub(in crate::storage) fn party(s: &str) -> PartyId {
    s.parse().unwrap()
}

pub(in crate::storage) fn new_drop(recipients: &[&str]) -> NewDrop {
    NewDrop {
        id: DropId::random(),
        sender: party("camden"),
        sender_member: "data-team".parse().unwrap(),
        agreement: "inner-fsm".into(),
        created: 1000,
        expires: 5000,
        recipients: recipients.iter().map(|p| party(p)).collect(),
        idempotency_key: None,
        durable_now: true,
    }
}

pub(in crate::storage) fn keyed_drop(sender: &str, key: &str) -> NewDrop {
    NewDrop { sender: party(sender), idempotency_key: Some(key.repeat(64)), ..new_drop(&["islington"]) }
}

pub(in crate::storage) fn created(outcome: CreateOutcome) -> Option<DropId> {
    match outcome {
        CreateOutcome::Created { replaced } => replaced,
        CreateOutcome::AlreadyCommitted(rec) => panic!("expected a new drop, got committed {}", rec.id),
    }
}

pub(in crate::storage) fn digest(s: &str, len: u64) -> ContentDigest {
    ContentDigest { sha256: s.repeat(64), len }
}

pub(in crate::storage) fn commit_record(member: &str) -> CommitRecord {
    CommitRecord {
        sender_member: member.parse().unwrap(),
        manifest: "m".into(),
        content: digest("a", 10),
        committed: 2000,
        log_entry: b"{\"commit\":1}".to_vec(),
    }
}

pub(in crate::storage) async fn commit(store: &dyn MetaUnderTest, d: &NewDrop) -> u64 {
    assert!(store.set_upload(&d.id, Some(&digest("a", 10)), 2000).await.unwrap());
    store.commit_drop(&d.id, &commit_record("data-team"), Box::new(key().clone())).await.unwrap().unwrap()
}

pub(in crate::storage) fn ack(p: &str) -> AckRecord {
    AckRecord {
        party: party(p),
        member: "data-team".parse().unwrap(),
        receipt: "r".into(),
        at: 3000,
        log_entry: format!("{{\"ack\":\"{p}\"}}").into_bytes(),
        delivered_entry: b"{\"deleted\":1}".to_vec(),
    }
}

pub(in crate::storage) fn fetch(p: &str, at: i64) -> FetchRecord {
    FetchRecord { party: party(p), at, log_entry: format!("{{\"fetch\":\"{p}\"}}").into_bytes() }
}

pub(in crate::storage) fn directory(serial: u64) -> StoredDirectory {
    StoredDirectory { serial, note: format!("n{serial}"), sha256: format!("h{serial}"), accepted_at: 5 }
}

pub(in crate::storage) async fn entries(s: &dyn MetaUnderTest) -> Vec<String> {
    s.log_entries(0, u64::MAX >> 2).await.unwrap().into_iter().map(|e| String::from_utf8(e).unwrap()).collect()
}

/// The latest checkpoint verifies, covers every entry, and its root is
/// the one recomputed from the entries.
pub(in crate::storage) async fn assert_checkpointed(s: &dyn MetaUnderTest) -> u64 {
    let size = s.log_size().await.unwrap();
    let latest = s.latest_checkpoint().await.unwrap().unwrap();
    let cp = sealdrop_log::checkpoint::open(&latest.note, &key().verifier()).unwrap();
    assert_eq!((latest.size, cp.size), (size, size));
    assert_eq!(s.recompute_log().await.unwrap(), (size, cp.root));
    assert_eq!(s.checkpoint(size).await.unwrap(), Some(latest.note));
    size
}

pub(in crate::storage) fn end(state: DropState, at: i64, unless_acknowledged: bool) -> EndRecord {
    EndRecord { state, at, log_entries: vec![b"{\"end\":1}".to_vec()], unless_acknowledged }
}
