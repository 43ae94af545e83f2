//! Plumbing for streaming: readers and writers that hash what passes
//! through them, and progress bars. (The upload's own stages are in
//! [`crate::upload`].)

use std::io::{self, Read, Write};

use sha2::{Digest, Sha256};

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
