//! A drop's life after commit, on a real hub served on 127.0.0.1:0 with a
//! clock the tests move by hand: expiry and the sweeper (also catching up
//! at start), recall, key revocation through a new directory version, and
//! agreements that end or lose a party. Every history these tests make is
//! then audited in full, offline, from the served log.

mod common;

use std::time::Duration;

use jiff::Timestamp;
use sealdrop_hub::Hub;
use sealdrop_log::entry::{DeletionReason, HubStatement, LogEntry};
use sealdrop_proto::api::{
    Acked, Commit, Committed, CreatedDrop, DirectoryAccepted, DropState, Inbox, Recall, Recalled, Sent, SentDrop,
    Uploaded, code,
};
use sealdrop_proto::directory::{Agreement, Directory, RevokedKey, SignedDirectory};
use sealdrop_proto::ids::DropId;
use sealdrop_proto::keys::MemberSecretKey;
use sealdrop_proto::note::{open_doc, sign_doc};

use common::{DAY, Keys, World, content, err, inner_fsm, ok, party};

/// Camden, islington (two members: data-team and j.smith), hackney and
/// barnet; `inner-fsm` between the first three.
impl Keys {
    fn lifecycle_directory(&self, serial: u64, edit: impl FnOnce(&mut Directory)) -> SignedDirectory {
        let parties = vec![
            party(&[&self.camden], vec![]),
            party(&[&self.islington, &self.islington2], vec![]),
            party(&[&self.hackney], vec![]),
            party(&[&self.barnet], vec![]),
        ];
        let mut dir = common::directory(serial, parties, vec![inner_fsm()]);
        edit(&mut dir);
        SignedDirectory::sign(dir, &self.authority).unwrap()
    }
}

impl World {
    /// Bytes shaped like a drop's ciphertext to `recipients` (see [`common::ciphertext`]).
    fn ciphertext(&self, recipients: &[&str], len: usize) -> Vec<u8> {
        common::ciphertext(&self.keys.lifecycle_directory(1, |_| {}).directory, recipients, len)
    }

    async fn start_lifecycle() -> World {
        World::launch(|keys| keys.lifecycle_directory(1, |_| {}).note, |hub| hub).await
    }

    /// Creates (expiring in `expires_in` seconds), uploads and commits a
    /// drop from camden encrypted to every member of the recipients in directory 1.
    async fn send_expiring(&self, recipients: &[&str], data: &[u8], expires_in: i64) -> CreatedDrop {
        let camden = &self.keys.camden;
        let drop: CreatedDrop = ok(self.create(camden, recipients, expires_in).await).await;
        let _: Uploaded = ok(self.upload(camden, &drop.id, data).await).await;
        let dir = self.keys.lifecycle_directory(1, |_| {}).directory;
        let manifest = common::manifest(&dir, camden, &drop, recipients, data);
        let body = Commit { manifest: sign_doc(&manifest, &camden.signing), known_size: None };
        let _: Committed = ok(self.post(camden, &format!("/v1/drops/{}/commit", drop.id), &body).await).await;
        drop
    }

    async fn fetch_and_ack(&self, key: &MemberSecretKey, id: &DropId, data: &[u8]) -> Acked {
        let body = self.get(key, &format!("/v1/drops/{id}/content")).await.bytes().await.unwrap();
        assert_eq!(body.as_ref(), data);
        ok(self.post(key, &format!("/v1/drops/{id}/ack"), &self.receipt(key, id, data)).await).await
    }

    async fn recall(&self, key: &MemberSecretKey, id: &DropId) -> reqwest::Response {
        self.post(key, &format!("/v1/drops/{id}/recall"), &Recall {}).await
    }

    async fn sent_drop(&self, id: &DropId) -> SentDrop {
        let sent: Sent = ok(self.get(&self.keys.camden, &format!("/v1/sent?id={id}")).await).await;
        sent.drops.into_iter().next().unwrap()
    }

    async fn inbox_of(&self, key: &MemberSecretKey) -> Vec<DropId> {
        let inbox: Inbox = ok(self.get(key, "/v1/inbox").await).await;
        inbox.drops.into_iter().map(|d| d.id).collect()
    }

    async fn publish(&self, note: &str) -> reqwest::Response {
        self.client.post(format!("{}/v1/directory", self.base)).body(note.to_owned()).send().await.unwrap()
    }

    /// Every log entry, in order.
    async fn entries(&self) -> Vec<LogEntry> {
        self.all_entry_bytes().await.iter().map(|b| LogEntry::from_bytes(b).unwrap()).collect()
    }

    /// The hub statements in the log, opened with its log key.
    async fn statements(&self) -> Vec<HubStatement> {
        let key = self.hub().log_verifier();
        self.entries()
            .await
            .into_iter()
            .filter_map(|e| match e {
                LogEntry::Hub { statement } => {
                    Some(open_doc::<HubStatement>(&statement, std::slice::from_ref(&key)).unwrap().doc)
                }
                _ => None,
            })
            .collect()
    }

    /// The deletions the log records, as (drop, reason, time).
    async fn deletions(&self) -> Vec<(DropId, DeletionReason, i64)> {
        self.statements()
            .await
            .into_iter()
            .filter_map(|s| match s {
                HubStatement::DropDeleted { time, drop, reason } => Some((drop, reason, time.as_second())),
                HubStatement::DirectoryPublished { .. } => None,
            })
            .collect()
    }
}

#[tokio::test]
async fn expiry_deletes_the_ciphertext_logs_it_and_shows_non_delivery() {
    let mut w = World::start_lifecycle().await;
    let (islington, hackney) = (&w.keys.islington, &w.keys.hackney);
    let data = w.ciphertext(&["islington", "hackney"], 5000);
    let to_hackney = w.ciphertext(&["hackney"], 5000);
    // Partly acknowledged: islington has it, hackney never fetched.
    let partly = w.send_expiring(&["islington", "hackney"], &data, 2 * DAY).await;
    // Nobody acknowledged.
    let unread = w.send_expiring(&["hackney"], &to_hackney, 2 * DAY).await;
    // Lives longer.
    let later = w.send_expiring(&["hackney"], &to_hackney, 5 * DAY).await;
    w.fetch_and_ack(islington, &partly.id, &data).await;

    // Before the expiry nothing is swept.
    w.advance(2 * DAY - 1);
    assert!(w.hub().sweep().await.unwrap().is_empty());
    assert!(w.has_blob(&partly.id) && w.has_blob(&unread.id));

    w.advance(1);
    let report = w.hub().sweep().await.unwrap();
    assert_eq!((report.expired, report.agreement_ended, report.files_removed), (2, 0, 2));
    assert!(!w.has_blob(&partly.id) && !w.has_blob(&unread.id), "deleted means gone from disk");
    assert!(w.has_blob(&later.id));
    let expired_at = w.now();

    // The sender sees the non-delivery: expired, hackney never acknowledged.
    let s = w.sent_drop(&partly.id).await;
    assert_eq!((s.state, s.deleted.map(|t| t.as_second())), (DropState::Expired, Some(expired_at)));
    let by_party = |p: &str| s.recipients.iter().find(|r| r.party.as_str() == p).unwrap().clone();
    assert!(by_party("islington").acknowledged.is_some());
    assert_eq!((by_party("hackney").fetched, by_party("hackney").acknowledged), (None, None));
    assert_eq!(w.sent_drop(&unread.id).await.state, DropState::Expired);

    // Recipients see nothing more of it.
    assert_eq!(w.inbox_of(hackney).await, vec![later.id.clone()]);
    for id in [&partly.id, &unread.id] {
        let msg = err(w.get(hackney, &format!("/v1/drops/{id}/content")).await, 410, code::GONE).await;
        assert!(msg.contains("expired"), "{msg}");
        err(w.get(hackney, &format!("/v1/drops/{id}")).await, 410, code::GONE).await;
        let ack = w.receipt(hackney, id, &data);
        err(w.post(hackney, &format!("/v1/drops/{id}/ack"), &ack).await, 410, code::GONE).await;
    }

    // Each deletion is a hub-signed statement, not before the expiry.
    let deletions = w.deletions().await;
    let expired: Vec<_> = deletions.iter().filter(|(_, r, _)| *r == DeletionReason::Expired).collect();
    assert_eq!(expired.len(), 2);
    for (id, _, time) in expired {
        assert!([&partly.id, &unread.id].contains(&id));
        assert_eq!(*time, expired_at);
        assert!(*time >= partly.expires.as_second());
    }
    // A second sweep finds nothing: each deletion is logged once.
    assert!(w.hub().sweep().await.unwrap().is_empty());
    w.audit_passes().await;
    w.stop().await;
}

#[tokio::test]
async fn a_receipt_at_the_expiry_second_is_refused_before_the_sweeper_runs() {
    // A recipient that downloaded in time but acknowledges from the second
    // of the expiry on, while the sweeper has not deleted the drop yet: the
    // offline audit fails any acknowledgement logged then, so the hub must
    // refuse it, as it refuses the download.
    let mut w = World::start_lifecycle().await;
    let islington = &w.keys.islington;
    let data = w.ciphertext(&["islington"], 5000);
    let drop = w.send_expiring(&["islington"], &data, 2 * DAY).await;
    let body = w.get(islington, &format!("/v1/drops/{}/content", drop.id)).await.bytes().await.unwrap();
    assert_eq!(body.as_ref(), data.as_slice());
    w.advance(2 * DAY);
    assert_eq!(w.now(), drop.expires.as_second(), "the clock stands at the expiry second");
    let ack = w.receipt(islington, &drop.id, &data);
    let msg = err(w.post(islington, &format!("/v1/drops/{}/ack", drop.id), &ack).await, 410, code::GONE).await;
    assert!(msg.contains("expired"), "{msg}");
    assert!(w.has_blob(&drop.id), "the sweeper has not run: only the rule refused the receipt");
    assert!(!w.entries().await.iter().any(|e| matches!(e, LogEntry::DropAcknowledged { .. })));
    // The sweeper then ends it as expired, not delivered, and the log audits clean.
    assert_eq!(w.hub().sweep().await.unwrap().expired, 1);
    assert_eq!(w.sent_drop(&drop.id).await.state, DropState::Expired);
    w.audit_passes().await;
    w.stop().await;
}

#[tokio::test]
async fn a_drop_never_committed_is_removed_at_its_expiry_without_a_log_entry() {
    let mut w = World::start_lifecycle().await;
    let camden = &w.keys.camden;
    let drop: CreatedDrop = ok(w.create(camden, &["islington"], DAY).await).await;
    let _: Uploaded = ok(w.upload(camden, &drop.id, &content(100)).await).await;
    assert!(w.has_upload(&drop.id));
    let entries_before = w.entries().await.len();
    w.advance(DAY);
    let report = w.hub().sweep().await.unwrap();
    assert_eq!((report.abandoned, report.expired, report.files_removed), (1, 0, 1));
    assert!(!w.has_upload(&drop.id));
    let sent: Sent = ok(w.get(camden, "/v1/sent").await).await;
    assert!(sent.drops.is_empty(), "the drop's rows are gone: {sent:?}");
    assert_eq!(w.entries().await.len(), entries_before, "the log never knew it");
    w.stop().await;
}

#[tokio::test]
async fn the_running_hub_sweeps_by_itself() {
    let mut w = World::launch(
        |keys| keys.lifecycle_directory(1, |_| {}).note,
        |hub| hub.with_sweep_interval(Duration::from_millis(50)),
    )
    .await;
    let data = w.ciphertext(&["islington"], 400);
    let drop = w.send_expiring(&["islington"], &data, DAY).await;
    w.advance(DAY);
    // Waits for the background task (it ticks every 50 ms); the expiry
    // itself is reached by moving the clock, not by waiting.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while w.has_blob(&drop.id) {
        assert!(std::time::Instant::now() < deadline, "the sweeper did not delete the expired drop");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(w.sent_drop(&drop.id).await.state, DropState::Expired);
    assert_eq!(w.deletions().await, vec![(drop.id.clone(), DeletionReason::Expired, w.now())]);
    w.stop().await;
}

#[tokio::test]
async fn a_restarted_hub_catches_up_before_serving() {
    let mut w = World::start_lifecycle().await;
    let data = w.ciphertext(&["islington"], 400);
    let expiring = w.send_expiring(&["islington"], &data, DAY).await;
    let lasting = w.send_expiring(&["islington"], &data, 3 * DAY).await;
    w.stop().await;
    // Down for two days.
    w.advance(2 * DAY);
    let hub = Hub::open(&w.data_dir(), w.clock.clone()).unwrap();
    assert!(!w.has_blob(&expiring.id), "deleted while opening, before serving anything");
    assert!(w.has_blob(&lasting.id));
    w.serve(hub).await;
    assert_eq!(w.sent_drop(&expiring.id).await.state, DropState::Expired);
    assert_eq!(w.inbox_of(&w.keys.islington).await, vec![lasting.id.clone()]);
    assert_eq!(w.deletions().await, vec![(expiring.id.clone(), DeletionReason::Expired, w.now())]);
    w.audit_passes().await;
    w.stop().await;
}

#[tokio::test]
async fn recall_before_and_after_acknowledgement() {
    let mut w = World::start_lifecycle().await;
    let keys = w.keys.clone();
    let (camden, islington, hackney, barnet) = (&keys.camden, &keys.islington, &keys.hackney, &keys.barnet);
    let data = w.ciphertext(&["islington", "hackney"], 3000);

    // Before anyone fetched: recalled, deleted, gone from the inbox.
    let first = w.send_expiring(&["islington", "hackney"], &data, 3 * DAY).await;
    err(w.recall(islington, &first.id).await, 403, code::FORBIDDEN).await;
    err(w.recall(barnet, &first.id).await, 404, code::NOT_FOUND).await;
    w.advance(60);
    let recalled: Recalled = ok(w.recall(camden, &first.id).await).await;
    assert_eq!((recalled.recalled.as_second(), recalled.ciphertext_deleted), (w.now(), true));
    assert!(recalled.downloaded_by.is_empty());
    assert!(!w.has_blob(&first.id));
    assert!(w.inbox_of(islington).await.is_empty() && w.inbox_of(hackney).await.is_empty());
    let msg = err(w.get(islington, &format!("/v1/drops/{}/content", first.id)).await, 410, code::GONE).await;
    assert!(msg.contains("recalled"), "{msg}");
    err(w.get(islington, &format!("/v1/drops/{}", first.id)).await, 410, code::GONE).await;
    let s = w.sent_drop(&first.id).await;
    assert_eq!((s.state, s.deleted), (DropState::Recalled, Some(recalled.recalled)));
    err(w.recall(camden, &first.id).await, 410, code::GONE).await;
    // The log holds the sender's signed request, then the hub's deletion.
    let entries = w.entries().await;
    let i = usize::try_from(recalled.log_index).unwrap();
    let LogEntry::DropRecalled { drop, party, request, .. } = &entries[i] else { panic!("{:?}", entries[i]) };
    assert_eq!((drop, party.as_str(), request.method.as_str()), (&first.id, "camden", "POST"));
    assert_eq!(request.path, format!("/v1/drops/{}/recall", first.id));
    assert_eq!(request.key, "camden/data-team");
    assert_eq!(w.deletions().await, vec![(first.id.clone(), DeletionReason::Recalled, w.now())]);

    // Fetched but not acknowledged: the recall works and says who may hold a copy.
    let second = w.send_expiring(&["islington", "hackney"], &data, 3 * DAY).await;
    let _ = w.get(islington, &format!("/v1/drops/{}/content", second.id)).await.bytes().await.unwrap();
    let recalled: Recalled = ok(w.recall(camden, &second.id).await).await;
    let parties: Vec<&str> = recalled.downloaded_by.iter().map(|r| r.party.as_str()).collect();
    assert_eq!(parties, ["islington"]);

    // After an acknowledgement: refused, naming who has the data.
    let third = w.send_expiring(&["islington", "hackney"], &data, 3 * DAY).await;
    w.fetch_and_ack(islington, &third.id, &data).await;
    let msg = err(w.recall(camden, &third.id).await, 409, code::RECALL_REFUSED).await;
    assert!(msg.contains("islington acknowledged it at") && msg.contains("islington/data-team"), "{msg}");
    assert!(msg.contains("inner-fsm"), "{msg}");
    assert!(w.has_blob(&third.id), "nothing deleted");
    assert_eq!(w.sent_drop(&third.id).await.state, DropState::Committed);
    // Hackney can still fetch it.
    w.fetch_and_ack(hackney, &third.id, &data).await;

    // A drop never committed cannot be recalled (nobody can see it).
    let open: CreatedDrop = ok(w.create(camden, &["islington"], DAY).await).await;
    err(w.recall(camden, &open.id).await, 409, code::CONFLICT).await;
    w.audit_passes().await;
    w.stop().await;
}

#[tokio::test]
async fn a_revoked_key_is_refused_everywhere_and_old_drops_stay_fetchable() {
    let mut w = World::start_lifecycle().await;
    let keys = w.keys.clone();
    let (camden, islington, jsmith) = (&keys.camden, &keys.islington, &keys.islington2);
    let data = w.ciphertext(&["islington"], 2000);
    // Encrypted to both of islington's members while j.smith's key was valid.
    let before = w.send_expiring(&["islington"], &data, 3 * DAY).await;
    let pending: CreatedDrop = ok(w.create(camden, &["islington"], 3 * DAY).await).await;
    let _: Uploaded = ok(w.upload(camden, &pending.id, &data).await).await;

    // j.smith leaves: serial 2 revokes the key; a new key takes the name.
    let replacement = common::member("islington", "j.smith");
    let revocation = RevokedKey {
        member: "j.smith".parse().unwrap(),
        signing_key: jsmith.public().signing_key,
        revoked_at: Timestamp::from_second(w.now()).unwrap(),
        reason: "left the council".into(),
    };
    let serial2 = w.keys.lifecycle_directory(2, |d| {
        let isl = d.parties.iter_mut().find(|p| p.id.as_str() == "islington").unwrap();
        isl.members[1] = replacement.public().into();
        isl.revoked = vec![revocation.clone()];
    });
    let _: DirectoryAccepted = ok(w.publish(&serial2.note).await).await;

    // It can no longer authenticate, whatever it asks.
    for path in ["/v1/inbox", &format!("/v1/drops/{}/content", before.id), "/v1/sent"] {
        let msg = err(w.get(jsmith, path).await, 401, code::KEY_REVOKED).await;
        assert!(msg.contains("revoked") && msg.contains("left the council"), "{msg}");
    }
    let receipt = w.receipt(jsmith, &before.id, &data);
    err(w.post(jsmith, &format!("/v1/drops/{}/ack", before.id), &receipt).await, 401, code::KEY_REVOKED).await;
    // It can no longer be encrypted to: a manifest listing it is refused at commit.
    let stale =
        common::manifest(&w.keys.lifecycle_directory(1, |_| {}).directory, camden, &pending, &["islington"], &data);
    let body = Commit { manifest: sign_doc(&stale, &camden.signing), known_size: None };
    let msg =
        err(w.post(camden, &format!("/v1/drops/{}/commit", pending.id), &body).await, 422, code::BAD_MANIFEST).await;
    assert!(msg.contains("islington/j.smith"), "{msg}");
    // The replacement key works at once, and the other member can still
    // fetch the drop encrypted before the revocation.
    let _: Inbox = ok(w.get(&replacement, "/v1/inbox").await).await;
    let acked = w.fetch_and_ack(islington, &before.id, &data).await;
    assert!(acked.ciphertext_deleted);

    // A revocation is for good: a later version may not drop it or reinstate the key.
    let forgetful = w.keys.lifecycle_directory(3, |d| {
        let isl = d.parties.iter_mut().find(|p| p.id.as_str() == "islington").unwrap();
        isl.members[1] = replacement.public().into();
    });
    let msg = err(w.publish(&forgetful.note).await, 422, code::DIRECTORY_INVALID).await;
    assert!(msg.contains("revocation must be kept"), "{msg}");
    assert_eq!(w.hub().directory().directory.serial, 2);
    w.audit_passes().await;
    w.stop().await;
}

#[tokio::test]
async fn an_agreement_that_ends_stops_all_traffic_under_it() {
    let mut w = World::start_lifecycle().await;
    let keys = w.keys.clone();
    let (camden, islington, hackney) = (&keys.camden, &keys.islington, &keys.hackney);
    let data = w.ciphertext(&["islington", "hackney"], 1000);
    let waiting = w.send_expiring(&["islington", "hackney"], &data, 7 * DAY).await;
    let uncommitted: CreatedDrop = ok(w.create(camden, &["islington"], 7 * DAY).await).await;
    let _: Uploaded = ok(w.upload(camden, &uncommitted.id, &data).await).await;

    // Serial 2 removes hackney from the agreement: hackney may no longer fetch.
    let without_hackney = |d: &mut Directory| d.agreements[0].parties.retain(|p| p.as_str() != "hackney");
    let _: DirectoryAccepted = ok(w.publish(&w.keys.lifecycle_directory(2, without_hackney).note).await).await;
    assert!(w.inbox_of(hackney).await.is_empty());
    let msg =
        err(w.get(hackney, &format!("/v1/drops/{}/content", waiting.id)).await, 422, code::NOT_IN_AGREEMENT).await;
    assert!(msg.contains("`hackney` is not a party to agreement `inner-fsm`"), "{msg}");
    let msg = err(w.create(camden, &["hackney"], DAY).await, 422, code::NOT_IN_AGREEMENT).await;
    assert!(msg.contains("inner-fsm"), "{msg}");
    assert_eq!(w.inbox_of(islington).await, vec![waiting.id.clone()]);

    // Serial 3 ends the agreement now: the waiting drop is deleted at once
    // and logged as such; nothing more may be created, committed or fetched.
    w.advance(3600);
    let ended_at = Timestamp::from_second(w.now()).unwrap();
    let ended = |d: &mut Directory| {
        without_hackney(d);
        d.agreements[0].valid_until = ended_at;
    };
    let _: DirectoryAccepted = ok(w.publish(&w.keys.lifecycle_directory(3, ended).note).await).await;
    assert!(!w.has_blob(&waiting.id), "the publication swept it");
    assert_eq!(w.deletions().await, vec![(waiting.id.clone(), DeletionReason::AgreementEnded, w.now())]);
    assert_eq!(w.sent_drop(&waiting.id).await.state, DropState::Expired);
    assert!(w.inbox_of(islington).await.is_empty());
    let msg = err(w.create(camden, &["islington"], DAY).await, 422, code::AGREEMENT_NOT_IN_FORCE).await;
    assert!(msg.contains("agreement `inner-fsm` ended at"), "{msg}");
    let manifest =
        common::manifest(&w.keys.lifecycle_directory(1, |_| {}).directory, camden, &uncommitted, &["islington"], &data);
    let body = Commit { manifest: sign_doc(&manifest, &camden.signing), known_size: None };
    let path = format!("/v1/drops/{}/commit", uncommitted.id);
    err(w.post(camden, &path, &body).await, 422, code::AGREEMENT_NOT_IN_FORCE).await;
    err(w.get(islington, &format!("/v1/drops/{}/content", waiting.id)).await, 410, code::GONE).await;
    w.audit_passes().await;
    w.stop().await;
}

#[tokio::test]
async fn a_drop_may_not_outlive_its_agreement() {
    let mut w = World::launch(
        |keys| {
            keys.lifecycle_directory(1, |d| {
                d.agreements = vec![Agreement { valid_until: "2026-06-03T09:00:00Z".parse().unwrap(), ..inner_fsm() }];
            })
            .note
        },
        |hub| hub,
    )
    .await;
    let camden = &w.keys.camden;
    // common::START is 2026-06-01T09:00:00Z: the agreement has two days left.
    let msg = err(w.create(camden, &["islington"], 3 * DAY).await, 422, code::BAD_EXPIRY).await;
    assert!(msg.contains("agreement `inner-fsm` ends at 2026-06-03T09:00:00Z"), "{msg}");
    let _: CreatedDrop = ok(w.create(camden, &["islington"], 2 * DAY).await).await;
    w.stop().await;
}
