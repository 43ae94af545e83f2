//! The kinds of client failure, and the process exit status each gives:
//! what scripts, schedulers and the man pages rely on, so a status never
//! changes meaning. Every [`crate::error_code::ErrorCode`] names its kind.

/// What kind of failure a client error is, which decides the process exit status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitKind {
    /// Anything else, including local I/O failures (exit 1).
    Other,
    /// Bad input, configuration or key files (exit 3).
    Input,
    /// Something did not verify: tampering, bad signatures, rollbacks (exit 4).
    Verification,
    /// The hub could not be reached (exit 5).
    Unreachable,
    /// The hub refused the request (exit 6).
    Refused,
    /// `audit verify --strict`: the log verified, but with warnings (exit 7).
    Warnings,
}

impl ExitKind {
    /// Every kind, in exit-status order: what `--help` and the man pages list.
    pub const ALL: [ExitKind; 6] = [
        ExitKind::Other,
        ExitKind::Input,
        ExitKind::Verification,
        ExitKind::Unreachable,
        ExitKind::Refused,
        ExitKind::Warnings,
    ];

    /// The process exit status for this kind and what it means. One match
    /// gives both, so the documented list cannot drift from the mapping.
    pub fn exit_status(self) -> (u8, &'static str) {
        match self {
            ExitKind::Other => (1, "other failure, e.g. a local file could not be written"),
            ExitKind::Input => (3, "bad input or configuration: arguments, files, keys, settings"),
            ExitKind::Verification => (4, "verification failure: tampering, a bad signature, a rollback"),
            ExitKind::Unreachable => (5, "the hub could not be reached"),
            ExitKind::Refused => (6, "the hub refused the request"),
            ExitKind::Warnings => {
                (7, "`audit verify --strict`: the log verified, but with warnings (`error[audit_warnings]`)")
            }
        }
    }

    /// The process exit status for this kind.
    pub fn exit_code(self) -> u8 {
        self.exit_status().0
    }
}
