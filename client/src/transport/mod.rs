//! Transport: everything that talks to the hub, and nothing else does.
//!
//! [`HubApi`] is one connection to one hub, on one async HTTP client (see
//! `client.rs`): it signs requests as a member (or witness) and turns the
//! hub's refusals into [`crate::error::Error`]s with the hub's stable code.
//! Its typed endpoints (`api.rs`) are the only place a `/v1/...` path is
//! written; uploads (`upload.rs`) and downloads (`download.rs`) stream in
//! large chunks so memory stays bounded whatever a drop's size.

mod api;
mod client;
mod download;
mod upload;

pub use api::{ServedCheckpoint, content_path};
pub use client::{HubApi, trust_hub_ca};
pub use download::Download;
pub use upload::{CHUNK, feed};
