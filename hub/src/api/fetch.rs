//! What recipients read: their inbox (`GET /v1/inbox`) and a drop's
//! ciphertext (`GET /v1/drops/{id}/content`).
//!
//! Only committed, unexpired drops that the party has not yet acknowledged
//! are offered. The ciphertext is streamed from storage in 64 KiB chunks with
//! its length declared up front, so clients can show progress and detect
//! truncation. Every time it is served, the transfer log records it
//! (`drop_fetched`) with the recipient's signed request as evidence.

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use sealdrop_log::entry::{LogEntry, SignedRequest};
use sealdrop_proto::api::{DropState, Inbox, InboxEntry};
use tokio_util::io::ReaderStream;

use super::auth::Authed;
use super::error::ApiError;
use super::shared::{agreement_allows, drop_id, entry_bytes, load_drop, logged, meta, ts};
use crate::hub::Hub;
use crate::storage::meta::FetchRecord;

/// Bytes read from storage per chunk of a download.
const DOWNLOAD_CHUNK: usize = 64 * 1024;

/// `GET /v1/inbox`: oldest first. Drops the party may not fetch now (their
/// agreement ended or no longer includes the sender or the party) are left
/// out: the sweeper deletes the ones whose agreement ended.
pub async fn inbox(State(hub): State<Hub>, Authed { caller, .. }: Authed) -> Result<axum::Json<Inbox>, ApiError> {
    let now = hub.now();
    let party = caller.party.clone();
    let drops = meta(&hub, move |m| m.inbox(&party, now.as_second())).await?;
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
pub async fn get_content(
    State(hub): State<Hub>,
    path: Result<Path<String>, PathRejection>,
    Authed { caller, auth, path: signed_path, .. }: Authed,
) -> Result<Response, ApiError> {
    let id = drop_id(path)?;
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
    let now = hub.now();
    if rec.expires <= now.as_second() {
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
    let Some(blob) = hub.blobs().open_blob(&id).await? else {
        return Err(ApiError::gone(format!("drop {id}'s ciphertext is no longer on the hub")));
    };
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
    let key = id.clone();
    let Some(log_index) = logged(&hub, move |m, log_key| m.record_fetch(&key, &fetch, log_key)).await? else {
        // Ended (expired, recalled) between the checks above and now.
        return Err(ApiError::gone(format!("drop {id} is no longer available")));
    };
    tracing::info!(len = blob.len, log_index, "serving content");
    let body = Body::from_stream(ReaderStream::with_capacity(blob.reader, DOWNLOAD_CHUNK));
    Ok((
        [
            (CONTENT_TYPE, "application/octet-stream".to_owned()),
            (CONTENT_LENGTH, blob.len.to_string()),
            (CACHE_CONTROL, "no-store".to_owned()),
        ],
        body,
    )
        .into_response())
}
