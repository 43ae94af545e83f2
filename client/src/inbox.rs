//! `sealdrop inbox`: the drops waiting for this party, as a table or (with
//! `--json`) as a JSON array of [`InboxDrop`], whose field names are part of
//! the command line's contract (docs/cli.md) and do not follow the wire
//! protocol's if that ever changes.

use std::io::Write;

use jiff::Timestamp;
use serde::Serialize;

use sealdrop_proto::api::{Inbox, InboxEntry};
use sealdrop_proto::ids::{DropId, PartyId};

use crate::context::Settings;
use crate::error::{Error, ErrorCode, Kind, Result};
use crate::fsutil::human_bytes;

/// One waiting drop in `inbox --json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InboxDrop {
    /// The drop id, for `sealdrop fetch ID`.
    pub id: DropId,
    /// The sending party's id.
    pub from: PartyId,
    /// Ciphertext size in bytes (what the download will be).
    pub size: u64,
    /// When the sender created the drop.
    pub created: Timestamp,
    /// When the hub committed it (it became fetchable).
    pub committed: Timestamp,
    /// When the hub deletes it if this party has not acknowledged it.
    pub expires: Timestamp,
    /// The sharing agreement it travels under.
    pub agreement: String,
    /// `null`, or why `fetch --all` skips it: this client found it
    /// undeliverable or refused it before (see [`crate::refused`]).
    pub skipped: Option<Skipped>,
}

/// Why `fetch --all` skips a waiting drop, as `inbox` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// The verdict's error code: `undeliverable`, `bad_archive`, ...
    pub code: String,
    /// The error's message.
    pub message: String,
    /// When this client reached it.
    pub since: Timestamp,
}

impl From<crate::refused::Refusal> for Skipped {
    fn from(r: crate::refused::Refusal) -> Self {
        Self { code: r.code, message: r.message, since: r.refused }
    }
}

impl From<InboxEntry> for InboxDrop {
    fn from(e: InboxEntry) -> Self {
        Self {
            id: e.id,
            from: e.from,
            size: e.size,
            created: e.created,
            committed: e.committed,
            expires: e.expires,
            agreement: e.agreement,
            skipped: None,
        }
    }
}

/// The table `inbox` prints without `--json`.
pub fn render(drops: &[InboxDrop]) -> String {
    use std::fmt::Write as _;
    if drops.is_empty() {
        return "no drops waiting".to_owned();
    }
    let mut s =
        format!("{:<28} {:<22} {:>10}  {:<20} {:<20} agreement\n", "id", "from", "size", "committed", "expires");
    for d in drops {
        let _ = writeln!(
            s,
            "{:<28} {:<22} {:>10}  {:<20} {:<20} {}",
            d.id,
            d.from,
            human_bytes(d.size),
            d.committed,
            d.expires,
            crate::names::shown(&d.agreement)
        );
        if let Some(k) = &d.skipped {
            let mark = if k.code == crate::refused::UNDELIVERABLE {
                "UNDELIVERABLE".to_owned()
            } else {
                format!("REFUSED ({})", k.code)
            };
            // On the drop's own line, so `grep ID` shows it; `fetch --all` skips it.
            s.pop();
            let _ = writeln!(s, "  {mark}, skipped by fetch --all\n    {}", k.message);
        }
    }
    s
}

/// `sealdrop inbox [--json]`: asks the hub, oldest drop first.
pub fn run(settings: &Settings, json: bool, out: &mut dyn Write) -> Result<()> {
    // Decrypted files a killed fetch left behind go at the first chance.
    crate::staging::sweep_and_say(&settings.state_dir, None);
    let session = settings.session()?;
    let inbox: Inbox = session.hub.inbox()?;
    let drops: Vec<InboxDrop> = inbox
        .drops
        .into_iter()
        .map(|e| {
            let skipped = crate::refused::load(&settings.state_dir, &e.id).map(Skipped::from);
            InboxDrop { skipped, ..InboxDrop::from(e) }
        })
        .collect();
    let text = if json {
        serde_json::to_string_pretty(&drops)
            .map_err(|e| Error::with_kind(Kind::Input, ErrorCode::Internal, e.to_string()))?
    } else {
        render(&drops)
    };
    writeln!(out, "{}", text.trim_end()).map_err(|e| Error::io("cannot write to stdout", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> InboxEntry {
        InboxEntry {
            id: DropId::random(),
            from: "camden".parse().unwrap(),
            size: 12_500,
            created: "2026-11-15T09:59:00Z".parse().unwrap(),
            committed: "2026-11-15T10:00:00Z".parse().unwrap(),
            expires: "2026-11-20T10:00:00Z".parse().unwrap(),
            agreement: "london-fsm".into(),
        }
    }

    #[test]
    fn inbox_json_field_names_are_fixed() {
        let e = entry();
        let v = serde_json::to_value(InboxDrop::from(e.clone())).unwrap();
        let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["agreement", "committed", "created", "expires", "from", "id", "size", "skipped"]);
        assert!(v["skipped"].is_null());
        assert_eq!(v["id"], e.id.as_str());
        assert_eq!(v["from"], "camden");
        assert_eq!(v["size"], 12_500);
        assert_eq!(v["committed"], "2026-11-15T10:00:00Z");
    }

    #[test]
    fn inbox_table_has_a_header_and_one_line_per_drop() {
        assert_eq!(render(&[]), "no drops waiting");
        let d = InboxDrop::from(entry());
        let text = render(std::slice::from_ref(&d));
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("id ") && lines[0].ends_with("agreement"), "{}", lines[0]);
        assert!(lines[1].starts_with(d.id.as_str()) && lines[1].contains("12.2 KiB"), "{}", lines[1]);
        assert!(lines[1].ends_with("london-fsm"), "{}", lines[1]);

        let skipped = Skipped {
            code: crate::refused::UNDELIVERABLE.into(),
            message: "drop d-x was encrypted only to islington/data-team's revoked key".into(),
            since: "2026-11-21T08:00:00Z".parse().unwrap(),
        };
        let marked = InboxDrop { skipped: Some(skipped), ..d.clone() };
        let text = render(&[d.clone(), marked]);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[2].ends_with("london-fsm  UNDELIVERABLE, skipped by fetch --all"), "{text}");
        assert_eq!(lines[3], "    drop d-x was encrypted only to islington/data-team's revoked key");
        let v = serde_json::to_value(InboxDrop { skipped: None, ..d }).unwrap();
        assert!(v["skipped"].is_null());
    }
}
