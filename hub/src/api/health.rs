//! `/healthz` and `/readyz`: for load balancers, orchestrators and
//! monitoring, unauthenticated and outside `/v1/` (they are not part of the
//! API clients speak).
//!
//! - `/healthz` answers 200 whenever the process can answer at all
//!   (liveness: restart the hub if it stops).
//! - `/readyz` answers 200 only when the hub can do its work: the data
//!   directory takes a write, the database answers, the ciphertexts' store
//!   answers (its folders are there, or the object store answers), the latest checkpoint
//!   verifies with the log key and covers exactly the stored entries, and no
//!   shutdown has begun; otherwise 503 (readiness: send no new work).
//!
//! The answer names each check and whether it passed, never why it failed:
//! these routes need no key, so paths and database errors go to the hub's
//! log (as a warning) instead.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::hub::Hub;
use crate::storage::LogStore;

/// The file `/readyz` writes and removes to prove the data directory takes writes.
pub const PROBE_FILE: &str = ".readyz-probe";

/// One check's outcome.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Check {
    /// `not_shutting_down`, `data_dir`, `database`, `blob_store` or `transfer_log`.
    pub name: &'static str,
    /// Whether it passed.
    pub ok: bool,
}

/// The body of `/readyz`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Readiness {
    /// Whether every check passed.
    pub ready: bool,
    /// Every check, in order.
    pub checks: Vec<Check>,
}

/// `GET /healthz`.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "hub",
    summary = "Liveness",
    description = "`ok` whenever the process answers. Outside `/v1/`: for load balancers and orchestrators.",
    responses((status = 200, description = "The process answers", content_type = "text/plain", body = String)),
)]
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// `GET /readyz`.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "hub",
    summary = "Readiness",
    description = "Whether the hub can do its work: each check by name and whether it passed, never why it failed. \
                   Outside `/v1/`: for load balancers and orchestrators.",
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "Not ready (shutting down, data directory, database or transfer log)", body = Readiness),
    ),
)]
pub async fn readyz(State(hub): State<Hub>) -> Response {
    let shutting_down = hub.is_shutting_down();
    let data_dir = hub.data_dir().to_owned();
    // Writing a file blocks: it belongs on the blocking pool.
    let data_dir = match tokio::task::spawn_blocking(move || probe_data_dir(&data_dir)).await {
        Ok(Ok(())) => true,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: the data directory is not usable");
            false
        }
        Err(e) => {
            tracing::warn!(error = %e, "the readiness checks failed to run");
            false
        }
    };
    let blob_store = match hub.blobs().probe().await {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(error = %e, "readiness: the ciphertexts' store is not usable");
            false
        }
    };
    let (database, transfer_log) = match log_state(hub.log()).await {
        Err(e) => {
            tracing::warn!(error = %e, "readiness: the database does not answer");
            (false, false)
        }
        Ok((size, latest)) => (true, log_consistent(&hub, size, latest.as_ref())),
    };
    let all = vec![
        Check { name: "not_shutting_down", ok: !shutting_down },
        Check { name: "data_dir", ok: data_dir },
        Check { name: "database", ok: database },
        Check { name: "blob_store", ok: blob_store },
        Check { name: "transfer_log", ok: transfer_log },
    ];
    let ready = all.iter().all(|c| c.ok);
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(Readiness { ready, checks: all })).into_response()
}

/// Writes, reads back and removes a small file in the data directory (a
/// disk remounted read-only or full fails here).
fn probe_data_dir(dir: &std::path::Path) -> std::io::Result<()> {
    let probe = dir.join(PROBE_FILE);
    let written = std::fs::write(&probe, b"ready?").and_then(|()| std::fs::read(&probe));
    let removed = std::fs::remove_file(&probe);
    match written? {
        content if content == b"ready?" => removed,
        _ => Err(std::io::Error::other("the probe file read back differently")),
    }
}

type LogState = (u64, Option<crate::storage::meta::StoredCheckpoint>);

/// The log's size and latest checkpoint: two reads, so an append between
/// them (which stores its entries and their checkpoint together) makes them
/// disagree on a busy hub; they are read once more before the log is taken
/// to be inconsistent.
async fn log_state(log: &dyn LogStore) -> Result<LogState, crate::storage::MetaError> {
    let (size, latest) = (log.log_size().await?, log.latest_checkpoint().await?);
    if latest.as_ref().is_some_and(|c| c.size == size) {
        return Ok((size, latest));
    }
    Ok((log.log_size().await?, log.latest_checkpoint().await?))
}

/// The latest checkpoint verifies with the log key and covers exactly the
/// stored entries (the cheap part of the check the hub makes when it opens;
/// recomputing every hash is for start-up).
fn log_consistent(hub: &Hub, size: u64, latest: Option<&crate::storage::meta::StoredCheckpoint>) -> bool {
    let Some(latest) = latest else {
        tracing::warn!("readiness: the transfer log has no checkpoint");
        return false;
    };
    match sealdrop_log::checkpoint::open(&latest.note, &hub.log_verifier()) {
        Ok(checkpoint) if checkpoint.size == size && latest.size == size => true,
        Ok(checkpoint) => {
            tracing::warn!(
                checkpoint_size = checkpoint.size,
                stored_entries = size,
                "readiness: the latest checkpoint does not cover exactly the stored entries"
            );
            false
        }
        Err(e) => {
            tracing::warn!(error = %e, "readiness: the latest checkpoint does not verify with the log key");
            false
        }
    }
}
