//! Realistic generated logs for tests and benchmarks. Not a stable API.
//!
//! [`generate`] builds a log with real keys: an authority, a hub log key,
//! one member key and one witness key per party, two directory versions
//! (serial 1 at entry 0, serial 2 half way), and drops that follow the
//! hub's lifecycle: most are committed to one recipient, fetched,
//! acknowledged and deleted as delivered; every tenth goes to two
//! recipients; every fiftieth expires unfetched; every hundredth (offset 33)
//! is fetched, then recalled by its sender (a `drop_recalled` entry and the
//! hub's `Recalled` deletion right after it). Entry `i` is logged at
//! `T0 + i` seconds. The checkpoint covers every entry and is cosigned by
//! every party's witness.
//!
//! Signing runs on two threads: a million entries take seconds in release.

use std::collections::BTreeMap;
use std::io::{self, Write};

use jiff::{SignedDuration, Timestamp};
use sha2::{Digest, Sha256};

use sealdrop_proto::directory::{Agreement, Directory, HubListing, Party, SignedDirectory};
use sealdrop_proto::drop::{EncryptedTo, Manifest, Receipt};
use sealdrop_proto::ids::{DropId, MemberName, PartyId, key_name};
use sealdrop_proto::keys::{MemberSecretKey, NoteSigningKey};
use sealdrop_proto::note::sign_doc;
use sealdrop_proto::request::sign_request;

use crate::audit::AuditInput;
use crate::bundle::{BundleMeta, BundleWriter};
use crate::cosign::{add_cosignatures, cosign};
use crate::entry::{DeletionReason, HubStatement, LogEntry, SignedRequest};
use crate::tree::RootBuilder;

/// The hub's origin in generated logs.
pub const ORIGIN: &str = "hub.sealdrop.test";
/// The agreement every party shares.
pub const AGREEMENT: &str = "london-data-sharing";
/// When entry 0 is logged.
pub const T0: &str = "2026-03-02T09:00:00Z";

const NAMES: [&str; 12] = [
    "camden",
    "islington",
    "hackney",
    "barnet",
    "haringey",
    "enfield",
    "westminster",
    "lambeth",
    "southwark",
    "lewisham",
    "greenwich",
    "brent",
];

/// The keys of a generated log.
pub struct TestKeys {
    /// Signs directories.
    pub authority: NoteSigningKey,
    /// The hub's log key, named [`ORIGIN`].
    pub log: NoteSigningKey,
    /// One member (`data-team`) per party, in party order.
    pub members: Vec<MemberSecretKey>,
    /// One witness per party (`witness.<party>`), in party order.
    pub witnesses: Vec<NoteSigningKey>,
    /// Each member's age recipient (computing one takes an X25519 multiplication).
    age_recipients: Vec<String>,
}

impl std::fmt::Debug for TestKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestKeys").field("parties", &self.members.len()).finish_non_exhaustive()
    }
}

impl TestKeys {
    /// Fresh keys for `parties` parties.
    pub fn new(parties: usize) -> Self {
        let members = (0..parties)
            .map(|i| {
                let party: PartyId = match NAMES.get(i) {
                    Some(n) => n.parse().expect("valid"),
                    None => format!("council-{i}").parse().expect("valid"),
                };
                MemberSecretKey::generate(party, "data-team".parse().expect("valid"))
            })
            .collect::<Vec<_>>();
        let witnesses = members
            .iter()
            .map(|m| NoteSigningKey::generate(&format!("witness.{}", m.party)).expect("valid name"))
            .collect();
        Self {
            authority: NoteSigningKey::generate("authority.sealdrop.test").expect("valid name"),
            log: NoteSigningKey::generate(ORIGIN).expect("valid name"),
            age_recipients: members.iter().map(|m| m.public().age_recipient).collect(),
            members,
            witnesses,
        }
    }

    /// Keys chosen by the caller, for logs that must come out the same on
    /// every run (fuzzing fixtures): `members` and `witnesses` in party order.
    pub fn from_keys(
        authority: NoteSigningKey,
        log: NoteSigningKey,
        members: Vec<MemberSecretKey>,
        witnesses: Vec<NoteSigningKey>,
    ) -> Self {
        assert_eq!(members.len(), witnesses.len(), "one witness per party");
        Self {
            authority,
            log,
            age_recipients: members.iter().map(|m| m.public().age_recipient).collect(),
            members,
            witnesses,
        }
    }

    /// Party `i`'s id.
    pub fn party(&self, i: usize) -> &PartyId {
        &self.members[i].party
    }

    /// The member of `party`.
    pub fn member(&self, party: &PartyId) -> &MemberSecretKey {
        self.members.iter().find(|m| &m.party == party).expect("a party of the generated log")
    }

    /// The age recipient of `party`'s member.
    pub fn age_recipient(&self, party: &PartyId) -> &str {
        let i = self.members.iter().position(|m| &m.party == party).expect("a party of the generated log");
        &self.age_recipients[i]
    }

    /// The directory of serial `serial` (hub listed, witnesses listed, one agreement of all parties).
    pub fn directory(&self, serial: u64) -> SignedDirectory {
        let t0: Timestamp = T0.parse().expect("valid");
        let parties = self
            .members
            .iter()
            .zip(&self.witnesses)
            .map(|(m, w)| {
                let card = m.public();
                Party {
                    witness_keys: vec![w.cosigner_verifier()],
                    revoked: vec![],
                    ..Party::with_member(&m.party.as_str().to_uppercase(), card)
                }
            })
            .collect();
        let directory = Directory {
            serial,
            issued_at: t0 - SignedDuration::from_hours(24) + SignedDuration::from_secs(serial as i64),
            hub: Some(HubListing { origin: ORIGIN.into(), log_key: self.log.verifier() }),
            parties,
            agreements: vec![Agreement {
                id: AGREEMENT.into(),
                title: format!("London data sharing (version {serial})"),
                purpose: "Testing".into(),
                lawful_basis: "UK GDPR 6(1)(e)".into(),
                parties: self.members.iter().map(|m| m.party.clone()).collect(),
                max_expiry_days: 30,
                valid_from: "2026-01-01T00:00:00Z".parse().expect("valid"),
                valid_until: "2030-01-01T00:00:00Z".parse().expect("valid"),
                require_pq: false,
            }],
        };
        SignedDirectory::sign(directory, &self.authority).expect("a consistent directory")
    }

    /// A hub statement entry, signed with the log key.
    pub fn hub_entry(&self, statement: &HubStatement) -> Vec<u8> {
        LogEntry::Hub { statement: sign_doc(statement, &self.log) }.to_bytes().expect("small")
    }

    /// A commit entry, the manifest signed by its sender's member key.
    pub fn commit_entry(&self, committed: Timestamp, manifest: &Manifest) -> Vec<u8> {
        let note = sign_doc(manifest, &self.member(&manifest.sender).signing);
        LogEntry::DropCommitted { committed, manifest: note }.to_bytes().expect("small")
    }

    /// A fetch entry, the request signed by `party`'s member key.
    pub fn fetch_entry(&self, drop: &DropId, party: &PartyId, fetched: Timestamp) -> Vec<u8> {
        let path = format!("/v1/drops/{drop}/content");
        let auth = sign_request(&self.member(party).signing, "GET", &path, fetched.as_second(), Some(b""));
        let request = SignedRequest::from_auth(&auth, "GET", &path);
        LogEntry::DropFetched { drop: drop.clone(), party: party.clone(), fetched, request }.to_bytes().expect("small")
    }

    /// A recall entry, the request (`POST /v1/drops/<id>/recall`, body `{}`)
    /// signed by `party`'s member key at `recalled`.
    pub fn recall_entry(&self, drop: &DropId, party: &PartyId, recalled: Timestamp) -> Vec<u8> {
        let request = self.signed_request(party, "POST", &format!("/v1/drops/{drop}/recall"), recalled, b"{}");
        LogEntry::DropRecalled { drop: drop.clone(), party: party.clone(), recalled, request }
            .to_bytes()
            .expect("small")
    }

    /// A request `method path` with `body`, signed by `party`'s member key
    /// at `time` (for entries made by hand).
    pub fn signed_request(
        &self,
        party: &PartyId,
        method: &str,
        path: &str,
        time: Timestamp,
        body: &[u8],
    ) -> SignedRequest {
        let auth = sign_request(&self.member(party).signing, method, path, time.as_second(), Some(body));
        SignedRequest::from_auth(&auth, method, path)
    }

    /// An acknowledgement entry, the receipt signed by its recipient's member key.
    pub fn ack_entry(&self, acknowledged: Timestamp, receipt: &Receipt) -> Vec<u8> {
        let note = sign_doc(receipt, &self.member(&receipt.recipient).signing);
        LogEntry::DropAcknowledged { acknowledged, receipt: note }.to_bytes().expect("small")
    }

    /// A manifest from party `sender` to `recipients`.
    pub fn manifest(
        &self,
        drop: DropId,
        sender: &PartyId,
        recipients: &[PartyId],
        serial: u64,
        created: Timestamp,
        expires: Timestamp,
    ) -> Manifest {
        let digest = Sha256::digest(drop.as_str().as_bytes());
        Manifest {
            sender: sender.clone(),
            sender_member: data_team(),
            recipients: recipients.to_vec(),
            encrypted_to: recipients
                .iter()
                .map(|r| EncryptedTo {
                    key: key_name(r, &data_team()),
                    age_recipient: self.age_recipient(r).to_owned(),
                })
                .collect(),
            agreement: AGREEMENT.into(),
            directory_serial: serial,
            ciphertext_sha256: hex::encode(digest),
            ciphertext_len: 4096 + u64::from(digest[0]) * 100,
            created,
            expires,
            drop,
        }
    }

    /// The receipt `recipient` signs for a drop described by `manifest`.
    pub fn receipt(&self, manifest: &Manifest, recipient: &PartyId, received: Timestamp) -> Receipt {
        Receipt {
            drop: manifest.drop.clone(),
            recipient: recipient.clone(),
            member: data_team(),
            ciphertext_sha256: manifest.ciphertext_sha256.clone(),
            ciphertext_len: manifest.ciphertext_len,
            received,
        }
    }
}

fn data_team() -> MemberName {
    "data-team".parse().expect("valid")
}

/// A generated log.
#[derive(Debug)]
pub struct GeneratedLog {
    /// The entries in order.
    pub entries: Vec<Vec<u8>>,
    /// The signed directory notes by serial.
    pub directories: BTreeMap<u64, String>,
    /// The checkpoint over every entry, cosigned by every party's witness.
    pub checkpoint: String,
    /// The keys.
    pub keys: TestKeys,
}

/// The time of entry `i`.
pub fn time_of(i: u64) -> Timestamp {
    T0.parse::<Timestamp>().expect("valid") + SignedDuration::from_secs(i as i64)
}

/// What happens to a generated drop (the mix generators share).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Committed, fetched, acknowledged, deleted as delivered.
    Delivered,
    /// The same with two recipients.
    TwoRecipients,
    /// Committed, then deleted as expired.
    Expired,
    /// Committed, fetched, then recalled by its sender and deleted.
    Recalled,
}

/// The fate of drop number `d` among `parties` parties.
pub fn kind(d: usize, parties: usize) -> Kind {
    if d % 50 == 49 {
        Kind::Expired
    } else if d % 100 == 33 {
        Kind::Recalled
    } else if d % 10 == 9 && parties >= 3 {
        Kind::TwoRecipients
    } else {
        Kind::Delivered
    }
}

/// How many log entries a drop of kind `k` makes.
pub fn entry_count(k: Kind) -> u64 {
    match k {
        Kind::Delivered => 4,
        Kind::TwoRecipients => 6,
        Kind::Expired => 2,
        Kind::Recalled => 4,
    }
}

/// A deterministic drop id for drop number `d`.
pub fn drop_id(salt: &[u8; 16], d: usize) -> DropId {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut h = Sha256::new();
    h.update(salt);
    h.update((d as u64).to_be_bytes());
    let digest = h.finalize();
    let s: String = digest[..26].iter().map(|b| ALPHABET[usize::from(b & 31)] as char).collect();
    format!("d-{s}").parse().expect("valid drop id")
}

/// The entries of drop `d`, starting at entry `start`, under directory `serial`.
fn drop_entries(keys: &TestKeys, salt: &[u8; 16], d: usize, start: u64, serial: u64) -> Vec<Vec<u8>> {
    let n = keys.members.len();
    let k = kind(d, n);
    let sender = keys.party(d % n);
    let mut recipients = vec![keys.party((d + 1) % n).clone()];
    if k == Kind::TwoRecipients {
        recipients.push(keys.party((d + 2) % n).clone());
    }
    let t = time_of(start);
    let expires = match k {
        Kind::Expired => t + SignedDuration::from_secs(1),
        _ => t + SignedDuration::from_hours(7 * 24),
    };
    let id = drop_id(salt, d);
    let m = keys.manifest(id.clone(), sender, &recipients, serial, t - SignedDuration::from_secs(60), expires);
    let mut out = vec![keys.commit_entry(t, &m)];
    let mut i = start + 1;
    let delete = |out: &mut Vec<Vec<u8>>, at: u64, reason| {
        out.push(keys.hub_entry(&HubStatement::DropDeleted { time: time_of(at), drop: id.clone(), reason }));
    };
    match k {
        Kind::Expired => delete(&mut out, i, DeletionReason::Expired),
        Kind::Recalled => {
            out.push(keys.fetch_entry(&m.drop, &recipients[0], time_of(i)));
            out.push(keys.recall_entry(&m.drop, sender, time_of(i + 1)));
            delete(&mut out, i + 2, DeletionReason::Recalled);
        }
        Kind::Delivered | Kind::TwoRecipients => {
            for r in &recipients {
                out.push(keys.fetch_entry(&m.drop, r, time_of(i)));
                out.push(keys.ack_entry(time_of(i + 1), &keys.receipt(&m, r, time_of(i + 1))));
                i += 2;
            }
            delete(&mut out, i, DeletionReason::Delivered);
        }
    }
    debug_assert_eq!(out.len() as u64, entry_count(k));
    out
}

/// Generates a log of `drops` drops among `parties` parties (at least 2).
pub fn generate(parties: usize, drops: usize) -> GeneratedLog {
    assert!(parties >= 2, "a log needs at least two parties");
    let keys = TestKeys::new(parties);
    let salt: [u8; 16] = rand::random();
    let d1 = keys.directory(1);
    let d2 = keys.directory(2);
    let half = drops / 2;
    // Where each drop starts: entry 0 publishes serial 1, serial 2 comes before drop `half`.
    let mut starts = Vec::with_capacity(drops);
    let mut next = 1u64;
    let mut d2_at = 1u64;
    for d in 0..drops {
        if d == half {
            d2_at = next;
            next += 1;
        }
        starts.push(next);
        next += entry_count(kind(d, parties));
    }
    if drops == 0 {
        d2_at = 1;
        next = 2;
    }
    let workers = 2usize;
    let per = drops.div_ceil(workers).max(1);
    let parts: Vec<Vec<Vec<u8>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..drops)
            .step_by(per)
            .map(|lo| {
                let (keys, starts, salt) = (&keys, &starts, &salt);
                s.spawn(move || {
                    let mut out = Vec::new();
                    for (d, &start) in starts.iter().enumerate().skip(lo).take(per) {
                        let serial = if d < half { 1 } else { 2 };
                        out.extend(drop_entries(keys, salt, d, start, serial));
                    }
                    out
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("generator panicked")).collect()
    });
    let publish = |at: u64, d: &SignedDirectory| {
        keys.hub_entry(&HubStatement::DirectoryPublished {
            time: time_of(at),
            serial: d.directory.serial,
            sha256: d.sha256_hex(),
        })
    };
    let mut entries = Vec::with_capacity(next as usize);
    entries.push(publish(0, &d1));
    for e in parts.into_iter().flatten() {
        if entries.len() as u64 == d2_at {
            entries.push(publish(d2_at, &d2));
        }
        entries.push(e);
    }
    if entries.len() as u64 == d2_at {
        entries.push(publish(d2_at, &d2));
    }
    debug_assert_eq!(entries.len() as u64, next);
    let mut log = GeneratedLog {
        entries,
        directories: BTreeMap::from([(1, d1.note), (2, d2.note)]),
        checkpoint: String::new(),
        keys,
    };
    log.reseal();
    log
}

impl GeneratedLog {
    /// Re-signs the checkpoint over the current entries, cosigned by every
    /// party's witness (what a hub that logged them would publish).
    pub fn reseal(&mut self) {
        let mut root = RootBuilder::new();
        for e in &self.entries {
            root.push(e);
        }
        let note = crate::checkpoint::sign(&self.keys.log, root.size(), &root.root());
        let time = time_of(root.size()).as_second() as u64;
        let lines: Vec<String> = self.keys.witnesses.iter().map(|w| cosign(&note, w, time)).collect();
        self.checkpoint = add_cosignatures(&note, &lines).expect("well-formed");
    }

    /// The audit input for this log.
    pub fn audit_input(&self, required_witnesses: usize) -> AuditInput<'_> {
        AuditInput::new(
            self.keys.log.verifier(),
            self.keys.authority.verifier(),
            self.checkpoint.clone(),
            self.directories.clone(),
            self.entries.iter().map(|e| Ok(e.clone())),
            required_witnesses,
        )
    }

    /// Entry `i`, parsed.
    pub fn entry(&self, i: usize) -> LogEntry {
        LogEntry::from_bytes(&self.entries[i]).expect("generated entries parse")
    }

    /// The bundle metadata.
    pub fn bundle_meta(&self) -> BundleMeta {
        BundleMeta::new(self.keys.log.verifier(), self.keys.authority.verifier(), self.checkpoint.clone())
    }

    /// Writes the log as an audit bundle.
    pub fn write_bundle<W: Write>(&self, writer: W) -> io::Result<W> {
        let mut w = BundleWriter::new(writer, &self.bundle_meta())?;
        for (serial, note) in &self.directories {
            w.add_directory(*serial, note)?;
        }
        for e in &self.entries {
            w.add_entry(e)?;
        }
        w.finish()
    }
}
