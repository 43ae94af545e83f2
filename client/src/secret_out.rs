//! Where `sealdrop key export-age` may put the secret key it prints.
//!
//! `sealdrop key export-age > id.txt` under the usual umask 022 used to leave
//! the secret in a file everyone on the machine could read. Now:
//! - stdout redirected to a regular file: the file is made private (mode
//!   0600, through its open descriptor, so it is the very file the shell
//!   opened) before any byte of the key is written; if that fails, nothing
//!   is written;
//! - `-o FILE`: a new file created with mode 0600 (never replacing one);
//! - a terminal: refused unless `--force`, because the screen, its
//!   scrollback and a shared screen all show it, and `age -i` needs a file
//!   anyway;
//! - a pipe (`| age -d -i - ...`): printed, the reader decides.

use std::io::{IsTerminal as _, Write};
use std::os::fd::AsFd as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use crate::error::{Error, ErrorCode, Result};
use crate::fsutil::write_new_atomic;

/// Writes the age identity file `text` to `path` (new, 0600) or to `stdout` (see the module docs).
pub fn export_age(text: &str, path: Option<&Path>, force: bool, stdout: &mut dyn Write) -> Result<()> {
    let text = format!("{}\n", text.trim_end());
    if let Some(path) = path {
        write_new_atomic(path, text.as_bytes(), true)?;
        eprintln!("wrote the age identity to {} (mode 0600); it holds your secret key", path.display());
        return Ok(());
    }
    let fd = std::io::stdout();
    if fd.is_terminal() && !force {
        return Err(Error::new(
            ErrorCode::SecretToTerminal,
            "not printing your secret key to the terminal (the screen and its scrollback would show it): write it to a new private file with -o FILE, redirect it (> FILE, made mode 0600), or add --force",
        ));
    }
    make_private_if_file(&fd)?;
    stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()).map_err(|e| Error::io("cannot write to stdout", e))
}

/// When stdout is a regular file, sets its mode to 0600 through the open
/// descriptor (fchmod on a duplicate of it: no path, so no race with a rename).
fn make_private_if_file(stdout: &std::io::Stdout) -> Result<()> {
    let file =
        std::fs::File::from(stdout.as_fd().try_clone_to_owned().map_err(|e| Error::io("cannot inspect stdout", e))?);
    let meta = file.metadata().map_err(|e| Error::io("cannot inspect stdout", e))?;
    if !meta.is_file() {
        return Ok(());
    }
    file.set_permissions(std::fs::Permissions::from_mode(0o600)).map_err(|e| {
        Error::new(
            ErrorCode::SecretFileNotPrivate,
            format!(
                "stdout is a file that cannot be made private (mode 0600): {e}; nothing was written: use -o FILE for a new private file"
            ),
        )
    })
}
