//! The client's one error type: a stable code, a one-line message that says
//! what is wrong and what to do, and a kind that decides the exit status.
//! The client's own codes are [`ErrorCode`]s; a hub's refusal keeps the code
//! the hub sent, which a newer (or lying) hub may choose freely.

use std::fmt;

/// Every code the client reports is an [`ErrorCode`], defined with the hub's
/// in the protocol crate; its [`Kind`] decides the exit status.
pub use sealdrop_proto::error_code::{ErrorCode, ExitKind as Kind};

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
    /// Seconds the hub asked the client to wait before trying again (its
    /// `Retry-After` on a `429`), for a program that retries by itself
    /// (`watch`); people read it in the message.
    pub retry_after: Option<u64>,
}

/// Result with the client's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error with `code`, of the kind (and exit status) the code has.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::with_kind(code.exit_kind(), code, message)
    }
    /// An error with `code` but another kind than the code's own, where one
    /// use of a code exits differently from the rest: a coordinator's own
    /// unsigned directory file that does not hold together is bad input (3),
    /// not a directory that failed to verify (4); and a result that could
    /// not be written as JSON has always exited 3, unlike the client's other
    /// internal failures (1).
    pub fn with_kind(kind: Kind, code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code: code.as_str().to_owned(), message: message.into(), kind, retry_after: None }
    }
    /// The hub refused the request with `code`, kept as the hub sent it.
    pub fn refused(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self { code: code.into(), message: message.into(), kind: Kind::Refused, retry_after: None }
    }
    /// A local I/O failure on `what`, with what to do about this kind of failure.
    pub fn io(what: impl fmt::Display, err: std::io::Error) -> Self {
        Self::new(ErrorCode::Io, format!("{what}: {err}; {}", io_advice(err.kind())))
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
