//! The transfer log as clients and auditors read it from the hub or from
//! files: entries, checkpoints and cosignatures, proofs, tiles and entry
//! bundles, audit bundles, and the offline audit itself.

use std::io::Cursor;

use sealdrop_log::audit::{self, AuditInput, fuzz_parsers};
use sealdrop_log::bundle::BundleReader;
use sealdrop_log::checkpoint;
use sealdrop_log::cosign::{CosignError, add_cosignatures, cosign, verify_cosignatures};
use sealdrop_log::entry::{HubStatement, LogEntry};
use sealdrop_log::proof::OfflineProof;
use sealdrop_log::tiles::{TilePath, decode_entry_bundle, encode_entry_bundle, hash_tile};
use sealdrop_log::tree::{RootBuilder, leaf_hash, verify_consistency, verify_inclusion};
use sealdrop_proto::api::{ConsistencyProof, InclusionProof};
use sealdrop_proto::drop::{Manifest, Receipt};
use sealdrop_proto::note::{open_doc, peek_doc};

use crate::check::{assert_genuine, assert_tamper_refused};
use crate::fixtures::{Fixture, fixture, note_text};
use crate::targets::hub::decode_hashes;

/// One log entry's bytes, read by `LogEntry::from_bytes` and by the audit's
/// own fast parsers (a differential target).
///
/// Asserts: the audit's canonical-form parser and its flat parser never
/// accept what `LogEntry::from_bytes` refuses and never read an entry
/// differently; an entry in exactly the form the hub writes takes the
/// canonical path; the audit's full parse accepts nothing the general
/// parser refuses; an entry reads back equal after serialising; a hub
/// statement that verifies is the log key's own signature.
pub fn log_entry(data: &[u8]) -> bool {
    let slow = LogEntry::from_bytes(data).ok();
    let (canonical, fast, full) = fuzz_parsers(data);
    if canonical.is_some() {
        assert_eq!(canonical, slow, "the canonical entry parser disagrees with serde_json");
    }
    if fast.is_some() {
        assert_eq!(fast, slow, "the audit's flat entry parser disagrees with serde_json");
    }
    if full.is_ok() {
        assert!(slow.is_some(), "the audit accepted an entry LogEntry refuses");
    }
    let Some(entry) = slow else { return false };
    if let Ok(bytes) = entry.to_bytes() {
        assert_eq!(LogEntry::from_bytes(&bytes).ok().as_ref(), Some(&entry), "an entry changed in a round trip");
        if canonical_form(&entry) {
            assert_eq!(fuzz_parsers(&bytes).0.as_ref(), Some(&entry), "the hub's own form missed the canonical parser");
        }
    }
    let f = fixture();
    match &entry {
        LogEntry::Hub { statement } => {
            if open_doc::<HubStatement>(statement, &[f.log_key()]).is_ok() {
                assert_genuine(statement, &f.log.keys.log);
            }
        }
        LogEntry::DropCommitted { manifest, .. } => drop(peek_doc::<Manifest>(manifest)),
        LogEntry::DropAcknowledged { receipt, .. } => drop(peek_doc::<Receipt>(receipt)),
        LogEntry::DropFetched { request, .. } | LogEntry::DropRecalled { request, .. } => {
            let _ = request.auth().verify(&f.member(0).signing.verifier(), &request.method, &request.path);
        }
    }
    true
}

/// Whether the canonical parser must read `entry` as serde_json writes it:
/// it takes escapes only inside notes, and no `\u` escape (which serde_json
/// writes for control characters other than `\b\f\n\r\t`).
fn canonical_form(entry: &LogEntry) -> bool {
    let plain = |s: &str| !s.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20);
    let note = |s: &str| !s.bytes().any(|b| b < 0x20 && !b"\x08\x0c\n\r\t".contains(&b));
    match entry {
        LogEntry::Hub { statement: n }
        | LogEntry::DropCommitted { manifest: n, .. }
        | LogEntry::DropAcknowledged { receipt: n, .. } => note(n),
        LogEntry::DropFetched { request: r, .. } | LogEntry::DropRecalled { request: r, .. } => {
            [&r.method, &r.path, &r.key, &r.nonce, &r.content, &r.signature].iter().all(|f| plain(f))
        }
    }
}

/// A whole log, one entry per line, audited (`audit::verify`, strict
/// signatures, one worker) against the fixture's keys and directory
/// versions under a checkpoint the harness signs over exactly these entries.
///
/// Asserts: a log the audit passes holds only signed documents and requests
/// the fixture made (nothing forged or altered passes).
pub fn audit_log(data: &[u8]) -> bool {
    let f = fixture();
    let mut entries: Vec<Vec<u8>> = data.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect();
    if entries.last().is_some_and(Vec::is_empty) {
        entries.pop();
    }
    let mut root = RootBuilder::new();
    for e in &entries {
        root.push(e);
    }
    let cp = checkpoint::sign(&f.log.keys.log, root.size(), &root.root());
    let mut input = AuditInput::new(
        f.log_key(),
        f.log.keys.authority.verifier(),
        cp,
        f.log.directories.clone(),
        entries.clone().into_iter().map(Ok),
        0,
    )
    .strict();
    input.threads = 1;
    let report = audit::verify(input);
    if !report.ok() {
        return false;
    }
    for e in &entries {
        assert_fixture_content(f, &LogEntry::from_bytes(e).expect("the audit passed an entry that does not parse"));
    }
    true
}

/// Asserts that every signed part of `entry` is one the fixture made.
fn assert_fixture_content(f: &Fixture, entry: &LogEntry) {
    match entry {
        LogEntry::Hub { statement: n }
        | LogEntry::DropCommitted { manifest: n, .. }
        | LogEntry::DropAcknowledged { receipt: n, .. } => {
            assert!(
                f.signed_texts.contains(&note_text(n)),
                "the audit passed a document the fixture never signed:\n{n}"
            );
        }
        LogEntry::DropFetched { request, .. } | LogEntry::DropRecalled { request, .. } => {
            assert!(f.requests.contains(request), "the audit passed a request the fixture never signed: {request:?}");
        }
    }
}

/// Proofs as the client reads them: an offline `.tlog-proof` file
/// (`OfflineProof::from_text`, then `verify` and `verify_witnessed` against
/// the fixture log), or the hub's JSON inclusion or consistency proof
/// checked against the fixture tree's true roots.
///
/// Asserts: a proof that verifies is the true proof (the tree's own) for a
/// checkpoint the log key really signed; the true proofs verify; an offline
/// proof reads back equal from its own text.
pub fn proof(data: &[u8]) -> bool {
    let f = fixture();
    let n = f.tree.size();
    let mut accepted = false;
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(p) = OfflineProof::from_text(text)
    {
        accepted = true;
        assert_eq!(OfflineProof::from_text(&p.to_text()).ok().as_ref(), Some(&p), "a proof changed in a round trip");
        let entry =
            usize::try_from(p.index).ok().and_then(|i| f.log.entries.get(i)).map_or(&b"no such entry"[..], |e| e);
        if let Ok(cp) = p.verify(entry, &f.log_key()) {
            assert_genuine(&p.checkpoint, &f.log.keys.log);
            assert!(cp.size <= n, "a checkpoint the log never signed verified");
            assert_eq!(Some(cp.root), f.tree.root_at(cp.size).ok());
            assert_eq!(Some(&p.hashes), f.tree.inclusion_proof(p.index, cp.size).ok().as_ref());
            let cosigned = verify_cosignatures(&p.checkpoint, &f.witness_keys()).map(|c| c.len());
            for required in 0..=f.log.keys.witnesses.len() {
                let witnessed = p.verify_witnessed(entry, &f.log_key(), &f.witness_keys(), required);
                let enough = cosigned.as_ref().is_ok_and(|&c| c >= required);
                assert_eq!(witnessed.is_ok(), enough, "witnessed verification disagrees with the cosignatures");
            }
        }
    }
    if let Ok(p) = serde_json::from_slice::<InclusionProof>(data)
        && let Some(hashes) = decode_hashes(&p.hashes)
    {
        accepted = true;
        if p.index < p.size && p.size <= n {
            let (leaf, root) = (leaf_hash(&f.log.entries[p.index as usize]), f.tree.root_at(p.size).expect("in range"));
            let honest = f.tree.inclusion_proof(p.index, p.size).expect("in range");
            verify_inclusion(&honest, p.index, p.size, leaf, root).expect("the true inclusion proof verifies");
            if verify_inclusion(&hashes, p.index, p.size, leaf, root).is_ok() {
                assert_eq!(hashes, honest, "an inclusion proof other than the true one verified");
            }
        } else {
            let _ = verify_inclusion(&hashes, p.index, p.size, leaf_hash(b"x"), f.tree.root());
        }
    }
    if let Ok(p) = serde_json::from_slice::<ConsistencyProof>(data)
        && let Some(hashes) = decode_hashes(&p.hashes)
    {
        accepted = true;
        if p.old <= p.new && p.new <= n {
            let roots = (f.tree.root_at(p.old).expect("in range"), f.tree.root_at(p.new).expect("in range"));
            let honest = f.tree.consistency_proof(p.old, p.new).expect("in range");
            verify_consistency(&honest, p.old, roots.0, p.new, roots.1).expect("the true consistency proof verifies");
            if verify_consistency(&hashes, p.old, roots.0, p.new, roots.1).is_ok() {
                assert_eq!(hashes, honest, "a consistency proof other than the true one verified");
            }
        } else {
            let _ = verify_consistency(&hashes, p.old, f.tree.root(), p.new, f.tree.root());
        }
    }
    accepted
}

/// A checkpoint note with cosignatures, as a client or witness reads it from
/// the hub (`checkpoint::open` with the log key, `verify_cosignatures` with
/// the witnesses' keys), and a witness adding its cosignature to it.
///
/// Asserts: a checkpoint that opens carries the log key's own signature over
/// a root the fixture tree really has at that size, and fails with any byte
/// changed; cosignatures that verify are the witnesses' own; a cosignature
/// added to a good checkpoint keeps it valid and verifies.
pub fn checkpoint(data: &[u8]) -> bool {
    let _ = tlog_tiles::Checkpoint::from_bytes(data);
    let Ok(note) = std::str::from_utf8(data) else { return false };
    let f = fixture();
    let witnesses = f.witness_keys();
    let cosigned = verify_cosignatures(note, &witnesses);
    if let Ok(list) = &cosigned {
        for c in list {
            let w = f.log.keys.witnesses.iter().find(|w| w.name() == c.name).expect("a listed witness");
            assert_genuine(note, w);
        }
    }
    let Ok(cp) = checkpoint::open(note, &f.log_key()) else { return false };
    assert_genuine(note, &f.log.keys.log);
    assert_tamper_refused(note, data.len(), |n| checkpoint::open(n, &f.log_key()).is_ok());
    assert_eq!(Some(cp.root), f.tree.root_at(cp.size).ok(), "a checkpoint of a tree the log never had opened");
    if cosigned.is_ok() {
        let witness = &f.log.keys.witnesses[data.len() % f.log.keys.witnesses.len()];
        match add_cosignatures(note, &[cosign(note, witness, 1_700_000_000)]) {
            Ok(added) => {
                checkpoint::open(&added, &f.log_key()).expect("a cosignature does not break the log's signature");
                let list = verify_cosignatures(&added, &witnesses).expect("a fresh cosignature verifies");
                assert!(list.iter().any(|c| c.name == witness.name() && c.time >= 1_700_000_000));
            }
            Err(CosignError::TooManySignatures) => {}
            Err(e) => panic!("a good checkpoint could not take a cosignature: {e}"),
        }
    }
    true
}

/// A tile path as the hub's `/v1/log/tile/*` route receives it, and an
/// entry bundle as a client or the audit bundle reader decodes it.
///
/// Asserts: only canonical paths parse (a parsed path prints back as the
/// input); a hash tile the path says is inside the tree can be served, with
/// 32 bytes per hash; a decoded entry bundle encodes back to the same bytes.
pub fn tiles(data: &[u8]) -> bool {
    let mut accepted = false;
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(tile) = TilePath::parse(text)
    {
        accepted = true;
        assert_eq!(tile.to_string(), text, "a tile path parsed that is not in canonical form");
        let _ = tile.span();
        if let TilePath::Hashes { level, index, width } = tile {
            let size = fixture().tree.size();
            let served = hash_tile(level, index, width, &fixture().tree);
            if tile.in_tree(size) {
                assert_eq!(served.expect("a tile inside the tree is served").len(), width as usize * 32);
            }
        }
    }
    if let Ok(entries) = decode_entry_bundle(data) {
        accepted = true;
        assert_eq!(encode_entry_bundle(&entries).expect("decoded entries fit"), data, "an entry bundle round trip");
    }
    accepted
}

/// An audit bundle file (a tar), read with `BundleReader` and audited
/// (strict signatures, one worker), as `sealdrop audit verify --bundle` does.
///
/// Asserts: a bundle whose audit passes names the fixture's log and
/// authority keys and holds entries whose root the fixture tree has.
pub fn audit_bundle(data: &[u8]) -> bool {
    let Ok(mut reader) = BundleReader::open(Cursor::new(data)) else { return false };
    let _ = reader.entries().count();
    let mut input = reader.audit_input(0).strict();
    input.threads = 1;
    let report = audit::verify(input);
    if report.ok() {
        let f = fixture();
        assert_eq!(reader.meta().log_key, f.log_key(), "an audit passed under a log key the fixture does not hold");
        assert_eq!(reader.meta().authority, f.log.keys.authority.verifier());
        assert_eq!(Some(report.root), f.tree.root_at(report.entries).ok(), "an audit passed entries the log never had");
    }
    true
}
