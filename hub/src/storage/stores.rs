//! The hub's stores as it holds them: one handle per narrow trait, so each
//! area (drops, the log, ciphertext bytes, ...) can come from its own back
//! end, a PostgreSQL database for the metadata and an object store for the
//! bytes say, while services and handlers stay as they are.

use std::path::Path;
use std::sync::Arc;

use super::blob::{BlobError, BlobStore, FsBlobStore};
use super::coordination::{Coordination, Exclusive};
use super::meta::{CosignatureStore, DirectoryStore, DropStore, LogStore, NonceStore, SettingsStore};
use super::object::{ObjectBlobStore, S3Location};
use super::sqlite::SqliteMetaStore;
use super::tiered::TieredBlobStore;

/// Where the hub keeps ciphertexts (`blobs`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum BlobsLocation {
    /// `files`: in the data directory (small ones in its database), the
    /// embedded default that needs no server.
    #[default]
    Files,
    /// `s3://bucket/prefix`: in an S3-compatible object store, so several
    /// instances can share them; the endpoint, region and credentials come
    /// the standard AWS ways (`AWS_ENDPOINT_URL`, `AWS_REGION`,
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, instance roles).
    S3(S3Location),
}

impl BlobsLocation {
    /// Parses `files` or `s3://bucket/prefix`; the error says what is expected.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "files" => Ok(Self::Files),
            s3 if s3.starts_with("s3://") => S3Location::parse(s3).map(Self::S3),
            _ => Err("give `files` (the default: in the data directory) or s3://BUCKET/PREFIX (an S3-compatible \
                      object store; endpoint and credentials from the AWS_* variables)"
                .to_owned()),
        }
    }
}

impl std::fmt::Display for BlobsLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Files => f.write_str("files"),
            Self::S3(location) => location.fmt(f),
        }
    }
}

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
        let large: Arc<dyn BlobStore> = match blobs {
            BlobsLocation::Files => Arc::new(FsBlobStore::open(data_dir)?),
            BlobsLocation::S3(location) => Arc::new(ObjectBlobStore::open(location, data_dir)?),
        };
        let blobs = TieredBlobStore::new(meta.inline_blobs(), large);
        let meta = Arc::new(meta);
        Ok(Self {
            settings: meta.clone(),
            directories: meta.clone(),
            drops: meta.clone(),
            nonces: meta.clone(),
            log: meta.clone(),
            cosignatures: meta,
            blobs: Arc::new(blobs),
            coordination: Arc::new(Exclusive),
        })
    }
}
