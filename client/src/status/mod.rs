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

use sealdrop_proto::api::{Sent, SentDrop};
use sealdrop_proto::ids::DropId;

use crate::context::Settings;
use crate::error::{Error, ErrorCode, Kind, Result};
use crate::status_log::Missing;

mod json;
#[cfg(test)]
mod tests;
mod text;
mod view;

pub use json::{StatusDrop, StatusRecipient, missing_drop, status_drop, to_json};
use text::missing_line;
pub use text::{recipient_line, render, summary};
pub use view::{Outcome, View, outcome};

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
        Error::new(
            ErrorCode::BadDropId,
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

/// `sealdrop status`: asks the hub for this party's sent drops, checks what
/// it says against its signed log, and prints them (or a JSON array with
/// `json`). Fails with `unbacked_claims` (exit 4), after printing, when the
/// log does not back something the hub says.
pub fn run(settings: &Settings, req: &StatusRequest, json: bool, out: &mut dyn Write) -> Result<()> {
    let session = settings.session()?;
    let Checked { views, missing, names } = check(settings, &session, req)?;
    let text = if json {
        serde_json::to_string_pretty(&to_json(&views, &missing, &names))
            .map_err(|e| Error::with_kind(Kind::Input, ErrorCode::Internal, e.to_string()))?
    } else if views.is_empty() && missing.is_empty() && (req.since.is_some() || req.agreement.is_some()) {
        "no sent drops match".to_owned()
    } else {
        render(&views, &missing, &names)
    };
    writeln!(out, "{}", text.trim_end()).map_err(|e| Error::io("cannot write to stdout", e))?;
    unbacked(settings, &views, &missing)
}

/// The sender's drops as `status` checked them against the log.
pub struct Checked {
    /// Each drop the hub lists that the request keeps, with what the log backs.
    pub views: Vec<View>,
    /// Drops this client committed that the hub no longer lists.
    pub missing: Vec<Missing>,
    /// File names per drop, from this client's journal.
    pub names: HashMap<DropId, Vec<String>>,
}

/// Asks the hub for this party's sent drops and checks each against the
/// log, in a session already open: what `status` shows, for a caller
/// (the `watch` service) that acts on each recipient's outcome.
pub fn check(settings: &Settings, session: &crate::context::Session, req: &StatusRequest) -> Result<Checked> {
    let id = req.id.as_deref().map(parse_drop_id).transpose()?;
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
        session,
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
    let mut stranded = crate::undeliverable::for_status(settings, session, &committed);
    for v in &mut views {
        v.stranded = stranded.remove(&v.claimed.id).unwrap_or_default();
    }
    let missing = crate::status_log::missing(&journal, &listed, |s| keep_fields(req, &s.drop, s.created, &s.agreement));
    let names = journal.sent_names();
    Ok(Checked { views, missing, names })
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
    Err(Error::new(
        ErrorCode::UnbackedClaims,
        format!(
            "{n} of the hub's claims about your drops {} not backed by its signed log (first: {}); {kept}: report it to the coordinator",
            if n == 1 { "is" } else { "are" },
            problems[0]
        ),
    ))
}
