//! The hub's side of every send, shared by `send` and `split`: open a
//! drop, and once its ciphertext is uploaded, sign its manifest and commit
//! it. Both steps tell [`crate::interrupt`] what Ctrl-C must withdraw. A
//! drop whose whole ciphertext is in memory and small enough goes in one
//! request instead ([`put`]), which leaves nothing open to withdraw.

use std::path::Path;

use jiff::{SignedDuration, Timestamp};

use sealdrop_proto::api::{Commit, Committed, CreateDrop, CreatedDrop};
use sealdrop_proto::directory::Agreement;
use sealdrop_proto::drop::{EncryptedTo, Manifest};
use sealdrop_proto::ids::{DropId, PartyId};
use sealdrop_proto::note::sign_doc;
use sealdrop_proto::policy;
use sha2::{Digest as _, Sha256};

use crate::context::{Session, Settings};
use crate::error::Result;
use crate::pipe::Digested;

/// A drop to open on the hub.
pub struct Opening<'a> {
    /// Its recipient parties.
    pub recipients: &'a [PartyId],
    /// The agreement it travels under.
    pub agreement: &'a str,
    /// When it expires.
    pub expires: Timestamp,
    /// Makes opening it again return the same drop (a split part run
    /// again), so nothing is sent twice.
    pub idempotency_key: Option<String>,
    /// The state dir whose records of the send Ctrl-C must also clean up,
    /// when the send keeps any.
    pub state_dir: Option<&'a Path>,
}

/// Opens a drop on the hub. Unless the hub answers with one already
/// committed under the same idempotency key, Ctrl-C from here on withdraws it.
pub fn open(session: &Session, drop: Opening<'_>) -> Result<CreatedDrop> {
    crate::interrupt::check()?;
    let created = session.hub.create_drop(&CreateDrop {
        recipients: drop.recipients.to_vec(),
        agreement: drop.agreement.to_owned(),
        expires: drop.expires,
        idempotency_key: drop.idempotency_key,
    })?;
    if created.committed.is_none() {
        crate::interrupt::opened(&session.hub, &created.id, drop.state_dir);
    }
    Ok(created)
}

/// What a drop's commit gave.
pub struct Sealed {
    /// The signed manifest, as committed.
    pub note: String,
    /// The hub's answer: when, and where its log records it.
    pub committed: Committed,
}

/// What the manifest says of the drop besides what the hub and the upload
/// decided.
pub struct Contents {
    /// Its recipient parties.
    pub recipients: Vec<PartyId>,
    /// The keys it is encrypted to.
    pub encrypted_to: Vec<EncryptedTo>,
    /// The agreement it travels under.
    pub agreement: String,
}

/// Signs the manifest of `created`, whose uploaded ciphertext is `digest`,
/// and commits it; from then on Ctrl-C leaves it alone (it was sent).
pub fn commit(
    settings: &Settings,
    session: &Session,
    created: &CreatedDrop,
    contents: Contents,
    digest: &Digested,
) -> Result<Sealed> {
    let me = &session.me;
    let manifest = Manifest {
        drop: created.id.clone(),
        sender: me.party.clone(),
        sender_member: me.member.clone(),
        recipients: contents.recipients,
        encrypted_to: contents.encrypted_to,
        agreement: contents.agreement,
        directory_serial: session.directory.directory.serial,
        ciphertext_sha256: digest.sha256.clone(),
        ciphertext_len: digest.len,
        created: created.created,
        expires: created.expires,
    };
    let note = sign_doc(&manifest, &me.signing);
    let known_size = settings.known_log_size(session);
    crate::interrupt::check()?;
    let committed = session.hub.commit(&created.id, &Commit { manifest: note.clone(), known_size })?;
    crate::interrupt::committed(&created.id);
    Ok(Sealed { note, committed })
}

/// A drop whose whole ciphertext is in memory, to send in one request.
pub struct Small<'a> {
    /// Its id, chosen by the sender.
    pub id: DropId,
    /// The state dir whose records of the send Ctrl-C must also clean up.
    pub state_dir: Option<&'a Path>,
    /// What the manifest says besides the times and the ciphertext.
    pub contents: Contents,
    /// The agreement it travels under, whose limits its expiry keeps.
    pub agreement: &'a Agreement,
    /// How long it may wait, counted from its creation now.
    pub lifetime: SignedDuration,
    /// The ciphertext.
    pub ciphertext: &'a [u8],
    /// The send's idempotency key, if it has one.
    pub idempotency_key: Option<&'a str>,
}

/// Creates, uploads and commits `small` in one signed request: the sender
/// picks the id and signs the manifest with its own clock's `created` (whole
/// seconds) and the expiry the agreement allows from then, which the hub
/// checks as it checks a create's. `Ok(None)` when the hub does not take it
/// in one request (an older hub, or a ciphertext over its cap) or the
/// expiry cannot be put exactly (an agreement ending within the lifetime):
/// the caller sends it in three requests.
pub fn put(
    settings: &Settings,
    session: &Session,
    small: Small<'_>,
) -> Result<Option<(CreatedDrop, Digested, Sealed)>> {
    let me = &session.me;
    let created = sealdrop_proto::clock::whole_second(settings.clock.now());
    // Whole seconds, rounded down, as the three steps ask for.
    let Ok(expires) = created.checked_add(small.lifetime).map(sealdrop_proto::clock::whole_second) else {
        return Ok(None);
    };
    // The hub refuses (not trims) an expiry past the agreement's limits from
    // `created`: one the three steps would trim goes by them.
    if policy::drop_expiry(small.agreement, created, expires) != Ok(expires.as_second()) {
        return Ok(None);
    }
    let id = small.id;
    let digest = Digested { sha256: hex::encode(Sha256::digest(small.ciphertext)), len: small.ciphertext.len() as u64 };
    let manifest = Manifest {
        drop: id.clone(),
        sender: me.party.clone(),
        sender_member: me.member.clone(),
        recipients: small.contents.recipients,
        encrypted_to: small.contents.encrypted_to,
        agreement: small.contents.agreement,
        directory_serial: session.directory.directory.serial,
        ciphertext_sha256: digest.sha256.clone(),
        ciphertext_len: digest.len,
        created,
        expires,
    };
    let note = sign_doc(&manifest, &me.signing);
    let known_size = settings.known_log_size(session);
    crate::interrupt::check()?;
    // The hub commits the drop whole or stores nothing, unless it stops
    // half-way (a crash): Ctrl-C during the request withdraws what may be
    // left open, as after a create.
    crate::interrupt::opened(&session.hub, &id, small.state_dir);
    let answer = session.hub.put_drop(&id, &note, small.ciphertext, known_size, small.idempotency_key);
    let Some(committed) = answer.inspect_err(|e| {
        // Refused outright (the hub answered: a refusal stores nothing),
        // not cut off half-way: nothing of it is open.
        if e.kind == crate::error::Kind::Refused {
            crate::interrupt::not_made(&id);
        }
    })?
    else {
        crate::interrupt::not_made(&id);
        return Ok(None);
    };
    crate::interrupt::committed(&id);
    let created = CreatedDrop { id, created, expires, committed: None };
    Ok(Some((created, digest, Sealed { note, committed })))
}
