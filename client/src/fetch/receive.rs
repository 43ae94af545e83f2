//! The receiving end of a download: the ciphertext read (spooled prefix
//! first, then the hub's answer), hashed, counted and appended to the
//! spool, and handed in large chunks to the decrypting thread.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write as _};

use sha2::{Digest as _, Sha256};

use super::spool::SPOOL_WRITE_BUFFER;
use crate::drop_behind::DropBehind;

/// An error and its causes on one line (the HTTP client's own message,
/// "request or response body error", says little by itself).
pub(super) fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}

/// What a download received: hex SHA-256 and length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Received {
    pub(super) sha256: String,
    pub(super) len: u64,
}

/// Why reading the ciphertext failed (the first failure; later reads repeat it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Failure {
    /// The spooled prefix could not be read back.
    Spool(String),
    /// The hub's answer broke off.
    Network(String),
}

/// The ciphertext as it arrives: the spooled prefix read back from disk
/// first, then the hub's answer, whose bytes are appended to the spool as
/// they are read. Hashes and counts everything, and remembers the first
/// failure (repeating it on every later read), so a broken download can
/// never look like a short but complete one.
pub(super) struct Source<'a, R> {
    prefix: Option<File>,
    prefix_left: u64,
    net: R,
    spool: Option<BufWriter<DropBehind<'a>>>,
    /// Whether every byte from the hub reached the spool so far.
    spool_intact: bool,
    pub(super) failure: Option<Failure>,
    hasher: Sha256,
    len: u64,
    bar: indicatif::ProgressBar,
}

impl<'a, R: Read> Source<'a, R> {
    /// `prefix_len` bytes of `prefix` (if any) first, then `net`; what comes
    /// from `net` is appended to `spool` (if any).
    pub(super) fn new(
        prefix: Option<File>,
        prefix_len: u64,
        net: R,
        spool: Option<&'a File>,
        bar: indicatif::ProgressBar,
    ) -> Self {
        Self {
            prefix_left: if prefix.is_some() { prefix_len } else { 0 },
            prefix,
            net,
            spool_intact: spool.is_some(),
            // Past the page cache's fresh pages (see `crate::drop_behind`).
            spool: spool.map(|f| BufWriter::with_capacity(SPOOL_WRITE_BUFFER, DropBehind::new(f))),
            failure: None,
            hasher: Sha256::new(),
            len: 0,
            bar,
        }
    }

    fn fail(&mut self, failure: Failure) -> io::Error {
        self.failure = Some(failure);
        self.repeat_failure()
    }

    fn repeat_failure(&self) -> io::Error {
        match &self.failure {
            Some(Failure::Spool(e)) => io::Error::other(format!("reading the partial download: {e}")),
            Some(Failure::Network(e)) => io::Error::new(io::ErrorKind::ConnectionAborted, e.clone()),
            None => io::Error::other("no failure"),
        }
    }

    fn append(&mut self, bytes: &[u8]) {
        if let Some(w) = &mut self.spool
            && w.write_all(bytes).is_err()
        {
            // The download goes on; only resuming it is no longer possible.
            self.spool = None;
            self.spool_intact = false;
        }
    }

    /// Flushes the spool; whether it holds every byte read (prefix included).
    pub(super) fn finish(&mut self) -> bool {
        if let Some(mut w) = self.spool.take()
            && w.flush().is_err()
        {
            self.spool_intact = false;
        }
        self.spool_intact
    }

    /// SHA-256 and length of everything read.
    pub(super) fn digest(&self) -> Received {
        Received { sha256: hex::encode(self.hasher.clone().finalize()), len: self.len }
    }
}

impl<R: Read> Read for Source<'_, R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.failure.is_some() {
            return Err(self.repeat_failure());
        }
        if out.is_empty() {
            return Ok(0);
        }
        let n = if let (Some(prefix), true) = (&mut self.prefix, self.prefix_left > 0) {
            let max = out.len().min(usize::try_from(self.prefix_left).unwrap_or(usize::MAX));
            match prefix.read(&mut out[..max]) {
                Ok(0) => {
                    let left = self.prefix_left;
                    return Err(self.fail(Failure::Spool(format!("it ended {left} bytes early"))));
                }
                Ok(n) => {
                    self.prefix_left -= n as u64;
                    n
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => return Err(e),
                Err(e) => return Err(self.fail(Failure::Spool(e.to_string()))),
            }
        } else {
            match self.net.read(out) {
                Ok(n) => {
                    self.append(&out[..n]);
                    n
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => return Err(e),
                Err(e) => return Err(self.fail(Failure::Network(with_causes(&e)))),
            }
        };
        self.hasher.update(&out[..n]);
        self.len += n as u64;
        self.bar.inc(n as u64);
        Ok(n)
    }
}

/// Bytes per chunk the receiving thread hands to the decrypting one.
pub(super) const RECEIVE_CHUNK: usize = 256 * 1024;
/// Chunks waiting for the decrypting thread at most (memory stays bounded).
pub(super) const RECEIVE_QUEUE: usize = 8;

/// Reads `source` to its end in chunks and hands them to the decrypting
/// thread while it takes them; once it has stopped, the rest is read and
/// dropped (still hashed by `source`). A read error is passed on too.
/// Chunks the decrypting thread hands back on `spare` are read into again:
/// a new 256 KiB buffer for every chunk was mapped, faulted in, zeroed and
/// unmapped each time (`exc_page_fault`, `clear_page` and `memset` were
/// 5 % of this thread's time in a 1 GiB fetch).
pub(super) fn forward(
    source: &mut impl Read,
    to: &std::sync::mpsc::SyncSender<io::Result<Vec<u8>>>,
    spare: Option<&std::sync::mpsc::Receiver<Vec<u8>>>,
) -> io::Result<u64> {
    let mut listening = true;
    let mut total = 0u64;
    loop {
        let mut chunk = match spare.and_then(|s| s.try_recv().ok()) {
            Some(mut used) => {
                used.resize(RECEIVE_CHUNK, 0);
                used
            }
            None => vec![0u8; RECEIVE_CHUNK],
        };
        let mut filled = 0;
        let ended = loop {
            match source.read(&mut chunk[filled..]) {
                Ok(0) => break Ok(()),
                Ok(n) => {
                    filled += n;
                    if filled == chunk.len() {
                        break Ok(());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        total += filled as u64;
        let at_end = filled < chunk.len();
        if filled > 0 && listening {
            chunk.truncate(filled);
            listening = to.send(Ok(chunk)).is_ok();
        }
        match ended {
            Err(e) => {
                if listening {
                    let _ = to.send(Err(io::Error::new(e.kind(), e.to_string())));
                }
                return Err(e);
            }
            Ok(()) if at_end => return Ok(total),
            Ok(()) => {}
        }
    }
}

/// Reads the chunks [`forward`] hands over.
pub(super) struct ChunkReader {
    chunks: std::sync::mpsc::Receiver<io::Result<Vec<u8>>>,
    current: Vec<u8>,
    at: usize,
    /// Where read chunks go back to be filled again (see [`forward`]).
    back: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
}

impl ChunkReader {
    pub(super) fn new(chunks: std::sync::mpsc::Receiver<io::Result<Vec<u8>>>) -> Self {
        Self { chunks, current: Vec::new(), at: 0, back: None }
    }

    /// Hands every chunk it has read back on `back` (when there is room).
    pub(super) fn returning(self, back: std::sync::mpsc::SyncSender<Vec<u8>>) -> Self {
        Self { back: Some(back), ..self }
    }
}

impl Read for ChunkReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.at == self.current.len() {
            match self.chunks.recv() {
                Ok(Ok(chunk)) => {
                    let used = std::mem::replace(&mut self.current, chunk);
                    if let Some(back) = &self.back
                        && used.capacity() > 0
                    {
                        let _ = back.try_send(used);
                    }
                    self.at = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(0), // the sender is done: the end
            }
        }
        let n = out.len().min(self.current.len() - self.at);
        out[..n].copy_from_slice(&self.current[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}
