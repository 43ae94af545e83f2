//! Announcing a drop (`POST /v1/drops`) and reading its details
//! (`GET /v1/drops/{id}`).
//!
//! The hub enforces the sharing agreement at creation: a drop can only be
//! addressed to parties that share an agreement in force with the sender, and
//! can only live as long as the agreement allows. The manifest signed at
//! commit must then repeat exactly these facts.

use std::collections::BTreeSet;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use jiff::Timestamp;
use sealdrop_proto::api::{CreateDrop, CreatedDrop, DropDetails, DropState, code};
use sealdrop_proto::directory::Directory;
use sealdrop_proto::ids::DropId;

use super::auth::{Authed, Caller, Json};
use super::error::ApiError;
use super::logging::record_drop;
use super::shared::{drop_id, load_drop, meta, ts};
use crate::hub::Hub;
use crate::storage::meta::NewDrop;

const SECONDS_PER_DAY: i64 = 86_400;

/// Checks a drop announcement against the directory and agreement rules and
/// returns the drop to store. `now` is in whole seconds.
pub fn check_create(dir: &Directory, caller: &Caller, req: &CreateDrop, now: Timestamp) -> Result<NewDrop, ApiError> {
    if req.recipients.is_empty() {
        return Err(ApiError::bad_request("a drop needs at least one recipient party"));
    }
    let mut seen = BTreeSet::new();
    for r in &req.recipients {
        if !seen.insert(r) {
            return Err(ApiError::bad_request(format!("recipient `{r}` is listed twice")));
        }
    }
    for r in &req.recipients {
        match dir.party(r) {
            None => {
                return Err(ApiError::new(
                    code::UNKNOWN_PARTY,
                    format!("`{r}` is not a party in the hub's directory (serial {})", dir.serial),
                ));
            }
            Some(p) if p.members.is_empty() => {
                return Err(ApiError::new(
                    code::UNKNOWN_PARTY,
                    format!("party `{r}` has no member keys in the directory, so nobody there could decrypt"),
                ));
            }
            Some(_) => {}
        }
    }
    let Some(agreement) = dir.agreement(&req.agreement) else {
        return Err(ApiError::new(
            code::UNKNOWN_AGREEMENT,
            format!("agreement `{}` is not in the hub's directory (serial {})", req.agreement, dir.serial),
        ));
    };
    if !agreement.in_force(now) {
        return Err(ApiError::new(
            code::AGREEMENT_NOT_IN_FORCE,
            format!(
                "agreement `{}` is in force from {} until {}, and it is now {now}",
                agreement.id, agreement.valid_from, agreement.valid_until
            ),
        ));
    }
    for party in std::iter::once(&caller.party).chain(&req.recipients) {
        if !agreement.includes(party) {
            let who = if party == &caller.party { "your party" } else { "recipient" };
            return Err(ApiError::new(
                code::NOT_IN_AGREEMENT,
                format!("{who} `{party}` is not a party to agreement `{}`", agreement.id),
            ));
        }
    }
    // Whole seconds, so the expiry the client copies into its manifest
    // equals the stored one exactly.
    let expires = req.expires.as_second();
    let latest = now.as_second() + i64::from(agreement.max_expiry_days) * SECONDS_PER_DAY;
    if expires <= now.as_second() {
        return Err(ApiError::new(code::BAD_EXPIRY, format!("expiry {} is not in the future", req.expires)));
    }
    if expires > latest {
        return Err(ApiError::new(
            code::BAD_EXPIRY,
            format!(
                "expiry {} is more than {} days away: agreement `{}` allows at most {} days",
                req.expires, agreement.max_expiry_days, agreement.id, agreement.max_expiry_days
            ),
        ));
    }
    Ok(NewDrop {
        id: DropId::random(),
        sender: caller.party.clone(),
        sender_member: caller.member.clone(),
        agreement: agreement.id.clone(),
        created: now.as_second(),
        expires,
        recipients: req.recipients.clone(),
    })
}

/// `POST /v1/drops`.
pub async fn create(
    State(hub): State<Hub>,
    Authed { caller, body: Json(req), .. }: Authed<Json<CreateDrop>>,
) -> Result<axum::Json<CreatedDrop>, ApiError> {
    let now = hub.now();
    let drop = check_create(&hub.directory().directory, &caller, &req, now)?;
    record_drop(&drop.id);
    let stored = drop.clone();
    meta(&hub, move |m| m.create_drop(&stored)).await?;
    tracing::info!(recipients = drop.recipients.len(), agreement = %drop.agreement, "created a drop");
    Ok(axum::Json(CreatedDrop { id: drop.id, created: ts(drop.created)?, expires: ts(drop.expires)? }))
}

/// `GET /v1/drops/{id}`: for the sender, and for recipients once committed.
pub async fn details(
    State(hub): State<Hub>,
    path: Result<Path<String>, PathRejection>,
    Authed { caller, .. }: Authed,
) -> Result<axum::Json<DropDetails>, ApiError> {
    let id = drop_id(path)?;
    let rec = load_drop(&hub, &id).await?;
    if rec.sender != caller.party {
        if rec.recipient(&caller.party).is_none() {
            return Err(ApiError::forbidden(format!(
                "drop {id} was neither sent by nor addressed to your party `{}`",
                caller.party
            )));
        }
        if rec.state == DropState::Open {
            // Not committed: recipients must not learn of it yet.
            return Err(ApiError::not_found(format!("there is no drop {id} on this hub")));
        }
    }
    Ok(axum::Json(DropDetails { id, manifest: rec.manifest.unwrap_or_default(), state: rec.state }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::test_support::{caller_of, sample};

    fn req(recipients: &[&str], agreement: &str, expires: Timestamp) -> CreateDrop {
        CreateDrop {
            recipients: recipients.iter().map(|r| r.parse().unwrap()).collect(),
            agreement: agreement.into(),
            expires,
        }
    }

    fn now() -> Timestamp {
        "2026-06-01T00:00:00Z".parse().unwrap()
    }

    fn days(n: i64) -> Timestamp {
        Timestamp::from_second(now().as_second() + n * SECONDS_PER_DAY).unwrap()
    }

    fn code_of(r: Result<NewDrop, ApiError>) -> &'static str {
        r.map(|_| "ok").unwrap_or_else(|e| e.code())
    }

    #[test]
    fn agreement_rules() {
        let (_, keys, dir) = sample();
        let camden = caller_of(&dir, &keys[0]);
        let barnet = caller_of(&dir, &keys[3]);
        let ok = check_create(&dir, &camden, &req(&["islington", "hackney"], "inner-fsm", days(7)), now()).unwrap();
        assert_eq!(ok.sender.as_str(), "camden");
        assert_eq!(ok.created, now().as_second());
        assert_eq!(code_of(check_create(&dir, &camden, &req(&[], "inner-fsm", days(1)), now())), code::BAD_REQUEST);
        let twice = req(&["islington", "islington"], "inner-fsm", days(1));
        assert_eq!(code_of(check_create(&dir, &camden, &twice, now())), code::BAD_REQUEST);
        let unknown = req(&["westminster"], "inner-fsm", days(1));
        assert_eq!(code_of(check_create(&dir, &camden, &unknown, now())), code::UNKNOWN_PARTY);
        let no_agreement = req(&["islington"], "nope", days(1));
        assert_eq!(code_of(check_create(&dir, &camden, &no_agreement, now())), code::UNKNOWN_AGREEMENT);
        let outsider = req(&["barnet"], "inner-fsm", days(1));
        assert_eq!(code_of(check_create(&dir, &camden, &outsider, now())), code::NOT_IN_AGREEMENT);
        let from_outsider = req(&["camden"], "inner-fsm", days(1));
        assert_eq!(code_of(check_create(&dir, &barnet, &from_outsider, now())), code::NOT_IN_AGREEMENT);
        let late: Timestamp = "2031-01-01T00:00:00Z".parse().unwrap();
        let expired_agreement = req(&["islington"], "inner-fsm", late);
        assert_eq!(
            code_of(check_create(&dir, &camden, &expired_agreement, "2030-06-01T00:00:00Z".parse().unwrap())),
            code::AGREEMENT_NOT_IN_FORCE
        );
        assert_eq!(
            code_of(check_create(&dir, &camden, &req(&["islington"], "inner-fsm", now()), now())),
            code::BAD_EXPIRY
        );
        assert_eq!(code_of(check_create(&dir, &camden, &req(&["islington"], "inner-fsm", days(30)), now())), "ok");
        let too_far = Timestamp::from_second(days(30).as_second() + 1).unwrap();
        assert_eq!(
            code_of(check_create(&dir, &camden, &req(&["islington"], "inner-fsm", too_far), now())),
            code::BAD_EXPIRY
        );
    }

    #[test]
    fn expiry_is_truncated_to_whole_seconds() {
        let (_, keys, dir) = sample();
        let camden = caller_of(&dir, &keys[0]);
        let fractional: Timestamp = "2026-06-02T00:00:00.75Z".parse().unwrap();
        let d = check_create(&dir, &camden, &req(&["islington"], "inner-fsm", fractional), now()).unwrap();
        assert_eq!(d.expires, days(1).as_second());
    }
}
