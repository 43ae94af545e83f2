//! A hub that keeps its larger ciphertexts in an S3-compatible object store
//! (`blobs = "s3://..."`): the real `sealdrop-hub serve` against a real
//! `s3s-fs` started by each test (sealdrop_testservers::S3Server), with the
//! real client. Small ciphertexts stay in the hub's database; larger ones
//! are objects in the bucket and never files in the data directory. Uploads
//! cut off continue, a restart keeps drops fetchable, the sweeper deletes
//! an expired drop's objects, and `backup` refuses rather than leave the
//! ciphertexts out.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use sealdrop_e2e::{
    Cut, CutProxy, Hub, OBJECT_STORE_PREFIX, Party, TestClock, http, hub_command, pseudo_random_bytes, tree,
};
use sealdrop_testservers::S3Server;

const MIB: usize = 1024 * 1024;
const DAY: i64 = 24 * 3600;
const UPLOAD: (&str, &str) = ("PUT /v1/drops/", "/content");

/// The bucket folder (s3s-fs keeps an object as a file under its key) of
/// the hub's objects of `kind` (`blobs`, `segments`, `uploads`) for `id`.
fn object(s3: &S3Server, kind: &str, id: &str) -> PathBuf {
    s3.bucket_dir().join(OBJECT_STORE_PREFIX).join(kind).join(id)
}

/// The files under `dir` (none if it does not exist), with their sizes.
fn files_under(dir: &Path) -> Vec<(PathBuf, u64)> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut found = Vec::new();
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(files_under(&path));
        } else {
            let len = std::fs::metadata(&path).unwrap().len();
            found.push((path, len));
        }
    }
    found
}

/// The bytes the bucket holds in the segments of `id`'s uploads and blob.
fn segment_bytes(s3: &S3Server, id: &str) -> u64 {
    files_under(&object(s3, "segments", id)).iter().map(|(_, len)| len).sum()
}

/// Asserts that the hub's data directory holds no ciphertext file.
fn no_ciphertext_files(hub: &Hub) {
    for dir in ["blobs", "uploads"] {
        let found = files_under(&hub.data.path().join(dir));
        assert!(found.is_empty(), "ciphertext files in the data directory's {dir}/: {found:?}");
    }
}

/// The ciphertext length the hub logged receiving for `id`.
fn received_len(hub: &Hub, id: &str) -> u64 {
    let log = hub.log();
    let line = log
        .lines()
        .find(|l| l.contains(&format!("drop=\"{id}\"")) && l.contains("received content"))
        .unwrap_or_else(|| panic!("the hub logged no upload of {id}:\n{log}"));
    line.split("len=").nth(1).and_then(|v| v.split_whitespace().next()).and_then(|v| v.parse().ok()).unwrap()
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Fetches `id` as `party` into a fresh folder and asserts it holds exactly `name` with `data`.
fn fetch_and_check(party: &Party, id: &str, name: &str, data: &[u8]) {
    let out = tempfile::tempdir().unwrap();
    party.fetch(id, out.path());
    let got = tree(out.path());
    assert_eq!(got.keys().collect::<Vec<_>>(), [name]);
    assert!(got[name] == data, "the fetched {name} differs from what was sent");
}

#[test]
fn small_drops_stay_in_the_database_and_larger_ones_are_objects_until_delivered() {
    let s3 = S3Server::start();
    let hub = Hub::start_on_object_store(&s3, None, &[]);
    let camden = Party::new(&hub, "camden");
    let (islington, hackney) = (Party::new(&hub, "islington"), Party::new(&hub, "hackney"));
    let small_data = pseudo_random_bytes(1000, 1);
    let large_data = pseudo_random_bytes(3 * MIB, 2);
    let small_file = camden.file("plan.txt", &small_data);
    let large_file = camden.file("records.bin", &large_data);
    let small = camden.send("islington,hackney", &[&small_file]);
    let large = camden.send("islington,hackney", &[&large_file]);

    // The small one is a row of the database: nothing in the bucket.
    assert!(!object(&s3, "blobs", &small).exists() && files_under(&object(&s3, "segments", &small)).is_empty());
    // The large one is a manifest and its segments, exactly the ciphertext the hub received.
    assert!(object(&s3, "blobs", &large).is_file(), "no blob manifest in {}", s3.bucket_dir().display());
    let received = received_len(&hub, &large);
    assert!(received > large_data.len() as u64, "{received}");
    assert_eq!(segment_bytes(&s3, &large), received);
    assert!(!object(&s3, "uploads", &large).exists(), "the committed upload's marker stayed");
    no_ciphertext_files(&hub);
    // Keys are drop ids: no file name reaches the store.
    for (path, _) in files_under(&s3.bucket_dir()) {
        let key = path.strip_prefix(s3.bucket_dir()).unwrap().to_string_lossy().into_owned();
        assert!(!key.contains("records") && !key.contains("plan"), "an object key holds a file name: {key}");
    }
    let ready = http::Reply::from(http::client().get(format!("{}/readyz", hub.url)).send());
    assert_eq!(ready.status, 200, "{ready:?}");

    fetch_and_check(&islington, &small, "plan.txt", &small_data);
    fetch_and_check(&islington, &large, "records.bin", &large_data);
    // Hackney has not fetched yet: the objects stay.
    assert!(object(&s3, "blobs", &large).is_file());
    fetch_and_check(&hackney, &large, "records.bin", &large_data);
    fetch_and_check(&hackney, &small, "plan.txt", &small_data);
    // Delivered to everyone: the hub deletes them from the bucket.
    wait_for("the delivered drop's objects to go", || {
        !object(&s3, "blobs", &large).exists() && segment_bytes(&s3, &large) == 0
    });
    no_ciphertext_files(&hub);
}

#[test]
fn an_upload_cut_off_continues_from_the_segments_the_bucket_holds() {
    let s3 = S3Server::start();
    let hub = Hub::start_on_object_store(&s3, None, &[]);
    // Past one 8 MiB segment, so the hub has written a whole one and a short one.
    let proxy = CutProxy::start(&hub.addr, Some(Cut::request(UPLOAD.0, UPLOAD.1, 9 * MIB as u64)));
    let camden = Party::with_url(&proxy.url, "camden");
    let data = pseudo_random_bytes(10 * MIB, 3);
    let file = camden.file("records.bin", &data);

    let mut send = camden.command();
    send.env("SEALDROP_RESUME_MIN_BYTES", "0");
    send.arg("send").arg("--to").arg("islington").arg(&file).stdin(Stdio::null());
    let out = send.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "send failed:\n{err}");
    assert!(!proxy.armed(), "the proxy never cut the upload");
    let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(err.contains(&format!("the upload of drop {id} was cut off")), "{err}");

    // The second upload continued from what the bucket held, not from 0.
    let puts = proxy.requests_matching(UPLOAD.0, UPLOAD.1);
    assert_eq!(puts.len(), 2, "{puts:?}");
    assert_eq!(puts[0].header("sealdrop-upload-offset"), None);
    let resumed_at: u64 = puts[1].header("sealdrop-upload-offset").expect("an offset").parse().unwrap();
    assert!(resumed_at >= 8 * MIB as u64 && resumed_at <= 9 * MIB as u64, "continued from byte {resumed_at}");
    let log = hub.log();
    assert!(log.contains(&format!("continued_from={resumed_at}")), "{log}");

    no_ciphertext_files(&hub);
    assert!(object(&s3, "blobs", &id).is_file());
    fetch_and_check(&Party::new(&hub, "islington"), &id, "records.bin", &data);
}

#[test]
fn a_restarted_hub_serves_drops_from_the_bucket_and_backup_refuses_to_leave_them_out() {
    let s3 = S3Server::start();
    let mut hub = Hub::start_on_object_store(&s3, None, &[]);
    let camden = Party::new(&hub, "camden");
    let data = pseudo_random_bytes(2 * MIB, 4);
    let file = camden.file("records.bin", &data);
    let id = camden.send("islington", &[&file]);

    // The start-up clean-up lists the bucket and keeps what the database
    // says is committed.
    hub.restart();
    let log = hub.log();
    let opened: Vec<&str> = log.lines().filter(|l| l.contains("opened hub data directory")).collect();
    assert_eq!(opened.len(), 2, "{log}");
    assert!(opened[1].contains("uploads_removed=0") && opened[1].contains("blobs_removed=0"), "{log}");
    assert!(object(&s3, "blobs", &id).is_file());
    fetch_and_check(&Party::new(&hub, "islington"), &id, "records.bin", &data);

    // A backup of the data directory cannot hold the objects: refused, one
    // line that says what to do, and nothing written.
    let to = tempfile::tempdir().unwrap();
    let target = to.path().join("backup");
    let out = hub_command().arg("backup").arg("--data").arg(hub.data.path()).arg("--to").arg(&target).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains(&format!("s3://{}/{OBJECT_STORE_PREFIX}", S3Server::BUCKET)), "{stderr}");
    assert!(stderr.contains("bucket versioning"), "{stderr}");
    assert!(files_under(to.path()).is_empty(), "the refused backup wrote {:?}", files_under(to.path()));
}

#[test]
fn the_sweeper_deletes_an_expired_drops_objects() {
    let s3 = S3Server::start();
    let clock = TestClock::new();
    let hub = Hub::start_on_object_store(&s3, Some(&clock), &["--sweep-interval", "0.1"]);
    let camden = Party::new(&hub, "camden").with_clock(&clock);
    let file = camden.file("records.bin", pseudo_random_bytes(MIB, 5));
    let expiring = camden.send("islington", &[&file]);
    let more = camden.file("more.bin", pseudo_random_bytes(MIB, 6));
    let kept = camden.ok([
        "send".as_ref(),
        "--to".as_ref(),
        "hackney".as_ref(),
        "--expires".as_ref(),
        "10d".as_ref(),
        more.as_os_str(),
    ]);
    let kept = kept.trim().to_owned();
    assert!(segment_bytes(&s3, &expiring) > MIB as u64);

    // Past the default expiry of 5 days: the first expires, the second not.
    clock.advance(5 * DAY + 1);
    let state = |id: &str| camden.status_of(id)["state"].as_str().unwrap_or_default().to_owned();
    wait_for("the sweeper to expire the drops", || state(&expiring) == "expired");
    wait_for("the sweeper to delete the objects", || {
        !object(&s3, "blobs", &expiring).exists() && segment_bytes(&s3, &expiring) == 0
    });
    assert_eq!(state(&kept), "committed");
    assert!(object(&s3, "blobs", &kept).is_file() && segment_bytes(&s3, &kept) > MIB as u64);
}

#[test]
fn a_blob_promoted_in_the_bucket_before_a_crash_is_removed_at_start_and_the_drop_sent_again() {
    let s3 = S3Server::start();
    let mut hub = Hub::start_on_object_store(&s3, None, &[]);
    // The hub aborts after writing the blob's manifest, before the database commits.
    hub.restart_with_failpoint("commit:after_promote");
    let camden = Party::new(&hub, "camden");
    let data = pseudo_random_bytes(2 * MIB, 7);
    let file = camden.file("records.bin", &data);
    let out =
        camden.command().arg("send").arg("--to").arg("islington").arg(&file).stdin(Stdio::null()).output().unwrap();
    assert_eq!(out.status.code(), Some(5), "{}", String::from_utf8_lossy(&out.stderr));
    let status = hub.wait_exit(Duration::from_secs(30));
    assert!(!status.success(), "{status}");
    let promoted: Vec<String> = std::fs::read_dir(s3.bucket_dir().join(OBJECT_STORE_PREFIX).join("blobs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(promoted.len(), 1, "the crash should leave the promoted blob: {promoted:?}");
    let id = &promoted[0];
    assert!(segment_bytes(&s3, id) > 2 * MIB as u64);

    // The clean-up at start deletes the blob nothing committed, segments first.
    hub.restart();
    let log = hub.log();
    let opened = log.lines().rfind(|l| l.contains("opened hub data directory")).unwrap_or_default();
    assert!(opened.contains("blobs_removed=1"), "{log}");
    assert!(!object(&s3, "blobs", id).exists() && segment_bytes(&s3, id) == 0, "the uncommitted blob stayed");

    // The same send again uploads the drop anew and it arrives whole.
    let mut camden = camden;
    camden.point_at(&hub);
    let again = camden.send("islington", &[&file]);
    fetch_and_check(&Party::new(&hub, "islington"), &again, "records.bin", &data);
}
