//! `DELETE /v1/drops/{id}`: the sender withdraws a drop it never committed,
//! e.g. a `sealdrop send` the analyst interrupted with Ctrl-C. Without it
//! such a drop stayed open (and showed as waiting in `sealdrop status`)
//! until its expiry, days later.
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

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use sealdrop_proto::api::{DropState, ErrorBody, Withdrawn};
use sealdrop_proto::ids::DropId;

use super::auth::Authed;
use super::drops::discard_files;
use super::error::ApiError;
use super::shared::{drop_id, load_drop};
use crate::hub::Hub;
use crate::storage::meta::DropRecord;

/// Why drop `rec` cannot be withdrawn: it is no longer open.
fn not_open(rec: &DropRecord) -> ApiError {
    let id = &rec.id;
    match rec.state {
        DropState::Committed => ApiError::conflict(format!(
            "drop {id} is committed, so its recipients can see it: withdraw only removes a drop that was never \
             committed; take this one back with `sealdrop recall {id}`"
        )),
        DropState::Open => ApiError::conflict(format!("drop {id} is still open; try again")),
        DropState::Delivered => ApiError::gone(format!("drop {id} was already delivered")),
        DropState::Expired => ApiError::gone(format!("drop {id} already expired")),
        DropState::Recalled => ApiError::gone(format!("drop {id} was already recalled")),
    }
}

/// `DELETE /v1/drops/{id}`.
#[utoipa::path(
    delete,
    path = "/v1/drops/{id}",
    tag = "drops",
    summary = "Withdraw a drop that was never committed",
    description = "Any member of the sending party removes an open (uncommitted) drop and whatever was uploaded of \
                   it, e.g. when a send is interrupted. Nobody else ever saw it, so nothing is logged. A committed \
                   drop is refused: recall it instead.",
    params(("id" = DropId, Path, description = "The drop")),
    responses(
        (status = 200, description = "Withdrawn", body = Withdrawn),
        (status = 400, description = "`bad_request`: not a drop id", body = ErrorBody),
        (status = 403, description = "`forbidden`: your party is a recipient, not the sender", body = ErrorBody),
        (status = 404, description = "`not_found`: your party has not sent such a drop (or it was already withdrawn)", body = ErrorBody),
        (status = 409, description = "`conflict`: the drop is committed (recall it instead)", body = ErrorBody),
        (status = 410, description = "`gone`: already delivered, expired or recalled", body = ErrorBody),
    ),
    security(("sealdrop_request_signature" = [])),
)]
pub async fn withdraw(
    State(hub): State<Hub>,
    path: Result<Path<String>, PathRejection>,
    Authed { caller, .. }: Authed,
) -> Result<axum::Json<Withdrawn>, ApiError> {
    let id = drop_id(path)?;
    let rec = load_drop(&hub, &id).await?;
    if rec.sender != caller.party {
        if rec.recipient(&caller.party).is_some() {
            return Err(ApiError::forbidden(format!("only the sending party `{}` may withdraw drop {id}", rec.sender)));
        }
        return Err(ApiError::not_found(format!("your party `{}` has not sent a drop {id}", caller.party)));
    }
    if rec.state != DropState::Open {
        return Err(not_open(&rec));
    }
    if !hub.meta().forget_open_drop(&id).await? {
        // Committed (or withdrawn by a colleague) since it was read.
        return Err(match hub.meta().drop_record(&id).await? {
            Some(now) => not_open(&now),
            None => ApiError::not_found(format!("drop {id} was already withdrawn")),
        });
    }
    discard_files(&hub, &id).await;
    tracing::info!(drop = %id, "withdrew a drop its sender never committed");
    Ok(axum::Json(Withdrawn { id, withdrawn: hub.now() }))
}
