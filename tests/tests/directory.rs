//! The coordinator-signed directory: publishing, forgeries, rollbacks, revocation.

use std::path::{Path, PathBuf};

use sealdrop_e2e::{
    Hub, Party, Tool, authority_key_copy, authority_name, example_directory_json, example_directory_signed_with_serial,
    http, member_key, mode_of, read_bytes, read_text, sign_directory,
};

/// Generates another authority key with the real authority's name; returns
/// (secret key file, public key file).
fn impostor_authority(dir: &Path) -> (PathBuf, PathBuf) {
    let key = dir.join("impostor.key");
    Tool::new().ok([
        "directory".as_ref(),
        "keygen".as_ref(),
        "--name".as_ref(),
        authority_name().as_ref(),
        "--out".as_ref(),
        key.as_os_str(),
    ]);
    let public = key.with_extension("pub");
    assert!(
        key.is_file() && public.is_file(),
        "`directory keygen` did not write {} and {}",
        key.display(),
        public.display()
    );
    assert_eq!(mode_of(&key), 0o600, "the authority secret key must be written with mode 0600");
    assert!(read_text(&key).trim().starts_with("PRIVATE+KEY+"), "not a signed-note private key");
    let pub_text = read_text(&public);
    assert!(pub_text.trim().starts_with(&format!("{}+", authority_name())), "{pub_text}");
    assert_ne!(pub_text.trim(), read_text(&sealdrop_e2e::authority_pub()).trim());
    (key, public)
}

/// camden sends to islington, and islington fetches it.
fn exchange_works(hub: &Hub, camden: &Party, islington: &Party, name: &str) {
    let file = camden.file(name, name.as_bytes());
    let id = camden.send("islington", &[&file]);
    let out = islington.work().join(format!("in-{name}"));
    islington.fetch(&id, &out);
    assert_eq!(read_bytes(&out.join(name)), name.as_bytes());
    assert!(!hub.has_ciphertext(&id));
}

#[test]
fn publishing_serial_2_is_accepted_and_clients_keep_working() {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    let islington = Party::new(&hub, "islington");
    exchange_works(&hub, &camden, &islington, "before.txt");

    let tmp = tempfile::tempdir().unwrap();
    let note = example_directory_signed_with_serial(tmp.path(), 2);
    let signed = tmp.path().join("directory-2.signed");
    assert!(note.contains("\"serial\": 2"), "{note}");
    assert!(note.contains("issued_at"), "`directory sign` did not fill in issued_at");
    camden.ok(["directory".as_ref(), "publish".as_ref(), signed.as_os_str()]);

    let info = http::client().get(format!("{}/v1/info", hub.url)).send().unwrap().text().unwrap();
    assert_eq!(sealdrop_e2e::json(&info)["directory_serial"], 2, "{info}");
    exchange_works(&hub, &camden, &islington, "after.txt");
}

#[test]
fn a_directory_signed_by_another_authority_is_refused() {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    let tmp = tempfile::tempdir().unwrap();
    let (impostor_key, impostor_pub) = impostor_authority(tmp.path());
    let mut d = example_directory_json();
    d["serial"] = 2.into();
    let note = sign_directory(tmp.path(), "forged", &d, &impostor_key);
    let forged = tmp.path().join("forged.signed");

    // Raw: the hub refuses it.
    hub.post_directory(&note).assert_error(422, "directory_bad_signature");
    // The client verifies against its pinned authority before uploading.
    camden.fail_with(["directory".as_ref(), "publish".as_ref(), forged.as_os_str()], 4, "directory_bad_signature");
    // A client that trusts the impostor uploads it, and the hub still refuses.
    let mut fooled = Party::new(&hub, "camden");
    fooled.authority = impostor_pub;
    let (exit, stderr) = fooled.fail(["directory".as_ref(), "publish".as_ref(), forged.as_os_str()]);
    assert_eq!(sealdrop_e2e::error_code(&stderr).as_deref(), Some("directory_bad_signature"), "{stderr}");
    assert_eq!(exit, 6, "a refusal by the hub exits 6: {stderr}");

    let info = http::client().get(format!("{}/v1/info", hub.url)).send().unwrap().text().unwrap();
    assert_eq!(sealdrop_e2e::json(&info)["directory_serial"], 1, "{info}");
}

#[test]
fn the_hub_refuses_a_rollback() {
    let hub = Hub::start();
    let tmp = tempfile::tempdir().unwrap();
    let two = example_directory_signed_with_serial(tmp.path(), 2);
    hub.publish(&two);
    let one = read_text(&sealdrop_e2e::keys_example().join("directory.signed"));
    hub.post_directory(&one).assert_error(409, "directory_rollback");
    // The same serial again is not newer either.
    hub.post_directory(&two).assert_error(409, "directory_rollback");
    // Through the client.
    let camden = Party::new(&hub, "camden");
    let (exit, stderr) = camden.fail([
        "directory".as_ref(),
        "publish".as_ref(),
        sealdrop_e2e::keys_example().join("directory.signed").as_os_str(),
    ]);
    assert_eq!(sealdrop_e2e::error_code(&stderr).as_deref(), Some("directory_rollback"), "{stderr}");
    assert!(exit == 4 || exit == 6, "expected exit 4 (verification) or 6 (refused by the hub), got {exit}: {stderr}");
}

#[test]
fn a_client_that_saw_serial_2_refuses_a_hub_at_serial_1() {
    let newer = Hub::start();
    let tmp = tempfile::tempdir().unwrap();
    newer.publish(&example_directory_signed_with_serial(tmp.path(), 2));
    let mut camden = Party::new(&newer, "camden");
    let file = camden.file("x.txt", b"x");
    camden.send("islington", &[&file]);

    // Same client state, pointed at a hub that still serves serial 1.
    let older = Hub::start();
    camden.point_at(&older);
    camden.fail_with(
        ["send".as_ref(), "--to".as_ref(), "islington".as_ref(), file.as_os_str()],
        4,
        "directory_rollback",
    );
    let on_older = Party::new(&older, "islington");
    assert!(on_older.inbox().is_empty(), "a drop was created despite the rollback");
}

#[test]
fn a_client_pinning_the_wrong_authority_refuses_the_directory() {
    let hub = Hub::start();
    let tmp = tempfile::tempdir().unwrap();
    let (_, impostor_pub) = impostor_authority(tmp.path());
    let mut camden = Party::new(&hub, "camden");
    camden.authority = impostor_pub.clone();
    let file = camden.file("x.txt", b"x");
    camden.fail_with(
        ["send".as_ref(), "--to".as_ref(), "islington".as_ref(), file.as_os_str()],
        4,
        "directory_bad_signature",
    );
    assert!(Party::new(&hub, "islington").inbox().is_empty());

    // The key may also be given inline rather than as a file.
    camden.authority = PathBuf::from(read_text(&impostor_pub).trim());
    camden.fail_with(
        ["send".as_ref(), "--to".as_ref(), "islington".as_ref(), file.as_os_str()],
        4,
        "directory_bad_signature",
    );
}

#[test]
fn a_member_key_removed_from_the_directory_is_refused() {
    let hub = Hub::start();
    let hackney = Party::new(&hub, "hackney");
    assert!(hackney.inbox().is_empty(), "hackney works before the revocation");
    let hackney_key = member_key("hackney").signing;
    assert_eq!(http::signed_get(&hub.url, &hackney_key, "/v1/inbox").status, 200);

    let tmp = tempfile::tempdir().unwrap();
    let mut d = example_directory_json();
    d["serial"] = 2.into();
    d.as_object_mut().unwrap().remove("issued_at");
    let party = d["parties"].as_array_mut().unwrap().iter_mut().find(|p| p["id"] == "hackney").unwrap();
    party["members"] = serde_json::json!([]);
    let note = sign_directory(tmp.path(), "revoked", &d, &authority_key_copy(tmp.path()));
    hub.publish(&note);

    http::signed_get(&hub.url, &hackney_key, "/v1/inbox").assert_error(401, "unknown_key");
    // The hub no longer shows the directory (or the log) to that key, so the
    // client's first request is refused, and it passes the reason on in one line.
    let (exit, stderr) = hackney.fail(["inbox"]);
    assert_eq!(sealdrop_e2e::error_code(&stderr).as_deref(), Some("unknown_key"), "{stderr}");
    assert!(stderr.contains("serial 2") && stderr.contains("coordinator"), "{stderr}");
    sealdrop_e2e::assert_one_error_line(&stderr);
    assert_eq!(exit, 6, "{stderr}");
    // Others are unaffected.
    assert_eq!(http::signed_get(&hub.url, &member_key("camden").signing, "/v1/inbox").status, 200);
}

#[test]
fn a_directory_that_drops_a_revocation_is_refused_naming_both_serials() {
    let hub = Hub::start();
    let tmp = tempfile::tempdir().unwrap();
    let key = authority_key_copy(tmp.path());
    let mut d = example_directory_json();
    d.as_object_mut().unwrap().remove("issued_at");
    let hackney = |d: &mut serde_json::Value| -> serde_json::Value {
        d["parties"].as_array_mut().unwrap().iter_mut().find(|p| p["id"] == "hackney").unwrap().clone()
    };
    let signing_key = hackney(&mut d)["members"][0]["signing_key"].as_str().unwrap().to_owned();
    let set_hackney = |d: &mut serde_json::Value, members: serde_json::Value, revoked: serde_json::Value| {
        let party = d["parties"].as_array_mut().unwrap().iter_mut().find(|p| p["id"] == "hackney").unwrap();
        party["members"] = members;
        party["revoked"] = revoked;
    };
    // Serial 2 revokes hackney's key, serial 3 keeps the revocation ...
    let revocation = serde_json::json!([{
        "member": "data-team", "signing_key": signing_key, "revoked_at": "2026-01-01T00:00:00Z", "reason": "left"
    }]);
    set_hackney(&mut d, serde_json::json!([]), revocation);
    for serial in [2, 3] {
        d["serial"] = serial.into();
        hub.publish(&sign_directory(tmp.path(), &format!("s{serial}"), &d, &key));
    }
    // ... and serial 4 drops it: refused, naming serial 4 as the one that
    // drops it and serial 3 (in force) as the one that lists it.
    d["serial"] = 4.into();
    set_hackney(&mut d, serde_json::json!([]), serde_json::json!([]));
    let reply = hub.post_directory(&sign_directory(tmp.path(), "s4", &d, &key));
    reply.assert_error(422, "directory_invalid");
    let message = sealdrop_e2e::json(&reply.body)["error"]["message"].as_str().unwrap().to_owned();
    assert!(message.contains("serial 4 drops the revocation of key hackney/data-team"), "{message}");
    assert!(message.contains("that serial 3, the version it would follow, lists"), "{message}");
    assert!(!message.contains("revoked in serial 3"), "serial 2 revoked the key, not serial 3: {message}");
    let info = http::client().get(format!("{}/v1/info", hub.url)).send().unwrap().text().unwrap();
    assert_eq!(sealdrop_e2e::json(&info)["directory_serial"], 3, "{info}");
}
