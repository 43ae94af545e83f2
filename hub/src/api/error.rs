//! The one place API errors become HTTP responses: an [`ErrorCode`], the
//! HTTP status its table gives, and a one-line message for people, served
//! as `{"error":{"code":"...","message":"..."}}`.
//!
//! Internal failures are logged here with their detail and served with a
//! generic message, so storage paths and database errors never reach callers.

use axum::Json;
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sealdrop_proto::api::{ErrorBody, ErrorDetail};
use sealdrop_proto::error_code::ErrorCode;

use crate::rate_limit::RateLimited;
use crate::service::{DropError, INTERNAL_MESSAGE, STORAGE_FULL_MESSAGE};
use crate::storage::{BlobError, MetaError};

/// An error served to an API caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    code: ErrorCode,
    message: String,
    /// Seconds the caller should wait before trying again, served as
    /// `Retry-After` (set on `rate_limited`).
    retry_after: Option<u64>,
}

/// The error code a response was served with, left in its extensions for
/// the request log and the metrics, which see only the response.
#[derive(Debug, Clone, Copy)]
pub struct ServedErrorCode(pub ErrorCode);

/// The status each code is served with, as [`ErrorCode`]'s table defines
/// it; a code the hub does not serve is a 500.
pub fn status_of(code: ErrorCode) -> StatusCode {
    code.http_status().and_then(|status| StatusCode::from_u16(status).ok()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

impl ApiError {
    /// An error with `code` and a message for people.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
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
        Self::new(ErrorCode::BadRequest, message)
    }

    /// 404 `not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }

    /// 500 `internal`: logs `detail` and serves a generic message.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Self::new(ErrorCode::Internal, INTERNAL_MESSAGE)
    }

    /// The stable code.
    pub fn code(&self) -> ErrorCode {
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
        let body = ErrorBody { error: ErrorDetail { code: self.code.as_str().to_owned(), message: self.message } };
        let mut response = (status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(secs));
        }
        response.extensions_mut().insert(ServedErrorCode(self.code));
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
    ApiError::new(ErrorCode::InsufficientStorage, STORAGE_FULL_MESSAGE)
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
        Self::new(ErrorCode::RateLimited, e.message).with_retry_after(e.retry_after_secs)
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
            (ErrorCode::Unauthenticated, 401),
            (ErrorCode::BadSignature, 401),
            (ErrorCode::UnknownKey, 401),
            (ErrorCode::KeyRevoked, 401),
            (ErrorCode::StaleRequest, 401),
            (ErrorCode::ReplayedNonce, 401),
            (ErrorCode::Forbidden, 403),
            (ErrorCode::NotFound, 404),
            (ErrorCode::Gone, 410),
            (ErrorCode::BadRequest, 400),
            (ErrorCode::UnknownParty, 422),
            (ErrorCode::UnknownAgreement, 422),
            (ErrorCode::NotInAgreement, 422),
            (ErrorCode::AgreementNotInForce, 422),
            (ErrorCode::BadExpiry, 422),
            (ErrorCode::BadManifest, 422),
            (ErrorCode::HashMismatch, 422),
            (ErrorCode::HeaderMismatch, 422),
            (ErrorCode::BadReceipt, 422),
            (ErrorCode::BadCosignature, 422),
            (ErrorCode::Conflict, 409),
            (ErrorCode::RecallRefused, 409),
            (ErrorCode::UploadOffsetMismatch, 409),
            (ErrorCode::NotDownloaded, 409),
            (ErrorCode::DownloadLimit, 409),
            (ErrorCode::DirectoryBadSignature, 422),
            (ErrorCode::DirectoryInvalid, 422),
            (ErrorCode::DirectoryRollback, 409),
            (ErrorCode::PayloadTooLarge, 413),
            (ErrorCode::RequestTimeout, 408),
            (ErrorCode::RangeNotSatisfiable, 416),
            (ErrorCode::InsufficientStorage, 507),
            (ErrorCode::Internal, 500),
            (ErrorCode::RateLimited, 429),
            (ErrorCode::QuotaHeldBytes, 507),
            (ErrorCode::QuotaOpenUploads, 429),
            (ErrorCode::HubBusy, 503),
            (ErrorCode::LengthRequired, 411),
        ];
        for (c, status) in cases {
            assert_eq!(status_of(c).as_u16(), status, "{c}");
        }
    }

    #[test]
    fn a_retry_after_is_served_as_its_header() {
        let response = ApiError::new(ErrorCode::RateLimited, "slow down").with_retry_after(3).into_response();
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
