//! The HTTP API under `/v1/`: the router and one module per concern.
//!
//! - [`directory`]: the hub's identity (public) and the signed directory.
//! - [`auth`]: request-signature extractors every other route uses.
//! - [`log_access`]: who may read the transfer log and the directory
//!   (members and witnesses by default, anyone with `log_access = "public"`).
//! - [`drops`], [`upload`], [`commit`]: the sender's side of a drop;
//!   [`put`]: a small drop in one request.
//! - [`fetch`], [`ack`]: the recipients' side.
//! - [`recall`]: the sender takes back a drop nobody has acknowledged;
//!   [`withdraw`]: the sender removes a drop it never committed.
//! - [`sent`]: the sender's view of recipients' progress.
//! - [`tlog`]: the signed transfer log (checkpoint, tiles, entries, proofs)
//!   and witnesses' cosignatures.
//! - [`error`]: the single JSON error shape; [`logging`]: the request log;
//!   [`metered`]: the request metrics.
//! - [`idle_body`]: the body idle timeout every request body is read under;
//!   [`unauth_body`]: the budget unauthenticated bodies are read within.
//! - [`health`]: `/healthz` and `/readyz`, outside `/v1/`.
//! - [`scrape`]: `/metrics`, on the metrics listener only.
//! - [`openapi`]: the API's description, `GET /v1/openapi.json`, built
//!   from the same route table as the router ([`routes()`]).
//! - [`throttle`]: the rate limit per source address.

pub mod ack;
pub mod auth;
pub mod commit;
pub mod directory;
pub mod drops;
pub mod error;
pub mod fetch;
pub mod health;
pub mod idle_body;
pub mod log_access;
pub mod logging;
pub mod metered;
pub mod openapi;
pub mod put;
pub mod recall;
pub mod scrape;
pub mod sent;
pub(crate) mod shared;
pub mod throttle;
pub mod tlog;
pub mod unauth_body;
pub mod upload;
pub mod withdraw;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{Method, Uri};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt as _};
use utoipa_axum::routes;

pub use error::ApiError;

use crate::hub::Hub;

/// Every route of the hub, in one table: `routes!` registers each handler
/// under the path of its `#[utoipa::path]` annotation and adds that
/// annotation to the API description, so the router ([`router`]) and the
/// description ([`openapi::description`]) are built from the same entries.
/// Add a route here, with `routes!`, and nowhere else.
pub fn routes() -> OpenApiRouter<Hub> {
    OpenApiRouter::new()
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(openapi::openapi_json))
        .routes(routes!(directory::info))
        .routes(
            routes!(directory::get_directory, directory::post_directory)
                .layer(DefaultBodyLimit::max(directory::DIRECTORY_BODY_LIMIT)),
        )
        .routes(routes!(directory::get_directory_version))
        .routes(routes!(tlog::checkpoint))
        .routes(routes!(tlog::tile))
        .routes(routes!(tlog::entry))
        .routes(routes!(tlog::inclusion))
        .routes(routes!(tlog::consistency))
        .routes(routes!(tlog::cosign))
        .routes(routes!(drops::create))
        .routes(routes!(drops::details, withdraw::withdraw, put::put_drop))
        .routes(routes!(fetch::get_content, upload::put_content))
        .routes(routes!(upload::upload_progress))
        .routes(routes!(commit::commit))
        .routes(routes!(ack::ack))
        .routes(routes!(recall::recall))
        .routes(routes!(fetch::inbox))
        .routes(routes!(sent::sent))
}

/// Builds the hub's router.
pub fn router(hub: Hub) -> Router {
    with_layers(routes(), hub)
}

/// The router of a route table, with the fallback and every layer.
pub(crate) fn with_layers(routes: OpenApiRouter<Hub>, hub: Hub) -> Router {
    let (router, _) = routes.split_for_parts();
    router
        .fallback(no_route)
        .method_not_allowed_fallback(no_route)
        .layer(axum::middleware::from_fn(openapi::described_routes_only))
        // One budget for every unauthenticated body this router reads (the
        // API's own state, so the hub's state below it need not know it).
        .layer(axum::Extension(std::sync::Arc::new(unauth_body::Budget::default())))
        // JSON bodies; the upload streams past this with its own limit.
        .layer(DefaultBodyLimit::max(auth::JSON_BODY_LIMIT))
        // Before any handler or extractor: nothing is authenticated or read
        // for a request over its address's limit.
        .layer(axum::middleware::from_fn_with_state(hub.clone(), throttle::limit_addresses))
        .layer(axum::middleware::from_fn_with_state(hub.clone(), idle_body::limit_idle))
        .layer(axum::middleware::from_fn(logging::log_requests))
        .layer(axum::middleware::from_fn_with_state(hub.clone(), metered::observe))
        .with_state(hub)
}

/// Marks the answer of `no_route`, so tests can tell "no such route or
/// method" from a route's own 404.
#[derive(Debug, Clone, Copy)]
pub struct NoRoute;

/// Unknown routes and methods: the same JSON error shape as everything else.
async fn no_route(method: Method, uri: Uri) -> Response {
    let mut response =
        ApiError::not_found(format!("there is no route {method} {}: the hub's API lives under /v1/", uri.path()))
            .into_response();
    response.extensions_mut().insert(NoRoute);
    response
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
                require_pq: false,
            }],
        };
        (authority, keys, dir)
    }

    pub fn caller_of(dir: &Directory, key: &MemberSecretKey) -> Caller {
        let (party, member) = dir.member_by_key_name(key.signing.name()).unwrap();
        Caller { party: party.id.clone(), member: member.member.clone(), key: member.signing_key.clone() }
    }
}
