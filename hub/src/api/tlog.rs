//! The transfer log over HTTP, in the C2SP formats so auditors can use
//! tools nobody here wrote:
//!
//! - `GET /v1/log/checkpoint`: the latest checkpoint (c2sp.org/tlog-checkpoint)
//!   with every witness cosignature stored for it.
//! - `GET /v1/log/tile/<L>/<N>[.p/<W>]` and `GET /v1/log/tile/entries/<N>[.p/<W>]`:
//!   hash tiles and entry bundles (c2sp.org/tlog-tiles, height 8).
//! - `GET /v1/log/entry/{index}`: one entry's bytes.
//! - `GET /v1/log/proof/inclusion` and `/v1/log/proof/consistency`: RFC 6962 proofs.
//! - `POST /v1/log/cosignature`: a party's witness cosignature, signed by a
//!   member of that party or by the witness key itself.
//!
//! Everything but the cosignature is read-only. The log holds hashes, ids,
//! party pairs, sizes, times, key names and signatures, never content or file
//! names; still, who exchanges what with whom is for the directory's members
//! and witnesses only unless the operator makes the log public (see
//! [`super::log_access`]).

use std::fmt::Display;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use sealdrop_log::tiles::{TileError, TilePath};
use sealdrop_proto::api::{
    ConsistencyProof, Cosign, CosignatureAccepted, DIRECTORY_SERIAL_HEADER, ErrorBody, InclusionProof,
};
use serde::Deserialize;

use super::auth::{Json, SignedBy, Signer};
use super::error::ApiError;
use super::log_access::LogReader;
use crate::hub::Hub;
use crate::service::cosign;
use crate::transfer_log;

/// Served with what never changes: full tiles and entries.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Served with what grows: the checkpoint and partial tiles.
const NO_STORE: &str = "no-store";

fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(t)| t).map_err(|e| ApiError::bad_request(e.body_text()))
}

/// The number of entries in the log.
async fn tree_size(hub: &Hub) -> Result<u64, ApiError> {
    Ok(hub.log().log_size().await?)
}

/// `GET /v1/log/checkpoint`.
#[utoipa::path(
    get,
    path = "/v1/log/checkpoint",
    tag = "log",
    summary = "The transfer log's latest checkpoint",
    description = "A c2sp.org/tlog-checkpoint signed note by the hub's log key, with every witness cosignature \
                   stored for it.",
    responses((status = 200, description = "The signed checkpoint", content_type = "text/plain", body = String,
        headers(("sealdrop-directory-serial" = u64, description = "The serial of the directory the hub enforces: a \
                  client holding that directory verified need not ask for it")))),
    security(("sealdrop_request_signature" = [])),
    extensions(("x-sealdrop-readable-by" = json!("members and witnesses"))),
)]
pub async fn checkpoint(_reader: LogReader, State(hub): State<Hub>) -> Result<Response, ApiError> {
    let directory_serial = hub.directory().directory.serial.to_string();
    let note = transfer_log::cosigned_checkpoint(hub.log(), hub.cosignatures()).await?;
    let headers = [(CONTENT_TYPE, "text/plain; charset=utf-8"), (CACHE_CONTROL, NO_STORE)];
    Ok((headers, [(DIRECTORY_SERIAL_HEADER, directory_serial)], note).into_response())
}

/// The 404 for a tile the log does not (yet) hold.
fn beyond_the_log(tile: impl Display) -> ApiError {
    ApiError::not_found(format!("tile {tile} is beyond the log's current size"))
}

/// `GET /v1/log/tile/{*path}`.
#[utoipa::path(
    get,
    path = "/v1/log/tile/{*path}",
    tag = "log",
    summary = "A tile of the transfer log",
    description = "A hash tile `<L>/<N>[.p/<W>]` or an entry bundle `entries/<N>[.p/<W>]` (c2sp.org/tlog-tiles, \
                   height 8). Full tiles never change and are served as immutable.",
    params(("path" = String, Path, description = "The tile's path, several segments: `<L>/<N>[.p/<W>]` or `entries/<N>[.p/<W>]`, N as `x001/x234/067`")),
    responses(
        (status = 200, description = "The tile's bytes", content_type = "application/octet-stream", body = inline(super::openapi::Binary)),
        (status = 400, description = "`bad_request`: not a tile path", body = ErrorBody),
        (status = 404, description = "`not_found`: beyond the log's current size", body = ErrorBody),
    ),
    security(("sealdrop_request_signature" = [])),
    extensions(("x-sealdrop-readable-by" = json!("members and witnesses"))),
)]
pub async fn tile(
    _reader: LogReader,
    State(hub): State<Hub>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(raw) = path.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let tile = match TilePath::parse(&raw) {
        Ok(tile) => tile,
        // Well-formed, but beyond any tree the log can hold: so beyond this one.
        Err(TileError::OutOfRange(_)) => return Err(beyond_the_log(&raw)),
        Err(_) => {
            return Err(ApiError::bad_request(format!(
                "{raw:?} is not a tile path: expected `<level>/<N>[.p/<width>]` or `entries/<N>[.p/<width>]` \
                 (c2sp.org/tlog-tiles)"
            )));
        }
    };
    let data = transfer_log::read_tile(hub.log(), tile).await?.ok_or_else(|| beyond_the_log(tile))?;
    let cache = if tile.is_partial() { NO_STORE } else { IMMUTABLE };
    Ok(([(CONTENT_TYPE, "application/octet-stream"), (CACHE_CONTROL, cache)], data).into_response())
}

/// `GET /v1/log/entry/{index}`: the entry's bytes (JSON).
#[utoipa::path(
    get,
    path = "/v1/log/entry/{index}",
    tag = "log",
    summary = "One entry of the transfer log",
    description = "The entry's bytes: compact JSON (party ids, key names, hashes, sizes, times and signed \
                   documents; never content or file names).",
    params(("index" = u64, Path, description = "The entry's index, from 0")),
    responses(
        (status = 200, description = "The entry", content_type = "application/json", body = Object),
        (status = 400, description = "`bad_request`: the index is not a number", body = ErrorBody),
        (status = 404, description = "`not_found`: the log has no such entry yet", body = ErrorBody),
    ),
    security(("sealdrop_request_signature" = [])),
    extensions(("x-sealdrop-readable-by" = json!("members and witnesses"))),
)]
pub async fn entry(
    _reader: LogReader,
    State(hub): State<Hub>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(raw) = path.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let index: u64 = raw.parse().map_err(|_| ApiError::bad_request(format!("log index {raw:?} is not a number")))?;
    let data = transfer_log::read_entry(hub.log(), index)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("the log has no entry {index} yet")))?;
    Ok(([(CONTENT_TYPE, "application/json"), (CACHE_CONTROL, IMMUTABLE)], data).into_response())
}

/// The query of `GET /v1/log/proof/inclusion`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct InclusionQuery {
    /// The entry's index.
    index: u64,
    /// The size of the tree to prove it in (greater than `index`).
    size: u64,
}

/// `GET /v1/log/proof/inclusion?index=I&size=N`.
#[utoipa::path(
    get,
    path = "/v1/log/proof/inclusion",
    tag = "log",
    summary = "Proof that an entry is in the log",
    description = "The RFC 6962 audit path of entry `index` in the tree of `size` entries.",
    params(InclusionQuery),
    responses(
        (status = 200, description = "The proof", body = InclusionProof),
        (status = 400, description = "`bad_request`: a missing or malformed parameter, or `index` not below `size`", body = ErrorBody),
        (status = 404, description = "`not_found`: the log is smaller than `size`", body = ErrorBody),
    ),
    security(("sealdrop_request_signature" = [])),
    extensions(("x-sealdrop-readable-by" = json!("members and witnesses"))),
)]
pub async fn inclusion(
    _reader: LogReader,
    State(hub): State<Hub>,
    q: Result<Query<InclusionQuery>, QueryRejection>,
) -> Result<axum::Json<InclusionProof>, ApiError> {
    let InclusionQuery { index, size } = query(q)?;
    if index >= size {
        return Err(ApiError::bad_request(format!("entry {index} is not in a tree of {size} entries")));
    }
    let current = tree_size(&hub).await?;
    if size > current {
        return Err(ApiError::not_found(format!("the log has {current} entries, fewer than {size}")));
    }
    let proof = transfer_log::prove_inclusion(hub.log(), index, size).await?;
    Ok(axum::Json(InclusionProof { index, size, hashes: proof.iter().map(ToString::to_string).collect() }))
}

/// The query of `GET /v1/log/proof/consistency`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ConsistencyQuery {
    /// The older tree size.
    old: u64,
    /// The newer tree size (at least `old`).
    new: u64,
}

/// `GET /v1/log/proof/consistency?old=A&new=B`.
#[utoipa::path(
    get,
    path = "/v1/log/proof/consistency",
    tag = "log",
    summary = "Proof that the log only grew",
    description = "The RFC 6962 proof that the tree of `new` entries extends the tree of `old` entries.",
    params(ConsistencyQuery),
    responses(
        (status = 200, description = "The proof", body = ConsistencyProof),
        (status = 400, description = "`bad_request`: a missing or malformed parameter, or `old` larger than `new`", body = ErrorBody),
        (status = 404, description = "`not_found`: the log is smaller than `new`", body = ErrorBody),
    ),
    security(("sealdrop_request_signature" = [])),
    extensions(("x-sealdrop-readable-by" = json!("members and witnesses"))),
)]
pub async fn consistency(
    _reader: LogReader,
    State(hub): State<Hub>,
    q: Result<Query<ConsistencyQuery>, QueryRejection>,
) -> Result<axum::Json<ConsistencyProof>, ApiError> {
    let ConsistencyQuery { old, new } = query(q)?;
    if old > new {
        return Err(ApiError::bad_request(format!("the old size {old} is larger than the new size {new}")));
    }
    let current = tree_size(&hub).await?;
    if new > current {
        return Err(ApiError::not_found(format!("the log has {current} entries, fewer than {new}")));
    }
    let hashes = transfer_log::prove_consistency(hub.log(), old, new).await?.iter().map(ToString::to_string).collect();
    Ok(axum::Json(ConsistencyProof { old, new, hashes }))
}

/// `POST /v1/log/cosignature`: stores a witness cosignature over the
/// checkpoint of `size`, replacing that witness's earlier one for the same
/// checkpoint. A member may hand in the cosignature of any witness key of
/// its own party; a witness signing the request itself, only its own.
#[utoipa::path(
    post,
    path = "/v1/log/cosignature",
    tag = "log",
    summary = "Store a witness cosignature",
    description = "A c2sp.org/tlog-cosignature line by one of your party's witness keys (listed in the directory) over \
                   the hub's checkpoint of `size`, served with that checkpoint from then on. Signed by a member key of \
                   that party, or by the witness key itself (then only its own line is accepted).",
    request_body = Cosign,
    responses(
        (status = 200, description = "Stored", body = CosignatureAccepted),
        (status = 400, description = "`bad_request`: a malformed body", body = ErrorBody),
        (status = 404, description = "`not_found`: the hub signed no checkpoint of that size", body = ErrorBody),
        (status = 422, description = "`bad_cosignature`: not a signature line, not by a witness key of your party (or, signed by a witness key, not by that key), or not over that checkpoint", body = ErrorBody),
    ),
    security(("sealdrop_request_signature" = [])),
)]
pub async fn cosign(
    State(hub): State<Hub>,
    SignedBy { signer, body: Json(req) }: SignedBy<Json<Cosign>>,
) -> Result<axum::Json<CosignatureAccepted>, ApiError> {
    let own_key = match &signer {
        Signer::Witness { key, .. } => Some(key),
        Signer::Member(_) => None,
    };
    Ok(axum::Json(cosign::accept(&hub, signer.party(), own_key, &req).await?))
}
