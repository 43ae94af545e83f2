//! Uploading a drop's ciphertext, and continuing an upload that was cut off.
//!
//! Three stages run at once so that two cores share the work: the
//! *producer* thread tars and age-encrypts; the *tee* thread hashes the
//! ciphertext and, for a large drop, keeps the newest [`WINDOW`] bytes of it
//! (in a ring in the page cache, see [`Resumable`]); the calling thread
//! sends it to the hub in large writes. Memory is bounded by the chunks in
//! flight (`CHUNK` x (`DEPTH` + `DEPTH`) = 4 MiB), whatever the size of the drop.
//!
//! Why keep ciphertext at all: age picks a random file key, so encrypting
//! the same files again gives different bytes and a cut-off upload cannot
//! be continued by encrypting again. The hub keeps every byte it received
//! when a connection breaks, so what the client must still have is only
//! what was in flight: the window. When the upload breaks, the window and
//! everything encrypted after it go to a spool file (`<state>/outgoing/`),
//! and the upload is continued from there (`GET /v1/drops/{id}/upload` says
//! how much the hub holds, the `sealdrop-upload-offset` header continues
//! from there), at once and, if the hub stays unreachable, by running the
//! same `sealdrop send` again ([`Pending`]). A send that never breaks
//! leaves nothing on disk, and one shorter than the kernel's write-back
//! delay writes nothing to it: before, the whole ciphertext was copied to
//! the spool as it was sent, which halved the speed of a large send on a
//! machine whose disk the hub shares. The hub hashes the whole upload
//! again, so the digest the signed manifest states still covers every byte.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use bytes::Bytes;
use sha2::{Digest, Sha256};

use sealdrop_proto::api::{UploadProgress, code};
use sealdrop_proto::ids::{DropId, PartyId};

use sealdrop_proto::age_keys::AgeRecipient;

use crate::archive;
use crate::error::{Error, ErrorCode, Kind, Result};
use crate::outgoing::{Pending, SpoolDigest, discard, outgoing_dir, spool_paths};
use crate::pipe::Digested;
use crate::transport::{CHUNK, HubApi, feed};

/// Chunks waiting between two stages at most.
const DEPTH: usize = 8;
/// Immediate attempts to continue a cut-off upload from the spool before
/// giving up and telling the user to run the command again.
const RETRIES: u32 = 3;
/// The newest ciphertext kept while an upload runs: more than can be in
/// flight between the encryption and the hub's file when the connection
/// breaks (this client's queues, 4 MiB; both ends' socket buffers, up to
/// `tcp_wmem` and half of `tcp_rmem`'s largest, 4 + 16 MiB by default; the
/// hub's writer queue, a few MiB).
pub const WINDOW: u64 = 32 * 1024 * 1024;

/// The ciphertext of a drop worth continuing, kept while it uploads: the
/// newest [`WINDOW`] bytes while the upload goes well, then, from the
/// moment it breaks ([`Resumable::spill`]), everything from the oldest byte
/// kept on, in the spool file.
///
/// While the upload goes well the window is a ring in an unnamed file (in
/// the spool's folder), written at each byte's offset modulo the window: its
/// pages live in the page cache, not in this process's memory, which the
/// window held before (24 MiB of a send's 40 MiB peak). Pages written over
/// and over are reused, not taken fresh, and a file deleted before the
/// kernel writes it back (30 s) never reaches the disk; an unnamed file
/// leaves nothing behind, whatever ends the process.
pub struct Resumable {
    /// Where the spool goes.
    path: PathBuf,
    /// How much to keep before a spill.
    limit: u64,
    /// The ring (before a spill; made at the first byte).
    ring: Option<File>,
    /// Bytes of ciphertext seen.
    seen: u64,
    /// The offset of the first byte kept (in the ring or in the spool).
    base: u64,
    /// The spool file, once spilled.
    file: Option<File>,
}

impl Resumable {
    /// Keeps the newest `limit` bytes; spills to `path`.
    pub fn new(path: PathBuf, limit: u64) -> Self {
        Self { path, limit: limit.max(1), ring: None, seen: 0, base: 0, file: None }
    }

    /// Keeps the next chunk of the ciphertext.
    pub fn keep(&mut self, chunk: &[u8]) -> io::Result<()> {
        use std::os::unix::fs::FileExt as _;
        if let Some(file) = self.file.as_mut() {
            return file.write_all(chunk);
        }
        let ring = match &mut self.ring {
            Some(ring) => ring,
            None => {
                let dir = self.path.parent().unwrap_or(Path::new("."));
                self.ring.insert(tempfile::tempfile_in(dir)?)
            }
        };
        let mut rest = chunk;
        let mut at = self.seen;
        while !rest.is_empty() {
            let offset = at % self.limit;
            let n = rest.len().min(usize::try_from(self.limit - offset).unwrap_or(usize::MAX));
            ring.write_all_at(&rest[..n], offset)?;
            rest = &rest[n..];
            at += n as u64;
        }
        self.seen = at;
        self.base = self.seen.saturating_sub(self.limit);
        Ok(())
    }

    /// Writes what the ring holds, oldest first, to the spool file (mode
    /// 0600) and keeps every later chunk there; the spool then holds the
    /// ciphertext from [`Resumable::base`] on.
    pub fn spill(&mut self) -> io::Result<()> {
        use std::os::unix::fs::FileExt as _;
        if self.file.is_some() {
            return Ok(());
        }
        let mut file = {
            use std::os::unix::fs::OpenOptionsExt as _;
            std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&self.path)?
        };
        if let Some(ring) = self.ring.take() {
            let mut buf = vec![0u8; CHUNK];
            let mut at = self.base;
            while at < self.seen {
                let offset = at % self.limit;
                let n = (self.seen - at).min(self.limit - offset).min(CHUNK as u64) as usize;
                ring.read_exact_at(&mut buf[..n], offset)?;
                file.write_all(&buf[..n])?;
                at += n as u64;
            }
        }
        self.file = Some(file);
        Ok(())
    }

    /// Whether the ciphertext went to the spool file.
    pub fn spilled(&self) -> bool {
        self.file.is_some()
    }

    /// The offset of the first byte kept.
    pub fn base(&self) -> u64 {
        self.base
    }

    /// Makes the spool durable, if there is one.
    fn sync(&self) -> io::Result<()> {
        self.file.as_ref().map_or(Ok(()), File::sync_data)
    }
}

/// Hands a stream's bytes on in chunks of [`CHUNK`].
struct ChunkWriter {
    tx: SyncSender<Message>,
    buf: Vec<u8>,
}

impl ChunkWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.tx
            .send(Ok(Some(Bytes::from(chunk))))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the upload stopped"))
    }
}

impl Write for ChunkWriter {
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

/// A message between the producer and the tee: a chunk, or `None` at the
/// clean end (a channel that closes without it means the producer died).
type Message = io::Result<Option<Bytes>>;

/// A fingerprint of a send request: the same files (by path, size and
/// modification time), recipients, agreement and expiry give the same one.
pub fn fingerprint(plan: &archive::Plan, recipients: &[PartyId], agreement: &str, expires: Option<&str>) -> String {
    let mut h = Sha256::new();
    let mut field = |bytes: &[u8]| {
        h.update((bytes.len() as u64).to_be_bytes());
        h.update(bytes);
    };
    let mut parties: Vec<&str> = recipients.iter().map(PartyId::as_str).collect();
    parties.sort_unstable();
    for p in parties {
        field(p.as_bytes());
    }
    field(agreement.as_bytes());
    field(expires.unwrap_or("").as_bytes());
    for item in &plan.items {
        let source = std::fs::canonicalize(&item.source).unwrap_or_else(|_| item.source.clone());
        let modified = std::fs::metadata(&item.source)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        field(source.to_string_lossy().as_bytes());
        field(item.name.as_bytes());
        field(&item.size.to_be_bytes());
        field(&modified.to_be_bytes());
        field(&[u8::from(item.is_dir)]);
    }
    hex::encode(h.finalize())
}

/// A new drop's upload.
pub struct NewUpload<'a> {
    /// The hub, as the sending member.
    pub hub: &'a HubApi,
    /// The open drop.
    pub id: &'a DropId,
    /// What to tar.
    pub plan: &'a archive::Plan,
    /// Who can decrypt it: each key's name and age recipient.
    pub recipients: Vec<(String, AgeRecipient)>,
    /// The state folder and the record to keep beside a spool, for a drop
    /// large enough to be worth continuing; `None` streams without a copy.
    pub spool: Option<(&'a Path, Pending)>,
    /// No notes on stderr.
    pub quiet: bool,
}

/// Tars, pads and encrypts `plan` to `recipients` in memory when the
/// ciphertext fits in `limit` bytes (a drop small enough for one request),
/// or `None` when it does not (nothing is encrypted if the padded archive
/// alone is over `limit`).
pub fn encrypt_small(
    plan: &archive::Plan,
    recipients: &[(String, AgeRecipient)],
    limit: u64,
    on_bytes: impl FnMut(u64),
) -> Result<Option<Vec<u8>>> {
    if crate::padding::progress_len(plan) >= limit {
        return Ok(None);
    }
    let (encryptor, _) = crate::age_keys::encryptor(recipients)?;
    let encrypted = (|| {
        let sink = encryptor.wrap_output(Vec::new())?;
        crate::padding::write_padded(plan, sink, on_bytes)?.finish()
    })()
    .map_err(|e| {
        Error::new(ErrorCode::ReadFailed, format!("could not read and encrypt the files: {e}; nothing was committed"))
    })?;
    Ok((encrypted.len() as u64 <= limit).then_some(encrypted))
}

/// Tars, encrypts and uploads a new drop; returns the digest of the
/// ciphertext the hub holds. With `spool`, the newest ciphertext is kept in
/// memory ([`Resumable`]); if the upload is cut off it goes to the spool,
/// the upload is continued from there (up to `RETRIES` times) and, failing
/// that, its record is kept so the same send run again continues it; the
/// caller discards the spool after the commit.
pub fn upload_new(u: NewUpload<'_>, on_bytes: impl FnMut(u64) + Send + 'static) -> Result<Digested> {
    let NewUpload { hub, id, plan, recipients, spool, quiet } = u;
    // Made here, not in the producer: a missing plugin or keys that cannot
    // share a drop are refused before anything is sent.
    let (encryptor, _) = crate::age_keys::encryptor(&recipients)?;
    let resumable = match &spool {
        Some((state_dir, _)) => {
            crate::fsutil::create_private_dir(&outgoing_dir(state_dir))?;
            let (path, _) = spool_paths(state_dir, id);
            Some(Resumable::new(path, WINDOW))
        }
        None => None,
    };

    let (tx1, rx1) = sync_channel::<Message>(DEPTH);
    let producer = {
        let plan = plan.clone();
        std::thread::spawn(move || produce(&plan, encryptor, tx1, on_bytes))
    };
    let (tx2, rx2) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(DEPTH);
    let tee = std::thread::spawn(move || tee(rx1, tx2, resumable));
    let uploaded = hub.upload(id, None, rx2);
    let produced = producer.join().map_err(|_| crashed("encrypting"))?;
    let teed = tee.join().map_err(|_| crashed("hashing"))?;

    // Without a local copy, an upload that stops (the hub went away) stops
    // the tee and the producer with a broken pipe: the upload's own error
    // says what happened, not theirs.
    fn upload_stopped<T>(r: &io::Result<T>) -> bool {
        r.as_ref().is_err_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    }
    if let (None, Err(e)) = (&spool, &uploaded)
        && (upload_stopped(&produced) || upload_stopped(&teed))
    {
        return Err(e.clone());
    }
    let state_dir = spool.as_ref().map(|(state_dir, _)| *state_dir);
    let discard_spool = || {
        if let Some(state_dir) = state_dir {
            discard(state_dir, id);
        }
    };
    let (digest, resumable) = match (produced, teed) {
        (Err(e), _) => {
            discard_spool();
            return Err(Error::new(
                ErrorCode::ReadFailed,
                format!("could not read and encrypt the files: {e}; nothing was committed"),
            ));
        }
        (Ok(()), Err(e)) => {
            discard_spool();
            return Err(Error::io("cannot keep the local copy of the ciphertext for resuming".to_owned(), e));
        }
        (Ok(()), Ok(done)) => done,
    };
    match (uploaded, spool, resumable) {
        (Ok(u), _, resumable) => {
            if resumable.is_some_and(|r| r.spilled()) {
                discard_spool();
            }
            check_same(&digest, u.sha256, u.len)?;
            Ok(digest)
        }
        (Err(e), Some((state_dir, mut pending)), Some(mut kept)) if e.kind == Kind::Unreachable => {
            let local_copy = |e: io::Error| Error::io("cannot keep the local copy of the ciphertext for resuming", e);
            if let Err(err) = kept.spill().and_then(|()| kept.sync()) {
                discard(state_dir, id);
                return Err(local_copy(err));
            }
            pending.base = kept.base();
            pending.digest = Some(SpoolDigest { sha256: digest.sha256.clone(), len: digest.len });
            pending.save(state_dir)?;
            let (path, _) = spool_paths(state_dir, id);
            let mut last = e;
            for attempt in 0..RETRIES {
                std::thread::sleep(std::time::Duration::from_millis(500 << attempt));
                if !quiet {
                    eprintln!(
                        "note: the upload of drop {id} was cut off ({}); continuing from the local copy",
                        last.message
                    );
                }
                match continue_upload(hub, id, &path, pending.base, &digest) {
                    Ok(()) => return Ok(digest),
                    Err(e) if e.kind == Kind::Unreachable => last = e,
                    Err(e) => return Err(e),
                }
            }
            // Still unreachable (only that kind is retried): the hub's
            // silence keeps its code and exit status, with what is kept.
            let message = format!(
                "{}; the upload of drop {id} was cut off, and the encrypted copy is kept: run the same `sealdrop send` again to continue it",
                last.message
            );
            Err(Error { message, ..last })
        }
        (Err(e), _, _) => {
            discard_spool();
            Err(e)
        }
    }
}

fn crashed(what: &str) -> Error {
    Error::new(ErrorCode::Internal, format!("the {what} thread crashed; nothing was committed"))
}

/// The mismatch error when the hub holds other bytes than were sent.
fn check_same(sent: &Digested, sha256: String, len: u64) -> Result<()> {
    if sha256 == sent.sha256 && len == sent.len {
        return Ok(());
    }
    Err(Error::new(
        ErrorCode::UploadCorrupted,
        format!(
            "the hub received {len} bytes with SHA-256 {sha256} but {} bytes with {} were sent; nothing was committed, try again",
            sent.len, sent.sha256
        ),
    ))
}

/// The producer: tar, pad to the size class and age-encrypt `plan` into chunks on `tx`.
fn produce(
    plan: &archive::Plan,
    encryptor: age::Encryptor,
    tx: SyncSender<Message>,
    on_bytes: impl FnMut(u64),
) -> io::Result<()> {
    let result = (|| {
        let sink = encryptor.wrap_output(ChunkWriter { tx: tx.clone(), buf: Vec::with_capacity(CHUNK) })?;
        let mut chunks = crate::padding::write_padded(plan, sink, on_bytes)?.finish()?;
        chunks.send()
    })();
    let last = match &result {
        Ok(()) => Ok(None),
        Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
    };
    let _ = tx.send(last);
    result
}

/// The tee: hashes every chunk, keeps it if the drop is worth continuing,
/// and passes it to the upload. When the upload stops early, what is kept
/// goes to the spool and encryption goes on into it (so the upload can be
/// continued); without it there is nothing left to do and the producer is
/// stopped.
fn tee(
    rx: Receiver<Message>,
    tx: tokio::sync::mpsc::Sender<io::Result<Bytes>>,
    mut kept: Option<Resumable>,
) -> io::Result<(Digested, Option<Resumable>)> {
    let mut hasher = Sha256::new();
    let mut len: u64 = 0;
    let mut forwarding = true;
    let fail = |tx: &tokio::sync::mpsc::Sender<io::Result<Bytes>>, e: io::Error| {
        let _ = tx.blocking_send(Err(io::Error::new(e.kind(), e.to_string())));
        e
    };
    loop {
        let chunk = match rx.recv() {
            Ok(Ok(Some(chunk))) => chunk,
            Ok(Ok(None)) => break,
            Ok(Err(e)) => return Err(fail(&tx, e)),
            Err(_) => return Err(fail(&tx, io::Error::other("the encrypting thread stopped"))),
        };
        // Ctrl-C: stop feeding the upload (the hub is told to withdraw the
        // drop; see `crate::interrupt`).
        if crate::interrupt::requested() {
            return Err(fail(&tx, io::Error::new(io::ErrorKind::Interrupted, "interrupted")));
        }
        hasher.update(&chunk);
        len += chunk.len() as u64;
        if let Some(k) = kept.as_mut()
            && let Err(e) = k.keep(&chunk)
        {
            return Err(fail(&tx, e));
        }
        if forwarding && tx.blocking_send(Ok(chunk)).is_err() {
            forwarding = false;
            match kept.as_mut() {
                None => return Err(io::Error::new(io::ErrorKind::BrokenPipe, "the upload stopped")),
                Some(k) => k.spill()?,
            }
        }
    }
    Ok((Digested { sha256: hex::encode(hasher.finalize()), len }, kept))
}

/// Continues the upload of drop `id` from its finished spool, which holds
/// the ciphertext from byte `base` on: asks the hub how much it holds and
/// sends the rest (from byte 0 if what it holds cannot be a prefix, or turns
/// out not to be one, and the spool has it). When the hub holds less than
/// the spool starts with (it lost bytes in a crash), the upload cannot be
/// continued: the error is [`Kind::Refused`], and the send starts afresh.
pub fn continue_upload(hub: &HubApi, id: &DropId, spool: &Path, base: u64, digest: &Digested) -> Result<()> {
    let mut from_start = false;
    loop {
        let progress: UploadProgress = hub.upload_progress(id)?;
        if progress.complete && progress.received == digest.len && !from_start {
            // Everything arrived before the answer was lost; the commit
            // checks the hub's digest against the signed manifest.
            return Ok(());
        }
        let offset = if from_start || progress.received > digest.len { 0 } else { progress.received };
        if offset < base {
            return Err(Error::new(
                ErrorCode::UploadNotContinuable,
                format!(
                    "the hub holds {offset} bytes of drop {id} and the local copy starts at byte {base}: the upload cannot be continued; run the same `sealdrop send` again to send it afresh"
                ),
            ));
        }
        let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(DEPTH);
        let path = spool.to_owned();
        let reader = std::thread::spawn(move || read_from(&path, offset - base, tx));
        let uploaded = hub.upload(id, Some(offset), rx);
        let read = reader.join().map_err(|_| crashed("reading"))?;
        match uploaded {
            Ok(u) if u.sha256 == digest.sha256 && u.len == digest.len => return Ok(()),
            // The bytes the hub kept were not a prefix of ours: start over once.
            Ok(_) if offset > 0 && !from_start => from_start = true,
            Ok(u) => return check_same(digest, u.sha256, u.len),
            Err(e) if e.code == code::UPLOAD_OFFSET_MISMATCH => {}
            Err(e) => {
                read.map_err(|e| Error::io(format!("cannot read the local copy of drop {id}"), e))?;
                return Err(e);
            }
        }
    }
}

/// Feeds the spool from `offset` to the upload.
fn read_from(path: &Path, offset: u64, tx: tokio::sync::mpsc::Sender<io::Result<Bytes>>) -> io::Result<()> {
    use std::io::{Seek, SeekFrom};
    let opened = File::open(path).and_then(|mut f| f.seek(SeekFrom::Start(offset)).map(|_| f));
    match opened {
        Ok(file) => feed(file, &tx),
        Err(e) => {
            let _ = tx.blocking_send(Err(io::Error::new(e.kind(), e.to_string())));
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(sizes: &[usize]) -> (Vec<Bytes>, Vec<u8>) {
        let mut all = Vec::new();
        let chunks = sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| {
                let c: Vec<u8> = (0..n).map(|j| (i * 7 + j) as u8).collect();
                all.extend_from_slice(&c);
                Bytes::from(c)
            })
            .collect();
        (chunks, all)
    }

    #[test]
    fn a_send_that_never_breaks_keeps_only_the_window_and_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.age");
        let mut kept = Resumable::new(path.clone(), 1000);
        let (all, _) = chunks(&[400, 400, 400, 400]);
        for c in &all {
            kept.keep(c).unwrap();
        }
        assert_eq!(kept.base(), 600, "the newest 1000 bytes are kept");
        assert!(!kept.spilled());
        assert!(!path.exists(), "no spool while the upload goes well");
        drop(kept);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "the ring has no name to leave behind");
    }

    #[test]
    fn a_spill_before_the_ring_wraps_starts_at_byte_0() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.age");
        let mut kept = Resumable::new(path.clone(), 1000);
        let (all, bytes) = chunks(&[300, 300, 300]);
        kept.keep(&all[0]).unwrap();
        kept.keep(&all[1]).unwrap();
        kept.spill().unwrap();
        kept.keep(&all[2]).unwrap();
        assert_eq!(kept.base(), 0);
        assert!(std::fs::read(&path).unwrap() == bytes, "the spool holds every byte");
    }

    #[test]
    fn a_broken_upload_spills_the_window_and_everything_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.age");
        let mut kept = Resumable::new(path.clone(), 1000);
        let (all, bytes) = chunks(&[300, 300, 300, 300, 300, 50]);
        // 1200 bytes: the ring has wrapped, and its oldest byte is in the middle.
        for c in &all[..4] {
            kept.keep(c).unwrap();
        }
        kept.spill().unwrap();
        kept.spill().unwrap(); // a second spill changes nothing
        for c in &all[4..] {
            kept.keep(c).unwrap();
        }
        kept.sync().unwrap();
        assert_eq!(kept.base(), 200);
        assert!(std::fs::read(&path).unwrap() == bytes[200..], "the spool holds the ciphertext from its base on");
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
}
