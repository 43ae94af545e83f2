//! Announcing a drop (`POST /v1/drops`) and reading its details
//! (`GET /v1/drops/{id}`).
//!
//! The rules live in [`crate::service::create`] and
//! [`crate::service::reads`]; these are the routes.

use axum::extract::Path;
use axum::extract::State;
use axum::extract::rejection::PathRejection;
use sealdrop_proto::api::{CreateDrop, CreatedDrop, DropDetails, ErrorBody};
use sealdrop_proto::ids::DropId;

use super::auth::{Authed, Json};
use super::error::ApiError;
use super::shared::drop_id;
use crate::hub::Hub;
use crate::service::Drops;

/// `POST /v1/drops`.
#[utoipa::path(
    post,
    path = "/v1/drops",
    tag = "drops",
    summary = "Announce a drop",
    description = "Names a new drop before its ciphertext is uploaded. The hub checks that the sender's party and \
                   every recipient are parties to the agreement, that it is in force, and that the expiry is within \
                   its limits. With an `idempotency_key`, a re-run replaces the party's uncommitted drop of that key, \
                   or returns its committed one (marked `committed`) and creates nothing.",
    request_body = CreateDrop,
    responses(
        (status = 200, description = "The drop, to be uploaded and committed", body = CreatedDrop),
        (status = 400, description = "`bad_request`: no recipient, a recipient twice, a malformed idempotency key or body", body = ErrorBody),
        (status = 422, description = "`unknown_party`, `unknown_agreement`, `not_in_agreement` (the sender or a recipient is not a party to the agreement), `agreement_not_in_force`, `bad_expiry`", body = ErrorBody),
    ),
    security(("sealdrop_request_signature" = [])),
)]
pub async fn create(
    State(hub): State<Hub>,
    Authed { caller, body: Json(req), .. }: Authed<Json<CreateDrop>>,
) -> Result<axum::Json<CreatedDrop>, ApiError> {
    Ok(axum::Json(Drops::new(&hub).create(&caller, req).await?))
}

/// `GET /v1/drops/{id}`: for the sender, and for recipients once committed.
#[utoipa::path(
    get,
    path = "/v1/drops/{id}",
    tag = "drops",
    summary = "A drop's details",
    description = "The sender's signed manifest and the drop's state, for the sending party, and for a recipient party \
                   once committed.",
    params(("id" = DropId, Path, description = "The drop")),
    responses(
        (status = 200, description = "The drop", body = DropDetails),
        (status = 400, description = "`bad_request`: not a drop id", body = ErrorBody),
        (status = 403, description = "`forbidden`: your party is neither the drop's sender nor one of its recipients", body = ErrorBody),
        (status = 404, description = "`not_found`: no such drop (or, for a recipient, not yet committed)", body = ErrorBody),
        (status = 410, description = "`gone`: recalled or expired", body = ErrorBody),
    ),
    security(("sealdrop_request_signature" = [])),
)]
pub async fn details(
    State(hub): State<Hub>,
    path: Result<Path<String>, PathRejection>,
    Authed { caller, .. }: Authed,
) -> Result<axum::Json<DropDetails>, ApiError> {
    let id = drop_id(path)?;
    Ok(axum::Json(Drops::new(&hub).details(&caller, id).await?))
}
