//! The client's one error type: a stable code, a one-line message that says
//! what is wrong and what to do, and a kind that decides the exit status.

use std::fmt;

/// What kind of failure, which decides the process exit status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
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
}

impl Kind {
    /// The process exit status for this kind.
    pub fn exit_code(self) -> u8 {
        match self {
            Kind::Other => 1,
            Kind::Input => 3,
            Kind::Verification => 4,
            Kind::Unreachable => 5,
            Kind::Refused => 6,
        }
    }
}

/// Exit statuses, for `--help`.
pub const EXIT_CODES_HELP: &str = "Exit status: 0 success, 1 other failure, 2 usage error (`error[usage]`), 3 bad input or configuration, \
4 verification failure (tampering, bad signature, rollback), 5 hub unreachable, 6 refused by the hub.";

/// A client error.
#[derive(Debug, Clone)]
pub struct Error {
    /// Stable machine-readable code, e.g. `key_permissions` or a hub code such as `forbidden`.
    pub code: String,
    /// One line for people.
    pub message: String,
    /// Decides the exit status.
    pub kind: Kind,
}

/// Result with the client's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error of `kind` with `code` and `message`.
    pub fn new(kind: Kind, code: &str, message: impl Into<String>) -> Self {
        Self { code: code.to_owned(), message: message.into(), kind }
    }
    /// Bad input or configuration.
    pub fn input(code: &str, message: impl Into<String>) -> Self {
        Self::new(Kind::Input, code, message)
    }
    /// Something failed to verify.
    pub fn verification(code: &str, message: impl Into<String>) -> Self {
        Self::new(Kind::Verification, code, message)
    }
    /// A local I/O failure on `what`.
    pub fn io(what: impl fmt::Display, err: std::io::Error) -> Self {
        Self::new(Kind::Other, "io", format!("{what}: {err}"))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error[{}]: {}", self.code, self.message)
    }
}

impl std::error::Error for Error {}
