//! Post-quantum keys end to end: `keygen` makes them unless told otherwise,
//! a coordinator cannot sign a directory that breaks an agreement's
//! `require_pq` or lets a party mix key kinds, and a sender will not put
//! post-quantum and classic keys in one drop (the age spec forbids it: the
//! classic stanza would undo the protection). The hub's side is in
//! `malicious_sender.rs`
//! (`under_an_agreement_requiring_post_quantum_keys_the_hub_refuses_a_classic_stanza`).

use sealdrop_e2e::{Coordinator, Hub, Party, Tool, error_code, json, new_member, new_member_with, read_text};

#[test]
fn keygen_makes_post_quantum_keys_unless_asked_for_classic_ones() {
    let dir = tempfile::tempdir().unwrap();
    let (key, card) = new_member(dir.path(), "camden", "data-team");
    let card = json(&read_text(&card));
    let recipient = card["age_recipient"].as_str().unwrap();
    assert!(recipient.starts_with("age1pq1") && recipient.len() > 1900, "{recipient}");
    assert!(read_text(&key).contains("age-identity: AGE-SECRET-KEY-PQ-1"));
    let (key, card) = new_member_with(dir.path(), "camden", "analyst", &["--classic"]);
    let recipient = json(&read_text(&card))["age_recipient"].as_str().unwrap().to_owned();
    assert!(recipient.starts_with("age1") && !recipient.starts_with("age1pq1") && recipient.len() == 62, "{recipient}");
    assert!(read_text(&key).contains("age-identity: AGE-SECRET-KEY-1"));
}

#[test]
fn the_coordinator_cannot_sign_a_classic_key_into_an_agreement_requiring_post_quantum_keys() {
    let coordinator = Coordinator::new();
    let (_, card) = new_member_with(coordinator.tool.dir.path(), "islington", "data-team", &["--classic"]);
    let card = json(&read_text(&card));
    let mut dir = json(&read_text(&coordinator.json));
    dir["agreements"][0]["require_pq"] = true.into();
    let islington = dir["parties"].as_array_mut().unwrap().iter_mut().find(|p| p["id"] == "islington").unwrap();
    islington["members"][0]["age_recipient"] = card["age_recipient"].clone();
    islington["members"][0]["signing_key"] = card["signing_key"].clone();
    sealdrop_e2e::write_file(&coordinator.json, serde_json::to_string_pretty(&dir).unwrap());
    let signed = coordinator.tool.dir.path().join("directory.signed");
    let key = coordinator.key.to_str().unwrap();
    let input = coordinator.json.to_str().unwrap();
    let (exit, stderr) =
        coordinator.tool.fail(["directory", "sign", "--key", key, "--input", input, "--out", signed.to_str().unwrap()]);
    assert_eq!(exit, 3, "{stderr}");
    assert_eq!(error_code(&stderr).as_deref(), Some("directory_invalid"), "{stderr}");
    assert!(
        stderr.contains("requires post-quantum keys but islington/data-team has a classic key"),
        "the error names the key: {stderr}"
    );
    assert!(!signed.exists(), "nothing was signed");

    // Without the requirement the same directory signs: classic keys keep working.
    dir["agreements"][0]["require_pq"] = false.into();
    sealdrop_e2e::write_file(&coordinator.json, serde_json::to_string_pretty(&dir).unwrap());
    coordinator.tool.ok(["directory", "sign", "--key", key, "--input", input, "--out", signed.to_str().unwrap()]);
}

#[test]
fn directory_new_requires_post_quantum_cards_when_asked() {
    let tool = Tool::new();
    let d = tool.dir.path();
    let out = d.join("directory.json");
    let new_with = |cards: &[(&str, &[&str])]| {
        let folder = tempfile::tempdir_in(d).unwrap();
        let keys = tempfile::tempdir_in(d).unwrap();
        for (party, options) in cards {
            let (_, card) = new_member_with(keys.path(), party, "data-team", options);
            std::fs::copy(&card, folder.path().join(card.file_name().unwrap())).unwrap();
        }
        let cards = folder.path().to_str().unwrap().to_owned();
        let args = ["directory", "new", "--cards", &cards, "--agreement", "fsm", "--purpose", "p"];
        let mut args: Vec<String> = args.map(String::from).to_vec();
        args.extend(["--lawful-basis", "b", "--require-pq", "--out", out.to_str().unwrap()].map(String::from));
        (tool.run(&args), folder)
    };
    let (refused, _) = new_with(&[("camden", &[]), ("islington", &["--classic"])]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(
        (refused.status.code(), error_code(&stderr).as_deref()),
        (Some(3), Some("directory_invalid")),
        "{stderr}"
    );
    assert!(stderr.contains("requires post-quantum keys"), "{stderr}");
    assert!(!out.exists());
    let (made, _) = new_with(&[("camden", &[]), ("hackney", &[])]);
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    assert_eq!(json(&read_text(&out))["agreements"][0]["require_pq"], true);
}

#[test]
fn a_sender_never_mixes_post_quantum_and_classic_keys_in_one_drop() {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    let islington = Party::new(&hub, "islington");
    Coordinator::new().rekey(&camden, &[&islington], &["--classic"]);
    let file = camden.file("pupils.csv", "upn\nA1\n");
    let (exit, stderr) = camden.fail(["send", "--to", "islington,hackney", file.to_str().unwrap()]);
    assert_eq!(exit, 3, "{stderr}");
    assert_eq!(error_code(&stderr).as_deref(), Some("mixed_key_kinds"), "{stderr}");
    assert!(stderr.contains("separate drops"), "the error says what to do: {stderr}");
    assert!(camden.status().is_empty(), "nothing was sent: {:?}", camden.status());
    // Each on its own goes: the classic party gets a classic drop, the other a post-quantum one.
    for to in ["islington", "hackney"] {
        let id = camden.send(to, &[&file]);
        let header = sealdrop_proto::age_header::parse(&hub.ciphertext(&id).unwrap()).unwrap().unwrap();
        let kinds: Vec<&str> =
            header.stanzas.iter().map(|s| s.tag.as_str()).filter(|t| !t.ends_with("-grease")).collect();
        assert_eq!(kinds, [if to == "islington" { "X25519" } else { "mlkem768x25519" }], "{to}");
    }
    let got = islington.work().join("got");
    for id in islington.inbox_ids() {
        islington.fetch(&id, &got);
    }
    assert_eq!(read_text(&got.join("pupils.csv")), "upn\nA1\n");
}
