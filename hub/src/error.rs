//! Errors from setting up and opening a hub (not from serving requests: those
//! are [`crate::api::ApiError`]). Each message is one line that says what is
//! wrong and what to do, because the binary prints it as `error: <message>`.

use std::path::PathBuf;

use sealdrop_log::entry::EntryError;
use sealdrop_proto::directory::DirectoryError;

use crate::storage::{BlobError, MetaError};

/// Why the hub could not be initialised or opened.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error(
        "origin {origin:?} is not valid: {reason} (use a short name without spaces, e.g. `hub.example.gov.uk/sealdrop`)"
    )]
    BadOrigin { origin: String, reason: &'static str },
    #[error("{} is not empty: choose a new or empty directory for the hub's data", .0.display())]
    DataDirNotEmpty(PathBuf),
    #[error("{} already holds an initialised hub: serve it with `sealdrop-hub serve --data {}`", .0.display(), .0.display())]
    AlreadyInitialised(PathBuf),
    #[error(
        "{} is not an initialised hub data directory: run `sealdrop-hub init --data {}` first",
        .0.display(), .0.display()
    )]
    NotInitialised(PathBuf),
    #[error("cannot use the database {database}: {source}{}", database_hint(.source))]
    Database {
        database: String,
        #[source]
        source: MetaError,
    },
    #[error("the database {0} holds no hub: run `sealdrop-hub init --database ...` with it first")]
    DatabaseHoldsNoHub(String),
    #[error(
        "the database {database} already holds hub {origin:?}: serve it (copy its log.key into this instance's data \
         directory), or give `init` an empty database"
    )]
    DatabaseHoldsAHub { database: String, origin: String },
    #[error(
        "{blobs} already holds {count} objects: give `init` an empty bucket or a new prefix, so no two hubs share one"
    )]
    BlobsNotEmpty { blobs: String, count: usize },
    #[error(
        "this hub's ciphertexts are in {recorded}, not {given}: set `blobs = \"{recorded}\"` (the ciphertexts \
         it holds are there)"
    )]
    BlobsElsewhere { recorded: String, given: String },
    #[error("cannot {action} {}: {source}", .path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "--authority {0:?} is neither a signed-note verifier key (`name+8hex+base64`) nor a readable file containing one"
    )]
    BadAuthority(String),
    #[error("the directory is not acceptable: {0} (ask the coordinator for a directory signed by the authority key)")]
    Directory(#[source] DirectoryError),
    #[error(
        "{} is readable by group or others: the hub's log key must be private; run `chmod 600 {}`",
        .0.display(), .0.display()
    )]
    LogKeyExposed(PathBuf),
    #[error("{} is not a valid log key for origin {origin:?}: {reason}", .path.display())]
    BadLogKey { path: PathBuf, origin: String, reason: String },
    #[error("the hub database is damaged or from another version: {0}")]
    Corrupt(String),
    #[error(
        "the transfer log is inconsistent: {0}. Do not serve this hub until its operator has investigated: \
         a log that changed its history cannot be trusted (compare the database with a backup and with the \
         checkpoints witnesses hold)"
    )]
    LogInconsistent(String),
    #[error("cannot write a transfer log entry: {0}")]
    LogEntry(#[from] EntryError),
    #[error("hub database: {0}")]
    Meta(#[from] MetaError),
    #[error("hub storage: {0}")]
    Blob(#[from] BlobError),
    #[error("an internal task failed: {0}")]
    Internal(String),
}

impl HubError {
    /// An I/O failure on `path` while doing `action` ("create", "read", ...).
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { action, path: path.into(), source }
    }
}

/// What to check when the database cannot be used, unless the error
/// already says what to change (a bad URL, a certificate, the schema).
fn database_hint(error: &MetaError) -> &'static str {
    match error {
        MetaError::PostgresConfig(_) => "",
        _ => {
            "; check that PostgreSQL runs there and that `database` (user, password, host, port, database name) is right"
        }
    }
}
