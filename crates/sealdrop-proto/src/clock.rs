//! Time, from a clock that tests control.
//!
//! Production uses [`SystemClock`]. Setting the environment variable
//! [`TEST_CLOCK_ENV`] to a file path makes [`clock_from_env`] return a
//! [`FileClock`] that reads the current time from that file on every call
//! (RFC 3339 or Unix seconds), so end-to-end tests can move time forward for
//! a running hub and client without sleeping.

use std::path::PathBuf;
use std::sync::Arc;

use jiff::Timestamp;

/// The environment variable that points a process at a test clock file.
pub const TEST_CLOCK_ENV: &str = "SEALDROP_TEST_CLOCK";

/// A source of the current time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Now.
    fn now(&self) -> Timestamp;
}

/// The operating system's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock read from a file that a test writes.
#[derive(Debug, Clone)]
pub struct FileClock(pub PathBuf);

impl Clock for FileClock {
    fn now(&self) -> Timestamp {
        // A test clock that cannot be read is a broken test set-up; fall back
        // to the system clock rather than crash the process under test.
        std::fs::read_to_string(&self.0).ok().and_then(|s| parse_time(s.trim())).unwrap_or_else(Timestamp::now)
    }
}

/// Parses RFC 3339 or Unix seconds.
pub fn parse_time(s: &str) -> Option<Timestamp> {
    s.parse::<Timestamp>().ok().or_else(|| s.parse::<i64>().ok().and_then(|n| Timestamp::from_second(n).ok()))
}

/// `t` to the whole second at or before it. Times that are signed or shown
/// (an agreement's start, a revocation, a directory's issue time) are whole
/// seconds; rounding to the nearest could put "from now" up to half a second
/// in the future, and a command run in that half second would be refused as
/// "not in force yet".
pub fn whole_second(t: Timestamp) -> Timestamp {
    // `as_second` truncates toward zero, which is forward in time before 1970.
    let floor = t.as_second() - i64::from(t.subsec_nanosecond() < 0);
    Timestamp::from_second(floor).unwrap_or(t)
}

/// The system clock, or a [`FileClock`] when [`TEST_CLOCK_ENV`] is set.
pub fn clock_from_env() -> Arc<dyn Clock> {
    match std::env::var_os(TEST_CLOCK_ENV) {
        Some(path) if !path.is_empty() => Arc::new(FileClock(path.into())),
        _ => Arc::new(SystemClock),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_clock_reads_the_file_each_time() {
        let dir = std::env::temp_dir().join(format!("sealdrop-clock-{}", std::process::id()));
        std::fs::write(&dir, "2030-01-02T03:04:05Z\n").unwrap();
        let c = FileClock(dir.clone());
        assert_eq!(c.now().to_string(), "2030-01-02T03:04:05Z");
        std::fs::write(&dir, "1900000000").unwrap();
        assert_eq!(c.now().as_second(), 1_900_000_000);
        std::fs::remove_file(dir).unwrap();
    }

    #[test]
    fn whole_second_never_moves_time_forward() {
        let late: Timestamp = "2026-12-07T15:35:20.9Z".parse().unwrap();
        assert_eq!(whole_second(late).to_string(), "2026-12-07T15:35:20Z");
        let early: Timestamp = "1969-12-31T23:59:59.5Z".parse().unwrap();
        assert!(whole_second(early) <= early, "{}", whole_second(early));
    }
}
