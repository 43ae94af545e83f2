//! Step 3a: encrypting every missing part into the spool, from a second
//! read of the input.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::mpsc::{SyncSender, sync_channel};

use sealdrop_proto::ids::PartyId;
use sealdrop_proto::padding::padding_for;

use super::layout::Layout;
use super::route::{Route, Router};
use super::table::BackgroundSha256;
use super::upload::Spooled;
use super::{Plan, SplitRequest, progress, table};
use crate::context::{Session, Settings};
use crate::error::{Error, ErrorCode, Result};
use crate::pipe::{Digested, HashingWriter};

/// Rows are handed to the encrypting thread in batches of about this size.
const BATCH: usize = 64 << 10;
/// The encrypting thread's word for "the input no longer matches the plan".
const CHANGED: &str = "the input changed";
/// Threads encrypting parts (each owns every `ENCRYPTORS`-th part): with
/// one, the parse thread waited on it.
const ENCRYPTORS: usize = 2;

/// One recipient's stream: tar framing around its CSV, padded to its size
/// class, age-encrypted to its keys, hashed, into a spool file.
pub(super) struct PartWriter {
    sink: age::stream::StreamWriter<HashingWriter<BufWriter<File>>>,
    /// CSV bytes promised in the tar header.
    expected: u64,
    written: u64,
}

impl PartWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.written += bytes.len() as u64;
        self.sink.write_all(bytes)
    }

    fn finish(mut self) -> std::io::Result<Digested> {
        if self.written != self.expected {
            return Err(std::io::Error::other(CHANGED));
        }
        // Pad the file to a whole tar block, then the two empty end blocks,
        // then zeros to the archive's size class (as `send` does).
        let pad = (512 - self.written % 512) % 512;
        let archive = 512 + self.written + pad + 1024;
        crate::padding::write_zeros(&mut self.sink, pad + 1024 + padding_for(archive))?;
        let (mut file, digest) = self.sink.finish()?.finish();
        file.flush()?;
        Ok(digest)
    }
}

/// Step 3a: the second read of the input. Rows are batched per recipient by
/// this thread and encrypted by others, so reading and encryption use both
/// cores. When pass one recorded where every row is ([`Plan::layout`]),
/// rows are sliced out of the file without parsing it again.
pub(super) fn encrypt_parts(
    settings: &Settings,
    session: &Session,
    plan: &Plan,
    req: &SplitRequest,
    spool: &Path,
) -> Result<Vec<Spooled>> {
    let dir = &session.directory.directory;
    let progress = progress(settings, &req.input, "encrypting");
    // The parser, only when there is no layout to slice by.
    let mut source = match &plan.layout {
        Some(_) => None,
        None => {
            let mut s = table::open(&req.input, req.sheet.as_deref(), req.encoding, progress.clone())?;
            let col = table::find_column(s.header(), &req.column, &req.input).or_else(|e| s.checked().and(Err(e)))?;
            Some((s, col))
        }
    };
    let (preamble, terminator) = match (&plan.layout, &source) {
        (Some(l), _) => (l.preamble.clone(), l.terminator),
        (None, Some((s, _))) => (s.preamble().to_vec(), s.terminator()),
        (None, None) => return Err(Error::new(ErrorCode::Internal, "no way to read the input")),
    };
    let mtime = u64::try_from(settings.clock.now().as_second()).unwrap_or(0);

    // Parts to encrypt, by recipient.
    let mut index_of: HashMap<PartyId, usize> = HashMap::new();
    let mut writers: Vec<PartWriter> = Vec::new();
    let mut spooled = Vec::new();
    for (i, p) in plan.parts.iter().enumerate() {
        if p.already_sent.is_some() {
            continue;
        }
        let (recipients, encrypted_to) = crate::send::party_keys(dir, &p.party)?;
        if let Some(a) = plan.agreement.as_deref().and_then(|id| dir.agreement(id)) {
            crate::send::require_post_quantum(a, &recipients)?;
        }
        let path = spool.join(format!("{}.age", p.party));
        let file = File::create(&path).map_err(|e| Error::io(format!("cannot create {}", path.display()), e))?;
        let (encryptor, _) = crate::age_keys::encryptor(&recipients)?;
        let io = |e: std::io::Error| Error::io(format!("cannot write {}", path.display()), e);
        let sink = encryptor.wrap_output(HashingWriter::new(BufWriter::with_capacity(BATCH, file))).map_err(io)?;
        let mut header = tar::Header::new_gnu();
        header
            .set_path(&p.file_name)
            .map_err(|e| Error::new(ErrorCode::BadFileName, format!("{}: {e}", p.file_name)))?;
        header.set_size(p.bytes);
        header.set_mode(0o644);
        header.set_mtime(mtime);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        let mut w = PartWriter { sink, expected: p.bytes, written: 0 };
        w.sink.write_all(header.as_bytes()).map_err(io)?;
        w.write(&preamble).map_err(io)?;
        index_of.insert(p.party.clone(), writers.len());
        writers.push(w);
        spooled.push(Spooled { index: i, path, digest: Digested { sha256: String::new(), len: 0 }, encrypted_to });
    }

    let mut shares: Vec<Vec<PartWriter>> = (0..ENCRYPTORS).map(|_| Vec::new()).collect();
    for (w, writer) in writers.into_iter().enumerate() {
        shares[w % ENCRYPTORS].push(writer);
    }
    let (senders, encryptors): (Vec<_>, Vec<_>) = shares
        .into_iter()
        .map(|mut mine| {
            let (tx, rx) = sync_channel::<(usize, Vec<u8>)>(8);
            let thread = std::thread::spawn(move || -> std::io::Result<Vec<Digested>> {
                for (w, batch) in rx {
                    mine[w / ENCRYPTORS].write(&batch)?;
                }
                mine.into_iter().map(PartWriter::finish).collect()
            });
            (tx, thread)
        })
        .unzip();
    let mut out = Batches { batches: vec![Vec::new(); index_of.len()], senders, terminator };
    let read = match (&plan.layout, source.as_mut()) {
        (Some(layout), _) => slice_rows(layout, plan, req, &index_of, &progress, &mut out),
        (None, Some((source, col))) => parse_rows(&mut **source, *col, session, plan, req, &index_of, &mut out),
        (None, None) => Err(Error::new(ErrorCode::Internal, "no way to read the input")),
    };
    progress.finish_and_clear();
    let Batches { batches, senders, .. } = out;
    for (w, batch) in batches.into_iter().enumerate() {
        if !batch.is_empty() {
            let _ = senders[w % ENCRYPTORS].send((w, batch));
        }
    }
    drop(senders);
    // Part `w` is the `w / ENCRYPTORS`-th of thread `w % ENCRYPTORS`.
    let mut by_thread = Vec::new();
    for thread in encryptors {
        by_thread.push(thread.join().map_err(|_| Error::new(ErrorCode::Internal, "an encrypting thread crashed"))?);
    }
    let encrypted: std::io::Result<Vec<Digested>> =
        by_thread.into_iter().collect::<std::io::Result<Vec<_>>>().map(|lists| {
            let total = lists.iter().map(Vec::len).sum();
            let mut lists: Vec<_> = lists.into_iter().map(Vec::into_iter).collect();
            (0..total).filter_map(|w| lists[w % ENCRYPTORS].next()).collect()
        });
    if hex::encode(read?) != plan.input_sha256 {
        return Err(changed(&req.input));
    }
    let digests = encrypted.map_err(|e| {
        if e.to_string() == CHANGED { changed(&req.input) } else { Error::io("cannot write the encrypted parts", e) }
    })?;
    for (s, d) in spooled.iter_mut().zip(digests) {
        s.digest = d;
    }
    Ok(spooled)
}

/// Each part's rows not yet handed to its encrypting thread.
struct Batches {
    batches: Vec<Vec<u8>>,
    senders: Vec<SyncSender<(usize, Vec<u8>)>>,
    terminator: &'static [u8],
}

impl Batches {
    /// Adds `bytes` to part `w`, and its line terminator when `end`.
    fn add(&mut self, w: usize, bytes: &[u8], end: bool) -> Result<()> {
        let batch = &mut self.batches[w];
        batch.extend_from_slice(bytes);
        if end {
            batch.extend_from_slice(self.terminator);
        }
        if batch.len() >= BATCH {
            let full = std::mem::replace(batch, Vec::with_capacity(BATCH + 1024));
            self.senders[w % ENCRYPTORS]
                .send((w, full))
                .map_err(|_| Error::new(ErrorCode::EncryptFailed, "the encrypting thread stopped"))?;
        }
        Ok(())
    }
}

/// Pass two with a layout: reads and hashes the file in large chunks and
/// copies each recorded row to its part. Returns the file's SHA-256.
fn slice_rows(
    layout: &Layout,
    plan: &Plan,
    req: &SplitRequest,
    index_of: &HashMap<PartyId, usize>,
    progress: &indicatif::ProgressBar,
    out: &mut Batches,
) -> Result<[u8; 32]> {
    // Layout recipient -> part being encrypted (`None`: sent by an earlier run).
    let targets: Vec<Option<usize>> = layout.recipients.iter().map(|p| index_of.get(p).copied()).collect();
    let file = File::open(&req.input).map_err(|e| Error::io(format!("cannot open {}", req.input.display()), e))?;
    let mut hasher = BackgroundSha256::start();
    // The first error of `out.add`, kept whole (its I/O error would lose the code).
    let failed: std::cell::RefCell<Option<Error>> = std::cell::RefCell::new(None);
    let sliced = layout.slice(
        file,
        &mut |r, bytes, end| {
            let Some(w) = targets.get(r).copied().flatten() else { return Ok(()) };
            out.add(w, bytes, end).map_err(|e| {
                failed.replace(Some(e));
                std::io::Error::other("stopped")
            })
        },
        &mut |chunk| {
            progress.inc(chunk.len() as u64);
            hasher.update_owned(chunk);
            crate::interrupt::check().map_err(|e| {
                failed.replace(Some(e));
                std::io::Error::other("stopped")
            })
        },
    );
    let hash = hasher.finish()?;
    match (failed.into_inner(), sliced) {
        (Some(e), _) => Err(e),
        (None, Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(changed(&req.input)),
        (None, Err(e)) => Err(Error::io(format!("cannot read {}", req.input.display()), e)),
        (None, Ok(_)) if plan.parts.iter().any(|p| !layout.recipients.contains(&p.party)) => Err(changed(&req.input)),
        (None, Ok(_)) => Ok(hash),
    }
}

/// Pass two without a layout: parses the file again and routes each row.
/// Returns the file's SHA-256.
fn parse_rows(
    source: &mut dyn table::RowSource,
    col: usize,
    session: &Session,
    plan: &Plan,
    req: &SplitRequest,
    index_of: &HashMap<PartyId, usize>,
    out: &mut Batches,
) -> Result<[u8; 32]> {
    let mut router = Router::new(&session.directory.directory, session.me.party.clone());
    let mut targets: Vec<Option<usize>> = Vec::new();
    let mut rows = 0u64;
    let read = source.rows(col, &mut |row| {
        crate::interrupt::check()?;
        rows += 1;
        let Route::To(r) = router.route(row.value) else { return Ok(()) };
        if targets.len() <= r {
            targets.resize(r + 1, None);
            let party = &router.recipients[r];
            targets[r] = index_of.get(party).copied();
            if targets[r].is_none() && !plan.parts.iter().any(|p| &p.party == party) {
                return Err(changed(&req.input));
            }
        }
        let Some(w) = targets[r] else { return Ok(()) };
        out.add(w, row.body, true)
    });
    let hash = read.and_then(|()| source.input_sha256())?;
    if rows != plan.rows {
        return Err(changed(&req.input));
    }
    Ok(hash)
}

fn changed(input: &Path) -> Error {
    Error::new(
        ErrorCode::InputChanged,
        format!("{} changed while it was being split; nothing was sent, run the command again", input.display()),
    )
}
