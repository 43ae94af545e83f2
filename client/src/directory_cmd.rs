//! The coordinator's tools: make an authority key, add and revoke member
//! keys in the unsigned directory file, sign it, publish it.

use std::path::Path;

use jiff::Timestamp;
use sealdrop_proto::api::DirectoryAccepted;
use sealdrop_proto::directory::{MemberKey, RevokedKey, SignedDirectory};
use sealdrop_proto::keys::{MemberPublicKey, NoteSigningKey, NoteVerifierKey};

use crate::context::Settings;
use crate::directory_setup::{DirectoryEdit, invalid, read_unsigned, write_unsigned};
use crate::error::{Error, ErrorCode, Result};
use crate::fsutil::{read_secret_file, write_atomic, write_new_atomic};
use crate::transport::HubApi;

/// Creates an authority key pair: `out` (secret, 0600) and `out` with extension `.pub`.
pub fn keygen(name: &str, out: &Path) -> Result<(NoteSigningKey, std::path::PathBuf)> {
    let key = NoteSigningKey::generate(name).map_err(|e| {
        Error::new(
            ErrorCode::BadKeyName,
            format!("authority name {name:?}: {e}; choose a name like london-isa-coordinator"),
        )
    })?;
    let pub_path = out.with_extension("pub");
    if pub_path == out {
        return Err(Error::new(
            ErrorCode::BadOutput,
            "the secret key file must not end in .pub (that name is for the public key); choose e.g. authority.key",
        ));
    }
    if pub_path.exists() {
        return Err(Error::new(
            ErrorCode::OutputExists,
            format!("{} already exists; choose another name", pub_path.display()),
        ));
    }
    write_new_atomic(out, format!("{}\n", key.to_note_text().as_str()).as_bytes(), true)?;
    write_new_atomic(&pub_path, format!("{}\n", key.verifier()).as_bytes(), false)?;
    Ok((key, pub_path))
}

/// Loads an authority secret key file.
pub fn load_authority_key(path: &Path) -> Result<NoteSigningKey> {
    let text = read_secret_file(path, "authority key file")?;
    NoteSigningKey::from_note_text(&text)
        .map_err(|e| {
        Error::new(
            ErrorCode::KeyInvalid,
            format!(
                "{} is not an authority secret key: {e}; give the secret key file `sealdrop directory keygen` wrote (not the .pub)",
                path.display()
            ),
        )
    })
}

/// Signs the unsigned directory in `input` (JSON). `issued_at` is set to
/// now (never before the time the file carries, so the versions' times
/// grow with their serials); the file itself is not changed. The file is
/// checked field by field first (`docs/directory.schema.json`).
pub fn sign(settings: &Settings, key_file: &Path, input: &Path, out: &Path) -> Result<SignedDirectory> {
    let key = load_authority_key(key_file)?;
    let mut value = read_unsigned(input)?;
    let issued = crate::directory_setup::issued_at(settings.clock.now(), Some(&value));
    if let Some(obj) = value.as_object_mut() {
        obj.insert("issued_at".into(), serde_json::Value::String(issued.to_string()));
    }
    let dir = crate::directory_setup::parse(input, value)?;
    let signed = SignedDirectory::sign(dir, &key).map_err(|e| invalid(input, e))?;
    write_atomic(out, signed.note.as_bytes(), false)?;
    Ok(signed)
}

/// Verifies a signed directory file against the pinned authority and uploads it.
pub fn publish(settings: &Settings, file: &Path) -> Result<u64> {
    let note = std::fs::read_to_string(file).map_err(|e| Error::io(format!("cannot read {}", file.display()), e))?;
    let authority = settings.authority()?;
    SignedDirectory::verify(&note, &authority)
        .map_err(|e| crate::trust::directory_error(e, &file.display().to_string()))?;
    let hub = HubApi::new(settings.hub_url()?, None, settings.clock.clone())?;
    let accepted: DirectoryAccepted = hub.publish_directory(note.clone())?;
    crate::trust::accept(&note, &authority, &settings.state_dir, &file.display().to_string())?;
    Ok(accepted.serial)
}

/// The `parties` entry of `party` in the unsigned directory.
fn party_mut<'v>(dir: &'v mut serde_json::Value, party: &str, input: &Path) -> Result<&'v mut serde_json::Value> {
    dir.get_mut("parties")
        .and_then(serde_json::Value::as_array_mut)
        .and_then(|ps| ps.iter_mut().find(|p| p.get("id").and_then(serde_json::Value::as_str) == Some(party)))
        .ok_or_else(|| invalid(input, format!("there is no party `{party}`")))
}

/// Revokes the member key `key_name` (`<party>/<member>`) in the
/// coordinator's unsigned directory file `input`: moves it from the party's
/// `members` to its `revoked` list with `revoked_at` and `reason`, puts the
/// member's new key card `replacement` in its place if given, and raises the
/// serial. Sign and publish the file afterwards.
pub fn revoke(
    input: &Path,
    key_name: &str,
    revoked_at: Timestamp,
    reason: &str,
    replacement: Option<&Path>,
) -> Result<DirectoryEdit> {
    let (party, member) = key_name.split_once('/').ok_or_else(|| {
        Error::new(
            ErrorCode::BadKeyName,
            format!("{key_name:?} is not a member key name `<party>/<member>`; give one such as islington/data-team"),
        )
    })?;
    let card = replacement.map(read_card).transpose()?;
    if let Some(c) = &card
        && (c.party.as_str() != party || c.member.as_str() != member)
    {
        return Err(Error::new(
            ErrorCode::BadCard,
            format!(
                "the new key card is for {}/{}, not {key_name}; give the card of {key_name}'s new key",
                c.party, c.member
            ),
        ));
    }
    let before = read_unsigned(input)?;
    let mut after = before.clone();
    let p = party_mut(&mut after, party, input)?;
    let members = p
        .get_mut("members")
        .and_then(serde_json::Value::as_array_mut)
        .ok_or_else(|| invalid(input, format!("party `{party}` has no `members` list")))?;
    let at = members
        .iter()
        .position(|m| m.get("member").and_then(serde_json::Value::as_str) == Some(member))
        .ok_or_else(|| {
            Error::new(
                ErrorCode::UnknownMember,
                format!(
                    "{key_name} is not a member key in {}; check the name against the party's `members` there",
                    input.display()
                ),
            )
        })?;
    let old = members.remove(at);
    let signing_key: NoteVerifierKey = old
        .get("signing_key")
        .and_then(serde_json::Value::as_str)
        .and_then(|k| k.parse().ok())
        .ok_or_else(|| invalid(input, format!("{key_name} has no valid `signing_key`")))?;
    if let Some(c) = &card {
        let new: MemberKey = c.clone().into();
        members.insert(at, serde_json::to_value(new).map_err(|e| invalid(input, e))?);
    }
    let revocation = RevokedKey {
        member: member.parse().map_err(|e| {
            Error::new(ErrorCode::BadKeyName, format!("{key_name}: {e}; give one such as islington/data-team"))
        })?,
        signing_key,
        revoked_at,
        reason: reason.to_owned(),
    };
    let revoked = p
        .as_object_mut()
        .ok_or_else(|| invalid(input, format!("party `{party}` is not an object")))?
        .entry("revoked")
        .or_insert_with(|| serde_json::Value::Array(vec![]));
    revoked
        .as_array_mut()
        .ok_or_else(|| invalid(input, format!("party `{party}`'s `revoked` is not a list")))?
        .push(serde_json::to_value(&revocation).map_err(|e| invalid(input, e))?);
    let (old_serial, new_serial) = write_unsigned(input, &before, after)?;
    Ok(DirectoryEdit {
        old_serial,
        new_serial,
        revoked: Some(revocation),
        added: card.map(|c| c.signing_key.name().to_owned()),
    })
}

/// Adds a member's public key card (from `sealdrop keygen` / `key show`) to
/// its party in the coordinator's unsigned directory file, and raises the serial.
pub fn add_member(input: &Path, card_file: &Path) -> Result<DirectoryEdit> {
    let card = read_card(card_file)?;
    let before = read_unsigned(input)?;
    let mut after = before.clone();
    let p = party_mut(&mut after, card.party.as_str(), input)?;
    let members = p
        .get_mut("members")
        .and_then(serde_json::Value::as_array_mut)
        .ok_or_else(|| invalid(input, format!("party `{}` has no `members` list", card.party)))?;
    if members.iter().any(|m| m.get("member").and_then(serde_json::Value::as_str) == Some(card.member.as_str())) {
        // One key per member name (the key's name is `<party>/<member>`):
        // a second key for the same person needs a member name of its own.
        let name = card.signing_key.name();
        return Err(Error::new(
            ErrorCode::MemberExists,
            format!(
                "{name} already has a member key, and each member name has one; to add a second key, ask for a card made under another member name (`sealdrop keygen --party {} --member {}-2 ...`); to replace the key, `sealdrop directory revoke --key {name} --replace-with CARD`",
                card.party, card.member
            ),
        ));
    }
    let new: MemberKey = card.clone().into();
    members.push(serde_json::to_value(new).map_err(|e| invalid(input, e))?);
    let (old_serial, new_serial) = write_unsigned(input, &before, after)?;
    Ok(DirectoryEdit { old_serial, new_serial, revoked: None, added: Some(card.signing_key.name().to_owned()) })
}

/// Reads and checks a member's public key card (JSON).
fn read_card(path: &Path) -> Result<MemberPublicKey> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
    let card: MemberPublicKey = serde_json::from_str(text.trim()).map_err(|e| {
        Error::new(
            ErrorCode::BadCard,
            format!(
                "{} is not a public key card: {e}; give the JSON card `sealdrop keygen` or `sealdrop key show` printed",
                path.display()
            ),
        )
    })?;
    card.validate().map_err(|e| {
        Error::new(
            ErrorCode::BadCard,
            format!("{}: {e}; ask the member to send the card `sealdrop key show` prints again", path.display()),
        )
    })?;
    Ok(card)
}
