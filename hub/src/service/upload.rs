//! Uploading a drop's ciphertext: the sender streams it to disk.
//!
//! The body is never buffered: each chunk is hashed and written as it
//! arrives, so a 64 GiB upload needs no more memory than a small one. The
//! hub records what it received (SHA-256 and length); the sender's signed
//! manifest must later state the same at commit.
//!
//! A body that stops arriving for the hub's body idle timeout (see
//! [`crate::api::idle_body`]) or whose connection breaks off keeps what arrived,
//! as a prefix the sender continues; the time of each upload's last
//! activity is recorded so the sweeper can remove an upload nobody came
//! back to within the resume window.
//!
//! Every upload counts against its party's quotas while it streams (see
//! [`crate::quota`]): bytes held and uploads open.

use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt as _};
use sealdrop_proto::api::{DropState, UploadProgress, Uploaded};
use sealdrop_proto::error_code::ErrorCode;
use sealdrop_proto::ids::DropId;
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncReadExt as _;

use super::quota::Upload;
use super::{Caller, DropError, Drops};
use crate::hub::Hub;
use crate::storage::UploadSink;
use crate::storage::meta::ContentDigest;

/// Why a request body stopped before its end.
#[derive(Debug)]
pub enum BodyBreak {
    /// Nothing arrived for this long (the hub's body idle timeout).
    Idle(Duration),
    /// The connection broke off; the transport's account of it.
    Broken(String),
}

/// An upload as it arrives.
pub struct UploadRequest<B> {
    /// The byte it continues from: 0 for a fresh upload.
    pub offset: u64,
    /// The length the sender declared, if any, checked against the limits
    /// before anything is written.
    pub content_length: Option<u64>,
    /// The hex SHA-256 the sender signed for the body, if it signed one;
    /// checked once the body has been read.
    pub signed_sha256: Option<String>,
    /// The body's chunks.
    pub body: B,
}

fn too_large(max: u64) -> DropError {
    DropError::new(ErrorCode::PayloadTooLarge, format!("the content is larger than this hub accepts ({max} bytes)"))
}

impl Drops<'_> {
    /// A member of the sending party streams drop `id`'s ciphertext, fresh
    /// or continuing a cut-off upload; the answer is what the hub received.
    pub async fn upload(
        &self,
        caller: &Caller,
        id: DropId,
        upload: UploadRequest<impl Stream<Item = Result<Bytes, BodyBreak>>>,
    ) -> Result<Uploaded, DropError> {
        let hub = self.hub;
        let max = hub.config().max_upload_bytes;
        let UploadRequest { offset, content_length, signed_sha256, body } = upload;
        // Held until the upload is recorded, so a commit never promotes a file
        // that is still being written, and two uploads never interleave.
        let _lock = hub.lock_drop(&id).await?;
        let rec = self.load(&id).await?;
        if rec.sender != caller.party {
            return Err(DropError::forbidden(format!("only the sending party `{}` may upload drop {id}", rec.sender)));
        }
        if rec.state != DropState::Open {
            return Err(DropError::conflict(format!(
                "drop {id} is already committed: create a new drop to send again"
            )));
        }
        if content_length.is_some_and(|len| len.saturating_add(offset) > max) {
            return Err(too_large(max));
        }
        // Counted against the party's quotas from here until it ends (refused
        // at once if its open uploads or its declared length are over them).
        let mut quota = Upload::begin(hub, &caller.party, &id, offset, content_length).await?;
        // Forget the previous upload before writing to its file, so the
        // database never vouches for bytes that are not on disk, and note the
        // activity, so the sweeper leaves a continued upload alone. (A first
        // upload has nothing to forget, and the drop's creation stands for its
        // activity: one database write fewer per drop. Not on stores other
        // instances share: the note tells their quota counts that this drop's
        // upload has started, see [`crate::quota`].)
        let note_start = rec.upload.is_some() || offset > 0 || hub.coordination().shared();
        if note_start && !hub.drops().set_upload(&id, None, hub.now().as_second()).await? {
            return Err(DropError::conflict(format!("drop {id} was committed while this upload started")));
        }
        let start = if offset == 0 { Start::Fresh } else { continue_from(hub, &id, offset).await? };
        let received = match receive(hub, &id, start, body, max, &mut quota).await {
            Ok(d) => d,
            Err(Failed { error, keep }) => {
                // A connection that broke off (or went quiet) keeps what
                // arrived, so the sender can continue from there, within the
                // resume window from now; anything else starts again at 0.
                if keep {
                    quota.keep();
                    if let Err(e) = hub.drops().set_upload(&id, None, hub.now().as_second()).await {
                        // The window then runs from the previous activity.
                        tracing::warn!(error = %e, "could not note the activity of a kept upload");
                    }
                } else {
                    discard(hub, &id).await;
                }
                return Err(error);
            }
        };
        if signed_sha256.is_some_and(|signed| signed != received.sha256) {
            discard(hub, &id).await;
            return Err(DropError::new(
                ErrorCode::BadSignature,
                "the uploaded body's SHA-256 does not match the signed `sealdrop-content-sha256` header",
            ));
        }
        crate::failpoint::hit(crate::failpoint::UPLOAD_BEFORE_RECORD);
        if !hub.drops().set_upload(&id, Some(&received), hub.now().as_second()).await? {
            discard(hub, &id).await;
            return Err(DropError::conflict(format!(
                "drop {id} was committed or ended while this upload ran; create a new drop to send again"
            )));
        }
        quota.keep();
        tracing::info!(len = received.len, continued_from = offset, "received content");
        Ok(Uploaded { sha256: received.sha256, len: received.len })
    }

    /// How much of open drop `id`'s upload the hub holds, for a sender
    /// continuing one that was cut off.
    pub async fn upload_progress(&self, caller: &Caller, id: DropId) -> Result<UploadProgress, DropError> {
        let _lock = self.hub.lock_drop(&id).await?;
        let rec = self.load(&id).await?;
        if rec.sender != caller.party {
            return Err(DropError::forbidden(format!(
                "only the sending party `{}` may ask about drop {id}",
                rec.sender
            )));
        }
        if rec.state != DropState::Open {
            return Err(DropError::conflict(format!(
                "drop {id} is {}: there is no upload to continue",
                rec.state.as_str()
            )));
        }
        let received = self.hub.blobs().upload_len(&id).await?.unwrap_or(0);
        let complete = rec.upload.as_ref().is_some_and(|u| u.len == received);
        Ok(UploadProgress { received, complete })
    }
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
async fn continue_from(hub: &Hub, id: &DropId, offset: u64) -> Result<Start, DropError> {
    let mismatch = |held: u64| {
        DropError::new(
            ErrorCode::UploadOffsetMismatch,
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
            .map_err(|e| DropError::internal(format!("cannot read drop {id}'s upload: {e}")))?;
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
    error: DropError,
    /// The connection broke off: what arrived is a prefix the sender can continue.
    keep: bool,
}

impl From<DropError> for Failed {
    fn from(error: DropError) -> Self {
        Self { error, keep: false }
    }
}

/// Streams the body into the drop's upload, hashing as it goes.
async fn receive(
    hub: &Hub,
    id: &DropId,
    start: Start,
    body: impl Stream<Item = Result<Bytes, BodyBreak>>,
    max: u64,
    quota: &mut Upload,
) -> Result<ContentDigest, Failed> {
    let (mut sink, hasher, mut len): (Box<dyn UploadSink>, Sha256, u64) = match start {
        Start::Fresh => (hub.blobs().begin_upload(id).await.map_err(DropError::from)?, Sha256::new(), 0),
        Start::After(hasher, len) => (hub.blobs().append_upload(id).await.map_err(DropError::from)?, hasher, len),
    };
    let mut hasher = BodyHash::Here(hasher);
    let mut stream = std::pin::pin!(body);
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                // Keep what was written, flushed to the file, for a continuation.
                let kept = sink.finish().await.is_ok();
                let error = match e {
                    BodyBreak::Idle(idle) => DropError::new(
                        ErrorCode::RequestTimeout,
                        format!(
                            "the upload sent nothing for {} s after {len} bytes, so the hub stopped waiting; \
                             continue it from byte {len}",
                            idle.as_secs_f64()
                        ),
                    ),
                    BodyBreak::Broken(e) => DropError::bad_request(format!(
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
        sink.write(chunk).await.map_err(DropError::from)?;
        if crossed_mid_point {
            crate::failpoint::hit(crate::failpoint::UPLOAD_MID_BODY);
        }
    }
    sink.finish().await.map_err(DropError::from)?;
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
    Thread { queue: tokio::sync::mpsc::Sender<Bytes>, hasher: tokio::task::JoinHandle<Sha256> },
}

impl BodyHash {
    /// Hashes `chunk`; `len` counts the bytes received so far, `chunk` included.
    async fn update(&mut self, chunk: &Bytes, len: u64) -> Result<(), DropError> {
        match self {
            Self::Here(hasher) if len <= HASH_HERE_UP_TO => hasher.update(chunk),
            Self::Here(hasher) => {
                let mut hasher = std::mem::take(hasher);
                hasher.update(chunk);
                let (queue, mut chunks) = tokio::sync::mpsc::channel::<Bytes>(HASH_QUEUE);
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
                    return Err(DropError::internal("the hashing thread stopped"));
                }
            }
        }
        Ok(())
    }

    async fn finish(self) -> Result<Sha256, DropError> {
        match self {
            Self::Here(hasher) => Ok(hasher),
            Self::Thread { queue, hasher } => {
                drop(queue);
                hasher.await.map_err(|e| DropError::internal(format!("the hashing thread failed: {e}")))
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
