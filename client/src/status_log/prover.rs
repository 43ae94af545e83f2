//! Proving the log entries the hub names, and keeping the facts proved in
//! `<state>/log/proven.json`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use sealdrop_log::entry::{DeletionReason, HubStatement, LogEntry};
use sealdrop_log::policy;
use sealdrop_proto::directory::Directory;
use sealdrop_proto::drop::{Manifest, Receipt};
use sealdrop_proto::ids::{DropId, PartyId};
use sealdrop_proto::keys::NoteVerifierKey;
use sealdrop_proto::note::{SignedDoc, open_doc, peek_doc};

use crate::context::Session;
use crate::error::{Error, ErrorCode, Kind, Result};
use crate::fsutil::write_atomic;
use crate::journal::Journal;

/// The file of proved facts, in the state dir's log folder.
const PROVEN_FILE: &str = "proven.json";

/// Earlier directory versions, verified against the authority key, in the
/// state dir's log folder (`<serial>.note`): they never change, so each is
/// asked of the hub once.
const DIRECTORIES_DIR: &str = "directories";

/// What one proved log entry says about a drop.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fact {
    /// The drop was committed, with this manifest's ciphertext.
    Committed {
        /// The drop.
        drop: DropId,
        /// The entry's time.
        at: Timestamp,
        /// The manifest's signing key (`None`: from this client's journal).
        key: Option<String>,
        /// The manifest's ciphertext hash.
        sha256: String,
        /// The manifest's ciphertext length.
        len: u64,
    },
    /// `party` downloaded it.
    Fetched {
        /// The drop.
        drop: DropId,
        /// The downloading party.
        party: PartyId,
        /// The entry's time.
        at: Timestamp,
        /// The key that signed the download request.
        key: String,
    },
    /// `party` acknowledged it with a receipt signed by `key`.
    Acknowledged {
        /// The drop.
        drop: DropId,
        /// The acknowledging party.
        party: PartyId,
        /// Its member that signed the receipt.
        member: String,
        /// The entry's time.
        at: Timestamp,
        /// The key that signed the receipt.
        key: String,
        /// The ciphertext hash the receipt states.
        sha256: String,
        /// The ciphertext length the receipt states.
        len: u64,
    },
    /// The hub deleted the ciphertext (its statement, signed with the log key).
    Deleted {
        /// The drop.
        drop: DropId,
        /// Why.
        reason: DeletionReason,
        /// The statement's time.
        at: Timestamp,
    },
}

/// The proved facts as kept on disk, for one log key.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Proven {
    /// The log key they were proved under (facts of another log are dropped).
    log_key: String,
    /// By entry index.
    facts: BTreeMap<u64, Fact>,
}

/// Proves log entries for `status`, remembering what it proved.
pub struct Prover<'a> {
    /// Whose drops are proved, and the hub to ask.
    pub(super) session: &'a Session,
    state_dir: PathBuf,
    now: Timestamp,
    /// The checkpoint entries are proved under: the session's, or a newer
    /// one verified when the hub names an entry beyond it.
    checkpoint: sealdrop_log::checkpoint::SignedCheckpoint,
    path: PathBuf,
    proven: Proven,
    changed: bool,
    /// This client's own commits, from its journal: (log index, fact, the
    /// fingerprint of the key its manifest's signature verified with).
    pub(super) journal: HashMap<DropId, (u64, Fact, Option<String>)>,
    /// The coordinator's key, to verify earlier directory versions with.
    authority: NoteVerifierKey,
    /// Member keys of earlier directory versions that the current one no
    /// longer lists at all (a member removed without a revocation: staff who
    /// left): their receipts and requests from when they were members are
    /// still backed. Loaded the first time a key is not found in the
    /// current directory.
    former: Option<Vec<(PartyId, NoteVerifierKey)>>,
}

impl<'a> Prover<'a> {
    /// Loads what was proved before under the session's log key, and this
    /// client's commits from its journal; `now` is for recording a newer
    /// checkpoint should one be needed.
    pub fn open(
        state_dir: &Path,
        session: &'a Session,
        authority: &NoteVerifierKey,
        journal: &Journal,
        now: Timestamp,
    ) -> Self {
        let path = state_dir.join(crate::logcheck::LOG_DIR).join(PROVEN_FILE);
        let log_key = session.log_key.to_string();
        let proven = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Proven>(&b).ok())
            .filter(|p| p.log_key == log_key)
            .unwrap_or(Proven { log_key, facts: BTreeMap::new() });
        let journal = journal
            .entries
            .iter()
            .filter_map(|e| match &e.event {
                crate::journal::Event::Sent(s) if s.receipt.as_ref().is_some_and(|r| r.exists()) => {
                    let fact = Fact::Committed {
                        drop: s.drop.clone(),
                        at: s.committed,
                        key: None,
                        sha256: s.ciphertext_sha256.clone(),
                        len: s.ciphertext_len,
                    };
                    Some((s.drop.clone(), (s.log_index, fact, s.manifest_key_fingerprint.clone())))
                }
                _ => None,
            })
            .collect();
        Self {
            session,
            state_dir: state_dir.to_owned(),
            now,
            checkpoint: session.checkpoint.clone(),
            path,
            proven,
            changed: false,
            journal,
            authority: authority.clone(),
            former: None,
        }
    }

    /// Keeps what was proved this time (best effort: a failure only costs
    /// the proofs again next time).
    pub fn save(&self) {
        if !self.changed {
            return;
        }
        let saved = serde_json::to_vec(&self.proven)
            .map_err(|e| Error::new(ErrorCode::Internal, e.to_string()))
            .and_then(|bytes| write_atomic(&self.path, &bytes, false));
        if let Err(e) = saved {
            eprintln!("warning: could not keep the proved log entries in {}: {}", self.path.display(), e.message);
        }
    }

    /// The directory the session verified.
    fn dir(&self) -> &Directory {
        &self.session.directory.directory
    }

    /// The fact entry `index` records, proved now or before. `Ok(Err(why))`
    /// when the log does not back it (the hub named an entry it cannot
    /// prove, or one that records something else); an `Err` only when the
    /// hub cannot be asked at all.
    pub(super) fn fact(&mut self, index: u64) -> Result<std::result::Result<Fact, String>> {
        if let Some(f) = self.proven.facts.get(&index) {
            return Ok(Ok(f.clone()));
        }
        let (hub, key) = (&self.session.hub, &self.session.log_key);
        let proved =
            crate::logcheck::prove_recent_entry(&self.state_dir, hub, key, self.now, &mut self.checkpoint, index);
        let entry = match proved {
            Ok(entry) => entry,
            Err(e) if matches!(e.kind, Kind::Unreachable | Kind::Other) => return Err(e),
            Err(e) => return Ok(Err(e.message)),
        };
        let fact = match LogEntry::from_bytes(&entry) {
            Ok(entry) => match self.read(&entry, Signers::Listed) {
                Err(_) if self.has_former_members() => match self.read(&entry, Signers::Former) {
                    Err(_) => self.read(&entry, Signers::Revoked),
                    read => read,
                },
                Err(_) => self.read(&entry, Signers::Revoked),
                read => read,
            },
            Err(e) => Err(e.to_string()),
        };
        let fact = match fact {
            Ok(fact) => fact,
            Err(why) => return Ok(Err(format!("log entry {index} {why}"))),
        };
        self.proven.facts.insert(index, fact.clone());
        self.changed = true;
        Ok(Ok(fact))
    }

    /// The keys that may have signed a document of `party` logged at `at`:
    /// [`policy::manifest_keys`] under the current directory, and with
    /// `former`, the party's former members too ([`Prover::former`]).
    fn keys(&self, party: &PartyId, at: Timestamp, signers: Signers) -> Vec<NoteVerifierKey> {
        let mut keys = policy::manifest_keys(self.dir(), party, Some(at));
        match signers {
            Signers::Listed => {}
            Signers::Former => {
                keys.extend(self.former.iter().flatten().filter(|(p, _)| p == party).map(|(_, k)| k.clone()));
            }
            Signers::Revoked => {
                keys.extend(
                    self.dir().party(party).into_iter().flat_map(|p| p.revoked.iter().map(|r| r.signing_key.clone())),
                );
            }
        }
        keys
    }

    /// When `key` (verifier-key text) of `party` signs something logged at
    /// `at` although the current directory revokes it from `at` or earlier
    /// (a stolen key, revoked back to the last safe moment once the theft
    /// was known): which key, from when, and why, for a warning. The hub
    /// was right to accept it then; whoever holds the key now may not be
    /// the party.
    pub fn revoked_by_then(&self, party: &PartyId, key: &str, at: Timestamp) -> Option<String> {
        let p = self.dir().party(party)?;
        let r = p
            .revoked
            .iter()
            .find(|r| r.signing_key.to_string() == key && !policy::revoked_key_vouches(r.revoked_at, at))?;
        let why = if r.reason.is_empty() { String::new() } else { format!(": {}", r.reason) };
        Some(format!(
            "signed with {}'s key {}, which the directory revokes from {}{why}",
            r.signing_key.name(),
            r.signing_key.fingerprint(),
            r.revoked_at
        ))
    }

    /// Whether some earlier directory version listed a member key the
    /// current one no longer lists at all, loading the versions (from the
    /// state dir, else from the hub) the first time.
    fn has_former_members(&mut self) -> bool {
        if self.former.is_none() {
            self.former = Some(self.load_former_members());
        }
        self.former.as_ref().is_some_and(|f| !f.is_empty())
    }

    /// Reads every earlier directory version this client can verify and
    /// keeps the member keys the current version lists neither as members
    /// nor as revoked (a revoked key keeps its revocation's time rule). A
    /// version the hub does not serve is skipped: its former members' claims
    /// then stay unbacked, which is the safe side.
    fn load_former_members(&self) -> Vec<(PartyId, NoteVerifierKey)> {
        let current = self.dir();
        let listed = |party: &PartyId, key: &NoteVerifierKey| {
            current.party(party).is_some_and(|p| {
                p.members.iter().any(|m| m.signing_key == *key) || p.revoked.iter().any(|r| r.signing_key == *key)
            })
        };
        let folder = self.state_dir.join(crate::logcheck::LOG_DIR).join(DIRECTORIES_DIR);
        let mut former: Vec<(PartyId, NoteVerifierKey)> = Vec::new();
        for serial in (1..current.serial).rev() {
            let Some(version) = self.directory_version(&folder, serial) else { continue };
            for p in &version.parties {
                for m in &p.members {
                    if !listed(&p.id, &m.signing_key) && !former.iter().any(|(_, k)| *k == m.signing_key) {
                        former.push((p.id.clone(), m.signing_key.clone()));
                    }
                }
            }
        }
        former
    }

    /// Directory version `serial`, verified against the authority key: kept
    /// in `folder` once read from the hub.
    fn directory_version(&self, folder: &Path, serial: u64) -> Option<sealdrop_proto::directory::Directory> {
        use sealdrop_proto::directory::SignedDirectory;
        let path = folder.join(format!("{serial}.note"));
        let verify =
            |note: &str| SignedDirectory::verify(note, &self.authority).ok().filter(|d| d.directory.serial == serial);
        if let Some(d) = std::fs::read_to_string(&path).ok().as_deref().and_then(verify) {
            return Some(d.directory);
        }
        let note = self.session.hub.directory_at(serial).ok()?;
        let d = verify(&note)?;
        if std::fs::create_dir_all(folder).is_ok() {
            let _ = write_atomic(&path, note.as_bytes(), false);
        }
        Some(d.directory)
    }

    /// What a proved entry records, once its signatures check out (by a key
    /// of the current directory, or, as `signers` says, of a former member
    /// or a revoked key; whether such a key still vouches is decided later).
    fn read(&self, entry: &LogEntry, former: Signers) -> std::result::Result<Fact, String> {
        match entry {
            LogEntry::DropCommitted { committed, manifest } => {
                let m = peek_doc::<Manifest>(manifest).map_err(|e| format!("holds no readable manifest: {e}"))?;
                let keys = self.keys(&m.sender, *committed, former);
                let key = signing_key::<Manifest>(manifest, &keys)?;
                Ok(Fact::Committed {
                    drop: m.drop,
                    at: *committed,
                    key: Some(key.to_string()),
                    sha256: m.ciphertext_sha256,
                    len: m.ciphertext_len,
                })
            }
            LogEntry::DropFetched { drop, party, fetched, request } => {
                let keys = self.keys(party, *fetched, former);
                let key = keys
                    .iter()
                    .filter(|k| k.name() == request.key)
                    .find(|k| request.auth().verify(k, &request.method, &request.path).is_ok())
                    .ok_or_else(|| {
                        format!("records a download request by {} that no key of {party} signed", request.key)
                    })?;
                let path = crate::transport::content_path(drop);
                if request.method != "GET" || request.path.split('?').next() != Some(path.as_str()) {
                    return Err(format!("records a request for {} {}, not a download", request.method, request.path));
                }
                Ok(Fact::Fetched { drop: drop.clone(), party: party.clone(), at: *fetched, key: key.to_string() })
            }
            LogEntry::DropAcknowledged { acknowledged, receipt } => {
                let r = peek_doc::<Receipt>(receipt).map_err(|e| format!("holds no readable receipt: {e}"))?;
                let keys = self.keys(&r.recipient, *acknowledged, former);
                let key = signing_key::<Receipt>(receipt, &keys)?;
                if key.name() != format!("{}/{}", r.recipient, r.member) {
                    return Err(format!(
                        "holds a receipt naming {}/{} signed by {}",
                        r.recipient,
                        r.member,
                        key.name()
                    ));
                }
                Ok(Fact::Acknowledged {
                    drop: r.drop,
                    party: r.recipient,
                    member: r.member.to_string(),
                    at: *acknowledged,
                    key: key.to_string(),
                    sha256: r.ciphertext_sha256,
                    len: r.ciphertext_len,
                })
            }
            LogEntry::Hub { statement } => {
                let st = open_doc::<HubStatement>(statement, std::slice::from_ref(&self.session.log_key))
                    .map_err(|e| format!("holds a hub statement that does not verify: {e}"))?;
                match st.doc {
                    HubStatement::DropDeleted { time, drop, reason } => Ok(Fact::Deleted { drop, reason, at: time }),
                    HubStatement::DirectoryPublished { serial, .. } => {
                        Err(format!("records directory {serial}, not a drop"))
                    }
                }
            }
            LogEntry::DropRecalled { drop, .. } => Err(format!("records the recall of {drop}, not its deletion")),
        }
    }

    /// Whether a fact's key still vouches for it under the current
    /// directory (a key revoked since, from a time at or before the entry's,
    /// no longer does; a former member's key, removed without a revocation,
    /// still does).
    pub(super) fn vouched(&mut self, party: &PartyId, key: Option<&str>, at: Timestamp) -> bool {
        let Some(k) = key else { return true };
        let found = |keys: Vec<NoteVerifierKey>| keys.iter().any(|v| v.to_string() == k);
        found(self.keys(party, at, Signers::Listed))
            || (self.has_former_members() && found(self.keys(party, at, Signers::Former)))
    }
}

/// Which keys besides the current directory's may have signed a logged
/// document, tried in this order when the ones before do not verify it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Signers {
    /// The current directory's keys allowed at the entry's time.
    Listed,
    /// Those, and the keys of members earlier versions listed and the
    /// current one removed without a revocation.
    Former,
    /// Those, and the party's revoked keys whatever their revocation time
    /// (shown as a warning: [`Prover::revoked_by_then`]).
    Revoked,
}

/// The key among `keys` whose signature on `note` verifies.
fn signing_key<T: SignedDoc>(note: &str, keys: &[NoteVerifierKey]) -> std::result::Result<NoteVerifierKey, String> {
    let signer =
        open_doc::<T>(note, keys).map_err(|e| format!("holds a {} that does not verify: {e}", T::WHAT))?.signer;
    keys.iter()
        .filter(|k| k.name() == signer)
        .find(|k| open_doc::<T>(note, std::slice::from_ref(*k)).is_ok())
        .cloned()
        .ok_or_else(|| format!("holds a {} signed by {signer}, which no key verifies", T::WHAT))
}

/// The fingerprint of a fact's key (its verifier-key text).
pub(super) fn fingerprint_of(key: &str) -> Option<String> {
    key.parse::<NoteVerifierKey>().ok().map(|k| k.fingerprint())
}
