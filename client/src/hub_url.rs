//! Which hub URLs the client accepts. Request signatures stop a network
//! attacker from forging requests, but plain http would still show them the
//! party ids, drop sizes and times, and let them drop or delay traffic; so
//! `http://` is accepted only to this machine (a hub on loopback, the demo,
//! the tests, or a TLS proxy beside the client) unless the user says
//! `--insecure-http` (or `SEALDROP_INSECURE_HTTP=1`, or `insecure_http = true`
//! in the config file). The check runs when settings are resolved, before
//! any connection is made.

use std::net::IpAddr;

use reqwest::Url;

use crate::error::{Error, ErrorCode, Result};

/// The environment variable that sets `--insecure-http`.
pub const INSECURE_HTTP_ENV: &str = "SEALDROP_INSECURE_HTTP";

/// Parses a hub base URL: `http(s)://HOST[:PORT]` with no path, query or
/// fragment (a trailing `/` is fine).
pub fn parse(base: &str) -> Result<Url> {
    let trimmed = base.trim_end_matches('/');
    let url = Url::parse(trimmed).map_err(|e| {
        Error::new(
            ErrorCode::BadHubUrl,
            format!("hub URL {trimmed:?} is not a URL ({e}); give the hub's address, e.g. https://hub.example.org"),
        )
    })?;
    if !matches!(url.scheme(), "http" | "https")
        || url.path() != "/"
        || url.query().is_some()
        || url.fragment().is_some()
    {
        return Err(Error::new(
            ErrorCode::BadHubUrl,
            format!(
                "hub URL {trimmed:?} must be https://HOST[:PORT] with no path, e.g. https://hub.example.org; fix --hub, SEALDROP_HUB or the config file"
            ),
        ));
    }
    Ok(url)
}

/// Whether `host` (as a URL spells it: an IPv6 address in brackets) is
/// this machine: `localhost`, 127.0.0.0/8 or ::1.
pub fn is_loopback(host: &str) -> bool {
    let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    match bare.parse::<IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => host.eq_ignore_ascii_case("localhost"),
    }
}

/// Checks `base` against the rule: https anywhere; http only to loopback,
/// or anywhere when `allow_insecure_http`.
pub fn check(base: &str, allow_insecure_http: bool) -> Result<()> {
    let url = parse(base)?;
    if url.scheme() == "https" || allow_insecure_http || url.host_str().is_some_and(is_loopback) {
        return Ok(());
    }
    Err(Error::new(
        ErrorCode::InsecureHubUrl,
        format!(
            "hub URL {} is plain http to another machine, so anyone on the network could watch and disrupt the exchange; use https://{}, or pass --insecure-http (or set {INSECURE_HTTP_ENV}=1) if this network is trusted",
            base.trim_end_matches('/'),
            url.host_str().unwrap_or("HOST")
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_is_accepted_anywhere() {
        for url in ["https://hub.example.org", "https://192.0.2.1:8443/", "https://[2001:db8::1]"] {
            check(url, false).unwrap_or_else(|e| panic!("{url}: {e}"));
        }
    }

    #[test]
    fn plain_http_is_accepted_to_loopback_only() {
        for url in [
            "http://127.0.0.1:8443",
            "http://127.0.0.1:8443/",
            "http://127.255.0.9",
            "http://127.1:80",
            "http://[::1]:8443",
            "http://localhost:8443",
            "http://LOCALHOST",
        ] {
            check(url, false).unwrap_or_else(|e| panic!("{url}: {e}"));
        }
        for url in [
            "http://192.0.2.1:9",
            "http://10.0.0.5",
            "http://0.0.0.0:8443",
            "http://128.0.0.1",
            "http://[::2]",
            "http://[::ffff:192.0.2.1]",
            "http://hub.example.org",
            "http://localhost.example.org",
            "http://mylocalhost",
        ] {
            let e = check(url, false).unwrap_err();
            assert_eq!(e.code, "insecure_hub_url", "{url}");
            assert_eq!(e.kind, crate::error::Kind::Input, "{url}");
            assert!(e.message.contains("use https://") && e.message.contains("--insecure-http"), "{}", e.message);
        }
    }

    #[test]
    fn insecure_http_lets_any_http_host_through() {
        for url in ["http://192.0.2.1:9", "http://hub.example.org", "http://[2001:db8::1]:80"] {
            check(url, true).unwrap_or_else(|e| panic!("{url}: {e}"));
        }
    }

    #[test]
    fn malformed_urls_are_bad_hub_url_whatever_the_flag() {
        for url in ["hub.example.org", "ftp://hub.example.org", "https://hub.example.org/api", "https://h?x=1", ""] {
            for allow in [false, true] {
                assert_eq!(check(url, allow).unwrap_err().code, "bad_hub_url", "{url}");
            }
        }
    }
}
