//! `sealdrop-hub`: initialise a hub's data directory, serve it, print its
//! transfer log's verifier key, or print its own completions and man pages.
//!
//! Thin on purpose: it parses arguments, calls the library, and reports
//! errors as `error: <message>` on stderr with a non-zero exit.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory as _, Parser, Subcommand};
use sealdrop_hub::{DEFAULT_MAX_UPLOAD_BYTES, Hub, HubConfig, InitOptions};
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
        /// The hub's origin name, e.g. `hub.example.gov.uk/sealdrop`.
        #[arg(long, value_name = "NAME")]
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
    Serve {
        /// The hub's data directory.
        #[arg(long, value_name = "DIR", env = "SEALDROP_HUB_DATA")]
        data: PathBuf,
        /// Address to listen on; the bound address is printed as the first line.
        #[arg(long, value_name = "ADDR", env = "SEALDROP_HUB_LISTEN", default_value = "127.0.0.1:8443")]
        listen: SocketAddr,
        /// The largest ciphertext accepted for one drop, in bytes.
        #[arg(long, value_name = "BYTES", env = "SEALDROP_HUB_MAX_UPLOAD_BYTES", default_value_t = DEFAULT_MAX_UPLOAD_BYTES)]
        max_upload_bytes: u64,
        /// How often to delete the ciphertext of drops whose expiry passed or
        /// whose agreement ended, in seconds (the hub also does it at start).
        #[arg(long, value_name = "SECONDS", env = "SEALDROP_HUB_SWEEP_INTERVAL", default_value = "60", value_parser = parse_interval)]
        sweep_interval: std::time::Duration,
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

/// A sweep interval: a positive number of seconds, at most a day.
fn parse_interval(s: &str) -> Result<std::time::Duration, String> {
    let secs: f64 = s.parse().map_err(|_| format!("`{s}` is not a number of seconds"))?;
    if !(0.05..=86_400.0).contains(&secs) {
        return Err(format!("{s} s is outside 0.05 to 86400 seconds"));
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
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
        Command::Serve { data, listen, max_upload_bytes, sweep_interval } => {
            serve(data, listen, HubConfig { max_upload_bytes, sweep_interval })
        }
        Command::Completions { shell } => {
            sealdrop_cli_docs::write_completions(Cli::command(), shell, &mut std::io::stdout().lock())
                .map_err(|e| format!("cannot write the completion script to stdout: {e}"))
        }
        Command::Man { out } => {
            let pages = sealdrop_cli_docs::write_man_pages(Cli::command(), &out, &[]).map_err(|e| {
                format!("cannot write the man pages into {}: {e}; choose a folder you can write to", out.display())
            })?;
            println!("wrote {} man pages into {}", pages.len(), out.display());
            Ok(())
        }
    }
}

fn serve(data: PathBuf, listen: SocketAddr, config: HubConfig) -> Result<(), String> {
    if std::env::var_os(TEST_CLOCK_ENV).is_some_and(|v| !v.is_empty()) {
        tracing::warn!("{TEST_CLOCK_ENV} is set: the hub reads the time from a test clock file, not the system clock");
    }
    let clock = clock_from_env();
    let runtime = tokio::runtime::Runtime::new().map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(async move {
        let hub = Hub::open(&data, clock).map_err(|e| e.to_string())?.with_config(config);
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| format!("cannot listen on {listen}: {e} (is another hub running?)"))?;
        let bound = listener.local_addr().map_err(|e| format!("cannot read the bound address: {e}"))?;
        let mut stdout = std::io::stdout();
        writeln!(stdout, "{bound}")
            .and_then(|()| stdout.flush())
            .map_err(|e| format!("cannot write to stdout: {e}"))?;
        sealdrop_hub::serve(listener, hub, shutdown_signal()).await.map_err(|e| format!("serving failed: {e}"))
    })
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
    tracing::info!("shutting down: finishing requests in flight");
}
