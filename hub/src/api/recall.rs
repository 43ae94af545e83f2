//! `POST /v1/drops/{id}/recall`: the sender takes a drop back before any
//! recipient has acknowledged it, so a misdirected or mistaken file can be
//! stopped before it is opened.
//!
//! Any member of the sending party may recall (a colleague can stop a
//! mistake while the sender is away). The hub deletes the ciphertext and
//! logs, in one transaction, the member's signed request (`drop_recalled`)
//! and its own statement that it deleted the drop (`drop_deleted`, reason
//! `recalled`); the recipients' inboxes no longer show it and a fetch gets
//! 410. Once a recipient has acknowledged, a recall is refused with a
//! message naming who has the data: deleting the hub's copy would not take
//! it back from them. A recipient that downloaded without acknowledging may
//! hold a copy too; the response lists those, so the sender can ask them to
//! delete it.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use sealdrop_log::entry::{DeletionReason, HubStatement, LogEntry, SignedRequest};
use sealdrop_proto::api::{DropState, ErrorBody, Recall, Recalled, RecipientStatus, code};
use sealdrop_proto::ids::DropId;

use super::auth::{Authed, Json};
use super::error::ApiError;
use super::shared::{drop_id, entry_bytes, load_drop, ts};
use crate::hub::Hub;
use crate::storage::meta::{DropRecord, EndOutcome, EndRecord, RecipientRecord};
use crate::transfer_log::hub_entry;

/// The refusal of a recall because `acked` already have the data.
fn refused(rec: &DropRecord, acked: &[RecipientRecord]) -> ApiError {
    let who = acked
        .iter()
        .map(|r| {
            let at = r.acknowledged.and_then(|t| jiff::Timestamp::from_second(t).ok());
            let by = r.ack_member.as_ref().map(|m| format!(" by {}/{m}", r.party)).unwrap_or_default();
            match at {
                Some(at) => format!("{} acknowledged it at {at}{by}", r.party),
                None => format!("{} acknowledged it", r.party),
            }
        })
        .collect::<Vec<_>>()
        .join("; ");
    ApiError::new(
        code::RECALL_REFUSED,
        format!(
            "drop {} can no longer be recalled: {who}, so they already have the data; ask them to delete it \
             under agreement `{}`",
            rec.id, rec.agreement
        ),
    )
}

fn status(r: &RecipientRecord) -> Result<RecipientStatus, ApiError> {
    Ok(RecipientStatus {
        party: r.party.clone(),
        fetched: r.fetched.map(ts).transpose()?,
        acknowledged: r.acknowledged.map(ts).transpose()?,
        acknowledged_by: r.ack_member.as_ref().map(ToString::to_string),
        fetched_log_index: r.fetch_index,
        acknowledged_log_index: r.ack_index,
    })
}

/// `POST /v1/drops/{id}/recall`.
#[utoipa::path(
    post,
    path = "/v1/drops/{id}/recall",
    tag = "drops",
    summary = "Recall a drop nobody has acknowledged",
    description = "Any member of the sending party takes the drop back: the hub deletes the ciphertext and logs the \
                   signed request and its deletion. Refused once a recipient has acknowledged. The answer names \
                   recipients that downloaded it without acknowledging.",
    params(("id" = DropId, Path, description = "The drop")),
    request_body = Recall,
    responses(
        (status = 200, description = "Recalled", body = Recalled),
        (status = 400, description = "`bad_request`: not a drop id, or a body other than `{}`", body = ErrorBody),
        (status = 403, description = "`forbidden`: your party is a recipient, not the sender", body = ErrorBody),
        (status = 404, description = "`not_found`: your party has not sent such a drop", body = ErrorBody),
        (status = 409, description = "`recall_refused`: a recipient acknowledged it (named); `conflict`: not committed", body = ErrorBody),
        (status = 410, description = "`gone`: already delivered, expired or recalled", body = ErrorBody),
    ),
    security(("sealdrop_request_signature" = [])),
)]
pub async fn recall(
    State(hub): State<Hub>,
    path: Result<Path<String>, PathRejection>,
    Authed { caller, auth, path: signed_path, body: Json(Recall {}) }: Authed<Json<Recall>>,
) -> Result<axum::Json<Recalled>, ApiError> {
    let id = drop_id(path)?;
    let _lock = hub.locks().lock(&id).await;
    let rec = load_drop(&hub, &id).await?;
    if rec.sender != caller.party {
        if rec.recipient(&caller.party).is_some() {
            return Err(ApiError::forbidden(format!(
                "only the sending party `{}` may recall drop {id}; to refuse it, do not fetch it",
                rec.sender
            )));
        }
        return Err(ApiError::not_found(format!("your party `{}` has not sent a drop {id}", caller.party)));
    }
    let deleted = || rec.deleted.map(ts).transpose().map(|t| t.map(|t| format!(" at {t}")).unwrap_or_default());
    match rec.state {
        DropState::Open => {
            // Only what is true of every open drop: a re-run of the send
            // replaces it only if it was created with the same idempotency
            // key, which a plain `sealdrop send` does not use.
            return Err(ApiError::conflict(format!(
                "drop {id} was never committed, so no recipient can see it; withdraw it (`DELETE /v1/drops/{id}`, \
                 which `sealdrop recall` does for such a drop), or leave it and the hub removes it at its expiry, {}",
                ts(rec.expires)?
            )));
        }
        DropState::Delivered => {
            let acked: Vec<RecipientRecord> = rec.recipients.clone();
            return Err(refused(&rec, &acked));
        }
        DropState::Expired => {
            return Err(ApiError::gone(format!(
                "drop {id} already expired{} and its ciphertext was deleted",
                deleted()?
            )));
        }
        DropState::Recalled => {
            return Err(ApiError::gone(format!("drop {id} was already recalled{}", deleted()?)));
        }
        DropState::Committed => {}
    }
    let acked: Vec<RecipientRecord> = rec.recipients.iter().filter(|r| r.acknowledged.is_some()).cloned().collect();
    if !acked.is_empty() {
        return Err(refused(&rec, &acked));
    }
    let turn = hub.log_turn().await;
    let now = hub.now();
    let recalled = LogEntry::DropRecalled {
        drop: id.clone(),
        party: caller.party.clone(),
        recalled: now,
        request: SignedRequest::from_auth(&auth, "POST", &signed_path),
    };
    let recalled = entry_bytes(&recalled, |e| {
        ApiError::bad_request(format!("{e}: this request cannot be logged; recall without a query string"))
    })?;
    let deletion = HubStatement::DropDeleted { time: now, drop: id.clone(), reason: DeletionReason::Recalled };
    let deletion = entry_bytes(&hub_entry(hub.log_key(), &deletion), ApiError::internal)?;
    let end = EndRecord {
        state: DropState::Recalled,
        at: now.as_second(),
        log_entries: vec![recalled, deletion],
        unless_acknowledged: true,
    };
    let log_index = match hub.meta().end_drop(&id, &end, Box::new(turn)).await? {
        EndOutcome::Ended { log_index } => log_index,
        EndOutcome::Acknowledged(acked) => return Err(refused(&rec, &acked)),
        EndOutcome::NotCommitted(_) => return Err(ApiError::gone(format!("drop {id} is no longer on the hub"))),
    };
    hub.metrics().drop_deleted(DeletionReason::Recalled.into());
    // The database says recalled before the file goes: if deleting fails,
    // start-up cleanup removes blobs of drops that are not committed.
    let ciphertext_deleted = match hub.blobs().delete_blob(&id).await {
        Ok(_) => true,
        Err(e) => {
            tracing::warn!(error = %e, "could not delete the ciphertext of a recalled drop");
            false
        }
    };
    let downloaded_by =
        rec.recipients.iter().filter(|r| r.fetched.is_some()).map(status).collect::<Result<Vec<_>, _>>()?;
    tracing::info!(log_index, ciphertext_deleted, downloaded = downloaded_by.len(), "recalled");
    Ok(axum::Json(Recalled { id, recalled: now, log_index, ciphertext_deleted, downloaded_by }))
}
