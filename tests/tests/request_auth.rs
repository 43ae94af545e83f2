//! Every request to the hub must be signed, fresh, unique, by a key in the
//! directory, over exactly the body sent.

use sealdrop_e2e::{AGREEMENT, Hub, http, member_key};
use sealdrop_proto::keys::NoteSigningKey;
use sealdrop_proto::request::sign_request;

const INBOX: &str = "/v1/inbox";

fn camden() -> NoteSigningKey {
    member_key("camden").signing
}

#[test]
fn a_correctly_signed_request_is_served() {
    let hub = Hub::start();
    let reply = http::signed_get(&hub.url, &camden(), INBOX);
    assert_eq!(reply.status, 200, "{reply:?}");
    let inbox: sealdrop_proto::api::Inbox =
        serde_json::from_str(&reply.body).unwrap_or_else(|e| panic!("not an Inbox ({e}): {reply:?}"));
    assert!(inbox.drops.is_empty());
}

#[test]
fn no_headers_is_unauthenticated() {
    let hub = Hub::start();
    http::send_with_auth(&hub.url, "GET", INBOX, None, None).assert_error(401, "unauthenticated");
}

#[test]
fn a_request_ten_minutes_old_is_stale() {
    let hub = Hub::start();
    http::signed_at(&hub.url, &camden(), "GET", INBOX, http::now() - 600, b"").assert_error(401, "stale_request");
    // The future is no better.
    http::signed_at(&hub.url, &camden(), "GET", INBOX, http::now() + 600, b"").assert_error(401, "stale_request");
}

#[test]
fn the_same_signed_request_twice_is_a_replay() {
    let hub = Hub::start();
    let auth = sign_request(&camden(), "GET", INBOX, http::now(), Some(b""));
    let first = http::send_with_auth(&hub.url, "GET", INBOX, Some(&auth), None);
    assert_eq!(first.status, 200, "{first:?}");
    http::send_with_auth(&hub.url, "GET", INBOX, Some(&auth), None).assert_error(401, "replayed_nonce");
}

#[test]
fn a_key_not_in_the_directory_is_unknown() {
    let hub = Hub::start();
    let stranger = NoteSigningKey::generate("camden/intruder").unwrap();
    http::signed_get(&hub.url, &stranger, INBOX).assert_error(401, "unknown_key");
    let nobody = NoteSigningKey::generate("nowhere/data-team").unwrap();
    http::signed_get(&hub.url, &nobody, INBOX).assert_error(401, "unknown_key");
}

#[test]
fn another_key_under_camdens_name_is_a_bad_signature() {
    let hub = Hub::start();
    let impostor = NoteSigningKey::generate(camden().name()).unwrap();
    assert_eq!(impostor.name(), "camden/data-team");
    http::signed_get(&hub.url, &impostor, INBOX).assert_error(401, "bad_signature");
}

#[test]
fn a_body_changed_after_signing_is_refused() {
    let hub = Hub::start();
    let expires = sealdrop_proto::Timestamp::now().as_second() + 86400;
    let body = |to: &str| {
        serde_json::to_vec(&serde_json::json!({
            "recipients": [to],
            "agreement": AGREEMENT,
            "expires": sealdrop_proto::Timestamp::from_second(expires).unwrap().to_string(),
        }))
        .unwrap()
    };
    let auth = sign_request(&camden(), "POST", "/v1/drops", http::now(), Some(&body("islington")));
    let reply = http::send_with_auth(&hub.url, "POST", "/v1/drops", Some(&auth), Some(body("hackney")));
    assert_eq!(reply.status, 401, "{reply:?}");
    let code = reply.code();
    assert!(
        matches!(code.as_deref(), Some("bad_signature" | "unauthenticated")),
        "expected bad_signature (or unauthenticated): {reply:?}"
    );

    // The control: the body that was signed is accepted.
    let auth = sign_request(&camden(), "POST", "/v1/drops", http::now(), Some(&body("islington")));
    let reply = http::send_with_auth(&hub.url, "POST", "/v1/drops", Some(&auth), Some(body("islington")));
    assert!((200..300).contains(&reply.status), "{reply:?}");
}

#[test]
fn a_signature_for_another_path_is_refused() {
    let hub = Hub::start();
    let auth = sign_request(&camden(), "GET", "/v1/sent", http::now(), Some(b""));
    http::send_with_auth(&hub.url, "GET", INBOX, Some(&auth), None).assert_error(401, "bad_signature");
}
