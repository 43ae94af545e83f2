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

use std::collections::HashSet;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use serde::Serialize;

use sealdrop_log::entry::LogEntry;
use sealdrop_proto::api::{Ack, Acked, DropDetails, Inbox};
use sealdrop_proto::directory::Directory;
use sealdrop_proto::drop::{Manifest, Receipt};
use sealdrop_proto::ids::{DropId, PartyId};
use sealdrop_proto::keys::MemberSecretKey;
use sealdrop_proto::note::{open_doc, peek_doc, sign_doc};

use crate::archive::{self, ExtractError};
use crate::context::{Session, Settings};
use crate::error::{Error, Kind, Result};
use crate::hub_client::HubClient;
use crate::pipe::{HashingReader, progress_bar};

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
        let names = self.names.join(", ");
        let Some(outer) = self.dest.parent().filter(|_| self.in_own_folder()) else {
            return names;
        };
        let taken = self.names.iter().find_map(|n| outer.join(n).symlink_metadata().ok().map(|m| (n, m.is_dir())));
        let kind = |is_dir: bool| if is_dir { "folder" } else { "file" };
        match taken {
            Some((_, is_dir)) if self.names.len() == 1 => {
                format!("{names}; a {} of that name was already there", kind(is_dir))
            }
            Some((n, is_dir)) => format!("{names}; a {} named {n} was already there", kind(is_dir)),
            None => format!("{names}; a name was already taken in {}", outer.display()),
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

/// Prefix of the hidden folder a drop is unpacked into before it is moved into place.
pub const INCOMING_PREFIX: &str = ".sealdrop-incoming-";

/// Fetches drops into `dest`. Each drop succeeds or fails on its own.
pub fn fetch(settings: &Settings, which: &Which, dest: &Path) -> Result<Vec<Result<FetchOutcome>>> {
    let session = settings.session()?;
    std::fs::create_dir_all(dest)
        .map_err(|e| Error::io(format!("cannot create output folder {}", dest.display()), e))?;
    let ids: Vec<String> = match which {
        Which::Ids(ids) => ids.clone(),
        Which::All => session.hub.get::<Inbox>("/v1/inbox")?.drops.into_iter().map(|d| d.id.to_string()).collect(),
    };
    // Top-level names this run placed in `dest`: a later drop with one of them
    // goes into its own folder even if the file was moved away meanwhile.
    let mut taken = HashSet::new();
    Ok(ids.iter().map(|id| fetch_one(settings, &session, id, dest, &mut taken)).collect())
}

fn fetch_one(
    settings: &Settings,
    session: &Session,
    id: &str,
    dest: &Path,
    taken: &mut HashSet<String>,
) -> Result<FetchOutcome> {
    let (hub, me, dir) = (&session.hub, &session.me, &session.directory.directory);
    let id: DropId =
        id.parse().map_err(|e: sealdrop_proto::ids::IdError| Error::input("bad_drop_id", e.to_string()))?;
    let details: DropDetails = hub.get(&format!("/v1/drops/{id}"))?;
    let manifest = verify_manifest(dir, me, &id, &details.manifest, details.committed)?;

    let staging = dest.join(format!("{INCOMING_PREFIX}{id}"));
    if staging.exists() {
        // Left by an earlier fetch that was killed; it never held verified output.
        std::fs::remove_dir_all(&staging).map_err(|e| Error::io(format!("cannot clear {}", staging.display()), e))?;
    }
    std::fs::create_dir(&staging).map_err(|e| Error::io(format!("cannot create {}", staging.display()), e))?;
    let result = download_and_unpack(settings, hub, me, &manifest, &staging).and_then(|extracted| {
        place(&staging, dest, &id, &extracted.top_level, taken).map(|placed_in| (extracted, placed_in))
    });
    let _ = std::fs::remove_dir_all(&staging);
    let (extracted, placed_in) = result?;
    if placed_in == dest {
        taken.extend(extracted.top_level.iter().cloned());
    } else {
        taken.insert(id.to_string());
    }

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
        hub.post(&format!("/v1/drops/{id}/ack"), &Ack { receipt: receipt_note.clone() }).map_err(|e| Error {
            message: format!("the files are in place but the acknowledgement failed: {}", e.message),
            ..e
        })?;
    let log_receipt = settings
        .keep_receipt(
            session,
            acked.log_index,
            &format!("{id}.acknowledged-by-{}", me.party),
            |e| matches!(e, LogEntry::DropAcknowledged { receipt, .. } if *receipt == receipt_note),
        )
        .map_err(|e| Error { message: format!("drop {id} was fetched and acknowledged, but: {}", e.message), ..e });
    crate::journal::record_received(
        settings,
        &manifest,
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
    })
}

/// Checks the manifest's signature against the sender's keys in the verified
/// directory, and that it is this drop and addressed to this member.
///
/// A key the directory has since revoked still vouches for a drop the hub
/// committed (at `committed`) before the revocation took effect: staff
/// leaving must not strand what they sent the day before. A drop committed
/// after it, or whose commit time is unknown, is refused.
pub fn verify_manifest(
    dir: &Directory,
    me: &MemberSecretKey,
    id: &DropId,
    note: &str,
    committed: Option<jiff::Timestamp>,
) -> Result<Manifest> {
    let claimed =
        peek_doc::<Manifest>(note).map_err(|e| Error::verification("bad_manifest", format!("drop {id}: {e}")))?;
    let mut keys = dir.signing_keys_of(&claimed.sender);
    if let (Some(party), Some(committed)) = (dir.party(&claimed.sender), committed) {
        keys.extend(party.revoked.iter().filter(|r| r.revoked_at > committed).map(|r| r.signing_key.clone()));
    }
    let opened = open_doc::<Manifest>(note, &keys).map_err(|e| {
        Error::verification(
            "bad_manifest",
            format!("drop {id}: {e}; the drop was not fetched, report it to the sender"),
        )
    })?;
    let m = opened.doc;
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
        return Err(Error::input(
            "not_encrypted_to_you",
            format!(
                "drop {id} was not encrypted to your key {}; another member of {} must fetch it",
                me.signing.name(),
                me.party
            ),
        ));
    }
    Ok(m)
}

fn download_and_unpack(
    settings: &Settings,
    hub: &HubClient,
    me: &MemberSecretKey,
    manifest: &Manifest,
    staging: &Path,
) -> Result<archive::Extracted> {
    let id = &manifest.drop;
    let resp = hub.get_stream(&format!("/v1/drops/{id}/content"))?;
    let bar = progress_bar(manifest.ciphertext_len, "receiving and decrypting", settings.quiet);
    let mut hashing = HashingReader::new(resp, Some(bar.clone()));
    let unpacked = decrypt_and_extract(&mut hashing, me, staging);
    // Hash whatever is left so the verdict covers the whole ciphertext even
    // when decryption stopped early.
    let drained = io::copy(&mut hashing, &mut io::sink());
    bar.finish_and_clear();
    let digest = hashing.digest();
    let intact = digest.sha256 == manifest.ciphertext_sha256 && digest.len == manifest.ciphertext_len;
    let tampered = || {
        Error::verification(
            "tampered",
            format!(
                "drop {id} does not match its signed manifest (received {} bytes, SHA-256 {}; expected {} bytes, {}); nothing was written and it was not acknowledged",
                digest.len, digest.sha256, manifest.ciphertext_len, manifest.ciphertext_sha256
            ),
        )
    };
    match (unpacked, drained) {
        (Err(Unpack::Unsafe(e)), _) => {
            Err(Error::verification("unsafe_archive", format!("drop {id} from {}: {e}", manifest.sender)))
        }
        (_, Err(e)) => Err(Error::new(
            Kind::Unreachable,
            "download_failed",
            format!("the download of drop {id} broke off ({e}); nothing was written, fetch it again"),
        )),
        (_, Ok(_)) if !intact => Err(tampered()),
        (Err(Unpack::Decrypt(e)), Ok(_)) => Err(Error::verification(
            "undecryptable",
            format!(
                "drop {id} matches its manifest but cannot be decrypted with your key ({e}); nothing was written, ask {} to resend",
                manifest.sender
            ),
        )),
        (Err(Unpack::Io(e)), Ok(_)) => Err(Error::io(format!("cannot write drop {id} into {}", staging.display()), e)),
        (Ok(x), Ok(_)) => Ok(x),
    }
}

enum Unpack {
    Unsafe(String),
    Decrypt(String),
    Io(io::Error),
}

fn decrypt_and_extract(
    input: &mut impl Read,
    me: &MemberSecretKey,
    staging: &Path,
) -> std::result::Result<archive::Extracted, Unpack> {
    let decryptor = age::Decryptor::new_buffered(BufReader::with_capacity(64 * 1024, input))
        .map_err(|e| Unpack::Decrypt(e.to_string()))?;
    let mut plaintext = decryptor
        .decrypt(std::iter::once(&me.age_identity as &dyn age::Identity))
        .map_err(|e| Unpack::Decrypt(e.to_string()))?;
    let extracted = archive::extract(&mut plaintext, staging).map_err(|e| match e {
        ExtractError::Unsafe(..) => Unpack::Unsafe(e.to_string()),
        ExtractError::Io(e) if e.kind() == io::ErrorKind::InvalidData => Unpack::Decrypt(e.to_string()),
        ExtractError::Io(e) => Unpack::Io(e),
    })?;
    // Read to the end so age authenticates the final chunk.
    io::copy(&mut plaintext, &mut io::sink()).map_err(|e| Unpack::Decrypt(e.to_string()))?;
    Ok(extracted)
}

/// Moves the unpacked top-level entries `names` from `staging` into `dir`,
/// or into a new folder `dir/<id>` when one of them is already in `dir` or in
/// `taken`; returns the folder they went into. Never replaces or merges into
/// anything, and on failure leaves nothing behind (the entries go back to
/// `staging`, and the drop's own folder is removed).
fn place(staging: &Path, dir: &Path, id: &DropId, names: &[String], taken: &HashSet<String>) -> Result<PathBuf> {
    let Some(clash) = names.iter().find(|n| taken.contains(*n) || dir.join(n).symlink_metadata().is_ok()) else {
        move_all(staging, dir, names)?;
        return Ok(dir.to_owned());
    };
    let own = dir.join(id.as_str());
    // Creating the folder claims it: this fails if anything of that name exists.
    if let Err(e) = std::fs::create_dir(&own) {
        return Err(if e.kind() == io::ErrorKind::AlreadyExists {
            Error::input(
                "output_exists",
                format!(
                    "{} already exists, and so does {}, where the drop would have gone instead; move one away or fetch into another folder with -o DIR (the drop was not acknowledged)",
                    dir.join(clash).display(),
                    own.display()
                ),
            )
        } else {
            Error::io(format!("cannot create {}", own.display()), e)
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
                        to.display()
                    ),
                )
            } else {
                Error::io(format!("cannot move {} into place", to.display()), e)
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
        assert_eq!(verify_manifest(&dir, &me, &id, &note, Some(before)).unwrap(), manifest);
        for committed in [Some(revoked_at), None] {
            let e = verify_manifest(&dir, &me, &id, &note, committed).unwrap_err();
            assert_eq!(e.code, "bad_manifest", "{committed:?}: {}", e.message);
        }
        // The replacement key signs for drops at any time.
        let renewed = sign_doc(&manifest, &replacement.signing);
        assert_eq!(verify_manifest(&dir, &me, &id, &renewed, None).unwrap(), manifest);
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
            place(&self.staging(), &self.out(), &self.id, &names, taken)
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
}
