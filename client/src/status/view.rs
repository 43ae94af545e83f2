//! What `status` shows of one drop: the hub's word, what the log backs of
//! it, and each recipient's outcome.

use std::collections::HashMap;

use serde::Serialize;

use sealdrop_proto::api::{DropState, RecipientStatus, SentDrop};
use sealdrop_proto::ids::PartyId;

use crate::status_log::Backed;

/// What happened to one recipient of a drop.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It acknowledged: it has the data.
    Acknowledged,
    /// It downloaded the ciphertext and has not acknowledged yet.
    Fetched,
    /// Nothing yet.
    Waiting,
    /// The drop ended before it acknowledged: it never got the data.
    NotDelivered,
    /// The sender recalled the drop before it acknowledged.
    Recalled,
    /// The hub claims progress the signed log does not back.
    Unbacked,
    /// It can never fetch it: every key of it the drop was encrypted to was revoked or removed.
    Undeliverable,
}

impl Outcome {
    /// The outcome's name, as in `status --json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Acknowledged => "acknowledged",
            Outcome::Fetched => "fetched",
            Outcome::Waiting => "waiting",
            Outcome::NotDelivered => "not_delivered",
            Outcome::Recalled => "recalled",
            Outcome::Unbacked => "unbacked",
            Outcome::Undeliverable => "undeliverable",
        }
    }
}

/// The outcome for recipient `r` of a drop in `state`. An acknowledgement
/// always counts; otherwise a drop that ended means the recipient did not
/// get it (recalled, or not delivered: expired, or deleted as delivered
/// without this recipient's receipt).
pub fn outcome(state: DropState, r: &RecipientStatus) -> Outcome {
    if r.acknowledged.is_some() {
        return Outcome::Acknowledged;
    }
    match state {
        DropState::Recalled => Outcome::Recalled,
        DropState::Expired | DropState::Delivered => Outcome::NotDelivered,
        DropState::Open | DropState::Committed if r.fetched.is_some() => Outcome::Fetched,
        DropState::Open | DropState::Committed => Outcome::Waiting,
    }
}

/// One drop as shown: what the hub says, and what the log backs of it.
#[derive(Clone, Debug)]
pub struct View {
    /// The hub's word.
    pub claimed: SentDrop,
    /// What the log backs.
    pub backed: Backed,
    /// Recipients that can never fetch it, and why ([`crate::undeliverable::for_status`]).
    pub stranded: HashMap<PartyId, String>,
}

impl View {
    /// The drop as far as the log backs it: times from the log, claims it
    /// does not back left out, and a drop whose end is not backed still
    /// committed.
    pub fn shown(&self) -> SentDrop {
        let (d, b) = (&self.claimed, &self.backed);
        let state = if d.state != DropState::Open && !b.problems.is_empty() { DropState::Committed } else { d.state };
        SentDrop {
            state,
            committed: b.committed,
            deleted: b.deleted.map(|(_, at)| at),
            recipients: d
                .recipients
                .iter()
                .zip(&b.recipients)
                .map(|(r, br)| RecipientStatus {
                    party: r.party.clone(),
                    fetched: br.fetched,
                    acknowledged: br.acknowledged.as_ref().map(|(at, _)| *at),
                    acknowledged_by: br.acknowledged.as_ref().map(|(_, m)| m.clone()),
                    fetched_log_index: r.fetched_log_index,
                    acknowledged_log_index: r.acknowledged_log_index,
                })
                .collect(),
            ..d.clone()
        }
    }

    /// The drop's state name: its own, or `unbacked`.
    pub fn state_name(&self) -> &'static str {
        if self.backed.problems.is_empty() { self.claimed.state.as_str() } else { "unbacked" }
    }

    /// Recipient `i`'s outcome as the log backs it.
    pub(super) fn outcome(&self, shown: &SentDrop, i: usize) -> Outcome {
        if self.backed.recipients[i].problem.is_some() {
            return Outcome::Unbacked;
        }
        match outcome(shown.state, &shown.recipients[i]) {
            Outcome::Waiting | Outcome::Fetched if self.stranded.contains_key(&shown.recipients[i].party) => {
                Outcome::Undeliverable
            }
            o => o,
        }
    }

    /// Why recipient `i` can never fetch it, when that is its outcome.
    pub(super) fn stranded_reason(&self, shown: &SentDrop, i: usize) -> Option<String> {
        (self.outcome(shown, i) == Outcome::Undeliverable)
            .then(|| self.stranded.get(&shown.recipients[i].party).cloned())
            .flatten()
    }
}
