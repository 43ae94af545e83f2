//! `sealdrop journal`: which entries to show, and how.

use std::io::Write;
use std::path::Path;

use jiff::Timestamp;

use sealdrop_proto::ids::{DropId, PartyId};

use super::{Entry, Event, Journal, Sent, path, read, second};
use crate::error::{Error, ErrorCode, Kind, Result};
use crate::fsutil::human_bytes;
use crate::names::shown;

/// Which entries `sealdrop journal` shows.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Only entries recorded at or after this time.
    pub since: Option<Timestamp>,
    /// Only drops under this agreement.
    pub agreement: Option<String>,
    /// Only drops sent to or received from this party (its id).
    pub party: Option<String>,
    /// Also the log checkpoints this client verified (never with `agreement` or `party`).
    pub checkpoints: bool,
}

/// A recall's drop as this client sent it, when the journal knows.
fn sent_of<'a>(journal: &'a Journal, drop: &DropId) -> Option<&'a Sent> {
    journal.sent().find(|s| &s.drop == drop)
}

/// The parties an entry involves and the agreement it is under.
fn parties_and_agreement<'a>(journal: &'a Journal, e: &'a Entry) -> (Vec<&'a PartyId>, Option<&'a str>) {
    match &e.event {
        Event::Sent(s) => (s.recipients.iter().collect(), Some(&s.agreement)),
        Event::Received(r) => (vec![&r.from], Some(&r.agreement)),
        Event::Recalled(r) => match sent_of(journal, &r.drop) {
            Some(s) => (s.recipients.iter().collect(), Some(&s.agreement)),
            None => (Vec::new(), None),
        },
        Event::Checkpoint(_) => (Vec::new(), None),
    }
}

/// The entries `filter` keeps, oldest first (by the time recorded; file
/// order among equal times).
pub fn select<'a>(journal: &'a Journal, filter: &Filter) -> Vec<&'a Entry> {
    let mut out: Vec<&Entry> = journal
        .entries
        .iter()
        .filter(|e| filter.since.is_none_or(|t| e.time >= t))
        .filter(|e| !matches!(e.event, Event::Checkpoint(_)) || filter.checkpoints)
        .filter(|e| {
            let (parties, agreement) = parties_and_agreement(journal, e);
            filter.agreement.as_deref().is_none_or(|a| agreement == Some(a))
                && filter.party.as_deref().is_none_or(|p| parties.iter().any(|x| x.as_str().eq_ignore_ascii_case(p)))
        })
        .collect();
    out.sort_by_key(|e| e.time);
    out
}

fn names_text(names: &[String]) -> String {
    const SHOWN: usize = 3;
    let mut s = crate::names::shown_list(names.iter().take(SHOWN));
    if names.len() > SHOWN {
        s.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    s
}

fn join_parties<'a>(p: impl IntoIterator<Item = &'a PartyId>) -> String {
    p.into_iter().map(PartyId::as_str).collect::<Vec<_>>().join(", ")
}

/// `  <what> SHA256:...` when the fingerprint is known (lines of older
/// versions have none).
fn key_text(what: &str, fingerprint: &Option<String>) -> String {
    fingerprint.as_deref().map(|f| format!("  {what} {}", shown(f))).unwrap_or_default()
}

/// One line for an entry, e.g. `2026-11-20T10:02:11Z  sent      <drop>  to
/// islington, hackney  under <agreement>  fsm.csv (12.0 KiB)`.
pub fn line(journal: &Journal, e: &Entry) -> String {
    let head = format!("{}  {:<9} ", second(e.time), e.event.name());
    match &e.event {
        Event::Sent(s) => {
            let size = match s.plaintext_bytes {
                Some(n) => human_bytes(n),
                None => format!("{} encrypted", human_bytes(s.ciphertext_len)),
            };
            format!(
                "{head}{}  to {}  under {}  {} ({size}){}",
                s.drop,
                join_parties(&s.recipients),
                shown(&s.agreement),
                names_text(&s.names),
                key_text("signed with key", &s.manifest_key_fingerprint)
            )
        }
        Event::Received(r) => format!(
            "{head}{}  from {}  under {}  {} ({})  into {}{}{}",
            r.drop,
            r.from,
            shown(&r.agreement),
            names_text(&r.names),
            human_bytes(r.bytes),
            crate::names::shown_path(&r.dest),
            key_text("manifest key", &r.manifest_key_fingerprint),
            key_text("receipt key", &r.receipt_key_fingerprint)
        ),
        Event::Recalled(r) => match sent_of(journal, &r.drop) {
            Some(s) => format!(
                "{head}{}  to {}  under {}  {}  (log entry {})",
                r.drop,
                join_parties(&s.recipients),
                shown(&s.agreement),
                names_text(&s.names),
                r.log_index
            ),
            None => format!("{head}{}  (log entry {})", r.drop, r.log_index),
        },
        Event::Checkpoint(c) => format!("{head}{}  {} entries  root {}", shown(&c.origin), c.size, shown(&c.root)),
    }
}

/// `sealdrop journal`: reads only the local journal and prints the
/// entries `filter` keeps, one line each or (`json`) as a JSON array.
pub fn run(state_dir: &Path, filter: &Filter, json: bool, out: &mut dyn Write) -> Result<()> {
    let journal = read(state_dir)?;
    if let Some(note) = journal.skipped_note() {
        eprintln!("{note}");
    }
    let selected = select(&journal, filter);
    let write = |out: &mut dyn Write, s: &str| writeln!(out, "{s}").map_err(|e| Error::io("cannot write to stdout", e));
    if json {
        let text = serde_json::to_string_pretty(&selected)
            .map_err(|e| Error::with_kind(Kind::Input, ErrorCode::Internal, e.to_string()))?;
        return write(out, &text);
    }
    if selected.is_empty() {
        let why = if journal.entries.is_empty() {
            format!("the journal {} has no entries yet", path(state_dir).display())
        } else {
            "no journal entries match".to_owned()
        };
        eprintln!("{why}");
        return Ok(());
    }
    for e in selected {
        write(out, &line(&journal, e))?;
    }
    Ok(())
}
