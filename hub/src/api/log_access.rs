//! Who may read the transfer log (checkpoint, tiles, entries, proofs) and
//! the directory (the one in force and every earlier version).
//!
//! The log names who sent what to whom and when, with sizes and member key
//! names; the directory lists every party, member and agreement. By default
//! ([`LogAccess::Members`]) both are served only for a request signed like
//! the rest of the API, by a member key of the directory in force or by a
//! witness key it lists (see [`super::auth::Signer`]): an outsider is refused
//! before the hub reads anything, so it learns nothing of the log, not even
//! its size. An operator who wants the log open to anyone (a public
//! transparency log) opts in with `log_access = "public"`.
//!
//! Either way the paths are the same, tiles in the C2SP tlog-tiles layout,
//! and `/v1/info`, the health routes and the API description stay public.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use sealdrop_proto::error_code::ErrorCode;
use sealdrop_proto::request::{HEADER_KEY, HEADER_NONCE, HEADER_SIGNATURE, body_sha256};

use super::auth::{authenticate_signer, consume_nonce, original_uri_of};
use super::error::ApiError;
use crate::hub::Hub;

pub use crate::hub::LogAccess;

/// The extension of the description's operations that read the log or the
/// directory: who this hub serves them to.
pub const READABLE_BY: &str = "x-sealdrop-readable-by";

/// [`READABLE_BY`] for each setting.
pub fn readable_by(access: LogAccess) -> &'static str {
    match access {
        LogAccess::Members => {
            "members of the directory in force and the witnesses it lists, by signed request (this hub's \
             `log_access` is `members`, the default)"
        }
        LogAccess::Public => "anyone, without a signature (this hub's `log_access` is `public`)",
    }
}

/// Extractor of the routes that read the log or the directory: with
/// [`LogAccess::Members`], the request must be signed by a member key of
/// the directory in force or a witness key it lists, checked as every
/// signed request is (time, key, signature, the party's rate limit, the
/// nonce). Put it first among a handler's extractors, so nothing about the
/// log is looked at, or refused in a way that tells something, before it.
#[derive(Debug, Clone, Copy)]
pub struct LogReader;

impl FromRequestParts<Hub> for LogReader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, hub: &Hub) -> Result<Self, ApiError> {
        if hub.config().log_access == LogAccess::Public {
            return Ok(Self);
        }
        let unsigned = [HEADER_KEY, HEADER_NONCE, HEADER_SIGNATURE].iter().all(|h| !parts.headers.contains_key(*h));
        if unsigned {
            return Err(ApiError::new(
                ErrorCode::Unauthenticated,
                "this hub serves its transfer log and directory only to members of its directory and the \
                 witnesses it lists: sign the request with a member or witness key (the sealdrop client does)",
            ));
        }
        let uri = original_uri_of(parts);
        let (_, auth) = authenticate_signer(hub, &parts.method, &uri, &parts.headers).await?;
        // These routes read no body: the signature must say so.
        if auth.content != body_sha256(b"") {
            return Err(ApiError::new(
                ErrorCode::BadSignature,
                "a read of the log or the directory signs the empty body: its content hash must be the SHA-256 of \
                 nothing",
            ));
        }
        consume_nonce(hub, &auth).await?;
        Ok(Self)
    }
}
