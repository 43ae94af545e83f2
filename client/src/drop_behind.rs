//! Writing a large file this process will not read back (a fetched drop's
//! files, the local copy of its ciphertext) without filling the page cache.
//!
//! Why: on virtual machines whose host takes back the guest's free memory
//! (free page reporting), every page the page cache takes fresh costs a
//! fault in the host. A fetch of 1 GiB writes 2 GiB (the local copy and the
//! unpacked file), and `perf` put 44 % of the client's CPU time in
//! `copy_folio_from_iter_atomic`, about 1.5 s of system time per GiB
//! written (`bench/RESULTS.md`, session 16; the hub met the same with its
//! blobs and reads and writes those with direct I/O). Telling the kernel
//! every [`STEP`] bytes that what was written is not needed
//! (`POSIX_FADV_DONTNEED`) starts its write-back at once and frees the
//! pages already written back, so the next writes take pages the kernel
//! just freed, still backed by the host: 0.3 s of system time per GiB
//! instead of 1.1-1.5. Nothing about the bytes changes: they are written
//! as before, and read back from the disk if anyone reads them.

use std::fs::File;
use std::io::{self, Write};

/// Bytes written between two pieces of advice: a few system calls per
/// 100 MiB, and at most about this much (plus what is still being written
/// back) of the file in the page cache.
pub const STEP: u64 = 8 * 1024 * 1024;

/// Tells the kernel that `file`'s pages are not needed: dirty ones are
/// written back (without waiting), clean ones are dropped. Advice only: a
/// failure (a file system that ignores it) changes nothing and is ignored.
pub fn advise_done(file: &File) {
    let _ = rustix::fs::fadvise(file, 0, None, rustix::fs::Advice::DontNeed);
}

/// A [`Write`] to a file that gives [`advise_done`] every [`STEP`] bytes.
/// Put a `BufWriter` in front of it for small writes.
pub struct DropBehind<'a> {
    file: &'a File,
    since: u64,
}

impl<'a> DropBehind<'a> {
    /// Writes to `file` at its current position (or its end, if opened to append).
    pub fn new(file: &'a File) -> Self {
        Self { file, since: 0 }
    }

    /// Counts `n` bytes just written to `file` by someone else, and advises
    /// when a [`STEP`] is full.
    pub fn wrote(file: &File, since: &mut u64, n: usize) {
        *since += n as u64;
        if *since >= STEP {
            *since = 0;
            advise_done(file);
        }
    }
}

impl Write for DropBehind<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        Self::wrote(self.file, &mut self.since, n);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;

    #[test]
    fn every_byte_written_reads_back_across_several_steps() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let file = File::create(&path).unwrap();
        let len = usize::try_from(2 * STEP + 12_345).unwrap();
        let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let mut w = io::BufWriter::with_capacity(256 * 1024, DropBehind::new(&file));
        // Uneven writes, so steps fall inside writes.
        for piece in data.chunks(100_003) {
            w.write_all(piece).unwrap();
        }
        w.flush().unwrap();
        drop(w);
        let mut back = Vec::new();
        File::open(&path).unwrap().read_to_end(&mut back).unwrap();
        assert!(back == data, "the file reads back as written ({} of {} bytes)", back.len(), data.len());
    }
}
