//! `PUT /v1/drops/{id}`: a small drop created, uploaded and committed in
//! one signed request.
//!
//! The rules live in [`crate::service::put`]; this is the route, which
//! turns the HTTP body into chunks and reads the query.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Uri, header::CONTENT_TYPE};
use futures_util::StreamExt as _;
use sealdrop_proto::api::{Committed, ErrorBody, PUT_DROP_CONTENT_TYPE};
use sealdrop_proto::ids::DropId;
use serde::Deserialize;

use super::auth::AuthedStream;
use super::error::ApiError;
use super::idle_body::is_body_idle;
use super::shared::drop_id;
use crate::hub::Hub;
use crate::service::Drops;
use crate::service::put::PutDropRequest;
use crate::service::upload::BodyBreak;

/// The query string of `PUT /v1/drops/{id}`: in the query, not a header,
/// so the request signature covers it.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct PutDropQuery {
    /// The size of the newest log checkpoint the sender verified before: the
    /// answer's proof then carries the consistency proof from it to the new
    /// checkpoint, as a commit's does.
    #[param(value_type = Option<u64>, minimum = 0)]
    known_size: Option<String>,
    /// Makes a re-run safe, as a create's `idempotency_key` (64 lowercase
    /// hex digits): the hub keeps one drop per sender party and key, and
    /// refuses another once that one is committed (`drop_exists`).
    idempotency_key: Option<String>,
}

/// `PUT /v1/drops/{id}`.
#[utoipa::path(
    put,
    path = "/v1/drops/{id}",
    tag = "drops",
    summary = "Send a small drop in one request",
    description = "Creates, uploads and commits a drop whose id the sender chose (`d-` and 26 base32 characters of \
                   128 random bits), under exactly the checks of create, upload and commit: the body is the signed \
                   manifest's length (4 bytes, big-endian), the manifest, then the age ciphertext. The manifest's \
                   `created` is the sender's clock, within 300 s of the hub's; its `expires` must be within the \
                   agreement's limits counted from `created` (refused, not trimmed). Ciphertexts larger than the \
                   hub's `max_single_request_bytes` are refused before they are read: send them in three requests. \
                   Sent again with the byte-equal manifest, the answer is the earlier commit, marked `already`.",
    params(
        ("id" = DropId, Path, description = "The drop, chosen by the sender"),
        PutDropQuery,
    ),
    request_body(content = inline(super::openapi::Binary), content_type = "application/vnd.sealdrop.drop-v1", description = "u32 big-endian manifest length, the signed manifest, the age ciphertext"),
    responses(
        (status = 200, description = "Committed, with its transfer-log proof (`already`: by an earlier request)", body = Committed),
        (status = 400, description = "`bad_request`: not a drop id, another content type, a malformed body or query", body = ErrorBody),
        (status = 409, description = "`drop_exists`: the id holds a drop with another manifest; `conflict`: the id holds a drop being sent in three requests", body = ErrorBody),
        (status = 413, description = "`too_large_for_one_request`: the ciphertext is larger than `max_single_request_bytes`", body = ErrorBody),
        (status = 422, description = "`bad_manifest`, `hash_mismatch`, `header_mismatch`, `not_post_quantum`, `bad_expiry`, `unknown_party`, `unknown_agreement`, `agreement_not_in_force`, `not_in_agreement`", body = ErrorBody),
        (status = 429, description = "`quota_open_uploads`: your party has `max_open_uploads_per_party` uploads open already", body = ErrorBody),
        (status = 507, description = "`insufficient_storage`; `quota_held_bytes`", body = ErrorBody),
    ),
    security(("sealdrop_request_signature" = [])),
)]
pub async fn put_drop(
    State(hub): State<Hub>,
    path: Result<Path<String>, PathRejection>,
    uri: Uri,
    headers: HeaderMap,
    request: AuthedStream,
) -> Result<axum::Json<Committed>, ApiError> {
    let id = drop_id(path)?;
    let Query(q) = Query::<PutDropQuery>::try_from_uri(&uri).map_err(|e| ApiError::bad_request(e.body_text()))?;
    let known_size = q
        .known_size
        .map(|text| {
            text.trim().parse::<u64>().map_err(|_| {
                ApiError::bad_request(format!("known_size={text:?} is not a whole number: give a log tree size"))
            })
        })
        .transpose()?;
    let content_type = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if content_type != PUT_DROP_CONTENT_TYPE {
        return Err(ApiError::bad_request(format!(
            "the body's content type is {content_type:?}, not {PUT_DROP_CONTENT_TYPE:?}"
        )));
    }
    let body = request.body.into_data_stream().map(|chunk| {
        chunk.map_err(|e| match is_body_idle(&e) {
            Some(idle) => BodyBreak::Idle(idle.0),
            None => BodyBreak::Broken(e.to_string()),
        })
    });
    let req = PutDropRequest {
        known_size,
        idempotency_key: q.idempotency_key,
        content_length: request.content_length,
        signed_sha256: request.signed_sha256,
        body,
    };
    Ok(axum::Json(Drops::new(&hub).put_drop(&request.caller, id, req).await?))
}
