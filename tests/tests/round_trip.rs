//! Files go in at one council and come out identical at another.

use sealdrop_e2e::{
    AGREEMENT, Backend, Hub, Party, is_drop_id, json, pseudo_random_bytes, read_bytes, recipient_status, sha256_hex,
    timestamp, tree,
};

fn single_file_arrives_byte_identical(backend: Backend) {
    let hub = Hub::start_on(backend, None, &[]);
    let camden = Party::new(&hub, "camden");
    let islington = Party::new(&hub, "islington");
    // Not valid UTF-8, with CRLFs and a NUL: content must pass untouched.
    // (Not named .csv: a .csv that is not UTF-8 is refused, see send_checks.rs.)
    let content: Vec<u8> = b"upn,fsm\r\nA123,1\r\n\x00\xff\xfe tail without newline".to_vec();
    let file = camden.file("outgoing/pupils-2026.dat", &content);

    let id = camden.send("islington", &[&file]);
    assert!(islington.inbox_ids().contains(&id), "the drop is not in islington's inbox");

    let out = islington.work().join("in");
    std::fs::create_dir(&out).unwrap();
    islington.fetch(&id, &out);
    let got = tree(&out);
    assert_eq!(got.keys().collect::<Vec<_>>(), ["pupils-2026.dat"], "fetch wrote other files: {:?}", got.keys());
    assert_eq!(got["pupils-2026.dat"], content);

    // Fetched and acknowledged: no longer waiting in the inbox.
    assert!(!islington.inbox_ids().contains(&id), "a fetched drop is still in the inbox");
}

fn folder_with_nested_subfolders_and_unicode_names(backend: Backend) {
    let hub = Hub::start_on(backend, None, &[]);
    let camden = Party::new(&hub, "camden");
    let islington = Party::new(&hub, "islington");
    let files: &[(&str, &[u8])] = &[
        ("reports/summary.csv", b"a,b\n1,2\n"),
        ("reports/2026/q1/pupils.csv", b"upn\nA1\n"),
        ("reports/2026/q1/Ünïcödé café – naïve résumé.txt", "Grüße aus Camden — ✓\n".as_bytes()),
        ("reports/2026/q2/deep/er/still here.txt", b"deep\n"),
        ("reports/with spaces/notes and more.txt", b""),
    ];
    for (rel, content) in files {
        camden.file(rel, content);
    }
    let folder = camden.work().join("reports");

    let id = camden.send("islington", &[&folder]);
    let out = islington.work().join("in");
    std::fs::create_dir(&out).unwrap();
    islington.fetch(&id, &out);

    let sent = tree(&camden.work().join("reports"));
    let got = tree(&out.join("reports"));
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        sent.keys().collect::<Vec<_>>(),
        "the folder's structure or names changed in transit"
    );
    assert_eq!(got, sent, "a file's content changed in transit");
    assert_eq!(sealdrop_e2e::list_dir(&out), ["reports"], "fetch wrote something beside reports/");
}

fn several_recipients_each_fetch_and_the_hub_deletes_after_the_last(backend: Backend) {
    let hub = Hub::start_on(backend, None, &[]);
    let camden = Party::new(&hub, "camden");
    let islington = Party::new(&hub, "islington");
    let hackney = Party::new(&hub, "hackney");
    let content = pseudo_random_bytes(100_000, 7);
    let file = camden.file("cohort.bin", &content);

    let id = camden.send("islington,hackney", &[&file]);
    assert!(hub.has_ciphertext(&id), "the hub holds no committed ciphertext");

    let status = camden.status_of(&id);
    assert_eq!(status["state"], "committed", "{status}");
    let mut parties: Vec<&str> =
        status["recipients"].as_array().unwrap().iter().map(|r| r["party"].as_str().unwrap()).collect();
    parties.sort();
    assert_eq!(parties, ["hackney", "islington"], "{status}");
    for p in ["islington", "hackney"] {
        let r = recipient_status(&status, p);
        assert!(r["acknowledged"].is_null() && r["acknowledged_by"].is_null(), "{status}");
        assert!(r["fetched"].is_null(), "{p} has not fetched yet: {status}");
    }

    // The first recipient fetches: the ciphertext stays for the second.
    let out_i = islington.work().join("in");
    islington.fetch(&id, &out_i);
    assert_eq!(read_bytes(&out_i.join("cohort.bin")), content);
    assert!(hub.has_ciphertext(&id), "the hub deleted the ciphertext before hackney fetched");
    let status = camden.status_of(&id);
    assert_eq!(status["state"], "committed", "{status}");
    let r = recipient_status(&status, "islington");
    timestamp(r, "fetched");
    timestamp(r, "acknowledged");
    assert!(r["acknowledged_by"].as_str().is_some_and(|m| m.contains("data-team")), "{status}");
    assert!(recipient_status(&status, "hackney")["acknowledged"].is_null(), "{status}");
    assert!(hackney.inbox_ids().contains(&id));

    // The second recipient fetches: delivered, ciphertext gone.
    let out_h = hackney.work().join("in");
    hackney.fetch(&id, &out_h);
    assert_eq!(read_bytes(&out_h.join("cohort.bin")), content);
    assert!(!hub.has_ciphertext(&id), "the hub kept the ciphertext after every recipient acknowledged");
    let status = camden.status_of(&id);
    assert_eq!(status["state"], "delivered", "{status}");
    for p in ["islington", "hackney"] {
        let r = recipient_status(&status, p);
        timestamp(r, "fetched");
        timestamp(r, "acknowledged");
        assert!(r["acknowledged_by"].as_str().is_some_and(|m| m.contains("data-team")), "{status}");
    }
    // `status ID --json` shows the same drop.
    let one = json(&camden.ok(["status", &id, "--json"]));
    let one = if one.is_array() { one[0].clone() } else { one };
    assert_eq!(one["id"], id.as_str());
    assert_eq!(one["state"], "delivered");
}

/// Size of the large-file test in MiB: far above one age chunk (64 KiB) and
/// axum's default 2 MB body limit. Dependencies are optimised even in debug
/// builds (see the workspace profile), so this stays a few seconds; set
/// `SEALDROP_E2E_LARGE_MIB` for a longer run.
fn large_file_len() -> usize {
    let mib = std::env::var("SEALDROP_E2E_LARGE_MIB").ok().and_then(|v| v.parse::<usize>().ok()).unwrap_or(24);
    mib * 1024 * 1024 + 12_345
}

fn a_large_file_round_trips_with_equal_sha256(backend: Backend) {
    let hub = Hub::start_on(backend, None, &[]);
    let camden = Party::new(&hub, "camden");
    let islington = Party::new(&hub, "islington");
    let len = large_file_len();
    let content = pseudo_random_bytes(len, 0x5eed);
    let want = sha256_hex(&content);
    let file = camden.file("big.bin", &content);
    drop(content);

    let id = camden.send("islington", &[&file]);
    let out = islington.work().join("in");
    islington.fetch(&id, &out);
    let got = read_bytes(&out.join("big.bin"));
    assert_eq!(got.len(), len);
    assert_eq!(sha256_hex(&got), want);
}

fn send_to_an_alias_reaches_the_party(backend: Backend) {
    let hub = Hub::start_on(backend, None, &[]);
    let camden = Party::new(&hub, "camden");
    let islington = Party::new(&hub, "islington");
    let hackney = Party::new(&hub, "hackney");
    let file = camden.file("alias.txt", b"to E09000019\n");

    // E09000019 is Islington's ONS GSS code.
    let id = camden.send("E09000019", &[&file]);
    assert!(islington.inbox_ids().contains(&id), "sending to E09000019 did not reach islington");
    assert!(!hackney.inbox_ids().contains(&id));
    let status = camden.status_of(&id);
    let parties: Vec<&str> =
        status["recipients"].as_array().unwrap().iter().map(|r| r["party"].as_str().unwrap()).collect();
    assert_eq!(parties, ["islington"], "the alias must resolve to the party id: {status}");
    let out = islington.work().join("in");
    islington.fetch(&id, &out);
    assert_eq!(read_bytes(&out.join("alias.txt")), b"to E09000019\n");
}

fn inbox_json_lists_the_drop_with_its_fields(backend: Backend) {
    let hub = Hub::start_on(backend, None, &[]);
    let camden = Party::new(&hub, "camden");
    let islington = Party::new(&hub, "islington");
    assert!(islington.inbox().is_empty(), "a fresh hub's inbox is not empty");
    let file = camden.file("fields.csv", b"x\n");

    let out = camden.ok([
        "send".as_ref(),
        "--to".as_ref(),
        "islington".as_ref(),
        "--agreement".as_ref(),
        AGREEMENT.as_ref(),
        "--expires".as_ref(),
        "2d".as_ref(),
        "--json".as_ref(),
        file.as_os_str(),
    ]);
    let sent = json(&out);
    let id = sent["id"].as_str().unwrap_or_else(|| panic!("`send --json` has no id: {sent}")).to_owned();
    assert!(is_drop_id(&id), "{id:?}");

    let inbox = islington.inbox();
    assert_eq!(inbox.len(), 1, "{inbox:?}");
    let e = &inbox[0];
    assert_eq!(e["id"], id.as_str());
    assert_eq!(e["from"], "camden");
    assert_eq!(e["agreement"], AGREEMENT);
    let size = e["size"].as_u64().unwrap_or_else(|| panic!("size is not a number: {e}"));
    assert!(size > 0, "{e}");
    let blob_len = hub.ciphertext(&id).expect("the hub holds the ciphertext").len() as u64;
    assert_eq!(size, blob_len, "inbox size must be the ciphertext's size");
    let created = timestamp(e, "created");
    let expires = timestamp(e, "expires");
    let lifetime = expires.as_second() - created.as_second();
    assert!(
        (2 * 86400 - 120..=2 * 86400 + 120).contains(&lifetime),
        "--expires 2d gave a lifetime of {lifetime}s: {e}"
    );
    let now = sealdrop_e2e::http::now();
    assert!((created.as_second() - now).abs() < 300, "created is not now: {e}");

    // The sender sees no drop in its own inbox.
    assert!(camden.inbox().is_empty());
}

sealdrop_e2e::on_both_backends!(
    single_file_arrives_byte_identical,
    folder_with_nested_subfolders_and_unicode_names,
    several_recipients_each_fetch_and_the_hub_deletes_after_the_last,
    a_large_file_round_trips_with_equal_sha256,
    send_to_an_alias_reaches_the_party,
    inbox_json_lists_the_drop_with_its_fields,
);
