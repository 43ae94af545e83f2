//! The hub's HTTP API end to end: a real hub on a temp data directory,
//! served with `serve` on 127.0.0.1:0, driven with reqwest and signed
//! requests. Time comes from a clock the tests set, never from sleeping.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicI64;

use jiff::Timestamp;
use reqwest::{Method, StatusCode};
use sealdrop_hub::Hub;
use sealdrop_proto::api::{
    Acked, Commit, Committed, CreateDrop, CreatedDrop, DirectoryAccepted, DropDetails, DropState, HubInfo, Inbox, Sent,
    SentDrop, UPLOAD_OFFSET_HEADER, UploadProgress, Uploaded, code,
};
use sealdrop_proto::directory::{Directory, SignedDirectory};
use sealdrop_proto::drop::Manifest;
use sealdrop_proto::ids::{DropId, PartyId};
use sealdrop_proto::keys::{MemberSecretKey, NoteSigningKey};
use sealdrop_proto::note::sign_doc;
use sealdrop_proto::request::{HEADER_SIGNATURE, MAX_CLOCK_SKEW_SECS, RequestAuth, sign_request};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use common::{DAY, Keys, TestClock, World, content, err, inner_fsm, member, ok, party};

/// The directories of four councils: camden, islington and hackney share
/// the `inner-fsm` agreement; barnet is in the directory but not in it.
impl Keys {
    /// The directory at `serial`; `with_islington2` decides whether
    /// islington's second member, j.smith, is listed.
    fn directory(&self, serial: u64, with_islington2: bool) -> Directory {
        let islington: Vec<&MemberSecretKey> =
            if with_islington2 { vec![&self.islington, &self.islington2] } else { vec![&self.islington] };
        let parties = vec![
            party(&[&self.camden], vec![]),
            party(&islington, vec![]),
            party(&[&self.hackney], vec![]),
            party(&[&self.barnet], vec![]),
        ];
        common::directory(serial, parties, vec![inner_fsm()])
    }

    fn signed_directory(&self, serial: u64, with_islington2: bool) -> String {
        SignedDirectory::sign(self.directory(serial, with_islington2), &self.authority).unwrap().note
    }
}

impl World {
    async fn start() -> World {
        Self::start_with(|hub| hub).await
    }

    async fn start_with(configure: impl FnOnce(Hub) -> Hub) -> World {
        World::launch(|keys| keys.signed_directory(1, true), configure).await
    }

    /// Bytes shaped like a drop's ciphertext to `recipients` (see [`common::ciphertext`]).
    fn ciphertext(&self, recipients: &[&str], len: usize) -> Vec<u8> {
        common::ciphertext(&self.keys.directory(1, true), recipients, len)
    }

    /// A manifest for `content` encrypted to every member of the recipients.
    fn manifest(&self, sender: &MemberSecretKey, drop: &CreatedDrop, recipients: &[&str], content: &[u8]) -> Manifest {
        common::manifest(&self.keys.directory(1, true), sender, drop, recipients, content)
    }

    async fn commit(&self, sender: &MemberSecretKey, id: &DropId, manifest: &Manifest) -> reqwest::Response {
        let body = Commit { manifest: sign_doc(manifest, &sender.signing), known_size: None };
        self.post(sender, &format!("/v1/drops/{id}/commit"), &body).await
    }

    /// Creates, uploads and commits a drop from camden.
    async fn send_drop(&self, recipients: &[&str], content: &[u8]) -> CreatedDrop {
        let sender = &self.keys.camden;
        let drop = self.created(sender, recipients).await;
        let _: Uploaded = ok(self.upload(sender, &drop.id, content).await).await;
        let manifest = self.manifest(sender, &drop, recipients, content);
        let _: Committed = ok(self.commit(sender, &drop.id, &manifest).await).await;
        drop
    }

    async fn inbox(&self, key: &MemberSecretKey) -> Vec<DropId> {
        let inbox: Inbox = ok(self.get(key, "/v1/inbox").await).await;
        inbox.drops.into_iter().map(|d| d.id).collect()
    }

    /// Creates a drop under `inner-fsm`, expiring in 7 days, with an idempotency key.
    async fn create_keyed(
        &self,
        key: &MemberSecretKey,
        recipients: &[&str],
        idempotency_key: &str,
    ) -> reqwest::Response {
        let req = CreateDrop {
            recipients: recipients.iter().map(|r| r.parse().unwrap()).collect(),
            agreement: "inner-fsm".into(),
            expires: Timestamp::from_second(self.now() + 7 * DAY).unwrap(),
            idempotency_key: Some(idempotency_key.into()),
        };
        self.post(key, "/v1/drops", &req).await
    }

    /// The drops `key`'s party sent, newest first.
    async fn sent(&self, key: &MemberSecretKey) -> Vec<SentDrop> {
        let sent: Sent = ok(self.get(key, "/v1/sent").await).await;
        sent.drops
    }

    /// The size of the served transfer-log checkpoint, verified with the hub's log key.
    async fn log_size(&self) -> u64 {
        let note = self.read("/v1/log/checkpoint").await.text().await.unwrap();
        sealdrop_log::checkpoint::open(&note, &self.hub().log_verifier()).unwrap().size
    }
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

#[tokio::test]
async fn full_flow_with_two_recipients() {
    let mut w = World::start().await;
    let (camden, islington, hackney, barnet) = (&w.keys.camden, &w.keys.islington, &w.keys.hackney, &w.keys.barnet);
    let data = w.ciphertext(&["islington", "hackney"], 300 * 1024 + 17);

    let drop = w.created(camden, &["islington", "hackney"]).await;
    assert_eq!(drop.created.as_second(), w.now());
    let up: Uploaded = ok(w.upload(camden, &drop.id, &data).await).await;
    assert_eq!(up.len, data.len() as u64);
    assert_eq!(up.sha256, hex::encode(Sha256::digest(&data)));
    assert!(w.inbox(islington).await.is_empty(), "an uncommitted drop is invisible");
    err(w.get(islington, &format!("/v1/drops/{}", drop.id)).await, 404, code::NOT_FOUND).await;

    let manifest = w.manifest(camden, &drop, &["islington", "hackney"], &data);
    w.advance(5);
    let committed: Committed = ok(w.commit(camden, &drop.id, &manifest).await).await;
    assert_eq!(committed.committed.as_second(), w.now());
    assert!(w.has_blob(&drop.id));
    assert!(!w.has_upload(&drop.id));

    // Both recipients see it; nobody else does.
    let inbox: Inbox = ok(w.get(islington, "/v1/inbox").await).await;
    assert_eq!(inbox.drops.len(), 1);
    let entry = &inbox.drops[0];
    assert_eq!((&entry.id, entry.from.as_str(), entry.size), (&drop.id, "camden", data.len() as u64));
    assert_eq!(entry.agreement, "inner-fsm");
    assert_eq!(w.inbox(hackney).await, vec![drop.id.clone()]);
    assert!(w.inbox(barnet).await.is_empty());
    assert!(w.inbox(camden).await.is_empty());

    // Details for the sender and recipients; 403 for anyone else.
    let details: DropDetails = ok(w.get(islington, &format!("/v1/drops/{}", drop.id)).await).await;
    assert_eq!(details.state, DropState::Committed);
    assert_eq!(details.manifest, sign_doc(&manifest, &camden.signing), "the manifest exactly as committed");
    let _: DropDetails = ok(w.get(camden, &format!("/v1/drops/{}", drop.id)).await).await;
    err(w.get(barnet, &format!("/v1/drops/{}", drop.id)).await, 403, code::FORBIDDEN).await;
    err(w.get(barnet, &format!("/v1/drops/{}/content", drop.id)).await, 403, code::FORBIDDEN).await;
    let barnet_ack = w.receipt(barnet, &drop.id, &data);
    err(w.post(barnet, &format!("/v1/drops/{}/ack", drop.id), &barnet_ack).await, 403, code::FORBIDDEN).await;
    // The sender cannot download its own drop.
    err(w.get(camden, &format!("/v1/drops/{}/content", drop.id)).await, 403, code::FORBIDDEN).await;

    // Islington downloads and acknowledges.
    w.advance(60);
    let resp = w.get(islington, &format!("/v1/drops/{}/content", drop.id)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "application/octet-stream");
    assert_eq!(resp.headers()["content-length"], data.len().to_string().as_str());
    assert_eq!(resp.bytes().await.unwrap().as_ref(), data.as_slice());
    let fetched_at = w.now();
    w.advance(60);
    let acked: Acked =
        ok(w.post(islington, &format!("/v1/drops/{}/ack", drop.id), &w.receipt(islington, &drop.id, &data)).await)
            .await;
    assert!(!acked.ciphertext_deleted);
    assert!(w.has_blob(&drop.id));
    assert!(w.inbox(islington).await.is_empty(), "acknowledged drops leave the inbox");
    err(w.get(islington, &format!("/v1/drops/{}/content", drop.id)).await, 410, code::GONE).await;
    let again = w.receipt(islington, &drop.id, &data);
    err(w.post(islington, &format!("/v1/drops/{}/ack", drop.id), &again).await, 409, code::CONFLICT).await;

    // The sender sees who fetched and who acknowledged.
    let sent: Sent = ok(w.get(camden, &format!("/v1/sent?id={}", drop.id)).await).await;
    assert_eq!(sent.drops.len(), 1);
    let s = &sent.drops[0];
    assert_eq!((s.state, s.size), (DropState::Committed, data.len() as u64));
    let isl = s.recipients.iter().find(|r| r.party.as_str() == "islington").unwrap();
    assert_eq!(isl.fetched.map(|t| t.as_second()), Some(fetched_at));
    assert_eq!(isl.acknowledged.map(|t| t.as_second()), Some(w.now()));
    assert_eq!(isl.acknowledged_by.as_deref(), Some("data-team"));
    let hck = s.recipients.iter().find(|r| r.party.as_str() == "hackney").unwrap();
    assert_eq!((hck.fetched, hck.acknowledged), (None, None));

    // Hackney is last: the ciphertext is deleted from disk.
    let resp = w.get(hackney, &format!("/v1/drops/{}/content", drop.id)).await;
    assert_eq!(resp.bytes().await.unwrap().as_ref(), data.as_slice());
    let acked: Acked =
        ok(w.post(hackney, &format!("/v1/drops/{}/ack", drop.id), &w.receipt(hackney, &drop.id, &data)).await).await;
    assert!(acked.ciphertext_deleted);
    assert!(!w.has_blob(&drop.id), "the ciphertext is gone after the last acknowledgement");
    assert!(files_in(&w.data_dir().join("blobs")).is_empty());
    err(w.get(hackney, &format!("/v1/drops/{}/content", drop.id)).await, 410, code::GONE).await;
    let details: DropDetails = ok(w.get(camden, &format!("/v1/drops/{}", drop.id)).await).await;
    assert_eq!(details.state, DropState::Delivered);
    let sent: Sent = ok(w.get(camden, "/v1/sent").await).await;
    assert_eq!(sent.drops[0].state, DropState::Delivered);
    w.stop().await;
}

#[tokio::test]
async fn authentication_failures_have_their_codes() {
    let mut w = World::start().await;
    let key = &w.keys.islington;

    // No headers at all.
    let msg = err(w.send(Method::GET, "/v1/inbox", None, vec![]).await, 401, code::UNAUTHENTICATED).await;
    assert!(msg.contains("sealdrop-key"), "{msg}");

    // A time outside the allowed skew.
    let stale = sign_request(&key.signing, "GET", "/v1/inbox", w.now() - MAX_CLOCK_SKEW_SECS - 1, Some(b""));
    err(w.send(Method::GET, "/v1/inbox", Some(&stale), vec![]).await, 401, code::STALE_REQUEST).await;
    let skewed = sign_request(&key.signing, "GET", "/v1/inbox", w.now() - MAX_CLOCK_SKEW_SECS, Some(b""));
    let _: Inbox = ok(w.send(Method::GET, "/v1/inbox", Some(&skewed), vec![]).await).await;

    // The same request twice.
    let once = sign_request(&key.signing, "GET", "/v1/inbox", w.now(), Some(b""));
    let _: Inbox = ok(w.send(Method::GET, "/v1/inbox", Some(&once), vec![]).await).await;
    err(w.send(Method::GET, "/v1/inbox", Some(&once), vec![]).await, 401, code::REPLAYED_NONCE).await;

    // A key the directory does not list.
    let stranger = member("islington", "intern");
    err(w.get(&stranger, "/v1/inbox").await, 401, code::UNKNOWN_KEY).await;
    let outsider = member("westminster", "data-team");
    err(w.get(&outsider, "/v1/inbox").await, 401, code::UNKNOWN_KEY).await;

    // A tampered signature, and a signature for another path.
    let mut tampered = sign_request(&key.signing, "GET", "/v1/inbox", w.now(), Some(b""));
    let flipped = if tampered.signature.starts_with('A') { "B" } else { "A" };
    tampered.signature.replace_range(0..1, flipped);
    err(w.send(Method::GET, "/v1/inbox", Some(&tampered), vec![]).await, 401, code::BAD_SIGNATURE).await;
    let elsewhere = sign_request(&key.signing, "GET", "/v1/sent", w.now(), Some(b""));
    err(w.send(Method::GET, "/v1/inbox", Some(&elsewhere), vec![]).await, 401, code::BAD_SIGNATURE).await;

    // A body that is not the one signed.
    let signed = serde_json::to_vec(&CreateDrop {
        recipients: vec!["camden".parse().unwrap()],
        agreement: "inner-fsm".into(),
        expires: Timestamp::from_second(w.now() + DAY).unwrap(),
        idempotency_key: None,
    })
    .unwrap();
    let auth = sign_request(&key.signing, "POST", "/v1/drops", w.now(), Some(&signed));
    let mut altered = signed.clone();
    altered.extend_from_slice(b" ");
    err(w.send(Method::POST, "/v1/drops", Some(&auth), altered).await, 401, code::BAD_SIGNATURE).await;
    // A buffered body may not claim to be unsigned.
    let unsigned = sign_request(&key.signing, "POST", "/v1/drops", w.now(), None);
    err(w.send(Method::POST, "/v1/drops", Some(&unsigned), signed.clone()).await, 401, code::BAD_SIGNATURE).await;
    // A failed request does not burn the nonce: the genuine body still goes through.
    let _: CreatedDrop = ok(w.send(Method::POST, "/v1/drops", Some(&auth), signed).await).await;

    // A malformed header.
    let mut bad = sign_request(&key.signing, "GET", "/v1/inbox", w.now(), Some(b""));
    bad.nonce = "short".into();
    err(w.send(Method::GET, "/v1/inbox", Some(&bad), vec![]).await, 401, code::UNAUTHENTICATED).await;
    let resp = w.client.get(format!("{}/v1/inbox", w.base)).header(HEADER_SIGNATURE, "x").send().await.unwrap();
    err(resp, 401, code::UNAUTHENTICATED).await;

    // Time moves; a request signed with the new time is fine, the old one is stale.
    let old = sign_request(&key.signing, "GET", "/v1/inbox", w.now(), Some(b""));
    w.advance(MAX_CLOCK_SKEW_SECS + 1);
    err(w.send(Method::GET, "/v1/inbox", Some(&old), vec![]).await, 401, code::STALE_REQUEST).await;
    let _: Inbox = ok(w.get(key, "/v1/inbox").await).await;
    w.stop().await;
}

#[tokio::test]
async fn commit_rules() {
    let mut w = World::start().await;
    let (camden, islington, hackney) = (&w.keys.camden, &w.keys.islington, &w.keys.hackney);
    let data = w.ciphertext(&["islington"], 5000);
    let drop = w.created(camden, &["islington"]).await;
    let manifest = w.manifest(camden, &drop, &["islington"], &data);

    // Before any upload.
    let msg = err(w.commit(camden, &drop.id, &manifest).await, 409, code::CONFLICT).await;
    assert!(msg.contains("upload the content first"), "{msg}");

    // Only the sender may upload or commit.
    err(w.upload(islington, &drop.id, &data).await, 403, code::FORBIDDEN).await;
    let by_recipient = Commit { manifest: sign_doc(&manifest, &islington.signing), known_size: None };
    err(w.post(islington, &format!("/v1/drops/{}/commit", drop.id), &by_recipient).await, 403, code::FORBIDDEN).await;
    let _: Uploaded = ok(w.upload(camden, &drop.id, &data).await).await;

    // A manifest whose hash is not what the hub received.
    let mut wrong = manifest.clone();
    wrong.ciphertext_sha256 = hex::encode(Sha256::digest(b"something else"));
    err(w.commit(camden, &drop.id, &wrong).await, 422, code::HASH_MISMATCH).await;
    let mut short = manifest.clone();
    short.ciphertext_len -= 1;
    err(w.commit(camden, &drop.id, &short).await, 422, code::HASH_MISMATCH).await;
    assert!(w.inbox(islington).await.is_empty(), "a refused commit leaves the drop invisible");
    assert!(!w.has_blob(&drop.id));

    // A manifest signed by another party's key, even though camden sends it.
    let forged = Commit { manifest: sign_doc(&manifest, &hackney.signing), known_size: None };
    let msg =
        err(w.post(camden, &format!("/v1/drops/{}/commit", drop.id), &forged).await, 422, code::BAD_MANIFEST).await;
    assert!(msg.contains("camden/data-team"), "{msg}");
    // A manifest that does not match the drop names the field.
    let mut other_agreement = manifest.clone();
    other_agreement.agreement = "other".into();
    let msg = err(w.commit(camden, &drop.id, &other_agreement).await, 422, code::BAD_MANIFEST).await;
    assert!(msg.contains("`agreement`"), "{msg}");
    let mut not_encrypted_to_islington = manifest.clone();
    not_encrypted_to_islington.encrypted_to.clear();
    err(w.commit(camden, &drop.id, &not_encrypted_to_islington).await, 422, code::BAD_MANIFEST).await;
    // A body that is not a Commit.
    let msg = err(
        w.call(camden, Method::POST, &format!("/v1/drops/{}/commit", drop.id), br#"{"manifesto":"x"}"#).await,
        400,
        code::BAD_REQUEST,
    )
    .await;
    assert!(msg.contains("manifesto"), "{msg}");

    // A re-upload replaces the content; the manifest must then match the new bytes.
    let data2 = w.ciphertext(&["islington"], 6000);
    let up: Uploaded = ok(w.upload(camden, &drop.id, &data2).await).await;
    assert_eq!(up.len, 6000);
    err(w.commit(camden, &drop.id, &manifest).await, 422, code::HASH_MISMATCH).await;
    let manifest2 = w.manifest(camden, &drop, &["islington"], &data2);
    let _: Committed = ok(w.commit(camden, &drop.id, &manifest2).await).await;
    assert_eq!(w.inbox(islington).await, vec![drop.id.clone()]);
    let resp = w.get(islington, &format!("/v1/drops/{}/content", drop.id)).await;
    assert_eq!(resp.bytes().await.unwrap().as_ref(), data2.as_slice());

    // Committed drops are final.
    err(w.commit(camden, &drop.id, &manifest2).await, 409, code::CONFLICT).await;
    err(w.upload(camden, &drop.id, &data).await, 409, code::CONFLICT).await;

    // Unknown and malformed drop ids.
    let unknown = DropId::random();
    err(w.upload(camden, &unknown, &data).await, 404, code::NOT_FOUND).await;
    err(w.get(camden, &format!("/v1/drops/{unknown}")).await, 404, code::NOT_FOUND).await;
    err(w.get(camden, "/v1/drops/not-a-drop").await, 400, code::BAD_REQUEST).await;
    w.stop().await;
}

#[tokio::test]
async fn streamed_upload_with_a_signed_hash_is_checked() {
    let mut w = World::start().await;
    let camden = &w.keys.camden;
    let drop = w.created(camden, &["islington"]).await;
    let path = format!("/v1/drops/{}/content", drop.id);
    let data = content(1000);
    let auth = sign_request(&camden.signing, "PUT", &path, w.now(), Some(&data));
    let _: Uploaded = ok(w.send(Method::PUT, &path, Some(&auth), data.clone()).await).await;
    let auth = sign_request(&camden.signing, "PUT", &path, w.now(), Some(&data));
    err(w.send(Method::PUT, &path, Some(&auth), content(999)).await, 401, code::BAD_SIGNATURE).await;
    assert!(!w.has_upload(&drop.id), "a body that does not match its signed hash is not kept");
    w.stop().await;
}

#[tokio::test]
async fn agreement_rules_on_create() {
    let mut w = World::start().await;
    let (camden, barnet) = (&w.keys.camden, &w.keys.barnet);
    let msg = err(w.create(camden, &["barnet"], DAY).await, 422, code::NOT_IN_AGREEMENT).await;
    assert!(msg.contains("barnet") && msg.contains("inner-fsm"), "{msg}");
    let msg = err(w.create(barnet, &["camden"], DAY).await, 422, code::NOT_IN_AGREEMENT).await;
    assert!(msg.contains("your party `barnet`"), "{msg}");
    let msg = err(w.create(camden, &["westminster"], DAY).await, 422, code::UNKNOWN_PARTY).await;
    assert!(msg.contains("westminster"), "{msg}");
    // Past the agreement's 14 days by more than the clock skew requests may
    // have: refused. Within it (a sender's clock a little ahead): trimmed
    // to the limit, never beyond.
    let skew = sealdrop_proto::request::MAX_CLOCK_SKEW_SECS;
    let msg = err(w.create(camden, &["islington"], 14 * DAY + skew + 1).await, 422, code::BAD_EXPIRY).await;
    assert!(msg.contains("14 days"), "{msg}");
    let trimmed: CreatedDrop = ok(w.create(camden, &["islington"], 14 * DAY + skew).await).await;
    assert_eq!(trimmed.expires, Timestamp::from_second(w.now() + 14 * DAY).unwrap(), "trimmed to the limit");
    err(w.create(camden, &["islington"], 0).await, 422, code::BAD_EXPIRY).await;
    let _: CreatedDrop = ok(w.create(camden, &["islington"], 14 * DAY).await).await;
    err(w.create(camden, &[], DAY).await, 400, code::BAD_REQUEST).await;
    err(w.create(camden, &["islington", "islington"], DAY).await, 400, code::BAD_REQUEST).await;
    let other = CreateDrop {
        recipients: vec!["islington".parse().unwrap()],
        agreement: "no-such-agreement".into(),
        expires: Timestamp::from_second(w.now() + DAY).unwrap(),
        idempotency_key: None,
    };
    err(w.post(camden, "/v1/drops", &other).await, 422, code::UNKNOWN_AGREEMENT).await;
    // Once the agreement has ended, nothing more may be sent under it.
    w.advance("2030-01-01T00:00:00Z".parse::<Timestamp>().unwrap().as_second() - w.now());
    err(w.create(camden, &["islington"], DAY).await, 422, code::AGREEMENT_NOT_IN_FORCE).await;
    // Unparseable JSON and unknown fields are 400 with serde's message.
    let msg = err(w.call(camden, Method::POST, "/v1/drops", b"{not json").await, 400, code::BAD_REQUEST).await;
    assert!(msg.contains("JSON"), "{msg}");
    w.stop().await;
}

#[tokio::test]
async fn directory_publication() {
    let mut w = World::start().await;
    let (islington2, camden) = (&w.keys.islington2, &w.keys.camden);
    let info: HubInfo = ok(w.client.get(format!("{}/v1/info", w.base)).send().await.unwrap()).await;
    assert_eq!((info.origin.as_str(), info.directory_serial), ("hub.test/sealdrop", 1));
    let current = w.read("/v1/directory").await;
    assert!(current.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    // Ed25519 signatures are deterministic, so re-signing gives the note init stored.
    assert_eq!(current.text().await.unwrap(), w.keys.signed_directory(1, true));

    // j.smith (islington) works under serial 1.
    let _: Inbox = ok(w.get(islington2, "/v1/inbox").await).await;

    let publish = |note: String| {
        let req = w.client.post(format!("{}/v1/directory", w.base)).body(note);
        async move { req.send().await.unwrap() }
    };
    // Signed by someone else.
    let impostor = NoteSigningKey::generate("test-authority").unwrap();
    let forged = SignedDirectory::sign(w.keys.directory(2, false), &impostor).unwrap().note;
    err(publish(forged).await, 422, code::DIRECTORY_BAD_SIGNATURE).await;
    // Altered after signing.
    let altered = w.keys.signed_directory(2, false).replace("Auto-enrolment", "Anything");
    err(publish(altered).await, 422, code::DIRECTORY_BAD_SIGNATURE).await;
    // Not a directory at all.
    err(publish("hello".into()).await, 422, code::DIRECTORY_INVALID).await;
    // Equal serial.
    err(publish(w.keys.signed_directory(1, false)).await, 409, code::DIRECTORY_ROLLBACK).await;

    // Serial 2 removes j.smith.
    let accepted: DirectoryAccepted = ok(publish(w.keys.signed_directory(2, false)).await).await;
    assert_eq!(accepted.serial, 2);
    let info: HubInfo = ok(w.client.get(format!("{}/v1/info", w.base)).send().await.unwrap()).await;
    assert_eq!(info.directory_serial, 2);
    let msg = err(w.get(islington2, "/v1/inbox").await, 401, code::UNKNOWN_KEY).await;
    assert!(msg.contains("serial 2"), "{msg}");
    let _: Inbox = ok(w.get(camden, "/v1/inbox").await).await;
    // Lower and equal serials are now refused.
    err(publish(w.keys.signed_directory(1, true)).await, 409, code::DIRECTORY_ROLLBACK).await;
    err(publish(w.keys.signed_directory(2, true)).await, 409, code::DIRECTORY_ROLLBACK).await;
    let current = w.read("/v1/directory").await.text().await.unwrap();
    assert!(current.contains("\"serial\": 2"), "{current}");
    w.stop().await;

    // The new directory survives a restart.
    let hub = Hub::open(&w.data_dir(), w.clock.clone()).unwrap();
    assert_eq!(hub.directory().directory.serial, 2);
}

#[tokio::test]
async fn uploads_over_the_limit_are_refused_and_not_stored() {
    let mut w = World::start_with(|hub| hub.with_max_upload_bytes(4096)).await;
    let camden = &w.keys.camden;
    let drop = w.created(camden, &["islington"]).await;

    // Declared too large (Content-Length).
    let msg = err(w.upload(camden, &drop.id, &content(5000)).await, 413, code::PAYLOAD_TOO_LARGE).await;
    assert!(msg.contains("4096"), "{msg}");
    assert!(files_in(&w.data_dir().join("uploads")).is_empty());

    // Streamed without a length (chunked): refused once it passes the limit.
    let path = format!("/v1/drops/{}/content", drop.id);
    let auth = sign_request(&camden.signing, "PUT", &path, w.now(), None);
    let status = chunked_put(&w.base, &path, &auth, &[&content(3000), &content(3000)]).await;
    assert_eq!(status, 413);
    assert!(files_in(&w.data_dir().join("uploads")).is_empty(), "the partial upload is removed");
    let manifest = w.manifest(camden, &drop, &["islington"], &content(5000));
    err(w.commit(camden, &drop.id, &manifest).await, 409, code::CONFLICT).await;

    // At the limit is fine, chunked or not.
    let auth = sign_request(&camden.signing, "PUT", &path, w.now(), None);
    assert_eq!(chunked_put(&w.base, &path, &auth, &[&content(2048), &content(2048)]).await, 200);
    let _: Uploaded = ok(w.upload(camden, &drop.id, &content(4096)).await).await;

    // JSON bodies have their own 1 MiB limit.
    let huge = vec![b' '; 1024 * 1024 + 1];
    err(w.call(camden, Method::POST, "/v1/drops", &huge).await, 413, code::PAYLOAD_TOO_LARGE).await;
    w.stop().await;
}

/// Sends a PUT with a chunked body over a raw connection (reqwest needs its
/// `stream` feature for that) and returns the response status.
async fn chunked_put(base: &str, path: &str, auth: &RequestAuth, chunks: &[&[u8]]) -> u16 {
    let stream = start_chunked_put(base, path, auth, &[]).await;
    finish_chunked_put(stream, chunks).await
}

/// Sends a chunked PUT's head and its first `chunks`, leaving the body open.
async fn start_chunked_put(base: &str, path: &str, auth: &RequestAuth, chunks: &[&[u8]]) -> tokio::net::TcpStream {
    let addr = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut head =
        format!("PUT {path} HTTP/1.1\r\nHost: {addr}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n");
    for (name, value) in auth.headers() {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut request = head.into_bytes();
    request.extend_from_slice(&encode_chunks(chunks));
    stream.write_all(&request).await.unwrap();
    stream
}

fn encode_chunks(chunks: &[&[u8]]) -> Vec<u8> {
    let mut body = Vec::new();
    for chunk in chunks {
        body.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        body.extend_from_slice(chunk);
        body.extend_from_slice(b"\r\n");
    }
    body
}

/// Sends the rest of a chunked PUT and returns the response status.
async fn finish_chunked_put(mut stream: tokio::net::TcpStream, chunks: &[&[u8]]) -> u16 {
    let mut request = encode_chunks(chunks);
    request.extend_from_slice(b"0\r\n\r\n");
    // The hub may answer and close before reading everything: ignore write errors.
    let _ = stream.write_all(&request).await;
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    let text = String::from_utf8_lossy(&response);
    text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no status in {text:?}"))
}

#[tokio::test]
async fn unknown_routes_are_404_json() {
    let mut w = World::start().await;
    for (method, path) in [(Method::GET, "/v1/nope"), (Method::GET, "/"), (Method::DELETE, "/v1/inbox")] {
        let resp = w.client.request(method.clone(), format!("{}{path}", w.base)).send().await.unwrap();
        assert_eq!(resp.headers()["content-type"], "application/json", "{method} {path}");
        err(resp, 404, code::NOT_FOUND).await;
    }
    w.stop().await;
}

#[tokio::test]
async fn expired_drops_leave_the_inbox() {
    let mut w = World::start().await;
    let islington = &w.keys.islington;
    let data = w.ciphertext(&["islington"], 400);
    let drop = w.send_drop(&["islington"], &data).await;
    assert_eq!(w.inbox(islington).await, vec![drop.id.clone()]);
    w.advance(7 * DAY);
    assert!(w.inbox(islington).await.is_empty());
    err(w.get(islington, &format!("/v1/drops/{}/content", drop.id)).await, 410, code::GONE).await;
    w.stop().await;
}

#[tokio::test]
async fn sent_lists_only_the_callers_drops() {
    let mut w = World::start().await;
    let (camden, islington) = (&w.keys.camden, &w.keys.islington);
    let first = w.send_drop(&["islington"], &w.ciphertext(&["islington"], 400)).await;
    w.advance(1);
    let second = w.created(camden, &["hackney"]).await;
    let sent: Sent = ok(w.get(camden, "/v1/sent").await).await;
    let ids: Vec<&DropId> = sent.drops.iter().map(|d| &d.id).collect();
    assert_eq!(ids, vec![&second.id, &first.id], "newest first");
    assert_eq!(sent.drops[0].state, DropState::Open);
    assert_eq!(sent.drops[0].committed, None);
    assert_eq!(sent.drops[1].recipients[0].party, "islington".parse::<PartyId>().unwrap());
    let none: Sent = ok(w.get(islington, "/v1/sent").await).await;
    assert!(none.drops.is_empty());
    err(w.get(islington, &format!("/v1/sent?id={}", first.id)).await, 404, code::NOT_FOUND).await;
    err(w.get(camden, "/v1/sent?colour=blue").await, 400, code::BAD_REQUEST).await;
    w.stop().await;
}

#[tokio::test]
async fn reopening_keeps_committed_drops_and_removes_orphans() {
    let mut w = World::start().await;
    let keys = Arc::clone(&w.keys);
    let (camden, islington) = (&keys.camden, &keys.islington);
    let data = w.ciphertext(&["islington"], 2000);
    let committed = w.send_drop(&["islington"], &data).await;
    let pending = w.created(camden, &["islington"]).await;
    let _: Uploaded = ok(w.upload(camden, &pending.id, &data).await).await;
    let promoted = w.created(camden, &["islington"]).await;
    let _: Uploaded = ok(w.upload(camden, &promoted.id, &data).await).await;
    w.stop().await;

    // Simulate crashes: an upload (file or database row) for an unknown
    // drop, a stale upload of a committed drop, and a blob promoted but
    // never committed.
    let (stray, stray_row) = (DropId::random(), DropId::random());
    std::fs::write(w.upload_file(&stray), b"partial").unwrap();
    let db = rusqlite::Connection::open(w.data_dir().join("hub.db")).unwrap();
    db.execute("INSERT INTO inline_blobs VALUES (?1, 'upload', x'00')", [stray_row.as_str()]).unwrap();
    drop(db);
    std::fs::write(w.upload_file(&committed.id), b"stale").unwrap();
    w.promote_behind_the_hubs_back(&promoted.id);
    assert!(w.has_blob(&promoted.id) && w.has_upload(&stray_row));

    let hub = Hub::open(&w.data_dir(), w.clock.clone()).unwrap();
    assert!(!w.has_upload(&stray), "orphaned upload removed");
    assert!(!w.has_upload(&stray_row), "orphaned upload row removed");
    assert!(!w.has_upload(&committed.id), "upload of a committed drop removed");
    assert!(!w.has_blob(&promoted.id), "uncommitted blob removed");
    assert!(w.has_upload(&pending.id), "a finished upload of an open drop is kept");
    assert!(w.has_blob(&committed.id), "committed ciphertext is kept");
    w.serve(hub).await;

    assert_eq!(w.inbox(islington).await, vec![committed.id.clone()]);
    let resp = w.get(islington, &format!("/v1/drops/{}/content", committed.id)).await;
    assert_eq!(resp.bytes().await.unwrap().as_ref(), data.as_slice());
    // The kept upload can still be committed; the promoted-but-lost one must be uploaded again.
    let manifest = w.manifest(camden, &pending, &["islington"], &data);
    let _: Committed = ok(w.commit(camden, &pending.id, &manifest).await).await;
    let manifest = w.manifest(camden, &promoted, &["islington"], &data);
    err(w.commit(camden, &promoted.id, &manifest).await, 409, code::CONFLICT).await;
    let _: Uploaded = ok(w.upload(camden, &promoted.id, &data).await).await;
    let _: Committed = ok(w.commit(camden, &promoted.id, &manifest).await).await;
    assert_eq!(w.inbox(islington).await.len(), 3);
    w.stop().await;
}

#[tokio::test]
async fn open_refuses_an_uninitialised_or_exposed_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let clock = Arc::new(TestClock(AtomicI64::new(0)));
    let e = Hub::open(tmp.path(), clock.clone()).unwrap_err();
    assert!(e.to_string().contains("sealdrop-hub init"), "{e}");

    let mut w = World::start().await;
    w.stop().await;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let key = w.data_dir().join("log.key");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = Hub::open(&w.data_dir(), clock).unwrap_err();
        assert!(e.to_string().contains("chmod 600"), "{e}");
    }
}

#[tokio::test]
async fn a_committed_drop_is_returned_for_its_idempotency_key() {
    let mut w = World::start().await;
    let (camden, islington, islington2, hackney) =
        (&w.keys.camden, &w.keys.islington, &w.keys.islington2, &w.keys.hackney);
    let key = "5e".repeat(32);
    let data = w.ciphertext(&["islington"], 1000);
    let drop: CreatedDrop = ok(w.create_keyed(camden, &["islington"], &key).await).await;
    assert_eq!(drop.committed, None, "a new drop");
    let _: Uploaded = ok(w.upload(camden, &drop.id, &data).await).await;
    w.advance(5);
    let committed: Committed =
        ok(w.commit(camden, &drop.id, &w.manifest(camden, &drop, &["islington"], &data)).await).await;
    let size = w.log_size().await;

    // A re-run, a minute later and so with another expiry: the same drop, marked committed.
    w.advance(60);
    let again: CreatedDrop = ok(w.create_keyed(camden, &["islington"], &key).await).await;
    assert_eq!((&again.id, again.created, again.expires), (&drop.id, drop.created, drop.expires));
    assert_eq!(again.committed, Some(committed.committed));
    let sent = w.sent(camden).await;
    assert_eq!(sent.len(), 1, "nothing new was created");
    assert_eq!((&sent[0].id, sent[0].idempotency_key.as_deref()), (&drop.id, Some(key.as_str())));
    assert_eq!(w.log_size().await, size, "nothing new was logged");
    assert_eq!(w.inbox(islington).await, vec![drop.id.clone()]);
    assert!(files_in(&w.data_dir().join("uploads")).is_empty());

    // The same key from another party is another drop.
    let theirs: CreatedDrop = ok(w.create_keyed(hackney, &["camden"], &key).await).await;
    assert_ne!(theirs.id, drop.id);
    assert_eq!(theirs.committed, None);
    let hackney_sent = w.sent(hackney).await;
    assert_eq!((&hackney_sent[0].id, hackney_sent[0].idempotency_key.as_deref()), (&theirs.id, Some(key.as_str())));
    assert_eq!(w.sent(camden).await.len(), 1);
    assert!(w.has_blob(&drop.id), "camden's committed drop is untouched");

    // The key belongs to the party: another member of it gets the committed drop.
    let key2 = "a1".repeat(32);
    let isl: CreatedDrop = ok(w.create_keyed(islington, &["camden"], &key2).await).await;
    let to_camden = w.ciphertext(&["camden"], 1000);
    let _: Uploaded = ok(w.upload(islington, &isl.id, &to_camden).await).await;
    let _: Committed =
        ok(w.commit(islington, &isl.id, &w.manifest(islington, &isl, &["camden"], &to_camden)).await).await;
    let by_colleague: CreatedDrop = ok(w.create_keyed(islington2, &["camden"], &key2).await).await;
    assert_eq!(by_colleague.id, isl.id);
    assert!(by_colleague.committed.is_some());
    assert_eq!(w.sent(islington2).await.len(), 1);

    // Still returned once delivered, and after the agreement has ended: the
    // data went long ago, so the re-run learns that instead of a refusal.
    assert_eq!(w.download(islington, &drop.id).await, data);
    let ack = w.receipt(islington, &drop.id, &data);
    let acked: Acked = ok(w.post(islington, &format!("/v1/drops/{}/ack", drop.id), &ack).await).await;
    assert!(acked.ciphertext_deleted);
    let size = w.log_size().await;
    let delivered: CreatedDrop = ok(w.create_keyed(camden, &["islington"], &key).await).await;
    assert_eq!((&delivered.id, delivered.committed), (&drop.id, Some(committed.committed)));
    w.advance("2030-01-01T00:00:00Z".parse::<Timestamp>().unwrap().as_second() - w.now());
    let ended: CreatedDrop = ok(w.create_keyed(camden, &["islington"], &key).await).await;
    assert_eq!((&ended.id, ended.committed), (&drop.id, Some(committed.committed)));
    let fresh = "77".repeat(32);
    err(w.create_keyed(camden, &["islington"], &fresh).await, 422, code::AGREEMENT_NOT_IN_FORCE).await;
    assert_eq!(w.sent(camden).await.len(), 1);
    assert_eq!(w.log_size().await, size);
    w.stop().await;
}

#[tokio::test]
async fn an_uncommitted_drop_is_replaced_for_its_idempotency_key() {
    let mut w = World::start().await;
    let (camden, islington) = (&w.keys.camden, &w.keys.islington);
    let key = "0f".repeat(32);
    let data = w.ciphertext(&["islington"], 3000);

    // Created, never uploaded.
    let first: CreatedDrop = ok(w.create_keyed(camden, &["islington"], &key).await).await;
    let second: CreatedDrop = ok(w.create_keyed(camden, &["islington"], &key).await).await;
    assert_ne!(second.id, first.id);
    assert_eq!(second.committed, None);
    err(w.get(camden, &format!("/v1/drops/{}", first.id)).await, 404, code::NOT_FOUND).await;

    // Uploaded in full, not committed: the upload goes with the drop.
    let _: Uploaded = ok(w.upload(camden, &second.id, &data).await).await;
    assert!(w.has_upload(&second.id));
    w.advance(1);
    let third: CreatedDrop = ok(w.create_keyed(camden, &["islington"], &key).await).await;
    assert_ne!(third.id, second.id);
    assert!(!w.has_upload(&second.id), "the replaced drop's upload is deleted");
    err(w.get(camden, &format!("/v1/drops/{}", second.id)).await, 404, code::NOT_FOUND).await;
    err(w.upload(camden, &second.id, &data).await, 404, code::NOT_FOUND).await;
    let old_manifest = w.manifest(camden, &second, &["islington"], &data);
    err(w.commit(camden, &second.id, &old_manifest).await, 404, code::NOT_FOUND).await;

    // Promoted to a blob but not committed (a crash between the two): the blob goes too.
    let _: Uploaded = ok(w.upload(camden, &third.id, &data).await).await;
    w.promote_behind_the_hubs_back(&third.id);
    let fourth: CreatedDrop = ok(w.create_keyed(camden, &["islington"], &key).await).await;
    assert!(!w.has_blob(&third.id), "the replaced drop's blob is deleted");

    // Partway through a streamed upload: the partial file is deleted at once,
    // and the upload fails when it ends instead of reviving the old drop.
    // (The first part is larger than what the hub holds in memory before
    // it starts writing the file.)
    let path = format!("/v1/drops/{}/content", fourth.id);
    let auth = sign_request(&camden.signing, "PUT", &path, w.now(), None);
    let first_part = vec![7u8; 3 * 1024 * 1024];
    let stream = start_chunked_put(&w.base, &path, &auth, &[&first_part]).await;
    for _ in 0..500 {
        if w.has_upload(&fourth.id) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(w.has_upload(&fourth.id), "the upload has started");
    let fifth: CreatedDrop = ok(w.create_keyed(camden, &["islington"], &key).await).await;
    assert!(!w.has_upload(&fourth.id), "the partial upload is deleted");
    assert_eq!(finish_chunked_put(stream, &[&data]).await, 409);
    assert!(files_in(&w.data_dir().join("uploads")).is_empty());
    assert!(files_in(&w.data_dir().join("blobs")).is_empty());

    // One drop is left, and it is sent as usual.
    let sent = w.sent(camden).await;
    assert_eq!(sent.len(), 1);
    assert_eq!((&sent[0].id, sent[0].idempotency_key.as_deref()), (&fifth.id, Some(key.as_str())));
    let _: Uploaded = ok(w.upload(camden, &fifth.id, &data).await).await;
    let _: Committed = ok(w.commit(camden, &fifth.id, &w.manifest(camden, &fifth, &["islington"], &data)).await).await;
    assert_eq!(w.inbox(islington).await, vec![fifth.id.clone()]);
    let again: CreatedDrop = ok(w.create_keyed(camden, &["islington"], &key).await).await;
    assert_eq!(again.id, fifth.id);
    assert!(again.committed.is_some());
    w.stop().await;
}

#[tokio::test]
async fn malformed_idempotency_keys_are_refused() {
    let mut w = World::start().await;
    let camden = &w.keys.camden;
    let good = "0123456789abcdef".repeat(4);
    let bad = [
        good[..63].to_owned(),
        format!("{good}0"),
        good.to_uppercase(),
        format!("{}g", &good[..63]),
        format!("{}-", &good[..63]),
        String::new(),
    ];
    for key in &bad {
        let msg = err(w.create_keyed(camden, &["islington"], key).await, 400, code::BAD_REQUEST).await;
        assert!(msg.contains("64 lowercase hexadecimal digits"), "{msg}");
    }
    assert!(w.sent(camden).await.is_empty(), "nothing was created");
    let created: CreatedDrop = ok(w.create_keyed(camden, &["islington"], &good).await).await;
    assert_eq!(w.sent(camden).await[0].id, created.id);
    // Without a key, creates are independent as before, and list no key.
    let a = w.created(camden, &["islington"]).await;
    let b = w.created(camden, &["islington"]).await;
    assert_ne!(a.id, b.id);
    let sent = w.sent(camden).await;
    assert_eq!(sent.len(), 3);
    assert_eq!(sent.iter().filter(|d| d.idempotency_key.is_none()).count(), 2);
    w.stop().await;
}

/// A signed PUT of `body` continuing an upload at `offset`.
async fn put_at(w: &World, key: &MemberSecretKey, id: &DropId, offset: u64, body: &[u8]) -> reqwest::Response {
    let path = format!("/v1/drops/{id}/content");
    let auth = sign_request(&key.signing, "PUT", &path, w.now(), None);
    let mut req = w.client.put(format!("{}{path}", w.base)).header(UPLOAD_OFFSET_HEADER, offset.to_string());
    for (name, value) in auth.headers() {
        req = req.header(name, value);
    }
    req.body(body.to_vec()).send().await.unwrap()
}

#[tokio::test]
async fn an_upload_cut_off_is_continued_from_the_byte_the_hub_holds() {
    let mut w = World::start().await;
    let keys = w.keys.clone();
    let created = w.created(&keys.camden, &["islington"]).await;
    let id = created.id;
    let progress_path = format!("/v1/drops/{id}/upload");

    // The connection drops after the first 6 bytes.
    let path = format!("/v1/drops/{id}/content");
    let auth = sign_request(&keys.camden.signing, "PUT", &path, w.now(), None);
    drop(start_chunked_put(&w.base, &path, &auth, &[b"hello "]).await);
    let mut progress: UploadProgress = ok(w.get(&keys.camden, &progress_path).await).await;
    for _ in 0..200 {
        if progress.received == 6 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        progress = ok(w.get(&keys.camden, &progress_path).await).await;
    }
    assert_eq!(progress, UploadProgress { received: 6, complete: false }, "the hub keeps what arrived");
    // Only the sender may ask.
    err(w.get(&keys.islington, &progress_path).await, 403, code::FORBIDDEN).await;

    // A continuation from any other byte is refused, saying where to continue.
    let msg = err(put_at(&w, &keys.camden, &id, 3, b"lo world").await, 409, code::UPLOAD_OFFSET_MISMATCH).await;
    assert!(msg.contains("holds 6 bytes") && msg.contains("continue from byte 6"), "{msg}");
    // From the right byte, the digest covers the whole upload.
    let up: Uploaded = ok(put_at(&w, &keys.camden, &id, 6, b"world").await).await;
    assert_eq!(up, Uploaded { sha256: hex::encode(Sha256::digest(b"hello world")), len: 11 });
    let progress: UploadProgress = ok(w.get(&keys.camden, &progress_path).await).await;
    assert_eq!(progress, UploadProgress { received: 11, complete: true });
    // A PUT without the header starts over.
    let up: Uploaded = ok(w.upload(&keys.camden, &id, b"again").await).await;
    assert_eq!(up.len, 5);
    w.stop().await;
}
