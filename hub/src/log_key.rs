//! The hub's log key (`DATA/log.key`): an Ed25519 signed-note key named after
//! the hub's origin that will sign the transparency log's checkpoints. It is
//! created at init with mode 0600 and refused at start if group or others can
//! read it, because anyone holding it could sign a forged log.

use std::io::Write as _;
use std::path::Path;

use sealdrop_proto::keys::NoteSigningKey;

use crate::error::HubError;

/// The key file's name inside the data directory.
pub const LOG_KEY_FILE: &str = "log.key";

/// Generates a key for `origin` and writes it to `path`, which must not exist.
pub fn create(path: &Path, origin: &str) -> Result<NoteSigningKey, HubError> {
    let key = NoteSigningKey::generate(origin).map_err(|e| HubError::BadLogKey {
        path: path.to_owned(),
        origin: origin.to_owned(),
        reason: e.to_string(),
    })?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| HubError::io("create", path, e))?;
    let text = key.to_note_text();
    file.write_all(text.as_bytes())
        .and_then(|()| file.write_all(b"\n"))
        .and_then(|()| file.sync_all())
        .map_err(|e| HubError::io("write", path, e))?;
    Ok(key)
}

/// Loads the key, refusing one that others can read or that is not named `origin`.
pub fn load(path: &Path, origin: &str) -> Result<NoteSigningKey, HubError> {
    let meta = std::fs::metadata(path).map_err(|e| HubError::io("read", path, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(HubError::LogKeyExposed(path.to_owned()));
        }
    }
    #[cfg(not(unix))]
    let _ = meta;
    let text = std::fs::read_to_string(path).map_err(|e| HubError::io("read", path, e))?;
    let bad = |reason: String| HubError::BadLogKey { path: path.to_owned(), origin: origin.to_owned(), reason };
    let key = NoteSigningKey::from_note_text(&text).map_err(|e| bad(e.to_string()))?;
    if key.name() != origin {
        return Err(bad(format!("it is named {:?}", key.name())));
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_then_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOG_KEY_FILE);
        let key = create(&path, "hub.example").unwrap();
        let back = load(&path, "hub.example").unwrap();
        assert_eq!(back.verifier(), key.verifier());
        assert!(create(&path, "hub.example").is_err(), "an existing key is never overwritten");
        let err = load(&path, "other.example").unwrap_err();
        assert!(err.to_string().contains("other.example"), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn readable_key_is_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOG_KEY_FILE);
        create(&path, "hub.example").unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let err = load(&path, "hub.example").unwrap_err();
        assert!(matches!(err, HubError::LogKeyExposed(_)), "{err}");
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }
}
