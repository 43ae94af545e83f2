//! What the audit takes: the log, its keys and directories, and how to check signatures.

use std::collections::BTreeMap;
use std::fmt;
use std::io;

use sealdrop_proto::keys::NoteVerifierKey;

/// How signatures are verified (see the [module docs](super)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SignatureCheck {
    /// Batch verification, with `verify_strict` deciding every failure.
    #[default]
    Batch,
    /// `verify_strict` on every signature.
    Strict,
}

/// What the audit needs.
pub struct AuditInput<'a> {
    /// The hub's log key (its name is the log's origin).
    pub log_key: NoteVerifierKey,
    /// The sharing agreement's coordinator key, which signs directories.
    pub authority: NoteVerifierKey,
    /// The checkpoint note the entries must add up to, with cosignatures.
    pub checkpoint: String,
    /// Every signed directory note, by serial.
    pub directories: BTreeMap<u64, String>,
    /// The entries, in log order.
    pub entries: Box<dyn Iterator<Item = io::Result<Vec<u8>>> + 'a>,
    /// How many distinct parties' witnesses must have cosigned the checkpoint.
    pub required_witnesses: usize,
    /// How signatures are verified.
    pub signatures: SignatureCheck,
    /// Worker threads for parsing and verification (at least 1).
    pub threads: usize,
}

impl<'a> AuditInput<'a> {
    /// An input with batch signature checking on 2 workers. For entries in
    /// memory pass `entries.into_iter().map(Ok)`.
    pub fn new(
        log_key: NoteVerifierKey,
        authority: NoteVerifierKey,
        checkpoint: impl Into<String>,
        directories: BTreeMap<u64, String>,
        entries: impl Iterator<Item = io::Result<Vec<u8>>> + 'a,
        required_witnesses: usize,
    ) -> Self {
        Self {
            log_key,
            authority,
            checkpoint: checkpoint.into(),
            directories,
            entries: Box::new(entries),
            required_witnesses,
            signatures: SignatureCheck::Batch,
            threads: 2,
        }
    }

    /// Verifies every signature with `verify_strict`.
    pub fn strict(mut self) -> Self {
        self.signatures = SignatureCheck::Strict;
        self
    }
}

impl fmt::Debug for AuditInput<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditInput")
            .field("log_key", &self.log_key)
            .field("authority", &self.authority)
            .field("directories", &self.directories.keys())
            .field("required_witnesses", &self.required_witnesses)
            .field("signatures", &self.signatures)
            .field("threads", &self.threads)
            .finish_non_exhaustive()
    }
}
