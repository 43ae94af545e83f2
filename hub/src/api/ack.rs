//! `POST /v1/drops/{id}/ack`: a recipient's signed receipt that it received
//! and decrypted the drop intact.
//!
//! The rules live in [`crate::service::ack`]; this is the route.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use sealdrop_proto::api::{Ack, Acked, ErrorBody};
use sealdrop_proto::ids::DropId;

use super::auth::{Authed, Json};
use super::error::ApiError;
use super::shared::drop_id;
use crate::hub::Hub;
use crate::service::Drops;

/// `POST /v1/drops/{id}/ack`.
#[utoipa::path(
    post,
    path = "/v1/drops/{id}/ack",
    tag = "drops",
    summary = "Acknowledge a drop with a signed receipt",
    description = "A recipient's receipt, signed by the calling member, that it received and decrypted exactly the \
                   committed bytes. After the last recipient party's, the hub deletes the ciphertext. The answer \
                   carries the `drop_acknowledged` entry's log proof.",
    params(("id" = DropId, Path, description = "The drop")),
    request_body = Ack,
    responses(
        (status = 200, description = "Acknowledged, with its transfer-log proof", body = Acked),
        (status = 400, description = "`bad_request`: not a drop id, or a malformed body", body = ErrorBody),
        (status = 403, description = "`forbidden`: your party is not a recipient of the drop", body = ErrorBody),
        (status = 404, description = "`not_found`: no such drop, or not yet committed", body = ErrorBody),
        (status = 409, description = "`conflict`: your party already acknowledged it; `not_downloaded`: the log holds no download of it by your party", body = ErrorBody),
        (status = 410, description = "`gone`: delivered, expired or recalled", body = ErrorBody),
        (status = 422, description = "`bad_receipt`: not signed by you, or not for these bytes", body = ErrorBody),
    ),
    security(("sealdrop_request_signature" = [])),
)]
pub async fn ack(
    State(hub): State<Hub>,
    path: Result<Path<String>, PathRejection>,
    Authed { caller, body: Json(req), .. }: Authed<Json<Ack>>,
) -> Result<axum::Json<Acked>, ApiError> {
    let id = drop_id(path)?;
    Ok(axum::Json(Drops::new(&hub).ack(&caller, id, req).await?))
}
