//! The hub's storage, behind two narrow interfaces: [`BlobStore`] for
//! ciphertext bytes and [`MetaStore`] for everything else. Handlers only see
//! the traits, so other back ends (S3, PostgreSQL) can be added later.

pub mod blob;
mod direct;
pub mod group_sync;
mod log_index;
pub mod meta;
pub mod scrub;
pub mod sqlite;
mod sqlite_log;
pub mod tiered;

pub use blob::{BlobError, BlobRead, BlobStore, FsBlobStore, UploadSink};
pub use meta::{MetaError, MetaStore};
pub use sqlite::SqliteMetaStore;
pub use tiered::TieredBlobStore;
