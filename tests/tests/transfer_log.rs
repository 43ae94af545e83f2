//! The signed transfer log keeps the hub honest: clients keep offline
//! receipts, notice a hub that rolls back or forks its history (keeping both
//! signed checkpoints as evidence), refuse a changed log key, and cosign
//! checkpoints as witnesses.

use sealdrop_e2e::{Backend, Hub, Party, authority_key_copy, example_directory_json, list_dir, sign_directory};
use sealdrop_log::proof::OfflineProof;
use sealdrop_proto::keys::NoteVerifierKey;

fn log_key_of(hub: &Hub) -> NoteVerifierKey {
    hub.verifier_key().parse().expect("verifier-key prints a vkey")
}

fn receipts(p: &Party) -> Vec<String> {
    let dir = p.state.join("log").join("receipts");
    if dir.exists() { list_dir(&dir) } else { Vec::new() }
}

fn sends_and_fetches_keep_offline_receipts_that_verify(backend: Backend) {
    let hub = Hub::start_on(backend, None, &[]);
    let camden = Party::new(&hub, "camden");
    let islington = Party::new(&hub, "islington");
    let id = camden.send("islington", &[&camden.file("fsm.csv", "a,b\n1,2\n")]);
    let out = islington.work().join("in");
    islington.fetch(&id, &out);
    let key = log_key_of(&hub);

    for (party, name) in [(&camden, format!("{id}.committed")), (&islington, format!("{id}.acknowledged-by-islington"))]
    {
        let path = party.state.join("log").join("receipts").join(format!("{name}.tlog-proof"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(text.starts_with("c2sp.org/tlog-proof@v1\n"), "{text}");
        let proof = OfflineProof::from_text(&text).unwrap();
        let entry = hub.read(&format!("/v1/log/entry/{}", proof.index)).bytes;
        proof.verify(&entry, &key).expect("the receipt proves the entry is in the log");
        let mut other = entry.to_vec();
        other[10] ^= 1;
        assert!(proof.verify(&other, &key).is_err(), "a receipt must not prove another entry");
    }
}

/// Starts a hub, lets `camden` see its log grow past a snapshot, then has the
/// operator restore the snapshot (same log key) and optionally write a
/// different history; returns camden's failure.
///
/// Embedded only: the rollback is a copy of the data directory's files
/// (`hub.db`). A log forked on the shared stores, by two instances, is
/// `tests/tests/multi_instance.rs`'s.
fn operator_rewrites_history(write_other_history: bool) -> (Party, String) {
    let mut hub = Hub::start();
    let mut camden = Party::new(&hub, "camden");
    camden.ok(["inbox"]);
    hub.stop();
    let snapshot = hub.copy_data();
    hub.restart();
    camden.point_at(&hub);
    camden.send("islington", &[&camden.file("one.csv", "x\n1\n")]);

    hub.stop();
    hub.replace_data(snapshot.path());
    hub.restart();
    camden.point_at(&hub);
    if write_other_history {
        // A different history of the same length, signed with the same log key.
        let mut islington = Party::new(&hub, "islington");
        islington.point_at(&hub);
        islington.send("camden", &[&islington.file("other.csv", "y\n2\n")]);
    }
    let stderr = camden.fail_with(["inbox"], 4, "log_inconsistent");
    (camden, stderr)
}

fn assert_evidence_kept(camden: &Party, stderr: &str) {
    let evidence = camden.state.join("log").join("evidence");
    let cases = list_dir(&evidence);
    assert_eq!(cases.len(), 1, "one evidence folder: {cases:?}; {stderr}");
    let files = list_dir(&evidence.join(&cases[0]));
    assert_eq!(files, ["offered-now.checkpoint", "verified-before.checkpoint"], "{stderr}");
    assert!(stderr.contains(&evidence.display().to_string()), "the error says where the evidence is: {stderr}");
}

#[test]
fn a_client_detects_a_log_that_was_rolled_back() {
    let (camden, stderr) = operator_rewrites_history(false);
    assert!(stderr.contains("shrank"), "{stderr}");
    assert_evidence_kept(&camden, &stderr);
}

#[test]
fn a_client_detects_a_forked_log() {
    let (camden, stderr) = operator_rewrites_history(true);
    assert!(stderr.contains("fork") || stderr.contains("not an extension"), "{stderr}");
    assert_evidence_kept(&camden, &stderr);
}

/// Embedded only: what is checked is the client's pin, whatever the hub keeps.
#[test]
fn the_log_key_is_pinned_at_first_contact_and_a_change_is_refused() {
    let first = Hub::start();
    let mut camden = Party::new(&first, "camden");
    let out = camden.run(["inbox"]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let key = log_key_of(&first);
    assert!(stderr.contains(&key.fingerprint()), "first contact shows the fingerprint: {stderr}");
    assert!(receipts(&camden).is_empty(), "listing the inbox makes no receipts");

    // Another hub under the same origin name but with another log key.
    let second = Hub::start();
    camden.point_at(&second);
    let stderr = camden.fail_with(["inbox"], 4, "log_key_changed");
    assert!(stderr.contains(&key.fingerprint()), "{stderr}");
}

fn a_borough_cosigns_the_checkpoint_as_a_witness(backend: Backend) {
    let hub = Hub::start_on(backend, None, &[]);
    let camden = Party::new(&hub, "camden");
    let key_file = camden.work().join("witness.key");
    let vkey = camden.ok([
        "witness".as_ref(),
        "keygen".as_ref(),
        "--party".as_ref(),
        "camden".as_ref(),
        "--out".as_ref(),
        key_file.as_os_str(),
    ]);
    let witness: NoteVerifierKey = vkey.trim().parse().unwrap();
    assert!(witness.is_cosigner());

    let mut d = example_directory_json();
    d["serial"] = 2.into();
    d.as_object_mut().unwrap().remove("issued_at");
    let camden_entry = d["parties"].as_array_mut().unwrap().iter_mut().find(|p| p["id"] == "camden").unwrap();
    camden_entry["witness_keys"] = serde_json::json!([vkey.trim()]);
    let dir = camden.work();
    hub.publish(&sign_directory(&dir, "directory-2", &d, &authority_key_copy(&dir)));

    let out = camden.ok(["--witness-key".as_ref(), key_file.as_os_str(), "witness".as_ref()]);
    assert!(out.contains("cosigned"), "{out}");
    let checkpoint = hub.read("/v1/log/checkpoint").body;
    let cosigned = sealdrop_log::cosign::verify_cosignatures(&checkpoint, std::slice::from_ref(&witness)).unwrap();
    assert_eq!(cosigned.len(), 1, "{checkpoint}");
    assert_eq!(cosigned[0].name, "camden.witness");

    // A cosignature by a key the directory does not list is refused by the hub.
    let other = camden.work().join("other.key");
    camden.ok([
        "witness".as_ref(),
        "keygen".as_ref(),
        "--party".as_ref(),
        "camden".as_ref(),
        "--out".as_ref(),
        other.as_os_str(),
    ]);
    camden.fail_with(["--witness-key".as_ref(), other.as_os_str(), "witness".as_ref()], 6, "bad_cosignature");
}

/// Publishes a serial-2 directory whose `hub` listing names `log_key`.
fn list_hub(hub: &Hub, camden: &Party, log_key: &str) {
    let mut d = example_directory_json();
    d["serial"] = 2.into();
    d.as_object_mut().unwrap().remove("issued_at");
    d["hub"] = serde_json::json!({"origin": "test-hub", "log_key": log_key});
    let dir = camden.work();
    hub.publish(&sign_directory(&dir, "directory-listing", &d, &authority_key_copy(&dir)));
}

fn the_log_key_listed_in_the_directory_is_used_without_trust_on_first_use(backend: Backend) {
    let hub = Hub::start_on(backend, None, &[]);
    let camden = Party::new(&hub, "camden");
    let key = log_key_of(&hub);
    list_hub(&hub, &camden, &key.to_string());
    let out = camden.run(["inbox"]);
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("pinned the hub's log key"), "a listed key needs no first-contact pin: {stderr}");
    let pinned = std::fs::read_to_string(camden.state.join("log").join("log.vkey")).unwrap();
    assert_eq!(pinned.trim(), key.to_string());
}

fn a_directory_listing_another_log_key_makes_the_hubs_checkpoints_untrusted(backend: Backend) {
    let hub = Hub::start_on(backend, None, &[]);
    let camden = Party::new(&hub, "camden");
    // The coordinator vouches for a different key under the hub's name.
    let impostor = sealdrop_proto::keys::NoteSigningKey::generate("test-hub").unwrap();
    list_hub(&hub, &camden, &impostor.verifier().to_string());
    camden.fail_with(["inbox"], 4, "log_bad_checkpoint");
}

sealdrop_e2e::on_both_backends!(
    sends_and_fetches_keep_offline_receipts_that_verify,
    a_borough_cosigns_the_checkpoint_as_a_witness,
    the_log_key_listed_in_the_directory_is_used_without_trust_on_first_use,
    a_directory_listing_another_log_key_makes_the_hubs_checkpoints_untrusted,
);
