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
