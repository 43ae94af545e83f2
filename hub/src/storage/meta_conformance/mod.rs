//! One suite of metadata-store behaviour ([`super::meta`]), run against
//! every store: SQLite (in memory) and PostgreSQL (a real cluster started by
//! the test binary, a fresh database per test). What only one store
//! promises is tested beside it (`sqlite/tests.rs`, `postgres/tests.rs`).
//!
//! Covers every trait of both stores: settings, nonces, cosignatures,
//! directories and the log here, drops in [`drops`].

pub(super) mod drops;
pub(super) mod fixtures;

use sealdrop_testservers::PgCluster;

use self::drops::*;
use self::fixtures::{assert_checkpointed, directory, entries, key};
use super::meta::{CosignatureStore, DirectoryStore, DropStore, LogStore, MetaError, NonceStore, SettingsStore};
use super::postgres::PgMetaStore;
use super::sqlite::SqliteMetaStore;

/// The traits under test, as one object.
pub(super) trait MetaUnderTest:
    SettingsStore + NonceStore + CosignatureStore + DirectoryStore + LogStore + DropStore
{
}

impl<T: SettingsStore + NonceStore + CosignatureStore + DirectoryStore + LogStore + DropStore> MetaUnderTest for T {}

fn sqlite() -> Box<dyn MetaUnderTest> {
    Box::new(SqliteMetaStore::open_in_memory().unwrap())
}

/// A store on a new database of the test binary's cluster.
pub(crate) async fn postgres_url() -> String {
    tokio::task::spawn_blocking(|| PgCluster::shared().database()).await.unwrap()
}

async fn postgres() -> Box<dyn MetaUnderTest> {
    Box::new(PgMetaStore::connect(&postgres_url().await).await.unwrap())
}

async fn settings_and_directories(s: &dyn MetaUnderTest) {
    assert_eq!(s.setting("origin").await.unwrap(), None);
    s.set_setting("origin", "a").await.unwrap();
    s.set_setting("origin", "b").await.unwrap();
    assert_eq!(s.setting("origin").await.unwrap().as_deref(), Some("b"));
    assert_eq!(s.current_directory().await.unwrap(), None);
    assert_eq!(s.current_serial().await.unwrap(), None);
    let (d1, d2) = (directory(1), directory(2));
    assert_eq!(s.insert_directory(&d2, b"{\"d\":2}", Box::new(key().clone())).await.unwrap(), 0);
    assert_eq!(s.insert_directory(&d1, b"{\"d\":1}", Box::new(key().clone())).await.unwrap(), 1);
    assert_eq!(s.current_directory().await.unwrap(), Some(d2.clone()));
    assert_eq!(s.current_serial().await.unwrap(), Some(2));
    assert_eq!(s.directory(1).await.unwrap(), Some(d1));
    assert_eq!(s.directory(3).await.unwrap(), None);
    assert!(s.insert_directory(&d2, b"{\"d\":3}", Box::new(key().clone())).await.is_err(), "a serial is stored once");
    assert_eq!(entries(s).await, ["{\"d\":2}", "{\"d\":1}"], "the refused directory left no entry");
    assert_eq!(assert_checkpointed(s).await, 2);
    assert_eq!(s.setting(super::meta::setting::LOG_STARTED).await.unwrap().as_deref(), Some("1"));
}

async fn cosignatures_are_per_checkpoint_and_witness(s: &dyn MetaUnderTest) {
    s.append_log(&[b"a".to_vec()], Box::new(key().clone())).await.unwrap();
    s.append_log(&[b"b".to_vec(), b"c".to_vec()], Box::new(key().clone())).await.unwrap();
    assert!(!s.put_cosignature(2, "w1", "line").await.unwrap(), "no checkpoint of size 2");
    assert!(s.put_cosignature(3, "w2", "second\n").await.unwrap());
    assert!(s.put_cosignature(3, "w1", "old\n").await.unwrap());
    assert!(s.put_cosignature(3, "w1", "new\n").await.unwrap());
    assert!(s.put_cosignature(1, "w1", "one\n").await.unwrap());
    assert_eq!(s.cosignatures(3).await.unwrap(), ["new\n", "second\n"]);
    assert_eq!(s.cosignatures(1).await.unwrap(), ["one\n"]);
    assert!(s.cosignatures(2).await.unwrap().is_empty());
}

async fn log_reads(s: &dyn MetaUnderTest) {
    assert_eq!(s.recompute_log().await.unwrap(), (0, tlog_tiles::EMPTY_HASH));
    let all: Vec<Vec<u8>> = (0..10).map(|i| vec![i]).collect();
    assert_eq!(s.append_log(&all[..4], Box::new(key().clone())).await.unwrap(), 0);
    assert_eq!(s.append_log(&all[4..], Box::new(key().clone())).await.unwrap(), 4);
    assert_eq!(s.log_entries(0, 100).await.unwrap(), all);
    assert_eq!(s.log_entries(8, 100).await.unwrap(), &all[8..]);
    assert_eq!(s.log_entries(3, 2).await.unwrap(), &all[3..5]);
    assert!(s.log_entries(10, 1).await.unwrap().is_empty());
    let leaf = tlog_tiles::stored_hash_index(0, 9);
    assert_eq!(s.log_hashes(&[leaf]).await.unwrap(), [tlog_tiles::record_hash(&all[9])]);
    assert!(matches!(s.log_hashes(&[leaf + 100]).await, Err(MetaError::LogInconsistent(_))));
    assert_eq!(assert_checkpointed(s).await, 10);
    assert!(s.checkpoint(4).await.unwrap().is_some() && s.checkpoint(5).await.unwrap().is_none());
}

/// Batches of many sizes match a root computed independently of
/// `tlog_tiles`' stored hashes, and every checkpoint verifies.
async fn appends_in_batches_match_the_reference_tree(s: &dyn MetaUnderTest) {
    use sealdrop_log::tree::root_of_entries;
    let mut all = Vec::new();
    for batch in [1, 1, 2, 5, 1, 30, 300] {
        let entries: Vec<Vec<u8>> = (0..batch).map(|i| format!("{{\"n\":{}}}", all.len() + i).into_bytes()).collect();
        assert_eq!(s.append_log(&entries, Box::new(key().clone())).await.unwrap(), all.len() as u64);
        all.extend(entries);
        let n = all.len() as u64;
        let latest = s.latest_checkpoint().await.unwrap().unwrap();
        let cp = sealdrop_log::checkpoint::open(&latest.note, &key().verifier()).unwrap();
        assert_eq!((latest.size, cp.size), (n, n));
        assert_eq!(root_of_entries(&all), (n, cp.root));
        assert_eq!(assert_checkpointed(s).await, n);
    }
}

async fn a_failed_append_appends_nothing(s: &dyn MetaUnderTest) {
    s.append_log(&[b"a".to_vec()], Box::new(key().clone())).await.unwrap();
    let too_large = vec![b'x'; sealdrop_log::entry::MAX_ENTRY_BYTES + 1];
    let err = s.append_log(&[b"b".to_vec(), too_large], Box::new(key().clone())).await.unwrap_err();
    assert!(matches!(err, MetaError::LogEntryTooLarge(_)), "{err}");
    assert_eq!(entries(s).await, ["a"], "not even the batch's first entry");
    // A failed state change appends nothing either.
    assert!(s.insert_directory(&directory(1), b"{}", Box::new(key().clone())).await.is_ok());
    assert!(s.insert_directory(&directory(1), b"{}", Box::new(key().clone())).await.is_err());
    assert_eq!(assert_checkpointed(s).await, 2);
    s.append_log(&[vec![b'x'; sealdrop_log::entry::MAX_ENTRY_BYTES]], Box::new(key().clone())).await.unwrap();
    assert_eq!(assert_checkpointed(s).await, 3);
}

async fn nonces_are_single_use_and_purged(s: &dyn MetaUnderTest) {
    assert!(s.insert_nonce("camden/a", "n1", 100).await.unwrap());
    assert!(!s.insert_nonce("camden/a", "n1", 101).await.unwrap());
    assert!(s.insert_nonce("camden/b", "n1", 101).await.unwrap(), "nonces are per key");
    assert_eq!(s.purge_nonces(101).await.unwrap(), 1);
    assert!(s.insert_nonce("camden/a", "n1", 102).await.unwrap());
}

/// Runs each named suite function on a fresh store of each back end.
macro_rules! on_every_store {
    ($($test:ident),* $(,)?) => {
        mod on_sqlite {
            $(#[tokio::test]
            async fn $test() {
                super::$test(&*super::sqlite()).await;
            })*
        }
        mod on_postgres {
            $(#[tokio::test]
            async fn $test() {
                super::$test(&*super::postgres().await).await;
            })*
        }
    };
}

on_every_store!(
    settings_and_directories,
    cosignatures_are_per_checkpoint_and_witness,
    log_reads,
    appends_in_batches_match_the_reference_tree,
    a_failed_append_appends_nothing,
    nonces_are_single_use_and_purged,
    commit_requires_open_and_matching_upload,
    ack_transaction_delivers_after_the_last_party,
    downloads_are_counted_and_bounded_per_party,
    inbox_and_sent,
    a_failed_append_rolls_back_the_state_change,
    upload_activity_is_recorded_for_open_drops_and_falls_back_to_creation,
    the_sweeper_finds_expired_and_out_of_agreement_drops,
    a_recall_is_refused_inside_the_transaction_once_acknowledged,
);
