//! The ciphertexts `migrate` copies: every committed drop's blob, and the
//! upload of every open drop that has one, each streamed from where the
//! source keeps it (a row of `inline_blobs` for a small one, else the
//! source's large tier, files or a bucket) into the target object store
//! through [`BlobStore`], hashed on the way.
//!
//! Uploads are copied too, finished or cut off: the drop rows copied with
//! them say what was uploaded (`upload_sha256`, `upload_len`,
//! `upload_active`), so with the bytes beside them a sender commits or
//! continues after the move as before it, and the new hub's sweeper removes
//! those nobody comes back to within the resume window, as the old one would
//! have. Without them, the copied rows would name uploads that are not there.
//!
//! Ciphertexts of drops that ended (delivered, expired, recalled) are not
//! copied: the hub deletes them, and a file left by a crash before its
//! deletion is the old hub's start-up clean-up's, not the new hub's.

use std::collections::BTreeSet;
use std::io::Cursor;

use bytes::Bytes;
use futures_util::StreamExt as _;
use rusqlite::{Connection, OptionalExtension as _};
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncReadExt as _;

use sealdrop_proto::ids::DropId;

use super::{MigrateError, source_read};
use crate::storage::blob::{BlobRead, BlobStore};
use crate::storage::meta::{ContentDigest, DropStore};
use crate::storage::sqlite::BlobStage;

/// Bytes read and written at a time: a transfer holds one such chunk (the
/// object store spools the rest of a segment to disk).
const CHUNK: usize = 1024 * 1024;
/// Ciphertexts copied, or read back, at once: each is a few round trips to
/// the object store, so thousands of small drops go several at a time;
/// memory stays a few chunks (the object store bounds its segments in
/// flight itself).
const TRANSFERS: usize = 8;

/// A ciphertext the source holds, as its drop's row describes it.
#[derive(Debug, Clone)]
struct Held {
    id: DropId,
    stage: BlobStage,
    /// What the row says the bytes are: the committed content, or the
    /// finished upload (none for an upload cut off or not yet recorded).
    recorded: Option<ContentDigest>,
}

/// A ciphertext copied into the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Copied {
    /// Its drop.
    pub(super) id: DropId,
    /// A committed blob or an upload.
    pub(super) stage: BlobStage,
    /// The SHA-256 and length of the bytes read from the source.
    pub(super) digest: ContentDigest,
}

/// The drops whose bytes are copied: committed ones (their blob) and open
/// ones (their upload, if they have one), in the order they were stored.
fn held(source: &Connection) -> Result<Vec<Held>, MigrateError> {
    let mut statement = source
        .prepare(
            "SELECT id, state, sha256, size, upload_sha256, upload_len FROM drops
             WHERE state IN ('committed', 'open') ORDER BY rowid",
        )
        .map_err(source_read)?;
    let rows = statement
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, Option<i64>>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, Option<i64>>(5)?,
            ))
        })
        .map_err(source_read)?;
    let digest = |sha256: Option<String>, len: Option<i64>| match (sha256, len.and_then(|n| u64::try_from(n).ok())) {
        (Some(sha256), Some(len)) => Some(ContentDigest { sha256, len }),
        _ => None,
    };
    let mut out = Vec::new();
    for row in rows {
        let (id, state, sha256, size, upload_sha256, upload_len) = row.map_err(source_read)?;
        let id: DropId = id
            .parse()
            .map_err(|_| MigrateError::Source(format!("the database holds a drop id {id:?} that is not valid")))?;
        out.push(if state == "committed" {
            let recorded = digest(sha256, size).ok_or_else(|| {
                MigrateError::Source(format!("drop {id} is committed but its row records no ciphertext hash and size"))
            })?;
            Held { id, stage: BlobStage::Blob, recorded: Some(recorded) }
        } else {
            Held { id, stage: BlobStage::Upload, recorded: digest(upload_sha256, upload_len) }
        });
    }
    Ok(out)
}

/// The bytes of a ciphertext the source keeps as a row of `inline_blobs`
/// (at most 64 KiB), if it does.
fn inline_bytes(source: &Connection, id: &DropId, stage: BlobStage) -> Result<Option<Vec<u8>>, MigrateError> {
    let stage_name = match stage {
        BlobStage::Upload => "upload",
        BlobStage::Blob => "blob",
    };
    source
        .query_row("SELECT data FROM inline_blobs WHERE drop_id = ?1 AND stage = ?2", [id.as_str(), stage_name], |r| {
            r.get(0)
        })
        .optional()
        .map_err(source_read)
}

/// Copies every ciphertext the source's rows name into `target`, up to
/// [`TRANSFERS`] at once; returns what was copied, in no particular order.
/// A committed drop without its ciphertext, or a ciphertext that differs
/// from what its row records, stops the copy.
pub(super) async fn copy(
    source: &Connection,
    large: &dyn BlobStore,
    target: &dyn BlobStore,
) -> Result<Vec<Copied>, MigrateError> {
    // The database is read here, one row at a time as transfers start
    // (the connection stays on this task); the transfers only stream.
    let transfers = held(source)?.into_iter().map(|held| {
        let inline = inline_bytes(source, &held.id, held.stage);
        async move { copy_one(held, inline?, large, target).await }
    });
    let mut running = futures_util::stream::iter(transfers).buffer_unordered(TRANSFERS);
    let mut copied = Vec::new();
    while let Some(done) = running.next().await {
        copied.extend(done?);
    }
    Ok(copied)
}

/// Copies one ciphertext (`inline`, or else from the large tier); `None`
/// for an open drop that has no upload.
async fn copy_one(
    Held { id, stage, recorded }: Held,
    inline: Option<Vec<u8>>,
    large: &dyn BlobStore,
    target: &dyn BlobStore,
) -> Result<Option<Copied>, MigrateError> {
    let from = match inline {
        Some(data) => Some(BlobRead { len: data.len() as u64, reader: Box::pin(Cursor::new(data)) }),
        None => match stage {
            BlobStage::Upload => large.open_upload(&id).await,
            BlobStage::Blob => large.open_blob(&id).await,
        }
        .map_err(|e| MigrateError::Failed(format!("cannot read the source's ciphertext of drop {id}: {e}")))?,
    };
    let Some(from) = from else {
        if stage == BlobStage::Blob {
            return Err(MigrateError::Source(format!(
                "drop {id} is committed but its ciphertext is missing from the data directory"
            )));
        }
        return Ok(None);
    };
    let digest = stream_into(from, target, &id).await?;
    if let Some(recorded) = recorded.filter(|r| *r != digest) {
        let what = if stage == BlobStage::Blob { "committed ciphertext" } else { "finished upload" };
        return Err(MigrateError::Source(format!(
            "the {what} of drop {id} is {} bytes with SHA-256 {}, but its row records {} bytes with SHA-256 {}: \
             the data directory is damaged",
            digest.len, digest.sha256, recorded.len, recorded.sha256
        )));
    }
    if stage == BlobStage::Blob {
        target.promote(&id).await.map_err(|e| target_failed(&id, &e))?;
    }
    Ok(Some(Copied { id, stage, digest }))
}

/// Writes `from` as the upload of `id` in `target`, a chunk at a time, and
/// returns the SHA-256 and length of what it read.
async fn stream_into(mut from: BlobRead, target: &dyn BlobStore, id: &DropId) -> Result<ContentDigest, MigrateError> {
    let mut sink = target.begin_upload(id).await.map_err(|e| target_failed(id, &e))?;
    let mut hasher = Sha256::new();
    let mut len = 0u64;
    let mut buffer = vec![0u8; CHUNK];
    loop {
        let n = from
            .reader
            .read(&mut buffer)
            .await
            .map_err(|e| MigrateError::Failed(format!("cannot read the source's ciphertext of drop {id}: {e}")))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        len += n as u64;
        sink.write(Bytes::copy_from_slice(&buffer[..n])).await.map_err(|e| target_failed(id, &e))?;
    }
    sink.finish().await.map_err(|e| target_failed(id, &e))?;
    Ok(ContentDigest { sha256: hex::encode(hasher.finalize()), len })
}

/// The SHA-256 and length of what `read` yields.
async fn digest_of(mut read: BlobRead) -> std::io::Result<ContentDigest> {
    let mut hasher = Sha256::new();
    let mut len = 0u64;
    let mut buffer = vec![0u8; CHUNK];
    loop {
        let n = read.reader.read(&mut buffer).await?;
        if n == 0 {
            return Ok(ContentDigest { sha256: hex::encode(hasher.finalize()), len });
        }
        hasher.update(&buffer[..n]);
        len += n as u64;
    }
}

/// Reads every copied ciphertext back from the target through its stores:
/// each committed blob must hash to its drop's recorded content (as the
/// target's database holds it), each upload to what was read from the
/// source, and the target must hold no other blob or upload.
pub(super) async fn verify(
    copied: &[Copied],
    drops: &dyn DropStore,
    target: &dyn BlobStore,
) -> Result<(), MigrateError> {
    let checks = copied.iter().map(|c| verify_one(c, drops, target));
    let mut running = futures_util::stream::iter(checks).buffer_unordered(TRANSFERS);
    while let Some(checked) = running.next().await {
        checked?;
    }
    let listed = |stage: BlobStage| copied.iter().filter(move |c| c.stage == stage).map(|c| c.id.clone());
    let blobs: BTreeSet<DropId> = listed(BlobStage::Blob).collect();
    let uploads: BTreeSet<DropId> = listed(BlobStage::Upload).collect();
    let list_failed = |e: crate::storage::BlobError| MigrateError::Failed(format!("cannot list the object store: {e}"));
    let stored_blobs: BTreeSet<DropId> = target.list_blobs().await.map_err(list_failed)?.into_iter().collect();
    let stored_uploads: BTreeSet<DropId> = target.list_uploads().await.map_err(list_failed)?.into_iter().collect();
    if stored_blobs != blobs || stored_uploads != uploads {
        return Err(MigrateError::Verify(format!(
            "the object store holds {} blobs and {} uploads, but {} and {} were copied",
            stored_blobs.len(),
            stored_uploads.len(),
            blobs.len(),
            uploads.len()
        )));
    }
    Ok(())
}

/// Reads one copied ciphertext back (see [`verify`]).
async fn verify_one(copied: &Copied, drops: &dyn DropStore, target: &dyn BlobStore) -> Result<(), MigrateError> {
    let Copied { id, stage, digest } = copied;
    let failed = |e: &dyn std::fmt::Display| {
        MigrateError::Failed(format!("cannot read back the ciphertext of drop {id} from the object store: {e}"))
    };
    let record = drops.drop_record(id).await.map_err(|e| MigrateError::Failed(e.to_string()))?;
    let expected = match stage {
        BlobStage::Blob => record.and_then(|r| r.content),
        BlobStage::Upload => Some(record.and_then(|r| r.upload).unwrap_or_else(|| digest.clone())),
    };
    let opened = match stage {
        BlobStage::Blob => target.open_blob(id).await,
        BlobStage::Upload => target.open_upload(id).await,
    }
    .map_err(|e| failed(&e))?;
    let Some(read) = opened else {
        return Err(MigrateError::Verify(format!("the object store holds no ciphertext of drop {id}")));
    };
    let got = digest_of(read).await.map_err(|e| failed(&e))?;
    if expected.as_ref() != Some(&got) || got != *digest {
        return Err(MigrateError::Verify(format!(
            "the ciphertext of drop {id} read back from the object store ({} bytes, SHA-256 {}) is not the one \
             copied ({} bytes, SHA-256 {})",
            got.len, got.sha256, digest.len, digest.sha256
        )));
    }
    Ok(())
}

fn target_failed(id: &DropId, e: &crate::storage::BlobError) -> MigrateError {
    MigrateError::Failed(format!("cannot write the ciphertext of drop {id} into the object store: {e}"))
}
