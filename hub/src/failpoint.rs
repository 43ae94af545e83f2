//! A test hook: `SEALDROP_HUB_FAILPOINT=<point>[@<n>]` makes the hub process
//! abort (`std::process::abort`, as abrupt as SIGKILL: no destructor, no
//! flush, no rollback but SQLite's own) the `n`th time (default: the first)
//! it reaches the named point, so the end-to-end tests can crash it at an
//! exact step of a commit or a log append and prove that nothing half-done
//! survives a restart (`tests/tests/faults.rs`).
//!
//! Unset (or empty), it costs one relaxed load per point. `serve` logs a
//! warning at start when it is set and refuses an unknown point, so a
//! misspelt one cannot make a test pass by never firing. Never set it in
//! production.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The environment variable naming the point.
pub const ENV: &str = "SEALDROP_HUB_FAILPOINT";

/// Every point, where it is, and the state a crash there leaves.
pub const POINTS: &[(&str, &str)] = &[
    (UPLOAD_MID_BODY, "an upload has written its first MID_UPLOAD_BYTES bytes (4 MiB), the rest not yet received"),
    (UPLOAD_BEFORE_RECORD, "an upload's bytes are stored, but the drop does not record them yet"),
    (COMMIT_AFTER_PROMOTE, "a commit promoted the upload to the drop's blob, before the database transaction"),
    (
        LOG_AFTER_APPEND_BEFORE_CHECKPOINT,
        "inside a log append's transaction: entries and hashes written, checkpoint not yet signed",
    ),
    (COMMIT_AFTER_DB, "a commit's transaction is durable, before the sender gets the answer"),
    (
        ACK_AFTER_DB,
        "an acknowledgement's transaction is durable, before a delivered drop's ciphertext is deleted and the \
         recipient gets the answer",
    ),
];

/// How far into its body an upload reaches [`UPLOAD_MID_BODY`]: far enough
/// that the bytes before it are on disk (in a file, not a database row).
pub const MID_UPLOAD_BYTES: u64 = 4 * 1024 * 1024;

/// See [`POINTS`].
pub const UPLOAD_MID_BODY: &str = "upload:mid_body";

/// See [`POINTS`].
pub const UPLOAD_BEFORE_RECORD: &str = "upload:before_record";
/// See [`POINTS`].
pub const COMMIT_AFTER_PROMOTE: &str = "commit:after_promote";
/// See [`POINTS`].
pub const LOG_AFTER_APPEND_BEFORE_CHECKPOINT: &str = "log:after_append_before_checkpoint";
/// See [`POINTS`].
pub const COMMIT_AFTER_DB: &str = "commit:after_db";
/// See [`POINTS`].
pub const ACK_AFTER_DB: &str = "ack:after_db";

/// The armed point and on which of its hits to abort.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Armed {
    /// One of [`POINTS`].
    pub point: &'static str,
    /// Abort on this hit (1: the first).
    pub on_hit: u64,
}

/// Parses `<point>[@<n>]`; an empty value arms nothing.
pub fn parse(value: &str) -> Result<Option<Armed>, String> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    let (name, on_hit) = match value.split_once('@') {
        Some((name, n)) => match n.parse::<u64>() {
            Ok(n) if n > 0 => (name, n),
            _ => return Err(format!("{ENV}={value:?}: the hit after `@` must be a whole number from 1")),
        },
        None => (value, 1),
    };
    let Some(&(point, _)) = POINTS.iter().find(|(p, _)| *p == name) else {
        let known: Vec<&str> = POINTS.iter().map(|(p, _)| *p).collect();
        return Err(format!("{ENV}={value:?} names no fail point; the points are {}", known.join(", ")));
    };
    Ok(Some(Armed { point, on_hit }))
}

/// What the environment arms, read once.
static ARMED: LazyLock<Result<Option<Armed>, String>> =
    LazyLock::new(|| parse(&std::env::var(ENV).unwrap_or_default()));

/// Hits of the armed point so far.
static HITS: AtomicU64 = AtomicU64::new(0);

/// The armed point, or why the variable is refused (for `serve` to report at start).
pub fn armed() -> Result<Option<Armed>, String> {
    ARMED.clone()
}

/// Aborts the process if `point` is armed and this is the hit it waits for.
pub fn hit(point: &'static str) {
    let Ok(Some(armed)) = &*ARMED else { return };
    if armed.point == point && HITS.fetch_add(1, Ordering::Relaxed) + 1 == armed.on_hit {
        eprintln!("{ENV}: aborting at fail point {point} (hit {})", armed.on_hit);
        std::process::abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_parse_with_an_optional_hit() {
        assert_eq!(parse("").unwrap(), None);
        assert_eq!(parse("  ").unwrap(), None);
        assert_eq!(parse(COMMIT_AFTER_DB).unwrap(), Some(Armed { point: COMMIT_AFTER_DB, on_hit: 1 }));
        let at_third = format!("{LOG_AFTER_APPEND_BEFORE_CHECKPOINT}@3");
        assert_eq!(parse(&at_third).unwrap(), Some(Armed { point: LOG_AFTER_APPEND_BEFORE_CHECKPOINT, on_hit: 3 }));
        for bad in ["commit:after_promot", "commit", "commit:after_db@0", "commit:after_db@x", "@2"] {
            let err = parse(bad).unwrap_err();
            assert!(err.contains(ENV), "{bad}: {err}");
        }
        assert!(parse("nope").unwrap_err().contains(COMMIT_AFTER_PROMOTE));
    }
}
