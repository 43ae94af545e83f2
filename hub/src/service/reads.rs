//! What the parties of a drop may read about it: its details (the sender's
//! manifest and state) and the sender's view of each recipient's progress.
//! Each fact comes with the index of the log entry that records it (commit,
//! first download, acknowledgement, deletion): the client believes only
//! what it proves from the log.

use sealdrop_proto::api::{DropDetails, DropState, RecipientStatus, Sent, SentDrop};
use sealdrop_proto::ids::DropId;

use super::{Caller, DropError, Drops, ts};
use crate::storage::meta::{RecipientRecord, SentRecord};

/// A recipient's progress as the sender sees it.
pub(super) fn recipient_status(r: &RecipientRecord) -> Result<RecipientStatus, DropError> {
    Ok(RecipientStatus {
        party: r.party.clone(),
        fetched: r.fetched.map(ts).transpose()?,
        acknowledged: r.acknowledged.map(ts).transpose()?,
        acknowledged_by: r.ack_member.as_ref().map(ToString::to_string),
        fetched_log_index: r.fetch_index,
        acknowledged_log_index: r.ack_index,
    })
}

fn sent_drop(SentRecord { drop: d, idempotency_key }: SentRecord) -> Result<SentDrop, DropError> {
    let recipients = d.recipients.iter().map(recipient_status).collect::<Result<Vec<_>, _>>()?;
    Ok(SentDrop {
        id: d.id,
        state: d.state,
        agreement: d.agreement,
        size: d.content.map_or(0, |c| c.len),
        created: ts(d.created)?,
        committed: d.committed.map(ts).transpose()?,
        expires: ts(d.expires)?,
        recipients,
        idempotency_key,
        deleted: d.deleted.map(ts).transpose()?,
        committed_log_index: d.commit_index,
        deleted_log_index: d.end_index,
    })
}

impl Drops<'_> {
    /// The caller's party's sent drops, newest first, or only drop `id`
    /// (`not_found` if the party did not send it).
    pub async fn sent(&self, caller: &Caller, id: Option<DropId>) -> Result<Sent, DropError> {
        let drops = self.hub.drops().sent(&caller.party, id.as_ref()).await?;
        if let Some(id) = id
            && drops.is_empty()
        {
            return Err(DropError::not_found(format!("your party `{}` has not sent a drop {id}", caller.party)));
        }
        Ok(Sent { drops: drops.into_iter().map(sent_drop).collect::<Result<_, _>>()? })
    }

    /// Drop `id`'s manifest and state, for the sending party, and for a
    /// recipient party once committed.
    pub async fn details(&self, caller: &Caller, id: DropId) -> Result<DropDetails, DropError> {
        let rec = self.load(&id).await?;
        if rec.sender != caller.party {
            if rec.recipient(&caller.party).is_none() {
                return Err(DropError::forbidden(format!(
                    "drop {id} was neither sent by nor addressed to your party `{}`",
                    caller.party
                )));
            }
            match rec.state {
                // Not committed: recipients must not learn of it yet.
                DropState::Open => return Err(DropError::not_found(format!("there is no drop {id} on this hub"))),
                DropState::Recalled => return Err(DropError::gone(format!("drop {id} was recalled by its sender"))),
                DropState::Expired => {
                    return Err(DropError::gone(format!("drop {id} expired and its ciphertext was deleted")));
                }
                DropState::Committed | DropState::Delivered => {}
            }
        }
        let committed = rec.committed.map(ts).transpose()?;
        Ok(DropDetails {
            id,
            manifest: rec.manifest.unwrap_or_default(),
            state: rec.state,
            committed,
            committed_log_index: rec.commit_index,
        })
    }
}
