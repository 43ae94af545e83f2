//! Whose request is it: the client's address, for the per-address rate
//! limit, the per-address connection cap and the request log.
//!
//! Without a reverse proxy it is the TCP peer. Behind one, every connection
//! comes from the proxy, so the operator lists the proxy's addresses in
//! `trusted_proxies`; a request whose peer is one of them is attributed to
//! the address its `X-Forwarded-For` header names: the rightmost entry that
//! is not itself a trusted proxy (each proxy appends the address it saw, so
//! entries to the left of that one were written by the client and prove
//! nothing). A request from any other peer is attributed to that peer, and
//! its `X-Forwarded-For`, which anyone can write, is ignored. Nobody is
//! exempt by default: loopback is a client address like any other unless
//! it is listed.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;
use ipnet::IpNet;

/// The header a trusted proxy appends the client's address to.
pub const FORWARDED_FOR: &str = "x-forwarded-for";

/// `X-Forwarded-For` entries looked at, at most (from the right): more
/// proxies than this in front of the hub would be a misconfiguration, and
/// the bound keeps the work per request small whatever a client sends.
const MAX_HOPS: usize = 32;

/// The operator's reverse proxies: addresses and networks whose
/// `X-Forwarded-For` the hub believes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
}

impl TrustedProxies {
    /// No trusted proxy: every request is its TCP peer's.
    pub fn none() -> Self {
        Self::default()
    }

    /// Parses a list of addresses and networks separated by commas or
    /// spaces (`127.0.0.1, 10.0.0.0/24, ::1`); empty means none.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut nets = Vec::new();
        for item in text.split([',', ' ', '\t']).map(str::trim).filter(|s| !s.is_empty()) {
            let net = match item.parse::<IpNet>() {
                Ok(net) => net.trunc(),
                Err(_) => match item.parse::<IpAddr>() {
                    Ok(ip) => IpNet::from(ip.to_canonical()),
                    Err(_) => {
                        return Err(format!(
                            "{item:?} is not an IP address or network; give addresses or CIDR networks separated by \
                             commas, e.g. \"127.0.0.1, 10.0.0.0/24\""
                        ));
                    }
                },
            };
            if !nets.contains(&net) {
                nets.push(net);
            }
        }
        Ok(Self { nets })
    }

    /// Whether no proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    /// The list as `parse` reads it.
    pub fn to_setting(&self) -> String {
        self.nets.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
    }

    /// Whether `ip` is one of the trusted proxies.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.nets.iter().any(|net| net.contains(&ip))
    }

    /// The client address of a request from `peer` carrying `headers`.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.contains(peer) {
            return peer;
        }
        // Every X-Forwarded-For line, in order, as one list (RFC 9110 5.3).
        let entries: Vec<&str> =
            headers.get_all(FORWARDED_FOR).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).collect();
        let mut client = peer;
        for entry in entries.iter().rev().take(MAX_HOPS) {
            // What a trusted proxy wrote must parse; if it does not, the
            // request stays with the last hop known for sure.
            let Some(ip) = parse_entry(entry) else { return client };
            if !self.contains(ip) {
                return ip;
            }
            client = ip;
        }
        client
    }
}

/// One `X-Forwarded-For` entry: an address, possibly with a port
/// (`192.0.2.1:4711`, `[2001:db8::1]:4711`) or in brackets.
fn parse_entry(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Ok(addr) = entry.parse::<SocketAddr>() {
        return Some(addr.ip().to_canonical());
    }
    entry.strip_prefix('[').and_then(|e| e.strip_suffix(']')).and_then(|e| e.parse::<IpAddr>().ok())
}

/// The client address of a request, left in its extensions by the
/// per-address limit (see [`crate::api::throttle`]) for later layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn forwarded(lines: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for line in lines {
            headers.append(FORWARDED_FOR, HeaderValue::from_str(line).unwrap());
        }
        headers
    }

    #[test]
    fn a_list_of_addresses_and_networks_parses_and_bad_items_are_named() {
        let p = TrustedProxies::parse("127.0.0.1, 10.1.2.3/24  ::1,2001:db8::/32,127.0.0.1").unwrap();
        assert_eq!(p.to_setting(), "127.0.0.1/32, 10.1.2.0/24, ::1/128, 2001:db8::/32");
        assert!(p.contains(ip("10.1.2.200")) && !p.contains(ip("10.1.3.1")));
        assert!(p.contains(ip("::ffff:127.0.0.1")), "an IPv4-mapped address is its IPv4 address");
        assert!(TrustedProxies::parse("").unwrap().is_empty());
        assert!(TrustedProxies::parse(" , ").unwrap().is_empty());
        let e = TrustedProxies::parse("127.0.0.1, proxy.example").unwrap_err();
        assert!(e.contains("\"proxy.example\" is not an IP address"), "{e}");
        assert!(TrustedProxies::parse("10.0.0.0/33").is_err());
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let p = TrustedProxies::parse("192.0.2.1").unwrap();
        let headers = forwarded(&["198.51.100.7"]);
        assert_eq!(p.client_ip(ip("203.0.113.9"), &headers), ip("203.0.113.9"));
        assert_eq!(TrustedProxies::none().client_ip(ip("127.0.0.1"), &headers), ip("127.0.0.1"));
    }

    #[test]
    fn behind_trusted_proxies_the_rightmost_untrusted_entry_is_the_client() {
        let p = TrustedProxies::parse("192.0.2.1, 10.0.0.0/8").unwrap();
        let proxy = ip("192.0.2.1");
        assert_eq!(p.client_ip(proxy, &forwarded(&["198.51.100.7"])), ip("198.51.100.7"));
        // A client that forges entries only adds to the left of what the
        // proxy appended.
        assert_eq!(p.client_ip(proxy, &forwarded(&["6.6.6.6, 198.51.100.7"])), ip("198.51.100.7"));
        // Chained proxies: the inner ones are skipped.
        assert_eq!(p.client_ip(proxy, &forwarded(&["6.6.6.6, 198.51.100.7, 10.0.0.5"])), ip("198.51.100.7"));
        assert_eq!(p.client_ip(proxy, &forwarded(&["6.6.6.6", "198.51.100.7", "10.0.0.5"])), ip("198.51.100.7"));
        // Ports and brackets.
        assert_eq!(p.client_ip(proxy, &forwarded(&["[2001:db8::7]:443"])), ip("2001:db8::7"));
        assert_eq!(p.client_ip(proxy, &forwarded(&["198.51.100.7:5000"])), ip("198.51.100.7"));
        // Nothing forwarded, or only proxies: the last trusted hop.
        assert_eq!(p.client_ip(proxy, &HeaderMap::new()), proxy);
        assert_eq!(p.client_ip(proxy, &forwarded(&["10.0.0.5"])), ip("10.0.0.5"));
        // Garbage where a proxy should have written an address: the last hop known.
        assert_eq!(p.client_ip(proxy, &forwarded(&["198.51.100.7, unknown"])), proxy);
        assert_eq!(p.client_ip(proxy, &forwarded(&["198.51.100.7, garbage, 10.0.0.5"])), ip("10.0.0.5"));
    }

    #[test]
    fn only_a_bounded_number_of_hops_is_read() {
        let p = TrustedProxies::parse("10.0.0.0/8").unwrap();
        let many = vec!["10.0.0.1"; 10_000].join(", ");
        let headers = forwarded(&[&format!("198.51.100.7, {many}")]);
        // Past MAX_HOPS trusted entries the request stays with the last one read.
        assert_eq!(p.client_ip(ip("10.0.0.2"), &headers), ip("10.0.0.1"));
    }
}
