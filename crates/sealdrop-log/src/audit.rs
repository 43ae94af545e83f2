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
//! Ed25519 verification dominates. Entries flow through a pipeline: the
//! calling thread reads and hashes chunks of 2,048 entries and queues each
//! to be parsed, applies the rules to the parsed chunks in log order, and
//! queues the signature checks they need, [`BATCH`] at a time;
//! [`AuditInput::threads`] workers (default 2) take whichever task is
//! oldest, parse or verify, so every core stays busy to the end (no chunk
//! waits for the slowest worker of the one before). Memory stays bounded (at
//! most 8 chunks read ahead and 4 batches waiting, plus a few hundred bytes
//! per live drop and 40 bytes per deleted one). Entries in exactly the form
//! the hub writes are read by a small parser of that form (see
//! `canonical_entry`), which decodes what it accepts exactly as `serde_json`
//! does and leaves anything else to `serde_json`.
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
//! entries, ~4 entries per drop, one signature each; `bench/run`): batch
//! mode costs about 17-19 CPU-seconds, of which `verify_batch` is about 12
//! (a third of that decompressing each signature's `R`), parsing 2.2,
//! applying the rules 1.6 and reading and hashing 1; both cores stay busy,
//! so about 100,000-110,000 entries/s (see `bench/RESULTS.md`). Strict mode
//! costs about 2.3 times the CPU time.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::io;
use std::sync::{Arc, Mutex, mpsc};

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
/// multi-scalar multiplication (measured per signature: 256 about 14.0 us,
/// 1,024 about 12.2, 4,096 about 11.7; 8,192 is slower again).
pub const BATCH: usize = 4096;
/// Entries per pipeline chunk (the unit of parsing).
const CHUNK: usize = 2048;
/// The most chunks read but not yet applied.
const AHEAD: usize = 8;
/// The most signature batches waiting to be verified before more entries are read.
const VERIFYING: usize = 4;
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

/// Reads an entry in exactly the form `LogEntry::to_bytes` writes (compact
/// JSON, the tag first, fields in declaration order), or `None` for anything
/// else, which then takes the general path. It decodes what it accepts as
/// `serde_json` does: strings hold no control characters and valid UTF-8,
/// and only the notes may hold escapes, of which it knows all but `\u`
/// (an id, time or request field with a backslash, or a note with `\u`,
/// takes the general path); times, ids and numbers are parsed by the same
/// functions serde calls; nothing may follow the closing brace.
fn canonical_entry(bytes: &[u8]) -> Option<LogEntry> {
    let mut c = Canon { b: bytes, i: 0 };
    c.lit(b"{\"type\":\"")?;
    let entry = if c.eat(b"hub\",\"statement\":") {
        LogEntry::Hub { statement: c.text()? }
    } else if c.eat(b"drop_committed\",\"committed\":") {
        let committed = c.plain()?.parse().ok()?;
        c.lit(b",\"manifest\":")?;
        LogEntry::DropCommitted { committed, manifest: c.text()? }
    } else if c.eat(b"drop_fetched\",\"drop\":") {
        let drop = c.plain()?.parse().ok()?;
        c.lit(b",\"party\":")?;
        let party = c.plain()?.parse().ok()?;
        c.lit(b",\"fetched\":")?;
        let fetched = c.plain()?.parse().ok()?;
        c.lit(b",\"request\":{\"method\":")?;
        let method = c.plain()?.to_owned();
        c.lit(b",\"path\":")?;
        let path = c.plain()?.to_owned();
        c.lit(b",\"key\":")?;
        let key = c.plain()?.to_owned();
        c.lit(b",\"time\":")?;
        let time = c.int()?;
        c.lit(b",\"nonce\":")?;
        let nonce = c.plain()?.to_owned();
        c.lit(b",\"content\":")?;
        let content = c.plain()?.to_owned();
        c.lit(b",\"signature\":")?;
        let signature = c.plain()?.to_owned();
        c.lit(b"}")?;
        let request = SignedRequest { method, path, key, time, nonce, content, signature };
        LogEntry::DropFetched { drop, party, fetched, request }
    } else if c.eat(b"drop_acknowledged\",\"acknowledged\":") {
        let acknowledged = c.plain()?.parse().ok()?;
        c.lit(b",\"receipt\":")?;
        LogEntry::DropAcknowledged { acknowledged, receipt: c.text()? }
    } else {
        return None;
    };
    c.lit(b"}")?;
    (c.i == bytes.len()).then_some(entry)
}

/// How many bytes of `b` come before the first `"`, `\\` or control
/// character (or all of them), eight at a time.
fn plain_prefix(b: &[u8]) -> usize {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let mut i = 0;
    while let Some(w) = b.get(i..i + 8) {
        let x = u64::from_ne_bytes(w.try_into().expect("8 bytes"));
        // Bytes below 0x20 or equal to '"' or '\\' (the usual SWAR tests; no false negatives).
        let special = has_zero(x ^ (ONES * u64::from(b'"')))
            | has_zero(x ^ (ONES * u64::from(b'\\')))
            | (x.wrapping_sub(ONES * 0x20) & !x & HIGH);
        if special != 0 {
            break;
        }
        i += 8;
    }
    i + b[i..].iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20).unwrap_or(b.len() - i)
}

/// A cursor for [`canonical_entry`].
struct Canon<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Canon<'a> {
    /// Consumes `lit` if it comes next.
    fn eat(&mut self, lit: &[u8]) -> bool {
        let next = self.b[self.i..].starts_with(lit);
        if next {
            self.i += lit.len();
        }
        next
    }

    fn lit(&mut self, lit: &[u8]) -> Option<()> {
        self.eat(lit).then_some(())
    }

    /// A JSON string without escapes.
    fn plain(&mut self) -> Option<&'a str> {
        self.lit(b"\"")?;
        let rest = &self.b[self.i..];
        let len = plain_prefix(rest);
        if rest.get(len) != Some(&b'"') {
            return None;
        }
        self.i += len + 1;
        std::str::from_utf8(&rest[..len]).ok()
    }

    /// A JSON string, unescaped (any escape but `\u`).
    fn text(&mut self) -> Option<String> {
        self.lit(b"\"")?;
        let rest = &self.b[self.i..];
        let mut out = Vec::with_capacity(rest.len());
        let (mut run, mut j) = (0, 0);
        loop {
            j += plain_prefix(&rest[j..]);
            match *rest.get(j)? {
                b'"' => break,
                b'\\' => {
                    out.extend_from_slice(&rest[run..j]);
                    out.push(match *rest.get(j + 1)? {
                        b'"' => b'"',
                        b'\\' => b'\\',
                        b'/' => b'/',
                        b'b' => 0x08,
                        b'f' => 0x0c,
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        _ => return None,
                    });
                    j += 2;
                    run = j;
                }
                0..0x20 => return None,
                _ => j += 1,
            }
        }
        out.extend_from_slice(&rest[run..j]);
        self.i += j + 1;
        String::from_utf8(out).ok()
    }

    /// A JSON integer that `serde_json` reads as an `i64` (no fraction,
    /// exponent or leading zero, not `-0`).
    fn int(&mut self) -> Option<i64> {
        let negative = self.eat(b"-");
        let digits = self.b[self.i..].iter().take_while(|b| b.is_ascii_digit()).count();
        let text = std::str::from_utf8(&self.b[self.i..self.i + digits]).ok()?;
        if digits == 0 || (digits > 1 && text.starts_with('0')) {
            return None;
        }
        self.i += digits;
        let magnitude: u64 = text.parse().ok()?;
        match negative {
            // serde_json reads `-0` as a float, which no i64 accepts.
            true if magnitude == 0 => None,
            true => 0i64.checked_sub_unsigned(magnitude),
            false => i64::try_from(magnitude).ok(),
        }
    }
}

/// A faster [`LogEntry::from_bytes`] for well-formed entries: `Some` only
/// when the entry has exactly one variant's fields, so it accepts nothing
/// `LogEntry::from_bytes` refuses; on `None` the caller asks `LogEntry`.
/// Entries in the exact form `LogEntry::to_bytes` writes take the faster
/// [`canonical_entry`] path.
fn fast_entry(bytes: &[u8]) -> Option<LogEntry> {
    if bytes.len() > crate::entry::MAX_ENTRY_BYTES {
        return None;
    }
    if let Some(e) = canonical_entry(bytes) {
        return Some(e);
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
        match live_slot(&mut self.drops, &mut self.failures, index, drop, what)? {
            DropSlot::Live(d) => Some(d),
            DropSlot::Deleted { .. } => None,
        }
    }

    fn deleted(&mut self, index: u64, time: Timestamp, drop: &DropId, reason: DeletionReason) {
        self.time(index, time);
        match reason {
            DeletionReason::Delivered => self.report.deleted.delivered += 1,
            DeletionReason::Expired => self.report.deleted.expired += 1,
            DeletionReason::Recalled => self.report.deleted.recalled += 1,
        }
        let Some(slot) = live_slot(&mut self.drops, &mut self.failures, index, drop, "deleted") else { return };
        let DropSlot::Live(d) = &*slot else { return };
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
        *slot = DropSlot::Deleted { committed_at, deleted_at: index };
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
        let path = req.path.strip_prefix("/v1/drops/").and_then(|p| p.strip_suffix("/content"));
        if req.method != "GET" || path != Some(drop.as_str()) {
            let path = format!("/v1/drops/{drop}/content");
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
                // What `B64.decode` gives, when it is 64 bytes, without allocating.
                let mut buf = [0u8; 66];
                let sig =
                    B64.decode_slice(&req.signature, &mut buf).ok().and_then(|n| Signature::from_slice(&buf[..n]).ok());
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
        let drop = &r.drop;
        let Some(d) = self.drop_state(index, drop, "acknowledged") else { return };
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

/// The slot of `drop` when it is live; otherwise records why it is not
/// (a function of the fields it needs, so the slot can be changed in place).
fn live_slot<'m>(
    drops: &'m mut HashMap<DropId, DropSlot>,
    failures: &mut Vec<(Option<u64>, String)>,
    index: u64,
    drop: &DropId,
    what: &str,
) -> Option<&'m mut DropSlot> {
    let reason = match drops.get_mut(drop) {
        Some(slot @ DropSlot::Live(_)) => return Some(slot),
        None => format!("drop {drop} is {what} but was never committed"),
        Some(DropSlot::Deleted { deleted_at, .. }) => {
            format!("drop {drop} is {what} after its deletion at entry {deleted_at}")
        }
    };
    failures.push((Some(index), reason));
    None
}

// ---------------------------------------------------------------------------
// The pipeline.

/// Work for the pool.
enum Task {
    /// Parse chunk `seq`.
    Parse(u64, Vec<Vec<u8>>),
    /// Verify a batch of signatures.
    Verify(Vec<SigJob>),
}

/// A problem with entry `.0`.
type Failure = (u64, String);

/// Work done.
enum Done {
    Parsed(u64, Vec<Parsed>),
    Verified(Vec<Failure>),
    /// A worker panicked (the pipeline cannot finish).
    Panicked,
}

/// Tells the calling thread when a worker panics, so it does not wait forever.
struct PanicGuard(mpsc::Sender<Done>);

impl Drop for PanicGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = self.0.send(Done::Panicked);
        }
    }
}

/// Runs the entries through the pipeline. The calling thread reads and
/// hashes chunks of `chunk` entries and queues them to be parsed; applies
/// the rules to parsed chunks in log order, which queues signature checks;
/// and queues those `batch` at a time. `threads` workers take the oldest
/// task of either kind, so every core stays busy whatever the mix; at most
/// [`AHEAD`] chunks are read but not yet applied and, before reading on, at
/// most [`VERIFYING`] batches wait to be verified, so memory stays bounded.
/// Returns the signature failures (by entry) and the read failure, if any.
fn run_entries(
    a: &mut Auditor,
    entries: &mut dyn Iterator<Item = io::Result<Vec<u8>>>,
    root: &mut RootBuilder,
    mode: SignatureCheck,
    threads: usize,
    chunk: usize,
    batch: usize,
) -> (Vec<Failure>, Option<Failure>) {
    let (chunk, batch) = (chunk.max(1), batch.max(1));
    let (task_tx, task_rx) = mpsc::channel::<Task>();
    let task_rx = Arc::new(Mutex::new(task_rx));
    let (done_tx, done_rx) = mpsc::channel::<Done>();
    let mut read_failure = None;
    let mut sig_failures = Vec::new();
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            let (task_rx, guard) = (Arc::clone(&task_rx), PanicGuard(done_tx.clone()));
            s.spawn(move || {
                loop {
                    // The lock is held only while waiting for the next task.
                    let task = task_rx.lock().map_or(Err(mpsc::RecvError), |rx| rx.recv());
                    let done = match task {
                        Err(_) => break,
                        Ok(Task::Parse(seq, raw)) => Done::Parsed(seq, raw.iter().map(|e| parse_entry(e)).collect()),
                        Ok(Task::Verify(jobs)) => Done::Verified(verify_jobs(&jobs, mode)),
                    };
                    if guard.0.send(done).is_err() {
                        break;
                    }
                }
            });
        }
        drop(done_tx);
        // Dropped on leaving this closure (also when unwinding), which ends the workers.
        let tasks = task_tx;
        let (mut next_read, mut next_apply, mut verifying, mut eof) = (0u64, 0u64, 0usize, false);
        let mut ready: BTreeMap<u64, Vec<Parsed>> = BTreeMap::new();
        let send = |task: Task| tasks.send(task).expect("the audit workers are running");
        loop {
            while !eof && next_read - next_apply < AHEAD as u64 && verifying < VERIFYING {
                let mut raw = Vec::with_capacity(chunk);
                while raw.len() < chunk && read_failure.is_none() {
                    match entries.next() {
                        None => break,
                        Some(Ok(e)) => {
                            root.push(&e);
                            raw.push(e);
                        }
                        Some(Err(e)) => read_failure = Some((root.size(), e.to_string())),
                    }
                }
                eof = raw.len() < chunk;
                if !raw.is_empty() {
                    send(Task::Parse(next_read, raw));
                    next_read += 1;
                }
            }
            if let Some(parsed) = ready.remove(&next_apply) {
                let base = next_apply * chunk as u64;
                for (i, p) in parsed.into_iter().enumerate() {
                    a.apply(base + i as u64, p);
                    if a.jobs.len() >= batch {
                        let jobs = std::mem::replace(&mut a.jobs, Vec::with_capacity(batch));
                        a.report.signatures_checked += jobs.len() as u64;
                        send(Task::Verify(jobs));
                        verifying += 1;
                    }
                }
                next_apply += 1;
                continue;
            }
            if eof && next_apply == next_read {
                if !a.jobs.is_empty() {
                    let jobs = std::mem::take(&mut a.jobs);
                    a.report.signatures_checked += jobs.len() as u64;
                    send(Task::Verify(jobs));
                    verifying += 1;
                }
                if verifying == 0 {
                    break;
                }
            }
            match done_rx.recv() {
                Ok(Done::Parsed(seq, parsed)) => {
                    ready.insert(seq, parsed);
                }
                Ok(Done::Verified(bad)) => {
                    verifying -= 1;
                    sig_failures.extend(bad);
                }
                Ok(Done::Panicked) | Err(_) => panic!("audit worker panicked"),
            }
        }
    });
    // Batches finish in any order; each entry has at most one signature.
    sig_failures.sort_by_key(|(i, _)| *i);
    (sig_failures, read_failure)
}

// ---------------------------------------------------------------------------
// The audit.

/// Audits a log (see the [module docs](self)).
pub fn verify(input: AuditInput<'_>) -> AuditReport {
    verify_in(input, CHUNK, BATCH)
}

/// [`verify`] with `chunk` entries per pipeline chunk and `batch` signatures per batch.
fn verify_in(input: AuditInput<'_>, chunk: usize, batch: usize) -> AuditReport {
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

    // The entries, through the pipeline (see `run_entries`).
    let mut root = RootBuilder::new();
    let (sig_failures, read_failure) = run_entries(&mut a, &mut entries, &mut root, signatures, threads, chunk, batch);
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

    /// `canonical_entry` accepts only what `LogEntry::from_bytes` accepts,
    /// and reads it the same way.
    #[track_caller]
    fn assert_canonical_agrees(bytes: &[u8]) {
        let fast = canonical_entry(bytes);
        let slow = LogEntry::from_bytes(bytes).ok();
        assert!(fast.is_none() || fast == slow, "{}", String::from_utf8_lossy(bytes));
    }

    #[test]
    fn canonical_entry_agrees_with_log_entry() {
        let log = crate::testlog::generate(33, 120);
        for e in &log.entries {
            assert_eq!(canonical_entry(e), Some(LogEntry::from_bytes(e).unwrap()));
        }
        let text = |i: usize| String::from_utf8(log.entries[i].clone()).unwrap();
        let (hub, commit, fetch) = (text(0), text(1), text(2));
        assert!(fetch.contains("\"time\":"), "{fetch}");
        let time = fetch.split("\"time\":").nth(1).unwrap().split(',').next().unwrap().to_owned();
        // Valid but not canonical: the general path reads these.
        for valid in [
            commit.replacen("\\\"drop\\\"", "\\u0022drop\\u0022", 1),
            commit.replacen("\"type\":\"drop_committed\",", "\"type\": \"drop_committed\",", 1),
            format!("{commit} "),
            fetch.replacen("\"GET\"", "\"G\\u0045T\"", 1),
            fetch.replacen("\"GET\"", "\"G\\/ET\"", 1),
        ] {
            assert!(canonical_entry(valid.as_bytes()).is_none(), "{valid}");
            assert!(LogEntry::from_bytes(valid.as_bytes()).is_ok(), "{valid}");
        }
        // Escapes the canonical path decodes itself.
        for esc in ["\\/", "\\b", "\\f", "\\r", "\\t", "\\\\", "\\\"", "\\n", "é", "\u{2014}", "\u{7f}"] {
            let e = hub.replacen("sealdrop/hub-statement/v1", &format!("sealdrop/hub-{esc}-statement/v1"), 1);
            assert!(canonical_entry(e.as_bytes()).is_some(), "{e}");
            assert_canonical_agrees(e.as_bytes());
        }
        let mut cases: Vec<Vec<u8>> = Vec::new();
        for t in [
            "0",
            "-0",
            "-1",
            "01",
            "-01",
            "1.0",
            "1e3",
            "9223372036854775807",
            "9223372036854775808",
            "-9223372036854775808",
            "-9223372036854775809",
            "18446744073709551616",
            "",
            "-",
            "+1",
            "\"1\"",
        ] {
            cases.push(fetch.replacen(&format!("\"time\":{time},"), &format!("\"time\":{t},"), 1).into_bytes());
        }
        for (from, to) in [
            ("\"hub\"", "\"Hub\""),
            ("\"statement\"", "\"statements\""),
            ("sealdrop/", "sealdrop\\u0000/"),
            ("sealdrop/", "sealdrop\\x/"),
            ("sealdrop/", "sealdrop\t/"),
            ("sealdrop/", "sealdrop\\"),
            ("\"}", "\"} "),
            ("\"}", "\"}}"),
            ("\"}", "\""),
            ("\"}", "\",\"statement\":\"x\"}"),
        ] {
            cases.push(hub.replacen(from, to, 1).into_bytes());
        }
        cases.push(b"{\"type\":\"hub\",\"statement\":\"\xff\"}".to_vec());
        cases.push(b"{\"type\":\"hub\",\"statement\":\"\xc3\"}".to_vec());
        cases.push(b"{\"type\":\"hub\",\"statement\":\"\xc3\xa9\"}".to_vec());
        cases.push(commit.replacen("\"committed\":\"", "\"committed\":\"x", 1).into_bytes());
        cases.push(fetch.replacen("\"drop\":\"d-", "\"drop\":\"D-", 1).into_bytes());
        cases.push(fetch.replacen("\"party\":\"", "\"party\":\"-", 1).into_bytes());
        for c in &cases {
            assert_canonical_agrees(c);
        }
        // Random damage, with bytes that matter to JSON.
        let interesting = b"\"\\/bfnrtu0123456789-+.eE :,{}[]\x00\x1f\x7f\xc3\xa9\xe2\x80\x94\xffaz";
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        for _ in 0..20_000 {
            let mut e = log.entries[next(log.entries.len())].clone();
            for _ in 0..1 + next(3) {
                let at = next(e.len());
                let b = interesting[next(interesting.len())];
                match next(3) {
                    0 => e[at] = b,
                    1 => e.insert(at, b),
                    _ => {
                        e.remove(at);
                    }
                }
            }
            assert_canonical_agrees(&e);
        }
    }

    /// Chunk and batch sizes, and the number of workers, change nothing in
    /// the report, failures included.
    #[test]
    fn pipeline_shape_changes_nothing() {
        let mut log = crate::testlog::generate(3, 40);
        let forge = |note: &str| {
            let (head, b64) = note.trim_end().rsplit_once(' ').unwrap();
            let mut raw = B64.decode(b64).unwrap();
            raw[10] ^= 0x40;
            format!("{head} {}\n", B64.encode(raw))
        };
        for i in [1, 40, 77, 150] {
            log.entries[i] = match log.entry(i) {
                LogEntry::Hub { statement } => LogEntry::Hub { statement: forge(&statement) },
                LogEntry::DropCommitted { committed, manifest } => {
                    LogEntry::DropCommitted { committed, manifest: forge(&manifest) }
                }
                LogEntry::DropAcknowledged { acknowledged, receipt } => {
                    LogEntry::DropAcknowledged { acknowledged, receipt: forge(&receipt) }
                }
                LogEntry::DropFetched { drop, party, fetched, mut request } => {
                    request.nonce.push('x');
                    LogEntry::DropFetched { drop, party, fetched, request }
                }
            }
            .to_bytes()
            .unwrap();
        }
        // A replayed fetch, after its drop's deletion.
        let fetch = log.entries[2].clone();
        log.entries.insert(120, fetch);
        log.reseal();
        let expected = format!("{:?}", verify(log.audit_input(3)));
        assert!(expected.contains("a replay"), "{expected}");
        assert!(expected.contains("does not verify"), "{expected}");
        for threads in [1, 2, 3] {
            for (chunk, batch) in [(1, 1), (7, 5), (64, 3), (1000, 1000)] {
                let mut input = log.audit_input(3);
                input.threads = threads;
                let got = format!("{:?}", verify_in(input, chunk, batch));
                assert_eq!(got, expected, "threads {threads}, chunk {chunk}, batch {batch}");
            }
        }
    }
}
