//! Resumable downloads: `GET /v1/drops/{id}/content` with one HTTP range,
//! on a real hub served on 127.0.0.1:0 with a clock the tests move by hand.
//! A ranged download gets the asked bytes with 206 and `Content-Range`,
//! passes every check a full one does, and is logged like one; a range the
//! hub cannot serve gets 416 `bad_range`.

mod common;

use reqwest::{Method, StatusCode};
use sealdrop_log::entry::LogEntry;
use sealdrop_proto::api::{Acked, Commit, Committed, CreatedDrop, Sent, Uploaded, code};
use sealdrop_proto::directory::SignedDirectory;
use sealdrop_proto::ids::DropId;
use sealdrop_proto::keys::MemberSecretKey;
use sealdrop_proto::note::sign_doc;
use sealdrop_proto::request::sign_request;

use common::{DAY, Keys, World, err, inner_fsm, ok, party};

/// Camden, islington, hackney and barnet; `inner-fsm` between the first three.
impl Keys {
    fn range_directory(&self) -> SignedDirectory {
        let parties = vec![
            party(&[&self.camden], vec![]),
            party(&[&self.islington], vec![]),
            party(&[&self.hackney], vec![]),
            party(&[&self.barnet], vec![]),
        ];
        SignedDirectory::sign(common::directory(1, parties, vec![inner_fsm()]), &self.authority).unwrap()
    }
}

impl World {
    /// Bytes shaped like a drop's ciphertext to `recipients` (see [`common::ciphertext`]).
    fn ciphertext(&self, recipients: &[&str], len: usize) -> Vec<u8> {
        common::ciphertext(&self.keys.range_directory().directory, recipients, len)
    }

    async fn start_range() -> World {
        World::launch(|keys| keys.range_directory().note, |hub| hub).await
    }

    /// Creates, uploads and commits a drop from camden, expiring in 7 days.
    async fn send_to(&self, recipients: &[&str], data: &[u8]) -> CreatedDrop {
        let camden = &self.keys.camden;
        let drop = self.created(camden, recipients).await;
        let _: Uploaded = ok(self.upload(camden, &drop.id, data).await).await;
        let manifest = common::manifest(&self.keys.range_directory().directory, camden, &drop, recipients, data);
        let body = Commit { manifest: sign_doc(&manifest, &camden.signing), known_size: None };
        let _: Committed = ok(self.post(camden, &format!("/v1/drops/{}/commit", drop.id), &body).await).await;
        drop
    }

    /// A signed `GET` of the drop's content with these `Range` headers.
    async fn get_ranges(&self, key: &MemberSecretKey, id: &DropId, ranges: &[&str]) -> reqwest::Response {
        let path = format!("/v1/drops/{id}/content");
        let auth = sign_request(&key.signing, "GET", &path, self.now(), Some(b""));
        let mut req = self.client.request(Method::GET, format!("{}{path}", self.base));
        for (name, value) in auth.headers() {
            req = req.header(name, value);
        }
        for range in ranges {
            req = req.header(reqwest::header::RANGE, *range);
        }
        req.send().await.unwrap()
    }

    async fn get_range(&self, key: &MemberSecretKey, id: &DropId, range: &str) -> reqwest::Response {
        self.get_ranges(key, id, &[range]).await
    }

    /// The `drop_fetched` entries of the log, as (drop, party, signed path).
    async fn fetches(&self) -> Vec<(DropId, String, String)> {
        self.all_entry_bytes()
            .await
            .iter()
            .filter_map(|b| match LogEntry::from_bytes(b).unwrap() {
                LogEntry::DropFetched { drop, party, request, .. } => Some((drop, party.to_string(), request.path)),
                _ => None,
            })
            .collect()
    }
}

/// Asserts a 206 answer carries exactly `data[start..=end]` of `total` bytes.
async fn assert_partial(resp: reqwest::Response, data: &[u8], start: usize, end: usize) {
    assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT, "bytes {start}-{end}");
    let headers = resp.headers().clone();
    assert_eq!(headers["content-range"], format!("bytes {start}-{end}/{}", data.len()).as_str());
    assert_eq!(headers["content-length"], (end - start + 1).to_string().as_str());
    assert_eq!(headers["accept-ranges"], "bytes");
    assert_eq!(headers["content-type"], "application/octet-stream");
    assert_eq!(headers["cache-control"], "no-store");
    let body = resp.bytes().await.unwrap();
    assert!(body.as_ref() == &data[start..=end], "bytes {start}-{end}: got {} other bytes", body.len());
}

/// Asserts a 416 `bad_range` answer naming the ciphertext's length.
async fn assert_refused(resp: reqwest::Response, total: usize) -> String {
    assert_eq!(
        resp.headers().get("content-range").map(|v| v.to_str().unwrap()),
        Some(format!("bytes */{total}").as_str())
    );
    err(resp, 416, code::RANGE_NOT_SATISFIABLE).await
}

#[tokio::test]
async fn range_serves_the_asked_bytes_with_206() {
    let mut w = World::start_range().await;
    let islington = &w.keys.islington;
    let data = w.ciphertext(&["islington"], 300 * 1024 + 17);
    let len = data.len();
    let drop = w.send_to(&["islington"], &data).await;

    // A full download says ranges are served.
    let full = w.get(islington, &format!("/v1/drops/{}/content", drop.id)).await;
    assert_eq!(full.status(), StatusCode::OK);
    assert_eq!(full.headers()["accept-ranges"], "bytes");
    assert_eq!(full.headers()["content-length"], len.to_string().as_str());
    assert!(full.headers().get("content-range").is_none());
    assert!(full.bytes().await.unwrap().as_ref() == data.as_slice());

    // From a byte to the end, the way a client resumes.
    assert_partial(w.get_range(islington, &drop.id, "bytes=100000-").await, &data, 100_000, len - 1).await;
    assert_partial(w.get_range(islington, &drop.id, &format!("bytes={}-", len - 1)).await, &data, len - 1, len - 1)
        .await;
    assert_partial(w.get_range(islington, &drop.id, "bytes=0-").await, &data, 0, len - 1).await;
    // A closed range, one byte, and an end past the last byte (cut to it).
    assert_partial(w.get_range(islington, &drop.id, "bytes=65536-131071").await, &data, 65_536, 131_071).await;
    assert_partial(w.get_range(islington, &drop.id, "bytes=7-7").await, &data, 7, 7).await;
    assert_partial(
        w.get_range(islington, &drop.id, &format!("bytes=300000-{}", len * 2)).await,
        &data,
        300_000,
        len - 1,
    )
    .await;
    // The last N bytes.
    assert_partial(w.get_range(islington, &drop.id, "bytes=-1000").await, &data, len - 1000, len - 1).await;

    // A recipient that only ever downloaded ranges may acknowledge as usual.
    let acked: Acked =
        ok(w.post(islington, &format!("/v1/drops/{}/ack", drop.id), &w.receipt(islington, &drop.id, &data)).await)
            .await;
    assert!(acked.ciphertext_deleted);
    w.stop().await;
}

#[tokio::test]
async fn range_that_cannot_be_served_gets_416_and_is_not_logged() {
    let mut w = World::start_range().await;
    let islington = &w.keys.islington;
    let data = w.ciphertext(&["islington"], 5000);
    let drop = w.send_to(&["islington"], &data).await;
    let before = w.all_entry_bytes().await.len();

    // Starting at or past the end.
    let msg = assert_refused(w.get_range(islington, &drop.id, "bytes=5000-").await, 5000).await;
    assert!(msg.contains("5000 bytes") && msg.contains("from byte 0"), "{msg}");
    assert_refused(w.get_range(islington, &drop.id, "bytes=9999-10000").await, 5000).await;
    assert_refused(w.get_range(islington, &drop.id, "bytes=-0").await, 5000).await;
    // Malformed.
    for bad in ["bytes=abc-", "bytes=5-2", "bytes=", "items=0-1", "bytes=-", "0-100"] {
        let msg = assert_refused(w.get_range(islington, &drop.id, bad).await, 5000).await;
        assert!(msg.contains("bytes=START-"), "{bad}: {msg}");
    }
    // More than one range, in one header or in two.
    let msg = assert_refused(w.get_range(islington, &drop.id, "bytes=0-1,3-4").await, 5000).await;
    assert!(msg.contains("one byte range"), "{msg}");
    assert_refused(w.get_ranges(islington, &drop.id, &["bytes=0-1", "bytes=3-"]).await, 5000).await;

    // Nothing was served, so nothing was logged and nobody counts as having fetched.
    assert_eq!(w.all_entry_bytes().await.len(), before);
    let sent: Sent = ok(w.get(&w.keys.camden, &format!("/v1/sent?id={}", drop.id)).await).await;
    assert_eq!(sent.drops[0].recipients[0].fetched, None);
    w.stop().await;
}

#[tokio::test]
async fn range_download_is_logged_like_a_full_one() {
    let mut w = World::start_range().await;
    let (islington, hackney) = (&w.keys.islington, &w.keys.hackney);
    let data = w.ciphertext(&["islington", "hackney"], 70_000);
    let drop = w.send_to(&["islington", "hackney"], &data).await;
    assert!(w.fetches().await.is_empty());

    w.advance(60);
    let first_at = w.now();
    assert_partial(w.get_range(islington, &drop.id, "bytes=1000-").await, &data, 1000, data.len() - 1).await;
    w.advance(60);
    assert_partial(w.get_range(islington, &drop.id, "bytes=0-999").await, &data, 0, 999).await;
    let _ = w.get(hackney, &format!("/v1/drops/{}/content", drop.id)).await.bytes().await.unwrap();

    let path = format!("/v1/drops/{}/content", drop.id);
    let expected = [
        (drop.id.clone(), "islington".to_owned(), path.clone()),
        (drop.id.clone(), "islington".to_owned(), path.clone()),
        (drop.id.clone(), "hackney".to_owned(), path.clone()),
    ];
    assert_eq!(w.fetches().await, expected, "every download, ranged or not, is one drop_fetched entry");
    // The sender sees islington's first (ranged) download.
    let sent: Sent = ok(w.get(&w.keys.camden, &format!("/v1/sent?id={}", drop.id)).await).await;
    let isl = sent.drops[0].recipients.iter().find(|r| r.party.as_str() == "islington").unwrap();
    assert_eq!(isl.fetched.map(|t| t.as_second()), Some(first_at));
    w.audit_passes().await;
    w.stop().await;
}

#[tokio::test]
async fn range_gets_no_further_than_a_full_download() {
    let mut w = World::start_range().await;
    let (camden, islington, hackney, barnet) = (&w.keys.camden, &w.keys.islington, &w.keys.hackney, &w.keys.barnet);
    let data = w.ciphertext(&["islington", "hackney"], 5000);
    let drop = w.send_to(&["islington", "hackney"], &data).await;
    let before = w.all_entry_bytes().await.len();

    // Neither an outsider nor the sender, whatever the range (a bad one
    // tells them nothing either).
    for key in [barnet, camden] {
        for range in ["bytes=0-", "bytes=100-200", "bytes=99999-", "nonsense"] {
            err(w.get_range(key, &drop.id, range).await, 403, code::FORBIDDEN).await;
        }
    }
    // No drop, no range.
    err(w.get_range(islington, &DropId::random(), "bytes=0-").await, 404, code::NOT_FOUND).await;
    assert_eq!(w.all_entry_bytes().await.len(), before, "refusals are not logged");

    // Once islington acknowledged, not even a range.
    assert_eq!(w.download(islington, &drop.id).await, data);
    let _: Acked =
        ok(w.post(islington, &format!("/v1/drops/{}/ack", drop.id), &w.receipt(islington, &drop.id, &data)).await)
            .await;
    err(w.get_range(islington, &drop.id, "bytes=10-").await, 410, code::GONE).await;

    // After the expiry, not for anyone.
    assert_partial(w.get_range(hackney, &drop.id, "bytes=10-").await, &data, 10, 4999).await;
    w.advance(7 * DAY);
    err(w.get_range(hackney, &drop.id, "bytes=10-").await, 410, code::GONE).await;
    w.stop().await;
}

#[tokio::test]
async fn downloads_are_bounded_per_party_and_an_acknowledgement_needs_one() {
    use sealdrop_log::policy::MAX_DOWNLOADS_PER_PARTY;
    let mut w = World::start_range().await;
    let (islington, hackney) = (&w.keys.islington, &w.keys.hackney);
    let data = w.ciphertext(&["islington", "hackney"], 5000);
    let drop = w.send_to(&["islington", "hackney"], &data).await;
    let ack = format!("/v1/drops/{}/ack", drop.id);

    // No download by islington is logged: its receipt is refused, and nothing is logged.
    let before = w.all_entry_bytes().await.len();
    let msg =
        err(w.post(islington, &ack, &w.receipt(islington, &drop.id, &data)).await, 409, code::NOT_DOWNLOADED).await;
    assert!(msg.contains("fetch it first"), "{msg}");
    assert_eq!(w.all_entry_bytes().await.len(), before);

    // 1-byte ranges, again and again: each one a logged download, up to the bound.
    for n in 0..MAX_DOWNLOADS_PER_PARTY {
        assert_partial(
            w.get_range(islington, &drop.id, &format!("bytes={n}-{n}")).await,
            &data,
            n as usize,
            n as usize,
        )
        .await;
    }
    let size = w.all_entry_bytes().await.len();
    assert_eq!(size, before + MAX_DOWNLOADS_PER_PARTY as usize);
    for range in [Some("bytes=0-0"), None] {
        let resp = match range {
            Some(r) => w.get_range(islington, &drop.id, r).await,
            None => w.get(islington, &format!("/v1/drops/{}/content", drop.id)).await,
        };
        let msg = err(resp, 409, code::DOWNLOAD_LIMIT).await;
        assert!(msg.contains("10 times") && msg.contains("ask the sender to send it again"), "{msg}");
    }
    assert_eq!(w.all_entry_bytes().await.len(), size, "a refused download is not logged");
    // Another party has its own count; islington's logged downloads let it acknowledge.
    assert_eq!(w.download(hackney, &drop.id).await, data);
    let _: Acked = ok(w.post(islington, &ack, &w.receipt(islington, &drop.id, &data)).await).await;
    // The sender sees where the log records each step.
    let sent: Sent = ok(w.get(&w.keys.camden, &format!("/v1/sent?id={}", drop.id)).await).await;
    let isl = sent.drops[0].recipients.iter().find(|r| r.party.as_str() == "islington").unwrap();
    assert_eq!((isl.fetched_log_index, isl.acknowledged_log_index), (Some(before as u64), Some(size as u64 + 1)));
    assert_eq!(sent.drops[0].committed_log_index, Some(before as u64 - 1));
    w.audit_passes().await;
    w.stop().await;
}
