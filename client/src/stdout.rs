//! Standard output that remembers whether its reader went away.
//!
//! `sealdrop status | head -1` closes the pipe after one line. Rust ignores
//! SIGPIPE, so the next write fails with `BrokenPipe`; that is the reader's
//! choice, not a failure, and like `cat`, `grep` or ripgrep the command then
//! ends quietly with exit status 0 (what `set -o pipefail` scripts expect
//! from the writing side of `| head`). Every command writes its stdout
//! through [`Stdout`]; [`cli::finish`](crate::cli::finish) asks [`closed`]
//! before reporting an error, so whichever error the failed write turned
//! into, no `error[io]` line is printed.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

static CLOSED: AtomicBool = AtomicBool::new(false);

/// Whether a write to stdout failed because its reader closed it.
pub fn closed() -> bool {
    CLOSED.load(Ordering::Relaxed)
}

/// The process's stdout, locked, noting a closed reader (see the module docs).
#[derive(Debug)]
pub struct Stdout(io::StdoutLock<'static>);

impl Stdout {
    /// Locks stdout for the rest of the command.
    pub fn lock() -> Self {
        Self(io::stdout().lock())
    }
}

fn note<T>(r: io::Result<T>) -> io::Result<T> {
    if let Err(e) = &r
        && e.kind() == io::ErrorKind::BrokenPipe
    {
        CLOSED.store(true, Ordering::Relaxed);
    }
    r
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        note(self.0.write(buf))
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        note(self.0.write_all(buf))
    }
    fn flush(&mut self) -> io::Result<()> {
        note(self.0.flush())
    }
}
