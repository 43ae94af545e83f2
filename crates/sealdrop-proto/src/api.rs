//! The hub's HTTP API: paths, request and response bodies, and error codes.
//!
//! Every route lives under `/v1/`. Errors are JSON
//! `{"error": {"code": "...", "message": "..."}}`; the codes below are stable
//! and scripts may match on them.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::ids::{DropId, PartyId};

/// Stable error codes and the HTTP status each is served with.
pub mod code {
    /// Missing or malformed authentication headers (401).
    pub const UNAUTHENTICATED: &str = "unauthenticated";
    /// The request signature does not verify (401).
    pub const BAD_SIGNATURE: &str = "bad_signature";
    /// The signing key is not a member key in the hub's current directory (401).
    pub const UNKNOWN_KEY: &str = "unknown_key";
    /// The request's time is more than 5 minutes from the hub's clock (401).
    pub const STALE_REQUEST: &str = "stale_request";
    /// The request's nonce was used before (401).
    pub const REPLAYED_NONCE: &str = "replayed_nonce";
    /// The caller's party may not see or change this (403).
    pub const FORBIDDEN: &str = "forbidden";
    /// No such route or drop (404).
    pub const NOT_FOUND: &str = "not_found";
    /// The drop no longer exists on the hub (410).
    pub const GONE: &str = "gone";
    /// The body could not be parsed (400).
    pub const BAD_REQUEST: &str = "bad_request";
    /// A recipient is not a party in the directory (422).
    pub const UNKNOWN_PARTY: &str = "unknown_party";
    /// The agreement does not exist (422).
    pub const UNKNOWN_AGREEMENT: &str = "unknown_agreement";
    /// A party is not a member of the agreement (422).
    pub const NOT_IN_AGREEMENT: &str = "not_in_agreement";
    /// The agreement is not in force now (422).
    pub const AGREEMENT_NOT_IN_FORCE: &str = "agreement_not_in_force";
    /// The requested expiry is in the past or beyond the agreement's maximum (422).
    pub const BAD_EXPIRY: &str = "bad_expiry";
    /// The manifest is not signed by the sender or does not match the drop (422).
    pub const BAD_MANIFEST: &str = "bad_manifest";
    /// The ciphertext received differs from the manifest's hash or length (422).
    pub const HASH_MISMATCH: &str = "hash_mismatch";
    /// The ciphertext's age header does not hold exactly one recipient
    /// stanza per key the manifest lists in `encrypted_to`, or holds a
    /// stanza of another type (422; see [`crate::age_header`]).
    pub const HEADER_MISMATCH: &str = "header_mismatch";
    /// The receipt is not signed by the recipient or does not match the drop (422).
    pub const BAD_RECEIPT: &str = "bad_receipt";
    /// The drop is not in a state that allows this (409).
    pub const CONFLICT: &str = "conflict";
    /// A recall came after a recipient acknowledged the drop: that
    /// recipient has the data, and the message says who (409).
    pub const RECALL_REFUSED: &str = "recall_refused";
    /// The request is signed with a key the directory has revoked (401).
    pub const KEY_REVOKED: &str = "key_revoked";
    /// The directory is not signed by the hub's authority (422).
    pub const DIRECTORY_BAD_SIGNATURE: &str = "directory_bad_signature";
    /// The directory is inconsistent (422).
    pub const DIRECTORY_INVALID: &str = "directory_invalid";
    /// The directory's serial is not higher than the current one (409).
    pub const DIRECTORY_ROLLBACK: &str = "directory_rollback";
    /// A witness cosignature is not by one of the caller's party's witness
    /// keys, or does not verify over the checkpoint it names (422).
    pub const BAD_COSIGNATURE: &str = "bad_cosignature";
    /// A continued upload starts at a byte other than the number the hub
    /// holds (409); ask `GET /v1/drops/{id}/upload` and continue from there.
    pub const UPLOAD_OFFSET_MISMATCH: &str = "upload_offset_mismatch";
    /// A download's `Range` header is malformed, asks for more than one
    /// range, or starts at or beyond the end of the ciphertext (416); the
    /// response carries `Content-Range: bytes */TOTAL`. Download from byte 0.
    pub const RANGE_NOT_SATISFIABLE: &str = "bad_range";
    /// The body is larger than the hub accepts (413).
    pub const PAYLOAD_TOO_LARGE: &str = "payload_too_large";
    /// The request body stopped arriving for longer than the hub waits
    /// (408). What arrived of an upload is kept: continue it from the
    /// byte `GET /v1/drops/{id}/upload` reports.
    pub const REQUEST_TIMEOUT: &str = "request_timeout";
    /// The hub's disk is full (507).
    pub const INSUFFICIENT_STORAGE: &str = "insufficient_storage";
    /// Something failed inside the hub (500).
    pub const INTERNAL: &str = "internal";
    /// Too many requests from the caller's address or party (429); the
    /// answer's `Retry-After` header says how many seconds to wait.
    pub const RATE_LIMITED: &str = "rate_limited";
    /// An acknowledgement from a party the transfer log holds no download
    /// of the drop by (409): a receipt says the party has the data, so it
    /// must download the drop first.
    pub const NOT_DOWNLOADED: &str = "not_downloaded";
    /// The caller's party has already made the most downloads of this drop
    /// the hub serves one party (`sealdrop_log::policy::MAX_DOWNLOADS_PER_PARTY`,
    /// each one a permanent log entry) (409): ask the sender to send it again.
    pub const DOWNLOAD_LIMIT: &str = "download_limit";
    /// The upload would take the caller's party past the ciphertext bytes
    /// the hub holds for one party (`max_held_bytes_per_party`), stored and
    /// uploading together (507). Nothing already stored is touched: wait
    /// for recipients to fetch (or recall) earlier drops.
    pub const QUOTA_HELD_BYTES: &str = "quota_held_bytes";
    /// The caller's party already has as many uploads open as the hub allows
    /// (`max_open_uploads_per_party`) (429): finish or commit one first.
    pub const QUOTA_OPEN_UPLOADS: &str = "quota_open_uploads";
    /// The hub is holding as many unauthenticated request bodies in memory
    /// as it allows (503); `Retry-After` says when to try again.
    pub const HUB_BUSY: &str = "hub_busy";
    /// The request must declare its body's length in `Content-Length` (411).
    pub const LENGTH_REQUIRED: &str = "length_required";
}

/// An error as served by the hub.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// The code and message of an error.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorDetail {
    /// Stable machine-readable code (see [`code`]).
    pub code: String,
    /// One line for people: what is wrong and what to do.
    pub message: String,
}

/// `GET /v1/info` (unauthenticated).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HubInfo {
    /// The hub's origin name (also its transfer-log origin).
    pub origin: String,
    /// The serial of the directory the hub enforces.
    pub directory_serial: u64,
    /// The hub's software version.
    pub version: String,
    /// The verifier key of the hub's transfer log (`<origin>+<key id>+<base64>`),
    /// which signs its checkpoints (empty from hubs that predate the log).
    #[serde(default)]
    pub log_key: String,
}

/// `POST /v1/drops`: announce a drop before uploading it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateDrop {
    /// The parties that will be able to fetch it.
    pub recipients: Vec<PartyId>,
    /// The agreement it travels under.
    pub agreement: String,
    /// When it must be deleted if not acknowledged.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub expires: Timestamp,
    /// Makes a re-run safe: 64 lowercase hex digits the sender derives from
    /// what it is sending (for a split, the input file's hash, the column and
    /// the recipient party). The hub keeps one drop per sender party and key:
    /// while that drop is uncommitted a new create replaces it (its partial
    /// upload is discarded); once committed, the create returns it, marked
    /// [`CreatedDrop::committed`], and creates nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

/// Response to [`CreateDrop`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedDrop {
    /// The new drop's id.
    pub id: DropId,
    /// The hub's creation time, to be copied into the manifest.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created: Timestamp,
    /// The expiry, to be copied into the manifest.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub expires: Timestamp,
    /// Set only when the request carried an idempotency key whose drop was
    /// already committed: this is that drop (committed at this time) and
    /// nothing was created, so the sender must not upload again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub committed: Option<Timestamp>,
}

/// Response to `PUT /v1/drops/{id}/content`: what the hub received.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Uploaded {
    /// Hex SHA-256 of the bytes received.
    pub sha256: String,
    /// Number of bytes received.
    pub len: u64,
}

/// The header of a `PUT /v1/drops/{id}/content` that continues an upload
/// cut off earlier: the number of bytes the hub already holds, which must
/// be exactly what `GET /v1/drops/{id}/upload` reports. Without it an
/// upload starts over.
pub const UPLOAD_OFFSET_HEADER: &str = "sealdrop-upload-offset";

/// Response to `GET /v1/drops/{id}/upload` (the sender, while the drop is
/// open): how much of an upload the hub holds, so a sender whose upload was
/// cut off continues from there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UploadProgress {
    /// Bytes the hub holds.
    pub received: u64,
    /// Whether those bytes are a finished upload (the `PUT` completed);
    /// `false` while an upload runs or after one was cut off.
    pub complete: bool,
}

/// `POST /v1/drops/{id}/commit`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Commit {
    /// The sender's signed manifest (signed-note text).
    pub manifest: String,
    /// The size of the newest log checkpoint the sender verified before, so
    /// the answer's [`LogProof`] can prove the new checkpoint consistent with
    /// it (omitted when the sender has verified none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub known_size: Option<u64>,
}

/// Response to [`Commit`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Committed {
    /// The drop.
    pub id: DropId,
    /// When the hub committed it.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub committed: Timestamp,
    /// The index of the `drop_committed` entry in the hub's transfer log
    /// (0 from hubs that predate the log: index 0 is always the hub's first
    /// directory, never a commit).
    #[serde(default)]
    pub log_index: u64,
    /// The proof that entry `log_index` is in the log, so the sender keeps
    /// its receipt without asking for the checkpoint, entry and proofs one
    /// by one (absent from hubs that predate it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<LogProof>,
}

/// Everything a client needs to verify and keep an offline receipt
/// (c2sp.org/tlog-proof) for one entry the hub just appended, sent with the
/// answer to the change that appended it: four round trips fewer per drop.
/// The client trusts none of it until it has verified the checkpoint's
/// signature, its consistency with the newest checkpoint it verified before,
/// the entry and the inclusion proof, exactly as when it asks for each.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LogProof {
    /// The signed checkpoint (signed-note text, the log's signature only)
    /// of the tree the entry was appended to.
    pub checkpoint: String,
    /// The entry's bytes, base64.
    pub entry: String,
    /// The RFC 6962 inclusion proof of the entry in that tree (base64
    /// hashes, leaf side first).
    pub inclusion: Vec<String>,
    /// The consistency proof from the request's `known_size` to this tree,
    /// when the request gave a size no larger than it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consistency: Option<ConsistencyProof>,
}

/// One drop waiting in a party's inbox (`GET /v1/inbox`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InboxEntry {
    /// The drop.
    pub id: DropId,
    /// The sending party.
    pub from: PartyId,
    /// Ciphertext size in bytes.
    pub size: u64,
    /// When it was created.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created: Timestamp,
    /// When it was committed.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub committed: Timestamp,
    /// When it expires.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub expires: Timestamp,
    /// The agreement it travels under.
    pub agreement: String,
}

/// `GET /v1/inbox`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Inbox {
    /// Oldest first.
    pub drops: Vec<InboxEntry>,
}

/// `GET /v1/drops/{id}`: a drop's details, for its sender or a recipient.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DropDetails {
    /// The drop.
    pub id: DropId,
    /// The sender's signed manifest.
    pub manifest: String,
    /// The drop's state.
    pub state: DropState,
    /// When the hub committed it (also in its `drop_committed` log entry):
    /// a manifest signed with a key revoked since is accepted only when the
    /// revocation took effect after this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub committed: Option<Timestamp>,
    /// The index of the drop's `drop_committed` entry in the transfer log.
    /// A recipient proves that entry's inclusion and takes the commit time
    /// from it, never from [`DropDetails::committed`], when the manifest is
    /// signed with a key revoked since (absent from hubs that predate it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub committed_log_index: Option<u64>,
}

/// Where a drop is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DropState {
    /// Created, content not yet committed: invisible to recipients.
    Open,
    /// Committed and available to recipients.
    Committed,
    /// Every recipient acknowledged; ciphertext deleted.
    Delivered,
    /// The expiry passed (or its agreement ended) before every recipient
    /// acknowledged; ciphertext deleted, and the recipients that had not
    /// acknowledged never got it.
    Expired,
    /// The sender recalled it before any recipient acknowledged; ciphertext deleted.
    Recalled,
}

impl DropState {
    /// Whether the hub has deleted the ciphertext for good.
    pub fn is_ended(self) -> bool {
        matches!(self, DropState::Delivered | DropState::Expired | DropState::Recalled)
    }

    /// The state's name as served (`open`, `committed`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            DropState::Open => "open",
            DropState::Committed => "committed",
            DropState::Delivered => "delivered",
            DropState::Expired => "expired",
            DropState::Recalled => "recalled",
        }
    }
}

/// `POST /v1/drops/{id}/ack`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Ack {
    /// The recipient's signed receipt (signed-note text).
    pub receipt: String,
    /// As [`Commit::known_size`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub known_size: Option<u64>,
}

/// Response to [`Ack`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Acked {
    /// Whether this was the last acknowledgement, so the hub deleted the ciphertext.
    pub ciphertext_deleted: bool,
    /// The index of the `drop_acknowledged` entry in the hub's transfer log
    /// (0 from hubs that predate the log: index 0 is always the hub's first
    /// directory, never an acknowledgement).
    #[serde(default)]
    pub log_index: u64,
    /// As [`Committed::proof`], for the acknowledgement's entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<LogProof>,
}

/// `POST /v1/drops/{id}/recall`: the sender takes back a committed drop
/// that no recipient has acknowledged. The hub deletes the ciphertext and
/// logs the sender's signed request and its own deletion statement.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Recall {}

/// Response to [`Recall`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Recalled {
    /// The drop.
    pub id: DropId,
    /// When the hub recalled it.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub recalled: Timestamp,
    /// The index of the `drop_recalled` entry in the hub's transfer log (the
    /// hub's `drop_deleted` statement follows it).
    pub log_index: u64,
    /// Whether the ciphertext file is gone from the hub's disk (if not, the
    /// hub removes it at its next start).
    pub ciphertext_deleted: bool,
    /// Recipients that downloaded the ciphertext without acknowledging it:
    /// they may hold a copy, so the sender should tell them to delete it.
    pub downloaded_by: Vec<RecipientStatus>,
}

/// Response to `DELETE /v1/drops/{id}`: the sender withdrew a drop it
/// never committed. No recipient ever saw it and the transfer log never
/// named it, so nothing is logged; the hub forgot its rows and deleted
/// whatever was uploaded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Withdrawn {
    /// The drop.
    pub id: DropId,
    /// When the hub withdrew it.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub withdrawn: Timestamp,
}

/// A recipient's progress with a drop.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RecipientStatus {
    /// The recipient party.
    pub party: PartyId,
    /// When it first downloaded the ciphertext.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub fetched: Option<Timestamp>,
    /// When it acknowledged (signed a receipt).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub acknowledged: Option<Timestamp>,
    /// The member that acknowledged, if any.
    pub acknowledged_by: Option<String>,
    /// The index of its first `drop_fetched` entry in the transfer log, so
    /// the sender can check the download is logged (absent when it has not
    /// downloaded, and from hubs that predate it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fetched_log_index: Option<u64>,
    /// The index of its `drop_acknowledged` entry (the signed receipt) in
    /// the transfer log (absent when it has not acknowledged, and from hubs
    /// that predate it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged_log_index: Option<u64>,
}

/// One of the caller's sent drops (`GET /v1/sent`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SentDrop {
    /// The drop.
    pub id: DropId,
    /// The drop's state.
    pub state: DropState,
    /// The agreement it travels under.
    pub agreement: String,
    /// Ciphertext size (0 until committed).
    pub size: u64,
    /// When it was created.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created: Timestamp,
    /// When it was committed.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub committed: Option<Timestamp>,
    /// When it expires.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub expires: Timestamp,
    /// Per-recipient progress.
    pub recipients: Vec<RecipientStatus>,
    /// The idempotency key the drop was created with, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// When the hub deleted the ciphertext (delivered, expired or recalled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub deleted: Option<Timestamp>,
    /// The index of its `drop_committed` entry in the transfer log (absent
    /// while open, and from hubs that predate it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub committed_log_index: Option<u64>,
    /// The index of the hub's `drop_deleted` statement in the transfer log
    /// (absent while the hub holds the ciphertext, and from hubs that
    /// predate it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_log_index: Option<u64>,
}

/// `GET /v1/sent`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Sent {
    /// Newest first.
    pub drops: Vec<SentDrop>,
}

/// `POST /v1/directory` response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DirectoryAccepted {
    /// The serial now in force.
    pub serial: u64,
}

/// `GET /v1/log/proof/inclusion?index=I&size=N` (unauthenticated): the
/// RFC 6962 audit path proving that entry `index` is in the tree of `size`
/// entries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InclusionProof {
    /// The entry's index.
    pub index: u64,
    /// The tree size the proof is for.
    pub size: u64,
    /// The proof's hashes, base64, leaf side first.
    pub hashes: Vec<String>,
}

/// `GET /v1/log/proof/consistency?old=A&new=B` (unauthenticated): the
/// RFC 6962 proof that the tree of `new` entries extends the tree of `old`
/// entries (empty when `old` is 0 or equals `new`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConsistencyProof {
    /// The older tree size.
    pub old: u64,
    /// The newer tree size.
    pub new: u64,
    /// The proof's hashes, base64.
    pub hashes: Vec<String>,
}

/// `POST /v1/log/cosignature`: a witness cosignature (c2sp.org/tlog-cosignature)
/// by one of the caller's party's witness keys over the hub's checkpoint of `size`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Cosign {
    /// The size of the checkpoint cosigned.
    pub size: u64,
    /// The signed-note signature line (`— <name> <base64>`).
    pub line: String,
}

/// Response to [`Cosign`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CosignatureAccepted {
    /// The size of the checkpoint cosigned.
    pub size: u64,
    /// The witness key that signed it (verifier-key text).
    pub witness: String,
}
