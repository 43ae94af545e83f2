//! The local journal: what this client sent, received and recalled, kept on
//! this machine so "what did we send to whom last month" can be answered
//! without the hub, a key or a network (`sealdrop journal`).
//!
//! The file is `<state dir>/journal.jsonl`, created with mode 0600 and only
//! ever appended to: one JSON object per line, each with `"v": 1`, `"event"`
//! (`sent`, `received`, `recalled` or `checkpoint`) and `"time"` (this
//! client's clock, to the second), then the event's own fields. Each line is
//! written with one `write` on a file opened for appending, then synced.
//! Readers skip, and count, a line cut short by a crash and lines from a
//! newer version (another `v`, an unknown event); unknown fields are ignored.
//!
//! The journal is a convenience, not evidence (the hub's signed transfer log
//! and the receipts under `<state dir>/log/receipts/` are): recording never
//! fails a command, it only warns.
//!
//! `sealdrop journal` selects and shows entries with `show.rs`.

mod show;

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use sealdrop_log::checkpoint::SignedCheckpoint;
use sealdrop_proto::drop::Manifest;
use sealdrop_proto::ids::{DropId, PartyId};
use sealdrop_proto::keys::NoteVerifierKey;
use sealdrop_proto::note::open_doc;

use crate::error::{Error, Result};

pub use show::{Filter, line, run, select};

/// The journal's file name in the state dir.
pub const FILE: &str = "journal.jsonl";
/// The line format version this client writes and reads.
pub const VERSION: u32 = 1;

/// The journal file in `state_dir`.
pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(FILE)
}

/// One line of the journal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The line format version, [`VERSION`].
    pub v: u32,
    /// When this client recorded it (its own clock).
    pub time: Timestamp,
    /// What happened; serialised as `"event": "<name>"` and the event's fields.
    #[serde(flatten)]
    pub event: Event,
}

/// What happened.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// This client committed a drop.
    Sent(Sent),
    /// This client fetched and acknowledged a drop.
    Received(Received),
    /// This client recalled a drop it had sent.
    Recalled(Recalled),
    /// This client verified a new checkpoint of the hub's transfer log.
    Checkpoint(Checkpoint),
}

impl Event {
    /// The event's name as written (`sent`, `received`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Event::Sent(_) => "sent",
            Event::Received(_) => "received",
            Event::Recalled(_) => "recalled",
            Event::Checkpoint(_) => "checkpoint",
        }
    }
}

/// A committed drop.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sent {
    /// The drop.
    pub drop: DropId,
    /// Its recipient parties.
    pub recipients: Vec<PartyId>,
    /// The agreement it travels under.
    pub agreement: String,
    /// The top-level file and folder names inside it (never sent to the hub in clear).
    pub names: Vec<String>,
    /// Bytes of file content, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plaintext_bytes: Option<u64>,
    /// Hex SHA-256 of the ciphertext.
    pub ciphertext_sha256: String,
    /// Ciphertext bytes.
    pub ciphertext_len: u64,
    /// When the hub created it.
    pub created: Timestamp,
    /// When the hub committed it.
    pub committed: Timestamp,
    /// When the hub deletes it if not acknowledged.
    pub expires: Timestamp,
    /// The index of its `drop_committed` entry in the hub's transfer log.
    pub log_index: u64,
    /// The offline log receipt, when it could be kept.
    #[serde(default)]
    pub receipt: Option<PathBuf>,
    /// The fingerprint (`SHA256:...`) of the key whose signature on the
    /// manifest verified: the member name alone does not say which key,
    /// once it is reused with a new one. `null` in lines of older versions.
    #[serde(default)]
    pub manifest_key_fingerprint: Option<String>,
}

/// A drop fetched, decrypted, placed and acknowledged.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Received {
    /// The drop.
    pub drop: DropId,
    /// Its sender.
    pub from: PartyId,
    /// The agreement it travelled under.
    pub agreement: String,
    /// The top-level file and folder names placed.
    pub names: Vec<String>,
    /// The folder they were placed in.
    pub dest: PathBuf,
    /// Regular files written.
    pub files: u64,
    /// Bytes of file content written.
    pub bytes: u64,
    /// The index of the `drop_acknowledged` entry in the hub's transfer log.
    pub log_index: u64,
    /// The offline log receipt, when it could be kept.
    #[serde(default)]
    pub receipt: Option<PathBuf>,
    /// The fingerprint of the sender's key whose signature on the manifest
    /// verified (`null` in lines of older versions).
    #[serde(default)]
    pub manifest_key_fingerprint: Option<String>,
    /// The fingerprint of this client's key that signed the receipt
    /// (`null` in lines of older versions).
    #[serde(default)]
    pub receipt_key_fingerprint: Option<String>,
}

/// A recalled drop.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Recalled {
    /// The drop.
    pub drop: DropId,
    /// When the hub recalled it.
    pub recalled: Timestamp,
    /// The index of the `drop_recalled` entry in the hub's transfer log.
    pub log_index: u64,
    /// The offline log receipt, when it could be kept.
    #[serde(default)]
    pub receipt: Option<PathBuf>,
}

/// A checkpoint of the hub's transfer log this client verified.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The log's origin.
    pub origin: String,
    /// Entries in the log.
    pub size: u64,
    /// The tree's root hash, base64.
    pub root: String,
}

impl From<&SignedCheckpoint> for Checkpoint {
    fn from(cp: &SignedCheckpoint) -> Self {
        Checkpoint { origin: cp.origin.clone(), size: cp.size, root: B64.encode(cp.root.0) }
    }
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_owned())
}

fn second(t: Timestamp) -> Timestamp {
    sealdrop_proto::clock::whole_second(t)
}

// ---------------------------------------------------------------------------
// Writing

/// Appends one entry: one `write_all` of the whole line on a file opened in
/// append mode (created with mode 0600), then `sync_data`. A previous line
/// cut short (no final newline) is closed off first, so it cannot swallow
/// this one.
pub fn append(state_dir: &Path, time: Timestamp, event: Event) -> io::Result<()> {
    append_line(state_dir, time, event, Sync::Now)
}

/// Whether an appended line is synced to disk before [`append_line`] returns.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sync {
    Now,
    /// By the next synced line (the file's sync covers every earlier write)
    /// or the kernel's write-back: for a line that only restates what is
    /// kept elsewhere too.
    Later,
}

fn append_line(state_dir: &Path, time: Timestamp, event: Event, sync: Sync) -> io::Result<()> {
    use std::os::unix::fs::{FileExt, OpenOptionsExt};
    let entry = Entry { v: VERSION, time: second(time), event };
    let mut line = serde_json::to_string(&entry).map_err(io::Error::other)?;
    line.push('\n');
    std::fs::create_dir_all(state_dir)?;
    let file = OpenOptions::new().read(true).append(true).create(true).mode(0o600).open(path(state_dir))?;
    let len = file.metadata()?.len();
    if len > 0 {
        let mut last = [0u8; 1];
        file.read_exact_at(&mut last, len - 1)?;
        if last[0] != b'\n' {
            line.insert(0, '\n');
        }
    }
    (&file).write_all(line.as_bytes())?;
    match sync {
        Sync::Now => file.sync_data(),
        Sync::Later => Ok(()),
    }
}

/// Records `event` at `time`; on failure prints one warning and carries on.
pub fn record_at(state_dir: &Path, time: Timestamp, event: Event) {
    if let Err(e) = append(state_dir, time, event) {
        eprintln!(
            "warning: could not record this in the local journal {}: {e} (nothing else is affected)",
            path(state_dir).display()
        );
    }
}

/// Hook for senders: records a committed drop from its signed manifest
/// `manifest_note` (as the sender signed it with `signer`'s private half),
/// with the top-level `names` and the plaintext size, when known.
#[allow(clippy::too_many_arguments)]
pub fn record_sent(
    state_dir: &Path,
    now: Timestamp,
    manifest_note: &str,
    signer: &NoteVerifierKey,
    names: Vec<String>,
    plaintext_bytes: Option<u64>,
    committed: Timestamp,
    log_index: u64,
    receipt: Option<&Path>,
) {
    // The fingerprint is of the key the signature verifies with, not of
    // whatever key this client would use now.
    let (m, key) = match open_doc::<Manifest>(manifest_note, std::slice::from_ref(signer)) {
        Ok(opened) => (opened.doc, opened.key),
        Err(e) => {
            eprintln!("warning: could not record this drop in the local journal: its manifest does not verify ({e})");
            return;
        }
    };
    record_at(
        state_dir,
        now,
        Event::Sent(Sent {
            drop: m.drop,
            recipients: m.recipients,
            agreement: m.agreement,
            names,
            plaintext_bytes,
            ciphertext_sha256: m.ciphertext_sha256,
            ciphertext_len: m.ciphertext_len,
            created: m.created,
            committed,
            expires: m.expires,
            log_index,
            receipt: receipt.map(absolute),
            manifest_key_fingerprint: Some(key.fingerprint()),
        }),
    );
}

/// The keys that signed a fetched drop's documents: the sender's key that
/// verified its manifest, and this client's key that signed the receipt.
#[derive(Clone, Copy, Debug)]
pub struct Signers<'a> {
    /// The key the manifest's signature verified with.
    pub manifest: &'a NoteVerifierKey,
    /// The key that signed the receipt.
    pub receipt: &'a NoteVerifierKey,
}

/// The top-level names of what `send` packs.
pub fn top_level_names(plan: &crate::archive::Plan) -> Vec<String> {
    plan.items.iter().filter(|i| !i.name.contains('/')).map(|i| i.name.clone()).collect()
}

/// Hook for `fetch`: records a drop fetched from `manifest`'s sender,
/// `extracted` into `dest` and acknowledged at log entry `log_index`.
#[allow(clippy::too_many_arguments)]
pub fn record_received(
    state_dir: &Path,
    now: Timestamp,
    manifest: &Manifest,
    signers: Signers<'_>,
    extracted: &crate::archive::Extracted,
    dest: &Path,
    log_index: u64,
    receipt: Option<&Path>,
) {
    record_at(
        state_dir,
        now,
        Event::Received(Received {
            drop: manifest.drop.clone(),
            from: manifest.sender.clone(),
            agreement: manifest.agreement.clone(),
            names: extracted.top_level.clone(),
            dest: absolute(dest),
            files: extracted.files as u64,
            bytes: extracted.bytes,
            log_index,
            receipt: receipt.map(absolute),
            manifest_key_fingerprint: Some(signers.manifest.fingerprint()),
            receipt_key_fingerprint: Some(signers.receipt.fingerprint()),
        }),
    );
}

/// Hook for the log check: records a verified checkpoint when its size
/// differs from the last one journalled. The line is not synced on its
/// own: the checkpoint is also kept in the log state and in every receipt
/// made under it, and the send or fetch journalled right after it syncs
/// the file (one sync per small drop instead of two).
pub fn record_checkpoint(state_dir: &Path, time: Timestamp, cp: &SignedCheckpoint) {
    match last_checkpoint(&path(state_dir)) {
        Ok(Some(last)) if last.size == cp.size && last.origin == cp.origin => {}
        Ok(_) => {
            if let Err(e) = append_line(state_dir, time, Event::Checkpoint(cp.into()), Sync::Later) {
                eprintln!(
                    "warning: could not record the checkpoint in the local journal {}: {e} (nothing else is affected)",
                    path(state_dir).display()
                );
            }
        }
        Err(e) => eprintln!(
            "warning: could not read the local journal {}: {e}; the checkpoint was not recorded there",
            path(state_dir).display()
        ),
    }
}

/// The newest checkpoint in the journal, reading backwards from the end in
/// chunks so a long journal is not read whole.
fn last_checkpoint(path: &Path) -> io::Result<Option<Checkpoint>> {
    const CHUNK: u64 = 64 * 1024;
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut pos = file.metadata()?.len();
    // The bytes after `pos` that belong to a line starting before `pos`.
    let mut carry: Vec<u8> = Vec::new();
    while pos > 0 {
        let start = pos.saturating_sub(CHUNK);
        let mut buf = vec![0u8; usize::try_from(pos - start).map_err(io::Error::other)?];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut buf)?;
        buf.extend_from_slice(&carry);
        pos = start;
        let mut lines: Vec<&[u8]> = buf.split(|b| *b == b'\n').collect();
        // Unless this is the file's start, the first piece may be part of a longer line.
        let partial = if pos > 0 { lines.remove(0).to_vec() } else { Vec::new() };
        for line in lines.iter().rev() {
            if let Line::Entry(e) = parse_line(line)
                && let Event::Checkpoint(c) = e.event
            {
                return Ok(Some(c));
            }
        }
        carry = partial;
    }
    Ok(None)
}

// ---------------------------------------------------------------------------
// Reading

/// The journal as read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Journal {
    /// The entries this version understands, in file order.
    pub entries: Vec<Entry>,
    /// Lines skipped because they are not JSON, typically the last line of a
    /// write cut short by a crash or a full disk.
    pub damaged: usize,
    /// Lines skipped because they come from a newer version (another `v`,
    /// an event or field value this version does not know).
    pub unknown: usize,
}

impl Journal {
    /// One line on what was skipped, if anything.
    pub fn skipped_note(&self) -> Option<String> {
        let mut parts = Vec::new();
        if self.damaged > 0 {
            parts.push(format!("{} damaged line(s) (a write cut short)", self.damaged));
        }
        if self.unknown > 0 {
            parts.push(format!("{} line(s) from a newer sealdrop", self.unknown));
        }
        (!parts.is_empty()).then(|| format!("note: skipped {} in the journal", parts.join(" and ")))
    }

    /// The top-level names this client sent in each drop.
    pub fn sent_names(&self) -> HashMap<DropId, Vec<String>> {
        self.sent().map(|s| (s.drop.clone(), s.names.clone())).collect()
    }

    fn sent(&self) -> impl Iterator<Item = &Sent> {
        self.entries.iter().filter_map(|e| match &e.event {
            Event::Sent(s) => Some(s),
            _ => None,
        })
    }
}

enum Line {
    Blank,
    Entry(Box<Entry>),
    Unknown,
    Damaged,
}

fn parse_line(line: &[u8]) -> Line {
    if line.iter().all(u8::is_ascii_whitespace) {
        return Line::Blank;
    }
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(line) else {
        return Line::Damaged;
    };
    if value.get("v").and_then(serde_json::Value::as_u64) != Some(u64::from(VERSION)) {
        return Line::Unknown;
    }
    match serde_json::from_value::<Entry>(value) {
        Ok(e) => Line::Entry(Box::new(e)),
        Err(_) => Line::Unknown,
    }
}

/// Parses journal text, skipping (and counting) lines it cannot use.
pub fn parse(bytes: &[u8]) -> Journal {
    let mut j = Journal::default();
    for line in bytes.split(|b| *b == b'\n') {
        match parse_line(line) {
            Line::Blank => {}
            Line::Entry(e) => j.entries.push(*e),
            Line::Unknown => j.unknown += 1,
            Line::Damaged => j.damaged += 1,
        }
    }
    j
}

/// Reads the journal in `state_dir` (empty when there is none yet).
pub fn read(state_dir: &Path) -> Result<Journal> {
    let p = path(state_dir);
    match std::fs::read(&p) {
        Ok(bytes) => Ok(parse(&bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Journal::default()),
        Err(e) => Err(Error::io(format!("cannot read the journal {}", p.display()), e)),
    }
}

/// The names this client sent in each drop, from the journal; warns and
/// gives none when the journal cannot be read.
pub fn sent_names(state_dir: &Path) -> HashMap<DropId, Vec<String>> {
    match read(state_dir) {
        Ok(j) => j.sent_names(),
        Err(e) => {
            eprintln!("warning: {}; file names are not shown", e.message);
            HashMap::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn id() -> DropId {
        DropId::random()
    }

    fn party(p: &str) -> PartyId {
        p.parse().unwrap()
    }

    const CAMDEN_KEY: &str = "SHA256:0123456789abcdef0123456789abcdef";
    const ISLINGTON_KEY: &str = "SHA256:fedcba9876543210fedcba9876543210";

    fn sent(drop: &DropId, to: &[&str], agreement: &str, names: &[&str]) -> Event {
        Event::Sent(Sent {
            drop: drop.clone(),
            recipients: to.iter().map(|p| party(p)).collect(),
            agreement: agreement.into(),
            names: names.iter().map(|n| (*n).to_owned()).collect(),
            plaintext_bytes: Some(12 * 1024),
            ciphertext_sha256: "ab".repeat(32),
            ciphertext_len: 12_500,
            created: t("2026-11-20T10:02:00Z"),
            committed: t("2026-11-20T10:02:10Z"),
            expires: t("2026-11-25T10:02:00Z"),
            log_index: 7,
            receipt: Some("/state/log/receipts/x.committed.tlog-proof".into()),
            manifest_key_fingerprint: Some(CAMDEN_KEY.into()),
        })
    }

    fn received(drop: &DropId, from: &str, agreement: &str) -> Event {
        Event::Received(Received {
            drop: drop.clone(),
            from: party(from),
            agreement: agreement.into(),
            names: vec!["fsm-camden.csv".into()],
            dest: "/home/me/incoming".into(),
            files: 1,
            bytes: 2048,
            log_index: 9,
            receipt: None,
            manifest_key_fingerprint: Some(CAMDEN_KEY.into()),
            receipt_key_fingerprint: Some(ISLINGTON_KEY.into()),
        })
    }

    fn checkpoint(size: u64) -> SignedCheckpoint {
        SignedCheckpoint {
            origin: "hub.example.org".into(),
            size,
            root: sealdrop_log::Hash([size as u8; 32]),
            note: String::new(),
        }
    }

    #[test]
    fn journal_appends_and_reads_back_every_event() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (id(), id());
        let events = vec![
            sent(&a, &["islington", "hackney"], "london-fsm", &["fsm.csv"]),
            received(&b, "camden", "london-fsm"),
            Event::Recalled(Recalled {
                drop: a.clone(),
                recalled: t("2026-11-21T09:00:00Z"),
                log_index: 11,
                receipt: None,
            }),
            Event::Checkpoint((&checkpoint(12)).into()),
        ];
        for (i, e) in events.iter().enumerate() {
            append(dir.path(), t("2026-11-20T10:02:11.4Z") + jiff::SignedDuration::from_hours(i as i64), e.clone())
                .unwrap();
        }
        let text = std::fs::read_to_string(path(dir.path())).unwrap();
        assert_eq!(text.lines().count(), 4);
        for (l, e) in text.lines().zip(&events) {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert_eq!(v["v"], 1, "{l}");
            assert_eq!(v["event"], e.name(), "{l}");
            assert!(v["time"].as_str().unwrap().ends_with(":11Z"), "time is not to the second: {l}");
        }
        let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(first["drop"], a.as_str());
        assert_eq!(first["recipients"], serde_json::json!(["islington", "hackney"]));
        assert_eq!(first["names"], serde_json::json!(["fsm.csv"]));
        assert_eq!(first["plaintext_bytes"], 12 * 1024);
        assert_eq!(first["ciphertext_len"], 12_500);
        assert_eq!(first["log_index"], 7);
        let cp: serde_json::Value = serde_json::from_str(text.lines().nth(3).unwrap()).unwrap();
        assert_eq!(cp["root"], B64.encode([12u8; 32]));

        let j = read(dir.path()).unwrap();
        assert_eq!((j.damaged, j.unknown), (0, 0));
        assert_eq!(j.entries.iter().map(|e| e.event.clone()).collect::<Vec<_>>(), events);
        assert_eq!(j.sent_names()[&a], ["fsm.csv"]);
        assert!(j.skipped_note().is_none());
    }

    #[test]
    fn journal_file_is_created_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("new-state");
        append(&state, t("2026-11-20T10:00:00Z"), received(&id(), "camden", "a")).unwrap();
        let mode = std::fs::metadata(path(&state)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn journal_skips_a_torn_last_line_and_unknown_events_and_keeps_appending() {
        let dir = tempfile::tempdir().unwrap();
        let a = id();
        append(dir.path(), t("2026-11-20T10:00:00Z"), sent(&a, &["islington"], "x", &["a.csv"])).unwrap();
        let p = path(dir.path());
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        // A newer event, a known event with an extra field, a newer version, then a torn write.
        writeln!(f, r#"{{"v":1,"event":"shredded","time":"2026-11-20T10:01:00Z","drop":"x"}}"#).unwrap();
        writeln!(
            f,
            r#"{{"v":1,"event":"recalled","time":"2026-11-20T10:02:00Z","drop":"{a}","recalled":"2026-11-20T10:02:00Z","log_index":3,"receipt":null,"why":"wrong file"}}"#
        )
        .unwrap();
        writeln!(f, r#"{{"v":2,"event":"sent","time":"2026-11-20T10:03:00Z"}}"#).unwrap();
        write!(f, r#"{{"v":1,"event":"received","time":"2026-11-2"#).unwrap();
        drop(f);

        let j = read(dir.path()).unwrap();
        assert_eq!(j.entries.len(), 2);
        assert!(matches!(&j.entries[1].event, Event::Recalled(r) if r.drop == a && r.log_index == 3));
        assert_eq!((j.damaged, j.unknown), (1, 2));
        let note = j.skipped_note().unwrap();
        assert!(note.contains("1 damaged") && note.contains("2 line(s) from a newer"), "{note}");

        // The next append closes off the torn line instead of joining it.
        append(dir.path(), t("2026-11-20T11:00:00Z"), received(&id(), "camden", "x")).unwrap();
        let j = read(dir.path()).unwrap();
        assert_eq!(j.entries.len(), 3);
        assert!(matches!(j.entries[2].event, Event::Received(_)));
        assert_eq!((j.damaged, j.unknown), (1, 2));
        assert!(std::fs::read_to_string(&p).unwrap().ends_with("}\n"));
    }

    #[test]
    fn journal_keeps_the_signing_keys_fingerprints_and_reads_older_lines_without_them() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (id(), id());
        append(dir.path(), t("2026-11-20T10:00:00Z"), sent(&a, &["islington"], "fsm", &["a.csv"])).unwrap();
        append(dir.path(), t("2026-11-20T10:01:00Z"), received(&b, "camden", "fsm")).unwrap();
        let p = path(dir.path());
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        // A line of a version before the fingerprints were kept.
        writeln!(
            f,
            r#"{{"v":1,"event":"received","time":"2026-11-20T10:02:00Z","drop":"{a}","from":"camden","agreement":"fsm","names":["x.csv"],"dest":"/in","files":1,"bytes":3,"log_index":5,"receipt":null}}"#
        )
        .unwrap();
        drop(f);
        let j = read(dir.path()).unwrap();
        assert_eq!((j.entries.len(), j.unknown, j.damaged), (3, 0, 0));
        let json = serde_json::to_value(select(&j, &Filter::default())).unwrap();
        assert_eq!(json[0]["manifest_key_fingerprint"], CAMDEN_KEY);
        assert_eq!(json[1]["manifest_key_fingerprint"], CAMDEN_KEY);
        assert_eq!(json[1]["receipt_key_fingerprint"], ISLINGTON_KEY);
        assert!(json[2]["manifest_key_fingerprint"].is_null() && json[2]["receipt_key_fingerprint"].is_null());
        let old = line(&j, &j.entries[2]);
        assert!(old.ends_with("into /in"), "no key is made up for an older line: {old}");
    }

    #[test]
    fn journal_missing_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(&dir.path().join("nothing-here")).unwrap(), Journal::default());
    }

    #[test]
    fn journal_filters_by_time_agreement_and_party() {
        let (a, b, c) = (id(), id(), id());
        let entry = |time: &str, event: Event| Entry { v: 1, time: t(time), event };
        let j = Journal {
            entries: vec![
                entry("2026-10-01T09:00:00Z", sent(&a, &["islington", "hackney"], "fsm", &["fsm.csv"])),
                entry("2026-11-02T09:00:00Z", received(&b, "camden", "sen")),
                entry("2026-11-03T09:00:00Z", Event::Checkpoint((&checkpoint(5)).into())),
                entry(
                    "2026-11-04T09:00:00Z",
                    Event::Recalled(Recalled {
                        drop: a.clone(),
                        recalled: t("2026-11-04T09:00:00Z"),
                        log_index: 4,
                        receipt: None,
                    }),
                ),
                // Recorded out of order (another process): still shown in time order.
                entry("2026-11-01T09:00:00Z", sent(&c, &["westminster"], "sen", &["a", "b", "c", "d"])),
            ],
            damaged: 0,
            unknown: 0,
        };
        let drops = |f: &Filter| {
            select(&j, f)
                .iter()
                .map(|e| match &e.event {
                    Event::Sent(s) => format!("sent {}", s.drop),
                    Event::Received(r) => format!("received {}", r.drop),
                    Event::Recalled(r) => format!("recalled {}", r.drop),
                    Event::Checkpoint(c) => format!("checkpoint {}", c.size),
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(
            drops(&Filter::default()),
            [format!("sent {a}"), format!("sent {c}"), format!("received {b}"), format!("recalled {a}")]
        );
        assert_eq!(drops(&Filter { checkpoints: true, ..Filter::default() }).len(), 5);
        assert_eq!(
            drops(&Filter { since: Some(t("2026-11-01T09:00:00Z")), ..Filter::default() }),
            [format!("sent {c}"), format!("received {b}"), format!("recalled {a}")]
        );
        // A recall is found through the drop it recalls.
        assert_eq!(
            drops(&Filter { party: Some("Hackney".into()), checkpoints: true, ..Filter::default() }),
            [format!("sent {a}"), format!("recalled {a}")]
        );
        assert_eq!(drops(&Filter { party: Some("camden".into()), ..Filter::default() }), [format!("received {b}")]);
        assert_eq!(
            drops(&Filter { agreement: Some("sen".into()), ..Filter::default() }),
            [format!("sent {c}"), format!("received {b}")]
        );
        assert!(drops(&Filter { agreement: Some("none".into()), ..Filter::default() }).is_empty());

        let lines: Vec<String> = select(&j, &Filter::default()).iter().map(|e| line(&j, e)).collect();
        assert_eq!(
            lines[0],
            format!(
                "2026-10-01T09:00:00Z  sent      {a}  to islington, hackney  under fsm  fsm.csv (12.0 KiB)  \
                 signed with key {CAMDEN_KEY}"
            )
        );
        assert!(lines[1].contains("a, b, c and 1 more (12.0 KiB)  signed with key"), "{}", lines[1]);
        assert_eq!(
            lines[2],
            format!(
                "2026-11-02T09:00:00Z  received  {b}  from camden  under sen  fsm-camden.csv (2.0 KiB)  into /home/me/incoming  \
                 manifest key {CAMDEN_KEY}  receipt key {ISLINGTON_KEY}"
            )
        );
        assert_eq!(
            lines[3],
            format!("2026-11-04T09:00:00Z  recalled  {a}  to islington, hackney  under fsm  fsm.csv  (log entry 4)")
        );
    }

    #[test]
    fn journal_records_a_checkpoint_only_when_the_size_changes() {
        let dir = tempfile::tempdir().unwrap();
        let now = t("2026-11-20T10:00:00Z");
        record_checkpoint(dir.path(), now, &checkpoint(3));
        record_checkpoint(dir.path(), now, &checkpoint(3));
        append(dir.path(), now, received(&id(), "camden", "x")).unwrap();
        record_checkpoint(dir.path(), now, &checkpoint(3));
        record_checkpoint(dir.path(), now, &checkpoint(4));
        let sizes: Vec<u64> = read(dir.path())
            .unwrap()
            .entries
            .iter()
            .filter_map(|e| match &e.event {
                Event::Checkpoint(c) => Some(c.size),
                _ => None,
            })
            .collect();
        assert_eq!(sizes, [3, 4]);
    }

    #[test]
    fn journal_finds_the_last_checkpoint_across_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let now = t("2026-11-20T10:00:00Z");
        record_checkpoint(dir.path(), now, &checkpoint(8));
        // More than one 64 KiB chunk of other lines after it.
        let names: Vec<&str> = vec!["a-rather-long-file-name-for-a-pupil-list.csv"; 40];
        for _ in 0..60 {
            append(dir.path(), now, sent(&id(), &["islington"], "x", &names)).unwrap();
        }
        assert!(std::fs::metadata(path(dir.path())).unwrap().len() > 2 * 64 * 1024);
        assert_eq!(last_checkpoint(&path(dir.path())).unwrap().map(|c| c.size), Some(8));
        record_checkpoint(dir.path(), now, &checkpoint(8));
        assert_eq!(read(dir.path()).unwrap().entries.len(), 61);
    }
}
