//! The per-address rate limit as middleware: every request, matched to a
//! route or not, takes a token from its source address's bucket before any
//! handler or extractor runs, so an unauthenticated flood is answered `429`
//! without a signature check or a database read. The per-party limit is
//! checked in [`super::auth`], once the signature has verified.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::hub::Hub;

/// Middleware that limits requests per source address. A request without
/// a peer address (the router driven in-process by tests) is not limited.
pub async fn limit_addresses(State(hub): State<Hub>, req: Request, next: Next) -> Response {
    if let Some(ConnectInfo(peer)) = req.extensions().get::<ConnectInfo<SocketAddr>>()
        && let Err(refused) = hub.limiters().check_address(peer.ip())
    {
        return refused.into_response();
    }
    next.run(req).await
}
