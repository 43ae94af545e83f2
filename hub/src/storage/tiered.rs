//! The hub's [`BlobStore`]: ciphertexts of at most [`INLINE_MAX`] bytes in
//! a table of the hub's database ([`InlineBlobs`]), larger ones in a large
//! tier, files ([`super::FsBlobStore`]) or an object store
//! ([`super::ObjectBlobStore`]). Handlers see one store either way.
//!
//! Why: most drops between councils are small (a list, a plan), and a file
//! per small drop cost more than everything else the hub does for it (a
//! file creation, two fsyncs and a rename; on ext4 without a journal every
//! creation also skips each recently deleted inode one by one). A row
//! rides the WAL sync its drop's commit waits for anyway. With an object
//! store the gap is wider still: a small drop would cost a marker, a
//! segment and a manifest PUT and as many DELETEs, each a round trip.
//!
//! An upload is held in memory until it passes [`INLINE_MAX`] (then it
//! moves to the large tier and goes on there) or finishes (then it becomes a row).
//! A drop's bytes are in exactly one place: writing one kind removes the
//! other, so lookups may try the table first and the large tier second.

use std::io::Cursor;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use sealdrop_proto::ids::DropId;

use std::sync::Arc;

use super::blob::{BlobError, BlobRead, BlobStore, UploadSink};
use super::meta::MetaError;
use super::sqlite::{BlobStage, InlineBlobs};

/// Ciphertexts up to this size are kept in the database.
pub const INLINE_MAX: usize = 64 * 1024;

/// Small ciphertexts in the database, larger ones in the large tier.
#[derive(Clone)]
pub struct TieredBlobStore {
    /// The small ones.
    inline: InlineBlobs,
    /// The rest, and uploads that grew past [`INLINE_MAX`].
    large: Arc<dyn BlobStore>,
}

impl std::fmt::Debug for TieredBlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TieredBlobStore").field("inline", &self.inline).finish_non_exhaustive()
    }
}

impl TieredBlobStore {
    /// Uses `inline` for small ciphertexts and `large` for the rest.
    pub fn new(inline: InlineBlobs, large: Arc<dyn BlobStore>) -> Self {
        Self { inline, large }
    }

    /// Runs a call on the inline table on the database's thread.
    async fn inline<R: Send + 'static>(
        &self,
        id: &DropId,
        f: impl FnOnce(&InlineBlobs, &DropId) -> Result<R, MetaError> + Send + 'static,
    ) -> Result<R, BlobError> {
        let key = id.clone();
        self.inline.call(move |inline| f(inline, &key)).await.map_err(|source| BlobError::Database {
            action: "keep",
            id: id.clone(),
            source: Box::new(source),
        })
    }

    /// An upload of drop `id` that holds `held` so far (see [`TieredUpload`]).
    fn upload(&self, id: &DropId, held: BytesMut, discard_large: bool) -> Box<dyn UploadSink> {
        Box::new(TieredUpload { store: self.clone(), id: id.clone(), state: Tier::Held(held), discard_large })
    }

    /// The drops with a row at `stage`.
    async fn list_inline(&self, stage: BlobStage) -> Result<Vec<DropId>, BlobError> {
        self.inline.call(move |inline| inline.list(stage)).await.map_err(|source| BlobError::Io {
            action: "list",
            path: "the ciphertexts in the database".into(),
            source: std::io::Error::other(source.to_string()),
        })
    }
}

fn in_memory(data: Vec<u8>, start: u64) -> BlobRead {
    let len = data.len() as u64;
    let start = start.min(len);
    let mut cursor = Cursor::new(data);
    cursor.set_position(start);
    BlobRead { reader: Box::pin(cursor), len: len - start }
}

/// An upload that becomes a row if it stays small, or a file once it grows.
struct TieredUpload {
    store: TieredBlobStore,
    id: DropId,
    state: Tier,
    /// Whether an earlier upload of the drop in the large tier must be
    /// removed when this one ends as a row: not for a drop created just
    /// now ([`BlobStore::begin_new_upload`]).
    discard_large: bool,
}

enum Tier {
    /// Held in memory: what a row will hold (an earlier prefix first, for a
    /// continued upload).
    Held(BytesMut),
    /// Moved to an upload of the large tier, which takes every later chunk.
    Large(Box<dyn UploadSink>),
}

#[async_trait]
impl UploadSink for TieredUpload {
    async fn write(&mut self, chunk: Bytes) -> Result<(), BlobError> {
        match &mut self.state {
            Tier::Held(held) if held.len() + chunk.len() <= INLINE_MAX => {
                held.extend_from_slice(&chunk);
                Ok(())
            }
            Tier::Held(held) => {
                // Too large for a row: the large tier takes what was held, then the rest.
                let held = std::mem::take(held).freeze();
                let mut large = self.store.large.begin_upload(&self.id).await?;
                if !held.is_empty() {
                    large.write(held).await?;
                }
                large.write(chunk).await?;
                self.state = Tier::Large(large);
                // An earlier, smaller upload of this drop must not outlive this one.
                self.store.inline(&self.id, |t, id| t.delete(id, BlobStage::Upload)).await?;
                Ok(())
            }
            Tier::Large(large) => large.write(chunk).await,
        }
    }

    async fn finish(self: Box<Self>) -> Result<(), BlobError> {
        let Self { store, id, state, discard_large } = *self;
        match state {
            Tier::Held(held) => {
                store.inline(&id, move |t, id| t.put_upload(id, &held)).await?;
                if !discard_large {
                    return Ok(());
                }
                // An earlier, larger upload of this drop (rare: a replaced
                // upload) must not outlive this one. After the row, so a
                // failure in between leaves this upload, not neither.
                store.large.delete_upload(&id).await.map(drop)
            }
            Tier::Large(large) => large.finish().await,
        }
    }
}

#[async_trait]
impl BlobStore for TieredBlobStore {
    async fn begin_upload(&self, id: &DropId) -> Result<Box<dyn UploadSink>, BlobError> {
        Ok(self.upload(id, BytesMut::new(), true))
    }

    async fn begin_new_upload(&self, id: &DropId) -> Result<Box<dyn UploadSink>, BlobError> {
        Ok(self.upload(id, BytesMut::new(), false))
    }

    async fn upload_len(&self, id: &DropId) -> Result<Option<u64>, BlobError> {
        match self.inline(id, |t, id| t.len(id, BlobStage::Upload)).await? {
            Some(len) => Ok(Some(len)),
            None => self.large.upload_len(id).await,
        }
    }

    async fn open_upload(&self, id: &DropId) -> Result<Option<BlobRead>, BlobError> {
        match self.inline(id, |t, id| t.get(id, BlobStage::Upload)).await? {
            Some(data) => Ok(Some(in_memory(data, 0))),
            None => self.large.open_upload(id).await,
        }
    }

    async fn append_upload(&self, id: &DropId) -> Result<Box<dyn UploadSink>, BlobError> {
        match self.inline(id, |t, id| t.get(id, BlobStage::Upload)).await? {
            // Continued in memory: the row is written again, whole, at the end.
            Some(data) => Ok(self.upload(id, BytesMut::from(data.as_slice()), true)),
            None => self.large.append_upload(id).await,
        }
    }

    async fn promote(&self, id: &DropId) -> Result<(), BlobError> {
        if self.inline(id, |t, id| t.promote(id)).await? {
            return Ok(());
        }
        self.large.promote(id).await
    }

    async fn open_blob(&self, id: &DropId) -> Result<Option<BlobRead>, BlobError> {
        self.open_blob_from(id, 0).await
    }

    async fn open_blob_from(&self, id: &DropId, start: u64) -> Result<Option<BlobRead>, BlobError> {
        match self.inline(id, |t, id| t.get(id, BlobStage::Blob)).await? {
            Some(data) => Ok(Some(in_memory(data, start))),
            None => self.large.open_blob_from(id, start).await,
        }
    }

    async fn delete_blob(&self, id: &DropId) -> Result<bool, BlobError> {
        let inline = self.inline(id, |t, id| t.delete(id, BlobStage::Blob)).await?;
        Ok(self.large.delete_blob(id).await? || inline)
    }

    async fn delete_upload(&self, id: &DropId) -> Result<bool, BlobError> {
        let inline = self.inline(id, |t, id| t.delete(id, BlobStage::Upload)).await?;
        Ok(self.large.delete_upload(id).await? || inline)
    }

    async fn list_uploads(&self) -> Result<Vec<DropId>, BlobError> {
        Ok(union(self.list_inline(BlobStage::Upload).await?, self.large.list_uploads().await?))
    }

    async fn list_blobs(&self) -> Result<Vec<DropId>, BlobError> {
        Ok(union(self.list_inline(BlobStage::Blob).await?, self.large.list_blobs().await?))
    }

    async fn probe(&self) -> Result<(), BlobError> {
        // The inline tier is the database, which `/readyz` checks on its own.
        self.large.probe().await
    }
}

fn union(mut ids: Vec<DropId>, more: Vec<DropId>) -> Vec<DropId> {
    ids.extend(more);
    ids.sort();
    ids.dedup();
    ids
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt as _;

    use super::*;
    use crate::storage::SqliteMetaStore;
    use crate::storage::blob::FsBlobStore;

    struct Store {
        dir: tempfile::TempDir,
        store: TieredBlobStore,
        files: FsBlobStore,
    }

    fn open_in(dir: tempfile::TempDir) -> Store {
        let meta = SqliteMetaStore::open(&dir.path().join("hub.db")).unwrap();
        let files = FsBlobStore::open(dir.path()).unwrap();
        Store { store: TieredBlobStore::new(meta.inline_blobs(), Arc::new(files.clone())), files, dir }
    }

    fn store() -> Store {
        open_in(tempfile::tempdir().unwrap())
    }

    fn bytes(n: usize, seed: u8) -> Vec<u8> {
        (0..n).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
    }

    /// Writes `data` in 16 KiB chunks and finishes.
    async fn write(mut sink: Box<dyn UploadSink>, data: &[u8]) {
        for chunk in data.chunks(16 * 1024) {
            sink.write(Bytes::copy_from_slice(chunk)).await.unwrap();
        }
        sink.finish().await.unwrap();
    }

    async fn read(r: Option<BlobRead>) -> Vec<u8> {
        let mut r = r.expect("stored");
        let mut out = Vec::new();
        r.reader.read_to_end(&mut out).await.unwrap();
        assert_eq!(out.len() as u64, r.len, "the length told matches the bytes");
        out
    }

    impl Store {
        fn stage(&self, id: &DropId) -> Option<(BlobStage, usize)> {
            let t = self.store.inline.clone();
            [BlobStage::Upload, BlobStage::Blob].into_iter().find_map(|s| t.get(id, s).unwrap().map(|d| (s, d.len())))
        }
    }

    #[tokio::test]
    async fn a_small_ciphertext_lives_in_the_database_from_upload_to_deletion() {
        let s = store();
        let id = DropId::random();
        let data = bytes(INLINE_MAX, 1);
        write(s.store.begin_upload(&id).await.unwrap(), &data).await;
        assert_eq!(s.stage(&id), Some((BlobStage::Upload, INLINE_MAX)));
        assert!(!s.files.upload_path(&id).exists(), "no file for a small upload");
        assert_eq!(s.store.upload_len(&id).await.unwrap(), Some(INLINE_MAX as u64));
        assert_eq!(read(s.store.open_upload(&id).await.unwrap()).await, data);
        assert!(s.store.open_blob(&id).await.unwrap().is_none(), "an upload is not readable as a blob");
        assert_eq!(s.store.list_uploads().await.unwrap(), vec![id.clone()]);

        s.store.promote(&id).await.unwrap();
        assert_eq!(s.stage(&id), Some((BlobStage::Blob, INLINE_MAX)));
        assert!(!s.files.blob_path(&id).exists());
        assert_eq!(s.store.list_uploads().await.unwrap(), vec![]);
        assert_eq!(s.store.list_blobs().await.unwrap(), vec![id.clone()]);
        assert_eq!(read(s.store.open_blob(&id).await.unwrap()).await, data);
        assert_eq!(read(s.store.open_blob_from(&id, 1000).await.unwrap()).await, data[1000..]);
        assert_eq!(read(s.store.open_blob_from(&id, 1 << 20).await.unwrap()).await, b"");
        assert!(matches!(s.store.promote(&id).await, Err(BlobError::NoUpload(_))), "promoted once only");

        assert!(s.store.delete_blob(&id).await.unwrap());
        assert_eq!(s.stage(&id), None);
        assert!(!s.store.delete_blob(&id).await.unwrap(), "deleting twice reports nothing deleted");
    }

    #[tokio::test]
    async fn a_new_drops_small_upload_leaves_the_large_tier_alone_and_is_what_is_read() {
        let s = store();
        let id = DropId::random();
        // A large upload of this id left behind (say, by a crash).
        write(s.files.begin_upload(&id).await.unwrap(), &bytes(INLINE_MAX + 1, 7)).await;
        let data = bytes(1000, 8);
        write(s.store.begin_new_upload(&id).await.unwrap(), &data).await;
        assert!(s.files.upload_path(&id).exists(), "no call to the large tier for a drop created just now");
        assert_eq!(read(s.store.open_upload(&id).await.unwrap()).await, data, "the row is read, not the leftover");
        s.store.promote(&id).await.unwrap();
        assert_eq!(read(s.store.open_blob(&id).await.unwrap()).await, data);
        // The upload of an existing drop still discards a larger earlier one.
        let other = DropId::random();
        write(s.files.begin_upload(&other).await.unwrap(), &bytes(INLINE_MAX + 1, 9)).await;
        write(s.store.begin_upload(&other).await.unwrap(), &data).await;
        assert!(!s.files.upload_path(&other).exists());
    }

    #[tokio::test]
    async fn a_larger_ciphertext_goes_to_a_file() {
        let s = store();
        let id = DropId::random();
        let data = bytes(INLINE_MAX + 1, 2);
        write(s.store.begin_upload(&id).await.unwrap(), &data).await;
        assert_eq!(s.stage(&id), None, "no row for a large upload");
        assert_eq!(std::fs::read(s.files.upload_path(&id)).unwrap(), data);
        s.store.promote(&id).await.unwrap();
        assert_eq!(std::fs::read(s.files.blob_path(&id)).unwrap(), data);
        assert_eq!(read(s.store.open_blob_from(&id, 7).await.unwrap()).await, data[7..]);
        assert_eq!(s.store.list_blobs().await.unwrap(), vec![id.clone()]);
        assert!(s.store.delete_blob(&id).await.unwrap());
        assert!(!s.files.blob_path(&id).exists());
    }

    #[tokio::test]
    async fn a_new_upload_replaces_the_old_one_wherever_either_lives() {
        let s = store();
        let id = DropId::random();
        let (small, large) = (bytes(5000, 3), bytes(3 * INLINE_MAX, 4));
        write(s.store.begin_upload(&id).await.unwrap(), &small).await;
        write(s.store.begin_upload(&id).await.unwrap(), &large).await;
        assert_eq!(s.stage(&id), None, "the small upload's row went");
        assert_eq!(read(s.store.open_upload(&id).await.unwrap()).await, large);
        write(s.store.begin_upload(&id).await.unwrap(), &small).await;
        assert!(!s.files.upload_path(&id).exists(), "the large upload's file went");
        assert_eq!(read(s.store.open_upload(&id).await.unwrap()).await, small);
        assert_eq!(s.store.list_uploads().await.unwrap(), vec![id.clone()]);
        assert!(s.store.delete_upload(&id).await.unwrap());
        assert_eq!(s.store.upload_len(&id).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_cut_off_small_upload_is_continued_in_the_database_or_moves_to_a_file() {
        let s = store();
        let id = DropId::random();
        let whole = bytes(INLINE_MAX + 10_000, 5);
        // Cut off after 10,000 bytes (the handler finishes what arrived).
        write(s.store.begin_upload(&id).await.unwrap(), &whole[..10_000]).await;
        // Continued with 20,000 more: still small.
        write(s.store.append_upload(&id).await.unwrap(), &whole[10_000..30_000]).await;
        assert_eq!(s.stage(&id), Some((BlobStage::Upload, 30_000)));
        // Continued past the limit: the whole upload moves to a file.
        write(s.store.append_upload(&id).await.unwrap(), &whole[30_000..]).await;
        assert_eq!(s.stage(&id), None);
        assert_eq!(std::fs::read(s.files.upload_path(&id)).unwrap(), whole);
        // And continues there.
        write(s.store.append_upload(&id).await.unwrap(), b"more").await;
        assert_eq!(s.store.upload_len(&id).await.unwrap(), Some(whole.len() as u64 + 4));
        assert!(s.store.append_upload(&DropId::random()).await.is_err(), "nothing to continue");
    }

    /// `n` bytes that repeat nowhere (unlike [`bytes`], whose runs recur
    /// in every other seed's): xorshift64 from `seed`.
    fn random(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    /// Whether any file under `dir` holds `needle`.
    fn found_in(dir: &std::path::Path, needle: &[u8]) -> Vec<String> {
        let mut hits = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                hits.extend(found_in(&path, needle));
            } else if std::fs::read(&path).unwrap().windows(needle.len()).any(|w| w == needle) {
                hits.push(path.display().to_string());
            }
        }
        hits
    }

    #[tokio::test]
    async fn a_deleted_small_ciphertext_leaves_no_byte_in_the_database_files() {
        let s = store();
        // Sizes that fit a page, span overflow pages, and fill a row.
        for (n, len) in [(0u8, 3000), (1, 20_000), (2, INLINE_MAX)] {
            let (kept, gone) = (DropId::random(), DropId::random());
            let (keep, data) = (random(len, 100 + u64::from(n)), random(len, 200 + u64::from(n)));
            write(s.store.begin_upload(&kept).await.unwrap(), &keep).await;
            write(s.store.begin_upload(&gone).await.unwrap(), &data).await;
            s.store.promote(&kept).await.unwrap();
            s.store.promote(&gone).await.unwrap();
            let run = &data[len / 2..len / 2 + 64];
            assert!(!found_in(s.dir.path(), run).is_empty(), "the test must see the bytes while they are stored");
            assert!(s.store.delete_blob(&gone).await.unwrap());
            assert_eq!(found_in(s.dir.path(), run), Vec::<String>::new(), "{len} bytes: deleted but still on disk");
            assert!(!found_in(s.dir.path(), &keep[len / 2..len / 2 + 64]).is_empty(), "the other drop is kept");
        }
        // An upload abandoned before it was committed, likewise.
        let id = DropId::random();
        let data = random(10_000, 77);
        write(s.store.begin_upload(&id).await.unwrap(), &data).await;
        assert!(!found_in(s.dir.path(), &data[5000..5064]).is_empty());
        assert!(s.store.delete_upload(&id).await.unwrap());
        assert!(found_in(s.dir.path(), &data[5000..5064]).is_empty());
    }

    #[tokio::test]
    async fn small_ciphertexts_survive_reopening_and_listings_cover_both_kinds() {
        let s = store();
        let (a, b, c) = (DropId::random(), DropId::random(), DropId::random());
        write(s.store.begin_upload(&a).await.unwrap(), &bytes(100, 6)).await;
        write(s.store.begin_upload(&b).await.unwrap(), &bytes(INLINE_MAX * 2, 7)).await;
        write(s.store.begin_upload(&c).await.unwrap(), &bytes(200, 8)).await;
        s.store.promote(&a).await.unwrap();
        s.store.promote(&b).await.unwrap();
        let mut blobs = vec![a.clone(), b.clone()];
        blobs.sort();
        let Store { dir, store, files } = s;
        drop((store, files));
        let s = open_in(dir);
        assert_eq!(s.store.list_blobs().await.unwrap(), blobs);
        assert_eq!(s.store.list_uploads().await.unwrap(), vec![c.clone()]);
        assert_eq!(read(s.store.open_blob(&a).await.unwrap()).await, bytes(100, 6));
        assert_eq!(read(s.store.open_blob(&b).await.unwrap()).await, bytes(INLINE_MAX * 2, 7));
    }
}
