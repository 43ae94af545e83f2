//! sealdrop's signed transfer log, in the formats the transparency-log world
//! uses (C2SP signed-note, tlog-checkpoint, tlog-cosignature, tlog-tiles,
//! tlog-proof; RFC 6962 Merkle trees via the `tlog_tiles` crate).
//!
//! Pure: no files, sockets or policy. Which module to use when:
//! - [`entry`]: what one log entry holds, and the hub's signed statements.
//! - [`checkpoint`]: signing and verifying checkpoints.
#![forbid(unsafe_code)]

pub mod checkpoint;
pub mod entry;

pub use tlog_tiles::Hash;
