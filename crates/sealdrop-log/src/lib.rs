//! sealdrop's signed transfer log, in the formats the transparency-log world
//! uses (C2SP signed-note, tlog-checkpoint, tlog-cosignature, tlog-tiles,
//! tlog-proof; RFC 6962 Merkle trees via the `tlog_tiles` crate).
//!
//! Pure: no files or sockets. Which module to use when:
//! - [`entry`]: what one log entry holds, and the hub's signed statements.
//! - [`checkpoint`]: signing and verifying checkpoints.
//! - [`tree`]: the Merkle tree: [`tree::MemoryTree`] to build a log and its
//!   proofs, [`tree::verify_inclusion`] / [`tree::verify_consistency`] to
//!   check proofs, [`tree::root_of_entries`] to recompute a root while
//!   streaming entries.
//! - [`tiles`]: tlog-tiles paths ([`tiles::TilePath`]), entry bundles and
//!   hash tiles, for serving or reading the log as static files.
//! - [`cosign`]: witness cosignatures on checkpoints (making, adding to the
//!   note, verifying).
//! - [`proof`]: offline `.tlog-proof` files proving one entry is logged.
//! - [`bundle`]: the audit bundle file (a tar of the checkpoint, keys,
//!   directory versions and entry bundles), written and read streaming.
//! - [`policy`]: the rules decided from the log that the hub enforces, the
//!   client relies on and the audit checks (bounded downloads, an
//!   acknowledgement only after a download, revoked keys by commit time).
//! - [`audit`]: the offline audit of a whole log: tree, signatures,
//!   directory versions and drop lifecycle rules.
//! - `testlog` (hidden): realistic generated logs for tests and benchmarks.
#![forbid(unsafe_code)]

pub mod audit;
pub mod bundle;
pub mod checkpoint;
pub mod cosign;
pub mod entry;
mod notes;
pub mod policy;
pub mod proof;
#[doc(hidden)]
pub mod testlog;
pub mod tiles;
pub mod tree;

pub use tlog_tiles::Hash;
