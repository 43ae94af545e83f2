//! A member key file kept encrypted with age, so a copy of the file alone
//! (a stolen laptop without disk encryption, a backup) does not give the key
//! away: the file is the usual `SEALDROP-MEMBER-SECRET-KEY-V1` text encrypted
//! to a passphrase (age's scrypt recipient) or to an age plugin's recipient
//! (a YubiKey, a TPM: the token must be present to use the key),
//! ASCII-armored so it stays a text file that stock `age -d` opens too. It
//! is decrypted in memory, into zeroized buffers, and its plain text is never
//! written anywhere.
//!
//! A command unlocks the key once: [`KeyUnlock`] keeps the unlocked text for
//! the rest of the command, so a person is asked for the passphrase once
//! however many times the command needs the key.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use age::armor::{ArmoredReader, ArmoredWriter, Format};
use age::secrecy::SecretString;
use zeroize::Zeroizing;

use crate::age_keys::PluginCallbacks;
use crate::error::{Error, ErrorCode, Result};
use crate::fsutil::read_secret_bytes;

/// The first line of an ASCII-armored age file.
const ARMOR_BEGIN: &str = "-----BEGIN AGE ENCRYPTED FILE-----";

/// The first bytes of a binary age file (`age -p` without `-a`), which a
/// member may have made with stock age.
const BINARY_BEGIN: &[u8] = b"age-encryption.org/";

/// The largest unlocked key file read: a member key file is a few hundred
/// bytes; the bound keeps a hostile file from filling memory.
const MAX_KEY_FILE_BYTES: u64 = 64 * 1024;

/// What a command may use to unlock a protected member key, and the key it
/// unlocked, kept for the rest of the command.
#[derive(Clone, Default)]
pub struct KeyUnlock {
    /// `--passphrase-fd N`: read the passphrase from this file descriptor
    /// instead of the credential or the terminal (see [`crate::passphrase`]).
    pub passphrase_fd: Option<u32>,
    /// `--key-plugin-identity FILE`: the age plugin identity file (e.g. what
    /// `age-plugin-yubikey --identity` prints) that opens a key file
    /// encrypted to a plugin recipient.
    pub plugin_identity: Option<PathBuf>,
    /// The unlocked key file text, once a command unlocked it: clones of the
    /// settings share it, so every use in one command asks at most once.
    unlocked: Arc<OnceLock<Zeroizing<String>>>,
}

impl std::fmt::Debug for KeyUnlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyUnlock")
            .field("passphrase_fd", &self.passphrase_fd)
            .field("plugin_identity", &self.plugin_identity)
            .field("unlocked", &self.unlocked.get().map(|_| "<secret>"))
            .finish()
    }
}

impl KeyUnlock {
    /// Unlocking with a passphrase read from file descriptor `fd`, if given,
    /// or with the age plugin identity file `plugin_identity`, if given.
    pub fn new(passphrase_fd: Option<u32>, plugin_identity: Option<PathBuf>) -> Self {
        Self { passphrase_fd, plugin_identity, ..Self::default() }
    }

    /// The member key file `path` as plain text: read as it is, or unlocked
    /// (once per command) when it is protected.
    pub fn key_text(&self, path: &Path) -> Result<Zeroizing<String>> {
        if let Some(text) = self.unlocked.get() {
            return Ok(text.clone());
        }
        let bytes = read_secret_bytes(path, "member key file")?;
        if !is_protected(&bytes) {
            return plain_text(path, &bytes);
        }
        let text = self.unlock(path, &bytes)?;
        // Another thread of this command may have unlocked it meanwhile; both hold the same text.
        let _ = self.unlocked.set(text.clone());
        Ok(text)
    }

    /// Decrypts the protected key file `path`, whose content is `bytes`.
    fn unlock(&self, path: &Path, bytes: &[u8]) -> Result<Zeroizing<String>> {
        let decryptor = age::Decryptor::new_buffered(ArmoredReader::new(bytes)).map_err(|e| not_a_key_file(path, e))?;
        if !decryptor.is_scrypt() {
            let Some(identity_file) = &self.plugin_identity else {
                return Err(Error::new(
                    ErrorCode::KeyPluginFailed,
                    format!(
                        "member key {} is encrypted to an age recipient, not to a passphrase; give the age plugin identity file it was protected with (--key-plugin-identity FILE, or save it with `sealdrop --key-plugin-identity FILE init`)",
                        path.display()
                    ),
                ));
            };
            return open_with_plugin(path, decryptor, identity_file);
        }
        let passphrase = crate::passphrase::current(self.passphrase_fd, path)?;
        let identity = age::scrypt::Identity::new(passphrase);
        let plain = decryptor.decrypt(std::iter::once(&identity as &dyn age::Identity)).map_err(|e| match e {
            age::DecryptError::DecryptionFailed | age::DecryptError::NoMatchingKeys => Error::new(
                ErrorCode::WrongPassphrase,
                format!(
                    "the passphrase does not open member key {}; try again (or, if it is lost, make a new key with `sealdrop keygen` and send its card to the coordinator)",
                    path.display()
                ),
            ),
            other => not_a_key_file(path, other),
        })?;
        read_plain(path, plain)
    }
}

/// Whether the key file content `bytes` is an age file (armored or binary)
/// rather than the plain key text.
fn is_protected(bytes: &[u8]) -> bool {
    let start = bytes.trim_ascii_start();
    start.starts_with(ARMOR_BEGIN.as_bytes()) || start.starts_with(BINARY_BEGIN)
}

/// The key file text `plain` encrypted to `passphrase`, armored; checked to
/// decrypt back to `plain` before it is returned, so a caller never writes
/// a file that would not open.
pub fn protect_with_passphrase(plain: &str, passphrase: SecretString) -> Result<String> {
    let armored = encrypt(age::Encryptor::with_user_passphrase(passphrase.clone()), plain)?;
    let decryptor = age::Decryptor::new_buffered(ArmoredReader::new(armored.as_bytes()))
        .map_err(|e| internal(format!("cannot read back the protected key: {}", one_line(e))))?;
    let identity = age::scrypt::Identity::new(passphrase);
    let reader = decryptor
        .decrypt(std::iter::once(&identity as &dyn age::Identity))
        .map_err(|e| internal(format!("the protected key does not decrypt back: {}", one_line(e))))?;
    let back = read_plain(Path::new("(the new key file)"), reader)?;
    if back.as_str() != plain {
        return Err(internal("the protected key decrypts to other text than it was given".to_owned()));
    }
    Ok(armored)
}

/// The key file text `plain` encrypted to the age plugin recipient
/// `recipient` (the plugin, `age-plugin-NAME`, must be on `PATH`), armored;
/// checked to decrypt back to `plain` with `identity_file` (so with the
/// token present) before it is returned.
pub fn protect_with_plugin(plain: &str, recipient: &str, identity_file: &Path) -> Result<String> {
    let recipient: age::plugin::Recipient = recipient.parse().map_err(|e| {
        Error::new(
            ErrorCode::KeyInvalid,
            format!("{recipient:?} is not an age plugin recipient ({e}); give the age1<plugin>1... recipient the plugin printed"),
        )
    })?;
    let plugin = age::plugin::RecipientPluginV1::new(
        recipient.plugin(),
        std::slice::from_ref(&recipient),
        &[],
        PluginCallbacks::default(),
    )
    .map_err(|e| plugin_missing(Path::new("the new key file"), e))?;
    let encryptor = age::Encryptor::with_recipients(std::iter::once(&plugin as &dyn age::Recipient))
        .map_err(|e| plugin_failed(Path::new("the new key file"), &e))?;
    let armored = encrypt(encryptor, plain)?;
    let label = Path::new("(the new key file)");
    let decryptor = age::Decryptor::new_buffered(ArmoredReader::new(armored.as_bytes()))
        .map_err(|e| internal(format!("cannot read back the protected key: {}", one_line(e))))?;
    let back = open_with_plugin(label, decryptor, identity_file)?;
    if back.as_str() != plain {
        return Err(internal("the protected key decrypts to other text than it was given".to_owned()));
    }
    Ok(armored)
}

/// Opens the key file `path` (its header read into `decryptor`) with the
/// identities in `identity_file`: each plugin identity runs its plugin,
/// which talks to its token.
fn open_with_plugin<R: std::io::BufRead>(
    path: &Path,
    decryptor: age::Decryptor<R>,
    identity_file: &Path,
) -> Result<Zeroizing<String>> {
    let text = std::fs::read_to_string(identity_file).map_err(|e| {
        Error::new(
            ErrorCode::KeyPluginFailed,
            format!(
                "cannot read the age plugin identity file {}: {e}; give the file the plugin printed (--key-plugin-identity FILE)",
                identity_file.display()
            ),
        )
    })?;
    let identities = age::IdentityFile::from_buffer(text.as_bytes())
        .map_err(|e| {
            Error::new(
                ErrorCode::KeyPluginFailed,
                format!(
                    "{} is not an age identity file ({e}); give the file the plugin printed",
                    identity_file.display()
                ),
            )
        })?
        .with_callbacks(PluginCallbacks::default())
        .into_identities()
        .map_err(|e| match e {
            age::DecryptError::PluginResolve(e) => plugin_missing(path, e),
            other => plugin_failed(path, &other),
        })?;
    let plain = decryptor.decrypt(identities.iter().map(|i| i.as_ref() as &dyn age::Identity)).map_err(|e| match e {
        age::DecryptError::NoMatchingKeys => Error::new(
            ErrorCode::KeyPluginFailed,
            format!(
                "the identities in {} do not open member key {} (another token, or another key?); give the identity file of the token the key was protected with",
                identity_file.display(),
                path.display()
            ),
        ),
        other => plugin_failed(path, &other),
    })?;
    read_plain(path, plain)
}

/// The plugin a key file needs is not installed.
fn plugin_missing(path: &Path, e: age::plugin::ResolveError) -> Error {
    let what = match &e {
        age::plugin::ResolveError::MissingPlugin { binary_name } => {
            format!("the age plugin `{binary_name}` is not on PATH")
        }
        other => one_line(other),
    };
    Error::new(
        ErrorCode::KeyPluginMissing,
        format!(
            "cannot use member key {}: {what}; install the plugin (and plug in its token), or put its folder on PATH",
            path.display()
        ),
    )
}

/// A plugin refused or failed (a wrong PIN, no token, no terminal to ask on).
fn plugin_failed(path: &Path, e: &dyn std::fmt::Display) -> Error {
    Error::new(
        ErrorCode::KeyPluginFailed,
        format!(
            "the age plugin could not open member key {}: {}; check that its token is present, then run the command again in a terminal",
            path.display(),
            one_line(e)
        ),
    )
}

/// age's messages span lines; an error here is one line.
fn one_line(e: impl std::fmt::Display) -> String {
    e.to_string().split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `plain` encrypted with `encryptor`, ASCII-armored.
fn encrypt(encryptor: age::Encryptor, plain: &str) -> Result<String> {
    let failed = |e: std::io::Error| internal(format!("cannot encrypt the key file: {}", one_line(e)));
    let armor = ArmoredWriter::wrap_output(Vec::new(), Format::AsciiArmor).map_err(failed)?;
    let mut writer = encryptor.wrap_output(armor).map_err(failed)?;
    writer.write_all(plain.as_bytes()).map_err(failed)?;
    let bytes = writer.finish().and_then(ArmoredWriter::finish).map_err(failed)?;
    String::from_utf8(bytes).map_err(|_| internal("age's armor is not text".to_owned()))
}

/// Reads the decrypted key file from `reader` into a zeroized buffer that
/// never grows (growing would leave copies behind).
fn read_plain(path: &Path, reader: impl std::io::Read) -> Result<Zeroizing<String>> {
    let mut plain = Zeroizing::new(Vec::with_capacity(MAX_KEY_FILE_BYTES as usize + 1));
    reader.take(MAX_KEY_FILE_BYTES + 1).read_to_end(&mut plain).map_err(|e| not_a_key_file(path, e))?;
    if plain.len() as u64 > MAX_KEY_FILE_BYTES {
        return Err(not_a_key_file(path, format!("it decrypts to more than {MAX_KEY_FILE_BYTES} bytes")));
    }
    plain_text(path, &plain)
}

/// The key file content `bytes` as text.
fn plain_text(path: &Path, bytes: &[u8]) -> Result<Zeroizing<String>> {
    std::str::from_utf8(bytes).map(|t| Zeroizing::new(t.to_owned())).map_err(|_| {
        Error::new(
            ErrorCode::KeyInvalid,
            format!(
                "{} is not a member key file (not text); give the secret key file `sealdrop keygen` wrote",
                path.display()
            ),
        )
    })
}

fn not_a_key_file(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorCode::KeyInvalid,
        format!(
            "{} is not a usable protected member key: {}; give the secret key file `sealdrop keygen` wrote",
            path.display(),
            one_line(e)
        ),
    )
}

fn internal(message: String) -> Error {
    Error::new(ErrorCode::Io, format!("{message}; nothing was written: run the command again"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(text: &str) -> SecretString {
        SecretString::from(text)
    }

    #[test]
    fn a_protected_key_is_armored_age_that_opens_with_its_passphrase_only() {
        let plain = "SEALDROP-MEMBER-SECRET-KEY-V1\nparty: camden\n";
        let armored = protect_with_passphrase(plain, secret("correct horse")).unwrap();
        assert!(armored.starts_with(ARMOR_BEGIN), "{armored}");
        assert!(!armored.contains("camden"), "the plain text must not show");
        assert!(is_protected(armored.as_bytes()));
        assert!(!is_protected(plain.as_bytes()));

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        crate::fsutil::write_new_atomic(&path, armored.as_bytes(), true).unwrap();
        let mut line = tempfile::NamedTempFile::new().unwrap();
        writeln!(line, "wrong horse").unwrap();
        let fd_file = std::fs::File::open(line.path()).unwrap();
        let fd = std::os::fd::AsRawFd::as_raw_fd(&fd_file) as u32;
        let e = KeyUnlock::new(Some(fd), None).key_text(&path).unwrap_err();
        assert_eq!(e.code, "wrong_passphrase", "{}", e.message);

        let mut right = tempfile::NamedTempFile::new().unwrap();
        writeln!(right, "correct horse").unwrap();
        let right_file = std::fs::File::open(right.path()).unwrap();
        let unlock = KeyUnlock::new(Some(std::os::fd::AsRawFd::as_raw_fd(&right_file) as u32), None);
        assert_eq!(unlock.key_text(&path).unwrap().as_str(), plain);
        drop(right_file);
        // The second use reads no passphrase: the descriptor is closed now.
        assert_eq!(unlock.key_text(&path).unwrap().as_str(), plain);
    }
}
