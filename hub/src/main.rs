//! `sealdrop-hub`: initialise a hub's data directory, serve it, check its
//! serve settings, back it up and restore it, print its transfer log's
//! verifier key, or print its own completions and man pages.
//!
//! Thin on purpose: it parses arguments, calls the library, and reports
//! errors on stderr, one line each, `error[<code>]: <message>` where the
//! error has a stable code (`error: <message>` where it has none yet),
//! with a non-zero exit.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory as _, Parser, Subcommand};
use sealdrop_hub::check_config::{self, Problem};
use sealdrop_hub::config::{self, LogFormat, ServeSettings};
use sealdrop_hub::{Hub, HubConfig, InitOptions, ServeOptions};
use sealdrop_proto::clock::{TEST_CLOCK_ENV, clock_from_env};

#[derive(Parser)]
#[command(name = "sealdrop-hub", version, about = "Stores and relays age ciphertext between councils.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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
    },
    /// Print the transfer log's verifier key (`<origin>+<key id>+<base64>`), for
    /// the coordinator's directory (`hub.log_key`) and for auditors.
    VerifierKey {
        /// The hub's data directory.
        #[arg(long, value_name = "DIR", env = "SEALDROP_HUB_DATA")]
        data: PathBuf,
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
enum TlsCommand {
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
struct ServeArgs {
    /// The config file, TOML [env: SEALDROP_HUB_CONFIG].
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The hub's data directory, made by `init` [data] [env: SEALDROP_HUB_DATA].
    #[arg(long, value_name = "DIR")]
    data: Option<String>,
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
    fn resolve(&self) -> Result<config::Resolved, Vec<config::ConfigError>> {
        use config::*;
        let flags = flag_layer(&[
            (DATA, self.data.clone()),
            (LISTEN, self.listen.clone()),
            (TLS_CERT, self.tls_cert.clone()),
            (TLS_KEY, self.tls_key.clone()),
            (MAX_UPLOAD_BYTES, self.max_upload_bytes.clone()),
            (MAX_HELD_BYTES_PER_PARTY, self.max_held_bytes_per_party.clone()),
            (MAX_OPEN_UPLOADS_PER_PARTY, self.max_open_uploads_per_party.clone()),
            (TRUSTED_PROXIES, self.trusted_proxies.clone()),
            (MAX_CONNECTIONS, self.max_connections.clone()),
            (MAX_CONNECTIONS_PER_ADDRESS, self.max_connections_per_address.clone()),
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
fn resolve_layers(config: Option<PathBuf>, flags: config::Layer) -> Result<config::Resolved, Vec<config::ConfigError>> {
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

/// One error line: `error[<code>]: <message>`, or `error: <message>`
/// where the error has no code yet.
struct Failure {
    code: Option<&'static str>,
    message: String,
}

impl Failure {
    fn coded(code: &'static str, message: impl std::fmt::Display) -> Self {
        Self { code: Some(code), message: message.to_string() }
    }
}

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Self { code: None, message }
    }
}

impl From<Problem> for Failure {
    fn from(p: Problem) -> Self {
        Self::coded(p.code, p.message)
    }
}

/// `init --origin`: a URL (`https://hub.example/`) is refused, naming the
/// value meant. Refused rather than quietly trimmed because the origin is for
/// good: it names the transfer log in every checkpoint and in the log's
/// verifier key that coordinators and auditors pin, so the operator should
/// see and type exactly what is stored.
fn origin_name(text: &str) -> Result<String, String> {
    let name = text.split_once("://").map_or(text, |(_, rest)| rest).trim_end_matches('/');
    if name == text {
        return Ok(text.to_owned());
    }
    if name.is_empty() {
        return Err(
            "the origin is a name, not a URL: give the hub's host name, e.g. --origin hub.example.gov.uk".into()
        );
    }
    Err(format!(
        "the origin is a name, not a URL (no scheme, no trailing /): use --origin {name} (it names this hub's transfer log for good)"
    ))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Serve(args) => serve(&args),
        Command::CheckConfig(args) => check_config(&args),
        other => {
            // One-shot commands print what they did on stdout; their log
            // (e.g. "Database migrated") is only worth showing when something
            // is wrong. `serve` logs at its configured filter (`log_filter`).
            init_logging(LogFormat::Text, tracing_subscriber::EnvFilter::new(ONE_SHOT_LOG_FILTER));
            run(other).map_err(|e| vec![e])
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failures) => {
            for Failure { code, message } in failures {
                match code {
                    Some(code) => eprintln!("error[{code}]: {message}"),
                    None => eprintln!("error: {message}"),
                }
            }
            ExitCode::FAILURE
        }
    }
}

/// The log filter of every command but `serve` and `check-config`: warnings and errors only.
const ONE_SHOT_LOG_FILTER: &str = "warn";

/// Log lines go to stderr, as text (coloured only on a terminal) or as one
/// JSON object per line with the request span's fields (method, route,
/// party, member, drop) beside the event's.
fn init_logging(format: LogFormat, filter: tracing_subscriber::EnvFilter) {
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).with_span_list(false).init(),
    }
}

fn messages(errors: Vec<config::ConfigError>) -> Vec<Failure> {
    errors.into_iter().map(|e| Failure::from(e.0)).collect()
}

/// The data directory the flag, the environment or the config file names
/// (as `serve` finds it), for commands that only need that.
fn resolve_data(config: Option<PathBuf>, data: Option<String>) -> Result<PathBuf, Failure> {
    let flags = config::flag_layer(&[(config::DATA, data)]);
    resolve_layers(config, flags).map(|r| r.settings.data).map_err(|errors| {
        let lines: Vec<String> = errors.into_iter().map(|e| e.0).collect();
        Failure::from(lines.join("; "))
    })
}

fn run(command: Command) -> Result<(), Failure> {
    match command {
        Command::Init { data, origin, authority, directory } => {
            let authority = sealdrop_hub::init::read_authority(&authority).map_err(|e| e.to_string())?;
            let directory_note = sealdrop_hub::init::read_directory_file(&directory).map_err(|e| e.to_string())?;
            let opts = InitOptions { data_dir: data.clone(), origin, authority, directory_note };
            // The test clock too, so a test's log starts at its clock's time.
            let clock = clock_from_env();
            sealdrop_hub::init(&opts, clock.as_ref()).map_err(|e| e.to_string())?;
            let hub = Hub::open(&data, clock).map_err(|e| e.to_string())?;
            println!("initialised hub {} in {}", hub.origin(), data.display());
            println!("  database:   {}", data.join(sealdrop_hub::hub::DB_FILE).display());
            println!("  directory:  serial {} (authority {})", hub.directory().directory.serial, hub.authority());
            println!("  log key:    {} (private, mode 0600)", data.join(sealdrop_hub::log_key::LOG_KEY_FILE).display());
            println!("  log verifier key: {}", hub.log_verifier());
            println!(
                "  the coordinator can list it in the directory's `hub` field (origin {:?}, log_key as above) \
                 so clients and auditors can check this hub's transfer log; \
                 `sealdrop-hub verifier-key --data {}` prints it again",
                hub.origin(),
                data.display()
            );
            Ok(())
        }
        Command::VerifierKey { data } => {
            let key = sealdrop_hub::read_log_verifier(&data).map_err(|e| e.to_string())?;
            println!("{key}");
            Ok(())
        }
        Command::Backup { config, data, to } => {
            let data = resolve_data(config, data)?;
            let clock = clock_from_env();
            let report = sealdrop_hub::backup::backup(&data, &to, clock.as_ref()).map_err(|e| e.to_string())?;
            println!("backed up hub {} into {}", report.origin, to.display());
            println!("  transfer log: {} entries (its newest checkpoint is in the manifest)", report.log_size);
            println!("  committed drops: {}", report.committed_drops);
            println!(
                "  files: {} ({} bytes), from {} database snapshot(s)",
                report.files, report.bytes, report.snapshots
            );
            println!("  the backup holds the hub's log key: store it encrypted and as guarded as the hub itself");
            Ok(())
        }
        Command::Restore { from, data } => {
            let report = sealdrop_hub::backup::restore(&from, &data, clock_from_env()).map_err(|e| e.to_string())?;
            println!("restored hub {} into {} from the backup of {}", report.origin, data.display(), report.created);
            println!("  transfer log: {} entries, verified against its signed checkpoint", report.log_size);
            println!(
                "  committed drops: {} (every ciphertext matches the hash it was committed with)",
                report.committed_drops
            );
            println!(
                "  directory: serial {}; if the coordinator published a newer one since the backup, clients refuse \
                 this hub (directory_rollback) until that directory is published to it again",
                report.directory_serial
            );
            println!(
                "  serve it with `sealdrop-hub serve --data {}`; drops committed after the backup are lost, and \
                 clients that saw a later checkpoint will report the log as rolled back (see docs/operations.md)",
                data.display()
            );
            Ok(())
        }
        Command::Tls { command: TlsCommand::SelfSigned { hosts, cert, key, days, port } } => {
            let made = sealdrop_hub::tls_cert::self_signed(&hosts, days, &cert, &key, clock_from_env().now())
                .map_err(|e| Failure::coded(e.code(), &e))?;
            println!(
                "wrote a self-signed TLS certificate for {} to {} (its key: {}, mode 0600), valid until {}",
                hosts.join(", "),
                cert.display(),
                key.display(),
                made.not_after
            );
            println!("  SHA-256 fingerprint: {}", made.fingerprint);
            println!("  serve with: sealdrop-hub serve --tls-cert {} --tls-key {}", cert.display(), key.display());
            println!(
                "  give each client the certificate (it is public), confirm this fingerprint with them by another \
                 channel, and have them trust it:"
            );
            println!("    sealdrop init --hub https://{}:{port} --hub-ca {} ...", url_host(&hosts[0]), cert.display());
            Ok(())
        }
        Command::Completions { shell } => {
            sealdrop_cli_docs::write_completions(Cli::command(), shell, &mut std::io::stdout().lock())
                .map_err(|e| format!("cannot write the completion script to stdout: {e}").into())
        }
        Command::Man { out } => {
            let pages = sealdrop_cli_docs::write_man_pages(Cli::command(), &out, &[]).map_err(|e| {
                format!("cannot write the man pages into {}: {e}; choose a folder you can write to", out.display())
            })?;
            println!("wrote {} man pages into {}", pages.len(), out.display());
            Ok(())
        }
        Command::Serve(_) | Command::CheckConfig(_) => Err("serve and check-config are run by main".to_owned().into()),
    }
}

/// A host as it goes in a URL: an IPv6 address in brackets.
fn url_host(host: &str) -> String {
    match host.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) => format!("[{v6}]"),
        _ => host.to_owned(),
    }
}

/// `check-config`: resolve and check everything, print the effective settings.
fn check_config(args: &ServeArgs) -> Result<(), Vec<Failure>> {
    let resolved = args.resolve().map_err(messages)?;
    let report = check_config::check(&resolved.settings, clock_from_env().now())
        .map_err(|problems| problems.into_iter().map(Failure::from).collect::<Vec<_>>())?;
    print!("{}", resolved.describe());
    println!("# the configuration is usable; the hub's log verifier key is {}", report.log_verifier);
    Ok(())
}

fn serve(args: &ServeArgs) -> Result<(), Vec<Failure>> {
    let settings = args.resolve().map_err(messages)?.settings;
    let filter =
        tracing_subscriber::EnvFilter::try_new(&settings.log_filter).map_err(|e| vec![Failure::from(e.to_string())])?;
    init_logging(settings.log_format, filter);
    serve_settings(settings)
}

fn serve_settings(settings: ServeSettings) -> Result<(), Vec<Failure>> {
    if std::env::var_os(TEST_CLOCK_ENV).is_some_and(|v| !v.is_empty()) {
        tracing::warn!("{TEST_CLOCK_ENV} is set: the hub reads the time from a test clock file, not the system clock");
    }
    // A test hook (see `sealdrop_hub::failpoint`): said loudly, and a point that does not exist stops the start.
    if let Some(armed) = sealdrop_hub::failpoint::armed().map_err(|e| vec![Failure::from(e)])? {
        let env = sealdrop_hub::failpoint::ENV;
        tracing::warn!(point = armed.point, hit = armed.on_hit, "{env} is set: the hub aborts at this test fail point");
    }
    let clock = clock_from_env();
    // Checked before anything else, as check-config checks them, so a
    // certificate clients would refuse stops the start.
    let problems = check_config::tls_problems(&settings, clock.now());
    if !problems.is_empty() {
        return Err(problems.into_iter().map(Failure::from).collect());
    }
    let tls = match &settings.tls {
        Some(files) => Some(
            sealdrop_hub::tls::server_config(&files.cert, &files.key)
                .map_err(|e| vec![Failure::coded(e.code(), format!("TLS: {e}"))])?,
        ),
        None => None,
    };
    // One serve per data directory, and the listeners bound, before any
    // start-up work touches the directory (cleanup, the catch-up sweep): a
    // second serve by mistake stops here having changed nothing.
    let _lock = sealdrop_hub::data_lock::lock(&settings.data).map_err(|e| vec![Failure::coded(e.code(), &e)])?;
    let listen = settings.listen;
    let listener = std::net::TcpListener::bind(listen).map_err(|e| {
        vec![Failure::coded("listen_failed", format!("cannot listen on {listen}: {e} (is another hub running?)"))]
    })?;
    let metrics =
        match settings.metrics_listen {
            Some(addr) => Some(std::net::TcpListener::bind(addr).map_err(|e| {
                vec![Failure::coded("listen_failed", format!("cannot listen for metrics on {addr}: {e}"))]
            })?),
            None => None,
        };
    // Enough file descriptors for every connection the cap admits, and the files.
    let open_files =
        sealdrop_hub::connections::raise_open_file_limit(settings.connections).map_err(|e| vec![Failure::from(e)])?;
    tracing::debug!(open_files, "the open-file limit");
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| vec![Failure::from(format!("cannot start the async runtime: {e}"))])?;
    let served: Result<(), String> = runtime.block_on(async move {
        let config = HubConfig {
            max_upload_bytes: settings.max_upload_bytes,
            sweep_interval: settings.sweep_interval,
            rate_limits: settings.rate_limits,
            body_idle_timeout: settings.body_idle_timeout,
            upload_resume_window: settings.upload_resume_window,
            log_access: settings.log_access,
            quotas: settings.quotas,
        };
        let hub = Hub::open(&settings.data, clock)
            .map_err(|e| e.to_string())?
            .with_config(config)
            .with_trusted_proxies(settings.trusted_proxies.clone());
        let tokio_listener = |listener: std::net::TcpListener| {
            listener
                .set_nonblocking(true)
                .and_then(|()| tokio::net::TcpListener::from_std(listener))
                .map_err(|e| format!("cannot use the listening socket: {e}"))
        };
        let listener = tokio_listener(listener)?;
        let metrics = metrics.map(tokio_listener).transpose()?;
        let mut bound = vec![listener.local_addr()];
        bound.extend(metrics.as_ref().map(tokio::net::TcpListener::local_addr));
        let mut stdout = std::io::stdout();
        for addr in bound {
            let addr = addr.map_err(|e| format!("cannot read the bound address: {e}"))?;
            writeln!(stdout, "{addr}").map_err(|e| format!("cannot write to stdout: {e}"))?;
        }
        stdout.flush().map_err(|e| format!("cannot write to stdout: {e}"))?;
        let options = ServeOptions {
            tls,
            metrics,
            shutdown_grace: settings.shutdown_grace,
            header_read_timeout: settings.header_read_timeout,
            connections: settings.connections,
        };
        sealdrop_hub::serve_with(listener, hub, options, shutdown_signal())
            .await
            .map_err(|e| format!("serving failed: {e}"))
    });
    served.map_err(|e| vec![Failure::from(e)])
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; stop the hub with SIGINT");
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
    tracing::info!("received a stop signal");
}
