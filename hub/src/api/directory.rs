//! The unauthenticated routes: the hub's identity and the signed directory
//! (the current one, and every earlier version by serial, so an auditor can
//! check each `directory_published` entry of the transfer log).
//!
//! Publishing a directory needs no request signature because the directory
//! carries its own: the hub accepts only a directory signed by the authority
//! key fixed at init and newer than the one it has, so anyone may relay a
//! coordinator's new directory but nobody can forge or roll one back.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use sealdrop_proto::api::{DirectoryAccepted, HubInfo, code};
use sealdrop_proto::directory::DirectoryError;
use sealdrop_proto::note::DocError;

use super::auth::body_rejection;
use super::error::ApiError;
use super::shared::meta;
use crate::hub::{Hub, PublishError};

/// The largest directory note accepted.
pub const DIRECTORY_BODY_LIMIT: usize = 4 * 1024 * 1024;

/// `GET /v1/info`.
pub async fn info(State(hub): State<Hub>) -> Json<HubInfo> {
    Json(HubInfo {
        origin: hub.origin().to_owned(),
        directory_serial: hub.directory().directory.serial,
        version: env!("CARGO_PKG_VERSION").to_owned(),
        log_key: hub.log_verifier().to_string(),
    })
}

/// `GET /v1/directory`: the signed note exactly as the authority produced it.
pub async fn get_directory(State(hub): State<Hub>) -> impl IntoResponse {
    ([(CONTENT_TYPE, "text/plain; charset=utf-8")], hub.directory().note.clone())
}

/// `GET /v1/directory/{serial}`: a directory version exactly as accepted.
pub async fn get_directory_version(
    State(hub): State<Hub>,
    path: Result<Path<String>, PathRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Path(raw) = path.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let serial: u64 =
        raw.parse().map_err(|_| ApiError::bad_request(format!("directory serial {raw:?} is not a number")))?;
    let stored = meta(&hub, move |m| m.directory(serial))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("this hub never accepted a directory with serial {serial}")))?;
    Ok(([(CONTENT_TYPE, "text/plain; charset=utf-8")], stored.note))
}

/// `POST /v1/directory`.
pub async fn post_directory(
    State(hub): State<Hub>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<DirectoryAccepted>, ApiError> {
    let body = body.map_err(|e| body_rejection(e, DIRECTORY_BODY_LIMIT))?;
    let note = String::from_utf8(body.to_vec())
        .map_err(|_| ApiError::new(code::DIRECTORY_INVALID, "the directory is not UTF-8 text"))?;
    let publisher = hub.clone();
    let accepted =
        tokio::task::spawn_blocking(move || publisher.publish_directory(&note)).await?.map_err(publish_error)?;
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
                    code::DIRECTORY_BAD_SIGNATURE
                }
                DirectoryError::Doc(_) | DirectoryError::Invalid(_) => code::DIRECTORY_INVALID,
                DirectoryError::Rollback { .. } => code::DIRECTORY_ROLLBACK,
            };
            let advice = match code {
                code::DIRECTORY_BAD_SIGNATURE => "publish the directory exactly as the coordinator signed it",
                code::DIRECTORY_ROLLBACK => "publish the coordinator's newest directory",
                _ => "ask the coordinator to fix and re-sign it",
            };
            ApiError::new(code, format!("{e}: {advice}"))
        }
    }
}
