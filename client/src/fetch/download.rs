//! Downloading a drop's ciphertext (resuming from its spool when one holds
//! a prefix) while a second thread decrypts and unpacks it into the
//! staging folder; the verdict waits for the whole ciphertext's hash.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use sealdrop_proto::age_header;
use sealdrop_proto::api::code;
use sealdrop_proto::drop::Manifest;
use sealdrop_proto::ids::DropId;
use sealdrop_proto::keys::MemberSecretKey;

use super::receive::{ChunkReader, Failure, RECEIVE_QUEUE, Source, forward};
use super::spool::Spool;
use crate::archive::{self, ExtractError};
use crate::context::Settings;
use crate::error::{Error, ErrorCode, Result};
use crate::names::shown_path;
use crate::padding::TrailingError;
use crate::pipe::progress_bar;
use crate::transport::{Download, HubApi};

pub(super) fn download_and_unpack(
    settings: &Settings,
    hub: &HubApi,
    me: &MemberSecretKey,
    manifest: &Manifest,
    staging: &Path,
) -> Result<archive::Extracted> {
    let id = &manifest.drop;
    let total = manifest.ciphertext_len;
    let mut spool = Spool::open(&settings.state_dir, id, total, total >= settings.resume_min_bytes)?;
    let (resp, start) = request_content(hub, id, total, spool.as_mut(), settings.quiet)?;
    let prefix = match spool.as_ref().filter(|_| start > 0).map(|s| File::open(&s.path)).transpose() {
        Ok(prefix) => prefix,
        Err(e) => {
            let shown = spool.as_ref().map(|s| s.path.display().to_string()).unwrap_or_default();
            Spool::discard(spool);
            return Err(Error::io(
                format!("cannot read the partial download {shown} (it was deleted: run the same fetch again)"),
                e,
            ));
        }
    };
    let bar = progress_bar(total, "receiving and decrypting", settings.quiet);
    // Two threads share the work: this one receives (network, spool,
    // SHA-256), a second decrypts and unpacks what it hands over.
    let (unpacked, (drained, digest, failure, spool_intact)) = std::thread::scope(|scope| {
        let (chunks, received) = std::sync::mpsc::sync_channel(RECEIVE_QUEUE);
        let (back, spare) = std::sync::mpsc::sync_channel(RECEIVE_QUEUE);
        let encrypted_to = &manifest.encrypted_to;
        let unpacker = scope.spawn(move || {
            decrypt_and_extract(&mut ChunkReader::new(received).returning(back), me, encrypted_to, staging)
        });
        let mut source = Source::new(
            prefix,
            start,
            resp.take((total - start).saturating_add(1)),
            spool.as_ref().map(|s| &s.file),
            bar.clone(),
        );
        // Reads to the end even when decryption stopped early, so the
        // verdict covers the whole ciphertext.
        let drained = forward(&mut source, &chunks, Some(&spare));
        drop(chunks);
        let spool_intact = source.finish();
        let unpacked =
            unpacker.join().unwrap_or_else(|_| Err(Unpack::Io(io::Error::other("the decrypting thread panicked"))));
        (unpacked, (drained, source.digest(), source.failure.take(), spool_intact))
    });
    bar.finish_and_clear();

    // No verdict before the whole ciphertext's hash and length are known:
    // an archive refused before the stream ended may be the hub's doing
    // (its own ciphertext, re-encrypted), and the hash tells which.
    let broke_off = match (failure, drained) {
        (Some(Failure::Spool(e)), _) => {
            let shown = spool.as_ref().map(|s| s.path.display().to_string()).unwrap_or_default();
            Spool::discard(spool);
            return Err(Error::new(
                ErrorCode::Io,
                format!(
                    "cannot read the partial download {shown} ({e}); it was deleted: run the same fetch again to download drop {id} from the start"
                ),
            ));
        }
        (Some(Failure::Network(e)), _) => Some(e),
        (None, Err(e)) => Some(e.to_string()),
        // A body that ends cleanly, short of the manifest's length, is the
        // whole of what the hub announced: not a broken connection (the
        // HTTP client fails a body shorter than its Content-Length) but a
        // ciphertext that does not match, judged below.
        (None, Ok(_)) => None,
    };
    if let Some(reason) = broke_off {
        let received = digest.len;
        let resumable = spool_intact && received > 0;
        let next = if resumable {
            "run the same fetch again to resume"
        } else {
            Spool::discard(spool);
            "fetch it again"
        };
        return Err(Error::new(
            ErrorCode::DownloadFailed,
            format!(
                "the download of drop {id} broke off after {received} of {total} bytes ({reason}); nothing was written; {next}"
            ),
        ));
    }
    // Every byte arrived: whatever the verdict, the spool has served its purpose.
    Spool::discard(spool);
    let intact = digest.sha256 == manifest.ciphertext_sha256 && digest.len == total;
    if !intact {
        let resumed = if start > 0 {
            format!(
                "; the download had resumed from byte {start} of a partial download kept on this machine, which was deleted, so the next fetch starts from byte 0"
            )
        } else {
            String::new()
        };
        return Err(Error::new(
            ErrorCode::Tampered,
            format!(
                "drop {id} does not match its signed manifest (received {} bytes, SHA-256 {}; expected {} bytes, {}); nothing was written and it was not acknowledged{resumed}",
                digest.len, digest.sha256, total, manifest.ciphertext_sha256
            ),
        ));
    }
    // From here the ciphertext is exactly what the sender signed: any
    // fault is in what the sender made.
    let sender = &manifest.sender;
    match unpacked {
        Err(Unpack::Header(e)) => Err(Error::new(
            ErrorCode::HeaderMismatch,
            format!(
                "drop {id} from {sender} matches its signed manifest, but {e}; it was not decrypted, nothing was written and it was not acknowledged: report it to {sender}"
            ),
        )),
        Err(Unpack::Decrypt(e)) => Err(Error::new(
            ErrorCode::Undecryptable,
            format!(
                "drop {id} matches its manifest but cannot be decrypted with your key ({e}); nothing was written, ask {sender} to resend"
            ),
        )),
        Err(Unpack::Unsafe(e)) => Err(Error::new(ErrorCode::UnsafeArchive, format!("drop {id} from {sender}: {e}"))),
        Err(Unpack::Bad(e)) => Err(Error::new(
            ErrorCode::BadArchive,
            format!(
                "drop {id} from {sender}: {e}; it was not acknowledged and `fetch --all` will not download it again: ask {sender} to send it again"
            ),
        )),
        Err(Unpack::Io(e)) => Err(Error::io(format!("cannot write drop {id} into {}", shown_path(staging)), e)),
        Err(Unpack::Plugin(e)) => {
            Err(Error { message: format!("drop {id} was not decrypted: {}; it stays waiting", e.message), ..e })
        }
        Ok(x) => Ok(x),
    }
}

/// Asks the hub for drop `id`'s ciphertext (`total` bytes): when `spool`
/// holds a prefix, only the rest (a ranged GET), else all of it. Returns the
/// answer and the byte it starts at. A hub that refuses the range
/// (`bad_range`) or ignores it (200) gets the spool emptied and the download
/// starts from byte 0; one that answers with another range than asked is
/// refused, with the spool emptied.
pub(super) fn request_content<'a>(
    hub: &'a HubApi,
    id: &DropId,
    total: u64,
    spool: Option<&mut Spool>,
    quiet: bool,
) -> Result<(Download<'a>, u64)> {
    let Some(spool) = spool.filter(|s| s.len > 0) else {
        return Ok((hub.download(id, None)?, 0));
    };
    let start = spool.len;
    let resp = match hub.download(id, Some(start)) {
        Ok(resp) => resp,
        Err(e) if e.code == code::RANGE_NOT_SATISFIABLE || e.code == "http_416" => {
            spool.reset()?;
            return Ok((hub.download(id, None)?, 0));
        }
        Err(e) => return Err(e),
    };
    if !resp.is_partial() {
        // The range was ignored on the way: everything follows.
        spool.reset()?;
        return Ok((resp, 0));
    }
    let expected = format!("bytes {start}-{}/{total}", total - 1);
    let got = resp.content_range().unwrap_or("");
    if got != expected {
        let got = got.to_owned();
        spool.reset()?;
        return Err(Error::new(
            ErrorCode::BadResponse,
            format!(
                "the hub answered the resumed download of drop {id} with Content-Range {got:?} instead of {expected:?}; the partial download was discarded: run the same fetch again"
            ),
        ));
    }
    if !quiet {
        eprintln!("resuming drop {id} from byte {start} of {total}");
    }
    Ok((resp, start))
}

/// Why decrypting and unpacking failed; judged only once the whole
/// ciphertext has been received and hashed.
pub(super) enum Unpack {
    /// The age header does not hold one stanza per listed key.
    Header(String),
    /// An entry that is unsafe to write.
    Unsafe(String),
    /// Not a well-formed archive of files and folders.
    Bad(String),
    /// age refused the ciphertext (or its stream failed).
    Decrypt(String),
    /// Writing the files failed.
    Io(io::Error),
    /// The age plugin holding the key is missing or failed (a wrong PIN):
    /// nothing is wrong with the drop, which stays waiting.
    Plugin(Error),
}

pub(super) fn decrypt_and_extract(
    input: &mut impl Read,
    me: &MemberSecretKey,
    encrypted_to: &[sealdrop_proto::drop::EncryptedTo],
    staging: &Path,
) -> std::result::Result<archive::Extracted, Unpack> {
    // The header is checked before age reads it: no key is tried on a drop
    // encrypted to more keys than its manifest lists.
    let (header, verdict) =
        age_header::read_and_check(input, encrypted_to).map_err(|e| Unpack::Decrypt(e.to_string()))?;
    verdict.map_err(|e| Unpack::Header(e.to_string()))?;
    let input = io::Cursor::new(header).chain(input);
    let decryptor = age::Decryptor::new_buffered(BufReader::with_capacity(64 * 1024, input))
        .map_err(|e| Unpack::Decrypt(e.to_string()))?;
    let identity = crate::age_keys::decrypting_identity(&me.age_identity).map_err(Unpack::Plugin)?;
    let mut plaintext = decryptor
        .decrypt(std::iter::once(identity.as_identity()))
        .map_err(|e| identity.plugin_failure(&e).map_or_else(|| Unpack::Decrypt(e.to_string()), Unpack::Plugin))?;
    let extracted = archive::extract(&mut plaintext, staging).map_err(|e| match e {
        ExtractError::Unsafe(..) => Unpack::Unsafe(e.to_string()),
        ExtractError::Bad(..) => Unpack::Bad(e.to_string()),
        ExtractError::Input(e) => Unpack::Decrypt(e.to_string()),
        ExtractError::Io(e) => Unpack::Io(e),
    })?;
    // Read to the end so age authenticates the final chunk; what follows
    // the archive's end must be zeros (its padding to the size class).
    crate::padding::check_trailing_zeros(&mut plaintext).map_err(|e| match e {
        TrailingError::Hidden { .. } => Unpack::Unsafe(e.to_string()),
        TrailingError::Io(e) => Unpack::Decrypt(e.to_string()),
    })?;
    Ok(extracted)
}
