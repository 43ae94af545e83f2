//! Drops that a recipient party can never fetch: every key the sender
//! encrypted to for that party (the signed manifest lists them) has since
//! been revoked or removed from the directory. That is what a key rotation
//! done as README step 7 says does to a drop sent the day before: the
//! member's new key cannot open it, and the hub refuses the old one.
//!
//! Both sides work it out from what they already verified, the manifest and
//! the current directory: the recipient's `fetch` says what happened and
//! what to do (`undeliverable`, recorded with the refusals in
//! `<state>/refused/` so that `fetch --all` reports it once and then skips
//! it, and `inbox` marks it), and the sender's `status` shows that
//! recipient as `undeliverable`, with the reason, instead of `waiting`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use jiff::Timestamp;

use sealdrop_proto::api::{DropState, SentDrop};
use sealdrop_proto::directory::Directory;
use sealdrop_proto::drop::{EncryptedTo, Manifest};
use sealdrop_proto::ids::{DropId, PartyId};
use sealdrop_proto::keys::MemberSecretKey;
use sealdrop_proto::note::{open_doc, peek_doc};

use crate::context::{Session, Settings};
use crate::error::{Error, ErrorCode};
use crate::refused::UNDELIVERABLE;

/// What became of one key a drop was encrypted to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fate {
    /// The directory lists it as a current member key of its party.
    Valid,
    /// Revoked (the newest revocation under that key name).
    Revoked {
        /// From when.
        at: Timestamp,
        /// Why, as the coordinator wrote it.
        reason: String,
    },
    /// No longer in the directory, and not revoked either (a member removed).
    Removed,
}

/// What became of the key `e` of the directory's party `party`.
fn fate(dir: &Directory, party: &PartyId, e: &EncryptedTo) -> Fate {
    let Some(p) = dir.party(party) else { return Fate::Removed };
    if p.members.iter().any(|m| p.card(m).signing_key.name() == e.key && m.age_recipient == e.age_recipient) {
        return Fate::Valid;
    }
    // A rotation keeps the member name, so the revoked key and its
    // replacement share `e.key`; the replacement is not `e` (its age
    // recipient differs), and the newest revocation of that name is the
    // one the drop met.
    match p.revoked.iter().filter(|r| r.signing_key.name() == e.key).max_by_key(|r| r.revoked_at) {
        Some(r) => Fate::Revoked { at: r.revoked_at, reason: r.reason.clone() },
        None => Fate::Removed,
    }
}

/// The keys of `party` that `m` was encrypted to.
fn keys_of<'m>(m: &'m Manifest, party: &PartyId) -> impl Iterator<Item = &'m EncryptedTo> {
    let prefix = format!("{party}/");
    m.encrypted_to.iter().filter(move |e| e.key.starts_with(&prefix))
}

/// Why `party` can never fetch the drop of manifest `m` under `dir`, e.g.
/// `islington/data-team's revoked key (revoked 2026-11-20: laptop stolen)`;
/// `None` when one of its keys the drop was encrypted to is still listed
/// (or the manifest names none of its keys: not a verdict this can give).
pub fn stranded(dir: &Directory, m: &Manifest, party: &PartyId) -> Option<String> {
    let keys: Vec<&EncryptedTo> = keys_of(m, party).collect();
    if keys.is_empty() {
        return None;
    }
    let mut described = Vec::new();
    for e in keys {
        match fate(dir, party, e) {
            Fate::Valid => return None,
            Fate::Revoked { at, reason } => {
                let why = if reason.trim().is_empty() { String::new() } else { format!(": {}", reason.trim()) };
                described.push(format!("{}'s revoked key (revoked {}{why})", e.key, at.strftime("%Y-%m-%d")));
            }
            Fate::Removed => described.push(format!("{}'s key (no longer in the directory)", e.key)),
        }
    }
    Some(described.join(" and "))
}

/// The error for a drop addressed to `me`'s party but not encrypted to
/// `me`'s key: `undeliverable` when no member of the party has a key it was
/// encrypted to, else `not_encrypted_to_you` naming the members who do.
pub fn not_for_me(dir: &Directory, m: &Manifest, me: &MemberSecretKey) -> Error {
    let id = &m.drop;
    if let Some(keys) = stranded(dir, m, &me.party) {
        return Error::new(
            ErrorCode::Undeliverable,
            format!("drop {id} was encrypted only to {keys}; ask {} to recall it and send it again", m.sender),
        );
    }
    let others: Vec<&str> =
        keys_of(m, &me.party).filter(|e| fate(dir, &me.party, e) == Fate::Valid).map(|e| e.key.as_str()).collect();
    let who = if others.is_empty() { String::new() } else { format!(" ({})", others.join(", ")) };
    Error::new(
        ErrorCode::NotEncryptedToYou,
        format!(
            "drop {id} was not encrypted to your key {}; another member of {}{who} must fetch it",
            me.signing.name(),
            me.party
        ),
    )
}

/// Records an `undeliverable` verdict on drop `id` (whose manifest note the
/// hub served) with the refusals, so `fetch --all` skips it from now on.
pub fn remember(settings: &Settings, id: &DropId, manifest_note: &str, err: &Error) {
    if err.code != UNDELIVERABLE {
        return;
    }
    if let Ok(m) = peek_doc::<Manifest>(manifest_note) {
        crate::refused::record(&settings.state_dir, id, &m.sender, err, settings.clock.now());
    }
}

/// Folder under the state dir keeping the manifests of this party's sent
/// drops that `status` looked at (they never change, so each is asked once).
const MANIFESTS_DIR: &str = "sent-manifests";

fn manifest_path(state_dir: &Path, id: &DropId) -> PathBuf {
    state_dir.join(MANIFESTS_DIR).join(format!("{id}.note"))
}

/// For `status`: the recipients of each of this party's committed drops
/// that can never fetch it, with why (see [`stranded`]). Only recipients
/// that have not acknowledged are looked at; a manifest that cannot be had
/// or does not verify as this party's gives no verdict (a warning says so).
/// Kept manifests of drops that ended are deleted.
pub fn for_status(
    settings: &Settings,
    session: &Session,
    drops: &[&SentDrop],
) -> HashMap<DropId, HashMap<PartyId, String>> {
    let dir = &session.directory.directory;
    let mut verdicts = HashMap::new();
    for d in drops {
        if d.state.is_ended() {
            let _ = std::fs::remove_file(manifest_path(&settings.state_dir, &d.id));
            continue;
        }
        let pending: Vec<&PartyId> =
            d.recipients.iter().filter(|r| r.acknowledged.is_none()).map(|r| &r.party).collect();
        if d.state != DropState::Committed || pending.is_empty() {
            continue;
        }
        let manifest = match sent_manifest(settings, session, &d.id) {
            Ok(m) => m,
            Err(e) => {
                eprintln!(
                    "warning: cannot tell whether every recipient of drop {} can still fetch it: {}",
                    d.id, e.message
                );
                continue;
            }
        };
        let stranded: HashMap<PartyId, String> = pending
            .into_iter()
            .filter_map(|p| {
                stranded(dir, &manifest, p).map(|keys| {
                    (
                        p.clone(),
                        format!(
                            "encrypted only to {keys}, so {p} can never fetch it: recall it and send it again (`sealdrop recall {}`)",
                            d.id
                        ),
                    )
                })
            })
            .collect();
        if !stranded.is_empty() {
            verdicts.insert(d.id.clone(), stranded);
        }
    }
    verdicts
}

/// The manifest of this party's drop `id`: kept, or asked of the hub and
/// kept. It must be signed by a key of this party, current or revoked (the
/// hub cannot make one), and be the manifest of `id`.
fn sent_manifest(settings: &Settings, session: &Session, id: &DropId) -> Result<Manifest, Error> {
    let path = manifest_path(&settings.state_dir, id);
    let note = match std::fs::read_to_string(&path) {
        Ok(note) => note,
        Err(_) => session.hub.drop_details(id)?.manifest,
    };
    let me = &session.me.party;
    let party = session.directory.directory.party(me);
    let keys: Vec<_> = party
        .map(|p| p.members.iter().map(|m| m.signing_key.clone()).chain(p.revoked.iter().map(|r| r.signing_key.clone())))
        .into_iter()
        .flatten()
        .collect();
    let bad = |why: String| Error::new(ErrorCode::BadManifest, format!("the manifest of drop {id} {why}"));
    let m = open_doc::<Manifest>(&note, &keys).map_err(|e| bad(format!("does not verify: {e}")))?.doc;
    if &m.drop != id || &m.sender != me {
        return Err(bad(format!("is for drop {} from {}", m.drop, m.sender)));
    }
    if !path.exists() {
        let _ = crate::fsutil::create_private_dir(&settings.state_dir.join(MANIFESTS_DIR))
            .and_then(|()| crate::fsutil::write_atomic(&path, note.as_bytes(), false));
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sealdrop_proto::directory::{Party, RevokedKey};

    struct World {
        old: MemberSecretKey,
        new: MemberSecretKey,
        other: MemberSecretKey,
        manifest: Manifest,
    }

    fn key(party: &str, member: &str) -> MemberSecretKey {
        MemberSecretKey::generate(party.parse().unwrap(), member.parse().unwrap())
    }

    fn to(k: &MemberSecretKey) -> EncryptedTo {
        EncryptedTo { key: k.signing.name().to_owned(), age_recipient: k.age_recipient.to_string() }
    }

    fn world() -> World {
        let (old, new, other) =
            (key("islington", "data-team"), key("islington", "data-team"), key("islington", "j.smith"));
        let at: Timestamp = "2026-11-20T09:00:00Z".parse().unwrap();
        let manifest = Manifest {
            drop: DropId::random(),
            sender: "camden".parse().unwrap(),
            sender_member: "data-team".parse().unwrap(),
            recipients: vec!["islington".parse().unwrap()],
            encrypted_to: vec![to(&old), to(&key("camden", "data-team"))],
            agreement: "a".into(),
            directory_serial: 1,
            ciphertext_sha256: "ab".repeat(32),
            ciphertext_len: 1,
            created: at,
            expires: at,
        };
        World { old, new, other, manifest }
    }

    fn directory(members: &[&MemberSecretKey], revoked: &[(&MemberSecretKey, &str, &str)]) -> Directory {
        let mut p = Party::with_member("Islington", members[0].public());
        p.members.extend(members[1..].iter().map(|k| k.public().into()));
        p.revoked = revoked
            .iter()
            .map(|(k, at, reason)| RevokedKey {
                member: k.member.clone(),
                signing_key: k.signing.verifier(),
                revoked_at: at.parse().unwrap(),
                reason: (*reason).to_owned(),
            })
            .collect();
        Directory { serial: 3, issued_at: Timestamp::UNIX_EPOCH, hub: None, parties: vec![p], agreements: vec![] }
    }

    #[test]
    fn a_drop_for_a_key_rotated_away_is_undeliverable_and_says_why() {
        let w = world();
        let islington: PartyId = "islington".parse().unwrap();
        // Rotated under the same member name: the replacement cannot open it.
        let rotated = directory(&[&w.new], &[(&w.old, "2026-11-20T09:00:00Z", "laptop stolen")]);
        let why = stranded(&rotated, &w.manifest, &islington).unwrap();
        assert_eq!(why, "islington/data-team's revoked key (revoked 2026-11-20: laptop stolen)");
        let e = not_for_me(&rotated, &w.manifest, &w.new);
        assert_eq!((e.code.as_str(), e.kind), (UNDELIVERABLE, crate::error::Kind::Input));
        assert_eq!(
            e.message,
            format!(
                "drop {} was encrypted only to islington/data-team's revoked key (revoked 2026-11-20: laptop stolen); ask camden to recall it and send it again",
                w.manifest.drop
            )
        );
        // Removed without a revocation, or the party gone: as stranded.
        let removed = directory(&[&w.other], &[]);
        assert_eq!(
            stranded(&removed, &w.manifest, &islington).unwrap(),
            "islington/data-team's key (no longer in the directory)"
        );
        let nobody = Directory { parties: vec![], ..removed.clone() };
        assert!(stranded(&nobody, &w.manifest, &islington).is_some());
        // Still listed: deliverable. Not a key of the party at all: no verdict.
        assert_eq!(stranded(&directory(&[&w.old], &[]), &w.manifest, &islington), None);
        assert_eq!(stranded(&rotated, &w.manifest, &"hackney".parse().unwrap()), None);
    }

    #[test]
    fn another_member_is_named_only_when_one_holds_a_listed_key() {
        let mut w = world();
        w.manifest.encrypted_to.push(to(&w.other));
        let both = directory(&[&w.new, &w.other], &[(&w.old, "2026-11-20T09:00:00Z", "left")]);
        assert_eq!(stranded(&both, &w.manifest, &"islington".parse().unwrap()), None);
        let e = not_for_me(&both, &w.manifest, &w.new);
        assert_eq!(e.code, "not_encrypted_to_you");
        assert!(e.message.ends_with("another member of islington (islington/j.smith) must fetch it"), "{}", e.message);
        // j.smith removed too: nobody left, and both keys are named.
        let neither = directory(&[&w.new], &[(&w.old, "2026-11-20T09:00:00Z", "left")]);
        let e = not_for_me(&neither, &w.manifest, &w.new);
        assert_eq!(e.code, UNDELIVERABLE);
        assert!(
            e.message.contains("islington/data-team's revoked key (revoked 2026-11-20: left) and islington/j.smith's key (no longer in the directory)"),
            "{}",
            e.message
        );
        assert!(!e.message.contains("another member"), "{}", e.message);
    }
}
