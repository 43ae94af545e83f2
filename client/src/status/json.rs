//! `status --json`: each drop and recipient as the command line's contract
//! (docs/cli.md) names them.

use std::collections::HashMap;

use jiff::Timestamp;
use serde::Serialize;

use sealdrop_proto::ids::{DropId, PartyId};

use super::text::missing_line;
use super::view::{Outcome, View, outcome};
use crate::status_log::Missing;

/// One drop in `status --json`. Every field is always present (`null` when
/// not known or not yet), and the names are the command line's contract
/// (docs/cli.md), independent of the wire protocol's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StatusDrop {
    /// The drop id.
    pub id: DropId,
    /// `open` (not committed yet), `committed`, `delivered`, `expired` or
    /// `recalled`, as the log backs it; `unbacked` when the log does not
    /// back what the hub says (see `claimed_state` and `problems`);
    /// `missing` for a drop this client committed that the hub no longer lists.
    pub state: &'static str,
    /// The state the hub reports (`null` for a missing drop).
    pub claimed_state: Option<&'static str>,
    /// Whether the log backs everything the hub says about the drop.
    pub verified: bool,
    /// What the hub says that the log does not back, one line each.
    pub problems: Vec<String>,
    /// The sharing agreement it travels under.
    pub agreement: String,
    /// Ciphertext size in bytes.
    pub size: u64,
    /// When the hub created it.
    pub created: Timestamp,
    /// When the log records its commit; `null` while open or not backed.
    pub committed: Option<Timestamp>,
    /// When the hub deletes it if not every recipient acknowledged.
    pub expires: Timestamp,
    /// When the log records the ciphertext's deletion; `null` while the hub holds it.
    pub deleted: Option<Timestamp>,
    /// The top-level file and folder names, from this machine's journal;
    /// `null` when this machine did not send it (the hub never has names).
    pub files: Option<Vec<String>>,
    /// For a part of `send --split-by`: the key that makes a re-run send only
    /// the missing parts; `null` otherwise.
    pub idempotency_key: Option<String>,
    /// Each recipient's progress, in the manifest's order.
    pub recipients: Vec<StatusRecipient>,
    /// The fingerprint (`SHA256:...`, as `key show` prints it) of the key
    /// the manifest's signature verified with; `null` while the commit is
    /// not backed, or for a drop a version without it sent.
    pub manifest_key_fingerprint: Option<String>,
}

/// One recipient of a drop in `status --json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StatusRecipient {
    /// The recipient party's id.
    pub party: PartyId,
    /// [`Outcome`]: `acknowledged`, `fetched`, `waiting`, `not_delivered`,
    /// `recalled`, `unbacked` or `undeliverable`.
    pub outcome: Outcome,
    /// For `undeliverable`: why (which keys, revoked when and why), and what
    /// to do; `null` otherwise.
    pub reason: Option<String>,
    /// The outcome the hub reports (`null` for a missing drop).
    pub claimed_outcome: Option<Outcome>,
    /// What the hub says about it that the log does not back, if anything.
    pub problem: Option<String>,
    /// A warning when the log backs its download or acknowledgement but the
    /// key that signed it is revoked from a time at or before it (a stolen
    /// key): which key, from when, why, and whom to ask; `null` otherwise.
    pub revoked_key_warning: Option<String>,
    /// When it (first) downloaded the ciphertext, as logged; `null` if never.
    pub fetched: Option<Timestamp>,
    /// When it acknowledged, as logged; `null` if it has not.
    pub acknowledged: Option<Timestamp>,
    /// The member of the recipient party whose key signed the receipt (e.g.
    /// `data-team`); `null` if none.
    pub acknowledged_by: Option<String>,
    /// The fingerprint of the key the receipt's signature verified with
    /// (which of `acknowledged_by`'s keys, once its name is reused with a
    /// new one); `null` if no receipt is backed.
    pub receipt_key_fingerprint: Option<String>,
}

/// The drop as `status --json` shows it.
pub fn status_drop(v: &View, names: &HashMap<DropId, Vec<String>>) -> StatusDrop {
    let (d, shown) = (&v.claimed, v.shown());
    StatusDrop {
        id: d.id.clone(),
        state: v.state_name(),
        claimed_state: Some(d.state.as_str()),
        verified: v.backed.is_backed(),
        problems: v.backed.all_problems(d),
        agreement: d.agreement.clone(),
        size: d.size,
        created: d.created,
        committed: shown.committed,
        expires: d.expires,
        deleted: shown.deleted,
        files: names.get(&d.id).cloned(),
        idempotency_key: d.idempotency_key.clone(),
        recipients: shown
            .recipients
            .iter()
            .enumerate()
            .map(|(i, r)| StatusRecipient {
                party: r.party.clone(),
                outcome: v.outcome(&shown, i),
                reason: v.stranded_reason(&shown, i),
                claimed_outcome: Some(outcome(d.state, &d.recipients[i])),
                problem: v.backed.recipients[i].problem.clone(),
                revoked_key_warning: v.backed.recipients[i].revoked_key.clone(),
                fetched: r.fetched,
                acknowledged: r.acknowledged,
                acknowledged_by: r.acknowledged_by.clone(),
                receipt_key_fingerprint: v.backed.recipients[i].acknowledged_key.clone(),
            })
            .collect(),
        manifest_key_fingerprint: v.backed.manifest_key.clone(),
    }
}

/// A drop this client committed that the hub no longer lists, as `status --json` shows it.
pub fn missing_drop(m: &Missing) -> StatusDrop {
    let s = &m.sent;
    StatusDrop {
        id: s.drop.clone(),
        state: "missing",
        claimed_state: None,
        verified: false,
        problems: vec![missing_line(m)],
        agreement: s.agreement.clone(),
        size: s.ciphertext_len,
        created: s.created,
        committed: Some(s.committed),
        expires: s.expires,
        deleted: None,
        files: Some(s.names.clone()),
        idempotency_key: None,
        recipients: s
            .recipients
            .iter()
            .map(|p| StatusRecipient {
                party: p.clone(),
                outcome: Outcome::Unbacked,
                reason: None,
                claimed_outcome: None,
                problem: None,
                revoked_key_warning: None,
                fetched: None,
                acknowledged: None,
                acknowledged_by: None,
                receipt_key_fingerprint: None,
            })
            .collect(),
        manifest_key_fingerprint: s.manifest_key_fingerprint.clone(),
    }
}

/// The JSON array `status --json` prints: a [`StatusDrop`] per drop, the
/// missing ones last.
pub fn to_json(views: &[View], missing: &[Missing], names: &HashMap<DropId, Vec<String>>) -> serde_json::Value {
    let listed = views.iter().map(|v| status_drop(v, names));
    let all = listed.chain(missing.iter().map(missing_drop));
    serde_json::Value::Array(all.map(|d| serde_json::to_value(d).unwrap_or_default()).collect())
}
