//! The per-address rate limit as middleware: every request, matched to a
//! route or not, takes a token from its client address's bucket before any
//! handler or extractor runs, so an unauthenticated flood is answered `429`
//! without a signature check or a database read. The per-party limit is
//! checked in [`super::auth`], once the signature has verified.
//!
//! The client address is the TCP peer's, or behind a trusted reverse proxy
//! the one its `X-Forwarded-For` names (see [`crate::client_addr`]); it is
//! left in the request's extensions as [`ClientAddr`] for later layers.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::api::ApiError;
use crate::client_addr::ClientAddr;
use crate::hub::Hub;

/// Middleware that limits requests per client address. A request without
/// a peer address (the router driven in-process by tests) is not limited.
pub async fn limit_addresses(State(hub): State<Hub>, mut req: Request, next: Next) -> Response {
    if let Some(ConnectInfo(peer)) = req.extensions().get::<ConnectInfo<SocketAddr>>().copied() {
        let client = hub.trusted_proxies().client_ip(peer.ip(), req.headers());
        if let Err(refused) = hub.limiters().check_address(client) {
            return ApiError::from(refused).into_response();
        }
        req.extensions_mut().insert(ClientAddr(client));
    }
    next.run(req).await
}
