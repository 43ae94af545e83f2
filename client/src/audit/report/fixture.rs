//! A hand-built log for the report's tests.

use std::collections::BTreeMap;

use jiff::Timestamp;
use sealdrop_log::entry::SignedRequest;
use sealdrop_log::entry::{DeletionReason, HubStatement, LogEntry};
use sealdrop_proto::directory::{Agreement, Party, RevokedKey};
use sealdrop_proto::directory::{Directory, SignedDirectory};
use sealdrop_proto::drop::EncryptedTo;
use sealdrop_proto::drop::{Manifest, Receipt};
use sealdrop_proto::ids::DropId;
use sealdrop_proto::ids::PartyId;
use sealdrop_proto::keys::{MemberSecretKey, NoteSigningKey};
use sealdrop_proto::note::sign_doc;

use super::model::{Flow, Report, ReportInput, Totals};

pub(crate) const SCRIPT_NAME: &str = "Hackney <script>alert(\"x\")</script>";

pub(crate) fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

pub(crate) fn pid(s: &str) -> PartyId {
    s.parse().unwrap()
}

pub(crate) fn member(party: &str) -> MemberSecretKey {
    MemberSecretKey::generate(pid(party), "data-team".parse().unwrap())
}

/// A member key from before post-quantum keys: drops to it are classic.
pub(crate) fn classic_member(party: &str) -> MemberSecretKey {
    MemberSecretKey::generate_classic(pid(party), "data-team".parse().unwrap())
}

pub(crate) fn party(key: &MemberSecretKey, name: &str, witness: Option<&NoteSigningKey>) -> Party {
    let card = key.public();
    Party {
        witness_keys: witness.map(|w| vec![w.cosigner_verifier()]).unwrap_or_default(),
        revoked: vec![],
        ..Party::with_member(name, card)
    }
}

pub(crate) fn agreement(id: &str, parties: &[&str], max_expiry_days: u32) -> Agreement {
    Agreement {
        id: id.into(),
        title: format!("Title of {id}"),
        purpose: "p".into(),
        lawful_basis: "UK GDPR 6(1)(e)".into(),
        parties: parties.iter().map(|p| pid(p)).collect(),
        max_expiry_days,
        valid_from: ts("2025-01-01T00:00:00Z"),
        valid_until: ts("2030-01-01T00:00:00Z"),
        require_pq: false,
    }
}

/// A hand-built log: three parties, two directory versions, six drops.
pub(crate) struct Fixture {
    pub(crate) hub: NoteSigningKey,
    pub(crate) keys: BTreeMap<&'static str, MemberSecretKey>,
    pub(crate) entries: Vec<LogEntry>,
    pub(crate) dirs: Vec<SignedDirectory>,
    pub(crate) old_islington_fp: String,
    pub(crate) new_islington_fp: String,
    pub(crate) hackney_witness_fp: String,
}

impl Fixture {
    pub(crate) fn commit(&mut self, sender: &str, to: &[&str], agreement: &str, len: u64, at: &str) -> DropId {
        let drop = DropId::random();
        let committed = ts(at);
        let m = Manifest {
            drop: drop.clone(),
            sender: pid(sender),
            sender_member: "data-team".parse().unwrap(),
            recipients: to.iter().map(|p| pid(p)).collect(),
            encrypted_to: to
                .iter()
                .map(|p| EncryptedTo {
                    key: format!("{p}/data-team"),
                    age_recipient: self.keys[p].public().age_recipient,
                })
                .collect(),
            agreement: agreement.into(),
            directory_serial: 1,
            ciphertext_sha256: "ab".repeat(32),
            ciphertext_len: len,
            created: committed,
            expires: committed.checked_add(jiff::SignedDuration::from_hours(14 * 24)).unwrap(),
        };
        let manifest = sign_doc(&m, &self.keys[sender].signing);
        self.entries.push(LogEntry::DropCommitted { committed, manifest });
        drop
    }

    pub(crate) fn fetch(&mut self, drop: &DropId, party: &str, at: &str) {
        let request = SignedRequest {
            method: "GET".into(),
            path: format!("/v1/drops/{drop}/content"),
            key: format!("{party}/data-team"),
            time: ts(at).as_second(),
            nonce: "n".into(),
            content: "UNSIGNED".into(),
            signature: "c2ln".into(),
        };
        self.entries.push(LogEntry::DropFetched { drop: drop.clone(), party: pid(party), fetched: ts(at), request });
    }

    pub(crate) fn ack(&mut self, drop: &DropId, party: &str, at: &str) {
        let r = Receipt {
            drop: drop.clone(),
            recipient: pid(party),
            member: "data-team".parse().unwrap(),
            ciphertext_sha256: "ab".repeat(32),
            ciphertext_len: 1,
            received: ts(at),
        };
        let receipt = sign_doc(&r, &self.keys[party].signing);
        self.entries.push(LogEntry::DropAcknowledged { acknowledged: ts(at), receipt });
    }

    pub(crate) fn recall(&mut self, drop: &DropId, party: &str, at: &str) {
        let request = SignedRequest {
            method: "POST".into(),
            path: format!("/v1/drops/{drop}/recall"),
            key: format!("{party}/data-team"),
            time: ts(at).as_second(),
            nonce: "r".into(),
            content: sealdrop_proto::request::body_sha256(b"{}"),
            signature: "c2ln".into(),
        };
        self.entries.push(LogEntry::DropRecalled { drop: drop.clone(), party: pid(party), recalled: ts(at), request });
    }

    pub(crate) fn hub(&mut self, st: HubStatement) {
        self.entries.push(LogEntry::Hub { statement: sign_doc(&st, &self.hub) });
    }

    pub(crate) fn delete(&mut self, drop: &DropId, reason: DeletionReason, at: &str) {
        self.hub(HubStatement::DropDeleted { time: ts(at), drop: drop.clone(), reason });
    }

    pub(crate) fn publish(&mut self, serial: u64, at: &str) {
        let d = self.dirs.iter().find(|d| d.directory.serial == serial).unwrap();
        let sha256 = d.sha256_hex();
        self.hub(HubStatement::DirectoryPublished { time: ts(at), serial, sha256 });
    }

    pub(crate) fn input(&self, agreement: Option<&str>, since: Option<&str>) -> ReportInput<'_> {
        ReportInput {
            entries: Box::new(self.entries.iter().cloned().enumerate().map(|(i, e)| (i as u64, e))),
            // Out of order on purpose: the report sorts by serial.
            directories: self.dirs.iter().rev().cloned().collect(),
            origin: "hub.example/log".into(),
            checkpoint_size: self.entries.len() as u64,
            agreement: agreement.map(str::to_owned),
            since: since.map(ts),
            until: None,
            generated_at: ts("2026-03-01T12:00:00Z"),
        }
    }
}

/// Drops D1 to D6 (in that order) over two directory versions, the
/// second of which replaces islington/data-team's key. Camden's key is
/// post-quantum, Hackney's and Islington's first one classic, Islington's
/// new one post-quantum: D2, D3, D4 and D5 are post-quantum drops, D1 and
/// D6 classic.
pub(crate) fn fixture() -> (Fixture, Vec<DropId>) {
    let authority = NoteSigningKey::generate("authority.example").unwrap();
    let mut keys = BTreeMap::new();
    keys.insert("camden", member("camden"));
    keys.insert("islington", classic_member("islington"));
    keys.insert("hackney", classic_member("hackney"));
    let v1 = Directory {
        serial: 1,
        issued_at: ts("2026-01-01T08:00:00Z"),
        hub: None,
        parties: vec![
            party(&keys["camden"], "Camden", None),
            party(&keys["islington"], "Islington", None),
            party(&keys["hackney"], SCRIPT_NAME, None),
        ],
        agreements: vec![agreement("inner-fsm", &["camden", "islington", "hackney"], 30)],
    };
    // Version 2: Islington's key is replaced (the old one revoked),
    // Hackney gains a witness key, a new agreement appears and the old
    // one's expiry shortens.
    let old_islington = keys["islington"].public();
    let old_islington_fp = old_islington.signing_key.fingerprint();
    // The old key signs islington's documents until version 2 is published.
    let new_islington = member("islington");
    let new_islington_fp = new_islington.signing.verifier().fingerprint();
    let witness = NoteSigningKey::generate("witness.hackney").unwrap();
    let mut v2 = Directory {
        serial: 2,
        issued_at: ts("2026-02-01T08:00:00Z"),
        hub: None,
        parties: vec![
            party(&keys["camden"], "Camden", None),
            party(&new_islington, "Islington", None),
            party(&keys["hackney"], SCRIPT_NAME, Some(&witness)),
        ],
        agreements: vec![
            agreement("inner-fsm", &["camden", "islington", "hackney"], 14),
            agreement("sen-transfer", &["camden", "islington"], 30),
        ],
    };
    v2.parties[1].revoked = vec![RevokedKey {
        member: old_islington.member,
        signing_key: old_islington.signing_key,
        revoked_at: ts("2026-01-31T17:00:00Z"),
        reason: "laptop lost".into(),
    }];
    let dirs = vec![SignedDirectory::sign(v1, &authority).unwrap(), SignedDirectory::sign(v2, &authority).unwrap()];
    let mut f = Fixture {
        hub: NoteSigningKey::generate("hub.example/log").unwrap(),
        keys,
        entries: vec![],
        dirs,
        old_islington_fp,
        new_islington_fp,
        hackney_witness_fp: witness.cosigner_verifier().fingerprint(),
    };
    f.publish(1, "2026-01-01T09:00:00Z");
    // D1: to two recipients, both acknowledge (2 h and 28 h).
    let d1 = f.commit("camden", &["islington", "hackney"], "inner-fsm", 1000, "2026-01-05T10:00:00Z");
    f.fetch(&d1, "islington", "2026-01-05T11:00:00Z");
    f.ack(&d1, "islington", "2026-01-05T12:00:00Z");
    f.fetch(&d1, "hackney", "2026-01-06T10:00:00Z");
    f.fetch(&d1, "hackney", "2026-01-06T11:00:00Z");
    f.ack(&d1, "hackney", "2026-01-06T14:00:00Z");
    f.delete(&d1, DeletionReason::Delivered, "2026-01-06T14:00:00Z");
    // D2: expires undelivered.
    let d2 = f.commit("islington", &["camden"], "inner-fsm", 2000, "2026-01-10T08:00:00Z");
    // D3: recalled.
    let d3 = f.commit("hackney", &["camden"], "inner-fsm", 500, "2026-01-12T09:00:00Z");
    f.recall(&d3, "hackney", "2026-01-12T10:00:00Z");
    f.delete(&d3, DeletionReason::Recalled, "2026-01-12T10:00:00Z");
    // D6: acknowledged after 24 h.
    let d6 = f.commit("camden", &["islington"], "inner-fsm", 700, "2026-01-20T09:00:00Z");
    f.ack(&d6, "islington", "2026-01-21T09:00:00Z");
    f.delete(&d6, DeletionReason::Delivered, "2026-01-21T09:00:00Z");
    f.delete(&d2, DeletionReason::Expired, "2026-01-24T08:00:00Z");
    f.publish(2, "2026-02-01T09:00:00Z");
    f.keys.insert("islington", new_islington);
    // D4: under the new agreement, acknowledged after 6 h.
    let d4 = f.commit("camden", &["islington"], "sen-transfer", 4000, "2026-02-03T09:00:00Z");
    f.fetch(&d4, "islington", "2026-02-03T09:30:00Z");
    f.ack(&d4, "islington", "2026-02-03T15:00:00Z");
    f.delete(&d4, DeletionReason::Delivered, "2026-02-03T15:00:00Z");
    // D5: fetched, still waiting.
    let d5 = f.commit("islington", &["camden"], "inner-fsm", 300, "2026-02-10T09:00:00Z");
    f.fetch(&d5, "camden", "2026-02-10T10:00:00Z");
    (f, vec![d1, d2, d3, d4, d5, d6])
}

pub(crate) fn flow(r: &Report, s: &str, t: &str) -> Flow {
    r.matrix.get(&(pid(s), pid(t))).copied().unwrap_or_default()
}

pub(crate) fn agreement_totals<'a>(r: &'a Report, id: &str) -> &'a Totals {
    &r.agreements.iter().find(|a| a.id == id).unwrap().totals
}
