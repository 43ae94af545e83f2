//! What the hub's signed transfer log backs of what the hub says about a
//! sender's drops (`sealdrop status`).
//!
//! `GET /v1/sent` is the hub's word: a hub that edits its database could
//! say "delivered, acknowledged by data-team" for a drop it deleted. So for
//! every fact it states (committed, fetched by a party, acknowledged by a
//! party, deleted and why) it names the log entry that records it, and the
//! client believes the fact only when it proves that entry is in the log
//! under the newest checkpoint it verified (signature, consistency with
//! every checkpoint it verified before, inclusion) and the entry says what
//! the hub claims: the right drop and party, a receipt signed by a key of
//! the recipient party that vouches for the entry's time
//! ([`sealdrop_log::policy::manifest_keys`]), a deletion statement signed
//! with the log key for the right reason. The times shown are the log's.
//!
//! Proved entries are kept as [`Fact`]s in `<state>/log/proven.json`, so a
//! repeated `status` asks the hub only for entries it has not proved yet
//! (two requests each: the entry and its inclusion proof); a sender's own
//! commits are taken from its journal (it verified them when it sent).
//! The signing key of each fact is kept and checked again against the
//! current directory on every use, so a later revocation is applied.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use sealdrop_log::entry::{DeletionReason, HubStatement, LogEntry};
use sealdrop_log::policy;
use sealdrop_proto::api::{DropState, SentDrop};
use sealdrop_proto::directory::Directory;
use sealdrop_proto::drop::{Manifest, Receipt};
use sealdrop_proto::ids::{DropId, PartyId};
use sealdrop_proto::keys::NoteVerifierKey;
use sealdrop_proto::note::{SignedDoc, open_doc, peek_doc};

use crate::context::Session;
use crate::error::{Error, Kind, Result};
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
    session: &'a Session,
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
    journal: HashMap<DropId, (u64, Fact, Option<String>)>,
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
            .map_err(|e| Error::new(Kind::Other, "internal", e.to_string()))
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
    fn fact(&mut self, index: u64) -> Result<std::result::Result<Fact, String>> {
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
        let note = self.session.hub.read_text(&format!("/v1/directory/{serial}")).ok()?;
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
                let path = format!("/v1/drops/{drop}/content");
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
    fn vouched(&mut self, party: &PartyId, key: Option<&str>, at: Timestamp) -> bool {
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
fn fingerprint_of(key: &str) -> Option<String> {
    key.parse::<NoteVerifierKey>().ok().map(|k| k.fingerprint())
}

/// What the log backs of one drop the hub listed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Backed {
    /// The commit entry's time, when proved.
    pub committed: Option<Timestamp>,
    /// The fingerprint of the key the manifest's signature verified with,
    /// when the commit is backed: from the proved log entry, or for this
    /// client's own send, from its journal (`None` for lines of older versions).
    pub manifest_key: Option<String>,
    /// The deletion statement's reason and time, when proved.
    pub deleted: Option<(DeletionReason, Timestamp)>,
    /// Per recipient, in the hub's order.
    pub recipients: Vec<BackedRecipient>,
    /// The hub's claims about the drop itself that the log does not back.
    pub problems: Vec<String>,
}

/// What the log backs of one recipient's progress.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BackedRecipient {
    /// The first download's time, when proved.
    pub fetched: Option<Timestamp>,
    /// The acknowledgement's time and member, when proved.
    pub acknowledged: Option<(Timestamp, String)>,
    /// The fingerprint of the key the receipt's signature verified with,
    /// when the acknowledgement is proved: the member name alone does not
    /// say which key, once it is reused with a new one.
    pub acknowledged_key: Option<String>,
    /// The hub's claim about this recipient the log does not back.
    pub problem: Option<String>,
    /// A download or acknowledgement the log backs, signed with a key the
    /// directory has since revoked from a time at or before it: backed
    /// (the hub was right to accept it), but whoever held the key may not
    /// have been the party. A warning, not an unbacked claim.
    pub revoked_key: Option<String>,
}

impl Backed {
    /// Whether every claim the hub made is backed.
    pub fn is_backed(&self) -> bool {
        self.problems.is_empty() && self.recipients.iter().all(|r| r.problem.is_none())
    }

    /// Every problem, as lines for people.
    pub fn all_problems(&self, d: &SentDrop) -> Vec<String> {
        let mut all = self.problems.clone();
        for (r, b) in d.recipients.iter().zip(&self.recipients) {
            if let Some(p) = &b.problem {
                all.push(format!("{}: {p}", r.party));
            }
        }
        all
    }
}

/// Checks every claim the hub makes about drop `d` against the log.
pub fn back(prover: &mut Prover<'_>, d: &SentDrop) -> Result<Backed> {
    let mut b = Backed { recipients: vec![BackedRecipient::default(); d.recipients.len()], ..Backed::default() };
    if d.state == DropState::Open {
        return Ok(b);
    }
    let me = prover.session.me.party.clone();
    // The commit: from this client's journal when it sent the drop, else the log.
    let (commit, journalled_key) = match (prover.journal.get(&d.id).cloned(), d.committed_log_index) {
        (Some((at, fact, key)), Some(i)) if at == i => (Ok(fact), key),
        (_, Some(i)) => (prover.fact(i)?, None),
        (_, None) => (Err("the hub names no log entry for its commit".to_owned()), None),
    };
    let manifest = match commit {
        Ok(Fact::Committed { drop, at, key, sha256, len }) if drop == d.id => {
            if prover.vouched(&me, key.as_deref(), at) {
                b.committed = Some(at);
                b.manifest_key = key.as_deref().map_or(journalled_key, fingerprint_of);
                Some((sha256, len))
            } else {
                b.problems.push(format!("the hub says committed; the manifest's key was revoked before {at}"));
                None
            }
        }
        Ok(_) => {
            b.problems.push("the hub says committed; the log entry it names records something else".to_owned());
            None
        }
        Err(why) => {
            b.problems.push(format!("the hub says committed; not in the log ({why})"));
            None
        }
    };
    for (r, br) in d.recipients.iter().zip(b.recipients.iter_mut()) {
        back_recipient(prover, d, r, manifest.as_ref(), br)?;
    }
    if d.state.is_ended() {
        let claimed = d.state.as_str();
        let deleted = match d.deleted_log_index {
            Some(i) => prover.fact(i)?,
            None => Err("the hub names no log entry for the deletion".to_owned()),
        };
        match deleted {
            Ok(Fact::Deleted { drop, reason, at }) if drop == d.id && reason_fits(d.state, reason) => {
                b.deleted = Some((reason, at));
            }
            Ok(Fact::Deleted { drop, reason, .. }) if drop == d.id => b
                .problems
                .push(format!("the hub says {claimed}; the log records its deletion as {}", reason_name(reason))),
            Ok(_) => b.problems.push(format!("the hub says {claimed}; the log entry it names records something else")),
            Err(why) => b.problems.push(format!("the hub says {claimed}; no deletion in the log ({why})")),
        }
        if d.state == DropState::Delivered {
            for (r, br) in d.recipients.iter().zip(&b.recipients) {
                if br.acknowledged.is_none() && br.problem.is_none() {
                    b.problems.push(format!("the hub says delivered; no receipt in the log from {}", r.party));
                }
            }
        }
    }
    Ok(b)
}

/// Checks the hub's claims about recipient `r` of drop `d`.
fn back_recipient(
    prover: &mut Prover<'_>,
    d: &SentDrop,
    r: &sealdrop_proto::api::RecipientStatus,
    manifest: Option<&(String, u64)>,
    b: &mut BackedRecipient,
) -> Result<()> {
    if r.fetched.is_some() {
        let fetched = match r.fetched_log_index {
            Some(i) => prover.fact(i)?,
            None => Err("the hub names no log entry for it".to_owned()),
        };
        match fetched {
            Ok(Fact::Fetched { drop, party, at, key }) if drop == d.id && party == r.party => {
                if prover.vouched(&r.party, Some(&key), at) {
                    b.fetched = Some(at);
                } else if let Some(warning) = prover.revoked_by_then(&r.party, &key, at) {
                    b.fetched = Some(at);
                    b.revoked_key = Some(format!("the download at {at} was {warning}"));
                } else {
                    b.problem = Some(format!("the hub says fetched; the request's key was revoked before {at}"));
                }
            }
            Ok(_) => b.problem = Some("the hub says fetched; the log entry it names records something else".into()),
            Err(why) => b.problem = Some(format!("the hub says fetched; no download in the log ({why})")),
        }
    }
    if let Some(claimed) = r.acknowledged {
        let by = r.acknowledged_by.as_deref().map(|m| format!(" by {m}")).unwrap_or_default();
        let says = format!("the hub says acknowledged at {claimed}{by}");
        let acked = match r.acknowledged_log_index {
            Some(i) => prover.fact(i)?,
            None => Err("the hub names no log entry for it".to_owned()),
        };
        match acked {
            Ok(Fact::Acknowledged { drop, party, member, at, key, sha256, len })
                if drop == d.id && party == r.party =>
            {
                let revoked = (!prover.vouched(&r.party, Some(&key), at))
                    .then(|| prover.revoked_by_then(&r.party, &key, at).ok_or(()));
                if matches!(revoked, Some(Err(()))) {
                    b.problem = Some(format!("{says}; the receipt's key was revoked before {at}"));
                } else if manifest.is_some_and(|(s, l)| *s != sha256 || *l != len) {
                    b.problem = Some(format!("{says}; the receipt in the log is for other bytes than you sent"));
                } else {
                    b.acknowledged = Some((at, member));
                    b.acknowledged_key = fingerprint_of(&key);
                    if let Some(Ok(warning)) = revoked {
                        b.revoked_key = Some(format!(
                            "the acknowledgement at {at} was {warning}: ask {} whether they received it",
                            r.party
                        ));
                    }
                }
            }
            Ok(_) => b.problem = Some(format!("{says}; the log entry it names records something else")),
            Err(why) => b.problem = Some(format!("{says}; no receipt in the log ({why})")),
        }
    }
    Ok(())
}

/// Whether a deletion for `reason` is what a drop in `state` means.
fn reason_fits(state: DropState, reason: DeletionReason) -> bool {
    matches!(
        (state, reason),
        (DropState::Delivered, DeletionReason::Delivered)
            | (DropState::Recalled, DeletionReason::Recalled)
            | (DropState::Expired, DeletionReason::Expired | DeletionReason::AgreementEnded)
    )
}

fn reason_name(reason: DeletionReason) -> &'static str {
    match reason {
        DeletionReason::Delivered => "delivered",
        DeletionReason::Expired => "expired",
        DeletionReason::Recalled => "recalled",
        DeletionReason::AgreementEnded => "ended with its agreement",
    }
}

/// A drop this client committed (its journal says so, with the receipt
/// that proves the commit is logged) that the hub does not list.
#[derive(Clone, Debug, PartialEq)]
pub struct Missing {
    /// The journal's record of the send.
    pub sent: crate::journal::Sent,
    /// The receipt proving the hub logged the commit.
    pub receipt: Option<PathBuf>,
}

/// The drops this client committed that the hub's answer leaves out.
/// `listed` are the ids the hub listed; `keep` the request's filters.
pub fn missing(journal: &Journal, listed: &[DropId], keep: impl Fn(&crate::journal::Sent) -> bool) -> Vec<Missing> {
    let mut seen = std::collections::HashSet::new();
    journal
        .entries
        .iter()
        .filter_map(|e| match &e.event {
            crate::journal::Event::Sent(s) => Some(s),
            _ => None,
        })
        .filter(|s| !listed.contains(&s.drop) && keep(s) && seen.insert(s.drop.clone()))
        .map(|s| Missing { sent: s.clone(), receipt: s.receipt.clone().filter(|r| r.exists()) })
        .collect()
}

/// Keeps the evidence of claims the log does not back in
/// `<state>/log/evidence/status-<time>/`: the hub's answer as received,
/// what is wrong, and for each committed drop the hub no longer lists, its
/// journal record and the offline receipt proving its commit is logged.
pub fn keep_evidence(
    state_dir: &Path,
    now: Timestamp,
    answer: &[SentDrop],
    problems: &[String],
    missing: &[Missing],
) -> Result<PathBuf> {
    let base = state_dir.join(crate::logcheck::LOG_DIR).join("evidence");
    // A folder of its own, also for two runs within one second.
    let dir = (0u32..)
        .map(|n| match n {
            0 => base.join(format!("status-{}", now.as_second())),
            n => base.join(format!("status-{}.{n}", now.as_second())),
        })
        .find(|d| !d.exists())
        .unwrap_or_else(|| base.join("status"));
    write_atomic(&dir.join("hub-sent.json"), &pretty(answer), false)?;
    write_atomic(&dir.join("problems.txt"), format!("{}\n", problems.join("\n")).as_bytes(), false)?;
    for m in missing {
        write_atomic(&dir.join(format!("{}.journal.json", m.sent.drop)), &pretty(&m.sent), false)?;
        if let Some(r) = &m.receipt {
            let bytes = std::fs::read(r).map_err(|e| Error::io(format!("cannot read {}", r.display()), e))?;
            write_atomic(&dir.join(format!("{}.committed.tlog-proof", m.sent.drop)), &bytes, false)?;
        }
    }
    Ok(dir)
}

/// Pretty JSON of anything serialisable (evidence for people to read).
fn pretty<T: Serialize + ?Sized>(v: &T) -> Vec<u8> {
    serde_json::to_vec_pretty(v).unwrap_or_default()
}
