//! The recipient's routine, through the real binaries against a real hub:
//! a key rotated as README step 7 says (drops encrypted only to the old key
//! are reported as undeliverable, once, to both sides), two fetches started
//! at once on one state dir (a scheduled job and a person), a daily
//! `fetch --all --merge-csv` with nothing waiting, and fetching again a drop
//! this machine already received.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::Path;

use sealdrop_e2e::{Coordinator, Hub, Party, TestClock, error_code, json, list_dir, read_text, recipient_status};

/// `sealdrop fetch ARGS` as `p`: (success, stdout, stderr).
fn run(p: &Party, args: &[&str]) -> (bool, String, String) {
    let out = p.run(args);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// How many `received` entries the journal of `p` holds for each drop.
fn received_per_drop(p: &Party) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for e in p.journal() {
        if e["event"] == "received" {
            *counts.entry(e["drop"].as_str().unwrap().to_owned()).or_default() += 1;
        }
    }
    counts
}

#[test]
fn a_drop_encrypted_only_to_a_key_rotated_away_is_undeliverable_and_reported_once() {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    let islington = Party::new(&hub, "islington");
    let coordinator = Coordinator::new();
    let keys = tempfile::tempdir().unwrap();
    let file = camden.file("fsm-islington.csv", "upn,name\nA1,Ada\n");
    let stranded = camden.send("islington", &[&file]);

    // README step 7, literally: the member makes a new key under the same
    // member name; adding it first as a second key is refused, and says what to do instead.
    let (new_key, new_card) = sealdrop_e2e::new_member(keys.path(), "islington", "data-team");
    let mut add = vec![OsStr::new("directory"), "add-member".as_ref(), "--card".as_ref(), new_card.as_os_str()];
    add.extend([OsStr::new("--input"), coordinator.json.as_os_str()]);
    let (_, stderr) = coordinator.tool.fail(&add);
    assert_eq!(error_code(&stderr).as_deref(), Some("member_exists"), "{stderr}");
    assert!(stderr.contains("--member data-team-2"), "the error must say how to add a second key: {stderr}");
    // The coordinator revokes the old key with the card as its replacement.
    let card = new_card.to_str().unwrap();
    let args = ["directory", "revoke", "--key", "islington/data-team", "--reason", "laptop stolen"];
    coordinator.run(&[&args[..], &["--replace-with", card]].concat());
    coordinator.publish(&camden);
    let mut replaced = Party::new(&hub, "islington");
    replaced.key = replaced.dir.path().join("new.key");
    std::fs::copy(&new_key, &replaced.key).unwrap();
    drop(islington);
    let after = camden.send("islington", &[&file]);

    // The recipient is told what happened and what to do; nobody else of islington could fetch it.
    let (_, stderr) = replaced.fail_code(["fetch", &stranded, "-o", "in"], "undeliverable");
    assert!(
        stderr.contains(&format!("drop {stranded} was encrypted only to islington/data-team's revoked key")),
        "{stderr}"
    );
    assert!(
        stderr.contains("laptop stolen") && stderr.contains("ask camden to recall it and send it again"),
        "{stderr}"
    );
    assert!(!stderr.contains("another member"), "{stderr}");

    // The sender sees it can never arrive, and why, instead of "waiting".
    let d = camden.status_of(&stranded);
    let isl = recipient_status(&d, "islington");
    assert_eq!(isl["outcome"], "undeliverable", "{d}");
    let reason = isl["reason"].as_str().unwrap_or_else(|| panic!("no reason: {d}"));
    assert!(reason.contains("islington/data-team") && reason.contains("laptop stolen"), "{reason}");
    assert_eq!(recipient_status(&camden.status_of(&after), "islington")["outcome"], "waiting");
    let text = camden.ok(["status", &stranded]);
    assert!(text.contains("UNDELIVERABLE") && text.contains("laptop stolen"), "{text}");

    // `fetch --all` reports it once (with the drop it can fetch), then skips it: exit 0.
    let (ok, _, stderr) = run(&replaced, &["fetch", "--all", "-o", "in"]);
    assert!(ok, "the undeliverable drop was already reported by the fetch of its id:\n{stderr}");
    assert!(stderr.contains(&format!("fetched {after}")), "{stderr}");
    assert!(stderr.contains(&format!("skipped drop {stranded}")) && stderr.contains("undeliverable"), "{stderr}");
    for _ in 0..2 {
        let (ok, _, stderr) = run(&replaced, &["fetch", "--all", "-o", "in"]);
        assert!(ok, "{stderr}");
        assert!(!stderr.contains("error["), "{stderr}");
        assert!(stderr.contains(&format!("skipped drop {stranded}")), "{stderr}");
    }
    // The inbox still lists it, marked.
    let inbox = replaced.inbox();
    let entry = inbox.iter().find(|e| e["id"] == stranded.as_str()).unwrap_or_else(|| panic!("{inbox:?}"));
    assert_eq!(entry["skipped"]["code"], "undeliverable", "{entry}");
    let table = replaced.ok(["inbox"]);
    let line = table.lines().find(|l| l.contains(&stranded)).unwrap();
    assert!(line.contains("UNDELIVERABLE"), "{table}");
}

#[test]
fn a_planned_rotation_done_as_readme_step_7_says_strands_nothing() {
    let clock = TestClock::new();
    let hub = Hub::start_with_clock(&clock, &[]);
    let camden = Party::new(&hub, "camden").with_clock(&clock);
    let old = Party::new(&hub, "islington").with_clock(&clock);
    let coordinator = Coordinator::new();
    let keys = tempfile::tempdir().unwrap();
    let file = camden.file("fsm-islington.csv", "upn\nA1\n");
    let before = camden.send("islington", &[&file]);

    // 1-2: a new key under a new member name, added as a second key.
    let (new_key, new_card) = sealdrop_e2e::new_member(keys.path(), "islington", "data-team-2026");
    let out = coordinator.run(&["directory", "add-member", "--card", new_card.to_str().unwrap()]);
    assert!(out.contains("serial 2"), "{out}");
    coordinator.publish(&camden);
    let mut new = Party::new(&hub, "islington").with_clock(&clock);
    new.key = new.dir.path().join("new.key");
    std::fs::copy(&new_key, &new.key).unwrap();
    let between = camden.send("islington", &[&file]);
    // 3: the old key fetches what was sent before.
    old.ok(["fetch", "--all", "-o", "in"]);
    assert!(old.inbox().is_empty());
    // 4: the old key is revoked; nothing is stranded, and later drops reach the new key.
    // (An hour later: what the old key signed before the revocation still counts.)
    clock.advance(3600);
    let at = sealdrop_proto::Timestamp::from_second(clock.now()).unwrap().to_string();
    coordinator.run(&["directory", "revoke", "--key", "islington/data-team", "--reason", "rotated", "--at", &at]);
    coordinator.publish(&camden);
    let after = camden.send("islington", &[&file]);
    assert!(new.inbox().iter().all(|e| e["skipped"].is_null()));
    new.ok(["fetch", "--all", "-o", "in"]);
    assert!(new.inbox().is_empty());
    for id in [&before, &between, &after] {
        let d = camden.status_of(id);
        assert_eq!(d["state"], "delivered", "{d}");
    }
}

#[test]
fn fetch_all_reports_an_undeliverable_drop_on_its_first_run_only() {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    let coordinator = Coordinator::new();
    let keys = tempfile::tempdir().unwrap();
    let file = camden.file("fsm-islington.csv", "upn\nA1\n");
    let stranded = camden.send("islington", &[&file]);
    let (new_key, new_card) = sealdrop_e2e::new_member(keys.path(), "islington", "data-team");
    let card = new_card.to_str().unwrap();
    coordinator.run(&[
        "directory",
        "revoke",
        "--key",
        "islington/data-team",
        "--reason",
        "left",
        "--replace-with",
        card,
    ]);
    coordinator.publish(&camden);
    let mut replaced = Party::new(&hub, "islington");
    replaced.key = replaced.dir.path().join("new.key");
    std::fs::copy(&new_key, &replaced.key).unwrap();

    let (_, stderr) = replaced.fail_code(["fetch", "--all", "-o", "in"], "undeliverable");
    assert!(stderr.contains(&stranded) && stderr.contains(": left)"), "{stderr}");
    let (ok, _, stderr) = run(&replaced, &["fetch", "--all", "-o", "in"]);
    assert!(ok, "{stderr}");
    assert!(stderr.contains(&format!("skipped drop {stranded}")), "{stderr}");
    // Asked for by its id, it is judged again.
    replaced.fail_code(["fetch", &stranded, "-o", "in"], "undeliverable");
}

#[test]
fn two_fetches_at_once_on_one_state_dir_receive_every_drop_exactly_once() {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    let islington = Party::new(&hub, "islington");
    let mut sent = Vec::new();
    for i in 0..6 {
        let content: String = (0..20_000).map(|r| format!("U{i}{r:05},pupil {r}\n")).collect();
        let file = camden.file(&format!("part-{i}.csv"), format!("upn,name\n{content}"));
        sent.push(camden.send("islington", &[&file]));
    }
    let first = islington.spawn(["fetch", "--all", "-o", "in"]);
    let second = islington.spawn(["fetch", "--all", "-o", "in"]);
    let mut waited = 0;
    for child in [first, second] {
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "a concurrent fetch failed:\n{stderr}");
        assert!(!stderr.contains("error["), "{stderr}");
        waited += usize::from(stderr.contains("waiting for another sealdrop fetch"));
    }
    eprintln!("fetches that waited for the other: {waited}");
    assert!(waited <= 1, "both waited for each other");
    let dest = islington.work().join("in");
    let want: Vec<String> = (0..6).map(|i| format!("part-{i}.csv")).collect();
    assert_eq!(list_dir(&dest), want, "each part once, nothing else (no drop folder, no staging folder)");
    for (i, name) in want.iter().enumerate() {
        assert!(read_text(&dest.join(name)).contains(&format!("U{i}00000,pupil 0")), "{name}");
    }
    let counts = received_per_drop(&islington);
    assert_eq!(counts, sent.iter().map(|id| (id.clone(), 1)).collect(), "each drop received exactly once");
    assert!(islington.inbox().is_empty());
    assert!(list_dir(&islington.state.join("incoming")).is_empty());
}

#[test]
fn a_daily_merge_with_nothing_waiting_leaves_the_merged_file_alone() {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    let islington = Party::new(&hub, "islington");
    let merged = islington.file("fsm-all.csv", "upn,source_party\nA1,camden\n");
    let daily = ["fetch", "--all", "-o", "in", "--merge-csv", "fsm-all.csv"];

    let (ok, stdout, stderr) = run(&islington, &daily);
    assert!(ok, "nothing waiting is not a failure:\n{stderr}");
    assert!(stderr.contains("nothing was waiting") && stderr.contains("fsm-all.csv"), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert_eq!(read_text(&merged), "upn,source_party\nA1,camden\n");
    let (ok, stdout, stderr) = run(&islington, &[&daily[..], &["--json"]].concat());
    assert!(ok, "{stderr}");
    let v = json(&stdout);
    assert_eq!((v["drops"].as_array().map(Vec::len), v["merged"].is_null()), (Some(0), true), "{v}");

    // With something waiting the file is still protected, and the error says what to do.
    let part = camden.file("fsm-islington.csv", "upn\nB2\n");
    let id = camden.send("islington", &[&part]);
    let (_, stderr) = islington.fail_code(daily, "output_exists");
    assert!(stderr.contains("fsm-all.csv") && stderr.contains("1 drop is waiting"), "{stderr}");
    assert!(stderr.contains("--merge-csv fsm-all-"), "the error must suggest a dated name: {stderr}");
    assert_eq!(read_text(&merged), "upn,source_party\nA1,camden\n");
    assert_eq!(islington.inbox_ids(), [id]);
}

#[test]
fn fetching_a_received_drop_again_says_where_it_went() {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    let islington = Party::new(&hub, "islington");
    let part = camden.file("fsm-camden.csv", "upn\nC3\n");
    let id = camden.send("islington", &[&part]);
    islington.fetch(&id, Path::new("incoming"));

    let (_, stderr) = islington.fail_code(["fetch", &id, "-o", "elsewhere"], "gone");
    let dest = islington.work().join("incoming").join("fsm-camden.csv");
    assert!(stderr.contains(&format!("drop {id} was fetched by this machine on ")), "{stderr}");
    assert!(stderr.contains(&format!("into {}", dest.display())), "{stderr}");
    assert!(stderr.contains("after your receipt"), "{stderr}");
    assert!(!islington.work().join("elsewhere").join("fsm-camden.csv").exists());

    // Another machine (no journal of it) gets the hub's message as before.
    let other = Party::new(&hub, "islington");
    let (_, stderr) = other.fail_code(["fetch", &id, "-o", "in"], "gone");
    assert!(!stderr.contains("by this machine"), "{stderr}");
}
