//! The HTTP API under `/v1/`: the router and one module per concern.
//!
//! - [`directory`]: unauthenticated identity and directory routes.
//! - [`auth`]: request-signature extractors every other route uses.
//! - [`drops`], [`upload`], [`commit`]: the sender's side of a drop.
//! - [`fetch`], [`ack`]: the recipients' side.
//! - [`recall`]: the sender takes back a drop nobody has acknowledged.
//! - [`sent`]: the sender's view of recipients' progress.
//! - [`tlog`]: the signed transfer log (checkpoint, tiles, entries, proofs)
//!   and witnesses' cosignatures.
//! - [`error`]: the single JSON error shape; [`logging`]: the request log;
//!   [`metered`]: the request metrics.
//! - [`idle_body`]: the body idle timeout every request body is read under.
//! - [`health`]: `/healthz` and `/readyz`, outside `/v1/`.
//! - [`scrape`]: `/metrics`, on the metrics listener only.

pub mod ack;
pub mod auth;
pub mod commit;
pub mod directory;
pub mod drops;
pub mod error;
pub mod fetch;
pub mod health;
pub mod idle_body;
pub mod logging;
pub mod metered;
pub mod recall;
pub mod scrape;
pub mod sent;
mod shared;
pub mod tlog;
pub mod upload;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{Method, Uri};
use axum::routing::{get, post};

pub use error::ApiError;

use crate::hub::Hub;

/// Builds the hub's router.
pub fn router(hub: Hub) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/v1/info", get(directory::info))
        .route(
            "/v1/directory",
            get(directory::get_directory)
                .post(directory::post_directory)
                .layer(DefaultBodyLimit::max(directory::DIRECTORY_BODY_LIMIT)),
        )
        .route("/v1/directory/{serial}", get(directory::get_directory_version))
        .route("/v1/log/checkpoint", get(tlog::checkpoint))
        .route("/v1/log/tile/{*path}", get(tlog::tile))
        .route("/v1/log/entry/{index}", get(tlog::entry))
        .route("/v1/log/proof/inclusion", get(tlog::inclusion))
        .route("/v1/log/proof/consistency", get(tlog::consistency))
        .route("/v1/log/cosignature", post(tlog::cosign))
        .route("/v1/drops", post(drops::create))
        .route("/v1/drops/{id}", get(drops::details))
        .route("/v1/drops/{id}/content", get(fetch::get_content).put(upload::put_content))
        .route("/v1/drops/{id}/upload", get(upload::upload_progress))
        .route("/v1/drops/{id}/commit", post(commit::commit))
        .route("/v1/drops/{id}/ack", post(ack::ack))
        .route("/v1/drops/{id}/recall", post(recall::recall))
        .route("/v1/inbox", get(fetch::inbox))
        .route("/v1/sent", get(sent::sent))
        .fallback(no_route)
        .method_not_allowed_fallback(no_route)
        // JSON bodies; the upload streams past this with its own limit.
        .layer(DefaultBodyLimit::max(auth::JSON_BODY_LIMIT))
        .layer(axum::middleware::from_fn_with_state(hub.clone(), idle_body::limit_idle))
        .layer(axum::middleware::from_fn(logging::log_requests))
        .layer(axum::middleware::from_fn_with_state(hub.clone(), metered::observe))
        .with_state(hub)
}

/// Unknown routes and methods: the same JSON error shape as everything else.
async fn no_route(method: Method, uri: Uri) -> ApiError {
    ApiError::not_found(format!("there is no route {method} {}: the hub's API lives under /v1/", uri.path()))
}

#[cfg(test)]
pub(crate) mod test_support {
    //! A sample directory for unit tests: four councils, one agreement
    //! between the first three.

    use sealdrop_proto::directory::{Agreement, Directory, Party};
    use sealdrop_proto::keys::{MemberSecretKey, NoteSigningKey};

    use super::auth::Caller;

    pub fn sample() -> (NoteSigningKey, Vec<MemberSecretKey>, Directory) {
        let authority = NoteSigningKey::generate("test-authority").unwrap();
        let keys: Vec<MemberSecretKey> = ["camden", "islington", "hackney", "barnet"]
            .iter()
            .map(|p| MemberSecretKey::generate(p.parse().unwrap(), "data-team".parse().unwrap()))
            .collect();
        let parties = keys
            .iter()
            .map(|k| {
                let card = k.public();
                Party::with_member(&k.party.to_string(), card)
            })
            .collect();
        let dir = Directory {
            serial: 1,
            issued_at: "2026-01-01T00:00:00Z".parse().unwrap(),
            hub: None,
            parties,
            agreements: vec![Agreement {
                id: "inner-fsm".into(),
                title: "FSM".into(),
                purpose: "p".into(),
                lawful_basis: "b".into(),
                parties: ["camden", "islington", "hackney"].iter().map(|p| p.parse().unwrap()).collect(),
                max_expiry_days: 30,
                valid_from: "2026-01-01T00:00:00Z".parse().unwrap(),
                valid_until: "2030-01-01T00:00:00Z".parse().unwrap(),
            }],
        };
        (authority, keys, dir)
    }

    pub fn caller_of(dir: &Directory, key: &MemberSecretKey) -> Caller {
        let (party, member) = dir.member_by_key_name(key.signing.name()).unwrap();
        Caller { party: party.id.clone(), member: member.member.clone(), key: member.signing_key.clone() }
    }
}
