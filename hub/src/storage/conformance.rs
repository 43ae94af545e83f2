//! One suite of [`BlobStore`] behaviour, run against every store: files in
//! the data directory and an S3-compatible object store (a real `s3s-fs`
//! server started by each test), alone and each as the large tier of the
//! [`super::TieredBlobStore`] the hub runs on. Then what only the object
//! store promises: instances sharing one bucket.

use bytes::Bytes;
use sealdrop_proto::ids::DropId;
use sealdrop_testservers::S3Server;
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncReadExt as _;

use super::blob::{BlobError, BlobStore, FsBlobStore};
use super::object::{ObjectBlobStore, S3Location};

/// Segments of the object stores under test: small, so uploads of a few
/// of them cross boundaries quickly, and past the in-memory threshold, so
/// segments also go through the spool file.
const SEGMENT: usize = 512 * 1024;

/// A store under test and what it needs to stay up.
struct Subject {
    store: Box<dyn BlobStore>,
    _dir: tempfile::TempDir,
    _server: Option<S3Server>,
}

impl Subject {
    fn files() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(dir.path()).unwrap();
        Self { store: Box::new(store), _dir: dir, _server: None }
    }

    fn objects() -> Self {
        let server = S3Server::start();
        let dir = tempfile::tempdir().unwrap();
        let store = object_store_on(&server, "s3://sealdrop-test/hub", dir.path()).with_segment_size(SEGMENT);
        Self { store: Box::new(store), _dir: dir, _server: Some(server) }
    }

    /// What the hub runs on: small ciphertexts in the database, larger ones
    /// in files or (`on_objects`) in the object store.
    fn tiered(on_objects: bool) -> Self {
        let Self { store, _dir: dir, _server: server } = if on_objects { Self::objects() } else { Self::files() };
        let meta = super::SqliteMetaStore::open(&dir.path().join("hub.db")).unwrap();
        let store = super::TieredBlobStore::new(meta.inline_blobs(), std::sync::Arc::from(store));
        Self { store: Box::new(store), _dir: dir, _server: server }
    }
}

/// A store on `server`'s bucket at `location`, spooling under `data`.
pub(crate) fn object_store_on(server: &S3Server, location: &str, data: &std::path::Path) -> ObjectBlobStore {
    let builder = object_store::aws::AmazonS3Builder::new()
        .with_endpoint(server.endpoint())
        .with_region(S3Server::REGION)
        .with_access_key_id(S3Server::ACCESS_KEY)
        .with_secret_access_key(S3Server::SECRET_KEY)
        .with_allow_http(true);
    ObjectBlobStore::with_builder(builder, &S3Location::parse(location).unwrap(), data).unwrap()
}

/// Bytes `from..to` of a pattern that differs at every offset mod 251.
fn pattern(from: usize, to: usize) -> Vec<u8> {
    (from..to).map(|i| (i % 251) as u8).collect()
}

/// Writes `bytes` in chunks of `chunk` and finishes.
async fn write_all(sink: &mut Box<dyn super::UploadSink>, bytes: &[u8], chunk: usize) {
    for piece in bytes.chunks(chunk) {
        sink.write(Bytes::copy_from_slice(piece)).await.unwrap();
    }
}

async fn upload(store: &dyn BlobStore, id: &DropId, bytes: &[u8]) {
    let mut sink = store.begin_upload(id).await.unwrap();
    write_all(&mut sink, bytes, 100_003).await;
    sink.finish().await.unwrap();
}

async fn read_blob_from(store: &dyn BlobStore, id: &DropId, start: u64) -> (u64, Vec<u8>) {
    let mut blob = store.open_blob_from(id, start).await.unwrap().expect("the blob exists");
    let mut bytes = Vec::new();
    blob.reader.read_to_end(&mut bytes).await.unwrap();
    (blob.len, bytes)
}

async fn read_upload(store: &dyn BlobStore, id: &DropId) -> Vec<u8> {
    let mut upload = store.open_upload(id).await.unwrap().expect("the upload exists");
    let mut bytes = Vec::new();
    upload.reader.read_to_end(&mut bytes).await.unwrap();
    assert_eq!(upload.len, bytes.len() as u64, "an upload's length is what it reads");
    bytes
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

async fn write_promote_read_delete(store: &dyn BlobStore) {
    let id = DropId::random();
    let content = pattern(0, 3 * SEGMENT + 12_345);
    upload(store, &id, &content).await;
    assert_eq!(store.list_uploads().await.unwrap(), vec![id.clone()]);
    assert_eq!(store.upload_len(&id).await.unwrap(), Some(content.len() as u64));
    assert!(store.open_blob(&id).await.unwrap().is_none(), "an upload is not readable as a blob");
    assert_eq!(store.list_blobs().await.unwrap(), vec![]);

    store.promote(&id).await.unwrap();
    assert_eq!(store.list_uploads().await.unwrap(), vec![], "promotion ends the upload");
    assert_eq!(store.upload_len(&id).await.unwrap(), None);
    assert_eq!(store.list_blobs().await.unwrap(), vec![id.clone()]);
    let (len, bytes) = read_blob_from(store, &id, 0).await;
    assert_eq!(len, content.len() as u64);
    assert!(sha256(&bytes) == sha256(&content), "the blob read back has another SHA-256");

    assert!(store.delete_blob(&id).await.unwrap());
    assert!(store.open_blob(&id).await.unwrap().is_none());
    assert_eq!(store.list_blobs().await.unwrap(), vec![]);
    assert!(!store.delete_blob(&id).await.unwrap(), "deleting twice reports nothing deleted");
}

async fn an_upload_cut_off_continues_where_it_stopped(store: &dyn BlobStore) {
    let id = DropId::random();
    let content = pattern(0, 2 * SEGMENT + 777);
    // The connection breaks mid-segment: the service finishes the sink to
    // keep what arrived.
    let cut = SEGMENT + 1_001;
    let mut sink = store.begin_upload(&id).await.unwrap();
    write_all(&mut sink, &content[..cut], 65_536).await;
    sink.finish().await.unwrap();
    assert_eq!(store.upload_len(&id).await.unwrap(), Some(cut as u64));
    assert!(read_upload(store, &id).await == content[..cut], "the kept bytes differ");

    let mut sink = store.append_upload(&id).await.unwrap();
    write_all(&mut sink, &content[cut..], 65_536).await;
    sink.finish().await.unwrap();
    assert_eq!(store.upload_len(&id).await.unwrap(), Some(content.len() as u64));
    store.promote(&id).await.unwrap();
    let (_, bytes) = read_blob_from(store, &id, 0).await;
    assert!(sha256(&bytes) == sha256(&content), "the continued blob has another SHA-256");
}

async fn beginning_again_replaces_the_upload_and_promotion_needs_one(store: &dyn BlobStore) {
    let id = DropId::random();
    assert!(matches!(store.promote(&id).await, Err(BlobError::NoUpload(_))));
    upload(store, &id, &pattern(0, SEGMENT + 5)).await;
    upload(store, &id, b"short").await;
    assert_eq!(store.upload_len(&id).await.unwrap(), Some(5));
    assert_eq!(read_upload(store, &id).await, b"short");
    // An empty upload still exists, with no bytes.
    store.begin_upload(&id).await.unwrap().finish().await.unwrap();
    assert_eq!(store.upload_len(&id).await.unwrap(), Some(0));
    store.promote(&id).await.unwrap();
    assert_eq!(read_blob_from(store, &id, 0).await, (0, vec![]));
}

async fn a_blob_reads_from_any_offset(store: &dyn BlobStore) {
    let id = DropId::random();
    let total = 3 * SEGMENT + SEGMENT / 2;
    let content = pattern(0, total);
    upload(store, &id, &content).await;
    store.promote(&id).await.unwrap();
    for start in [0, 1, SEGMENT - 1, SEGMENT, SEGMENT + 1, 2 * SEGMENT, 3 * SEGMENT + 7, total - 1, total, total + 10] {
        let (len, bytes) = read_blob_from(store, &id, start as u64).await;
        let expected = &content[start.min(total)..];
        assert_eq!(len, expected.len() as u64, "from {start}");
        assert!(bytes == expected, "the bytes from {start} differ");
    }
}

async fn a_missing_drop_has_nothing(store: &dyn BlobStore) {
    let id = DropId::random();
    assert!(store.open_blob(&id).await.unwrap().is_none());
    assert!(store.open_blob_from(&id, 3).await.unwrap().is_none());
    assert!(store.open_upload(&id).await.unwrap().is_none());
    assert_eq!(store.upload_len(&id).await.unwrap(), None);
    assert!(!store.delete_blob(&id).await.unwrap());
    assert!(!store.delete_upload(&id).await.unwrap());
    assert!(store.append_upload(&id).await.is_err(), "continuing an upload that is not there fails at once");
    assert_eq!(store.list_uploads().await.unwrap(), vec![]);
    assert_eq!(store.list_blobs().await.unwrap(), vec![]);
}

async fn uploads_and_blobs_are_deleted_and_listed_apart(store: &dyn BlobStore) {
    let (a, b, c) = (DropId::random(), DropId::random(), DropId::random());
    for id in [&a, &b, &c] {
        upload(store, id, &pattern(0, SEGMENT + 3)).await;
    }
    store.promote(&b).await.unwrap();
    // A drop may have a blob and a new upload: neither touches the other.
    upload(store, &b, b"another upload").await;
    let mut uploads = vec![a.clone(), b.clone(), c.clone()];
    uploads.sort();
    assert_eq!(store.list_uploads().await.unwrap(), uploads);
    assert_eq!(store.list_blobs().await.unwrap(), vec![b.clone()]);

    assert!(store.delete_upload(&b).await.unwrap());
    assert!(!store.delete_upload(&b).await.unwrap());
    let (_, bytes) = read_blob_from(store, &b, 0).await;
    assert!(bytes == pattern(0, SEGMENT + 3), "deleting an upload changed the blob");
    assert!(store.delete_upload(&a).await.unwrap());
    let mut left = store.list_uploads().await.unwrap();
    left.sort();
    assert_eq!(left, vec![c.clone()]);
    assert_eq!(read_upload(store, &c).await.len(), SEGMENT + 3);
}

macro_rules! suite {
    ($($behaviour:ident),* $(,)?) => {
        mod files {
            $(
                #[tokio::test]
                async fn $behaviour() {
                    let subject = super::Subject::files();
                    super::$behaviour(subject.store.as_ref()).await;
                }
            )*
        }
        mod objects {
            $(
                #[tokio::test]
                async fn $behaviour() {
                    let subject = super::Subject::objects();
                    super::$behaviour(subject.store.as_ref()).await;
                }
            )*
        }
        mod tiered_files {
            $(
                #[tokio::test]
                async fn $behaviour() {
                    let subject = super::Subject::tiered(false);
                    super::$behaviour(subject.store.as_ref()).await;
                }
            )*
        }
        mod tiered_objects {
            $(
                #[tokio::test]
                async fn $behaviour() {
                    let subject = super::Subject::tiered(true);
                    super::$behaviour(subject.store.as_ref()).await;
                }
            )*
        }
    };
}

suite!(
    write_promote_read_delete,
    an_upload_cut_off_continues_where_it_stopped,
    beginning_again_replaces_the_upload_and_promotion_needs_one,
    a_blob_reads_from_any_offset,
    a_missing_drop_has_nothing,
    uploads_and_blobs_are_deleted_and_listed_apart,
);

/// Two instances of the hub on one bucket, each with its own data
/// directory (spool).
fn two_instances(server: &S3Server) -> (ObjectBlobStore, ObjectBlobStore, [tempfile::TempDir; 2]) {
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let one = object_store_on(server, "s3://sealdrop-test/hub", dirs[0].path()).with_segment_size(SEGMENT);
    let two = object_store_on(server, "s3://sealdrop-test/hub", dirs[1].path()).with_segment_size(SEGMENT);
    (one, two, dirs)
}

#[tokio::test]
async fn an_upload_cut_off_on_a_dead_instance_continues_on_another_from_its_last_segment() {
    let server = S3Server::start();
    let (one, two, _dirs) = two_instances(&server);
    let id = DropId::random();
    let content = pattern(0, 3 * SEGMENT + 99);
    let mut sink = one.begin_upload(&id).await.unwrap();
    write_all(&mut sink, &content[..2 * SEGMENT + 4_000], 64 * 1024).await;
    // The instance dies: the sink is never finished, its spooled bytes are lost.
    drop(sink);
    drop(one);

    assert_eq!(two.upload_len(&id).await.unwrap(), Some(2 * SEGMENT as u64), "complete segments survive");
    assert!(read_upload(&two, &id).await == content[..2 * SEGMENT]);
    let mut sink = two.append_upload(&id).await.unwrap();
    write_all(&mut sink, &content[2 * SEGMENT..], 64 * 1024).await;
    sink.finish().await.unwrap();
    two.promote(&id).await.unwrap();
    let (_, bytes) = read_blob_from(&two, &id, 0).await;
    assert!(sha256(&bytes) == sha256(&content));
}

#[tokio::test]
async fn two_continuations_of_one_upload_cannot_overwrite_each_other() {
    let server = S3Server::start();
    let (one, two, _dirs) = two_instances(&server);
    let id = DropId::random();
    upload(&one, &id, &pattern(0, SEGMENT)).await;
    let mut first = one.append_upload(&id).await.unwrap();
    let mut second = two.append_upload(&id).await.unwrap();
    first.write(Bytes::from(vec![1u8; 10])).await.unwrap();
    first.finish().await.unwrap();
    second.write(Bytes::from(vec![2u8; 10])).await.unwrap();
    let err = second.finish().await.expect_err("the second continuation wrote over the first");
    assert!(matches!(err, BlobError::ObjectStore { .. }), "{err}");
    // A continuation whose segment is refused at once stays failed.
    let mut third = two.append_upload(&id).await.unwrap();
    let mut fourth = one.append_upload(&id).await.unwrap();
    third.write(Bytes::from(vec![3u8; SEGMENT])).await.unwrap();
    assert!(fourth.write(Bytes::from(vec![4u8; SEGMENT])).await.is_err(), "a segment was written twice");
    assert!(fourth.write(Bytes::from_static(b"more")).await.is_err());
    assert!(fourth.finish().await.is_err(), "a failed upload finished");
    third.finish().await.unwrap();
    let held = read_upload(&two, &id).await;
    assert_eq!(held.len(), 2 * SEGMENT + 10);
    assert_eq!(&held[SEGMENT..SEGMENT + 10], &[1u8; 10]);
    assert!(held[SEGMENT + 10..].iter().all(|b| *b == 3));
}

#[tokio::test]
async fn a_blob_promoted_on_one_instance_is_read_and_deleted_on_another() {
    let server = S3Server::start();
    let (one, two, _dirs) = two_instances(&server);
    let id = DropId::random();
    let content = pattern(0, SEGMENT * 2 + 1);
    upload(&one, &id, &content).await;
    one.promote(&id).await.unwrap();
    let (len, bytes) = read_blob_from(&two, &id, SEGMENT as u64 + 1).await;
    assert_eq!(len, SEGMENT as u64);
    assert!(bytes == content[SEGMENT + 1..]);
    assert!(two.delete_blob(&id).await.unwrap());
    assert!(one.open_blob(&id).await.unwrap().is_none());
    assert_eq!(one.list_blobs().await.unwrap(), vec![]);
}

#[tokio::test]
async fn a_large_upload_goes_through_full_size_segments() {
    let server = S3Server::start();
    let dir = tempfile::tempdir().unwrap();
    let store = object_store_on(&server, "s3://sealdrop-test", dir.path());
    let id = DropId::random();
    let content = pattern(0, 2 * super::object::SEGMENT_SIZE + 333);
    upload(&store, &id, &content).await;
    store.promote(&id).await.unwrap();
    let (_, bytes) = read_blob_from(&store, &id, super::object::SEGMENT_SIZE as u64 - 1).await;
    assert!(bytes == content[super::object::SEGMENT_SIZE - 1..]);
    let spooled = std::fs::read_dir(dir.path().join("spool")).unwrap().count();
    assert_eq!(spooled, 0, "spool files are anonymous");
}

#[tokio::test]
async fn hubs_with_other_prefixes_do_not_see_each_other_or_foreign_objects() {
    let server = S3Server::start();
    let dir = tempfile::tempdir().unwrap();
    let london = object_store_on(&server, "s3://sealdrop-test/london", dir.path());
    let leeds = object_store_on(&server, "s3://sealdrop-test/leeds", dir.path());
    let id = DropId::random();
    upload(&london, &id, b"for london").await;
    london.promote(&id).await.unwrap();
    assert_eq!(leeds.list_blobs().await.unwrap(), vec![]);
    assert!(leeds.open_blob(&id).await.unwrap().is_none());

    let raw = raw_bucket(&server);
    let foreign = object_store::path::Path::from("london/blobs/notes.txt");
    object_store::ObjectStoreExt::put(&raw, &foreign, Bytes::from_static(b"x").into()).await.unwrap();
    assert_eq!(london.list_blobs().await.unwrap(), vec![id]);
}

#[tokio::test]
async fn a_survey_counts_what_a_hub_holds_and_fails_on_a_missing_bucket() {
    let server = S3Server::start();
    let dir = tempfile::tempdir().unwrap();
    let store = object_store_on(&server, "s3://sealdrop-test/hub", dir.path());
    let (a, b) = (DropId::random(), DropId::random());
    upload(&store, &a, b"committed").await;
    store.promote(&a).await.unwrap();
    upload(&store, &b, b"arriving").await;
    let builder = || {
        object_store::aws::AmazonS3Builder::new()
            .with_endpoint(server.endpoint())
            .with_region(S3Server::REGION)
            .with_access_key_id(S3Server::ACCESS_KEY)
            .with_secret_access_key(S3Server::SECRET_KEY)
            .with_allow_http(true)
    };
    let location = S3Location::parse("s3://sealdrop-test/hub").unwrap();
    let found = super::object::survey_with(builder(), &location).await.unwrap();
    assert_eq!(found, super::object::Contents { blobs: 1, uploads: 1 });
    let missing = S3Location::parse("s3://no-such-bucket/hub").unwrap();
    let err = super::object::survey_with(builder(), &missing).await.expect_err("a missing bucket was listed");
    assert!(err.to_string().contains("cannot list"), "{err}");
    let refused = builder().with_secret_access_key("wrong");
    assert!(super::object::survey_with(refused, &location).await.is_err(), "wrong credentials were accepted");
}

/// The bucket of `server`, straight.
fn raw_bucket(server: &S3Server) -> object_store::aws::AmazonS3 {
    object_store::aws::AmazonS3Builder::new()
        .with_endpoint(server.endpoint())
        .with_region(S3Server::REGION)
        .with_access_key_id(S3Server::ACCESS_KEY)
        .with_secret_access_key(S3Server::SECRET_KEY)
        .with_allow_http(true)
        .with_bucket_name(S3Server::BUCKET)
        .build()
        .unwrap()
}

/// Every key under `prefix` in `server`'s bucket.
async fn keys_under(server: &S3Server, prefix: &str) -> Vec<String> {
    use futures_util::TryStreamExt as _;
    let prefix = object_store::path::Path::from(prefix);
    let listed: Vec<_> =
        object_store::ObjectStore::list(&raw_bucket(server), Some(&prefix)).try_collect().await.unwrap();
    listed.into_iter().map(|meta| meta.location.to_string()).collect()
}

#[tokio::test]
async fn nothing_is_left_behind_once_a_drops_upload_and_blob_are_deleted() {
    let server = S3Server::start();
    let dir = tempfile::tempdir().unwrap();
    let store = object_store_on(&server, "s3://sealdrop-test/hub", dir.path()).with_segment_size(SEGMENT);
    let id = DropId::random();
    // Two generations of upload, a blob, and a third upload beside it.
    upload(&store, &id, &pattern(0, 2 * SEGMENT + 1)).await;
    upload(&store, &id, &pattern(0, SEGMENT + 1)).await;
    store.promote(&id).await.unwrap();
    upload(&store, &id, &pattern(0, SEGMENT + 2)).await;
    let keys = keys_under(&server, "hub").await;
    assert_eq!(keys.len(), 2 + 2 + 2, "a marker, a manifest and two segments for each: {keys:?}");

    // A delete of the blob cut off after its segments went: the manifest
    // is still listed, and deleting the blob again finishes.
    let manifest = super::object::Manifest::parse(
        &object_store::ObjectStoreExt::get(&raw_bucket(&server), &format!("hub/blobs/{id}").as_str().into())
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
    )
    .unwrap();
    for key in keys_under(&server, &format!("hub/segments/{id}/{}", manifest.generation)).await {
        object_store::ObjectStoreExt::delete(&raw_bucket(&server), &key.as_str().into()).await.unwrap();
    }
    assert_eq!(store.list_blobs().await.unwrap(), vec![id.clone()]);
    assert!(store.delete_blob(&id).await.unwrap());
    assert!(store.delete_upload(&id).await.unwrap());
    assert_eq!(keys_under(&server, "hub").await, Vec::<String>::new());
}

#[tokio::test]
async fn a_marker_or_manifest_the_hub_did_not_write_is_refused_not_followed() {
    let server = S3Server::start();
    let dir = tempfile::tempdir().unwrap();
    let store = object_store_on(&server, "s3://sealdrop-test/hub", dir.path());
    let id = DropId::random();
    let raw = raw_bucket(&server);
    let put = |key: String, body: &'static [u8]| {
        let raw = &raw;
        async move { object_store::ObjectStoreExt::put(raw, &key.as_str().into(), body.into()).await.unwrap() }
    };
    put(format!("hub/uploads/{id}"), b"../../blobs").await;
    put(format!("hub/blobs/{id}"), br#"{"generation":"x/../y","segments":[5]}"#).await;
    for err in [store.upload_len(&id).await.err(), store.promote(&id).await.err(), store.open_blob(&id).await.err()] {
        let err = err.expect("a foreign marker or manifest was used");
        assert!(err.to_string().contains("is not an upload generation"), "{err}");
    }
}
