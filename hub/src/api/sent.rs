//! `GET /v1/sent[?id=ID]`: the caller's party's sent drops with each
//! recipient's progress, so a sender can see who fetched and who
//! acknowledged without asking the recipients. Each fact comes with the
//! index of the log entry that records it (commit, first download,
//! acknowledgement, deletion): the client believes only what it proves
//! from the log.

use axum::extract::{Query, State};
use axum::http::Uri;
use sealdrop_proto::api::{ErrorBody, RecipientStatus, Sent, SentDrop};
use sealdrop_proto::ids::DropId;
use serde::Deserialize;

use super::auth::Authed;
use super::error::ApiError;
use super::logging::record_drop;
use super::shared::ts;
use crate::hub::Hub;
use crate::storage::meta::SentRecord;

/// The query string.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct SentQuery {
    /// Only this drop (`not_found` if your party did not send it).
    #[param(value_type = Option<DropId>)]
    id: Option<String>,
}

fn sent_drop(SentRecord { drop: d, idempotency_key }: SentRecord) -> Result<SentDrop, ApiError> {
    let recipients = d
        .recipients
        .into_iter()
        .map(|r| {
            Ok(RecipientStatus {
                party: r.party,
                fetched: r.fetched.map(ts).transpose()?,
                acknowledged: r.acknowledged.map(ts).transpose()?,
                acknowledged_by: r.ack_member.map(|m| m.to_string()),
                fetched_log_index: r.fetch_index,
                acknowledged_log_index: r.ack_index,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    Ok(SentDrop {
        id: d.id,
        state: d.state,
        agreement: d.agreement,
        size: d.content.map_or(0, |c| c.len),
        created: ts(d.created)?,
        committed: d.committed.map(ts).transpose()?,
        expires: ts(d.expires)?,
        recipients,
        idempotency_key,
        deleted: d.deleted.map(ts).transpose()?,
        committed_log_index: d.commit_index,
        deleted_log_index: d.end_index,
    })
}

/// `GET /v1/sent`: newest first.
#[utoipa::path(
    get,
    path = "/v1/sent",
    tag = "drops",
    summary = "Your party's sent drops",
    description = "Every drop your party sent, newest first, with each recipient's progress (fetched, acknowledged, by \
                   whom) and the transfer-log entries that record each step. Only ever your own party's drops.",
    params(SentQuery),
    responses(
        (status = 200, description = "Your party's sent drops", body = Sent),
        (status = 400, description = "`bad_request`: an unknown query parameter or a malformed drop id", body = ErrorBody),
        (status = 404, description = "`not_found`: with `id`, your party has not sent that drop", body = ErrorBody),
    ),
    security(("sealdrop_request_signature" = [])),
)]
pub async fn sent(
    State(hub): State<Hub>,
    uri: Uri,
    Authed { caller, .. }: Authed,
) -> Result<axum::Json<Sent>, ApiError> {
    let Query(query) = Query::<SentQuery>::try_from_uri(&uri).map_err(|e| ApiError::bad_request(e.body_text()))?;
    let id = query.id.map(|s| s.parse::<DropId>().map_err(|e| ApiError::bad_request(e.to_string()))).transpose()?;
    if let Some(id) = &id {
        record_drop(id);
    }
    let drops = hub.meta().sent(&caller.party, id.as_ref()).await?;
    if let Some(id) = id
        && drops.is_empty()
    {
        return Err(ApiError::not_found(format!("your party `{}` has not sent a drop {id}", caller.party)));
    }
    Ok(axum::Json(Sent { drops: drops.into_iter().map(sent_drop).collect::<Result<_, _>>()? }))
}
