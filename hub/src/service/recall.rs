//! Recalling a drop: the sender takes it back before any recipient has
//! acknowledged it, so a misdirected or mistaken file can be stopped before
//! it is opened.
//!
//! Any member of the sending party may recall (a colleague can stop a
//! mistake while the sender is away). The hub deletes the ciphertext and
//! logs, in one transaction, the member's signed request (`drop_recalled`)
//! and its own statement that it deleted the drop (`drop_deleted`, reason
//! `recalled`). Once a recipient has acknowledged, a recall is refused with
//! a message naming who has the data: deleting the hub's copy would not
//! take it back from them. A recipient that downloaded without
//! acknowledging may hold a copy too; the answer lists those, so the sender
//! can ask them to delete it.

use sealdrop_log::entry::{DeletionReason, HubStatement, LogEntry, SignedRequest};
use sealdrop_proto::api::{DropState, Recalled};
use sealdrop_proto::error_code::ErrorCode;
use sealdrop_proto::ids::DropId;

use super::reads::recipient_status;
use super::{Caller, DropError, Drops, RequestEvidence, entry_bytes, ts};
use crate::storage::meta::{DropRecord, EndOutcome, EndRecord, RecipientRecord};
use crate::transfer_log::hub_entry;

/// The refusal of a recall because `acked` already have the data.
fn refused(rec: &DropRecord, acked: &[RecipientRecord]) -> DropError {
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
    DropError::new(
        ErrorCode::RecallRefused,
        format!(
            "drop {} can no longer be recalled: {who}, so they already have the data; ask them to delete it \
             under agreement `{}`",
            rec.id, rec.agreement
        ),
    )
}

impl Drops<'_> {
    /// Any member of the sending party recalls drop `id`, which nobody has
    /// acknowledged.
    pub async fn recall(
        &self,
        caller: &Caller,
        id: DropId,
        request: RequestEvidence<'_>,
    ) -> Result<Recalled, DropError> {
        let hub = self.hub;
        let _lock = hub.lock_drop(&id).await?;
        let rec = self.load(&id).await?;
        if rec.sender != caller.party {
            if rec.recipient(&caller.party).is_some() {
                return Err(DropError::forbidden(format!(
                    "only the sending party `{}` may recall drop {id}; to refuse it, do not fetch it",
                    rec.sender
                )));
            }
            return Err(DropError::not_found(format!("your party `{}` has not sent a drop {id}", caller.party)));
        }
        let deleted = || rec.deleted.map(ts).transpose().map(|t| t.map(|t| format!(" at {t}")).unwrap_or_default());
        match rec.state {
            DropState::Open => {
                // Only what is true of every open drop: a re-run of the send
                // replaces it only if it was created with the same idempotency
                // key, which a plain `sealdrop send` does not use.
                return Err(DropError::conflict(format!(
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
                return Err(DropError::gone(format!(
                    "drop {id} already expired{} and its ciphertext was deleted",
                    deleted()?
                )));
            }
            DropState::Recalled => {
                return Err(DropError::gone(format!("drop {id} was already recalled{}", deleted()?)));
            }
            DropState::Committed => {}
        }
        let acked: Vec<RecipientRecord> = rec.recipients.iter().filter(|r| r.acknowledged.is_some()).cloned().collect();
        if !acked.is_empty() {
            return Err(refused(&rec, &acked));
        }
        let turn = hub.log_turn().await?;
        let now = turn.now();
        let recalled = LogEntry::DropRecalled {
            drop: id.clone(),
            party: caller.party.clone(),
            recalled: now,
            request: SignedRequest::from_auth(request.auth, "POST", request.signed_path),
        };
        let recalled = entry_bytes(&recalled, |e| {
            DropError::bad_request(format!("{e}: this request cannot be logged; recall without a query string"))
        })?;
        let deletion = HubStatement::DropDeleted { time: now, drop: id.clone(), reason: DeletionReason::Recalled };
        let deletion = entry_bytes(&hub_entry(hub.log_key(), &deletion), DropError::internal)?;
        let end = EndRecord {
            state: DropState::Recalled,
            at: now.as_second(),
            log_entries: vec![recalled, deletion],
            unless_acknowledged: true,
        };
        let log_index = match hub.drops().end_drop(&id, &end, Box::new(turn)).await? {
            EndOutcome::Ended { log_index } => log_index,
            EndOutcome::Acknowledged(acked) => return Err(refused(&rec, &acked)),
            EndOutcome::NotCommitted(_) => return Err(DropError::gone(format!("drop {id} is no longer on the hub"))),
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
        let downloaded_by = rec
            .recipients
            .iter()
            .filter(|r| r.fetched.is_some())
            .map(recipient_status)
            .collect::<Result<Vec<_>, _>>()?;
        tracing::info!(log_index, ciphertext_deleted, downloaded = downloaded_by.len(), "recalled");
        Ok(Recalled { id, recalled: now, log_index, ciphertext_deleted, downloaded_by })
    }
}
