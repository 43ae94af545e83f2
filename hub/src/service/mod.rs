//! The hub's operations on drops, without HTTP: each takes the [`Caller`]
//! and its request, runs the drop's state machine (locks, blob steps, quota,
//! log appends) and returns its answer or a [`DropError`]. The handlers in
//! [`crate::api`] only extract the request, call a service and map the
//! result, so another front end, or another store behind [`Hub`], changes
//! nothing here.
//!
//! - [`create`]: the sender announces a drop.
//! - [`upload`]: the sender streams the ciphertext, fresh or continued.
//! - [`commit`]: the sender's signed manifest makes a drop visible.
//! - [`put`]: a small drop created, uploaded and committed in one request,
//!   under the same checks as the three steps above.
//! - [`fetch`]: a recipient's inbox and download.
//! - [`ack`]: a recipient's signed receipt; the last one delivers the drop.
//! - [`recall`]: the sender takes back a drop nobody has acknowledged.
//! - [`withdraw`]: the sender removes a drop it never committed.
//! - [`reads`]: a drop's details and the sender's view of its progress.
//! - `agreement`: the sharing agreement's rules, as create, commit and fetch apply them.

pub mod ack;
mod agreement;
mod caller;
pub mod commit;
pub mod cosign;
pub mod create;
mod error;
pub mod fetch;
pub mod put;
pub mod quota;
pub mod reads;
pub mod recall;
pub mod upload;
pub mod withdraw;

use jiff::Timestamp;
use sealdrop_log::entry::{EntryError, LogEntry};
use sealdrop_proto::ids::DropId;
use sealdrop_proto::request::RequestAuth;

pub use caller::Caller;
pub use error::{DropError, INTERNAL_MESSAGE, STORAGE_FULL_MESSAGE};

use crate::hub::Hub;
use crate::storage::meta::DropRecord;

/// The evidence of a signed request that the transfer log keeps as the
/// member's own word (a recall, a download).
pub struct RequestEvidence<'a> {
    /// The request's verified signature headers.
    pub auth: &'a RequestAuth,
    /// The path and query the member signed.
    pub signed_path: &'a str,
}

/// The drop operations of one hub.
#[derive(Clone, Copy)]
pub struct Drops<'h> {
    hub: &'h Hub,
}

impl<'h> Drops<'h> {
    /// The drop operations of `hub`.
    pub fn new(hub: &'h Hub) -> Self {
        Self { hub }
    }

    /// Loads a drop, or `not_found`.
    async fn load(&self, id: &DropId) -> Result<DropRecord, DropError> {
        self.hub
            .drops()
            .drop_record(id)
            .await?
            .ok_or_else(|| DropError::not_found(format!("there is no drop {id} on this hub")))
    }

    /// Removes the files of an uncommitted drop whose rows are already gone
    /// (replaced by a create with the same idempotency key, or withdrawn),
    /// so a concurrent upload or commit of it fails and removes what it
    /// wrote itself; a failure here is logged, and start-up cleanup removes
    /// the orphan later. The drop's lock is not taken: that would make the
    /// caller wait for an abandoned upload that may still be streaming.
    async fn discard_files(&self, id: &DropId) {
        if let Err(e) = self.hub.blobs().delete_upload(id).await {
            tracing::warn!(error = %e, replaced = %id, "could not remove the upload of a replaced drop");
        }
        // An open drop has a blob only briefly (between promotion and commit),
        // but it must not outlive the drop.
        if let Err(e) = self.hub.blobs().delete_blob(id).await {
            tracing::warn!(error = %e, replaced = %id, "could not remove the blob of a replaced drop");
        }
    }
}

/// Names the drop a request is about on the current span (the request's,
/// which [`crate::api::logging`] opens), so the request's log line and every
/// line the operation logs carry it.
pub fn record_drop(id: &DropId) {
    tracing::Span::current().record("drop", id.as_str());
}

/// A log entry's bytes; `too_large` says, in the operation's own terms, why
/// an entry over the 65,535-byte limit was refused.
pub fn entry_bytes(entry: &LogEntry, too_large: impl FnOnce(String) -> DropError) -> Result<Vec<u8>, DropError> {
    entry.to_bytes().map_err(|e| match e {
        EntryError::TooLarge(_) => too_large(e.to_string()),
        EntryError::Invalid(_) => DropError::internal(e),
    })
}

/// A stored Unix time as a timestamp.
pub fn ts(secs: i64) -> Result<Timestamp, DropError> {
    Timestamp::from_second(secs).map_err(|e| DropError::internal(format_args!("stored time {secs}: {e}")))
}
