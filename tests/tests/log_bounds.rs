//! The transfer log stays bounded and honest against a member who signs
//! requests by hand: an acknowledgement with no download behind it is
//! refused, and a loop of 1-byte ranged downloads grows the permanent log
//! by at most the bound, while the real client's fetch, resumed or not,
//! works within it and `audit verify` still shows every logged download.

use std::ffi::OsStr;

use sealdrop_e2e::{Hub, Party, http, json, member_key, read_text, recipient_status};
use sealdrop_log::policy::MAX_DOWNLOADS_PER_PARTY;
use sealdrop_proto::drop::Receipt;
use sealdrop_proto::note::sign_doc;

/// The ciphertext's SHA-256 and length, as the sender's status and journal state them.
fn ciphertext_of(sender: &Party, id: &str) -> (String, u64) {
    let journal = sender.journal();
    let sent = journal.iter().find(|e| e["event"] == "sent" && e["drop"] == id).expect("the send is journalled");
    (sent["ciphertext_sha256"].as_str().unwrap().to_owned(), sent["ciphertext_len"].as_u64().unwrap())
}

#[test]
fn a_hand_signed_acknowledgement_without_a_download_is_refused() {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    let islington = Party::new(&hub, "islington");
    let id = camden.send("islington", &[&camden.file("fsm.csv", "upn\nA1\n")]);
    let (sha256, len) = ciphertext_of(&camden, &id);

    // Islington's member signs a perfectly valid receipt for the exact
    // bytes, without ever downloading them, and posts it by hand.
    let key = member_key("islington");
    let receipt = Receipt {
        drop: id.parse().unwrap(),
        recipient: key.party.clone(),
        member: key.member.clone(),
        ciphertext_sha256: sha256,
        ciphertext_len: len,
        received: sealdrop_proto::Timestamp::from_second(http::now()).unwrap(),
    };
    let body = serde_json::json!({ "receipt": sign_doc(&receipt, &key.signing) }).to_string();
    let before = hub.snapshot();
    let reply =
        http::signed_at(&hub.url, &key.signing, "POST", &format!("/v1/drops/{id}/ack"), http::now(), body.as_bytes());
    reply.assert_error(409, "not_downloaded");
    assert!(reply.body.contains("fetch it first"), "{reply:?}");
    // Nothing changed but the request's nonce: no entry, no acknowledgement.
    assert_eq!(hub.snapshot().changes_since(&before, &["nonces"]), Vec::<String>::new());

    // The sender is told the truth: nobody acknowledged.
    let d = camden.status_of(&id);
    assert_eq!(recipient_status(&d, "islington")["outcome"], "waiting", "{d}");
    // The real client downloads, then acknowledges, and all is well.
    islington.fetch(&id, &islington.work());
    assert_eq!(read_text(&islington.work().join("fsm.csv")), "upn\nA1\n");
    assert_eq!(recipient_status(&camden.status_of(&id), "islington")["outcome"], "acknowledged");
    assert_eq!(json(&camden.ok(["audit", "verify", "--json"]))["verified"], true);
}

/// A `GET` of `path` with `Range: bytes=n-n`, signed by hand by `key`.
fn one_byte(hub: &Hub, key: &sealdrop_proto::keys::NoteSigningKey, path: &str, n: u64) -> http::Reply {
    let auth = sealdrop_proto::request::sign_request(key, "GET", path, http::now(), Some(b""));
    let mut req = http::client().get(format!("{}{path}", hub.url)).header("range", format!("bytes={n}-{n}"));
    for (name, value) in auth.headers() {
        req = req.header(name, value);
    }
    http::Reply::from(req.send())
}

#[test]
fn a_loop_of_one_byte_ranged_downloads_grows_the_log_by_at_most_the_bound() {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    let islington = Party::new(&hub, "islington");
    let hackney = Party::new(&hub, "hackney");
    let file = camden.file("fsm.csv", "upn,name\nA1,Ada\n");
    let args = [OsStr::new("send"), "--to".as_ref(), "islington,hackney".as_ref(), file.as_os_str()];
    let id = camden.ok(args).trim().to_owned();
    let path = format!("/v1/drops/{id}/content");

    // Within the bound, the real client still fetches: islington's member
    // takes all but one download by hand, and `sealdrop fetch` the last.
    let islington_key = member_key("islington").signing;
    for n in 0..MAX_DOWNLOADS_PER_PARTY - 1 {
        let reply = one_byte(&hub, &islington_key, &path, n);
        assert_eq!((reply.status, reply.bytes.len()), (206, 1), "download {n}: {reply:?}");
    }
    islington.fetch(&id, &islington.work());
    assert_eq!(read_text(&islington.work().join("fsm.csv")), "upn,name\nA1,Ada\n");

    // Hackney's member loops over 1-byte ranges, signing each request by hand.
    let hackney_key = member_key("hackney").signing;
    let before = hub.snapshot().log_size();
    let mut refused = 0;
    for n in 0..3 * MAX_DOWNLOADS_PER_PARTY {
        let reply = one_byte(&hub, &hackney_key, &path, n);
        if n < MAX_DOWNLOADS_PER_PARTY {
            assert_eq!((reply.status, reply.bytes.len()), (206, 1), "download {n}: {reply:?}");
        } else {
            reply.assert_error(409, "download_limit");
            assert!(reply.body.contains("ask the sender to send it again"), "{reply:?}");
            refused += 1;
        }
    }
    assert_eq!(refused, 2 * MAX_DOWNLOADS_PER_PARTY);
    let grown = hub.snapshot().log_size() - before;
    assert_eq!(grown as u64, MAX_DOWNLOADS_PER_PARTY, "the log grew by the bound, not by every request");

    // The real client is then refused the same way, with a clear error, and nothing is written.
    let landing = hackney.work().join("in");
    std::fs::create_dir_all(&landing).unwrap();
    let args = [OsStr::new("fetch"), OsStr::new(&id), "-o".as_ref(), landing.as_os_str()];
    let stderr = hackney.fail_with(args, 6, "download_limit");
    assert!(stderr.contains("10 times") && stderr.contains("ask the sender to send it again"), "{stderr}");
    assert!(sealdrop_e2e::tree(&landing).is_empty());
    assert_eq!(hub.snapshot().log_size() - before, grown, "nor is the refusal logged");

    // The audit still shows every logged download, and the log passes.
    let audit = json(&camden.ok(["audit", "verify", "--json"]));
    assert_eq!(audit["verified"], true, "{audit}");
    assert_eq!(audit["fetches"].as_u64(), Some(2 * MAX_DOWNLOADS_PER_PARTY), "{audit}");
    let d = camden.status_of(&id);
    assert_eq!(recipient_status(&d, "islington")["outcome"], "acknowledged");
    assert_eq!(recipient_status(&d, "hackney")["outcome"], "fetched");
}
