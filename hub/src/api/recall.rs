//! `POST /v1/drops/{id}/recall`: the sender takes a drop back before any
//! recipient has acknowledged it, so a misdirected or mistaken file can be
//! stopped before it is opened.
//!
//! The rules live in [`crate::service::recall`]; this is the route.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use sealdrop_proto::api::{ErrorBody, Recall, Recalled};
use sealdrop_proto::ids::DropId;

use super::auth::{Authed, Json};
use super::error::ApiError;
use super::shared::drop_id;
use crate::hub::Hub;
use crate::service::{Drops, RequestEvidence};

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
    let request = RequestEvidence { auth: &auth, signed_path: &signed_path };
    Ok(axum::Json(Drops::new(&hub).recall(&caller, id, request).await?))
}
