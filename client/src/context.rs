//! Everything a command needs, resolved once: the hub, this member's key, the
//! pinned authority key, the state dir and the clock.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sealdrop_proto::clock::Clock;
use sealdrop_proto::directory::{Directory, SignedDirectory};
use sealdrop_proto::keys::{MemberSecretKey, NoteSigningKey, NoteVerifierKey};

use crate::error::{Error, ErrorCode, Result};
use crate::key_protection::KeyUnlock;
use crate::session_setup::Verified;
use crate::transport::HubApi;

/// Resolved settings (flags, then environment, then config file).
#[derive(Clone, Debug)]
pub struct Settings {
    /// The hub's base URL. The command line checks it against the plain-http
    /// rule ([`crate::hub_url::check`]) when it resolves the settings.
    pub hub: Option<String>,
    /// The member secret key file.
    pub identity: Option<PathBuf>,
    /// The pinned authority key (text or file).
    pub authority: Option<String>,
    /// Local state.
    pub state_dir: PathBuf,
    /// Suppress progress bars.
    pub quiet: bool,
    /// A witness key: when set, every session cosigns the checkpoint it verified.
    pub witness_key: Option<PathBuf>,
    /// Ciphertexts of at least this many bytes are spooled to
    /// `<state>/downloads/` while they download, so an interrupted fetch
    /// resumes (0: always). See [`resume_min_bytes`].
    pub resume_min_bytes: u64,
    /// Where "now" comes from.
    pub clock: Arc<dyn Clock>,
    /// How a protected member key is unlocked, and the key once unlocked,
    /// so a command asks for the passphrase once.
    pub key_unlock: KeyUnlock,
}

impl Settings {
    /// The hub URL or an error that says how to give one.
    pub fn hub_url(&self) -> Result<&str> {
        self.hub.as_deref().ok_or_else(|| {
            Error::new(
                ErrorCode::NoHub,
                "no hub given: pass --hub URL, set SEALDROP_HUB, or run `sealdrop init --hub URL`",
            )
        })
    }

    /// Loads this member's secret key, refusing a file others can read, and
    /// unlocking a protected one (asking for its passphrase once per command).
    pub fn identity(&self) -> Result<MemberSecretKey> {
        load_identity(self.identity_path()?, &self.key_unlock)
    }

    /// The member key file, or an error that says how to give one.
    pub fn identity_path(&self) -> Result<&Path> {
        self.identity.as_deref().ok_or_else(|| {
            Error::new(
                ErrorCode::NoIdentity,
                "no member key given: pass --identity FILE, set SEALDROP_IDENTITY, or run `sealdrop init --identity FILE`",
            )
        })
    }

    /// The pinned authority key.
    pub fn authority(&self) -> Result<NoteVerifierKey> {
        let text = self.authority.as_deref().ok_or_else(|| {
            Error::new(
                ErrorCode::NoAuthority,
                "no authority key pinned: pass --authority KEY_OR_FILE (the coordinator's public key), set SEALDROP_AUTHORITY, or run `sealdrop init`",
            )
        })?;
        parse_authority(text)
    }

    /// A hub client acting as this member.
    pub fn hub_as_member(&self) -> Result<(HubApi, MemberSecretKey)> {
        let me = self.identity()?;
        let hub = HubApi::new(self.hub_url()?, Some(me.signing.clone()), self.clock.clone())?;
        Ok((hub, me))
    }

    /// A hub client for reading the transfer log and the directory, which a
    /// hub keeps for its members and witnesses unless its log is public:
    /// signing as this member when a member key is configured, else with
    /// the witness key when one is (a witness need not be a member), else
    /// unsigned, which only a public log answers (the refusal says which key
    /// to give). For `audit` and `directory show`, which people without a
    /// member key run too.
    pub fn hub_as_reader(&self) -> Result<HubApi> {
        let key = match (&self.identity, &self.witness_key) {
            (Some(_), _) => Some(self.identity()?.signing),
            (None, Some(path)) => Some(crate::logcheck::load_witness_key(path)?),
            (None, None) => None,
        };
        HubApi::new(self.hub_url()?, key, self.clock.clone())
    }

    /// Fetches the hub's directory and verifies it against the pinned
    /// authority key and the newest directory seen before.
    pub fn trusted_directory(&self, hub: &HubApi) -> Result<SignedDirectory> {
        crate::trust::trusted_directory(hub, &self.authority()?, &self.state_dir)
    }
}

/// A member's verified view of the hub for one command: its key, the
/// directory it verified, and the hub's log checkpoint it verified as
/// consistent with everything it saw before.
pub struct Session {
    /// Signed requests to the hub as this member.
    pub hub: HubApi,
    /// This member's key pair.
    pub me: MemberSecretKey,
    /// The directory verified against the pinned authority key.
    pub directory: SignedDirectory,
    /// The key that signs the hub's log checkpoints.
    pub log_key: NoteVerifierKey,
    /// The newest checkpoint verified consistent.
    pub checkpoint: sealdrop_log::checkpoint::SignedCheckpoint,
}

impl Settings {
    /// Opens a session: loads the key, verifies the directory and the log,
    /// and cosigns the checkpoint when a witness key is configured.
    pub fn session(&self) -> Result<Session> {
        let (hub, me) = self.hub_as_member()?;
        let Verified { directory, log_key, checkpoint } =
            self.verify_hub(&hub, |d| check_listed(&d.directory, &me, d.directory.serial))?;
        if let Some(path) = &self.witness_key {
            let key = crate::logcheck::load_witness_key(path)?;
            if let Err(e) = crate::logcheck::witness(&hub, &key, &checkpoint, self.clock.now()) {
                eprintln!("warning: could not cosign the hub's checkpoint as a witness: {e}");
            }
        }
        Ok(Session { hub, me, directory, log_key, checkpoint })
    }

    /// A witness's verified view of the hub, for `sealdrop witness` run
    /// without a member key: the same checks as [`Self::session`] (the
    /// directory against the pinned authority, the checkpoint against the
    /// log key and everything seen before), every request signed with the
    /// witness key, which the directory must list. Returns the client, which
    /// signs as the witness, and the verified checkpoint.
    pub fn witness_session(
        &self,
        witness: &NoteSigningKey,
    ) -> Result<(HubApi, sealdrop_log::checkpoint::SignedCheckpoint)> {
        let hub = HubApi::new(self.hub_url()?, Some(witness.clone()), self.clock.clone())?;
        let listed = witness.cosigner_verifier();
        let verified = self.verify_hub(&hub, |directory| {
            if directory.directory.parties.iter().any(|p| p.witness_keys.contains(&listed)) {
                return Ok(());
            }
            Err(Error::new(
                ErrorCode::WitnessNotListed,
                format!(
                    "witness key {} is not listed in the hub's directory (serial {}): send `{listed}` to the \
                     coordinator to list under your party's witness_keys",
                    witness.name(),
                    directory.directory.serial
                ),
            ))
        })?;
        Ok((hub, verified.checkpoint))
    }

    /// The directory, log key and checkpoint a session starts from (see
    /// [`crate::session_setup`]), the directory checked by `check_caller`.
    fn verify_hub(&self, hub: &HubApi, check_caller: impl Fn(&SignedDirectory) -> Result<()>) -> Result<Verified> {
        crate::session_setup::verify(hub, &self.authority()?, &self.state_dir, self.clock.now(), check_caller)
    }

    /// Keeps an offline receipt that log entry `index` is what `expected`
    /// accepts, from `proof` when the hub sent one with the change.
    pub fn keep_receipt(
        &self,
        session: &Session,
        index: u64,
        name: &str,
        expected: impl Fn(&sealdrop_log::entry::LogEntry) -> bool,
        proof: Option<&sealdrop_proto::api::LogProof>,
    ) -> Result<PathBuf> {
        crate::logcheck::keep_receipt(
            &self.state_dir,
            &session.hub,
            &session.log_key,
            self.clock.now(),
            index,
            name,
            expected,
            proof,
        )
    }

    /// The size of the newest log checkpoint this member verified, sent
    /// with a change so the hub answers with the proof to keep its receipt.
    pub fn known_log_size(&self, session: &Session) -> Option<u64> {
        crate::logcheck::known_size(&self.state_dir, &session.log_key)
    }
}

/// The default of [`Settings::resume_min_bytes`]: 8 MiB.
pub const DEFAULT_RESUME_MIN_BYTES: u64 = 8 * 1024 * 1024;

/// The environment variable that sets [`Settings::resume_min_bytes`].
pub const RESUME_MIN_BYTES_ENV: &str = "SEALDROP_RESUME_MIN_BYTES";

/// Resolves [`Settings::resume_min_bytes`]: the environment variable
/// `SEALDROP_RESUME_MIN_BYTES`, then the config file's `resume_min_bytes`
/// (`from_file`), then 8 MiB.
pub fn resume_min_bytes(from_file: Option<u64>) -> Result<u64> {
    match std::env::var(RESUME_MIN_BYTES_ENV) {
        Ok(text) if !text.trim().is_empty() => parse_resume_min_bytes(&text),
        Ok(_) | Err(std::env::VarError::NotPresent) => Ok(from_file.unwrap_or(DEFAULT_RESUME_MIN_BYTES)),
        Err(std::env::VarError::NotUnicode(_)) => parse_resume_min_bytes("(not UTF-8)"),
    }
}

fn parse_resume_min_bytes(text: &str) -> Result<u64> {
    text.trim().parse().map_err(|_| {
        Error::new(
            ErrorCode::ConfigInvalid,
            format!(
                "{RESUME_MIN_BYTES_ENV}={text:?} is not a number of bytes; set it to a whole number such as {DEFAULT_RESUME_MIN_BYTES} (0 makes every download resumable) or unset it"
            ),
        )
    })
}

/// Loads a member secret key file, unlocking it with `unlock` when it is
/// protected (see [`crate::key_protection`]).
pub fn load_identity(path: &Path, unlock: &KeyUnlock) -> Result<MemberSecretKey> {
    let text = unlock.key_text(path)?;
    MemberSecretKey::from_file_text(&text)
        .map_err(|e| {
        Error::new(
            ErrorCode::KeyInvalid,
            format!(
                "{} is not a usable member key: {e}; give the secret key file `sealdrop keygen` wrote (--identity FILE)",
                path.display()
            ),
        )
    })
}

/// What `init` saves for `--authority`: verifier-key text as given, a file
/// name made absolute. Saved as typed, a relative name would be looked up
/// from whatever folder a later command runs in, and fail there with
/// `authority_invalid`. Made absolute against the current folder rather than
/// canonicalized, as `init` does for every path, so a symlink stays a symlink
/// (an administrator can point it at a new key later).
pub fn authority_setting(text: &str) -> Result<String> {
    if text.parse::<NoteVerifierKey>().is_ok() {
        return Ok(text.to_owned());
    }
    let path = std::path::absolute(text).map_err(|e| Error::io(format!("cannot resolve --authority {text:?}"), e))?;
    path.into_os_string().into_string().map_err(|p| {
        Error::new(
            ErrorCode::AuthorityInvalid,
            format!(
                "--authority {text:?} resolves to {}, which is not UTF-8; give the file's absolute path",
                std::path::Path::new(&p).display()
            ),
        )
    })
}

/// Reads an authority key given as text or as a file holding it.
pub fn parse_authority(text: &str) -> Result<NoteVerifierKey> {
    if let Ok(k) = text.parse::<NoteVerifierKey>() {
        return Ok(k);
    }
    let content = std::fs::read_to_string(text).map_err(|e| {
        Error::new(
            ErrorCode::AuthorityInvalid,
            format!(
                "--authority {text:?} is neither a verifier key (name+id+key) nor a readable file ({e}); give the coordinator's public key file (authority.pub) or its text"
            ),
        )
    })?;
    let line = content.lines().map(str::trim).find(|l| !l.is_empty() && !l.starts_with('#')).unwrap_or("");
    line.parse()
        .map_err(|e| {
        Error::new(
            ErrorCode::AuthorityInvalid,
            format!(
                "{text} does not hold an authority verifier key: {e}; give the coordinator's public key file (authority.pub)"
            ),
        )
    })
}

/// Checks that this member's key is the one the directory lists, and says
/// so plainly when the coordinator revoked it.
pub fn check_listed(dir: &Directory, me: &MemberSecretKey, serial: u64) -> Result<()> {
    let mine = me.signing.verifier();
    if let Some(r) = dir.party(&me.party).and_then(|p| p.revocation(&mine)) {
        return Err(Error::new(
            ErrorCode::KeyRevoked,
            format!(
                "your key {} was revoked from {} ({}) in the signed directory (serial {serial}): it can no longer \
                 send, fetch or sign; make a new key with `sealdrop keygen` and send its card to the coordinator",
                me.signing.name(),
                r.revoked_at,
                if r.reason.is_empty() { "no reason given" } else { r.reason.as_str() }
            ),
        ));
    }
    match dir.member_by_key_name(me.signing.name()) {
        Some((_, m)) if m.signing_key == mine => Ok(()),
        _ => Err(Error::new(
            ErrorCode::NotInDirectory,
            format!(
                "your key {} ({}) is not in the signed directory (serial {serial}); send your public key card (`sealdrop key show`) to the coordinator",
                me.signing.name(),
                me.signing.verifier().fingerprint()
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_min_bytes_parses_whole_numbers_only() {
        assert_eq!(parse_resume_min_bytes("0").unwrap(), 0);
        assert_eq!(parse_resume_min_bytes(" 1048576 ").unwrap(), 1_048_576);
        for bad in ["-1", "8MiB", "1.5", "lots"] {
            let e = parse_resume_min_bytes(bad).unwrap_err();
            assert_eq!(e.code, "config_invalid", "{bad}");
            assert!(e.message.contains(RESUME_MIN_BYTES_ENV), "{}", e.message);
        }
    }
}
