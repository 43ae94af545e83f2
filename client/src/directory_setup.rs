//! The coordinator's first afternoon: `directory new` (a directory from the
//! members' key cards), `directory set-hub` (list the hub's log key once the
//! hub exists), `directory fingerprint` (what to compare by phone), and the
//! checks every directory edit and `directory sign` apply, with errors that
//! name the field (`parties[2].members[0].age_recipient: ...`), the same
//! rules `docs/directory.schema.json` documents.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use sealdrop_proto::directory::{Agreement, Directory, HubListing, Party, RevokedKey};
use sealdrop_proto::ids::{PartyId, key_name};
use sealdrop_proto::keys::{MemberPublicKey, MemberSecretKey, NoteSigningKey, NoteVerifierKey};

use crate::error::{Error, ErrorCode, Kind, Result};
use crate::fsutil::{write_atomic, write_new_atomic};

/// The London local authorities (name, GSS code, DfE LA number), the list
/// `keys-example/directory.json` was built from: `directory new` takes a
/// London party's display name and aliases from it.
const LONDON: &str = include_str!("../../keys-example/london-local-authorities.csv");

/// A problem in the coordinator's unsigned directory file.
pub fn invalid(input: &Path, message: impl std::fmt::Display) -> Error {
    Error::with_kind(
        Kind::Input,
        ErrorCode::DirectoryInvalid,
        format!(
            "{}: {message}; fix the file (docs/directory.schema.json describes every field) and run the command again",
            input.display()
        ),
    )
}

/// Reads a directory from JSON, field by field: an unknown field, a missing
/// one or a value of the wrong form is named by its path (`parties[2].members[0].signing_key`).
/// Then checks what each field must agree with ([`check`]).
pub fn parse(input: &Path, value: serde_json::Value) -> Result<Directory> {
    let dir: Directory = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." { invalid(input, inner) } else { invalid(input, format!("{path}: {inner}")) }
    })?;
    check(&dir).map_err(|e| invalid(input, e))?;
    Ok(dir)
}

/// What each field must agree with, named by its path; then the rules that
/// span fields ([`Directory::validate`]: unique ids, names, aliases and keys).
pub fn check(d: &Directory) -> std::result::Result<(), String> {
    for (i, p) in d.parties.iter().enumerate() {
        let at = format!("parties[{i}]");
        if p.name.trim().is_empty() {
            return Err(format!("{at}.name: party `{}` needs a display name, e.g. \"Camden\"", p.id));
        }
        if let Some(k) = p.aliases.iter().position(|a| a.trim().is_empty()) {
            return Err(format!("{at}.aliases[{k}]: an alias must not be empty"));
        }
        for (j, m) in p.members.iter().enumerate() {
            let at = format!("{at}.members[{j}]");
            if let Err(e) = m.age_recipient.parse::<sealdrop_proto::age_keys::AgeRecipient>() {
                return Err(format!("{at}.age_recipient: {e}; copy it from the member's key card"));
            }
            let name = key_name(&p.id, &m.member);
            if m.signing_key.is_cosigner() {
                return Err(format!(
                    "{at}.signing_key: {} is a witness (cosignature) key, not a member's Ed25519 key; copy `signing_key` from the member's key card",
                    m.signing_key.name()
                ));
            }
            if m.signing_key.name() != name {
                return Err(format!(
                    "{at}.signing_key: the key is named {:?}, but it is listed as {name}; a member key must be named `<party>/<member>` (copy the card as it is)",
                    m.signing_key.name()
                ));
            }
        }
        for (k, w) in p.witness_keys.iter().enumerate() {
            if !w.is_cosigner() {
                return Err(format!(
                    "{at}.witness_keys[{k}]: {} is not a witness (cosignature) key; give the key `sealdrop witness keygen` printed",
                    w.name()
                ));
            }
        }
        for (k, r) in p.revoked.iter().enumerate() {
            let name = key_name(&p.id, &r.member);
            if r.signing_key.name() != name {
                return Err(format!(
                    "{at}.revoked[{k}].signing_key: the key is named {:?}, but it is listed as revoked for {name}",
                    r.signing_key.name()
                ));
            }
        }
    }
    if let Some(h) = &d.hub {
        if h.log_key.is_cosigner() {
            return Err("hub.log_key: this is a witness key, not the hub's log key; give what `sealdrop-hub verifier-key` prints".into());
        }
        if h.log_key.name() != h.origin {
            return Err(format!(
                "hub.log_key: the key is named {:?}, but hub.origin is {:?}; they must be the same (the origin the hub was initialised with)",
                h.log_key.name(),
                h.origin
            ));
        }
    }
    for (i, a) in d.agreements.iter().enumerate() {
        let at = format!("agreements[{i}]");
        if a.id.parse::<PartyId>().is_err() {
            return Err(format!("{at}.id: {:?} must be a lowercase slug such as `london-fsm-ehc`", a.id));
        }
        for (k, p) in a.parties.iter().enumerate() {
            if d.party(p).is_none() {
                return Err(format!("{at}.parties[{k}]: there is no party `{p}` in `parties`"));
            }
        }
        if a.valid_from >= a.valid_until {
            return Err(format!("{at}.valid_until: {} is not after valid_from {}", a.valid_until, a.valid_from));
        }
        if a.max_expiry_days == 0 {
            return Err(format!("{at}.max_expiry_days: must be at least 1"));
        }
    }
    d.validate().map_err(|e| e.to_string())
}

/// The `issued_at` of an edited or signed version: now, but never before
/// the time the version it follows carries, so the times of the versions
/// grow with their serials even when a clock is behind.
pub fn issued_at(now: Timestamp, before: Option<&serde_json::Value>) -> Timestamp {
    let now = sealdrop_proto::clock::whole_second(now);
    let before = before
        .and_then(|v| v.get("issued_at"))
        .and_then(serde_json::Value::as_str)
        .and_then(|s| s.parse::<Timestamp>().ok());
    match before {
        Some(b) if b > now => b,
        _ => now,
    }
}

/// The starting agreement `directory new` writes.
#[derive(Clone, Debug)]
pub struct NewAgreement {
    /// Its id slug.
    pub id: String,
    /// Short title (default: the id).
    pub title: Option<String>,
    /// What the data may be used for.
    pub purpose: String,
    /// The lawful basis.
    pub lawful_basis: String,
    /// Sharing starts (default: now).
    pub valid_from: Option<Timestamp>,
    /// Sharing ends (default: a year after `valid_from`).
    pub valid_until: Option<Timestamp>,
    /// The longest a drop may wait on the hub.
    pub max_expiry_days: u32,
    /// Every member key must be post-quantum ([`Agreement::require_pq`]).
    pub require_pq: bool,
}

/// What `directory new` wrote.
#[derive(Debug)]
pub struct Created {
    /// The directory.
    pub directory: Directory,
    /// Parties whose display name is only their id (not in the reference
    /// list): the coordinator should fill in the name and aliases.
    pub unnamed: Vec<PartyId>,
    /// The files read, in order.
    pub cards: Vec<PathBuf>,
}

/// One row of a reference list of parties: display name and aliases.
type Reference = BTreeMap<PartyId, (String, Vec<String>)>;

/// Reads a reference list in the shape of `keys-example/london-local-authorities.csv`:
/// a header, then `name,gss_code,dfe_la_number[,...]`; the party id is the
/// name in lowercase with hyphens (`Barking and Dagenham` -> `barking-and-dagenham`).
fn reference(text: &str, what: &str) -> Result<Reference> {
    let mut out = Reference::new();
    let mut rows = csv::ReaderBuilder::new().has_headers(true).flexible(true).from_reader(text.as_bytes());
    for (n, row) in rows.records().enumerate() {
        let row = row.map_err(|e| {
            Error::new(
                ErrorCode::BadReference,
                format!("{what}: row {}: {e}; give a CSV file with a header row", n + 2),
            )
        })?;
        let name = row.get(0).unwrap_or("").trim();
        if name.is_empty() {
            continue;
        }
        let id = slug(name)
            .parse::<PartyId>()
            .map_err(|e| Error::new(ErrorCode::BadReference, format!("{what}: row {}: {e}", n + 2)))?;
        let aliases = row.iter().skip(1).take(2).map(str::trim).filter(|a| !a.is_empty()).map(str::to_owned).collect();
        out.insert(id, (name.to_owned(), aliases));
    }
    Ok(out)
}

/// A display name as a party id: lowercase, runs of other characters as one hyphen.
fn slug(name: &str) -> String {
    let mut s = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            s.push(c.to_ascii_lowercase());
        } else if !s.is_empty() && !s.ends_with('-') {
            s.push('-');
        }
    }
    s.trim_end_matches('-').to_owned()
}

/// A party id as a display name until the coordinator gives one: `kent` -> `Kent`.
fn title_case(id: &PartyId) -> String {
    id.as_str()
        .split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next().map(|f| f.to_uppercase().chain(c).collect::<String>()).unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// What one file in the cards folder holds.
enum Card {
    Member(MemberPublicKey),
    Witness(PartyId, NoteVerifierKey),
}

fn read_card(path: &Path) -> Result<Card> {
    let bad = |why: String| {
        Error::new(
            ErrorCode::BadCard,
            format!(
                "{}: {why}; the folder must hold only the JSON key cards `sealdrop keygen` printed and the witness keys `sealdrop witness keygen` printed, one a file",
                path.display()
            ),
        )
    };
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
    let text = text.trim();
    if text.starts_with('{') {
        let card: MemberPublicKey =
            serde_json::from_str(text).map_err(|e| bad(format!("not a public key card: {e}")))?;
        card.validate().map_err(|e| bad(e.to_string()))?;
        return Ok(Card::Member(card));
    }
    let key: NoteVerifierKey = text.parse().map_err(|e| bad(format!("neither a key card nor a witness key: {e}")))?;
    let party = key
        .name()
        .strip_suffix(".witness")
        .filter(|_| key.is_cosigner())
        .and_then(|p| p.parse::<PartyId>().ok())
        .ok_or_else(|| bad(format!("{} is not a witness key named `<party>.witness`", key.name())))?;
    Ok(Card::Witness(party, key))
}

/// Builds a directory (serial 1, issued now) from every key card in
/// `cards`: one party per party id on the cards, its members from its
/// cards, its witness keys from witness key files; display names and
/// aliases from `reference` (CSV) or, for London party ids, the built-in
/// London list; one agreement between all the parties. Writes it to `out`,
/// which must not exist.
pub fn new_directory(
    cards: &Path,
    reference_csv: Option<&Path>,
    agreement: &NewAgreement,
    now: Timestamp,
    out: &Path,
) -> Result<Created> {
    if out.exists() {
        return Err(Error::new(
            ErrorCode::OutputExists,
            format!(
                "{} already exists; `directory new` never overwrites a directory: choose another name, or edit the existing one with `directory add-member`",
                out.display()
            ),
        ));
    }
    let mut refs = reference(LONDON, "the London list")?;
    if let Some(path) = reference_csv {
        let text =
            std::fs::read_to_string(path).map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
        refs.extend(reference(&text, &path.display().to_string())?);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(cards)
        .map_err(|e| Error::io(format!("cannot read the folder {}", cards.display()), e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
        .collect();
    files.sort();
    let mut parties: BTreeMap<PartyId, Party> = BTreeMap::new();
    let mut witnesses: Vec<(PartyId, NoteVerifierKey, PathBuf)> = vec![];
    let mut seen: BTreeMap<String, PathBuf> = BTreeMap::new();
    for f in &files {
        match read_card(f)? {
            Card::Member(card) => {
                let name = card.signing_key.name().to_owned();
                if let Some(first) = seen.insert(name.clone(), f.clone()) {
                    return Err(Error::new(
                        ErrorCode::MemberExists,
                        format!(
                            "{} and {} are both cards for {name}; a member has one key: keep the newer card only",
                            first.display(),
                            f.display()
                        ),
                    ));
                }
                let id = card.party.clone();
                parties
                    .entry(id.clone())
                    .and_modify(|p| p.members.push(card.clone().into()))
                    .or_insert_with(|| Party::with_member(&id.to_string(), card));
            }
            Card::Witness(party, key) => witnesses.push((party, key, f.clone())),
        }
    }
    if parties.is_empty() {
        return Err(Error::new(
            ErrorCode::NoCards,
            format!(
                "{} holds no key cards; save each member's card (the JSON line `sealdrop keygen` printed) there as <party>-<member>.json",
                cards.display()
            ),
        ));
    }
    for (party, key, f) in witnesses {
        let p = parties.get_mut(&party).ok_or_else(|| {
            Error::new(
                ErrorCode::BadCard,
                format!("{}: a witness key for `{party}`, which has no member key card in the folder; add its members' cards", f.display()),
            )
        })?;
        p.witness_keys.push(key);
    }
    let mut unnamed = vec![];
    for (id, p) in &mut parties {
        match refs.get(id) {
            Some((name, aliases)) => {
                p.name = name.clone();
                p.aliases = aliases.clone();
            }
            None => {
                p.name = title_case(id);
                unnamed.push(id.clone());
            }
        }
    }
    // The reference list's order (London's: the City, then the boroughs A-Z), then the others by id.
    let order: Vec<&PartyId> = refs.keys().collect();
    let mut parties: Vec<Party> = parties.into_values().collect();
    parties.sort_by_key(|p| (order.iter().position(|o| **o == p.id).unwrap_or(usize::MAX), p.id.clone()));

    let now = sealdrop_proto::clock::whole_second(now);
    let valid_from = agreement.valid_from.unwrap_or(now);
    let valid_until = match agreement.valid_until {
        Some(t) => t,
        None => valid_from
            .to_zoned_datetime(jiff::tz::TimeZone::UTC)
            .checked_add(jiff::Span::new().years(1))
            .map(|z| z.timestamp())
            .map_err(|e| {
                Error::new(ErrorCode::BadDate, format!("a year after {valid_from}: {e}; give --valid-until"))
            })?,
    };
    let directory = Directory {
        serial: 1,
        issued_at: now,
        hub: None,
        agreements: vec![Agreement {
            id: agreement.id.clone(),
            title: agreement.title.clone().unwrap_or_else(|| agreement.id.clone()),
            purpose: agreement.purpose.clone(),
            lawful_basis: agreement.lawful_basis.clone(),
            parties: parties.iter().map(|p| p.id.clone()).collect(),
            max_expiry_days: agreement.max_expiry_days,
            valid_from,
            valid_until,
            require_pq: agreement.require_pq,
        }],
        parties,
    };
    check(&directory).map_err(|e| {
        Error::with_kind(Kind::Input, ErrorCode::DirectoryInvalid, format!("the directory made from the cards: {e}"))
    })?;
    let mut text = serde_json::to_string_pretty(&directory)
        .map_err(|e| Error::with_kind(Kind::Input, ErrorCode::Internal, e.to_string()))?;
    text.push('\n');
    write_new_atomic(out, text.as_bytes(), false)?;
    Ok(Created { directory, unnamed, cards: files })
}

/// Reads a key given as text or as a file holding it.
fn key_text(arg: &str) -> Result<String> {
    let path = Path::new(arg);
    if arg.contains('+') && !path.exists() {
        return Ok(arg.trim().to_owned());
    }
    std::fs::read_to_string(path).map(|t| t.trim().to_owned()).map_err(|e| Error::io(format!("cannot read {arg}"), e))
}

/// Lists the hub (its origin and log key) in the coordinator's unsigned
/// directory file; raises the serial. The origin defaults to the log key's
/// name (they must be the same).
pub fn set_hub(input: &Path, origin: Option<&str>, log_key: &str) -> Result<DirectoryEdit> {
    let key: NoteVerifierKey = key_text(log_key)?.parse().map_err(|e| {
        Error::new(
            ErrorCode::KeyInvalid,
            format!("--log-key {log_key}: {e}; give what `sealdrop-hub verifier-key --data DIR` prints (or a file holding it)"),
        )
    })?;
    if key.is_cosigner() {
        return Err(Error::new(
            ErrorCode::KeyInvalid,
            format!(
                "--log-key {}: a witness key, not the hub's log key; give what `sealdrop-hub verifier-key` prints",
                key.name()
            ),
        ));
    }
    let origin = origin.unwrap_or(key.name()).to_owned();
    if origin != key.name() {
        return Err(Error::new(
            ErrorCode::KeyInvalid,
            format!(
                "the log key is named {:?} but --origin is {origin:?}; the hub signs its log under its origin: give the origin `sealdrop-hub init --origin` was given, or leave --origin out",
                key.name()
            ),
        ));
    }
    let listing = HubListing { origin, log_key: key };
    edit(input, |after| {
        after["hub"] = serde_json::to_value(&listing).map_err(|e| invalid(input, e))?;
        Ok(())
    })
}

/// A key's fingerprint and what it is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Fingerprint {
    /// What the file holds: `member key card`, `authority or log public key`, ...
    pub kind: &'static str,
    /// The key's name (`camden/data-team`, `london-isa-coordinator`, `hub.example.org`, ...).
    pub name: String,
    /// `SHA256:` and 32 hex digits, as `key show`, `keygen` and the IG report show it.
    pub fingerprint: String,
}

/// The fingerprint of the key in `file`: a member key card (JSON), a public
/// key in signed-note form (`authority.pub`, a witness key, the hub's log
/// key), or the public part of a secret key file (a member key, an
/// authority or witness key, the hub's `log.key`).
pub fn fingerprint(file: &Path) -> Result<Fingerprint> {
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(file).map_err(|e| Error::io(format!("cannot read {}", file.display()), e))?,
    );
    let t = text.trim();
    let of = |kind, k: &NoteVerifierKey| Fingerprint { kind, name: k.name().to_owned(), fingerprint: k.fingerprint() };
    if t.starts_with('{') {
        if let Ok(card) = serde_json::from_str::<MemberPublicKey>(t) {
            return Ok(of("member key card", &card.signing_key));
        }
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(t)
            && let Some(card) = v.get("card").and_then(|c| serde_json::from_value::<MemberPublicKey>(c.clone()).ok())
        {
            return Ok(of("member key card", &card.signing_key));
        }
    } else if t.starts_with(sealdrop_proto::keys::MEMBER_KEY_HEADER) {
        if let Ok(key) = MemberSecretKey::from_file_text(t) {
            return Ok(of("member secret key (its public part)", &key.public().signing_key));
        }
    } else if t.starts_with("PRIVATE+KEY+") {
        if let Ok(key) = NoteSigningKey::from_note_text(t) {
            let kind = if key.name().ends_with(".witness") {
                "witness secret key (its public part)"
            } else {
                "authority or log secret key (its public part)"
            };
            return Ok(of(kind, &key.verifier()));
        }
    } else if let Ok(key) = t.parse::<NoteVerifierKey>() {
        let kind = if key.is_cosigner() { "witness public key" } else { "authority, hub log or member public key" };
        return Ok(of(kind, &key));
    }
    Err(Error::new(
        ErrorCode::KeyInvalid,
        format!(
            "{} holds no key sealdrop knows: give a key card (JSON), a public key such as authority.pub or hub-log.pub, or a secret key file",
            file.display()
        ),
    ))
}

/// What [`crate::directory_cmd::revoke`] or [`crate::directory_cmd::add_member`] changed in the coordinator's directory file.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct DirectoryEdit {
    /// The serial before.
    pub old_serial: u64,
    /// The serial written (one more).
    pub new_serial: u64,
    /// The revocation added, if any.
    pub revoked: Option<RevokedKey>,
    /// The key name added as a member, if any.
    pub added: Option<String>,
}

/// Reads the coordinator's unsigned directory JSON.
pub fn read_unsigned(input: &Path) -> Result<serde_json::Value> {
    let text = std::fs::read_to_string(input).map_err(|e| Error::io(format!("cannot read {}", input.display()), e))?;
    serde_json::from_str(&text).map_err(|e| invalid(input, format!("not valid JSON: {e}")))
}

/// Raises the serial, sets `issued_at` to now (never before the original's),
/// checks the result is a consistent directory that may follow the
/// original (so a mistake shows now, not when signing), and replaces the
/// file atomically.
pub fn write_unsigned(input: &Path, before: &serde_json::Value, mut after: serde_json::Value) -> Result<(u64, u64)> {
    let old_serial =
        before.get("serial").and_then(serde_json::Value::as_u64).ok_or_else(|| invalid(input, "serial: missing"))?;
    let new_serial = old_serial + 1;
    after["serial"] = new_serial.into();
    // The test clock (SEALDROP_TEST_CLOCK) too, as everywhere else.
    let now = sealdrop_proto::clock::clock_from_env().now();
    after["issued_at"] = issued_at(now, Some(before)).to_string().into();
    let parse = |v: &serde_json::Value| -> Result<Directory> {
        let mut v = v.clone();
        if let Some(obj) = v.as_object_mut() {
            obj.entry("issued_at").or_insert_with(|| serde_json::Value::String(Timestamp::UNIX_EPOCH.to_string()));
        }
        parse(input, v)
    };
    parse(before)?.check_successor(&parse(&after)?).map_err(|e| invalid(input, e))?;
    let mut text = serde_json::to_string_pretty(&after).map_err(|e| invalid(input, e))?;
    text.push('\n');
    write_atomic(input, text.as_bytes(), false)?;
    Ok((old_serial, new_serial))
}

/// Applies `change` to the coordinator's unsigned directory file, then
/// raises the serial and writes it back as [`write_unsigned`] does.
pub fn edit(input: &Path, change: impl FnOnce(&mut serde_json::Value) -> Result<()>) -> Result<DirectoryEdit> {
    let before = read_unsigned(input)?;
    let mut after = before.clone();
    change(&mut after)?;
    let (old_serial, new_serial) = write_unsigned(input, &before, after)?;
    Ok(DirectoryEdit { old_serial, new_serial, revoked: None, added: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_london_list_names_every_borough_with_its_codes() {
        let r = reference(LONDON, "london").unwrap();
        assert_eq!(r.len(), 33);
        let camden: PartyId = "camden".parse().unwrap();
        assert_eq!(r[&camden], ("Camden".to_owned(), vec!["E09000007".to_owned(), "202".to_owned()]));
        assert!(r.contains_key(&"hammersmith-and-fulham".parse::<PartyId>().unwrap()));
        assert!(r.contains_key(&"city-of-london".parse::<PartyId>().unwrap()));
    }

    #[test]
    fn issued_at_never_goes_back() {
        let old: Timestamp = "2030-01-01T00:00:00Z".parse().unwrap();
        let now: Timestamp = "2026-11-26T10:00:00.5Z".parse().unwrap();
        let before = serde_json::json!({"issued_at": old.to_string()});
        assert_eq!(issued_at(now, Some(&before)), old);
        assert_eq!(issued_at(now, None).to_string(), "2026-11-26T10:00:00Z", "never rounded into the future");
        let earlier = serde_json::json!({"issued_at": "2026-01-01T00:00:00Z"});
        assert_eq!(issued_at(now, Some(&earlier)).to_string(), "2026-11-26T10:00:00Z");
    }
}
