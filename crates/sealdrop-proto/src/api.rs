//! The hub's HTTP API: paths, request and response bodies, and error codes.
//!
//! Every route lives under `/v1/`. Errors are JSON
//! `{"error": {"code": "...", "message": "..."}}`; the codes are stable
//! and scripts may match on them ([`crate::error_code`] lists them).

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::ids::{DropId, PartyId};

/// The hub's error codes as strings, for matching a response's code; each
/// is defined, with its HTTP status, in [`crate::error_code::ErrorCode`].
pub mod code {
    use crate::error_code::ErrorCode;

    /// [`ErrorCode::Unauthenticated`].
    pub const UNAUTHENTICATED: &str = ErrorCode::Unauthenticated.as_str();
    /// [`ErrorCode::BadSignature`].
    pub const BAD_SIGNATURE: &str = ErrorCode::BadSignature.as_str();
    /// [`ErrorCode::UnknownKey`].
    pub const UNKNOWN_KEY: &str = ErrorCode::UnknownKey.as_str();
    /// [`ErrorCode::StaleRequest`].
    pub const STALE_REQUEST: &str = ErrorCode::StaleRequest.as_str();
    /// [`ErrorCode::ReplayedNonce`].
    pub const REPLAYED_NONCE: &str = ErrorCode::ReplayedNonce.as_str();
    /// [`ErrorCode::Forbidden`].
    pub const FORBIDDEN: &str = ErrorCode::Forbidden.as_str();
    /// [`ErrorCode::NotFound`].
    pub const NOT_FOUND: &str = ErrorCode::NotFound.as_str();
    /// [`ErrorCode::Gone`].
    pub const GONE: &str = ErrorCode::Gone.as_str();
    /// [`ErrorCode::BadRequest`].
    pub const BAD_REQUEST: &str = ErrorCode::BadRequest.as_str();
    /// [`ErrorCode::UnknownParty`].
    pub const UNKNOWN_PARTY: &str = ErrorCode::UnknownParty.as_str();
    /// [`ErrorCode::UnknownAgreement`].
    pub const UNKNOWN_AGREEMENT: &str = ErrorCode::UnknownAgreement.as_str();
    /// [`ErrorCode::NotInAgreement`].
    pub const NOT_IN_AGREEMENT: &str = ErrorCode::NotInAgreement.as_str();
    /// [`ErrorCode::AgreementNotInForce`].
    pub const AGREEMENT_NOT_IN_FORCE: &str = ErrorCode::AgreementNotInForce.as_str();
    /// [`ErrorCode::BadExpiry`].
    pub const BAD_EXPIRY: &str = ErrorCode::BadExpiry.as_str();
    /// [`ErrorCode::BadManifest`].
    pub const BAD_MANIFEST: &str = ErrorCode::BadManifest.as_str();
    /// [`ErrorCode::HashMismatch`].
    pub const HASH_MISMATCH: &str = ErrorCode::HashMismatch.as_str();
    /// [`ErrorCode::HeaderMismatch`].
    pub const HEADER_MISMATCH: &str = ErrorCode::HeaderMismatch.as_str();
    /// [`ErrorCode::BadReceipt`].
    pub const BAD_RECEIPT: &str = ErrorCode::BadReceipt.as_str();
    /// [`ErrorCode::Conflict`].
    pub const CONFLICT: &str = ErrorCode::Conflict.as_str();
    /// [`ErrorCode::RecallRefused`].
    pub const RECALL_REFUSED: &str = ErrorCode::RecallRefused.as_str();
    /// [`ErrorCode::KeyRevoked`].
    pub const KEY_REVOKED: &str = ErrorCode::KeyRevoked.as_str();
    /// [`ErrorCode::DirectoryBadSignature`].
    pub const DIRECTORY_BAD_SIGNATURE: &str = ErrorCode::DirectoryBadSignature.as_str();
    /// [`ErrorCode::DirectoryInvalid`].
    pub const DIRECTORY_INVALID: &str = ErrorCode::DirectoryInvalid.as_str();
    /// [`ErrorCode::DirectoryRollback`].
    pub const DIRECTORY_ROLLBACK: &str = ErrorCode::DirectoryRollback.as_str();
    /// [`ErrorCode::BadCosignature`].
    pub const BAD_COSIGNATURE: &str = ErrorCode::BadCosignature.as_str();
    /// [`ErrorCode::UploadOffsetMismatch`].
    pub const UPLOAD_OFFSET_MISMATCH: &str = ErrorCode::UploadOffsetMismatch.as_str();
    /// [`ErrorCode::RangeNotSatisfiable`].
    pub const RANGE_NOT_SATISFIABLE: &str = ErrorCode::RangeNotSatisfiable.as_str();
    /// [`ErrorCode::PayloadTooLarge`].
    pub const PAYLOAD_TOO_LARGE: &str = ErrorCode::PayloadTooLarge.as_str();
    /// [`ErrorCode::RequestTimeout`].
    pub const REQUEST_TIMEOUT: &str = ErrorCode::RequestTimeout.as_str();
    /// [`ErrorCode::InsufficientStorage`].
    pub const INSUFFICIENT_STORAGE: &str = ErrorCode::InsufficientStorage.as_str();
    /// [`ErrorCode::Internal`].
    pub const INTERNAL: &str = ErrorCode::Internal.as_str();
    /// [`ErrorCode::RateLimited`].
    pub const RATE_LIMITED: &str = ErrorCode::RateLimited.as_str();
    /// [`ErrorCode::NotDownloaded`].
    pub const NOT_DOWNLOADED: &str = ErrorCode::NotDownloaded.as_str();
    /// [`ErrorCode::DownloadLimit`].
    pub const DOWNLOAD_LIMIT: &str = ErrorCode::DownloadLimit.as_str();
    /// [`ErrorCode::QuotaHeldBytes`].
    pub const QUOTA_HELD_BYTES: &str = ErrorCode::QuotaHeldBytes.as_str();
    /// [`ErrorCode::QuotaOpenUploads`].
    pub const QUOTA_OPEN_UPLOADS: &str = ErrorCode::QuotaOpenUploads.as_str();
    /// [`ErrorCode::HubBusy`].
    pub const HUB_BUSY: &str = ErrorCode::HubBusy.as_str();
    /// [`ErrorCode::LengthRequired`].
    pub const LENGTH_REQUIRED: &str = ErrorCode::LengthRequired.as_str();
    /// [`ErrorCode::DropExists`].
    pub const DROP_EXISTS: &str = ErrorCode::DropExists.as_str();
    /// [`ErrorCode::TooLargeForOneRequest`].
    pub const TOO_LARGE_FOR_ONE_REQUEST: &str = ErrorCode::TooLargeForOneRequest.as_str();
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

/// The header of a `GET /v1/log/checkpoint` answer naming the serial of the
/// directory the hub enforces, so a client that already verified that
/// directory opens its session without asking for it again. Only a hint: a
/// client fetches and verifies the directory whenever the serial is not one
/// it holds, and a missing or malformed header means the same.
pub const DIRECTORY_SERIAL_HEADER: &str = "sealdrop-directory-serial";

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
    /// `PUT /v1/drops/{id}` only: the drop was committed by an earlier
    /// request with the byte-equal manifest (a re-run), and nothing was
    /// stored or logged now.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub already: bool,
}

// The body of `PUT /v1/drops/{id}` has its own module; its names stay
// reachable here, beside the route's other types.
pub use crate::put_drop::{
    DEFAULT_MAX_SINGLE_REQUEST_BYTES, MAX_PUT_DROP_MANIFEST_LEN, PUT_DROP_CONTENT_TYPE, PutDropBodyError,
    put_drop_body, split_put_drop_body,
};

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
