//! Why a service refused or failed a request, without HTTP: the API maps
//! each to its response in one place ([`crate::api::ApiError`]'s `From`).

use sealdrop_proto::error_code::ErrorCode;

use crate::storage::{BlobError, MetaError};

/// What callers are told about a failure whose detail stays in the hub's log.
pub const INTERNAL_MESSAGE: &str = "the hub failed to handle the request; its operator can find the cause in its log";

/// What callers are told when the hub's disk is full.
pub const STORAGE_FULL_MESSAGE: &str = "the hub's storage is full; try again later and tell the hub's operator";

/// Why a drop operation did not happen.
#[derive(Debug)]
pub enum DropError {
    /// The request is refused for a reason the caller can act on.
    Refused {
        /// The stable code, which also decides the HTTP status.
        code: ErrorCode,
        /// One line for people.
        message: String,
        /// Seconds the caller should wait before trying again, if waiting
        /// helps (a quota of open uploads).
        retry_after: Option<u64>,
    },
    /// A bug or an inconsistency; the detail is logged, never served.
    Internal(String),
    /// The metadata store failed.
    Meta(MetaError),
    /// The blob store failed.
    Blob(BlobError),
}

impl DropError {
    /// A refusal with `code`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::Refused { code, message: message.into(), retry_after: None }
    }

    /// The same refusal, telling the caller to wait `secs` seconds before
    /// trying again.
    pub fn with_retry_after(mut self, secs: u64) -> Self {
        if let Self::Refused { retry_after, .. } = &mut self {
            *retry_after = Some(secs);
        }
        self
    }

    /// `forbidden`.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, message)
    }

    /// `not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }

    /// `conflict`.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Conflict, message)
    }

    /// `gone`.
    pub fn gone(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Gone, message)
    }

    /// `bad_request`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }

    /// An internal failure with its detail for the log.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        Self::Internal(detail.to_string())
    }

    fn storage_full(&self) -> bool {
        match self {
            Self::Meta(e) => e.is_storage_full(),
            Self::Blob(e) => e.is_storage_full(),
            Self::Refused { .. } | Self::Internal(_) => false,
        }
    }

    /// The code the caller is served.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Refused { code, .. } => *code,
            _ if self.storage_full() => ErrorCode::InsufficientStorage,
            _ => ErrorCode::Internal,
        }
    }

    /// The message the caller is served.
    pub fn message(&self) -> &str {
        match self {
            Self::Refused { message, .. } => message,
            _ if self.storage_full() => STORAGE_FULL_MESSAGE,
            _ => INTERNAL_MESSAGE,
        }
    }
}

impl std::fmt::Display for DropError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Refused { code, message, .. } => write!(f, "{code}: {message}"),
            Self::Internal(detail) => write!(f, "internal: {detail}"),
            Self::Meta(e) => write!(f, "database: {e}"),
            Self::Blob(e) => write!(f, "storage: {e}"),
        }
    }
}

impl std::error::Error for DropError {}

impl From<MetaError> for DropError {
    fn from(e: MetaError) -> Self {
        Self::Meta(e)
    }
}

impl From<BlobError> for DropError {
    fn from(e: BlobError) -> Self {
        Self::Blob(e)
    }
}

impl From<tokio::task::JoinError> for DropError {
    fn from(e: tokio::task::JoinError) -> Self {
        Self::internal(format_args!("background task: {e}"))
    }
}
