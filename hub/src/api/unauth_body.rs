//! Memory for request bodies nobody has authenticated yet.
//!
//! Every signed request is authenticated from its head before a byte of
//! its body is read (see [`super::auth`]), so the one body the hub must
//! read from a stranger is a directory being published (`POST
//! /v1/directory`), whose proof is the coordinator's signature inside it.
//! Such a body is read only:
//!
//! - with a `Content-Length` (411 without one) no larger than the route's
//!   limit (413), so what it may cost is known before reading;
//! - after that many bytes were reserved from one budget shared by every
//!   unauthenticated body of the hub ([`UNAUTHENTICATED_BODY_BUDGET`]), of
//!   which one client address may hold at most [`PER_ADDRESS_SHARE`] (503
//!   with `Retry-After` when either is spent, answered at once);
//! - within [`UNAUTHENTICATED_BODY_TIME`] in all (408), however steadily it
//!   trickles, so a reservation is never held for long.
//!
//! Slow or never-ending bodies from any number of connections therefore
//! hold at most the budget, and only for a bounded time.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::body::Body;
use axum::http::HeaderMap;
use axum::http::header::CONTENT_LENGTH;
use futures_util::StreamExt as _;
use sealdrop_proto::error_code::ErrorCode;

use super::error::ApiError;
use crate::client_addr::ClientAddr;
use crate::rate_limit::address_key;

/// Bytes of unauthenticated bodies the hub holds at once, in all.
pub const UNAUTHENTICATED_BODY_BUDGET: usize = 16 * 1024 * 1024;
/// Bytes of unauthenticated bodies one client address may hold at once:
/// two of the largest directories.
pub const PER_ADDRESS_SHARE: usize = UNAUTHENTICATED_BODY_BUDGET / 4;
/// How long an unauthenticated body may take to arrive, in all.
pub const UNAUTHENTICATED_BODY_TIME: Duration = Duration::from_secs(30);
/// Seconds a caller refused for a spent budget is told to wait.
const RETRY_AFTER_SECS: u64 = 5;

#[derive(Debug, Default)]
struct Held {
    total: usize,
    by_address: HashMap<IpAddr, usize>,
}

/// The budget of [`UNAUTHENTICATED_BODY_BUDGET`] bytes.
#[derive(Debug)]
pub struct Budget {
    total: usize,
    per_address: usize,
    held: Mutex<Held>,
}

impl Default for Budget {
    fn default() -> Self {
        Self::new(UNAUTHENTICATED_BODY_BUDGET, PER_ADDRESS_SHARE)
    }
}

impl Budget {
    /// A budget of `total` bytes, `per_address` of them at most for one address.
    pub fn new(total: usize, per_address: usize) -> Self {
        Self { total, per_address, held: Mutex::new(Held::default()) }
    }

    /// Bytes held now.
    pub fn held(&self) -> usize {
        self.held.lock().unwrap_or_else(PoisonError::into_inner).total
    }

    /// Reserves `bytes` for a body from `address`, or refuses at once (503).
    pub fn reserve(self: &Arc<Self>, address: IpAddr, bytes: usize) -> Result<Reservation, ApiError> {
        let key = address_key(address);
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let mine = held.by_address.get(&key).copied().unwrap_or(0);
        let busy = |what: String| {
            ApiError::new(
                ErrorCode::HubBusy,
                format!("{what}: try again in {RETRY_AFTER_SECS} seconds (publishing a directory is rarely urgent)"),
            )
            .with_retry_after(RETRY_AFTER_SECS)
        };
        if mine + bytes > self.per_address {
            return Err(busy(format!(
                "your address {key} is already sending {mine} bytes of unauthenticated request bodies, the most one \
                 address may"
            )));
        }
        if held.total + bytes > self.total {
            drop(held);
            tracing::warn!(
                held = self.held(),
                budget = self.total,
                "the budget for unauthenticated request bodies is spent: refusing more for now"
            );
            return Err(busy("the hub is receiving as many unauthenticated request bodies as it holds at once".into()));
        }
        held.total += bytes;
        *held.by_address.entry(key).or_default() += bytes;
        Ok(Reservation { budget: Arc::clone(self), address: key, bytes })
    }
}

/// Bytes reserved from a [`Budget`], given back when dropped.
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<Budget>,
    address: IpAddr,
    bytes: usize,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let mut held = self.budget.held.lock().unwrap_or_else(PoisonError::into_inner);
        held.total -= self.bytes;
        if let Some(n) = held.by_address.get_mut(&self.address) {
            *n -= self.bytes;
            if *n == 0 {
                held.by_address.remove(&self.address);
            }
        }
    }
}

/// Reads an unauthenticated body of at most `limit` bytes under the rules
/// of the module docs. The reservation is to be kept while the body is in
/// use.
pub async fn read(
    budget: &Arc<Budget>,
    headers: &HeaderMap,
    client: Option<ClientAddr>,
    body: Body,
    limit: usize,
) -> Result<(Vec<u8>, Reservation), ApiError> {
    let declared = match headers.get(CONTENT_LENGTH) {
        None => {
            return Err(ApiError::new(
                ErrorCode::LengthRequired,
                "this request must declare its body's length in Content-Length (it is read only if it fits)",
            ));
        }
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .ok_or_else(|| ApiError::bad_request("the Content-Length header is not a number"))?,
    };
    let too_large = || {
        ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("the request body is larger than this route accepts ({limit} bytes at most); nothing was stored"),
        )
    };
    let declared = usize::try_from(declared).ok().filter(|n| *n <= limit).ok_or_else(too_large)?;
    // In-process tests drive the router without a peer: one shared address.
    let address = client.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0);
    let reservation = budget.reserve(address, declared)?;
    let deadline = tokio::time::Instant::now() + UNAUTHENTICATED_BODY_TIME;
    let mut data = Vec::with_capacity(declared);
    let mut stream = body.into_data_stream();
    loop {
        let next = tokio::time::timeout_at(deadline, stream.next()).await.map_err(|_| {
            ApiError::new(
                ErrorCode::RequestTimeout,
                format!(
                    "the request body did not arrive within {} s (it had sent {} of {declared} bytes), so the hub \
                     stopped waiting",
                    UNAUTHENTICATED_BODY_TIME.as_secs(),
                    data.len()
                ),
            )
        })?;
        let Some(chunk) = next else { break };
        let chunk = chunk.map_err(|e| match super::idle_body::is_body_idle(&e) {
            Some(idle) => ApiError::new(
                ErrorCode::RequestTimeout,
                format!("the request body stopped arriving for {} s, so the hub stopped waiting", idle.0.as_secs_f64()),
            ),
            None => ApiError::bad_request(format!("the request body could not be read: {e}")),
        })?;
        if data.len() + chunk.len() > declared {
            // hyper stops at the declared length; this is only a guard.
            return Err(too_large());
        }
        data.extend_from_slice(&chunk);
    }
    Ok((data, reservation))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The directory limit (2 MiB) holds twice what a directory for 400
    /// authorities takes, each with five members (classic keys), two revoked
    /// keys, two aliases, under a hundred agreements of 33 parties each.
    /// Post-quantum keys are ~30 times longer: a directory then holds about
    /// 400 member keys in all, within the signed-note limit
    /// (`a_directory_too_large_to_sign_is_refused_not_signed`).
    #[test]
    fn directory_body_limit_fits_a_large_directory_twice() {
        use sealdrop_proto::directory::{Agreement, Directory, Party, RevokedKey, SignedDirectory};
        use sealdrop_proto::keys::{MemberSecretKey, NoteSigningKey};
        let at = |s: &str| s.parse::<sealdrop_proto::Timestamp>().unwrap();
        let parties: Vec<Party> = (0..400)
            .map(|i| {
                let id: sealdrop_proto::ids::PartyId = format!("council-{i:03}").parse().unwrap();
                let key = |who: String| MemberSecretKey::generate_classic(id.clone(), who.parse().unwrap());
                Party {
                    id: id.clone(),
                    name: format!("The Council of Somewhere Number {i}"),
                    aliases: vec![format!("E09000{i:03}"), format!("{}", 100 + i)],
                    members: (0..5).map(|m| key(format!("data-team-{m}")).public().into()).collect(),
                    witness_keys: vec![],
                    revoked: (0..2)
                        .map(|m| {
                            let gone = key(format!("former-member-{m}"));
                            RevokedKey {
                                member: gone.member.clone(),
                                signing_key: gone.signing.verifier(),
                                revoked_at: at("2026-06-01T00:00:00Z"),
                                reason: "left the council; laptop returned".into(),
                            }
                        })
                        .collect(),
                }
            })
            .collect();
        let agreements = (0..100)
            .map(|a| Agreement {
                id: format!("agreement-{a}"),
                title: format!("Free school meals eligibility, region {a}"),
                purpose: "Auto-enrolment of eligible pupils in free school meals across borough boundaries".into(),
                lawful_basis: "UK GDPR 6(1)(e); Education Act 1996 s512ZA".into(),
                parties: parties.iter().skip(a * 3).take(33).map(|p| p.id.clone()).collect(),
                max_expiry_days: 30,
                valid_from: at("2026-01-01T00:00:00Z"),
                valid_until: at("2030-01-01T00:00:00Z"),
                require_pq: false,
            })
            .collect();
        let dir = Directory { serial: 1, issued_at: at("2026-06-01T00:00:00Z"), hub: None, parties, agreements };
        let authority = NoteSigningKey::generate("authority").unwrap();
        let note = SignedDirectory::sign(dir, &authority).unwrap().note;
        assert!(
            note.len() * 2 <= crate::api::directory::DIRECTORY_BODY_LIMIT,
            "a large directory takes {} bytes, more than half the limit",
            note.len()
        );
        assert!(note.len() > 512 * 1024, "the sample is as large as claimed: {} bytes", note.len());
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_budget_is_shared_bounded_per_address_and_given_back() {
        let budget = Arc::new(Budget::new(100, 40));
        let a = budget.reserve(ip("192.0.2.1"), 40).unwrap();
        let e = budget.reserve(ip("192.0.2.1"), 1).unwrap_err();
        assert_eq!((e.code(), e.status().as_u16(), e.retry_after()), (ErrorCode::HubBusy, 503, Some(RETRY_AFTER_SECS)));
        let b = budget.reserve(ip("192.0.2.2"), 40).unwrap();
        let e = budget.reserve(ip("192.0.2.3"), 21).unwrap_err();
        assert!(e.message().contains("as many unauthenticated request bodies"), "{e}");
        let c = budget.reserve(ip("192.0.2.3"), 20).unwrap();
        assert_eq!(budget.held(), 100);
        drop((a, b));
        assert_eq!(budget.held(), 20);
        budget.reserve(ip("192.0.2.1"), 40).unwrap();
        drop(c);
        assert_eq!(budget.held(), 0, "every reservation given back");
    }

    fn headers(len: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(len) = len {
            h.insert(CONTENT_LENGTH, len.parse().unwrap());
        }
        h
    }

    #[tokio::test]
    async fn a_body_needs_a_length_within_the_limit_and_is_read_whole() {
        let budget = Arc::new(Budget::new(1000, 1000));
        let client = Some(ClientAddr(ip("192.0.2.1")));
        let e = read(&budget, &headers(None), client, Body::from("x"), 10).await.unwrap_err();
        assert_eq!((e.code(), e.status().as_u16()), (ErrorCode::LengthRequired, 411));
        let e = read(&budget, &headers(Some("11")), client, Body::from("x"), 10).await.unwrap_err();
        assert_eq!((e.code(), e.status().as_u16()), (ErrorCode::PayloadTooLarge, 413));
        let e = read(&budget, &headers(Some("lots")), client, Body::from("x"), 10).await.unwrap_err();
        assert_eq!(e.code(), ErrorCode::BadRequest);
        let (data, held) = read(&budget, &headers(Some("5")), client, Body::from("hello"), 10).await.unwrap();
        assert_eq!((data.as_slice(), budget.held()), (b"hello".as_slice(), 5));
        drop(held);
        assert_eq!(budget.held(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_trickled_body_is_cut_off_after_the_time_allowed_and_its_reservation_freed() {
        let budget = Arc::new(Budget::new(1000, 1000));
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(1);
        // One byte every 10 s: never idle for long, but never done.
        tokio::spawn(async move {
            loop {
                if tx.send(Ok(bytes::Bytes::from_static(b"x"))).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_secs(10)).await;
            }
        });
        let mut rx = rx;
        let body = Body::from_stream(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)));
        let started = tokio::time::Instant::now();
        let e = read(&budget, &headers(Some("100")), None, body, 100).await.unwrap_err();
        assert_eq!((e.code(), e.status().as_u16()), (ErrorCode::RequestTimeout, 408));
        assert_eq!(started.elapsed(), UNAUTHENTICATED_BODY_TIME);
        assert_eq!(budget.held(), 0);
    }
}
