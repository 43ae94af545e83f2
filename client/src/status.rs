//! `sealdrop status`: the sender's view of its drops. For each drop, its
//! state, agreement, size, commit and expiry times and, once it ended, when
//! and why the hub deleted the ciphertext; for each recipient, one outcome:
//!
//! - `acknowledged`: it signed a receipt (it has the data);
//! - `fetched`: it downloaded the ciphertext but has not acknowledged yet;
//! - `waiting`: nothing yet;
//! - `not_delivered`: the drop ended (expired, or its agreement ended)
//!   before this recipient acknowledged, so it never got the data;
//! - `recalled`: the sender recalled the drop first (if the recipient had
//!   downloaded it, it may hold a copy).
//!
//! The file names come from this client's local journal (the hub never
//! has them), when it sent the drop.

use std::collections::HashMap;
use std::io::Write;

use jiff::Timestamp;
use serde::Serialize;

use sealdrop_proto::api::{DropState, RecipientStatus, Sent, SentDrop};
use sealdrop_proto::ids::{DropId, PartyId};

use crate::context::Settings;
use crate::error::{Error, Result};
use crate::fsutil::human_bytes;

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

/// Which drops to show.
#[derive(Clone, Debug, Default)]
pub struct StatusRequest {
    /// One drop.
    pub id: Option<String>,
    /// Only drops created at or after this time.
    pub since: Option<Timestamp>,
    /// Only drops under this agreement.
    pub agreement: Option<String>,
}

/// Parses a drop id given on the command line.
pub fn parse_drop_id(text: &str) -> Result<DropId> {
    text.parse().map_err(|e: sealdrop_proto::ids::IdError| {
        Error::input(
            "bad_drop_id",
            format!("{e}; copy the drop id (d- and 26 letters or digits) from `sealdrop status` or `sealdrop inbox`"),
        )
    })
}

/// Whether `d` passes the request's filters.
pub fn keep(req: &StatusRequest, d: &SentDrop) -> bool {
    req.since.is_none_or(|t| d.created >= t) && req.agreement.as_deref().is_none_or(|a| d.agreement == a)
}

/// `sealdrop status`: asks the hub for this party's sent drops and prints
/// them (or a JSON array with `json`).
pub fn run(settings: &Settings, req: &StatusRequest, json: bool, out: &mut dyn Write) -> Result<()> {
    let path = match &req.id {
        Some(id) => {
            let id = parse_drop_id(id)?;
            format!("/v1/sent?id={id}")
        }
        None => "/v1/sent".to_owned(),
    };
    let session = settings.session()?;
    let sent: Sent = session.hub.get(&path)?;
    let drops: Vec<SentDrop> = sent.drops.into_iter().filter(|d| keep(req, d)).collect();
    let names = crate::journal::sent_names(&settings.state_dir);
    let text = if json {
        serde_json::to_string_pretty(&to_json(&drops, &names)).map_err(|e| Error::input("internal", e.to_string()))?
    } else if drops.is_empty() && (req.since.is_some() || req.agreement.is_some()) {
        "no sent drops match".to_owned()
    } else {
        render(&drops, &names)
    };
    writeln!(out, "{}", text.trim_end()).map_err(|e| Error::io("cannot write to stdout", e))
}

/// One drop in `status --json`. Every field is always present (`null` when
/// not known or not yet), and the names are the command line's contract
/// (docs/cli.md), independent of the wire protocol's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StatusDrop {
    /// The drop id.
    pub id: DropId,
    /// `open` (not committed yet), `committed`, `delivered`, `expired` or `recalled`.
    pub state: &'static str,
    /// The sharing agreement it travels under.
    pub agreement: String,
    /// Ciphertext size in bytes.
    pub size: u64,
    /// When the hub created it.
    pub created: Timestamp,
    /// When the hub committed it; `null` while open.
    pub committed: Option<Timestamp>,
    /// When the hub deletes it if not every recipient acknowledged.
    pub expires: Timestamp,
    /// When the hub deleted the ciphertext; `null` while it holds it.
    pub deleted: Option<Timestamp>,
    /// The top-level file and folder names, from this machine's journal;
    /// `null` when this machine did not send it (the hub never has names).
    pub files: Option<Vec<String>>,
    /// For a part of `send --split-by`: the key that makes a re-run send only
    /// the missing parts; `null` otherwise.
    pub idempotency_key: Option<String>,
    /// Each recipient's progress, in the manifest's order.
    pub recipients: Vec<StatusRecipient>,
}

/// One recipient of a drop in `status --json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StatusRecipient {
    /// The recipient party's id.
    pub party: PartyId,
    /// [`Outcome`]: `acknowledged`, `fetched`, `waiting`, `not_delivered` or `recalled`.
    pub outcome: Outcome,
    /// When it (last) downloaded the ciphertext; `null` if never.
    pub fetched: Option<Timestamp>,
    /// When it acknowledged; `null` if it has not.
    pub acknowledged: Option<Timestamp>,
    /// The member of the recipient party whose key signed the receipt (e.g.
    /// `data-team`); `null` if none.
    pub acknowledged_by: Option<String>,
}

/// The drop as `status --json` shows it.
pub fn status_drop(d: &SentDrop, names: &HashMap<DropId, Vec<String>>) -> StatusDrop {
    StatusDrop {
        id: d.id.clone(),
        state: d.state.as_str(),
        agreement: d.agreement.clone(),
        size: d.size,
        created: d.created,
        committed: d.committed,
        expires: d.expires,
        deleted: d.deleted,
        files: names.get(&d.id).cloned(),
        idempotency_key: d.idempotency_key.clone(),
        recipients: d
            .recipients
            .iter()
            .map(|r| StatusRecipient {
                party: r.party.clone(),
                outcome: outcome(d.state, r),
                fetched: r.fetched,
                acknowledged: r.acknowledged,
                acknowledged_by: r.acknowledged_by.clone(),
            })
            .collect(),
    }
}

/// The JSON array `status --json` prints: a [`StatusDrop`] per drop.
pub fn to_json(drops: &[SentDrop], names: &HashMap<DropId, Vec<String>>) -> serde_json::Value {
    serde_json::Value::Array(
        drops.iter().map(|d| serde_json::to_value(status_drop(d, names)).unwrap_or_default()).collect(),
    )
}

/// Why the hub deleted an ended drop's ciphertext.
fn deletion(d: &SentDrop) -> String {
    let when = d.deleted.map_or_else(String::new, |t| format!(" {t}"));
    let why = match d.state {
        DropState::Delivered => "every recipient acknowledged".to_owned(),
        DropState::Recalled => "you recalled it".to_owned(),
        DropState::Expired if agreement_ended(d) => {
            format!(
                "the agreement ended before the drop's expiry ({}) and before every recipient acknowledged",
                d.expires
            )
        }
        DropState::Expired => format!("it expired at {} before every recipient acknowledged", d.expires),
        DropState::Open | DropState::Committed => "still held".to_owned(),
    };
    format!("ciphertext deleted{when}: {why}")
}

/// An expired drop deleted before its expiry time: its agreement ended.
fn agreement_ended(d: &SentDrop) -> bool {
    d.state == DropState::Expired && d.deleted.is_some_and(|t| t < d.expires)
}

/// The text for one recipient.
pub fn recipient_line(d: &SentDrop, r: &RecipientStatus) -> String {
    let party = &r.party;
    let fetched = |t: Timestamp| format!("fetched {t}");
    match outcome(d.state, r) {
        Outcome::Acknowledged => {
            let mut s = format!(
                "acknowledged {} by {}",
                r.acknowledged.map_or_else(String::new, |t| t.to_string()),
                r.acknowledged_by.as_deref().unwrap_or("?")
            );
            if let Some(t) = r.fetched {
                s.push_str(&format!(" ({})", fetched(t)));
            }
            s
        }
        Outcome::Fetched => format!("{}, not yet acknowledged", r.fetched.map(fetched).unwrap_or_default()),
        Outcome::Waiting if d.state == DropState::Open => "waiting (the drop is not committed yet)".to_owned(),
        Outcome::Waiting => "waiting".to_owned(),
        Outcome::NotDelivered => {
            let mut s = match d.state {
                DropState::Expired if agreement_ended(d) => format!(
                    "NOT DELIVERED: deleted {} when the agreement ended, before {party} acknowledged",
                    d.deleted.map_or_else(String::new, |t| t.to_string())
                ),
                DropState::Expired => format!("NOT DELIVERED: expired {} before {party} acknowledged", d.expires),
                _ => format!(
                    "NOT DELIVERED: the hub deleted the ciphertext{} before {party} acknowledged",
                    d.deleted.map_or_else(String::new, |t| format!(" at {t}"))
                ),
            };
            if let Some(t) = r.fetched {
                s.push_str(&format!(" (it downloaded the ciphertext at {t} but never acknowledged)"));
            }
            s
        }
        Outcome::Recalled => match r.fetched {
            Some(t) => format!(
                "recalled; {party} downloaded it at {t} before the recall and may hold a copy: ask them to delete it"
            ),
            None => format!("recalled before {party} fetched it"),
        },
    }
}

/// The one-line summary: drops by state and the number of non-deliveries.
pub fn summary(drops: &[SentDrop]) -> String {
    let states = [DropState::Open, DropState::Committed, DropState::Delivered, DropState::Expired, DropState::Recalled];
    let by_state: Vec<String> = states
        .iter()
        .filter_map(|s| {
            let n = drops.iter().filter(|d| d.state == *s).count();
            (n > 0).then(|| format!("{n} {}", s.as_str()))
        })
        .collect();
    let not_delivered = drops
        .iter()
        .flat_map(|d| d.recipients.iter().map(move |r| outcome(d.state, r)))
        .filter(|o| *o == Outcome::NotDelivered)
        .count();
    let plural = |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    format!(
        "{}{}{}; {}",
        plural(drops.len(), "drop", "drops"),
        if by_state.is_empty() { "" } else { ": " },
        by_state.join(", "),
        plural(not_delivered, "non-delivery", "non-deliveries")
    )
}

/// The text report: each drop, each recipient, then the summary.
pub fn render(drops: &[SentDrop], names: &HashMap<DropId, Vec<String>>) -> String {
    use std::fmt::Write as _;
    if drops.is_empty() {
        return "no drops sent".to_owned();
    }
    let mut s = String::new();
    let width = drops.iter().flat_map(|d| &d.recipients).map(|r| r.party.as_str().len()).max().unwrap_or(0).max(12);
    for d in drops {
        let committed = d.committed.map_or_else(|| "not committed".to_owned(), |t| format!("committed {t}"));
        let files = names.get(&d.id).map(|n| format!("  files: {}", crate::names::shown_list(n))).unwrap_or_default();
        let _ = writeln!(
            s,
            "{}  {}  {}  {}  {committed}  expires {}{files}",
            d.id,
            d.state.as_str(),
            crate::names::shown(&d.agreement),
            human_bytes(d.size),
            d.expires
        );
        if d.state.is_ended() {
            let _ = writeln!(s, "    {}", deletion(d));
        }
        for r in &d.recipients {
            let _ = writeln!(s, "    {:<width$}  {}", r.party.as_str(), recipient_line(d, r));
        }
    }
    let _ = writeln!(s, "{}", summary(drops));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn r(party: &str, fetched: Option<&str>, acknowledged: Option<&str>) -> RecipientStatus {
        RecipientStatus {
            party: party.parse().unwrap(),
            fetched: fetched.map(t),
            acknowledged: acknowledged.map(t),
            acknowledged_by: acknowledged.map(|_| format!("{party}/data-team")),
        }
    }

    fn drop(state: DropState, recipients: Vec<RecipientStatus>, deleted: Option<&str>) -> SentDrop {
        SentDrop {
            id: DropId::random(),
            state,
            agreement: "london-fsm".into(),
            size: 12_500,
            created: t("2026-11-15T09:59:00Z"),
            committed: (state != DropState::Open).then(|| t("2026-11-15T10:00:00Z")),
            expires: t("2026-11-20T10:00:00Z"),
            recipients,
            idempotency_key: None,
            deleted: deleted.map(t),
        }
    }

    const F: Option<&str> = Some("2026-11-16T08:00:00Z");
    const A: Option<&str> = Some("2026-11-16T08:01:00Z");

    #[test]
    fn status_outcome_for_every_state_and_recipient_progress() {
        use DropState::*;
        use Outcome as O;
        let nothing = r("islington", None, None);
        let fetched = r("islington", F, None);
        let acked = r("islington", F, A);
        let cases = [
            (Open, &nothing, O::Waiting),
            (Committed, &nothing, O::Waiting),
            (Committed, &fetched, O::Fetched),
            (Committed, &acked, O::Acknowledged),
            (Delivered, &acked, O::Acknowledged),
            (Delivered, &nothing, O::NotDelivered),
            (Expired, &nothing, O::NotDelivered),
            (Expired, &fetched, O::NotDelivered),
            (Expired, &acked, O::Acknowledged),
            (Recalled, &nothing, O::Recalled),
            (Recalled, &fetched, O::Recalled),
        ];
        for (state, rec, want) in cases {
            assert_eq!(outcome(state, rec), want, "{state:?} {rec:?}");
        }
    }

    #[test]
    fn status_expired_with_partial_acknowledgement_says_who_did_not_get_it() {
        let d = drop(
            DropState::Expired,
            vec![r("hackney", F, A), r("islington", None, None), r("camden", F, None)],
            Some("2026-11-20T10:00:03Z"),
        );
        assert_eq!(
            recipient_line(&d, &d.recipients[0]),
            "acknowledged 2026-11-16T08:01:00Z by hackney/data-team (fetched 2026-11-16T08:00:00Z)"
        );
        assert_eq!(
            recipient_line(&d, &d.recipients[1]),
            "NOT DELIVERED: expired 2026-11-20T10:00:00Z before islington acknowledged"
        );
        let camden = recipient_line(&d, &d.recipients[2]);
        assert!(camden.starts_with("NOT DELIVERED: expired 2026-11-20T10:00:00Z before camden acknowledged"));
        assert!(camden.contains("downloaded the ciphertext at 2026-11-16T08:00:00Z"), "{camden}");
        assert_eq!(
            deletion(&d),
            "ciphertext deleted 2026-11-20T10:00:03Z: it expired at 2026-11-20T10:00:00Z before every recipient acknowledged"
        );

        let text = render(std::slice::from_ref(&d), &HashMap::new());
        assert!(text.contains(&format!("{}  expired  london-fsm  12.2 KiB  committed 2026-11-15T10:00:00Z", d.id)));
        assert!(text.lines().any(|l| l.trim_start().starts_with("islington") && l.contains("NOT DELIVERED")));
        assert_eq!(text.lines().last().unwrap(), "1 drop: 1 expired; 2 non-deliveries");

        let json = to_json(std::slice::from_ref(&d), &HashMap::new());
        let outcomes: Vec<&str> =
            json[0]["recipients"].as_array().unwrap().iter().map(|r| r["outcome"].as_str().unwrap()).collect();
        assert_eq!(outcomes, ["acknowledged", "not_delivered", "not_delivered"]);
        assert_eq!(json[0]["state"], "expired");
        assert_eq!(json[0]["deleted"], "2026-11-20T10:00:03Z");
        assert!(json[0]["files"].is_null());
        let mut keys: Vec<&str> = json[0].as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "agreement",
                "committed",
                "created",
                "deleted",
                "expires",
                "files",
                "id",
                "idempotency_key",
                "recipients",
                "size",
                "state"
            ]
        );
        let mut keys: Vec<&str> = json[0]["recipients"][0].as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["acknowledged", "acknowledged_by", "fetched", "outcome", "party"]);
    }

    #[test]
    fn status_expired_early_blames_the_agreement() {
        let d = drop(DropState::Expired, vec![r("islington", None, None)], Some("2026-11-18T00:00:00Z"));
        assert!(deletion(&d).contains("the agreement ended"), "{}", deletion(&d));
        assert_eq!(
            recipient_line(&d, &d.recipients[0]),
            "NOT DELIVERED: deleted 2026-11-18T00:00:00Z when the agreement ended, before islington acknowledged"
        );
    }

    #[test]
    fn status_recall_after_a_fetch_warns_of_a_copy() {
        let d = drop(
            DropState::Recalled,
            vec![r("islington", F, None), r("hackney", None, None)],
            Some("2026-11-17T12:00:00Z"),
        );
        let line = recipient_line(&d, &d.recipients[0]);
        assert!(line.contains("downloaded it at 2026-11-16T08:00:00Z before the recall and may hold a copy"), "{line}");
        assert_eq!(recipient_line(&d, &d.recipients[1]), "recalled before hackney fetched it");
        assert_eq!(deletion(&d), "ciphertext deleted 2026-11-17T12:00:00Z: you recalled it");
        assert_eq!(summary(std::slice::from_ref(&d)), "1 drop: 1 recalled; 0 non-deliveries");
        let json = to_json(std::slice::from_ref(&d), &HashMap::new());
        assert_eq!(json[0]["recipients"][0]["outcome"], "recalled");
        assert_eq!(json[0]["recipients"][0]["fetched"], "2026-11-16T08:00:00Z");
    }

    #[test]
    fn status_shows_waiting_fetched_open_and_journal_names() {
        let committed = drop(DropState::Committed, vec![r("islington", F, None), r("hackney", None, None)], None);
        let open = drop(DropState::Open, vec![r("islington", None, None)], None);
        let delivered = drop(DropState::Delivered, vec![r("islington", F, A)], Some("2026-11-16T08:01:00Z"));
        let drops = vec![committed.clone(), open.clone(), delivered.clone()];
        let names = HashMap::from([(committed.id.clone(), vec!["fsm.csv".to_owned(), "notes".to_owned()])]);
        let text = render(&drops, &names);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].ends_with("expires 2026-11-20T10:00:00Z  files: fsm.csv, notes"), "{}", lines[0]);
        assert!(
            lines[1].contains("islington") && lines[1].ends_with("fetched 2026-11-16T08:00:00Z, not yet acknowledged")
        );
        assert!(lines[2].contains("hackney") && lines[2].ends_with("  waiting"), "{}", lines[2]);
        assert!(lines[3].contains("  open  ") && lines[3].contains("not committed"), "{}", lines[3]);
        assert!(lines[4].ends_with("waiting (the drop is not committed yet)"));
        assert!(lines[5].contains("  delivered  "));
        assert_eq!(lines[6], "    ciphertext deleted 2026-11-16T08:01:00Z: every recipient acknowledged");
        assert_eq!(lines.last().unwrap(), &"3 drops: 1 open, 1 committed, 1 delivered; 0 non-deliveries");

        let json = to_json(&drops, &names);
        assert_eq!(json[0]["files"], serde_json::json!(["fsm.csv", "notes"]));
        assert_eq!(json[0]["recipients"][0]["outcome"], "fetched");
        assert_eq!(json[0]["recipients"][1]["outcome"], "waiting");
        assert_eq!(json[1]["recipients"][0]["outcome"], "waiting");
        assert!(json[1]["committed"].is_null());
        assert_eq!(json[2]["recipients"][0]["outcome"], "acknowledged");
        assert_eq!(json[2]["recipients"][0]["acknowledged_by"], "islington/data-team");
        assert_eq!(render(&[], &names), "no drops sent");
    }

    #[test]
    fn status_filters_by_creation_time_and_agreement() {
        let d = drop(DropState::Committed, vec![], None);
        let req = |since: Option<&str>, agreement: Option<&str>| StatusRequest {
            id: None,
            since: since.map(t),
            agreement: agreement.map(str::to_owned),
        };
        assert!(keep(&req(None, None), &d));
        assert!(keep(&req(Some("2026-11-15T09:59:00Z"), None), &d));
        assert!(!keep(&req(Some("2026-11-15T09:59:01Z"), None), &d));
        assert!(keep(&req(None, Some("london-fsm")), &d));
        assert!(!keep(&req(None, Some("london-sen")), &d));
    }
}
