//! How long the service waits before trying the hub again: doubling from
//! two seconds to five minutes while the hub is down, each wait spread by
//! a random ±25% so that boroughs' services that lost the hub together do
//! not all come back in the same second; and never less than the hub's own
//! `Retry-After` when it is limiting requests.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// The first wait.
const FIRST: Duration = Duration::from_secs(2);
/// The longest wait: a hub back after an outage is used within five minutes.
const LONGEST: Duration = Duration::from_secs(300);

/// Consecutive failures, and the wait they call for.
#[derive(Debug, Default, Clone)]
pub struct Backoff {
    failures: u32,
}

impl Backoff {
    /// The hub answered: the next failure starts from the first wait again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// Another failure; returns how long to wait before the next attempt:
    /// at least `retry_after` seconds when the hub said so.
    pub fn failed(&mut self, retry_after: Option<u64>) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let wait = jittered(nominal(self.failures), random_unit());
        wait.max(Duration::from_secs(retry_after.unwrap_or(0)))
    }
}

/// The wait after `failures` consecutive failures, before jitter.
fn nominal(failures: u32) -> Duration {
    let doubled = FIRST.saturating_mul(1u32.checked_shl(failures.saturating_sub(1)).unwrap_or(u32::MAX));
    doubled.min(LONGEST)
}

/// `wait` spread by ±25%: `unit` is uniform in [0, 1).
fn jittered(wait: Duration, unit: f64) -> Duration {
    wait.mul_f64(0.75 + unit * 0.5)
}

/// A number in [0, 1) that differs between calls and processes. Jitter
/// needs spread, not secrecy: the standard library's per-process random
/// hash keys, mixed with the time, give that without another dependency.
fn random_unit() -> f64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_to_five_minutes_with_a_quarter_either_way() {
        let waits: Vec<u64> = (1..=10).map(|n| nominal(n).as_secs()).collect();
        assert_eq!(waits, [2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        assert_eq!(nominal_after_many(), LONGEST);
        assert_eq!(jittered(Duration::from_secs(100), 0.0), Duration::from_secs(75));
        assert_eq!(jittered(Duration::from_secs(100), 0.999_999), Duration::from_secs_f64(124.999_95));
        let mut b = Backoff::default();
        for _ in 0..50 {
            let w = b.failed(None);
            assert!(w >= FIRST.mul_f64(0.75) && w <= LONGEST.mul_f64(1.25), "{w:?}");
        }
        b.reset();
        assert_eq!(nominal(b.failures + 1), FIRST, "after the hub answered, the first wait again");
        assert!(b.failed(Some(120)) >= Duration::from_secs(120), "the hub's Retry-After is honoured");
    }

    fn nominal_after_many() -> Duration {
        nominal(u32::MAX)
    }

    #[test]
    fn jitter_spreads() {
        let draws: Vec<f64> = (0..200).map(|_| random_unit()).collect();
        assert!(draws.iter().all(|u| (0.0..1.0).contains(u)));
        assert!(draws.iter().any(|u| *u < 0.3) && draws.iter().any(|u| *u > 0.7), "{draws:?}");
    }
}
