//! What recipients read: their inbox (`GET /v1/inbox`) and a drop's
//! ciphertext (`GET /v1/drops/{id}/content`).
//!
//! Only committed, unexpired drops that the party has not yet acknowledged
//! are offered. The ciphertext is streamed from storage in 64 KiB chunks with
//! its length declared up front, so clients can show progress and detect
//! truncation.

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use sealdrop_proto::api::{DropState, Inbox, InboxEntry};
use tokio_util::io::ReaderStream;

use super::auth::Authed;
use super::error::ApiError;
use super::shared::{drop_id, load_drop, meta, ts};
use crate::hub::Hub;

/// Bytes read from storage per chunk of a download.
const DOWNLOAD_CHUNK: usize = 64 * 1024;

/// `GET /v1/inbox`: oldest first.
pub async fn inbox(State(hub): State<Hub>, Authed { caller, .. }: Authed) -> Result<axum::Json<Inbox>, ApiError> {
    let now = hub.now().as_second();
    let party = caller.party.clone();
    let drops = meta(&hub, move |m| m.inbox(&party, now)).await?;
    let drops = drops
        .into_iter()
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
    Authed { caller, .. }: Authed,
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
        DropState::Committed => {}
    }
    if let Some(at) = me.acknowledged {
        return Err(ApiError::gone(format!(
            "your party acknowledged drop {id} at {}; the hub no longer serves it to you",
            ts(at)?
        )));
    }
    let now = hub.now().as_second();
    if rec.expires <= now {
        return Err(ApiError::gone(format!("drop {id} expired at {}", ts(rec.expires)?)));
    }
    let Some(blob) = hub.blobs().open_blob(&id).await? else {
        return Err(ApiError::gone(format!("drop {id}'s ciphertext is no longer on the hub")));
    };
    let (key, party) = (id.clone(), caller.party.clone());
    meta(&hub, move |m| m.mark_fetched(&key, &party, now)).await?;
    tracing::info!(len = blob.len, "serving content");
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
