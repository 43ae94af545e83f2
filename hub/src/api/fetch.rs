//! What recipients read: their inbox (`GET /v1/inbox`) and a drop's
//! ciphertext (`GET /v1/drops/{id}/content`).
//!
//! Only committed, unexpired drops that the party has not yet acknowledged
//! are offered. The ciphertext is streamed from storage in 64 KiB chunks with
//! its length declared up front, so clients can show progress and detect
//! truncation. Every time it is served, the transfer log records it
//! (`drop_fetched`) with the recipient's signed request as evidence.
//!
//! A download that broke off resumes with one HTTP range (`Range:
//! bytes=START-` or `bytes=START-END`, or the last N bytes with `bytes=-N`),
//! answered 206 with `Content-Range`; the same checks apply and it is logged
//! like any other download. A malformed, multi-range or unsatisfiable
//! `Range` is refused with 416 `bad_range` (and `Content-Range: bytes
//! */TOTAL`). The recipient's final hash check covers the whole ciphertext,
//! so a range never weakens what is verified.
//!
//! Each party may download a drop at most
//! [`sealdrop_log::policy::MAX_DOWNLOADS_PER_PARTY`] times, whole or in
//! ranges (the count and the log entry are one transaction); then
//! `download_limit` (409). Every download is a permanent log entry, so a
//! member looping over 1-byte ranges could otherwise grow the log forever.

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::header::{ACCEPT_RANGES, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, RANGE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sealdrop_log::entry::{LogEntry, SignedRequest};
use sealdrop_proto::api::{DropState, ErrorBody, Inbox, InboxEntry, code};
use sealdrop_proto::ids::DropId;
use tokio::io::AsyncReadExt as _;
use tokio_util::io::ReaderStream;

use super::auth::Authed;
use super::error::ApiError;
use super::shared::{agreement_allows, drop_id, entry_bytes, load_drop, ts};
use crate::hub::Hub;
use crate::storage::meta::{FetchOutcome, FetchRecord};

/// Bytes read from storage per chunk of a download.
const DOWNLOAD_CHUNK: usize = 64 * 1024;

/// `GET /v1/inbox`: oldest first. Drops the party may not fetch now (their
/// agreement ended or no longer includes the sender or the party) are left
/// out: the sweeper deletes the ones whose agreement ended.
#[utoipa::path(
    get,
    path = "/v1/inbox",
    tag = "drops",
    summary = "Drops waiting for your party",
    description = "Committed, unexpired drops addressed to your party that it has not acknowledged, oldest first. Only \
                   ever your own party's.",
    responses((status = 200, description = "Your party's inbox", body = Inbox)),
    security(("sealdrop_request_signature" = [])),
)]
pub async fn inbox(State(hub): State<Hub>, Authed { caller, .. }: Authed) -> Result<axum::Json<Inbox>, ApiError> {
    let now = hub.now();
    let drops = hub.meta().inbox(&caller.party, now.as_second()).await?;
    let directory = hub.directory();
    let drops = drops
        .into_iter()
        .filter(|d| {
            let parties = [("sender", &d.sender), ("your party", &caller.party)];
            agreement_allows(&directory.directory, &d.agreement, &parties, now).is_ok()
        })
        .map(|d| {
            Ok(InboxEntry {
                from: d.sender,
                size: d.content.map_or(0, |c| c.len),
                created: ts(d.created)?,
                committed: ts(d.committed.unwrap_or(d.created))?,
                expires: ts(d.expires)?,
                agreement: d.agreement,
                id: d.id,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    Ok(axum::Json(Inbox { drops }))
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
    // Judged only after every check below, so a bad range tells nobody
    // outside the drop anything about it.
    let requested = requested_range(&headers);
    let rec = load_drop(&hub, &id).await?;
    let Some(me) = rec.recipient(&caller.party) else {
        return Err(ApiError::forbidden(format!(
            "only the recipient parties may download drop {id}, and your party `{}` is not one",
            caller.party
        )));
    };
    match rec.state {
        DropState::Open => return Err(ApiError::not_found(format!("there is no drop {id} on this hub"))),
        DropState::Delivered => {
            return Err(ApiError::gone(format!("drop {id} was delivered to every recipient and deleted")));
        }
        DropState::Expired => {
            return Err(ApiError::gone(format!(
                "drop {id} expired at {} and its ciphertext was deleted: ask the sender to send it again",
                ts(rec.expires)?
            )));
        }
        DropState::Recalled => {
            return Err(ApiError::gone(format!("drop {id} was recalled by its sender and its ciphertext deleted")));
        }
        DropState::Committed => {}
    }
    if let Some(at) = me.acknowledged {
        return Err(ApiError::gone(format!(
            "your party acknowledged drop {id} at {}; the hub no longer serves it to you",
            ts(at)?
        )));
    }
    let turn = hub.log_turn().await;
    let now = hub.now();
    if sealdrop_proto::policy::drop_expired(rec.expires, now.as_second()) {
        return Err(ApiError::gone(format!(
            "drop {id} expired at {}: ask the sender to send it again",
            ts(rec.expires)?
        )));
    }
    agreement_allows(
        &hub.directory().directory,
        &rec.agreement,
        &[("sender", &rec.sender), ("your party", &caller.party)],
        now,
    )?;
    let range = match requested {
        None => None,
        Some(value) => {
            let Some(total) = rec.content.as_ref().map(|c| c.len) else {
                return Err(ApiError::internal(format_args!("committed drop {id} has no content digest")));
            };
            match value.and_then(|v| parse_range(v, total)) {
                Ok(range) => Some((range, total)),
                Err(e) => return Ok(range_refused(&id, &e, total)),
            }
        }
    };
    let blob = match range {
        None => hub.blobs().open_blob(&id).await?,
        Some((r, _)) => hub.blobs().open_blob_from(&id, r.start).await?,
    };
    let Some(blob) = blob else {
        return Err(ApiError::gone(format!("drop {id}'s ciphertext is no longer on the hub")));
    };
    if let Some((r, total)) = range
        && r.start + blob.len != total
    {
        return Err(ApiError::internal(format_args!(
            "drop {id}'s stored ciphertext has {} bytes, not the {total} committed",
            r.start + blob.len
        )));
    }
    let fetched = LogEntry::DropFetched {
        drop: id.clone(),
        party: caller.party.clone(),
        fetched: now,
        request: SignedRequest::from_auth(&auth, "GET", &signed_path),
    };
    let log_entry = entry_bytes(&fetched, |e| {
        ApiError::bad_request(format!("{e}: this request cannot be logged; request the content without a query"))
    })?;
    let fetch = FetchRecord { party: caller.party.clone(), at: now.as_second(), log_entry };
    let log_index = match hub.meta().record_fetch(&id, &fetch, Box::new(turn)).await? {
        FetchOutcome::Recorded { log_index } => log_index,
        // Ended (expired, recalled) between the checks above and now.
        FetchOutcome::NotCommitted => return Err(ApiError::gone(format!("drop {id} is no longer available"))),
        FetchOutcome::LimitReached { downloads } => return Err(download_limit(&id, &caller.party, downloads)),
    };
    hub.metrics().drop_fetched();
    let Some((r, total)) = range else {
        tracing::info!(len = blob.len, log_index, "serving content");
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
    tracing::info!(len, start = r.start, end = r.end, total, log_index, "serving content range");
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

/// The refusal of a download beyond the bound: each download is a
/// permanent log entry, so no party may grow the log without end.
fn download_limit(id: &DropId, party: &sealdrop_proto::ids::PartyId, downloads: u64) -> ApiError {
    ApiError::new(
        code::DOWNLOAD_LIMIT,
        format!(
            "your party `{party}` has downloaded drop {id} {downloads} times, the most the hub serves one party (each \
             download is a permanent entry in the transfer log): ask the sender to send it again"
        ),
    )
}

/// One range of bytes of a ciphertext, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    /// The first byte served.
    pub start: u64,
    /// The last byte served.
    pub end: u64,
}

impl ByteRange {
    /// How many bytes the range covers.
    pub fn len(&self) -> u64 {
        self.end - self.start + 1
    }

    /// Never true: a range covers at least one byte.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// Why a `Range` header cannot be served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeError {
    /// Not one of the forms the hub serves (the header as received).
    Malformed(String),
    /// More than one range, or more than one `Range` header.
    Multiple,
    /// Starts at or beyond the end (the first byte asked for).
    Unsatisfiable(u64),
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

/// Parses a `Range` header value for a ciphertext of `total` bytes:
/// `bytes=START-` (to the end), `bytes=START-END` (END past the end is cut
/// to the end) or `bytes=-N` (the last N bytes), one range only.
pub fn parse_range(value: &str, total: u64) -> Result<ByteRange, RangeError> {
    let malformed = || RangeError::Malformed(value.to_owned());
    let trimmed = value.trim();
    let spec = match trimmed.split_once('=') {
        Some((unit, spec)) if unit.trim().eq_ignore_ascii_case("bytes") => spec.trim(),
        _ => return Err(malformed()),
    };
    if spec.contains(',') {
        return Err(RangeError::Multiple);
    }
    let (first, last) = spec.split_once('-').ok_or_else(malformed)?;
    let number = |s: &str| -> Result<u64, RangeError> {
        let s = s.trim();
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(malformed());
        }
        s.parse().map_err(|_| malformed())
    };
    match (first.trim().is_empty(), last.trim().is_empty()) {
        (true, true) => Err(malformed()),
        (true, false) => {
            let suffix = number(last)?;
            if suffix == 0 || total == 0 {
                return Err(RangeError::Unsatisfiable(total));
            }
            Ok(ByteRange { start: total.saturating_sub(suffix), end: total - 1 })
        }
        (false, open) => {
            let start = number(first)?;
            let end = if open { u64::MAX } else { number(last)? };
            if end < start {
                return Err(malformed());
            }
            if start >= total {
                return Err(RangeError::Unsatisfiable(start));
            }
            Ok(ByteRange { start, end: end.min(total - 1) })
        }
    }
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
    let mut response = ApiError::new(code::RANGE_NOT_SATISFIABLE, message).into_response();
    if let Ok(value) = HeaderValue::from_str(&format!("bytes */{total}")) {
        response.headers_mut().insert(CONTENT_RANGE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(start: u64, end: u64) -> Result<ByteRange, RangeError> {
        Ok(ByteRange { start, end })
    }

    #[test]
    fn open_ended_and_closed_ranges() {
        assert_eq!(parse_range("bytes=0-", 10), range(0, 9));
        assert_eq!(parse_range("bytes=4-", 10), range(4, 9));
        assert_eq!(parse_range("bytes=9-", 10), range(9, 9));
        assert_eq!(parse_range("bytes=2-5", 10), range(2, 5));
        assert_eq!(parse_range("bytes=3-3", 10), range(3, 3));
        assert_eq!(parse_range("bytes=2-5", 10).map(|r| r.len()), Ok(4));
        // An end past the last byte is cut to it (RFC 9110, 14.1.2).
        assert_eq!(parse_range("bytes=5-99", 10), range(5, 9));
        assert_eq!(parse_range(&format!("bytes=5-{}", u64::MAX), 10), range(5, 9));
        // The unit is case-insensitive; surrounding blanks are tolerated.
        assert_eq!(parse_range(" Bytes=1-2 ", 10), range(1, 2));
    }

    #[test]
    fn suffix_ranges_take_the_last_bytes() {
        assert_eq!(parse_range("bytes=-3", 10), range(7, 9));
        assert_eq!(parse_range("bytes=-30", 10), range(0, 9));
        assert_eq!(parse_range("bytes=-0", 10), Err(RangeError::Unsatisfiable(10)));
        assert_eq!(parse_range("bytes=-1", 0), Err(RangeError::Unsatisfiable(0)));
    }

    #[test]
    fn a_start_at_or_past_the_end_is_unsatisfiable() {
        assert_eq!(parse_range("bytes=10-", 10), Err(RangeError::Unsatisfiable(10)));
        assert_eq!(parse_range("bytes=11-20", 10), Err(RangeError::Unsatisfiable(11)));
        assert_eq!(parse_range("bytes=0-", 0), Err(RangeError::Unsatisfiable(0)));
    }

    #[test]
    fn several_ranges_are_refused() {
        assert_eq!(parse_range("bytes=0-1,5-6", 10), Err(RangeError::Multiple));
        assert_eq!(parse_range("bytes=0-1, 5-", 10), Err(RangeError::Multiple));
        assert_eq!(parse_range("bytes=0-,", 10), Err(RangeError::Multiple));
    }

    #[test]
    fn malformed_ranges_are_refused() {
        for bad in [
            "",
            "bytes",
            "bytes=",
            "bytes=-",
            "bytes=5",
            "bytes=a-",
            "bytes=1-b",
            "bytes=+1-",
            "bytes=-+1",
            "bytes=1--2",
            "bytes=5-4",
            "bytes=0x10-",
            "bytes=99999999999999999999-",
            "items=0-1",
            "0-1",
            "=0-1",
        ] {
            assert_eq!(parse_range(bad, 10), Err(RangeError::Malformed(bad.to_owned())), "{bad:?}");
        }
    }

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
