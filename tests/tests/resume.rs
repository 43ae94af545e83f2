//! An interrupted fetch resumes: the real binaries against a real hub, with
//! a [`CutProxy`] between the recipient and the hub that drops the
//! connection part-way through the download, as a network fault would.
//!
//! The partial ciphertext waits in `<state>/downloads/<id>.age.part`; the
//! next fetch reads it back and asks the hub only for the rest (HTTP
//! Range), and the hash check still covers the whole ciphertext.
//!
//! The tests of what the hub serves and keeps run on both back ends (see
//! `sealdrop_e2e::Backend`); those of what the client keeps (its spool, its
//! settings, its local copy) on the embedded one only: the hub's stores
//! change nothing of that.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use sealdrop_e2e::{
    Backend, Cut, CutProxy, Hub, Party, assert_one_error_line, error_code, flip_byte, list_dir, mode_of,
    pseudo_random_bytes, read_bytes, tree,
};

const MIB: usize = 1024 * 1024;
const CONTENT: (&str, &str) = ("GET /v1/drops/", "/content");

/// A sent drop and what the hub stores for it.
struct Sent {
    id: String,
    data: Vec<u8>,
    ciphertext: Vec<u8>,
}

/// Camden sends `records.bin` (3 MiB of random bytes) to islington.
fn send_big(hub: &Hub, seed: u64) -> Sent {
    let camden = Party::new(hub, "camden");
    let data = pseudo_random_bytes(3 * MIB, seed);
    let file = camden.file("records.bin", &data);
    let id = camden.send("islington", &[&file]);
    let ciphertext = hub.ciphertext(&id).expect("the hub holds the ciphertext");
    Sent { id, data, ciphertext }
}

/// `sealdrop fetch ID -o OUT` as `party`, with `SEALDROP_RESUME_MIN_BYTES`
/// set to `min_bytes` if given.
fn fetch(party: &Party, id: &str, out: &Path, min_bytes: Option<&str>) -> Output {
    let mut cmd = party.command();
    if let Some(v) = min_bytes {
        cmd.env("SEALDROP_RESUME_MIN_BYTES", v);
    }
    cmd.arg("fetch").arg(id).arg("-o").arg(out).stdin(Stdio::null());
    cmd.output().expect("run sealdrop fetch")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts the fetch failed with `exit` and `code`; returns stderr.
fn assert_failed(out: &Output, exit: i32, code: &str) -> String {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(exit), "stderr:\n{err}");
    assert_eq!(error_code(&err).as_deref(), Some(code), "stderr:\n{err}");
    assert_one_error_line(&err);
    err
}

/// Asserts the fetch succeeded and placed exactly `records.bin` with `data` in `out`; returns stderr.
fn assert_fetched(out: &Output, dir: &Path, data: &[u8]) -> String {
    let err = stderr(out);
    assert!(out.status.success(), "fetch failed:\n{err}");
    let got = tree(dir);
    assert_eq!(got.keys().collect::<Vec<_>>(), ["records.bin"], "{err}");
    assert!(got["records.bin"] == data, "the fetched file differs from what was sent");
    err
}

fn spool(party: &Party, id: &str) -> PathBuf {
    party.state.join("downloads").join(format!("{id}.age.part"))
}

/// The `Range` headers of the content downloads the proxy saw, in order.
fn content_ranges(proxy: &CutProxy) -> Vec<Option<String>> {
    proxy.requests_matching(CONTENT.0, CONTENT.1).iter().map(|r| r.header("range").map(str::to_owned)).collect()
}

fn resume_an_interrupted_fetch_from_where_it_stopped(backend: Backend) {
    let hub = Hub::start_on(backend, None, &[]);
    let sent = send_big(&hub, 11);
    let total = sent.ciphertext.len();
    let proxy = CutProxy::start(&hub.addr, Some(Cut::response(CONTENT.0, CONTENT.1, MIB as u64)));
    let islington = Party::with_url(&proxy.url, "islington");
    let out = islington.work().join("incoming");

    // The connection drops after 1 MiB of the download.
    let first = fetch(&islington, &sent.id, &out, Some("0"));
    let err = assert_failed(&first, 5, "download_failed");
    assert!(!proxy.armed(), "the proxy never cut the download");
    assert!(err.contains("run the same fetch again to resume"), "{err}");
    assert!(list_dir(&out).is_empty(), "a broken download left something in the output folder: {:?}", list_dir(&out));
    let spool = spool(&islington, &sent.id);
    let kept = read_bytes(&spool);
    let n = kept.len();
    assert!(n > 0 && n <= MIB, "the spool holds {n} bytes");
    assert!(kept == sent.ciphertext[..n], "the spool is not the start of the ciphertext");
    assert!(err.contains(&format!("after {n} of {total} bytes")), "{err}");
    assert_eq!(mode_of(&spool), 0o600);
    assert_eq!(mode_of(spool.parent().unwrap()), 0o700);
    assert_eq!(islington.inbox_ids(), [sent.id.as_str()], "the drop was acknowledged");

    // The same fetch again (with the default threshold, above this drop's
    // size: an existing partial download is resumed all the same).
    let second = fetch(&islington, &sent.id, &out, None);
    let err = assert_fetched(&second, &out, &sent.data);
    assert!(err.contains(&format!("resuming drop {} from byte {n} of {total}", sent.id)), "{err}");
    assert!(!spool.exists(), "the spool outlived a successful fetch");
    assert_eq!(content_ranges(&proxy), [None, Some(format!("bytes={n}-"))]);
    let log = hub.log();
    assert!(log.contains("serving content range") && log.contains(&format!("start={n}")), "hub log:\n{log}");
    assert!(islington.inbox_ids().is_empty(), "the drop was not acknowledged");
}

#[test]
fn resume_from_a_corrupted_spool_fails_as_tampered_and_then_starts_over() {
    let hub = Hub::start();
    let sent = send_big(&hub, 12);
    let total = sent.ciphertext.len();
    let proxy = CutProxy::start(&hub.addr, Some(Cut::response(CONTENT.0, CONTENT.1, MIB as u64)));
    let islington = Party::with_url(&proxy.url, "islington");
    let out = islington.work().join("incoming");
    let spool = spool(&islington, &sent.id);

    // 1 MiB threshold: this 3 MiB drop is spooled.
    assert_failed(&fetch(&islington, &sent.id, &out, Some("1048576")), 5, "download_failed");
    let n = read_bytes(&spool).len();
    assert!(n > 0, "nothing was spooled");

    // The partial download rots on disk; the resumed fetch catches it.
    flip_byte(&spool, n / 2);
    let second = fetch(&islington, &sent.id, &out, Some("1048576"));
    let err = assert_failed(&second, 4, "tampered");
    assert!(err.contains(&format!("resuming drop {} from byte {n} of {total}", sent.id)), "{err}");
    assert!(err.contains("next fetch starts from byte 0"), "{err}");
    assert!(!spool.exists(), "a spool that failed the hash check was kept");
    assert!(list_dir(&out).is_empty(), "a tampered drop left something behind: {:?}", list_dir(&out));

    // And the next fetch downloads it all again, intact.
    let third = fetch(&islington, &sent.id, &out, Some("1048576"));
    let err = assert_fetched(&third, &out, &sent.data);
    assert!(!err.contains("resuming"), "{err}");
    assert_eq!(content_ranges(&proxy), [None, Some(format!("bytes={n}-")), None]);
    assert!(!spool.exists());
}

#[test]
fn resume_needs_a_spool_and_small_drops_are_not_spooled() {
    let hub = Hub::start();
    let sent = send_big(&hub, 13);
    let proxy = CutProxy::start(&hub.addr, Some(Cut::response(CONTENT.0, CONTENT.1, MIB as u64)));
    let islington = Party::with_url(&proxy.url, "islington");
    let out = islington.work().join("incoming");

    // Below the default threshold (8 MiB) nothing goes to disk, so there is
    // nothing to resume from.
    let err = assert_failed(&fetch(&islington, &sent.id, &out, None), 5, "download_failed");
    assert!(err.contains("fetch it again") && !err.contains("resume"), "{err}");
    assert!(!islington.state.join("downloads").exists(), "a small drop was spooled");
    assert!(list_dir(&out).is_empty());

    let err = assert_fetched(&fetch(&islington, &sent.id, &out, None), &out, &sent.data);
    assert!(!err.contains("resuming"), "{err}");
    assert_eq!(content_ranges(&proxy), [None, None]);
}

#[test]
fn resume_setting_must_be_a_number() {
    let hub = Hub::start();
    let islington = Party::new(&hub, "islington");
    let out = islington.work().join("incoming");
    let err =
        assert_failed(&fetch(&islington, "d-aaaaaaaaaaaaaaaaaaaaaaaaaa", &out, Some("8MiB")), 3, "config_invalid");
    assert!(err.contains("SEALDROP_RESUME_MIN_BYTES"), "{err}");
}

// ---------------------------------------------------------------------------
// Sends: a large drop keeps a local encrypted copy while it uploads, so a
// cut-off upload continues from the byte the hub holds (`GET
// /v1/drops/{id}/upload`, then a PUT with `sealdrop-upload-offset`).

const UPLOAD: (&str, &str) = ("PUT /v1/drops/", "/content");

/// `sealdrop send --to islington FILE` as `party`, with a local copy for any size.
fn send_cmd(party: &Party, file: &Path) -> std::process::Command {
    let mut cmd = party.command();
    cmd.env("SEALDROP_RESUME_MIN_BYTES", "0");
    cmd.arg("send").arg("--to").arg("islington").arg(file).stdin(Stdio::null());
    cmd
}

/// The `sealdrop-upload-offset` of each upload the proxy saw, in order.
fn upload_offsets(proxy: &CutProxy) -> Vec<Option<String>> {
    proxy
        .requests_matching(UPLOAD.0, UPLOAD.1)
        .iter()
        .map(|r| r.header("sealdrop-upload-offset").map(str::to_owned))
        .collect()
}

/// The offset the hub logged for the continued upload of a drop.
fn continued_from(hub: &Hub) -> Vec<u64> {
    hub.log()
        .lines()
        .filter(|l| l.contains("received content"))
        .filter_map(|l| l.split("continued_from=").nth(1)?.split_whitespace().next()?.parse().ok())
        .collect()
}

fn assert_no_local_copy(party: &Party) {
    let left = list_dir(&party.state.join("outgoing"));
    assert!(left.is_empty(), "the local copy outlived the commit: {left:?}");
}

fn a_cut_off_upload_continues_from_the_local_copy_without_starting_over(backend: Backend) {
    let hub = Hub::start_on(backend, None, &[]);
    let proxy = CutProxy::start(&hub.addr, Some(Cut::request(UPLOAD.0, UPLOAD.1, MIB as u64)));
    let camden = Party::with_url(&proxy.url, "camden");
    let data = pseudo_random_bytes(3 * MIB, 21);
    let file = camden.file("records.bin", &data);

    let out = send_cmd(&camden, &file).output().expect("run sealdrop send");
    let err = stderr(&out);
    assert!(out.status.success(), "send failed:\n{err}");
    assert!(!proxy.armed(), "the proxy never cut the upload");
    let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(err.contains(&format!("the upload of drop {id} was cut off")), "{err}");

    // Two uploads: the first from byte 0, the second from what the hub kept.
    let offsets = upload_offsets(&proxy);
    assert_eq!(offsets.len(), 2, "uploads seen: {offsets:?}");
    assert_eq!(offsets[0], None);
    let resumed_at: u64 = offsets[1].as_deref().expect("the second upload names its offset").parse().unwrap();
    assert!(resumed_at > 0 && resumed_at <= MIB as u64, "continued from byte {resumed_at}");
    assert_eq!(proxy.requests_matching("GET /v1/drops/", "/upload").len(), 1, "the hub was asked how much it holds");
    // Only the continued upload finished (the cut one logged nothing).
    assert_eq!(continued_from(&hub), [resumed_at]);
    assert_no_local_copy(&camden);

    // What arrives is exactly what was sent.
    let islington = Party::new(&hub, "islington");
    let incoming = islington.work().join("incoming");
    assert_fetched(&fetch(&islington, &id, &incoming, None), &incoming, &data);
}

fn a_send_cut_off_while_the_hub_stays_unreachable_continues_when_run_again(backend: Backend) {
    let hub = Hub::start_on(backend, None, &[]);
    let proxy = CutProxy::start(&hub.addr, Some(Cut::request(UPLOAD.0, UPLOAD.1, MIB as u64)));
    let camden = Party::with_url(&proxy.url, "camden");
    let data = pseudo_random_bytes(3 * MIB, 22);
    let file = camden.file("records.bin", &data);

    // The connection drops, then the "network" stays down: the proxy goes away.
    let child = send_cmd(&camden, &file).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    while proxy.armed() {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    drop(proxy);
    let first = child.wait_with_output().unwrap();
    let err = stderr(&first);
    assert_eq!(first.status.code(), Some(5), "stderr:\n{err}");
    assert_eq!(error_code(&err).as_deref(), Some("hub_unreachable"), "stderr:\n{err}");
    assert!(err.contains("run the same `sealdrop send` again to continue it"), "{err}");
    assert!(first.stdout.is_empty(), "nothing was sent, yet stdout says {:?}", String::from_utf8_lossy(&first.stdout));
    // (The `.open` record, beside them, lets a re-run replace the drop if it
    // could not continue it.)
    let kept: Vec<String> =
        list_dir(&camden.state.join("outgoing")).into_iter().filter(|n| !n.ends_with(".open")).collect();
    assert_eq!(kept.len(), 2, "the encrypted copy and its record are kept: {kept:?}");

    // The same command again, with the hub reachable: it continues the same
    // drop from what the hub holds instead of encrypting and sending again.
    let mut camden = camden;
    camden.point_at(&hub);
    let second = send_cmd(&camden, &file).output().unwrap();
    let err = stderr(&second);
    assert!(second.status.success(), "the second send failed:\n{err}");
    let id = String::from_utf8_lossy(&second.stdout).trim().to_owned();
    assert!(err.contains(&format!("continuing the upload of drop {id}")), "{err}");
    let offsets = continued_from(&hub);
    assert_eq!(offsets.len(), 1, "one upload finished: {offsets:?}");
    assert!(offsets[0] > 0, "the second run started over: {offsets:?}");
    assert_no_local_copy(&camden);

    let islington = Party::new(&hub, "islington");
    let incoming = islington.work().join("incoming");
    assert_fetched(&fetch(&islington, &id, &incoming, None), &incoming, &data);
    assert_eq!(islington.inbox_ids(), Vec::<String>::new(), "one drop only, and it was acknowledged");
}

#[test]
fn only_the_ciphertext_in_flight_is_kept_and_a_send_that_never_breaks_writes_nothing() {
    let hub = Hub::start();
    // Cut past the 32 MiB window the client keeps (in a ring in the page cache) while it uploads.
    let proxy = CutProxy::start(&hub.addr, Some(Cut::request(UPLOAD.0, UPLOAD.1, 40 * MIB as u64)));
    let camden = Party::with_url(&proxy.url, "camden");
    let data = pseudo_random_bytes(48 * MIB, 23);
    let file = camden.file("records.bin", &data);

    let child = send_cmd(&camden, &file).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    while proxy.armed() {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    drop(proxy);
    let first = child.wait_with_output().unwrap();
    let err = stderr(&first);
    assert_eq!(error_code(&err).as_deref(), Some("hub_unreachable"), "stderr:\n{err}");

    // The copy on disk starts where the window started: not at 0, and
    // no later than what the hub holds.
    let outgoing = camden.state.join("outgoing");
    let record_file = list_dir(&outgoing).into_iter().find(|n| n.ends_with(".json")).expect("the record is kept");
    let record: serde_json::Value = serde_json::from_slice(&read_bytes(&outgoing.join(&record_file))).unwrap();
    let base = record["base"].as_u64().expect("the record says where the copy starts");
    let total = record["digest"]["len"].as_u64().expect("the record has the digest");
    assert!(base > 0, "the whole ciphertext was copied: {record}");
    assert!(base <= 40 * MIB as u64, "the copy starts after what the hub holds: {record}");
    let spool = outgoing.join(record_file.replace(".json", ".age"));
    assert_eq!(std::fs::metadata(&spool).unwrap().len(), total - base, "the copy holds the rest");

    // Run again against the hub: it continues from what the hub holds.
    let mut camden = camden;
    camden.point_at(&hub);
    let second = send_cmd(&camden, &file).output().unwrap();
    let err = stderr(&second);
    assert!(second.status.success(), "the second send failed:\n{err}");
    let id = String::from_utf8_lossy(&second.stdout).trim().to_owned();
    let offsets = continued_from(&hub);
    assert!(offsets.len() == 1 && offsets[0] >= base, "continued from {offsets:?}, copy from {base}");
    assert_no_local_copy(&camden);
    let islington = Party::new(&hub, "islington");
    let incoming = islington.work().join("incoming");
    assert_fetched(&fetch(&islington, &id, &incoming, None), &incoming, &data);

    // A large send that never breaks leaves nothing in outgoing/ at any time
    // (checked while it runs, as well as it can be from outside): its window
    // is an unnamed file, which no listing shows.
    let big = camden.file("more.bin", pseudo_random_bytes(32 * MIB, 24));
    let mut run = send_cmd(&camden, &big).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut seen = Vec::new();
    while run.try_wait().unwrap().is_none() {
        // The `.open` record of the drop in flight (and the temporary file
        // it is written through) is a few bytes, no copy.
        seen.extend(
            list_dir(&outgoing).into_iter().filter(|n| !n.ends_with(".open") && !n.starts_with(".sealdrop-tmp-")),
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    assert!(run.wait().unwrap().success());
    assert!(seen.is_empty(), "an unbroken send wrote a local copy: {seen:?}");
}

sealdrop_e2e::on_both_backends!(
    resume_an_interrupted_fetch_from_where_it_stopped,
    a_cut_off_upload_continues_from_the_local_copy_without_starting_over,
    a_send_cut_off_while_the_hub_stays_unreachable_continues_when_run_again,
);
