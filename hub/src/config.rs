//! Every setting of `sealdrop-hub serve`, from three sources: the config file
//! (`hub.toml`), the environment (`SEALDROP_HUB_*`) and command-line flags.
//! A flag wins over the environment, which wins over the file, which wins
//! over the default.
//!
//! All three sources hand in text (a TOML number or string is read as its
//! text), and one parser per key turns it into a value, so a value means
//! the same wherever it comes from and every error names the key and where
//! it came from. [`check`] then looks at what the settings point to (the
//! data directory, the TLS files) without changing anything, for
//! `sealdrop-hub check-config` and before serving.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::api::log_access::LogAccess;
use crate::client_addr::TrustedProxies;
use crate::connections::{ConnectionLimits, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_CONNECTIONS_PER_ADDRESS};
use crate::hub::{
    DEFAULT_BODY_IDLE_TIMEOUT, DEFAULT_MAX_UPLOAD_BYTES, DEFAULT_SWEEP_INTERVAL, MAX_UPLOAD_RESUME_WINDOW,
};
use crate::quota::{DEFAULT_MAX_HELD_BYTES_PER_PARTY, DEFAULT_MAX_OPEN_UPLOADS_PER_PARTY, Quotas};
use crate::rate_limit::{DEFAULT_PER_ADDRESS, DEFAULT_PER_PARTY, Loopback, Rate, RateLimits};

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
/// The API's listen address.
pub const LISTEN: Key = key("listen", "SEALDROP_HUB_LISTEN", "--listen", false);
/// The TLS certificate chain (PEM).
pub const TLS_CERT: Key = key("tls_cert", "SEALDROP_HUB_TLS_CERT", "--tls-cert", true);
/// The TLS private key (PEM).
pub const TLS_KEY: Key = key("tls_key", "SEALDROP_HUB_TLS_KEY", "--tls-key", true);
/// The largest upload.
pub const MAX_UPLOAD_BYTES: Key = key("max_upload_bytes", "SEALDROP_HUB_MAX_UPLOAD_BYTES", "--max-upload-bytes", false);
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

/// Who may read the transfer log and the directory.
pub const LOG_ACCESS: Key = key("log_access", "SEALDROP_HUB_LOG_ACCESS", "--log-access", false);

/// Every setting, in the order `check-config` prints them.
pub const KEYS: [Key; 24] = [
    DATA,
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
    /// Where the API listens.
    pub listen: SocketAddr,
    /// TLS in the hub itself; `None` serves plain HTTP (behind a TLS
    /// reverse proxy, or on loopback for tests).
    pub tls: Option<TlsFiles>,
    /// The largest ciphertext accepted for one drop.
    pub max_upload_bytes: u64,
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

/// The raw text of each setting from one source, by key name.
pub type Layer = BTreeMap<&'static str, String>;

/// The values given on the command line (`None`: flag not given).
pub fn flag_layer(values: &[(Key, Option<String>)]) -> Layer {
    values.iter().filter_map(|(k, v)| v.clone().map(|v| (k.name, v))).collect()
}

/// The `SEALDROP_HUB_*` variables set in the environment (`lookup` is
/// `std::env::var_os` outside tests). An empty variable counts as unset.
pub fn env_layer(lookup: impl Fn(&str) -> Option<OsString>) -> Result<Layer, Vec<ConfigError>> {
    let mut layer = Layer::new();
    let mut errors = Vec::new();
    for k in KEYS {
        match lookup(k.env).map(OsString::into_string) {
            None => {}
            Some(Ok(v)) if v.trim().is_empty() => {}
            Some(Ok(v)) => {
                layer.insert(k.name, v);
            }
            Some(Err(_)) => errors.push(ConfigError(format!("{} is not valid UTF-8: set it again or unset it", k.env))),
        }
    }
    if errors.is_empty() { Ok(layer) } else { Err(errors) }
}

/// Reads a config file: a TOML table of known keys whose values are
/// strings or numbers. An unknown key is refused by name (a misspelt key
/// would otherwise be silently ignored). Relative paths are taken
/// relative to the file's folder.
pub fn file_layer(path: &Path) -> Result<Layer, Vec<ConfigError>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| vec![ConfigError(format!("cannot read the config file {}: {e}", path.display()))])?;
    parse_file(&text, path)
}

/// Parses a config file's text (see [`file_layer`]); `path` names it in errors.
pub fn parse_file(text: &str, path: &Path) -> Result<Layer, Vec<ConfigError>> {
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let line = e.span().map(|s| text[..s.start].lines().count().max(1));
        let at = line.map(|l| format!(" line {l}")).unwrap_or_default();
        vec![ConfigError(format!("{}{at} is not valid TOML: {}", path.display(), e.message().trim()))]
    })?;
    let base = path.parent().filter(|p| !p.as_os_str().is_empty());
    let mut layer = Layer::new();
    let mut errors = Vec::new();
    for (name, value) in &table {
        let Some(k) = KEYS.iter().find(|k| k.name == name) else {
            let known: Vec<&str> = KEYS.iter().map(|k| k.name).collect();
            errors.push(ConfigError(format!(
                "{}: unknown key `{name}`; the keys are {}",
                path.display(),
                known.join(", ")
            )));
            continue;
        };
        let text = match value {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            other => {
                errors.push(ConfigError(format!(
                    "{}: key `{name}` is a {}, but must be a string or a number",
                    path.display(),
                    other.type_str()
                )));
                continue;
            }
        };
        let text = match base {
            Some(base) if k.is_path && Path::new(&text).is_relative() => {
                base.join(&text).to_string_lossy().into_owned()
            }
            _ => text,
        };
        layer.insert(k.name, text);
    }
    if errors.is_empty() { Ok(layer) } else { Err(errors) }
}

/// The three sources, most important first.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// Command-line flags.
    pub flags: Layer,
    /// `SEALDROP_HUB_*` variables.
    pub env: Layer,
    /// The config file's values and its path.
    pub file: Option<(PathBuf, Layer)>,
}

impl Sources {
    /// The value of `key` and where it came from: flag, then environment,
    /// then file.
    pub fn get(&self, key: &Key) -> Option<(&str, Source)> {
        if let Some(v) = self.flags.get(key.name) {
            return Some((v, Source::Flag));
        }
        if let Some(v) = self.env.get(key.name) {
            return Some((v, Source::Env));
        }
        let (path, file) = self.file.as_ref()?;
        file.get(key.name).map(|v| (v.as_str(), Source::File(path.clone())))
    }

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
                    errors.push(ConfigError(format!("{} = {text:?} is not valid: {why}", source.describe(&key))));
                    None
                }
            })
        };
        let data = field(DATA);
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

        let data = parse(DATA, data, &mut errors);
        if data.is_none() && errors.is_empty() {
            errors.push(ConfigError(format!(
                "no data directory: set `{}` in the config file, {} or {} (made by `sealdrop-hub init`)",
                DATA.name, DATA.env, DATA.flag
            )));
        }
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
            listen,
            tls,
            max_upload_bytes: match max_upload {
                Some(Value::Bytes(n)) => n,
                _ => DEFAULT_MAX_UPLOAD_BYTES,
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

/// A parsed setting value.
#[derive(Debug, Clone, PartialEq)]
enum Value {
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
}

/// Parses one setting's text; the error says what is expected.
fn parse_value(key: &Key, text: &str) -> Result<Value, String> {
    let text = text.trim();
    match key.name {
        "data" | "tls_cert" | "tls_key" => {
            if text.is_empty() {
                Err("it is empty; give a path".to_owned())
            } else {
                Ok(Value::Path(PathBuf::from(text)))
            }
        }
        "listen" | "metrics_listen" => text
            .parse()
            .map(Value::Addr)
            .map_err(|_| "give an IP address and port, e.g. 127.0.0.1:8443 or [::]:8443".to_owned()),
        "max_upload_bytes" => match text.parse::<u64>() {
            Ok(0) => Err("it must be at least 1 byte".to_owned()),
            Ok(n) => Ok(Value::Bytes(n)),
            Err(_) => Err("give a whole number of bytes, e.g. 68719476736 for 64 GiB".to_owned()),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(pairs: &[(&'static str, &str)]) -> Layer {
        pairs.iter().map(|(k, v)| (*k, (*v).to_owned())).collect()
    }

    fn sources(flags: &[(&'static str, &str)], env: &[(&'static str, &str)], file: &[(&'static str, &str)]) -> Sources {
        Sources {
            flags: layer(flags),
            env: layer(env),
            file: Some((PathBuf::from("/etc/sealdrop/hub.toml"), layer(file))),
        }
    }

    fn messages(errors: Vec<ConfigError>) -> String {
        errors.iter().map(|e| e.0.clone()).collect::<Vec<_>>().join("\n")
    }

    #[test]
    fn flags_beat_the_environment_which_beats_the_file_which_beats_the_default() {
        fn all(v: &str) -> [(&'static str, &str); 1] {
            [("listen", v)]
        }
        let file = [("data", "/srv/hub"), ("listen", "127.0.0.1:3")];
        let r = sources(&all("127.0.0.1:1"), &all("127.0.0.1:2"), &file).resolve().unwrap();
        assert_eq!(r.settings.listen.port(), 1);
        assert_eq!(r.origins["listen"], Source::Flag);
        let r = sources(&[], &all("127.0.0.1:2"), &file).resolve().unwrap();
        assert_eq!((r.settings.listen.port(), &r.origins["listen"]), (2, &Source::Env));
        let r = sources(&[], &[], &file).resolve().unwrap();
        assert_eq!(r.settings.listen.port(), 3);
        assert_eq!(r.origins["listen"], Source::File("/etc/sealdrop/hub.toml".into()));
        let r = sources(&[], &[], &[("data", "/srv/hub")]).resolve().unwrap();
        assert_eq!(r.settings.listen, DEFAULT_LISTEN.parse().unwrap());
        assert_eq!(r.origins["listen"], Source::Default);
        // Each key on its own: a flag for one does not hide the file's others.
        let r = sources(
            &[("log_format", "json")],
            &[("shutdown_grace", "5")],
            &[("data", "/srv/hub"), ("log_format", "text"), ("shutdown_grace", "9"), ("sweep_interval", "2.5")],
        )
        .resolve()
        .unwrap();
        assert_eq!(r.settings.log_format, LogFormat::Json);
        assert_eq!(r.settings.shutdown_grace, Duration::from_secs(5));
        assert_eq!(r.settings.sweep_interval, Duration::from_millis(2500));
        assert_eq!(r.settings.data, PathBuf::from("/srv/hub"));
    }

    #[test]
    fn defaults() {
        let r = sources(&[("data", "d")], &[], &[]).resolve().unwrap();
        let s = r.settings;
        assert_eq!(s.tls, None);
        assert_eq!(s.metrics_listen, None);
        assert_eq!(s.max_upload_bytes, DEFAULT_MAX_UPLOAD_BYTES);
        assert_eq!(s.sweep_interval, DEFAULT_SWEEP_INTERVAL);
        assert_eq!(s.shutdown_grace, DEFAULT_SHUTDOWN_GRACE);
        assert_eq!(s.header_read_timeout, Duration::from_secs(5));
        assert_eq!(s.body_idle_timeout, Duration::from_secs(60));
        assert_eq!(s.upload_resume_window, Duration::from_secs(86_400));
        assert_eq!((s.log_format, s.log_filter.as_str()), (LogFormat::Text, "info"));
        assert_eq!(s.rate_limits, RateLimits::default());
        assert_eq!(s.log_access, LogAccess::Members, "the log is for members unless the operator opts in");
        assert_eq!(s.rate_limits.loopback, Loopback::Limit, "nobody is exempt by default");
        assert!(s.trusted_proxies.is_empty());
        assert_eq!(s.connections, ConnectionLimits { total: 512, per_address: 64 });
        assert_eq!(s.quotas, Quotas { held_bytes: 128 << 30, open_uploads: 16 });
    }

    #[test]
    fn the_log_is_made_public_only_by_saying_so() {
        let r = sources(&[], &[], &[("data", "d"), ("log_access", "public")]).resolve().unwrap();
        assert_eq!(r.settings.log_access, LogAccess::Public);
        let r =
            sources(&[("log_access", "members")], &[], &[("data", "d"), ("log_access", "public")]).resolve().unwrap();
        assert_eq!((r.settings.log_access, &r.origins["log_access"]), (LogAccess::Members, &Source::Flag));
        assert!(
            r.describe().lines().any(|l| l.starts_with("log_access = \"members\"") && l.ends_with("# --log-access"))
        );
        let text = messages(sources(&[], &[("log_access", "yes")], &[("data", "d")]).resolve().unwrap_err());
        assert!(text.contains("SEALDROP_HUB_LOG_ACCESS = \"yes\" is not valid: give `members`"), "{text}");
        assert_eq!(text.lines().count(), 1, "{text}");
    }

    #[test]
    fn connection_caps_proxies_and_quotas_from_every_source() {
        let r = sources(
            &[("max_connections", "100"), ("trusted_proxies", "127.0.0.1, 10.0.0.0/8")],
            &[("max_connections_per_address", "4"), ("max_open_uploads_per_party", "3")],
            &[("data", "d"), ("max_held_bytes_per_party", "1048576")],
        )
        .resolve()
        .unwrap();
        let s = &r.settings;
        assert_eq!(s.connections, ConnectionLimits { total: 100, per_address: 4 });
        assert_eq!(s.quotas, Quotas { held_bytes: 1 << 20, open_uploads: 3 });
        assert!(s.trusted_proxies.contains("10.9.9.9".parse().unwrap()));
        let text = r.describe();
        assert!(text.contains("trusted_proxies = \"127.0.0.1/32, 10.0.0.0/8\""), "{text}");
        assert!(text.contains("max_connections = 100"), "{text}");
        assert!(text.contains("max_held_bytes_per_party = 1048576"), "{text}");
        let reparsed = parse_file(&text, Path::new("/etc/sealdrop/hub.toml")).unwrap();
        assert_eq!(reparsed["trusted_proxies"], "127.0.0.1/32, 10.0.0.0/8");
        let text = messages(
            sources(
                &[("trusted_proxies", "127.0.0.1, my-proxy")],
                &[("max_connections", "0"), ("max_open_uploads_per_party", "none")],
                &[("data", "d"), ("max_held_bytes_per_party", "0")],
            )
            .resolve()
            .unwrap_err(),
        );
        assert_eq!(text.lines().count(), 4, "{text}");
        assert!(text.contains("--trusted-proxies") && text.contains("\"my-proxy\" is not an IP address"), "{text}");
        assert!(text.contains("SEALDROP_HUB_MAX_CONNECTIONS = \"0\""), "{text}");
        assert!(text.contains("key `max_held_bytes_per_party`"), "{text}");
    }

    #[test]
    fn rate_limits_from_every_source_and_zero_turns_one_off() {
        let r = sources(
            &[("rate_limit_per_party", "7")],
            &[("rate_limit_per_address_burst", "9"), ("rate_limit_loopback", "limit")],
            &[("data", "d"), ("rate_limit_per_address", "0"), ("rate_limit_per_party_burst", "11")],
        )
        .resolve()
        .unwrap();
        let limits = r.settings.rate_limits;
        assert_eq!(limits.per_address, None, "a rate of 0 turns the limit off");
        assert_eq!(limits.per_party, Some(Rate { per_second: 7.0, burst: 11 }));
        assert_eq!(limits.loopback, Loopback::Limit);
        assert_eq!(r.origins["rate_limit_per_party"], Source::Flag);
        // A burst alone keeps the default rate.
        let r = sources(&[], &[("rate_limit_per_address_burst", "9")], &[("data", "d")]).resolve().unwrap();
        assert_eq!(
            r.settings.rate_limits.per_address,
            Some(Rate { per_second: DEFAULT_PER_ADDRESS.per_second, burst: 9 })
        );
        let text = messages(
            sources(
                &[("rate_limit_per_address", "-1"), ("rate_limit_per_party_burst", "0")],
                &[("rate_limit_loopback", "yes")],
                &[("data", "d")],
            )
            .resolve()
            .unwrap_err(),
        );
        assert!(text.contains("--rate-limit-per-address = \"-1\" is not valid: give a number of requests"), "{text}");
        assert!(text.contains("--rate-limit-per-party-burst = \"0\""), "{text}");
        assert!(text.contains("SEALDROP_HUB_RATE_LIMIT_LOOPBACK = \"yes\"") && text.contains("`exempt`"), "{text}");
        assert_eq!(text.lines().count(), 3, "{text}");
    }

    #[test]
    fn the_environment_layer_reads_only_sealdrop_hub_variables() {
        let env = |name: &str| match name {
            "SEALDROP_HUB_LISTEN" => Some(OsString::from("0.0.0.0:9000")),
            "SEALDROP_HUB_LOG_FORMAT" => Some(OsString::from("  ")),
            _ => None,
        };
        let layer = env_layer(env).unwrap();
        assert_eq!(layer, super::Layer::from([("listen", "0.0.0.0:9000".to_owned())]));
    }

    #[test]
    fn every_bad_value_is_reported_with_its_source() {
        let errors = sources(
            &[("listen", "localhost")],
            &[("max_upload_bytes", "lots")],
            &[
                ("data", "/srv/hub"),
                ("sweep_interval", "0"),
                ("log_format", "xml"),
                ("shutdown_grace", "-1"),
                ("log_filter", "info,[[["),
            ],
        )
        .resolve()
        .unwrap_err();
        let text = messages(errors);
        for needle in [
            "--listen = \"localhost\" is not valid",
            "SEALDROP_HUB_MAX_UPLOAD_BYTES = \"lots\"",
            "/etc/sealdrop/hub.toml key `sweep_interval` = \"0\"",
            "key `log_format` = \"xml\" is not valid: give `text` or `json`",
            "key `shutdown_grace`",
            "key `log_filter`",
        ] {
            assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
        }
        assert_eq!(text.lines().count(), 6, "one line per problem:\n{text}");
    }

    #[test]
    fn timeouts_and_the_resume_window_have_bounds() {
        let r = sources(
            &[("header_read_timeout", "0.5")],
            &[("body_idle_timeout", "2")],
            &[("data", "d"), ("upload_resume_window", "3600")],
        )
        .resolve()
        .unwrap();
        assert_eq!(r.settings.header_read_timeout, Duration::from_millis(500));
        assert_eq!(r.settings.body_idle_timeout, Duration::from_secs(2));
        assert_eq!(r.settings.upload_resume_window, Duration::from_secs(3600));
        let text = messages(
            sources(
                &[("header_read_timeout", "0")],
                &[("body_idle_timeout", "forever")],
                &[("data", "d"), ("upload_resume_window", "172800")],
            )
            .resolve()
            .unwrap_err(),
        );
        assert_eq!(text.lines().count(), 3, "{text}");
        assert!(text.contains("--header-read-timeout = \"0\""), "{text}");
        assert!(text.contains("SEALDROP_HUB_BODY_IDLE_TIMEOUT"), "{text}");
        assert!(text.contains("key `upload_resume_window`") && text.contains("from 60 to 86400"), "{text}");
    }

    #[test]
    fn tls_needs_both_files_and_metrics_its_own_address() {
        let text = messages(sources(&[("tls_cert", "c.pem")], &[], &[("data", "d")]).resolve().unwrap_err());
        assert!(text.contains("no private key"), "{text}");
        let text = messages(sources(&[("tls_key", "k.pem")], &[], &[("data", "d")]).resolve().unwrap_err());
        assert!(text.contains("no certificate"), "{text}");
        let r = sources(&[("tls_key", "k.pem")], &[("tls_cert", "c.pem")], &[("data", "d")]).resolve().unwrap();
        assert_eq!(r.settings.tls, Some(TlsFiles { cert: "c.pem".into(), key: "k.pem".into() }));
        let same = [("listen", "127.0.0.1:8443"), ("metrics_listen", "127.0.0.1:8443")];
        let text = messages(sources(&same, &[], &[("data", "d")]).resolve().unwrap_err());
        assert!(text.contains("address of its own"), "{text}");
    }

    #[test]
    fn a_data_directory_is_required() {
        let text = messages(Sources::default().resolve().unwrap_err());
        assert!(text.contains("no data directory") && text.contains("SEALDROP_HUB_DATA"), "{text}");
    }

    #[test]
    fn the_file_refuses_unknown_keys_by_name_and_resolves_relative_paths() {
        let path = Path::new("/etc/sealdrop/hub.toml");
        let text = messages(parse_file("data = \"x\"\nlisten_addr = \"127.0.0.1:1\"\n", path).unwrap_err());
        assert!(text.contains("unknown key `listen_addr`") && text.contains("/etc/sealdrop/hub.toml"), "{text}");
        let text = messages(parse_file("listen = [1]\n", path).unwrap_err());
        assert!(text.contains("`listen` is a array") || text.contains("`listen` is an array"), "{text}");
        let text = messages(parse_file("listen = \n", path).unwrap_err());
        assert!(text.contains("line 1") && text.contains("not valid TOML"), "{text}");
        assert_eq!(text.lines().count(), 1, "{text}");

        let layer = parse_file(
            "data = \"hub-data\"\ntls_cert = \"/abs/cert.pem\"\ntls_key = \"tls/key.pem\"\nmax_upload_bytes = 1024\nsweep_interval = 0.5\n",
            path,
        )
        .unwrap();
        assert_eq!(layer["data"], "/etc/sealdrop/hub-data");
        assert_eq!(layer["tls_cert"], "/abs/cert.pem");
        assert_eq!(layer["tls_key"], "/etc/sealdrop/tls/key.pem");
        assert_eq!(layer["max_upload_bytes"], "1024");
        assert_eq!(layer["sweep_interval"], "0.5");
    }

    #[test]
    fn describe_shows_each_value_and_its_source() {
        let r = sources(&[("listen", "127.0.0.1:9")], &[("log_format", "json")], &[("data", "/srv/hub")])
            .resolve()
            .unwrap();
        let text = r.describe();
        let line = |key: &str| text.lines().find(|l| l.starts_with(key) || l.starts_with(&format!("# {key}"))).unwrap();
        assert!(line("listen").contains("\"127.0.0.1:9\"") && line("listen").ends_with("# --listen"), "{text}");
        assert!(line("log_format").ends_with("# SEALDROP_HUB_LOG_FORMAT"), "{text}");
        assert!(line("data").ends_with("key `data`"), "{text}");
        assert!(line("tls_cert").starts_with("# tls_cert (not set)"), "{text}");
        assert!(line("shutdown_grace").contains("= 30") && line("shutdown_grace").ends_with("# default"), "{text}");
        // The output is itself a valid hub.toml.
        let reparsed = parse_file(&text, Path::new("/etc/sealdrop/hub.toml")).unwrap();
        assert_eq!(reparsed["listen"], "127.0.0.1:9");
    }
}
