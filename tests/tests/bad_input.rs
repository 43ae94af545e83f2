//! Mistakes are refused with a clear error and change nothing.

use std::ffi::OsStr;

use sealdrop_e2e::{
    AGREEMENT, Hub, Party, Tool, assert_one_error_line, authority_key_copy, chmod, closed_port, error_code,
    example_directory_json, http, json, list_dir, member_key, mode_of, read_bytes, sign_directory,
};

fn args<'a>(a: &[&'a OsStr]) -> Vec<&'a OsStr> {
    a.to_vec()
}

#[test]
fn an_identity_file_readable_by_others_is_refused() {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    for mode in [0o644, 0o640, 0o604] {
        chmod(&camden.key, mode);
        let stderr = camden.fail_with(["inbox"], 3, "key_permissions");
        assert!(stderr.contains("chmod 600"), "the message must say how to fix it (`chmod 600`): {stderr}");
        assert_eq!(mode_of(&camden.key), mode, "the client must not change the key's mode itself");
    }
    chmod(&camden.key, 0o600);
    camden.ok(["inbox"]);
}

#[test]
fn an_unknown_recipient_is_named() {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    let file = camden.file("x.csv", b"x\n");
    let (exit, stderr) =
        camden.fail(args(&["send".as_ref(), "--to".as_ref(), "nowhere-borough".as_ref(), file.as_os_str()]));
    assert_one_error_line(&stderr);
    assert_eq!(exit, 3, "an unknown recipient is bad input (exit 3): {stderr}");
    assert!(stderr.contains("nowhere-borough"), "the error must name the unknown recipient: {stderr}");
    // One bad name among good ones sends nothing.
    let (_, stderr) =
        camden.fail(args(&["send".as_ref(), "--to".as_ref(), "islington,nowhere-borough".as_ref(), file.as_os_str()]));
    assert!(stderr.contains("nowhere-borough"), "{stderr}");
    assert!(Party::new(&hub, "islington").inbox().is_empty(), "a drop was sent despite the unknown recipient");
}

#[test]
fn a_party_outside_the_agreement_is_refused() {
    let hub = Hub::start();
    let tmp = tempfile::tempdir().unwrap();
    let mut d = example_directory_json();
    d["serial"] = 2.into();
    d.as_object_mut().unwrap().remove("issued_at");
    let mut pilot = d["agreements"].as_array().unwrap().iter().find(|a| a["id"] == AGREEMENT).unwrap().clone();
    pilot["id"] = "north-pilot".into();
    pilot["title"] = "North London pilot".into();
    pilot["parties"] = serde_json::json!(["camden", "islington"]);
    d["agreements"].as_array_mut().unwrap().push(pilot);
    hub.publish(&sign_directory(tmp.path(), "pilot", &d, &authority_key_copy(tmp.path())));

    let camden = Party::new(&hub, "camden");
    let westminster = Party::new(&hub, "westminster");
    let islington = Party::new(&hub, "islington");
    let file = camden.file("pilot.csv", b"p\n");
    let send = |to: &str| -> Vec<std::ffi::OsString> {
        vec!["send".into(), "--agreement".into(), "north-pilot".into(), "--to".into(), to.into(), file.clone().into()]
    };
    let (_, stderr) = camden.fail(send("westminster"));
    assert_one_error_line(&stderr);
    assert!(stderr.contains("north-pilot"), "the error must name the agreement: {stderr}");
    assert!(stderr.contains("westminster"), "the error should name the party outside it: {stderr}");
    assert!(westminster.inbox().is_empty());

    // The hub enforces it too, whatever a client does.
    let body = serde_json::to_vec(&serde_json::json!({
        "recipients": ["westminster"],
        "agreement": "north-pilot",
        "expires": sealdrop_proto::Timestamp::from_second(http::now() + 86400).unwrap().to_string(),
    }))
    .unwrap();
    let key = member_key("camden").signing;
    http::signed_at(&hub.url, &key, "POST", "/v1/drops", http::now(), &body).assert_error(422, "not_in_agreement");

    // A party inside it receives under that agreement.
    let out = camden.ok(send("islington"));
    let id = out.trim();
    let inbox = islington.inbox();
    let entry = inbox.iter().find(|e| e["id"] == id).unwrap_or_else(|| panic!("{id} not in {inbox:?}"));
    assert_eq!(entry["agreement"], "north-pilot");
}

#[test]
fn an_unreachable_hub_exits_5() {
    let url = format!("http://127.0.0.1:{}", closed_port());
    let camden = Party::with_url(&url, "camden");
    camden.fail_with(["inbox"], 5, "hub_unreachable");
    let file = camden.file("x.csv", b"x\n");
    camden.fail_with(
        args(&["send".as_ref(), "--to".as_ref(), "islington".as_ref(), file.as_os_str()]),
        5,
        "hub_unreachable",
    );
}

#[test]
fn an_unknown_drop_id_is_refused() {
    let hub = Hub::start();
    let islington = Party::new(&hub, "islington");
    let out = islington.work().join("in");
    std::fs::create_dir(&out).unwrap();
    for id in ["d-aaaaaaaaaaaaaaaaaaaaaaaaaa", "not-a-drop", "../../etc/passwd"] {
        let (exit, stderr) = islington.fail(args(&["fetch".as_ref(), id.as_ref(), "-o".as_ref(), out.as_os_str()]));
        assert_one_error_line(&stderr);
        if !id.starts_with("d-") {
            assert_eq!(exit, 3, "a malformed drop id is bad input (exit 3): {stderr}");
        }
    }
    assert!(list_dir(&out).is_empty());
}

#[test]
fn fetch_never_overwrites_an_existing_file() {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    let islington = Party::new(&hub, "islington");
    let file = camden.file("a.csv", b"from camden\n");
    let id = camden.send("islington", &[&file]);
    let out = islington.work().join("in");
    let existing = islington.file("in/a.csv", b"precious local data\n");

    // The drop's own folder is taken too: refused, nothing replaced, not acknowledged.
    let taken = islington.file(&format!("in/{id}"), b"also mine\n");
    islington
        .fail_code(args(&["fetch".as_ref(), id.as_str().as_ref(), "-o".as_ref(), out.as_os_str()]), "output_exists");
    assert_eq!(read_bytes(&existing), b"precious local data\n", "fetch overwrote an existing file");
    assert_eq!(read_bytes(&taken), b"also mine\n", "fetch overwrote an existing file");
    assert_eq!(list_dir(&out), ["a.csv".to_owned(), id.clone()], "fetch left other files behind");
    assert!(islington.inbox_ids().contains(&id), "the refused drop left the inbox");
    let status = camden.status_of(&id);
    assert!(sealdrop_e2e::recipient_status(&status, "islington")["acknowledged"].is_null(), "{status}");

    // Once that is moved away, the drop arrives in a folder named after it,
    // beside the existing file of the same name, which stays as it was.
    std::fs::rename(&taken, islington.work().join("moved")).unwrap();
    islington.fetch(&id, &out);
    assert_eq!(read_bytes(&existing), b"precious local data\n");
    assert_eq!(read_bytes(&out.join(&id).join("a.csv")), b"from camden\n");
}

#[test]
fn a_folder_fetch_never_overwrites_a_file_inside_it() {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    let islington = Party::new(&hub, "islington");
    camden.file("reports/one.csv", b"1\n");
    camden.file("reports/two.csv", b"2\n");
    let id = camden.send("islington", &[&camden.work().join("reports")]);

    let out = islington.work().join("in");
    let existing = islington.file("in/reports/two.csv", b"mine\n");
    islington.fetch(&id, &out);
    assert_eq!(read_bytes(&existing), b"mine\n");
    assert_eq!(list_dir(&out.join("reports")), ["two.csv"], "fetch wrote into an existing folder");
    assert_eq!(read_bytes(&out.join(&id).join("reports").join("one.csv")), b"1\n");
    assert_eq!(read_bytes(&out.join(&id).join("reports").join("two.csv")), b"2\n");
    assert!(!islington.inbox_ids().contains(&id));
}

#[test]
fn a_missing_path_is_named() {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    let islington = Party::new(&hub, "islington");
    let present = camden.file("present.csv", b"p\n");
    let missing = camden.work().join("no-such-file.csv");
    let (exit, stderr) = camden.fail(args(&[
        "send".as_ref(),
        "--to".as_ref(),
        "islington".as_ref(),
        present.as_os_str(),
        missing.as_os_str(),
    ]));
    assert!(error_code(&stderr).is_some(), "{stderr}");
    assert_one_error_line(&stderr);
    assert_eq!(exit, 3, "a missing path is bad input (exit 3): {stderr}");
    assert!(stderr.contains("no-such-file.csv"), "the error must name the missing path: {stderr}");
    assert!(islington.inbox().is_empty(), "a drop was sent despite the missing path");
}

#[test]
fn keygen_refuses_an_existing_file() {
    let tool = Tool::new();
    let out = tool.dir.path().join("existing.key");
    std::fs::write(&out, b"do not touch\n").unwrap();
    let (_, stderr) = tool.fail(args(&[
        "keygen".as_ref(),
        "--party".as_ref(),
        "camden".as_ref(),
        "--member".as_ref(),
        "alice".as_ref(),
        "--out".as_ref(),
        out.as_os_str(),
    ]));
    assert_eq!(error_code(&stderr).as_deref(), Some("output_exists"), "{stderr}");
    assert_one_error_line(&stderr);
    assert_eq!(read_bytes(&out), b"do not touch\n", "keygen changed an existing file");
}

#[test]
fn keygen_writes_a_private_key_and_prints_its_card() {
    let tool = Tool::new();
    let out = tool.dir.path().join("keys/alice.key");
    std::fs::create_dir(tool.dir.path().join("keys")).unwrap();
    let stdout = tool.ok(args(&[
        "keygen".as_ref(),
        "--party".as_ref(),
        "camden".as_ref(),
        "--member".as_ref(),
        "alice".as_ref(),
        "--out".as_ref(),
        out.as_os_str(),
    ]));
    assert_eq!(mode_of(&out), 0o600, "the secret key file must be mode 0600");
    let card = json(&stdout);
    assert_eq!(card["party"], "camden");
    assert_eq!(card["member"], "alice");
    let key = sealdrop_proto::keys::MemberSecretKey::from_file_text(&sealdrop_e2e::read_text(&out))
        .unwrap_or_else(|e| panic!("keygen wrote an unreadable key: {e}"));
    let public = key.public();
    assert_eq!(card["age_recipient"], public.age_recipient.as_str());
    assert_eq!(card["signing_key"], public.signing_key.to_string().as_str());
    assert!(!stdout.contains("AGE-SECRET-KEY"), "keygen printed the secret");
    // The card is what a coordinator puts in the directory: it must parse and validate.
    let parsed: sealdrop_proto::keys::MemberPublicKey = serde_json::from_str(&stdout).unwrap();
    parsed.validate().unwrap();
}

#[test]
fn an_invalid_party_id_is_a_usage_error_with_an_error_line() {
    let tool = Tool::new();
    let out = tool.dir.path().join("x.key");
    let (exit, stderr) = tool.fail(args(&[
        "keygen".as_ref(),
        "--party".as_ref(),
        "City of London".as_ref(),
        "--member".as_ref(),
        "alice".as_ref(),
        "--out".as_ref(),
        out.as_os_str(),
    ]));
    assert!(error_code(&stderr).is_some(), "expected `error[<code>]: <message>`, got:\n{stderr}");
    assert_one_error_line(&stderr);
    assert_eq!(error_code(&stderr).as_deref(), Some("usage"), "{stderr}");
    assert!(stderr.contains("City of London"), "the message names the bad value: {stderr}");
    assert_eq!(exit, 2, "usage errors exit 2: {stderr}");
    assert!(!out.exists(), "keygen wrote a key for an invalid party id");
}
