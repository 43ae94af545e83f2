//! Fetching a drop: check the sender's signed manifest against the verified
//! directory, stream the ciphertext through SHA-256 and age into a hidden
//! folder beside the target, and move the files into place only when the
//! hash, the length, the decryption and the archive all check out. Then sign
//! a receipt so the hub can delete the ciphertext.
//!
//! Where the files go: a drop's top-level files and folders go straight into
//! the output folder DIR, unless one of their names is already there (or was
//! placed by an earlier drop of the same run, as when several boroughs each
//! send a part named `fsm-islington.csv`). Then the whole drop goes into a new
//! folder `DIR/<drop id>/` instead, and [`FetchOutcome::dest`] is that folder.
//! Nothing is ever replaced or merged into: when `DIR/<drop id>` exists too,
//! the drop fails with `output_exists`, is not acknowledged and stays in the
//! inbox. A drop that fails leaves nothing behind in DIR.
//!
//! Resuming: while a drop of at least [`Settings::resume_min_bytes`] bytes
//! downloads, its ciphertext is also appended, exactly as received, to
//! `<state>/downloads/<drop id>.age.part` (folder 0700, file 0600, locked
//! while in use). If the download breaks off, that spool is kept; the next
//! fetch of the drop reads it back first (hashing and decrypting it again
//! into an empty staging folder) and asks the hub only for the rest
//! (`Range: bytes=<spool length>-`), appending it to the spool. The hash and
//! length check always covers the whole ciphertext; a mismatch or a failed
//! decryption deletes the spool, as does success.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write as _};
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest as _, Sha256};

use sealdrop_log::entry::LogEntry;
use sealdrop_log::policy;
use sealdrop_proto::age_header;
use sealdrop_proto::api::{Ack, Acked, DropDetails, code};
use sealdrop_proto::directory::Directory;
use sealdrop_proto::drop::{Manifest, Receipt};
use sealdrop_proto::ids::{DropId, PartyId};
use sealdrop_proto::keys::MemberSecretKey;
use sealdrop_proto::note::{Opened, open_doc, peek_doc, sign_doc};

use crate::archive::{self, ExtractError};
use crate::context::{Session, Settings};
use crate::error::{Error, Kind, Result};
use crate::names::{shown, shown_list, shown_path};
use crate::padding::TrailingError;
use crate::pipe::progress_bar;
use crate::transport::{Download, HubApi};

/// What one fetch produced.
#[derive(Clone, Debug, Serialize)]
pub struct FetchOutcome {
    /// The drop.
    pub id: DropId,
    /// Its sender.
    pub from: PartyId,
    /// The agreement it travelled under.
    pub agreement: String,
    /// Files written.
    pub files: usize,
    /// Bytes written.
    pub bytes: u64,
    /// Top-level names written into `dest`.
    pub names: Vec<String>,
    /// The folder the files were placed in: the output folder, or
    /// `<output folder>/<drop id>` when one of the names was already taken
    /// there (see [`FetchOutcome::in_own_folder`]).
    pub dest: PathBuf,
    /// Whether the hub deleted the ciphertext after this acknowledgement.
    pub ciphertext_deleted: bool,
    /// The offline proof (c2sp.org/tlog-proof) that the hub logged the acknowledgement.
    pub receipt: PathBuf,
    /// The received CSV files with cells a spreadsheet would run as
    /// formulas (see [`crate::formulas`]); the files are as the sender signed them.
    pub formulas: Vec<FormulaWarning>,
}

/// A received CSV file with cells a spreadsheet would run as formulas.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct FormulaWarning {
    /// The file.
    pub file: PathBuf,
    /// How many of its cells start like a formula.
    pub cells: u64,
}

impl FormulaWarning {
    /// The warning `fetch` prints.
    pub fn describe(&self) -> String {
        format!(
            "warning: {} has {} cell(s) a spreadsheet would run as a formula (starting with =, +, -, @, tab or CR); open it with care: `fetch --merge-csv` writes such cells with a leading '",
            shown_path(&self.file),
            self.cells
        )
    }
}

impl FetchOutcome {
    /// Whether the drop was placed in its own folder `<output folder>/<drop id>/`
    /// because one of its top-level names was already taken in the output folder.
    pub fn in_own_folder(&self) -> bool {
        self.dest.file_name().is_some_and(|n| n == self.id.as_str())
    }

    /// The top-level names, and when the drop went into its own folder, why:
    /// `fsm-islington.csv; a file of that name was already there`. (Looks at
    /// the output folder as it is now.)
    pub fn names_note(&self) -> String {
        /// Names listed at most; a drop of thousands says how many more.
        const LISTED: usize = 10;
        let mut names = shown_list(self.names.iter().take(LISTED));
        if self.names.len() > LISTED {
            names.push_str(&format!(" and {} more", self.names.len() - LISTED));
        }
        let Some(outer) = self.dest.parent().filter(|_| self.in_own_folder()) else {
            return names;
        };
        let taken = self.names.iter().find_map(|n| outer.join(n).symlink_metadata().ok().map(|m| (n, m.is_dir())));
        let kind = |is_dir: bool| if is_dir { "folder" } else { "file" };
        match taken {
            Some((_, is_dir)) if self.names.len() == 1 => {
                format!("{names}; a {} of that name was already there", kind(is_dir))
            }
            Some((n, is_dir)) => format!("{names}; a {} named {} was already there", kind(is_dir), shown(n)),
            None => format!("{names}; a name was already taken in {}", shown_path(outer)),
        }
    }
}

/// Which drops to fetch.
#[derive(Clone, Debug)]
pub enum Which {
    /// These ids.
    Ids(Vec<String>),
    /// Everything in the inbox.
    All,
}

pub use crate::staging::INCOMING_PREFIX;

/// What one `fetch` run did.
#[derive(Debug)]
pub struct FetchRun {
    /// Each drop tried, in order: fetched, or why not.
    pub results: Vec<Result<FetchOutcome>>,
    /// Drops `fetch --all` did not download because this client refused them
    /// before for what their sender signed (see [`crate::refused`]).
    pub skipped: Vec<crate::refused::Refusal>,
}

/// Fetches drops into `dest`. Each drop succeeds or fails on its own.
/// `reserved`: a file no drop may write (the `--merge-csv` output); a drop
/// that would is refused, not acknowledged, and stays in the inbox.
///
/// First removes staging folders left by fetches that did not finish
/// (saying so on stderr): see [`crate::staging`].
pub fn fetch(settings: &Settings, which: &Which, dest: &Path, reserved: Option<&Path>) -> Result<FetchRun> {
    // One fetch per state dir at a time; a second waits, then lists the inbox afresh.
    let (_lock, _) = crate::fetch_lock::acquire(&settings.state_dir, settings.clock.now(), |holder| {
        eprintln!("{}", crate::fetch_lock::waiting_note(&settings.state_dir, holder));
    })?;
    // Decrypted files a killed fetch left go first, even if the hub is down.
    crate::staging::sweep_and_say(&settings.state_dir, Some(dest));
    let session = settings.session()?;
    let merge_out = reserved;
    let reserved = reserved.map(resolve);
    let mut skipped = Vec::new();
    let ids: Vec<String> = match which {
        Which::Ids(ids) => ids.clone(),
        Which::All => {
            let ids: Vec<String> = session.hub.inbox()?.drops.into_iter().map(|d| d.id.to_string()).collect();
            remove_stale_spools(&settings.state_dir, &ids);
            crate::refused::forget_all_but(&settings.state_dir, &ids);
            ids.into_iter()
                .filter(|id| {
                    let refusal = id.parse().ok().and_then(|id| crate::refused::load(&settings.state_dir, &id));
                    refusal.map(|r| skipped.push(r)).is_none()
                })
                .collect()
        }
    };
    // The merge must not replace a file; with nothing to fetch there is no
    // merge, so yesterday's merged file may stay where it is.
    if let Some(out) = merge_out.filter(|_| !ids.is_empty()) {
        crate::merge::check_output_free_for(out, ids.len(), settings.clock.now())?;
    }
    std::fs::create_dir_all(dest)
        .map_err(|e| Error::io(format!("cannot create output folder {}", shown_path(dest)), e))?;
    // Top-level names this run placed in `dest`: a later drop with one of them
    // goes into its own folder even if the file was moved away meanwhile.
    let mut taken = HashSet::new();
    let results = ids
        .iter()
        .map(|id| {
            fetch_one(settings, &session, id, dest, reserved.as_deref(), &mut taken).map_err(|e| match id.parse() {
                Ok(id) => {
                    crate::fetched_before::explain_gone(|| crate::journal::read(&settings.state_dir).ok(), &id, e)
                }
                Err(_) => e,
            })
        })
        .collect();
    Ok(FetchRun { results, skipped })
}

/// `path` made absolute, with the part that exists resolved (links and
/// `..`), so it compares with where a drop's files would go.
fn resolve(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let mut existing = absolute.as_path();
    let mut rest = Vec::new();
    loop {
        if let Ok(real) = existing.canonicalize() {
            return rest.iter().rev().fold(real, |p, c| p.join(c));
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_owned());
                existing = parent;
            }
            _ => return absolute,
        }
    }
}

fn fetch_one(
    settings: &Settings,
    session: &Session,
    id: &str,
    dest: &Path,
    reserved: Option<&Path>,
    taken: &mut HashSet<String>,
) -> Result<FetchOutcome> {
    let (hub, me, dir) = (&session.hub, &session.me, &session.directory.directory);
    let id: DropId =
        id.parse().map_err(|e: sealdrop_proto::ids::IdError| Error::input("bad_drop_id", e.to_string()))?;
    let details = hub.drop_details(&id)?;
    let opened = verify_manifest_opened(dir, me, &id, &details.manifest, || {
        commit_time_in_log(settings, session, &id, &details)
    })
    .inspect_err(|e| crate::undeliverable::remember(settings, &id, &details.manifest, e))?;
    let (manifest, manifest_key) = (opened.doc, opened.key);

    let (staging, cleaned) = crate::staging::Staging::create(&settings.state_dir, dest, &id)?;
    for c in cleaned {
        eprintln!("{}", c.describe());
    }
    let result = download_and_unpack(settings, hub, me, &manifest, staging.path()).and_then(|extracted| {
        place(staging.path(), dest, &id, &extracted.top_level, taken, reserved).map(|placed_in| (extracted, placed_in))
    });
    drop(staging);
    let (extracted, placed_in) = result.inspect_err(|e| {
        crate::refused::record(&settings.state_dir, &id, &manifest.sender, e, settings.clock.now());
    })?;
    crate::refused::forget(&settings.state_dir, &id);
    if placed_in == dest {
        taken.extend(extracted.top_level.iter().cloned());
    } else {
        taken.insert(id.to_string());
    }
    let formulas = formula_warnings(&placed_in, &extracted.top_level);

    let receipt = Receipt {
        drop: id.clone(),
        recipient: me.party.clone(),
        member: me.member.clone(),
        ciphertext_sha256: manifest.ciphertext_sha256.clone(),
        ciphertext_len: manifest.ciphertext_len,
        received: settings.clock.now().round(jiff::Unit::Second).unwrap_or_else(|_| settings.clock.now()),
    };
    let receipt_note = sign_doc(&receipt, &me.signing);
    let acked: Acked =
        hub.ack(&id, &Ack { receipt: receipt_note.clone(), known_size: settings.known_log_size(session) }).map_err(
            |e| Error { message: format!("the files are in place but the acknowledgement failed: {}", e.message), ..e },
        )?;
    let log_receipt = settings
        .keep_receipt(
            session,
            acked.log_index,
            &format!("{id}.acknowledged-by-{}", me.party),
            |e| matches!(e, LogEntry::DropAcknowledged { receipt, .. } if *receipt == receipt_note),
            acked.proof.as_ref(),
        )
        .map_err(|e| Error { message: format!("drop {id} was fetched and acknowledged, but: {}", e.message), ..e });
    crate::journal::record_received(
        settings,
        &manifest,
        crate::journal::Signers { manifest: &manifest_key, receipt: &me.signing.verifier() },
        &extracted,
        &placed_in,
        acked.log_index,
        log_receipt.as_deref().ok(),
    );
    let log_receipt = log_receipt?;
    Ok(FetchOutcome {
        id,
        from: manifest.sender,
        agreement: manifest.agreement,
        files: extracted.files,
        bytes: extracted.bytes,
        names: extracted.top_level,
        dest: placed_in,
        ciphertext_deleted: acked.ciphertext_deleted,
        receipt: log_receipt,
        formulas,
    })
}

/// The time of drop `id`'s `drop_committed` entry in the transfer log,
/// proved included under the newest checkpoint this client verified, and
/// recording exactly the manifest the hub serves. `None` when the hub names
/// no such entry (a hub that predates it). Never the unsigned `committed`
/// time of the hub's answer: a hub or proxy could back-date that.
fn commit_time_in_log(
    settings: &Settings,
    session: &Session,
    id: &DropId,
    details: &DropDetails,
) -> Result<Option<jiff::Timestamp>> {
    let Some(index) = details.committed_log_index else { return Ok(None) };
    let mut cp = session.checkpoint.clone();
    let (hub, key, now) = (&session.hub, &session.log_key, settings.clock.now());
    let entry = crate::logcheck::prove_recent_entry(&settings.state_dir, hub, key, now, &mut cp, index)?;
    match LogEntry::from_bytes(&entry) {
        Ok(LogEntry::DropCommitted { committed, manifest }) if manifest == details.manifest => Ok(Some(committed)),
        _ => Err(Error::verification(
            "log_wrong_entry",
            format!(
                "the hub says log entry {index} records the commit of drop {id}, but it records something else; \
                 the drop was not fetched: report it to the coordinator"
            ),
        )),
    }
}

/// The received CSV files (under the top-level `names` in `dir`) with cells
/// a spreadsheet would run as formulas, and how many each holds.
fn formula_warnings(dir: &Path, names: &[String]) -> Vec<FormulaWarning> {
    let mut files = Vec::new();
    for name in names {
        let _ = crate::merge::collect_csv(&dir.join(name), &mut files);
    }
    files
        .into_iter()
        .filter_map(|file| match crate::formulas::scan_file(&file) {
            Ok(0) | Err(_) => None,
            Ok(cells) => Some(FormulaWarning { file, cells }),
        })
        .collect()
}

/// Checks the manifest's signature against the sender's keys in the verified
/// directory, and that it is this drop and addressed to this member.
///
/// A key the directory has since revoked still vouches for a drop committed
/// before the revocation took effect: staff leaving must not strand what
/// they sent the day before. Only then is `commit_time` asked for the time
/// of the drop's commit entry in the verified log
/// ([`sealdrop_log::policy::manifest_keys`]); a drop committed at or after
/// the revocation, or whose commit the log does not prove, is refused.
pub fn verify_manifest(
    dir: &Directory,
    me: &MemberSecretKey,
    id: &DropId,
    note: &str,
    commit_time: impl FnOnce() -> Result<Option<jiff::Timestamp>>,
) -> Result<Manifest> {
    verify_manifest_opened(dir, me, id, note, commit_time).map(|opened| opened.doc)
}

/// [`verify_manifest`], keeping the key whose signature verified: the
/// journal records its fingerprint, since a member name can be reused with
/// a new key.
pub fn verify_manifest_opened(
    dir: &Directory,
    me: &MemberSecretKey,
    id: &DropId,
    note: &str,
    commit_time: impl FnOnce() -> Result<Option<jiff::Timestamp>>,
) -> Result<Opened<Manifest>> {
    let claimed =
        peek_doc::<Manifest>(note).map_err(|e| Error::verification("bad_manifest", format!("drop {id}: {e}")))?;
    let refused = |e: &dyn std::fmt::Display| {
        Error::verification(
            "bad_manifest",
            format!("drop {id}: {e}; the drop was not fetched, report it to the sender"),
        )
    };
    let opened = match open_doc::<Manifest>(note, &policy::manifest_keys(dir, &claimed.sender, None)) {
        Ok(opened) => opened,
        Err(e) => {
            let Some(party) = dir.party(&claimed.sender).filter(|p| !p.revoked.is_empty()) else {
                return Err(refused(&e));
            };
            let revoked: Vec<_> = party.revoked.iter().map(|r| r.signing_key.clone()).collect();
            // Signed by none of the party's keys, revoked or not: no need to
            // ask the log when it was committed.
            let Ok(by_revoked) = open_doc::<Manifest>(note, &revoked) else { return Err(refused(&e)) };
            let committed = commit_time()?;
            match open_doc::<Manifest>(note, &policy::manifest_keys(dir, &claimed.sender, committed)) {
                Ok(opened) => opened,
                Err(_) => {
                    let r = party.revoked.iter().find(|r| r.signing_key.name() == by_revoked.signer);
                    let (since, why) = r.map_or((String::new(), String::new()), |r| {
                        (format!(" from {}", r.revoked_at), format!(" ({})", r.reason))
                    });
                    let when = match committed {
                        Some(t) => format!("the transfer log commits the drop at {t}, not before"),
                        None => "the hub does not prove from its log when the drop was committed".to_owned(),
                    };
                    return Err(Error::verification(
                        "bad_manifest",
                        format!(
                            "drop {id}'s manifest is signed with {}'s key, revoked{since}{why}, and {when}: \
                             the drop was not fetched; report it to the coordinator",
                            by_revoked.signer
                        ),
                    ));
                }
            }
        }
    };
    let m = &opened.doc;
    if opened.signer != format!("{}/{}", m.sender, m.sender_member) {
        return Err(Error::verification(
            "bad_manifest",
            format!(
                "drop {id}: the manifest names {}/{} but was signed by {}",
                m.sender, m.sender_member, opened.signer
            ),
        ));
    }
    if &m.drop != id {
        return Err(Error::verification(
            "bad_manifest",
            format!("the hub served the manifest of drop {} for drop {id}", m.drop),
        ));
    }
    if !m.recipients.contains(&me.party) {
        return Err(Error::verification("bad_manifest", format!("drop {id} is not addressed to {}", me.party)));
    }
    let mine = me.age_identity.to_public().to_string();
    if !m.encrypted_to.iter().any(|e| e.age_recipient == mine) {
        return Err(crate::undeliverable::not_for_me(dir, m, me));
    }
    Ok(opened)
}

fn download_and_unpack(
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
        let encrypted_to = &manifest.encrypted_to;
        let unpacker =
            scope.spawn(move || decrypt_and_extract(&mut ChunkReader::new(received), me, encrypted_to, staging));
        let mut source = Source::new(
            prefix,
            start,
            resp.take((total - start).saturating_add(1)),
            spool.as_ref().map(|s| &s.file),
            bar.clone(),
        );
        // Reads to the end even when decryption stopped early, so the
        // verdict covers the whole ciphertext.
        let drained = forward(&mut source, &chunks);
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
                Kind::Other,
                "io",
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
            Kind::Unreachable,
            "download_failed",
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
        return Err(Error::verification(
            "tampered",
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
        Err(Unpack::Header(e)) => Err(Error::verification(
            code::HEADER_MISMATCH,
            format!(
                "drop {id} from {sender} matches its signed manifest, but {e}; it was not decrypted, nothing was written and it was not acknowledged: report it to {sender}"
            ),
        )),
        Err(Unpack::Decrypt(e)) => Err(Error::verification(
            "undecryptable",
            format!(
                "drop {id} matches its manifest but cannot be decrypted with your key ({e}); nothing was written, ask {sender} to resend"
            ),
        )),
        Err(Unpack::Unsafe(e)) => Err(Error::verification("unsafe_archive", format!("drop {id} from {sender}: {e}"))),
        Err(Unpack::Bad(e)) => Err(Error::verification(
            "bad_archive",
            format!(
                "drop {id} from {sender}: {e}; it was not acknowledged and `fetch --all` will not download it again: ask {sender} to send it again"
            ),
        )),
        Err(Unpack::Io(e)) => Err(Error::io(format!("cannot write drop {id} into {}", shown_path(staging)), e)),
        Ok(x) => Ok(x),
    }
}

/// Asks the hub for drop `id`'s ciphertext (`total` bytes): when `spool`
/// holds a prefix, only the rest (a ranged GET), else all of it. Returns the
/// answer and the byte it starts at. A hub that refuses the range
/// (`bad_range`) or ignores it (200) gets the spool emptied and the download
/// starts from byte 0; one that answers with another range than asked is
/// refused, with the spool emptied.
fn request_content<'a>(
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
            Kind::Other,
            "bad_response",
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

/// Folder under the state dir holding partial downloads.
pub const DOWNLOADS_DIR: &str = "downloads";
const SPOOL_SUFFIX: &str = ".age.part";
const SPOOL_WRITE_BUFFER: usize = 256 * 1024;

/// Where the ciphertext of drop `id` is spooled while it downloads, so an
/// interrupted fetch can resume: `<state>/downloads/<id>.age.part`.
pub fn spool_path(state_dir: &Path, id: &DropId) -> PathBuf {
    state_dir.join(DOWNLOADS_DIR).join(format!("{id}{SPOOL_SUFFIX}"))
}

/// A drop's partial download: a prefix of its ciphertext exactly as
/// received, opened for appending and locked so that two fetches of the same
/// drop never write into it at once.
struct Spool {
    path: PathBuf,
    file: File,
    /// The bytes it holds that a download resumes after.
    len: u64,
}

impl Spool {
    /// Opens drop `id`'s spool (`total`: the ciphertext's length) when one
    /// holds a prefix to resume from, or, creating it, when `wanted`. One
    /// that holds `total` bytes or more is emptied; one neither wanted nor
    /// useful is deleted.
    fn open(state_dir: &Path, id: &DropId, total: u64, wanted: bool) -> Result<Option<Spool>> {
        let path = spool_path(state_dir, id);
        let existing = match std::fs::symlink_metadata(&path) {
            Ok(m) => Some(m.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::io(format!("cannot read {}", path.display()), e)),
        };
        let resumable = existing.is_some_and(|n| n > 0 && n < total);
        if !wanted && !resumable {
            if existing.is_some() {
                let _ = std::fs::remove_file(&path);
            }
            return Ok(None);
        }
        let dir = state_dir.join(DOWNLOADS_DIR);
        create_private_dir(&dir).map_err(|e| Error::io(format!("cannot create folder {}", dir.display()), e))?;
        let file = {
            use std::os::unix::fs::OpenOptionsExt as _;
            std::fs::OpenOptions::new().read(true).append(true).create(true).mode(0o600).open(&path)
        }
        .map_err(|e| Error::io(format!("cannot open {}", path.display()), e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Error::input(
                    "fetch_in_progress",
                    format!(
                        "another sealdrop is fetching drop {id} (it holds {}); wait for it to finish, and fetch again if it failed",
                        path.display()
                    ),
                ));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(Error::io(format!("cannot lock {}", path.display()), e));
            }
        }
        let meta = file.metadata().map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
        {
            use std::os::unix::fs::PermissionsExt as _;
            if meta.permissions().mode() & 0o077 != 0 {
                file.set_permissions(std::fs::Permissions::from_mode(0o600))
                    .map_err(|e| Error::io(format!("cannot make {} private", path.display()), e))?;
            }
        }
        let mut spool = Spool { path, file, len: meta.len() };
        if spool.len >= total {
            spool.reset()?;
        }
        Ok(Some(spool))
    }

    /// Empties it: the download starts from byte 0.
    fn reset(&mut self) -> Result<()> {
        self.file.set_len(0).map_err(|e| Error::io(format!("cannot empty {}", self.path.display()), e))?;
        self.len = 0;
        Ok(())
    }

    /// Deletes it, emptying it first so that even a file that cannot be
    /// removed is never resumed from.
    fn discard(spool: Option<Spool>) {
        if let Some(spool) = spool {
            let _ = spool.file.set_len(0);
            let _ = std::fs::remove_file(&spool.path);
        }
    }
}

fn create_private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// Deletes the partial downloads of drops not in `inbox` (acknowledged,
/// expired, recalled or no longer this party's): they can never resume.
/// Spools another fetch holds are left alone.
fn remove_stale_spools(state_dir: &Path, inbox: &[String]) {
    let Ok(entries) = std::fs::read_dir(state_dir.join(DOWNLOADS_DIR)) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(id) = name.to_str().and_then(|n| n.strip_suffix(SPOOL_SUFFIX)) else {
            continue;
        };
        if id.parse::<DropId>().is_err() || inbox.iter().any(|i| i == id) {
            continue;
        }
        let Ok(file) = std::fs::OpenOptions::new().append(true).open(entry.path()) else {
            continue;
        };
        if file.try_lock().is_ok() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// An error and its causes on one line (the HTTP client's own message,
/// "request or response body error", says little by itself).
fn with_causes(e: &dyn std::error::Error) -> String {
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
struct Received {
    sha256: String,
    len: u64,
}

/// Why reading the ciphertext failed (the first failure; later reads repeat it).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Failure {
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
struct Source<'a, R> {
    prefix: Option<File>,
    prefix_left: u64,
    net: R,
    spool: Option<BufWriter<&'a File>>,
    /// Whether every byte from the hub reached the spool so far.
    spool_intact: bool,
    failure: Option<Failure>,
    hasher: Sha256,
    len: u64,
    bar: indicatif::ProgressBar,
}

impl<'a, R: Read> Source<'a, R> {
    /// `prefix_len` bytes of `prefix` (if any) first, then `net`; what comes
    /// from `net` is appended to `spool` (if any).
    fn new(
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
            spool: spool.map(|f| BufWriter::with_capacity(SPOOL_WRITE_BUFFER, f)),
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
    fn finish(&mut self) -> bool {
        if let Some(mut w) = self.spool.take()
            && w.flush().is_err()
        {
            self.spool_intact = false;
        }
        self.spool_intact
    }

    /// SHA-256 and length of everything read.
    fn digest(&self) -> Received {
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
const RECEIVE_CHUNK: usize = 256 * 1024;
/// Chunks waiting for the decrypting thread at most (memory stays bounded).
const RECEIVE_QUEUE: usize = 8;

/// Reads `source` to its end in chunks and hands them to the decrypting
/// thread while it takes them; once it has stopped, the rest is read and
/// dropped (still hashed by `source`). A read error is passed on too.
fn forward(source: &mut impl Read, to: &std::sync::mpsc::SyncSender<io::Result<Vec<u8>>>) -> io::Result<u64> {
    let mut listening = true;
    let mut total = 0u64;
    loop {
        let mut chunk = vec![0u8; RECEIVE_CHUNK];
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
struct ChunkReader {
    chunks: std::sync::mpsc::Receiver<io::Result<Vec<u8>>>,
    current: Vec<u8>,
    at: usize,
}

impl ChunkReader {
    fn new(chunks: std::sync::mpsc::Receiver<io::Result<Vec<u8>>>) -> Self {
        Self { chunks, current: Vec::new(), at: 0 }
    }
}

impl Read for ChunkReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.at == self.current.len() {
            match self.chunks.recv() {
                Ok(Ok(chunk)) => {
                    self.current = chunk;
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

/// Why decrypting and unpacking failed; judged only once the whole
/// ciphertext has been received and hashed.
enum Unpack {
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
}

fn decrypt_and_extract(
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
    let mut plaintext = decryptor
        .decrypt(std::iter::once(&me.age_identity as &dyn age::Identity))
        .map_err(|e| Unpack::Decrypt(e.to_string()))?;
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

/// Moves the unpacked top-level entries `names` from `staging` into `dir`,
/// or into a new folder `dir/<id>` when one of them is already in `dir` or in
/// `taken`; returns the folder they went into. Never replaces or merges into
/// anything, and on failure leaves nothing behind (the entries go back to
/// `staging`, and the drop's own folder is removed). A drop that would put
/// `reserved` (a resolved path: the `--merge-csv` output) in place, or a
/// folder holding it, is refused before anything moves.
fn place(
    staging: &Path,
    dir: &Path,
    id: &DropId,
    names: &[String],
    taken: &HashSet<String>,
    reserved: Option<&Path>,
) -> Result<PathBuf> {
    let clash = names.iter().find(|n| taken.contains(*n) || dir.join(n).symlink_metadata().is_ok());
    if let Some(reserved) = reserved {
        let target = if clash.is_some() { resolve(dir).join(id.as_str()) } else { resolve(dir) };
        if let Some(n) = names.iter().find(|n| reserved.starts_with(target.join(n))) {
            return Err(Error::input(
                "merge_output_in_drop",
                format!(
                    "drop {id} would write {} ({} in the drop), the file --merge-csv is to create; it was not placed or acknowledged: choose a --merge-csv path outside the output folder, or another name",
                    shown_path(reserved),
                    shown(n)
                ),
            ));
        }
    }
    let Some(clash) = clash else {
        move_all(staging, dir, names)?;
        return Ok(dir.to_owned());
    };
    let own = dir.join(id.as_str());
    // Creating the folder claims it: this fails if anything of that name exists.
    let created = {
        use std::os::unix::fs::DirBuilderExt as _;
        std::fs::DirBuilder::new().mode(0o700).create(&own)
    };
    if let Err(e) = created {
        return Err(if e.kind() == io::ErrorKind::AlreadyExists {
            Error::input(
                "output_exists",
                format!(
                    "{} already exists, and so does {}, where the drop would have gone instead; move one away or fetch into another folder with -o DIR (the drop was not acknowledged)",
                    shown_path(&dir.join(clash)),
                    shown_path(&own)
                ),
            )
        } else {
            Error::io(format!("cannot create {}", shown_path(&own)), e)
        });
    }
    move_all(staging, &own, names).inspect_err(|_| {
        // Empty again after the undo; fails (keeping it) if anything else appeared in it.
        let _ = std::fs::remove_dir(&own);
    })?;
    Ok(own)
}

/// Moves the entries `names` from `staging` into `dest`, never replacing
/// anything; if one cannot be moved, moves the others back first.
fn move_all(staging: &Path, dest: &Path, names: &[String]) -> Result<()> {
    let mut moved: Vec<(&String, bool)> = Vec::new();
    for n in names {
        let from = staging.join(n);
        let to = dest.join(n);
        let is_dir = from.symlink_metadata().map(|m| m.is_dir()).unwrap_or(false);
        let result = if to.symlink_metadata().is_ok() {
            Err(io::Error::from(io::ErrorKind::AlreadyExists))
        } else if is_dir {
            std::fs::rename(&from, &to)
        } else {
            // A hard link fails if the target appeared meanwhile, so nothing is
            // ever replaced; the staging copy goes with the staging folder.
            std::fs::hard_link(&from, &to)
        };
        if let Err(e) = result {
            for (n, is_dir) in moved.into_iter().rev() {
                let _ = if is_dir {
                    std::fs::rename(dest.join(n), staging.join(n))
                } else {
                    std::fs::remove_file(dest.join(n))
                };
            }
            return Err(if e.kind() == io::ErrorKind::AlreadyExists {
                Error::input(
                    "output_exists",
                    format!(
                        "{} already exists; move it away or fetch into another folder with -o DIR (the drop was not acknowledged)",
                        shown_path(&to)
                    ),
                )
            } else {
                Error::io(format!("cannot move {} into place", shown_path(&to)), e)
            });
        }
        moved.push((n, is_dir));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_revoked_senders_manifest_counts_only_for_drops_committed_before_the_revocation() {
        use sealdrop_proto::directory::{Agreement, Party, RevokedKey};
        use sealdrop_proto::drop::EncryptedTo;
        let sender = MemberSecretKey::generate("camden".parse().unwrap(), "data-team".parse().unwrap());
        let replacement = MemberSecretKey::generate("camden".parse().unwrap(), "data-team".parse().unwrap());
        let me = MemberSecretKey::generate("islington".parse().unwrap(), "data-team".parse().unwrap());
        let revoked_at: jiff::Timestamp = "2026-11-20T09:00:00Z".parse().unwrap();
        let camden = Party {
            revoked: vec![RevokedKey {
                member: sender.member.clone(),
                signing_key: sender.signing.verifier(),
                revoked_at,
                reason: "left".into(),
            }],
            ..Party::with_member("Camden", replacement.public())
        };
        let dir = Directory {
            serial: 2,
            issued_at: revoked_at,
            hub: None,
            parties: vec![camden, Party::with_member("Islington", me.public())],
            agreements: Vec::<Agreement>::new(),
        };
        let id = DropId::random();
        let manifest = Manifest {
            drop: id.clone(),
            sender: sender.party.clone(),
            sender_member: sender.member.clone(),
            recipients: vec![me.party.clone()],
            encrypted_to: vec![EncryptedTo {
                key: me.signing.name().to_owned(),
                age_recipient: me.age_identity.to_public().to_string(),
            }],
            agreement: "a".into(),
            directory_serial: 1,
            ciphertext_sha256: "ab".repeat(32),
            ciphertext_len: 1,
            created: revoked_at,
            expires: revoked_at,
        };
        let note = sign_doc(&manifest, &sender.signing);
        let before: jiff::Timestamp = "2026-11-20T08:59:59Z".parse().unwrap();
        assert_eq!(verify_manifest(&dir, &me, &id, &note, || Ok(Some(before))).unwrap(), manifest);
        for committed in [Some(revoked_at), None] {
            let e = verify_manifest(&dir, &me, &id, &note, || Ok(committed)).unwrap_err();
            assert_eq!(e.code, "bad_manifest", "{committed:?}: {}", e.message);
            assert!(e.message.contains("signed with camden/data-team's key, revoked from 2026-11-20T09:00:00Z (left)"));
        }
        // A log that cannot prove the commit is not a verdict on the sender.
        let e =
            verify_manifest(&dir, &me, &id, &note, || Err(Error::verification("log_not_included", "no"))).unwrap_err();
        assert_eq!(e.code, "log_not_included");
        // The replacement key signs for drops at any time, and the log is not asked.
        let renewed = sign_doc(&manifest, &replacement.signing);
        let unasked = || -> Result<Option<jiff::Timestamp>> { panic!("the log was asked") };
        assert_eq!(verify_manifest(&dir, &me, &id, &renewed, unasked).unwrap(), manifest);
        // Nor for a manifest no key of the party signed.
        let stranger = MemberSecretKey::generate("camden".parse().unwrap(), "data-team".parse().unwrap());
        let forged = sign_doc(&manifest, &stranger.signing);
        assert_eq!(verify_manifest(&dir, &me, &id, &forged, unasked).unwrap_err().code, "bad_manifest");
    }

    /// An output folder with a staging folder holding a drop's top-level entries.
    struct Fixture {
        dir: tempfile::TempDir,
        id: DropId,
    }

    impl Fixture {
        fn new() -> Self {
            Self { dir: tempfile::tempdir().unwrap(), id: DropId::random() }
        }

        fn out(&self) -> PathBuf {
            self.dir.path().join("out")
        }

        fn staging(&self) -> PathBuf {
            self.out().join(format!("{INCOMING_PREFIX}{}", self.id))
        }

        /// Stages `rel` (a file, or a file inside a folder) with `content`.
        fn stage(&self, rel: &str, content: &str) {
            write(&self.staging().join(rel), content);
        }

        fn place(&self, names: &[&str], taken: &HashSet<String>) -> Result<PathBuf> {
            let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
            place(&self.staging(), &self.out(), &self.id, &names, taken, None)
        }

        fn outcome(&self, dest: PathBuf, names: &[&str]) -> FetchOutcome {
            FetchOutcome {
                id: self.id.clone(),
                from: "camden".parse().unwrap(),
                agreement: "a".into(),
                files: names.len(),
                bytes: 0,
                names: names.iter().map(|n| (*n).to_owned()).collect(),
                dest,
                ciphertext_deleted: true,
                receipt: PathBuf::new(),
                formulas: Vec::new(),
            }
        }
    }

    fn write(path: &Path, content: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    fn read(path: &Path) -> String {
        std::fs::read_to_string(path).unwrap()
    }

    /// The names in a folder, sorted.
    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    }

    #[test]
    fn fetch_places_a_drop_with_free_names_straight_into_the_output_folder() {
        let f = Fixture::new();
        f.stage("a.csv", "a");
        f.stage("reports/b.csv", "b");
        let dest = f.place(&["a.csv", "reports"], &HashSet::new()).unwrap();
        assert_eq!(dest, f.out());
        assert_eq!(read(&f.out().join("a.csv")), "a");
        assert_eq!(read(&f.out().join("reports/b.csv")), "b");
        let o = f.outcome(dest, &["a.csv", "reports"]);
        assert!(!o.in_own_folder());
        assert_eq!(o.names_note(), "a.csv, reports");
    }

    #[test]
    fn fetch_places_a_drop_with_a_taken_name_whole_in_its_own_folder() {
        let f = Fixture::new();
        write(&f.out().join("fsm-islington.csv"), "already here");
        f.stage("fsm-islington.csv", "new");
        f.stage("notes.txt", "n");
        let dest = f.place(&["fsm-islington.csv", "notes.txt"], &HashSet::new()).unwrap();
        assert_eq!(dest, f.out().join(f.id.as_str()));
        assert_eq!(read(&f.out().join("fsm-islington.csv")), "already here");
        assert_eq!(names(&dest), ["fsm-islington.csv", "notes.txt"]);
        assert_eq!(read(&dest.join("fsm-islington.csv")), "new");
        assert!(!f.out().join("notes.txt").exists(), "part of the drop went beside the folder");
        let o = f.outcome(dest, &["fsm-islington.csv", "notes.txt"]);
        assert!(o.in_own_folder());
        assert_eq!(o.names_note(), "fsm-islington.csv, notes.txt; a file named fsm-islington.csv was already there");
        let o = FetchOutcome { names: vec!["fsm-islington.csv".into()], ..o };
        assert_eq!(o.names_note(), "fsm-islington.csv; a file of that name was already there");
    }

    #[test]
    fn fetch_never_merges_into_an_existing_folder() {
        let f = Fixture::new();
        write(&f.out().join("reports/mine.csv"), "mine");
        f.stage("reports/theirs.csv", "theirs");
        let dest = f.place(&["reports"], &HashSet::new()).unwrap();
        assert_eq!(names(&f.out().join("reports")), ["mine.csv"]);
        assert_eq!(read(&dest.join("reports/theirs.csv")), "theirs");
        assert_eq!(f.outcome(dest, &["reports"]).names_note(), "reports; a folder of that name was already there");
    }

    #[test]
    fn fetch_counts_names_an_earlier_drop_of_the_run_placed() {
        let f = Fixture::new();
        f.stage("fsm-islington.csv", "second");
        let taken = HashSet::from(["fsm-islington.csv".to_owned()]);
        let dest = f.place(&["fsm-islington.csv"], &taken).unwrap();
        assert_eq!(dest, f.out().join(f.id.as_str()));
        assert_eq!(read(&dest.join("fsm-islington.csv")), "second");
    }

    #[test]
    fn fetch_refuses_when_the_drops_own_folder_is_taken_too() {
        let f = Fixture::new();
        write(&f.out().join("a.csv"), "old");
        write(&f.out().join(f.id.as_str()), "a file named like the drop");
        f.stage("a.csv", "new");
        f.stage("b.csv", "b");
        let before = names(&f.out());
        let err = f.place(&["b.csv", "a.csv"], &HashSet::new()).unwrap_err();
        assert_eq!(err.code, "output_exists");
        assert!(err.message.contains(f.id.as_str()), "{}", err.message);
        assert_eq!(names(&f.out()), before, "something was placed");
        assert_eq!(read(&f.out().join(f.id.as_str())), "a file named like the drop");
        assert_eq!(read(&f.out().join("a.csv")), "old");
    }

    #[test]
    fn fetch_undoes_a_partial_move() {
        let f = Fixture::new();
        f.stage("a.csv", "a");
        f.stage("dir/x.csv", "x");
        // Not staged, so moving it fails after the first two.
        let err = f.place(&["a.csv", "dir", "missing.csv"], &HashSet::new()).unwrap_err();
        assert_eq!(err.code, "io", "{err:?}");
        assert_eq!(names(&f.out()), [format!("{INCOMING_PREFIX}{}", f.id)], "a partial drop was left behind");
        assert_eq!(read(&f.staging().join("dir/x.csv")), "x");

        // The same in the drop's own folder: the folder goes too.
        write(&f.out().join("a.csv"), "old");
        let err = f.place(&["a.csv", "dir", "missing.csv"], &HashSet::new()).unwrap_err();
        assert_eq!(err.code, "io", "{err:?}");
        assert_eq!(names(&f.out()), [format!("{INCOMING_PREFIX}{}", f.id), "a.csv".to_owned()]);
    }

    /// Yields `data`, then fails with `ConnectionReset` (a connection cut mid-body).
    struct CutAfter<'a>(&'a [u8]);

    impl Read for CutAfter<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                return Err(io::Error::new(io::ErrorKind::ConnectionReset, "connection reset"));
            }
            let n = out.len().min(self.0.len());
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn fetch_spool_is_created_private_only_when_wanted() {
        let state = tempfile::tempdir().unwrap();
        let id = DropId::random();
        assert!(Spool::open(state.path(), &id, 100, false).unwrap().is_none());
        assert!(!state.path().join(DOWNLOADS_DIR).exists(), "nothing is created for a small drop");

        let spool = Spool::open(state.path(), &id, 100, true).unwrap().unwrap();
        assert_eq!(spool.len, 0);
        assert_eq!(spool.path, spool_path(state.path(), &id));
        assert_eq!(spool.path, state.path().join("downloads").join(format!("{id}.age.part")));
        assert_eq!(mode(&spool.path), 0o600);
        assert_eq!(mode(&state.path().join(DOWNLOADS_DIR)), 0o700);
    }

    #[test]
    fn fetch_spool_resumes_a_prefix_and_drops_a_complete_or_overlong_one() {
        let state = tempfile::tempdir().unwrap();
        let id = DropId::random();
        let path = spool_path(state.path(), &id);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();

        // A prefix is resumed from, even when the drop is below the threshold now.
        std::fs::write(&path, b"0123").unwrap();
        let spool = Spool::open(state.path(), &id, 10, false).unwrap().unwrap();
        assert_eq!(spool.len, 4);
        assert_eq!(mode(&path), 0o600, "an existing spool is made private");
        drop(spool);

        // As long as the ciphertext or longer: emptied when wanted, deleted when not.
        for len in [10, 11] {
            std::fs::write(&path, vec![b'x'; len]).unwrap();
            let spool = Spool::open(state.path(), &id, 10, true).unwrap().unwrap();
            assert_eq!((spool.len, std::fs::metadata(&path).unwrap().len()), (0, 0), "{len}");
            drop(spool);
            std::fs::write(&path, vec![b'x'; len]).unwrap();
            assert!(Spool::open(state.path(), &id, 10, false).unwrap().is_none());
            assert!(!path.exists(), "{len}");
        }
    }

    #[test]
    fn fetch_spool_in_use_is_refused() {
        let state = tempfile::tempdir().unwrap();
        let id = DropId::random();
        let held = Spool::open(state.path(), &id, 10, true).unwrap().unwrap();
        let err = Spool::open(state.path(), &id, 10, true).err().unwrap();
        assert_eq!(err.code, "fetch_in_progress");
        assert!(err.message.contains(id.as_str()), "{}", err.message);
        drop(held);
        assert!(Spool::open(state.path(), &id, 10, true).unwrap().is_some());
    }

    #[test]
    fn fetch_source_replays_the_prefix_then_appends_what_arrives() {
        let state = tempfile::tempdir().unwrap();
        let id = DropId::random();
        let path = spool_path(state.path(), &id);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, b"hello ").unwrap();
        let spool = Spool::open(state.path(), &id, 11, false).unwrap().unwrap();
        let prefix = File::open(&spool.path).unwrap();
        let mut source =
            Source::new(Some(prefix), spool.len, &b"world"[..], Some(&spool.file), indicatif::ProgressBar::hidden());
        let mut got = Vec::new();
        source.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"hello world");
        assert!(source.finish());
        assert_eq!(
            source.digest(),
            Received { sha256: hex::encode(Sha256::digest(b"hello world")), len: 11 },
            "the hash covers prefix and rest"
        );
        assert_eq!(source.failure, None);
        assert_eq!(std::fs::read(&path).unwrap(), b"hello world");
    }

    #[test]
    fn forwarding_hands_over_everything_then_the_end() {
        let data: Vec<u8> = (0..RECEIVE_CHUNK * 2 + 5).map(|i| (i % 253) as u8).collect();
        let (tx, rx) = std::sync::mpsc::sync_channel(RECEIVE_QUEUE);
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            ChunkReader::new(rx).read_to_end(&mut got).unwrap();
            got
        });
        assert_eq!(forward(&mut &data[..], &tx).unwrap(), data.len() as u64);
        drop(tx);
        assert!(reader.join().unwrap() == data);
    }

    #[test]
    fn forwarding_passes_on_a_broken_download_after_what_arrived() {
        let (tx, rx) = std::sync::mpsc::sync_channel(RECEIVE_QUEUE);
        let err = forward(&mut CutAfter(b"abc"), &tx).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
        drop(tx);
        let mut reader = ChunkReader::new(rx);
        let mut got = [0u8; 8];
        assert_eq!(reader.read(&mut got).unwrap(), 3);
        assert_eq!(&got[..3], b"abc");
        assert_eq!(reader.read(&mut got).unwrap_err().kind(), io::ErrorKind::ConnectionReset);
    }

    #[test]
    fn forwarding_reads_to_the_end_when_the_reader_stops_early() {
        let data = vec![1u8; RECEIVE_CHUNK * (RECEIVE_QUEUE + 4)];
        let (tx, rx) = std::sync::mpsc::sync_channel(RECEIVE_QUEUE);
        drop(rx); // decryption gave up at once
        let mut source = &data[..];
        assert_eq!(forward(&mut source, &tx).unwrap(), data.len() as u64);
        assert!(source.is_empty(), "every byte was read (and so hashed) anyway");
    }

    #[test]
    fn fetch_source_remembers_a_broken_download() {
        let state = tempfile::tempdir().unwrap();
        let id = DropId::random();
        let spool = Spool::open(state.path(), &id, 100, true).unwrap().unwrap();
        let mut source = Source::new(None, 0, CutAfter(b"abc"), Some(&spool.file), indicatif::ProgressBar::hidden());
        let mut got = Vec::new();
        assert_eq!(source.read_to_end(&mut got).unwrap_err().kind(), io::ErrorKind::ConnectionAborted);
        assert_eq!(got, b"abc");
        // Every later read repeats the failure: it never looks like a clean end.
        assert!(source.read(&mut [0; 8]).is_err());
        assert!(matches!(source.failure, Some(Failure::Network(ref e)) if e.contains("reset")));
        assert!(source.finish());
        assert_eq!(source.digest().len, 3);
        assert_eq!(std::fs::read(&spool.path).unwrap(), b"abc");
    }

    #[test]
    fn fetch_source_fails_when_the_prefix_is_shorter_than_claimed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p");
        std::fs::write(&path, b"abc").unwrap();
        let mut source =
            Source::new(Some(File::open(&path).unwrap()), 5, &b"zz"[..], None, indicatif::ProgressBar::hidden());
        let mut got = Vec::new();
        assert!(source.read_to_end(&mut got).is_err());
        assert!(matches!(source.failure, Some(Failure::Spool(_))), "{:?}", source.failure);
        assert!(!source.finish(), "no spool");
    }

    #[test]
    fn fetch_all_removes_spools_of_drops_no_longer_waiting() {
        let state = tempfile::tempdir().unwrap();
        let (waiting, gone, busy) = (DropId::random(), DropId::random(), DropId::random());
        for id in [&waiting, &gone] {
            drop(Spool::open(state.path(), id, 10, true).unwrap());
        }
        let held = Spool::open(state.path(), &busy, 10, true).unwrap().unwrap();
        let foreign = state.path().join(DOWNLOADS_DIR).join("notes.txt");
        std::fs::write(&foreign, b"mine").unwrap();
        remove_stale_spools(state.path(), &[waiting.to_string()]);
        assert!(spool_path(state.path(), &waiting).exists());
        assert!(!spool_path(state.path(), &gone).exists());
        assert!(spool_path(state.path(), &busy).exists(), "a spool in use is left alone");
        assert!(foreign.exists());
        drop(held);
    }
}
