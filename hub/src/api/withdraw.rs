//! `DELETE /v1/drops/{id}`: the sender withdraws a drop it never committed,
//! e.g. a `sealdrop send` the analyst interrupted with Ctrl-C. Without it
//! such a drop stayed open (and showed as waiting in `sealdrop status`)
//! until its expiry, days later.
//!
//! The rules live in [`crate::service::withdraw`]; this is the route.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use sealdrop_proto::api::{ErrorBody, Withdrawn};
use sealdrop_proto::ids::DropId;

use super::auth::Authed;
use super::error::ApiError;
use super::shared::drop_id;
use crate::hub::Hub;
use crate::service::Drops;

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
    Ok(axum::Json(Drops::new(&hub).withdraw(&caller, id).await?))
}
