//! The hub's side of every send, shared by `send` and `split`: open a
//! drop, and once its ciphertext is uploaded, sign its manifest and commit
//! it. Both steps tell [`crate::interrupt`] what Ctrl-C must withdraw.

use std::path::Path;

use jiff::Timestamp;

use sealdrop_proto::api::{Commit, Committed, CreateDrop, CreatedDrop};
use sealdrop_proto::drop::{EncryptedTo, Manifest};
use sealdrop_proto::ids::PartyId;
use sealdrop_proto::note::sign_doc;

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
