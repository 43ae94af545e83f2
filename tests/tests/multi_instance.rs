//! Two `sealdrop-hub serve` instances of one hub, on one PostgreSQL
//! database and one bucket (real servers the tests start, see
//! `sealdrop_e2e::SharedStores`), with clients pointed at different
//! instances: commit storms on both at once make one log; an instance killed
//! (`kill -9`, or aborting at a fail point, see `hub/src/failpoint.rs`) in
//! the middle of an upload, of a commit or inside a log append leaves work
//! the other instance finishes; a download cut off on one instance resumes
//! on the other; a signed request replayed to the other
//! instance is refused; the sweeper's work moves to the instance that
//! survives; a directory accepted through one instance is in force on the
//! other. After each, `sealdrop audit verify` passes from clients of the
//! instances, and the log is checked independently as C2SP tlog-tiles with
//! the `tlog_tiles` crate (not sealdrop-log's own tree code).

use std::ffi::OsStr;
use std::os::unix::process::ExitStatusExt as _;
use std::process::Output;
use std::time::{Duration, Instant};

use sealdrop_e2e::{
    AGREEMENT, Coordinator, Cut, CutProxy, Hub, Party, SharedStores, TestClock, http, is_drop_id, json, member_key,
    pseudo_random_bytes, tree,
};
use sealdrop_log::entry::LogEntry;
use sealdrop_proto::keys::NoteVerifierKey;
use sealdrop_proto::request::sign_request;
use tlog_tiles::{Hash, HashReader};

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;
/// Generous: the test machine has two cores and other work.
const WAIT: Duration = Duration::from_secs(120);
/// SIGABRT, what `std::process::abort` ends a hub at a fail point with.
const SIGABRT: i32 = 6;
/// The object store's segment size (`hub/src/storage/object`): what an
/// upload cut off on one instance continues from on another.
const SEGMENT: usize = 8 * MIB;
/// How soon a directory one instance accepted must be in force on the
/// others (they learn it from the shared database).
const DIRECTORY_IN_FORCE: Duration = Duration::from_secs(30);

/// Two instances of one hub on fresh shared stores.
fn two_instances(clock: Option<&TestClock>, options: &[&str]) -> (Hub, Hub) {
    let first = Hub::start_on_shared_stores(&SharedStores::start(), clock, options);
    let second = first.another_instance(options);
    (first, second)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `sealdrop send --to TO FILE` as `party`.
fn send_output(party: &Party, to: &str, file: &std::path::Path) -> Output {
    party.run([OsStr::new("send"), OsStr::new("--to"), OsStr::new(to), file.as_os_str()])
}

/// The drop id a successful `send` printed.
fn sent_id(out: &Output) -> String {
    assert!(out.status.success(), "send failed:\n{}", stderr(out));
    let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(is_drop_id(&id), "send printed {id:?}");
    id
}

/// Asserts a send failed because its instance went away: exit 5.
fn assert_instance_went_away(out: &Output) {
    assert_eq!(out.status.code(), Some(5), "expected exit 5 (hub unreachable), stderr:\n{}", stderr(out));
}

/// Waits for `hub` to abort at fail point `point`.
fn wait_aborted(hub: &mut Hub, point: &str) {
    let status = hub.wait_exit(WAIT);
    assert_eq!(status.signal(), Some(SIGABRT), "the instance did not abort: {status}\n{}", hub.log());
    assert!(hub.log().contains(&format!("aborting at fail point {point}")), "{}", hub.log());
}

fn wait_for(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "timed out after {within:?} waiting for {what}");
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

/// `sealdrop audit verify` from `party` with the hub's log key pinned:
/// passes, and counts `commits` committed drops.
fn audit_verifies(party: &Party, log_key: &str, commits: usize) {
    let verdict = json(&party.ok(["audit", "verify", "--log-key", log_key, "--json"]));
    assert_eq!(verdict["verified"], true, "{} (on {}): {verdict}", party.id, party.hub_url);
    assert_eq!(verdict["drops_committed"].as_u64(), Some(commits as u64), "{verdict}");
}

/// Every stored hash of a log, in `tlog_tiles`' storage order.
struct StoredHashes(Vec<Hash>);

impl HashReader for StoredHashes {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog_tiles::Error> {
        let at = |i: &u64| usize::try_from(*i).ok().and_then(|i| self.0.get(i)).copied();
        indexes.iter().map(|i| at(i).ok_or(tlog_tiles::Error::InvalidProof)).collect()
    }
}

/// A tile index as a C2SP tlog-tiles path segment: 3-digit groups, all but
/// the last prefixed by `x` (`1234067` is `x001/x234/067`).
fn tile_index(mut n: u64) -> String {
    let mut path = format!("{:03}", n % 1000);
    while n >= 1000 {
        n /= 1000;
        path = format!("x{:03}/{path}", n % 1000);
    }
    path
}

/// Checks the log `hub` serves as C2SP tlog-tiles, independently of
/// sealdrop's own log code: the checkpoint is signed by `log_key`; the entry
/// bundles (`tile/entries/N[.p/W]`) hold `size` entries; the level-0 hash
/// tiles (`tile/0/N[.p/W]`) are their record hashes; and the tree those
/// entries make, computed by the `tlog_tiles` crate, has the checkpoint's
/// root. Returns the entries, parsed.
fn assert_tlog_tiles(hub: &Hub, log_key: &NoteVerifierKey) -> Vec<LogEntry> {
    let note = hub.read("/v1/log/checkpoint");
    assert_eq!(note.status, 200, "{note:?}");
    sealdrop_log::checkpoint::open(&note.body, log_key).expect("the checkpoint is signed by the log key");
    let body = note.body.split_once("\n\n").map(|(text, _)| format!("{text}\n")).expect("a signed note");
    let checkpoint = tlog_tiles::Checkpoint::from_bytes(body.as_bytes()).expect("a C2SP checkpoint");
    let size = checkpoint.size();

    let mut entries: Vec<Vec<u8>> = Vec::new();
    let mut stored = StoredHashes(Vec::new());
    for tile in 0..size.div_ceil(256) {
        let width = (size - tile * 256).min(256);
        let path = if width == 256 { tile_index(tile) } else { format!("{}.p/{width}", tile_index(tile)) };
        let bundle = hub.read(&format!("/v1/log/tile/entries/{path}"));
        assert_eq!(bundle.status, 200, "{bundle:?}");
        let mut rest = &bundle.bytes[..];
        let mut record_hashes = Vec::new();
        while !rest.is_empty() {
            let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
            let entry = rest[2..2 + len].to_vec();
            rest = &rest[2 + len..];
            let n = entries.len() as u64;
            record_hashes.extend(tlog_tiles::record_hash(&entry).0);
            let new = tlog_tiles::stored_hashes(n, &entry, &stored).expect("stored hashes");
            stored.0.extend(new);
            entries.push(entry);
        }
        assert_eq!(entries.len() as u64, tile * 256 + width, "entry bundle {path} holds another number of entries");
        let hashes = hub.read(&format!("/v1/log/tile/0/{path}"));
        assert_eq!(hashes.status, 200, "{hashes:?}");
        assert!(hashes.bytes == record_hashes, "hash tile 0/{path} is not the record hashes of its entries");
    }
    let root = tlog_tiles::tree_hash(size, &stored).expect("the tree hash");
    assert_eq!(&root, checkpoint.hash(), "the entries make another tree than the checkpoint's");
    entries
        .iter()
        .enumerate()
        .map(|(i, e)| LogEntry::from_bytes(e).unwrap_or_else(|err| panic!("entry {i}: {err}")))
        .collect()
}

#[test]
fn commit_storms_on_both_instances_make_one_log_that_verifies_from_both() {
    let (first, second) = two_instances(None, &[]);
    // Three senders on each instance, each its own client process, at once.
    let senders: Vec<Party> = [("camden", &first), ("hackney", &first), ("barnet", &first)]
        .into_iter()
        .chain([("islington", &second), ("lambeth", &second), ("brent", &second)])
        .map(|(id, hub)| Party::new(hub, id))
        .collect();
    const EACH: usize = 4;
    let sent: Vec<Vec<String>> = std::thread::scope(|s| {
        let runs: Vec<_> = senders
            .iter()
            .map(|p| {
                s.spawn(move || {
                    (0..EACH)
                        .map(|i| p.send("westminster", &[&p.file(&format!("{i}.csv"), format!("x\n{i}\n"))]))
                        .collect::<Vec<String>>()
                })
            })
            .collect();
        runs.into_iter().map(|r| r.join().expect("a sender")).collect()
    });
    let all: Vec<&String> = sent.iter().flatten().collect();
    assert_eq!(all.len(), 6 * EACH);

    // Each drop is committed exactly once, in one sequence of log indexes.
    let entries = first.log_entries();
    let commits = sealdrop_e2e::commits_in(&entries);
    for id in &all {
        assert_eq!(commits.get(*id).map(Vec::len), Some(1), "drop {id} is committed {:?} times", commits.get(*id));
    }
    let westminster = Party::new(&second, "westminster");
    let mut inbox = westminster.inbox_ids();
    inbox.sort();
    let mut expected: Vec<String> = all.iter().map(|s| (*s).clone()).collect();
    expected.sort();
    assert_eq!(inbox, expected, "westminster's inbox on the second instance");

    // One log from either instance: the audit from a client of each, and
    // the tiles each serves, checked independently, are the same tree.
    let log_key = first.verifier_key();
    assert_eq!(second.verifier_key(), log_key);
    let vkey: NoteVerifierKey = log_key.parse().unwrap();
    for party in [&senders[0], &senders[3]] {
        audit_verifies(party, &log_key, all.len());
    }
    let from_first = assert_tlog_tiles(&first, &vkey);
    let from_second = assert_tlog_tiles(&second, &vkey);
    assert_eq!(from_first, from_second, "the instances serve different logs");
    assert_eq!(from_first, entries, "the tiles are not the log the database holds");
}

#[test]
fn an_instance_killed_mid_upload_leaves_the_upload_for_the_other_to_continue() {
    let (mut first, second) = two_instances(None, &[]);
    // The upload through the first instance is held after 12 MiB: one
    // segment is in the bucket, the next is in the instance's hands.
    let proxy = CutProxy::start(&first.addr, Some(Cut::stall_request("PUT /v1/drops/", "/content", 12 << 20)));
    let mut camden = Party::with_url(&proxy.url, "camden");
    let data = pseudo_random_bytes(20 * MIB, 1);
    let file = camden.file("census.bin", &data);
    let sending = camden.spawn([OsStr::new("send"), OsStr::new("--to"), OsStr::new("islington"), file.as_os_str()]);
    proxy.wait_stalled(WAIT);
    let line = &proxy.requests_matching("PUT /v1/drops/", "/content")[0].line;
    let id = line.split('/').nth(3).unwrap_or_default().to_owned();
    assert!(is_drop_id(&id), "{line}");
    let stores = SharedStores::clone(first.shared_stores().expect("on shared stores"));
    let segments = stores.objects().join("segments").join(&id);
    let segment_held = || walk_len(&segments) >= SEGMENT as u64;
    wait_for("the first segment in the bucket", WAIT, segment_held);

    first.stop(); // SIGKILL
    let failed = sending.wait_with_output().expect("wait for sealdrop send");
    assert_instance_went_away(&failed);

    // The same send, pointed at the other instance, continues the same drop
    // from the segment the bucket holds.
    camden.point_at(&second);
    let again = send_output(&camden, "islington", &file);
    assert_eq!(sent_id(&again), id, "the same send continues the same drop");
    assert!(stderr(&again).contains(&format!("continuing the upload of drop {id}")), "{}", stderr(&again));
    assert!(second.log().contains(&format!("continued_from={SEGMENT}")), "{}", second.log());
    let islington = Party::new(&second, "islington");
    fetch_and_check(&islington, &id, "census.bin", &data);
    let log_key = second.verifier_key();
    audit_verifies(&islington, &log_key, 1);
    assert_tlog_tiles(&second, &log_key.parse().unwrap());
}

#[test]
fn a_download_cut_off_on_one_instance_resumes_on_the_other() {
    let (first, second) = two_instances(None, &[]);
    let camden = Party::new(&first, "camden");
    let data = pseudo_random_bytes(3 * MIB, 4);
    let id = camden.send("islington", &[&camden.file("records.bin", &data)]);
    let proxy = CutProxy::start(&first.addr, Some(Cut::response("GET /v1/drops/", "/content", MIB as u64)));
    let mut islington = Party::with_url(&proxy.url, "islington");
    let out = islington.work().join("incoming");
    let fetch = |islington: &Party| {
        let mut command = islington.command();
        // Spool any size, so the cut-off download can resume.
        command.env("SEALDROP_RESUME_MIN_BYTES", "0").arg("fetch").arg(&id).arg("-o").arg(&out);
        command.output().expect("run sealdrop fetch")
    };
    let cut = fetch(&islington);
    assert_eq!(cut.status.code(), Some(5), "{}", stderr(&cut));
    assert!(!proxy.armed(), "the proxy never cut the download");

    islington.point_at(&second);
    let resumed = fetch(&islington);
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    assert!(stderr(&resumed).contains(&format!("resuming drop {id} from byte")), "{}", stderr(&resumed));
    assert!(second.log().contains("serving content range"), "{}", second.log());
    let got = tree(&out);
    assert!(got.get("records.bin").is_some_and(|b| *b == data), "the resumed download differs from what was sent");
    audit_verifies(&islington, &second.verifier_key(), 1);
}

/// The bytes of every file under `dir`.
fn walk_len(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .map(|e| e.expect("a folder entry").path())
        .map(|p| if p.is_dir() { walk_len(&p) } else { std::fs::metadata(&p).map_or(0, |m| m.len()) })
        .sum()
}

/// The second instance aborts at `point` in the middle of camden's send of
/// a drop through it while the first instance keeps committing hackney's
/// drops; the same send, pointed at the first instance, completes as a new
/// drop. The crashed drop is never in the log, every other commit is there
/// once, and the log verifies, from clients of both instances (the second
/// started again) and as tiles.
fn killed_while_the_other_commits(point: &str, size: usize) {
    let first = Hub::start_on_shared_stores(&SharedStores::start(), None, &[]);
    let mut second = first.another_instance_with_failpoint(point);
    let mut camden = Party::new(&second, "camden");
    let hackney = Party::new(&first, "hackney");
    let data = pseudo_random_bytes(size, 2);
    let file = camden.file("records.bin", &data);

    let (failed, others) = std::thread::scope(|s| {
        let storm = s.spawn(|| {
            (0..5).map(|i| hackney.send("islington", &[&hackney.file(&format!("{i}.csv"), "x\n1\n")])).collect()
        });
        let failed = send_output(&camden, "islington", &file);
        (failed, storm.join().expect("hackney's sends"))
    });
    let others: Vec<String> = others;
    assert_instance_went_away(&failed);
    wait_aborted(&mut second, point);
    camden.point_at(&first);
    let crashed: Vec<String> = camden.status().iter().filter_map(|d| d["id"].as_str().map(str::to_owned)).collect();
    assert_eq!(crashed.len(), 1, "the crashed send created one drop: {crashed:?}");
    let crashed = &crashed[0];
    assert_eq!(first.stored_drops()[crashed].state, "open");

    let again = sent_id(&send_output(&camden, "islington", &file));
    assert_ne!(&again, crashed, "a drop whose commit was cut off is sent again as a new one");
    let commits = first.commits_in_log();
    assert!(!commits.contains_key(crashed), "the crashed commit is in the log");
    for id in others.iter().chain([&again]) {
        assert_eq!(commits.get(id).map(Vec::len), Some(1), "drop {id}'s commits: {:?}", commits.get(id));
    }
    second.restart();
    let islington = Party::new(&second, "islington");
    fetch_and_check(&islington, &again, "records.bin", &data);

    let log_key = first.verifier_key();
    for party in [&camden, &islington] {
        audit_verifies(party, &log_key, others.len() + 1);
    }
    let vkey = log_key.parse().unwrap();
    assert_eq!(assert_tlog_tiles(&first, &vkey), assert_tlog_tiles(&second, &vkey));
}

#[test]
fn an_instance_killed_mid_commit_leaves_the_send_to_the_other_and_one_log() {
    killed_while_the_other_commits("commit:after_promote", 30 * KIB);
}

#[test]
fn an_instance_killed_inside_a_log_append_rolls_it_back_and_the_other_appends_on() {
    killed_while_the_other_commits("log:after_append_before_checkpoint", 40 * KIB);
}

#[test]
fn a_signed_request_replayed_to_the_other_instance_is_refused() {
    let (first, second) = two_instances(None, &[]);
    let camden = member_key("camden").signing;
    let auth = sign_request(&camden, "GET", "/v1/inbox", http::now(), Some(b""));
    let served = http::send_with_auth(&first.url, "GET", "/v1/inbox", Some(&auth), None);
    assert_eq!(served.status, 200, "{served:?}");
    http::send_with_auth(&second.url, "GET", "/v1/inbox", Some(&auth), None).assert_error(401, "replayed_nonce");

    // A request that changes something: served once, by whichever instance sees it first.
    let expires = sealdrop_proto::Timestamp::now().as_second() + 86400;
    let body = serde_json::to_vec(&serde_json::json!({
        "recipients": ["islington"],
        "agreement": AGREEMENT,
        "expires": sealdrop_proto::Timestamp::from_second(expires).unwrap().to_string(),
    }))
    .unwrap();
    let auth = sign_request(&camden, "POST", "/v1/drops", http::now(), Some(&body));
    let created = http::send_with_auth(&second.url, "POST", "/v1/drops", Some(&auth), Some(body.clone()));
    assert!((200..300).contains(&created.status), "{created:?}");
    let replayed = http::send_with_auth(&first.url, "POST", "/v1/drops", Some(&auth), Some(body));
    replayed.assert_error(401, "replayed_nonce");
    assert_eq!(first.stored_drops().len(), 1, "the replay created a drop");
}

#[test]
fn when_the_sweepers_instance_dies_the_surviving_instance_sweeps() {
    let clock = TestClock::new();
    let sweep = ["--sweep-interval", "0.1"];
    let mut first = Hub::start_on_shared_stores(&SharedStores::start(), Some(&clock), &sweep);
    let camden = Party::new(&first, "camden").with_clock(&clock);
    let send_expiring = |camden: &Party, name: &str| {
        let file = camden.file(name, pseudo_random_bytes(100 * KIB, 3));
        let args = [OsStr::new("send"), "--to".as_ref(), "islington".as_ref(), "--expires".as_ref(), "36h".as_ref()];
        camden.ok(args.into_iter().chain([file.as_os_str()])).trim().to_owned()
    };
    let state = |hub: &Hub, id: &str| hub.stored_drops()[id].state.clone();

    // Alone, the first instance is the one that sweeps.
    let early = send_expiring(&camden, "early.bin");
    clock.advance(2 * 86400);
    wait_for("the first instance to expire a drop", WAIT, || state(&first, &early) == "expired");

    // With a second instance running, the first (the sweeper) dies; the
    // next expiry is the survivor's to sweep.
    let second = first.another_instance(&sweep);
    let mut camden = camden;
    camden.point_at(&second);
    let late = send_expiring(&camden, "late.bin");
    assert!(second.has_ciphertext(&late));
    first.stop(); // SIGKILL
    clock.advance(2 * 86400);
    wait_for("the surviving instance to expire the drop", WAIT, || state(&second, &late) == "expired");
    wait_for("the surviving instance to delete its ciphertext", WAIT, || !second.has_ciphertext(&late));
    assert_eq!(camden.status_of(&late)["state"], "expired");
    // Swept once: one deletion in the log.
    let deletions = second
        .log_entries()
        .iter()
        .filter(
            |e| matches!(e, LogEntry::Hub { statement } if statement.contains(&late) && statement.contains("expired")),
        )
        .count();
    assert_eq!(deletions, 1, "the expired drop's deletion is logged {deletions} times");
    audit_verifies(&camden, &second.verifier_key(), 2);
}

#[test]
fn a_directory_published_through_one_instance_is_in_force_on_the_other() {
    let (first, second) = two_instances(None, &[]);
    let stolen = member_key("islington").signing;
    // The second instance serves islington's key from the directory in force.
    let before = http::signed_get(&second.url, &stolen, "/v1/inbox");
    assert_eq!(before.status, 200, "{before:?}");

    // Islington's laptop is stolen: serial 2, published through the first
    // instance, revokes its key and installs a new one.
    let coordinator = Coordinator::new();
    let keys = tempfile::tempdir().unwrap();
    let (new_key, new_card) = sealdrop_e2e::new_member(keys.path(), "islington", "data-team");
    let out = coordinator.run(&[
        "directory",
        "revoke",
        "--key",
        "islington/data-team",
        "--reason",
        "laptop stolen",
        "--replace-with",
        new_card.to_str().unwrap(),
    ]);
    assert!(out.contains("serial 2"), "{out}");
    coordinator.publish(&Party::new(&first, "camden"));

    // The other instance refuses the revoked key and serves the new one.
    let refused = || http::signed_get(&second.url, &stolen, "/v1/inbox").code().as_deref() == Some("key_revoked");
    wait_for("the other instance to refuse the revoked key", DIRECTORY_IN_FORCE, refused);
    let mut replaced = Party::new(&second, "islington");
    replaced.key = replaced.dir.path().join("new.key");
    std::fs::copy(&new_key, &replaced.key).unwrap();
    replaced.ok(["inbox"]);
    let info = http::Reply::from(http::client().get(format!("{}/v1/info", second.url)).send());
    assert_eq!(json(&info.body)["directory_serial"], 2, "{info:?}");
}
