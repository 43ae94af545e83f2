//! `PUT /v1/drops/{id}/content`: the sender streams the ciphertext to disk.
//!
//! The rules (quotas, resuming, hashing) live in [`crate::service::upload`];
//! this is the route, which turns the HTTP body into chunks and says why one
//! stopped early.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use futures_util::StreamExt as _;
use sealdrop_proto::api::{ErrorBody, UPLOAD_OFFSET_HEADER, UploadProgress, Uploaded};
use sealdrop_proto::ids::DropId;

use super::auth::{Authed, AuthedStream};
use super::error::ApiError;
use super::idle_body::is_body_idle;
use super::shared::drop_id;
use crate::hub::Hub;
use crate::service::Drops;
use crate::service::upload::{BodyBreak, UploadRequest};

/// `PUT /v1/drops/{id}/content`.
#[utoipa::path(
    put,
    path = "/v1/drops/{id}/content",
    tag = "drops",
    summary = "Upload a drop's ciphertext",
    description = "The sender streams the age ciphertext of its open drop; the hub hashes it as it arrives and answers \
                   what it received. The body may be signed as `UNSIGNED` (the manifest binds its hash at commit). \
                   With `sealdrop-upload-offset`, continues an upload cut off at that byte.",
    params(
        ("id" = DropId, Path, description = "The drop"),
        ("sealdrop-upload-offset" = Option<u64>, Header, description = "Continue from this byte: exactly what `GET /v1/drops/{id}/upload` reports"),
    ),
    request_body(content = inline(super::openapi::Binary), content_type = "application/octet-stream", description = "The age ciphertext"),
    responses(
        (status = 200, description = "What the hub received", body = Uploaded),
        (status = 400, description = "`bad_request`: not a drop id, a malformed offset or Content-Length", body = ErrorBody),
        (status = 403, description = "`forbidden`: your party is not the drop's sender", body = ErrorBody),
        (status = 404, description = "`not_found`: no such drop", body = ErrorBody),
        (status = 409, description = "`conflict`: already committed; `upload_offset_mismatch`: the hub holds another number of bytes", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: larger than the hub's `max_upload_bytes`", body = ErrorBody),
        (status = 429, description = "`quota_open_uploads`: your party has `max_open_uploads_per_party` uploads open already", body = ErrorBody),
        (status = 507, description = "`insufficient_storage`: the hub's disk is full; `quota_held_bytes`: your party would hold more than `max_held_bytes_per_party`", body = ErrorBody),
    ),
    security(("sealdrop_request_signature" = [])),
)]
pub async fn put_content(
    State(hub): State<Hub>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    upload: AuthedStream,
) -> Result<axum::Json<Uploaded>, ApiError> {
    let id = drop_id(path)?;
    let offset = upload_offset(&headers)?;
    let body = upload.body.into_data_stream().map(|chunk| {
        chunk.map_err(|e| match is_body_idle(&e) {
            Some(idle) => BodyBreak::Idle(idle.0),
            None => BodyBreak::Broken(e.to_string()),
        })
    });
    let request =
        UploadRequest { offset, content_length: upload.content_length, signed_sha256: upload.signed_sha256, body };
    Ok(axum::Json(Drops::new(&hub).upload(&upload.caller, id, request).await?))
}

/// `GET /v1/drops/{id}/upload`: how much of an open drop's upload the hub
/// holds, for a sender continuing one that was cut off.
#[utoipa::path(
    get,
    path = "/v1/drops/{id}/upload",
    tag = "drops",
    summary = "How much of an upload the hub holds",
    description = "For the sender of an open drop whose upload was cut off: continue from `received`.",
    params(("id" = DropId, Path, description = "The drop")),
    responses(
        (status = 200, description = "The bytes held", body = UploadProgress),
        (status = 400, description = "`bad_request`: not a drop id", body = ErrorBody),
        (status = 403, description = "`forbidden`: your party is not the drop's sender", body = ErrorBody),
        (status = 404, description = "`not_found`: no such drop", body = ErrorBody),
        (status = 409, description = "`conflict`: the drop is no longer open", body = ErrorBody),
    ),
    security(("sealdrop_request_signature" = [])),
)]
pub async fn upload_progress(
    State(hub): State<Hub>,
    path: Result<Path<String>, PathRejection>,
    Authed { caller, .. }: Authed,
) -> Result<axum::Json<UploadProgress>, ApiError> {
    let id = drop_id(path)?;
    Ok(axum::Json(Drops::new(&hub).upload_progress(&caller, id).await?))
}

/// The `sealdrop-upload-offset` header: 0 when absent.
fn upload_offset(headers: &HeaderMap) -> Result<u64, ApiError> {
    let Some(value) = headers.get(UPLOAD_OFFSET_HEADER) else {
        return Ok(0);
    };
    value.to_str().ok().and_then(|v| v.trim().parse::<u64>().ok()).ok_or_else(|| {
        ApiError::bad_request(format!(
            "the `{UPLOAD_OFFSET_HEADER}` header must be a number of bytes, as `GET /v1/drops/{{id}}/upload` reports"
        ))
    })
}
