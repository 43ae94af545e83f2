//! Checking each claim the hub makes about a sender's drop against the
//! facts its signed log proves.

use jiff::Timestamp;

use sealdrop_log::entry::DeletionReason;
use sealdrop_proto::api::{DropState, SentDrop};

use super::prover::{Fact, Prover, fingerprint_of};
use crate::error::Result;

/// What the log backs of one drop the hub listed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Backed {
    /// The commit entry's time, when proved.
    pub committed: Option<Timestamp>,
    /// The fingerprint of the key the manifest's signature verified with,
    /// when the commit is backed: from the proved log entry, or for this
    /// client's own send, from its journal (`None` for lines of older versions).
    pub manifest_key: Option<String>,
    /// The deletion statement's reason and time, when proved.
    pub deleted: Option<(DeletionReason, Timestamp)>,
    /// Per recipient, in the hub's order.
    pub recipients: Vec<BackedRecipient>,
    /// The hub's claims about the drop itself that the log does not back.
    pub problems: Vec<String>,
}

/// What the log backs of one recipient's progress.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BackedRecipient {
    /// The first download's time, when proved.
    pub fetched: Option<Timestamp>,
    /// The acknowledgement's time and member, when proved.
    pub acknowledged: Option<(Timestamp, String)>,
    /// The fingerprint of the key the receipt's signature verified with,
    /// when the acknowledgement is proved: the member name alone does not
    /// say which key, once it is reused with a new one.
    pub acknowledged_key: Option<String>,
    /// The hub's claim about this recipient the log does not back.
    pub problem: Option<String>,
    /// A download or acknowledgement the log backs, signed with a key the
    /// directory has since revoked from a time at or before it: backed
    /// (the hub was right to accept it), but whoever held the key may not
    /// have been the party. A warning, not an unbacked claim.
    pub revoked_key: Option<String>,
}

impl Backed {
    /// Whether every claim the hub made is backed.
    pub fn is_backed(&self) -> bool {
        self.problems.is_empty() && self.recipients.iter().all(|r| r.problem.is_none())
    }

    /// Every problem, as lines for people.
    pub fn all_problems(&self, d: &SentDrop) -> Vec<String> {
        let mut all = self.problems.clone();
        for (r, b) in d.recipients.iter().zip(&self.recipients) {
            if let Some(p) = &b.problem {
                all.push(format!("{}: {p}", r.party));
            }
        }
        all
    }
}

/// Checks every claim the hub makes about drop `d` against the log.
pub fn back(prover: &mut Prover<'_>, d: &SentDrop) -> Result<Backed> {
    let mut b = Backed { recipients: vec![BackedRecipient::default(); d.recipients.len()], ..Backed::default() };
    if d.state == DropState::Open {
        return Ok(b);
    }
    let me = prover.session.me.party.clone();
    // The commit: from this client's journal when it sent the drop, else the log.
    let (commit, journalled_key) = match (prover.journal.get(&d.id).cloned(), d.committed_log_index) {
        (Some((at, fact, key)), Some(i)) if at == i => (Ok(fact), key),
        (_, Some(i)) => (prover.fact(i)?, None),
        (_, None) => (Err("the hub names no log entry for its commit".to_owned()), None),
    };
    let manifest = match commit {
        Ok(Fact::Committed { drop, at, key, sha256, len }) if drop == d.id => {
            if prover.vouched(&me, key.as_deref(), at) {
                b.committed = Some(at);
                b.manifest_key = key.as_deref().map_or(journalled_key, fingerprint_of);
                Some((sha256, len))
            } else {
                b.problems.push(format!("the hub says committed; the manifest's key was revoked before {at}"));
                None
            }
        }
        Ok(_) => {
            b.problems.push("the hub says committed; the log entry it names records something else".to_owned());
            None
        }
        Err(why) => {
            b.problems.push(format!("the hub says committed; not in the log ({why})"));
            None
        }
    };
    for (r, br) in d.recipients.iter().zip(b.recipients.iter_mut()) {
        back_recipient(prover, d, r, manifest.as_ref(), br)?;
    }
    if d.state.is_ended() {
        let claimed = d.state.as_str();
        let deleted = match d.deleted_log_index {
            Some(i) => prover.fact(i)?,
            None => Err("the hub names no log entry for the deletion".to_owned()),
        };
        match deleted {
            Ok(Fact::Deleted { drop, reason, at }) if drop == d.id && reason_fits(d.state, reason) => {
                b.deleted = Some((reason, at));
            }
            Ok(Fact::Deleted { drop, reason, .. }) if drop == d.id => b
                .problems
                .push(format!("the hub says {claimed}; the log records its deletion as {}", reason_name(reason))),
            Ok(_) => b.problems.push(format!("the hub says {claimed}; the log entry it names records something else")),
            Err(why) => b.problems.push(format!("the hub says {claimed}; no deletion in the log ({why})")),
        }
        if d.state == DropState::Delivered {
            for (r, br) in d.recipients.iter().zip(&b.recipients) {
                if br.acknowledged.is_none() && br.problem.is_none() {
                    b.problems.push(format!("the hub says delivered; no receipt in the log from {}", r.party));
                }
            }
        }
    }
    Ok(b)
}

/// Checks the hub's claims about recipient `r` of drop `d`.
fn back_recipient(
    prover: &mut Prover<'_>,
    d: &SentDrop,
    r: &sealdrop_proto::api::RecipientStatus,
    manifest: Option<&(String, u64)>,
    b: &mut BackedRecipient,
) -> Result<()> {
    if r.fetched.is_some() {
        let fetched = match r.fetched_log_index {
            Some(i) => prover.fact(i)?,
            None => Err("the hub names no log entry for it".to_owned()),
        };
        match fetched {
            Ok(Fact::Fetched { drop, party, at, key }) if drop == d.id && party == r.party => {
                if prover.vouched(&r.party, Some(&key), at) {
                    b.fetched = Some(at);
                } else if let Some(warning) = prover.revoked_by_then(&r.party, &key, at) {
                    b.fetched = Some(at);
                    b.revoked_key = Some(format!("the download at {at} was {warning}"));
                } else {
                    b.problem = Some(format!("the hub says fetched; the request's key was revoked before {at}"));
                }
            }
            Ok(_) => b.problem = Some("the hub says fetched; the log entry it names records something else".into()),
            Err(why) => b.problem = Some(format!("the hub says fetched; no download in the log ({why})")),
        }
    }
    if let Some(claimed) = r.acknowledged {
        let by = r.acknowledged_by.as_deref().map(|m| format!(" by {m}")).unwrap_or_default();
        let says = format!("the hub says acknowledged at {claimed}{by}");
        let acked = match r.acknowledged_log_index {
            Some(i) => prover.fact(i)?,
            None => Err("the hub names no log entry for it".to_owned()),
        };
        match acked {
            Ok(Fact::Acknowledged { drop, party, member, at, key, sha256, len })
                if drop == d.id && party == r.party =>
            {
                let revoked = (!prover.vouched(&r.party, Some(&key), at))
                    .then(|| prover.revoked_by_then(&r.party, &key, at).ok_or(()));
                if matches!(revoked, Some(Err(()))) {
                    b.problem = Some(format!("{says}; the receipt's key was revoked before {at}"));
                } else if manifest.is_some_and(|(s, l)| *s != sha256 || *l != len) {
                    b.problem = Some(format!("{says}; the receipt in the log is for other bytes than you sent"));
                } else {
                    b.acknowledged = Some((at, member));
                    b.acknowledged_key = fingerprint_of(&key);
                    if let Some(Ok(warning)) = revoked {
                        b.revoked_key = Some(format!(
                            "the acknowledgement at {at} was {warning}: ask {} whether they received it",
                            r.party
                        ));
                    }
                }
            }
            Ok(_) => b.problem = Some(format!("{says}; the log entry it names records something else")),
            Err(why) => b.problem = Some(format!("{says}; no receipt in the log ({why})")),
        }
    }
    Ok(())
}

/// Whether a deletion for `reason` is what a drop in `state` means.
fn reason_fits(state: DropState, reason: DeletionReason) -> bool {
    matches!(
        (state, reason),
        (DropState::Delivered, DeletionReason::Delivered)
            | (DropState::Recalled, DeletionReason::Recalled)
            | (DropState::Expired, DeletionReason::Expired | DeletionReason::AgreementEnded)
    )
}

fn reason_name(reason: DeletionReason) -> &'static str {
    match reason {
        DeletionReason::Delivered => "delivered",
        DeletionReason::Expired => "expired",
        DeletionReason::Recalled => "recalled",
        DeletionReason::AgreementEnded => "ended with its agreement",
    }
}
