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
//!   by and to parties of its agreement, while it is in force, before the
//!   second of its expiry, and with an expiry the hub could have stored under
//!   a directory version its creation may have read (`policy::drop_expiry`:
//!   within the agreement's longest wait and end); nothing is fetched,
//!   acknowledged, recalled or deleted that was not committed, nor after its
//!   deletion; fetches and acknowledgements only by recipient parties, one
//!   acknowledgement per party, with the manifest's hash and length; no
//!   fetch from the second of the expiry on (`policy::drop_expired`, as the
//!   hub decides), no acknowledgement after it; an acknowledgement only
//!   after a download by that party, and at most
//!   [`crate::policy::MAX_DOWNLOADS_PER_PARTY`] downloads per party (every
//!   one is still counted and reported);
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
use std::sync::Arc;

use sealdrop_proto::directory::{Directory, SignedDirectory};
use sealdrop_proto::ids::PartyId;
use sealdrop_proto::keys::NoteVerifierKey;
use sealdrop_proto::note::peek_doc;

use crate::checkpoint;
use crate::cosign::verify_cosignatures;
use crate::tree::RootBuilder;
use pipeline::run_entries;
use rules::Auditor;
use signatures::DirVersion;

mod input;
mod parse;
mod pipeline;
mod report;
mod rules;
mod signatures;

pub use input::{AuditInput, SignatureCheck};
pub use parse::fuzz_parsers;
pub use report::{AuditFailure, AuditReport, DeletionCounts, UseAfterRevocation};

/// Signatures per `verify_batch` call: large batches amortise the
/// multi-scalar multiplication (measured per signature: 256 about 14.0 us,
/// 1,024 about 12.2, 4,096 about 11.7; 8,192 is slower again).
pub const BATCH: usize = 4096;
/// Entries per pipeline chunk (the unit of parsing).
const CHUNK: usize = 2048;
/// The most failures a report lists; the rest are only counted.
pub const MAX_FAILURES: usize = 10_000;

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
        enforced: Vec::new(),
        superseded: None,
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
