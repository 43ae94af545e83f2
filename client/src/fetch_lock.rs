//! One `fetch` at a time per state dir: `<state>/fetch.lock` (0600), an
//! advisory lock (`flock`) held for the whole run.
//!
//! A scheduled `fetch --all` and a person fetching by hand share the state
//! dir (its journal, refusals, spools and staging registrations) and
//! usually the output folder. Run side by side, both listed the same inbox
//! and fought over each drop: one lost with `fetch_in_progress`, or `gone`
//! once the other had acknowledged it. Now the second waits, saying so on
//! stderr, and then lists the inbox afresh, so it fetches only what the
//! first left. The kernel releases the lock when a process ends, however it
//! ends, so a killed fetch never blocks the next one.

use std::fs::File;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The lock file's name in the state dir.
pub const LOCK_FILE: &str = "fetch.lock";

/// The state dir's fetch lock, held until dropped.
#[derive(Debug)]
pub struct FetchLock {
    _file: File,
}

/// What [`acquire`] had to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Acquired {
    /// Nobody held it.
    AtOnce,
    /// Another fetch held it (this is what it wrote: its process id and
    /// start time); this one waited until it ended.
    AfterWaiting(String),
}

fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(LOCK_FILE)
}

/// Takes the state dir's fetch lock, waiting while another process holds
/// it; `waiting` is called once, before the wait, with what the holder
/// wrote into the file (`pid 1234 since 2026-12-01T06:00:00Z`).
pub fn acquire(state_dir: &Path, now: jiff::Timestamp, waiting: impl FnOnce(&str)) -> Result<(FetchLock, Acquired)> {
    crate::fsutil::create_private_dir(state_dir)?;
    let path = path(state_dir);
    let mut file = {
        use std::os::unix::fs::OpenOptionsExt as _;
        std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).mode(0o600).open(&path)
    }
    .map_err(|e| Error::io(format!("cannot open {}", path.display()), e))?;
    let acquired = match file.try_lock() {
        Ok(()) => Acquired::AtOnce,
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim().to_owned();
            waiting(&holder);
            file.lock().map_err(|e| Error::io(format!("cannot lock {}", path.display()), e))?;
            Acquired::AfterWaiting(holder)
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(format!("cannot lock {}", path.display()), e)),
    };
    // Only for the message of a fetch that has to wait; the lock is what counts.
    let _ =
        file.set_len(0).and_then(|()| file.write_all(format!("pid {} since {}", std::process::id(), now).as_bytes()));
    Ok((FetchLock { _file: file }, acquired))
}

/// The line a fetch prints before it waits for `holder`.
pub fn waiting_note(state_dir: &Path, holder: &str) -> String {
    let holder = if holder.is_empty() { String::new() } else { format!(" ({holder})") };
    format!(
        "waiting for another sealdrop fetch{holder} using the state dir {} to finish; then this one fetches whatever it left",
        state_dir.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_fetch_waits_for_the_first_then_goes_on() {
        let state = tempfile::tempdir().unwrap();
        let now: jiff::Timestamp = "2026-12-01T06:00:00Z".parse().unwrap();
        let (held, how) = acquire(state.path(), now, |_| panic!("nobody held it")).unwrap();
        assert_eq!(how, Acquired::AtOnce);
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(path(state.path())).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let (told, heard) = std::sync::mpsc::channel();
        let dir = state.path().to_owned();
        let second = std::thread::spawn(move || {
            let (_lock, how) = acquire(&dir, now, |holder| told.send(holder.to_owned()).unwrap()).unwrap();
            how
        });
        let holder = heard.recv().unwrap();
        assert_eq!(holder, format!("pid {} since 2026-12-01T06:00:00Z", std::process::id()));
        assert!(waiting_note(state.path(), &holder).contains("waiting for another sealdrop fetch (pid "));
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(!second.is_finished(), "the second fetch went on while the first held the lock");
        drop(held);
        assert_eq!(second.join().unwrap(), Acquired::AfterWaiting(holder));
    }
}
