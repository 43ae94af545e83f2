//! Large ciphertexts written and read with `O_DIRECT`, past the page cache.
//!
//! Why: a ciphertext is written once and read once or twice, usually hours
//! later, so caching it buys nothing, while copying it into the page cache
//! was most of the hub's work when a large file arrived: 55-58 % of its CPU
//! time during a 1 GiB upload went to `copy_folio_from_iter_atomic`, and on
//! virtual machines whose host reclaims the guest's free memory, filling
//! fresh page-cache pages cost 2-3.5 s of system time per GiB (a cold
//! buffered read the same; `bench/RESULTS.md`, session 8). Direct I/O moves
//! the bytes between the disk and the hub's own buffer: 0.2-0.4 s per GiB.
//!
//! Only whole, aligned blocks go through `O_DIRECT`: an upload's last
//! partial block is written through an ordinary descriptor of the same file.
//! Where the file system refuses `O_DIRECT` (tmpfs on older kernels, some
//! network file systems) or on systems other than Linux, the callers fall
//! back to buffered I/O, so this is a speed-up, never a requirement.

use std::fs::File;
use std::io;
use std::path::Path;
use std::pin::Pin;

use bytes::Bytes;
use tokio::io::AsyncRead;

/// Alignment of buffers, offsets and lengths for `O_DIRECT`: 4 KiB covers
/// disks with 512-byte and 4 KiB logical blocks.
pub const ALIGN: usize = 4096;

/// Bytes per direct write or read: large enough that the disk, not the
/// number of system calls, sets the pace (1 GB/s here at 1 MiB, 0.7 at
/// 256 KiB).
pub const BLOCK_RUN: usize = 1024 * 1024;

/// A buffer whose usable part starts on an [`ALIGN`] boundary.
struct Aligned {
    /// The allocation, [`ALIGN`] longer than needed so an aligned start exists.
    raw: Vec<u8>,
    /// Where the aligned part starts in `raw`.
    start: usize,
}

impl Aligned {
    fn new(len: usize) -> io::Result<Self> {
        let raw = vec![0u8; len + ALIGN];
        let start = raw.as_ptr().align_offset(ALIGN);
        if start >= ALIGN {
            return Err(io::Error::other("cannot align a buffer for direct I/O"));
        }
        Ok(Self { raw, start })
    }

    fn get(&self, len: usize) -> &[u8] {
        &self.raw[self.start..self.start + len]
    }

    fn get_mut(&mut self, len: usize) -> &mut [u8] {
        &mut self.raw[self.start..self.start + len]
    }
}

#[cfg(target_os = "linux")]
fn open_direct(path: &Path, write: bool) -> Option<File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut options = std::fs::OpenOptions::new();
    if write {
        options.write(true);
    } else {
        options.read(true);
    }
    options.custom_flags(libc::O_DIRECT).open(path).ok()
}

#[cfg(not(target_os = "linux"))]
fn open_direct(_path: &Path, _write: bool) -> Option<File> {
    None
}

/// Writes a file from offset 0 in whole aligned blocks with `O_DIRECT`.
pub struct DirectWriter {
    /// The file, opened with `O_DIRECT`.
    file: File,
    /// Bytes waiting to make up a whole [`BLOCK_RUN`].
    buf: Aligned,
    /// How much of `buf` is filled.
    filled: usize,
    /// Bytes written to the file so far (always a multiple of [`ALIGN`]).
    written: u64,
}

impl DirectWriter {
    /// Opens `path` (which must exist, empty) for direct writing, or `None`
    /// if its file system does not allow it: write it the ordinary way then.
    pub fn open(path: &Path) -> Option<Self> {
        let file = open_direct(path, true)?;
        let buf = Aligned::new(BLOCK_RUN).ok()?;
        Some(Self { file, buf, filled: 0, written: 0 })
    }

    /// Adds `data` after what was written; whole runs go to the disk now.
    pub fn write(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let n = (BLOCK_RUN - self.filled).min(data.len());
            self.buf.get_mut(BLOCK_RUN)[self.filled..self.filled + n].copy_from_slice(&data[..n]);
            self.filled += n;
            data = &data[n..];
            if self.filled == BLOCK_RUN {
                self.write_whole_blocks()?;
            }
        }
        Ok(())
    }

    /// Writes the whole blocks held and keeps the rest (less than a block)
    /// at the front of the buffer.
    fn write_whole_blocks(&mut self) -> io::Result<()> {
        let whole = self.filled / ALIGN * ALIGN;
        if whole == 0 {
            return Ok(());
        }
        write_all_at(&self.file, self.buf.get(whole), self.written)?;
        self.written += whole as u64;
        let rest = self.filled - whole;
        self.buf.get_mut(BLOCK_RUN).copy_within(whole..self.filled, 0);
        self.filled = rest;
        Ok(())
    }

    /// Writes what is left: whole blocks directly, the last partial block
    /// through `tail`, the same file opened without `O_DIRECT`. Returns the
    /// file's length. The caller still fsyncs (the disk's cache and the
    /// file's size).
    pub fn finish(mut self, tail: &File) -> io::Result<u64> {
        self.write_whole_blocks()?;
        if self.filled > 0 {
            write_all_at(tail, self.buf.get(self.filled), self.written)?;
            self.written += self.filled as u64;
        }
        Ok(self.written)
    }
}

#[cfg(unix)]
fn write_all_at(file: &File, data: &[u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, data, offset)
}

#[cfg(not(unix))]
fn write_all_at(_file: &File, _data: &[u8], _offset: u64) -> io::Result<()> {
    Err(io::Error::other("direct I/O is only used on Linux"))
}

#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, offset)
}

#[cfg(not(unix))]
fn read_at(_file: &File, _buf: &mut [u8], _offset: u64) -> io::Result<usize> {
    Err(io::Error::other("direct I/O is only used on Linux"))
}

/// Streams bytes `start..len` of the file at `path` (whose length is `len`)
/// with direct reads, [`BLOCK_RUN`] at a time, at most two runs ahead of the
/// reader. Each read is its own trip to the blocking pool, so a client that
/// stops reading holds no thread (many stalled downloads must not starve the
/// database calls that share the pool). `None` if the file system does not
/// allow direct reads: read it the ordinary way then. Must be called within
/// the Tokio runtime.
pub fn reader(path: &Path, start: u64, len: u64) -> Option<Pin<Box<dyn AsyncRead + Send>>> {
    let file = std::sync::Arc::new(open_direct(path, false)?);
    let (sender, receiver) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(2);
    let path = path.to_owned();
    tokio::spawn(async move {
        let mut at = start / ALIGN as u64 * ALIGN as u64;
        let mut skip = (start - at) as usize;
        while at < len {
            let file = file.clone();
            // Allocated here, on a runtime worker, not on the blocking
            // thread: glibc gives every thread that allocates its own arena,
            // and 1 MiB buffers made on whichever blocking threads the reads
            // landed on left a few MiB in each of their arenas (the hub's
            // peak RSS during one 1 GiB download went from 28 to 35 MiB when
            // the machine was busy and more blocking threads took turns).
            let run = match Aligned::new(BLOCK_RUN) {
                Ok(run) => run,
                Err(e) => {
                    let _ = sender.send(Err(e)).await;
                    return;
                }
            };
            let read = tokio::task::spawn_blocking(move || read_run(&file, run, at)).await;
            let result = match read {
                Ok(Ok((_, 0))) => Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("{} ended at {at} bytes, before its {len}", path.display()),
                )),
                Ok(result) => result,
                Err(e) => Err(io::Error::other(format!("the reading thread failed: {e}"))),
            };
            let (bytes, n) = match result {
                Ok((run, n)) => {
                    let n = n.min(usize::try_from(len - at).unwrap_or(usize::MAX));
                    let begin = run.start + skip.min(n);
                    let end = run.start + n;
                    (Bytes::from(run.raw).slice(begin..end), n)
                }
                Err(e) => {
                    let _ = sender.send(Err(e)).await;
                    return;
                }
            };
            skip = 0;
            at += n as u64;
            if !bytes.is_empty() && sender.send(Ok(bytes)).await.is_err() {
                return; // the response was dropped: the client went away
            }
        }
    });
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|item| (item, receiver))
    });
    Some(Box::pin(tokio_util::io::StreamReader::new(stream)))
}

/// One direct read of up to [`BLOCK_RUN`] bytes at `at` (aligned). Only the
/// file's last read is short.
fn read_run(file: &File, mut run: Aligned, at: u64) -> io::Result<(Aligned, usize)> {
    let n = read_at(file, run.get_mut(BLOCK_RUN), at)?;
    Ok((run, n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt as _;

    /// Where every test here writes: beside the crate, on the same file
    /// system as the probe test checks, so that the tests below take the
    /// direct path and not only the fallback (`/tmp` may be a tmpfs).
    fn test_dir() -> tempfile::TempDir {
        tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap()
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 4093) as u8).collect()
    }

    /// Writes `data` in `piece`-sized writes the way the upload writer does
    /// (direct if allowed, else buffered) and returns whether it was direct.
    fn write_file(path: &Path, data: &[u8], piece: usize) -> bool {
        let tail = std::fs::OpenOptions::new().write(true).create(true).truncate(true).open(path).unwrap();
        match DirectWriter::open(path) {
            Some(mut w) => {
                for p in data.chunks(piece) {
                    w.write(p).unwrap();
                }
                assert_eq!(w.finish(&tail).unwrap(), data.len() as u64);
                true
            }
            None => {
                std::fs::write(path, data).unwrap();
                false
            }
        }
    }

    #[test]
    fn written_directly_reads_back_the_same_at_every_awkward_length() {
        let dir = test_dir();
        for len in [0, 1, ALIGN - 1, ALIGN, ALIGN + 1, BLOCK_RUN - 1, BLOCK_RUN, BLOCK_RUN + 1, 3 * BLOCK_RUN + 12345] {
            let data = pattern(len);
            for piece in [1000, 65536, 400_000] {
                let path = dir.path().join(format!("f-{len}-{piece}"));
                write_file(&path, &data, piece);
                assert_eq!(std::fs::read(&path).unwrap(), data, "length {len}, writes of {piece}");
            }
        }
    }

    #[test]
    fn this_test_machine_allows_direct_io_in_its_temporary_directory() {
        // The speed-up is only real if it is used: on the Linux machines that
        // run the tests and the benchmark (ext4), the direct path must open,
        // and then the other tests here (same directory) exercise it.
        if cfg!(target_os = "linux") {
            let dir = test_dir();
            let path = dir.path().join("probe");
            std::fs::write(&path, b"").unwrap();
            assert!(DirectWriter::open(&path).is_some(), "O_DIRECT refused in {}", dir.path().display());
        }
    }

    #[tokio::test]
    async fn direct_reads_return_any_range() {
        let dir = test_dir();
        let len = 2 * BLOCK_RUN + 777;
        let data = pattern(len);
        let path = dir.path().join("blob");
        write_file(&path, &data, 300_000);
        for start in [0, 1, ALIGN as u64 - 1, ALIGN as u64, BLOCK_RUN as u64 + 5, len as u64 - 1, len as u64] {
            let Some(mut r) = reader(&path, start, len as u64) else {
                return; // this file system does not allow direct reads
            };
            let mut got = Vec::new();
            r.read_to_end(&mut got).await.unwrap();
            assert_eq!(got, data[start as usize..], "from {start}");
        }
    }

    #[test]
    fn stalled_downloads_hold_no_blocking_thread() {
        // One blocking thread: if a download that nobody reads kept it
        // waiting, the database calls that share the pool would stop.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .max_blocking_threads(1)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let dir = test_dir();
            let len = 8 * BLOCK_RUN;
            let path = dir.path().join("blob");
            write_file(&path, &pattern(len), BLOCK_RUN);
            let mut stalled = Vec::new();
            for _ in 0..3 {
                let Some(r) = reader(&path, 0, len as u64) else { return };
                stalled.push(r); // never read
            }
            tokio::time::sleep(std::time::Duration::from_millis(300)).await; // their queues fill
            let answer =
                tokio::time::timeout(std::time::Duration::from_secs(10), tokio::task::spawn_blocking(|| 42)).await;
            assert_eq!(answer.expect("a stalled download holds the only blocking thread").unwrap(), 42);
            drop(stalled);
        });
    }

    #[tokio::test]
    async fn a_file_shorter_than_promised_is_an_error_not_a_short_read() {
        let dir = test_dir();
        let data = pattern(10_000);
        let path = dir.path().join("blob");
        write_file(&path, &data, 10_000);
        let Some(mut r) = reader(&path, 0, 20_000) else { return };
        let mut got = Vec::new();
        let err = r.read_to_end(&mut got).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert!(err.to_string().contains("before its 20000"), "{err}");
    }
}
