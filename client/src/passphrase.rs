//! Where the passphrase of a protected member key comes from: a file
//! descriptor (`--passphrase-fd N`), a systemd credential
//! (`$CREDENTIALS_DIRECTORY/sealdrop-passphrase`), or the terminal, without
//! echo. Never an environment variable holding the passphrase itself: a
//! process's environment is inherited by every child it starts and readable
//! by whoever may inspect the process (`/proc/PID/environ`, crash reports).
//!
//! Every passphrase is held in an [`SecretString`], zeroized when dropped,
//! and every buffer it passes through is zeroized too.

use std::io::{IsTerminal as _, Read as _};
use std::path::Path;

use age::secrecy::{ExposeSecret as _, SecretString};
use zeroize::Zeroizing;

use crate::error::{Error, ErrorCode, Result};

/// The name of the systemd credential a service gives the passphrase as
/// (`LoadCredential=sealdrop-passphrase:...` or `LoadCredentialEncrypted=`).
pub const CREDENTIAL_NAME: &str = "sealdrop-passphrase";

/// The environment variable systemd sets to the folder of a service's
/// credentials. It names a folder, never a secret.
pub const CREDENTIALS_DIRECTORY_ENV: &str = "CREDENTIALS_DIRECTORY";

/// The longest passphrase read, in bytes: far beyond any typed one, and a
/// bound on what a wrong file descriptor can make the client read.
const MAX_PASSPHRASE_BYTES: usize = 4096;

/// The three ways to give a passphrase, for the error that finds none.
const THE_THREE_WAYS: &str = "give it with --passphrase-fd N (one line read from that file descriptor, e.g. \
     `--passphrase-fd 3 3<file`), as the systemd credential `sealdrop-passphrase` (LoadCredential= or \
     LoadCredentialEncrypted=, read from $CREDENTIALS_DIRECTORY), or run the command in a terminal to be asked; \
     no environment variable can hold it";

/// The passphrase that opens the protected key file `key`: from `fd` when
/// given, else from the systemd credential when the service has one, else
/// asked on the terminal. A command calls this at most once (the context
/// keeps the unlocked key), so a person is asked once per command.
pub fn current(fd: Option<u32>, key: &Path) -> Result<SecretString> {
    if let Some(fd) = fd {
        return read_fd(fd, "--passphrase-fd");
    }
    if let Some(passphrase) = from_credential()? {
        return Ok(passphrase);
    }
    if let Some(passphrase) = ask(&format!("Passphrase for member key {}: ", key.display()))? {
        return Ok(passphrase);
    }
    Err(Error::new(
        ErrorCode::PassphraseRequired,
        format!(
            "member key {} is protected by a passphrase and there is no terminal to ask on: {THE_THREE_WAYS}",
            key.display()
        ),
    ))
}

/// A new passphrase for `key`: read from `fd` (named `flag` in errors) when
/// given, else asked twice on the terminal. Refuses an empty one.
pub fn new(fd: Option<u32>, flag: &str, key: &Path) -> Result<SecretString> {
    let passphrase = match fd {
        Some(fd) => read_fd(fd, flag)?,
        None => {
            let prompt = format!("New passphrase for member key {}: ", key.display());
            let Some(first) = ask(&prompt)? else {
                return Err(Error::new(
                    ErrorCode::PassphraseRequired,
                    format!(
                        "no terminal to ask for the new passphrase of {} on: give it with {flag} N (one line read from that file descriptor), or run the command in a terminal",
                        key.display()
                    ),
                ));
            };
            let again = ask("Type it again: ")?.unwrap_or_else(|| SecretString::from(""));
            if first.expose_secret() != again.expose_secret() {
                return Err(Error::new(
                    ErrorCode::PassphraseInvalid,
                    "the two passphrases differ; nothing was changed: run the command again",
                ));
            }
            first
        }
    };
    if passphrase.expose_secret().is_empty() {
        return Err(Error::new(
            ErrorCode::PassphraseInvalid,
            "the new passphrase is empty; nothing was changed: choose one (several words are easiest to type), or use `sealdrop key passphrase --remove` for no passphrase",
        ));
    }
    Ok(passphrase)
}

/// Reads one line from file descriptor `fd` through `/dev/fd/N` (no unsafe
/// code needed to adopt a raw descriptor), a byte at a time so that what
/// follows the line stays unread: `--passphrase-fd 0 --new-passphrase-fd 0`
/// reads the old passphrase and the new one from two lines of one pipe.
fn read_fd(fd: u32, flag: &str) -> Result<SecretString> {
    let unreadable = |e: std::io::Error| {
        Error::new(
            ErrorCode::PassphraseUnreadable,
            format!(
                "cannot read the passphrase from file descriptor {fd} ({flag} {fd}): {e}; open it for reading in the calling shell or program (e.g. `{flag} 3 3<file`)"
            ),
        )
    };
    let mut file = std::fs::File::open(format!("/dev/fd/{fd}")).map_err(unreadable)?;
    let mut line = Zeroizing::new(Vec::with_capacity(MAX_PASSPHRASE_BYTES + 1));
    let mut byte = [0u8; 1];
    loop {
        match file.read(&mut byte) {
            Ok(0) => break,
            Ok(_) if byte[0] == b'\n' => break,
            Ok(_) if line.len() == MAX_PASSPHRASE_BYTES => {
                return Err(Error::new(
                    ErrorCode::PassphraseInvalid,
                    format!(
                        "the line on file descriptor {fd} ({flag}) is longer than {MAX_PASSPHRASE_BYTES} bytes; give the passphrase alone on one line"
                    ),
                ));
            }
            Ok(_) => line.push(byte[0]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(unreadable(e)),
        }
    }
    zeroize::Zeroize::zeroize(&mut byte);
    if line.is_empty() {
        return Err(Error::new(
            ErrorCode::PassphraseUnreadable,
            format!(
                "file descriptor {fd} ({flag}) gave no passphrase (an empty line or nothing); write the passphrase and a newline to it"
            ),
        ));
    }
    secret_from_line(&line, &format!("the line on file descriptor {fd} ({flag})"))
}

/// The passphrase in the service's systemd credential, when it has one.
fn from_credential() -> Result<Option<SecretString>> {
    let Some(dir) = std::env::var_os(CREDENTIALS_DIRECTORY_ENV).filter(|d| !d.is_empty()) else {
        return Ok(None);
    };
    let path = Path::new(&dir).join(CREDENTIAL_NAME);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => Zeroizing::new(bytes),
        // The service may have credentials, just not this one.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Error::new(
                ErrorCode::PassphraseUnreadable,
                format!(
                    "cannot read the passphrase credential {}: {e}; check the unit's LoadCredential= (or LoadCredentialEncrypted=) line",
                    path.display()
                ),
            ));
        }
    };
    let line = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
    if line.is_empty() {
        return Err(Error::new(
            ErrorCode::PassphraseUnreadable,
            format!("the passphrase credential {} is empty; put the passphrase in it", path.display()),
        ));
    }
    secret_from_line(line, &format!("the passphrase credential {}", path.display())).map(Some)
}

/// One line's bytes (without its newline; a trailing CR is dropped) as a passphrase.
fn secret_from_line(line: &[u8], what: &str) -> Result<SecretString> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let text = std::str::from_utf8(line).map_err(|_| {
        Error::new(ErrorCode::PassphraseInvalid, format!("{what} is not UTF-8 text; give the passphrase as UTF-8"))
    })?;
    Ok(SecretString::from(text))
}

/// Asks on the terminal without echo, when there is one: stderr, where the
/// prompt shows, must be a terminal, so a command run by a script or a
/// service never waits for a person who is not there. Also what a plugin's
/// questions (a token's PIN) are asked with ([`crate::age_keys::PluginCallbacks`]).
pub fn ask(prompt: &str) -> Result<Option<SecretString>> {
    if !std::io::stderr().is_terminal() {
        return Ok(None);
    }
    match rpassword::prompt_password(prompt) {
        Ok(typed) => {
            let typed = Zeroizing::new(typed);
            Ok(Some(SecretString::from(typed.as_str())))
        }
        // No controlling terminal (/dev/tty) after all.
        Err(e) if e.raw_os_error() == Some(ENXIO) || e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::new(
            ErrorCode::PassphraseUnreadable,
            format!("cannot read the passphrase from the terminal: {e}; {THE_THREE_WAYS}"),
        )),
    }
}

/// "No such device or address": what opening `/dev/tty` gives a process
/// without a controlling terminal (the same number on Linux and the BSDs).
const ENXIO: i32 = 6;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_loses_its_line_ending_and_must_be_utf8() {
        assert_eq!(secret_from_line(b"correct horse\r", "x").unwrap().expose_secret(), "correct horse");
        assert_eq!(secret_from_line(b"  spaces kept ", "x").unwrap().expose_secret(), "  spaces kept ");
        let e = secret_from_line(b"\xff\xfe", "the line").unwrap_err();
        assert_eq!(e.code, "passphrase_invalid");
        assert!(e.message.starts_with("the line is not UTF-8"), "{}", e.message);
    }

    #[test]
    fn an_unopened_descriptor_is_a_one_line_error_naming_the_flag() {
        let e = read_fd(987, "--passphrase-fd").unwrap_err();
        assert_eq!(e.code, "passphrase_unreadable");
        assert!(e.message.contains("file descriptor 987 (--passphrase-fd 987)"), "{}", e.message);
        assert!(!e.message.contains('\n'));
    }
}
