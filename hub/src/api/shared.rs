//! Small helpers the handlers and services share: parsing the drop id from
//! the path, calling the blocking parts of the metadata store, and the
//! agreement rules.

use axum::extract::Path;
use axum::extract::rejection::PathRejection;
use jiff::Timestamp;
use sealdrop_proto::api::code;
use sealdrop_proto::directory::{Agreement, Directory};
use sealdrop_proto::ids::{DropId, PartyId};

use super::error::ApiError;
use crate::hub::Hub;
use crate::service::{DropError, record_drop};
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

/// The sharing agreement's rules for moving data between parties now: the
/// agreement is in the hub's current directory, in force at `now`, and
/// every one of `parties` (each with the role it plays, for the message:
/// "your party", "recipient", "sender") is a party to it. Create, commit
/// and fetch all apply it, so an agreement that ends, or a directory version
/// that removes it or a party from it, stops all traffic under it at once.
pub fn agreement_allows<'d>(
    dir: &'d Directory,
    agreement: &str,
    parties: &[(&str, &PartyId)],
    now: Timestamp,
) -> Result<&'d Agreement, DropError> {
    let Some(a) = dir.agreement(agreement) else {
        return Err(DropError::new(
            code::UNKNOWN_AGREEMENT,
            format!(
                "agreement `{agreement}` is not in the hub's directory (serial {}): it was never made or has been \
                 withdrawn; ask the coordinator",
                dir.serial
            ),
        ));
    };
    if now < a.valid_from {
        return Err(DropError::new(
            code::AGREEMENT_NOT_IN_FORCE,
            format!(
                "agreement `{}` is not in force until {}: nothing may move under it before then",
                a.id, a.valid_from
            ),
        ));
    }
    if now >= a.valid_until {
        return Err(DropError::new(
            code::AGREEMENT_NOT_IN_FORCE,
            format!(
                "agreement `{}` ended at {}: nothing may be sent, committed or fetched under it any more",
                a.id, a.valid_until
            ),
        ));
    }
    for (role, party) in parties {
        if !a.includes(party) {
            return Err(DropError::new(
                code::NOT_IN_AGREEMENT,
                format!("{role} `{party}` is not a party to agreement `{}` (directory serial {})", a.id, dir.serial),
            ));
        }
    }
    Ok(a)
}
