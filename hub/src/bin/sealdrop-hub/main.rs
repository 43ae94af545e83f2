//! `sealdrop-hub`: initialise a hub's data directory, serve it, check its
//! serve settings, back it up and restore it, move it to PostgreSQL and an
//! object store, print its transfer log's verifier key, or print its own
//! completions and man pages.
//!
//! Thin on purpose: it parses arguments, calls the library, and reports
//! errors on stderr, one line each, `error[<code>]: <message>` where the
//! error has a stable code (`error: <message>` where it has none yet),
//! with a non-zero exit.
//!
//! [`args`] is the command line, [`commands`] runs the one-shot commands,
//! and [`serve`] runs `serve` and `check-config`.

mod args;
mod commands;
mod serve;

use std::process::ExitCode;

use clap::Parser as _;
use sealdrop_hub::check_config::Problem;
use sealdrop_hub::config::{self, LogFormat};
use sealdrop_proto::error_code::ErrorCode;

use crate::args::{Cli, Command};

/// One error line: `error[<code>]: <message>`, or `error: <message>`
/// where the error has no code yet.
struct Failure {
    code: Option<&'static str>,
    message: String,
}

impl Failure {
    fn coded(code: ErrorCode, message: impl std::fmt::Display) -> Self {
        Self { code: Some(code.as_str()), message: message.to_string() }
    }
}

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Self { code: None, message }
    }
}

impl From<Problem> for Failure {
    fn from(p: Problem) -> Self {
        Self { code: Some(p.code), message: p.message }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Serve(args) => serve::serve(&args),
        Command::CheckConfig(args) => serve::check_config(&args),
        other => {
            // One-shot commands print what they did on stdout; their log
            // (e.g. "Database migrated") is only worth showing when something
            // is wrong. `serve` logs at its configured filter (`log_filter`).
            init_logging(LogFormat::Text, tracing_subscriber::EnvFilter::new(ONE_SHOT_LOG_FILTER));
            commands::run(other).map_err(|e| vec![e])
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
