//! The hub's identity (public) and the signed directory (the current one,
//! and every earlier version by serial, so an auditor can check each
//! `directory_published` entry of the transfer log). The directory lists
//! every party, member and agreement, so it is read like the transfer log:
//! by members and witnesses, or by anyone on a hub whose log is public (see
//! [`super::log_access`]).
//!
//! Publishing a directory needs no request signature because the directory
//! carries its own: the hub accepts only a directory signed by the authority
//! key fixed at init and newer than the one it has, so anyone may relay a
//! coordinator's new directory but nobody can forge or roll one back.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Extension, Path, State};
use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use sealdrop_proto::api::{DirectoryAccepted, ErrorBody, HubInfo};
use sealdrop_proto::directory::DirectoryError;
use sealdrop_proto::error_code::ErrorCode;
use sealdrop_proto::note::DocError;

use super::error::ApiError;
use super::log_access::LogReader;
use super::unauth_body::Budget;
use crate::client_addr::ClientAddr;
use crate::hub::{Hub, PublishError};

/// The largest directory note accepted: twice what 400 authorities with
/// five members each, two revoked keys each and a hundred agreements take
/// (about 1 MiB; `directory_body_limit_fits_a_large_directory_twice`). It is
/// read before anything is authenticated, so it is kept small (see
/// [`super::unauth_body`]).
pub const DIRECTORY_BODY_LIMIT: usize = 2 * 1024 * 1024;

/// `GET /v1/info`.
#[utoipa::path(
    get,
    path = "/v1/info",
    tag = "hub",
    summary = "The hub's identity",
    description = "Its origin (also its transfer log's origin), the serial of the directory it enforces, its version \
                   and its transfer log's verifier key.",
    responses((status = 200, description = "The hub's identity", body = HubInfo)),
)]
pub async fn info(State(hub): State<Hub>) -> Json<HubInfo> {
    Json(HubInfo {
        origin: hub.origin().to_owned(),
        directory_serial: hub.directory().directory.serial,
        version: env!("CARGO_PKG_VERSION").to_owned(),
        log_key: hub.log_verifier().to_string(),
    })
}

/// `GET /v1/directory`: the signed note exactly as the authority produced it.
#[utoipa::path(
    get,
    path = "/v1/directory",
    tag = "directory",
    summary = "The directory in force",
    description = "The coordinator-signed directory (a C2SP signed note of type `sealdrop/directory/v1`) exactly as \
                   signed. Clients verify it against the coordinator's key they hold; the hub is only a relay.",
    responses((status = 200, description = "The signed directory note", content_type = "text/plain", body = String)),
    security(("sealdrop_request_signature" = [])),
    extensions(("x-sealdrop-readable-by" = json!("members and witnesses"))),
)]
pub async fn get_directory(_reader: LogReader, State(hub): State<Hub>) -> impl IntoResponse {
    ([(CONTENT_TYPE, "text/plain; charset=utf-8")], hub.directory().note.clone())
}

/// `GET /v1/directory/{serial}`: a directory version exactly as accepted.
#[utoipa::path(
    get,
    path = "/v1/directory/{serial}",
    tag = "directory",
    summary = "An earlier directory version",
    description = "A directory version the hub accepted, exactly as signed, so an auditor can check each \
                   `directory_published` entry of the transfer log.",
    params(("serial" = u64, Path, description = "The directory's serial number")),
    responses(
        (status = 200, description = "The signed directory note", content_type = "text/plain", body = String),
        (status = 400, description = "`bad_request`: the serial is not a number", body = ErrorBody),
        (status = 404, description = "`not_found`: the hub never accepted a directory with this serial", body = ErrorBody),
    ),
    security(("sealdrop_request_signature" = [])),
    extensions(("x-sealdrop-readable-by" = json!("members and witnesses"))),
)]
pub async fn get_directory_version(
    _reader: LogReader,
    State(hub): State<Hub>,
    path: Result<Path<String>, PathRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Path(raw) = path.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let serial: u64 =
        raw.parse().map_err(|_| ApiError::bad_request(format!("directory serial {raw:?} is not a number")))?;
    let stored = hub
        .directories()
        .directory(serial)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("this hub never accepted a directory with serial {serial}")))?;
    Ok(([(CONTENT_TYPE, "text/plain; charset=utf-8")], stored.note))
}

/// `POST /v1/directory`.
#[utoipa::path(
    post,
    path = "/v1/directory",
    tag = "directory",
    summary = "Publish a new directory version",
    description = "Needs no request signature: the directory carries the coordinator's own, and the hub accepts only \
                   a directory signed by the authority key fixed at init, with a higher serial than the one in force \
                   and keeping every earlier revocation. Anyone may relay the coordinator's new directory; nobody can \
                   forge or roll one back.",
    request_body(content = String, content_type = "text/plain", description = "The signed directory note, exactly as `sealdrop directory sign` wrote it"),
    responses(
        (status = 200, description = "Accepted: now in force", body = DirectoryAccepted),
        (status = 400, description = "`bad_request`: the Content-Length is not a number", body = ErrorBody),
        (status = 408, description = "`request_timeout`: the note took longer than 30 s to arrive", body = ErrorBody),
        (status = 409, description = "`directory_rollback`: the serial is not higher than the one in force", body = ErrorBody),
        (status = 411, description = "`length_required`: no Content-Length", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: the note is larger than 2 MiB", body = ErrorBody),
        (status = 422, description = "`directory_bad_signature`: not signed by the hub's authority; `directory_invalid`: not a valid directory (or it drops a revocation)", body = ErrorBody),
        (status = 503, description = "`hub_busy`: the hub holds as many unauthenticated bodies as it allows; retry after `Retry-After` seconds", body = ErrorBody),
    ),
    extensions(("x-sealdrop-authenticated-by" = json!("the coordinator's signature on the body"))),
)]
pub async fn post_directory(
    State(hub): State<Hub>,
    Extension(budget): Extension<Arc<Budget>>,
    client: Option<Extension<ClientAddr>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<DirectoryAccepted>, ApiError> {
    // Unauthenticated: read only within the hub's budget (held until done).
    let (body, _held) =
        super::unauth_body::read(&budget, &headers, client.map(|c| c.0), body, DIRECTORY_BODY_LIMIT).await?;
    let note = String::from_utf8(body)
        .map_err(|_| ApiError::new(ErrorCode::DirectoryInvalid, "the directory is not UTF-8 text"))?;
    let accepted = hub.publish_directory(&note).await.map_err(publish_error)?;
    tracing::info!(serial = accepted.directory.serial, sha256 = %accepted.sha256_hex(), "accepted a new directory");
    // The new version may end an agreement: delete what it stops now rather
    // than at the next sweep. A failure here is the sweeper's to retry.
    if let Err(e) = hub.sweep().await {
        tracing::error!(error = %e, "the sweep after a new directory failed; the sweeper will retry");
    }
    Ok(Json(DirectoryAccepted { serial: accepted.directory.serial }))
}

fn publish_error(e: PublishError) -> ApiError {
    match e {
        PublishError::Meta(e) => e.into(),
        PublishError::LogEntry(e) => ApiError::internal(format_args!("directory log entry: {e}")),
        PublishError::Directory(e) => {
            let code = match &e {
                DirectoryError::Doc(DocError::BadSignature { .. } | DocError::NoTrustedSignature { .. }) => {
                    ErrorCode::DirectoryBadSignature
                }
                DirectoryError::Doc(_) | DirectoryError::Invalid(_) => ErrorCode::DirectoryInvalid,
                DirectoryError::Rollback { .. } => ErrorCode::DirectoryRollback,
            };
            let advice = match code {
                ErrorCode::DirectoryBadSignature => "publish the directory exactly as the coordinator signed it",
                ErrorCode::DirectoryRollback => "publish the coordinator's newest directory",
                _ => "ask the coordinator to fix and re-sign it",
            };
            ApiError::new(code, format!("{e}: {advice}"))
        }
    }
}
