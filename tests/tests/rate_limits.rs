//! Rate limits on the real hub: per source address for every request
//! (before any authentication work) and per party for signed requests,
//! answered `429` with `Retry-After`, the `rate_limited` code and a message
//! saying when to retry; the client says so in its one error line.
//! Short limits here (1 a second) keep the waits to a second.

use std::time::Duration;

use sealdrop_e2e::http::{self, Reply};
use sealdrop_e2e::{Hub, Party, member_key};
use sealdrop_proto::keys::NoteSigningKey;
use sealdrop_proto::request::sign_request;

const INBOX: &str = "/v1/inbox";

/// Sends `auth`'s GET of `path`, returning the reply and its Retry-After.
fn get(hub: &Hub, path: &str, auth: Option<&sealdrop_proto::request::RequestAuth>) -> (Reply, Option<String>) {
    http::send_raw(&hub.url, "GET", path, auth, None, None)
}

fn signed(key: &NoteSigningKey, path: &str) -> sealdrop_proto::request::RequestAuth {
    sign_request(key, "GET", path, http::now(), Some(b""))
}

/// Asserts a 429 with the stable code, a Retry-After of whole seconds and a
/// message saying when to retry; returns the wait.
fn assert_limited(reply: &Reply, retry_after: Option<&str>, whom: &str) -> Duration {
    reply.assert_error(429, "rate_limited");
    let secs: u64 = retry_after
        .unwrap_or_else(|| panic!("a 429 without Retry-After: {reply:?}"))
        .parse()
        .unwrap_or_else(|e| panic!("Retry-After {retry_after:?} is not whole seconds ({e})"));
    assert!((1..=2).contains(&secs), "Retry-After {secs} for a limit of 1 a second");
    let message = json_message(reply);
    assert!(message.contains(whom), "the message does not say who is limited ({whom}): {message}");
    assert!(message.contains(&format!("retry after {secs} second")), "the message does not say when: {message}");
    Duration::from_secs(secs)
}

fn json_message(reply: &Reply) -> String {
    sealdrop_e2e::json(&reply.body)["error"]["message"].as_str().unwrap_or_default().to_owned()
}

#[test]
fn an_address_over_its_limit_is_refused_before_authentication_and_recovers() {
    let hub = Hub::start_with_options(&[
        "--rate-limit-loopback",
        "limit",
        "--rate-limit-per-address",
        "1",
        "--rate-limit-per-address-burst",
        "3",
        "--rate-limit-per-party",
        "0",
        "--metrics-listen",
        "127.0.0.1:0",
    ]);
    // The burst: unsigned requests are refused as unauthenticated, one by one.
    for _ in 0..3 {
        get(&hub, INBOX, None).0.assert_error(401, "unauthenticated");
    }
    let before = hub.snapshot();
    // Then the flood is cut off before any signature is looked at: an
    // unsigned request, one signed by a key nobody knows, a good one, a
    // public route and a path that is no route all get 429, and nothing
    // (not even a nonce) is recorded.
    let (reply, retry_after) = get(&hub, INBOX, None);
    let wait = assert_limited(&reply, retry_after.as_deref(), "your address 127.0.0.1");
    let stranger = NoteSigningKey::generate("camden/intruder").unwrap();
    let camden = member_key("camden").signing;
    let good = signed(&camden, INBOX);
    for (path, auth) in [(INBOX, Some(signed(&stranger, INBOX))), (INBOX, Some(good.clone())), ("/v1/info", None)] {
        let (reply, retry_after) = get(&hub, path, auth.as_ref());
        assert_limited(&reply, retry_after.as_deref(), "127.0.0.1");
    }
    let (reply, _) = get(&hub, "/v1/no-such-route", None);
    reply.assert_error(429, "rate_limited");
    assert!(hub.snapshot().changes_since(&before, &[]).is_empty(), "a refused request changed the hub");
    assert!(
        hub.scrape().lines().any(|l| l.starts_with("sealdrop_hub_errors_total{code=\"rate_limited\"}")),
        "the refusals are counted"
    );

    // After the wait the same address is served again, and the good
    // request refused above was not used up: it is served now.
    std::thread::sleep(wait);
    let (reply, _) = get(&hub, INBOX, Some(&good));
    assert_eq!(reply.status, 200, "{reply:?}");
}

#[test]
fn a_party_over_its_limit_is_refused_while_another_is_served() {
    let hub = Hub::start_with_options(&["--rate-limit-per-party", "1", "--rate-limit-per-party-burst", "3"]);
    let camden = member_key("camden").signing;
    let islington = member_key("islington").signing;
    for _ in 0..3 {
        assert_eq!(get(&hub, INBOX, Some(&signed(&camden, INBOX))).0.status, 200);
    }
    let refused = signed(&camden, INBOX);
    let before = hub.snapshot();
    let (reply, retry_after) = get(&hub, INBOX, Some(&refused));
    let wait = assert_limited(&reply, retry_after.as_deref(), "your party `camden`");
    assert!(hub.snapshot().changes_since(&before, &[]).is_empty(), "the refused request used its nonce");
    // Another party, from the same address, is not affected.
    for _ in 0..3 {
        assert_eq!(get(&hub, INBOX, Some(&signed(&islington, INBOX))).0.status, 200);
    }
    // Unsigned (public) requests do not count against a party.
    assert_eq!(get(&hub, "/v1/info", None).0.status, 200);

    // After the wait, camden is served again: even the very request that
    // was refused (its nonce was never used).
    std::thread::sleep(wait);
    let (reply, _) = get(&hub, INBOX, Some(&refused));
    assert_eq!(reply.status, 200, "{reply:?}");
}

#[test]
fn the_client_says_it_is_rate_limited_and_when_to_retry() {
    // One request a minute after a burst of 3, so the client surely meets
    // the limit: a command's session signs its reads of the directory and
    // the log's checkpoint, and then the command's own request.
    let hub = Hub::start_with_options(&["--rate-limit-per-party", "0.0166", "--rate-limit-per-party-burst", "3"]);
    let camden = Party::new(&hub, "camden");
    assert!(camden.inbox().is_empty());
    let stderr = camden.fail_with(["inbox"], 6, "rate_limited");
    assert!(stderr.contains("your party `camden`"), "{stderr}");
    let wait: u64 = stderr
        .split("retry after ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the error does not say when to retry: {stderr}"));
    assert!((55..=61).contains(&wait), "retry after {wait} seconds at one request a minute: {stderr}");
    // Another party is served meanwhile.
    assert!(Party::new(&hub, "islington").inbox().is_empty());
}

#[test]
fn loopback_is_exempt_from_the_address_limit_by_default() {
    // Behind a reverse proxy on the same machine every request comes from
    // loopback: only the per-party limit applies to it unless asked.
    let hub = Hub::start_with_options(&["--rate-limit-per-address", "1", "--rate-limit-per-address-burst", "1"]);
    for _ in 0..10 {
        let (reply, _) = get(&hub, "/v1/info", None);
        assert_eq!(reply.status, 200, "{reply:?}");
    }
}
