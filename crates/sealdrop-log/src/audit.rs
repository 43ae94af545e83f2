//! The offline audit of a whole transfer log.
//!
//! [`verify`] takes the log's key, the authority's key, a checkpoint, every
//! signed directory version and the entries (streamed, in order) and checks:
//!
//! - **the tree**: the entries' Merkle root and count equal the checkpoint's,
//!   whose log signature verifies ([`crate::checkpoint::open`]);
//! - **witnesses**: cosignatures by witness keys listed in any directory
//!   version verify, and at least `required_witnesses` distinct parties
//!   cosigned;
//! - **directories**: every version verifies against the authority key, is
//!   published by a `DirectoryPublished` statement naming its SHA-256, with
//!   increasing serials, the first entry being such a statement;
//! - **signatures**: every manifest (by the sender's member key), receipt (by
//!   the recipient's member key), fetch request (by a member key of the
//!   fetching party, for `GET /v1/drops/<id>/content`) and hub statement (by
//!   the log key), keys taken from the directory in force at that entry;
//! - **lifecycle**: entry times never go backwards; a drop is committed once,
//!   by and to parties of its agreement; nothing is fetched, acknowledged or
//!   deleted that was not committed, nor after its deletion; fetches and
//!   acknowledgements only by recipient parties, one acknowledgement per
//!   party, with the manifest's hash and length, not after expiry; a fetch
//!   request is not replayed and was signed near the fetch; `Delivered` only
//!   once every recipient party acknowledged, `Expired` not before expiry.
//!
//! Every failure names the entry index (or none, for the checkpoint and the
//! directories) and why, and the audit carries on, so one report lists every
//! problem (up to [`MAX_FAILURES`]).
//!
//! # Speed and signature checking
//!
//! Ed25519 verification dominates. Entries flow through a pipeline of chunks
//! of 8,192: while [`AuditInput::threads`] workers (default 2) parse chunk
//! `k` and verify the signatures chunk `k-2` needs, the calling thread
//! applies the rules to chunk `k-1`, in order, and reads and hashes chunk
//! `k+1`. Memory stays bounded (three chunks, plus a few hundred bytes per
//! live drop and 40 bytes per deleted one).
//!
//! With [`SignatureCheck::Batch`] (the default) signatures are verified in
//! batches of [`BATCH`] with `ed25519_dalek::verify_batch`; a batch that
//! fails is re-checked one by one with `verify_strict`, which decides and
//! names each bad entry. A passing batch is accepted without confirming each
//! signature strictly, because that would cost as much as not batching.
//! What this gives up: no one but a key's holder can make a signature a
//! batch accepts (keys of small order, which would allow that, are refused
//! before batching), but a holder who deliberately mixes a small-order
//! component into its own signature's `R` can make one that `verify_strict`
//! rejects and a batch accepts (with probability 1/8 to 1/2). Such a
//! signature still proves its key's holder signed, and the hub, which
//! verifies strictly, never logs one. When exact `verify_strict` semantics
//! matter more than speed use [`SignatureCheck::Strict`]: `verify_strict` on
//! every signature, on the same workers, at about 2.3 times the CPU time.
//!
//! Measured on a 2-vCPU machine (release build, a generated log of 1M
//! entries, ~4 entries per drop, one signature each): batch mode costs about
//! 19-20 CPU-seconds (13 verifying, 4 parsing, 2.4 on the calling thread),
//! about 100,000 entries/s on two dedicated cores; strict mode about 44
//! CPU-seconds, about 45,000 entries/s.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::io;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, VerifyingKey};
use jiff::Timestamp;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use signed_note::Signature as NoteSig;

use sealdrop_proto::directory::{Directory, SignedDirectory};
use sealdrop_proto::drop::{Manifest, Receipt, is_sha256_hex};
use sealdrop_proto::ids::{DropId, PartyId, key_name};
use sealdrop_proto::keys::NoteVerifierKey;
use sealdrop_proto::note::{SignedDoc, peek_doc};
use sealdrop_proto::request::{MAX_CLOCK_SKEW_SECS, signed_string};

use crate::Hash;
use crate::checkpoint;
use crate::cosign::verify_cosignatures;
use crate::entry::{DeletionReason, HubStatement, LogEntry, SignedRequest};
use crate::notes;
use crate::tree::RootBuilder;

/// Signatures per `verify_batch` call: large batches amortise the
/// multi-scalar multiplication (measured: 1,024 checks about 15% more
/// entries per CPU-second than 128).
pub const BATCH: usize = 1024;
/// Entries per pipeline chunk.
const CHUNK: usize = 8192;
/// The most failures a report lists; the rest are only counted.
pub const MAX_FAILURES: usize = 10_000;

/// How signatures are verified (see the [module docs](self)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SignatureCheck {
    /// Batch verification, with `verify_strict` deciding every failure.
    #[default]
    Batch,
    /// `verify_strict` on every signature.
    Strict,
}

/// What the audit needs.
pub struct AuditInput<'a> {
    /// The hub's log key (its name is the log's origin).
    pub log_key: NoteVerifierKey,
    /// The sharing agreement's coordinator key, which signs directories.
    pub authority: NoteVerifierKey,
    /// The checkpoint note the entries must add up to, with cosignatures.
    pub checkpoint: String,
    /// Every signed directory note, by serial.
    pub directories: BTreeMap<u64, String>,
    /// The entries, in log order.
    pub entries: Box<dyn Iterator<Item = io::Result<Vec<u8>>> + 'a>,
    /// How many distinct parties' witnesses must have cosigned the checkpoint.
    pub required_witnesses: usize,
    /// How signatures are verified.
    pub signatures: SignatureCheck,
    /// Worker threads for parsing and verification (at least 1).
    pub threads: usize,
}

impl<'a> AuditInput<'a> {
    /// An input with batch signature checking on 2 workers. For entries in
    /// memory pass `entries.into_iter().map(Ok)`.
    pub fn new(
        log_key: NoteVerifierKey,
        authority: NoteVerifierKey,
        checkpoint: impl Into<String>,
        directories: BTreeMap<u64, String>,
        entries: impl Iterator<Item = io::Result<Vec<u8>>> + 'a,
        required_witnesses: usize,
    ) -> Self {
        Self {
            log_key,
            authority,
            checkpoint: checkpoint.into(),
            directories,
            entries: Box::new(entries),
            required_witnesses,
            signatures: SignatureCheck::Batch,
            threads: 2,
        }
    }

    /// Verifies every signature with `verify_strict`.
    pub fn strict(mut self) -> Self {
        self.signatures = SignatureCheck::Strict;
        self
    }
}

impl fmt::Debug for AuditInput<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditInput")
            .field("log_key", &self.log_key)
            .field("authority", &self.authority)
            .field("directories", &self.directories.keys())
            .field("required_witnesses", &self.required_witnesses)
            .field("signatures", &self.signatures)
            .field("threads", &self.threads)
            .finish_non_exhaustive()
    }
}

/// One problem the audit found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditFailure {
    /// The entry concerned, or `None` for the checkpoint, witnesses and directories.
    pub index: Option<u64>,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for AuditFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.index {
            Some(i) => write!(f, "entry {i}: {}", self.reason),
            None => f.write_str(&self.reason),
        }
    }
}

/// Deletions by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeletionCounts {
    /// After every recipient party acknowledged.
    pub delivered: u64,
    /// At expiry.
    pub expired: u64,
    /// Recalled by the sender.
    pub recalled: u64,
}

/// What the audit found.
#[derive(Clone, Debug, Default)]
pub struct AuditReport {
    /// The log's origin (the log key's name).
    pub origin: String,
    /// Entries read.
    pub entries: u64,
    /// The Merkle root of the entries read.
    pub root: Hash,
    /// `DropCommitted` entries of distinct drops.
    pub drops_committed: u64,
    /// Drops fetched at least once.
    pub drops_fetched: u64,
    /// Drops acknowledged by at least one recipient party.
    pub drops_acknowledged: u64,
    /// `DropFetched` entries.
    pub fetches: u64,
    /// `DropAcknowledged` entries.
    pub acknowledgements: u64,
    /// `DropDeleted` statements by reason.
    pub deleted: DeletionCounts,
    /// Directory versions published in the log.
    pub directory_versions: u64,
    /// Signatures verified (entries, directories, checkpoint, cosignatures).
    pub signatures_checked: u64,
    /// The parties whose witnesses validly cosigned the checkpoint.
    pub witnesses: Vec<PartyId>,
    /// How signatures were checked.
    pub signature_check: SignatureCheck,
    /// The problems found, ordered by entry (checkpoint and directory ones first).
    pub failures: Vec<AuditFailure>,
    /// Failures beyond [`MAX_FAILURES`], counted but not listed.
    pub failures_omitted: u64,
}

impl AuditReport {
    /// Whether the log passed every check.
    pub fn ok(&self) -> bool {
        self.failures.is_empty() && self.failures_omitted == 0
    }

    /// The failures about entry `index`.
    pub fn failures_at(&self, index: u64) -> impl Iterator<Item = &AuditFailure> {
        self.failures.iter().filter(move |f| f.index == Some(index))
    }
}

impl fmt::Display for AuditReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "log {}: {} entries, root {}", self.origin, self.entries, self.root)?;
        writeln!(
            f,
            "drops: {} committed, {} fetched ({} fetches), {} acknowledged ({} acknowledgements)",
            self.drops_committed, self.drops_fetched, self.fetches, self.drops_acknowledged, self.acknowledgements
        )?;
        writeln!(
            f,
            "deleted: {} delivered, {} expired, {} recalled",
            self.deleted.delivered, self.deleted.expired, self.deleted.recalled
        )?;
        let w: Vec<&str> = self.witnesses.iter().map(PartyId::as_str).collect();
        writeln!(
            f,
            "{} directory versions; {} signatures checked ({:?}); witnesses: {}",
            self.directory_versions,
            self.signatures_checked,
            self.signature_check,
            if w.is_empty() { "none".to_owned() } else { w.join(", ") }
        )?;
        if self.ok() {
            return writeln!(f, "OK: no problems found");
        }
        writeln!(f, "FAILED: {} problems", self.failures.len() as u64 + self.failures_omitted)?;
        for fail in &self.failures {
            writeln!(f, "  {fail}")?;
        }
        if self.failures_omitted > 0 {
            writeln!(f, "  ... and {} more", self.failures_omitted)?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Directory versions.

/// A member key as the audit uses it.
struct Member {
    party: PartyId,
    key: VerifyingKey,
    id: u32,
    weak: bool,
    name: Arc<str>,
}

/// A directory version, indexed for lookups.
struct DirVersion {
    serial: u64,
    sha256: String,
    members: HashMap<String, Member>,
    agreements: HashMap<String, Vec<PartyId>>,
}

impl DirVersion {
    fn new(directory: &Directory, note: &str) -> Self {
        let mut members = HashMap::new();
        for p in &directory.parties {
            for m in &p.members {
                let name = key_name(&p.id, &m.member);
                let key = *m.signing_key.key();
                members.insert(
                    name.clone(),
                    Member { party: p.id.clone(), key, id: m.signing_key.id(), weak: key.is_weak(), name: name.into() },
                );
            }
        }
        let agreements = directory.agreements.iter().map(|a| (a.id.clone(), a.parties.clone())).collect();
        Self { serial: directory.serial, sha256: hex::encode(Sha256::digest(note.as_bytes())), members, agreements }
    }
}

// ---------------------------------------------------------------------------
// Parsing (stateless, in the workers).

/// A signed note split into the signed text and its signature lines.
struct Signed {
    /// The note; truncated to the signed text when a signature is checked.
    note: String,
    text_len: usize,
    sigs: Vec<NoteSig>,
}

impl Signed {
    fn find(&self, name: &str, id: u32) -> Option<&[u8]> {
        self.sigs.iter().find(|s| s.name() == name && s.id() == id).map(NoteSig::signature)
    }
    fn signers(&self) -> String {
        let names: Vec<&str> = self.sigs.iter().map(NoteSig::name).collect();
        names.join(", ")
    }
}

enum Parsed {
    Bad(String),
    Hub { statement: HubStatement, signed: Signed },
    Committed { committed: Timestamp, manifest: Box<Manifest>, signed: Signed },
    Fetched { drop: DropId, party: PartyId, fetched: Timestamp, request: Box<SignedRequest> },
    Acknowledged { acknowledged: Timestamp, receipt: Box<Receipt>, signed: Signed },
}

fn parse_doc<T: SignedDoc + DeserializeOwned>(note: String) -> Result<(T, Signed), String> {
    let (text_len, sigs) = match notes::split(&note) {
        Some(s) => (s.text.len(), s.sigs),
        None => return Err(format!("the {} is not a well-formed signed note", T::WHAT)),
    };
    let text = &note[..text_len];
    let (first, body) = text.split_once('\n').unwrap_or((text, ""));
    if first != T::TYPE {
        let found: String = first.chars().take(60).collect();
        return Err(format!("expected a {} (`{}`) but found `{found}`", T::WHAT, T::TYPE));
    }
    let doc = serde_json::from_str(body).map_err(|e| format!("the {}'s content is not valid: {e}", T::WHAT))?;
    Ok((doc, Signed { note, text_len, sigs }))
}

/// Deserializes a field that, when present, must hold a value (not `null`).
fn present<'de, D: serde::Deserializer<'de>, T: serde::Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// Every [`LogEntry`] field, flat: serde parses this without buffering the
/// entry the way an internally tagged enum must.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FlatEntry<'a> {
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
    #[serde(default, deserialize_with = "present")]
    statement: Option<String>,
    #[serde(default, deserialize_with = "present")]
    committed: Option<Timestamp>,
    #[serde(default, deserialize_with = "present")]
    manifest: Option<String>,
    #[serde(default, deserialize_with = "present")]
    drop: Option<DropId>,
    #[serde(default, deserialize_with = "present")]
    party: Option<PartyId>,
    #[serde(default, deserialize_with = "present")]
    fetched: Option<Timestamp>,
    #[serde(default, deserialize_with = "present")]
    request: Option<SignedRequest>,
    #[serde(default, deserialize_with = "present")]
    acknowledged: Option<Timestamp>,
    #[serde(default, deserialize_with = "present")]
    receipt: Option<String>,
}

/// A faster [`LogEntry::from_bytes`] for well-formed entries: `Some` only
/// when the entry has exactly one variant's fields, so it accepts nothing
/// `LogEntry::from_bytes` refuses; on `None` the caller asks `LogEntry`.
fn fast_entry(bytes: &[u8]) -> Option<LogEntry> {
    if bytes.len() > crate::entry::MAX_ENTRY_BYTES {
        return None;
    }
    let f: FlatEntry = serde_json::from_slice(bytes).ok()?;
    let FlatEntry { kind, statement, committed, manifest, drop, party, fetched, request, acknowledged, receipt } = f;
    let fields = |n: usize| {
        [
            statement.is_some(),
            committed.is_some(),
            manifest.is_some(),
            drop.is_some(),
            party.is_some(),
            fetched.is_some(),
            request.is_some(),
            acknowledged.is_some(),
            receipt.is_some(),
        ]
        .iter()
        .filter(|p| **p)
        .count()
            == n
    };
    match &*kind {
        "hub" if fields(1) => Some(LogEntry::Hub { statement: statement? }),
        "drop_committed" if fields(2) => Some(LogEntry::DropCommitted { committed: committed?, manifest: manifest? }),
        "drop_fetched" if fields(4) => {
            Some(LogEntry::DropFetched { drop: drop?, party: party?, fetched: fetched?, request: request? })
        }
        "drop_acknowledged" if fields(2) => {
            Some(LogEntry::DropAcknowledged { acknowledged: acknowledged?, receipt: receipt? })
        }
        _ => None,
    }
}

fn parse_entry(bytes: &[u8]) -> Parsed {
    let entry = match fast_entry(bytes).map_or_else(|| LogEntry::from_bytes(bytes), Ok) {
        Ok(e) => e,
        Err(e) => return Parsed::Bad(e.to_string()),
    };
    let parsed = match entry {
        LogEntry::Hub { statement } => {
            parse_doc::<HubStatement>(statement).map(|(statement, signed)| Parsed::Hub { statement, signed })
        }
        LogEntry::DropCommitted { committed, manifest } => parse_doc::<Manifest>(manifest)
            .map(|(m, signed)| Parsed::Committed { committed, manifest: Box::new(m), signed }),
        LogEntry::DropFetched { drop, party, fetched, request } => {
            Ok(Parsed::Fetched { drop, party, fetched, request: Box::new(request) })
        }
        LogEntry::DropAcknowledged { acknowledged, receipt } => parse_doc::<Receipt>(receipt)
            .map(|(r, signed)| Parsed::Acknowledged { acknowledged, receipt: Box::new(r), signed }),
    };
    parsed.unwrap_or_else(Parsed::Bad)
}

// ---------------------------------------------------------------------------
// Signature jobs (verified in the workers).

struct SigJob {
    index: u64,
    msg: Vec<u8>,
    sig: Signature,
    key: VerifyingKey,
    what: &'static str,
    signer: Arc<str>,
}

impl SigJob {
    fn failure(&self) -> (u64, String) {
        (
            self.index,
            format!("the {}'s signature by {} does not verify: it was altered or forged", self.what, self.signer),
        )
    }
}

fn verify_jobs(jobs: &[SigJob], mode: SignatureCheck) -> Vec<(u64, String)> {
    let strict = |j: &SigJob| j.key.verify_strict(&j.msg, &j.sig).is_ok();
    let mut bad = Vec::new();
    match mode {
        SignatureCheck::Strict => bad.extend(jobs.iter().filter(|j| !strict(j)).map(SigJob::failure)),
        SignatureCheck::Batch => {
            for batch in jobs.chunks(BATCH) {
                let msgs: Vec<&[u8]> = batch.iter().map(|j| j.msg.as_slice()).collect();
                let sigs: Vec<Signature> = batch.iter().map(|j| j.sig).collect();
                let keys: Vec<VerifyingKey> = batch.iter().map(|j| j.key).collect();
                if ed25519_dalek::verify_batch(&msgs, &sigs, &keys).is_err() {
                    bad.extend(batch.iter().filter(|j| !strict(j)).map(SigJob::failure));
                }
            }
        }
    }
    bad
}

// ---------------------------------------------------------------------------
// The lifecycle state machine (in order, on the calling thread).

struct DropState {
    committed_at: u64,
    recipients: Vec<PartyId>,
    sha256: String,
    len: u64,
    expires: Timestamp,
    acked: Vec<(PartyId, u64)>,
    fetched: bool,
}

/// What the audit remembers of a drop: all of it while it lives, only
/// where it was committed and deleted afterwards (a million-entry log keeps
/// a few hundred thousand of these).
enum DropSlot {
    Live(Box<DropState>),
    Deleted { committed_at: u64, deleted_at: u64 },
}

impl DropSlot {
    fn committed_at(&self) -> u64 {
        match self {
            DropSlot::Live(d) => d.committed_at,
            DropSlot::Deleted { committed_at, .. } => *committed_at,
        }
    }
}

struct Auditor {
    log_key: VerifyingKey,
    log_key_name: Arc<str>,
    log_key_id: u32,
    log_key_weak: bool,
    versions: BTreeMap<u64, Arc<DirVersion>>,
    current: Option<Arc<DirVersion>>,
    published: BTreeSet<u64>,
    last_time: Option<Timestamp>,
    drops: HashMap<DropId, DropSlot>,
    /// SHA-256 of each logged fetch request's key name and nonce.
    nonces: HashMap<[u8; 32], u64>,
    jobs: Vec<SigJob>,
    failures: Vec<(Option<u64>, String)>,
    report: AuditReport,
}

impl Auditor {
    fn fail(&mut self, index: Option<u64>, reason: String) {
        self.failures.push((index, reason));
    }

    fn time(&mut self, index: u64, t: Timestamp) {
        if let Some(last) = self.last_time
            && t < last
        {
            self.fail(Some(index), format!("its time {t} is before the previous entry's time {last}"));
        }
        self.last_time = Some(self.last_time.map_or(t, |l| l.max(t)));
    }

    fn directory(&mut self, index: u64) -> Option<Arc<DirVersion>> {
        if self.current.is_none() {
            self.fail(Some(index), "no directory is in force yet: the log must begin by publishing one".into());
        }
        self.current.clone()
    }

    /// Queues the check of a note's signature by a member key of `party`.
    fn member_sig(
        &mut self,
        index: u64,
        dir: &DirVersion,
        party: &PartyId,
        name: &str,
        what: &'static str,
        mut signed: Signed,
    ) {
        let Some(m) = dir.members.get(name).filter(|m| &m.party == party) else {
            self.fail(
                Some(index),
                format!(
                    "the {what} is signed for {name}, which directory {} does not list as a member of {party}",
                    dir.serial
                ),
            );
            return;
        };
        let Some(sig) = signed.find(&m.name, m.id) else {
            self.fail(
                Some(index),
                format!(
                    "the {what} is not signed by {name}'s key in directory {} (signed by: {})",
                    dir.serial,
                    signed.signers()
                ),
            );
            return;
        };
        let sig = Signature::from_slice(sig);
        let (key, signer, weak) = (m.key, m.name.clone(), m.weak);
        signed.note.truncate(signed.text_len);
        self.push_job(index, signed.note.into_bytes(), sig.ok(), key, weak, what, signer);
    }

    #[allow(clippy::too_many_arguments)]
    fn push_job(
        &mut self,
        index: u64,
        msg: Vec<u8>,
        sig: Option<Signature>,
        key: VerifyingKey,
        weak: bool,
        what: &'static str,
        signer: Arc<str>,
    ) {
        match sig {
            _ if weak => self.fail(
                Some(index),
                format!("the {what} is signed with {signer}'s key, which has small order and so proves nothing"),
            ),
            None => {
                self.fail(Some(index), format!("the {what}'s signature by {signer} is not a 64-byte Ed25519 signature"))
            }
            Some(sig) => self.jobs.push(SigJob { index, msg, sig, key, what, signer }),
        }
    }

    fn apply(&mut self, index: u64, parsed: Parsed) {
        if index == 0 && !matches!(&parsed, Parsed::Hub { statement: HubStatement::DirectoryPublished { .. }, .. }) {
            self.fail(Some(0), "the log must begin with the hub publishing a directory".into());
        }
        match parsed {
            Parsed::Bad(reason) => self.fail(Some(index), reason),
            Parsed::Hub { statement, mut signed } => {
                match signed.find(&self.log_key_name, self.log_key_id).map(Signature::from_slice) {
                    None => self.fail(
                        Some(index),
                        format!("the hub statement is not signed by the log key (signed by: {})", signed.signers()),
                    ),
                    Some(sig) => {
                        signed.note.truncate(signed.text_len);
                        let (key, weak, name) = (self.log_key, self.log_key_weak, self.log_key_name.clone());
                        self.push_job(index, signed.note.into_bytes(), sig.ok(), key, weak, "hub statement", name);
                    }
                }
                match statement {
                    HubStatement::DirectoryPublished { time, serial, sha256 } => {
                        self.published(index, time, serial, &sha256)
                    }
                    HubStatement::DropDeleted { time, drop, reason } => self.deleted(index, time, &drop, reason),
                }
            }
            Parsed::Committed { committed, manifest, signed } => self.committed(index, committed, *manifest, signed),
            Parsed::Fetched { drop, party, fetched, request } => self.fetched(index, &drop, &party, fetched, &request),
            Parsed::Acknowledged { acknowledged, receipt, signed } => {
                self.acknowledged(index, acknowledged, *receipt, signed)
            }
        }
    }

    fn published(&mut self, index: u64, time: Timestamp, serial: u64, sha256: &str) {
        self.time(index, time);
        self.report.directory_versions += 1;
        if let Some(&last) = self.published.last()
            && serial <= last
        {
            self.fail(
                Some(index),
                format!("it publishes directory serial {serial}, not newer than serial {last} published before"),
            );
        }
        self.published.insert(serial);
        let Some(v) = self.versions.get(&serial).cloned() else {
            self.fail(
                Some(index),
                format!("it publishes directory serial {serial}, which is not among the directory versions given"),
            );
            return;
        };
        if v.sha256 != sha256 {
            self.fail(Some(index), format!(
                "it publishes directory serial {serial} with SHA-256 {sha256}, but the directory note given for serial {serial} hashes to {}",
                v.sha256
            ));
        }
        self.current = Some(v);
    }

    fn drop_state(&mut self, index: u64, drop: &DropId, what: &str) -> Option<&mut DropState> {
        let reason = match self.drops.get(drop) {
            None => format!("drop {drop} is {what} but was never committed"),
            Some(DropSlot::Deleted { deleted_at, .. }) => {
                format!("drop {drop} is {what} after its deletion at entry {deleted_at}")
            }
            Some(DropSlot::Live(_)) => match self.drops.get_mut(drop) {
                Some(DropSlot::Live(d)) => return Some(d),
                _ => unreachable!("just looked up"),
            },
        };
        self.fail(Some(index), reason);
        None
    }

    fn deleted(&mut self, index: u64, time: Timestamp, drop: &DropId, reason: DeletionReason) {
        self.time(index, time);
        match reason {
            DeletionReason::Delivered => self.report.deleted.delivered += 1,
            DeletionReason::Expired => self.report.deleted.expired += 1,
            DeletionReason::Recalled => self.report.deleted.recalled += 1,
        }
        let Some(d) = self.drop_state(index, drop, "deleted") else { return };
        let committed_at = d.committed_at;
        let problem = match reason {
            DeletionReason::Delivered => {
                let missing: Vec<&str> = d
                    .recipients
                    .iter()
                    .filter(|r| !d.acked.iter().any(|(p, _)| p == *r))
                    .map(PartyId::as_str)
                    .collect();
                (!missing.is_empty()).then(|| {
                    format!("drop {drop} is deleted as delivered, but {} has not acknowledged it", missing.join(", "))
                })
            }
            DeletionReason::Expired => (time < d.expires)
                .then(|| format!("drop {drop} is deleted as expired at {time}, before its expiry {}", d.expires)),
            DeletionReason::Recalled => None,
        };
        self.drops.insert(drop.clone(), DropSlot::Deleted { committed_at, deleted_at: index });
        if let Some(p) = problem {
            self.fail(Some(index), p);
        }
    }

    fn committed(&mut self, index: u64, committed: Timestamp, m: Manifest, signed: Signed) {
        self.time(index, committed);
        let Some(dir) = self.directory(index) else { return };
        let signer = key_name(&m.sender, &m.sender_member);
        self.member_sig(index, &dir, &m.sender, &signer, "manifest", signed);
        if let Some(first) = self.drops.get(&m.drop) {
            let at = first.committed_at();
            self.fail(Some(index), format!("drop {} is committed again (first at entry {at})", m.drop));
            return;
        }
        self.report.drops_committed += 1;
        let mut problems = Vec::new();
        match dir.agreements.get(&m.agreement) {
            None => problems.push(format!("its agreement `{}` is not in directory {}", m.agreement, dir.serial)),
            Some(parties) => {
                if !parties.contains(&m.sender) {
                    problems.push(format!("the sender {} is not a party to agreement `{}`", m.sender, m.agreement));
                }
                for r in m.recipients.iter().filter(|r| !parties.contains(r)) {
                    problems.push(format!("the recipient {r} is not a party to agreement `{}`", m.agreement));
                }
            }
        }
        if m.recipients.is_empty() {
            problems.push("it has no recipients".into());
        }
        if m.directory_serial > dir.serial {
            problems.push(format!(
                "it cites directory serial {}, newer than serial {} in force",
                m.directory_serial, dir.serial
            ));
        }
        if !is_sha256_hex(&m.ciphertext_sha256) {
            problems.push("its ciphertext hash is not a lowercase hex SHA-256".into());
        }
        if committed > m.expires {
            problems.push(format!("it is committed at {committed}, after its expiry {}", m.expires));
        }
        for p in problems {
            self.fail(Some(index), format!("drop {}: {p}", m.drop));
        }
        let mut recipients = m.recipients;
        recipients.sort();
        recipients.dedup();
        self.drops.insert(
            m.drop,
            DropSlot::Live(Box::new(DropState {
                committed_at: index,
                recipients,
                sha256: m.ciphertext_sha256,
                len: m.ciphertext_len,
                expires: m.expires,
                acked: Vec::new(),
                fetched: false,
            })),
        );
    }

    fn fetched(&mut self, index: u64, drop: &DropId, party: &PartyId, fetched: Timestamp, req: &SignedRequest) {
        self.time(index, fetched);
        self.report.fetches += 1;
        let Some(dir) = self.directory(index) else { return };
        // The request: the right route, not replayed, signed near the fetch, by the fetching party.
        let path = format!("/v1/drops/{drop}/content");
        if req.method != "GET" || req.path != path {
            self.fail(Some(index), format!("the fetch request is for {} {}, not GET {path}", req.method, req.path));
        }
        let nonce_id: [u8; 32] = Sha256::new()
            .chain_update(req.key.as_bytes())
            .chain_update([b'\n'])
            .chain_update(req.nonce.as_bytes())
            .finalize()
            .into();
        if let Some(first) = self.nonces.insert(nonce_id, index) {
            self.fail(
                Some(index),
                format!("the fetch request (nonce {}) was already logged at entry {first}: a replay", req.nonce),
            );
        }
        if (req.time - fetched.as_second()).abs() > MAX_CLOCK_SKEW_SECS {
            self.fail(Some(index), format!(
                "the fetch request was signed at {} but the fetch is logged at {}, more than {MAX_CLOCK_SKEW_SECS} s apart",
                req.time,
                fetched.as_second()
            ));
        }
        match dir.members.get(&req.key).filter(|m| &m.party == party) {
            None => self.fail(
                Some(index),
                format!(
                    "the fetch request is signed for {}, which directory {} does not list as a member of {party}",
                    req.key, dir.serial
                ),
            ),
            Some(m) => {
                let sig = B64.decode(&req.signature).ok().and_then(|s| Signature::from_slice(&s).ok());
                // Exactly the bytes RequestAuth::verify checks.
                let msg = signed_string(&req.method, &req.path, req.time, &req.nonce, &req.content, &req.key);
                let (key, weak, signer) = (m.key, m.weak, m.name.clone());
                self.push_job(index, msg.into_bytes(), sig, key, weak, "fetch request", signer);
            }
        }
        let Some(d) = self.drop_state(index, drop, "fetched") else { return };
        let (first_fetch, expires, is_recipient) = (!d.fetched, d.expires, d.recipients.contains(party));
        d.fetched = true;
        if first_fetch {
            self.report.drops_fetched += 1;
        }
        if !is_recipient {
            self.fail(Some(index), format!("drop {drop} is fetched by {party}, which is not one of its recipients"));
        }
        if fetched > expires {
            self.fail(Some(index), format!("drop {drop} is fetched at {fetched}, after its expiry {expires}"));
        }
    }

    fn acknowledged(&mut self, index: u64, at: Timestamp, r: Receipt, signed: Signed) {
        self.time(index, at);
        self.report.acknowledgements += 1;
        let Some(dir) = self.directory(index) else { return };
        let signer = key_name(&r.recipient, &r.member);
        self.member_sig(index, &dir, &r.recipient, &signer, "receipt", signed);
        let drop = r.drop.clone();
        let Some(d) = self.drop_state(index, &drop, "acknowledged") else { return };
        let mut problems = Vec::new();
        let mut first_ack = false;
        if !d.recipients.contains(&r.recipient) {
            problems.push(format!("it is acknowledged by {}, which is not one of its recipients", r.recipient));
        } else if let Some((_, first)) = d.acked.iter().find(|(p, _)| *p == r.recipient) {
            problems.push(format!("{} acknowledges it again (first at entry {first})", r.recipient));
        } else {
            d.acked.push((r.recipient.clone(), index));
            first_ack = d.acked.len() == 1;
        }
        if r.ciphertext_sha256 != d.sha256 || r.ciphertext_len != d.len {
            problems.push(format!(
                "the receipt is for ciphertext {} ({} bytes), but the manifest says {} ({} bytes)",
                r.ciphertext_sha256, r.ciphertext_len, d.sha256, d.len
            ));
        }
        if at > d.expires {
            problems.push(format!("it is acknowledged at {at}, after its expiry {}", d.expires));
        }
        if first_ack {
            self.report.drops_acknowledged += 1;
        }
        for p in problems {
            self.fail(Some(index), format!("drop {drop}: {p}"));
        }
    }
}

// ---------------------------------------------------------------------------
// The audit.

/// Audits a log (see the [module docs](self)).
pub fn verify(input: AuditInput<'_>) -> AuditReport {
    let AuditInput {
        log_key,
        authority,
        checkpoint: cp_note,
        directories,
        mut entries,
        required_witnesses,
        signatures,
        threads,
    } = input;
    let threads = threads.max(1);
    let mut a = Auditor {
        log_key: *log_key.key(),
        log_key_name: log_key.name().into(),
        log_key_id: log_key.id(),
        log_key_weak: log_key.key().is_weak() || log_key.is_cosigner(),
        versions: BTreeMap::new(),
        current: None,
        published: BTreeSet::new(),
        last_time: None,
        drops: HashMap::new(),
        nonces: HashMap::new(),
        jobs: Vec::new(),
        failures: Vec::new(),
        report: AuditReport {
            origin: log_key.name().to_owned(),
            signature_check: signatures,
            ..AuditReport::default()
        },
    };

    // The checkpoint's log signature.
    let cp = match checkpoint::open(&cp_note, &log_key) {
        Ok(cp) => Some(cp),
        Err(e) => {
            a.fail(None, format!("the checkpoint: {e}"));
            None
        }
    };
    a.report.signatures_checked += 1;

    // Directory versions and the witnesses they list.
    let mut witness_keys: Vec<NoteVerifierKey> = Vec::new();
    let mut witness_party: HashMap<String, PartyId> = HashMap::new();
    for (&serial, note) in &directories {
        a.report.signatures_checked += 1;
        let directory = match SignedDirectory::verify(note, &authority) {
            Ok(d) => {
                for p in &d.directory.parties {
                    for w in &p.witness_keys {
                        if !witness_keys.contains(w) {
                            witness_keys.push(w.clone());
                        }
                        witness_party.entry(w.name().to_owned()).or_insert_with(|| p.id.clone());
                    }
                }
                d.directory
            }
            Err(e) => {
                a.fail(None, format!("directory {serial}: {e}"));
                match peek_doc::<Directory>(note) {
                    Ok(d) => d,
                    Err(_) => continue,
                }
            }
        };
        if directory.serial != serial {
            a.fail(None, format!("the directory given as serial {serial} has serial {}", directory.serial));
        }
        if let Some(h) = &directory.hub
            && (h.origin != log_key.name() || h.log_key != log_key)
        {
            a.fail(
                None,
                format!("directory {serial} vouches for the hub log {} ({}), not this log", h.origin, h.log_key),
            );
        }
        a.versions.insert(serial, Arc::new(DirVersion::new(&directory, note)));
    }

    // Witness cosignatures.
    match verify_cosignatures(&cp_note, &witness_keys) {
        Err(e) => a.fail(None, format!("checkpoint cosignatures: {e}")),
        Ok(cosigned) => {
            a.report.signatures_checked += cosigned.len() as u64;
            let mut parties: Vec<PartyId> =
                cosigned.iter().filter_map(|c| witness_party.get(&c.name).cloned()).collect();
            parties.sort();
            parties.dedup();
            if parties.len() < required_witnesses {
                let names: Vec<&str> = parties.iter().map(PartyId::as_str).collect();
                a.fail(None, format!(
                    "only {} witnessing parties cosigned the checkpoint ({}), fewer than the {required_witnesses} required",
                    parties.len(),
                    if names.is_empty() { "none".to_owned() } else { names.join(", ") }
                ));
            }
            a.report.witnesses = parties;
        }
    }

    // The entries, in a pipeline of chunks: while the workers parse chunk k
    // and verify the signatures chunk k-2 needs, this thread applies the
    // rules to chunk k-1 (in order) and reads and hashes chunk k+1.
    let mut root = RootBuilder::new();
    let mut read_failure = None;
    let mut read_chunk = |root: &mut RootBuilder| -> Vec<Vec<u8>> {
        let mut chunk = Vec::with_capacity(CHUNK);
        while chunk.len() < CHUNK && read_failure.is_none() {
            match entries.next() {
                None => break,
                Some(Ok(e)) => {
                    root.push(&e);
                    chunk.push(e);
                }
                Some(Err(e)) => read_failure = Some((root.size(), e.to_string())),
            }
        }
        chunk
    };
    let mut raw = read_chunk(&mut root);
    let mut parsed: Vec<Parsed> = Vec::new();
    let mut base = 0u64;
    let mut sig_failures: Vec<(u64, String)> = Vec::new();
    while !raw.is_empty() || !parsed.is_empty() || !a.jobs.is_empty() {
        let chunk = std::mem::take(&mut raw);
        let to_apply = std::mem::take(&mut parsed);
        let jobs = std::mem::take(&mut a.jobs);
        a.report.signatures_checked += jobs.len() as u64;
        let (new_parsed, bad) = std::thread::scope(|s| {
            let per_parse = chunk.len().div_ceil(threads).max(1);
            let per_job = jobs.len().div_ceil(threads).max(1);
            let workers: Vec<_> = (0..threads)
                .map(|w| {
                    let part = chunk.get(w * per_parse..).map_or(&[][..], |c| &c[..per_parse.min(c.len())]);
                    let mine = jobs.get(w * per_job..).map_or(&[][..], |j| &j[..per_job.min(j.len())]);
                    s.spawn(move || {
                        let parsed: Vec<Parsed> = part.iter().map(|e| parse_entry(e)).collect();
                        (parsed, verify_jobs(mine, signatures))
                    })
                })
                .collect();
            for p in to_apply {
                a.apply(base, p);
                base += 1;
            }
            raw = read_chunk(&mut root);
            let mut new_parsed = Vec::with_capacity(chunk.len());
            let mut bad = Vec::new();
            for w in workers {
                let (p, b) = w.join().expect("audit worker panicked");
                new_parsed.extend(p);
                bad.extend(b);
            }
            (new_parsed, bad)
        });
        sig_failures.extend(bad);
        parsed = new_parsed;
    }
    for (i, reason) in sig_failures {
        a.fail(Some(i), reason);
    }
    if let Some((i, e)) = read_failure {
        a.fail(Some(i), format!("the entry could not be read: {e}"));
    }

    // The tree against the checkpoint.
    a.report.entries = root.size();
    a.report.root = root.root();
    if let Some(cp) = &cp {
        if cp.size != root.size() {
            a.fail(None, format!("the checkpoint covers {} entries but the log has {}", cp.size, root.size()));
        } else if cp.root != a.report.root {
            a.fail(None, format!(
                "the entries' Merkle root {} is not the checkpoint's root {}: entries were altered, removed, inserted or reordered",
                a.report.root, cp.root
            ));
        }
    }
    for serial in a.versions.keys().filter(|s| !a.published.contains(s)).copied().collect::<Vec<_>>() {
        a.fail(None, format!("directory {serial} is given but no entry publishes it"));
    }

    // Failures in order: those about no entry first, then by entry.
    let mut failures = std::mem::take(&mut a.failures);
    failures.sort_by_key(|(i, _)| *i);
    let mut report = a.report;
    report.failures_omitted = failures.len().saturating_sub(MAX_FAILURES) as u64;
    report.failures =
        failures.into_iter().take(MAX_FAILURES).map(|(index, reason)| AuditFailure { index, reason }).collect();
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The audit checks a fetch request's signature over exactly the bytes
    /// `SignedRequest::auth().verify(member key, method, path)` checks.
    #[test]
    fn fetch_signature_is_the_request_signature() {
        let log = crate::testlog::generate(2, 3);
        let LogEntry::DropFetched { drop, party, request, .. } = log.entry(2) else { panic!("entry 2 is a fetch") };
        let key = log.keys.member(&party).signing.verifier();
        let path = format!("/v1/drops/{drop}/content");
        let check = |r: &SignedRequest| {
            let msg = signed_string(&r.method, &r.path, r.time, &r.nonce, &r.content, &r.key);
            let sig = B64.decode(&r.signature).ok().and_then(|s| Signature::from_slice(&s).ok());
            sig.is_some_and(|sig| key.key().verify_strict(msg.as_bytes(), &sig).is_ok())
        };
        assert!(request.auth().verify(&key, "GET", &path).is_ok());
        assert!(check(&request));
        for tamper in [
            |r: &mut SignedRequest| r.time += 1,
            |r: &mut SignedRequest| r.nonce.push('x'),
            |r: &mut SignedRequest| r.path.push('/'),
            |r: &mut SignedRequest| r.content = "UNSIGNED".into(),
        ] {
            let mut r = request.clone();
            tamper(&mut r);
            assert!(!check(&r));
            assert!(r.auth().verify(&key, &r.method, &r.path).is_err());
        }
    }

    #[test]
    fn fast_entry_agrees_with_log_entry() {
        let log = crate::testlog::generate(3, 12);
        for e in &log.entries {
            assert_eq!(fast_entry(e), Some(LogEntry::from_bytes(e).unwrap()));
        }
        let commit = String::from_utf8(log.entries[1].clone()).unwrap();
        assert!(commit.starts_with("{\"type\":\"drop_committed\","));
        let tampered = [
            commit.replacen("{", "{\"statement\":\"x\",", 1),
            commit.replacen("{", "{\"statement\":null,", 1),
            commit.replacen("{", "{\"extra\":1,", 1),
            commit.replacen("\"drop_committed\"", "\"hub\"", 1),
            commit.replacen("\"drop_committed\"", "\"drop_fetched\"", 1),
            commit.replacen("\"drop_committed\"", "\"nope\"", 1),
            commit.replacen("\"drop_committed\"", "1", 1),
            commit.replacen("\"committed\":", "\"committed\":null,\"x\":", 1),
            commit.replacen("{", "{\"type\":\"hub\",", 1),
            commit.replacen("{", "{\"committed\":\"2026-01-01T00:00:00Z\",", 1),
            format!("{commit} "),
            format!("{commit}x"),
            "{\"type\":\"hub\"}".into(),
            "{\"type\":\"hub\",\"statement\":null}".into(),
            "[]".into(),
        ];
        for t in &tampered {
            let fast = fast_entry(t.as_bytes());
            let slow = LogEntry::from_bytes(t.as_bytes()).ok();
            assert!(fast.is_none() || fast == slow, "{t}");
            if slow.is_none() {
                assert!(fast.is_none(), "{t}");
            }
        }
    }
}
