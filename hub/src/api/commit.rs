//! `POST /v1/drops/{id}/commit`: the sender's signed manifest makes the
//! uploaded ciphertext visible to the recipients.
//!
//! The rules live in [`crate::service::commit`]; this is the route.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use sealdrop_proto::api::{Commit, Committed, ErrorBody};
use sealdrop_proto::ids::DropId;

use super::auth::{Authed, Json};
use super::error::ApiError;
use super::shared::drop_id;
use crate::hub::Hub;
use crate::service::Drops;

/// `POST /v1/drops/{id}/commit`.
#[utoipa::path(
    post,
    path = "/v1/drops/{id}/commit",
    tag = "drops",
    summary = "Commit a drop with its signed manifest",
    description = "Makes the uploaded ciphertext visible to the recipients once the manifest, signed by the calling \
                   member, repeats the drop's facts, names exactly the bytes received, and is encrypted only to current \
                   member keys of the recipient parties, with exactly one age recipient stanza per key it lists. The answer carries the `drop_committed` entry's log proof.",
    params(("id" = DropId, Path, description = "The drop")),
    request_body = Commit,
    responses(
        (status = 200, description = "Committed, with its transfer-log proof", body = Committed),
        (status = 400, description = "`bad_request`: not a drop id, or a malformed body", body = ErrorBody),
        (status = 403, description = "`forbidden`: your party is not the drop's sender", body = ErrorBody),
        (status = 404, description = "`not_found`: no such drop", body = ErrorBody),
        (status = 409, description = "`conflict`: already committed, or no content uploaded", body = ErrorBody),
        (status = 422, description = "`bad_manifest`, `hash_mismatch`, `header_mismatch`, `bad_expiry`, `agreement_not_in_force`, `not_in_agreement`", body = ErrorBody),
    ),
    security(("sealdrop_request_signature" = [])),
)]
pub async fn commit(
    State(hub): State<Hub>,
    path: Result<Path<String>, PathRejection>,
    Authed { caller, body: Json(req), .. }: Authed<Json<Commit>>,
) -> Result<axum::Json<Committed>, ApiError> {
    let id = drop_id(path)?;
    Ok(axum::Json(Drops::new(&hub).commit(&caller, id, req).await?))
}
