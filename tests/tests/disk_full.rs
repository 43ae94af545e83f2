//! A full disk under the hub: the real binaries against a real hub whose
//! data directory is on a small tmpfs this test mounts (as root, as CI runs;
//! where mounting is not permitted it prints why and skips, and any other
//! failure to mount fails it).
//!
//! A send that meets the full disk is refused with HTTP 507
//! `insufficient_storage`, and the client's one-line error says what to
//! do, whether the bytes were to become a row of the hub's database (a
//! small drop) or a file (a large one). Nothing is corrupted: once space is
//! freed, the hub opens again (it checks its whole transfer log), its
//! database passes SQLite's integrity check, earlier drops are intact and
//! fetchable, the log verifies, and new sends work.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use sealdrop_e2e::{
    Cut, CutProxy, Hub, Party, Tmpfs, assert_one_error_line, error_code, pseudo_random_bytes, read_bytes, tree,
};

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;
/// Generous: the test machine has two cores and other work.
const WAIT: Duration = Duration::from_secs(120);

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts `send` was refused because the hub's disk is full: exit 6 (the
/// hub refused), `error[insufficient_storage]` on one line saying what to do.
fn assert_refused_for_space(out: &Output) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(6), "expected exit 6 (refused), stderr:\n{err}");
    assert_eq!(error_code(&err).as_deref(), Some("insufficient_storage"), "stderr:\n{err}");
    assert_one_error_line(&err);
    assert!(err.contains("storage is full") && err.contains("try again later"), "{err}");
}

/// How many times the hub answered 507 to `route` (from its request log).
fn refusals(hub: &Hub, method_route: &str) -> usize {
    hub.log()
        .lines()
        .filter(|l| l.contains("request failed") && l.contains("status=507") && l.contains(method_route))
        .count()
}

/// Camden sends `file` through `proxy`, which holds the body of the `PUT
/// /v1/drops/...` whose line contains `carrying` (`/content`: a three-step
/// upload; empty: the first, which for a small drop is the one request that
/// sends it whole) until the hub has authenticated the request; then the
/// disk is filled, and the body let through. Returns the send's output.
fn send_onto_a_filling_disk(
    hub: &Hub,
    disk: &Tmpfs,
    proxy: &CutProxy,
    camden: &Party,
    file: &Path,
    carrying: &str,
) -> Output {
    proxy.arm(Cut::stall_request("PUT /v1/drops/", carrying, 0));
    let sending = camden.spawn([OsStr::new("send"), OsStr::new("--to"), OsStr::new("islington"), file.as_os_str()]);
    proxy.wait_stalled(WAIT);
    let held = proxy.requests().into_iter().rfind(|r| r.cut).expect("the held request");
    let nonce = held.header("sealdrop-nonce").expect("a signed request has a nonce").to_owned();
    // The hub records the request's nonce once it has authenticated it: from
    // then on it writes nothing until the body arrives.
    let started = Instant::now();
    while hub.query_text("SELECT '' || count(*) FROM nonces WHERE nonce = ?1", &[&nonce]) != "1" {
        assert!(started.elapsed() < WAIT, "the hub never authenticated the held upload");
        std::thread::sleep(Duration::from_millis(20));
    }
    disk.fill("filler");
    proxy.release();
    sending.wait_with_output().expect("wait for sealdrop send")
}

#[test]
fn a_full_disk_refuses_sends_with_507_and_corrupts_nothing() {
    let disk = match Tmpfs::mount(48 << 20) {
        Ok(disk) => disk,
        Err(why) => {
            eprintln!("SKIPPED a_full_disk_refuses_sends_with_507_and_corrupts_nothing: {why}");
            return;
        }
    };
    let mut hub = Hub::start_in(disk.path(), &[]);
    let mut camden = Party::new(&hub, "camden");
    let mut islington = Party::new(&hub, "islington");

    // Earlier drops: a small one (a row of the hub's database) and a large
    // one (a file).
    let early_small = pseudo_random_bytes(20 * KIB, 31);
    let early_large = pseudo_random_bytes(3 * MIB, 32);
    let small_id = camden.send("islington", &[&camden.file("early-small.bin", &early_small)]);
    let large_id = camden.send("islington", &[&camden.file("early-large.bin", &early_large)]);
    let stored = (hub.ciphertext(&small_id), hub.ciphertext(&large_id));
    assert!(hub.data.path().join("blobs").join(format!("{large_id}.age")).is_file(), "the large drop is a file");

    // A small drop, sent in one request, meets the full disk when its
    // ciphertext becomes a row.
    let proxy = CutProxy::start(&hub.addr, None);
    camden.hub_url = proxy.url.clone();
    let small = camden.file("small.bin", pseudo_random_bytes(40 * KIB, 33));
    let refused = send_onto_a_filling_disk(&hub, &disk, &proxy, &camden, &small, "");
    assert_refused_for_space(&refused);
    assert_eq!(refusals(&hub, "route=/v1/drops/{id} "), 1, "hub log:\n{}", hub.log());
    std::fs::remove_file(disk.path().join("filler")).expect("free the disk");

    // A large drop meets the full disk when its file is written.
    let large = camden.file("large.bin", pseudo_random_bytes(3 * MIB, 34));
    let refused = send_onto_a_filling_disk(&hub, &disk, &proxy, &camden, &large, "/content");
    assert_refused_for_space(&refused);
    assert_eq!(refusals(&hub, "route=/v1/drops/{id}/content"), 1, "hub log:\n{}", hub.log());
    // Where each one met it: the database row, then the upload's file.
    let log = hub.log();
    let full: Vec<&str> = log.lines().filter(|l| l.contains("storage full")).collect();
    assert!(full.len() == 2 && full[0].contains("database") && full[1].contains(".part: "), "{full:#?}");
    camden.point_at(&hub);

    // While the disk is full every signed request is refused the same way
    // (the hub records each request's nonce before it answers).
    let (_, err) = islington.fail_code(["inbox"], "insufficient_storage");
    assert!(err.contains("try again later"), "{err}");

    // Nothing half-written is kept: both refused uploads were removed.
    let uploads = hub.data.path().join("uploads");
    let left = if uploads.exists() { sealdrop_e2e::list_dir(&uploads) } else { Vec::new() };
    assert!(left.is_empty(), "refused uploads left {left:?}");

    // Free the disk: the hub serves again at once, without a restart.
    std::fs::remove_file(disk.path().join("filler")).expect("free the disk");
    let mut waiting = islington.inbox_ids();
    waiting.sort();
    let mut earlier = vec![small_id.clone(), large_id.clone()];
    earlier.sort();
    assert_eq!(waiting, earlier, "only the earlier drops wait for islington");

    // Start the hub again: it opens (its log checks out), its database is
    // intact, and everything earlier is still there.
    hub.restart();
    camden.point_at(&hub);
    islington.point_at(&hub);
    assert_eq!(hub.query_text("PRAGMA integrity_check", &[]), "ok");
    // Nothing half-done is visible.
    let mut waiting = islington.inbox_ids();
    waiting.sort();
    assert_eq!(waiting, earlier, "only the earlier drops wait for islington");
    let open = camden.status().iter().filter(|d| d["state"] == "open").count();
    // The refused three-step send leaves its open, invisible drop (to
    // expire); the refused one-request send left nothing at all.
    assert_eq!(open, 1, "only the refused three-step send leaves an open, invisible drop");
    assert_eq!((hub.ciphertext(&small_id), hub.ciphertext(&large_id)), stored, "an earlier drop changed");
    hub.assert_consistent(&[&camden, &islington]);

    // New sends work, and every drop arrives as it was sent.
    let small_again = camden.send("islington", &[&small]);
    let large_again = camden.send("islington", &[&large]);
    let out = islington.work().join("incoming");
    islington.ok([OsStr::new("fetch"), OsStr::new("--all"), OsStr::new("-o"), out.as_os_str()]);
    let got = tree(&out);
    assert_eq!(got.keys().collect::<Vec<_>>(), ["early-large.bin", "early-small.bin", "large.bin", "small.bin"]);
    assert!(got["early-small.bin"] == early_small && got["early-large.bin"] == early_large);
    assert!(got["small.bin"] == read_bytes(&small) && got["large.bin"] == read_bytes(&large));
    let drops = hub.assert_consistent(&[&camden, &islington]);
    for id in [&small_id, &large_id, &small_again, &large_again] {
        assert_eq!(drops[id].state, "delivered", "drop {id}");
    }
}
