//! A hub that lies is caught by the client, from the signed transfer log:
//! the operator edits the hub's database behind its back (a drop marked
//! acknowledged and delivered, a drop's row deleted, a commit time
//! back-dated) and the real client, against the real hub, believes only
//! what the log proves. `audit verify` passes or fails as the log says.

use std::ffi::OsStr;

use sealdrop_e2e::{
    Coordinator, CutProxy, Hub, Party, TestClock, authority_key_copy, example_directory_json, json, read_text,
    recipient_status,
};

/// Runs `sealdrop status --json` expecting it to report unbacked claims:
/// exit 4, `unbacked_claims`, the JSON printed all the same. Returns the
/// JSON and stderr.
fn unbacked_status(p: &Party, args: &[&str]) -> (Vec<serde_json::Value>, String) {
    let mut all = vec!["status", "--json"];
    all.extend_from_slice(args);
    let out = p.run(&all);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(4), "status must exit 4 on an unbacked claim; stderr: {stderr}");
    assert_eq!(sealdrop_e2e::error_code(&stderr).as_deref(), Some("unbacked_claims"), "{stderr}");
    sealdrop_e2e::assert_one_error_line(&stderr);
    let drops = match json(&String::from_utf8_lossy(&out.stdout)) {
        serde_json::Value::Array(a) => a,
        other => panic!("status --json printed {other}"),
    };
    (drops, stderr)
}

/// The evidence folders `status` kept.
fn evidence(p: &Party) -> Vec<std::path::PathBuf> {
    let dir = p.state.join("log").join("evidence");
    let mut found: Vec<_> =
        std::fs::read_dir(&dir).map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect()).unwrap_or_default();
    found.retain(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("status-")));
    found
}

fn audit_verify(p: &Party) -> serde_json::Value {
    let out = p.run(["audit", "verify", "--json"]);
    json(&String::from_utf8_lossy(&out.stdout))
}

#[test]
fn status_shows_an_acknowledgement_the_hub_made_up_as_its_claim_and_exits_4() {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    let islington = Party::new(&hub, "islington");
    let file = camden.file("fsm.csv", "upn,name\nA1,Ada\n");
    let args = [OsStr::new("send"), "--to".as_ref(), "islington,hackney".as_ref(), file.as_os_str()];
    let id = camden.ok(args).trim().to_owned();
    // Islington really fetches and acknowledges: the log backs it.
    islington.fetch(&id, &islington.work());
    let real = camden.status_of(&id);
    assert_eq!((real["state"].as_str(), real["verified"].as_bool()), (Some("committed"), Some(true)), "{real}");
    assert_eq!(recipient_status(&real, "islington")["outcome"], "acknowledged");
    assert!(camden.state.join("log").join("proven.json").exists(), "what was proved is kept");
    assert!(evidence(&camden).is_empty());

    // The operator marks hackney as having acknowledged, and the drop as
    // delivered and deleted, without anything in the log.
    let changed = hub.tamper_sql(
        "UPDATE drop_recipients SET acknowledged = 1900000000, ack_member = 'data-team', fetched = 1899999990
         WHERE drop_id = ?1 AND party = 'hackney'",
        &[&id],
    );
    assert_eq!(changed, 1);
    assert_eq!(hub.tamper_sql("UPDATE drops SET state = 'delivered', deleted = 1900000000 WHERE id = ?1", &[&id]), 1);
    let (drops, stderr) = unbacked_status(&camden, &[]);
    let d = drops.iter().find(|d| d["id"] == id.as_str()).unwrap();
    assert_eq!((d["state"].as_str(), d["claimed_state"].as_str()), (Some("unbacked"), Some("delivered")), "{d}");
    assert_eq!(d["verified"], false);
    assert!(d["deleted"].is_null(), "no deletion is shown that the log does not hold: {d}");
    let problems: Vec<&str> = d["problems"].as_array().unwrap().iter().filter_map(|p| p.as_str()).collect();
    assert!(problems.iter().any(|p| p.starts_with("the hub says delivered; no deletion in the log")), "{problems:?}");
    let h = recipient_status(d, "hackney");
    assert_eq!((h["outcome"].as_str(), h["claimed_outcome"].as_str()), (Some("unbacked"), Some("acknowledged")));
    assert!(h["acknowledged"].is_null() && h["acknowledged_by"].is_null() && h["fetched"].is_null(), "{h}");
    assert!(h["problem"].as_str().unwrap().contains("no receipt in the log"), "{h}");
    // What the log does back is still shown as fact.
    assert_eq!(recipient_status(d, "islington")["outcome"], "acknowledged");
    assert!(stderr.contains("not backed by its signed log") && stderr.contains("as evidence"), "{stderr}");

    // In words, too.
    let out = camden.run(["status"]);
    assert_eq!(out.status.code(), Some(4));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("UNBACKED (the hub says delivered)"), "{text}");
    assert!(
        text.contains("the hub says acknowledged at 2030-03-17T17:46:40Z by data-team; no receipt in the log"),
        "{text}"
    );

    // The hub then points at a real entry, islington's receipt, as hackney's.
    let islington_ack = hub.query_text(
        "SELECT CAST(ack_index AS TEXT) FROM drop_recipients WHERE drop_id = ?1 AND party = 'islington'",
        &[&id],
    );
    hub.tamper_sql(
        "UPDATE drop_recipients SET ack_index = CAST(?2 AS INTEGER) WHERE drop_id = ?1 AND party = 'hackney'",
        &[&id, &islington_ack],
    );
    let (drops, _) = unbacked_status(&camden, &[&id]);
    let h = recipient_status(&drops[0], "hackney");
    assert!(h["problem"].as_str().unwrap().contains("the log entry it names records something else"), "{h}");

    // The evidence of each run: the hub's answer and what is wrong.
    let kept = evidence(&camden);
    assert_eq!(kept.len(), 3, "{kept:?}");
    let problems: Vec<String> = kept.iter().map(|d| read_text(&d.join("problems.txt"))).collect();
    assert!(problems.iter().all(|p| p.contains(&id)), "{problems:?}");
    assert!(problems.iter().any(|p| p.contains("no receipt in the log")), "{problems:?}");
    assert!(problems.iter().any(|p| p.contains("records something else")), "{problems:?}");
    assert!(kept.iter().all(|d| read_text(&d.join("hub-sent.json")).contains(&id)));

    // The log itself is sound: the lie is only in the hub's database.
    let audit = audit_verify(&camden);
    assert_eq!(audit["verified"], true, "{audit}");
    assert_eq!((audit["acknowledgements"].as_u64(), audit["deleted"]["delivered"].as_u64()), (Some(1), Some(0)));
}

#[test]
fn status_proves_each_log_entry_once_and_then_reads_what_it_proved() {
    let hub = Hub::start();
    let mut camden = Party::new(&hub, "camden");
    let islington = Party::new(&hub, "islington");
    let drops: Vec<String> =
        (0..5).map(|i| camden.send("islington", &[&camden.file(&format!("{i}.csv"), "upn\nA1\n")])).collect();
    islington.ok([OsStr::new("fetch"), "--all".as_ref(), "-o".as_ref(), islington.work().as_os_str()]);

    // Camden asks through a proxy that counts the requests.
    let proxy = CutProxy::start(&hub.addr, None);
    camden.hub_url = proxy.url.clone();
    let entries = || proxy.requests_matching("GET /v1/log/entry/", "").len();
    let status = camden.status();
    assert!(status.iter().all(|d| d["state"] == "delivered" && d["verified"] == true), "{status:?}");
    // Per drop: the download, the receipt and the deletion; its commit is in
    // this machine's journal, proved when it was sent.
    assert_eq!(entries(), 3 * drops.len(), "{:?}", proxy.requests());
    assert_eq!(proxy.requests_matching("GET /v1/log/proof/inclusion", "").len(), 3 * drops.len());
    // Again: nothing left to prove.
    assert_eq!(camden.status(), status);
    assert_eq!(entries(), 3 * drops.len(), "a repeated status asks for no entry again");
}

#[test]
fn status_reports_a_committed_drop_whose_row_the_hub_deleted_and_keeps_the_receipt() {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    let kept = camden.send("islington", &[&camden.file("fsm.csv", "upn\nA1\n")]);
    let gone = camden.send("islington", &[&camden.file("sen.csv", "upn\nB2\n")]);
    assert_eq!(camden.status().len(), 2);

    // The operator makes one drop vanish: no row, no logged deletion.
    hub.tamper_sql("DELETE FROM drop_recipients WHERE drop_id = ?1", &[&gone]);
    assert_eq!(hub.tamper_sql("DELETE FROM drops WHERE id = ?1", &[&gone]), 1);
    let (drops, stderr) = unbacked_status(&camden, &[]);
    assert_eq!(drops.len(), 2, "{drops:?}");
    let k = drops.iter().find(|d| d["id"] == kept.as_str()).unwrap();
    assert_eq!((k["state"].as_str(), k["verified"].as_bool()), (Some("committed"), Some(true)));
    let g = drops.iter().find(|d| d["id"] == gone.as_str()).unwrap();
    assert_eq!((g["state"].as_str(), g["verified"].as_bool()), (Some("missing"), Some(false)), "{g}");
    assert!(g["claimed_state"].is_null());
    assert_eq!(g["files"], serde_json::json!(["sen.csv"]), "from this machine's journal");
    let why = g["problems"][0].as_str().unwrap();
    assert!(
        why.contains("your receipt proves the log holds its commit") && why.contains("no longer lists it"),
        "{why}"
    );
    assert!(stderr.contains(&gone), "{stderr}");
    // Asked for by id, the hub says it never had it: the same report.
    let (drops, _) = unbacked_status(&camden, &[&gone]);
    assert_eq!((drops.len(), drops[0]["state"].as_str()), (1, Some("missing")));

    // The evidence includes the offline receipt that proves the commit is logged.
    let dirs = evidence(&camden);
    assert!(!dirs.is_empty());
    let receipt = dirs.iter().map(|d| d.join(format!("{gone}.committed.tlog-proof"))).find(|p| p.exists());
    let receipt = receipt.unwrap_or_else(|| panic!("no receipt kept in {dirs:?}"));
    let proof = sealdrop_log::proof::OfflineProof::from_text(&read_text(&receipt)).expect("a c2sp.org/tlog-proof");
    let index = camden.journal().iter().find(|e| e["drop"] == gone.as_str()).unwrap()["log_index"].as_u64();
    assert_eq!(Some(proof.index), index, "the receipt proves the very commit entry");
    assert!(dirs.iter().any(|d| d.join(format!("{gone}.journal.json")).exists()));

    // The log never recorded a deletion, and the audit has nothing against it.
    let audit = audit_verify(&camden);
    assert_eq!((audit["verified"].as_bool(), audit["drops_committed"].as_u64()), (Some(true), Some(2)), "{audit}");
}

#[test]
fn a_back_dated_commit_time_does_not_get_a_stolen_keys_drop_accepted() {
    let clock = TestClock::new();
    let hub = Hub::start_with_clock(&clock, &["--sweep-interval", "3600"]);
    let camden = Party::new(&hub, "camden").with_clock(&clock);
    let islington = Party::new(&hub, "islington").with_clock(&clock);
    let t0 = clock.now();

    // Camden's data team sends a list, as every week.
    let before = camden.send("islington", &[&camden.file("week-1.csv", "upn\nA1\n")]);
    // An hour later a thief with camden/data-team's laptop sends one too.
    clock.advance(3600);
    let stolen = camden.send("islington", &[&camden.file("invoice.csv", "pay,to\n9000,thief\n")]);
    // The coordinator revokes the key from the last time the laptop was
    // known safe, half an hour after the genuine send, and lists a new key.
    clock.advance(600);
    let keys = tempfile::tempdir().unwrap();
    let (_, card) = sealdrop_e2e::new_member(keys.path(), "camden", "data-team");
    let safe_until = sealdrop_proto::Timestamp::from_second(t0 + 1800).unwrap().to_string();
    let coordinator = Coordinator::new();
    coordinator.run(&[
        "directory",
        "revoke",
        "--key",
        "camden/data-team",
        "--reason",
        "laptop stolen",
        "--at",
        &safe_until,
        "--replace-with",
        card.to_str().unwrap(),
    ]);
    coordinator.publish(&islington);

    // The hub's operator (or a proxy) back-dates the thief's drop to before
    // the revocation, in everything the hub answers.
    assert_eq!(hub.tamper_sql("UPDATE drops SET committed = ?1 WHERE id = ?2", &[&(t0 + 60), &stolen]), 1);
    let inbox = islington.inbox();
    let shown = inbox.iter().find(|d| d["id"] == stolen.as_str()).unwrap();
    assert_eq!(sealdrop_e2e::timestamp(shown, "committed").as_second(), t0 + 60, "the hub does lie");

    // The recipient decides on the commit entry in the verified log: the
    // thief's drop is refused, nothing written or acknowledged ...
    let landing = islington.work().join("in");
    std::fs::create_dir_all(&landing).unwrap();
    let args = [OsStr::new("fetch"), OsStr::new(&stolen), "-o".as_ref(), landing.as_os_str()];
    let stderr = islington.fail_with(args, 4, "bad_manifest");
    assert!(stderr.contains("revoked from") && stderr.contains("laptop stolen"), "{stderr}");
    assert!(stderr.contains("the transfer log commits the drop at"), "{stderr}");
    assert!(sealdrop_e2e::tree(&landing).is_empty());
    assert!(islington.inbox_ids().contains(&stolen));
    // ... while the genuine one, committed before the revocation, arrives.
    islington.fetch(&before, &landing);
    assert_eq!(read_text(&landing.join("week-1.csv")), "upn\nA1\n");

    // The audit applies the same rule to the log: the thief's commit counts
    // for nothing and is listed, with the key, for the IG officer. The log is
    // sound (the key was a member when the hub accepted the drop), so it
    // still verifies, and the IG report is written with the warning.
    let audit = audit_verify(&islington);
    assert_eq!(audit["verified"], true, "{audit}");
    let listed: Vec<&str> =
        audit["used_after_revocation"].as_array().unwrap().iter().filter_map(|f| f.as_str()).collect();
    assert_eq!(listed.len(), 1, "only the thief's commit: {listed:?}");
    assert!(
        listed[0].contains("a manifest signed at")
            && listed[0].contains("with camden/data-team's key, which directory")
            && listed[0].contains(&format!("revokes from {safe_until}")),
        "{listed:?}"
    );
    let html = islington.work().join("flows.html");
    let args = [OsStr::new("audit"), "report".as_ref(), "--html".as_ref(), html.as_os_str()];
    islington.ok(args);
    let page = read_text(&html);
    assert!(page.contains("1 entry was signed with keys revoked from before it"), "{page}");
    assert!(page.contains("a manifest signed at"), "the listed entry is on the page");
}

#[test]
fn an_acknowledgement_by_a_member_since_removed_from_the_directory_is_still_backed() {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    let islington = Party::new(&hub, "islington");
    let id = camden.send("islington", &[&camden.file("fsm.csv", "upn\nA1\n")]);
    islington.fetch(&id, &islington.work());
    // Islington's data team leaves and the coordinator removes its key:
    // nothing was lost, so nothing is revoked. Its receipt, signed while it
    // was a member, must still back the delivery (the current directory no
    // longer lists the key at all; the earlier version, verified against the
    // authority, does).
    let tmp = tempfile::tempdir().unwrap();
    let mut d = example_directory_json();
    d["serial"] = 2.into();
    d.as_object_mut().unwrap().remove("issued_at");
    let party = d["parties"].as_array_mut().unwrap().iter_mut().find(|p| p["id"] == "islington").unwrap();
    party["members"] = serde_json::json!([]);
    hub.publish(&sealdrop_e2e::sign_directory(tmp.path(), "left", &d, &authority_key_copy(tmp.path())));

    let shown = camden.status_of(&id);
    assert_eq!((shown["state"].as_str(), shown["verified"].as_bool()), (Some("delivered"), Some(true)), "{shown}");
    let r = recipient_status(&shown, "islington");
    assert_eq!((r["outcome"].as_str(), r["acknowledged_by"].as_str()), (Some("acknowledged"), Some("data-team")));
    assert!(evidence(&camden).is_empty(), "nothing unbacked, no evidence kept");
    // The earlier version was fetched once, verified, and kept.
    assert!(camden.state.join("log").join("directories").join("1.note").exists());
}
