//! Rate limits on the real hub: per source address for every request
//! (before any authentication work) and per party for signed requests,
//! answered `429` with `Retry-After`, the `rate_limited` code and a message
//! saying when to retry; the client says so in its one error line.
//! Short limits here (1 a second) keep the waits to a second.
//!
//! Behind a reverse proxy the client is the address the operator's trusted
//! proxy names in `X-Forwarded-For`; anyone else's header is ignored, and
//! loopback is limited like any other address unless the operator says not.

use std::io::Write as _;
use std::time::Duration;

use sealdrop_e2e::http::{self, Reply};
use sealdrop_e2e::{CutProxy, Hub, Party, member_key, raw};
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
fn loopback_is_limited_like_any_address_unless_the_operator_exempts_it() {
    // No blanket exemption: behind a reverse proxy the operator lists the
    // proxy in `trusted_proxies` instead (see the tests below).
    let tight = ["--rate-limit-per-address", "1", "--rate-limit-per-address-burst", "1"];
    let hub = Hub::start_with_options(&tight);
    assert_eq!(get(&hub, "/v1/info", None).0.status, 200);
    let (reply, retry_after) = get(&hub, "/v1/info", None);
    assert_limited(&reply, retry_after.as_deref(), "your address 127.0.0.1");
    // An older configuration may still exempt loopback, explicitly.
    let hub = Hub::start_with_options(&[&tight[..], &["--rate-limit-loopback", "exempt"]].concat());
    for _ in 0..10 {
        let (reply, _) = get(&hub, "/v1/info", None);
        assert_eq!(reply.status, 200, "{reply:?}");
    }
}

/// A GET of `path` sent by hand from the local address `from` to `addr`
/// (the hub, or a proxy in front of it), with extra `headers`.
fn get_from(from: &str, addr: &str, path: &str, headers: &[(&str, String)]) -> raw::Response {
    let mut conn = raw::connect_from(from, addr).unwrap_or_else(|e| panic!("connect from {from}: {e}"));
    conn.write_all(raw::head("GET", path, None, None, headers).as_bytes()).unwrap();
    raw::read_response(&mut conn).expect("an answer")
}

/// A refusal of the per-address limit naming `address`.
fn assert_limited_as(reply: &raw::Response, address: &str) {
    let message = reply.assert_error(429, "rate_limited");
    assert!(message.contains(&format!("your address {address} ")), "limited as someone else: {message}");
}

#[test]
fn a_forged_x_forwarded_for_from_an_untrusted_peer_is_not_believed() {
    let hub = Hub::start_with_options(&[
        "--rate-limit-per-address",
        "0.01",
        "--rate-limit-per-address-burst",
        "2",
        "--trusted-proxies",
        "127.0.0.2",
    ]);
    // An attacker at 127.0.5.1 claims to be someone new with every request.
    for forged in ["198.51.100.1", "198.51.100.2"] {
        let reply = get_from("127.0.5.1", &hub.addr, "/v1/info", &[("x-forwarded-for", forged.to_owned())]);
        assert_eq!(reply.status, 200, "{reply:?}");
    }
    let forged = [("x-forwarded-for", "198.51.100.3".to_owned())];
    assert_limited_as(&get_from("127.0.5.1", &hub.addr, "/v1/info", &forged), "127.0.5.1");
    // The addresses it named were never charged: from the trusted proxy,
    // the same header is believed, and that client is served.
    for _ in 0..2 {
        assert_eq!(get_from("127.0.0.2", &hub.addr, "/v1/info", &forged).status, 200);
    }
    assert_limited_as(&get_from("127.0.0.2", &hub.addr, "/v1/info", &forged), "198.51.100.3");
}

#[test]
fn behind_a_trusted_reverse_proxy_each_client_is_limited_on_its_own_and_real_clients_work() {
    let hub = Hub::start_with_options(&[
        "--rate-limit-per-address",
        "0.01",
        "--rate-limit-per-address-burst",
        "60",
        "--trusted-proxies",
        "127.0.0.2",
        "--max-connections-per-address",
        "1",
    ]);
    // The operator's proxy connects from 127.0.0.2 and appends each
    // client's address to X-Forwarded-For, as nginx does.
    let proxy = CutProxy::reverse_proxy(&hub.addr, "127.0.0.2");
    // Real clients through it (from 127.0.0.1): a send and a fetch. (The
    // proxy's connections, one per request, are not capped per address.)
    let camden = Party::with_url(&proxy.url, "camden");
    let islington = Party::with_url(&proxy.url, "islington");
    let id = camden.send("islington", &[&camden.file("fsm.csv", "upn,name\nA1,Ada\n")]);
    islington.fetch(&id, &islington.work());
    assert!(proxy.requests().iter().any(|r| r.line.starts_with("PUT /v1/drops/")), "the send went through the proxy");
    // A client at 127.0.6.1 spends its own allowance, and forging the
    // header through the proxy does not help it.
    for _ in 0..60 {
        assert_eq!(get_from("127.0.6.1", &proxy.addr, "/v1/info", &[]).status, 200);
    }
    let forged = [("x-forwarded-for", "198.51.100.9".to_owned())];
    assert_limited_as(&get_from("127.0.6.1", &proxy.addr, "/v1/info", &forged), "127.0.6.1");
    // Another client of the same proxy is served.
    assert_eq!(get_from("127.0.6.2", &proxy.addr, "/v1/info", &[]).status, 200);
}
