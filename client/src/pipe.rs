//! Plumbing for streaming: an in-process pipe (so one thread can tar and
//! encrypt while another uploads), and readers/writers that hash what passes
//! through them. Nothing here ever holds more than a few chunks in memory.

use std::io::{self, Read, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use sha2::{Digest, Sha256};

/// Size of the chunks that cross the pipe.
const CHUNK: usize = 64 * 1024;
/// Chunks in flight at most: bounds memory at CHUNK * DEPTH.
const DEPTH: usize = 16;

/// The writing end of [`pipe`].
pub struct PipeWriter {
    tx: SyncSender<io::Result<Vec<u8>>>,
    buf: Vec<u8>,
}

/// The reading end of [`pipe`].
pub struct PipeReader {
    rx: Receiver<io::Result<Vec<u8>>>,
    chunk: Vec<u8>,
    pos: usize,
}

/// A bounded in-process pipe.
pub fn pipe() -> (PipeWriter, PipeReader) {
    let (tx, rx) = sync_channel(DEPTH);
    (PipeWriter { tx, buf: Vec::with_capacity(CHUNK) }, PipeReader { rx, chunk: Vec::new(), pos: 0 })
}

impl PipeWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.tx.send(Ok(chunk)).map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the upload stopped"))
    }

    /// Flushes what is buffered and closes the pipe: the reader sees the end.
    pub fn finish(mut self) -> io::Result<()> {
        self.send()
    }

    /// Makes the reader fail with `err` instead of seeing a clean end, so a
    /// failed producer can never look like a short but complete stream.
    pub fn fail(self, err: io::Error) {
        let _ = self.tx.send(Err(err));
    }

    /// A handle that can fail the pipe after the writer has been moved into
    /// a chain of writers. The reader sees the end only when the writer and
    /// every failer are gone.
    pub fn failer(&self) -> PipeFailer {
        PipeFailer { tx: self.tx.clone() }
    }
}

/// Fails a pipe from outside its writer (see [`PipeWriter::failer`]).
pub struct PipeFailer {
    tx: SyncSender<io::Result<Vec<u8>>>,
}

impl PipeFailer {
    /// Makes the reader fail with `err`.
    pub fn fail(self, err: io::Error) {
        let _ = self.tx.send(Err(err));
    }
}

impl Write for PipeWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == CHUNK {
            self.send()?;
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for PipeReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.chunk.len() {
            match self.rx.recv() {
                Ok(Ok(chunk)) => {
                    self.chunk = chunk;
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.chunk.len() - self.pos);
        out[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// SHA-256 and length of a stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Digested {
    /// Hex SHA-256.
    pub sha256: String,
    /// Bytes.
    pub len: u64,
}

/// A writer that hashes and counts what it passes on.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    len: u64,
}

impl<W: Write> HashingWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        Self { inner, hasher: Sha256::new(), len: 0 }
    }
    /// The inner writer and the digest of everything written.
    pub fn finish(self) -> (W, Digested) {
        (self.inner, Digested { sha256: hex::encode(self.hasher.finalize()), len: self.len })
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(data)?;
        self.hasher.update(&data[..n]);
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that hashes and counts what it reads, and can report progress.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    len: u64,
    progress: Option<indicatif::ProgressBar>,
}

impl<R: Read> HashingReader<R> {
    /// Wraps `inner`.
    pub fn new(inner: R, progress: Option<indicatif::ProgressBar>) -> Self {
        Self { inner, hasher: Sha256::new(), len: 0, progress }
    }
    /// The digest of everything read so far.
    pub fn digest(&self) -> Digested {
        Digested { sha256: hex::encode(self.hasher.clone().finalize()), len: self.len }
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(out)?;
        self.hasher.update(&out[..n]);
        self.len += n as u64;
        if let Some(p) = &self.progress {
            p.inc(n as u64);
        }
        Ok(n)
    }
}

/// A reader that reports progress as it is read.
pub struct ProgressReader<R> {
    inner: R,
    progress: indicatif::ProgressBar,
}

impl<R> ProgressReader<R> {
    /// Wraps `inner`.
    pub fn new(inner: R, progress: indicatif::ProgressBar) -> Self {
        Self { inner, progress }
    }
}

impl<R: Read> Read for ProgressReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(out)?;
        self.progress.inc(n as u64);
        Ok(n)
    }
}

/// A progress bar on stderr, hidden when stderr is not a terminal.
pub fn progress_bar(total: u64, message: &str, quiet: bool) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if quiet || !io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(message.to_owned());
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipe_carries_everything_in_order() {
        let (mut w, mut r) = pipe();
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        let expected = data.clone();
        let t = std::thread::spawn(move || {
            for c in data.chunks(7777) {
                w.write_all(c).unwrap();
            }
            w.finish().unwrap();
        });
        let mut got = Vec::new();
        r.read_to_end(&mut got).unwrap();
        t.join().unwrap();
        assert_eq!(got, expected);
    }

    #[test]
    fn a_failed_writer_fails_the_reader() {
        let (mut w, mut r) = pipe();
        w.write_all(b"partial").unwrap();
        w.fail(io::Error::other("disk on fire"));
        let mut got = Vec::new();
        assert_eq!(r.read_to_end(&mut got).unwrap_err().to_string(), "disk on fire");
    }

    #[test]
    fn hashing_matches_sha256() {
        let mut w = HashingWriter::new(Vec::new());
        w.write_all(b"abc").unwrap();
        let (inner, d) = w.finish();
        assert_eq!(inner, b"abc");
        assert_eq!(d.sha256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        let mut r = HashingReader::new(&b"abc"[..], None);
        io::copy(&mut r, &mut io::sink()).unwrap();
        assert_eq!(r.digest(), d);
    }
}
