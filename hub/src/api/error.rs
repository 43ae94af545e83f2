//! The one place API errors become HTTP responses: a stable code from
//! [`sealdrop_proto::api::code`], the status documented for it, and a one-line
//! message for people, served as `{"error":{"code":"...","message":"..."}}`.
//!
//! Internal failures are logged here with their detail and served with a
//! generic message, so storage paths and database errors never reach callers.

use axum::Json;
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sealdrop_proto::api::{ErrorBody, ErrorDetail, code};

use crate::rate_limit::RateLimited;
use crate::service::{DropError, INTERNAL_MESSAGE, STORAGE_FULL_MESSAGE};
use crate::storage::{BlobError, MetaError};

/// An error served to an API caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    code: &'static str,
    message: String,
    /// Seconds the caller should wait before trying again, served as
    /// `Retry-After` (set on `rate_limited`).
    retry_after: Option<u64>,
}

/// The error code of a response, left in its extensions for the request log.
#[derive(Debug, Clone, Copy)]
pub struct ErrorCode(pub &'static str);

/// The status each code is served with, as the protocol crate's
/// [`ErrorCode`](sealdrop_proto::error_code::ErrorCode) defines it; a code
/// it does not serve is a 500.
pub fn status_of(code: &str) -> StatusCode {
    sealdrop_proto::error_code::ErrorCode::from_wire(code)
        .and_then(|known| known.http_status())
        .and_then(|status| StatusCode::from_u16(status).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

impl ApiError {
    /// An error with a code from [`code`] and a message for people.
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), retry_after: None }
    }

    /// The same error, telling the caller to wait `secs` seconds
    /// (`Retry-After`) before trying again.
    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// The `Retry-After` seconds, if any.
    pub fn retry_after(&self) -> Option<u64> {
        self.retry_after
    }

    /// 400 `bad_request`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(code::BAD_REQUEST, message)
    }

    /// 404 `not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(code::NOT_FOUND, message)
    }

    /// 500 `internal`: logs `detail` and serves a generic message.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Self::new(code::INTERNAL, INTERNAL_MESSAGE)
    }

    /// The stable code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        status_of(self.code)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = ErrorBody { error: ErrorDetail { code: self.code.to_owned(), message: self.message } };
        let mut response = (status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(secs));
        }
        response.extensions_mut().insert(ErrorCode(self.code));
        response
    }
}

impl From<MetaError> for ApiError {
    fn from(e: MetaError) -> Self {
        if e.is_storage_full() {
            return storage_full(&e);
        }
        Self::internal(format_args!("database: {e}"))
    }
}

/// The 507 for a full disk, which operators and senders must tell apart from a bug.
fn storage_full(e: &dyn std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "storage full");
    ApiError::new(code::INSUFFICIENT_STORAGE, STORAGE_FULL_MESSAGE)
}

impl From<BlobError> for ApiError {
    fn from(e: BlobError) -> Self {
        if e.is_storage_full() {
            return storage_full(&e);
        }
        Self::internal(format_args!("storage: {e}"))
    }
}

/// A service's refusal keeps its code and message; its failures are
/// logged and served as any other.
impl From<DropError> for ApiError {
    fn from(e: DropError) -> Self {
        match e {
            DropError::Refused { code, message, retry_after } => Self { code, message, retry_after },
            DropError::Internal(detail) => Self::internal(detail),
            DropError::Meta(e) => e.into(),
            DropError::Blob(e) => e.into(),
        }
    }
}

/// A rate limit's refusal: `429` with `Retry-After`.
impl From<RateLimited> for ApiError {
    fn from(e: RateLimited) -> Self {
        Self::new(code::RATE_LIMITED, e.message).with_retry_after(e.retry_after_secs)
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> Self {
        Self::internal(format_args!("background task: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_code_has_its_status() {
        let cases = [
            (code::UNAUTHENTICATED, 401),
            (code::BAD_SIGNATURE, 401),
            (code::UNKNOWN_KEY, 401),
            (code::KEY_REVOKED, 401),
            (code::STALE_REQUEST, 401),
            (code::REPLAYED_NONCE, 401),
            (code::FORBIDDEN, 403),
            (code::NOT_FOUND, 404),
            (code::GONE, 410),
            (code::BAD_REQUEST, 400),
            (code::UNKNOWN_PARTY, 422),
            (code::UNKNOWN_AGREEMENT, 422),
            (code::NOT_IN_AGREEMENT, 422),
            (code::AGREEMENT_NOT_IN_FORCE, 422),
            (code::BAD_EXPIRY, 422),
            (code::BAD_MANIFEST, 422),
            (code::HASH_MISMATCH, 422),
            (code::HEADER_MISMATCH, 422),
            (code::BAD_RECEIPT, 422),
            (code::BAD_COSIGNATURE, 422),
            (code::CONFLICT, 409),
            (code::RECALL_REFUSED, 409),
            (code::UPLOAD_OFFSET_MISMATCH, 409),
            (code::NOT_DOWNLOADED, 409),
            (code::DOWNLOAD_LIMIT, 409),
            (code::DIRECTORY_BAD_SIGNATURE, 422),
            (code::DIRECTORY_INVALID, 422),
            (code::DIRECTORY_ROLLBACK, 409),
            (code::PAYLOAD_TOO_LARGE, 413),
            (code::REQUEST_TIMEOUT, 408),
            (code::RANGE_NOT_SATISFIABLE, 416),
            (code::INSUFFICIENT_STORAGE, 507),
            (code::INTERNAL, 500),
            (code::RATE_LIMITED, 429),
            (code::QUOTA_HELD_BYTES, 507),
            (code::QUOTA_OPEN_UPLOADS, 429),
            (code::HUB_BUSY, 503),
            (code::LENGTH_REQUIRED, 411),
        ];
        for (c, status) in cases {
            assert_eq!(status_of(c).as_u16(), status, "{c}");
        }
    }

    #[test]
    fn a_retry_after_is_served_as_its_header() {
        let response = ApiError::new(code::RATE_LIMITED, "slow down").with_retry_after(3).into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[RETRY_AFTER], "3");
        let response = ApiError::not_found("no").into_response();
        assert!(response.headers().get(RETRY_AFTER).is_none());
    }

    #[test]
    fn internal_errors_hide_their_detail() {
        let e = ApiError::internal("/secret/path: disk on fire");
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!e.message().contains("secret"));
    }
}
