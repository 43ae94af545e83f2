//! One parser per setting: the text of a key, from any source, to its value.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::{BlobsLocation, DatabaseLocation, Key, LogFormat};
use crate::api::log_access::LogAccess;
use crate::client_addr::TrustedProxies;
use crate::hub::MAX_UPLOAD_RESUME_WINDOW;
use crate::rate_limit::Loopback;

/// The most `max_single_request_bytes` may be: such a request is held in
/// memory while it is checked, and larger drops lose nothing by taking the
/// three requests (which also resume).
pub const MAX_SINGLE_REQUEST_BYTES_LIMIT: u64 = 64 << 20;

/// A parsed setting value.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Value {
    Path(PathBuf),
    Addr(SocketAddr),
    Bytes(u64),
    Seconds(Duration),
    Format(LogFormat),
    Text(String),
    Count(u32),
    PerSecond(f64),
    Loopback(Loopback),
    LogAccess(LogAccess),
    Proxies(TrustedProxies),
    Blobs(BlobsLocation),
    Database(DatabaseLocation),
}

/// Parses one setting's text; the error says what is expected.
pub(super) fn parse_value(key: &Key, text: &str) -> Result<Value, String> {
    let text = text.trim();
    match key.name {
        "data" | "tls_cert" | "tls_key" => {
            if text.is_empty() {
                Err("it is empty; give a path".to_owned())
            } else {
                Ok(Value::Path(PathBuf::from(text)))
            }
        }
        "blobs" => BlobsLocation::parse(text).map(Value::Blobs),
        "database" => DatabaseLocation::parse(text).map(Value::Database),
        "listen" | "metrics_listen" => text
            .parse()
            .map(Value::Addr)
            .map_err(|_| "give an IP address and port, e.g. 127.0.0.1:8443 or [::]:8443".to_owned()),
        "max_upload_bytes" => match text.parse::<u64>() {
            Ok(0) => Err("it must be at least 1 byte".to_owned()),
            Ok(n) => Ok(Value::Bytes(n)),
            Err(_) => Err("give a whole number of bytes, e.g. 68719476736 for 64 GiB".to_owned()),
        },
        // 0 turns the one request off: every drop takes the three steps.
        // At most 64 MiB: each such request is held in memory while checked.
        "max_single_request_bytes" => match text.parse::<u64>() {
            Ok(n) if n <= MAX_SINGLE_REQUEST_BYTES_LIMIT => Ok(Value::Bytes(n)),
            _ => Err(format!(
                "give a whole number of bytes from 0 to {MAX_SINGLE_REQUEST_BYTES_LIMIT}, e.g. 1048576 for 1 MiB (0: every drop is sent in three requests)"
            )),
        },
        "max_held_bytes_per_party" => match text.parse::<u64>() {
            Ok(0) => Err("it must be at least 1 byte".to_owned()),
            Ok(n) => Ok(Value::Bytes(n)),
            Err(_) => Err("give a whole number of bytes, e.g. 137438953472 for 128 GiB".to_owned()),
        },
        "max_open_uploads_per_party" => {
            count(text, 1, 100_000).map(Value::Count).map_err(|why| format!("{why} uploads"))
        }
        "max_connections" | "max_connections_per_address" => {
            count(text, 1, 1_000_000).map(Value::Count).map_err(|why| format!("{why} connections"))
        }
        // 0 turns the long-poll off: every inbox request answers at once.
        "max_inbox_waiters" => {
            count(text, 0, 1_000_000).map(Value::Count).map_err(|why| format!("{why} requests (0: no request waits)"))
        }
        "trusted_proxies" => TrustedProxies::parse(text).map(Value::Proxies),
        "sweep_interval" => seconds(text, 0.05, 86_400.0).map(Value::Seconds),
        "rate_limit_per_address" | "rate_limit_per_party" => match text.parse::<f64>() {
            Ok(n) if n == 0.0 || (0.001..=1_000_000.0).contains(&n) => Ok(Value::PerSecond(n)),
            _ => {
                Err("give a number of requests a second from 0.001 to 1000000, e.g. 200 or 0.5 (0 turns the limit off)"
                    .to_owned())
            }
        },
        "rate_limit_per_address_burst" | "rate_limit_per_party_burst" => {
            count(text, 1, 10_000_000).map(Value::Count).map_err(|why| format!("{why} requests"))
        }
        "rate_limit_loopback" => match text {
            "exempt" => Ok(Value::Loopback(Loopback::Exempt)),
            "limit" => Ok(Value::Loopback(Loopback::Limit)),
            _ => Err("give `limit` (the default) or `exempt` (loopback addresses are not limited per address; \
                      list a reverse proxy in trusted_proxies instead)"
                .to_owned()),
        },
        "shutdown_grace" => seconds(text, 0.0, 3_600.0).map(Value::Seconds),
        // Short values are for tests; a real client needs seconds at least.
        "header_read_timeout" => seconds(text, 0.1, 3_600.0).map(Value::Seconds),
        "body_idle_timeout" => seconds(text, 0.1, 86_400.0).map(Value::Seconds),
        // At most a day: abandoned ciphertext must not wait on disk for the
        // drop's whole expiry.
        "upload_resume_window" => seconds(text, 60.0, MAX_UPLOAD_RESUME_WINDOW.as_secs_f64()).map(Value::Seconds),
        "log_access" => match text {
            "members" => Ok(Value::LogAccess(LogAccess::Members)),
            "public" => Ok(Value::LogAccess(LogAccess::Public)),
            _ => Err("give `members` (only members of the directory and its witnesses read the transfer log and the \
                      directory, by signed request) or `public` (anyone may)"
                .to_owned()),
        },
        "log_format" => match text {
            "text" => Ok(Value::Format(LogFormat::Text)),
            "json" => Ok(Value::Format(LogFormat::Json)),
            _ => Err("give `text` or `json`".to_owned()),
        },
        "log_filter" => tracing_subscriber::EnvFilter::try_new(text)
            .map(|_| Value::Text(text.to_owned()))
            .map_err(|e| format!("{e}; give a level such as `info` or directives such as `info,sealdrop_hub=debug`")),
        other => Err(format!("`{other}` is not a setting")),
    }
}

/// A whole number within `min..=max`.
fn count(text: &str, min: u32, max: u32) -> Result<u32, String> {
    match text.parse::<u32>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!("give a whole number from {min} to {max}")),
    }
}

/// A number of seconds within `min..=max`.
fn seconds(text: &str, min: f64, max: f64) -> Result<Duration, String> {
    let secs: f64 = text.parse().map_err(|_| format!("give a number of seconds from {min} to {max}"))?;
    if !secs.is_finite() || !(min..=max).contains(&secs) {
        return Err(format!("give a number of seconds from {min} to {max}"));
    }
    Ok(Duration::from_secs_f64(secs))
}
