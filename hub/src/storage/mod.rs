//! The hub's storage, behind narrow interfaces: [`BlobStore`] for
//! ciphertext bytes, and for everything else one trait per area
//! ([`SettingsStore`], [`DirectoryStore`], [`DropStore`], [`NonceStore`],
//! [`LogStore`], [`CosignatureStore`]), all async. The hub holds one handle
//! per trait ([`Stores`]), so other back ends can be added, each for the
//! areas it suits, without touching services or handlers:
//! [`ObjectBlobStore`] keeps blobs in an S3-compatible object store, and
//! [`postgres::PgMetaStore`] the metadata in PostgreSQL (not yet chosen
//! by the hub's configuration).

pub mod blob;
#[cfg(test)]
pub(crate) mod conformance;
mod convert;
pub mod coordination;
mod direct;
mod frontier;
pub mod group_sync;
mod locations;
pub mod meta;
#[cfg(test)]
pub(crate) mod meta_conformance;
pub mod object;
pub mod postgres;
pub mod scrub;
pub mod sqlite;
mod stores;
pub mod tiered;
pub mod whole;

pub use blob::{BlobError, BlobRead, BlobStore, FsBlobStore, UploadSink};
pub use coordination::{Coordination, Exclusive};
pub use locations::{Backends, BlobsLocation, DatabaseLocation, PostgresUrl, redact_password};
pub use meta::{CosignatureStore, DirectoryStore, DropStore, LogStore, MetaError, NonceStore, SettingsStore};
pub use object::{ObjectBlobStore, S3Location};
pub use sqlite::SqliteMetaStore;
pub use stores::Stores;
pub use tiered::TieredBlobStore;
