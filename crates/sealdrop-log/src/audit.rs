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
//!   fetching party, for `GET /v1/drops/<id>/content`), recall request (by a
//!   member key of the recalling party, for `POST /v1/drops/<id>/recall`)
//!   and hub statement (by the log key), keys taken from the directory in
//!   force at that entry (a revoked key is no member, so it signs nothing);
//!   an entry signed with a key that a later directory version revokes from
//!   a time at or before the entry's (a stolen laptop, revoked after the
//!   fact) counts for nothing ([`crate::policy`]) and is listed in
//!   [`AuditReport::used_after_revocation`], not failed: the hub was right
//!   to accept it then;
//! - **lifecycle**: entry times never go backwards; a drop is committed once,
//!   by and to parties of its agreement; nothing is fetched, acknowledged,
//!   recalled or deleted that was not committed, nor after its deletion;
//!   fetches and acknowledgements only by recipient parties, one
//!   acknowledgement per party, with the manifest's hash and length, not
//!   after expiry; an acknowledgement only after a download by that party,
//!   and at most [`crate::policy::MAX_DOWNLOADS_PER_PARTY`] downloads per
//!   party (every one is still counted and reported);
//!   - a fetch only while the drop's agreement, in the directory in force,
//!     is in force (`valid_from <= time < valid_until`) and still includes
//!     both the fetching party and the sender (an acknowledgement moves no
//!     data, so it is not held to this);
//!   - a fetch or recall request is not replayed (one nonce per key across
//!     both) and was signed within `MAX_CLOCK_SKEW_SECS` of its entry;
//!   - a recall only by the drop's sender, before any recipient
//!     acknowledged, once; nothing is fetched or acknowledged after it, and
//!     the hub's `Recalled` deletion is the very next entry (a recalled drop
//!     the log never deletes, or deletes otherwise, fails);
//!   - `Delivered` only once every recipient party acknowledged, `Expired`
//!     not before expiry, `Recalled` only right after the sender's recall,
//!     `AgreementEnded` only when, in the directory in force, the drop's
//!     agreement is gone or not in force at the statement's time.
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

use sealdrop_proto::directory::{Agreement, Directory, SignedDirectory};
use sealdrop_proto::drop::{Manifest, Receipt, is_sha256_hex};
use sealdrop_proto::ids::{DropId, PartyId, key_name};
use sealdrop_proto::keys::NoteVerifierKey;
use sealdrop_proto::note::{SignedDoc, peek_doc};
use sealdrop_proto::policy::{outsiders, within_clock_skew};
use sealdrop_proto::request::{MAX_CLOCK_SKEW_SECS, signed_string};

use crate::Hash;
use crate::checkpoint;
use crate::cosign::verify_cosignatures;
use crate::entry::{DeletionReason, HubStatement, LogEntry, SignedRequest};
use crate::notes;
use crate::policy;
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

/// An entry signed with a key that a directory version, published later,
/// revokes from a time at or before the entry's own: the hub accepted it
/// rightly (the key was a member of the directory then in force), but
/// whoever used the key then may not have been its owner (a stolen laptop is
/// revoked from the last time it was known safe). Not a failure of the log:
/// recipients refuse such a drop ([`policy::revoked_key_vouches`]), and an
/// information-governance officer needs to see what the key did after it
/// stopped being trusted (what a thief sent, downloaded or acknowledged).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UseAfterRevocation {
    /// The entry.
    pub index: u64,
    /// What the key signed: `manifest`, `receipt`, `fetch request`, ...
    pub what: String,
    /// The key's name, `<party>/<member>`.
    pub signer: String,
    /// The entry's time.
    pub at: Timestamp,
    /// From when the key is revoked.
    pub revoked_at: Timestamp,
    /// The first directory version that revokes it.
    pub serial: u64,
}

impl fmt::Display for UseAfterRevocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "entry {}: a {} signed at {} with {}'s key, which directory {} revokes from {}: it counts for nothing, \
             and whoever used the key may not have been its owner",
            self.index, self.what, self.at, self.signer, self.serial, self.revoked_at
        )
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
    /// Its agreement ended (expired, or ended or dropped by a new directory
    /// version) while the drop waited.
    pub agreement_ended: u64,
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
    /// `DropRecalled` entries.
    pub recalls: u64,
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
    /// Entries signed with a key revoked, by a later directory version, from
    /// before them, in log order (at most [`MAX_FAILURES`]). Not failures.
    pub used_after_revocation: Vec<UseAfterRevocation>,
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
            "drops: {} committed, {} fetched ({} fetches), {} acknowledged ({} acknowledgements), {} recalled",
            self.drops_committed,
            self.drops_fetched,
            self.fetches,
            self.drops_acknowledged,
            self.acknowledgements,
            self.recalls
        )?;
        writeln!(
            f,
            "deleted: {} delivered, {} expired, {} recalled, {} agreement ended",
            self.deleted.delivered, self.deleted.expired, self.deleted.recalled, self.deleted.agreement_ended
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
        for u in &self.used_after_revocation {
            writeln!(f, "AFTER REVOCATION {u}")?;
        }
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
    agreements: HashMap<String, Agreement>,
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
        let agreements = directory.agreements.iter().map(|a| (a.id.clone(), a.clone())).collect();
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
    Recalled { drop: DropId, party: PartyId, recalled: Timestamp, request: Box<SignedRequest> },
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
    #[serde(default, deserialize_with = "present")]
    recalled: Option<Timestamp>,
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
        LogEntry::DropFetched { drop, party, fetched, request: c.request()? }
    } else if c.eat(b"drop_acknowledged\",\"acknowledged\":") {
        let acknowledged = c.plain()?.parse().ok()?;
        c.lit(b",\"receipt\":")?;
        LogEntry::DropAcknowledged { acknowledged, receipt: c.text()? }
    } else if c.eat(b"drop_recalled\",\"drop\":") {
        let drop = c.plain()?.parse().ok()?;
        c.lit(b",\"party\":")?;
        let party = c.plain()?.parse().ok()?;
        c.lit(b",\"recalled\":")?;
        let recalled = c.plain()?.parse().ok()?;
        LogEntry::DropRecalled { drop, party, recalled, request: c.request()? }
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

    /// `,"request":` and a [`SignedRequest`] object, fields in order.
    fn request(&mut self) -> Option<SignedRequest> {
        self.lit(b",\"request\":{\"method\":")?;
        let method = self.plain()?.to_owned();
        self.lit(b",\"path\":")?;
        let path = self.plain()?.to_owned();
        self.lit(b",\"key\":")?;
        let key = self.plain()?.to_owned();
        self.lit(b",\"time\":")?;
        let time = self.int()?;
        self.lit(b",\"nonce\":")?;
        let nonce = self.plain()?.to_owned();
        self.lit(b",\"content\":")?;
        let content = self.plain()?.to_owned();
        self.lit(b",\"signature\":")?;
        let signature = self.plain()?.to_owned();
        self.lit(b"}")?;
        Some(SignedRequest { method, path, key, time, nonce, content, signature })
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
    let FlatEntry {
        kind,
        statement,
        committed,
        manifest,
        drop,
        party,
        fetched,
        request,
        acknowledged,
        receipt,
        recalled,
    } = f;
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
            recalled.is_some(),
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
        "drop_recalled" if fields(4) => {
            Some(LogEntry::DropRecalled { drop: drop?, party: party?, recalled: recalled?, request: request? })
        }
        _ => None,
    }
}

/// What the audit's own entry parsers make of `bytes`: [`canonical_entry`],
/// [`fast_entry`], and whether the full parse (the entry and the signed
/// document inside it) accepts it. Not a stable API: it exists for the
/// differential fuzz target (`fuzz/fuzz_targets/log_entry.rs`) and its
/// corpus regression test, which check the fast parsers against
/// [`LogEntry::from_bytes`].
#[doc(hidden)]
pub fn fuzz_parsers(bytes: &[u8]) -> (Option<LogEntry>, Option<LogEntry>, Result<(), String>) {
    let full = match parse_entry(bytes) {
        Parsed::Bad(why) => Err(why),
        _ => Ok(()),
    };
    (canonical_entry(bytes), fast_entry(bytes), full)
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
        LogEntry::DropRecalled { drop, party, recalled, request } => {
            Ok(Parsed::Recalled { drop, party, recalled, request: Box::new(request) })
        }
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
    sender: PartyId,
    agreement: String,
    recipients: Vec<PartyId>,
    sha256: String,
    len: u64,
    expires: Timestamp,
    acked: Vec<(PartyId, u64)>,
    /// Logged downloads so far, by recipient party.
    downloads: Vec<(PartyId, u64)>,
    /// The entry of its (first) recall.
    recalled: Option<u64>,
}

/// What the audit remembers of a drop: all of it while it lives, only
/// where it was committed and deleted afterwards (a million-entry log keeps
/// a few hundred thousand of these).
enum DropSlot {
    Live(Box<DropState>),
    /// `recalled`: deleted as recalled right after its recall, which is
    /// therefore entry `deleted_at - 1` (a bool fits in the tag's padding).
    Deleted {
        committed_at: u64,
        deleted_at: u64,
        recalled: bool,
    },
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
    /// SHA-256 of each logged fetch or recall request's key name and nonce.
    nonces: HashMap<[u8; 32], u64>,
    /// Every revoked member key in any directory version, by its bytes:
    /// the earliest revocation time and the first serial to list it.
    revocations: HashMap<[u8; 32], (Timestamp, u64)>,
    jobs: Vec<SigJob>,
    failures: Vec<(Option<u64>, String)>,
    /// Uses of keys revoked after the fact (not failures).
    after_revocation: Vec<UseAfterRevocation>,
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

    /// Queues the check of a note's signature by a member key of `party`,
    /// for an entry logged at `at`.
    #[allow(clippy::too_many_arguments)]
    fn member_sig(
        &mut self,
        index: u64,
        dir: &DirVersion,
        party: &PartyId,
        name: &str,
        at: Timestamp,
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
        self.revoked_signer(index, &key, &signer, at, what);
        signed.note.truncate(signed.text_len);
        self.push_job(index, signed.note.into_bytes(), sig.ok(), key, weak, what, signer);
    }

    /// A document or request signed with a key that some directory version
    /// revokes from a time at or before `at`, the time of its entry, counts
    /// for nothing ([`policy::revoked_key_vouches`]). The key was a member of
    /// the directory in force (else the signature check fails the entry), so
    /// the hub was right to accept it; the revocation came after the fact (a
    /// stolen laptop, revoked from the last time it was known safe). It is
    /// listed, not failed: a log that recorded a thief's use of a key before
    /// the coordinator revoked it is sound, and must still verify.
    fn revoked_signer(&mut self, index: u64, key: &VerifyingKey, signer: &str, at: Timestamp, what: &str) {
        if let Some(&(revoked_at, serial)) = self.revocations.get(key.as_bytes())
            && !policy::revoked_key_vouches(revoked_at, at)
            && self.after_revocation.len() < MAX_FAILURES
        {
            self.after_revocation.push(UseAfterRevocation {
                index,
                what: what.to_owned(),
                signer: signer.to_owned(),
                at,
                revoked_at,
                serial,
            });
        }
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
            Parsed::Recalled { drop, party, recalled, request } => {
                self.recalled(index, &drop, &party, recalled, &request)
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
            DeletionReason::AgreementEnded => self.report.deleted.agreement_ended += 1,
        }
        // The directory in force decides whether an agreement ended.
        let dir = if reason == DeletionReason::AgreementEnded { self.directory(index) } else { None };
        let Some(slot) = live_slot(&mut self.drops, &mut self.failures, index, drop, "deleted") else { return };
        let DropSlot::Live(d) = &*slot else { return };
        let committed_at = d.committed_at;
        let mut problems = Vec::new();
        match reason {
            DeletionReason::Delivered => {
                let missing: Vec<&str> = d
                    .recipients
                    .iter()
                    .filter(|r| !d.acked.iter().any(|(p, _)| p == *r))
                    .map(PartyId::as_str)
                    .collect();
                if !missing.is_empty() {
                    problems.push(format!(
                        "drop {drop} is deleted as delivered, but {} has not acknowledged it",
                        missing.join(", ")
                    ));
                }
            }
            DeletionReason::Expired => {
                if time < d.expires {
                    problems
                        .push(format!("drop {drop} is deleted as expired at {time}, before its expiry {}", d.expires));
                }
            }
            DeletionReason::Recalled => {
                if d.recalled.is_none_or(|r| r + 1 != index) {
                    let was = match d.recalled {
                        None => "it was never recalled".to_owned(),
                        Some(r) => format!("it was recalled at entry {r}"),
                    };
                    problems.push(format!(
                        "drop {drop} is deleted as recalled, but the sender's recall is not the entry before ({was})"
                    ));
                }
            }
            DeletionReason::AgreementEnded => {
                if let Some(dir) = dir.as_deref()
                    && let Some(terms) = dir.agreements.get(&d.agreement)
                    && terms.in_force(time)
                {
                    problems.push(format!(
                        "drop {drop} is deleted as its agreement ended at {time}, but agreement `{}` is in force then \
                         in directory {} (from {} until {})",
                        d.agreement, dir.serial, terms.valid_from, terms.valid_until
                    ));
                }
            }
        }
        if let Some(r) = d.recalled
            && reason != DeletionReason::Recalled
        {
            problems.push(format!(
                "drop {drop} was recalled at entry {r}, so the hub must delete it as recalled, not as {}",
                reason_text(reason)
            ));
        }
        let recalled = reason == DeletionReason::Recalled && d.recalled.is_some_and(|r| r + 1 == index);
        *slot = DropSlot::Deleted { committed_at, deleted_at: index, recalled };
        for p in problems {
            self.fail(Some(index), p);
        }
    }

    fn committed(&mut self, index: u64, committed: Timestamp, m: Manifest, signed: Signed) {
        self.time(index, committed);
        let Some(dir) = self.directory(index) else { return };
        let signer = key_name(&m.sender, &m.sender_member);
        self.member_sig(index, &dir, &m.sender, &signer, committed, "manifest", signed);
        if let Some(first) = self.drops.get(&m.drop) {
            let at = first.committed_at();
            self.fail(Some(index), format!("drop {} is committed again (first at entry {at})", m.drop));
            return;
        }
        self.report.drops_committed += 1;
        let mut problems = Vec::new();
        match dir.agreements.get(&m.agreement) {
            None => problems.push(format!("its agreement `{}` is not in directory {}", m.agreement, dir.serial)),
            Some(a) => {
                if outsiders(a, [&m.sender]).next().is_some() {
                    problems.push(format!("the sender {} is not a party to agreement `{}`", m.sender, m.agreement));
                }
                for r in outsiders(a, &m.recipients) {
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
                sender: m.sender,
                agreement: m.agreement,
                recipients,
                sha256: m.ciphertext_sha256,
                len: m.ciphertext_len,
                expires: m.expires,
                acked: Vec::new(),
                downloads: Vec::new(),
                recalled: None,
            })),
        );
    }

    /// Checks a party's signed request for `drop`, logged at `at` (a fetch
    /// or a recall): the right route, not replayed, signed near `at`, by a
    /// member key of `party` in `dir`; queues the signature check.
    #[allow(clippy::too_many_arguments)]
    fn request(
        &mut self,
        index: u64,
        dir: &DirVersion,
        drop: &DropId,
        party: &PartyId,
        at: Timestamp,
        req: &SignedRequest,
        route: Route,
    ) {
        let Route { what, job, method, suffix } = route;
        let path = req.path.strip_prefix("/v1/drops/").and_then(|p| p.strip_suffix(suffix));
        if req.method != method || path != Some(drop.as_str()) {
            let path = format!("/v1/drops/{drop}{suffix}");
            self.fail(Some(index), format!("the {job} is for {} {}, not {method} {path}", req.method, req.path));
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
                format!("the {job} (nonce {}) was already logged at entry {first}: a replay", req.nonce),
            );
        }
        if !within_clock_skew(req.time, at.as_second()) {
            self.fail(Some(index), format!(
                "the {job} was signed at {} but the {what} is logged at {}, more than {MAX_CLOCK_SKEW_SECS} s apart",
                req.time,
                at.as_second()
            ));
        }
        match dir.members.get(&req.key).filter(|m| &m.party == party) {
            None => self.fail(
                Some(index),
                format!(
                    "the {job} is signed for {}, which directory {} does not list as a member of {party}",
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
                self.revoked_signer(index, &key, &signer, at, job);
                self.push_job(index, msg.into_bytes(), sig, key, weak, job, signer);
            }
        }
    }

    fn fetched(&mut self, index: u64, drop: &DropId, party: &PartyId, fetched: Timestamp, req: &SignedRequest) {
        self.time(index, fetched);
        self.report.fetches += 1;
        let Some(dir) = self.directory(index) else { return };
        self.request(index, &dir, drop, party, fetched, req, Route::FETCH);
        let Some(d) = self.drop_state(index, drop, "fetched") else { return };
        let first_fetch = d.downloads.is_empty();
        let mut problems = Vec::new();
        let logged = match d.downloads.iter_mut().find(|(p, _)| p == party) {
            Some((_, n)) => n,
            None => {
                d.downloads.push((party.clone(), 0));
                &mut d.downloads.last_mut().expect("just pushed").1
            }
        };
        if !policy::may_download(*logged) {
            problems.push(format!(
                "drop {drop} is downloaded by {party} after {} logged downloads, the most the hub may serve one party",
                *logged
            ));
        }
        *logged += 1;
        if let Some(r) = d.recalled {
            problems.push(format!("drop {drop} is fetched after it was recalled at entry {r}"));
        }
        if !d.recipients.contains(party) {
            problems.push(format!("drop {drop} is fetched by {party}, which is not one of its recipients"));
        }
        if fetched > d.expires {
            problems.push(format!("drop {drop} is fetched at {fetched}, after its expiry {}", d.expires));
        }
        // The agreement, as the directory in force has it now.
        let agreement = &d.agreement;
        match dir.agreements.get(agreement) {
            None => problems.push(format!(
                "drop {drop} is fetched at {fetched}, when agreement `{agreement}` was not in force \
                 (directory {} does not list it)",
                dir.serial
            )),
            Some(t) if !t.in_force(fetched) => problems.push(format!(
                "drop {drop} is fetched at {fetched}, when agreement `{agreement}` was not in force \
                 (directory {}: from {} until {})",
                dir.serial, t.valid_from, t.valid_until
            )),
            Some(t) => {
                let sender = (d.sender != *party).then_some(&d.sender);
                for p in outsiders(t, std::iter::once(party).chain(sender)) {
                    problems.push(format!(
                        "drop {drop} is fetched at {fetched}, when agreement `{agreement}` did not include {p} \
                         (directory {})",
                        dir.serial
                    ));
                }
            }
        }
        if first_fetch {
            self.report.drops_fetched += 1;
        }
        for p in problems {
            self.fail(Some(index), p);
        }
    }

    fn recalled(&mut self, index: u64, drop: &DropId, party: &PartyId, recalled: Timestamp, req: &SignedRequest) {
        self.time(index, recalled);
        self.report.recalls += 1;
        let Some(dir) = self.directory(index) else { return };
        self.request(index, &dir, drop, party, recalled, req, Route::RECALL);
        let Some(d) = self.drop_state(index, drop, "recalled") else { return };
        let mut problems = Vec::new();
        if d.sender != *party {
            problems.push(format!("drop {drop} is recalled by {party}, which is not its sender {}", d.sender));
        }
        if let Some((p, at)) = d.acked.first() {
            problems.push(format!("drop {drop} is recalled after {p} acknowledged it at entry {at}"));
        }
        match d.recalled {
            Some(first) => problems.push(format!("drop {drop} is recalled again (first at entry {first})")),
            None => d.recalled = Some(index),
        }
        for p in problems {
            self.fail(Some(index), p);
        }
    }

    fn acknowledged(&mut self, index: u64, at: Timestamp, r: Receipt, signed: Signed) {
        self.time(index, at);
        self.report.acknowledgements += 1;
        let Some(dir) = self.directory(index) else { return };
        let signer = key_name(&r.recipient, &r.member);
        self.member_sig(index, &dir, &r.recipient, &signer, at, "receipt", signed);
        let drop = &r.drop;
        let Some(d) = self.drop_state(index, drop, "acknowledged") else { return };
        let recalled = d.recalled;
        let mut problems = Vec::new();
        let mut first_ack = false;
        let downloads = d.downloads.iter().find(|(p, _)| *p == r.recipient).map_or(0, |(_, n)| *n);
        if !d.recipients.contains(&r.recipient) {
            problems.push(format!("it is acknowledged by {}, which is not one of its recipients", r.recipient));
        } else if !policy::may_acknowledge(downloads) {
            problems.push(format!(
                "it is acknowledged by {}, which never downloaded it (no drop_fetched entry of {} before)",
                r.recipient, r.recipient
            ));
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
        if let Some(at) = recalled {
            self.fail(Some(index), format!("drop {drop} is acknowledged after it was recalled at entry {at}"));
        }
        for p in problems {
            self.fail(Some(index), format!("drop {drop}: {p}"));
        }
    }

    /// Recalled drops the log never deletes, by their recall entry.
    fn recalled_not_deleted(&mut self) {
        let mut left: Vec<(u64, &DropId)> = self
            .drops
            .iter()
            .filter_map(|(id, slot)| match slot {
                DropSlot::Live(d) => d.recalled.map(|r| (r, id)),
                DropSlot::Deleted { .. } => None,
            })
            .collect();
        left.sort();
        let failures: Vec<(Option<u64>, String)> = left
            .into_iter()
            .map(|(r, drop)| {
                (Some(r), format!("drop {drop} is recalled, but the log ends without the hub deleting it as recalled"))
            })
            .collect();
        self.failures.extend(failures);
    }
}

/// The route a signed request must be for.
#[derive(Clone, Copy)]
struct Route {
    /// What the entry records (`fetch`, `recall`).
    what: &'static str,
    /// What the request is called in failures and signature jobs.
    job: &'static str,
    method: &'static str,
    /// The path after `/v1/drops/<id>`.
    suffix: &'static str,
}

impl Route {
    const FETCH: Route = Route { what: "fetch", job: "fetch request", method: "GET", suffix: "/content" };
    const RECALL: Route = Route { what: "recall", job: "recall request", method: "POST", suffix: "/recall" };
}

/// The reason as the failures name it.
fn reason_text(reason: DeletionReason) -> &'static str {
    match reason {
        DeletionReason::Delivered => "delivered",
        DeletionReason::Expired => "expired",
        DeletionReason::Recalled => "recalled",
        DeletionReason::AgreementEnded => "agreement ended",
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
        Some(DropSlot::Deleted { deleted_at, recalled: true, .. }) => {
            let recall = *deleted_at - 1;
            format!("drop {drop} is {what} after it was recalled at entry {recall} (deleted at entry {deleted_at})")
        }
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
        revocations: HashMap::new(),
        jobs: Vec::new(),
        failures: Vec::new(),
        after_revocation: Vec::new(),
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
                    for r in &p.revoked {
                        let slot =
                            a.revocations.entry(r.signing_key.key().to_bytes()).or_insert((r.revoked_at, serial));
                        slot.0 = slot.0.min(r.revoked_at);
                    }
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
    a.recalled_not_deleted();
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
    report.used_after_revocation = std::mem::take(&mut a.after_revocation);
    report.used_after_revocation.sort_by_key(|u| u.index);
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
        // A recall, in the canonical form and in forms only the flat path reads.
        let (drop, sender) = (crate::testlog::drop_id(&[7; 16], 1), log.keys.party(0).clone());
        let recall = log.keys.recall_entry(&drop, &sender, crate::testlog::time_of(9));
        assert!(canonical_entry(&recall).is_some());
        let recall = String::from_utf8(recall).unwrap();
        assert!(recall.starts_with("{\"type\":\"drop_recalled\","), "{recall}");
        for (i, valid) in [
            recall.clone(),
            recall.replacen("\"type\":\"drop_recalled\",", "\"type\": \"drop_recalled\",", 1),
            recall.replacen("{\"type\":\"drop_recalled\",", "{", 1).replacen("}}", "},\"type\":\"drop_recalled\"}", 1),
        ]
        .iter()
        .enumerate()
        {
            assert_eq!(canonical_entry(valid.as_bytes()).is_some(), i == 0, "{valid}");
            assert!(LogEntry::from_bytes(valid.as_bytes()).is_ok(), "{valid}");
            assert_eq!(fast_entry(valid.as_bytes()), Some(LogEntry::from_bytes(valid.as_bytes()).unwrap()), "{valid}");
        }
        let tampered_recalls = [
            recall.replacen("\"recalled\":", "\"fetched\":", 1),
            recall.replacen("\"drop_recalled\"", "\"drop_fetched\"", 1),
            recall.replacen("\"drop_recalled\"", "\"drop_acknowledged\"", 1),
            recall.replacen("{", "{\"receipt\":\"x\",", 1),
            recall.replacen("{", "{\"fetched\":\"2026-01-01T00:00:00Z\",", 1),
            recall.replacen(&format!("\"party\":\"{sender}\","), "", 1),
            recall.replacen("\"recalled\":\"", "\"recalled\":\"x", 1),
        ];
        for t in tampered.iter().chain(&tampered_recalls) {
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
        let recalls: Vec<String> =
            (0..log.entries.len()).map(text).filter(|e| e.starts_with("{\"type\":\"drop_recalled\",")).collect();
        assert_eq!(recalls.len(), 1, "drop 33 is recalled");
        let recall = &recalls[0];
        assert!(fetch.contains("\"time\":"), "{fetch}");
        let time = fetch.split("\"time\":").nth(1).unwrap().split(',').next().unwrap().to_owned();
        // Valid but not canonical: the general path reads these.
        for valid in [
            commit.replacen("\\\"drop\\\"", "\\u0022drop\\u0022", 1),
            commit.replacen("\"type\":\"drop_committed\",", "\"type\": \"drop_committed\",", 1),
            format!("{commit} "),
            fetch.replacen("\"GET\"", "\"G\\u0045T\"", 1),
            fetch.replacen("\"GET\"", "\"G\\/ET\"", 1),
            recall.replacen("\"POST\"", "\"P\\u004fST\"", 1),
            recall.replacen("\"drop_recalled\",", "\"drop_recalled\" ,", 1),
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
            let recall_time = recall.split("\"time\":").nth(1).unwrap().split(',').next().unwrap();
            cases.push(recall.replacen(&format!("\"time\":{recall_time},"), &format!("\"time\":{t},"), 1).into_bytes());
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
        cases.push(recall.replacen("\"recalled\":\"", "\"recalled\":\"x", 1).into_bytes());
        cases.push(recall.replacen("\"recalled\":", "\"fetched\":", 1).into_bytes());
        cases.push(recall.replacen("\"drop_recalled\"", "\"drop_fetched\"", 1).into_bytes());
        cases.push(recall.replacen("\"request\":{", "\"request\":{\"x\":1,", 1).into_bytes());
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
                LogEntry::DropRecalled { drop, party, recalled, mut request } => {
                    request.nonce.push('x');
                    LogEntry::DropRecalled { drop, party, recalled, request }
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

    // -----------------------------------------------------------------------
    // Recalls and agreements, on a small generated log with entries appended.

    use crate::testlog::{AGREEMENT, GeneratedLog, time_of};
    use jiff::SignedDuration;
    use sealdrop_proto::directory::Directory;

    /// A clean generated log (4 delivered drops among 3 parties, directory 2
    /// in force at its end) to which a test appends entries, entry `i`
    /// logged at `time_of(i)`.
    struct Scenario {
        log: GeneratedLog,
    }

    impl Scenario {
        fn new() -> Self {
            let s = Self { log: crate::testlog::generate(3, 4) };
            assert!(verify(s.log.audit_input(3)).ok());
            s
        }

        fn party(&self, i: usize) -> PartyId {
            self.log.keys.party(i).clone()
        }

        fn next(&self) -> u64 {
            self.log.entries.len() as u64
        }

        fn now(&self) -> Timestamp {
            time_of(self.next())
        }

        fn push(&mut self, entry: Vec<u8>) -> u64 {
            let i = self.next();
            self.log.entries.push(entry);
            i
        }

        /// A drop from party `sender` to parties `to`, under directory 2.
        fn commit(&mut self, sender: usize, to: &[usize]) -> (u64, DropId) {
            let t = self.now();
            let to: Vec<PartyId> = to.iter().map(|&p| self.party(p)).collect();
            let m = self.log.keys.manifest(
                DropId::random(),
                &self.party(sender),
                &to,
                2,
                t - SignedDuration::from_secs(60),
                t + SignedDuration::from_hours(24 * 7),
            );
            let i = self.push(self.log.keys.commit_entry(t, &m));
            (i, m.drop)
        }

        fn manifest(&self, index: u64) -> Manifest {
            let LogEntry::DropCommitted { manifest, .. } = self.log.entry(index as usize) else { panic!("a commit") };
            sealdrop_proto::note::peek_doc(&manifest).unwrap()
        }

        fn fetch(&mut self, drop: &DropId, party: usize) -> u64 {
            let e = self.log.keys.fetch_entry(drop, &self.party(party), self.now());
            self.push(e)
        }

        fn ack(&mut self, commit: u64, party: usize) -> u64 {
            let (m, t) = (self.manifest(commit), self.now());
            let e = self.log.keys.ack_entry(t, &self.log.keys.receipt(&m, &self.party(party), t));
            self.push(e)
        }

        fn recall(&mut self, drop: &DropId, party: usize) -> u64 {
            let e = self.log.keys.recall_entry(drop, &self.party(party), self.now());
            self.push(e)
        }

        /// A recall entry with `request` as its signed request.
        fn recall_with(&mut self, drop: &DropId, party: usize, request: SignedRequest) -> u64 {
            let (party, recalled) = (self.party(party), self.now());
            self.push(LogEntry::DropRecalled { drop: drop.clone(), party, recalled, request }.to_bytes().unwrap())
        }

        fn delete_at(&mut self, drop: &DropId, reason: DeletionReason, time: Timestamp) -> u64 {
            let e = self.log.keys.hub_entry(&HubStatement::DropDeleted { time, drop: drop.clone(), reason });
            self.push(e)
        }

        fn delete(&mut self, drop: &DropId, reason: DeletionReason) -> u64 {
            self.delete_at(drop, reason, self.now())
        }

        /// Publishes directory 3: directory 2 changed by `change`.
        fn publish(&mut self, change: impl FnOnce(&mut Directory)) -> u64 {
            let mut d = self.log.keys.directory(3).directory;
            change(&mut d);
            let d = SignedDirectory::sign(d, &self.log.keys.authority).unwrap();
            let st = HubStatement::DirectoryPublished { time: self.now(), serial: 3, sha256: d.sha256_hex() };
            self.log.directories.insert(3, d.note);
            let e = self.log.keys.hub_entry(&st);
            self.push(e)
        }

        fn audit(&mut self) -> AuditReport {
            self.log.reseal();
            verify(self.log.audit_input(3))
        }
    }

    /// Asserts that the report fails exactly at the indexes given, each
    /// with a failure containing its text.
    #[track_caller]
    fn assert_fails(r: &AuditReport, expected: &[(u64, &str)]) {
        for (i, needle) in expected {
            assert!(
                r.failures_at(*i).any(|f| f.reason.contains(needle)),
                "expected a failure at entry {i} containing {needle:?}; got:\n{r}"
            );
        }
        for f in &r.failures {
            assert!(
                f.index.is_some_and(|i| expected.iter().any(|(e, _)| *e == i)),
                "unexpected failure {f}; report:\n{r}"
            );
        }
    }

    /// `request` re-signed by `party`'s member key after a change.
    fn resigned(
        s: &Scenario,
        party: usize,
        mut request: SignedRequest,
        change: impl FnOnce(&mut SignedRequest),
    ) -> SignedRequest {
        change(&mut request);
        let msg =
            signed_string(&request.method, &request.path, request.time, &request.nonce, &request.content, &request.key);
        let key = &s.log.keys.member(&s.party(party)).signing;
        request.signature = B64.encode(key.sign_bytes(msg.as_bytes()).to_bytes());
        request
    }

    #[test]
    fn drop_slots_stay_small() {
        assert!(std::mem::size_of::<DropSlot>() <= 24, "{}", std::mem::size_of::<DropSlot>());
    }

    #[test]
    fn a_recall_and_its_deletion_pass() {
        let mut s = Scenario::new();
        let (_, drop) = s.commit(0, &[1, 2]);
        s.fetch(&drop, 1);
        s.recall(&drop, 0);
        s.delete(&drop, DeletionReason::Recalled);
        let r = s.audit();
        assert!(r.ok(), "{r}");
        assert_eq!((r.recalls, r.deleted.recalled, r.deleted.agreement_ended), (1, 1, 0));
        assert!(r.to_string().contains("(4 acknowledgements), 1 recalled\n"), "{r}");
        assert!(r.to_string().contains("deleted: 4 delivered, 0 expired, 1 recalled, 0 agreement ended\n"), "{r}");
        // Every entry, the recall included, carries one signature.
        assert_eq!(r.signatures_checked, r.entries + 2 + 1 + 3);

        // The generated mix recalls drop 33 the same way.
        let log = crate::testlog::generate(3, 40);
        let r = verify(log.audit_input(3));
        assert!(r.ok(), "{r}");
        assert_eq!((r.recalls, r.deleted.recalled), (1, 1));
    }

    #[test]
    fn only_the_sender_recalls() {
        for by in [1, 2] {
            let mut s = Scenario::new();
            let (_, drop) = s.commit(0, &[1]);
            let recall = s.recall(&drop, by);
            s.delete(&drop, DeletionReason::Recalled);
            let who = s.party(by);
            let r = s.audit();
            assert_fails(&r, &[(recall, &format!("drop {drop} is recalled by {who}, which is not its sender camden"))]);
        }
    }

    #[test]
    fn no_recall_after_an_acknowledgement() {
        let mut s = Scenario::new();
        let (c, drop) = s.commit(0, &[1, 2]);
        s.fetch(&drop, 1);
        let ack = s.ack(c, 1);
        let recall = s.recall(&drop, 0);
        s.delete(&drop, DeletionReason::Recalled);
        let r = s.audit();
        assert_fails(
            &r,
            &[(recall, &format!("drop {drop} is recalled after islington acknowledged it at entry {ack}"))],
        );
    }

    #[test]
    fn a_recalled_deletion_needs_the_recall_just_before() {
        // No recall at all.
        let mut s = Scenario::new();
        let (_, drop) = s.commit(0, &[1]);
        let del = s.delete(&drop, DeletionReason::Recalled);
        let r = s.audit();
        assert_fails(
            &r,
            &[(
                del,
                &format!(
                    "drop {drop} is deleted as recalled, but the sender's recall is not the entry before (it was never recalled)"
                ),
            )],
        );

        // Another entry between the recall and the deletion.
        let mut s = Scenario::new();
        let (_, drop) = s.commit(0, &[1]);
        let recall = s.recall(&drop, 0);
        s.commit(1, &[2]);
        let del = s.delete(&drop, DeletionReason::Recalled);
        let r = s.audit();
        assert_fails(
            &r,
            &[(del, &format!("the sender's recall is not the entry before (it was recalled at entry {recall})"))],
        );

        // A recall the log never deletes.
        let mut s = Scenario::new();
        let (_, drop) = s.commit(0, &[1]);
        let recall = s.recall(&drop, 0);
        let r = s.audit();
        assert_fails(
            &r,
            &[(recall, &format!("drop {drop} is recalled, but the log ends without the hub deleting it as recalled"))],
        );

        // A recall deleted as something else.
        let mut s = Scenario::new();
        let (_, drop) = s.commit(0, &[1]);
        let recall = s.recall(&drop, 0);
        let del = s.delete_at(&drop, DeletionReason::Expired, s.now() + SignedDuration::from_hours(24 * 8));
        let r = s.audit();
        assert_fails(
            &r,
            &[(
                del,
                &format!(
                    "drop {drop} was recalled at entry {recall}, so the hub must delete it as recalled, not as expired"
                ),
            )],
        );

        // Recalled twice.
        let mut s = Scenario::new();
        let (_, drop) = s.commit(0, &[1]);
        let first = s.recall(&drop, 0);
        let again = s.recall(&drop, 0);
        let del = s.delete(&drop, DeletionReason::Recalled);
        let r = s.audit();
        assert_fails(
            &r,
            &[
                (again, &format!("drop {drop} is recalled again (first at entry {first})")),
                (del, &format!("the sender's recall is not the entry before (it was recalled at entry {first})")),
            ],
        );
        // After its deletion, a recall is refused as any other event.
        let late = s.recall(&drop, 0);
        let r = s.audit();
        assert_caught(&r, late, &format!("drop {drop} is recalled after its deletion at entry {}", late - 1));
    }

    #[track_caller]
    fn assert_caught(r: &AuditReport, index: u64, needle: &str) {
        assert!(r.failures_at(index).any(|f| f.reason.contains(needle)), "expected {needle:?} at entry {index}:\n{r}");
    }

    #[test]
    fn nothing_is_fetched_or_acknowledged_after_a_recall() {
        // After the recall and its deletion.
        let mut s = Scenario::new();
        let (c, drop) = s.commit(0, &[1, 2]);
        let recall = s.recall(&drop, 0);
        let del = s.delete(&drop, DeletionReason::Recalled);
        let fetch = s.fetch(&drop, 1);
        let ack = s.ack(c, 2);
        let r = s.audit();
        assert_fails(
            &r,
            &[
                (
                    fetch,
                    &format!("drop {drop} is fetched after it was recalled at entry {recall} (deleted at entry {del})"),
                ),
                (
                    ack,
                    &format!(
                        "drop {drop} is acknowledged after it was recalled at entry {recall} (deleted at entry {del})"
                    ),
                ),
            ],
        );

        // Between the recall and its deletion (which then does not follow it).
        let mut s = Scenario::new();
        let (c, drop) = s.commit(0, &[1]);
        let recall = s.recall(&drop, 0);
        let fetch = s.fetch(&drop, 1);
        let ack = s.ack(c, 1);
        let del = s.delete(&drop, DeletionReason::Recalled);
        let r = s.audit();
        assert_fails(
            &r,
            &[
                (fetch, &format!("drop {drop} is fetched after it was recalled at entry {recall}")),
                (ack, &format!("drop {drop} is acknowledged after it was recalled at entry {recall}")),
                (del, "the sender's recall is not the entry before"),
            ],
        );
    }

    #[test]
    fn a_recall_request_is_for_the_recall_route() {
        type Path = fn(&DropId) -> String;
        let cases: [(&str, Path); 4] = [
            ("GET", |d| format!("/v1/drops/{d}/recall")),
            ("POST", |d| format!("/v1/drops/{d}/content")),
            ("POST", |d| format!("/v1/drops/{d}/recall?now=1")),
            ("POST", |_| format!("/v1/drops/{}/recall", DropId::random())),
        ];
        for (method, path) in cases {
            let mut s = Scenario::new();
            let (_, drop) = s.commit(0, &[1]);
            let path = path(&drop);
            let req = s.log.keys.signed_request(&s.party(0), method, &path, s.now(), b"{}");
            let recall = s.recall_with(&drop, 0, req);
            s.delete(&drop, DeletionReason::Recalled);
            let r = s.audit();
            assert_fails(
                &r,
                &[(recall, &format!("the recall request is for {method} {path}, not POST /v1/drops/{drop}/recall"))],
            );
        }
    }

    #[test]
    fn a_recall_request_is_signed_by_the_sender_near_the_recall() {
        // Signed for another party's member.
        let mut s = Scenario::new();
        let (_, drop) = s.commit(0, &[1]);
        let req = s.log.keys.signed_request(&s.party(1), "POST", &format!("/v1/drops/{drop}/recall"), s.now(), b"{}");
        let recall = s.recall_with(&drop, 0, req);
        s.delete(&drop, DeletionReason::Recalled);
        let r = s.audit();
        assert_fails(
            &r,
            &[(
                recall,
                "the recall request is signed for islington/data-team, which directory 2 does not list as a member of camden",
            )],
        );

        // Altered after signing.
        let mut s = Scenario::new();
        let (_, drop) = s.commit(0, &[1]);
        let mut req =
            s.log.keys.signed_request(&s.party(0), "POST", &format!("/v1/drops/{drop}/recall"), s.now(), b"{}");
        req.content = sealdrop_proto::request::body_sha256(b"{\"x\":1}");
        let recall = s.recall_with(&drop, 0, req);
        s.delete(&drop, DeletionReason::Recalled);
        let r = s.audit();
        assert_fails(&r, &[(recall, "the recall request's signature by camden/data-team does not verify")]);

        // Signed too long before.
        let mut s = Scenario::new();
        let (_, drop) = s.commit(0, &[1]);
        let then = s.now() - SignedDuration::from_secs(MAX_CLOCK_SKEW_SECS + 1);
        let req = s.log.keys.signed_request(&s.party(0), "POST", &format!("/v1/drops/{drop}/recall"), then, b"{}");
        let recall = s.recall_with(&drop, 0, req);
        s.delete(&drop, DeletionReason::Recalled);
        let r = s.audit();
        assert_fails(&r, &[(recall, "but the recall is logged at")]);
    }

    #[test]
    fn a_request_time_far_from_the_entry_is_reported_not_overflowed() {
        // Found while writing the audit's fuzz target: `req.time - at` overflowed for a
        // request time near i64::MIN (a panic in debug builds, and in release
        // a wrapped difference whose `abs` could pass the skew check).
        for time in [i64::MIN, i64::MIN + 1, i64::MAX] {
            let mut s = Scenario::new();
            let (_, drop) = s.commit(0, &[1]);
            let mut req =
                s.log.keys.signed_request(&s.party(0), "POST", &format!("/v1/drops/{drop}/recall"), s.now(), b"{}");
            req.time = time;
            let recall = s.recall_with(&drop, 0, req);
            s.delete(&drop, DeletionReason::Recalled);
            let r = s.audit();
            assert_caught(&r, recall, "but the recall is logged at");
        }
    }

    #[test]
    fn a_recall_nonce_is_used_once() {
        // The same signed recall logged again, for the same drop.
        let mut s = Scenario::new();
        let (_, drop) = s.commit(0, &[1]);
        let recall = s.recall(&drop, 0);
        s.delete(&drop, DeletionReason::Recalled);
        let copy = s.log.entries[recall as usize].clone();
        let replay = s.push(copy);
        let r = s.audit();
        let LogEntry::DropRecalled { request, .. } = s.log.entry(recall as usize) else { unreachable!() };
        assert_caught(
            &r,
            replay,
            &format!("the recall request (nonce {}) was already logged at entry {recall}: a replay", request.nonce),
        );

        // A fetch's nonce, re-signed by the same member for a recall: fetches and recalls share one nonce space.
        let mut s = Scenario::new();
        let (_, theirs) = s.commit(1, &[0]);
        let fetch = s.fetch(&theirs, 0);
        let (_, mine) = s.commit(0, &[1]);
        let LogEntry::DropFetched { request: fetched, .. } = s.log.entry(fetch as usize) else { unreachable!() };
        let now = s.now().as_second();
        let req = resigned(&s, 0, fetched.clone(), |r| {
            r.method = "POST".into();
            r.path = format!("/v1/drops/{mine}/recall");
            r.time = now;
            r.content = sealdrop_proto::request::body_sha256(b"{}");
        });
        let recall = s.recall_with(&mine, 0, req);
        s.delete(&mine, DeletionReason::Recalled);
        let r = s.audit();
        assert_fails(
            &r,
            &[(
                recall,
                &format!("the recall request (nonce {}) was already logged at entry {fetch}: a replay", fetched.nonce),
            )],
        );
    }

    #[test]
    fn agreement_ended_deletions_need_the_agreement_ended() {
        // In force (directory 2: until 2030): refused.
        let mut s = Scenario::new();
        let (_, drop) = s.commit(0, &[1]);
        let t = s.now();
        let del = s.delete(&drop, DeletionReason::AgreementEnded);
        let r = s.audit();
        assert_fails(
            &r,
            &[(
                del,
                &format!(
                    "drop {drop} is deleted as its agreement ended at {t}, but agreement `{AGREEMENT}` is in force then in directory 2"
                ),
            )],
        );
        assert_eq!((r.deleted.agreement_ended, r.deleted.expired), (1, 0));

        // A new version ends it at `end`: a deletion a second before fails, one at `end` passes.
        for (early, ok) in [(1, false), (0, true)] {
            let mut s = Scenario::new();
            let (_, drop) = s.commit(0, &[1]);
            let end = time_of(s.next() + 2);
            s.publish(|d| d.agreements[0].valid_until = end);
            let at = end - SignedDuration::from_secs(early);
            let del = s.delete_at(&drop, DeletionReason::AgreementEnded, at);
            let r = s.audit();
            if ok {
                assert!(r.ok(), "{r}");
                assert_eq!(r.deleted.agreement_ended, 1);
                assert!(r.to_string().contains(", 1 agreement ended\n"), "{r}");
            } else {
                assert_fails(
                    &r,
                    &[(del, &format!("is in force then in directory 3 (from 2026-01-01T00:00:00Z until {end})"))],
                );
            }
        }

        // A new version without the agreement: passes.
        let mut s = Scenario::new();
        let (_, drop) = s.commit(0, &[1]);
        s.publish(|d| d.agreements.clear());
        s.delete(&drop, DeletionReason::AgreementEnded);
        let r = s.audit();
        assert!(r.ok(), "{r}");

        // Not yet in force (a new version moves its start later): passes.
        let mut s = Scenario::new();
        let (_, drop) = s.commit(0, &[1]);
        s.publish(|d| d.agreements[0].valid_from = "2029-01-01T00:00:00Z".parse().unwrap());
        s.delete(&drop, DeletionReason::AgreementEnded);
        assert!(s.audit().ok());
    }

    #[test]
    fn fetches_need_the_agreement_in_force_and_both_parties_in_it() {
        // The agreement ended: the fetch fails, the acknowledgement (no data moves) does not.
        let mut s = Scenario::new();
        let (c, drop) = s.commit(0, &[1]);
        let end = time_of(s.next() + 1);
        s.publish(|d| d.agreements[0].valid_until = end);
        let fetch = s.fetch(&drop, 1);
        assert_eq!(time_of(fetch), end);
        s.ack(c, 1);
        s.delete(&drop, DeletionReason::Delivered);
        let r = s.audit();
        assert_fails(
            &r,
            &[(
                fetch,
                &format!(
                    "drop {drop} is fetched at {end}, when agreement `{AGREEMENT}` was not in force (directory 3: from 2026-01-01T00:00:00Z until {end})"
                ),
            )],
        );

        // Gone from the directory.
        let mut s = Scenario::new();
        let (_, drop) = s.commit(0, &[1]);
        s.publish(|d| d.agreements.clear());
        let t = s.now();
        let fetch = s.fetch(&drop, 1);
        let r = s.audit();
        assert_fails(
            &r,
            &[(
                fetch,
                &format!(
                    "drop {drop} is fetched at {t}, when agreement `{AGREEMENT}` was not in force (directory 3 does not list it)"
                ),
            )],
        );

        // The recipient, or the sender, no longer a party to it.
        for (gone, who) in [(1, "islington"), (0, "camden")] {
            let mut s = Scenario::new();
            let (_, drop) = s.commit(0, &[1]);
            let id = s.party(gone);
            s.publish(|d| d.agreements[0].parties.retain(|p| *p != id));
            let t = s.now();
            let fetch = s.fetch(&drop, 1);
            let r = s.audit();
            assert_fails(
                &r,
                &[(
                    fetch,
                    &format!(
                        "drop {drop} is fetched at {t}, when agreement `{AGREEMENT}` did not include {who} (directory 3)"
                    ),
                )],
            );
        }

        // Still in force under the new version: fine.
        let mut s = Scenario::new();
        let (c, drop) = s.commit(0, &[1]);
        s.publish(|d| d.agreements[0].valid_until = "2029-01-01T00:00:00Z".parse().unwrap());
        s.fetch(&drop, 1);
        s.ack(c, 1);
        s.delete(&drop, DeletionReason::Delivered);
        assert!(s.audit().ok());
    }
}
