//! Small helpers the handlers share: parsing the drop id from the path and
//! calling the blocking parts of the metadata store.

use axum::extract::Path;
use axum::extract::rejection::PathRejection;
use sealdrop_proto::ids::DropId;

use super::error::ApiError;
use crate::hub::Hub;
use crate::service::record_drop;
use crate::storage::{MetaError, MetaStore};

/// Runs a metadata call on the blocking pool.
pub async fn meta<R: Send + 'static>(
    hub: &Hub,
    f: impl FnOnce(&dyn MetaStore) -> Result<R, MetaError> + Send + 'static,
) -> Result<R, ApiError> {
    Ok(crate::service::blocking_meta(hub, f).await?)
}

/// The drop id from the path. Parsed after authentication (handlers take the
/// path as a `Result`), so an unauthenticated caller learns nothing.
pub fn drop_id(path: Result<Path<String>, PathRejection>) -> Result<DropId, ApiError> {
    let Path(raw) = path.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let id: DropId = raw.parse().map_err(|e: sealdrop_proto::ids::IdError| ApiError::bad_request(e.to_string()))?;
    record_drop(&id);
    Ok(id)
}
