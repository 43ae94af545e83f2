//! A small drop in one request (`PUT /v1/drops/{id}`) on a real hub served
//! on 127.0.0.1:0: it is committed, logged and fetchable as a three-step
//! drop is, a re-run gets the same commit back, and every attack the
//! three steps refuse is refused here too, leaving nothing behind (no rows,
//! no files, no log entry).

mod common;

use jiff::Timestamp;
use reqwest::Method;
use sealdrop_hub::Hub;
use sealdrop_proto::api::{
    CreatedDrop, DropDetails, DropState, Inbox, PUT_DROP_CONTENT_TYPE, Uploaded, code, put_drop_body,
};
use sealdrop_proto::directory::SignedDirectory;
use sealdrop_proto::drop::Manifest;
use sealdrop_proto::ids::DropId;
use sealdrop_proto::keys::MemberSecretKey;
use sealdrop_proto::note::sign_doc;
use sealdrop_proto::request::{MAX_CLOCK_SKEW_SECS, sign_request};

use common::{DAY, Keys, World, err, inner_fsm, ok, party};

impl Keys {
    fn put_directory(&self) -> SignedDirectory {
        let parties = vec![
            party(&[&self.camden], vec![]),
            party(&[&self.islington, &self.islington2], vec![]),
            party(&[&self.hackney], vec![]),
            party(&[&self.barnet], vec![]),
        ];
        SignedDirectory::sign(common::directory(1, parties, vec![inner_fsm()]), &self.authority).unwrap()
    }
}

impl World {
    async fn start_put(configure: impl FnOnce(Hub) -> Hub) -> World {
        World::launch(|keys| keys.put_directory().note, configure).await
    }

    fn dir(&self) -> sealdrop_proto::directory::Directory {
        self.keys.put_directory().directory
    }

    fn ciphertext(&self, recipients: &[&str], len: usize) -> Vec<u8> {
        common::ciphertext(&self.dir(), recipients, len)
    }

    /// The manifest of drop `id` from `sender`, created now and expiring in
    /// `expires_in` seconds.
    fn put_manifest(&self, sender: &MemberSecretKey, id: &DropId, recipients: &[&str], data: &[u8]) -> Manifest {
        let created = Timestamp::from_second(self.now()).unwrap();
        let drop = CreatedDrop {
            id: id.clone(),
            created,
            expires: Timestamp::from_second(self.now() + 7 * DAY).unwrap(),
            committed: None,
        };
        common::manifest(&self.dir(), sender, &drop, recipients, data)
    }

    /// `PUT /v1/drops/{id}` of `manifest` signed by `signer` and `data`, as `key`.
    async fn put_signed_by(
        &self,
        key: &MemberSecretKey,
        signer: &MemberSecretKey,
        id: &DropId,
        manifest: &Manifest,
        data: &[u8],
        query: &str,
    ) -> reqwest::Response {
        let body = put_drop_body(&sign_doc(manifest, &signer.signing), data);
        self.put_body(key, &format!("/v1/drops/{id}{query}"), body, PUT_DROP_CONTENT_TYPE).await
    }

    async fn put(&self, key: &MemberSecretKey, id: &DropId, manifest: &Manifest, data: &[u8]) -> reqwest::Response {
        self.put_signed_by(key, key, id, manifest, data, "").await
    }

    async fn put_body(
        &self,
        key: &MemberSecretKey,
        path: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> reqwest::Response {
        let auth = sign_request(&key.signing, "PUT", path, self.now(), Some(&body));
        let mut req =
            self.client.request(Method::PUT, format!("{}{path}", self.base)).header("content-type", content_type);
        for (name, value) in auth.headers() {
            req = req.header(name, value);
        }
        req.body(body).send().await.unwrap()
    }

    async fn log_size(&self) -> u64 {
        let note = self.read("/v1/log/checkpoint").await.text().await.unwrap();
        sealdrop_log::checkpoint::open(&note, &self.hub().log_verifier()).unwrap().size
    }

    async fn inbox(&self, key: &MemberSecretKey) -> Vec<DropId> {
        let inbox: Inbox = ok(self.get(key, "/v1/inbox").await).await;
        inbox.drops.into_iter().map(|d| d.id).collect()
    }

    /// Asserts drop `id` left nothing behind: no rows, no files, no entry.
    async fn nothing_of(&self, id: &DropId, log_size: u64) {
        err(self.get(&self.keys.camden, &format!("/v1/drops/{id}")).await, 404, code::NOT_FOUND).await;
        assert!(!self.has_blob(id) && !self.has_upload(id), "drop {id} left a file");
        assert_eq!(self.inline_stage(id), None, "drop {id} left an inline ciphertext");
        assert_eq!(self.log_size().await, log_size, "a refused drop was logged");
        assert!(self.inbox(&self.keys.islington).await.iter().all(|d| d != id));
    }
}

#[tokio::test]
async fn a_small_drop_in_one_request_is_committed_logged_and_fetchable() {
    let mut w = World::start_put(|hub| hub).await;
    let (camden, islington, hackney) = (&w.keys.camden, &w.keys.islington, &w.keys.hackney);
    let data = w.ciphertext(&["islington", "hackney"], 34_510);
    let id = DropId::random();
    let manifest = w.put_manifest(camden, &id, &["islington", "hackney"], &data);
    let before = w.log_size().await;

    let committed: sealdrop_proto::api::Committed =
        ok(w.put_signed_by(camden, camden, &id, &manifest, &data, &format!("?known_size={before}")).await).await;
    assert_eq!((&committed.id, committed.already), (&id, false));
    assert_eq!(committed.committed.as_second(), w.now());
    assert_eq!(committed.log_index, before, "the drop_committed entry is the next one");
    let proof = committed.proof.expect("the answer carries the receipt");
    let consistency = proof.consistency.expect("a consistency proof from the known size");
    assert_eq!((consistency.old, consistency.new), (before, before + 1));
    assert_eq!(w.log_size().await, before + 1, "one entry");

    // What a three-step drop looks like: in both inboxes, the same bytes, its manifest.
    assert_eq!(w.inbox(islington).await, vec![id.clone()]);
    assert_eq!(w.inbox(hackney).await, vec![id.clone()]);
    assert_eq!(w.download(islington, &id).await, data);
    let details: DropDetails = ok(w.get(islington, &format!("/v1/drops/{id}")).await).await;
    assert_eq!(details.state, DropState::Committed);
    assert_eq!(details.manifest, sign_doc(&manifest, &camden.signing));

    // A re-run (a lost answer): the same commit, nothing new stored or logged.
    let before = w.log_size().await;
    w.advance(30);
    let again: sealdrop_proto::api::Committed = ok(w.put(camden, &id, &manifest, &data).await).await;
    assert!(again.already);
    assert_eq!((again.committed, again.log_index), (committed.committed, committed.log_index));
    assert!(again.proof.is_some());
    assert_eq!(w.log_size().await, before, "a re-run logs nothing");
    w.audit_passes().await;
    w.stop().await;
}

#[tokio::test]
async fn every_attack_on_one_request_is_refused_and_leaves_nothing() {
    let mut w = World::start_put(|hub| hub).await;
    let (camden, islington, hackney) = (&w.keys.camden, &w.keys.islington, &w.keys.hackney);
    let data = w.ciphertext(&["islington"], 2000);
    let size = w.log_size().await;

    // A manifest whose `drop` is not the id in the path.
    let id = DropId::random();
    let other = w.put_manifest(camden, &DropId::random(), &["islington"], &data);
    let msg = err(w.put(camden, &id, &other, &data).await, 422, code::BAD_MANIFEST).await;
    assert!(msg.contains("`drop`"), "{msg}");
    w.nothing_of(&id, size).await;

    // `created` outside the clock skew, either way.
    for skew in [MAX_CLOCK_SKEW_SECS + 1, -MAX_CLOCK_SKEW_SECS - 1] {
        let mut m = w.put_manifest(camden, &id, &["islington"], &data);
        m.created = Timestamp::from_second(w.now() + skew).unwrap();
        m.expires = Timestamp::from_second(m.created.as_second() + DAY).unwrap();
        let msg = err(w.put(camden, &id, &m, &data).await, 422, code::BAD_MANIFEST).await;
        assert!(msg.contains("`created`"), "{msg}");
    }
    w.nothing_of(&id, size).await;

    // An expiry one second past the agreement's longest wait (14 days), which
    // a create would trim: refused, as the manifest is signed already.
    let mut m = w.put_manifest(camden, &id, &["islington"], &data);
    m.expires = Timestamp::from_second(w.now() + 14 * DAY + 1).unwrap();
    err(w.put(camden, &id, &m, &data).await, 422, code::BAD_EXPIRY).await;
    // Exactly the longest wait passes the expiry check (and is sent below).
    w.nothing_of(&id, size).await;

    // The ciphertext is not what the manifest names: other bytes, one byte short.
    let m = w.put_manifest(camden, &id, &["islington"], &data);
    let mut flipped = data.clone();
    *flipped.last_mut().unwrap() ^= 1;
    err(w.put(camden, &id, &m, &flipped).await, 422, code::HASH_MISMATCH).await;
    err(w.put(camden, &id, &m, &data[..data.len() - 1]).await, 422, code::HASH_MISMATCH).await;
    w.nothing_of(&id, size).await;

    // An age header with a stanza for a key the manifest does not list.
    let readable_by_more = w.ciphertext(&["islington", "hackney"], 2000);
    let m2 = w.put_manifest(camden, &id, &["islington"], &readable_by_more);
    err(w.put(camden, &id, &m2, &readable_by_more).await, 422, code::HEADER_MISMATCH).await;
    w.nothing_of(&id, size).await;

    // A manifest signed by another party's member, sent by camden.
    let msg = err(w.put_signed_by(camden, hackney, &id, &m, &data, "").await, 422, code::BAD_MANIFEST).await;
    assert!(msg.contains("camden/data-team"), "{msg}");
    // A recipient outside the agreement (barnet), with a manifest that names it.
    let barnet_data = w.ciphertext(&["barnet"], 2000);
    let to_barnet = w.put_manifest(camden, &id, &["barnet"], &barnet_data);
    err(w.put(camden, &id, &to_barnet, &barnet_data).await, 422, code::NOT_IN_AGREEMENT).await;
    // Another content type, a body cut short, a bad query.
    let body = put_drop_body(&sign_doc(&m, &camden.signing), &data);
    let path = format!("/v1/drops/{id}");
    err(w.put_body(camden, &path, body.clone(), "application/octet-stream").await, 400, code::BAD_REQUEST).await;
    err(w.put_body(camden, &path, body[..10].to_vec(), PUT_DROP_CONTENT_TYPE).await, 400, code::BAD_REQUEST).await;
    let bad_query = format!("{path}?known_size=lots");
    err(w.put_body(camden, &bad_query, body.clone(), PUT_DROP_CONTENT_TYPE).await, 400, code::BAD_REQUEST).await;
    w.nothing_of(&id, size).await;

    // A replayed request: the same signed request twice is served once.
    let auth = sign_request(&camden.signing, "PUT", &path, w.now(), Some(&body));
    let send = || {
        let mut req =
            w.client.request(Method::PUT, format!("{}{path}", w.base)).header("content-type", PUT_DROP_CONTENT_TYPE);
        for (name, value) in auth.headers() {
            req = req.header(name, value);
        }
        req.body(body.clone()).send()
    };
    let first: sealdrop_proto::api::Committed = ok(send().await.unwrap()).await;
    assert!(!first.already);
    err(send().await.unwrap(), 401, code::REPLAYED_NONCE).await;
    assert_eq!(w.log_size().await, size + 1);

    // The id reused with another manifest (another ciphertext), by the
    // sender or by anyone else: drop_exists, and the drop is untouched.
    let data2 = w.ciphertext(&["islington"], 2100);
    let m3 = w.put_manifest(camden, &id, &["islington"], &data2);
    err(w.put(camden, &id, &m3, &data2).await, 409, code::DROP_EXISTS).await;
    let theirs = w.put_manifest(hackney, &id, &["islington"], &data2);
    err(w.put(hackney, &id, &theirs, &data2).await, 409, code::DROP_EXISTS).await;
    assert_eq!(w.log_size().await, size + 1);
    assert_eq!(w.download(islington, &id).await, data);

    // The id of a drop being sent in three steps.
    let open: CreatedDrop = w.created(camden, &["islington"]).await;
    let _: Uploaded = ok(w.upload(camden, &open.id, &data).await).await;
    let m4 = w.put_manifest(camden, &open.id, &["islington"], &data);
    err(w.put(camden, &open.id, &m4, &data).await, 409, code::CONFLICT).await;
    assert!(w.has_upload(&open.id) || w.inline_stage(&open.id).is_some(), "the open drop's upload is untouched");

    // The longest expiry the agreement allows goes through.
    let id2 = DropId::random();
    let mut longest = w.put_manifest(camden, &id2, &["islington"], &data);
    longest.expires = Timestamp::from_second(w.now() + 14 * DAY).unwrap();
    let _: sealdrop_proto::api::Committed = ok(w.put(camden, &id2, &longest, &data).await).await;
    w.audit_passes().await;
    w.stop().await;
}

#[tokio::test]
async fn a_body_over_the_cap_is_refused_before_it_is_read() {
    let mut w = World::start_put(|hub| hub.with_max_single_request_bytes(4096)).await;
    let camden = &w.keys.camden;
    let size = w.log_size().await;
    let id = DropId::random();
    let big = w.ciphertext(&["islington"], 4097);
    let m = w.put_manifest(camden, &id, &["islington"], &big);
    let msg = err(w.put(camden, &id, &m, &big).await, 413, code::TOO_LARGE_FOR_ONE_REQUEST).await;
    assert!(msg.contains("4096") && msg.contains("three requests"), "{msg}");
    w.nothing_of(&id, size).await;

    // Declared far past the cap: answered without waiting for the body,
    // which never comes.
    let path = format!("/v1/drops/{id}");
    let auth = sign_request(&camden.signing, "PUT", &path, w.now(), None);
    let mut head = format!(
        "PUT {path} HTTP/1.1\r\nhost: x\r\ncontent-type: {PUT_DROP_CONTENT_TYPE}\r\ncontent-length: 100000000\r\n"
    );
    for (name, value) in auth.headers() {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let addr = w.base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read(&mut answer))
        .await
        .expect("the hub answers before the body arrives")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains(code::TOO_LARGE_FOR_ONE_REQUEST), "{answer}");

    // At the cap is fine.
    let fits = w.ciphertext(&["islington"], 4096);
    let m = w.put_manifest(camden, &id, &["islington"], &fits);
    let _: sealdrop_proto::api::Committed = ok(w.put(camden, &id, &m, &fits).await).await;
    w.stop().await;
}

/// A one-request body is held in memory until it is answered, so slow
/// senders must not be able to make the hub hold the connection cap times
/// the cap: past the hub's budget for such bodies a drop is answered
/// `too_large_for_one_request` at once (the client then streams it in three
/// requests), and the budget comes back when the slow body's request ends.
#[tokio::test]
async fn slow_one_request_bodies_cannot_hold_more_memory_than_the_budget() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    const BUDGET: u64 = 8 * 1024;
    let mut w = World::start_put(|hub| hub.with_max_single_request_bytes(4096).with_one_request_memory(BUDGET)).await;
    let camden = &w.keys.camden;
    let addr = w.base.trim_start_matches("http://").to_owned();
    // A sender that declares the whole budget and sends its body slowly
    // (here: the first bytes, then nothing).
    let open_slow = || async {
        let path = format!("/v1/drops/{}", DropId::random());
        let auth = sign_request(&camden.signing, "PUT", &path, w.now(), None);
        let mut head = format!(
            "PUT {path} HTTP/1.1\r\nhost: x\r\ncontent-type: {PUT_DROP_CONTENT_TYPE}\r\ncontent-length: {BUDGET}\r\n"
        );
        for (name, value) in auth.headers() {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
        slow.write_all(head.as_bytes()).await.unwrap();
        slow.write_all(&[0, 0]).await.unwrap();
        slow
    };
    // Whether the hub answered the slow sender (it was turned away because
    // a drop below held part of the budget when it arrived).
    let answered = |slow: &mut tokio::net::TcpStream| {
        let mut byte = [0u8; 1];
        matches!(slow.try_read(&mut byte), Ok(n) if n > 0)
    };
    let mut slow = open_slow().await;

    // Once the hub holds the slow body's share, another drop in one
    // request is turned away at once, whatever its size.
    let data = w.ciphertext(&["islington"], 1000);
    let started = std::time::Instant::now();
    let (id, msg) = loop {
        let id = DropId::random();
        let m = w.put_manifest(camden, &id, &["islington"], &data);
        let resp = w.put(camden, &id, &m, &data).await;
        if resp.status().as_u16() == 413 {
            break (id, err(resp, 413, code::TOO_LARGE_FOR_ONE_REQUEST).await);
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(20), "the slow body never took the budget");
        if answered(&mut slow) {
            slow = open_slow().await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(msg.contains("memory") && msg.contains("three requests"), "{msg}");
    let size = w.log_size().await;
    w.nothing_of(&id, size).await;
    let mut nothing = [0u8; 1];
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(200), slow.read(&mut nothing)).await.is_err(),
        "the slow sender is still being waited for"
    );

    // The slow sender goes away: its share comes back, and drops go in one
    // request again.
    drop(slow);
    let started = std::time::Instant::now();
    loop {
        let id = DropId::random();
        let m = w.put_manifest(camden, &id, &["islington"], &data);
        let resp = w.put(camden, &id, &m, &data).await;
        if resp.status().is_success() {
            break;
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(10), "the budget never came back");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    w.stop().await;
}

#[tokio::test]
async fn a_cap_of_zero_sends_every_drop_in_three_requests() {
    let mut w = World::start_put(|hub| hub.with_max_single_request_bytes(0)).await;
    let camden = &w.keys.camden;
    let id = DropId::random();
    let data = w.ciphertext(&["islington"], 1000);
    let m = w.put_manifest(camden, &id, &["islington"], &data);
    err(w.put(camden, &id, &m, &data).await, 413, code::TOO_LARGE_FOR_ONE_REQUEST).await;
    w.stop().await;
}

#[tokio::test]
async fn an_idempotency_key_spans_one_request_and_the_three_steps() {
    let mut w = World::start_put(|hub| hub).await;
    let camden = &w.keys.camden;
    let key = "3c".repeat(32);
    let data = w.ciphertext(&["islington"], 1500);

    // A three-step run cut off after its upload, then a run in one request:
    // the open drop is replaced, and the one request commits.
    let create = sealdrop_proto::api::CreateDrop {
        recipients: vec!["islington".parse().unwrap()],
        agreement: "inner-fsm".into(),
        expires: Timestamp::from_second(w.now() + DAY).unwrap(),
        idempotency_key: Some(key.clone()),
    };
    let open: CreatedDrop = ok(w.post(camden, "/v1/drops", &create).await).await;
    let _: Uploaded = ok(w.upload(camden, &open.id, &data).await).await;
    let id = DropId::random();
    let m = w.put_manifest(camden, &id, &["islington"], &data);
    let query = format!("?idempotency_key={key}");
    let _: sealdrop_proto::api::Committed = ok(w.put_signed_by(camden, camden, &id, &m, &data, &query).await).await;
    err(w.get(camden, &format!("/v1/drops/{}", open.id)).await, 404, code::NOT_FOUND).await;
    assert!(!w.has_upload(&open.id) && w.inline_stage(&open.id).is_none(), "the replaced upload is gone");

    // A re-run by the three steps finds it committed; one in one request
    // under another id is refused and sends nothing.
    let again: CreatedDrop = ok(w.post(camden, "/v1/drops", &create).await).await;
    assert_eq!((&again.id, again.committed.is_some()), (&id, true));
    let size = w.log_size().await;
    let other = DropId::random();
    let m2 = w.put_manifest(camden, &other, &["islington"], &data);
    let msg = err(w.put_signed_by(camden, camden, &other, &m2, &data, &query).await, 409, code::DROP_EXISTS).await;
    assert!(msg.contains(id.as_str()), "{msg}");
    w.nothing_of(&other, size).await;
    err(w.put_signed_by(camden, camden, &other, &m2, &data, "?idempotency_key=XYZ").await, 400, code::BAD_REQUEST)
        .await;
    w.stop().await;
}
