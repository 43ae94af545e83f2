//! A member key file kept encrypted with age, so a copy of the file alone
//! (a stolen laptop without disk encryption, a backup) does not give the key
//! away: the file is the usual `SEALDROP-MEMBER-SECRET-KEY-V1` text encrypted
//! to a passphrase (age's scrypt recipient), ASCII-armored so it stays a text
//! file that stock `age -d` opens too. It is decrypted in memory, into
//! zeroized buffers, and its plain text is never written anywhere.
//!
//! A command unlocks the key once: [`KeyUnlock`] keeps the unlocked text for
//! the rest of the command, so a person is asked for the passphrase once
//! however many times the command needs the key.

use std::io::{Read as _, Write as _};
use std::path::Path;
use std::sync::{Arc, OnceLock};

use age::armor::{ArmoredReader, ArmoredWriter, Format};
use age::secrecy::SecretString;
use zeroize::Zeroizing;

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
    /// The unlocked key file text, once a command unlocked it: clones of the
    /// settings share it, so every use in one command asks at most once.
    unlocked: Arc<OnceLock<Zeroizing<String>>>,
}

impl std::fmt::Debug for KeyUnlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyUnlock")
            .field("passphrase_fd", &self.passphrase_fd)
            .field("unlocked", &self.unlocked.get().map(|_| "<secret>"))
            .finish()
    }
}

impl KeyUnlock {
    /// Unlocking with a passphrase read from file descriptor `fd`, if given.
    pub fn with_passphrase_fd(fd: Option<u32>) -> Self {
        Self { passphrase_fd: fd, ..Self::default() }
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
            return Err(Error::new(
                ErrorCode::KeyInvalid,
                format!(
                    "{} is an age file, but not one encrypted to a passphrase; give the member key file `sealdrop keygen` wrote, or decrypt it first with the age identity it was encrypted to",
                    path.display()
                ),
            ));
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
pub fn is_protected(bytes: &[u8]) -> bool {
    let start = bytes.trim_ascii_start();
    start.starts_with(ARMOR_BEGIN.as_bytes()) || start.starts_with(BINARY_BEGIN)
}

/// The key file text `plain` encrypted to `passphrase`, armored; checked to
/// decrypt back to `plain` before it is returned, so a caller never writes
/// a file that would not open.
pub fn protect_with_passphrase(plain: &str, passphrase: SecretString) -> Result<String> {
    let armored = encrypt(age::Encryptor::with_user_passphrase(passphrase.clone()), plain)?;
    let decryptor = age::Decryptor::new_buffered(ArmoredReader::new(armored.as_bytes()))
        .map_err(|e| internal(format!("cannot read back the protected key: {e}")))?;
    let identity = age::scrypt::Identity::new(passphrase);
    let reader = decryptor
        .decrypt(std::iter::once(&identity as &dyn age::Identity))
        .map_err(|e| internal(format!("the protected key does not decrypt back: {e}")))?;
    let back = read_plain(Path::new("(the new key file)"), reader)?;
    if back.as_str() != plain {
        return Err(internal("the protected key decrypts to other text than it was given".to_owned()));
    }
    Ok(armored)
}

/// `plain` encrypted with `encryptor`, ASCII-armored.
fn encrypt(encryptor: age::Encryptor, plain: &str) -> Result<String> {
    let failed = |e: std::io::Error| internal(format!("cannot encrypt the key file: {e}"));
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
            "{} is not a usable protected member key: {e}; give the secret key file `sealdrop keygen` wrote",
            path.display()
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
        let e = KeyUnlock::with_passphrase_fd(Some(fd)).key_text(&path).unwrap_err();
        assert_eq!(e.code, "wrong_passphrase", "{}", e.message);

        let mut right = tempfile::NamedTempFile::new().unwrap();
        writeln!(right, "correct horse").unwrap();
        let right_file = std::fs::File::open(right.path()).unwrap();
        let unlock = KeyUnlock::with_passphrase_fd(Some(std::os::fd::AsRawFd::as_raw_fd(&right_file) as u32));
        assert_eq!(unlock.key_text(&path).unwrap().as_str(), plain);
        drop(right_file);
        // The second use reads no passphrase: the descriptor is closed now.
        assert_eq!(unlock.key_text(&path).unwrap().as_str(), plain);
    }
}
