//! The command line: every command, and `serve`'s flags with the settings
//! they set.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use sealdrop_hub::config;

use sealdrop_hub::storage::{PostgresUrl, S3Location};

use crate::commands::{bucket_prefix, origin_name, postgres_url};

#[derive(Parser)]
#[command(name = "sealdrop-hub", version, about = "Stores and relays age ciphertext between councils.")]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Create a new hub data directory.
    Init {
        /// The data directory to create (must be new or empty).
        #[arg(long, value_name = "DIR", env = "SEALDROP_HUB_DATA")]
        data: PathBuf,
        /// The hub's origin name, e.g. `hub.example.gov.uk/sealdrop`: no scheme, no trailing `/`.
        #[arg(long, value_name = "NAME", value_parser = origin_name)]
        origin: String,
        /// The authority's signed-note verifier key, or a file containing it.
        #[arg(long, value_name = "KEY_OR_FILE")]
        authority: String,
        /// The first signed directory note.
        #[arg(long, value_name = "FILE")]
        directory: PathBuf,
        /// Where the metadata goes: `sqlite` (a file in DIR) or a PostgreSQL URL
        /// whose database holds no hub yet [default: sqlite].
        #[arg(long, value_name = "URL", env = "SEALDROP_HUB_DATABASE", hide_env_values = true)]
        database: Option<String>,
        /// Where ciphertexts go: `files` (in DIR) or s3://BUCKET/PREFIX, which must
        /// hold no objects yet [default: files].
        #[arg(long, value_name = "LOCATION", env = "SEALDROP_HUB_BLOBS")]
        blobs: Option<String>,
    },
    /// Print the transfer log's verifier key (`<origin>+<key id>+<base64>`), for
    /// the coordinator's directory (`hub.log_key`) and for auditors.
    VerifierKey {
        /// The hub's data directory.
        #[arg(long, value_name = "DIR", env = "SEALDROP_HUB_DATA")]
        data: PathBuf,
        /// The hub's database, when it is not the SQLite file in DIR: its PostgreSQL URL.
        #[arg(long, value_name = "URL", env = "SEALDROP_HUB_DATABASE", hide_env_values = true)]
        database: Option<String>,
    },
    /// Serve the API.
    ///
    /// Prints the API's bound address as the first stdout line, and the
    /// metrics listener's as the second when `metrics_listen` is set. On
    /// SIGTERM or SIGINT it stops accepting connections and lets requests in
    /// flight finish for up to `shutdown_grace` seconds.
    #[command(after_help = PRECEDENCE_HELP)]
    Serve(ServeArgs),
    /// Check the serve settings without serving: every value parses, the
    /// data directory is an initialised hub's, the TLS certificate and key
    /// parse and belong together. Prints the effective settings (as
    /// hub.toml lines, each with its source), or one `error:` line per
    /// problem and exits 1.
    #[command(after_help = PRECEDENCE_HELP)]
    CheckConfig(ServeArgs),
    /// Back up the hub, while it serves, into a new directory: a consistent
    /// snapshot of the database (drops, transfer log, small ciphertexts),
    /// the large ciphertext files of the drops committed in it, the log key,
    /// and a manifest with every file's SHA-256. Uploads in progress are not
    /// backed up. The backup holds the log key: keep it as safe as the hub.
    Backup {
        /// The config file `serve` uses, TOML; its `data` is backed up [env: SEALDROP_HUB_CONFIG].
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// The hub's data directory [data] [env: SEALDROP_HUB_DATA].
        #[arg(long, value_name = "DIR")]
        data: Option<String>,
        /// Where to write the backup (must be new or empty).
        #[arg(long, value_name = "DIR")]
        to: PathBuf,
    },
    /// Restore a backup made by `backup` into a new data directory, after
    /// checking every file against the backup's manifest, every committed
    /// ciphertext against its drop's hash, and the transfer log against its
    /// signed checkpoint. Then serve it with `serve --data DIR`.
    Restore {
        /// The backup directory.
        #[arg(long, value_name = "DIR")]
        from: PathBuf,
        /// The data directory to create (must be new or empty).
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
    },
    /// Move a stopped hub from its data directory (the SQLite database and the
    /// ciphertext files) to PostgreSQL and an S3-compatible object store, so
    /// that several instances can serve it. Copies every row, the transfer
    /// log, every committed ciphertext and the uploads in progress, then
    /// verifies the copy (every row compared, the log recomputed to the
    /// same checkpoint, every ciphertext's SHA-256) before it reports
    /// success. Refuses while a `serve` holds the data directory, and writes
    /// only into a database holding no hub and a bucket prefix holding no
    /// object. The data directory is never changed.
    #[command(after_help = "EXAMPLES:\n  sealdrop-hub migrate --data /var/lib/sealdrop \
                            --to postgres://sealdrop@db.internal/sealdrop --blobs s3://council-hub/blobs\n  \
                            set -a; . /etc/sealdrop/hub.env; set +a; \
                            sealdrop-hub migrate --data /var/lib/sealdrop --blobs s3://council-hub/blobs")]
    Migrate {
        /// The stopped hub's data directory.
        #[arg(long, value_name = "DIR", env = "SEALDROP_HUB_DATA")]
        data: PathBuf,
        /// The PostgreSQL database to copy into, postgres://USER@HOST:PORT/DATABASE (it must hold no hub); from the environment, its password stays out of process listings.
        #[arg(long, value_name = "postgres://...", value_parser = postgres_url, env = "SEALDROP_HUB_DATABASE", hide_env_values = true)]
        to: PostgresUrl,
        /// The bucket prefix to copy the ciphertexts into, s3://BUCKET/PREFIX (it must hold no object); endpoint, region and credentials from AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY.
        #[arg(long, value_name = "s3://BUCKET/PREFIX", value_parser = bucket_prefix, env = "SEALDROP_HUB_BLOBS")]
        blobs: S3Location,
    },
    /// Make the hub's TLS certificate.
    Tls {
        #[command(subcommand)]
        command: TlsCommand,
    },
    /// Print a shell completion script, e.g. `sealdrop-hub completions bash > /etc/bash_completion.d/sealdrop-hub`.
    Completions {
        /// The shell.
        shell: sealdrop_cli_docs::Shell,
    },
    /// Write the manual pages, one per command (`sealdrop-hub.1`, `sealdrop-hub-serve.1`, ...).
    Man {
        /// The folder to write them into, e.g. /usr/local/share/man/man1 (created if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
pub(crate) enum TlsCommand {
    /// Make a self-signed TLS certificate and key for the hub: an
    /// end-entity certificate (not a CA) naming each --host in its
    /// subjectAltName, for serverAuth, with a new ECDSA P-256 key (mode
    /// 0600). Prints its SHA-256 fingerprint and how clients trust it.
    /// Never overwrites a file.
    #[command(after_help = "EXAMPLES:\n  sealdrop-hub tls self-signed --host hub.example.gov.uk --host 10.0.0.5 \
                            --cert /etc/sealdrop/hub.crt --key /etc/sealdrop/hub.key")]
    SelfSigned {
        /// A name clients reach the hub by, a DNS name or an IP address (repeat for more); the first is also its common name.
        #[arg(long = "host", value_name = "NAME", required = true)]
        hosts: Vec<String>,
        /// Where to write the certificate, PEM (public: give it to clients).
        #[arg(long, value_name = "FILE")]
        cert: PathBuf,
        /// Where to write the private key, PEM, mode 0600.
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// Days the certificate is valid, from now.
        #[arg(long, value_name = "N", default_value_t = 365)]
        days: u32,
        /// The hub's port, for the client command printed.
        #[arg(long, value_name = "PORT", default_value_t = 8443)]
        port: u16,
    },
}

const PRECEDENCE_HELP: &str = "\
Settings come from four places; for each setting the first that gives it wins:
  1. its command-line flag,
  2. its SEALDROP_HUB_* environment variable,
  3. the config file (--config FILE or SEALDROP_HUB_CONFIG; TOML, keys as in [brackets] above),
  4. the default.
Unknown keys in the config file are refused. See docs/operations.md.";

/// Every setting of `serve` (also what `check-config` checks). Each is
/// text here and parsed by `sealdrop_hub::config`, the same way as from the
/// environment or the config file.
#[derive(Args)]
pub(crate) struct ServeArgs {
    /// The config file, TOML [env: SEALDROP_HUB_CONFIG].
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The hub's data directory, made by `init` [data] [env: SEALDROP_HUB_DATA].
    #[arg(long, value_name = "DIR")]
    data: Option<String>,
    /// Where ciphertexts are kept: `files` (in the data directory) or s3://BUCKET/PREFIX (an S3-compatible object store several instances share; endpoint, region and credentials from AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) [blobs] [env: SEALDROP_HUB_BLOBS] [default: files].
    #[arg(long, value_name = "files|s3://BUCKET/PREFIX")]
    blobs: Option<String>,
    /// Address the API listens on [listen] [env: SEALDROP_HUB_LISTEN] [default: 127.0.0.1:8443].
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// TLS certificate chain, PEM, server certificate first; without it the hub speaks plain HTTP [tls_cert] [env: SEALDROP_HUB_TLS_CERT].
    #[arg(long, value_name = "FILE")]
    tls_cert: Option<String>,
    /// TLS private key, PEM [tls_key] [env: SEALDROP_HUB_TLS_KEY].
    #[arg(long, value_name = "FILE")]
    tls_key: Option<String>,
    /// The largest ciphertext accepted for one drop, in bytes [max_upload_bytes] [env: SEALDROP_HUB_MAX_UPLOAD_BYTES] [default: 68719476736].
    #[arg(long, value_name = "BYTES")]
    max_upload_bytes: Option<String>,
    /// Ciphertext bytes one party may have the hub hold, its committed drops and its uploads together; an upload that would pass it is refused (507 quota_held_bytes) [max_held_bytes_per_party] [env: SEALDROP_HUB_MAX_HELD_BYTES_PER_PARTY] [default: 137438953472].
    #[arg(long, value_name = "BYTES")]
    max_held_bytes_per_party: Option<String>,
    /// Uploads one party may have open at once, arriving or cut off and not committed (429 quota_open_uploads beyond) [max_open_uploads_per_party] [env: SEALDROP_HUB_MAX_OPEN_UPLOADS_PER_PARTY] [default: 16].
    #[arg(long, value_name = "N")]
    max_open_uploads_per_party: Option<String>,
    /// Seconds between deletions of drops whose expiry passed or whose agreement ended (also done at start) [sweep_interval] [env: SEALDROP_HUB_SWEEP_INTERVAL] [default: 60].
    #[arg(long, value_name = "SECONDS")]
    sweep_interval: Option<String>,
    /// Serve Prometheus metrics at http://ADDR/metrics; off unless set [metrics_listen] [env: SEALDROP_HUB_METRICS_LISTEN].
    #[arg(long, value_name = "ADDR")]
    metrics_listen: Option<String>,
    /// Log lines as `text` or `json` (one object per line) [log_format] [env: SEALDROP_HUB_LOG_FORMAT] [default: text].
    #[arg(long, value_name = "FORMAT")]
    log_format: Option<String>,
    /// Which log lines to write, e.g. `info` or `warn,sealdrop_hub=debug` [log_filter] [env: SEALDROP_HUB_LOG_FILTER] [default: info].
    #[arg(long, value_name = "FILTER")]
    log_filter: Option<String>,
    /// Seconds requests in flight may take to finish after SIGTERM before they are cut off [shutdown_grace] [env: SEALDROP_HUB_SHUTDOWN_GRACE] [default: 30].
    #[arg(long, value_name = "SECONDS")]
    shutdown_grace: Option<String>,
    /// Requests a second from one source address (IPv6: one /64), before any authentication; 0 turns the limit off [rate_limit_per_address] [env: SEALDROP_HUB_RATE_LIMIT_PER_ADDRESS] [default: 5000].
    #[arg(long, value_name = "N")]
    rate_limit_per_address: Option<String>,
    /// Requests one source address may send at once after a quiet spell [rate_limit_per_address_burst] [env: SEALDROP_HUB_RATE_LIMIT_PER_ADDRESS_BURST] [default: 20000].
    #[arg(long, value_name = "N")]
    rate_limit_per_address_burst: Option<String>,
    /// Signed requests a second from one party (any of its members); 0 turns the limit off [rate_limit_per_party] [env: SEALDROP_HUB_RATE_LIMIT_PER_PARTY] [default: 200].
    #[arg(long, value_name = "N")]
    rate_limit_per_party: Option<String>,
    /// Signed requests one party may send at once after a quiet spell [rate_limit_per_party_burst] [env: SEALDROP_HUB_RATE_LIMIT_PER_PARTY_BURST] [default: 400].
    #[arg(long, value_name = "N")]
    rate_limit_per_party_burst: Option<String>,
    /// `limit`: loopback addresses are limited per address like any other; `exempt`: they are not (list a reverse proxy in --trusted-proxies instead) [rate_limit_loopback] [env: SEALDROP_HUB_RATE_LIMIT_LOOPBACK] [default: limit].
    #[arg(long, value_name = "limit|exempt")]
    rate_limit_loopback: Option<String>,
    /// Reverse proxies (addresses or CIDR networks, comma-separated) whose X-Forwarded-For names the client for the per-address limits; anyone else's is ignored [trusted_proxies] [env: SEALDROP_HUB_TRUSTED_PROXIES] [default: none].
    #[arg(long, value_name = "ADDRS")]
    trusted_proxies: Option<String>,
    /// Connections open at once; at the cap an idle or unauthenticated connection is closed to admit a new one [max_connections] [env: SEALDROP_HUB_MAX_CONNECTIONS] [default: 512].
    #[arg(long, value_name = "N")]
    max_connections: Option<String>,
    /// Connections open at once from one client address (IPv6: one /64); trusted proxies are exempt [max_connections_per_address] [env: SEALDROP_HUB_MAX_CONNECTIONS_PER_ADDRESS] [default: 64].
    #[arg(long, value_name = "N")]
    max_connections_per_address: Option<String>,
    /// Inbox requests that may wait for a drop at once (`GET /v1/inbox?wait=N`, a long-poll); beyond it a request answers at once; at most half of max_connections is used, as each holds a connection [max_inbox_waiters] [env: SEALDROP_HUB_MAX_INBOX_WAITERS] [default: 256].
    #[arg(long, value_name = "N")]
    max_inbox_waiters: Option<String>,
    /// The largest ciphertext the hub takes in one request (`PUT /v1/drops/{id}`: a small drop created, uploaded and committed at once); larger drops take three requests; each such request is held in memory; 0 turns it off [max_single_request_bytes] [env: SEALDROP_HUB_MAX_SINGLE_REQUEST_BYTES] [default: 1048576].
    #[arg(long, value_name = "BYTES")]
    max_single_request_bytes: Option<String>,
    /// Seconds a client may take to send a request's line and headers, and a kept-alive connection may stay idle, before it is disconnected (slowloris, idle connections) [header_read_timeout] [env: SEALDROP_HUB_HEADER_READ_TIMEOUT] [default: 5].
    #[arg(long, value_name = "SECONDS")]
    header_read_timeout: Option<String>,
    /// Seconds a request body (an upload) may send nothing before the hub stops waiting; an upload cut off this way keeps what arrived [body_idle_timeout] [env: SEALDROP_HUB_BODY_IDLE_TIMEOUT] [default: 60].
    #[arg(long, value_name = "SECONDS")]
    body_idle_timeout: Option<String>,
    /// Seconds an uncommitted upload (finished or cut off) is kept after its last activity, at most 86400 [upload_resume_window] [env: SEALDROP_HUB_UPLOAD_RESUME_WINDOW] [default: 86400].
    #[arg(long, value_name = "SECONDS")]
    upload_resume_window: Option<String>,
    /// Who may read the transfer log and the directory: `members` (members of the directory in force and the witnesses it lists, by signed request) or `public` (anyone; opt in only for a public transparency log) [log_access] [env: SEALDROP_HUB_LOG_ACCESS] [default: members].
    #[arg(long, value_name = "members|public")]
    log_access: Option<String>,
}

impl ServeArgs {
    /// Resolves the settings from the flags, the environment and the config file.
    pub(crate) fn resolve(&self) -> Result<config::Resolved, Vec<config::ConfigError>> {
        use config::*;
        let flags = flag_layer(&[
            (DATA, self.data.clone()),
            (BLOBS, self.blobs.clone()),
            (LISTEN, self.listen.clone()),
            (TLS_CERT, self.tls_cert.clone()),
            (TLS_KEY, self.tls_key.clone()),
            (MAX_UPLOAD_BYTES, self.max_upload_bytes.clone()),
            (MAX_HELD_BYTES_PER_PARTY, self.max_held_bytes_per_party.clone()),
            (MAX_OPEN_UPLOADS_PER_PARTY, self.max_open_uploads_per_party.clone()),
            (TRUSTED_PROXIES, self.trusted_proxies.clone()),
            (MAX_CONNECTIONS, self.max_connections.clone()),
            (MAX_CONNECTIONS_PER_ADDRESS, self.max_connections_per_address.clone()),
            (MAX_INBOX_WAITERS, self.max_inbox_waiters.clone()),
            (MAX_SINGLE_REQUEST_BYTES, self.max_single_request_bytes.clone()),
            (SWEEP_INTERVAL, self.sweep_interval.clone()),
            (METRICS_LISTEN, self.metrics_listen.clone()),
            (LOG_FORMAT, self.log_format.clone()),
            (LOG_FILTER, self.log_filter.clone()),
            (SHUTDOWN_GRACE, self.shutdown_grace.clone()),
            (RATE_LIMIT_PER_ADDRESS, self.rate_limit_per_address.clone()),
            (RATE_LIMIT_PER_ADDRESS_BURST, self.rate_limit_per_address_burst.clone()),
            (RATE_LIMIT_PER_PARTY, self.rate_limit_per_party.clone()),
            (RATE_LIMIT_PER_PARTY_BURST, self.rate_limit_per_party_burst.clone()),
            (RATE_LIMIT_LOOPBACK, self.rate_limit_loopback.clone()),
            (HEADER_READ_TIMEOUT, self.header_read_timeout.clone()),
            (BODY_IDLE_TIMEOUT, self.body_idle_timeout.clone()),
            (UPLOAD_RESUME_WINDOW, self.upload_resume_window.clone()),
            (LOG_ACCESS, self.log_access.clone()),
        ]);
        resolve_layers(self.config.clone(), flags)
    }
}

/// Resolves the settings from `flags`, the environment and the config file
/// (`config`, or the one SEALDROP_HUB_CONFIG names).
pub(crate) fn resolve_layers(
    config: Option<PathBuf>,
    flags: config::Layer,
) -> Result<config::Resolved, Vec<config::ConfigError>> {
    use config::*;
    let config_file = config.or_else(|| std::env::var_os(CONFIG_ENV).filter(|v| !v.is_empty()).map(PathBuf::from));
    let mut errors = Vec::new();
    let env = env_layer(|name| std::env::var_os(name)).unwrap_or_else(|e| {
        errors.extend(e);
        Layer::new()
    });
    let file = match config_file.map(|path| file_layer(&path).map(|layer| (path, layer))) {
        Some(Ok(file)) => Some(file),
        Some(Err(e)) => {
            errors.extend(e);
            None
        }
        None => None,
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    Sources { flags, env, file }.resolve()
}
