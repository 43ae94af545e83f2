//! A test hook: `SEALDROP_HUB_FAILPOINT=<point>[@<n>]` makes the hub process
//! abort (`std::process::abort`, as abrupt as SIGKILL: no destructor, no
//! flush, no rollback but SQLite's own) the `n`th time (default: the first)
//! it reaches the named point, so the end-to-end tests can crash it at an
//! exact step of a commit or a log append and prove that nothing half-done
//! survives a restart (`tests/tests/faults.rs`).
//!
//! The points are the `fail` crate's, and exist only in a build with the
//! cargo feature `failpoints` (the end-to-end harness builds the hub with
//! it): a release build has none, and [`hit`] compiles to nothing. A build
//! without them refuses to start when the variable is set, as a build with
//! them refuses an unknown point, so a test cannot pass by never firing.
//! `serve` logs a warning at start when it is set. Never set it in
//! production.

use std::sync::LazyLock;

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

/// What the environment arms, read once (and, armed, handed to `fail`).
static ARMED: LazyLock<Result<Option<Armed>, String>> = LazyLock::new(|| {
    let armed = parse(&std::env::var(ENV).unwrap_or_default())?;
    if let Some(armed) = &armed {
        arm(armed)?;
    }
    Ok(armed)
});

/// Configures `fail` to let the first `on_hit - 1` hits pass (`off`) and
/// then `return`, which runs [`hit`]'s closure: the abort.
#[cfg(feature = "failpoints")]
fn arm(armed: &Armed) -> Result<(), String> {
    let actions = match armed.on_hit {
        1 => "return".to_owned(),
        n => format!("{}*off->return", n - 1),
    };
    fail::cfg(armed.point, &actions)
}

/// A build without fail points cannot honour the variable: refused, so a
/// test run against it fails at start instead of passing without a crash.
#[cfg(not(feature = "failpoints"))]
fn arm(_: &Armed) -> Result<(), String> {
    Err(format!(
        "{ENV} is set, but this sealdrop-hub was built without fail points (the cargo feature `failpoints`, for the \
         tests only)"
    ))
}

/// The armed point, or why the variable is refused (for `serve` to report at start).
pub fn armed() -> Result<Option<Armed>, String> {
    ARMED.clone()
}

/// Aborts the process if `point` is armed and this is the hit it waits for.
#[cfg(feature = "failpoints")]
pub fn hit(point: &'static str) {
    // Reads the variable at the first hit in any process, not only `serve`.
    let Ok(Some(armed)) = &*ARMED else { return };
    fail::fail_point!(point, |_| {
        eprintln!("{ENV}: aborting at fail point {point} (hit {})", armed.on_hit);
        std::process::abort()
    });
}

/// Without the `failpoints` feature there is nothing to reach.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn hit(_point: &'static str) {}

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
