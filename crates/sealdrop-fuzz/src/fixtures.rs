//! The keys and documents every harness checks against, the same on every
//! run: the published example keys (`keys-example/`), a hub log key and
//! witness keys made from fixed seeds, and a small transfer log whose every
//! signature is deterministic (Ed25519 signs deterministically; nonces are
//! fixed). Seed corpora signed with these keys therefore stay valid, and a
//! harness can tell a genuine signature from a forged one by signing again.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::SigningKey;
use jiff::SignedDuration;

use sealdrop_hub::service::Caller;
use sealdrop_log::cosign::cosign;
use sealdrop_log::entry::{DeletionReason, HubStatement, LogEntry, SignedRequest};
use sealdrop_log::testlog::{GeneratedLog, ORIGIN, TestKeys, drop_id, time_of};
use sealdrop_log::tree::MemoryTree;
use sealdrop_proto::directory::SignedDirectory;
use sealdrop_proto::drop::Manifest;
use sealdrop_proto::ids::{DropId, PartyId};
use sealdrop_proto::keys::{MemberSecretKey, NoteSigningKey, NoteVerifierKey};
use sealdrop_proto::request::{RequestAuth, body_sha256, signed_string};

const AUTHORITY_KEY: &str = include_str!("../../../keys-example/authority.key");
const EXAMPLE_DIRECTORY: &str = include_str!("../../../keys-example/directory.signed");
/// The example members whose secret keys the harnesses hold, in party order.
const MEMBER_KEYS: [&str; 3] = [
    include_str!("../../../keys-example/parties/camden.key"),
    include_str!("../../../keys-example/parties/islington.key"),
    include_str!("../../../keys-example/parties/hackney.key"),
];

/// The hub's clock in every request the harnesses check (2027-01-15).
pub const NOW: i64 = 1_800_000_000;

/// Everything the harnesses verify against.
pub struct Fixture {
    /// The published example directory (33 councils, serial 1).
    pub example: SignedDirectory,
    /// The fixture log: entries, its two directory versions, a checkpoint
    /// cosigned by every witness, and its keys: the example authority, a
    /// seeded log key (origin [`ORIGIN`]), camden, islington and hackney from
    /// `keys-example/`, and one seeded witness per party.
    pub log: GeneratedLog,
    /// The log's Merkle tree, for roots and proofs at every size.
    pub tree: MemoryTree,
    /// The text of every signed note inside the log's entries and
    /// directories (what the signatures cover).
    pub signed_texts: Vec<String>,
    /// Every request logged in the log's entries.
    pub requests: Vec<SignedRequest>,
}

impl Fixture {
    /// Member `i`'s secret key (0 camden, 1 islington, 2 hackney).
    pub fn member(&self, i: usize) -> &MemberSecretKey {
        &self.log.keys.members[i]
    }

    /// The secret key of the member that signs as `name`, if the harnesses hold it.
    pub fn member_named(&self, name: &str) -> Option<&MemberSecretKey> {
        self.log.keys.members.iter().find(|m| m.signing.name() == name)
    }

    /// The hub's view of member `i` as the caller of a request, from the example directory.
    pub fn caller(&self, i: usize) -> Caller {
        let m = self.member(i);
        let (party, member) =
            self.example.directory.member_by_key_name(m.signing.name()).expect("example members are in the directory");
        Caller { party: party.id.clone(), member: member.member.clone(), key: member.signing_key.clone() }
    }

    /// The log key's verifier.
    pub fn log_key(&self) -> NoteVerifierKey {
        self.log.keys.log.verifier()
    }

    /// The witnesses' cosignature verifier keys.
    pub fn witness_keys(&self) -> Vec<NoteVerifierKey> {
        self.log.keys.witnesses.iter().map(NoteSigningKey::cosigner_verifier).collect()
    }

    /// The checkpoint of the first `size` entries, signed with the log key and
    /// cosigned by the first `witnesses` witnesses at entry time `size`.
    pub fn checkpoint(&self, size: u64, witnesses: usize) -> String {
        let root = self.tree.root_at(size).expect("a size within the fixture log");
        let note = sealdrop_log::checkpoint::sign(&self.log.keys.log, size, &root);
        let time = time_of(size).as_second() as u64;
        let lines: Vec<String> =
            self.log.keys.witnesses.iter().take(witnesses).map(|w| cosign(&note, w, time)).collect();
        sealdrop_log::cosign::add_cosignatures(&note, &lines).expect("well-formed")
    }
}

/// The fixture, built once per process.
pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(build)
}

/// A request signed by `key` with a fixed nonce, as `sign_request` would sign it.
pub fn signed_request(
    key: &NoteSigningKey,
    method: &str,
    path: &str,
    time: i64,
    body: &[u8],
    nonce: &str,
) -> RequestAuth {
    let content = body_sha256(body);
    let msg = signed_string(method, path, time, nonce, &content, key.name());
    let signature = B64.encode(key.sign_bytes(msg.as_bytes()).to_bytes());
    RequestAuth { key: key.name().to_owned(), time, nonce: nonce.to_owned(), content, signature }
}

fn seeded(name: &str, seed: u8) -> NoteSigningKey {
    NoteSigningKey::from_signing_key(name, SigningKey::from_bytes(&[seed; 32])).expect("valid key name")
}

fn build() -> Fixture {
    let authority = NoteSigningKey::from_note_text(AUTHORITY_KEY).expect("keys-example/authority.key parses");
    let example = SignedDirectory::verify(EXAMPLE_DIRECTORY, &authority.verifier())
        .expect("keys-example/directory.signed verifies against keys-example/authority.key");
    let members: Vec<MemberSecretKey> =
        MEMBER_KEYS.iter().map(|t| MemberSecretKey::from_file_text(t).expect("example member keys parse")).collect();
    let witnesses: Vec<NoteSigningKey> =
        members.iter().enumerate().map(|(i, m)| seeded(&format!("witness.{}", m.party), 0x21 + i as u8)).collect();
    let keys = TestKeys::from_keys(authority, seeded(ORIGIN, 0x42), members, witnesses);
    let (entries, requests) = log_entries(&keys);
    let (d1, d2) = (keys.directory(1), keys.directory(2));
    let mut log = GeneratedLog {
        entries,
        directories: BTreeMap::from([(1, d1.note.clone()), (2, d2.note.clone())]),
        checkpoint: String::new(),
        keys,
    };
    log.reseal();
    let tree = MemoryTree::from_entries(&log.entries);
    let mut signed_texts: Vec<String> = [&d1.note, &d2.note].iter().map(|n| note_text(n)).collect();
    for e in &log.entries {
        match LogEntry::from_bytes(e).expect("fixture entries parse") {
            LogEntry::Hub { statement: n }
            | LogEntry::DropCommitted { manifest: n, .. }
            | LogEntry::DropAcknowledged { receipt: n, .. } => signed_texts.push(note_text(&n)),
            LogEntry::DropFetched { .. } | LogEntry::DropRecalled { .. } => {}
        }
    }
    Fixture { example, log, tree, signed_texts, requests }
}

/// The signed text of a note (up to and including the newline before the blank line).
pub fn note_text(note: &str) -> String {
    match note.rsplit_once("\n\n") {
        Some((text, _)) => format!("{text}\n"),
        None => note.to_owned(),
    }
}

/// The fixture log: every kind of entry and every way a drop ends, under two
/// directory versions. Entry `i` is logged at `time_of(i)`.
fn log_entries(keys: &TestKeys) -> (Vec<Vec<u8>>, Vec<SignedRequest>) {
    let mut out: Vec<Vec<u8>> = Vec::new();
    let mut requests = Vec::new();
    let d1 = keys.directory(1);
    let d2 = keys.directory(2);
    let publish = |at: u64, d: &SignedDirectory| {
        keys.hub_entry(&HubStatement::DirectoryPublished {
            time: time_of(at),
            serial: d.directory.serial,
            sha256: d.sha256_hex(),
        })
    };
    let party = |i: usize| keys.party(i).clone();
    let salt = [0u8; 16];
    out.push(publish(0, &d1));

    let manifest = |out: &[Vec<u8>], d: usize, sender: usize, to: &[usize], serial: u64, expires_in: i64| {
        let t = time_of(out.len() as u64);
        let recipients: Vec<PartyId> = to.iter().map(|&i| party(i)).collect();
        keys.manifest(
            drop_id(&salt, d),
            &party(sender),
            &recipients,
            serial,
            t - SignedDuration::from_secs(60),
            t + SignedDuration::from_secs(expires_in),
        )
    };
    let mut request = |out: &[Vec<u8>], who: usize, method: &str, path: String, body: &[u8]| {
        let at = out.len() as u64;
        let auth = signed_request(
            &keys.members[who].signing,
            method,
            &path,
            time_of(at).as_second(),
            body,
            &format!("fixture-nonce-{at:04}"),
        );
        let r = SignedRequest::from_auth(&auth, method, &path);
        requests.push(r.clone());
        r
    };
    let now = |out: &[Vec<u8>]| time_of(out.len() as u64);
    let fetch = |out: &mut Vec<Vec<u8>>, request: SignedRequest, drop: &DropId, who: PartyId| {
        let fetched = now(out);
        out.push(LogEntry::DropFetched { drop: drop.clone(), party: who, fetched, request }.to_bytes().expect("small"));
    };
    let deleted = |out: &mut Vec<Vec<u8>>, drop: &DropId, reason| {
        let time = now(out);
        out.push(keys.hub_entry(&HubStatement::DropDeleted { time, drop: drop.clone(), reason }));
    };
    let ack = |out: &mut Vec<Vec<u8>>, m: &Manifest, who: usize| {
        let t = now(out);
        out.push(keys.ack_entry(t, &keys.receipt(m, &party(who), t)));
    };
    const WEEK: i64 = 7 * 86_400;

    // Delivered: camden -> islington.
    let a = manifest(&out, 0, 0, &[1], 1, WEEK);
    out.push(keys.commit_entry(now(&out), &a));
    let r = request(&out, 1, "GET", format!("/v1/drops/{}/content", a.drop), b"");
    fetch(&mut out, r, &a.drop, party(1));
    ack(&mut out, &a, 1);
    deleted(&mut out, &a.drop, DeletionReason::Delivered);

    // Expired unfetched: islington -> hackney.
    let b = manifest(&out, 1, 1, &[2], 1, 1);
    out.push(keys.commit_entry(now(&out), &b));
    deleted(&mut out, &b.drop, DeletionReason::Expired);

    // Directory serial 2, then a recall: hackney -> camden, fetched, recalled.
    out.push(publish(out.len() as u64, &d2));
    let c = manifest(&out, 2, 2, &[0], 2, WEEK);
    out.push(keys.commit_entry(now(&out), &c));
    let r = request(&out, 0, "GET", format!("/v1/drops/{}/content", c.drop), b"");
    fetch(&mut out, r, &c.drop, party(0));
    let r = request(&out, 2, "POST", format!("/v1/drops/{}/recall", c.drop), b"{}");
    let recalled = now(&out);
    out.push(
        LogEntry::DropRecalled { drop: c.drop.clone(), party: party(2), recalled, request: r }
            .to_bytes()
            .expect("small"),
    );
    deleted(&mut out, &c.drop, DeletionReason::Recalled);

    // Two recipients: camden -> islington and hackney, both acknowledge.
    let d = manifest(&out, 3, 0, &[1, 2], 2, WEEK);
    out.push(keys.commit_entry(now(&out), &d));
    for who in [1, 2] {
        let r = request(&out, who, "GET", format!("/v1/drops/{}/content", d.drop), b"");
        fetch(&mut out, r, &d.drop, party(who));
        ack(&mut out, &d, who);
    }
    deleted(&mut out, &d.drop, DeletionReason::Delivered);

    // Still waiting: hackney -> islington, fetched once.
    let e = manifest(&out, 4, 2, &[1], 2, WEEK);
    out.push(keys.commit_entry(now(&out), &e));
    let r = request(&out, 1, "GET", format!("/v1/drops/{}/content", e.drop), b"");
    fetch(&mut out, r, &e.drop, party(1));
    (out, requests)
}
