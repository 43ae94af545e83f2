//! `status` as text: each drop, each recipient, then a one-line summary.

use std::collections::HashMap;

use jiff::Timestamp;

use sealdrop_proto::api::{DropState, RecipientStatus, SentDrop};
use sealdrop_proto::ids::DropId;

use super::view::{Outcome, View, outcome};
use crate::fsutil::human_bytes;
use crate::status_log::Missing;

/// Why a missing drop is reported.
pub(super) fn missing_line(m: &Missing) -> String {
    let proof = match &m.receipt {
        Some(_) => "your receipt proves the log holds its commit",
        None => "your journal records its commit",
    };
    format!(
        "you committed it at {} (log entry {}) and {proof}, but the hub no longer lists it and names no logged deletion",
        m.sent.committed, m.sent.log_index
    )
}

/// Why the hub deleted an ended drop's ciphertext.
pub(super) fn deletion(d: &SentDrop) -> String {
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
