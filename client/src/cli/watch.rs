//! `sealdrop watch`: its options, the `[watch]` and `[notify]` sections of
//! the config file they take precedence over, and the run.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::settings::Resolved;
use crate::config::ConfigFile;
use crate::error::{Error, ErrorCode, Result};
use crate::notify::{CommandSink, EmailSink, EventKind, NotifyConfig, WebhookFormat, WebhookSink};
use crate::watch::{WatchConfig, WatchOptions};

/// Seconds a file must stay unchanged before it is sent, by default.
const DEFAULT_SETTLE: u64 = 5;
/// Seconds an inbox request waits on the hub, by default (the hub's most).
const DEFAULT_POLL: u64 = 60;
/// Seconds between checks of sent drops, by default.
const DEFAULT_STATUS_INTERVAL: u64 = 300;

// `sealdrop watch`; its help is the command's in the table in cli/mod.rs.
#[derive(Debug, Args)]
pub(super) struct WatchArgs {
    /// The watch folder: outbox/, inbox/, sent/, failed/ (also `dir` under [watch] in the config file).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// One pass (send what is complete, fetch what waits, check acknowledgements), then exit:
    /// for cron or Windows Task Scheduler. Exits non-zero when anything was refused or is waiting.
    #[arg(long)]
    once: bool,
    /// Seconds a file must stay the same size and age before it is sent (default 5).
    #[arg(long, value_name = "SECS")]
    settle: Option<u64>,
    /// Seconds each inbox request waits on the hub for a new drop (default 60, the most; 0: no
    /// long-poll, the inbox is looked at every 15 seconds).
    #[arg(long, value_name = "SECS")]
    poll: Option<u64>,
    /// Seconds between checks of sent drops for acknowledgements and non-delivery (default 300).
    #[arg(long, value_name = "SECS")]
    status_interval: Option<u64>,
    /// Also merge each pass's CSV parts per agreement into inbox/merged/<agreement>-<time>.csv.
    #[arg(long)]
    merge_csv: bool,
    /// Serve /healthz, /metrics and /status on this address, e.g. 127.0.0.1:9477.
    #[arg(long, value_name = "ADDR")]
    status_listen: Option<SocketAddr>,
    /// Run this program on each event (no shell; the event as JSON on stdin).
    #[arg(long, value_name = "PROGRAM")]
    notify_command: Option<PathBuf>,
    /// POST each event to this webhook URL (Microsoft Teams, Slack).
    #[arg(long, value_name = "URL")]
    notify_webhook: Option<String>,
    /// The webhook's JSON: slack (`{"text"}`, also Teams' incoming-webhook connectors), teams (an
    /// Adaptive Card for a Teams Workflows webhook) or json (the event itself).
    #[arg(long, value_name = "FORMAT", requires = "notify_webhook", value_parser = parse_format)]
    notify_webhook_format: Option<WebhookFormat>,
    /// Mail each event to these addresses, comma-separated (with --smtp-server and --smtp-from).
    #[arg(long, value_name = "ADDRS", value_delimiter = ',', requires = "smtp_server")]
    notify_email: Vec<String>,
    /// The SMTP submission server, HOST[:PORT] (default port 587); STARTTLS is required.
    #[arg(long, value_name = "HOST:PORT")]
    smtp_server: Option<String>,
    /// The sender address of notification mails.
    #[arg(long, value_name = "ADDR")]
    smtp_from: Option<String>,
    /// A PEM file of CA certificates to trust for the SMTP server (a council relay with a private CA).
    #[arg(long, value_name = "FILE")]
    smtp_ca: Option<PathBuf>,
    /// Only these events are told, comma-separated: arrived, acknowledged, undelivered,
    /// send_failed, fetch_failed, log_check_failed (default: all).
    #[arg(long, value_name = "LIST", value_delimiter = ',', value_parser = parse_event)]
    notify_events: Vec<EventKind>,
    /// Put file names (and failure messages, which may name a file) into notifications.
    #[arg(long)]
    notify_file_names: bool,
}

fn parse_format(text: &str) -> std::result::Result<WebhookFormat, String> {
    text.parse::<WebhookFormat>().map_err(|e| e.to_string())
}

fn parse_event(text: &str) -> std::result::Result<EventKind, String> {
    text.parse::<EventKind>().map_err(|e| e.to_string())
}

impl WatchArgs {
    pub(super) fn run(self, resolved: &Resolved, out: &mut dyn Write) -> Result<ExitCode> {
        let file = ConfigFile::load(&resolved.config_path)?;
        let options = self.options(file.watch.unwrap_or_default(), file.notify.unwrap_or_default())?;
        let once = options.once;
        let summary = crate::watch::run(&resolved.settings, options)?;
        if once {
            super::print(out, &super::json_text(&summary, false)?)?;
        }
        Ok(ExitCode::SUCCESS)
    }

    /// The options: flags first, then the config file's sections, then the defaults.
    fn options(self, file: WatchConfig, mut notify: NotifyConfig) -> Result<WatchOptions> {
        let dir = self.dir.or(file.dir).ok_or_else(|| {
            Error::new(
                ErrorCode::Usage,
                "no watch folder: give --dir DIR (or `dir` under [watch] in the config file); see docs/watch.md",
            )
        })?;
        let events = (!self.notify_events.is_empty()).then_some(self.notify_events);
        if let Some(program) = self.notify_command {
            notify.command = Some(CommandSink { program, args: vec![], events: events.clone() });
        }
        if let Some(url) = self.notify_webhook {
            notify.webhook = Some(WebhookSink {
                url,
                format: self.notify_webhook_format.unwrap_or_default(),
                events: events.clone(),
            });
        }
        if !self.notify_email.is_empty() {
            let from = self.smtp_from.ok_or_else(|| {
                Error::new(ErrorCode::Usage, "--notify-email needs --smtp-from ADDR, the sender address of the mails")
            })?;
            notify.email = Some(EmailSink {
                smtp_server: self.smtp_server.unwrap_or_default(),
                from,
                to: self.notify_email,
                username: None,
                password_file: None,
                ca_file: self.smtp_ca,
                events,
            });
        }
        notify.include_file_names |= self.notify_file_names;
        let secs =
            |flag: Option<u64>, file: Option<u64>, default: u64| Duration::from_secs(flag.or(file).unwrap_or(default));
        Ok(WatchOptions {
            dir,
            once: self.once,
            settle: secs(self.settle, file.settle, DEFAULT_SETTLE),
            poll: secs(self.poll, file.poll, DEFAULT_POLL),
            status_interval: secs(self.status_interval, file.status_interval, DEFAULT_STATUS_INTERVAL),
            merge_csv: self.merge_csv || file.merge_csv.unwrap_or(false),
            status_listen: self.status_listen.or(file.status_listen),
            notify,
        })
    }
}
