//! Abandoned partial uploads: the upload of a drop that is not committed
//! (finished, or cut off and kept for its sender to continue) stays at most
//! the resume window (a day) after its last activity, not the drop's whole
//! expiry. Time moves on the test clock, never by sleeping: one second
//! inside the window the upload is kept, one second outside the sweeper has
//! removed it (a file for a large one, a database row for a small one), the
//! drop stays open, and running the same `sealdrop send` again still works.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use sealdrop_e2e::{
    Cut, CutProxy, Hub, Party, TestClock, error_code, http, list_dir, member_key, pseudo_random_bytes, tree,
};
use sealdrop_proto::api::{Commit, CreatedDrop, UPLOAD_OFFSET_HEADER};

/// The resume window's default: a day.
const WINDOW: i64 = 86_400;

/// `sealdrop send --to islington FILE` as `party`, keeping a local copy whatever the size.
fn send_cmd(party: &Party, file: &Path) -> Command {
    let mut cmd = party.command();
    cmd.env("SEALDROP_RESUME_MIN_BYTES", "0");
    cmd.arg("send").arg("--to").arg("islington").arg(file).stdin(Stdio::null());
    cmd
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs a send through `proxy`, which cuts it; then the network stays down
/// (the proxy goes away), so the send fails, keeping its local copy of the
/// ciphertext (and its record) if `local_copy` (the client spills one only
/// when the upload itself breaks). Returns the id of the drop left open on the hub.
fn send_cut_off(hub: &Hub, camden: &Party, file: &Path, proxy: CutProxy, local_copy: bool) -> String {
    let child = send_cmd(camden, file).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let started = Instant::now();
    while proxy.armed() {
        assert!(started.elapsed() < Duration::from_secs(60), "the proxy never cut the send");
        std::thread::sleep(Duration::from_millis(5));
    }
    drop(proxy);
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(5), "stderr:\n{err}");
    assert_eq!(error_code(&err).as_deref(), Some("hub_unreachable"), "stderr:\n{err}");
    let id = hub.query_text("SELECT id FROM drops WHERE state = 'open'", &[]);
    // Beside the local copy, the record that lets the same send run again
    // replace the open drop if it cannot continue it.
    let (records, outgoing): (Vec<String>, Vec<String>) =
        list_dir(&camden.state.join("outgoing")).into_iter().partition(|n| n.ends_with(".open"));
    assert_eq!(outgoing.len(), if local_copy { 2 } else { 0 }, "the client's local copy: {outgoing:?}");
    assert_eq!(records, [format!("{id}.open")]);
    id
}

/// Completed sweeps so far, from the hub's metrics.
fn sweeps(hub: &Hub) -> f64 {
    let text = hub.scrape();
    text.lines()
        .find_map(|l| l.strip_prefix("sealdrop_hub_sweeper_runs_total{result=\"ok\"} "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Waits until two more sweeps have completed, so at least one started
/// after the clock last moved.
fn let_the_sweeper_run(hub: &Hub) {
    let before = sweeps(hub);
    let started = Instant::now();
    while sweeps(hub) < before + 2.0 {
        assert!(started.elapsed() < Duration::from_secs(20), "the sweeper stopped running:\n{}", hub.log());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `GET /v1/drops/{id}/upload` as camden, at the test clock's time.
fn progress(hub: &Hub, clock: &TestClock, id: &str) -> (u64, bool) {
    let path = format!("/v1/drops/{id}/upload");
    let reply = http::signed_at(&hub.url, &member_key("camden").signing, "GET", &path, clock.now(), b"");
    assert_eq!(reply.status, 200, "{reply:?}");
    let v = sealdrop_e2e::json(&reply.body);
    (v["received"].as_u64().unwrap(), v["complete"].as_bool().unwrap())
}

/// The drop's state and whether the hub records a finished upload for it.
fn drop_row(hub: &Hub, id: &str) -> (String, String) {
    (
        hub.query_text("SELECT state FROM drops WHERE id = ?1", &[&id]),
        hub.query_text("SELECT CAST(upload_len IS NOT NULL AS TEXT) FROM drops WHERE id = ?1", &[&id]),
    )
}

/// The length of the drop's upload row in the database, `-` if it has none.
fn upload_row(hub: &Hub, id: &str) -> String {
    hub.query_text(
        "SELECT COALESCE((SELECT CAST(length(data) AS TEXT) FROM inline_blobs WHERE drop_id = ?1 AND stage = 'upload'), '-')",
        &[&id],
    )
}

/// The same send again, straight to the hub, succeeds; with `continues`,
/// it continues the same drop from its local copy (uploading everything
/// again: the hub holds nothing now) rather than sending a new one.
/// Islington then fetches exactly `data`.
fn send_again_and_fetch(hub: &Hub, clock: &TestClock, mut camden: Party, file: &Path, continues: &str, data: &[u8]) {
    camden.point_at(hub);
    let out = send_cmd(&camden, file).output().unwrap();
    let err = stderr(&out);
    assert!(out.status.success(), "the send run again failed:\n{err}");
    let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if !continues.is_empty() {
        assert_eq!(id, continues, "{err}");
        assert!(err.contains(&format!("continuing the upload of drop {id}")), "{err}");
    }
    assert!(list_dir(&camden.state.join("outgoing")).is_empty(), "the local copy outlived the commit");
    let islington = Party::new(hub, "islington").with_clock(clock);
    let incoming = islington.work().join("incoming");
    islington.fetch(&id, &incoming);
    let got = tree(&incoming);
    assert!(got.get("records.bin").is_some_and(|b| b == data), "the fetched drop differs: {:?}", got.keys());
}

/// Camden commits `drop` by hand, at the test clock's time, with a signed
/// manifest stating `ciphertext`.
fn commit_by_hand(hub: &Hub, clock: &TestClock, drop: &CreatedDrop, ciphertext: &[u8]) -> http::Reply {
    let key = member_key("camden");
    let manifest = sealdrop_e2e::manifest_for("camden", "islington", drop, ciphertext);
    let commit = Commit { manifest: sealdrop_proto::note::sign_doc(&manifest, &key.signing), known_size: None };
    let body = serde_json::to_vec(&commit).unwrap();
    let path = format!("/v1/drops/{}/commit", drop.id);
    http::signed_at(&hub.url, &key.signing, "POST", &path, clock.now(), &body)
}

/// Waits until the hub holds the prefix of drop `id`'s cut-off upload in
/// its file; returns the file and its length.
fn kept_part(hub: &Hub, id: &str) -> (std::path::PathBuf, u64) {
    let part = hub.data.path().join("uploads").join(format!("{id}.part"));
    let started = Instant::now();
    while !part.exists() {
        assert!(started.elapsed() < Duration::from_secs(10), "the hub kept nothing of the cut-off upload");
        std::thread::sleep(Duration::from_millis(20));
    }
    let held = std::fs::metadata(&part).unwrap().len();
    assert!(held > 65_536 && held <= 200_000, "the hub holds {held} bytes");
    (part, held)
}

/// A hub that takes every drop in three requests (create, upload, commit):
/// these drops are small enough for one request, which leaves no upload to
/// abandon, and the three steps are what larger drops and older hubs use.
fn hub_with_clock(clock: &TestClock) -> Hub {
    Hub::start_with_clock(
        clock,
        &["--sweep-interval", "0.1", "--metrics-listen", "127.0.0.1:0", "--max-single-request-bytes", "0"],
    )
}

#[test]
fn a_cut_off_upload_is_removed_one_second_after_the_resume_window_and_the_send_run_again_succeeds() {
    let clock = TestClock::new();
    let hub = hub_with_clock(&clock);
    let proxy = CutProxy::start(&hub.addr, Some(Cut::request("PUT /v1/drops/", "/content", 200_000)));
    let camden = Party::with_url(&proxy.url, "camden").with_clock(&clock);
    let data = pseudo_random_bytes(600_000, 41);
    let file = camden.file("records.bin", &data);
    let id = send_cut_off(&hub, &camden, &file, proxy, true);

    // The hub keeps the prefix, in a file (it is larger than 64 KiB).
    let (part, held) = kept_part(&hub, &id);
    assert_eq!(progress(&hub, &clock, &id), (held, false));

    // A day without activity: still inside the window, kept.
    clock.advance(WINDOW);
    let_the_sweeper_run(&hub);
    assert!(part.exists(), "the upload was removed inside the resume window");
    assert_eq!(progress(&hub, &clock, &id), (held, false));

    // One second more: removed, and the drop stays open.
    clock.advance(1);
    let_the_sweeper_run(&hub);
    assert!(!part.exists(), "the upload outlived the resume window");
    assert_eq!(progress(&hub, &clock, &id), (0, false));
    assert_eq!(drop_row(&hub, &id), ("open".to_owned(), "0".to_owned()));
    let log = hub.log();
    assert!(log.contains("inactive for longer than the resume window") && log.contains(&id), "{log}");

    send_again_and_fetch(&hub, &clock, camden, &file, &id, &data);
}

#[test]
fn an_upload_abandoned_23_hours_ago_is_continued_from_where_it_stopped() {
    let clock = TestClock::new();
    let hub = hub_with_clock(&clock);
    let proxy = CutProxy::start(&hub.addr, Some(Cut::request("PUT /v1/drops/", "/content", 200_000)));
    let mut camden = Party::with_url(&proxy.url, "camden").with_clock(&clock);
    let data = pseudo_random_bytes(600_000, 43);
    let file = camden.file("records.bin", &data);
    let id = send_cut_off(&hub, &camden, &file, proxy, true);
    let (part, held) = kept_part(&hub, &id);

    clock.advance(23 * 3600);
    let_the_sweeper_run(&hub);
    assert!(part.exists(), "the upload was removed 23 h after its last activity");
    assert_eq!(progress(&hub, &clock, &id), (held, false));

    // The same send again, through a proxy that only watches: one upload,
    // continuing from the byte the hub kept, not from the start.
    let watcher = CutProxy::start(&hub.addr, None);
    camden.hub_url = watcher.url.clone();
    let out = send_cmd(&camden, &file).output().unwrap();
    let err = stderr(&out);
    assert!(out.status.success(), "the send run again failed:\n{err}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), id, "{err}");
    let puts = watcher.requests_matching("PUT /v1/drops/", "/content");
    assert_eq!(puts.len(), 1, "{puts:?}");
    assert_eq!(puts[0].header(UPLOAD_OFFSET_HEADER), Some(held.to_string().as_str()), "{puts:?}");
    assert!(!part.exists(), "the committed upload's file stayed in uploads/");

    let islington = Party::new(&hub, "islington").with_clock(&clock);
    let incoming = islington.work().join("incoming");
    islington.fetch(&id, &incoming);
    assert!(tree(&incoming).get("records.bin").is_some_and(|b| *b == data), "the fetched drop differs");
}

#[test]
fn a_small_finished_upload_left_uncommitted_is_removed_from_the_database_after_the_resume_window() {
    let clock = TestClock::new();
    let hub = hub_with_clock(&clock);
    // The upload completes; the commit never reaches the hub.
    let proxy = CutProxy::start(&hub.addr, Some(Cut::request("POST /v1/drops/", "/commit", 0)));
    let camden = Party::with_url(&proxy.url, "camden").with_clock(&clock);
    let data = pseudo_random_bytes(3_000, 42);
    let file = camden.file("records.bin", &data);
    let id = send_cut_off(&hub, &camden, &file, proxy, false);

    // A small ciphertext is a row of the database, never a file.
    let (held, complete) = progress(&hub, &clock, &id);
    assert!(complete && held > 3_000, "the hub holds {held} bytes (complete: {complete})");
    assert_eq!(upload_row(&hub, &id), held.to_string());
    assert!(list_dir(&hub.data.path().join("uploads")).is_empty());
    assert_eq!(drop_row(&hub, &id), ("open".to_owned(), "1".to_owned()));

    clock.advance(WINDOW);
    let_the_sweeper_run(&hub);
    assert_eq!(upload_row(&hub, &id), held.to_string(), "the upload was removed inside the resume window");
    assert_eq!(progress(&hub, &clock, &id), (held, true));

    clock.advance(1);
    let_the_sweeper_run(&hub);
    assert_eq!(upload_row(&hub, &id), "-", "the upload's row outlived the resume window");
    assert_eq!(progress(&hub, &clock, &id), (0, false));
    assert_eq!(drop_row(&hub, &id), ("open".to_owned(), "0".to_owned()), "the drop stays open, with no upload");

    // The client kept no local copy (its upload did not break), so it sends
    // a new drop; either way the same command works again.
    send_again_and_fetch(&hub, &clock, camden, &file, "", &data);
}

#[test]
fn activity_restarts_the_window_and_a_drop_without_an_upload_stays_until_its_expiry() {
    let clock = TestClock::new();
    let hub = hub_with_clock(&clock);
    let camden = member_key("camden").signing;
    let create = |clock: &TestClock| {
        let body = serde_json::json!({
            "recipients": ["islington"],
            "agreement": sealdrop_e2e::AGREEMENT,
            "expires": sealdrop_proto::Timestamp::from_second(clock.now() + 3 * WINDOW).unwrap(),
        });
        let reply = http::signed_at(&hub.url, &camden, "POST", "/v1/drops", clock.now(), body.to_string().as_bytes());
        assert_eq!(reply.status, 200, "{reply:?}");
        serde_json::from_str::<CreatedDrop>(&reply.body).unwrap()
    };
    let put = |clock: &TestClock, id: &str, offset: u64, bytes: &[u8]| {
        let path = format!("/v1/drops/{id}/content");
        let auth = sealdrop_proto::request::sign_request(&camden, "PUT", &path, clock.now(), None);
        let mut req = http::client().put(format!("{}{path}", hub.url)).body(bytes.to_vec());
        req = req.header(sealdrop_proto::api::UPLOAD_OFFSET_HEADER, offset.to_string());
        for (name, value) in auth.headers() {
            req = req.header(name, value);
        }
        let reply = http::Reply::from(req.send());
        assert_eq!(reply.status, 200, "{reply:?}");
    };
    let created = create(&clock);
    let with_upload = created.id.to_string();
    let without = create(&clock).id.to_string();
    put(&clock, &with_upload, 0, &[1u8; 1000]);

    // 20 hours later the sender continues it: the window starts again.
    clock.advance(20 * 3600);
    put(&clock, &with_upload, 1000, &[2u8; 1000]);
    clock.advance(20 * 3600);
    let_the_sweeper_run(&hub);
    assert_eq!(progress(&hub, &clock, &with_upload), (2000, true), "removed 20 h after its last activity");
    clock.advance(4 * 3600 + 1);
    let_the_sweeper_run(&hub);
    assert_eq!(progress(&hub, &clock, &with_upload), (0, false));
    // Its drop can no longer be committed: the error says why and what to do.
    let whole = [[1u8; 1000], [2u8; 1000]].concat();
    let log_entries = || hub.query_text("SELECT CAST(count(*) AS TEXT) FROM log_entries", &[]);
    let logged = log_entries();
    let reply = commit_by_hand(&hub, &clock, &created, &whole);
    assert_eq!(reply.status, 409, "{reply:?}");
    let v = sealdrop_e2e::json(&reply.body);
    assert_eq!(v["error"]["code"], "conflict", "{reply:?}");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("no content yet: upload the content first")
            && message.contains("removed 24 h after its last activity"),
        "{message}"
    );
    assert_eq!(log_entries(), logged, "a refused commit was logged");
    // Neither drop is removed before its expiry: only the upload went.
    assert_eq!(drop_row(&hub, &with_upload).0, "open");
    assert_eq!(drop_row(&hub, &without), ("open".to_owned(), "0".to_owned()));
    // At the expiry (three days after creation) both go, as before.
    clock.advance(2 * WINDOW);
    let_the_sweeper_run(&hub);
    for id in [&with_upload, &without] {
        let left = hub.query_text("SELECT CAST(count(*) AS TEXT) FROM drops WHERE id = ?1", &[id]);
        assert_eq!(left, "0", "drop {id} outlived its expiry");
    }
}
