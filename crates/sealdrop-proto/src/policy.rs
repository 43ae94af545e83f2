//! The rules that decide whether a sharing agreement lets data move, defined
//! once: the hub enforces them, the client checks them before it sends, and
//! the offline audit re-checks the log against them. The audit is only sound
//! if it decides exactly as the hub did, so none of the three writes its own
//! comparison; each maps the typed verdict to its own code and wording.
//!
//! - [`agreement_in_force`]: an agreement is in force from `valid_from`
//!   (inclusive) until `valid_until` (exclusive).
//! - [`outsiders`]: the parties an agreement does not include.
//! - [`agreement_admits`]: both, in the one order the hub and the client
//!   share; [`agreement_allows`]: the same against a directory.
//! - [`drop_expiry`] / [`lifetime_refusal`] / [`default_lifetime`]: how long a
//!   drop may wait: at most the agreement's `max_expiry_days`, never beyond
//!   the agreement's end; the hub trims a request up to
//!   [`MAX_CLOCK_SKEW_SECS`] past the limit (the sender's clock may run
//!   ahead) instead of refusing it.
//! - [`drop_expired`]: a drop is expired from the exact second of its
//!   expiry.
//! - [`within_clock_skew`]: a signed request's time is at most
//!   [`MAX_CLOCK_SKEW_SECS`] from the time it is judged (or logged) at.
//! - [`revoked_key_vouches`] / [`manifest_keys`]: a key revoked at T vouches
//!   only for a drop committed to the log strictly before T.
//! - [`agreement_admits_key`]: an agreement with `require_pq` admits only
//!   post-quantum keys.

use jiff::{SignedDuration, Timestamp};

use crate::directory::{Agreement, Directory};
use crate::ids::PartyId;
use crate::keys::NoteVerifierKey;
use crate::request::MAX_CLOCK_SKEW_SECS;

/// Seconds in the days `max_expiry_days` counts (no leap seconds in Unix time).
pub const SECONDS_PER_DAY: i64 = 86_400;

/// Why an agreement is not in force at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotInForce {
    /// The time is before the agreement starts, at `valid_from`.
    NotYet { valid_from: Timestamp },
    /// The time is at or after the agreement's end, `valid_until`.
    Ended { valid_until: Timestamp },
}

// Here rather than in `directory` so the rule and its shorthand live
// together and `directory` (the data) does not import the rules about it.
impl Agreement {
    /// Whether the agreement is in force at `now` ([`agreement_in_force`]).
    pub fn in_force(&self, now: Timestamp) -> bool {
        agreement_in_force(self, now).is_ok()
    }
}

/// Whether a drop under `a` may be encrypted to a key of `kind`: any kind,
/// unless the agreement requires post-quantum keys.
pub fn agreement_admits_key(a: &Agreement, kind: crate::age_keys::KeyKind) -> bool {
    !a.require_pq || kind.is_post_quantum()
}

/// Whether `a` is in force at `at`: `valid_from <= at < valid_until`.
pub fn agreement_in_force(a: &Agreement, at: Timestamp) -> Result<(), NotInForce> {
    if at < a.valid_from {
        Err(NotInForce::NotYet { valid_from: a.valid_from })
    } else if at >= a.valid_until {
        Err(NotInForce::Ended { valid_until: a.valid_until })
    } else {
        Ok(())
    }
}

/// The parties among `parties` that `a` does not include, in their order.
pub fn outsiders<'a, 'p>(
    a: &'a Agreement,
    parties: impl IntoIterator<Item = &'p PartyId> + 'a,
) -> impl Iterator<Item = &'p PartyId> + 'a {
    parties.into_iter().filter(|p| !a.includes(p))
}

/// Why an agreement does not let data move between some parties now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropRefusal<'p, R> {
    /// The directory lists no agreement of that id.
    UnknownAgreement,
    /// The agreement is not in force at the time.
    NotInForce(NotInForce),
    /// The first of the parties the agreement does not include, with the
    /// role the caller gave it (for the message).
    NotInAgreement { role: R, party: &'p PartyId },
}

/// Why an agreement the directory lists does not let data move between
/// some parties now: a [`DropRefusal`] less the lookup, for a caller that
/// already holds the agreement (the client, which chose it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AgreementRefusal<'p, R> {
    /// The agreement is not in force at the time.
    NotInForce(NotInForce),
    /// The first of the parties the agreement does not include, with the
    /// role the caller gave it (for the message).
    NotInAgreement { role: R, party: &'p PartyId },
}

impl<'p, R> From<AgreementRefusal<'p, R>> for DropRefusal<'p, R> {
    fn from(refusal: AgreementRefusal<'p, R>) -> Self {
        match refusal {
            AgreementRefusal::NotInForce(why) => DropRefusal::NotInForce(why),
            AgreementRefusal::NotInAgreement { role, party } => DropRefusal::NotInAgreement { role, party },
        }
    }
}

/// Whether `a` lets data move at `now` between every one of `parties` (each
/// with the role it plays, which the refusal hands back): it is in force,
/// and includes them all. Checked in that order, so a sender outside an
/// agreement that has ended is told it ended, by the hub and the client
/// alike; the first rule broken is the verdict.
pub fn agreement_admits<'p, R>(
    a: &Agreement,
    parties: impl IntoIterator<Item = (R, &'p PartyId)>,
    now: Timestamp,
) -> Result<(), AgreementRefusal<'p, R>> {
    agreement_in_force(a, now).map_err(AgreementRefusal::NotInForce)?;
    match parties.into_iter().find(|(_, p)| !a.includes(p)) {
        Some((role, party)) => Err(AgreementRefusal::NotInAgreement { role, party }),
        None => Ok(()),
    }
}

/// The agreement `agreement` in `dir`, if it lets data move at `now` between
/// every one of `parties`: it is listed, then [`agreement_admits`] them.
pub fn agreement_allows<'d, 'p, R>(
    dir: &'d Directory,
    agreement: &str,
    parties: impl IntoIterator<Item = (R, &'p PartyId)>,
    now: Timestamp,
) -> Result<&'d Agreement, DropRefusal<'p, R>> {
    let a = dir.agreement(agreement).ok_or(DropRefusal::UnknownAgreement)?;
    agreement_admits(a, parties, now)?;
    Ok(a)
}

/// Why a drop may not wait as long as asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpiryRefusal {
    /// The expiry is not after now.
    NotInFuture,
    /// Longer than the agreement's `max_expiry_days` (beyond the clock skew
    /// the hub trims, for a requested expiry).
    BeyondLongestWait,
    /// After the agreement ends.
    OutlivesAgreement,
}

/// The longest a drop under `a` may wait: its `max_expiry_days`.
pub fn longest_wait(a: &Agreement) -> SignedDuration {
    SignedDuration::from_secs(i64::from(a.max_expiry_days) * SECONDS_PER_DAY)
}

/// The expiry, in whole Unix seconds, the hub stores for a drop created at
/// `now` under `a` whose sender asked for `requested`: in the future, at
/// most the agreement's longest wait from `now` (a request up to
/// [`MAX_CLOCK_SKEW_SECS`] beyond that is trimmed to it, since the sender
/// computes the longest on its own clock), and not after the agreement
/// ends. Whole seconds, so the expiry the client copies into its manifest
/// equals the stored one exactly.
pub fn drop_expiry(a: &Agreement, now: Timestamp, requested: Timestamp) -> Result<i64, ExpiryRefusal> {
    let requested = requested.as_second();
    let latest = now.as_second() + longest_wait(a).as_secs();
    if requested <= now.as_second() {
        return Err(ExpiryRefusal::NotInFuture);
    }
    if requested > latest + MAX_CLOCK_SKEW_SECS {
        return Err(ExpiryRefusal::BeyondLongestWait);
    }
    let expires = requested.min(latest);
    if expires > a.valid_until.as_second() {
        return Err(ExpiryRefusal::OutlivesAgreement);
    }
    Ok(expires)
}

/// Whether a drop that expires at `expires` is expired at `now`, both in
/// Unix seconds: from the exact second of its expiry on, nothing more may
/// happen to it (no commit, no download). Seconds, since the hub stores the
/// expiry as whole seconds and compares the second it acts in.
pub fn drop_expired(expires: i64, now: i64) -> bool {
    expires <= now
}

/// Why a sender may not ask for a drop under `a`, made at `now`, to wait
/// `lifetime`, if it may not: longer than the agreement's longest wait, or
/// beyond its end.
pub fn lifetime_refusal(a: &Agreement, now: Timestamp, lifetime: SignedDuration) -> Option<ExpiryRefusal> {
    if lifetime > longest_wait(a) {
        Some(ExpiryRefusal::BeyondLongestWait)
    } else if lifetime > a.valid_until.duration_since(now) {
        Some(ExpiryRefusal::OutlivesAgreement)
    } else {
        None
    }
}

/// How long a drop under `a`, made at `now`, waits when the sender names no
/// expiry: `default`, capped by the agreement's longest wait and its end.
pub fn default_lifetime(a: &Agreement, now: Timestamp, default: SignedDuration) -> SignedDuration {
    default.min(longest_wait(a)).min(a.valid_until.duration_since(now))
}

/// Whether a request signed at `signed_at` may be accepted (or logged) at
/// `at`, both in Unix seconds: at most [`MAX_CLOCK_SKEW_SECS`] apart either
/// way. `abs_diff`, since either time may be any i64 a request or a log
/// entry holds, and a subtraction could overflow.
pub fn within_clock_skew(signed_at: i64, at: i64) -> bool {
    signed_at.abs_diff(at) <= MAX_CLOCK_SKEW_SECS.unsigned_abs()
}

/// Whether a key revoked at `revoked_at` still vouches for a document of a
/// drop committed to the log at `committed` (the `drop_committed` entry's
/// time): only when the commit came strictly before the revocation.
pub fn revoked_key_vouches(revoked_at: Timestamp, committed: Timestamp) -> bool {
    committed < revoked_at
}

/// The keys that may have signed a document of `party` for a drop
/// committed to the log at `committed`: the party's member keys in `dir`,
/// and its revoked keys that still vouch for that time
/// ([`revoked_key_vouches`]). Without a commit time proved from the log,
/// member keys only.
pub fn manifest_keys(dir: &Directory, party: &PartyId, committed: Option<Timestamp>) -> Vec<NoteVerifierKey> {
    let mut keys = dir.signing_keys_of(party);
    if let (Some(p), Some(committed)) = (dir.party(party), committed) {
        keys.extend(
            p.revoked.iter().filter(|r| revoked_key_vouches(r.revoked_at, committed)).map(|r| r.signing_key.clone()),
        );
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::RevokedKey;
    use crate::directory::tests::sample;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn secs(n: i64) -> SignedDuration {
        SignedDuration::from_secs(n)
    }

    fn party(id: &str) -> PartyId {
        id.parse().unwrap()
    }

    /// The sample's agreement: camden, islington and hackney, 30 days,
    /// from 2026-01-01 until 2030-01-01.
    fn inner() -> Agreement {
        sample().2.agreements[0].clone()
    }

    #[test]
    fn an_agreement_is_in_force_from_its_start_until_just_before_its_end() {
        let a = inner();
        let (from, until) = (a.valid_from, a.valid_until);
        assert_eq!(agreement_in_force(&a, from - secs(1)), Err(NotInForce::NotYet { valid_from: from }));
        assert_eq!(agreement_in_force(&a, from), Ok(()));
        assert_eq!(agreement_in_force(&a, until - SignedDuration::from_nanos(1)), Ok(()));
        assert_eq!(agreement_in_force(&a, until), Err(NotInForce::Ended { valid_until: until }));
        assert!(a.in_force(from) && !a.in_force(until), "Agreement::in_force is the same rule");
    }

    #[test]
    fn outsiders_are_the_parties_not_in_the_agreement_in_order() {
        let a = inner();
        let listed = [party("barnet"), party("camden"), party("westminster"), party("hackney")];
        let out: Vec<&PartyId> = outsiders(&a, &listed).collect();
        assert_eq!(out, vec![&listed[0], &listed[2]]);
        assert_eq!(outsiders(&a, &listed[1..2]).count(), 0);
    }

    #[test]
    fn an_agreement_allows_when_listed_in_force_and_including_everyone() {
        let (_, _, dir) = sample();
        let (camden, barnet) = (party("camden"), party("barnet"));
        let now = at("2027-01-01T00:00:00Z");
        let both = [("sender", &camden), ("recipient", &party("islington"))];
        assert_eq!(agreement_allows(&dir, "inner-fsm", both, now).map(|a| a.id.as_str()), Ok("inner-fsm"));
        assert_eq!(agreement_allows(&dir, "nope", both, now), Err(DropRefusal::UnknownAgreement));
        let outside = [("sender", &camden), ("recipient", &barnet)];
        assert_eq!(
            agreement_allows(&dir, "inner-fsm", outside, now),
            Err(DropRefusal::NotInAgreement { role: "recipient", party: &barnet })
        );
        // Not in force is named before an outsider, at the agreement's end exactly.
        let end = dir.agreements[0].valid_until;
        assert_eq!(
            agreement_allows(&dir, "inner-fsm", outside, end),
            Err(DropRefusal::NotInForce(NotInForce::Ended { valid_until: end }))
        );
        let start = dir.agreements[0].valid_from;
        assert!(agreement_allows(&dir, "inner-fsm", both, start).is_ok());
    }

    #[test]
    fn a_held_agreement_is_judged_in_the_same_order() {
        let (_, _, dir) = sample();
        let (a, barnet) = (&dir.agreements[0], party("barnet"));
        let outside = [("sender", &party("camden")), ("recipient", &barnet)];
        assert_eq!(
            agreement_admits(a, outside, at("2027-01-01T00:00:00Z")),
            Err(AgreementRefusal::NotInAgreement { role: "recipient", party: &barnet })
        );
        assert_eq!(
            agreement_admits(a, outside, a.valid_until),
            Err(AgreementRefusal::NotInForce(NotInForce::Ended { valid_until: a.valid_until }))
        );
    }

    #[test]
    fn a_requested_expiry_is_trimmed_within_the_clock_skew_and_refused_beyond() {
        let a = inner();
        let now = at("2027-01-01T00:00:00Z");
        let longest = now.as_second() + 30 * SECONDS_PER_DAY;
        let ts = |s: i64| Timestamp::from_second(s).unwrap();
        assert_eq!(drop_expiry(&a, now, now), Err(ExpiryRefusal::NotInFuture));
        assert_eq!(drop_expiry(&a, now, ts(now.as_second() + 1)), Ok(now.as_second() + 1));
        assert_eq!(drop_expiry(&a, now, ts(longest)), Ok(longest));
        assert_eq!(drop_expiry(&a, now, ts(longest + MAX_CLOCK_SKEW_SECS)), Ok(longest));
        assert_eq!(drop_expiry(&a, now, ts(longest + MAX_CLOCK_SKEW_SECS + 1)), Err(ExpiryRefusal::BeyondLongestWait));
        // Near the agreement's end: up to its end exactly, not a second beyond.
        let end = a.valid_until.as_second();
        let near_end = ts(end - 10 * SECONDS_PER_DAY);
        assert_eq!(drop_expiry(&a, near_end, ts(end)), Ok(end));
        assert_eq!(drop_expiry(&a, near_end, ts(end + 1)), Err(ExpiryRefusal::OutlivesAgreement));
    }

    #[test]
    fn a_drop_is_expired_from_the_second_of_its_expiry() {
        let expires = 1_800_000_000;
        assert!(!drop_expired(expires, expires - 1));
        assert!(drop_expired(expires, expires));
        assert!(drop_expired(expires, expires + 1));
    }

    #[test]
    fn a_lifetime_may_be_the_longest_wait_up_to_the_agreements_end() {
        let a = inner();
        let now = at("2027-01-01T00:00:00Z");
        let days30 = secs(30 * SECONDS_PER_DAY);
        assert_eq!(longest_wait(&a), days30);
        assert_eq!(lifetime_refusal(&a, now, days30), None);
        assert_eq!(lifetime_refusal(&a, now, days30 + secs(1)), Some(ExpiryRefusal::BeyondLongestWait));
        let near_end = a.valid_until - secs(10 * SECONDS_PER_DAY);
        assert_eq!(lifetime_refusal(&a, near_end, secs(10 * SECONDS_PER_DAY)), None);
        assert_eq!(
            lifetime_refusal(&a, near_end, secs(10 * SECONDS_PER_DAY + 1)),
            Some(ExpiryRefusal::OutlivesAgreement)
        );
        assert_eq!(default_lifetime(&a, now, secs(7 * SECONDS_PER_DAY)), secs(7 * SECONDS_PER_DAY));
        assert_eq!(default_lifetime(&a, now, secs(90 * SECONDS_PER_DAY)), days30);
        assert_eq!(default_lifetime(&a, near_end, days30), secs(10 * SECONDS_PER_DAY));
    }

    #[test]
    fn a_request_is_in_time_within_the_clock_skew_either_way() {
        let t = 1_800_000_000;
        assert!(within_clock_skew(t - MAX_CLOCK_SKEW_SECS, t));
        assert!(within_clock_skew(t + MAX_CLOCK_SKEW_SECS, t));
        assert!(!within_clock_skew(t - MAX_CLOCK_SKEW_SECS - 1, t));
        assert!(!within_clock_skew(t + MAX_CLOCK_SKEW_SECS + 1, t));
        assert!(!within_clock_skew(i64::MIN, i64::MAX), "no overflow");
    }

    #[test]
    fn a_revoked_key_vouches_only_for_commits_strictly_before_its_revocation() {
        let t = at("2026-11-20T09:00:00Z");
        assert!(revoked_key_vouches(t, t - secs(1)));
        assert!(!revoked_key_vouches(t, t));
        assert!(!revoked_key_vouches(t, t + secs(1)));
    }

    #[test]
    fn manifest_keys_add_a_revoked_key_only_for_commits_before_its_revocation() {
        let (_, keys, mut dir) = sample();
        let camden = party("camden");
        let old = keys[0].signing.verifier();
        let revoked_at = at("2026-11-20T09:00:00Z");
        let p = dir.parties.iter_mut().find(|p| p.id == camden).unwrap();
        let member = p.members.remove(0).member;
        p.revoked.push(RevokedKey { member, signing_key: old.clone(), revoked_at, reason: "laptop stolen".into() });
        assert_eq!(manifest_keys(&dir, &camden, Some(revoked_at - secs(1))), vec![old]);
        assert!(manifest_keys(&dir, &camden, Some(revoked_at)).is_empty());
        assert!(manifest_keys(&dir, &camden, None).is_empty(), "no proved commit time, member keys only");
    }
}
