//! Rate limits: a token bucket per source address (every request, checked
//! before any authentication work) and one per party (signed requests,
//! checked once the signature verified, so nobody can spend another
//! party's allowance by naming its key).
//!
//! A bucket holds up to `burst` tokens and gains `per_second` a second; a
//! request takes one, and finds none only after a burst larger than the
//! bucket or a sustained rate above `per_second`. The answer is then `429`
//! with `Retry-After`: the whole seconds until a token is back.
//!
//! Why our own buckets rather than the `governor` crate (0.10, looked at
//! again for issue 19): its keyed stores can only forget keys whose state is
//! back to fresh (`retain_recent`), so a flood from many addresses that stay
//! active has no hard bound on memory, while ours forgets the least recently
//! used half; its per-key state is private, so the "first refusal of an
//! episode" we log once would need a second map beside it; and it reads its
//! own clock, where ours takes the time of each check so the tests drive it
//! exactly. The bucket itself is a few lines over a `HashMap`. One mutex per
//! kind of key: the hub serves a few thousand requests a second at most, and
//! each check holds it for a hash-map lookup and a few floating-point
//! operations.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sealdrop_proto::ids::PartyId;

/// A token bucket's size and refill rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Sustained requests a second (more than 0; may be a fraction).
    pub per_second: f64,
    /// Requests that may come at once after a quiet spell (at least 1).
    pub burst: u32,
}

/// Whether requests from loopback addresses (127.0.0.0/8, ::1) are limited
/// per address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Loopback {
    /// Not limited per address (still per party). Kept for older
    /// configurations; a reverse proxy on the same machine is better
    /// listed in `trusted_proxies` (see [`crate::client_addr`]), which
    /// limits each of its clients instead of none.
    Exempt,
    /// Limited like any other address (the default: nobody is exempt).
    #[default]
    Limit,
}

impl Loopback {
    /// `exempt` or `limit`, as in `hub.toml`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Exempt => "exempt",
            Self::Limit => "limit",
        }
    }
}

/// The hub's rate limits; `None` turns one off.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimits {
    /// Every request, per source address (IPv6 per /64).
    pub per_address: Option<Rate>,
    /// Signed requests, per signing key's party.
    pub per_party: Option<Rate>,
    /// Whether loopback addresses are limited per address.
    pub loopback: Loopback,
}

/// The default limit per source address. It must not throttle `bench/run`'s
/// `small_drops` (32 parties x 100 drops, all from one address: 3 signed
/// requests a drop, as the commit's answer carries its log proof, and 3
/// opening each sender's session, 2 of them signed) even from an address that
/// is not loopback: the burst holds a whole round twice over (the benchmark
/// starts a fresh hub for each) and the rate sustains its target
/// of 1,000 drops a second at 4 requests a drop, yet one address
/// alone cannot keep the hub's signature checks busy for more than a
/// fraction of a core.
pub const DEFAULT_PER_ADDRESS: Rate = Rate { per_second: 5000.0, burst: 20_000 };
/// The default limit per party: twice what each of the benchmark's 32
/// sending parties needs at 1,000 drops a second (3 signed requests a
/// drop), and a burst that holds a party's whole share of the benchmark
/// (300 signed requests, and the 2 signed reads opening its session) or a
/// split send to every London borough.
pub const DEFAULT_PER_PARTY: Rate = Rate { per_second: 200.0, burst: 400 };

impl Default for RateLimits {
    fn default() -> Self {
        Self { per_address: Some(DEFAULT_PER_ADDRESS), per_party: Some(DEFAULT_PER_PARTY), loopback: Loopback::Limit }
    }
}

impl RateLimits {
    /// No limits at all (in-process tests that measure other things).
    pub fn off() -> Self {
        Self { per_address: None, per_party: None, loopback: Loopback::Exempt }
    }
}

/// The most addresses (or parties) tracked at once: about 64 bytes each,
/// so a few MiB whatever a flood from many addresses does.
pub const MAX_TRACKED_KEYS: usize = 65_536;

/// A refusal: how long until the next request would be allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    /// Until a token is back.
    pub retry_after: Duration,
    /// Whether this is the first refusal since the key was last allowed (so
    /// the hub logs an episode once, not every refused request).
    pub first: bool,
}

impl Limited {
    /// The `Retry-After` value: whole seconds, at least 1.
    pub fn retry_after_secs(&self) -> u64 {
        let secs = self.retry_after.as_nanos().div_ceil(1_000_000_000);
        u64::try_from(secs).unwrap_or(u64::MAX).max(1)
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
    limited: bool,
}

/// One token bucket per key, at most `max_keys` of them.
#[derive(Debug)]
pub struct Buckets<K> {
    rate: Rate,
    max_keys: usize,
    map: Mutex<HashMap<K, Bucket>>,
}

impl<K: Hash + Eq + Clone> Buckets<K> {
    /// Buckets of `rate`, tracking at most `max_keys` keys.
    pub fn new(rate: Rate, max_keys: usize) -> Self {
        Self { rate, max_keys: max_keys.max(1), map: Mutex::new(HashMap::new()) }
    }

    fn capacity(&self) -> f64 {
        f64::from(self.rate.burst.max(1))
    }

    fn refill_rate(&self) -> f64 {
        // A rate of 0 is no limit at all and never reaches here.
        self.rate.per_second.max(f64::MIN_POSITIVE)
    }

    /// The bucket's tokens at `now`.
    fn tokens_at(&self, bucket: &Bucket, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        (bucket.tokens + elapsed * self.refill_rate()).min(self.capacity())
    }

    /// Takes a token from `key`'s bucket at `now`, or says how long until
    /// one is back.
    pub fn check(&self, key: &K, now: Instant) -> Result<(), Limited> {
        let mut map = self.map.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if !map.contains_key(key) && map.len() >= self.max_keys {
            self.make_room(&mut map, now);
        }
        let full = Bucket { tokens: self.capacity(), updated: now, limited: false };
        let bucket = map.entry(key.clone()).or_insert(full);
        let tokens = self.tokens_at(bucket, now);
        bucket.updated = now;
        if tokens >= 1.0 {
            bucket.tokens = tokens - 1.0;
            bucket.limited = false;
            return Ok(());
        }
        bucket.tokens = tokens;
        let first = !bucket.limited;
        bucket.limited = true;
        Err(Limited { retry_after: Duration::from_secs_f64((1.0 - tokens) / self.refill_rate()), first })
    }

    /// Forgets the keys whose buckets are full again (a full bucket is the
    /// same as a fresh one); if that frees nothing, the half least recently
    /// used. A flood from many addresses thus never holds more than
    /// `max_keys` buckets, and only an address idle for less than
    /// `burst / per_second` can lose what it used of its allowance.
    fn make_room(&self, map: &mut HashMap<K, Bucket>, now: Instant) {
        let capacity = self.capacity();
        map.retain(|_, b| self.tokens_at(b, now) < capacity);
        if map.len() < self.max_keys {
            return;
        }
        let mut times: Vec<Instant> = map.values().map(|b| b.updated).collect();
        let middle = times.len() / 2;
        let (_, cut, _) = times.select_nth_unstable(middle);
        let cut = *cut;
        map.retain(|_, b| b.updated > cut);
        tracing::warn!(
            tracked = map.len(),
            max = self.max_keys,
            "rate limiting: too many active keys; forgot the least recently used half"
        );
    }

    /// How many keys are tracked now.
    pub fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(std::sync::PoisonError::into_inner).len()
    }

    /// Whether no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The key of a source address: an IPv4 address, or an IPv6 address's
/// /64 network (one host usually holds a whole /64, so per address it
/// could use 2^64 buckets). IPv4-mapped IPv6 addresses count as IPv4.
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
        v4 => v4,
    }
}

/// The hub's limiters, built from its [`RateLimits`].
#[derive(Debug)]
pub struct Limiters {
    limits: RateLimits,
    addresses: Option<Buckets<IpAddr>>,
    parties: Option<Buckets<PartyId>>,
}

impl Limiters {
    /// Fresh limiters.
    pub fn new(limits: RateLimits) -> Self {
        Self {
            limits,
            addresses: limits.per_address.map(|r| Buckets::new(r, MAX_TRACKED_KEYS)),
            parties: limits.per_party.map(|r| Buckets::new(r, MAX_TRACKED_KEYS)),
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> RateLimits {
        self.limits
    }

    /// Takes a token for a request from `ip`.
    pub fn check_address(&self, ip: IpAddr) -> Result<(), RateLimited> {
        let Some(buckets) = &self.addresses else { return Ok(()) };
        let ip = ip.to_canonical();
        if ip.is_loopback() && self.limits.loopback == Loopback::Exempt {
            return Ok(());
        }
        let key = address_key(ip);
        buckets.check(&key, Instant::now()).map_err(|limited| {
            let shown = match key {
                IpAddr::V6(_) => format!("{key}/64"),
                IpAddr::V4(_) => key.to_string(),
            };
            if limited.first {
                tracing::warn!(address = %shown, "rate limiting requests from an address");
            }
            refusal(&format!("your address {shown}"), buckets.rate, limited)
        })
    }

    /// Takes a token for a signed request of `party`.
    pub fn check_party(&self, party: &PartyId) -> Result<(), RateLimited> {
        let Some(buckets) = &self.parties else { return Ok(()) };
        buckets.check(party, Instant::now()).map_err(|limited| {
            if limited.first {
                tracing::warn!(%party, "rate limiting a party's requests");
            }
            refusal(&format!("your party `{party}`"), buckets.rate, limited)
        })
    }
}

/// A request refused by a rate limit; the API answers it with `429` and
/// `Retry-After` (see `impl From<RateLimited> for ApiError`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimited {
    /// The one-line message: whose requests, the limit, when to retry.
    pub message: String,
    /// Whole seconds until a token is back, for `Retry-After`.
    pub retry_after_secs: u64,
}

/// The refusal of a request from `whom`.
fn refusal(whom: &str, rate: Rate, limited: Limited) -> RateLimited {
    let secs = limited.retry_after_secs();
    let unit = if secs == 1 { "second" } else { "seconds" };
    RateLimited {
        message: format!(
            "too many requests from {whom} (this hub allows {} a second, {} at once): retry after {secs} {unit}",
            rate.per_second, rate.burst
        ),
        retry_after_secs: secs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ApiError;
    use sealdrop_proto::error_code::ErrorCode;

    const RATE: Rate = Rate { per_second: 2.0, burst: 3 };

    /// Replays `bench/run`'s `small_drops` request by request against the
    /// default limits, all from one address that is not exempt, and counts
    /// the refusals: 32 parties (one per sending thread) send `drops` each,
    /// one after another, at `drops_per_second` in all; each drop is 3
    /// signed requests (create, upload, commit) and `log_reads` more (log
    /// checks), after 3 requests opening each party's session (the
    /// directory and the checkpoint, and the unsigned `/v1/info`). Reading
    /// the log is signed too (the log is for members by default), so the
    /// log checks and the session's two reads count against the party.
    /// `rounds` rounds run back to back on the same buckets. (The buckets
    /// are driven directly: `Limiters` reads the clock.)
    fn refusals_in_small_drops(rounds: u32, drops: u32, drops_per_second: f64, log_reads: u32) -> u32 {
        const PARTIES: u32 = 32;
        let limits = RateLimits::default();
        let addresses = Buckets::new(limits.per_address.unwrap(), MAX_TRACKED_KEYS);
        let parties = Buckets::new(limits.per_party.unwrap(), MAX_TRACKED_KEYS);
        let address: IpAddr = "192.0.2.10".parse().unwrap();
        let t0 = Instant::now();
        let mut at = t0;
        let mut refused = 0;
        let mut address_request = |at| refused += u32::from(addresses.check(&address, at).is_err());
        let mut party_refused = 0;
        for _ in 0..rounds {
            for party in 0..PARTIES {
                for _ in 0..3 {
                    address_request(at);
                }
                for _ in 0..2 {
                    party_refused += u32::from(parties.check(&party, at).is_err());
                }
            }
            for drop in 0..drops * PARTIES {
                at += Duration::from_secs_f64(1.0 / drops_per_second);
                let party = drop % PARTIES;
                for _ in 0..3 + log_reads {
                    address_request(at);
                    party_refused += u32::from(parties.check(&party, at).is_err());
                }
            }
        }
        refused + party_refused
    }

    #[test]
    fn the_defaults_do_not_throttle_the_small_drops_benchmark_from_one_address() {
        // One round, as `bench/run` runs it on a fresh hub: 100 drops a
        // party, at three times the target of 1,000 drops a second, with 3
        // log-check requests a drop.
        assert_eq!(refusals_in_small_drops(1, 100, 3000.0, 3), 0);
        // The target sustained: ten rounds back to back on one hub, with one
        // log-check request a drop.
        assert_eq!(refusals_in_small_drops(10, 100, 1000.0, 1), 0);
        // The replay does see a limit: one address sending far more than
        // the benchmark, for far longer, is throttled.
        assert!(refusals_in_small_drops(10, 100, 3000.0, 3) > 0);
    }

    #[test]
    fn a_burst_then_refusals_that_say_when_to_retry() {
        let buckets = Buckets::new(RATE, 10);
        let t0 = Instant::now();
        for _ in 0..3 {
            buckets.check(&"a", t0).unwrap();
        }
        let refused = buckets.check(&"a", t0).unwrap_err();
        assert!(refused.first);
        assert_eq!(refused.retry_after, Duration::from_millis(500));
        assert_eq!(refused.retry_after_secs(), 1);
        // Still refused a moment later, and not the first refusal any more.
        let again = buckets.check(&"a", t0 + Duration::from_millis(100)).unwrap_err();
        assert!(!again.first);
        assert_eq!(again.retry_after, Duration::from_millis(400));
    }

    #[test]
    fn the_bucket_refills_at_the_rate_up_to_the_burst() {
        let buckets = Buckets::new(RATE, 10);
        let t0 = Instant::now();
        for _ in 0..3 {
            buckets.check(&"a", t0).unwrap();
        }
        buckets.check(&"a", t0).unwrap_err();
        // Half a second gives one token back at 2 a second.
        let t1 = t0 + Duration::from_millis(500);
        buckets.check(&"a", t1).unwrap();
        buckets.check(&"a", t1).unwrap_err();
        // A long quiet spell refills to the burst, not beyond.
        let t2 = t1 + Duration::from_secs(60);
        for _ in 0..3 {
            buckets.check(&"a", t2).unwrap();
        }
        assert!(buckets.check(&"a", t2).is_err());
    }

    #[test]
    fn a_rate_below_one_a_second_waits_whole_seconds() {
        let buckets = Buckets::new(Rate { per_second: 0.1, burst: 1 }, 10);
        let t0 = Instant::now();
        buckets.check(&"a", t0).unwrap();
        let refused = buckets.check(&"a", t0).unwrap_err();
        assert_eq!(refused.retry_after_secs(), 10);
        let refused = buckets.check(&"a", t0 + Duration::from_millis(9_500)).unwrap_err();
        assert_eq!(refused.retry_after_secs(), 1, "half a second rounds up to one");
        buckets.check(&"a", t0 + Duration::from_secs(10)).unwrap();
    }

    #[test]
    fn keys_are_limited_on_their_own() {
        let buckets = Buckets::new(RATE, 10);
        let t0 = Instant::now();
        for _ in 0..3 {
            buckets.check(&"a", t0).unwrap();
        }
        buckets.check(&"a", t0).unwrap_err();
        buckets.check(&"b", t0).unwrap();
    }

    #[test]
    fn memory_stays_bounded_under_many_keys() {
        let buckets = Buckets::new(RATE, 100);
        let t0 = Instant::now();
        // Many active keys at once: never more than the bound.
        for i in 0..10_000u32 {
            let _ = buckets.check(&i, t0);
            assert!(buckets.len() <= 100, "{} keys tracked", buckets.len());
        }
        // Idle keys (full again) are forgotten first; an active one is kept.
        let buckets = Buckets::new(RATE, 100);
        for i in 0..99u32 {
            buckets.check(&i, t0).unwrap();
        }
        let later = t0 + Duration::from_secs(10);
        for _ in 0..3 {
            buckets.check(&1000, later).unwrap();
        }
        buckets.check(&2000, later).unwrap();
        assert_eq!(buckets.len(), 2, "the idle keys were forgotten");
        assert!(buckets.check(&1000, later).is_err(), "the active key kept its state");
    }

    #[test]
    fn ipv6_addresses_share_a_bucket_per_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(address_key(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn loopback_is_exempt_unless_limited() {
        let tight = Rate { per_second: 1.0, burst: 1 };
        let limits = RateLimits { per_address: Some(tight), per_party: None, loopback: Loopback::Exempt };
        let exempt = Limiters::new(limits);
        let loopback: IpAddr = "127.0.0.1".parse().unwrap();
        for _ in 0..5 {
            exempt.check_address(loopback).unwrap();
        }
        exempt.check_address("::1".parse().unwrap()).unwrap();
        exempt.check_address("192.0.2.1".parse().unwrap()).unwrap();
        assert_eq!(
            ApiError::from(exempt.check_address("192.0.2.1".parse().unwrap()).unwrap_err()).code(),
            ErrorCode::RateLimited
        );

        let limited = Limiters::new(RateLimits { loopback: Loopback::Limit, ..limits });
        limited.check_address(loopback).unwrap();
        let e = ApiError::from(limited.check_address(loopback).unwrap_err());
        assert_eq!(e.code(), ErrorCode::RateLimited);
        assert_eq!(e.status().as_u16(), 429);
        assert_eq!(e.retry_after(), Some(1));
        assert!(e.message().contains("your address 127.0.0.1") && e.message().contains("retry after 1 second"), "{e}");
    }

    #[test]
    fn parties_are_limited_on_their_own() {
        let limits = RateLimits { per_address: None, per_party: Some(RATE), loopback: Loopback::Exempt };
        let limiters = Limiters::new(limits);
        let camden: PartyId = "camden".parse().unwrap();
        for _ in 0..3 {
            limiters.check_party(&camden).unwrap();
        }
        let e = ApiError::from(limiters.check_party(&camden).unwrap_err());
        assert!(e.message().contains("your party `camden`"), "{e}");
        limiters.check_party(&"islington".parse().unwrap()).unwrap();
        // No per-party limit: never refused.
        let off = Limiters::new(RateLimits::off());
        for _ in 0..100 {
            off.check_party(&camden).unwrap();
            off.check_address("192.0.2.1".parse().unwrap()).unwrap();
        }
    }
}
