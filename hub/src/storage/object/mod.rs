//! Ciphertext in an S3-compatible object store (AWS S3, MinIO, Garage,
//! Ceph), so that several hub instances share one hub's bytes: an upload
//! cut off on one instance continues on another, and any instance serves
//! any download.
//!
//! Objects under the configured prefix, every key made from the drop id
//! only (the hub never sees a file name):
//!
//! - `uploads/<drop>`: the drop's upload, if it has one; its body is the
//!   upload's *generation*, a random name for this attempt;
//! - `segments/<drop>/<generation>/<index>`: the upload's bytes, in
//!   write-once segments of [`SEGMENT_SIZE`] (the last may be shorter),
//!   numbered `00000000`, `00000001`, ... ;
//! - `blobs/<drop>`: the drop's blob, a [`Manifest`] naming the generation
//!   whose segments hold it and their sizes.
//!
//! Why segments: a segment is written with one PUT once it is complete, so
//! what an upload has received is exactly the segments listed, on every
//! instance. A cut-off upload continues from the end of its last segment;
//! a finished or cleanly broken request writes its short last segment
//! too, and only an instance that dies loses the segment it was filling
//! (the sender resends it). Segments are created with `If-None-Match: *`,
//! so two requests continuing one upload cannot overwrite each other.
//! No multipart state lives in the store, and a ranged GET of one segment
//! serves a download that resumes anywhere.
//!
//! Deletes remove a drop's segments first and the marker or manifest that
//! names them last: a crash mid-way leaves an upload or blob that is still
//! listed, so the hub's clean-up deletes it again, never segments nothing
//! names. (Segments of a generation an upload begun again replaced go at
//! its next delete, which clears every generation but the one kept.)
//!
//! Why generations: promotion writes the manifest (one small PUT, atomic in
//! S3) instead of copying bytes, and an upload begun again writes a new
//! generation, so it never touches the bytes of a blob or of an upload
//! still being read.
//!
//! Memory: an upload holds at most [`SPOOL_AFTER`] bytes (plus the chunk
//! being written) before it spools to an anonymous file under the data
//! directory; a segment is read back into memory only to be sent, with at
//! most [`SEGMENT_PUTS`] segments in flight for the whole hub. So uploads
//! use at most [`SEGMENT_PUTS`] × [`SEGMENT_SIZE`] (32 MiB) plus
//! [`SPOOL_AFTER`] (256 KiB) per open upload, however many there are.
//! Downloads stream, a response chunk at a time.

mod layout;
mod read;
mod upload;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use futures_util::{StreamExt as _, TryStreamExt as _};
use object_store::aws::AmazonS3Builder;
use object_store::{ObjectStore, ObjectStoreExt as _, PutPayload};
use sealdrop_proto::ids::DropId;
use tokio::sync::Semaphore;

pub use layout::{Manifest, S3Location};

use super::blob::{BlobError, BlobRead, BlobStore, UploadSink};
use layout::Layout;
use upload::SegmentWriter;

/// The size of an upload's segments.
pub const SEGMENT_SIZE: usize = 8 * 1024 * 1024;
/// An upload's bytes are held in memory up to this many; past it they go to
/// a spool file until the segment is complete (a small drop never touches
/// the disk).
pub const SPOOL_AFTER: usize = 256 * 1024;
/// Segments being sent at once, for the whole hub: bounds the memory that
/// uploads take however many arrive at once.
pub const SEGMENT_PUTS: usize = 4;

/// A drop's ciphertext in an object store.
#[derive(Debug, Clone)]
pub struct ObjectBlobStore {
    /// The store, with the bucket it works in.
    store: Arc<dyn ObjectStore>,
    /// The keys under the configured prefix.
    layout: Layout,
    /// Where an upload's segment waits until it is complete.
    spool: PathBuf,
    /// Permits to hold a segment in memory and send it.
    puts: Arc<Semaphore>,
    /// The size of the segments this store writes (reads take whatever
    /// sizes the manifest names).
    segment_size: usize,
}

impl ObjectBlobStore {
    /// Uses `location`, with the endpoint, region and credentials found the
    /// standard AWS ways (`AWS_ENDPOINT_URL`, `AWS_REGION`,
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_ALLOW_HTTP` for a
    /// plain-HTTP endpoint, instance and container credentials), and
    /// spools under `data_dir`.
    pub fn open(location: &S3Location, data_dir: &Path) -> Result<Self, BlobError> {
        Self::with_builder(AmazonS3Builder::from_env(), location, data_dir)
    }

    /// Uses `location` through `builder` (which sets the endpoint and
    /// credentials; the bucket is `location`'s), spooling under `data_dir`.
    pub fn with_builder(builder: AmazonS3Builder, location: &S3Location, data_dir: &Path) -> Result<Self, BlobError> {
        let store = build(builder, location)?;
        let spool = data_dir.join("spool");
        super::blob::create_private_dir(&spool).map_err(|e| BlobError::Io {
            action: "create",
            path: spool.clone(),
            source: e,
        })?;
        Ok(Self {
            store,
            layout: Layout::new(location),
            spool,
            puts: Arc::new(Semaphore::new(SEGMENT_PUTS)),
            segment_size: SEGMENT_SIZE,
        })
    }

    /// The same store writing segments of `size` bytes, so tests cross
    /// segment boundaries with small uploads.
    #[cfg(test)]
    pub(crate) fn with_segment_size(mut self, size: usize) -> Self {
        self.segment_size = size;
        self
    }

    /// The key of some object under the store's prefix, or `None` if it
    /// holds none at all (no blob, upload, or stray segment): `migrate`
    /// writes only into an empty prefix.
    pub async fn any_object(&self) -> Result<Option<String>, BlobError> {
        let root = self.layout.root();
        match self.store.list(Some(root)).next().await {
            None => Ok(None),
            Some(Ok(meta)) => Ok(Some(meta.location.to_string())),
            Some(Err(source)) => Err(BlobError::object("list", root, source)),
        }
    }

    /// The generation of a drop's upload, or `None` if it has none.
    async fn upload_generation(&self, id: &DropId) -> Result<Option<String>, BlobError> {
        let key = self.layout.upload(id);
        let Some(body) = self.get_small(&key).await? else { return Ok(None) };
        let generation = String::from_utf8_lossy(&body).into_owned();
        layout::check_generation(&generation).map_err(|why| corrupt(&key, why))?;
        Ok(Some(generation))
    }

    /// A drop's blob manifest, or `None` if it has no blob.
    async fn manifest(&self, id: &DropId) -> Result<Option<Manifest>, BlobError> {
        let key = self.layout.blob(id);
        let Some(body) = self.get_small(&key).await? else { return Ok(None) };
        Manifest::parse(&body).map(Some).map_err(|why| corrupt(&key, why))
    }

    /// The whole body of a small object (a marker or a manifest), or `None`
    /// if it does not exist.
    async fn get_small(&self, key: &object_store::path::Path) -> Result<Option<bytes::Bytes>, BlobError> {
        let got = match self.store.get(key).await {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(source) => return Err(BlobError::object("read", key, source)),
        };
        got.bytes().await.map(Some).map_err(|source| BlobError::object("read", key, source))
    }

    async fn put(&self, key: &object_store::path::Path, body: impl Into<PutPayload>) -> Result<(), BlobError> {
        self.store.put(key, body.into()).await.map(drop).map_err(|source| BlobError::object("write", key, source))
    }

    /// Deletes `key`, which may already be gone.
    async fn delete(&self, key: &object_store::path::Path) -> Result<(), BlobError> {
        match self.store.delete(key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(source) => Err(BlobError::object("delete", key, source)),
        }
    }

    /// The sizes of a generation's segments, in order. Segments after a gap
    /// in the numbering (which sequential writes never leave) do not count.
    async fn segment_sizes(&self, id: &DropId, generation: &str) -> Result<Vec<u64>, BlobError> {
        let prefix = self.layout.segments(id, generation);
        let mut found: Vec<(u32, u64)> = self
            .store
            .list(Some(&prefix))
            .map_err(|source| BlobError::object("list", &prefix, source))
            .try_filter_map(|meta| async move {
                Ok(meta.location.filename().and_then(Layout::segment_index).map(|index| (index, meta.size)))
            })
            .try_collect()
            .await?;
        found.sort_unstable();
        Ok(found
            .iter()
            .enumerate()
            .take_while(|(expected, (index, _))| *index as usize == *expected)
            .map(|(_, (_, size))| *size)
            .collect())
    }

    /// Deletes every segment of a drop except those of `keep` (the
    /// generation that the upload or the blob still uses), including any
    /// left by a crash between writing a marker and cleaning up.
    async fn delete_segments_except(&self, id: &DropId, keep: Option<&str>) -> Result<(), BlobError> {
        let prefix = self.layout.drop_segments(id);
        let keep = keep.map(|generation| self.layout.segments(id, generation));
        let doomed: Vec<object_store::path::Path> = self
            .store
            .list(Some(&prefix))
            .map_err(|source| BlobError::object("list", &prefix, source))
            .try_filter_map(|meta| {
                let kept = keep.as_ref().is_some_and(|k| meta.location.prefix_matches(k));
                async move { Ok((!kept).then_some(meta.location)) }
            })
            .try_collect()
            .await?;
        if doomed.is_empty() {
            return Ok(());
        }
        let stream = futures_util::stream::iter(doomed.into_iter().map(Ok)).boxed();
        self.store.delete_stream(stream).try_for_each(|_| async { Ok(()) }).await.or_else(|e| match e {
            object_store::Error::NotFound { .. } => Ok(()),
            source => Err(BlobError::object("delete", &prefix, source)),
        })
    }

    /// Opens the bytes of `segments` (a generation's, with their sizes)
    /// from byte `start`.
    fn open_segments(&self, id: &DropId, generation: &str, sizes: &[u64], start: u64) -> BlobRead {
        let keys = (0..sizes.len()).map(|index| self.layout.segment(id, generation, index as u32)).collect();
        read::segments_from(self.store.clone(), keys, sizes, start)
    }

    /// Starts writing segments of `generation` from `next` on.
    fn writer(&self, id: &DropId, generation: String, next: u32) -> Box<dyn UploadSink> {
        Box::new(SegmentWriter::new(
            self.store.clone(),
            self.layout.segments(id, &generation),
            next,
            self.segment_size,
            self.spool.clone(),
            self.puts.clone(),
        ))
    }
}

#[async_trait]
impl BlobStore for ObjectBlobStore {
    async fn begin_upload(&self, id: &DropId) -> Result<Box<dyn UploadSink>, BlobError> {
        let generation = layout::new_generation();
        // The marker first: segments never exist without one naming them,
        // except after a crash, and deletes clear those.
        self.put(&self.layout.upload(id), generation.clone()).await?;
        let blob = self.manifest(id).await?.map(|m| m.generation);
        self.delete_segments_except(id, blob.as_deref()).await?;
        Ok(self.writer(id, generation, 0))
    }

    async fn upload_len(&self, id: &DropId) -> Result<Option<u64>, BlobError> {
        let Some(generation) = self.upload_generation(id).await? else { return Ok(None) };
        Ok(Some(self.segment_sizes(id, &generation).await?.iter().sum()))
    }

    async fn open_upload(&self, id: &DropId) -> Result<Option<BlobRead>, BlobError> {
        let Some(generation) = self.upload_generation(id).await? else { return Ok(None) };
        let sizes = self.segment_sizes(id, &generation).await?;
        Ok(Some(self.open_segments(id, &generation, &sizes, 0)))
    }

    async fn append_upload(&self, id: &DropId) -> Result<Box<dyn UploadSink>, BlobError> {
        let key = self.layout.upload(id);
        let Some(generation) = self.upload_generation(id).await? else {
            return Err(BlobError::object(
                "open",
                &key,
                object_store::Error::NotFound { path: key.to_string(), source: "the upload is gone".into() },
            ));
        };
        let next = self.segment_sizes(id, &generation).await?.len() as u32;
        Ok(self.writer(id, generation, next))
    }

    async fn promote(&self, id: &DropId) -> Result<(), BlobError> {
        let Some(generation) = self.upload_generation(id).await? else {
            return Err(BlobError::NoUpload(id.clone()));
        };
        let sizes = self.segment_sizes(id, &generation).await?;
        let manifest = Manifest { generation, segments: sizes };
        // The manifest is the blob: once written, the drop's bytes are
        // committed. A crash before the marker goes leaves both naming one
        // generation; deleting the upload then keeps the segments.
        self.put(&self.layout.blob(id), manifest.to_json()).await?;
        self.delete(&self.layout.upload(id)).await
    }

    async fn open_blob(&self, id: &DropId) -> Result<Option<BlobRead>, BlobError> {
        self.open_blob_from(id, 0).await
    }

    async fn open_blob_from(&self, id: &DropId, start: u64) -> Result<Option<BlobRead>, BlobError> {
        let Some(manifest) = self.manifest(id).await? else { return Ok(None) };
        Ok(Some(self.open_segments(id, &manifest.generation, &manifest.segments, start)))
    }

    async fn delete_blob(&self, id: &DropId) -> Result<bool, BlobError> {
        if self.manifest(id).await?.is_none() {
            return Ok(false);
        }
        // Bytes first, the manifest last (see the module's doc).
        let upload = self.upload_generation(id).await?;
        self.delete_segments_except(id, upload.as_deref()).await?;
        self.delete(&self.layout.blob(id)).await?;
        Ok(true)
    }

    async fn delete_upload(&self, id: &DropId) -> Result<bool, BlobError> {
        if self.upload_generation(id).await?.is_none() {
            return Ok(false);
        }
        let blob = self.manifest(id).await?.map(|m| m.generation);
        self.delete_segments_except(id, blob.as_deref()).await?;
        self.delete(&self.layout.upload(id)).await?;
        Ok(true)
    }

    async fn list_uploads(&self) -> Result<Vec<DropId>, BlobError> {
        list_drops(self.store.as_ref(), &self.layout.uploads()).await
    }

    async fn list_blobs(&self) -> Result<Vec<DropId>, BlobError> {
        list_drops(self.store.as_ref(), &self.layout.blobs()).await
    }

    async fn probe(&self) -> Result<(), BlobError> {
        // One small request whatever the bucket holds: the key never exists,
        // so "not found" is the answer of a store that works.
        let key = self.layout.blobs().join(".readyz-probe");
        match self.store.head(&key).await {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(source) => Err(BlobError::object("reach", &key, source)),
        }
    }
}

/// A marker or manifest that this store did not write.
fn corrupt(key: &object_store::path::Path, why: String) -> BlobError {
    BlobError::object("read", key, object_store::Error::Generic { store: "sealdrop", source: why.into() })
}

/// What an object store holds, as `check-config` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Contents {
    /// Drops with a stored blob.
    pub blobs: usize,
    /// Drops with an upload (finished or cut off).
    pub uploads: usize,
}

/// Connects to `location` as [`ObjectBlobStore::open`] does and counts what
/// is there, changing nothing (not even the spool folder). Gives up after
/// a few seconds of retries, not the minutes a running hub allows.
pub async fn survey(location: &S3Location) -> Result<Contents, BlobError> {
    let retry = object_store::RetryConfig {
        max_retries: 2,
        retry_timeout: std::time::Duration::from_secs(10),
        ..object_store::RetryConfig::default()
    };
    survey_with(AmazonS3Builder::from_env().with_retry(retry), location).await
}

/// [`survey`] through `builder` (which sets the endpoint and credentials).
pub async fn survey_with(builder: AmazonS3Builder, location: &S3Location) -> Result<Contents, BlobError> {
    let store = build(builder, location)?;
    let layout = Layout::new(location);
    Ok(Contents {
        blobs: list_drops(store.as_ref(), &layout.blobs()).await?.len(),
        uploads: list_drops(store.as_ref(), &layout.uploads()).await?.len(),
    })
}

fn build(builder: AmazonS3Builder, location: &S3Location) -> Result<Arc<dyn ObjectStore>, BlobError> {
    match builder.with_bucket_name(&location.bucket).build() {
        Ok(store) => Ok(Arc::new(store)),
        Err(source) => Err(BlobError::ObjectStore { action: "connect to", key: location.to_string(), source }),
    }
}

/// The drops named by the objects directly under `folder`.
async fn list_drops(store: &dyn ObjectStore, folder: &object_store::path::Path) -> Result<Vec<DropId>, BlobError> {
    let listed =
        store.list_with_delimiter(Some(folder)).await.map_err(|source| BlobError::object("list", folder, source))?;
    let mut ids = Vec::new();
    for object in listed.objects {
        match object.location.filename().and_then(|name| name.parse::<DropId>().ok()) {
            Some(id) => ids.push(id),
            None => tracing::warn!(key = %object.location, "ignoring an object the hub did not create"),
        }
    }
    ids.sort();
    Ok(ids)
}
