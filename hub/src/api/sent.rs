//! `GET /v1/sent[?id=ID]`: the caller's party's sent drops with each
//! recipient's progress, so a sender can see who fetched and who
//! acknowledged without asking the recipients ([`crate::service::reads`]).

use axum::extract::{Query, State};
use axum::http::Uri;
use sealdrop_proto::api::{ErrorBody, Sent};
use sealdrop_proto::ids::DropId;
use serde::Deserialize;

use super::auth::Authed;
use super::error::ApiError;
use crate::hub::Hub;
use crate::service::{Drops, record_drop};

/// The query string.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct SentQuery {
    /// Only this drop (`not_found` if your party did not send it).
    #[param(value_type = Option<DropId>)]
    id: Option<String>,
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
    Ok(axum::Json(Drops::new(&hub).sent(&caller, id).await?))
}
