//! The sources layered into [`ServeSettings`], and the effective settings
//! described with their sources (`check-config`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::values::{Value, parse_value};
use super::*;
use crate::api::log_access::LogAccess;
use crate::client_addr::TrustedProxies;
use crate::connections::{ConnectionLimits, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_CONNECTIONS_PER_ADDRESS};
use crate::hub::{
    DEFAULT_BODY_IDLE_TIMEOUT, DEFAULT_MAX_UPLOAD_BYTES, DEFAULT_SWEEP_INTERVAL, MAX_UPLOAD_RESUME_WINDOW,
};
use crate::inbox_wait::DEFAULT_MAX_INBOX_WAITERS;
use crate::quota::{DEFAULT_MAX_HELD_BYTES_PER_PARTY, DEFAULT_MAX_OPEN_UPLOADS_PER_PARTY, Quotas};
use crate::rate_limit::{DEFAULT_PER_ADDRESS, DEFAULT_PER_PARTY, Loopback, Rate, RateLimits};

impl Sources {
    /// Resolves every setting. All errors are returned, one per setting.
    pub fn resolve(&self) -> Result<Resolved, Vec<ConfigError>> {
        let mut errors = Vec::new();
        let mut origins = BTreeMap::new();
        let mut field = |key: Key| -> Option<(String, Source)> {
            let got = self.get(&key).map(|(v, s)| (v.to_owned(), s));
            origins.insert(key.name, got.as_ref().map_or(Source::Default, |(_, s)| s.clone()));
            got
        };
        let parse = |key: Key, got: Option<(String, Source)>, errors: &mut Vec<ConfigError>| {
            got.and_then(|(text, source)| match parse_value(&key, &text) {
                Ok(v) => Some(v),
                Err(why) => {
                    // A database URL may hold a password: never repeat it.
                    let text = if key == DATABASE { crate::storage::redact_password(&text) } else { text };
                    errors.push(ConfigError(format!("{} = {text:?} is not valid: {why}", source.describe(&key))));
                    None
                }
            })
        };
        let data = field(DATA);
        let database = field(DATABASE);
        let blobs = field(BLOBS);
        let listen = field(LISTEN);
        let tls_cert = field(TLS_CERT);
        let tls_key = field(TLS_KEY);
        let max_upload = field(MAX_UPLOAD_BYTES);
        let sweep = field(SWEEP_INTERVAL);
        let metrics = field(METRICS_LISTEN);
        let format = field(LOG_FORMAT);
        let filter = field(LOG_FILTER);
        let grace = field(SHUTDOWN_GRACE);
        let address_rate = field(RATE_LIMIT_PER_ADDRESS);
        let address_burst = field(RATE_LIMIT_PER_ADDRESS_BURST);
        let party_rate = field(RATE_LIMIT_PER_PARTY);
        let party_burst = field(RATE_LIMIT_PER_PARTY_BURST);
        let loopback = field(RATE_LIMIT_LOOPBACK);
        let header_timeout = field(HEADER_READ_TIMEOUT);
        let body_timeout = field(BODY_IDLE_TIMEOUT);
        let resume_window = field(UPLOAD_RESUME_WINDOW);
        let log_access = field(LOG_ACCESS);
        let held_bytes = field(MAX_HELD_BYTES_PER_PARTY);
        let open_uploads = field(MAX_OPEN_UPLOADS_PER_PARTY);
        let proxies = field(TRUSTED_PROXIES);
        let connections = field(MAX_CONNECTIONS);
        let per_address_connections = field(MAX_CONNECTIONS_PER_ADDRESS);
        let inbox_waiters = field(MAX_INBOX_WAITERS);
        let single_request = field(MAX_SINGLE_REQUEST_BYTES);

        let data = parse(DATA, data, &mut errors);
        if data.is_none() && errors.is_empty() {
            errors.push(ConfigError(format!(
                "no data directory: set `{}` in the config file, {} or {} (made by `sealdrop-hub init`)",
                DATA.name, DATA.env, DATA.flag
            )));
        }
        let database = parse(DATABASE, database, &mut errors);
        let blobs = parse(BLOBS, blobs, &mut errors);
        let listen = parse(LISTEN, listen, &mut errors);
        let tls_cert = parse(TLS_CERT, tls_cert, &mut errors);
        let tls_key = parse(TLS_KEY, tls_key, &mut errors);
        let max_upload = parse(MAX_UPLOAD_BYTES, max_upload, &mut errors);
        let sweep = parse(SWEEP_INTERVAL, sweep, &mut errors);
        let metrics = parse(METRICS_LISTEN, metrics, &mut errors);
        let format = parse(LOG_FORMAT, format, &mut errors);
        let filter = parse(LOG_FILTER, filter, &mut errors);
        let grace = parse(SHUTDOWN_GRACE, grace, &mut errors);
        let address_rate = parse(RATE_LIMIT_PER_ADDRESS, address_rate, &mut errors);
        let address_burst = parse(RATE_LIMIT_PER_ADDRESS_BURST, address_burst, &mut errors);
        let party_rate = parse(RATE_LIMIT_PER_PARTY, party_rate, &mut errors);
        let party_burst = parse(RATE_LIMIT_PER_PARTY_BURST, party_burst, &mut errors);
        let loopback = parse(RATE_LIMIT_LOOPBACK, loopback, &mut errors);
        let header_timeout = parse(HEADER_READ_TIMEOUT, header_timeout, &mut errors);
        let body_timeout = parse(BODY_IDLE_TIMEOUT, body_timeout, &mut errors);
        let resume_window = parse(UPLOAD_RESUME_WINDOW, resume_window, &mut errors);
        let log_access = parse(LOG_ACCESS, log_access, &mut errors);
        let held_bytes = parse(MAX_HELD_BYTES_PER_PARTY, held_bytes, &mut errors);
        let open_uploads = parse(MAX_OPEN_UPLOADS_PER_PARTY, open_uploads, &mut errors);
        let proxies = parse(TRUSTED_PROXIES, proxies, &mut errors);
        let connections = parse(MAX_CONNECTIONS, connections, &mut errors);
        let per_address_connections = parse(MAX_CONNECTIONS_PER_ADDRESS, per_address_connections, &mut errors);
        let inbox_waiters = parse(MAX_INBOX_WAITERS, inbox_waiters, &mut errors);
        let single_request = parse(MAX_SINGLE_REQUEST_BYTES, single_request, &mut errors);

        let tls = match (tls_cert, tls_key) {
            (Some(Value::Path(cert)), Some(Value::Path(key))) => Some(TlsFiles { cert, key }),
            (Some(_), None) => {
                errors.push(ConfigError(format!(
                    "a TLS certificate is set but no private key: set `{}` ({} or {}) too, or neither to serve plain HTTP",
                    TLS_KEY.name, TLS_KEY.env, TLS_KEY.flag
                )));
                None
            }
            (None, Some(_)) => {
                errors.push(ConfigError(format!(
                    "a TLS private key is set but no certificate: set `{}` ({} or {}) too, or neither to serve plain HTTP",
                    TLS_CERT.name, TLS_CERT.env, TLS_CERT.flag
                )));
                None
            }
            _ => None,
        };
        let listen = match listen {
            Some(Value::Addr(a)) => a,
            _ => DEFAULT_LISTEN.parse().unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 8443))),
        };
        let metrics_listen = match metrics {
            Some(Value::Addr(a)) => Some(a),
            _ => None,
        };
        if let Some(m) = metrics_listen
            && m == listen
            && m.port() != 0
        {
            errors.push(ConfigError(format!(
                "`{}` and `{}` are both {m}: give the metrics listener an address of its own",
                LISTEN.name, METRICS_LISTEN.name
            )));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let settings = ServeSettings {
            data: match data {
                Some(Value::Path(p)) => p,
                _ => PathBuf::new(),
            },
            backends: Backends {
                database: match database {
                    Some(Value::Database(d)) => d,
                    _ => DatabaseLocation::default(),
                },
                blobs: match blobs {
                    Some(Value::Blobs(b)) => b,
                    _ => BlobsLocation::default(),
                },
            },
            listen,
            tls,
            max_upload_bytes: match max_upload {
                Some(Value::Bytes(n)) => n,
                _ => DEFAULT_MAX_UPLOAD_BYTES,
            },
            max_single_request_bytes: match single_request {
                Some(Value::Bytes(n)) => n,
                _ => sealdrop_proto::api::DEFAULT_MAX_SINGLE_REQUEST_BYTES,
            },
            sweep_interval: match sweep {
                Some(Value::Seconds(d)) => d,
                _ => DEFAULT_SWEEP_INTERVAL,
            },
            metrics_listen,
            log_format: match format {
                Some(Value::Format(f)) => f,
                _ => LogFormat::Text,
            },
            log_filter: match filter {
                Some(Value::Text(f)) => f,
                _ => DEFAULT_LOG_FILTER.to_owned(),
            },
            shutdown_grace: match grace {
                Some(Value::Seconds(d)) => d,
                _ => DEFAULT_SHUTDOWN_GRACE,
            },
            rate_limits: RateLimits {
                per_address: rate(address_rate, address_burst, DEFAULT_PER_ADDRESS),
                per_party: rate(party_rate, party_burst, DEFAULT_PER_PARTY),
                loopback: match loopback {
                    Some(Value::Loopback(l)) => l,
                    _ => Loopback::default(),
                },
            },
            header_read_timeout: match header_timeout {
                Some(Value::Seconds(d)) => d,
                _ => DEFAULT_HEADER_READ_TIMEOUT,
            },
            body_idle_timeout: match body_timeout {
                Some(Value::Seconds(d)) => d,
                _ => DEFAULT_BODY_IDLE_TIMEOUT,
            },
            upload_resume_window: match resume_window {
                Some(Value::Seconds(d)) => d,
                _ => MAX_UPLOAD_RESUME_WINDOW,
            },
            log_access: match log_access {
                Some(Value::LogAccess(a)) => a,
                _ => LogAccess::default(),
            },
            trusted_proxies: match proxies {
                Some(Value::Proxies(p)) => p,
                _ => TrustedProxies::none(),
            },
            connections: ConnectionLimits {
                total: match connections {
                    Some(Value::Count(n)) => n as usize,
                    _ => DEFAULT_MAX_CONNECTIONS,
                },
                per_address: match per_address_connections {
                    Some(Value::Count(n)) => n as usize,
                    _ => DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
                },
            },
            quotas: Quotas {
                held_bytes: match held_bytes {
                    Some(Value::Bytes(n)) => n,
                    _ => DEFAULT_MAX_HELD_BYTES_PER_PARTY,
                },
                open_uploads: match open_uploads {
                    Some(Value::Count(n)) => n,
                    _ => DEFAULT_MAX_OPEN_UPLOADS_PER_PARTY,
                },
            },
            max_inbox_waiters: match inbox_waiters {
                Some(Value::Count(n)) => n as usize,
                _ => DEFAULT_MAX_INBOX_WAITERS,
            },
        };
        Ok(Resolved { settings, origins })
    }
}

/// Resolved settings and where each came from.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The settings.
    pub settings: ServeSettings,
    /// The source of each key's value.
    pub origins: BTreeMap<&'static str, Source>,
}

impl Resolved {
    /// The effective settings as `hub.toml` lines, each with its source as
    /// a comment (unset ones commented out).
    pub fn describe(&self) -> String {
        let s = &self.settings;
        let path = |p: &Path| toml_string(&p.to_string_lossy());
        let secs = |d: Duration| format!("{}", d.as_secs_f64());
        let mut out = String::new();
        for k in KEYS {
            let value = match k.name {
                "data" => Some(path(&s.data)),
                "database" => Some(toml_string(&s.backends.database.to_string())),
                "blobs" => Some(toml_string(&s.backends.blobs.to_string())),
                "listen" => Some(toml_string(&s.listen.to_string())),
                "tls_cert" => s.tls.as_ref().map(|t| path(&t.cert)),
                "tls_key" => s.tls.as_ref().map(|t| path(&t.key)),
                "max_upload_bytes" => Some(s.max_upload_bytes.to_string()),
                "sweep_interval" => Some(secs(s.sweep_interval)),
                "metrics_listen" => s.metrics_listen.map(|a| toml_string(&a.to_string())),
                "log_format" => Some(toml_string(s.log_format.as_str())),
                "log_filter" => Some(toml_string(&s.log_filter)),
                "shutdown_grace" => Some(secs(s.shutdown_grace)),
                "rate_limit_per_address" => Some(s.rate_limits.per_address.map_or(0.0, |r| r.per_second).to_string()),
                "rate_limit_per_address_burst" => s.rate_limits.per_address.map(|r| r.burst.to_string()),
                "rate_limit_per_party" => Some(s.rate_limits.per_party.map_or(0.0, |r| r.per_second).to_string()),
                "rate_limit_per_party_burst" => s.rate_limits.per_party.map(|r| r.burst.to_string()),
                "rate_limit_loopback" => Some(toml_string(s.rate_limits.loopback.as_str())),
                "header_read_timeout" => Some(secs(s.header_read_timeout)),
                "body_idle_timeout" => Some(secs(s.body_idle_timeout)),
                "upload_resume_window" => Some(secs(s.upload_resume_window)),
                "log_access" => Some(toml_string(s.log_access.as_str())),
                "max_held_bytes_per_party" => Some(s.quotas.held_bytes.to_string()),
                "max_open_uploads_per_party" => Some(s.quotas.open_uploads.to_string()),
                "trusted_proxies" => Some(toml_string(&s.trusted_proxies.to_setting())),
                "max_connections" => Some(s.connections.total.to_string()),
                "max_connections_per_address" => Some(s.connections.per_address.to_string()),
                "max_inbox_waiters" => Some(s.max_inbox_waiters.to_string()),
                "max_single_request_bytes" => Some(s.max_single_request_bytes.to_string()),
                _ => None,
            };
            let source = self.origins.get(k.name).cloned().unwrap_or(Source::Default);
            let line = match value {
                Some(v) => format!("{} = {v}", k.name),
                None => format!("# {} (not set)", k.name),
            };
            out.push_str(&format!("{line:<48} # {}\n", source.describe(&k)));
        }
        out
    }
}

/// A limit from its rate and burst settings (each defaulting on its own);
/// a rate of 0 turns the limit off.
fn rate(per_second: Option<Value>, burst: Option<Value>, default: Rate) -> Option<Rate> {
    let per_second = match per_second {
        Some(Value::PerSecond(n)) => n,
        _ => default.per_second,
    };
    let burst = match burst {
        Some(Value::Count(n)) => n,
        _ => default.burst,
    };
    (per_second > 0.0).then_some(Rate { per_second, burst })
}

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}
