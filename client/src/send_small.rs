//! A send in one request: the drop's whole ciphertext is encrypted in
//! memory when it fits, and created, uploaded and committed by one signed
//! request ([`crate::deliver::put`]); a drop too large, a hub that predates
//! it, or an expiry the agreement would trim go by the three steps
//! ([`crate::send`]).

use jiff::{SignedDuration, Timestamp};

use sealdrop_proto::age_keys::AgeRecipient;
use sealdrop_proto::api::CreatedDrop;
use sealdrop_proto::directory::Agreement;
use sealdrop_proto::ids::DropId;

use crate::archive;
use crate::context::Settings;
use crate::deliver::{Contents, Sealed};
use crate::error::{ErrorCode, Result};
use crate::pipe::{Digested, progress_bar};
use crate::upload;

/// How a send went in one request ([`one_request`]).
pub enum OneRequest {
    /// Sent and committed: the drop, its digest and the commit.
    Sent(CreatedDrop, Digested, Box<Sealed>),
    /// An earlier run under the same idempotency key sent it.
    AlreadySent {
        /// The drop the earlier run committed.
        id: DropId,
        /// When the hub committed it.
        committed: Timestamp,
        /// When it expires.
        expires: Timestamp,
    },
    /// Not in one request: too large, a hub that predates it, or an expiry
    /// the agreement would trim.
    ThreeSteps,
}

/// Sends the drop in one request when its ciphertext fits
/// ([`sealdrop_proto::api::DEFAULT_MAX_SINGLE_REQUEST_BYTES`]; a hub with a
/// smaller cap says so, and it goes by the three steps). Under an
/// idempotency key, a hub that refuses it as sent already (`drop_exists`)
/// names the earlier drop through `GET /v1/sent`.
#[allow(clippy::too_many_arguments, reason = "the facts of one send, each used once")]
pub fn one_request(
    settings: &Settings,
    session: &crate::context::Session,
    plan: &archive::Plan,
    age_recipients: &[(String, AgeRecipient)],
    contents: Contents,
    agreement: &Agreement,
    lifetime: SignedDuration,
    idempotency_key: Option<&str>,
    fingerprint: &str,
) -> Result<OneRequest> {
    let limit = sealdrop_proto::api::DEFAULT_MAX_SINGLE_REQUEST_BYTES;
    let bar = progress_bar(crate::padding::progress_len(plan), "encrypting and sending", settings.quiet);
    let progress = bar.clone();
    let encrypted = upload::encrypt_small(plan, age_recipients, limit, move |n| progress.inc(n));
    bar.finish_and_clear();
    let Some(ciphertext) = encrypted? else { return Ok(OneRequest::ThreeSteps) };
    let id = match idempotency_key {
        // A re-run under the same key asks for the same id.
        Some(key) => DropId::for_idempotency_key(&session.me.party, key),
        None => DropId::random(),
    };
    // As after a create: should the hub stop half-way (the answer lost, the
    // drop left open), a re-run of this send withdraws it first.
    let _ = crate::withdraw::remember_unsynced(&settings.state_dir, &id, fingerprint);
    let state_dir = Some(settings.state_dir.as_path());
    let small = crate::deliver::Small {
        id: id.clone(),
        state_dir,
        contents,
        agreement,
        lifetime,
        ciphertext: &ciphertext,
        idempotency_key,
    };
    match crate::deliver::put(settings, session, small) {
        Ok(Some((created, digest, sealed))) => Ok(OneRequest::Sent(created, digest, Box::new(sealed))),
        Ok(None) => {
            crate::withdraw::forget(&settings.state_dir, &id);
            Ok(OneRequest::ThreeSteps)
        }
        Err(e) if e.code == ErrorCode::DropExists.as_str() => {
            // Nothing was stored under this id now.
            crate::withdraw::forget(&settings.state_dir, &id);
            match idempotency_key {
                Some(key) => earlier_send(session, key).ok_or(e),
                None => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

/// The committed drop this party sent under idempotency `key`, if the hub
/// lists one: first the id a run in one request gives it, then any.
fn earlier_send(session: &crate::context::Session, key: &str) -> Option<OneRequest> {
    let hub = &session.hub;
    let by_id = DropId::for_idempotency_key(&session.me.party, key);
    let listed = hub.sent(Some(&by_id)).ok().filter(|s| !s.drops.is_empty()).or_else(|| hub.sent(None).ok())?;
    let d = listed.drops.into_iter().find(|d| d.idempotency_key.as_deref() == Some(key) && d.committed.is_some())?;
    Some(OneRequest::AlreadySent { id: d.id, committed: d.committed?, expires: d.expires })
}
