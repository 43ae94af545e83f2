//! The directory signed by the sharing agreement's coordinator (the
//! "authority"): which parties exist, what they are also called, which keys
//! belong to whom, and the agreements under which they may share.
//!
//! A client encrypts only to keys from a directory it verified itself against
//! the authority key it pins, and refuses a directory whose serial is lower
//! than one it has seen, so neither the hub nor a network attacker can swap a
//! key or roll the directory back.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ids::{MemberName, PartyId, key_name};
use crate::keys::{MemberPublicKey, NoteSigningKey, NoteVerifierKey};
use crate::note::{DocError, Opened, SignedDoc, open_doc, sign_doc_checked};

/// The directory's content.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Directory {
    /// Grows with every version; clients and the hub refuse a lower one.
    pub serial: u64,
    /// When the coordinator signed it.
    pub issued_at: Timestamp,
    /// The hub this directory vouches for, if the coordinator lists one: its
    /// log origin and the key that signs its log checkpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hub: Option<HubListing>,
    /// The organisations that may take part.
    pub parties: Vec<Party>,
    /// The sharing agreements in force.
    pub agreements: Vec<Agreement>,
}

/// A hub the coordinator vouches for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HubListing {
    /// The hub's transfer-log origin name.
    pub origin: String,
    /// The key that signs the hub's log checkpoints (signed-note verifier key).
    pub log_key: NoteVerifierKey,
}

/// An organisation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Party {
    /// Stable id slug, e.g. `camden`.
    pub id: PartyId,
    /// Display name shown to people, e.g. "Camden".
    pub name: String,
    /// Other names data may use for it: ONS GSS code, DfE LA number.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// The member keys that act for it. Every one receives every drop.
    pub members: Vec<MemberKey>,
    /// Keys with which the party cosigns the hub's log as a witness.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub witness_keys: Vec<NoteVerifierKey>,
    /// Member keys the coordinator has revoked (staff who left, a lost or
    /// stolen laptop). A revoked key can no longer authenticate to the hub,
    /// be encrypted to, or sign anything the hub accepts; every later
    /// directory version must keep listing it here. A member may get a new
    /// key under the same member name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revoked: Vec<RevokedKey>,
}

/// A member key that must no longer be used.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokedKey {
    /// The member the key belonged to.
    pub member: MemberName,
    /// The revoked signing key (named `<party>/<member>`).
    pub signing_key: NoteVerifierKey,
    /// From when the key is not to be trusted: the time it was handed back,
    /// or, for a lost or stolen key, the last time it was known to be safe.
    /// A drop the hub committed before this time, signed with the key, is
    /// still accepted by its recipients; one committed later is not.
    pub revoked_at: Timestamp,
    /// Why, in a few words, for people reading the directory.
    #[serde(default)]
    pub reason: String,
}

/// A member key as listed under its party.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberKey {
    /// The member's name within the party.
    pub member: MemberName,
    /// Where files for this member are encrypted to (`age1...`).
    pub age_recipient: String,
    /// The member's signing key, named `<party>/<member>`.
    pub signing_key: NoteVerifierKey,
}

/// A sharing agreement.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Agreement {
    /// Stable id slug, e.g. `london-fsm-ehc-2026`.
    pub id: String,
    /// Short title.
    pub title: String,
    /// What the data may be used for.
    pub purpose: String,
    /// The lawful basis for sharing (UK GDPR article and statute).
    pub lawful_basis: String,
    /// The parties that may send to each other under it.
    pub parties: Vec<PartyId>,
    /// The longest a drop may wait on the hub before it expires.
    pub max_expiry_days: u32,
    /// Sharing may start at this time.
    pub valid_from: Timestamp,
    /// Sharing must stop at this time.
    pub valid_until: Timestamp,
    /// Every member key of every party must be post-quantum
    /// (`mlkem768x25519`), so nothing shared under it can be harvested now
    /// and decrypted by a quantum computer later. The coordinator cannot
    /// sign a directory that breaks it, senders will not encrypt to
    /// anything else, and the hub refuses a drop with any other stanza.
    /// Left out of the signed text when false, so directories signed before
    /// it existed keep their bytes.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub require_pq: bool,
}

impl SignedDoc for Directory {
    const TYPE: &'static str = "sealdrop/directory/v1";
    const WHAT: &'static str = "directory";
}

/// Why a directory was refused.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error(transparent)]
    Doc(#[from] DocError),
    #[error("the directory is inconsistent: {0}")]
    Invalid(String),
    #[error("directory serial {offered} is not newer than serial {current} already accepted: refusing a rollback")]
    Rollback { offered: u64, current: u64 },
}

/// Normalises a name or alias for matching: lowercase, letters and digits
/// only, with `&` read as "and" (so "Hammersmith & Fulham" matches
/// "Hammersmith and Fulham").
pub fn normalise_name(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c == '&' {
            out.push_str("and");
        } else if c.is_alphanumeric() {
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// Whether `text` is a code (a GSS code, an LA number) rather than a name:
/// it holds a digit (in any script, so look-alike digits are codes that
/// match nothing).
fn is_code(text: &str) -> bool {
    text.chars().any(char::is_numeric)
}

/// The part of a normalised council name that identifies the place: without
/// a leading "(The) London Borough of" / "(The) Royal Borough of" and a
/// trailing "Council" / "Borough Council" / "City Council", as councils'
/// own systems write them in full ("London Borough of Camden", "Westminster
/// City Council"). "City of" is kept: "City of London" is a name in itself.
fn name_core(norm: &str) -> &str {
    let mut s = norm;
    for prefix in ["thelondonboroughof", "londonboroughof", "theroyalboroughof", "royalboroughof"] {
        if let Some(rest) = s.strip_prefix(prefix) {
            s = rest;
            break;
        }
    }
    for suffix in ["londonboroughcouncil", "boroughcouncil", "citycouncil", "council"] {
        if let Some(rest) = s.strip_suffix(suffix)
            && !rest.is_empty()
        {
            s = rest;
            break;
        }
    }
    s
}

impl From<MemberPublicKey> for MemberKey {
    fn from(card: MemberPublicKey) -> Self {
        Self { member: card.member, age_recipient: card.age_recipient, signing_key: card.signing_key }
    }
}

impl Party {
    /// A party of one member, named `name`, from that member's public key
    /// card; add aliases and witness keys with struct update syntax.
    pub fn with_member(name: &str, card: MemberPublicKey) -> Self {
        Self {
            id: card.party.clone(),
            name: name.to_owned(),
            aliases: vec![],
            members: vec![card.into()],
            witness_keys: vec![],
            revoked: vec![],
        }
    }

    /// The revocation of `key`, if the party revoked it.
    pub fn revocation(&self, key: &NoteVerifierKey) -> Option<&RevokedKey> {
        self.revoked.iter().find(|r| r.signing_key == *key)
    }

    /// The member's public key card, with its party filled in.
    pub fn card(&self, m: &MemberKey) -> MemberPublicKey {
        MemberPublicKey {
            party: self.id.clone(),
            member: m.member.clone(),
            age_recipient: m.age_recipient.clone(),
            signing_key: m.signing_key.clone(),
        }
    }
}

impl Agreement {
    /// Whether `party` is a member of the agreement.
    pub fn includes(&self, party: &PartyId) -> bool {
        self.parties.contains(party)
    }
}

impl Directory {
    /// Checks internal consistency: unique ids, aliases and keys, keys named
    /// after their party and member, agreements that name known parties.
    pub fn validate(&self) -> Result<(), DirectoryError> {
        let bad = |m: String| Err(DirectoryError::Invalid(m));
        let mut ids = BTreeSet::new();
        let mut names: BTreeMap<String, &PartyId> = BTreeMap::new();
        let mut keys = BTreeSet::new();
        for p in &self.parties {
            if !ids.insert(&p.id) {
                return bad(format!("party `{}` is listed twice", p.id));
            }
            if p.name.trim().is_empty() {
                return bad(format!("party `{}` has no display name", p.id));
            }
            let mut own: BTreeSet<String> = BTreeSet::new();
            for n in std::iter::once(p.id.as_str())
                .chain(std::iter::once(p.name.as_str()))
                .chain(p.aliases.iter().map(String::as_str))
            {
                let norm = normalise_name(n);
                if norm.is_empty() {
                    return bad(format!("party `{}` has an empty alias", p.id));
                }
                if !own.insert(norm.clone()) {
                    continue;
                }
                if let Some(other) = names.insert(norm, &p.id) {
                    return bad(format!("the name or alias {n:?} belongs to both `{other}` and `{}`", p.id));
                }
            }
            if let Some(w) = p.witness_keys.iter().find(|w| !w.is_cosigner()) {
                return bad(format!("witness key {} of `{}` must be a cosignature (0x04) key", w.name(), p.id));
            }
            let mut members = BTreeSet::new();
            let kinds = p.members.iter().map(|m| {
                let kind = crate::age_keys::kind_of(&m.age_recipient).unwrap_or(crate::age_keys::KeyKind::Classic);
                (m.member.as_str(), kind)
            });
            if let Err(e @ crate::age_keys::MixedKeys::Mixed { .. }) = crate::age_keys::drop_kind(kinds) {
                return bad(format!(
                    "the members of `{}` mix key kinds ({e}); a drop to `{}` goes to all its members at once: \
                     give them all post-quantum keys (`sealdrop keygen`) or all classic ones (`keygen --classic`)",
                    p.id, p.id
                ));
            }
            for m in &p.members {
                if m.signing_key.is_cosigner() {
                    return bad(format!("member key {} must be an Ed25519 (0x01) key", m.signing_key.name()));
                }
                if !members.insert(&m.member) {
                    return bad(format!("member `{}` is listed twice under `{}`", m.member, p.id));
                }
                p.card(m)
                    .validate()
                    .map_err(|e| DirectoryError::Invalid(format!("member key {}: {e}", key_name(&p.id, &m.member))))?;
                if !keys.insert(*m.signing_key.key().as_bytes()) {
                    return bad(format!("the signing key of {} is used by another member", key_name(&p.id, &m.member)));
                }
            }
            let mut revoked = BTreeSet::new();
            for r in &p.revoked {
                let name = key_name(&p.id, &r.member);
                if r.signing_key.name() != name {
                    return bad(format!(
                        "revoked key {} of `{}` must be named {name} (after its party and member)",
                        r.signing_key.name(),
                        p.id
                    ));
                }
                if !revoked.insert(*r.signing_key.key().as_bytes()) {
                    return bad(format!("revoked key {name} is listed twice under `{}`", p.id));
                }
            }
        }
        for p in &self.parties {
            for m in &p.members {
                let key = m.signing_key.key().as_bytes();
                if let Some((owner, _)) = self
                    .parties
                    .iter()
                    .find_map(|o| o.revoked.iter().find(|r| r.signing_key.key().as_bytes() == key).map(|r| (o, r)))
                {
                    return bad(format!(
                        "member key {} is also listed as revoked under `{}`: a revoked key cannot be reinstated, \
                         issue a new key instead",
                        key_name(&p.id, &m.member),
                        owner.id
                    ));
                }
            }
        }
        if let Some(h) = &self.hub
            && (h.log_key.is_cosigner() || h.log_key.name() != h.origin)
        {
            return bad(format!("the hub's log key must be an Ed25519 key named after its origin {:?}", h.origin));
        }
        let mut agreements = BTreeSet::new();
        for a in &self.agreements {
            if !agreements.insert(&a.id) {
                return bad(format!("agreement `{}` is listed twice", a.id));
            }
            if a.id.parse::<PartyId>().is_err() {
                return bad(format!("agreement id {:?} must be a lowercase slug", a.id));
            }
            for p in &a.parties {
                if !ids.contains(p) {
                    return bad(format!("agreement `{}` names unknown party `{p}`", a.id));
                }
            }
            if a.require_pq
                && let Some((p, m)) = self.parties.iter().filter(|p| a.parties.contains(&p.id)).find_map(|p| {
                    p.members
                        .iter()
                        .find(|m| {
                            crate::age_keys::kind_of(&m.age_recipient) != Some(crate::age_keys::KeyKind::PostQuantum)
                        })
                        .map(|m| (p, m))
                })
            {
                return bad(format!(
                    "agreement `{}` requires post-quantum keys but {} has a {} key: ask that member for a new key card (`sealdrop keygen`, post-quantum by default)",
                    a.id,
                    key_name(&p.id, &m.member),
                    crate::age_keys::kind_of(&m.age_recipient).map_or("unreadable", |k| k.as_str())
                ));
            }
            if a.valid_from >= a.valid_until {
                return bad(format!("agreement `{}` ends before it starts", a.id));
            }
            if a.max_expiry_days == 0 {
                return bad(format!("agreement `{}` must allow drops to live at least 1 day", a.id));
            }
        }
        Ok(())
    }

    /// A party by id.
    pub fn party(&self, id: &PartyId) -> Option<&Party> {
        self.parties.iter().find(|p| &p.id == id)
    }

    /// Resolves a party from its id, display name or any alias (GSS code, DfE
    /// LA number, …).
    ///
    /// Text with a digit in it is a code (`E09000007`, `202`): it matches
    /// an id, name or alias exactly as written, only surrounding spaces
    /// ignored, so `20.1`, `2.01` or `2/01` match nothing rather than LA
    /// number 201 (a mistyped or reformatted code must not route a row to
    /// another council). Other text is a name, matched ignoring case,
    /// spacing and punctuation: an exact (normalised) match wins; failing
    /// that, a full council name such as "London Borough of Camden", "The
    /// Royal Borough of Kensington and Chelsea" or "Westminster City
    /// Council" matches the party whose name or alias is the place itself.
    pub fn resolve_party(&self, text: &str) -> Option<&Party> {
        let text = text.trim();
        if text.is_empty() {
            return None;
        }
        if is_code(text) {
            return self.parties.iter().find(|p| {
                std::iter::once(p.id.as_str())
                    .chain(std::iter::once(p.name.as_str()))
                    .chain(p.aliases.iter().map(String::as_str))
                    .any(|k| k.trim() == text)
            });
        }
        let norm = normalise_name(text);
        if norm.is_empty() {
            return None;
        }
        // Only names: a code can never equal text without a digit.
        let keys = |p: &'_ Party| -> Vec<String> {
            std::iter::once(p.id.as_str())
                .chain(std::iter::once(p.name.as_str()))
                .chain(p.aliases.iter().map(String::as_str))
                .filter(|k| !is_code(k))
                .map(normalise_name)
                .collect()
        };
        if let Some(p) = self.parties.iter().find(|p| keys(p).contains(&norm)) {
            return Some(p);
        }
        let core = name_core(&norm);
        if core.is_empty() || core == norm {
            return None;
        }
        self.parties.iter().find(|p| keys(p).iter().any(|k| name_core(k) == core))
    }

    /// An agreement by id.
    pub fn agreement(&self, id: &str) -> Option<&Agreement> {
        self.agreements.iter().find(|a| a.id == id)
    }

    /// The member key that signs under `key_name` (`<party>/<member>`).
    pub fn member_by_key_name(&self, name: &str) -> Option<(&Party, &MemberKey)> {
        let (party, member) = name.split_once('/')?;
        let p = self.parties.iter().find(|p| p.id.as_str() == party)?;
        let m = p.members.iter().find(|m| m.member.as_str() == member)?;
        Some((p, m))
    }

    /// Checks that `next` may follow this version: a newer serial, and every
    /// key revoked here still revoked there (a revocation is for good; a
    /// member who needs access again gets a new key).
    pub fn check_successor(&self, next: &Directory) -> Result<(), DirectoryError> {
        if next.serial <= self.serial {
            return Err(DirectoryError::Rollback { offered: next.serial, current: self.serial });
        }
        for p in &self.parties {
            for r in &p.revoked {
                let kept = next.party(&p.id).is_some_and(|n| n.revocation(&r.signing_key).is_some());
                // `self` is the version in force, not necessarily the one
                // that first revoked the key: name it as the one that lists it.
                if !kept {
                    return Err(DirectoryError::Invalid(format!(
                        "serial {} drops the revocation of key {} (revoked at {}) that serial {}, the version \
                         it would follow, lists: a revocation must be kept in every later version; list it \
                         again under party {}'s `revoked`",
                        next.serial,
                        r.signing_key.name(),
                        r.revoked_at,
                        self.serial,
                        p.id
                    )));
                }
            }
        }
        Ok(())
    }

    /// All signing keys of a party, for verifying what it signed.
    pub fn signing_keys_of(&self, party: &PartyId) -> Vec<NoteVerifierKey> {
        self.party(party).map(|p| p.members.iter().map(|m| m.signing_key.clone()).collect()).unwrap_or_default()
    }
}

/// A directory as published: the signed note plus its parsed content.
#[derive(Clone, Debug)]
pub struct SignedDirectory {
    /// The verified content.
    pub directory: Directory,
    /// The signed note exactly as the authority produced it.
    pub note: String,
}

impl SignedDirectory {
    /// Signs a directory after checking it is consistent.
    pub fn sign(directory: Directory, authority: &NoteSigningKey) -> Result<Self, DirectoryError> {
        directory.validate()?;
        let note = sign_doc_checked(&directory, authority)?;
        Ok(Self { directory, note })
    }

    /// Verifies a signed directory against the pinned authority key and
    /// checks it is consistent.
    pub fn verify(note: &str, authority: &NoteVerifierKey) -> Result<Self, DirectoryError> {
        let Opened { doc, note, .. } = open_doc::<Directory>(note, std::slice::from_ref(authority))?;
        doc.validate()?;
        Ok(Self { directory: doc, note })
    }

    /// Verifies and also refuses anything not newer than `current_serial`.
    pub fn verify_newer(note: &str, authority: &NoteVerifierKey, current_serial: u64) -> Result<Self, DirectoryError> {
        let d = Self::verify(note, authority)?;
        if d.directory.serial <= current_serial {
            return Err(DirectoryError::Rollback { offered: d.directory.serial, current: current_serial });
        }
        Ok(d)
    }

    /// Verifies `note` as the successor of `current` (see [`Directory::check_successor`]).
    pub fn verify_successor(
        note: &str,
        authority: &NoteVerifierKey,
        current: &Directory,
    ) -> Result<Self, DirectoryError> {
        let d = Self::verify(note, authority)?;
        current.check_successor(&d.directory)?;
        Ok(d)
    }

    /// SHA-256 of the signed note, hex: how the log names a directory version.
    pub fn sha256_hex(&self) -> String {
        hex::encode(Sha256::digest(self.note.as_bytes()))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::keys::MemberSecretKey;

    pub(crate) fn sample() -> (NoteSigningKey, Vec<MemberSecretKey>, Directory) {
        let authority = NoteSigningKey::generate("test-authority").unwrap();
        let keys: Vec<MemberSecretKey> = ["camden", "islington", "hackney", "barnet"]
            .iter()
            .map(|p| MemberSecretKey::generate(p.parse().unwrap(), "data-team".parse().unwrap()))
            .collect();
        let parties = keys
            .iter()
            .zip([
                ("Camden", "E09000007", "202"),
                ("Islington", "E09000019", "206"),
                ("Hackney", "E09000012", "204"),
                ("Barnet", "E09000003", "302"),
            ])
            .map(|(k, (name, gss, la))| {
                let card = k.public();
                Party { aliases: vec![gss.into(), la.into()], ..Party::with_member(name, card) }
            })
            .collect();
        let dir = Directory {
            serial: 1,
            issued_at: "2026-01-01T00:00:00Z".parse().unwrap(),
            hub: None,
            parties,
            agreements: vec![Agreement {
                id: "inner-fsm".into(),
                title: "FSM".into(),
                purpose: "p".into(),
                lawful_basis: "b".into(),
                parties: ["camden", "islington", "hackney"].iter().map(|p| p.parse().unwrap()).collect(),
                max_expiry_days: 30,
                valid_from: "2026-01-01T00:00:00Z".parse().unwrap(),
                valid_until: "2030-01-01T00:00:00Z".parse().unwrap(),
                require_pq: false,
            }],
        };
        (authority, keys, dir)
    }

    #[test]
    fn sign_verify_and_rollback() {
        let (authority, _, dir) = sample();
        let signed = SignedDirectory::sign(dir.clone(), &authority).unwrap();
        let v = SignedDirectory::verify(&signed.note, &authority.verifier()).unwrap();
        assert_eq!(v.directory, dir);
        assert!(matches!(
            SignedDirectory::verify_newer(&signed.note, &authority.verifier(), 1),
            Err(DirectoryError::Rollback { offered: 1, current: 1 })
        ));
        assert!(SignedDirectory::verify_newer(&signed.note, &authority.verifier(), 0).is_ok());
    }

    #[test]
    fn wrong_authority_or_tampering_is_refused() {
        let (authority, _, dir) = sample();
        let signed = SignedDirectory::sign(dir, &authority).unwrap();
        let impostor = NoteSigningKey::generate("test-authority").unwrap();
        assert!(SignedDirectory::verify(&signed.note, &impostor.verifier()).is_err());
        let tampered = signed.note.replacen("\"serial\": 1", "\"serial\": 9", 1);
        assert!(matches!(
            SignedDirectory::verify(&tampered, &authority.verifier()),
            Err(DirectoryError::Doc(DocError::BadSignature { .. }))
        ));
    }

    #[test]
    fn revocations_are_consistent_and_kept() {
        let (authority, keys, dir) = sample();
        let old = keys[0].public();
        let new = MemberSecretKey::generate("camden".parse().unwrap(), "data-team".parse().unwrap());
        let revoked = RevokedKey {
            member: old.member.clone(),
            signing_key: old.signing_key.clone(),
            revoked_at: "2026-03-01T00:00:00Z".parse().unwrap(),
            reason: "left".into(),
        };
        // Rotation: the same member name with a new key, the old one revoked.
        let mut next = dir.clone();
        next.serial = 2;
        next.parties[0].members = vec![new.public().into()];
        next.parties[0].revoked = vec![revoked.clone()];
        SignedDirectory::sign(next.clone(), &authority).unwrap();
        dir.check_successor(&next).unwrap();
        assert_eq!(next.party(&old.party).unwrap().revocation(&old.signing_key), Some(&revoked));

        // A revoked key cannot also be a member (reinstated) ...
        let mut bad = next.clone();
        bad.parties[0].members = vec![old.clone().into()];
        assert!(SignedDirectory::sign(bad, &authority).unwrap_err().to_string().contains("reinstated"));
        // ... nor named after another member, nor listed twice.
        let mut bad = next.clone();
        bad.parties[0].revoked[0].member = "someone".parse().unwrap();
        assert!(SignedDirectory::sign(bad, &authority).unwrap_err().to_string().contains("must be named"));
        let mut bad = next.clone();
        bad.parties[0].revoked.push(revoked.clone());
        assert!(SignedDirectory::sign(bad, &authority).unwrap_err().to_string().contains("twice"));

        // A later version must keep the revocation.
        let mut forgot = next.clone();
        forgot.serial = 3;
        forgot.parties[0].revoked.clear();
        let why = next.check_successor(&forgot).unwrap_err().to_string();
        assert!(why.contains("must be kept"), "{why}");
        // It names the version that drops the revocation and the one that lists it.
        assert!(why.contains("serial 3 drops the revocation of key camden/data-team"), "{why}");
        assert!(why.contains("that serial 2, the version it would follow, lists"), "{why}");
        // A later version that kept it is the one that lists it when a still
        // later one drops it, not the one that made it.
        let mut kept = next.clone();
        kept.serial = 5;
        let mut dropped = kept.clone();
        dropped.serial = 6;
        dropped.parties[0].revoked.clear();
        let why = kept.check_successor(&dropped).unwrap_err().to_string();
        assert!(why.contains("serial 6 drops") && why.contains("that serial 5, the version it would follow"), "{why}");
        assert!(!why.contains("revoked in serial 5"), "serial 5 did not make the revocation: {why}");
        let signed = SignedDirectory::sign(forgot, &authority).unwrap();
        assert!(SignedDirectory::verify_successor(&signed.note, &authority.verifier(), &next).is_err());
        let mut same = next.clone();
        same.serial = 2;
        assert!(matches!(next.check_successor(&same), Err(DirectoryError::Rollback { .. })));
    }

    #[test]
    fn aliases_resolve() {
        let (_, _, dir) = sample();
        for text in ["camden", "Camden", " CAMDEN ", "E09000007", " 202\t", "cam-den"] {
            assert_eq!(dir.resolve_party(text).map(|p| p.id.as_str()), Some("camden"), "{text}");
        }
        assert!(dir.resolve_party("Westminster").is_none());
        assert!(dir.resolve_party("").is_none());
        for text in ["London Borough of Camden", "the london borough of camden", "Camden Council", "LB Camden."] {
            let found = dir.resolve_party(text).map(|p| p.id.as_str());
            assert_eq!(found, if text.starts_with("LB") { None } else { Some("camden") }, "{text}");
        }
        assert!(dir.resolve_party("Council").is_none());
        assert!(dir.resolve_party("London Borough of").is_none());
    }

    #[test]
    fn codes_match_only_as_written() {
        let (_, _, mut dir) = sample();
        let card = MemberSecretKey::generate("city-of-london".parse().unwrap(), "data-team".parse().unwrap()).public();
        dir.parties.push(Party {
            aliases: vec!["E09000001".into(), "201".into()],
            ..Party::with_member("City of London", card)
        });
        for text in ["201", " 201 ", "E09000001", "\tE09000001 ", "City of London", "city-of-london", "CITY OF LONDON"]
        {
            assert_eq!(dir.resolve_party(text).map(|p| p.id.as_str()), Some("city-of-london"), "{text:?}");
        }
        // Punctuation, case, inner spaces, leading zeros, decimals and
        // look-alike digits are not ignored in a code.
        for text in [
            "20.1",
            "2.01",
            "2/01",
            "2-01",
            "201.0",
            "0201",
            "2 01",
            "201a",
            "e09000001",
            "E09-000001",
            "E 09000001",
            "E09000001.",
            "２０１",
            "٢٠١",
            "City of London 201",
        ] {
            assert!(
                dir.resolve_party(text).is_none(),
                "{text:?} resolved to {:?}",
                dir.resolve_party(text).map(|p| &p.id)
            );
        }
        // Names keep their forgiving matching.
        assert_eq!(dir.resolve_party("city of london.").map(|p| p.id.as_str()), Some("city-of-london"));
    }

    #[test]
    fn full_council_names_resolve_but_city_of_london_stays_itself() {
        let authority = NoteSigningKey::generate("coordinator.example").unwrap();
        let party = |id: &str, name: &str| {
            let card = MemberSecretKey::generate(id.parse().unwrap(), "data-team".parse().unwrap()).public();
            Party::with_member(name, card)
        };
        let dir = Directory {
            serial: 1,
            issued_at: "2026-01-01T00:00:00Z".parse().unwrap(),
            hub: None,
            parties: vec![
                party("city-of-london", "City of London"),
                party("hammersmith-and-fulham", "Hammersmith and Fulham"),
                party("kensington-and-chelsea", "Kensington and Chelsea"),
                party("westminster", "Westminster"),
            ],
            agreements: vec![],
        };
        SignedDirectory::sign(dir.clone(), &authority).unwrap();
        for (text, id) in [
            ("City of London", "city-of-london"),
            ("London Borough of Hammersmith & Fulham", "hammersmith-and-fulham"),
            ("Hammersmith & Fulham", "hammersmith-and-fulham"),
            ("The Royal Borough of Kensington and Chelsea", "kensington-and-chelsea"),
            ("Royal Borough of Kensington & Chelsea", "kensington-and-chelsea"),
            ("Westminster City Council", "westminster"),
        ] {
            assert_eq!(dir.resolve_party(text).map(|p| p.id.as_str()), Some(id), "{text}");
        }
        for text in ["London", "City", "Royal Borough of", "Kensington"] {
            assert!(dir.resolve_party(text).is_none(), "{text}");
        }
    }

    #[test]
    fn inconsistent_directories_are_refused() {
        let (authority, _, dir) = sample();
        let mut d = dir.clone();
        d.parties[1].aliases.push("202".into());
        assert!(SignedDirectory::sign(d, &authority).unwrap_err().to_string().contains("202"));
        let mut d = dir.clone();
        d.agreements[0].parties.push("westminster".parse().unwrap());
        assert!(SignedDirectory::sign(d, &authority).unwrap_err().to_string().contains("westminster"));
        let mut d = dir.clone();
        let stolen = d.parties[0].members[0].signing_key.clone();
        d.parties[1].members[0].signing_key = stolen;
        assert!(SignedDirectory::sign(d, &authority).is_err());
        let mut d = dir.clone();
        d.parties.push(d.parties[0].clone());
        assert!(SignedDirectory::sign(d, &authority).is_err());
        let witness = NoteSigningKey::generate("camden.witness").unwrap();
        let mut d = dir.clone();
        d.parties[0].witness_keys.push(witness.verifier());
        assert!(SignedDirectory::sign(d, &authority).unwrap_err().to_string().contains("cosignature"));
        let mut d = dir;
        d.parties[0].witness_keys.push(witness.cosigner_verifier());
        SignedDirectory::sign(d, &authority).unwrap();
    }

    #[test]
    fn an_agreement_requiring_post_quantum_keys_refuses_any_other_kind() {
        let (authority, _, dir) = sample();
        let mut d = dir.clone();
        d.agreements[0].require_pq = true;
        SignedDirectory::sign(d.clone(), &authority).expect("every member key is post-quantum");
        // A classic key in a party of the agreement: the coordinator cannot sign it.
        let classic = MemberSecretKey::generate_classic("hackney".parse().unwrap(), "data-team".parse().unwrap());
        d.parties[2].members[0] = classic.public().into();
        let e = SignedDirectory::sign(d.clone(), &authority).unwrap_err().to_string();
        assert!(e.contains("requires post-quantum keys but hackney/data-team has a classic key"), "{e}");
        // Outside the agreement's parties, any kind is allowed.
        let mut d = dir.clone();
        d.agreements[0].require_pq = true;
        let barnet = MemberSecretKey::generate_classic("barnet".parse().unwrap(), "data-team".parse().unwrap());
        d.parties[3].members[0] = barnet.public().into();
        SignedDirectory::sign(d, &authority).expect("barnet is not in the agreement");
        // The flag is signed: an agreement's requirement cannot be dropped in transit,
        // and a directory without it keeps the bytes older clients signed.
        let mut d = dir;
        assert!(!SignedDirectory::sign(d.clone(), &authority).unwrap().note.contains("require_pq"));
        d.agreements[0].require_pq = true;
        let signed = SignedDirectory::sign(d, &authority).unwrap();
        let stripped = signed.note.replace("\"require_pq\": true", "\"require_pq\": false");
        assert!(SignedDirectory::verify(&stripped, &authority.verifier()).is_err());
    }

    #[test]
    fn a_party_whose_members_mix_key_kinds_is_refused() {
        let (authority, _, mut d) = sample();
        let classic = MemberSecretKey::generate_classic("camden".parse().unwrap(), "j-smith".parse().unwrap());
        d.parties[0].members.push(classic.public().into());
        let e = SignedDirectory::sign(d, &authority).unwrap_err().to_string();
        assert!(e.contains("the members of `camden` mix key kinds"), "{e}");
        assert!(e.contains("keygen --classic"), "the error says what to do: {e}");
    }

    #[test]
    fn a_directory_too_large_to_sign_is_refused_not_signed() {
        let (authority, _, mut d) = sample();
        // About 2,200 bytes a post-quantum member: 500 cannot fit in one signed note.
        for i in 0..500 {
            let k = MemberSecretKey::generate("barnet".parse().unwrap(), format!("member-{i}").parse().unwrap());
            d.parties[3].members.push(k.public().into());
        }
        let e = SignedDirectory::sign(d, &authority).unwrap_err();
        assert!(matches!(e, DirectoryError::Doc(DocError::TooLarge { .. })), "{e}");
    }
}
