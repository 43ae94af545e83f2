//! Announcing a drop.
//!
//! The hub enforces the sharing agreement at creation: a drop can only be
//! addressed to parties that share an agreement in force with the sender, and
//! can only live as long as the agreement allows. The manifest signed at
//! commit must then repeat exactly these facts.
//!
//! A create may carry an idempotency key, so a sender can re-run an
//! interrupted send safely: the hub keeps one drop per sender party and key.
//! While that drop is uncommitted, a new create replaces it (its rows and its
//! partial or finished upload are discarded); once it is committed, the
//! create returns it, marked committed, and creates nothing.

use std::collections::BTreeSet;

use jiff::Timestamp;
use sealdrop_proto::api::{CreateDrop, CreatedDrop, DropState};
use sealdrop_proto::directory::{Agreement, Directory};
use sealdrop_proto::error_code::ErrorCode;
use sealdrop_proto::ids::{DropId, PartyId};
use sealdrop_proto::policy::{self, ExpiryRefusal};

use super::agreement::agreement_allows;
use super::{Caller, DropError, Drops, record_drop, ts};
use crate::storage::meta::{CreateOutcome, DropRecord, NewDrop};

/// The length of an idempotency key in hex digits (a SHA-256).
const IDEMPOTENCY_KEY_LEN: usize = 64;

/// Refuses an idempotency key that is not exactly 64 lowercase hex digits.
pub fn check_idempotency_key(key: Option<&str>) -> Result<(), DropError> {
    match key {
        Some(k) if k.len() != IDEMPOTENCY_KEY_LEN || !k.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) => {
            Err(DropError::bad_request(format!(
                "`idempotency_key` must be exactly {IDEMPOTENCY_KEY_LEN} lowercase hexadecimal digits (0-9, a-f)"
            )))
        }
        _ => Ok(()),
    }
}

/// What a sender announces about a drop: who may fetch it, under which
/// agreement, and until when.
pub struct Announcement<'a> {
    /// The recipient parties, as the sender listed them.
    pub recipients: &'a [PartyId],
    /// The agreement it travels under.
    pub agreement: &'a str,
    /// The expiry the sender asks for.
    pub expires: Timestamp,
}

/// The checks of a drop announcement against the directory and the
/// agreement rules, which `POST /v1/drops` (create) and `PUT /v1/drops/{id}`
/// (a drop in one request) both apply: at least one recipient, none twice,
/// each a party with member keys, the sender and every recipient parties to
/// the agreement, which is in force at `now` (the hub's clock), and the
/// expiry within the agreement's limits counted from `created` (the drop's
/// creation time: the hub's clock for a create, the sender's signed one,
/// checked within the clock skew, for a drop in one request). Returns the
/// agreement and the expiry to store (see [`policy::drop_expiry`]).
pub fn check_announcement<'d>(
    dir: &'d Directory,
    caller: &Caller,
    drop: &Announcement<'_>,
    created: Timestamp,
    now: Timestamp,
) -> Result<(&'d Agreement, i64), DropError> {
    if drop.recipients.is_empty() {
        return Err(DropError::bad_request("a drop needs at least one recipient party"));
    }
    let mut seen = BTreeSet::new();
    for r in drop.recipients {
        if !seen.insert(r) {
            return Err(DropError::bad_request(format!("recipient `{r}` is listed twice")));
        }
    }
    for r in drop.recipients {
        match dir.party(r) {
            None => {
                return Err(DropError::new(
                    ErrorCode::UnknownParty,
                    format!("`{r}` is not a party in the hub's directory (serial {})", dir.serial),
                ));
            }
            Some(p) if p.members.is_empty() => {
                return Err(DropError::new(
                    ErrorCode::UnknownParty,
                    format!("party `{r}` has no member keys in the directory, so nobody there could decrypt"),
                ));
            }
            Some(_) => {}
        }
    }
    let mut parties = vec![("your party", &caller.party)];
    parties.extend(drop.recipients.iter().map(|r| ("recipient", r)));
    let agreement = agreement_allows(dir, drop.agreement, &parties, now)?;
    // A sender asking for the longest expiry computes it on its own clock,
    // which may run ahead of the hub's: such a request is trimmed to the
    // limit, not refused. The client signs the expiry the hub answers with,
    // so the manifest still states the stored one.
    let expires = policy::drop_expiry(agreement, created, drop.expires).map_err(|refusal| {
        let why = match refusal {
            ExpiryRefusal::NotInFuture => {
                format!("expiry {} is not after the drop's creation at {created}", drop.expires)
            }
            ExpiryRefusal::BeyondLongestWait => format!(
                "expiry {} is more than {} days after the drop's creation at {created}: agreement `{}` lets a drop \
                 wait at most {} days",
                drop.expires, agreement.max_expiry_days, agreement.id, agreement.max_expiry_days
            ),
            ExpiryRefusal::OutlivesAgreement => format!(
                "expiry {} is after agreement `{}` ends at {}: a drop may not wait beyond its agreement",
                drop.expires, agreement.id, agreement.valid_until
            ),
        };
        DropError::new(ErrorCode::BadExpiry, why)
    })?;
    Ok((agreement, expires))
}

/// Checks a drop announcement against the directory and agreement rules and
/// returns the drop to store. `now` is in whole seconds.
pub fn check_create(dir: &Directory, caller: &Caller, req: &CreateDrop, now: Timestamp) -> Result<NewDrop, DropError> {
    let announced = Announcement { recipients: &req.recipients, agreement: &req.agreement, expires: req.expires };
    let (agreement, expires) = check_announcement(dir, caller, &announced, now, now)?;
    Ok(NewDrop {
        id: DropId::random(),
        sender: caller.party.clone(),
        sender_member: caller.member.clone(),
        agreement: agreement.id.clone(),
        created: now.as_second(),
        expires,
        recipients: req.recipients.clone(),
        idempotency_key: req.idempotency_key.clone(),
        durable_now: true,
    })
}

/// The answer to a create whose idempotency key names a drop that is
/// already committed: that drop, with its commit time.
fn already_committed(rec: DropRecord) -> Result<CreatedDrop, DropError> {
    record_drop(&rec.id);
    let committed = rec.committed.ok_or_else(|| {
        DropError::internal(format_args!("drop {} is {:?} but has no commit time", rec.id, rec.state))
    })?;
    Ok(CreatedDrop {
        id: rec.id,
        created: ts(rec.created)?,
        expires: ts(rec.expires)?,
        committed: Some(ts(committed)?),
    })
}

impl Drops<'_> {
    /// A member of the sending party announces a drop before its
    /// ciphertext is uploaded; with an idempotency key, a re-run replaces
    /// the party's uncommitted drop of that key, or returns its committed one
    /// (marked `committed`) and creates nothing.
    pub async fn create(&self, caller: &Caller, req: CreateDrop) -> Result<CreatedDrop, DropError> {
        check_idempotency_key(req.idempotency_key.as_deref())?;
        if let Some(key) = req.idempotency_key.clone() {
            // A committed drop is returned before the agreement and expiry
            // checks, on purpose: its data has already gone, so a re-run must
            // learn that (and not upload again) even if the agreement has since
            // ended or the re-run asks for a different expiry. Authentication
            // has run, and the lookup is scoped to the caller's party.
            if let Some(rec) = self.hub.drops().drop_by_idempotency_key(&caller.party, &key).await?
                && rec.state != DropState::Open
            {
                return already_committed(rec);
            }
        }
        let now = self.hub.now();
        let drop = check_create(&self.hub.directory().directory, caller, &req, now)?;
        record_drop(&drop.id);
        let replaced = match self.hub.drops().create_drop(&drop).await? {
            CreateOutcome::Created { replaced } => replaced,
            // Committed between the lookup above and the store's transaction.
            CreateOutcome::AlreadyCommitted(rec) => return already_committed(*rec),
        };
        if let Some(old) = &replaced {
            self.discard_files(old).await;
        }
        self.hub.metrics().drop_created();
        tracing::info!(
            recipients = drop.recipients.len(),
            agreement = %drop.agreement,
            replaced = replaced.as_ref().map(tracing::field::display),
            "created a drop"
        );
        Ok(CreatedDrop { id: drop.id, created: ts(drop.created)?, expires: ts(drop.expires)?, committed: None })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::test_support::{caller_of, sample};
    use sealdrop_proto::api::code;
    use sealdrop_proto::policy::SECONDS_PER_DAY;
    use sealdrop_proto::request::MAX_CLOCK_SKEW_SECS;

    fn req(recipients: &[&str], agreement: &str, expires: Timestamp) -> CreateDrop {
        CreateDrop {
            recipients: recipients.iter().map(|r| r.parse().unwrap()).collect(),
            agreement: agreement.into(),
            expires,
            idempotency_key: None,
        }
    }

    fn now() -> Timestamp {
        "2026-06-01T00:00:00Z".parse().unwrap()
    }

    fn days(n: i64) -> Timestamp {
        Timestamp::from_second(now().as_second() + n * SECONDS_PER_DAY).unwrap()
    }

    fn code_of(r: Result<NewDrop, DropError>) -> &'static str {
        r.map(|_| "ok").unwrap_or_else(|e| e.code().as_str())
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
        // A sender's clock a little ahead of the hub's: trimmed to the limit.
        let skewed = Timestamp::from_second(days(30).as_second() + MAX_CLOCK_SKEW_SECS).unwrap();
        let trimmed = check_create(&dir, &camden, &req(&["islington"], "inner-fsm", skewed), now()).unwrap();
        assert_eq!(trimmed.expires, days(30).as_second());
        let too_far = Timestamp::from_second(days(30).as_second() + MAX_CLOCK_SKEW_SECS + 1).unwrap();
        assert_eq!(
            code_of(check_create(&dir, &camden, &req(&["islington"], "inner-fsm", too_far), now())),
            code::BAD_EXPIRY
        );
    }

    #[test]
    fn idempotency_keys_are_64_lowercase_hex_digits() {
        let good = "0123456789abcdef".repeat(4);
        assert!(check_idempotency_key(None).is_ok());
        assert!(check_idempotency_key(Some(&good)).is_ok());
        for bad in [
            String::new(),
            good[..63].to_owned(),
            format!("{good}0"),
            good.to_uppercase(),
            format!("{}g", &good[..63]),
            format!("{} ", &good[..63]),
            format!("{}é", &good[..62]),
        ] {
            let e = check_idempotency_key(Some(&bad)).unwrap_err();
            assert_eq!(e.code(), ErrorCode::BadRequest, "{bad:?}");
        }
        let (_, keys, dir) = sample();
        let mut keyed = req(&["islington"], "inner-fsm", days(1));
        keyed.idempotency_key = Some(good.clone());
        let d = check_create(&dir, &caller_of(&dir, &keys[0]), &keyed, now()).unwrap();
        assert_eq!(d.idempotency_key, Some(good));
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
