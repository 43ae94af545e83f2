//! The hub's stores as it holds them: one handle per narrow trait, so each
//! area (drops, the log, ciphertext bytes, ...) can come from its own back
//! end, a PostgreSQL database for the metadata and an object store for the
//! bytes say, while services and handlers stay as they are.

use std::path::Path;
use std::sync::Arc;

use super::blob::{BlobError, BlobStore, FsBlobStore};
use super::coordination::{Coordination, Exclusive};
use super::locations::BlobsLocation;
use super::meta::{CosignatureStore, DirectoryStore, DropStore, LogStore, NonceStore, SettingsStore};
use super::object::ObjectBlobStore;
use super::postgres::PgMetaStore;
use super::sqlite::SqliteMetaStore;
use super::tiered::TieredBlobStore;
use super::whole::WholeDropStore;

/// Everything the hub stores, by area.
#[derive(Clone)]
pub struct Stores {
    /// The origin, the authority key and markers, read when the hub opens.
    pub settings: Arc<dyn SettingsStore>,
    /// The directory versions the hub accepted, served to auditors.
    pub directories: Arc<dyn DirectoryStore>,
    /// Drops and their recipients' progress: the drop state machine.
    pub drops: Arc<dyn DropStore>,
    /// Request nonces seen recently, so a signed request is served once.
    pub nonces: Arc<dyn NonceStore>,
    /// The transfer log's entries, tree hashes and checkpoints.
    pub log: Arc<dyn LogStore>,
    /// Witnesses' cosignatures, served with the checkpoints.
    pub cosignatures: Arc<dyn CosignatureStore>,
    /// The ciphertexts and uploads in progress.
    pub blobs: Arc<dyn BlobStore>,
    /// Small drops stored whole, rows and ciphertext in one transaction,
    /// where the back end keeps small ciphertexts with the drops (SQLite);
    /// `None` elsewhere.
    pub whole: Option<Arc<dyn WholeDropStore>>,
    /// Turns at the log and the lead of periodic work among the instances
    /// on these stores (one, on the embedded ones).
    pub coordination: Arc<dyn Coordination>,
}

impl std::fmt::Debug for Stores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Stores")
    }
}

impl Stores {
    /// The embedded default: every metadata area in one SQLite database
    /// (`meta`), small ciphertexts in it too and larger ones as files under
    /// `data_dir` (see [`TieredBlobStore`]).
    pub fn sqlite(meta: SqliteMetaStore, data_dir: &Path) -> Result<Self, BlobError> {
        Self::sqlite_with(meta, data_dir, &BlobsLocation::Files)
    }

    /// Every metadata area in one SQLite database (`meta`), small
    /// ciphertexts in it too and larger ones where `blobs` says: files under
    /// `data_dir`, or an object store (which spools under `data_dir`).
    pub fn sqlite_with(meta: SqliteMetaStore, data_dir: &Path, blobs: &BlobsLocation) -> Result<Self, BlobError> {
        let large = blob_store(data_dir, blobs)?;
        let blobs = TieredBlobStore::new(meta.inline_blobs(), large);
        let meta = Arc::new(meta);
        Ok(Self {
            settings: meta.clone(),
            directories: meta.clone(),
            drops: meta.clone(),
            nonces: meta.clone(),
            log: meta.clone(),
            cosignatures: meta.clone(),
            blobs: Arc::new(blobs),
            whole: Some(meta),
            coordination: Arc::new(Exclusive),
        })
    }

    /// Every metadata area in one PostgreSQL database (`meta`) that several
    /// instances may share, and every ciphertext where `blobs` says: an
    /// object store for several instances, or files under `data_dir` for
    /// one. PostgreSQL holds no ciphertext (no inline tier): its rows are
    /// for the metadata every instance reads, and a shared object store
    /// takes small objects as well as large.
    pub fn postgres(meta: PgMetaStore, data_dir: &Path, blobs: &BlobsLocation) -> Result<Self, BlobError> {
        let blobs = blob_store(data_dir, blobs)?;
        let meta = Arc::new(meta);
        Ok(Self {
            settings: meta.clone(),
            directories: meta.clone(),
            drops: meta.clone(),
            nonces: meta.clone(),
            log: meta.clone(),
            cosignatures: meta.clone(),
            blobs,
            whole: None,
            coordination: meta,
        })
    }
}

/// The store `blobs` names: files under `data_dir`, or an object store
/// (which spools under `data_dir`).
fn blob_store(data_dir: &Path, blobs: &BlobsLocation) -> Result<Arc<dyn BlobStore>, BlobError> {
    Ok(match blobs {
        BlobsLocation::Files => Arc::new(FsBlobStore::open(data_dir)?),
        BlobsLocation::S3(location) => Arc::new(ObjectBlobStore::open(location, data_dir)?),
    })
}
