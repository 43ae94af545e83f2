//! Acknowledging a drop: a recipient's signed receipt that it received
//! and decrypted the drop intact.
//!
//! The receipt must be signed by the calling member and name exactly the
//! bytes the sender committed, so the sender can later prove delivery. Once
//! every recipient party has acknowledged, the drop is delivered and the hub
//! deletes the ciphertext: it keeps nothing it no longer needs.
//!
//! A receipt says the party has the data, so it is refused
//! (`not_downloaded`, 409) unless the log holds a download of the drop by
//! that party ([`sealdrop_log::policy::may_acknowledge`], decided in the
//! same transaction that logs the acknowledgement).
//!
//! The receipt goes into the transfer log verbatim (`drop_acknowledged`),
//! and the last one is followed, in the same transaction, by the hub's
//! signed statement that it deleted the ciphertext (`drop_deleted`).

use sealdrop_log::entry::{DeletionReason, HubStatement, LogEntry};
use sealdrop_proto::api::{Ack, Acked, DropState};
use sealdrop_proto::drop::Receipt;
use sealdrop_proto::error_code::ErrorCode;
use sealdrop_proto::ids::DropId;
use sealdrop_proto::note::open_doc;

use super::{Caller, DropError, Drops, entry_bytes, ts};
use crate::storage::meta::{AckOutcome, AckRecord, DropRecord};
use crate::transfer_log::{hub_entry, prove_appended};

fn bad_receipt(message: impl Into<String>) -> DropError {
    DropError::new(ErrorCode::BadReceipt, message)
}

/// Verifies the receipt and checks it against the drop and the caller.
pub fn check_receipt(caller: &Caller, rec: &DropRecord, note: &str) -> Result<Receipt, DropError> {
    let r = open_doc::<Receipt>(note, std::slice::from_ref(&caller.key))
        .map_err(|e| bad_receipt(format!("{e} (only the key of `{}` is accepted)", caller.key.name())))?
        .doc;
    if r.drop != rec.id {
        return Err(bad_receipt(format!("the receipt is for drop {} but this is drop {}", r.drop, rec.id)));
    }
    if r.recipient != caller.party {
        return Err(bad_receipt(format!(
            "the receipt names recipient `{}` but you act for `{}`",
            r.recipient, caller.party
        )));
    }
    if r.member != caller.member {
        return Err(bad_receipt(format!(
            "the receipt names member `{}` but it was sent by `{}`",
            r.member, caller.member
        )));
    }
    let Some(content) = &rec.content else {
        return Err(DropError::internal(format_args!("committed drop {} has no content digest", rec.id)));
    };
    if r.ciphertext_sha256 != content.sha256 || r.ciphertext_len != content.len {
        return Err(bad_receipt(format!(
            "the receipt states {} bytes with SHA-256 {} but the drop is {} bytes with SHA-256 {}: \
             download it again before acknowledging",
            r.ciphertext_len, r.ciphertext_sha256, content.len, content.sha256
        )));
    }
    Ok(r)
}

/// The refusal of a receipt from a party that never downloaded the drop:
/// "we have the data" cannot be true, and the sender must not be told so.
fn not_downloaded(id: &DropId, party: &sealdrop_proto::ids::PartyId) -> DropError {
    DropError::new(
        ErrorCode::NotDownloaded,
        format!(
            "the transfer log holds no download of drop {id} by your party `{party}`: fetch it first \
             (`sealdrop fetch {id}`), then acknowledge"
        ),
    )
}

impl Drops<'_> {
    /// A member of a recipient party acknowledges drop `id` with its
    /// signed receipt; the answer carries the log entry's proof.
    pub async fn ack(&self, caller: &Caller, id: DropId, req: Ack) -> Result<Acked, DropError> {
        let hub = self.hub;
        let rec = self.load(&id).await?;
        let Some(me) = rec.recipient(&caller.party) else {
            return Err(DropError::forbidden(format!(
                "only the recipient parties may acknowledge drop {id}, and your party `{}` is not one",
                caller.party
            )));
        };
        match rec.state {
            DropState::Open => return Err(DropError::not_found(format!("there is no drop {id} on this hub"))),
            DropState::Delivered => {
                return Err(DropError::gone(format!("drop {id} was already delivered to every recipient and deleted")));
            }
            DropState::Expired | DropState::Recalled => {
                return Err(DropError::gone(format!(
                    "drop {id} was {} before your party acknowledged it: the sender's records show it as not \
                     delivered to you",
                    rec.state.as_str()
                )));
            }
            DropState::Committed => {}
        }
        check_receipt(caller, &rec, &req.receipt)?;
        let already = || DropError::conflict(format!("your party already acknowledged drop {id}"));
        if me.acknowledged.is_some() {
            return Err(already());
        }
        let turn = hub.log_turn().await?;
        let now = turn.now();
        // The rule the offline audit applies to every acknowledgement in the
        // log: none at or after the drop's expiry, even before the sweeper
        // has deleted it (a receipt then would make the log fail its audit).
        if sealdrop_proto::policy::drop_expired(rec.expires, now.as_second()) {
            return Err(DropError::gone(format!(
                "drop {id} expired at {} before your party acknowledged it: the sender's records show it as not \
                 delivered to you",
                ts(rec.expires)?
            )));
        }
        let acknowledged = LogEntry::DropAcknowledged { acknowledged: now, receipt: req.receipt.clone() };
        let log_entry =
            entry_bytes(&acknowledged, |e| bad_receipt(format!("{e}: the receipt is too large for the transfer log")))?;
        let deleted = HubStatement::DropDeleted { time: now, drop: id.clone(), reason: DeletionReason::Delivered };
        let delivered_entry = entry_bytes(&hub_entry(hub.log_key(), &deleted), DropError::internal)?;
        let record = AckRecord {
            party: caller.party.clone(),
            member: caller.member.clone(),
            receipt: req.receipt,
            at: now.as_second(),
            log_entry,
            delivered_entry,
        };
        let outcome = hub.drops().acknowledge(&id, &record, Box::new(turn)).await?;
        let known_size = req.known_size;
        let proof = match outcome {
            AckOutcome::Recorded { log_index, .. } => Some(prove_appended(hub.log(), log_index, known_size).await?),
            _ => None,
        };
        let acknowledged = (outcome, proof);
        let (delivered, log_index, proof) = match acknowledged {
            (AckOutcome::Recorded { delivered, log_index }, proof) => (delivered, log_index, proof),
            (AckOutcome::AlreadyAcknowledged, _) => return Err(already()),
            (AckOutcome::NotDownloaded, _) => return Err(not_downloaded(&id, &caller.party)),
            (AckOutcome::NotCommitted, _) => return Err(DropError::gone(format!("drop {id} is no longer available"))),
        };
        crate::failpoint::hit(crate::failpoint::ACK_AFTER_DB);
        hub.metrics().drop_acknowledged();
        if delivered {
            hub.metrics().drop_deleted(DeletionReason::Delivered.into());
        }
        // The database says delivered before the file goes: if deleting fails,
        // start-up cleanup removes blobs of drops that are not committed.
        let ciphertext_deleted = delivered
            && match hub.blobs().delete_blob(&id).await {
                Ok(_) => true,
                Err(e) => {
                    tracing::warn!(error = %e, "could not delete the ciphertext of a delivered drop");
                    false
                }
            };
        tracing::info!(delivered, ciphertext_deleted, log_index, "acknowledged");
        Ok(Acked { ciphertext_deleted, log_index, proof })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::test_support::{caller_of, sample};
    use crate::storage::meta::{ContentDigest, RecipientRecord};
    use sealdrop_proto::ids::DropId;
    use sealdrop_proto::note::sign_doc;

    #[test]
    fn receipts_are_checked() {
        let (_, keys, dir) = sample();
        let rec = DropRecord {
            id: DropId::random(),
            sender: keys[0].party.clone(),
            sender_member: keys[0].member.clone(),
            agreement: "inner-fsm".into(),
            created: 1,
            expires: 2,
            state: DropState::Committed,
            upload: None,
            content: Some(ContentDigest { sha256: "ab".repeat(32), len: 7 }),
            committed: Some(1),
            manifest: Some("m".into()),
            deleted: None,
            commit_index: None,
            end_index: None,
            recipients: vec![RecipientRecord::waiting(keys[1].party.clone())],
        };
        let caller = caller_of(&dir, &keys[1]);
        let good = Receipt {
            drop: rec.id.clone(),
            recipient: keys[1].party.clone(),
            member: keys[1].member.clone(),
            ciphertext_sha256: "ab".repeat(32),
            ciphertext_len: 7,
            received: "2026-06-01T00:00:00Z".parse().unwrap(),
        };
        check_receipt(&caller, &rec, &sign_doc(&good, &keys[1].signing)).unwrap();
        let refused = |r: &Receipt, signer: &sealdrop_proto::keys::NoteSigningKey| {
            check_receipt(&caller, &rec, &sign_doc(r, signer)).unwrap_err().code()
        };
        assert_eq!(refused(&good, &keys[2].signing), ErrorCode::BadReceipt, "another party's key");
        for edit in [
            (|r: &mut Receipt| r.drop = DropId::random()) as fn(&mut Receipt),
            |r| r.recipient = "hackney".parse().unwrap(),
            |r| r.member = "other".parse().unwrap(),
            |r| r.ciphertext_len = 8,
            |r| r.ciphertext_sha256 = "cd".repeat(32),
        ] {
            let mut r = good.clone();
            edit(&mut r);
            assert_eq!(refused(&r, &keys[1].signing), ErrorCode::BadReceipt);
        }
    }
}
