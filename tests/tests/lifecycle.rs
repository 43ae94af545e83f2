//! A drop's life after it is sent, through the real binaries against a real
//! hub, with one test clock file shared by the hub and every client (time
//! moves by writing it, never by sleeping): expiry with and without partial
//! acknowledgement, recall before and after acknowledgement, catch-up after
//! downtime, key rotation and revocation, an agreement that ends, the local
//! journal, and an audit of the whole history at the end of each.

use std::ffi::OsStr;
use std::time::{Duration, Instant};

use sealdrop_e2e::{Backend, Coordinator, Hub, Party, TestClock, http, json, read_text, recipient_status};

const HOUR: i64 = 3600;
const DAY: i64 = 24 * HOUR;

/// A hub whose sweeper runs every 0.1 s, reading `clock`.
fn hub_with(backend: Backend, clock: &TestClock) -> Hub {
    Hub::start_on(backend, Some(clock), &["--sweep-interval", "0.1"])
}

fn party(hub: &Hub, id: &str, clock: &TestClock) -> Party {
    Party::new(hub, id).with_clock(clock)
}

/// Waits (for the hub's background sweeper) until `done` holds. The expiry
/// itself is reached by moving the clock; this only waits for the task.
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn state_of(p: &Party, id: &str) -> String {
    p.status_of(id)["state"].as_str().unwrap_or_default().to_owned()
}

fn outcome<'a>(drop: &'a serde_json::Value, party: &str) -> &'a str {
    recipient_status(drop, party)["outcome"].as_str().unwrap_or_else(|| panic!("no outcome for {party} in {drop}"))
}

/// `sealdrop audit verify` over the whole log passes.
fn audit_passes(p: &Party) {
    let out = p.ok(["audit", "verify"]);
    assert!(out.contains("VERIFIED") || out.to_lowercase().contains("verified"), "{out}");
}

fn expiry_with_and_without_partial_acknowledgement(backend: Backend) {
    let clock = TestClock::new();
    let hub = hub_with(backend, &clock);
    let camden = party(&hub, "camden", &clock);
    let islington = party(&hub, "islington", &clock);
    let hackney = party(&hub, "hackney", &clock);
    let file = camden.file("fsm.csv", "upn,name\nA1,Ada\n");

    let partly = camden.ok([
        OsStr::new("send"),
        "--to".as_ref(),
        "islington,hackney".as_ref(),
        "--expires".as_ref(),
        "2d".as_ref(),
        file.as_os_str(),
    ]);
    let partly = partly.trim().to_owned();
    let unread = camden.send("hackney", &[&file]);
    // The default expiry is 5 days.
    let d = camden.status_of(&unread);
    let (created, expires) = (sealdrop_e2e::timestamp(&d, "created"), sealdrop_e2e::timestamp(&d, "expires"));
    assert_eq!(expires.as_second() - created.as_second(), 5 * DAY);
    islington.fetch(&partly, &islington.work());
    // Filters: by agreement and by creation time.
    let count = |args: &[&str]| json(&camden.ok(args)).as_array().map_or(0, Vec::len);
    assert_eq!(count(&["status", "--json", "--agreement", "london-fsm-ehc"]), 2);
    assert_eq!(count(&["status", "--json", "--agreement", "another"]), 0);
    assert_eq!(count(&["status", "--json", "--since", "2099-01-01"]), 0);
    assert_eq!(count(&["status", "--json", "--since", &created.to_string()]), 2);
    assert_eq!(outcome(&camden.status_of(&partly), "islington"), "acknowledged");
    assert_eq!(outcome(&camden.status_of(&partly), "hackney"), "waiting");

    clock.advance(2 * DAY);
    wait_for("the sweeper to expire the first drop", || state_of(&camden, &partly) == "expired");
    // The database says expired before the file goes (by design), so the
    // status can show it a moment before the sweeper removes the file.
    wait_for("the sweeper to remove the ciphertext", || !hub.has_ciphertext(&partly));
    assert!(hub.has_ciphertext(&unread));
    let d = camden.status_of(&partly);
    assert_eq!(outcome(&d, "islington"), "acknowledged");
    assert_eq!(outcome(&d, "hackney"), "not_delivered");
    let text = camden.ok(["status", &partly]);
    assert!(text.contains("NOT DELIVERED"), "{text}");
    assert!(text.lines().any(|l| l.contains("hackney") && l.contains("NOT DELIVERED")), "{text}");
    // Hackney sees nothing more of it.
    assert_eq!(hackney.inbox_ids(), vec![unread.clone()]);
    hackney.fail_code(["fetch", &partly], "gone");

    // Nobody acknowledged the second: every recipient is a non-delivery.
    clock.advance(3 * DAY);
    wait_for("the sweeper to expire the second drop", || state_of(&camden, &unread) == "expired");
    assert_eq!(outcome(&camden.status_of(&unread), "hackney"), "not_delivered");
    wait_for("the sweeper to remove the ciphertext", || !hub.has_ciphertext(&unread));
    assert!(hackney.inbox_ids().is_empty());
    audit_passes(&hackney);
}

fn recall_before_and_after_acknowledgement(backend: Backend) {
    let clock = TestClock::new();
    let hub = hub_with(backend, &clock);
    let camden = party(&hub, "camden", &clock);
    let islington = party(&hub, "islington", &clock);
    let file = camden.file("ehc-plan.pdf", b"%PDF-1.7 not really");

    let mistake = camden.send("islington", &[&file]);
    assert_eq!(islington.inbox_ids(), vec![mistake.clone()]);
    let out = camden.ok(["recall", &mistake]);
    assert!(out.contains(&format!("recalled drop {mistake}")), "{out}");
    assert!(!hub.has_ciphertext(&mistake));
    assert!(islington.inbox_ids().is_empty(), "recipients see nothing more of it");
    islington.fail_code(["fetch", &mistake], "gone");
    assert_eq!(state_of(&camden, &mistake), "recalled");
    assert_eq!(outcome(&camden.status_of(&mistake), "islington"), "recalled");
    // A second recall: already gone.
    camden.fail_code(["recall", &mistake], "gone");
    // Only the sender may recall.
    let other = camden.send("islington", &[&file]);
    islington.fail_code(["recall", &other], "forbidden");

    // After islington acknowledged: refused, naming who has the data.
    islington.fetch(&other, &islington.work());
    let (_, stderr) = camden.fail_code(["recall", &other], "recall_refused");
    assert!(stderr.contains("islington acknowledged it") && stderr.contains("islington/data-team"), "{stderr}");
    assert_eq!(state_of(&camden, &other), "delivered");
    audit_passes(&camden);
}

fn a_hub_that_was_down_catches_up_at_start(backend: Backend) {
    let clock = TestClock::new();
    let mut hub = hub_with(backend, &clock);
    let mut camden = party(&hub, "camden", &clock);
    let file = camden.file("list.csv", "a\n1\n");
    let id = camden.ok([
        OsStr::new("send"),
        "--to".as_ref(),
        "islington".as_ref(),
        "--expires".as_ref(),
        "36h".as_ref(),
        file.as_os_str(),
    ]);
    let id = id.trim().to_owned();
    hub.stop();
    clock.advance(2 * DAY);
    // A long interval: only the sweep at start can delete it before the check below.
    hub.restart_with(&["--sweep-interval", "86400"]);
    camden.point_at(&hub);
    assert!(!hub.has_ciphertext(&id), "deleted when the hub started");
    let d = camden.status_of(&id);
    assert_eq!(d["state"], "expired");
    assert_eq!(outcome(&d, "islington"), "not_delivered");
    audit_passes(&camden);
}

fn key_rotation_and_revocation(backend: Backend) {
    let clock = TestClock::new();
    let hub = hub_with(backend, &clock);
    let camden = party(&hub, "camden", &clock);
    let islington = party(&hub, "islington", &clock);
    let coordinator = Coordinator::new();
    let keys = tempfile::tempdir().unwrap();

    // Islington gets a second member (serial 2): it receives at once.
    let (jsmith_key, jsmith_card) = sealdrop_e2e::new_member(keys.path(), "islington", "j.smith");
    let out = coordinator.run(&["directory", "add-member", "--card", jsmith_card.to_str().unwrap()]);
    assert!(out.contains("serial 2"), "{out}");
    coordinator.publish(&camden);
    let mut jsmith = party(&hub, "islington", &clock);
    jsmith.key = jsmith.dir.path().join("j.smith.key");
    std::fs::copy(&jsmith_key, &jsmith.key).unwrap();
    let file = camden.file("plan.txt", "EHC plan");
    let both = camden.send("islington", &[&file]);
    let manifest = camden.ok(["status", &both, "--json"]);
    assert!(manifest.contains("islington"), "{manifest}");

    // Islington's data-team laptop is stolen: serial 3 revokes that key and
    // installs a new one under the same member name.
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
    assert!(out.contains("serial 3"), "{out}");
    coordinator.publish(&camden);

    // The revoked key can no longer authenticate: the client says so, and
    // the hub refuses it on its own.
    let (_, stderr) = islington.fail_code(["inbox"], "key_revoked");
    assert!(stderr.contains("laptop stolen"), "{stderr}");
    let stolen = islington.secret_key();
    http::signed_at(&hub.url, &stolen.signing, "GET", "/v1/inbox", clock.now(), b"").assert_error(401, "key_revoked");
    let ack = serde_json::json!({"receipt": "anything"}).to_string();
    let path = format!("/v1/drops/{both}/ack");
    http::signed_at(&hub.url, &stolen.signing, "POST", &path, clock.now(), ack.as_bytes())
        .assert_error(401, "key_revoked");
    // The drop encrypted to both keys before the revocation is still fetchable by j.smith.
    let out_dir = jsmith.work().join("in");
    jsmith.fetch(&both, &out_dir);
    assert_eq!(read_text(&out_dir.join("plan.txt")), "EHC plan");

    // New drops are encrypted only to current keys: the new data-team key opens them.
    let after = camden.send("islington", &[&file]);
    let mut replaced = party(&hub, "islington", &clock);
    replaced.key = replaced.dir.path().join("new.key");
    std::fs::copy(&new_key, &replaced.key).unwrap();
    let got = replaced.work().join("in");
    replaced.fetch(&after, &got);
    assert_eq!(read_text(&got.join("plan.txt")), "EHC plan");

    // A revocation is for good: a later version that drops it is refused by the hub.
    let mut forgetful = json(&read_text(&coordinator.json));
    forgetful["serial"] = 4.into();
    for p in forgetful["parties"].as_array_mut().unwrap() {
        if let Some(obj) = p.as_object_mut() {
            obj.remove("revoked");
        }
    }
    let signed = sealdrop_e2e::sign_directory(coordinator.tool.dir.path(), "forgetful", &forgetful, &coordinator.key);
    hub.post_directory(&signed).assert_error(422, "directory_invalid");
    audit_passes(&camden);
}

fn an_ended_agreement_is_refused_everywhere(backend: Backend) {
    let clock = TestClock::new();
    // The example agreement `london-fsm-ehc` ends at 2036-01-01T00:00:00Z: start 30 hours before.
    let end: i64 = "2036-01-01T00:00:00Z".parse::<sealdrop_proto::Timestamp>().unwrap().as_second();
    clock.set(end - 30 * HOUR);
    let hub = hub_with(backend, &clock);
    let camden = party(&hub, "camden", &clock);
    let islington = party(&hub, "islington", &clock);
    let file = camden.file("fsm.csv", "a\n1\n");

    // A drop may not wait beyond its agreement: refused before anything is uploaded.
    let args = [
        OsStr::new("send"),
        "--to".as_ref(),
        "islington".as_ref(),
        "--expires".as_ref(),
        "2d".as_ref(),
        file.as_os_str(),
    ];
    let (_, stderr) = camden.fail_code(args, "bad_expiry");
    assert!(stderr.contains("london-fsm-ehc") && stderr.contains("2036-01-01T00:00:00Z"), "{stderr}");
    // The default expiry is cut to the agreement's end.
    let id = camden.send("islington", &[&file]);
    assert_eq!(sealdrop_e2e::timestamp(&camden.status_of(&id), "expires").as_second(), end);

    clock.set(end);
    // The client refuses before upload ...
    let (_, stderr) = camden.fail_code(["send", "--to", "islington", file.to_str().unwrap()], "agreement_not_in_force");
    assert!(stderr.contains("agreement `london-fsm-ehc` ended at 2036-01-01T00:00:00Z"), "{stderr}");
    // ... and the hub refuses at create on its own.
    let body = serde_json::json!({
        "recipients": ["islington"],
        "agreement": "london-fsm-ehc",
        "expires": "2036-01-02T00:00:00Z",
    });
    let reply = http::signed_at(
        &hub.url,
        &camden.secret_key().signing,
        "POST",
        "/v1/drops",
        clock.now(),
        serde_json::to_vec(&body).unwrap().as_slice(),
    );
    reply.assert_error(422, "agreement_not_in_force");
    // The waiting drop is gone with the agreement: not fetchable, deleted, a non-delivery.
    wait_for("the sweeper to delete the drop", || state_of(&camden, &id) == "expired");
    wait_for("the sweeper to remove the ciphertext", || !hub.has_ciphertext(&id));
    islington.fail_code(["fetch", &id], "gone");
    assert_eq!(outcome(&camden.status_of(&id), "islington"), "not_delivered");
    audit_passes(&islington);
}

fn the_journal_answers_without_the_hub(backend: Backend) {
    let clock = TestClock::new();
    let mut hub = hub_with(backend, &clock);
    let camden = party(&hub, "camden", &clock);
    let islington = party(&hub, "islington", &clock);
    let file = camden.file("fsm-islington.csv", "a\n1\n");
    let sent = camden.send("islington", &[&file]);
    islington.fetch(&sent, &islington.work().join("in"));
    hub.stop();

    let journal = json(&camden.ok(["journal", "--json"]));
    let events = journal.as_array().unwrap();
    let s = events.iter().find(|e| e["event"] == "sent").unwrap_or_else(|| panic!("{journal}"));
    assert_eq!(s["drop"], sent.as_str());
    assert!(s.to_string().contains("fsm-islington.csv"), "{s}");
    assert!(s.to_string().contains("islington"), "{s}");
    let text = camden.ok(["journal", "--party", "islington"]);
    assert!(text.contains(&sent) && text.contains("fsm-islington.csv"), "{text}");
    assert!(camden.ok(["journal", "--party", "hackney"]).lines().all(|l| !l.contains(&sent)));

    let received = json(&islington.ok(["journal", "--json"]));
    let r =
        received.as_array().unwrap().iter().find(|e| e["event"] == "received").unwrap_or_else(|| panic!("{received}"));
    assert_eq!(r["drop"], sent.as_str());
    assert!(r.to_string().contains("camden"), "{r}");
}

sealdrop_e2e::on_both_backends!(
    expiry_with_and_without_partial_acknowledgement,
    recall_before_and_after_acknowledgement,
    a_hub_that_was_down_catches_up_at_start,
    key_rotation_and_revocation,
    an_ended_agreement_is_refused_everywhere,
    the_journal_answers_without_the_hub,
);
