//! Checking a drop's signed manifest against the verified directory.

use sealdrop_log::policy;
use sealdrop_proto::directory::Directory;
use sealdrop_proto::drop::Manifest;
use sealdrop_proto::ids::DropId;
use sealdrop_proto::keys::MemberSecretKey;
use sealdrop_proto::note::{Opened, open_doc, peek_doc};

use crate::error::{Error, ErrorCode, Result};

/// Checks the manifest's signature against the sender's keys in the verified
/// directory, and that it is this drop and addressed to this member.
///
/// A key the directory has since revoked still vouches for a drop committed
/// before the revocation took effect: staff leaving must not strand what
/// they sent the day before. Only then is `commit_time` asked for the time
/// of the drop's commit entry in the verified log
/// ([`sealdrop_log::policy::manifest_keys`]); a drop committed at or after
/// the revocation, or whose commit the log does not prove, is refused.
pub fn verify_manifest(
    dir: &Directory,
    me: &MemberSecretKey,
    id: &DropId,
    note: &str,
    commit_time: impl FnOnce() -> Result<Option<jiff::Timestamp>>,
) -> Result<Manifest> {
    verify_manifest_opened(dir, me, id, note, commit_time).map(|opened| opened.doc)
}

/// [`verify_manifest`], keeping the key whose signature verified: the
/// journal records its fingerprint, since a member name can be reused with
/// a new key.
pub fn verify_manifest_opened(
    dir: &Directory,
    me: &MemberSecretKey,
    id: &DropId,
    note: &str,
    commit_time: impl FnOnce() -> Result<Option<jiff::Timestamp>>,
) -> Result<Opened<Manifest>> {
    let claimed =
        peek_doc::<Manifest>(note).map_err(|e| Error::new(ErrorCode::BadManifest, format!("drop {id}: {e}")))?;
    let refused = |e: &dyn std::fmt::Display| {
        Error::new(ErrorCode::BadManifest, format!("drop {id}: {e}; the drop was not fetched, report it to the sender"))
    };
    let opened = match open_doc::<Manifest>(note, &policy::manifest_keys(dir, &claimed.sender, None)) {
        Ok(opened) => opened,
        Err(e) => {
            let Some(party) = dir.party(&claimed.sender).filter(|p| !p.revoked.is_empty()) else {
                return Err(refused(&e));
            };
            let revoked: Vec<_> = party.revoked.iter().map(|r| r.signing_key.clone()).collect();
            // Signed by none of the party's keys, revoked or not: no need to
            // ask the log when it was committed.
            let Ok(by_revoked) = open_doc::<Manifest>(note, &revoked) else { return Err(refused(&e)) };
            let committed = commit_time()?;
            match open_doc::<Manifest>(note, &policy::manifest_keys(dir, &claimed.sender, committed)) {
                Ok(opened) => opened,
                Err(_) => {
                    let r = party.revoked.iter().find(|r| r.signing_key.name() == by_revoked.signer);
                    let (since, why) = r.map_or((String::new(), String::new()), |r| {
                        (format!(" from {}", r.revoked_at), format!(" ({})", r.reason))
                    });
                    let when = match committed {
                        Some(t) => format!("the transfer log commits the drop at {t}, not before"),
                        None => "the hub does not prove from its log when the drop was committed".to_owned(),
                    };
                    return Err(Error::new(
                        ErrorCode::BadManifest,
                        format!(
                            "drop {id}'s manifest is signed with {}'s key, revoked{since}{why}, and {when}: \
                             the drop was not fetched; report it to the coordinator",
                            by_revoked.signer
                        ),
                    ));
                }
            }
        }
    };
    let m = &opened.doc;
    if opened.signer != format!("{}/{}", m.sender, m.sender_member) {
        return Err(Error::new(
            ErrorCode::BadManifest,
            format!(
                "drop {id}: the manifest names {}/{} but was signed by {}",
                m.sender, m.sender_member, opened.signer
            ),
        ));
    }
    if &m.drop != id {
        return Err(Error::new(
            ErrorCode::BadManifest,
            format!("the hub served the manifest of drop {} for drop {id}", m.drop),
        ));
    }
    if !m.recipients.contains(&me.party) {
        return Err(Error::new(ErrorCode::BadManifest, format!("drop {id} is not addressed to {}", me.party)));
    }
    let mine = me.age_recipient.to_string();
    if !m.encrypted_to.iter().any(|e| e.age_recipient == mine) {
        return Err(crate::undeliverable::not_for_me(dir, m, me));
    }
    Ok(opened)
}
