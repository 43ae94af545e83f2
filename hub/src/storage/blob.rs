//! Where ciphertext bytes live, behind a narrow interface so an object store
//! (S3, see `storage::object`) can replace the local file system without
//! touching handlers.
//!
//! A drop's bytes go through two stages: an *upload* that is being written
//! (and may be replaced or abandoned), and a *blob* that the sender committed
//! and recipients may download. Promotion from one to the other is atomic, so
//! a recipient never sees a half-written file.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use sealdrop_proto::ids::DropId;
use tokio::io::AsyncRead;

/// Why a blob operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("drop {0} has no finished upload")]
    NoUpload(DropId),
    #[error("cannot {action} {}: {source}", .path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A small ciphertext kept in the database (see `storage::tiered`).
    #[error("cannot {action} the ciphertext of drop {id} in the database: {source}")]
    Database {
        action: &'static str,
        id: DropId,
        #[source]
        source: Box<super::MetaError>,
    },
    /// An object of the S3-compatible store (see `storage::object`).
    #[error("cannot {action} {key} in the object store: {source}")]
    ObjectStore {
        action: &'static str,
        key: String,
        #[source]
        source: object_store::Error,
    },
}

impl BlobError {
    fn io(action: &'static str, path: &Path, source: std::io::Error) -> Self {
        Self::Io { action, path: path.to_owned(), source }
    }

    pub(super) fn object(action: &'static str, key: &object_store::path::Path, source: object_store::Error) -> Self {
        Self::ObjectStore { action, key: key.to_string(), source }
    }

    /// Whether the failure was a full disk, which the API reports as 507 so
    /// operators and senders can tell it apart from a bug.
    pub fn is_storage_full(&self) -> bool {
        match self {
            Self::Io { source, .. } => {
                source.kind() == ErrorKind::StorageFull || source.kind() == ErrorKind::QuotaExceeded
            }
            Self::Database { source, .. } => source.is_storage_full(),
            // S3 refuses nothing for space; a quota a store enforces is its own error.
            Self::NoUpload(_) | Self::ObjectStore { .. } => false,
        }
    }
}

/// A stored blob opened for streaming.
pub struct BlobRead {
    /// The bytes.
    pub reader: Pin<Box<dyn AsyncRead + Send>>,
    /// How many bytes `reader` yields (sent as Content-Length).
    pub len: u64,
}

/// An upload being written. Dropping it without [`UploadSink::finish`] leaves
/// a partial upload that the caller must remove with
/// [`BlobStore::delete_upload`].
#[async_trait]
pub trait UploadSink: Send {
    /// Appends a chunk. Chunks are [`Bytes`] so a store can hand them to a
    /// writer thread (or an object-store client) without copying.
    async fn write(&mut self, chunk: Bytes) -> Result<(), BlobError>;
    /// Flushes and makes the upload durable (fsync).
    async fn finish(self: Box<Self>) -> Result<(), BlobError>;
}

/// Storage for uploads and committed blobs, keyed by drop id.
#[async_trait]
pub trait BlobStore: Send + Sync {
    /// Starts (or restarts, discarding the previous one) the upload of a drop.
    async fn begin_upload(&self, id: &DropId) -> Result<Box<dyn UploadSink>, BlobError>;
    /// Starts the upload of a drop the caller has just created, under the
    /// drop's lock, so no earlier upload of it can matter: a store may then
    /// skip discarding one (the tiered store's row then costs no call to
    /// the large tier, which on an object store was a DELETE request per
    /// small drop). Any leftover is an orphan the sweeper removes, and
    /// reads prefer what this upload stores.
    async fn begin_new_upload(&self, id: &DropId) -> Result<Box<dyn UploadSink>, BlobError> {
        self.begin_upload(id).await
    }
    /// How many bytes a drop's upload file holds, or `None` if it has none.
    /// An upload cut off mid-way keeps what arrived, so the sender can
    /// continue it instead of starting over.
    async fn upload_len(&self, id: &DropId) -> Result<Option<u64>, BlobError>;
    /// Opens the upload file for reading (to hash what an earlier, cut-off
    /// request delivered), or `None` if there is none.
    async fn open_upload(&self, id: &DropId) -> Result<Option<BlobRead>, BlobError>;
    /// Continues the upload of a drop: what is written is appended to the
    /// bytes already there.
    async fn append_upload(&self, id: &DropId) -> Result<Box<dyn UploadSink>, BlobError>;
    /// Turns the finished upload into the drop's stored blob, atomically and durably.
    async fn promote(&self, id: &DropId) -> Result<(), BlobError>;
    /// Opens the stored blob, or `None` if there is none.
    async fn open_blob(&self, id: &DropId) -> Result<Option<BlobRead>, BlobError>;
    /// Opens the stored blob from byte `start` on (a download that resumes),
    /// or `None` if there is none. [`BlobRead::len`] counts the bytes from
    /// `start` to the end: 0 when `start` is at or past the end. (An object
    /// store maps this to a ranged GET.)
    async fn open_blob_from(&self, id: &DropId, start: u64) -> Result<Option<BlobRead>, BlobError>;
    /// Deletes the stored blob; `false` if there was none.
    async fn delete_blob(&self, id: &DropId) -> Result<bool, BlobError>;
    /// Deletes the upload; `false` if there was none.
    async fn delete_upload(&self, id: &DropId) -> Result<bool, BlobError>;
    /// The drops that have an upload file (finished or not).
    async fn list_uploads(&self) -> Result<Vec<DropId>, BlobError>;
    /// The drops that have a stored blob.
    async fn list_blobs(&self) -> Result<Vec<DropId>, BlobError>;
    /// Checks, cheaply, that the store can be worked on now (`/readyz`):
    /// its folders are there, or the object store answers with these
    /// credentials.
    async fn probe(&self) -> Result<(), BlobError>;
}

const UPLOAD_SUFFIX: &str = ".part";
const BLOB_SUFFIX: &str = ".age";
const WRITE_BUFFER: usize = 256 * 1024;
/// Uploads up to this size are held in memory and written, with their
/// fsync, in one blocking call at the end: a small drop costs one trip to a
/// blocking thread instead of one per write. Larger ones go to a writer thread.
const SMALL_UPLOAD: usize = 1024 * 1024;
/// Chunks queued for the writer thread at most (hyper's chunks are at most
/// about 400 KiB, so this bounds an upload's memory to a few MiB).
const WRITER_QUEUE: usize = 8;
/// The writer thread asks the kernel to write back every this many bytes
/// (an `fdatasync` on a second thread), so the fsync at the end has little
/// left to do and the disk works while the bytes still arrive.
const WRITEBACK_EVERY: u64 = 32 * 1024 * 1024;
/// Blobs (or the rest of one) at least this long are read with direct I/O
/// (see [`super::direct`]); shorter ones take a read or two through the
/// page cache, cheaper than setting up the direct path.
const DIRECT_READ_MIN: u64 = 4 * 1024 * 1024;

/// Uploads in `DATA/uploads/<drop-id>.part`, blobs in `DATA/blobs/<drop-id>.age`.
///
/// Drop ids are validated [`DropId`]s (`d-` and 26 lowercase base32
/// characters), so they are safe as file names. Both directories are on the
/// same file system, so promotion is a `rename`.
#[derive(Debug, Clone)]
pub struct FsBlobStore {
    uploads: PathBuf,
    blobs: PathBuf,
}

impl FsBlobStore {
    /// Uses (creating if needed) `uploads/` and `blobs/` under `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Self, BlobError> {
        let store = Self { uploads: data_dir.join("uploads"), blobs: data_dir.join("blobs") };
        for dir in [&store.uploads, &store.blobs] {
            create_private_dir(dir).map_err(|e| BlobError::io("create", dir, e))?;
        }
        Ok(store)
    }

    /// The path of a drop's upload file.
    pub fn upload_path(&self, id: &DropId) -> PathBuf {
        self.uploads.join(format!("{id}{UPLOAD_SUFFIX}"))
    }

    /// The path of a drop's stored blob.
    pub fn blob_path(&self, id: &DropId) -> PathBuf {
        self.blobs.join(format!("{id}{BLOB_SUFFIX}"))
    }
}

pub(super) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Makes a rename or unlink in `dir` durable.
async fn sync_dir(dir: &Path) -> Result<(), BlobError> {
    let handle = tokio::fs::File::open(dir).await.map_err(|e| BlobError::io("open directory", dir, e))?;
    handle.sync_all().await.map_err(|e| BlobError::io("fsync directory", dir, e))
}

async fn remove(path: &Path, dir: &Path) -> Result<bool, BlobError> {
    match tokio::fs::remove_file(path).await {
        Ok(()) => {
            sync_dir(dir).await?;
            Ok(true)
        }
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(BlobError::io("delete", path, e)),
    }
}

async fn list(dir: &Path, suffix: &str) -> Result<Vec<DropId>, BlobError> {
    let mut entries = tokio::fs::read_dir(dir).await.map_err(|e| BlobError::io("list", dir, e))?;
    let mut ids = Vec::new();
    while let Some(entry) = entries.next_entry().await.map_err(|e| BlobError::io("list", dir, e))? {
        let name = entry.file_name();
        let Some(id) = name.to_str().and_then(|n| n.strip_suffix(suffix)).and_then(|n| n.parse::<DropId>().ok()) else {
            tracing::warn!(file = ?entry.path(), "ignoring a file the hub did not create");
            continue;
        };
        ids.push(id);
    }
    ids.sort();
    Ok(ids)
}

/// Opens a file for streaming, or `None` if it does not exist.
async fn open_for_reading(path: &Path) -> Result<Option<BlobRead>, BlobError> {
    let file = match tokio::fs::File::open(path).await {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(BlobError::io("open", path, e)),
    };
    let len = file.metadata().await.map_err(|e| BlobError::io("stat", path, e))?.len();
    Ok(Some(BlobRead { reader: Box::pin(file), len }))
}

/// How an upload's file is opened when its first bytes are written.
#[derive(Clone, Copy)]
enum Opening {
    /// Created, or truncated if an earlier upload left one.
    Replace,
    /// Appended to (a continued upload); it must exist.
    Append,
}

impl Opening {
    fn open(self, path: &Path) -> std::io::Result<std::fs::File> {
        let mut options = std::fs::OpenOptions::new();
        match self {
            Self::Replace => options.write(true).create(true).truncate(true),
            Self::Append => options.append(true),
        };
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        options.open(path)
    }
}

/// An upload to a file. The first [`SMALL_UPLOAD`] bytes are held in memory;
/// past that a writer thread takes over, so receiving, hashing and writing
/// run on different cores.
struct FsUpload {
    path: PathBuf,
    opening: Opening,
    state: Sink,
}

enum Sink {
    /// Nothing written to the file yet: the chunks so far and their total size.
    Held(Vec<Bytes>, usize),
    /// A writer thread owns the file.
    Writing { queue: tokio::sync::mpsc::Sender<Bytes>, writer: tokio::task::JoinHandle<Result<(), BlobError>> },
    /// The writer thread failed (its error was returned).
    Failed,
}

impl FsUpload {
    fn new(path: PathBuf, opening: Opening) -> Self {
        Self { path, opening, state: Sink::Held(Vec::new(), 0) }
    }
}

/// The writer thread: writes what is `held` and then every chunk from
/// `queue` until it closes, starts write-back every [`WRITEBACK_EVERY`]
/// bytes, and fsyncs at the end. A new upload that came with a queue (a
/// large one) is written with direct I/O where the file system allows it
/// (see [`super::direct`]).
fn write_all_and_sync(
    path: &Path,
    opening: Opening,
    held: Vec<Bytes>,
    mut queue: Option<tokio::sync::mpsc::Receiver<Bytes>>,
) -> Result<(), BlobError> {
    use std::io::Write as _;
    let write_error = |e| BlobError::io("write", path, e);
    let file = opening.open(path).map_err(|e| BlobError::io("create", path, e))?;
    // Started at the first write-back, so a small upload never starts it.
    let mut flusher: Option<Flusher> = None;
    // A continued upload appends at an unaligned length: buffered.
    let direct = match (opening, &queue) {
        (Opening::Replace, Some(_)) => super::direct::DirectWriter::open(path),
        _ => None,
    };
    let mut out = match direct {
        Some(d) => Out::Direct(d),
        None => Out::Buffered(std::io::BufWriter::with_capacity(WRITE_BUFFER, &file)),
    };
    let mut since_writeback: u64 = 0;
    let queued = std::iter::from_fn(|| queue.as_mut()?.blocking_recv());
    for chunk in held.into_iter().chain(queued) {
        match &mut out {
            Out::Buffered(w) => w.write_all(&chunk),
            Out::Direct(w) => w.write(&chunk),
        }
        .map_err(write_error)?;
        since_writeback += chunk.len() as u64;
        if since_writeback >= WRITEBACK_EVERY {
            if let Out::Buffered(w) = &mut out {
                w.flush().map_err(write_error)?;
            }
            match &flusher {
                Some(f) => f.nudge(),
                None => flusher = Some(Flusher::start(&file, path)?),
            }
            since_writeback = 0;
        }
    }
    match out {
        Out::Buffered(mut w) => w.flush().map_err(write_error)?,
        Out::Direct(w) => {
            w.finish(&file).map_err(write_error)?;
        }
    }
    if let Some(f) = flusher {
        f.finish()?;
    }
    file.sync_all().map_err(|e| BlobError::io("fsync", path, e))
}

/// Where the writer thread's bytes go.
enum Out<'a> {
    /// Through the page cache (small and continued uploads, or a file
    /// system without direct I/O).
    Buffered(std::io::BufWriter<&'a std::fs::File>),
    /// Past it, in whole blocks.
    Direct(super::direct::DirectWriter),
}

/// A second thread that `fdatasync`s the upload's file when started and
/// whenever nudged, so the kernel writes it back while more arrives (nudges
/// while one runs are merged into the next).
struct Flusher {
    nudge: std::sync::mpsc::SyncSender<()>,
    thread: std::thread::JoinHandle<std::io::Result<()>>,
    path: PathBuf,
}

impl Flusher {
    fn start(file: &std::fs::File, path: &Path) -> Result<Self, BlobError> {
        let handle = file.try_clone().map_err(|e| BlobError::io("open", path, e))?;
        let (nudge, nudged) = std::sync::mpsc::sync_channel::<()>(1);
        let thread = std::thread::Builder::new()
            .name("upload-writeback".into())
            .spawn(move || {
                handle.sync_data()?;
                while nudged.recv().is_ok() {
                    handle.sync_data()?;
                }
                Ok(())
            })
            .map_err(|e| BlobError::io("start a writer for", path, e))?;
        Ok(Self { nudge, thread, path: path.to_owned() })
    }

    fn nudge(&self) {
        // Full means a write-back is already due; it will cover these bytes too.
        let _ = self.nudge.try_send(());
    }

    fn finish(self) -> Result<(), BlobError> {
        drop(self.nudge);
        match self.thread.join() {
            Ok(result) => result.map_err(|e| BlobError::io("fsync", &self.path, e)),
            Err(_) => Err(BlobError::io("fsync", &self.path, std::io::Error::other("the write-back thread panicked"))),
        }
    }
}

fn earlier_write_failed(path: &Path) -> BlobError {
    BlobError::io("write", path, std::io::Error::other("an earlier write failed"))
}

fn writer_panicked(path: &Path, e: &tokio::task::JoinError) -> BlobError {
    BlobError::io("write", path, std::io::Error::other(format!("the writer thread failed: {e}")))
}

#[async_trait]
impl UploadSink for FsUpload {
    async fn write(&mut self, chunk: Bytes) -> Result<(), BlobError> {
        match &mut self.state {
            Sink::Held(chunks, size) if *size + chunk.len() <= SMALL_UPLOAD => {
                *size += chunk.len();
                chunks.push(chunk);
                return Ok(());
            }
            Sink::Held(chunks, _) => {
                let mut held = std::mem::take(chunks);
                held.push(chunk);
                let (queue, receiver) = tokio::sync::mpsc::channel(WRITER_QUEUE);
                let (path, opening) = (self.path.clone(), self.opening);
                let writer =
                    tokio::task::spawn_blocking(move || write_all_and_sync(&path, opening, held, Some(receiver)));
                self.state = Sink::Writing { queue, writer };
                return Ok(());
            }
            Sink::Writing { queue, .. } => {
                if queue.send(chunk).await.is_ok() {
                    return Ok(());
                }
            }
            Sink::Failed => return Err(earlier_write_failed(&self.path)),
        }
        // The writer thread stopped early: its error says why.
        let Sink::Writing { writer, .. } = std::mem::replace(&mut self.state, Sink::Failed) else {
            return Err(earlier_write_failed(&self.path));
        };
        match writer.await {
            Ok(Err(e)) => Err(e),
            Ok(Ok(())) => Err(earlier_write_failed(&self.path)),
            Err(e) => Err(writer_panicked(&self.path, &e)),
        }
    }

    async fn finish(self: Box<Self>) -> Result<(), BlobError> {
        let Self { path, opening, state } = *self;
        let writer = match state {
            Sink::Held(held, _) => {
                let path = path.clone();
                tokio::task::spawn_blocking(move || write_all_and_sync(&path, opening, held, None))
            }
            Sink::Writing { queue, writer } => {
                drop(queue); // the writer ends when the queue is empty
                writer
            }
            Sink::Failed => return Err(earlier_write_failed(&path)),
        };
        writer.await.unwrap_or_else(|e| Err(writer_panicked(&path, &e)))
    }
}

#[async_trait]
impl BlobStore for FsBlobStore {
    async fn begin_upload(&self, id: &DropId) -> Result<Box<dyn UploadSink>, BlobError> {
        // The file is created (or an earlier one truncated) when the first
        // bytes are written; the caller always ends with `finish` or
        // `delete_upload`, so an earlier upload never outlives this one.
        Ok(Box::new(FsUpload::new(self.upload_path(id), Opening::Replace)))
    }

    async fn upload_len(&self, id: &DropId) -> Result<Option<u64>, BlobError> {
        let path = self.upload_path(id);
        match tokio::fs::metadata(&path).await {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(BlobError::io("stat", &path, e)),
        }
    }

    async fn open_upload(&self, id: &DropId) -> Result<Option<BlobRead>, BlobError> {
        open_for_reading(&self.upload_path(id)).await
    }

    async fn append_upload(&self, id: &DropId) -> Result<Box<dyn UploadSink>, BlobError> {
        let path = self.upload_path(id);
        // Fail now, not at the first write, if the upload has gone.
        tokio::fs::metadata(&path).await.map_err(|e| BlobError::io("open", &path, e))?;
        Ok(Box::new(FsUpload::new(path, Opening::Append)))
    }

    async fn promote(&self, id: &DropId) -> Result<(), BlobError> {
        let from = self.upload_path(id);
        let to = self.blob_path(id);
        match tokio::fs::rename(&from, &to).await {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => return Err(BlobError::NoUpload(id.clone())),
            Err(e) => return Err(BlobError::io("store", &to, e)),
        }
        // Only the new name must survive a power cut; if the old one comes
        // back, start-up cleanup removes uploads of committed drops.
        sync_dir(&self.blobs).await
    }

    async fn open_blob(&self, id: &DropId) -> Result<Option<BlobRead>, BlobError> {
        self.open_blob_from(id, 0).await
    }

    async fn open_blob_from(&self, id: &DropId, start: u64) -> Result<Option<BlobRead>, BlobError> {
        let path = self.blob_path(id);
        let mut file = match tokio::fs::File::open(&path).await {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(BlobError::io("open", &path, e)),
        };
        let total = file.metadata().await.map_err(|e| BlobError::io("stat", &path, e))?.len();
        let start = start.min(total);
        if total - start >= DIRECT_READ_MIN
            && let Some(reader) = super::direct::reader(&path, start, total)
        {
            return Ok(Some(BlobRead { reader, len: total - start }));
        }
        tokio::io::AsyncSeekExt::seek(&mut file, std::io::SeekFrom::Start(start))
            .await
            .map_err(|e| BlobError::io("seek in", &path, e))?;
        Ok(Some(BlobRead { reader: Box::pin(file), len: total - start }))
    }

    async fn delete_blob(&self, id: &DropId) -> Result<bool, BlobError> {
        remove(&self.blob_path(id), &self.blobs).await
    }

    async fn delete_upload(&self, id: &DropId) -> Result<bool, BlobError> {
        remove(&self.upload_path(id), &self.uploads).await
    }

    async fn list_uploads(&self) -> Result<Vec<DropId>, BlobError> {
        list(&self.uploads, UPLOAD_SUFFIX).await
    }

    async fn list_blobs(&self) -> Result<Vec<DropId>, BlobError> {
        list(&self.blobs, BLOB_SUFFIX).await
    }

    async fn probe(&self) -> Result<(), BlobError> {
        for dir in [&self.uploads, &self.blobs] {
            if !tokio::fs::metadata(dir).await.is_ok_and(|m| m.is_dir()) {
                let missing = std::io::Error::new(std::io::ErrorKind::NotFound, "the folder is missing");
                return Err(BlobError::io("find", dir, missing));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt as _;

    async fn upload(store: &FsBlobStore, id: &DropId, parts: &[&[u8]]) {
        let mut sink = store.begin_upload(id).await.unwrap();
        for p in parts {
            sink.write(Bytes::copy_from_slice(p)).await.unwrap();
        }
        sink.finish().await.unwrap();
    }

    #[tokio::test]
    async fn upload_promote_read_delete() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(dir.path()).unwrap();
        let id = DropId::random();
        upload(&store, &id, &[b"hello ", b"world"]).await;
        assert_eq!(store.list_uploads().await.unwrap(), vec![id.clone()]);
        assert!(store.open_blob(&id).await.unwrap().is_none(), "an upload is not readable as a blob");

        store.promote(&id).await.unwrap();
        assert!(!store.upload_path(&id).exists());
        assert!(store.blob_path(&id).exists());
        assert_eq!(store.list_uploads().await.unwrap(), vec![]);
        assert_eq!(store.list_blobs().await.unwrap(), vec![id.clone()]);

        let mut blob = store.open_blob(&id).await.unwrap().unwrap();
        assert_eq!(blob.len, 11);
        let mut bytes = Vec::new();
        blob.reader.read_to_end(&mut bytes).await.unwrap();
        assert_eq!(bytes, b"hello world");

        assert!(store.delete_blob(&id).await.unwrap());
        assert!(!store.blob_path(&id).exists());
        assert!(!store.delete_blob(&id).await.unwrap(), "deleting twice reports nothing deleted");
    }

    #[tokio::test]
    async fn re_upload_replaces_and_promote_needs_an_upload() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(dir.path()).unwrap();
        let id = DropId::random();
        assert!(matches!(store.promote(&id).await, Err(BlobError::NoUpload(_))));
        upload(&store, &id, &[b"a much longer first upload"]).await;
        upload(&store, &id, &[b"short"]).await;
        assert_eq!(std::fs::read(store.upload_path(&id)).unwrap(), b"short");
        assert!(store.delete_upload(&id).await.unwrap());
        assert!(!store.delete_upload(&id).await.unwrap());
    }

    #[tokio::test]
    async fn listing_ignores_foreign_files() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(dir.path()).unwrap();
        std::fs::write(dir.path().join("blobs").join("notes.txt"), b"x").unwrap();
        std::fs::write(dir.path().join("blobs").join("d-../x.age"), b"x").ok();
        assert_eq!(store.list_blobs().await.unwrap(), vec![]);
    }

    #[tokio::test]
    async fn a_blob_opens_from_an_offset() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(dir.path()).unwrap();
        let id = DropId::random();
        assert!(store.open_blob_from(&id, 3).await.unwrap().is_none());
        upload(&store, &id, &[b"hello ", b"world"]).await;
        assert!(store.open_blob_from(&id, 0).await.unwrap().is_none(), "an upload is not readable as a blob");
        store.promote(&id).await.unwrap();
        for (start, expected) in [(0, &b"hello world"[..]), (6, b"world"), (10, b"d"), (11, b""), (99, b"")] {
            let mut blob = store.open_blob_from(&id, start).await.unwrap().unwrap();
            assert_eq!(blob.len, expected.len() as u64, "from {start}");
            let mut bytes = Vec::new();
            blob.reader.read_to_end(&mut bytes).await.unwrap();
            assert_eq!(bytes, expected, "from {start}");
        }
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn files_are_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(dir.path()).unwrap();
        let id = DropId::random();
        upload(&store, &id, &[b"x"]).await;
        let mode = std::fs::metadata(store.upload_path(&id)).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "{mode:o}");
    }

    /// Bytes `from..to` of a pattern that differs at every offset mod 251.
    fn pattern(from: usize, to: usize) -> Vec<u8> {
        (from..to).map(|i| (i % 251) as u8).collect()
    }

    #[tokio::test]
    async fn a_large_upload_goes_through_the_writer_thread_and_can_be_continued() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(dir.path()).unwrap();
        let id = DropId::random();
        // Past SMALL_UPLOAD (the writer thread starts) and past
        // WRITEBACK_EVERY twice (write-back runs while chunks still arrive).
        let first = 2 * WRITEBACK_EVERY as usize + 3 * 1024 * 1024 + 17;
        let chunk = 300 * 1024 + 3;
        let mut sink = store.begin_upload(&id).await.unwrap();
        let mut at = 0;
        while at < first {
            let end = (at + chunk).min(first);
            sink.write(Bytes::from(pattern(at, end))).await.unwrap();
            at = end;
        }
        sink.finish().await.unwrap();
        assert_eq!(store.upload_len(&id).await.unwrap(), Some(first as u64));

        // A continuation appends, small or large.
        let mut sink = store.append_upload(&id).await.unwrap();
        sink.write(Bytes::from(pattern(first, first + 10))).await.unwrap();
        sink.finish().await.unwrap();
        let total = first + 10 + SMALL_UPLOAD + 1;
        let mut sink = store.append_upload(&id).await.unwrap();
        sink.write(Bytes::from(pattern(first + 10, total))).await.unwrap();
        sink.finish().await.unwrap();

        store.promote(&id).await.unwrap();
        let mut blob = store.open_blob(&id).await.unwrap().unwrap();
        assert_eq!(blob.len, total as u64);
        let mut bytes = Vec::new();
        blob.reader.read_to_end(&mut bytes).await.unwrap();
        assert!(bytes == pattern(0, total), "the stored bytes differ from those written");
    }

    #[tokio::test]
    async fn a_small_upload_is_written_only_when_it_finishes_and_replaces_an_earlier_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(dir.path()).unwrap();
        let id = DropId::random();
        upload(&store, &id, &[b"an earlier, longer upload"]).await;
        let mut sink = store.begin_upload(&id).await.unwrap();
        sink.write(Bytes::from_static(b"new")).await.unwrap();
        assert_eq!(store.upload_len(&id).await.unwrap(), Some(25), "nothing is written before finish");
        sink.finish().await.unwrap();
        assert_eq!(std::fs::read(store.upload_path(&id)).unwrap(), b"new");
        // An empty upload still leaves an (empty) file.
        store.begin_upload(&id).await.unwrap().finish().await.unwrap();
        assert_eq!(store.upload_len(&id).await.unwrap(), Some(0));
    }

    #[tokio::test]
    async fn continuing_an_upload_that_is_gone_fails_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(dir.path()).unwrap();
        let err = store.append_upload(&DropId::random()).await.err().unwrap();
        assert!(err.to_string().contains("cannot open"), "{err}");
    }
}
