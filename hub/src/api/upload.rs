//! `PUT /v1/drops/{id}/content`: the sender streams the ciphertext to disk.
//!
//! The body is never buffered: each chunk is hashed and written as it
//! arrives, so a 64 GiB upload needs no more memory than a small one. The
//! hub records what it received (SHA-256 and length); the sender's signed
//! manifest must later state the same at commit.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use futures_util::StreamExt as _;
use sealdrop_proto::api::{DropState, Uploaded, code};
use sealdrop_proto::ids::DropId;
use sha2::{Digest as _, Sha256};

use super::auth::AuthedStream;
use super::error::ApiError;
use super::shared::{drop_id, load_drop, meta};
use crate::hub::Hub;
use crate::storage::UploadSink;
use crate::storage::meta::ContentDigest;

fn too_large(max: u64) -> ApiError {
    ApiError::new(code::PAYLOAD_TOO_LARGE, format!("the content is larger than this hub accepts ({max} bytes)"))
}

/// `PUT /v1/drops/{id}/content`.
pub async fn put_content(
    State(hub): State<Hub>,
    path: Result<Path<String>, PathRejection>,
    upload: AuthedStream,
) -> Result<axum::Json<Uploaded>, ApiError> {
    let id = drop_id(path)?;
    let max = hub.config().max_upload_bytes;
    // Held until the upload is recorded, so a commit never promotes a file
    // that is still being written.
    let _lock = hub.locks().lock(&id).await;
    let rec = load_drop(&hub, &id).await?;
    if rec.sender != upload.caller.party {
        return Err(ApiError::forbidden(format!("only the sending party `{}` may upload drop {id}", rec.sender)));
    }
    if rec.state != DropState::Open {
        return Err(ApiError::conflict(format!("drop {id} is already committed: create a new drop to send again")));
    }
    if upload.content_length.is_some_and(|len| len > max) {
        return Err(too_large(max));
    }
    // Forget the previous upload before overwriting its file, so the
    // database never vouches for bytes that are not on disk.
    let key = id.clone();
    if !meta(&hub, move |m| m.set_upload(&key, None)).await? {
        return Err(ApiError::conflict(format!("drop {id} was committed meanwhile")));
    }
    let received = match receive(&hub, &id, upload.body, max).await {
        Ok(d) => d,
        Err(e) => {
            discard(&hub, &id).await;
            return Err(e);
        }
    };
    if upload.signed_sha256.is_some_and(|signed| signed != received.sha256) {
        discard(&hub, &id).await;
        return Err(ApiError::new(
            code::BAD_SIGNATURE,
            "the uploaded body's SHA-256 does not match the signed `sealdrop-content-sha256` header",
        ));
    }
    let (key, digest) = (id.clone(), received.clone());
    if !meta(&hub, move |m| m.set_upload(&key, Some(&digest))).await? {
        discard(&hub, &id).await;
        return Err(ApiError::conflict(format!("drop {id} was committed meanwhile")));
    }
    tracing::info!(len = received.len, "received content");
    Ok(axum::Json(Uploaded { sha256: received.sha256, len: received.len }))
}

/// Streams the body into the drop's upload, hashing as it goes.
async fn receive(hub: &Hub, id: &DropId, body: axum::body::Body, max: u64) -> Result<ContentDigest, ApiError> {
    let mut sink: Box<dyn UploadSink> = hub.blobs().begin_upload(id).await?;
    let mut hasher = Sha256::new();
    let mut len: u64 = 0;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad_request(format!("the upload was interrupted: {e}")))?;
        len = len.saturating_add(chunk.len() as u64);
        if len > max {
            return Err(too_large(max));
        }
        hasher.update(&chunk);
        sink.write(&chunk).await?;
    }
    sink.finish().await?;
    Ok(ContentDigest { sha256: hex::encode(hasher.finalize()), len })
}

/// Removes a failed upload; a failure to remove is logged, and start-up
/// cleanup removes the file later.
async fn discard(hub: &Hub, id: &DropId) {
    if let Err(e) = hub.blobs().delete_upload(id).await {
        tracing::warn!(error = %e, "could not remove a failed upload");
    }
}
