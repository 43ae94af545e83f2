//! `PUT /v1/drops/{id}/content`: the sender streams the ciphertext to disk.
//!
//! The body is never buffered: each chunk is hashed and written as it
//! arrives, so a 64 GiB upload needs no more memory than a small one. The
//! hub records what it received (SHA-256 and length); the sender's signed
//! manifest must later state the same at commit.
//!
//! A body that stops arriving for the hub's body idle timeout (see
//! [`super::idle_body`]) or whose connection breaks off keeps what arrived,
//! as a prefix the sender continues; the time of each upload's last
//! activity is recorded so the sweeper can remove an upload nobody came
//! back to within the resume window.
//!
//! Every upload counts against its party's quotas while it streams (see
//! [`crate::quota`]): bytes held and uploads open.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use futures_util::StreamExt as _;
use sealdrop_proto::api::{DropState, ErrorBody, UPLOAD_OFFSET_HEADER, UploadProgress, Uploaded, code};
use sealdrop_proto::ids::DropId;
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncReadExt as _;

use super::auth::{Authed, AuthedStream};
use super::error::ApiError;
use super::idle_body::is_body_idle;
use super::shared::{drop_id, load_drop};
use crate::hub::Hub;
use crate::quota::Upload;
use crate::storage::UploadSink;
use crate::storage::meta::ContentDigest;

fn too_large(max: u64) -> ApiError {
    ApiError::new(code::PAYLOAD_TOO_LARGE, format!("the content is larger than this hub accepts ({max} bytes)"))
}

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
    let max = hub.config().max_upload_bytes;
    let offset = upload_offset(&headers)?;
    // Held until the upload is recorded, so a commit never promotes a file
    // that is still being written, and two uploads never interleave.
    let _lock = hub.locks().lock(&id).await;
    let rec = load_drop(&hub, &id).await?;
    if rec.sender != upload.caller.party {
        return Err(ApiError::forbidden(format!("only the sending party `{}` may upload drop {id}", rec.sender)));
    }
    if rec.state != DropState::Open {
        return Err(ApiError::conflict(format!("drop {id} is already committed: create a new drop to send again")));
    }
    if upload.content_length.is_some_and(|len| len.saturating_add(offset) > max) {
        return Err(too_large(max));
    }
    // Counted against the party's quotas from here until it ends (refused
    // at once if its open uploads or its declared length are over them).
    let mut quota = Upload::begin(&hub, &upload.caller.party, &id, offset, upload.content_length).await?;
    // Forget the previous upload before writing to its file, so the
    // database never vouches for bytes that are not on disk, and note the
    // activity, so the sweeper leaves a continued upload alone. (A first
    // upload has nothing to forget, and the drop's creation stands for its
    // activity: one database write fewer per drop.)
    if (rec.upload.is_some() || offset > 0) && !hub.meta().set_upload(&id, None, hub.now().as_second()).await? {
        return Err(ApiError::conflict(format!("drop {id} was committed while this upload started")));
    }
    let start = if offset == 0 { Start::Fresh } else { continue_from(&hub, &id, offset).await? };
    let received = match receive(&hub, &id, start, upload.body, max, &mut quota).await {
        Ok(d) => d,
        Err(Failed { error, keep }) => {
            // A connection that broke off (or went quiet) keeps what
            // arrived, so the sender can continue from there, within the
            // resume window from now; anything else starts again at 0.
            if keep {
                quota.keep();
                if let Err(e) = hub.meta().set_upload(&id, None, hub.now().as_second()).await {
                    // The window then runs from the previous activity.
                    tracing::warn!(error = %e, "could not note the activity of a kept upload");
                }
            } else {
                discard(&hub, &id).await;
            }
            return Err(error);
        }
    };
    if upload.signed_sha256.is_some_and(|signed| signed != received.sha256) {
        discard(&hub, &id).await;
        return Err(ApiError::new(
            code::BAD_SIGNATURE,
            "the uploaded body's SHA-256 does not match the signed `sealdrop-content-sha256` header",
        ));
    }
    crate::failpoint::hit(crate::failpoint::UPLOAD_BEFORE_RECORD);
    if !hub.meta().set_upload(&id, Some(&received), hub.now().as_second()).await? {
        discard(&hub, &id).await;
        return Err(ApiError::conflict(format!(
            "drop {id} was committed or ended while this upload ran; create a new drop to send again"
        )));
    }
    quota.keep();
    tracing::info!(len = received.len, continued_from = offset, "received content");
    Ok(axum::Json(Uploaded { sha256: received.sha256, len: received.len }))
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
    let _lock = hub.locks().lock(&id).await;
    let rec = load_drop(&hub, &id).await?;
    if rec.sender != caller.party {
        return Err(ApiError::forbidden(format!("only the sending party `{}` may ask about drop {id}", rec.sender)));
    }
    if rec.state != DropState::Open {
        return Err(ApiError::conflict(format!("drop {id} is {}: there is no upload to continue", rec.state.as_str())));
    }
    let received = hub.blobs().upload_len(&id).await?.unwrap_or(0);
    let complete = rec.upload.as_ref().is_some_and(|u| u.len == received);
    Ok(axum::Json(UploadProgress { received, complete }))
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

/// Where an upload starts.
enum Start {
    /// From byte 0, replacing any earlier bytes.
    Fresh,
    /// After the bytes an earlier request delivered: their SHA-256 state and count.
    After(Sha256, u64),
}

/// Checks that `offset` is exactly what the hub holds and hashes those bytes
/// again (a hash state cannot be stored), so the digest covers the whole upload.
async fn continue_from(hub: &Hub, id: &DropId, offset: u64) -> Result<Start, ApiError> {
    let mismatch = |held: u64| {
        ApiError::new(
            code::UPLOAD_OFFSET_MISMATCH,
            format!("the hub holds {held} bytes of drop {id}'s upload, not {offset}: continue from byte {held}"),
        )
    };
    let Some(mut prefix) = hub.blobs().open_upload(id).await? else {
        return Err(mismatch(0));
    };
    if prefix.len != offset {
        return Err(mismatch(prefix.len));
    }
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut read: u64 = 0;
    loop {
        let n = prefix
            .reader
            .read(&mut buf)
            .await
            .map_err(|e| ApiError::internal(format!("cannot read drop {id}'s upload: {e}")))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        read += n as u64;
    }
    if read != offset {
        return Err(mismatch(read));
    }
    Ok(Start::After(hasher, offset))
}

/// Why [`receive`] stopped, and whether the bytes written so far are worth keeping.
struct Failed {
    error: ApiError,
    /// The connection broke off: what arrived is a prefix the sender can continue.
    keep: bool,
}

impl From<ApiError> for Failed {
    fn from(error: ApiError) -> Self {
        Self { error, keep: false }
    }
}

/// Streams the body into the drop's upload, hashing as it goes.
async fn receive(
    hub: &Hub,
    id: &DropId,
    start: Start,
    body: axum::body::Body,
    max: u64,
    quota: &mut Upload,
) -> Result<ContentDigest, Failed> {
    let (mut sink, hasher, mut len): (Box<dyn UploadSink>, Sha256, u64) = match start {
        Start::Fresh => (hub.blobs().begin_upload(id).await.map_err(ApiError::from)?, Sha256::new(), 0),
        Start::After(hasher, len) => (hub.blobs().append_upload(id).await.map_err(ApiError::from)?, hasher, len),
    };
    let mut hasher = BodyHash::Here(hasher);
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                // Keep what was written, flushed to the file, for a continuation.
                let kept = sink.finish().await.is_ok();
                let error = match is_body_idle(&e) {
                    Some(idle) => ApiError::new(
                        code::REQUEST_TIMEOUT,
                        format!(
                            "the upload sent nothing for {} s after {len} bytes, so the hub stopped waiting; \
                             continue it from byte {len}",
                            idle.0.as_secs_f64()
                        ),
                    ),
                    None => ApiError::bad_request(format!(
                        "the upload was interrupted after {len} bytes ({e}); continue it from byte {len}"
                    )),
                };
                return Err(Failed { error, keep: kept });
            }
        };
        len = len.saturating_add(chunk.len() as u64);
        if len > max {
            return Err(too_large(max).into());
        }
        // Counted before it is written: a never-ending upload stops at the quota.
        quota.grow(chunk.len() as u64).await?;
        hasher.update(&chunk, len).await?;
        let crossed_mid_point = (len - chunk.len() as u64) < crate::failpoint::MID_UPLOAD_BYTES
            && len >= crate::failpoint::MID_UPLOAD_BYTES;
        sink.write(chunk).await.map_err(ApiError::from)?;
        if crossed_mid_point {
            crate::failpoint::hit(crate::failpoint::UPLOAD_MID_BODY);
        }
    }
    sink.finish().await.map_err(ApiError::from)?;
    Ok(ContentDigest { sha256: hex::encode(hasher.finish().await?.finalize()), len })
}

/// Uploads past this size are hashed on a thread of their own.
const HASH_HERE_UP_TO: u64 = 1024 * 1024;
/// Chunks queued for the hashing thread at most.
const HASH_QUEUE: usize = 8;

/// The SHA-256 of an upload. Hashing a large upload on the task that
/// receives it would make one core do both (SHA-256 alone runs at about
/// 1.5 GiB/s here), so past [`HASH_HERE_UP_TO`] it moves to a blocking thread
/// and the two run side by side; a small upload is hashed where it arrives.
enum BodyHash {
    Here(Sha256),
    Thread { queue: tokio::sync::mpsc::Sender<bytes::Bytes>, hasher: tokio::task::JoinHandle<Sha256> },
}

impl BodyHash {
    /// Hashes `chunk`; `len` counts the bytes received so far, `chunk` included.
    async fn update(&mut self, chunk: &bytes::Bytes, len: u64) -> Result<(), ApiError> {
        match self {
            Self::Here(hasher) if len <= HASH_HERE_UP_TO => hasher.update(chunk),
            Self::Here(hasher) => {
                let mut hasher = std::mem::take(hasher);
                hasher.update(chunk);
                let (queue, mut chunks) = tokio::sync::mpsc::channel::<bytes::Bytes>(HASH_QUEUE);
                let hasher = tokio::task::spawn_blocking(move || {
                    while let Some(chunk) = chunks.blocking_recv() {
                        hasher.update(&chunk);
                    }
                    hasher
                });
                *self = Self::Thread { queue, hasher };
            }
            Self::Thread { queue, .. } => {
                if queue.send(chunk.clone()).await.is_err() {
                    return Err(ApiError::internal("the hashing thread stopped"));
                }
            }
        }
        Ok(())
    }

    async fn finish(self) -> Result<Sha256, ApiError> {
        match self {
            Self::Here(hasher) => Ok(hasher),
            Self::Thread { queue, hasher } => {
                drop(queue);
                hasher.await.map_err(|e| ApiError::internal(format!("the hashing thread failed: {e}")))
            }
        }
    }
}

/// Removes a failed upload; a failure to remove is logged, and start-up
/// cleanup removes the file later.
async fn discard(hub: &Hub, id: &DropId) {
    if let Err(e) = hub.blobs().delete_upload(id).await {
        tracing::warn!(error = %e, "could not remove a failed upload");
    }
}
