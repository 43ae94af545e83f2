//! Migrations of a hub holding drops in every state into a real PostgreSQL
//! (the test binary's cluster, a new database per test) and a real
//! S3-compatible server (`s3s-fs`, one per test).

use std::collections::BTreeMap;
use std::path::Path;

use bytes::Bytes;
use object_store::aws::AmazonS3Builder;
use sealdrop_proto::api::DropState;
use sealdrop_proto::ids::DropId;
use sealdrop_proto::keys::NoteSigningKey;
use sealdrop_testservers::{PgCluster, S3Server};
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncReadExt as _;

use super::*;
use crate::storage::meta::{
    AckRecord, CommitRecord, ContentDigest, DropRecord, DropStore, EndRecord, FetchRecord, NewDrop, NonceStore as _,
    StoredDirectory,
};
use crate::storage::{SqliteMetaStore, Stores};

const ORIGIN: &str = "hub.test";
const PREFIX: &str = "s3://sealdrop-test/moved";

fn s3_builder(server: &S3Server) -> AmazonS3Builder {
    AmazonS3Builder::new()
        .with_endpoint(server.endpoint())
        .with_region(S3Server::REGION)
        .with_access_key_id(S3Server::ACCESS_KEY)
        .with_secret_access_key(S3Server::SECRET_KEY)
        .with_allow_http(true)
}

async fn new_database() -> String {
    tokio::task::spawn_blocking(|| PgCluster::shared().database()).await.unwrap()
}

/// The ids of the source hub's drops, by what happened to them.
struct Drops {
    open_without_upload: DropId,
    open_with_finished_upload: DropId,
    open_with_cut_off_upload: DropId,
    committed_small: DropId,
    committed_large: DropId,
    delivered: DropId,
    expired: DropId,
}

impl Drops {
    fn all(&self) -> [&DropId; 7] {
        [
            &self.open_without_upload,
            &self.open_with_finished_upload,
            &self.open_with_cut_off_upload,
            &self.committed_small,
            &self.committed_large,
            &self.delivered,
            &self.expired,
        ]
    }
}

/// Bytes that differ at every offset mod 251, `len` of them, different per `seed`.
fn ciphertext(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| ((i % 251) as u8).wrapping_add(seed)).collect()
}

fn digest_of(bytes: &[u8]) -> ContentDigest {
    ContentDigest { sha256: hex::encode(Sha256::digest(bytes)), len: bytes.len() as u64 }
}

fn new_drop(recipients: &[&str], created: i64) -> NewDrop {
    NewDrop {
        id: DropId::random(),
        sender: "camden".parse().unwrap(),
        sender_member: "data-team".parse().unwrap(),
        agreement: "inner-fsm".into(),
        created,
        expires: 50_000,
        recipients: recipients.iter().map(|p| p.parse().unwrap()).collect(),
        idempotency_key: None,
        durable_now: true,
    }
}

/// A source hub as the store level leaves it: the embedded stores of a
/// data directory (small ciphertexts in the database, larger ones files)
/// with a drop in every state, nonces, a directory and a cosignature.
struct SourceHub {
    dir: tempfile::TempDir,
    drops: Drops,
    /// Every ciphertext the source holds, by drop.
    bytes: BTreeMap<DropId, Vec<u8>>,
}

async fn upload(stores: &Stores, id: &DropId, bytes: &[u8]) {
    let mut sink = stores.blobs.begin_upload(id).await.unwrap();
    for chunk in bytes.chunks(20_000) {
        sink.write(Bytes::copy_from_slice(chunk)).await.unwrap();
    }
    sink.finish().await.unwrap();
}

async fn create(stores: &Stores, recipients: &[&str], created: i64) -> DropId {
    let drop = new_drop(recipients, created);
    stores.drops.create_drop(&drop).await.unwrap();
    drop.id
}

async fn commit(stores: &Stores, key: &NoteSigningKey, id: &DropId, bytes: &[u8]) {
    upload(stores, id, bytes).await;
    let digest = digest_of(bytes);
    assert!(stores.drops.set_upload(id, Some(&digest), 1500).await.unwrap());
    stores.blobs.promote(id).await.unwrap();
    let record = CommitRecord {
        sender_member: "data-team".parse().unwrap(),
        manifest: format!("manifest of {id}"),
        content: digest,
        committed: 2000,
        log_entry: format!("committed {id}").into_bytes(),
    };
    stores.drops.commit_drop(id, &record, Box::new(key.clone())).await.unwrap().unwrap();
}

async fn fetch(stores: &Stores, key: &NoteSigningKey, id: &DropId, party: &str) {
    let fetch = FetchRecord {
        party: party.parse().unwrap(),
        at: 2500,
        log_entry: format!("{party} fetched {id}").into_bytes(),
    };
    stores.drops.record_fetch(id, &fetch, Box::new(key.clone())).await.unwrap();
}

/// Where a source hub built in a bucket keeps its larger ciphertexts.
const OLD_PREFIX: &str = "s3://sealdrop-test/old";

impl SourceHub {
    async fn build() -> Self {
        Self::build_with(None).await
    }

    /// A source hub with its larger ciphertexts in files, or in `bucket`'s
    /// server under [`OLD_PREFIX`].
    async fn build_with(bucket: Option<&S3Server>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let key = log_key::create(&dir.path().join(LOG_KEY_FILE), ORIGIN).unwrap();
        let meta = SqliteMetaStore::open(&dir.path().join(DB_FILE)).unwrap();
        let (stores, location) = match bucket {
            None => (Stores::sqlite(meta, dir.path()).unwrap(), "files"),
            Some(server) => {
                let large = ObjectBlobStore::with_builder(
                    s3_builder(server),
                    &S3Location::parse(OLD_PREFIX).unwrap(),
                    dir.path(),
                )
                .unwrap();
                let blobs = crate::storage::TieredBlobStore::new(meta.inline_blobs(), Arc::new(large));
                let mut stores = Stores::sqlite(meta, dir.path()).unwrap();
                stores.blobs = Arc::new(blobs);
                (stores, OLD_PREFIX)
            }
        };
        stores.settings.set_setting(setting::ORIGIN, ORIGIN).await.unwrap();
        stores.settings.set_setting(setting::BLOBS, location).await.unwrap();
        let directory =
            StoredDirectory { serial: 1, note: "the first directory".into(), sha256: "ab".repeat(32), accepted_at: 5 };
        stores.directories.insert_directory(&directory, b"directory 1", Box::new(key.clone())).await.unwrap();
        assert!(stores.nonces.insert_nonce("camden/data-team", "n1", 100).await.unwrap());
        assert!(stores.nonces.insert_nonce("islington/ops", "n1", 101).await.unwrap());

        let mut bytes = BTreeMap::new();
        let open_without_upload = create(&stores, &["islington"], 1000).await;
        let open_with_finished_upload = create(&stores, &["islington"], 1000).await;
        let finished = ciphertext(3000, 1);
        upload(&stores, &open_with_finished_upload, &finished).await;
        assert!(stores.drops.set_upload(&open_with_finished_upload, Some(&digest_of(&finished)), 1200).await.unwrap());
        bytes.insert(open_with_finished_upload.clone(), finished);
        // Larger than the database keeps: a file, cut off (nothing recorded).
        let open_with_cut_off_upload = create(&stores, &["hackney"], 1001).await;
        let cut_off = ciphertext(100_000, 2);
        upload(&stores, &open_with_cut_off_upload, &cut_off).await;
        bytes.insert(open_with_cut_off_upload.clone(), cut_off);

        let committed_small = create(&stores, &["islington", "hackney"], 1002).await;
        let small = ciphertext(5000, 3);
        commit(&stores, &key, &committed_small, &small).await;
        bytes.insert(committed_small.clone(), small);
        // Recipients listed in the order the sender gave, not sorted.
        let committed_large = create(&stores, &["islington", "hackney", "barnet"], 1002).await;
        let large = ciphertext(300_000, 4);
        commit(&stores, &key, &committed_large, &large).await;
        fetch(&stores, &key, &committed_large, "hackney").await;
        bytes.insert(committed_large.clone(), large);

        let delivered = create(&stores, &["islington"], 1003).await;
        commit(&stores, &key, &delivered, &ciphertext(4000, 5)).await;
        fetch(&stores, &key, &delivered, "islington").await;
        let ack = AckRecord {
            party: "islington".parse().unwrap(),
            member: "ops".parse().unwrap(),
            receipt: "receipt".into(),
            at: 3000,
            log_entry: b"islington acknowledged".to_vec(),
            delivered_entry: b"delivered".to_vec(),
        };
        stores.drops.acknowledge(&delivered, &ack, Box::new(key.clone())).await.unwrap();
        stores.blobs.delete_blob(&delivered).await.unwrap();

        let expired = create(&stores, &["islington"], 1004).await;
        commit(&stores, &key, &expired, &ciphertext(70_000, 6)).await;
        let end = EndRecord {
            state: DropState::Expired,
            at: 4000,
            log_entries: vec![b"expired".to_vec()],
            unless_acknowledged: false,
        };
        stores.drops.end_drop(&expired, &end, Box::new(key.clone())).await.unwrap();
        stores.blobs.delete_blob(&expired).await.unwrap();

        let size = stores.log.log_size().await.unwrap();
        assert!(stores.cosignatures.put_cosignature(size, "witness.example", "— witness.example sig").await.unwrap());
        drop(stores);
        let drops = Drops {
            open_without_upload,
            open_with_finished_upload,
            open_with_cut_off_upload,
            committed_small,
            committed_large,
            delivered,
            expired,
        };
        Self { dir, drops, bytes }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The source's stores, opened again to compare with the copy.
    fn stores(&self) -> Stores {
        Stores::sqlite(SqliteMetaStore::open(&self.path().join(DB_FILE)).unwrap(), self.path()).unwrap()
    }
}

fn options(hub: &SourceHub, database_url: &str, server: &S3Server) -> MigrateOptions {
    MigrateOptions {
        data_dir: hub.path().to_owned(),
        database: PostgresUrl::parse(database_url).unwrap(),
        blobs: S3Location::parse(PREFIX).unwrap(),
        s3: s3_builder(server),
    }
}

/// The target's object store, as `serve` would open it.
fn target_blobs(server: &S3Server, spool: &Path) -> ObjectBlobStore {
    ObjectBlobStore::with_builder(s3_builder(server), &S3Location::parse(PREFIX).unwrap(), spool).unwrap()
}

async fn read_all(read: Option<crate::storage::BlobRead>) -> Vec<u8> {
    let mut read = read.expect("a ciphertext");
    let mut bytes = Vec::new();
    read.reader.read_to_end(&mut bytes).await.unwrap();
    assert_eq!(read.len, bytes.len() as u64);
    bytes
}

/// Every file of a folder, recursively, with its bytes' hash.
fn tree(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let name = path.strip_prefix(dir).unwrap().display().to_string();
                out.insert(name, hex::encode(Sha256::digest(std::fs::read(&path).unwrap())));
            }
        }
    }
    out
}

#[tokio::test]
async fn a_hub_with_drops_in_every_state_moves_and_verifies() {
    let hub = SourceHub::build().await;
    let server = S3Server::start();
    let database = new_database().await;
    let before = tree(hub.path());

    let report = migrate(options(&hub, &database, &server)).await.unwrap();

    // The source is untouched (the lock file aside, which `serve` makes too).
    let mut after = tree(hub.path());
    after.remove(data_lock::LOCK_FILE);
    assert_eq!(after, before, "the data directory changed");

    let rows: BTreeMap<&str, u64> = report.rows.iter().copied().collect();
    assert_eq!(rows["drops"], 7);
    assert_eq!(rows["drop_recipients"], 10);
    assert_eq!(rows["nonces"], 2);
    assert_eq!(rows["directories"], 1);
    assert_eq!(rows["cosignatures"], 1);
    assert_eq!(rows["log_entries"], report.log_size);
    assert_eq!((report.blobs, report.blob_bytes), (2, 305_000));
    assert_eq!((report.uploads, report.upload_bytes), (2, 103_000));
    assert_eq!(report.origin, ORIGIN);

    // Through the hub's own stores, the copy is the source.
    let source = hub.stores();
    let target = PgMetaStore::connect(&database).await.unwrap();
    for id in hub.drops.all() {
        let want: Option<DropRecord> = source.drops.drop_record(id).await.unwrap();
        assert_eq!(target.drop_record(id).await.unwrap(), want, "drop {id}");
    }
    let camden = "camden".parse().unwrap();
    assert_eq!(target.sent(&camden, None).await.unwrap(), source.drops.sent(&camden, None).await.unwrap());
    assert_eq!(target.recompute_log().await.unwrap(), source.log.recompute_log().await.unwrap());
    assert_eq!(target.log_size().await.unwrap(), report.log_size);
    assert_eq!(target.latest_checkpoint().await.unwrap(), source.log.latest_checkpoint().await.unwrap());
    assert_eq!(target.setting(setting::BLOBS).await.unwrap().as_deref(), Some(PREFIX));
    assert!(!target.insert_nonce("camden/data-team", "n1", 200).await.unwrap(), "a seen nonce moved with the hub");
    // The next append extends the copied log (the log head is at its size).
    let key = log_key::load(&hub.path().join(LOG_KEY_FILE), ORIGIN).unwrap();
    assert_eq!(target.append_log(&[b"after the move".to_vec()], Box::new(key)).await.unwrap(), report.log_size);

    let spool = tempfile::tempdir().unwrap();
    let blobs = target_blobs(&server, spool.path());
    let d = &hub.drops;
    for id in [&d.committed_small, &d.committed_large] {
        assert_eq!(read_all(blobs.open_blob(id).await.unwrap()).await, hub.bytes[id], "blob of {id}");
    }
    for id in [&d.open_with_finished_upload, &d.open_with_cut_off_upload] {
        assert_eq!(read_all(blobs.open_upload(id).await.unwrap()).await, hub.bytes[id], "upload of {id}");
    }
    assert_eq!(blobs.list_blobs().await.unwrap().len(), 2);
    assert_eq!(blobs.list_uploads().await.unwrap().len(), 2);
    assert!(blobs.open_blob(&d.delivered).await.unwrap().is_none());
    // The cut-off upload continues where it stopped.
    let mut more = blobs.append_upload(&d.open_with_cut_off_upload).await.unwrap();
    more.write(Bytes::from_static(b"the rest")).await.unwrap();
    more.finish().await.unwrap();
    assert_eq!(blobs.upload_len(&d.open_with_cut_off_upload).await.unwrap(), Some(100_008));
}

#[tokio::test]
async fn a_database_that_holds_a_hub_is_refused_and_nothing_is_written() {
    let hub = SourceHub::build().await;
    let server = S3Server::start();
    let database = new_database().await;
    PgMetaStore::connect(&database).await.unwrap().set_setting(setting::ORIGIN, "another.hub").await.unwrap();

    let err = migrate(options(&hub, &database, &server)).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::MigrateTargetNotEmpty, "{err}");
    assert!(err.to_string().contains("already holds a hub (its settings table is not empty)"), "{err}");
    let spool = tempfile::tempdir().unwrap();
    assert_eq!(target_blobs(&server, spool.path()).any_object().await.unwrap(), None, "the bucket was written");
}

#[tokio::test]
async fn a_bucket_prefix_that_holds_objects_is_refused_and_nothing_is_written() {
    let hub = SourceHub::build().await;
    let server = S3Server::start();
    let database = new_database().await;
    let spool = tempfile::tempdir().unwrap();
    let blobs = target_blobs(&server, spool.path());
    let mut sink = blobs.begin_upload(&DropId::random()).await.unwrap();
    sink.write(Bytes::from_static(b"someone else's")).await.unwrap();
    sink.finish().await.unwrap();

    let err = migrate(options(&hub, &database, &server)).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::MigrateTargetNotEmpty, "{err}");
    assert!(err.to_string().contains(&format!("the bucket prefix {PREFIX} already holds objects")), "{err}");
    let target = PgMetaStore::connect(&database).await.unwrap();
    assert_eq!(target.setting(setting::ORIGIN).await.unwrap(), None, "the database was written");
    assert_eq!(target.log_size().await.unwrap(), 0);
}

#[tokio::test]
async fn a_hub_that_serves_is_not_moved() {
    let hub = SourceHub::build().await;
    let server = S3Server::start();
    let database = new_database().await;
    let serving = data_lock::lock(hub.path()).unwrap();
    let err = migrate(options(&hub, &database, &server)).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::DataDirInUse, "{err}");
    drop(serving);

    let not_a_hub = tempfile::tempdir().unwrap();
    let err = migrate(MigrateOptions { data_dir: not_a_hub.path().to_owned(), ..options(&hub, &database, &server) })
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::DataDir, "{err}");

    // An instance directory of a hub on PostgreSQL: the log key, no database.
    std::fs::copy(hub.path().join(LOG_KEY_FILE), not_a_hub.path().join(LOG_KEY_FILE)).unwrap();
    let err = migrate(MigrateOptions { data_dir: not_a_hub.path().to_owned(), ..options(&hub, &database, &server) })
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::MigrateSource, "{err}");
    assert!(err.to_string().contains("it is an instance directory of a hub already on PostgreSQL"), "{err}");
}

#[tokio::test]
async fn a_committed_drop_whose_ciphertext_is_gone_stops_the_move() {
    let hub = SourceHub::build().await;
    let server = S3Server::start();
    let database = new_database().await;
    let files = FsBlobStore::open(hub.path()).unwrap();
    std::fs::remove_file(files.blob_path(&hub.drops.committed_large)).unwrap();
    let err = migrate(options(&hub, &database, &server)).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::MigrateSource, "{err}");
    assert!(err.to_string().contains("is committed but its ciphertext is missing"), "{err}");
}

#[tokio::test]
async fn a_copy_changed_before_it_is_verified_does_not_verify() {
    let hub = SourceHub::build().await;
    let server = S3Server::start();
    let database = new_database().await;
    let options = options(&hub, &database, &server);
    let spool = tempfile::tempdir().unwrap();
    let source = Source::open(hub.path(), &options.s3, spool.path()).unwrap();
    let mut target = Target::connect(&options, spool.path()).await.unwrap();
    target.check_empty().await.unwrap();
    let copied = copy(&source, &mut target).await.unwrap();
    verify(&source, &target, &copied).await.expect("the untouched copy verifies");

    // A row changed in the database.
    let id = hub.drops.committed_small.as_str();
    target.client.execute("UPDATE drops SET expires = expires + 1 WHERE id = $1", &[&id]).await.unwrap();
    let err = verify(&source, &target, &copied).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::MigrateVerifyFailed, "{err}");
    assert!(err.to_string().contains("table drops: row 4 (in the source's order) differs in column expires"), "{err}");
    target.client.execute("UPDATE drops SET expires = expires - 1 WHERE id = $1", &[&id]).await.unwrap();

    // A log entry changed, its row and hash both (as a forger would).
    target.client.execute("UPDATE log_entries SET data = 'forged' WHERE idx = 1", &[]).await.unwrap();
    let err = verify(&source, &target, &copied).await.unwrap_err();
    assert!(err.to_string().contains("table log_entries: row 2"), "{err}");
    let original =
        source.conn.query_row("SELECT data FROM log_entries WHERE idx = 1", [], |r| r.get::<_, Vec<u8>>(0)).unwrap();
    target.client.execute("UPDATE log_entries SET data = $1 WHERE idx = 1", &[&original]).await.unwrap();
    verify(&source, &target, &copied).await.expect("the restored copy verifies");

    // A ciphertext changed in the bucket: its segment rewritten, same length.
    let segments = object_store::path::Path::from(format!("moved/segments/{}", hub.drops.committed_large));
    let raw = s3_builder(&server).with_bucket_name(S3Server::BUCKET).build().unwrap();
    let segment = {
        use futures_util::TryStreamExt as _;
        let listed: Vec<_> = object_store::ObjectStore::list(&raw, Some(&segments)).try_collect().await.unwrap();
        assert_eq!(listed.len(), 1, "{listed:?}");
        listed[0].location.clone()
    };
    let mut forged = hub.bytes[&hub.drops.committed_large].clone();
    forged[1000] ^= 1;
    object_store::ObjectStoreExt::put(&raw, &segment, forged.into()).await.unwrap();
    let err = verify(&source, &target, &copied).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::MigrateVerifyFailed, "{err}");
    assert!(
        err.to_string().contains(&format!("the ciphertext of drop {} read back", hub.drops.committed_large)),
        "{err}"
    );
}

#[tokio::test]
async fn a_hub_whose_larger_ciphertexts_are_in_a_bucket_moves_to_another_prefix() {
    let server = S3Server::start();
    let hub = SourceHub::build_with(Some(&server)).await;
    let database = new_database().await;
    let large = &hub.drops.committed_large;
    assert!(tree(hub.path()).keys().all(|f| !f.contains(large.as_str())), "the large blob is a file");

    let report = migrate(options(&hub, &database, &server)).await.unwrap();
    assert_eq!((report.blobs, report.blob_bytes), (2, 305_000));
    assert_eq!((report.uploads, report.upload_bytes), (2, 103_000));
    let spool = tempfile::tempdir().unwrap();
    let moved = target_blobs(&server, spool.path());
    assert_eq!(read_all(moved.open_blob(large).await.unwrap()).await, hub.bytes[large]);
    let old = ObjectBlobStore::with_builder(s3_builder(&server), &S3Location::parse(OLD_PREFIX).unwrap(), spool.path())
        .unwrap();
    assert_eq!(read_all(old.open_blob(large).await.unwrap()).await, hub.bytes[large], "the source's bucket changed");
}

#[tokio::test]
async fn a_database_of_another_hub_version_is_not_moved() {
    let hub = SourceHub::build().await;
    let server = S3Server::start();
    let database = new_database().await;
    let older = i64::try_from(sqlite::schema_version()).unwrap() - 1;
    Connection::open(hub.path().join(DB_FILE)).unwrap().pragma_update(None, "user_version", older).unwrap();
    let err = migrate(options(&hub, &database, &server)).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::MigrateSource, "{err}");
    assert!(err.to_string().contains(&format!("schema version {older}")), "{err}");
    let target = PgMetaStore::connect(&database).await.unwrap();
    assert_eq!(target.setting(setting::ORIGIN).await.unwrap(), None, "the database was written");
}
