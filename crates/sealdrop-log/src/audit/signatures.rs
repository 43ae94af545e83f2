//! Keys and signatures: directory versions indexed by key name, the checks that queue a
//! signature job (member documents, signed requests, revoked signers) and batch verification.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, VerifyingKey};
use jiff::Timestamp;
use sha2::{Digest, Sha256};

use sealdrop_proto::directory::{Agreement, Directory};
use sealdrop_proto::ids::{DropId, PartyId, key_name};
use sealdrop_proto::policy::within_clock_skew;
use sealdrop_proto::request::{MAX_CLOCK_SKEW_SECS, signed_string};

use super::input::SignatureCheck;
use super::parse::Signed;
use super::report::UseAfterRevocation;
use super::rules::Auditor;
use super::{BATCH, MAX_FAILURES};
use crate::entry::SignedRequest;
use crate::policy;

// Directory versions.

/// A member key as the audit uses it.
pub(super) struct Member {
    party: PartyId,
    key: VerifyingKey,
    id: u32,
    weak: bool,
    name: Arc<str>,
}

/// A directory version, indexed for lookups.
pub(super) struct DirVersion {
    pub(super) serial: u64,
    pub(super) sha256: String,
    pub(super) members: HashMap<String, Member>,
    pub(super) agreements: HashMap<String, Agreement>,
}

impl DirVersion {
    pub(super) fn new(directory: &Directory, note: &str) -> Self {
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

// Signature jobs (verified in the workers).

pub(super) struct SigJob {
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

pub(super) fn verify_jobs(jobs: &[SigJob], mode: SignatureCheck) -> Vec<(u64, String)> {
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

impl Auditor {
    /// Queues the check of a note's signature by a member key of `party`,
    /// for an entry logged at `at`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn member_sig(
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
    pub(super) fn revoked_signer(&mut self, index: u64, key: &VerifyingKey, signer: &str, at: Timestamp, what: &str) {
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
    pub(super) fn push_job(
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

    /// Checks a party's signed request for `drop`, logged at `at` (a fetch
    /// or a recall): the right route, not replayed, signed near `at`, by a
    /// member key of `party` in `dir`; queues the signature check.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn request(
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
}

/// The route a signed request must be for.
#[derive(Clone, Copy)]
pub(super) struct Route {
    /// What the entry records (`fetch`, `recall`).
    what: &'static str,
    /// What the request is called in failures and signature jobs.
    job: &'static str,
    method: &'static str,
    /// The path after `/v1/drops/<id>`.
    suffix: &'static str,
}

impl Route {
    pub(super) const FETCH: Route = Route { what: "fetch", job: "fetch request", method: "GET", suffix: "/content" };
    pub(super) const RECALL: Route = Route { what: "recall", job: "recall request", method: "POST", suffix: "/recall" };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::LogEntry;

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
}
