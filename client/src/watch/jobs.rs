//! A job: one file taken from the outbox, kept in `.sealdrop/work/<job>/`
//! with its record `job.json` until it is sent or refused.
//!
//! Taking a file is one rename into the job's folder; the record is written
//! after that and before anything is sent, with the idempotency key every
//! attempt sends under. So a restart at any point never sends twice: a job
//! folder without a record was never sent (a new key is made), and one with
//! a record is sent again under the same key, which the hub answers with the
//! drop an earlier attempt committed.

use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use sealdrop_proto::keys::MemberSecretKey;

use super::layout::Route;
use crate::error::{Error, ErrorCode, Result};
use crate::split::rerun::MemberMacKey;

/// The record's file name in a job's folder.
pub const RECORD: &str = "job.json";

/// What the service knows of a job.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Job {
    /// The job's name (its folder's).
    pub name: String,
    /// The file's name.
    pub file: String,
    /// Where it goes, from the outbox folders it was in.
    pub route: Route,
    /// When it was taken from the outbox.
    pub taken: Timestamp,
    /// The idempotency key of its drop (64 hex digits): fixed before the
    /// first attempt, so every later attempt is recognised by the hub.
    pub key: String,
    /// Attempts that failed for a reason that may pass (the hub down).
    #[serde(default)]
    pub attempts: u32,
    /// The last such failure, for the status file.
    #[serde(default)]
    pub last_error: Option<String>,
}

impl Job {
    /// The file's path in the job's folder.
    pub fn path(&self, work: &Path) -> PathBuf {
        work.join(&self.name).join(&self.file)
    }

    /// Writes the record into the job's folder (atomically).
    pub fn save(&self, work: &Path) -> Result<()> {
        let text = serde_json::to_vec_pretty(self).map_err(|e| Error::new(ErrorCode::Internal, e.to_string()))?;
        crate::fsutil::write_atomic(&work.join(&self.name).join(RECORD), &text, true)
    }

    /// Reads the record of job folder `dir`; `None` when there is none (the
    /// service stopped between taking the file and writing it).
    pub fn load(dir: &Path) -> Result<Option<Self>> {
        match std::fs::read(dir.join(RECORD)) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                Error::new(
                    ErrorCode::WatchStateInvalid,
                    format!(
                        "{} is not a job record ({e}); move the job's folder out of .sealdrop/work after checking with `sealdrop status` whether it was sent",
                        dir.join(RECORD).display()
                    ),
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(format!("cannot read {}", dir.join(RECORD).display()), e)),
        }
    }
}

/// HKDF salt and info: this secret is for the watch service's keys only.
const SALT: &[u8] = b"sealdrop watch idempotency";
const INFO: &[u8] = b"sealdrop-watch-idempotency-v1";

/// Makes jobs' idempotency keys under a secret only this member has, so the
/// hub learns nothing from a key (as split's, see `split::rerun`).
pub struct KeyMaker(MemberMacKey);

impl KeyMaker {
    /// The key maker of member `me`.
    pub fn of(me: &MemberSecretKey) -> Self {
        Self(MemberMacKey::derive(me, SALT, INFO))
    }

    /// The key of the job `name` taken from the watch folder `root` at
    /// `taken` (to the nanosecond): two jobs never share one, even with the
    /// same file name, in the same second, in two watch folders.
    pub fn key(&self, root: &Path, name: &str, taken: Timestamp) -> String {
        let nanos = taken.as_nanosecond().to_string();
        self.0.mac(&["sealdrop-watch-v1", root.to_string_lossy().as_ref(), name, nanos.as_str()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_hex_and_differ_per_job_and_member() {
        let me = MemberSecretKey::generate("camden".parse().unwrap(), "data-team".parse().unwrap());
        let other = MemberSecretKey::generate("camden".parse().unwrap(), "sen-team".parse().unwrap());
        let at: Timestamp = "2026-12-07T16:00:00.123456789Z".parse().unwrap();
        let k = KeyMaker::of(&me).key(Path::new("/srv/w"), "job", at);
        assert!(k.len() == 64 && k.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()), "{k}");
        assert_eq!(k, KeyMaker::of(&me).key(Path::new("/srv/w"), "job", at), "a restart finds the same key");
        for different in [
            KeyMaker::of(&me).key(Path::new("/srv/x"), "job", at),
            KeyMaker::of(&me).key(Path::new("/srv/w"), "job-2", at),
            KeyMaker::of(&me).key(
                Path::new("/srv/w"),
                "job",
                at.checked_add(jiff::SignedDuration::from_nanos(1)).unwrap(),
            ),
            KeyMaker::of(&other).key(Path::new("/srv/w"), "job", at),
        ] {
            assert_ne!(k, different);
        }
    }

    #[test]
    fn a_record_round_trips_and_a_missing_one_is_none() {
        let work = tempfile::tempdir().unwrap();
        let job = Job {
            name: "20261207-160000-fsm.csv".into(),
            file: "fsm.csv".into(),
            route: Route::Send { to: "islington".into(), agreement: None },
            taken: "2026-12-07T16:00:00Z".parse().unwrap(),
            key: "ab".repeat(32),
            attempts: 2,
            last_error: Some("error[hub_unreachable]: down".into()),
        };
        std::fs::create_dir(work.path().join(&job.name)).unwrap();
        assert_eq!(Job::load(&work.path().join(&job.name)).unwrap(), None);
        job.save(work.path()).unwrap();
        assert_eq!(Job::load(&work.path().join(&job.name)).unwrap(), Some(job.clone()));
        std::fs::write(work.path().join(&job.name).join(RECORD), "{").unwrap();
        assert_eq!(Job::load(&work.path().join(&job.name)).unwrap_err().code, "watch_state_invalid");
    }
}
