//! A drop is visible and downloadable only by its recipients.

use sealdrop_e2e::{Hub, Party, http, list_dir, member_key};

/// camden sends a file to islington; returns the hub, the parties and the drop id.
fn drop_for_islington() -> (Hub, Party, Party, String) {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    let islington = Party::new(&hub, "islington");
    let file = camden.file("private.csv", b"for islington only\n");
    let id = camden.send("islington", &[&file]);
    (hub, camden, islington, id)
}

#[test]
fn another_partys_inbox_does_not_show_the_drop() {
    let (hub, _camden, islington, id) = drop_for_islington();
    let westminster = Party::new(&hub, "westminster");
    assert!(islington.inbox_ids().contains(&id));
    assert!(westminster.inbox().is_empty(), "westminster sees a drop meant for islington");
}

#[test]
fn another_party_cannot_fetch_the_drop() {
    let (hub, camden, islington, id) = drop_for_islington();
    let westminster = Party::new(&hub, "westminster");
    let out = westminster.work().join("in");
    std::fs::create_dir(&out).unwrap();

    let stderr =
        westminster.fail_with(["fetch".as_ref(), id.as_str().as_ref(), "-o".as_ref(), out.as_os_str()], 6, "forbidden");
    assert!(!stderr.contains("for islington only"), "{stderr}");
    assert!(list_dir(&out).is_empty(), "a refused fetch wrote {:?}", list_dir(&out));

    // Nothing changed for the real recipient.
    assert!(islington.inbox_ids().contains(&id));
    let status = camden.status_of(&id);
    assert_eq!(status["state"], "committed", "{status}");
    assert_eq!(status["recipients"].as_array().unwrap().len(), 1, "{status}");
}

#[test]
fn raw_http_by_another_party_is_forbidden() {
    let (hub, _camden, _islington, id) = drop_for_islington();
    let westminster = member_key("westminster").signing;
    http::signed_get(&hub.url, &westminster, &format!("/v1/drops/{id}/content")).assert_error(403, "forbidden");
    http::signed_get(&hub.url, &westminster, &format!("/v1/drops/{id}")).assert_error(403, "forbidden");
}

#[test]
fn the_sender_cannot_download_the_content() {
    let (hub, _camden, _islington, id) = drop_for_islington();
    let camden = member_key("camden").signing;
    http::signed_get(&hub.url, &camden, &format!("/v1/drops/{id}/content")).assert_error(403, "forbidden");
    // ...but may read the drop's details.
    let details = http::signed_get(&hub.url, &camden, &format!("/v1/drops/{id}"));
    assert_eq!(details.status, 200, "{details:?}");
}

#[test]
fn the_recipient_can_download_the_content_over_raw_http() {
    // The control for the refusals above: the same request by the recipient works.
    let (hub, _camden, _islington, id) = drop_for_islington();
    let islington = member_key("islington").signing;
    let reply = http::signed_get(&hub.url, &islington, &format!("/v1/drops/{id}/content"));
    assert_eq!(reply.status, 200, "{reply:?}");
    let blob = hub.ciphertext(&id).expect("the hub holds the ciphertext");
    assert!(reply.bytes == blob, "the content served differs from the stored ciphertext");
}

/// Every byte the hub keeps or writes: its data directory (database, its
/// write-ahead log, ciphertext files), its log output, and its transfer
/// log (as a member reads it).
fn everything_the_hub_holds(hub: &Hub) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> =
        sealdrop_e2e::tree(hub.data.path()).into_iter().map(|(name, bytes)| (format!("data/{name}"), bytes)).collect();
    out.push(("stderr".into(), hub.log().into_bytes()));
    let checkpoint = hub.read("/v1/log/checkpoint").body;
    let size: u64 = checkpoint.lines().nth(1).unwrap().parse().unwrap();
    for index in 0..size {
        let entry = hub.read(&format!("/v1/log/entry/{index}")).bytes;
        out.push((format!("log entry {index}"), entry));
    }
    out
}

#[test]
fn the_hub_never_holds_a_file_name_or_any_content() {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    let islington = Party::new(&hub, "islington");
    let name = "pupils-eligible-for-fsm-QX7731.csv";
    let marker = "UPN-A123456789012-SURNAME-OKONKWO";
    // A small drop (its ciphertext a database row) and a large one (a file).
    let small = camden.file(name, format!("upn,surname\n{marker}\n"));
    let mut large_text = String::new();
    while large_text.len() < 300_000 {
        large_text.push_str(&format!("{marker},{}\n", large_text.len()));
    }
    let large_name = "ehc-plans-QX7731.csv";
    let large = camden.file(&format!("big/{large_name}"), &large_text);
    let first = camden.send("islington", &[&small]);
    camden.send("islington", &[&large]);
    // One fetched and acknowledged, one still waiting.
    islington.fetch(&first, &islington.work().join("in"));

    let held = everything_the_hub_holds(&hub);
    assert!(
        held.iter().any(|(n, _)| n.starts_with("data/blobs/")),
        "the large ciphertext is a file: {:?}",
        held.iter().map(|h| &h.0).collect::<Vec<_>>()
    );
    for needle in [name, large_name, "QX7731", marker, "OKONKWO", "surname"] {
        for (what, bytes) in &held {
            let found = bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
            assert!(!found, "{what} holds {needle:?}");
        }
    }
}
