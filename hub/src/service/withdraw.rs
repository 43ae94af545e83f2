//! Withdrawing a drop its sender never committed, e.g. a `sealdrop send`
//! the analyst interrupted with Ctrl-C. Without it such a drop stayed open
//! (and showed as waiting in `sealdrop status`) until its expiry, days later.
//!
//! No recipient ever saw an open drop and the transfer log never named it,
//! so nothing is logged: the hub forgets its rows and deletes what was
//! uploaded, as the sweeper does at an open drop's expiry. A committed drop
//! is refused (`conflict`): taking that back is a recall, which is logged.
//!
//! The drop's lock is not taken, on purpose: an interrupted sender's upload
//! may still be streaming and holds it. The rows go in one transaction that
//! only deletes an open drop, so a commit racing this either wins (and the
//! withdrawal is refused) or finds the drop gone; an upload still streaming
//! fails and removes what it wrote itself.

use sealdrop_proto::api::{DropState, Withdrawn};
use sealdrop_proto::ids::DropId;

use super::{Caller, DropError, Drops};
use crate::storage::meta::DropRecord;

/// Why drop `rec` cannot be withdrawn: it is no longer open.
fn not_open(rec: &DropRecord) -> DropError {
    let id = &rec.id;
    match rec.state {
        DropState::Committed => DropError::conflict(format!(
            "drop {id} is committed, so its recipients can see it: withdraw only removes a drop that was never \
             committed; take this one back with `sealdrop recall {id}`"
        )),
        DropState::Open => DropError::conflict(format!("drop {id} is still open; try again")),
        DropState::Delivered => DropError::gone(format!("drop {id} was already delivered")),
        DropState::Expired => DropError::gone(format!("drop {id} already expired")),
        DropState::Recalled => DropError::gone(format!("drop {id} was already recalled")),
    }
}

impl Drops<'_> {
    /// Any member of the sending party removes open drop `id` and whatever
    /// was uploaded of it.
    pub async fn withdraw(&self, caller: &Caller, id: DropId) -> Result<Withdrawn, DropError> {
        let rec = self.load(&id).await?;
        if rec.sender != caller.party {
            if rec.recipient(&caller.party).is_some() {
                return Err(DropError::forbidden(format!(
                    "only the sending party `{}` may withdraw drop {id}",
                    rec.sender
                )));
            }
            return Err(DropError::not_found(format!("your party `{}` has not sent a drop {id}", caller.party)));
        }
        if rec.state != DropState::Open {
            return Err(not_open(&rec));
        }
        if !self.hub.drops().forget_open_drop(&id).await? {
            // Committed (or withdrawn by a colleague) since it was read.
            return Err(match self.hub.drops().drop_record(&id).await? {
                Some(now) => not_open(&now),
                None => DropError::not_found(format!("drop {id} was already withdrawn")),
            });
        }
        self.discard_files(&id).await;
        tracing::info!(drop = %id, "withdrew a drop its sender never committed");
        Ok(Withdrawn { id, withdrawn: self.hub.now() })
    }
}
