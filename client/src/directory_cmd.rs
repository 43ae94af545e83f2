//! The coordinator's tools: make an authority key, sign a directory, publish it.

use std::path::Path;

use sealdrop_proto::api::DirectoryAccepted;
use sealdrop_proto::directory::{Directory, SignedDirectory};
use sealdrop_proto::keys::NoteSigningKey;

use crate::context::Settings;
use crate::error::{Error, Result};
use crate::fsutil::{read_secret_file, write_atomic, write_new_atomic};
use crate::hub_client::HubClient;

/// Creates an authority key pair: `out` (secret, 0600) and `out` with extension `.pub`.
pub fn keygen(name: &str, out: &Path) -> Result<(NoteSigningKey, std::path::PathBuf)> {
    let key = NoteSigningKey::generate(name)
        .map_err(|e| Error::input("bad_key_name", format!("authority name {name:?}: {e}")))?;
    let pub_path = out.with_extension("pub");
    if pub_path == out {
        return Err(Error::input("bad_output", "the secret key file must not end in .pub"));
    }
    if pub_path.exists() {
        return Err(Error::input(
            "output_exists",
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
        .map_err(|e| Error::input("key_invalid", format!("{} is not an authority secret key: {e}", path.display())))
}

/// Signs the unsigned directory in `input` (JSON; `issued_at` is filled in when missing).
pub fn sign(settings: &Settings, key_file: &Path, input: &Path, out: &Path) -> Result<SignedDirectory> {
    let key = load_authority_key(key_file)?;
    let text = std::fs::read_to_string(input).map_err(|e| Error::io(format!("cannot read {}", input.display()), e))?;
    let mut value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::input("directory_invalid", format!("{} is not valid JSON: {e}", input.display())))?;
    if let Some(obj) = value.as_object_mut() {
        obj.entry("issued_at").or_insert_with(|| serde_json::Value::String(settings.clock.now().to_string()));
    }
    let dir: Directory = serde_json::from_value(value)
        .map_err(|e| Error::input("directory_invalid", format!("{} is not a valid directory: {e}", input.display())))?;
    let signed = SignedDirectory::sign(dir, &key)
        .map_err(|e| Error::input("directory_invalid", format!("{}: {e}", input.display())))?;
    write_atomic(out, signed.note.as_bytes(), false)?;
    Ok(signed)
}

/// Verifies a signed directory file against the pinned authority and uploads it.
pub fn publish(settings: &Settings, file: &Path) -> Result<u64> {
    let note = std::fs::read_to_string(file).map_err(|e| Error::io(format!("cannot read {}", file.display()), e))?;
    let authority = settings.authority()?;
    SignedDirectory::verify(&note, &authority)
        .map_err(|e| crate::trust::directory_error(e, &file.display().to_string()))?;
    let hub = HubClient::new(settings.hub_url()?, None, settings.clock.clone())?;
    let accepted: DirectoryAccepted = hub.post_text_unsigned("/v1/directory", note.clone())?;
    crate::trust::accept(&note, &authority, &settings.state_dir, &file.display().to_string())?;
    Ok(accepted.serial)
}
