//! The command line: parse, resolve settings, call the library, report.
//!
//! This module is the table of commands: the top-level [`Cli`], each
//! command's one-line help, and the dispatch that hands each parsed command
//! to the module of its group. Each group's module holds its options (clap
//! args) and a small `run` that turns them into a call of the library and
//! prints the outcome; nothing below `cli` parses arguments or prints for a
//! command.

use std::io::Write;
use std::process::ExitCode;

use clap::{CommandFactory as _, Parser, Subcommand};

use crate::error::{Error, ErrorCode, Kind, Result, USAGE_EXIT};

mod audit;
mod directory;
mod docs;
pub mod examples;
pub mod external;
mod fetch;
mod keys;
mod send;
mod settings;
mod status;
mod watch;
mod witness;

pub use docs::{exit_status_man_section, man_sections};

/// sealdrop: end-to-end encrypted exchange of councils' sensitive files.
#[derive(Debug, Parser)]
#[command(name = "sealdrop", version, after_help = crate::error::exit_codes_help())]
pub struct Cli {
    #[command(flatten)]
    global: settings::Global,
    #[command(subcommand)]
    command: Command,
}

/// Every command: those that act (they need the settings) and those that
/// describe the command line itself (they need nothing).
#[derive(Debug, Subcommand)]
enum Command {
    #[command(flatten)]
    Act(ActCommand),
    #[command(flatten)]
    Describe(docs::DescribeCommand),
}

#[derive(Debug, Subcommand)]
enum ActCommand {
    /// Save --hub, --identity, --authority, --state-dir and --hub-ca into the config file.
    Init,
    /// Create a member key pair and print its public key card for the coordinator.
    Keygen(keys::KeygenArgs),
    /// Work with your member key.
    #[command(subcommand)]
    Key(keys::KeyCommand),
    /// The coordinator's directory tools.
    #[command(subcommand)]
    Directory(directory::DirectoryCommand),
    /// Encrypt files and folders to the recipients' keys and send them as one drop.
    ///
    /// With --split-by, one CSV or XLSX file is split by a column instead:
    /// each row goes to the party its value names (party id, display name,
    /// full council name, or GSS code or DfE LA number exactly as written,
    /// resolved through the signed directory), each party's rows as a
    /// separate drop encrypted only to that party. A summary of what goes
    /// where is shown first and must be confirmed (or --yes); rows for your
    /// own party stay here, rows that match no party are written to
    /// `<stem>-unroutable.csv` and stop the send unless --allow-unroutable.
    /// Running the same command again after a failure, with the same member
    /// key, sends only the parts that are missing.
    #[command(verbatim_doc_comment)]
    Send(send::SendArgs),
    /// List drops waiting for your party.
    Inbox(fetch::InboxArgs),
    /// Download, verify and decrypt drops, then acknowledge them.
    ///
    /// Each drop's files and folders go straight into the output folder. When
    /// one of a drop's names is already there (or came with an earlier drop of
    /// the same run, as when several boroughs each send a part named
    /// `fsm-islington.csv`), the whole drop goes into a new folder named after
    /// the drop id, OUT/<drop id>/, instead. Nothing is ever replaced or merged
    /// into; a drop that cannot be placed is not acknowledged and stays in the
    /// inbox.
    Fetch(fetch::FetchArgs),
    /// The sender's view: each drop, each recipient's outcome, and non-deliveries.
    ///
    /// Per drop: state, agreement, size, commit time, expiry and, once it
    /// ended, when and why the hub deleted the ciphertext (with the file names
    /// when this client's journal knows them). Per recipient: acknowledged,
    /// fetched (not yet acknowledged), waiting, NOT DELIVERED (the drop ended
    /// before it acknowledged) or recalled. Ends with a summary line.
    #[command(verbatim_doc_comment)]
    Status(status::StatusArgs),
    /// Take back a drop you sent that no recipient has acknowledged: the hub deletes it.
    ///
    /// Refused (recall_refused) once a recipient has acknowledged: that party
    /// has the data. Recipients that downloaded it without acknowledging are
    /// named in a warning: ask them to delete their copy.
    #[command(verbatim_doc_comment)]
    Recall(status::RecallArgs),
    /// What did we send to whom (and receive from whom) last month? Answered
    /// from this machine's journal alone: no hub, key or network needed.
    ///
    /// Every send, fetch and recall by this client is appended to
    /// <state dir>/journal.jsonl; this lists them, oldest first.
    #[command(verbatim_doc_comment)]
    Journal(status::JournalArgs),
    /// Cosign the hub's log checkpoint as a witness, after verifying it is
    /// consistent with everything this client saw before.
    ///
    /// With --identity it reads the log as that member; without, it signs
    /// its requests with the witness key itself (which the directory must list).
    Witness(witness::WitnessArgs),
    /// For information-governance officers: verify and export the signed transfer log.
    ///
    /// A hub serves its log to members of its directory and the witnesses it
    /// lists: give --identity (or --witness-key), or verify a bundle a member
    /// exported (--bundle). Only a hub whose log is public answers without one.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Run unattended over a folder: send what is saved into outbox/<party>/,
    /// fetch what arrives into inbox/<sender>/<agreement>/, and tell people.
    ///
    /// A file is sent once complete (unchanged for --settle seconds; names
    /// starting with . or ~$ or ending in .tmp or .part are never taken), then
    /// moved to sent/<job>/ with sent.json (its drop ids), or to failed/<job>/
    /// with reason.txt. A restart never sends anything twice. Drops are
    /// verified, placed, and only then acknowledged. See docs/watch.md.
    #[command(verbatim_doc_comment)]
    Watch(Box<watch::WatchArgs>),
    /// Run a self-contained demonstration with a local hub and example keys.
    Demo,
    /// Generate synthetic test data (invented pupils, never real people).
    #[command(subcommand)]
    Sample(external::SampleCommand),
}

/// The heading of the global options in every command's help.
pub const GLOBAL_HEADING: &str = "Global options";

/// The command line's definition with every command's examples at the end
/// of its help (before the exit statuses at the top): what `main` parses
/// with, so `--help` shows them.
pub fn command() -> clap::Command {
    fn attach(cmd: clap::Command, path: &str) -> clap::Command {
        let text = examples::examples(path).map(examples::help_text);
        let cmd = match (text, cmd.get_after_help().map(|h| h.to_string())) {
            (Some(text), Some(after)) => cmd.after_help(format!("{text}\n\n{after}")),
            (Some(text), None) => cmd.after_help(text),
            (None, _) => cmd,
        };
        cmd.mut_subcommands(|sub| {
            let sub_path =
                if path.is_empty() { sub.get_name().to_owned() } else { format!("{path} {}", sub.get_name()) };
            attach(sub, &sub_path)
        })
    }
    attach(Cli::command(), "")
}

/// Parses the command line and runs it. Usage errors are reported like every
/// other error: one line, `error[usage]: ...`, exit status 2.
pub fn main() -> ExitCode {
    use clap::FromArgMatches as _;
    match command().try_get_matches().and_then(|mut m| Cli::from_arg_matches_mut(&mut m)) {
        Ok(cli) => cli.run(),
        Err(e) if matches!(e.kind(), clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion) => {
            let _ = e.print();
            ExitCode::SUCCESS
        }
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            ExitCode::from(USAGE_EXIT)
        }
        Err(e) => {
            // `render` gives clap's text without colours (they are only added when printing).
            eprintln!("{}", crate::usage::usage_error(&e.render().to_string()));
            ExitCode::from(USAGE_EXIT)
        }
    }
}

/// A command's outcome as the process's exit status; an error is reported
/// first, as one line on stderr.
pub fn finish(result: Result<ExitCode>) -> ExitCode {
    match result {
        Ok(code) => code,
        // Whoever read stdout stopped early (`| head`): not a failure (see crate::stdout).
        Err(e) if e.code == ErrorCode::Io.as_str() && crate::stdout::closed() => ExitCode::SUCCESS,
        Err(e) => {
            // An empty message means the details were already reported.
            if !e.message.is_empty() {
                eprintln!("{e}");
            }
            ExitCode::from(e.kind.exit_code())
        }
    }
}

impl Cli {
    /// Runs the command and turns errors into a one-line message and exit status.
    pub fn run(self) -> ExitCode {
        let result = match self.command {
            // These describe the command line itself: no settings, config file or hub.
            Command::Describe(command) => command.run().map(|()| ExitCode::SUCCESS),
            Command::Act(command) => self.global.resolve().and_then(|resolved| command.run(&resolved)),
        };
        // An interrupted send reports and exits from its handler.
        crate::interrupt::settle();
        finish(result)
    }
}

impl ActCommand {
    /// Hands the command to its group's module, with the resolved settings.
    fn run(self, resolved: &settings::Resolved) -> Result<ExitCode> {
        let settings = &resolved.settings;
        let mut out = crate::stdout::Stdout::lock();
        let out = &mut out;
        let ran = match self {
            ActCommand::Init => settings::init(resolved, out),
            ActCommand::Keygen(args) => args.run(settings, out),
            ActCommand::Key(command) => command.run(settings, out),
            ActCommand::Directory(command) => command.run(settings, out),
            ActCommand::Send(args) => args.run(settings, out),
            ActCommand::Inbox(args) => args.run(settings, out),
            ActCommand::Fetch(args) => args.run(settings, out),
            ActCommand::Status(args) => args.run(settings, out),
            ActCommand::Recall(args) => args.run(settings, out),
            ActCommand::Journal(args) => args.run(settings, out),
            ActCommand::Witness(args) => args.run(settings, out),
            ActCommand::Watch(args) => return args.run(resolved, out),
            ActCommand::Audit(command) => command.run(settings, out),
            // Run by the separate sealdrop-demo program, with its own exit status.
            ActCommand::Demo => return external::run(&["demo".into()]),
            ActCommand::Sample(command) => return external::run(&command.external_args()),
        };
        ran.map(|()| ExitCode::SUCCESS)
    }
}

/// Writes one line to stdout.
fn print(out: &mut dyn Write, line: &str) -> Result<()> {
    writeln!(out, "{line}").map_err(|e| Error::io("cannot write to stdout", e))
}

/// Serialises a value for stdout, compact or indented.
fn json_text(value: &impl serde::Serialize, pretty: bool) -> Result<String> {
    let text = if pretty { serde_json::to_string_pretty(value) } else { serde_json::to_string(value) };
    text.map_err(|e| Error::with_kind(Kind::Input, ErrorCode::Internal, e.to_string()))
}

/// Parses a date option `flag`: a date (midnight UTC) or an RFC 3339 time.
fn parse_date(flag: &str, text: &str) -> Result<jiff::Timestamp> {
    if let Ok(t) = text.parse::<jiff::Timestamp>() {
        return Ok(t);
    }
    text.parse::<jiff::civil::Date>()
        .ok()
        .and_then(|d| jiff::tz::TimeZone::UTC.to_timestamp(d.to_datetime(jiff::civil::Time::midnight())).ok())
        .ok_or_else(|| {
            Error::new(ErrorCode::BadDate, format!("{flag} {text:?} is not a date: use YYYY-MM-DD or an RFC 3339 time"))
        })
}

/// Parses `--since`: a date (midnight UTC) or an RFC 3339 time.
fn parse_since(text: &str) -> Result<jiff::Timestamp> {
    parse_date("--since", text)
}
