//! The hub's storage, behind narrow interfaces: [`BlobStore`] for
//! ciphertext bytes, and for everything else one trait per area
//! ([`SettingsStore`], [`DirectoryStore`], [`DropStore`], [`NonceStore`],
//! [`LogStore`], [`CosignatureStore`]; [`MetaStore`] is all of them).
//! Handlers only see the traits, so other back ends can be added:
//! [`ObjectBlobStore`] keeps blobs in an S3-compatible object store.

pub mod blob;
#[cfg(test)]
mod conformance;
mod direct;
pub mod group_sync;
pub mod meta;
pub mod object;
pub mod scrub;
pub mod sqlite;
pub mod tiered;

pub use blob::{BlobError, BlobRead, BlobStore, FsBlobStore, UploadSink};
pub use meta::{
    CosignatureStore, DirectoryStore, DropStore, LogStore, MetaError, MetaStore, NonceStore, SettingsStore,
};
pub use object::{ObjectBlobStore, S3Location};
pub use sqlite::SqliteMetaStore;
pub use tiered::TieredBlobStore;
