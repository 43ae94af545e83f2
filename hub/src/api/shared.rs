//! Small helpers the handlers share: parsing the drop id from the path.

use axum::extract::Path;
use axum::extract::rejection::PathRejection;
use sealdrop_proto::ids::DropId;

use super::error::ApiError;
use crate::service::record_drop;

/// The drop id from the path. Parsed after authentication (handlers take the
/// path as a `Result`), so an unauthenticated caller learns nothing.
pub fn drop_id(path: Result<Path<String>, PathRejection>) -> Result<DropId, ApiError> {
    let Path(raw) = path.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let id: DropId = raw.parse().map_err(|e: sealdrop_proto::ids::IdError| ApiError::bad_request(e.to_string()))?;
    record_drop(&id);
    Ok(id)
}
