//! What a notification says: the kind of event, and the metadata of the
//! drops it is about (parties, agreement, counts, sizes, drop ids). Never
//! any content: the receivers (a chat channel, a mailbox, a script) are
//! outside the drop's encryption, so a notification tells only what the
//! hub and its transfer log already know.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use sealdrop_proto::ids::{DropId, PartyId};

use crate::fsutil::human_bytes;

/// What happened. The names (`arrived`, `send_failed`, ...) are the config
/// file's and the hooks' (`SEALDROP_EVENT`), so they never change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// Drops from another party were fetched, verified and placed.
    Arrived,
    /// The recipient acknowledged drops this party sent.
    Acknowledged,
    /// Drops this party sent expired before the recipient acknowledged them.
    Undelivered,
    /// A file could not be sent (refused, or given up on).
    SendFailed,
    /// A drop for this party could not be fetched or did not verify.
    FetchFailed,
    /// The transfer log did not back what the hub said about this party's drops.
    LogCheckFailed,
}

impl EventKind {
    /// Every kind, in the order the docs list them.
    pub const ALL: [EventKind; 6] = [
        EventKind::Arrived,
        EventKind::Acknowledged,
        EventKind::Undelivered,
        EventKind::SendFailed,
        EventKind::FetchFailed,
        EventKind::LogCheckFailed,
    ];

    /// The kind's name, as in the config file and `SEALDROP_EVENT`.
    pub const fn as_str(self) -> &'static str {
        match self {
            EventKind::Arrived => "arrived",
            EventKind::Acknowledged => "acknowledged",
            EventKind::Undelivered => "undelivered",
            EventKind::SendFailed => "send_failed",
            EventKind::FetchFailed => "fetch_failed",
            EventKind::LogCheckFailed => "log_check_failed",
        }
    }

    /// A comma-separated list (`--notify-events arrived,send_failed`), in
    /// the order given, without repeats; blanks around names are ignored.
    pub fn parse_list(list: &str) -> Result<Vec<EventKind>, UnknownEventKind> {
        let mut kinds = Vec::new();
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let kind = name.parse()?;
            if !kinds.contains(&kind) {
                kinds.push(kind);
            }
        }
        Ok(kinds)
    }

    /// Whether the event reports a failure (and so carries a code and a reason).
    pub const fn is_failure(self) -> bool {
        matches!(self, EventKind::SendFailed | EventKind::FetchFailed | EventKind::LogCheckFailed)
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not an event kind; its text suggests the nearest one and
/// lists them all (for `--notify-events` and the config file).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownEventKind(pub String);

impl fmt::Display for UnknownEventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
        // strsim directly, not crate::suggest (which reaches the session
        // layer): the config module, below the session, embeds this.
        let wanted = self.0.trim().to_lowercase();
        let near = names
            .iter()
            .map(|n| (strsim::jaro_winkler(&wanted, n), *n))
            .filter(|(score, _)| *score >= 0.85)
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, n)| n);
        write!(f, "{:?} is not a notification event", self.0)?;
        if let Some(near) = near {
            write!(f, " (did you mean {near}?)")?;
        }
        write!(f, "; the events are {}", names.join(", "))
    }
}

impl std::error::Error for UnknownEventKind {}

impl FromStr for EventKind {
    type Err = UnknownEventKind;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim();
        EventKind::ALL.iter().copied().find(|k| k.as_str() == wanted).ok_or_else(|| UnknownEventKind(s.to_owned()))
    }
}

// Through `FromStr`, so a typo in the config file gets the same "did you mean" as on the command line.
impl<'de> Deserialize<'de> for EventKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// One notification. The Notifier removes `file_names` and replaces
/// `reason` unless the config allows file names (see [`Event::redacted`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// What happened: decides which sinks are told, and the wording.
    pub kind: EventKind,
    /// When the service saw it, so a delayed mail still says when.
    pub at: jiff::Timestamp,
    /// This service's party: one channel may hear from several borough teams.
    pub party: PartyId,
    /// The drops concerned, so a person can look them up (`sealdrop status`, the log).
    pub drops: Vec<DropId>,
    /// The sending party, where there is one (arrivals, a fetch that failed).
    pub from: Option<PartyId>,
    /// The recipient parties, where there are any (sends, acknowledgements).
    pub to: Vec<PartyId>,
    /// The agreement the drops were sent under: says what the data is for.
    pub agreement: Option<String>,
    /// How many files, when known: a recipient can tell a drop is complete.
    pub files: Option<u64>,
    /// Their total size in bytes, when known.
    pub bytes: Option<u64>,
    /// The files' names: only when the config's `include_file_names` is on,
    /// as a name can itself be personal data ("smith-john-referral.csv").
    pub file_names: Vec<String>,
    /// The stable error code of a failure (`hub_unreachable`, `tampered`, ...).
    pub code: Option<String>,
    /// The failure's one-line message; it may name a file, so it is withheld
    /// like file names (see [`WITHHELD_REASON`]).
    pub reason: Option<String>,
}

/// What a failure's `reason` says when file names are off: the message may
/// name a file, so the receiver is pointed at where the service keeps it.
pub const WITHHELD_REASON: &str = "details withheld as they may name a file; see the service's status file";

/// The longest summary line: a chat message or subject, not a report (a
/// long reason or many drop ids are cut, with `...`).
const SUMMARY_MAX_CHARS: usize = 400;

/// How many drop ids or file names a summary lists before "and N more".
const LISTED: usize = 3;

impl Event {
    /// An event of `kind` for `party`, at `at`, with nothing else filled in.
    pub fn new(kind: EventKind, party: PartyId, at: jiff::Timestamp) -> Self {
        Self {
            kind,
            at,
            party,
            drops: Vec::new(),
            from: None,
            to: Vec::new(),
            agreement: None,
            files: None,
            bytes: None,
            file_names: Vec::new(),
            code: None,
            reason: None,
        }
    }

    /// The event as it may leave this machine: without file names, and with
    /// a failure's reason replaced by [`WITHHELD_REASON`], unless
    /// `include_file_names`.
    pub fn redacted(&self, include_file_names: bool) -> Event {
        let mut event = self.clone();
        if !include_file_names {
            event.file_names.clear();
            if event.reason.is_some() {
                event.reason = Some(WITHHELD_REASON.to_owned());
            }
        }
        event
    }

    /// One line for people: a chat message, a mail subject. E.g.
    /// `sealdrop: drop d-... from camden to islington arrived (agreement london-fsm-ehc, 1 file, 12.3 KiB)`.
    pub fn summary(&self) -> String {
        let drops = listed("drop", "drops", self.drops.iter().map(DropId::as_str));
        let mut route = String::new();
        if let Some(from) = &self.from {
            route.push_str(&format!(" from {from}"));
        }
        if !self.to.is_empty() {
            route.push_str(&format!(" to {}", plain_list(self.to.iter().map(PartyId::as_str))));
        }
        let subject = if drops.is_empty() { route.trim_start().to_owned() } else { format!("{drops}{route}") };
        let what = match self.kind {
            EventKind::Arrived => format!("{subject} arrived"),
            EventKind::Acknowledged => format!("{subject} acknowledged"),
            EventKind::Undelivered => format!("{subject} undelivered: expired before the recipient acknowledged it"),
            EventKind::SendFailed => format!("{}: sending {subject} failed", self.party),
            EventKind::FetchFailed => format!("{}: fetching {subject} failed", self.party),
            EventKind::LogCheckFailed => format!("{}: checking the transfer log failed", self.party),
        };
        // An event without drops or parties leaves a double space (`sending  failed`).
        let what = what.replace("  ", " ").trim().to_owned();
        let mut details = Vec::new();
        if let Some(agreement) = &self.agreement {
            details.push(format!("agreement {agreement}"));
        }
        match self.files {
            Some(1) => details.push("1 file".to_owned()),
            Some(n) => details.push(format!("{n} files")),
            None => {}
        }
        if let Some(bytes) = self.bytes {
            details.push(human_bytes(bytes));
        }
        if !self.file_names.is_empty() {
            details.push(listed("file", "files", self.file_names.iter().map(String::as_str)));
        }
        match (&self.code, &self.reason) {
            (Some(code), Some(reason)) => details.push(format!("error[{code}]: {reason}")),
            (Some(code), None) => details.push(format!("error[{code}]")),
            (None, Some(reason)) => details.push(reason.clone()),
            (None, None) => {}
        }
        let mut line = if details.is_empty() {
            format!("sealdrop: {what}")
        } else {
            format!("sealdrop: {what} ({})", details.join(", "))
        };
        // One line whatever a reason holds: a newline would start a new header in a mail.
        line.retain(|c| !c.is_control());
        if line.chars().count() > SUMMARY_MAX_CHARS {
            line = line.chars().take(SUMMARY_MAX_CHARS - 3).collect::<String>() + "...";
        }
        line
    }

    /// The event as `key: value` lines, for a mail body.
    pub fn lines(&self) -> String {
        let mut out = format!("event: {}\nat: {}\nparty: {}\n", self.kind, self.at, self.party);
        let mut line = |key: &str, value: String| out.push_str(&format!("{key}: {value}\n"));
        if !self.drops.is_empty() {
            line("drops", plain_list(self.drops.iter().map(DropId::as_str)));
        }
        if let Some(from) = &self.from {
            line("from", from.to_string());
        }
        if !self.to.is_empty() {
            line("to", plain_list(self.to.iter().map(PartyId::as_str)));
        }
        if let Some(agreement) = &self.agreement {
            line("agreement", agreement.clone());
        }
        if let Some(files) = self.files {
            line("files", files.to_string());
        }
        if let Some(bytes) = self.bytes {
            line("bytes", format!("{bytes} ({})", human_bytes(bytes)));
        }
        if !self.file_names.is_empty() {
            line("file names", self.file_names.join(", "));
        }
        if let Some(code) = &self.code {
            line("code", code.clone());
        }
        if let Some(reason) = &self.reason {
            line("reason", reason.clone());
        }
        out
    }
}

/// `drop d-1` / `drops d-1, d-2, d-3 and 4 more`; empty for no items.
fn listed<'a>(one: &str, many: &str, items: impl ExactSizeIterator<Item = &'a str>) -> String {
    match items.len() {
        0 => String::new(),
        1 => format!("{one} {}", plain_list(items)),
        _ => format!("{many} {}", plain_list(items)),
    }
}

/// `a`, `a, b`, `a, b, c and 2 more`.
fn plain_list<'a>(items: impl ExactSizeIterator<Item = &'a str>) -> String {
    let total = items.len();
    let shown: Vec<&str> = items.take(LISTED).collect();
    if total > LISTED { format!("{} and {} more", shown.join(", "), total - LISTED) } else { shown.join(", ") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn party(s: &str) -> PartyId {
        s.parse().unwrap()
    }

    fn drop_id(n: u32) -> DropId {
        format!("d-{n:026}").parse().unwrap()
    }

    fn arrived() -> Event {
        let mut e = Event::new(EventKind::Arrived, party("islington"), "2026-12-07T10:00:00Z".parse().unwrap());
        e.drops = vec![drop_id(1)];
        e.from = Some(party("camden"));
        e.to = vec![party("islington")];
        e.agreement = Some("london-fsm-ehc".to_owned());
        e.files = Some(1);
        e.bytes = Some(12_595);
        e
    }

    #[test]
    fn names_round_trip_and_a_typo_is_told_the_nearest_name() {
        for kind in EventKind::ALL {
            assert_eq!(kind.as_str().parse::<EventKind>(), Ok(kind));
            assert_eq!(serde_json::to_value(kind).unwrap(), serde_json::json!(kind.as_str()));
        }
        let e = "send_faild".parse::<EventKind>().unwrap_err().to_string();
        assert!(e.contains("did you mean send_failed?"), "{e}");
        assert!(e.contains("arrived, acknowledged, undelivered, send_failed, fetch_failed, log_check_failed"), "{e}");
        assert_eq!(
            EventKind::parse_list(" arrived, send_failed,arrived,"),
            Ok(vec![EventKind::Arrived, EventKind::SendFailed])
        );
        assert_eq!(EventKind::parse_list("arrived,acknowleged"), Err(UnknownEventKind("acknowleged".to_owned())));
        let e = "zzz".parse::<EventKind>().unwrap_err().to_string();
        assert!(!e.contains("did you mean"), "{e}");
    }

    #[test]
    fn the_summary_says_who_what_and_how_much_in_one_line() {
        assert_eq!(
            arrived().summary(),
            "sealdrop: drop d-00000000000000000000000001 from camden to islington arrived \
             (agreement london-fsm-ehc, 1 file, 12.3 KiB)"
        );
        let mut e = arrived();
        e.kind = EventKind::SendFailed;
        e.drops = (1..=5).map(drop_id).collect();
        e.from = None;
        e.files = Some(5);
        e.bytes = None;
        e.code = Some("hub_unreachable".to_owned());
        e.reason = Some("cannot reach the hub\nat all".to_owned());
        let s = e.summary();
        assert!(s.starts_with("sealdrop: islington: sending drops d-00000000000000000000000001, "), "{s}");
        assert!(s.contains(" and 2 more to islington failed (agreement london-fsm-ehc, 5 files"), "{s}");
        assert!(s.ends_with("error[hub_unreachable]: cannot reach the hubat all)"), "{s}");
        e.reason = Some("x".repeat(2000));
        assert_eq!(e.summary().chars().count(), SUMMARY_MAX_CHARS);
        let log = Event::new(EventKind::LogCheckFailed, party("camden"), jiff::Timestamp::UNIX_EPOCH);
        assert_eq!(log.summary(), "sealdrop: camden: checking the transfer log failed");
    }

    #[test]
    fn redaction_drops_file_names_and_withholds_reasons_unless_allowed() {
        let mut e = arrived();
        e.kind = EventKind::FetchFailed;
        e.file_names = vec!["smith-john.csv".to_owned()];
        e.code = Some("tampered".to_owned());
        e.reason = Some("smith-john.csv does not match its hash".to_owned());
        let r = e.redacted(false);
        assert!(r.file_names.is_empty());
        assert_eq!(r.reason.as_deref(), Some(WITHHELD_REASON));
        assert_eq!(r.code.as_deref(), Some("tampered"));
        for text in [r.summary(), r.lines(), serde_json::to_string(&r).unwrap()] {
            assert!(!text.contains("smith"), "{text}");
        }
        assert_eq!(e.redacted(true), e);
        assert!(e.summary().contains("file smith-john.csv"), "{}", e.summary());
        // An event without a reason gains none.
        assert_eq!(arrived().redacted(false).reason, None);
    }
}
