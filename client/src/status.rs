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
//!   downloaded it, it may hold a copy);
//! - `unbacked`: the hub says it fetched or acknowledged, but the signed
//!   log does not back that (see below);
//! - `undeliverable`: it has not acknowledged, and every key of it that the
//!   drop was encrypted to has since been revoked or removed, so it never
//!   can ([`crate::undeliverable`]).
//!
//! Nothing is shown as a fact on the hub's word alone: every commit,
//! download, acknowledgement and deletion the hub reports is checked
//! against its signed transfer log ([`crate::status_log`]), and the times
//! shown are the log's. A claim the log does not back is shown as the
//! hub's claim (`the hub says delivered; no receipt in the log from ...`):
//! the drop's state is then `unbacked`, and a drop this client committed
//! that the hub no longer lists is `missing`. Either way the evidence is
//! kept under `<state>/log/evidence/status-<time>/` and the command exits
//! with the verification status (4) after printing the report.
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
use crate::status_log::{Backed, Missing};

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
    keep_fields(req, &d.id, d.created, &d.agreement)
}

fn keep_fields(req: &StatusRequest, id: &DropId, created: Timestamp, agreement: &str) -> bool {
    let wanted = req.id.as_deref().is_none_or(|w| w == id.as_str());
    wanted && req.since.is_none_or(|t| created >= t) && req.agreement.as_deref().is_none_or(|a| agreement == a)
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
    fn outcome(&self, shown: &SentDrop, i: usize) -> Outcome {
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
    fn stranded_reason(&self, shown: &SentDrop, i: usize) -> Option<String> {
        (self.outcome(shown, i) == Outcome::Undeliverable)
            .then(|| self.stranded.get(&shown.recipients[i].party).cloned())
            .flatten()
    }
}

/// `sealdrop status`: asks the hub for this party's sent drops, checks what
/// it says against its signed log, and prints them (or a JSON array with
/// `json`). Fails with `unbacked_claims` (exit 4), after printing, when the
/// log does not back something the hub says.
pub fn run(settings: &Settings, req: &StatusRequest, json: bool, out: &mut dyn Write) -> Result<()> {
    let id = req.id.as_deref().map(parse_drop_id).transpose()?;
    let session = settings.session()?;
    let journal = crate::journal::read(&settings.state_dir).unwrap_or_else(|e| {
        eprintln!("warning: {}; file names are not shown and missing drops are not looked for", e.message);
        crate::journal::Journal::default()
    });
    let sent: Sent = match session.hub.sent(id.as_ref()) {
        Ok(sent) => sent,
        // A drop this client committed that the hub says it never had.
        Err(e) if req.id.is_some() && e.code == sealdrop_proto::api::code::NOT_FOUND => Sent { drops: vec![] },
        Err(e) => return Err(e),
    };
    let listed: Vec<DropId> = sent.drops.iter().map(|d| d.id.clone()).collect();
    let drops: Vec<SentDrop> = sent.drops.into_iter().filter(|d| keep(req, d)).collect();
    let mut prover = crate::status_log::Prover::open(
        &settings.state_dir,
        &session,
        &settings.authority()?,
        &journal,
        settings.clock.now(),
    );
    let mut views = Vec::with_capacity(drops.len());
    for d in drops {
        let backed = crate::status_log::back(&mut prover, &d)?;
        views.push(View { claimed: d, backed, stranded: HashMap::new() });
    }
    prover.save();
    // Only drops whose commit the log backs: a recipient's verdict rests on the manifest.
    let committed: Vec<&SentDrop> = views.iter().filter(|v| v.backed.is_backed()).map(|v| &v.claimed).collect();
    let mut stranded = crate::undeliverable::for_status(settings, &session, &committed);
    for v in &mut views {
        v.stranded = stranded.remove(&v.claimed.id).unwrap_or_default();
    }
    let missing = crate::status_log::missing(&journal, &listed, |s| keep_fields(req, &s.drop, s.created, &s.agreement));
    let names = journal.sent_names();
    let text = if json {
        serde_json::to_string_pretty(&to_json(&views, &missing, &names))
            .map_err(|e| Error::input("internal", e.to_string()))?
    } else if views.is_empty() && missing.is_empty() && (req.since.is_some() || req.agreement.is_some()) {
        "no sent drops match".to_owned()
    } else {
        render(&views, &missing, &names)
    };
    writeln!(out, "{}", text.trim_end()).map_err(|e| Error::io("cannot write to stdout", e))?;
    unbacked(settings, &views, &missing)
}

/// The error `status` ends with when the log does not back everything the
/// hub said, after keeping the evidence.
fn unbacked(settings: &Settings, views: &[View], missing: &[Missing]) -> Result<()> {
    let mut problems: Vec<String> = views
        .iter()
        .flat_map(|v| v.backed.all_problems(&v.claimed).into_iter().map(move |p| format!("{}: {p}", v.claimed.id)))
        .collect();
    problems.extend(missing.iter().map(|m| format!("{}: {}", m.sent.drop, missing_line(m))));
    if problems.is_empty() {
        return Ok(());
    }
    let claims: Vec<SentDrop> = views.iter().filter(|v| !v.backed.is_backed()).map(|v| v.claimed.clone()).collect();
    let kept = crate::status_log::keep_evidence(&settings.state_dir, settings.clock.now(), &claims, &problems, missing)
        .map(|dir| format!("the hub's answer is kept in {} as evidence", dir.display()))
        .unwrap_or_else(|e| format!("the evidence could not be kept ({})", e.message));
    let n = problems.len();
    Err(Error::verification(
        "unbacked_claims",
        format!(
            "{n} of the hub's claims about your drops {} not backed by its signed log (first: {}); {kept}: report it to the coordinator",
            if n == 1 { "is" } else { "are" },
            problems[0]
        ),
    ))
}

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

/// Why a missing drop is reported.
fn missing_line(m: &Missing) -> String {
    let proof = match &m.receipt {
        Some(_) => "your receipt proves the log holds its commit",
        None => "your journal records its commit",
    };
    format!(
        "you committed it at {} (log entry {}) and {proof}, but the hub no longer lists it and names no logged deletion",
        m.sent.committed, m.sent.log_index
    )
}

/// The JSON array `status --json` prints: a [`StatusDrop`] per drop, the
/// missing ones last.
pub fn to_json(views: &[View], missing: &[Missing], names: &HashMap<DropId, Vec<String>>) -> serde_json::Value {
    let listed = views.iter().map(|v| status_drop(v, names));
    let all = listed.chain(missing.iter().map(missing_drop));
    serde_json::Value::Array(all.map(|d| serde_json::to_value(d).unwrap_or_default()).collect())
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

/// The text for one recipient; `key` is the fingerprint of the key its
/// receipt verified with, when backed.
pub fn recipient_line(d: &SentDrop, r: &RecipientStatus, key: Option<&str>) -> String {
    let party = &r.party;
    let fetched = |t: Timestamp| format!("fetched {t}");
    match outcome(d.state, r) {
        Outcome::Acknowledged => {
            let mut s = format!(
                "acknowledged {} by {}",
                r.acknowledged.map_or_else(String::new, |t| t.to_string()),
                r.acknowledged_by.as_deref().unwrap_or("?")
            );
            if let Some(k) = key {
                s.push_str(&format!(" (key {k})"));
            }
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
        Outcome::Unbacked => "NOT BACKED BY THE LOG".to_owned(),
        // Only a view knows (see `render`).
        Outcome::Undeliverable => "UNDELIVERABLE".to_owned(),
    }
}

/// The one-line summary: drops by state, the number of non-deliveries, and
/// the number of claims the log does not back.
pub fn summary(views: &[View], missing: usize) -> String {
    let shown: Vec<SentDrop> = views.iter().map(View::shown).collect();
    let states = [DropState::Open, DropState::Committed, DropState::Delivered, DropState::Expired, DropState::Recalled];
    let mut by_state: Vec<String> = states
        .iter()
        .filter_map(|s| {
            let n = views.iter().filter(|v| v.state_name() == s.as_str()).count();
            (n > 0).then(|| format!("{n} {}", s.as_str()))
        })
        .collect();
    let unbacked = views.iter().filter(|v| v.state_name() == "unbacked").count();
    for (n, name) in [(unbacked, "unbacked"), (missing, "missing")] {
        if n > 0 {
            by_state.push(format!("{n} {name}"));
        }
    }
    let not_delivered = views
        .iter()
        .zip(&shown)
        .flat_map(|(v, d)| (0..d.recipients.len()).map(move |i| v.outcome(d, i)))
        .filter(|o| *o == Outcome::NotDelivered)
        .count();
    let undeliverable = views
        .iter()
        .zip(&shown)
        .flat_map(|(v, d)| (0..d.recipients.len()).map(move |i| v.outcome(d, i)))
        .filter(|o| *o == Outcome::Undeliverable)
        .count();
    let undeliverable = if undeliverable > 0 {
        format!("; {undeliverable} UNDELIVERABLE (recall and send again)")
    } else {
        String::new()
    };
    let plural = |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let claims: usize = views.iter().map(|v| v.backed.all_problems(&v.claimed).len()).sum::<usize>() + missing;
    let claims = if claims > 0 {
        format!("; {} NOT BACKED BY THE HUB'S SIGNED LOG", plural(claims, "claim", "claims"))
    } else {
        String::new()
    };
    format!(
        "{}{}{}; {}{undeliverable}{claims}",
        plural(views.len() + missing, "drop", "drops"),
        if by_state.is_empty() { "" } else { ": " },
        by_state.join(", "),
        plural(not_delivered, "non-delivery", "non-deliveries")
    )
}

/// The text report: each drop, each recipient, then the summary.
pub fn render(views: &[View], missing: &[Missing], names: &HashMap<DropId, Vec<String>>) -> String {
    use std::fmt::Write as _;
    if views.is_empty() && missing.is_empty() {
        return "no drops sent".to_owned();
    }
    let mut s = String::new();
    let parties = views.iter().flat_map(|v| &v.claimed.recipients).map(|r| r.party.as_str().len());
    let width = parties.max().unwrap_or(0).max(12);
    for v in views {
        let (claimed, d) = (&v.claimed, v.shown());
        let committed = match d.committed {
            Some(t) => format!("committed {t}"),
            None if d.state == DropState::Open => "not committed".to_owned(),
            None => "commit not in the log".to_owned(),
        };
        let files = names.get(&d.id).map(|n| format!("  files: {}", crate::names::shown_list(n))).unwrap_or_default();
        let state = match v.state_name() {
            "unbacked" => format!("UNBACKED (the hub says {})", claimed.state.as_str()),
            other => other.to_owned(),
        };
        let key = v.backed.manifest_key.as_deref().map(|k| format!("  signed with key {k}")).unwrap_or_default();
        let _ = writeln!(
            s,
            "{}  {state}  {}  {}  {committed}  expires {}{key}{files}",
            d.id,
            crate::names::shown(&d.agreement),
            human_bytes(d.size),
            d.expires
        );
        for p in &v.backed.problems {
            let _ = writeln!(s, "    {p}");
        }
        if d.state.is_ended() {
            let _ = writeln!(s, "    {}", deletion(&d));
        }
        for (i, r) in d.recipients.iter().enumerate() {
            let line = match (&v.backed.recipients[i].problem, v.stranded_reason(&d, i)) {
                (Some(p), _) => p.clone(),
                (None, Some(why)) => format!("UNDELIVERABLE: {why}"),
                (None, None) => recipient_line(&d, r, v.backed.recipients[i].acknowledged_key.as_deref()),
            };
            let _ = writeln!(s, "    {:<width$}  {line}", r.party.as_str());
            if let Some(warning) = &v.backed.recipients[i].revoked_key {
                let _ = writeln!(s, "    {:<width$}  WARNING: {warning}", "");
            }
        }
    }
    for m in missing {
        let sent = &m.sent;
        let files = format!("  files: {}", sent.names.join(", "));
        let _ = writeln!(
            s,
            "{}  MISSING  {}  {}  committed {}  expires {}{files}",
            sent.drop,
            sent.agreement,
            human_bytes(sent.ciphertext_len),
            sent.committed,
            sent.expires
        );
        let _ = writeln!(s, "    {}", missing_line(m));
    }
    let _ = writeln!(s, "{}", summary(views, missing.len()));
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
            acknowledged_by: acknowledged.map(|_| "data-team".to_owned()),
            fetched_log_index: fetched.map(|_| 2),
            acknowledged_log_index: acknowledged.map(|_| 3),
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
            committed_log_index: (state != DropState::Open).then_some(1),
            deleted_log_index: deleted.map(|_| 4),
        }
    }

    /// `d` with everything the hub says backed by the log.
    fn backed(d: &SentDrop) -> View {
        let backed = Backed {
            committed: d.committed,
            manifest_key: None,
            deleted: d.deleted.map(|at| {
                let reason = match d.state {
                    DropState::Recalled => sealdrop_log::entry::DeletionReason::Recalled,
                    DropState::Delivered => sealdrop_log::entry::DeletionReason::Delivered,
                    _ => sealdrop_log::entry::DeletionReason::Expired,
                };
                (reason, at)
            }),
            recipients: d
                .recipients
                .iter()
                .map(|r| crate::status_log::BackedRecipient {
                    fetched: r.fetched,
                    acknowledged: r.acknowledged.map(|at| (at, "data-team".to_owned())),
                    acknowledged_key: None,
                    problem: None,
                    revoked_key: None,
                })
                .collect(),
            problems: vec![],
        };
        View { claimed: d.clone(), backed, stranded: HashMap::new() }
    }

    fn views(drops: &[SentDrop]) -> Vec<View> {
        drops.iter().map(backed).collect()
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
            recipient_line(&d, &d.recipients[0], None),
            "acknowledged 2026-11-16T08:01:00Z by data-team (fetched 2026-11-16T08:00:00Z)"
        );
        assert_eq!(
            recipient_line(&d, &d.recipients[1], None),
            "NOT DELIVERED: expired 2026-11-20T10:00:00Z before islington acknowledged"
        );
        let camden = recipient_line(&d, &d.recipients[2], None);
        assert!(camden.starts_with("NOT DELIVERED: expired 2026-11-20T10:00:00Z before camden acknowledged"));
        assert!(camden.contains("downloaded the ciphertext at 2026-11-16T08:00:00Z"), "{camden}");
        assert_eq!(
            deletion(&d),
            "ciphertext deleted 2026-11-20T10:00:03Z: it expired at 2026-11-20T10:00:00Z before every recipient acknowledged"
        );

        let text = render(&views(std::slice::from_ref(&d)), &[], &HashMap::new());
        assert!(text.contains(&format!("{}  expired  london-fsm  12.2 KiB  committed 2026-11-15T10:00:00Z", d.id)));
        assert!(text.lines().any(|l| l.trim_start().starts_with("islington") && l.contains("NOT DELIVERED")));
        assert_eq!(text.lines().last().unwrap(), "1 drop: 1 expired; 2 non-deliveries");

        let json = to_json(&views(std::slice::from_ref(&d)), &[], &HashMap::new());
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
                "claimed_state",
                "committed",
                "created",
                "deleted",
                "expires",
                "files",
                "id",
                "idempotency_key",
                "manifest_key_fingerprint",
                "problems",
                "recipients",
                "size",
                "state",
                "verified"
            ]
        );
        let mut keys: Vec<&str> = json[0]["recipients"][0].as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "acknowledged",
                "acknowledged_by",
                "claimed_outcome",
                "fetched",
                "outcome",
                "party",
                "problem",
                "reason",
                "receipt_key_fingerprint",
                "revoked_key_warning"
            ]
        );
    }

    #[test]
    fn status_expired_early_blames_the_agreement() {
        let d = drop(DropState::Expired, vec![r("islington", None, None)], Some("2026-11-18T00:00:00Z"));
        assert!(deletion(&d).contains("the agreement ended"), "{}", deletion(&d));
        assert_eq!(
            recipient_line(&d, &d.recipients[0], None),
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
        let line = recipient_line(&d, &d.recipients[0], None);
        assert!(line.contains("downloaded it at 2026-11-16T08:00:00Z before the recall and may hold a copy"), "{line}");
        assert_eq!(recipient_line(&d, &d.recipients[1], None), "recalled before hackney fetched it");
        assert_eq!(deletion(&d), "ciphertext deleted 2026-11-17T12:00:00Z: you recalled it");
        assert_eq!(summary(&views(std::slice::from_ref(&d)), 0), "1 drop: 1 recalled; 0 non-deliveries");
        let json = to_json(&views(std::slice::from_ref(&d)), &[], &HashMap::new());
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
        let text = render(&views(&drops), &[], &names);
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

        let json = to_json(&views(&drops), &[], &names);
        assert_eq!(json[0]["files"], serde_json::json!(["fsm.csv", "notes"]));
        assert_eq!(json[0]["recipients"][0]["outcome"], "fetched");
        assert_eq!(json[0]["recipients"][1]["outcome"], "waiting");
        assert_eq!(json[1]["recipients"][0]["outcome"], "waiting");
        assert!(json[1]["committed"].is_null());
        assert_eq!(json[2]["recipients"][0]["outcome"], "acknowledged");
        assert_eq!(json[2]["recipients"][0]["acknowledged_by"], "data-team");
        assert_eq!(json[2]["verified"], true);
        assert_eq!(render(&[], &[], &names), "no drops sent");
    }

    #[test]
    fn status_names_the_key_each_receipt_and_the_manifest_verified_with() {
        // islington/data-team's key replaced (a lost laptop): the same
        // member name acknowledged one drop with the old key, one with the new.
        const OLD: &str = "SHA256:00112233445566778899aabbccddeeff";
        const NEW: &str = "SHA256:ffeeddccbbaa99887766554433221100";
        const MINE: &str = "SHA256:0123456789abcdef0123456789abcdef";
        let before = drop(DropState::Delivered, vec![r("islington", F, A)], Some("2026-11-16T08:01:00Z"));
        let after = drop(DropState::Committed, vec![r("islington", F, A), r("hackney", None, None)], None);
        let mut views = views(&[before, after]);
        for (v, key) in views.iter_mut().zip([OLD, NEW]) {
            v.backed.manifest_key = Some(MINE.into());
            v.backed.recipients[0].acknowledged_key = Some(key.into());
        }
        let json = to_json(&views, &[], &HashMap::new());
        for (d, key) in json.as_array().unwrap().iter().zip([OLD, NEW]) {
            assert_eq!(d["manifest_key_fingerprint"], MINE, "{d}");
            assert_eq!(d["recipients"][0]["acknowledged_by"], "data-team");
            assert_eq!(d["recipients"][0]["receipt_key_fingerprint"], key, "{d}");
        }
        assert!(json[1]["recipients"][1]["receipt_key_fingerprint"].is_null(), "no receipt, no key");
        let text = render(&views, &[], &HashMap::new());
        let acks: Vec<&str> = text.lines().filter(|l| l.trim_start().starts_with("islington")).collect();
        assert!(acks[0].ends_with(&format!("by data-team (key {OLD}) (fetched 2026-11-16T08:00:00Z)")), "{text}");
        assert!(acks[1].contains(&format!("by data-team (key {NEW})")), "{text}");
        assert!(text.lines().next().unwrap().ends_with(&format!("  signed with key {MINE}")), "{text}");
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

    #[test]
    fn status_shows_a_claim_the_log_does_not_back_as_the_hubs_word() {
        let d =
            drop(DropState::Delivered, vec![r("islington", F, A), r("hackney", F, A)], Some("2026-11-16T08:01:00Z"));
        let mut v = backed(&d);
        // The log holds islington's download but no receipt, and no deletion.
        v.backed.recipients[0].acknowledged = None;
        v.backed.recipients[0].problem =
            Some("the hub says acknowledged at 2026-11-16T08:01:00Z by data-team; no receipt in the log".into());
        v.backed.deleted = None;
        v.backed.problems.push("the hub says delivered; no deletion in the log (no entry)".into());
        assert!(!v.backed.is_backed());
        let text = render(std::slice::from_ref(&v), &[], &HashMap::new());
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].contains("  UNBACKED (the hub says delivered)  "), "{text}");
        assert_eq!(lines[1], "    the hub says delivered; no deletion in the log (no entry)");
        assert!(lines[2].trim_start().starts_with("islington") && lines[2].contains("no receipt in the log"), "{text}");
        assert!(lines[3].contains("acknowledged 2026-11-16T08:01:00Z by data-team"), "{text}");
        assert!(lines.last().unwrap().ends_with("; 2 claims NOT BACKED BY THE HUB'S SIGNED LOG"), "{text}");
        let json = to_json(std::slice::from_ref(&v), &[], &HashMap::new());
        assert_eq!(
            (json[0]["state"].as_str(), json[0]["claimed_state"].as_str()),
            (Some("unbacked"), Some("delivered"))
        );
        assert_eq!(json[0]["verified"], false);
        assert_eq!(json[0]["problems"].as_array().unwrap().len(), 2);
        assert!(json[0]["deleted"].is_null(), "no deletion is shown that the log does not hold");
        let isl = &json[0]["recipients"][0];
        assert_eq!(
            (isl["outcome"].as_str(), isl["claimed_outcome"].as_str()),
            (Some("unbacked"), Some("acknowledged"))
        );
        assert!(isl["acknowledged"].is_null() && isl["acknowledged_by"].is_null());
        assert!(isl["problem"].as_str().unwrap().contains("no receipt in the log"));
        assert_eq!(isl["fetched"], "2026-11-16T08:00:00Z", "the download the log holds is shown");
        assert_eq!(json[0]["recipients"][1]["outcome"], "acknowledged");
    }

    #[test]
    fn status_reports_a_committed_drop_the_hub_no_longer_lists() {
        let id = DropId::random();
        let sent = crate::journal::Sent {
            drop: id.clone(),
            recipients: vec!["islington".parse().unwrap()],
            agreement: "london-fsm".into(),
            names: vec!["fsm.csv".into()],
            plaintext_bytes: None,
            ciphertext_sha256: "ab".repeat(32),
            ciphertext_len: 900,
            created: t("2026-11-15T09:59:00Z"),
            committed: t("2026-11-15T10:00:00Z"),
            expires: t("2026-11-20T10:00:00Z"),
            log_index: 7,
            receipt: None,
            manifest_key_fingerprint: None,
        };
        let journal = crate::journal::Journal {
            entries: vec![crate::journal::Entry {
                v: 1,
                time: t("2026-11-15T10:00:01Z"),
                event: crate::journal::Event::Sent(sent),
            }],
            ..Default::default()
        };
        assert!(crate::status_log::missing(&journal, std::slice::from_ref(&id), |_| true).is_empty());
        let missing = crate::status_log::missing(&journal, &[], |_| true);
        assert_eq!(missing.len(), 1);
        let text = render(&[], &missing, &HashMap::new());
        assert!(text.starts_with(&format!("{id}  MISSING  london-fsm")), "{text}");
        assert!(text.contains("(log entry 7)") && text.contains("the hub no longer lists it"), "{text}");
        assert_eq!(
            text.lines().last().unwrap(),
            "1 drop: 1 missing; 0 non-deliveries; 1 claim NOT BACKED BY THE HUB'S SIGNED LOG"
        );
        let json = to_json(&[], &missing, &HashMap::new());
        assert_eq!((json[0]["state"].as_str(), json[0]["verified"].as_bool()), (Some("missing"), Some(false)));
        assert!(json[0]["claimed_state"].is_null());
        assert_eq!(json[0]["recipients"][0]["outcome"], "unbacked");
    }

    #[test]
    fn status_marks_a_recipient_that_can_never_fetch_as_undeliverable_with_why() {
        let d = drop(DropState::Committed, vec![r("islington", None, None), r("hackney", F, A)], None);
        let mut v = backed(&d);
        let why = "encrypted only to islington/data-team's revoked key (revoked 2026-11-20: laptop stolen), so islington can never fetch it";
        v.stranded.insert("islington".parse().unwrap(), why.to_owned());
        // An acknowledged recipient is never stranded, whatever became of its keys since.
        v.stranded.insert("hackney".parse().unwrap(), "stale".to_owned());
        let json = to_json(std::slice::from_ref(&v), &[], &HashMap::new());
        let isl = &json[0]["recipients"][0];
        assert_eq!(
            (isl["outcome"].as_str(), isl["claimed_outcome"].as_str()),
            (Some("undeliverable"), Some("waiting"))
        );
        assert_eq!(isl["reason"], why);
        assert_eq!(json[0]["recipients"][1]["outcome"], "acknowledged");
        assert!(json[0]["recipients"][1]["reason"].is_null());
        let text = render(std::slice::from_ref(&v), &[], &HashMap::new());
        let line = text.lines().find(|l| l.trim_start().starts_with("islington")).unwrap();
        assert!(line.ends_with(&format!("UNDELIVERABLE: {why}")), "{text}");
        assert!(!text.contains("stale"), "{text}");
        assert_eq!(
            text.lines().last().unwrap(),
            "1 drop: 1 committed; 0 non-deliveries; 1 UNDELIVERABLE (recall and send again)"
        );
    }
}
