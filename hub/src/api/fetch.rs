//! What recipients read: their inbox (`GET /v1/inbox`) and a drop's
//! ciphertext (`GET /v1/drops/{id}/content`), streamed from storage in
//! 64 KiB chunks with its length declared up front, so clients can show
//! progress and detect truncation.
//!
//! A download that broke off resumes with one HTTP range (`Range:
//! bytes=START-` or `bytes=START-END`, or the last N bytes with `bytes=-N`),
//! answered 206 with `Content-Range`. A malformed, multi-range or
//! unsatisfiable `Range` is refused with 416 `bad_range` (and `Content-Range:
//! bytes */TOTAL`). The rules (who may download, the log entry, the download
//! bound) live in [`crate::service::fetch`].

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, State};
use axum::http::header::{ACCEPT_RANGES, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, RANGE};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use sealdrop_proto::api::{ErrorBody, Inbox};
use sealdrop_proto::error_code::ErrorCode;
use sealdrop_proto::ids::DropId;
use serde::Deserialize;
use tokio::io::AsyncReadExt as _;
use tokio_util::io::ReaderStream;

use super::auth::Authed;
use super::error::ApiError;
use super::shared::drop_id;
use crate::byte_range::RangeError;
use crate::hub::Hub;
use crate::inbox_wait::effective_wait;
use crate::service::fetch::Download;
use crate::service::{Drops, RequestEvidence};

/// Bytes read from storage per chunk of a download.
const DOWNLOAD_CHUNK: usize = 64 * 1024;

/// The query string of `GET /v1/inbox`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct InboxQuery {
    /// Wait up to this many whole seconds (at most 60; more is taken as 60,
    /// 0 does not wait) for a drop committed after `since` (any drop,
    /// without `since`) before answering.
    #[param(value_type = Option<u64>, minimum = 0)]
    wait: Option<String>,
    /// With `wait`: answer at once only for a drop committed after this
    /// time (RFC 3339, e.g. `2026-05-01T09:00:00Z`; drops' `committed`
    /// times are whole seconds).
    #[param(value_type = Option<String>, format = DateTime)]
    since: Option<String>,
}

/// The wait and the time asked for, or `bad_request`.
fn inbox_query(uri: &Uri) -> Result<(std::time::Duration, Option<jiff::Timestamp>), ApiError> {
    let Query(q) = Query::<InboxQuery>::try_from_uri(uri).map_err(|e| ApiError::bad_request(e.body_text()))?;
    let wait = match q.wait {
        None => std::time::Duration::ZERO,
        Some(text) => effective_wait(text.trim().parse::<u64>().map_err(|_| {
            ApiError::bad_request(format!(
                "wait={text:?} is not a whole number of seconds: give 0 to 60 (e.g. wait=60; more is taken as 60)"
            ))
        })?),
    };
    let since = q
        .since
        .map(|text| {
            text.trim().parse::<jiff::Timestamp>().map_err(|_| {
                ApiError::bad_request(format!(
                    "since={text:?} is not an RFC 3339 time: give one such as 2026-05-01T09:00:00Z"
                ))
            })
        })
        .transpose()?;
    Ok((wait, since))
}

/// `GET /v1/inbox`: oldest first. Drops the party may not fetch now (their
/// agreement ended or no longer includes the sender or the party) are left
/// out: the sweeper deletes the ones whose agreement ended. With `wait`, a
/// long-poll (see [`crate::inbox_wait`]).
#[utoipa::path(
    get,
    path = "/v1/inbox",
    tag = "drops",
    summary = "Drops waiting for your party",
    description = "Committed, unexpired drops addressed to your party that it has not acknowledged, oldest first. Only \
                   ever your own party's.\n\n\
                   With `wait=N` (a long-poll) the hub answers at once if the inbox holds a drop committed after \
                   `since` (any drop, without `since`); otherwise it holds the request until a drop for your party is \
                   committed, the N seconds (at most 60) pass, or the hub shuts down, and then answers with the whole \
                   inbox as usual, which may be empty. When too many requests are already waiting the hub answers at \
                   once, as without `wait`: a client should not ask again at once after an early empty answer. With \
                   several hub instances on one database, a commit on another instance is seen within about 2 seconds \
                   (a waiting request reads the inbox again every 2 seconds).",
    params(InboxQuery),
    responses(
        (status = 200, description = "Your party's inbox", body = Inbox),
        (status = 400, description = "`bad_request`: an unknown query parameter, a `wait` that is not a whole number of seconds, or a `since` that is not an RFC 3339 time", body = ErrorBody),
    ),
    security(("sealdrop_request_signature" = [])),
)]
pub async fn inbox(
    State(hub): State<Hub>,
    uri: Uri,
    Authed { caller, .. }: Authed,
) -> Result<axum::Json<Inbox>, ApiError> {
    let (wait, since) = inbox_query(&uri)?;
    Ok(axum::Json(Drops::new(&hub).inbox_wait(&caller, wait, since).await?))
}

/// `GET /v1/drops/{id}/content`: recipient parties only.
#[utoipa::path(
    get,
    path = "/v1/drops/{id}/content",
    tag = "drops",
    summary = "Download a drop's ciphertext",
    description = "The age ciphertext, streamed, for a recipient party that has not acknowledged it. Every download \
                   (whole or a range) is a `drop_fetched` entry in the transfer log with the signed request, and a party \
                   may make at most 10 of them per drop. One range (`bytes=START-`, `bytes=START-END` or `bytes=-N`) \
                   resumes a broken download.",
    params(
        ("id" = DropId, Path, description = "The drop"),
        ("Range" = Option<String>, Header, description = "One byte range, to resume a download"),
    ),
    responses(
        (status = 200, description = "The whole ciphertext", content_type = "application/octet-stream", body = inline(super::openapi::Binary)),
        (status = 206, description = "The range asked for (with `Content-Range`)", content_type = "application/octet-stream", body = inline(super::openapi::Binary)),
        (status = 400, description = "`bad_request`: not a drop id", body = ErrorBody),
        (status = 403, description = "`forbidden`: your party is not a recipient of the drop", body = ErrorBody),
        (status = 404, description = "`not_found`: no such drop, or not yet committed", body = ErrorBody),
        (status = 409, description = "`download_limit`: your party already made the most downloads of this drop the hub serves one party (10)", body = ErrorBody),
        (status = 410, description = "`gone`: delivered, expired, recalled, or already acknowledged by your party", body = ErrorBody),
        (status = 416, description = "`bad_range`: a malformed, multiple or unsatisfiable range", body = ErrorBody),
        (status = 422, description = "`agreement_not_in_force`, `not_in_agreement`: the agreement ended or no longer includes the sender or your party", body = ErrorBody),
    ),
    security(("sealdrop_request_signature" = [])),
)]
pub async fn get_content(
    State(hub): State<Hub>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    Authed { caller, auth, path: signed_path, .. }: Authed,
) -> Result<Response, ApiError> {
    let id = drop_id(path)?;
    let requested = requested_range(&headers);
    let evidence = RequestEvidence { auth: &auth, signed_path: &signed_path };
    let (blob, range) = match Drops::new(&hub).download(&caller, id.clone(), requested, evidence).await? {
        Download::Whole(blob) => (blob, None),
        Download::Range { blob, range, total } => (blob, Some((range, total))),
        Download::RangeRefused { error, total } => return Ok(range_refused(&id, &error, total)),
    };
    let Some((r, total)) = range else {
        let body = Body::from_stream(ReaderStream::with_capacity(blob.reader, DOWNLOAD_CHUNK));
        return Ok((
            [
                (CONTENT_TYPE, "application/octet-stream".to_owned()),
                (CONTENT_LENGTH, blob.len.to_string()),
                (ACCEPT_RANGES, "bytes".to_owned()),
                (CACHE_CONTROL, "no-store".to_owned()),
            ],
            body,
        )
            .into_response());
    };
    let len = r.len();
    let body = Body::from_stream(ReaderStream::with_capacity(blob.reader.take(len), DOWNLOAD_CHUNK));
    Ok((
        StatusCode::PARTIAL_CONTENT,
        [
            (CONTENT_TYPE, "application/octet-stream".to_owned()),
            (CONTENT_LENGTH, len.to_string()),
            (CONTENT_RANGE, format!("bytes {}-{}/{total}", r.start, r.end)),
            (ACCEPT_RANGES, "bytes".to_owned()),
            (CACHE_CONTROL, "no-store".to_owned()),
        ],
        body,
    )
        .into_response())
}

/// The request's `Range` header, if any: `Err` if there are several or it is
/// not text.
fn requested_range(headers: &HeaderMap) -> Option<Result<&str, RangeError>> {
    let mut values = headers.get_all(RANGE).iter();
    let first = values.next()?;
    if values.next().is_some() {
        return Some(Err(RangeError::Multiple));
    }
    Some(first.to_str().map_err(|_| RangeError::Malformed(String::from_utf8_lossy(first.as_bytes()).into_owned())))
}

/// The 416 answer to a `Range` that cannot be served.
fn range_refused(id: &DropId, e: &RangeError, total: u64) -> Response {
    let message = match e {
        RangeError::Malformed(value) => format!(
            "the Range header {value:?} is not `bytes=START-` or `bytes=START-END`; send one of those, or no Range to download all of drop {id}"
        ),
        RangeError::Multiple => format!(
            "the hub serves one byte range per request; ask for one (`bytes=START-`), or send no Range to download all of drop {id}"
        ),
        RangeError::Unsatisfiable(start) => format!(
            "the Range starts at byte {start}, but drop {id}'s ciphertext has {total} bytes; download it from byte 0 (no Range)"
        ),
    };
    let mut response = ApiError::new(ErrorCode::RangeNotSatisfiable, message).into_response();
    if let Ok(value) = HeaderValue::from_str(&format!("bytes */{total}")) {
        response.headers_mut().insert(CONTENT_RANGE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn more_than_one_range_header_is_refused() {
        let mut headers = HeaderMap::new();
        assert_eq!(requested_range(&headers), None);
        headers.append(RANGE, HeaderValue::from_static("bytes=1-"));
        assert_eq!(requested_range(&headers), Some(Ok("bytes=1-")));
        headers.append(RANGE, HeaderValue::from_static("bytes=2-"));
        assert_eq!(requested_range(&headers), Some(Err(RangeError::Multiple)));
        let mut headers = HeaderMap::new();
        headers.insert(RANGE, HeaderValue::from_bytes(b"bytes=\xff-").unwrap());
        assert!(matches!(requested_range(&headers), Some(Err(RangeError::Malformed(_)))));
    }
}
