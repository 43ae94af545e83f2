//! Faults lose nothing, on the hub's side: the real binaries against a real
//! hub that is killed (SIGKILL) in the middle of an upload, or aborts at a
//! fail point (`SEALDROP_HUB_FAILPOINT`, see `hub/src/failpoint.rs`) in the
//! middle of an upload, a commit, a log append or an acknowledgement, and is
//! then started again on the same data directory.
//!
//! After every restart [`Hub::assert_consistent`] checks, from the hub's
//! records and from every party's own commands, that no half drop is
//! visible (inbox, fetch, status), that every drop is either committed and
//! logged exactly once or open and absent from the log, that each client's
//! log consistency check and journal agree with the hub, and that `sealdrop
//! audit verify` passes. Then the sender completes its send by running the
//! same `sealdrop send` again (continuing the upload, or starting over, as
//! docs/architecture.md says), and the recipient fetches exactly what was sent.
//!
//! Also here: start-up cleanup after a kill removes the uploads and blobs no
//! drop owns and keeps the cut-off upload of an open drop.
//!
//! Most tests run on both back ends (see `sealdrop_e2e::Backend`); those
//! that read or write the data directory's upload files or `hub.db` behind
//! the hub's back run on the embedded one only (an upload on the shared
//! stores is segments in the bucket: `tests/tests/object_store.rs` and
//! `tests/tests/multi_instance.rs` cut those off).

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use sealdrop_e2e::{
    Backend, Cut, CutProxy, Hub, Party, StoredDrop, assert_one_error_line, error_code, http, is_drop_id, list_dir,
    pseudo_random_bytes, read_bytes, tree, write_file,
};

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;
/// Generous: the test machine has two cores and other work.
const WAIT: Duration = Duration::from_secs(120);
/// SIGABRT, what `std::process::abort` ends the hub with.
const SIGABRT: i32 = 6;
const FAIL_MID_UPLOAD: &str = "upload:mid_body";
const FAIL_UPLOAD: &str = "upload:before_record";
const FAIL_PROMOTE: &str = "commit:after_promote";
const FAIL_COMMITTED: &str = "commit:after_db";
const FAIL_APPEND: &str = "log:after_append_before_checkpoint";
const FAIL_ACKED: &str = "ack:after_db";

/// A hub, camden (who sends), islington (who receives) and hackney (a
/// bystander who must never see anything).
struct Scene {
    hub: Hub,
    camden: Party,
    islington: Party,
    hackney: Party,
}

impl Scene {
    fn new(backend: Backend) -> Self {
        let hub = Hub::start_on(backend, None, &[]);
        let (camden, islington, hackney) =
            (Party::new(&hub, "camden"), Party::new(&hub, "islington"), Party::new(&hub, "hackney"));
        Self { hub, camden, islington, hackney }
    }

    /// Points every party at the hub (it listens on a new port after a restart).
    fn point_all(&mut self) {
        for p in [&mut self.camden, &mut self.islington, &mut self.hackney] {
            p.point_at(&self.hub);
        }
    }

    /// See [`Hub::assert_consistent`].
    fn check(&self) -> BTreeMap<String, StoredDrop> {
        self.hub.assert_consistent(&[&self.camden, &self.islington, &self.hackney])
    }

    /// Starts the hub again with `SEALDROP_HUB_FAILPOINT=point`.
    fn arm(&mut self, point: &str) {
        self.arm_with(point, &[]);
    }

    /// [`Scene::arm`], with extra `serve` options.
    fn arm_with(&mut self, point: &str, options: &[&str]) {
        self.hub.restart_with_failpoint_and(point, options);
        self.point_all();
    }

    /// Waits for the armed hub to abort at `point` and checks it said why.
    fn wait_aborted(&mut self, point: &str) {
        let status = self.hub.wait_exit(WAIT);
        assert_eq!(status.signal(), Some(SIGABRT), "the hub did not abort: {status}\n{}", self.hub.log());
        let log = self.hub.log();
        assert!(log.contains("SEALDROP_HUB_FAILPOINT is set"), "the armed hub did not say so at start:\n{log}");
        assert!(log.contains(&format!("aborting at fail point {point}")), "hub log:\n{log}");
    }

    /// Starts the hub again on its data directory, without a fail point.
    fn restart(&mut self) {
        self.hub.restart();
        self.point_all();
    }

    /// [`Scene::wait_aborted`], then [`Scene::restart`].
    fn aborted_at(&mut self, point: &str) {
        self.wait_aborted(point);
        self.restart();
    }

    /// The ids of the drops camden's `status` lists.
    fn camden_drops(&self) -> Vec<String> {
        self.camden.status().iter().map(|d| d["id"].as_str().unwrap_or_default().to_owned()).collect()
    }
}

fn send_output(p: &Party, to: &str, file: &Path) -> Output {
    p.run([OsStr::new("send"), OsStr::new("--to"), OsStr::new(to), file.as_os_str()])
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The drop id a successful `send` printed.
fn sent_id(out: &Output) -> String {
    assert!(out.status.success(), "send failed:\n{}", stderr(out));
    let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(is_drop_id(&id), "send printed {id:?}");
    id
}

/// Asserts a client command failed because the hub went away mid-request:
/// exit 5 and one `error[<code>]` line; returns stderr.
fn assert_hub_went_away(out: &Output, code: &str) -> String {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(5), "expected exit 5 (hub unreachable), stderr:\n{err}");
    assert_eq!(error_code(&err).as_deref(), Some(code), "stderr:\n{err}");
    assert_one_error_line(&err);
    err
}

/// Fetches drop `id` as `p` into `out` and returns the tree there.
fn fetch_into(p: &Party, id: &str, out: &Path) -> BTreeMap<String, Vec<u8>> {
    p.fetch(id, out);
    tree(out)
}

/// Camden sends `name` (`data`) to islington through a hub armed to abort
/// at `point`. Returns the failed send's output and the drop it created.
fn crash_a_send(scene: &mut Scene, point: &str, name: &str, data: &[u8]) -> (Output, String) {
    crash_a_send_with(scene, point, &[], name, data)
}

/// [`crash_a_send`] through a hub started with extra `serve` options.
fn crash_a_send_with(scene: &mut Scene, point: &str, options: &[&str], name: &str, data: &[u8]) -> (Output, String) {
    let before = scene.camden_drops();
    scene.arm_with(point, options);
    let file = scene.camden.file(name, data);
    let out = send_output(&scene.camden, "islington", &file);
    scene.aborted_at(point);
    let created: Vec<String> = scene.camden_drops().into_iter().filter(|id| !before.contains(id)).collect();
    assert_eq!(created.len(), 1, "the crashed send should have created one drop: {created:?}");
    (out, created[0].clone())
}

/// Runs camden's same send again, checks it committed a drop other than
/// `crashed` and that islington receives exactly `data`.
fn send_again_and_receive(scene: &Scene, crashed: &str, name: &str, data: &[u8]) -> String {
    let again = send_output(&scene.camden, "islington", &scene.camden.work().join(name));
    let id = sent_id(&again);
    assert_ne!(id, crashed, "the crashed drop cannot be committed any more: a new one is sent");
    let out = scene.islington.work().join(format!("in-{id}"));
    let got = fetch_into(&scene.islington, &id, &out);
    assert_eq!(got.keys().collect::<Vec<_>>(), [name], "fetched tree");
    assert!(got[name] == data, "the fetched file differs from what was sent");
    let outgoing = scene.camden.state.join("outgoing");
    // Another interrupted send's record (`<drop>.open`, which lets its
    // re-run replace it) may still be there; nothing of this one may.
    let left: Vec<String> = if outgoing.exists() { list_dir(&outgoing) } else { Vec::new() };
    assert!(
        left.iter().all(|n| n.ends_with(".open") && !n.starts_with(crashed) && !n.starts_with(&id)),
        "the local encrypted copy or record outlived the commit: {left:?}"
    );
    id
}

/// Waits (at most [`WAIT`]) until `path` holds at least `bytes` bytes.
fn wait_for_size(path: &Path, bytes: u64) -> u64 {
    let started = Instant::now();
    loop {
        let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        if len >= bytes {
            return len;
        }
        assert!(started.elapsed() < WAIT, "{} holds {len} bytes, not {bytes}, after {WAIT:?}", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The drop id in a request line `PUT /v1/drops/<id>/content HTTP/1.1`.
fn drop_in_line(line: &str) -> String {
    let id = line.split('/').nth(3).unwrap_or_default().to_owned();
    assert!(is_drop_id(&id), "no drop id in {line:?}");
    id
}

fn uploads(hub: &Hub) -> PathBuf {
    hub.data.path().join("uploads")
}

fn blobs(hub: &Hub) -> PathBuf {
    hub.data.path().join("blobs")
}

/// Embedded only: reads the upload file the data directory keeps (multi_instance.rs kills an instance mid-upload on the shared stores).
#[test]
fn a_hub_killed_mid_upload_shows_nothing_and_the_same_send_continues_the_upload() {
    let mut scene = Scene::new(Backend::Embedded);
    // The upload is held after 12 MiB, so the kill lands in its middle.
    let proxy = CutProxy::start(&scene.hub.addr, Some(Cut::stall_request("PUT /v1/drops/", "/content", 12 << 20)));
    scene.camden.hub_url = proxy.url.clone();
    let data = pseudo_random_bytes(24 * MIB, 1);
    let file = scene.camden.file("census.bin", &data);
    let sending =
        scene.camden.spawn([OsStr::new("send"), OsStr::new("--to"), OsStr::new("islington"), file.as_os_str()]);
    proxy.wait_stalled(WAIT);
    let id = drop_in_line(&proxy.requests_matching("PUT /v1/drops/", "/content")[0].line);
    let part = uploads(&scene.hub).join(format!("{id}.part"));
    wait_for_size(&part, 11 << 20);

    scene.hub.stop();
    let failed = sending.wait_with_output().expect("wait for sealdrop send");
    let err = assert_hub_went_away(&failed, "hub_unreachable");
    assert!(err.contains("run the same `sealdrop send` again to continue it"), "{err}");

    scene.hub.restart();
    scene.point_all();
    // What arrived is kept, unrecorded, for the sender to continue: a prefix
    // of the ciphertext the client keeps.
    let held = read_bytes(&part);
    let copy = read_bytes(&scene.camden.state.join("outgoing").join(format!("{id}.age")));
    assert!(held.len() >= 11 << 20 && copy.len() > held.len(), "held {} of {} bytes", held.len(), copy.len());
    assert!(copy[..held.len()] == held[..], "the hub kept bytes that are not the start of the upload");
    let drops = scene.check();
    assert_eq!(drops[&id].state, "open");

    let again = send_output(&scene.camden, "islington", &file);
    assert_eq!(sent_id(&again), id, "the same send continues the same drop");
    assert!(stderr(&again).contains(&format!("continuing the upload of drop {id}")), "{}", stderr(&again));
    let log = scene.hub.log();
    assert!(
        log.contains(&format!("continued_from={}", held.len())),
        "the upload did not continue from byte {}:\n{log}",
        held.len()
    );
    let got = fetch_into(&scene.islington, &id, &scene.islington.work().join("in"));
    assert!(got["census.bin"] == data, "the fetched file differs from what was sent");
    scene.check();
}

/// Embedded only: reads the upload file the data directory keeps.
#[test]
fn a_hub_aborting_mid_upload_keeps_a_prefix_and_the_same_send_continues_it() {
    let mut scene = Scene::new(Backend::Embedded);
    let earlier = scene.camden.send("islington", &[&scene.camden.file("earlier.csv", "upn\nA1\n")]);
    // 9 MiB: the client keeps a local copy, and the hub aborts 4 MiB in.
    let data = pseudo_random_bytes(9 * MIB, 12);
    let (failed, crashed) = crash_a_send(&mut scene, FAIL_MID_UPLOAD, "scans.bin", &data);
    let err = assert_hub_went_away(&failed, "hub_unreachable");
    assert!(err.contains("run the same `sealdrop send` again to continue it"), "{err}");
    let drops = scene.check();
    assert_eq!(drops[&crashed].state, "open");
    assert_eq!(scene.islington.inbox_ids(), [earlier.as_str()], "the half-uploaded drop is visible");
    // What reached the disk is kept for the sender: a prefix of the upload,
    // never more than the hub had received when it aborted.
    let held = read_bytes(&uploads(&scene.hub).join(format!("{crashed}.part")));
    let copy = read_bytes(&scene.camden.state.join("outgoing").join(format!("{crashed}.age")));
    assert!(held.len() <= 4 * MIB + 1024 * KIB && copy.len() > held.len(), "held {} of {}", held.len(), copy.len());
    assert!(copy[..held.len()] == held[..], "the hub kept bytes that are not the start of the upload");

    let again = send_output(&scene.camden, "islington", &scene.camden.work().join("scans.bin"));
    assert_eq!(sent_id(&again), crashed, "the same send continues the same drop");
    assert!(stderr(&again).contains(&format!("continuing the upload of drop {crashed}")), "{}", stderr(&again));
    let got = fetch_into(&scene.islington, &crashed, &scene.islington.work().join("in"));
    assert!(got["scans.bin"] == data, "the fetched file differs from what was sent");
    scene.check();
}

fn a_crash_after_an_upload_is_stored_but_not_recorded_keeps_the_drop_open_and_invisible(backend: Backend) {
    let mut scene = Scene::new(backend);
    // Sent in one request, but larger than the embedded hub's inline tier,
    // so it is stored as a three-step send stores it (a small one is stored
    // whole: see the test of a crash in its transaction).
    let data = pseudo_random_bytes(100 * KIB, 2);
    let (failed, crashed) = crash_a_send(&mut scene, FAIL_UPLOAD, "plan.bin", &data);
    assert_hub_went_away(&failed, "hub_unreachable");
    let drops = scene.check();
    assert_eq!(drops[&crashed].state, "open");
    // The bytes are on the hub (kept for a continuation) but not vouched
    // for: the drop records no finished upload.
    let key = scene.camden.secret_key().signing;
    let progress = http::signed_get(&scene.hub.url, &key, &format!("/v1/drops/{crashed}/upload"));
    assert_eq!(progress.status, 200, "{progress:?}");
    let progress = sealdrop_e2e::json(&progress.body);
    assert_eq!(progress["complete"], false, "{progress}");
    assert!(progress["received"].as_u64().is_some_and(|n| n > 20 * KIB as u64), "{progress}");

    send_again_and_receive(&scene, &crashed, "plan.bin", &data);
    scene.check();
}

/// A crash between a commit's promotion of the upload and its database
/// transaction (or inside the transaction's log append): the drop stays
/// open and invisible, the log is as before, and the same send starts over
/// as a new drop. The restarted embedded hub removes the promoted blob; on
/// the shared stores an open drop's blob may be another instance's commit
/// in progress, so whether it goes at start is not this test's to say (see
/// `Hub::assert_consistent`).
fn crash_in_a_commit(backend: Backend, point: &str, options: &[&str], size: usize, seed: u64) {
    let mut scene = Scene::new(backend);
    let earlier = scene.camden.send("islington", &[&scene.camden.file("earlier.csv", "upn\nA1\n")]);
    let entries_before = scene.hub.log_entries().len();
    let data = pseudo_random_bytes(size, seed);
    let (failed, crashed) = crash_a_send_with(&mut scene, point, options, "records.bin", &data);
    assert_hub_went_away(&failed, "hub_unreachable");
    let log = scene.hub.log();
    assert!(
        backend == Backend::Shared || log.contains("removed an uncommitted or delivered blob"),
        "start-up cleanup kept the promoted blob:\n{log}"
    );
    let drops = scene.check();
    assert_eq!(drops[&crashed].state, "open");
    assert_eq!(scene.hub.log_entries().len(), entries_before, "the crashed commit left entries in the log");
    assert_eq!(scene.islington.inbox_ids(), [earlier.as_str()]);

    send_again_and_receive(&scene, &crashed, "records.bin", &data);
    let got = fetch_into(&scene.islington, &earlier, &scene.islington.work().join("earlier"));
    assert_eq!(got["earlier.csv"], b"upn\nA1\n", "an earlier drop changed");
    scene.check();
}

fn a_crash_after_a_small_commits_promotion_is_undone_at_start(backend: Backend) {
    // A hub that takes no drop in one request: the three steps, whose commit
    // promotes the small upload (on the embedded hub, an inline row).
    crash_in_a_commit(backend, FAIL_PROMOTE, &["--max-single-request-bytes", "0"], 30 * KIB, 3);
}

fn a_crash_after_a_large_commits_promotion_is_undone_at_start(backend: Backend) {
    // 9 MiB: a file on the hub, and a local encrypted copy on the client.
    crash_in_a_commit(backend, FAIL_PROMOTE, &[], 9 * MIB, 4);
}

fn a_crash_inside_a_commits_log_append_rolls_the_commit_back(backend: Backend) {
    // Over the inline tier: created first, then committed (see below for a small drop).
    crash_in_a_commit(backend, FAIL_APPEND, &[], 100 * KIB, 5);
}

/// Embedded only (the shared stores keep no ciphertext with the drops): a
/// small drop in one request is stored whole, its rows, ciphertext, commit
/// and log entry in one transaction, so a crash inside it leaves no trace
/// at all, not even an open drop, and the same send then goes through.
#[test]
fn a_crash_inside_a_small_drops_one_transaction_leaves_no_trace() {
    let mut scene = Scene::new(Backend::Embedded);
    let earlier = scene.camden.send("islington", &[&scene.camden.file("earlier.csv", "upn\nA1\n")]);
    let (entries, drops, rows) = (scene.hub.log_entries().len(), scene.camden_drops(), inline_rows(&scene.hub));
    scene.arm(FAIL_APPEND);
    let data = pseudo_random_bytes(10 * KIB, 12);
    let file = scene.camden.file("small.bin", &data);
    assert_hub_went_away(&send_output(&scene.camden, "islington", &file), "hub_unreachable");
    scene.aborted_at(FAIL_APPEND);
    // The client had noted the id it chose, in case the drop was left open.
    let noted: Vec<String> = list_dir(&scene.camden.state.join("outgoing"))
        .into_iter()
        .filter_map(|n| n.strip_suffix(".open").map(str::to_owned))
        .collect();
    assert_eq!(noted.len(), 1, "{noted:?}");
    assert_eq!(scene.camden_drops(), drops, "the crashed drop exists on the hub");
    assert_eq!(scene.hub.log_entries().len(), entries, "the crashed drop left entries in the log");
    assert_eq!(inline_rows(&scene.hub), rows, "the crashed drop left ciphertext in the database");
    assert_eq!(scene.islington.inbox_ids(), [earlier.as_str()]);
    scene.check();

    send_again_and_receive(&scene, &noted[0], "small.bin", &data);
    scene.check();
}

/// How many small ciphertexts the embedded hub's database holds.
fn inline_rows(hub: &Hub) -> String {
    hub.query_text("SELECT CAST(count(*) AS TEXT) FROM inline_blobs", &[])
}

fn a_crash_inside_a_fetchs_log_append_serves_nothing_and_the_fetch_works_again(backend: Backend) {
    let mut scene = Scene::new(backend);
    let data = pseudo_random_bytes(200 * KIB, 6);
    let id = scene.camden.send("islington", &[&scene.camden.file("plan.bin", &data)]);
    scene.arm(FAIL_APPEND);
    let out = scene.islington.work().join("in");
    let failed = scene.islington.run([OsStr::new("fetch"), OsStr::new(&id), OsStr::new("-o"), out.as_os_str()]);
    assert_eq!(failed.status.code(), Some(5), "stderr:\n{}", stderr(&failed));
    assert_one_error_line(&stderr(&failed));
    scene.aborted_at(FAIL_APPEND);
    assert!(list_dir(&out).is_empty(), "a failed fetch left {:?}", list_dir(&out));
    scene.check();
    let status = scene.camden.status_of(&id);
    assert_eq!(sealdrop_e2e::recipient_status(&status, "islington")["fetched"], serde_json::Value::Null);

    let got = fetch_into(&scene.islington, &id, &out);
    assert!(got["plan.bin"] == data);
    scene.check();
}

fn a_crash_inside_an_acks_log_append_leaves_the_drop_unacknowledged_and_fetchable(backend: Backend) {
    let mut scene = Scene::new(backend);
    let data = pseudo_random_bytes(50 * KIB, 7);
    let id = scene.camden.send("islington", &[&scene.camden.file("plan.bin", &data)]);
    // The fetch's log append is the first; the acknowledgement's the second.
    scene.arm(&format!("{FAIL_APPEND}@2"));
    let out = scene.islington.work().join("in");
    let failed = scene.islington.run([OsStr::new("fetch"), OsStr::new(&id), OsStr::new("-o"), out.as_os_str()]);
    let err = assert_hub_went_away(&failed, "hub_unreachable");
    assert!(err.contains("the files are in place but the acknowledgement failed"), "{err}");
    scene.aborted_at(FAIL_APPEND);
    // The files were verified and placed before the receipt was sent.
    assert_eq!(tree(&out).keys().collect::<Vec<_>>(), ["plan.bin"]);
    let drops = scene.check();
    assert!(drops[&id].acknowledged_by.is_empty(), "the crashed acknowledgement survived");
    assert_eq!(scene.islington.inbox_ids(), [id.as_str()], "an unacknowledged drop stays in the inbox");

    // Fetching again never overwrites: the second copy goes into its own
    // folder, and this time the receipt is logged.
    let got = fetch_into(&scene.islington, &id, &out);
    let names: Vec<&str> = got.keys().map(String::as_str).collect();
    assert_eq!(names, [format!("{id}/").as_str(), &format!("{id}/plan.bin"), "plan.bin"]);
    assert!(got["plan.bin"] == data && got[&format!("{id}/plan.bin")] == data);
    let drops = scene.check();
    assert_eq!(drops[&id].state, "delivered");
}

fn a_crash_after_a_durable_ack_leaves_the_drop_delivered_and_its_orphaned_blob_removed(backend: Backend) {
    let mut scene = Scene::new(backend);
    // 3 MiB: the ciphertext is a file on the hub, deleted once delivered.
    let data = pseudo_random_bytes(3 * MIB, 14);
    let id = scene.camden.send("islington", &[&scene.camden.file("plan.bin", &data)]);
    assert!(scene.hub.has_ciphertext(&id));
    scene.arm(FAIL_ACKED);
    let out = scene.islington.work().join("in");
    let failed = scene.islington.run([OsStr::new("fetch"), OsStr::new(&id), OsStr::new("-o"), out.as_os_str()]);
    let err = assert_hub_went_away(&failed, "hub_unreachable");
    assert!(err.contains("the files are in place but the acknowledgement failed"), "{err}");
    scene.wait_aborted(FAIL_ACKED);
    // The hub died before it deleted the delivered drop's ciphertext.
    assert!(scene.hub.has_ciphertext(&id), "the ciphertext went before the crash");
    scene.restart();
    assert!(!scene.hub.has_ciphertext(&id), "start-up cleanup kept the delivered drop's ciphertext");
    let log = scene.hub.log();
    assert!(log.contains("removed an uncommitted or delivered blob"), "{log}");

    // The receipt is durable and logged: delivered, out of the inbox, and
    // the verified file is in place, whole.
    let drops = scene.check();
    assert_eq!(drops[&id].state, "delivered");
    assert_eq!(drops[&id].acknowledged_by, ["islington"]);
    assert!(scene.islington.inbox_ids().is_empty(), "a delivered drop is still in the inbox");
    assert_eq!(scene.camden.status_of(&id)["state"], "delivered");
    let got = tree(&out);
    assert_eq!(got.keys().collect::<Vec<_>>(), ["plan.bin"]);
    assert!(got["plan.bin"] == data, "the placed file differs from what was sent");
    // A second fetch says plainly that the drop is gone, and writes nothing.
    let again = scene.islington.run([OsStr::new("fetch"), OsStr::new(&id), OsStr::new("-o"), out.as_os_str()]);
    let err = stderr(&again);
    assert!(!again.status.success());
    assert_one_error_line(&err);
    assert_eq!(error_code(&err).as_deref(), Some("gone"), "{err}");
    assert!(err.contains("was delivered to every recipient"), "{err}");
    assert_eq!(tree(&out).keys().collect::<Vec<_>>(), ["plan.bin"], "a refused fetch wrote something");
}

fn a_crash_after_a_durable_commit_leaves_the_drop_committed_though_the_sender_never_heard(backend: Backend) {
    let mut scene = Scene::new(backend);
    let data = pseudo_random_bytes(10 * KIB, 8);
    let (failed, crashed) = crash_a_send(&mut scene, FAIL_COMMITTED, "plan.bin", &data);
    assert_hub_went_away(&failed, "hub_unreachable");
    // The commit is whole: logged once, visible to the recipient, fetchable.
    let drops = scene.check();
    assert_eq!(drops[&crashed].state, "committed");
    assert_eq!(scene.islington.inbox_ids(), [crashed.as_str()]);
    assert_eq!(scene.camden.status_of(&crashed)["state"], "committed", "the sender sees it in `status`");
    let sent: Vec<serde_json::Value> = scene.camden.journal().into_iter().filter(|l| l["event"] == "sent").collect();
    assert!(sent.is_empty(), "the sender's journal records a send it never heard the end of: {sent:?}");

    // Sending again is a new drop (the client cannot know the lost answer
    // was a success): the recipient gets both, neither half.
    let again = send_again_and_receive(&scene, &crashed, "plan.bin", &data);
    let got = fetch_into(&scene.islington, &crashed, &scene.islington.work().join("first"));
    assert!(got["plan.bin"] == data);
    let drops = scene.check();
    assert_eq!((drops[&crashed].state.as_str(), drops[&again].state.as_str()), ("delivered", "delivered"));
}

/// Embedded only: plants upload and blob files and hub.db rows behind the hub's back.
#[test]
fn start_up_cleanup_after_a_kill_removes_uploads_and_blobs_that_no_drop_owns() {
    let mut scene = Scene::new(Backend::Embedded);
    let large = scene.camden.send("islington", &[&scene.camden.file("large.bin", pseudo_random_bytes(3 * MIB, 9))]);
    let waiting = scene.camden.send("islington", &[&scene.camden.file("waiting.csv", "upn\nB2\n")]);
    let delivered = scene.camden.send("islington", &[&scene.camden.file("delivered.csv", "upn\nC3\n")]);
    scene.islington.fetch(&delivered, &scene.islington.work().join("delivered"));
    assert!(blobs(&scene.hub).join(format!("{large}.age")).is_file(), "a 3 MiB drop is a file");
    assert!(scene.hub.has_ciphertext(&waiting) && !blobs(&scene.hub).join(format!("{waiting}.age")).exists());

    // An open drop whose upload was cut off: kept for the sender to continue.
    let proxy = CutProxy::start(&scene.hub.addr, Some(Cut::request("PUT /v1/drops/", "/content", 2 << 20)));
    scene.camden.hub_url = proxy.url.clone();
    let cut_file = scene.camden.file("cut.bin", pseudo_random_bytes(3 * MIB, 10));
    let cut = send_output(&scene.camden, "islington", &cut_file);
    assert_eq!(cut.status.code(), Some(5), "{}", stderr(&cut));
    let open = drop_in_line(&proxy.requests_matching("PUT /v1/drops/", "/content")[0].line);
    // The client sees the cut as soon as the proxy closes; the hub notices
    // the broken body a moment later, so wait (bounded) for what it keeps.
    let part = uploads(&scene.hub).join(format!("{open}.part"));
    let waited = std::time::Instant::now();
    while !part.is_file() && waited.elapsed() < std::time::Duration::from_secs(10) {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(part.is_file(), "the cut-off upload was not kept");

    // A crash between promotion and commit leaves a blob of an open drop.
    scene.arm(FAIL_PROMOTE);
    let promoted_file = scene.camden.file("promoted.bin", pseudo_random_bytes(2 * MIB, 11));
    assert_hub_went_away(&send_output(&scene.camden, "islington", &promoted_file), "hub_unreachable");
    scene.wait_aborted(FAIL_PROMOTE);
    let left: Vec<String> = list_dir(&blobs(&scene.hub)).into_iter().filter(|n| *n != format!("{large}.age")).collect();
    assert_eq!(left.len(), 1, "the crash should leave the promoted blob: {left:?}");
    let promoted = left[0].trim_end_matches(".age").to_owned();
    // Beside it, what a crash in the sweeper, in an acknowledgement or a
    // power cut can leave: the upload (file and row) of a drop whose rows
    // the sweeper had removed, a committed drop's old upload name, and the
    // row of a drop delivered just before the crash.
    let swept = sealdrop_proto::ids::DropId::random().to_string();
    write_file(&uploads(&scene.hub).join(format!("{swept}.part")), pseudo_random_bytes(100 * KIB, 13));
    std::fs::copy(blobs(&scene.hub).join(format!("{large}.age")), uploads(&scene.hub).join(format!("{large}.part")))
        .expect("copy");
    let swept_row = sealdrop_proto::ids::DropId::random().to_string();
    let insert = "INSERT INTO inline_blobs (drop_id, stage, data) VALUES (?1, ?2, X'00')";
    scene.hub.tamper_sql(insert, &[&swept_row, &"upload"]);
    scene.hub.tamper_sql(insert, &[&delivered, &"blob"]);

    scene.restart();
    let log = scene.hub.log();
    let opened = log.lines().rfind(|l| l.contains("opened hub data directory")).unwrap_or_default();
    assert!(opened.contains("uploads_removed=3") && opened.contains("blobs_removed=2"), "{opened}");
    assert_eq!(list_dir(&uploads(&scene.hub)), [format!("{open}.part")], "only the open drop's upload stays");
    assert_eq!(list_dir(&blobs(&scene.hub)), [format!("{large}.age")], "only the committed drop's blob stays");
    let rows = scene.hub.query_text("SELECT group_concat(drop_id || ':' || stage) FROM inline_blobs", &[]);
    assert_eq!(rows, format!("{waiting}:blob"), "only the waiting small drop's row stays");
    let drops = scene.check();
    assert_eq!((drops[&open].state.as_str(), drops[&promoted].state.as_str()), ("open", "open"));

    // Both senders finish by sending again.
    send_again_and_receive(&scene, &promoted, "promoted.bin", &read_bytes(&promoted_file));
    send_again_and_receive(&scene, &open, "cut.bin", &read_bytes(&cut_file));
    let outgoing = scene.camden.state.join("outgoing");
    assert!(!outgoing.exists() || list_dir(&outgoing).is_empty(), "{:?}", list_dir(&outgoing));
    scene.check();
}

sealdrop_e2e::on_both_backends!(
    a_crash_after_an_upload_is_stored_but_not_recorded_keeps_the_drop_open_and_invisible,
    a_crash_after_a_small_commits_promotion_is_undone_at_start,
    a_crash_after_a_large_commits_promotion_is_undone_at_start,
    a_crash_inside_a_commits_log_append_rolls_the_commit_back,
    a_crash_inside_a_fetchs_log_append_serves_nothing_and_the_fetch_works_again,
    a_crash_inside_an_acks_log_append_leaves_the_drop_unacknowledged_and_fetchable,
    a_crash_after_a_durable_ack_leaves_the_drop_delivered_and_its_orphaned_blob_removed,
    a_crash_after_a_durable_commit_leaves_the_drop_committed_though_the_sender_never_heard,
);
