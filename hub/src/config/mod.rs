//! Every setting of `sealdrop-hub serve`, from three sources: the config file
//! (`hub.toml`), the environment (`SEALDROP_HUB_*`) and command-line flags.
//! A flag wins over the environment, which wins over the file, which wins
//! over the default.
//!
//! All three sources hand in text (a TOML number or string is read as its
//! text), and one parser per key turns it into a value, so a value means
//! the same wherever it comes from and every error names the key and where
//! it came from. [`crate::check_config`] then looks at what the settings point to (the
//! data directory, the TLS files) without changing anything, for
//! `sealdrop-hub check-config` and before serving.
//!
//! `layers` reads each source into text by key, `values` parses one
//! key's text, and `resolve` layers the sources into [`ServeSettings`]
//! and describes them with their sources for `check-config`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::api::log_access::LogAccess;
use crate::client_addr::TrustedProxies;
use crate::connections::ConnectionLimits;
use crate::quota::Quotas;
use crate::rate_limit::RateLimits;

mod layers;
mod resolve;
mod values;

/// Defined with the stores it chooses; a setting like the others here.
pub use crate::storage::{Backends, BlobsLocation, DatabaseLocation};
pub use layers::{Layer, Sources, env_layer, file_layer, flag_layer, parse_file};
pub use resolve::Resolved;

/// The default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8443";
/// The default time in-flight requests get to finish after SIGTERM.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// The default time a client gets to send a request's head (and a
/// kept-alive connection may stay idle): a signed request's head is about
/// 1 KiB, which any line sends in well under a second.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// The default log filter.
pub const DEFAULT_LOG_FILTER: &str = "info";
/// The environment variable naming the config file.
pub const CONFIG_ENV: &str = "SEALDROP_HUB_CONFIG";

/// One setting: its key in `hub.toml`, its environment variable and flag,
/// and what it is for (shown by `check-config` and in the docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    /// The key in `hub.toml`.
    pub name: &'static str,
    /// The environment variable.
    pub env: &'static str,
    /// The command-line flag.
    pub flag: &'static str,
    /// Whether a relative value in the config file is taken relative to
    /// the file's folder (paths), not to the working directory.
    pub is_path: bool,
}

const fn key(name: &'static str, env: &'static str, flag: &'static str, is_path: bool) -> Key {
    Key { name, env, flag, is_path }
}

/// The data directory.
pub const DATA: Key = key("data", "SEALDROP_HUB_DATA", "--data", true);
/// Where the metadata is kept: the SQLite file in the data directory, or
/// a PostgreSQL database that several instances share.
pub const DATABASE: Key = key("database", "SEALDROP_HUB_DATABASE", "--database", false);
/// Where ciphertexts are kept: files in the data directory, or an
/// S3-compatible object store.
pub const BLOBS: Key = key("blobs", "SEALDROP_HUB_BLOBS", "--blobs", false);
/// The API's listen address.
pub const LISTEN: Key = key("listen", "SEALDROP_HUB_LISTEN", "--listen", false);
/// The TLS certificate chain (PEM).
pub const TLS_CERT: Key = key("tls_cert", "SEALDROP_HUB_TLS_CERT", "--tls-cert", true);
/// The TLS private key (PEM).
pub const TLS_KEY: Key = key("tls_key", "SEALDROP_HUB_TLS_KEY", "--tls-key", true);
/// The largest upload.
pub const MAX_UPLOAD_BYTES: Key = key("max_upload_bytes", "SEALDROP_HUB_MAX_UPLOAD_BYTES", "--max-upload-bytes", false);
/// The largest ciphertext taken in one request (`PUT /v1/drops/{id}`).
pub const MAX_SINGLE_REQUEST_BYTES: Key =
    key("max_single_request_bytes", "SEALDROP_HUB_MAX_SINGLE_REQUEST_BYTES", "--max-single-request-bytes", false);
/// Ciphertext bytes one party may have the hub hold.
pub const MAX_HELD_BYTES_PER_PARTY: Key =
    key("max_held_bytes_per_party", "SEALDROP_HUB_MAX_HELD_BYTES_PER_PARTY", "--max-held-bytes-per-party", false);
/// Uploads one party may have open at once.
pub const MAX_OPEN_UPLOADS_PER_PARTY: Key =
    key("max_open_uploads_per_party", "SEALDROP_HUB_MAX_OPEN_UPLOADS_PER_PARTY", "--max-open-uploads-per-party", false);
/// Reverse proxies whose X-Forwarded-For is believed.
pub const TRUSTED_PROXIES: Key = key("trusted_proxies", "SEALDROP_HUB_TRUSTED_PROXIES", "--trusted-proxies", false);
/// Connections open at once.
pub const MAX_CONNECTIONS: Key = key("max_connections", "SEALDROP_HUB_MAX_CONNECTIONS", "--max-connections", false);
/// Connections open at once from one client address.
pub const MAX_CONNECTIONS_PER_ADDRESS: Key = key(
    "max_connections_per_address",
    "SEALDROP_HUB_MAX_CONNECTIONS_PER_ADDRESS",
    "--max-connections-per-address",
    false,
);
/// The sweeper's interval.
pub const SWEEP_INTERVAL: Key = key("sweep_interval", "SEALDROP_HUB_SWEEP_INTERVAL", "--sweep-interval", false);
/// The metrics listener's address.
pub const METRICS_LISTEN: Key = key("metrics_listen", "SEALDROP_HUB_METRICS_LISTEN", "--metrics-listen", false);
/// The log line format.
pub const LOG_FORMAT: Key = key("log_format", "SEALDROP_HUB_LOG_FORMAT", "--log-format", false);
/// The log filter.
pub const LOG_FILTER: Key = key("log_filter", "SEALDROP_HUB_LOG_FILTER", "--log-filter", false);
/// The shutdown grace period.
pub const SHUTDOWN_GRACE: Key = key("shutdown_grace", "SEALDROP_HUB_SHUTDOWN_GRACE", "--shutdown-grace", false);
/// How long a client may take to send a request's head.
pub const HEADER_READ_TIMEOUT: Key =
    key("header_read_timeout", "SEALDROP_HUB_HEADER_READ_TIMEOUT", "--header-read-timeout", false);
/// How long a request body may send nothing.
pub const BODY_IDLE_TIMEOUT: Key =
    key("body_idle_timeout", "SEALDROP_HUB_BODY_IDLE_TIMEOUT", "--body-idle-timeout", false);
/// How long an uncommitted upload is kept after its last activity.
pub const UPLOAD_RESUME_WINDOW: Key =
    key("upload_resume_window", "SEALDROP_HUB_UPLOAD_RESUME_WINDOW", "--upload-resume-window", false);

/// Requests a second per source address (0: no limit).
pub const RATE_LIMIT_PER_ADDRESS: Key =
    key("rate_limit_per_address", "SEALDROP_HUB_RATE_LIMIT_PER_ADDRESS", "--rate-limit-per-address", false);
/// Requests at once per source address.
pub const RATE_LIMIT_PER_ADDRESS_BURST: Key = key(
    "rate_limit_per_address_burst",
    "SEALDROP_HUB_RATE_LIMIT_PER_ADDRESS_BURST",
    "--rate-limit-per-address-burst",
    false,
);
/// Signed requests a second per party (0: no limit).
pub const RATE_LIMIT_PER_PARTY: Key =
    key("rate_limit_per_party", "SEALDROP_HUB_RATE_LIMIT_PER_PARTY", "--rate-limit-per-party", false);
/// Signed requests at once per party.
pub const RATE_LIMIT_PER_PARTY_BURST: Key =
    key("rate_limit_per_party_burst", "SEALDROP_HUB_RATE_LIMIT_PER_PARTY_BURST", "--rate-limit-per-party-burst", false);
/// Whether loopback addresses are limited per address.
pub const RATE_LIMIT_LOOPBACK: Key =
    key("rate_limit_loopback", "SEALDROP_HUB_RATE_LIMIT_LOOPBACK", "--rate-limit-loopback", false);

/// Inbox requests that may wait for a drop at once.
pub const MAX_INBOX_WAITERS: Key =
    key("max_inbox_waiters", "SEALDROP_HUB_MAX_INBOX_WAITERS", "--max-inbox-waiters", false);

/// Who may read the transfer log and the directory.
pub const LOG_ACCESS: Key = key("log_access", "SEALDROP_HUB_LOG_ACCESS", "--log-access", false);

/// Every setting, in the order `check-config` prints them.
pub const KEYS: [Key; 28] = [
    DATA,
    DATABASE,
    BLOBS,
    LISTEN,
    TLS_CERT,
    TLS_KEY,
    MAX_UPLOAD_BYTES,
    MAX_HELD_BYTES_PER_PARTY,
    MAX_OPEN_UPLOADS_PER_PARTY,
    SWEEP_INTERVAL,
    METRICS_LISTEN,
    LOG_FORMAT,
    LOG_FILTER,
    SHUTDOWN_GRACE,
    TRUSTED_PROXIES,
    RATE_LIMIT_PER_ADDRESS,
    RATE_LIMIT_PER_ADDRESS_BURST,
    RATE_LIMIT_PER_PARTY,
    RATE_LIMIT_PER_PARTY_BURST,
    RATE_LIMIT_LOOPBACK,
    MAX_CONNECTIONS,
    MAX_CONNECTIONS_PER_ADDRESS,
    MAX_INBOX_WAITERS,
    MAX_SINGLE_REQUEST_BYTES,
    HEADER_READ_TIMEOUT,
    BODY_IDLE_TIMEOUT,
    UPLOAD_RESUME_WINDOW,
    LOG_ACCESS,
];

/// How log lines are written (to stderr).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

impl LogFormat {
    /// `text` or `json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Json => "json",
        }
    }
}

/// The TLS certificate and key files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain: the server's certificate first.
    pub cert: PathBuf,
    /// PEM private key of that certificate.
    pub key: PathBuf,
}

/// The resolved settings of `serve`.
#[derive(Debug, Clone, PartialEq)]
pub struct ServeSettings {
    /// The hub's data directory (made by `sealdrop-hub init`).
    pub data: PathBuf,
    /// Where the metadata and the ciphertexts are kept: in the data
    /// directory, or in PostgreSQL and an object store that several
    /// instances share.
    pub backends: Backends,
    /// Where the API listens.
    pub listen: SocketAddr,
    /// TLS in the hub itself; `None` serves plain HTTP (behind a TLS
    /// reverse proxy, or on loopback for tests).
    pub tls: Option<TlsFiles>,
    /// The largest ciphertext accepted for one drop.
    pub max_upload_bytes: u64,
    /// The largest ciphertext taken in one request (`PUT /v1/drops/{id}`).
    pub max_single_request_bytes: u64,
    /// How often expired and agreement-ended drops are deleted.
    pub sweep_interval: Duration,
    /// Where `/metrics` is served; `None`: no metrics listener.
    pub metrics_listen: Option<SocketAddr>,
    /// Text or JSON log lines.
    pub log_format: LogFormat,
    /// Which log lines are written (`tracing` filter directives, e.g. `info`).
    pub log_filter: String,
    /// How long requests in flight may take to finish after SIGTERM.
    pub shutdown_grace: Duration,
    /// Requests allowed per source address and per party.
    pub rate_limits: RateLimits,
    /// How long a client may take to send a request's head.
    pub header_read_timeout: Duration,
    /// How long a request body may send nothing before the hub gives up on it.
    pub body_idle_timeout: Duration,
    /// How long an uncommitted upload is kept after its last activity.
    pub upload_resume_window: Duration,
    /// Who may read the transfer log and the directory.
    pub log_access: LogAccess,
    /// The reverse proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: TrustedProxies,
    /// How many connections may be open, in all and per client address.
    pub connections: ConnectionLimits,
    /// What one party may have the hub hold.
    pub quotas: Quotas,
    /// How many inbox requests may wait for a drop at once (long-polls
    /// hold connections; see [`crate::inbox_wait`]).
    pub max_inbox_waiters: usize,
}

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A command-line flag.
    Flag,
    /// An environment variable.
    Env,
    /// The config file.
    File(PathBuf),
    /// The built-in default (or unset).
    Default,
}

impl Source {
    fn describe(&self, key: &Key) -> String {
        match self {
            Self::Flag => key.flag.to_owned(),
            Self::Env => key.env.to_owned(),
            Self::File(path) => format!("{} key `{}`", path.display(), key.name),
            Self::Default => "default".to_owned(),
        }
    }
}

/// A setting that cannot be used: one line that names it, its source and
/// what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

#[cfg(test)]
mod tests;
