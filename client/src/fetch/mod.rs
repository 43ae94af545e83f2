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
//!
//! Where each step lives: `verify.rs` checks the signed manifest,
//! `download.rs` asks for the ciphertext and decrypts and unpacks it,
//! `receive.rs` is the receiving end of that pipeline (hashing, spooling),
//! `spool.rs` keeps partial downloads, and `place.rs` moves the unpacked
//! files into the output folder.

mod download;
mod place;
mod receive;
mod spool;
mod verify;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::Serialize;

use sealdrop_log::entry::LogEntry;
use sealdrop_proto::api::{Ack, Acked, DropDetails};
use sealdrop_proto::drop::Receipt;
use sealdrop_proto::ids::{DropId, PartyId};
use sealdrop_proto::note::sign_doc;

use crate::context::{Session, Settings};
use crate::error::{Error, ErrorCode, Result};
use crate::names::{shown, shown_list, shown_path};

use download::download_and_unpack;
use place::{place, resolve};
use spool::remove_stale_spools;
pub use spool::{DOWNLOADS_DIR, spool_path};
pub use verify::{verify_manifest, verify_manifest_opened};

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
    fetch_to(settings, which, Destination::Folder(dest), reserved)
}

/// Where a fetch puts each drop.
#[derive(Clone, Copy, Debug)]
pub enum Destination<'a> {
    /// Every drop into this folder (see the module's doc on name clashes).
    Folder(&'a Path),
    /// Each drop into `<root>/<sender>/<agreement>/`, as its verified
    /// manifest names them (never the hub's word): the `watch` service's
    /// inbox, sorted so a team sees at once who sent what under which agreement.
    BySender(&'a Path),
}

impl Destination<'_> {
    /// The folder the drop whose verified manifest names `sender` and
    /// `agreement` goes into.
    fn folder(&self, sender: &PartyId, agreement: &str) -> Result<PathBuf> {
        match self {
            Destination::Folder(dest) => Ok(dest.to_path_buf()),
            Destination::BySender(root) => {
                // Checked by the directory's validation already; a folder name
                // must never be able to climb out of the inbox.
                if agreement.is_empty()
                    || !agreement.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                {
                    return Err(Error::new(
                        ErrorCode::DirectoryInvalid,
                        format!("agreement id {agreement:?} is not a slug; the drop was not placed"),
                    ));
                }
                Ok(root.join(sender.as_str()).join(agreement))
            }
        }
    }

    /// The folder created before anything is fetched.
    fn root(&self) -> &Path {
        match self {
            Destination::Folder(p) | Destination::BySender(p) => p,
        }
    }
}

/// Fetches drops to `destination`: as [`fetch`], with the choice of where.
pub fn fetch_to(
    settings: &Settings,
    which: &Which,
    destination: Destination<'_>,
    reserved: Option<&Path>,
) -> Result<FetchRun> {
    let dest = destination.root();
    // One fetch per state dir at a time; a second waits, then lists the inbox afresh.
    let (_lock, _) = crate::fetch_lock::acquire(&settings.state_dir, settings.clock.now(), |holder| {
        eprintln!("{}", crate::fetch_lock::waiting_note(&settings.state_dir, holder));
    })?;
    // Decrypted files a killed fetch left go first, even if the hub is down.
    crate::staging::sweep_and_say(&settings.state_dir, Some(dest));
    let session = settings.session()?;
    // A key held by an age plugin that is not installed here opens nothing:
    // say so before any drop is downloaded.
    crate::age_keys::decrypting_identity(&session.me.age_identity)?;
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
    let mut taken = HashMap::new();
    let results = ids
        .iter()
        .map(|id| {
            fetch_one(settings, &session, id, destination, reserved.as_deref(), &mut taken).map_err(|e| {
                match id.parse() {
                    Ok(id) => {
                        crate::fetched_before::explain_gone(|| crate::journal::read(&settings.state_dir).ok(), &id, e)
                    }
                    Err(_) => e,
                }
            })
        })
        .collect();
    Ok(FetchRun { results, skipped })
}

fn fetch_one(
    settings: &Settings,
    session: &Session,
    id: &str,
    destination: Destination<'_>,
    reserved: Option<&Path>,
    taken: &mut HashMap<PathBuf, HashSet<String>>,
) -> Result<FetchOutcome> {
    let (hub, me, dir) = (&session.hub, &session.me, &session.directory.directory);
    let id: DropId =
        id.parse().map_err(|e: sealdrop_proto::ids::IdError| Error::new(ErrorCode::BadDropId, e.to_string()))?;
    let details = hub.drop_details(&id)?;
    let opened = verify_manifest_opened(dir, me, &id, &details.manifest, || {
        commit_time_in_log(settings, session, &id, &details)
    })
    .inspect_err(|e| crate::undeliverable::remember(settings, &id, &details.manifest, e))?;
    let (manifest, manifest_key) = (opened.doc, opened.key);
    let dest = &destination.folder(&manifest.sender, &manifest.agreement)?;
    if !matches!(destination, Destination::Folder(_)) {
        crate::fsutil::create_private_dir(dest)?;
    }
    let taken = taken.entry(dest.clone()).or_default();

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
    if placed_in == *dest {
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
        received: sealdrop_proto::clock::whole_second(settings.clock.now()),
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
        &settings.state_dir,
        settings.clock.now(),
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
        _ => Err(Error::new(
            ErrorCode::LogWrongEntry,
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

/// The `.csv` files (any case) that `outcomes` extracted, as parts to merge:
/// drops in the given order, each drop's top-level names sorted, and the
/// files inside a top-level folder in sorted path order. Symbolic links and
/// hidden names (starting with `.`, such as macOS `._` files) are skipped.
pub fn csv_parts<'a>(outcomes: impl IntoIterator<Item = &'a FetchOutcome>) -> Result<Vec<crate::merge::Part>> {
    let mut parts = Vec::new();
    for o in outcomes {
        let mut names: Vec<&String> = o.names.iter().collect();
        names.sort();
        let mut files = Vec::new();
        for name in names {
            crate::merge::collect_csv(&o.dest.join(name), &mut files)?;
        }
        parts.extend(files.into_iter().map(|path| crate::merge::Part {
            path,
            drop: o.id.clone(),
            from: o.from.clone(),
        }));
    }
    Ok(parts)
}

#[cfg(test)]
mod tests;
