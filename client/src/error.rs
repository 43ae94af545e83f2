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
    /// `audit verify --strict`: the log verified, but with warnings (exit 7).
    Warnings,
}

impl Kind {
    /// Every kind, in exit-status order: what `--help` and the man pages list.
    pub const ALL: [Kind; 6] =
        [Kind::Other, Kind::Input, Kind::Verification, Kind::Unreachable, Kind::Refused, Kind::Warnings];

    /// The process exit status for this kind and what it means. One match
    /// gives both, so the documented list cannot drift from the mapping.
    pub fn exit_status(self) -> (u8, &'static str) {
        match self {
            Kind::Other => (1, "other failure, e.g. a local file could not be written"),
            Kind::Input => (3, "bad input or configuration: arguments, files, keys, settings"),
            Kind::Verification => (4, "verification failure: tampering, a bad signature, a rollback"),
            Kind::Unreachable => (5, "the hub could not be reached"),
            Kind::Refused => (6, "the hub refused the request"),
            Kind::Warnings => {
                (7, "`audit verify --strict`: the log verified, but with warnings (`error[audit_warnings]`)")
            }
        }
    }

    /// The process exit status for this kind.
    pub fn exit_code(self) -> u8 {
        self.exit_status().0
    }
}

/// The exit status of a command line that does not parse (`error[usage]`).
pub const USAGE_EXIT: u8 = 2;

/// The exit statuses of a send stopped by a signal (128 + its number, as a
/// shell reports a process a signal killed): it withdrew what it had not
/// committed and said so (`error[interrupted]`; see `crate::interrupt`).
pub const INTERRUPTED_EXITS: [(u8, &str); 2] = [
    (130, "interrupted by Ctrl-C (SIGINT); a send withdraws the drops it had not committed (`error[interrupted]`)"),
    (143, "stopped by SIGTERM; a send withdraws the drops it had not committed (`error[interrupted]`)"),
];

/// Every exit status the client uses, lowest first, with its meaning: 0,
/// [`USAGE_EXIT`], each [`Kind`]'s and [`INTERRUPTED_EXITS`]. `--help` and
/// the man pages are generated from this list.
pub fn exit_statuses() -> Vec<(u8, &'static str)> {
    let mut all = vec![(0, "success"), (USAGE_EXIT, "usage error: the command line does not parse (`error[usage]`)")];
    all.extend(INTERRUPTED_EXITS);
    all.extend(Kind::ALL.iter().map(|k| k.exit_status()));
    all.sort_by_key(|(code, _)| *code);
    all
}

/// The heading of the exit-status list in `--help`.
pub const EXIT_STATUS_HEADING: &str = "Exit status:";

/// The exit-status list for the top-level `--help`, e.g.
/// `Exit status:\n  0  success\n  1  other failure ...`.
pub fn exit_codes_help() -> String {
    let mut text = String::from(EXIT_STATUS_HEADING);
    for (code, meaning) in exit_statuses() {
        text.push_str(&format!("\n  {code}  {meaning}"));
    }
    text.push_str(
        "\nErrors are one line on stderr, `error[<code>]: <what is wrong>; <what to do>`; the codes are stable.",
    );
    text
}

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
    /// A local I/O failure on `what`, with what to do about this kind of failure.
    pub fn io(what: impl fmt::Display, err: std::io::Error) -> Self {
        Self::new(Kind::Other, "io", format!("{what}: {err}; {}", io_advice(err.kind())))
    }
}

/// What to do about a local I/O failure of `kind`.
pub fn io_advice(kind: std::io::ErrorKind) -> &'static str {
    use std::io::ErrorKind as K;
    match kind {
        K::NotFound => "check the path (and that its folder exists)",
        K::PermissionDenied | K::ReadOnlyFilesystem => {
            "check that you may read and write there (permissions), or use another folder"
        }
        K::StorageFull | K::QuotaExceeded | K::FileTooLarge => "free some disk space, then run the command again",
        K::AlreadyExists => "choose another name or move the existing file away",
        K::IsADirectory | K::NotADirectory | K::DirectoryNotEmpty => "check that the path names what it should",
        K::BrokenPipe => "whatever was reading the output stopped early; read all of it",
        K::Interrupted | K::TimedOut | K::WouldBlock => "run the command again",
        _ => "check the path and the disk, then run the command again",
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error[{}]: {}", self.code, self.message)
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fails to compile when a kind is added without a place in [`Kind::ALL`].
    fn position(kind: Kind) -> usize {
        match kind {
            Kind::Other => 0,
            Kind::Input => 1,
            Kind::Verification => 2,
            Kind::Unreachable => 3,
            Kind::Refused => 4,
            Kind::Warnings => 5,
        }
    }

    #[test]
    fn every_kind_is_listed_once_with_its_own_exit_status() {
        for (i, kind) in Kind::ALL.iter().enumerate() {
            assert_eq!(position(*kind), i, "{kind:?} is out of place in Kind::ALL");
        }
        let statuses = exit_statuses();
        let codes: Vec<u8> = statuses.iter().map(|(c, _)| *c).collect();
        assert_eq!(codes, [0, 1, 2, 3, 4, 5, 6, 7, 130, 143], "exit statuses must be distinct and sorted");
        for kind in Kind::ALL {
            assert!(statuses.contains(&kind.exit_status()), "{kind:?}");
            assert_eq!(kind.exit_code(), kind.exit_status().0);
        }
    }

    #[test]
    fn io_errors_say_what_to_do() {
        let e = Error::io("cannot write /x/y", std::io::Error::from(std::io::ErrorKind::PermissionDenied));
        assert_eq!(e.code, "io");
        assert_eq!(e.kind, Kind::Other);
        assert!(e.message.starts_with("cannot write /x/y: permission denied; check that you may"), "{}", e.message);
        let full = Error::io("cannot write /x/y", std::io::Error::from(std::io::ErrorKind::StorageFull));
        assert!(full.message.ends_with("free some disk space, then run the command again"), "{}", full.message);
    }

    #[test]
    fn the_help_text_lists_exactly_the_exit_statuses() {
        let help = exit_codes_help();
        let mut lines = help.lines();
        assert_eq!(lines.next(), Some(EXIT_STATUS_HEADING));
        let listed: Vec<(u8, String)> = lines
            .filter_map(|l| l.strip_prefix("  "))
            .map(|l| {
                let (code, meaning) = l.split_once("  ").unwrap();
                (code.parse().unwrap(), meaning.to_owned())
            })
            .collect();
        let want: Vec<(u8, String)> = exit_statuses().into_iter().map(|(c, m)| (c, m.to_owned())).collect();
        assert_eq!(listed, want);
    }
}
