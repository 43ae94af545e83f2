//! Several instances of one hub: [`Hub`] values, each with its own data
//! directory (holding a copy of the log key) and its own clock, opened on
//! one real PostgreSQL database (from the test binary's cluster) and one
//! store of ciphertexts (a shared folder, or a real S3-compatible server
//! where the blobs matter).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use jiff::Timestamp;
use sealdrop_log::entry::{DeletionReason, HubStatement, LogEntry};
use sealdrop_proto::api::DropState;
use sealdrop_proto::clock::Clock;
use sealdrop_proto::directory::{Directory, DirectoryError, SignedDirectory};
use sealdrop_proto::ids::DropId;
use sealdrop_proto::keys::{MemberSecretKey, NoteSigningKey};
use sealdrop_testservers::S3Server;

use super::Hub;
use crate::storage::meta::{CommitRecord, ContentDigest, NewDrop, StoredDirectory, setting};
use crate::storage::postgres::PgMetaStore;
use crate::storage::{BlobStore, BlobsLocation, DirectoryStore as _, SettingsStore as _, Stores};
use crate::{log_key, transfer_log};

const ORIGIN: &str = "hub.test/sealdrop";
/// When the first instance's clock starts.
const START: i64 = 1_780_000_000;

/// A clock a test sets by hand.
#[derive(Debug)]
pub(crate) struct TestClock(AtomicI64);

impl TestClock {
    pub(crate) fn advance(&self, secs: i64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
}

impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_second(self.0.load(Ordering::SeqCst)).unwrap()
    }
}

/// Where the ciphertexts of every instance live.
enum SharedBlobs {
    /// A folder every instance's [`crate::storage::FsBlobStore`] opens.
    Folder(tempfile::TempDir),
    /// A real S3-compatible server's bucket.
    S3(S3Server),
}

/// One hub's shared back ends, initialised, and what an instance needs to
/// open on them.
pub(crate) struct SharedHub {
    url: String,
    pub(crate) authority: NoteSigningKey,
    pub(crate) keys: Vec<MemberSecretKey>,
    pub(crate) directory: Directory,
    blobs: SharedBlobs,
    /// Holds the log key every instance copies into its data directory.
    keys_dir: tempfile::TempDir,
}

/// One instance: a hub, its clock and its data directory.
pub(crate) struct Instance {
    pub(crate) hub: Hub,
    pub(crate) clock: Arc<TestClock>,
    _data: tempfile::TempDir,
}

impl SharedHub {
    /// A new database on the test cluster, initialised as `init` would with
    /// the sample directory, and ciphertexts in a folder or (`s3`) a bucket.
    pub(crate) async fn new(s3: bool) -> Self {
        let url = crate::storage::meta_conformance::postgres_url().await;
        let (authority, keys, directory) = crate::api::test_support::sample();
        let store = PgMetaStore::connect(&url).await.unwrap();
        store.set_setting(setting::ORIGIN, ORIGIN).await.unwrap();
        store.set_setting(setting::AUTHORITY, &authority.verifier().to_string()).await.unwrap();
        let keys_dir = tempfile::tempdir().unwrap();
        let log_key = log_key::create(&keys_dir.path().join(log_key::LOG_KEY_FILE), ORIGIN).unwrap();
        let signed = SignedDirectory::sign(directory.clone(), &authority).unwrap();
        let at = Timestamp::from_second(START).unwrap();
        let entry = transfer_log::directory_entry(&log_key, at, &signed).unwrap();
        let stored =
            StoredDirectory { serial: 1, note: signed.note.clone(), sha256: signed.sha256_hex(), accepted_at: START };
        store.insert_directory(&stored, &entry, Box::new(log_key)).await.unwrap();
        let blobs = if s3 {
            SharedBlobs::S3(tokio::task::spawn_blocking(S3Server::start).await.unwrap())
        } else {
            SharedBlobs::Folder(tempfile::tempdir().unwrap())
        };
        Self { url, authority, keys, directory, blobs, keys_dir }
    }

    /// Opens another instance whose clock is `skew` seconds ahead of
    /// [`START`] (behind if negative).
    pub(crate) async fn instance(&self, skew: i64) -> Instance {
        let data = tempfile::tempdir().unwrap();
        std::fs::copy(self.keys_dir.path().join(log_key::LOG_KEY_FILE), data.path().join(log_key::LOG_KEY_FILE))
            .unwrap();
        let store = PgMetaStore::connect(&self.url).await.unwrap();
        let stores = match &self.blobs {
            SharedBlobs::Folder(dir) => Stores::postgres(store, dir.path(), &BlobsLocation::Files).unwrap(),
            SharedBlobs::S3(server) => {
                let mut stores = Stores::postgres(store, data.path(), &BlobsLocation::Files).unwrap();
                let location = "s3://sealdrop-test/hub";
                stores.blobs = Arc::new(crate::storage::conformance::object_store_on(server, location, data.path()));
                stores
            }
        };
        let clock = Arc::new(TestClock(AtomicI64::new(START + skew)));
        let hub = Hub::start(data.path(), stores, clock.clone()).await.unwrap();
        Instance { hub, clock, _data: data }
    }

    /// The directory of the sample with `serial`, signed by the authority.
    pub(crate) fn signed_directory(&self, serial: u64, edit: impl FnOnce(&mut Directory)) -> String {
        let mut directory = Directory { serial, ..self.directory.clone() };
        edit(&mut directory);
        SignedDirectory::sign(directory, &self.authority).unwrap().note
    }
}

/// Every entry's time, in log order.
async fn entry_times(hub: &Hub) -> Vec<Timestamp> {
    let size = hub.log().log_size().await.unwrap();
    let entries = hub.log().log_entries(0, size).await.unwrap();
    entries.iter().map(|e| LogEntry::from_bytes(e).unwrap().time().unwrap()).collect()
}

/// Audits the whole log offline as `sealdrop audit verify` does.
async fn audit_passes(hub: &Hub, shared: &SharedHub) {
    let checkpoint = hub.log().latest_checkpoint().await.unwrap().unwrap().note;
    let mut directories = std::collections::BTreeMap::new();
    let current = hub.directories().current_directory().await.unwrap().unwrap().serial;
    for serial in 1..=current {
        if let Some(stored) = hub.directories().directory(serial).await.unwrap() {
            directories.insert(serial, stored.note);
        }
    }
    let size = hub.log().log_size().await.unwrap();
    let entries = hub.log().log_entries(0, size).await.unwrap();
    let input = sealdrop_log::audit::AuditInput::new(
        hub.log_verifier(),
        shared.authority.verifier(),
        checkpoint,
        directories,
        entries.into_iter().map(Ok),
        0,
    );
    let report = sealdrop_log::audit::verify(input);
    assert!(report.ok(), "the audit failed:\n{report}");
}

/// An instance whose clock is behind the one that appended last gives its
/// entries the last entry's time, never an earlier one: the log's times
/// never go back and `audit verify` passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_whose_clock_is_behind_never_logs_an_earlier_time() {
    let shared = SharedHub::new(false).await;
    let ahead = shared.instance(0).await;
    let behind = shared.instance(-30).await;
    ahead.hub.publish_directory(&shared.signed_directory(2, |_| {})).await.unwrap();
    behind.hub.publish_directory(&shared.signed_directory(3, |_| {})).await.unwrap();
    for instance in [&ahead, &behind] {
        instance.clock.advance(10);
    }
    behind.hub.publish_directory(&shared.signed_directory(4, |_| {})).await.unwrap();
    ahead.hub.publish_directory(&shared.signed_directory(5, |_| {})).await.unwrap();
    let t = |secs| Timestamp::from_second(START + secs).unwrap();
    assert_eq!(entry_times(&ahead.hub).await, [t(0), t(0), t(0), t(0), t(10)]);
    audit_passes(&behind.hub, &shared).await;
}

/// Appends racing on two instances whose clocks differ by four seconds
/// (each moving on as they go) make one log whose times never go back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_appends_on_instances_with_different_clocks_keep_times_in_order() {
    const TASKS_PER_INSTANCE: usize = 3;
    const APPENDS_PER_TASK: usize = 12;
    let shared = SharedHub::new(false).await;
    let instances = [shared.instance(2).await, shared.instance(-2).await];
    let mut tasks = Vec::new();
    for instance in &instances {
        for _ in 0..TASKS_PER_INSTANCE {
            let (hub, clock) = (instance.hub.clone(), instance.clock.clone());
            tasks.push(tokio::spawn(async move {
                for n in 0..APPENDS_PER_TASK {
                    if n % 4 == 3 {
                        clock.advance(1);
                    }
                    let turn = hub.log_turn().await.unwrap();
                    let statement = HubStatement::DropDeleted {
                        time: turn.now(),
                        drop: DropId::random(),
                        reason: DeletionReason::Expired,
                    };
                    let entry = transfer_log::hub_entry(hub.log_key(), &statement).to_bytes().unwrap();
                    hub.log().append_log(&[entry], Box::new(turn)).await.unwrap();
                }
            }));
        }
    }
    for task in tasks {
        task.await.unwrap();
    }
    let times = entry_times(&instances[0].hub).await;
    assert_eq!(times.len(), 1 + 2 * TASKS_PER_INSTANCE * APPENDS_PER_TASK);
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "the log's times went back: {times:?}");
}

/// Writes `content` as the upload of `id` and promotes it, as a commit does
/// before its database transaction.
async fn upload_and_promote(blobs: &dyn BlobStore, id: &DropId, content: &[u8]) {
    let mut sink = blobs.begin_upload(id).await.unwrap();
    sink.write(Bytes::copy_from_slice(content)).await.unwrap();
    sink.finish().await.unwrap();
    blobs.promote(id).await.unwrap();
}

/// Two instances: the first opened leads the periodic work and the other
/// does none of it; when the leader goes, the other takes over at its next
/// tick and first cleans up what the leader may have left half done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_instance_sweeps_and_another_takes_over_when_it_goes() {
    let shared = SharedHub::new(false).await;
    let leader = shared.instance(0).await;
    let follower = shared.instance(0).await;
    assert!(leader.hub.periodic_work().await.unwrap().is_some(), "the first instance leads");
    for _ in 0..3 {
        assert!(follower.hub.periodic_work().await.unwrap().is_none(), "the other does not sweep");
    }
    // A blob of a drop the database does not know: what a leader that died
    // between ending a drop and deleting its blob leaves.
    let orphan = DropId::random();
    upload_and_promote(follower.hub.blobs(), &orphan, b"left behind").await;
    assert!(leader.hub.periodic_work().await.unwrap().is_some(), "the leader keeps the lead");

    drop(leader);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let (cleanup, _swept) = loop {
        if let Some(work) = follower.hub.periodic_work().await.unwrap() {
            break work;
        }
        assert!(tokio::time::Instant::now() < deadline, "nobody took the lead over");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(cleanup.blobs_removed, 1, "taking the lead cleans up first");
    assert!(follower.hub.blobs().open_blob(&orphan).await.unwrap().is_none());
    let (again, _) = follower.hub.periodic_work().await.unwrap().expect("it keeps the lead");
    assert_eq!(again, Default::default(), "and cleans up only when it takes it");
}

/// Instance A has promoted a drop's upload to its blob and is about to
/// commit when instance B takes the lead and cleans up: the blob of the
/// open drop is left alone, so A's commit leaves a committed drop with its
/// ciphertext (on a real S3-compatible server).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_up_on_another_instance_keeps_a_blob_about_to_be_committed() {
    let shared = SharedHub::new(true).await;
    let a = shared.instance(0).await;
    let b = shared.instance(0).await;
    let (sender, recipient) = (&shared.keys[0], &shared.keys[1]);
    let id = DropId::random();
    let now = a.hub.now().as_second();
    let new = NewDrop {
        id: id.clone(),
        sender: sender.party.clone(),
        sender_member: sender.member.clone(),
        agreement: "inner-fsm".into(),
        created: now,
        expires: now + 86_400,
        recipients: vec![recipient.party.clone()],
        idempotency_key: None,
        durable_now: true,
    };
    a.hub.drops().create_drop(&new).await.unwrap();
    let content = b"the ciphertext".to_vec();
    let digest = ContentDigest { sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&content)), len: 14 };
    // A's upload, recorded, then promoted by A's commit...
    upload_and_promote(a.hub.blobs(), &id, &content).await;
    a.hub.drops().set_upload(&id, Some(&digest), now).await.unwrap();
    // ...when B cleans up, as it does on taking the lead.
    let report = b.hub.clean_up().await.unwrap();
    assert_eq!(report.blobs_removed, 0, "{report:?}");
    // A's commit goes through, and the committed drop has its ciphertext.
    let turn = a.hub.log_turn().await.unwrap();
    let entry = LogEntry::DropCommitted { committed: turn.now(), manifest: "a manifest".into() }.to_bytes().unwrap();
    let record = CommitRecord {
        sender_member: sender.member.clone(),
        manifest: "a manifest".into(),
        content: digest,
        committed: turn.now().as_second(),
        log_entry: entry,
    };
    assert!(a.hub.drops().commit_drop(&id, &record, Box::new(turn)).await.unwrap().is_some());
    assert_eq!(b.hub.drops().drop_state(&id).await.unwrap(), Some(DropState::Committed));
    let blob = b.hub.blobs().open_blob(&id).await.unwrap().expect("the committed drop has its blob");
    assert_eq!(blob.len, 14);
    // What is not about to be committed is still cleaned up on a shared store.
    let orphan = DropId::random();
    upload_and_promote(a.hub.blobs(), &orphan, b"left behind").await;
    assert_eq!(b.hub.clean_up().await.unwrap().blobs_removed, 1);
}

/// Serves `hub` on a loopback port until the test ends; its base URL.
async fn serve(hub: &Hub) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(crate::serve(listener, hub.clone(), std::future::pending()));
    base
}

/// `GET /v1/inbox` signed by `key` at `hub`'s time: the status.
async fn inbox_status(client: &reqwest::Client, base: &str, hub: &Hub, key: &MemberSecretKey) -> u16 {
    let auth =
        sealdrop_proto::request::sign_request(&key.signing, "GET", "/v1/inbox", hub.now().as_second(), Some(b""));
    let mut request = client.get(format!("{base}/v1/inbox"));
    for (name, value) in auth.headers() {
        request = request.header(name, value);
    }
    request.send().await.unwrap().status().as_u16()
}

/// A directory accepted on instance A that drops a member's key is in
/// force on instance B within [`DIRECTORY_CHECK_INTERVAL`]: B refuses a
/// request that key signs, and B refuses to accept an older directory
/// than the one A stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_removed_on_one_instance_stops_working_on_another() {
    use super::DIRECTORY_CHECK_INTERVAL;
    let shared = SharedHub::new(false).await;
    let (a, b) = (shared.instance(0).await, shared.instance(0).await);
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let base_b = serve(&b.hub).await;
    let islington = &shared.keys[1];
    assert_eq!(inbox_status(&client, &base_b, &b.hub, islington).await, 200);

    let replacement = MemberSecretKey::generate(islington.party.clone(), "new-team".parse().unwrap());
    let rotated = shared.signed_directory(3, |directory| {
        let party = directory.parties.iter_mut().find(|p| p.id == islington.party).unwrap();
        party.members =
            vec![sealdrop_proto::directory::Party::with_member("Islington", replacement.public()).members[0].clone()];
    });
    a.hub.publish_directory(&rotated).await.unwrap();
    tokio::time::sleep(DIRECTORY_CHECK_INTERVAL + Duration::from_millis(100)).await;
    assert_eq!(inbox_status(&client, &base_b, &b.hub, islington).await, 401, "the removed key is refused on B");
    assert_eq!(inbox_status(&client, &base_b, &b.hub, &replacement).await, 200, "its replacement works on B");
    assert_eq!(b.hub.directory().directory.serial, 3);

    // B's own acceptance checks against the newest stored directory.
    let older = shared.signed_directory(2, |_| {});
    let err = b.hub.publish_directory(&older).await.unwrap_err();
    assert!(matches!(err, super::PublishError::Directory(DirectoryError::Rollback { .. })), "{err}");
}

/// Stores a new open drop from `sender` to `recipient` on `hub`.
async fn open_drop(hub: &Hub, sender: &MemberSecretKey, recipient: &MemberSecretKey) -> DropId {
    let id = DropId::random();
    let now = hub.now().as_second();
    let new = NewDrop {
        id: id.clone(),
        sender: sender.party.clone(),
        sender_member: sender.member.clone(),
        agreement: "inner-fsm".into(),
        created: now,
        expires: now + 86_400,
        recipients: vec![recipient.party.clone()],
        idempotency_key: None,
        durable_now: true,
    };
    hub.drops().create_drop(&new).await.unwrap();
    id
}

/// A party's upload streaming on instance A counts against its bytes quota
/// on instance B: B refuses an upload that would take the party past it,
/// and accepts one that fits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partys_uploads_on_two_instances_count_against_one_quota() {
    use crate::quota::Quotas;
    use crate::service::Drops;
    use crate::service::upload::{BodyBreak, UploadRequest};
    use sealdrop_proto::error_code::ErrorCode;
    const MIB: usize = 1 << 20;
    let shared = SharedHub::new(false).await;
    let quotas = Quotas { held_bytes: 4 << 20, open_uploads: 16 };
    let (a, b) = (shared.instance(0).await, shared.instance(0).await);
    let (hub_a, hub_b) = (a.hub.clone().with_quotas(quotas), b.hub.clone().with_quotas(quotas));
    let (sender, recipient) = (&shared.keys[0], &shared.keys[1]);
    let caller = crate::api::test_support::caller_of(&shared.directory, sender);
    let (x, y) = (open_drop(&hub_a, sender, recipient).await, open_drop(&hub_b, sender, recipient).await);

    // On A: 3 MiB arrive, and the upload goes on (the sender is slow).
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Bytes, BodyBreak>>(4);
    let uploading = tokio::spawn({
        let (hub, caller, x) = (hub_a.clone(), caller.clone(), x.clone());
        async move {
            let body = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
            let request = UploadRequest { offset: 0, content_length: None, signed_sha256: None, body };
            Drops::new(&hub).upload(&caller, x, request).await
        }
    });
    for _ in 0..12 {
        tx.send(Ok(Bytes::from(vec![7u8; MIB / 4]))).await.unwrap();
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while hub_b.blobs().upload_len(&x).await.unwrap().unwrap_or(0) < 2 * MIB as u64 {
        assert!(tokio::time::Instant::now() < deadline, "A's upload never reached the shared store");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // On B: 2 MiB more would be over 4 MiB.
    let upload_on_b = |len: usize| {
        let request = UploadRequest {
            offset: 0,
            content_length: Some(len as u64),
            signed_sha256: None,
            body: futures_util::stream::iter([Ok::<_, BodyBreak>(Bytes::from(vec![1u8; len]))]),
        };
        let (hub, caller, y) = (hub_b.clone(), caller.clone(), y.clone());
        async move { Drops::new(&hub).upload(&caller, y, request).await }
    };
    let refused = upload_on_b(2 * MIB).await.unwrap_err();
    assert_eq!(refused.code(), ErrorCode::QuotaHeldBytes, "{refused:?}");
    // Half a MiB fits.
    assert_eq!(upload_on_b(MIB / 2).await.unwrap().len, (MIB / 2) as u64);
    drop(tx);
    assert_eq!(uploading.await.unwrap().unwrap().len, 3 * MIB as u64);
}

/// A drop's lock taken on one instance keeps the other waiting, and only
/// for that drop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drops_lock_holds_across_instances() {
    let shared = SharedHub::new(false).await;
    let (a, b) = (shared.instance(0).await, shared.instance(0).await);
    let id = DropId::random();
    let held = a.hub.lock_drop(&id).await.unwrap();
    assert!(b.hub.locks().try_lock(&id, b.hub.coordination()).await.unwrap().is_none());
    let waiting = tokio::spawn({
        let (hub, id) = (b.hub.clone(), id.clone());
        async move { drop(hub.lock_drop(&id).await.unwrap()) }
    });
    drop(b.hub.lock_drop(&DropId::random()).await.unwrap());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "B waits while A holds the drop's lock");
    drop(held);
    tokio::time::timeout(Duration::from_secs(5), waiting).await.expect("B takes it once A gives it up").unwrap();
    drop(a.hub.lock_drop(&id).await.unwrap());
}

/// An upload still streaming on instance A, started longer ago than the
/// resume window by instance B's clock, is left alone by B's sweep; A's
/// upload then completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweeper_on_another_instance_leaves_an_upload_being_written_alone() {
    use crate::service::Drops;
    use crate::service::upload::{BodyBreak, UploadRequest};
    let shared = SharedHub::new(false).await;
    let (a, b) = (shared.instance(0).await, shared.instance(0).await);
    let (sender, recipient) = (&shared.keys[0], &shared.keys[1]);
    let caller = crate::api::test_support::caller_of(&shared.directory, sender);
    let x = open_drop(&a.hub, sender, recipient).await;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Bytes, BodyBreak>>(4);
    let uploading = tokio::spawn({
        let (hub, caller, x) = (a.hub.clone(), caller.clone(), x.clone());
        async move {
            let body = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
            let request = UploadRequest { offset: 0, content_length: None, signed_sha256: None, body };
            Drops::new(&hub).upload(&caller, x, request).await
        }
    });
    tx.send(Ok(Bytes::from(vec![7u8; 2 << 20]))).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while b.hub.blobs().upload_len(&x).await.unwrap().is_none() {
        assert!(tokio::time::Instant::now() < deadline, "A's upload never began");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let sweeper = b.hub.clone().with_upload_resume_window(Duration::from_secs(60));
    b.clock.advance(120);
    let swept = sweeper.sweep().await.unwrap();
    assert_eq!(swept.stale_uploads, 0, "{swept:?}");
    tx.send(Ok(Bytes::from(vec![8u8; 1 << 20]))).await.unwrap();
    drop(tx);
    assert_eq!(uploading.await.unwrap().unwrap().len, 3 << 20);
    assert_eq!(b.hub.drops().drop_record(&x).await.unwrap().unwrap().upload.map(|u| u.len), Some(3 << 20));
}

/// Two uploads of one party that began before either had bytes to see,
/// on two instances: the one still growing reads what rests again after
/// [`SHARED_REREAD_BYTES`](crate::service::quota::SHARED_REREAD_BYTES) and
/// stops at the quota the other's bytes fill.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_growing_on_one_instance_sees_the_others_bytes_again() {
    use crate::quota::Quotas;
    use crate::service::Drops;
    use crate::service::upload::{BodyBreak, UploadRequest};
    use sealdrop_proto::error_code::ErrorCode;
    const MIB: usize = 1 << 20;
    let shared = SharedHub::new(false).await;
    let quotas = Quotas { held_bytes: 64 << 20, open_uploads: 16 };
    let (a, b) = (shared.instance(0).await, shared.instance(0).await);
    let (sender, recipient) = (&shared.keys[0], &shared.keys[1]);
    let caller = crate::api::test_support::caller_of(&shared.directory, sender);
    let start = |hub: Hub| {
        let caller = caller.clone();
        let hub = hub.with_quotas(quotas);
        async move {
            let id = open_drop(&hub, sender, recipient).await;
            let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Bytes, BodyBreak>>(2);
            let task = tokio::spawn(async move {
                let body = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
                let request = UploadRequest { offset: 0, content_length: None, signed_sha256: None, body };
                Drops::new(&hub).upload(&caller, id, request).await
            });
            (tx, task)
        }
    };
    let send = |tx: &tokio::sync::mpsc::Sender<Result<Bytes, BodyBreak>>, mib: usize| {
        let tx = tx.clone();
        async move {
            for _ in 0..mib {
                if tx.send(Ok(Bytes::from(vec![3u8; MIB]))).await.is_err() {
                    return false;
                }
            }
            true
        }
    };
    let (to_b, on_b) = start(b.hub.clone()).await;
    assert!(send(&to_b, 1).await);
    let (to_a, on_a) = start(a.hub.clone()).await;
    assert!(send(&to_a, 40).await);
    drop(to_a);
    let on_a = on_a.await.unwrap().unwrap();
    assert_eq!(on_a.len, 40 * MIB as u64);
    // B goes on: past 32 MiB it looks again and finds A's 40 MiB.
    let _ = send(&to_b, 39).await;
    drop(to_b);
    let refused = on_b.await.unwrap().unwrap_err();
    assert_eq!(refused.code(), ErrorCode::QuotaHeldBytes, "{refused:?}");
}
