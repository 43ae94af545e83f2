//! Writing an upload as segments: bytes gather in memory, then in a spool
//! file, until a segment is complete, and each complete segment is sent
//! with one write-once PUT. `finish` sends the short last one.

use std::io::SeekFrom;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStore, PutMode, PutOptions, PutPayload};
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _, AsyncWriteExt as _};
use tokio::sync::Semaphore;

use super::SPOOL_AFTER;
use super::layout::segment_in;
use crate::storage::blob::{BlobError, UploadSink};

/// An upload being written to a generation's segments.
pub(super) struct SegmentWriter {
    store: Arc<dyn ObjectStore>,
    /// The generation's folder.
    folder: Path,
    /// The index of the segment being gathered.
    next: u32,
    segment_size: usize,
    spool_dir: PathBuf,
    /// Shared by the whole store: segments in memory at once.
    puts: Arc<Semaphore>,
    pending: Pending,
}

/// The bytes of the segment being gathered.
enum Pending {
    /// In memory: the chunks and their total.
    Held(Vec<Bytes>, usize),
    /// In an anonymous spool file, and how many.
    Spooled(tokio::fs::File, usize),
    /// A write failed (and returned why); the upload is unusable.
    Failed,
}

impl SegmentWriter {
    pub(super) fn new(
        store: Arc<dyn ObjectStore>,
        folder: Path,
        next: u32,
        segment_size: usize,
        spool_dir: PathBuf,
        puts: Arc<Semaphore>,
    ) -> Self {
        Self { store, folder, next, segment_size, spool_dir, puts, pending: Pending::Held(Vec::new(), 0) }
    }

    fn pending_len(&self) -> usize {
        match &self.pending {
            Pending::Held(_, n) | Pending::Spooled(_, n) => *n,
            Pending::Failed => 0,
        }
    }

    /// Adds bytes that fit in the segment being gathered. On an error the
    /// upload is left [`Pending::Failed`].
    async fn gather(&mut self, piece: Bytes) -> Result<(), BlobError> {
        let len = piece.len();
        self.pending = match std::mem::replace(&mut self.pending, Pending::Failed) {
            Pending::Held(mut chunks, n) if n + len <= SPOOL_AFTER => {
                chunks.push(piece);
                Pending::Held(chunks, n + len)
            }
            Pending::Held(chunks, n) => {
                let mut file = self.spool_file().await?;
                for chunk in chunks.iter().chain([&piece]) {
                    file.write_all(chunk).await.map_err(|e| self.spool_error("write", e))?;
                }
                Pending::Spooled(file, n + len)
            }
            Pending::Spooled(mut file, n) => {
                file.write_all(&piece).await.map_err(|e| self.spool_error("write", e))?;
                Pending::Spooled(file, n + len)
            }
            Pending::Failed => return Err(self.failed_before()),
        };
        Ok(())
    }

    async fn spool_file(&self) -> Result<tokio::fs::File, BlobError> {
        let dir = self.spool_dir.clone();
        let file = tokio::task::spawn_blocking(move || tempfile::tempfile_in(dir))
            .await
            .map_err(|e| self.spool_error("create", std::io::Error::other(e)))?
            .map_err(|e| self.spool_error("create", e))?;
        Ok(tokio::fs::File::from_std(file))
    }

    /// Sends the gathered bytes as the next segment, if there are any.
    async fn send_segment(&mut self) -> Result<(), BlobError> {
        match &self.pending {
            Pending::Failed => return Err(self.failed_before()),
            _ if self.pending_len() == 0 => return Ok(()),
            _ => {}
        }
        // Waiting here holds the sender back: the bound on memory.
        let _permit = self.puts.acquire().await.map_err(|e| self.spool_error("send", std::io::Error::other(e)))?;
        let payload = match &mut self.pending {
            Pending::Held(chunks, _) => PutPayload::from_iter(std::mem::take(chunks)),
            Pending::Spooled(file, n) => {
                let mut bytes = Vec::with_capacity(*n);
                let read = async {
                    file.flush().await?;
                    file.seek(SeekFrom::Start(0)).await?;
                    file.read_to_end(&mut bytes).await?;
                    // Reused for the next segment.
                    file.set_len(0).await?;
                    file.seek(SeekFrom::Start(0)).await.map(drop)
                };
                read.await.map_err(|e| spool_error(&self.spool_dir, "read", e))?;
                PutPayload::from(Bytes::from(bytes))
            }
            Pending::Failed => return Err(self.failed_before()),
        };
        let key = segment_in(&self.folder, self.next);
        let options = PutOptions { mode: PutMode::Create, ..PutOptions::default() };
        self.store.put_opts(&key, payload, options).await.map_err(|source| BlobError::object("write", &key, source))?;
        self.next += 1;
        if let Pending::Spooled(_, n) | Pending::Held(_, n) = &mut self.pending {
            *n = 0;
        }
        Ok(())
    }

    fn spool_error(&self, action: &'static str, e: std::io::Error) -> BlobError {
        spool_error(&self.spool_dir, action, e)
    }

    fn failed_before(&self) -> BlobError {
        self.spool_error("write", std::io::Error::other("an earlier write of this upload failed"))
    }
}

fn spool_error(dir: &std::path::Path, action: &'static str, source: std::io::Error) -> BlobError {
    BlobError::Io { action, path: dir.to_owned(), source }
}

#[async_trait]
impl UploadSink for SegmentWriter {
    async fn write(&mut self, mut chunk: Bytes) -> Result<(), BlobError> {
        while !chunk.is_empty() {
            let room = self.segment_size - self.pending_len();
            let piece = chunk.split_to(room.min(chunk.len()));
            let written = async {
                self.gather(piece).await?;
                if self.pending_len() == self.segment_size { self.send_segment().await } else { Ok(()) }
            };
            if let Err(e) = written.await {
                self.pending = Pending::Failed;
                return Err(e);
            }
        }
        Ok(())
    }

    async fn finish(mut self: Box<Self>) -> Result<(), BlobError> {
        // A PUT is durable when it returns: nothing more to sync.
        self.send_segment().await
    }
}
