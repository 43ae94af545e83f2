//! Parsing entries (stateless, in the workers): a small parser of the exact form the hub
//! writes, a flat serde form, and the general `LogEntry` parse, which must all agree.

use jiff::Timestamp;
use serde::de::DeserializeOwned;
use signed_note::Signature as NoteSig;

use sealdrop_proto::drop::{Manifest, Receipt};
use sealdrop_proto::ids::{DropId, PartyId};
use sealdrop_proto::note::SignedDoc;

use crate::entry::{HubStatement, LogEntry, SignedRequest};
use crate::notes;

// Parsing (stateless, in the workers).

/// A signed note split into the signed text and its signature lines.
pub(super) struct Signed {
    /// The note; truncated to the signed text when a signature is checked.
    pub(super) note: String,
    pub(super) text_len: usize,
    pub(super) sigs: Vec<NoteSig>,
}

impl Signed {
    pub(super) fn find(&self, name: &str, id: u32) -> Option<&[u8]> {
        self.sigs.iter().find(|s| s.name() == name && s.id() == id).map(NoteSig::signature)
    }
    pub(super) fn signers(&self) -> String {
        let names: Vec<&str> = self.sigs.iter().map(NoteSig::name).collect();
        names.join(", ")
    }
}

pub(super) enum Parsed {
    Bad(String),
    Hub { statement: HubStatement, signed: Signed },
    Committed { committed: Timestamp, manifest: Box<Manifest>, signed: Signed },
    Fetched { drop: DropId, party: PartyId, fetched: Timestamp, request: Box<SignedRequest> },
    Acknowledged { acknowledged: Timestamp, receipt: Box<Receipt>, signed: Signed },
    Recalled { drop: DropId, party: PartyId, recalled: Timestamp, request: Box<SignedRequest> },
}

fn parse_doc<T: SignedDoc + DeserializeOwned>(note: String) -> Result<(T, Signed), String> {
    let (text_len, sigs) = match notes::split(&note) {
        Some(s) => (s.text.len(), s.sigs),
        None => return Err(format!("the {} is not a well-formed signed note", T::WHAT)),
    };
    let text = &note[..text_len];
    let (first, body) = text.split_once('\n').unwrap_or((text, ""));
    if first != T::TYPE {
        let found: String = first.chars().take(60).collect();
        return Err(format!("expected a {} (`{}`) but found `{found}`", T::WHAT, T::TYPE));
    }
    let doc = serde_json::from_str(body).map_err(|e| format!("the {}'s content is not valid: {e}", T::WHAT))?;
    Ok((doc, Signed { note, text_len, sigs }))
}

/// Deserializes a field that, when present, must hold a value (not `null`).
fn present<'de, D: serde::Deserializer<'de>, T: serde::Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// Every [`LogEntry`] field, flat: serde parses this without buffering the
/// entry the way an internally tagged enum must.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FlatEntry<'a> {
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
    #[serde(default, deserialize_with = "present")]
    statement: Option<String>,
    #[serde(default, deserialize_with = "present")]
    committed: Option<Timestamp>,
    #[serde(default, deserialize_with = "present")]
    manifest: Option<String>,
    #[serde(default, deserialize_with = "present")]
    drop: Option<DropId>,
    #[serde(default, deserialize_with = "present")]
    party: Option<PartyId>,
    #[serde(default, deserialize_with = "present")]
    fetched: Option<Timestamp>,
    #[serde(default, deserialize_with = "present")]
    request: Option<SignedRequest>,
    #[serde(default, deserialize_with = "present")]
    acknowledged: Option<Timestamp>,
    #[serde(default, deserialize_with = "present")]
    receipt: Option<String>,
    #[serde(default, deserialize_with = "present")]
    recalled: Option<Timestamp>,
}

/// Reads an entry in exactly the form `LogEntry::to_bytes` writes (compact
/// JSON, the tag first, fields in declaration order), or `None` for anything
/// else, which then takes the general path. It decodes what it accepts as
/// `serde_json` does: strings hold no control characters and valid UTF-8,
/// and only the notes may hold escapes, of which it knows all but `\u`
/// (an id, time or request field with a backslash, or a note with `\u`,
/// takes the general path); times, ids and numbers are parsed by the same
/// functions serde calls; nothing may follow the closing brace.
pub(super) fn canonical_entry(bytes: &[u8]) -> Option<LogEntry> {
    let mut c = Canon { b: bytes, i: 0 };
    c.lit(b"{\"type\":\"")?;
    let entry = if c.eat(b"hub\",\"statement\":") {
        LogEntry::Hub { statement: c.text()? }
    } else if c.eat(b"drop_committed\",\"committed\":") {
        let committed = c.plain()?.parse().ok()?;
        c.lit(b",\"manifest\":")?;
        LogEntry::DropCommitted { committed, manifest: c.text()? }
    } else if c.eat(b"drop_fetched\",\"drop\":") {
        let drop = c.plain()?.parse().ok()?;
        c.lit(b",\"party\":")?;
        let party = c.plain()?.parse().ok()?;
        c.lit(b",\"fetched\":")?;
        let fetched = c.plain()?.parse().ok()?;
        LogEntry::DropFetched { drop, party, fetched, request: c.request()? }
    } else if c.eat(b"drop_acknowledged\",\"acknowledged\":") {
        let acknowledged = c.plain()?.parse().ok()?;
        c.lit(b",\"receipt\":")?;
        LogEntry::DropAcknowledged { acknowledged, receipt: c.text()? }
    } else if c.eat(b"drop_recalled\",\"drop\":") {
        let drop = c.plain()?.parse().ok()?;
        c.lit(b",\"party\":")?;
        let party = c.plain()?.parse().ok()?;
        c.lit(b",\"recalled\":")?;
        let recalled = c.plain()?.parse().ok()?;
        LogEntry::DropRecalled { drop, party, recalled, request: c.request()? }
    } else {
        return None;
    };
    c.lit(b"}")?;
    (c.i == bytes.len()).then_some(entry)
}

/// How many bytes of `b` come before the first `"`, `\\` or control
/// character (or all of them), eight at a time.
fn plain_prefix(b: &[u8]) -> usize {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let mut i = 0;
    while let Some(w) = b.get(i..i + 8) {
        let x = u64::from_ne_bytes(w.try_into().expect("8 bytes"));
        // Bytes below 0x20 or equal to '"' or '\\' (the usual SWAR tests; no false negatives).
        let special = has_zero(x ^ (ONES * u64::from(b'"')))
            | has_zero(x ^ (ONES * u64::from(b'\\')))
            | (x.wrapping_sub(ONES * 0x20) & !x & HIGH);
        if special != 0 {
            break;
        }
        i += 8;
    }
    i + b[i..].iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20).unwrap_or(b.len() - i)
}

/// A cursor for [`canonical_entry`].
struct Canon<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Canon<'a> {
    /// Consumes `lit` if it comes next.
    fn eat(&mut self, lit: &[u8]) -> bool {
        let next = self.b[self.i..].starts_with(lit);
        if next {
            self.i += lit.len();
        }
        next
    }

    fn lit(&mut self, lit: &[u8]) -> Option<()> {
        self.eat(lit).then_some(())
    }

    /// A JSON string without escapes.
    fn plain(&mut self) -> Option<&'a str> {
        self.lit(b"\"")?;
        let rest = &self.b[self.i..];
        let len = plain_prefix(rest);
        if rest.get(len) != Some(&b'"') {
            return None;
        }
        self.i += len + 1;
        std::str::from_utf8(&rest[..len]).ok()
    }

    /// A JSON string, unescaped (any escape but `\u`).
    fn text(&mut self) -> Option<String> {
        self.lit(b"\"")?;
        let rest = &self.b[self.i..];
        let mut out = Vec::with_capacity(rest.len());
        let (mut run, mut j) = (0, 0);
        loop {
            j += plain_prefix(&rest[j..]);
            match *rest.get(j)? {
                b'"' => break,
                b'\\' => {
                    out.extend_from_slice(&rest[run..j]);
                    out.push(match *rest.get(j + 1)? {
                        b'"' => b'"',
                        b'\\' => b'\\',
                        b'/' => b'/',
                        b'b' => 0x08,
                        b'f' => 0x0c,
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        _ => return None,
                    });
                    j += 2;
                    run = j;
                }
                0..0x20 => return None,
                _ => j += 1,
            }
        }
        out.extend_from_slice(&rest[run..j]);
        self.i += j + 1;
        String::from_utf8(out).ok()
    }

    /// `,"request":` and a [`SignedRequest`] object, fields in order.
    fn request(&mut self) -> Option<SignedRequest> {
        self.lit(b",\"request\":{\"method\":")?;
        let method = self.plain()?.to_owned();
        self.lit(b",\"path\":")?;
        let path = self.plain()?.to_owned();
        self.lit(b",\"key\":")?;
        let key = self.plain()?.to_owned();
        self.lit(b",\"time\":")?;
        let time = self.int()?;
        self.lit(b",\"nonce\":")?;
        let nonce = self.plain()?.to_owned();
        self.lit(b",\"content\":")?;
        let content = self.plain()?.to_owned();
        self.lit(b",\"signature\":")?;
        let signature = self.plain()?.to_owned();
        self.lit(b"}")?;
        Some(SignedRequest { method, path, key, time, nonce, content, signature })
    }

    /// A JSON integer that `serde_json` reads as an `i64` (no fraction,
    /// exponent or leading zero, not `-0`).
    fn int(&mut self) -> Option<i64> {
        let negative = self.eat(b"-");
        let digits = self.b[self.i..].iter().take_while(|b| b.is_ascii_digit()).count();
        let text = std::str::from_utf8(&self.b[self.i..self.i + digits]).ok()?;
        if digits == 0 || (digits > 1 && text.starts_with('0')) {
            return None;
        }
        self.i += digits;
        let magnitude: u64 = text.parse().ok()?;
        match negative {
            // serde_json reads `-0` as a float, which no i64 accepts.
            true if magnitude == 0 => None,
            true => 0i64.checked_sub_unsigned(magnitude),
            false => i64::try_from(magnitude).ok(),
        }
    }
}

/// A faster [`LogEntry::from_bytes`] for well-formed entries: `Some` only
/// when the entry has exactly one variant's fields, so it accepts nothing
/// `LogEntry::from_bytes` refuses; on `None` the caller asks `LogEntry`.
/// Entries in the exact form `LogEntry::to_bytes` writes take the faster
/// [`canonical_entry`] path.
pub(super) fn fast_entry(bytes: &[u8]) -> Option<LogEntry> {
    if bytes.len() > crate::entry::MAX_ENTRY_BYTES {
        return None;
    }
    if let Some(e) = canonical_entry(bytes) {
        return Some(e);
    }
    let f: FlatEntry = serde_json::from_slice(bytes).ok()?;
    let FlatEntry {
        kind,
        statement,
        committed,
        manifest,
        drop,
        party,
        fetched,
        request,
        acknowledged,
        receipt,
        recalled,
    } = f;
    let fields = |n: usize| {
        [
            statement.is_some(),
            committed.is_some(),
            manifest.is_some(),
            drop.is_some(),
            party.is_some(),
            fetched.is_some(),
            request.is_some(),
            acknowledged.is_some(),
            receipt.is_some(),
            recalled.is_some(),
        ]
        .iter()
        .filter(|p| **p)
        .count()
            == n
    };
    match &*kind {
        "hub" if fields(1) => Some(LogEntry::Hub { statement: statement? }),
        "drop_committed" if fields(2) => Some(LogEntry::DropCommitted { committed: committed?, manifest: manifest? }),
        "drop_fetched" if fields(4) => {
            Some(LogEntry::DropFetched { drop: drop?, party: party?, fetched: fetched?, request: request? })
        }
        "drop_acknowledged" if fields(2) => {
            Some(LogEntry::DropAcknowledged { acknowledged: acknowledged?, receipt: receipt? })
        }
        "drop_recalled" if fields(4) => {
            Some(LogEntry::DropRecalled { drop: drop?, party: party?, recalled: recalled?, request: request? })
        }
        _ => None,
    }
}

/// What the audit's own entry parsers make of `bytes`: [`canonical_entry`],
/// [`fast_entry`], and whether the full parse (the entry and the signed
/// document inside it) accepts it. Not a stable API: it exists for the
/// differential fuzz target (`fuzz/fuzz_targets/log_entry.rs`) and its
/// corpus regression test, which check the fast parsers against
/// [`LogEntry::from_bytes`].
#[doc(hidden)]
pub fn fuzz_parsers(bytes: &[u8]) -> (Option<LogEntry>, Option<LogEntry>, Result<(), String>) {
    let full = match parse_entry(bytes) {
        Parsed::Bad(why) => Err(why),
        _ => Ok(()),
    };
    (canonical_entry(bytes), fast_entry(bytes), full)
}

pub(super) fn parse_entry(bytes: &[u8]) -> Parsed {
    let entry = match fast_entry(bytes).map_or_else(|| LogEntry::from_bytes(bytes), Ok) {
        Ok(e) => e,
        Err(e) => return Parsed::Bad(e.to_string()),
    };
    let parsed = match entry {
        LogEntry::Hub { statement } => {
            parse_doc::<HubStatement>(statement).map(|(statement, signed)| Parsed::Hub { statement, signed })
        }
        LogEntry::DropCommitted { committed, manifest } => parse_doc::<Manifest>(manifest)
            .map(|(m, signed)| Parsed::Committed { committed, manifest: Box::new(m), signed }),
        LogEntry::DropFetched { drop, party, fetched, request } => {
            Ok(Parsed::Fetched { drop, party, fetched, request: Box::new(request) })
        }
        LogEntry::DropAcknowledged { acknowledged, receipt } => parse_doc::<Receipt>(receipt)
            .map(|(r, signed)| Parsed::Acknowledged { acknowledged, receipt: Box::new(r), signed }),
        LogEntry::DropRecalled { drop, party, recalled, request } => {
            Ok(Parsed::Recalled { drop, party, recalled, request: Box::new(request) })
        }
    };
    parsed.unwrap_or_else(Parsed::Bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_entry_agrees_with_log_entry() {
        let log = crate::testlog::generate(3, 12);
        for e in &log.entries {
            assert_eq!(fast_entry(e), Some(LogEntry::from_bytes(e).unwrap()));
        }
        let commit = String::from_utf8(log.entries[1].clone()).unwrap();
        assert!(commit.starts_with("{\"type\":\"drop_committed\","));
        let tampered = [
            commit.replacen("{", "{\"statement\":\"x\",", 1),
            commit.replacen("{", "{\"statement\":null,", 1),
            commit.replacen("{", "{\"extra\":1,", 1),
            commit.replacen("\"drop_committed\"", "\"hub\"", 1),
            commit.replacen("\"drop_committed\"", "\"drop_fetched\"", 1),
            commit.replacen("\"drop_committed\"", "\"nope\"", 1),
            commit.replacen("\"drop_committed\"", "1", 1),
            commit.replacen("\"committed\":", "\"committed\":null,\"x\":", 1),
            commit.replacen("{", "{\"type\":\"hub\",", 1),
            commit.replacen("{", "{\"committed\":\"2026-01-01T00:00:00Z\",", 1),
            format!("{commit} "),
            format!("{commit}x"),
            "{\"type\":\"hub\"}".into(),
            "{\"type\":\"hub\",\"statement\":null}".into(),
            "[]".into(),
        ];
        // A recall, in the canonical form and in forms only the flat path reads.
        let (drop, sender) = (crate::testlog::drop_id(&[7; 16], 1), log.keys.party(0).clone());
        let recall = log.keys.recall_entry(&drop, &sender, crate::testlog::time_of(9));
        assert!(canonical_entry(&recall).is_some());
        let recall = String::from_utf8(recall).unwrap();
        assert!(recall.starts_with("{\"type\":\"drop_recalled\","), "{recall}");
        for (i, valid) in [
            recall.clone(),
            recall.replacen("\"type\":\"drop_recalled\",", "\"type\": \"drop_recalled\",", 1),
            recall.replacen("{\"type\":\"drop_recalled\",", "{", 1).replacen("}}", "},\"type\":\"drop_recalled\"}", 1),
        ]
        .iter()
        .enumerate()
        {
            assert_eq!(canonical_entry(valid.as_bytes()).is_some(), i == 0, "{valid}");
            assert!(LogEntry::from_bytes(valid.as_bytes()).is_ok(), "{valid}");
            assert_eq!(fast_entry(valid.as_bytes()), Some(LogEntry::from_bytes(valid.as_bytes()).unwrap()), "{valid}");
        }
        let tampered_recalls = [
            recall.replacen("\"recalled\":", "\"fetched\":", 1),
            recall.replacen("\"drop_recalled\"", "\"drop_fetched\"", 1),
            recall.replacen("\"drop_recalled\"", "\"drop_acknowledged\"", 1),
            recall.replacen("{", "{\"receipt\":\"x\",", 1),
            recall.replacen("{", "{\"fetched\":\"2026-01-01T00:00:00Z\",", 1),
            recall.replacen(&format!("\"party\":\"{sender}\","), "", 1),
            recall.replacen("\"recalled\":\"", "\"recalled\":\"x", 1),
        ];
        for t in tampered.iter().chain(&tampered_recalls) {
            let fast = fast_entry(t.as_bytes());
            let slow = LogEntry::from_bytes(t.as_bytes()).ok();
            assert!(fast.is_none() || fast == slow, "{t}");
            if slow.is_none() {
                assert!(fast.is_none(), "{t}");
            }
        }
    }

    /// `canonical_entry` accepts only what `LogEntry::from_bytes` accepts,
    /// and reads it the same way.
    #[track_caller]
    fn assert_canonical_agrees(bytes: &[u8]) {
        let fast = canonical_entry(bytes);
        let slow = LogEntry::from_bytes(bytes).ok();
        assert!(fast.is_none() || fast == slow, "{}", String::from_utf8_lossy(bytes));
    }

    #[test]
    fn canonical_entry_agrees_with_log_entry() {
        let log = crate::testlog::generate(33, 120);
        for e in &log.entries {
            assert_eq!(canonical_entry(e), Some(LogEntry::from_bytes(e).unwrap()));
        }
        let text = |i: usize| String::from_utf8(log.entries[i].clone()).unwrap();
        let (hub, commit, fetch) = (text(0), text(1), text(2));
        let recalls: Vec<String> =
            (0..log.entries.len()).map(text).filter(|e| e.starts_with("{\"type\":\"drop_recalled\",")).collect();
        assert_eq!(recalls.len(), 1, "drop 33 is recalled");
        let recall = &recalls[0];
        assert!(fetch.contains("\"time\":"), "{fetch}");
        let time = fetch.split("\"time\":").nth(1).unwrap().split(',').next().unwrap().to_owned();
        // Valid but not canonical: the general path reads these.
        for valid in [
            commit.replacen("\\\"drop\\\"", "\\u0022drop\\u0022", 1),
            commit.replacen("\"type\":\"drop_committed\",", "\"type\": \"drop_committed\",", 1),
            format!("{commit} "),
            fetch.replacen("\"GET\"", "\"G\\u0045T\"", 1),
            fetch.replacen("\"GET\"", "\"G\\/ET\"", 1),
            recall.replacen("\"POST\"", "\"P\\u004fST\"", 1),
            recall.replacen("\"drop_recalled\",", "\"drop_recalled\" ,", 1),
        ] {
            assert!(canonical_entry(valid.as_bytes()).is_none(), "{valid}");
            assert!(LogEntry::from_bytes(valid.as_bytes()).is_ok(), "{valid}");
        }
        // Escapes the canonical path decodes itself.
        for esc in ["\\/", "\\b", "\\f", "\\r", "\\t", "\\\\", "\\\"", "\\n", "é", "\u{2014}", "\u{7f}"] {
            let e = hub.replacen("sealdrop/hub-statement/v1", &format!("sealdrop/hub-{esc}-statement/v1"), 1);
            assert!(canonical_entry(e.as_bytes()).is_some(), "{e}");
            assert_canonical_agrees(e.as_bytes());
        }
        let mut cases: Vec<Vec<u8>> = Vec::new();
        for t in [
            "0",
            "-0",
            "-1",
            "01",
            "-01",
            "1.0",
            "1e3",
            "9223372036854775807",
            "9223372036854775808",
            "-9223372036854775808",
            "-9223372036854775809",
            "18446744073709551616",
            "",
            "-",
            "+1",
            "\"1\"",
        ] {
            cases.push(fetch.replacen(&format!("\"time\":{time},"), &format!("\"time\":{t},"), 1).into_bytes());
            let recall_time = recall.split("\"time\":").nth(1).unwrap().split(',').next().unwrap();
            cases.push(recall.replacen(&format!("\"time\":{recall_time},"), &format!("\"time\":{t},"), 1).into_bytes());
        }
        for (from, to) in [
            ("\"hub\"", "\"Hub\""),
            ("\"statement\"", "\"statements\""),
            ("sealdrop/", "sealdrop\\u0000/"),
            ("sealdrop/", "sealdrop\\x/"),
            ("sealdrop/", "sealdrop\t/"),
            ("sealdrop/", "sealdrop\\"),
            ("\"}", "\"} "),
            ("\"}", "\"}}"),
            ("\"}", "\""),
            ("\"}", "\",\"statement\":\"x\"}"),
        ] {
            cases.push(hub.replacen(from, to, 1).into_bytes());
        }
        cases.push(b"{\"type\":\"hub\",\"statement\":\"\xff\"}".to_vec());
        cases.push(b"{\"type\":\"hub\",\"statement\":\"\xc3\"}".to_vec());
        cases.push(b"{\"type\":\"hub\",\"statement\":\"\xc3\xa9\"}".to_vec());
        cases.push(commit.replacen("\"committed\":\"", "\"committed\":\"x", 1).into_bytes());
        cases.push(fetch.replacen("\"drop\":\"d-", "\"drop\":\"D-", 1).into_bytes());
        cases.push(fetch.replacen("\"party\":\"", "\"party\":\"-", 1).into_bytes());
        cases.push(recall.replacen("\"recalled\":\"", "\"recalled\":\"x", 1).into_bytes());
        cases.push(recall.replacen("\"recalled\":", "\"fetched\":", 1).into_bytes());
        cases.push(recall.replacen("\"drop_recalled\"", "\"drop_fetched\"", 1).into_bytes());
        cases.push(recall.replacen("\"request\":{", "\"request\":{\"x\":1,", 1).into_bytes());
        for c in &cases {
            assert_canonical_agrees(c);
        }
        // Random damage, with bytes that matter to JSON.
        let interesting = b"\"\\/bfnrtu0123456789-+.eE :,{}[]\x00\x1f\x7f\xc3\xa9\xe2\x80\x94\xffaz";
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        for _ in 0..20_000 {
            let mut e = log.entries[next(log.entries.len())].clone();
            for _ in 0..1 + next(3) {
                let at = next(e.len());
                let b = interesting[next(interesting.len())];
                match next(3) {
                    0 => e[at] = b,
                    1 => e.insert(at, b),
                    _ => {
                        e.remove(at);
                    }
                }
            }
            assert_canonical_agrees(&e);
        }
    }
}
