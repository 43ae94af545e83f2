//! A witness's cosignature of the hub's checkpoint (`POST
//! /v1/log/cosignature`): accepted only from a witness key the directory in
//! force lists under the signer's party, over a checkpoint the hub signed,
//! and, when a witness key signs the request itself, only its own line.

use sealdrop_proto::api::{Cosign, CosignatureAccepted};
use sealdrop_proto::error_code::ErrorCode;
use sealdrop_proto::ids::PartyId;
use sealdrop_proto::keys::NoteVerifierKey;

use super::DropError;
use crate::hub::Hub;

fn bad_cosignature(message: impl Into<String>) -> DropError {
    DropError::new(ErrorCode::BadCosignature, message)
}

/// Checks and stores `req`, sent by `party` (signed by one of its members,
/// or by its witness key `own_key`).
pub async fn accept(
    hub: &Hub,
    party: &PartyId,
    own_key: Option<&NoteVerifierKey>,
    req: &Cosign,
) -> Result<CosignatureAccepted, DropError> {
    let line = req.line.strip_suffix('\n').unwrap_or(&req.line);
    if line.contains('\n') {
        return Err(bad_cosignature("`line` must be a single signed-note signature line"));
    }
    let sig = signed_note::Signature::from_bytes(line.as_bytes()).map_err(|_| {
        bad_cosignature(
            "`line` is not a signed-note signature line (`\u{2014} <key name> <base64 key id and signature>`)",
        )
    })?;
    let directory = hub.directory();
    let key = directory
        .directory
        .party(party)
        .and_then(|p| p.witness_keys.iter().find(|k| k.is_cosigner() && k.name() == sig.name() && k.id() == sig.id()))
        .cloned()
        .ok_or_else(|| {
            bad_cosignature(format!(
                "the line is signed by {}+{:08x}, which is not a witness key of your party `{party}` in the hub's \
                 current directory (serial {})",
                sig.name(),
                sig.id(),
                directory.directory.serial
            ))
        })?;
    // A witness speaks for itself only: the request's key must be the line's.
    if let Some(own) = own_key
        && *own != key
    {
        return Err(bad_cosignature(format!(
            "the request is signed by witness key {}, the line by witness key {}: a witness hands in only its own \
             cosignatures",
            own.name(),
            key.name()
        )));
    }
    let size = req.size;
    let note = hub
        .log()
        .checkpoint(size)
        .await?
        .ok_or_else(|| DropError::not_found(format!("the hub has not signed a checkpoint of size {size}")))?;
    let parsed = signed_note::Note::from_bytes(note.as_bytes())
        .map_err(|e| DropError::internal(format_args!("stored checkpoint {size}: {e}")))?;
    if !key.verify(parsed.text(), sig.signature()) {
        return Err(bad_cosignature(format!(
            "the cosignature by {} does not verify over the checkpoint of size {size}",
            key.name()
        )));
    }
    let line = String::from_utf8(sig.to_bytes()).map_err(DropError::internal)?;
    let witness = key.to_string();
    if !hub.cosignatures().put_cosignature(size, &witness, &line).await? {
        return Err(DropError::not_found(format!("the hub has not signed a checkpoint of size {size}")));
    }
    tracing::info!(size, witness = key.name(), "stored a witness cosignature");
    Ok(CosignatureAccepted { size, witness })
}
