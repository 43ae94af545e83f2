//! The command line: parse, resolve settings, call the library, report.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory as _, Parser, Subcommand};

use sealdrop_proto::ids::{MemberName, PartyId};
use sealdrop_proto::keys::MemberSecretKey;

use crate::config::{ConfigFile, default_config_path, default_state_dir};
use crate::context::Settings;
use crate::error::{Error, Result, USAGE_EXIT};
use crate::fetch::{self, Which};
use crate::fsutil::{human_bytes, write_new_atomic};
use crate::send::{self, SendRequest};
use crate::split::{self, PartStatus, SplitRequest};

pub mod examples;

/// sealdrop: end-to-end encrypted exchange of councils' sensitive files.
#[derive(Debug, Parser)]
#[command(name = "sealdrop", version, after_help = crate::error::exit_codes_help())]
pub struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

/// The options every command takes. They are listed under their own heading
/// in every command's help, after the command's own options, so a
/// subcommand's help starts with what is particular to it.
#[derive(Debug, Args)]
#[command(next_help_heading = GLOBAL_HEADING)]
struct Global {
    /// The hub's base URL.
    #[arg(long, global = true, env = "SEALDROP_HUB")]
    hub: Option<String>,
    /// Your member secret key file.
    #[arg(long, global = true, env = "SEALDROP_IDENTITY")]
    identity: Option<PathBuf>,
    /// The coordinator's public key (verifier-key text or a file holding it), pinned.
    #[arg(long, global = true, env = "SEALDROP_AUTHORITY")]
    authority: Option<String>,
    /// Folder for local state (the newest verified directory).
    #[arg(long, global = true, env = "SEALDROP_STATE")]
    state_dir: Option<PathBuf>,
    /// Config file (default: the user's config dir, sealdrop/config.toml).
    #[arg(long, global = true, env = "SEALDROP_CONFIG")]
    config: Option<PathBuf>,
    /// Your party's witness key: when given, every command cosigns the hub's
    /// log checkpoint it verified (see `sealdrop witness`).
    #[arg(long, global = true, env = "SEALDROP_WITNESS_KEY")]
    witness_key: Option<PathBuf>,
    /// Accept a plain http:// hub URL to another machine. Without it only
    /// https:// is accepted, and http:// to this machine (localhost, 127.0.0.0/8, ::1);
    /// also `insecure_http = true` in the config file.
    #[arg(
        long,
        global = true,
        env = crate::hub_url::INSECURE_HTTP_ENV,
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    insecure_http: Option<bool>,
    /// A PEM file of CA certificates to trust for the hub's TLS certificate,
    /// beside the system's (for a hub whose certificate a private CA signed).
    #[arg(long, global = true, env = "SEALDROP_HUB_CA", value_name = "FILE")]
    hub_ca: Option<PathBuf>,
    /// No progress bars.
    #[arg(long, short, global = true)]
    quiet: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Save --hub, --identity, --authority, --state-dir and --hub-ca into the config file.
    Init,
    /// Create a member key pair and print its public key card for the coordinator.
    Keygen {
        /// Your organisation's party id, e.g. `camden`.
        #[arg(long)]
        party: PartyId,
        /// Your member name within the party, e.g. `data-team`.
        #[arg(long)]
        member: MemberName,
        /// Where to write the secret key (created with mode 0600).
        #[arg(long)]
        out: PathBuf,
    },
    /// Work with your member key.
    #[command(subcommand)]
    Key(KeyCommand),
    /// The coordinator's directory tools.
    #[command(subcommand)]
    Directory(DirectoryCommand),
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
    Send {
        /// Recipient parties (id, name, GSS code or LA number), comma-separated.
        #[arg(long, value_delimiter = ',', required_unless_present = "split_by", conflicts_with = "split_by")]
        to: Vec<String>,
        /// Split one .csv or .xlsx file by this column (its header text).
        #[arg(long, value_name = "COLUMN")]
        split_by: Option<String>,
        /// The workbook sheet to split (default: the first sheet).
        #[arg(long, value_name = "NAME", requires = "split_by")]
        sheet: Option<String>,
        /// Show where every row would go, then stop without sending.
        #[arg(long, requires = "split_by")]
        dry_run: bool,
        /// Send without asking (check the summary with --dry-run first).
        #[arg(long, short = 'y', requires = "split_by")]
        yes: bool,
        /// Send the routable rows even when some rows match no party (those are never sent).
        #[arg(long, requires = "split_by")]
        allow_unroutable: bool,
        /// Send a file named here even if it is empty (0 bytes), or a drop with no data.
        #[arg(long, conflicts_with = "split_by")]
        allow_empty: bool,
        /// Send even if your own party is among the recipients (to your colleagues' keys).
        #[arg(long, conflicts_with = "split_by")]
        allow_own_party: bool,
        /// The encoding of a CSV that is not UTF-8, e.g. windows-1252 (Excel's
        /// plain "CSV"); it is sent converted to UTF-8. Without it such a CSV is refused.
        #[arg(long, value_name = "LABEL")]
        encoding: Option<String>,
        /// The sharing agreement (may be omitted when exactly one applies).
        #[arg(long)]
        agreement: Option<String>,
        /// How long the drop may wait for its recipients, e.g. 36h or 2d (default 5d).
        #[arg(long)]
        expires: Option<String>,
        /// Print a JSON object instead of the drop id.
        #[arg(long)]
        json: bool,
        /// Files and folders to send.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// List drops waiting for your party.
    Inbox {
        /// Print a JSON array: id, from, size, created, committed, expires, agreement (see docs/cli.md).
        #[arg(long)]
        json: bool,
    },
    /// Download, verify and decrypt drops, then acknowledge them.
    ///
    /// Each drop's files and folders go straight into the output folder. When
    /// one of a drop's names is already there (or came with an earlier drop of
    /// the same run, as when several boroughs each send a part named
    /// `fsm-islington.csv`), the whole drop goes into a new folder named after
    /// the drop id, OUT/<drop id>/, instead. Nothing is ever replaced or merged
    /// into; a drop that cannot be placed is not acknowledged and stays in the
    /// inbox.
    Fetch {
        /// Drop ids to fetch.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        ids: Vec<String>,
        /// Fetch everything in the inbox.
        #[arg(long)]
        all: bool,
        /// Folder to put the files in (default: the current folder); a drop with
        /// a name already there goes into OUT/<drop id>/.
        #[arg(short = 'o', long = "out", default_value = ".")]
        out: PathBuf,
        /// Print a JSON array of results (with --merge-csv, an object: `drops`, `merged`).
        #[arg(long)]
        json: bool,
        /// Then merge every CSV file this run fetched into one new file, with an added
        /// last column `source_party` (the sender of each row's drop); the parts must
        /// share their header row. Cells a spreadsheet would run as formulas are
        /// written with a leading ' (the received files stay as sent).
        #[arg(long, value_name = "OUT.csv")]
        merge_csv: Option<PathBuf>,
        /// With --merge-csv: write cells that start like a spreadsheet formula
        /// (=, +, -, @, tab, CR) as sent, without the leading '.
        #[arg(long, requires = "merge_csv")]
        keep_formulas: bool,
    },
    /// The sender's view: each drop, each recipient's outcome, and non-deliveries.
    ///
    /// Per drop: state, agreement, size, commit time, expiry and, once it
    /// ended, when and why the hub deleted the ciphertext (with the file names
    /// when this client's journal knows them). Per recipient: acknowledged,
    /// fetched (not yet acknowledged), waiting, NOT DELIVERED (the drop ended
    /// before it acknowledged) or recalled. Ends with a summary line.
    #[command(verbatim_doc_comment)]
    Status {
        /// One drop.
        id: Option<String>,
        /// Only drops created on or after this date (YYYY-MM-DD or RFC 3339).
        #[arg(long)]
        since: Option<String>,
        /// Only drops under this agreement.
        #[arg(long)]
        agreement: Option<String>,
        /// Print a JSON array (the hub's fields, plus each recipient's `outcome` and the drop's `files`).
        #[arg(long)]
        json: bool,
    },
    /// Take back a drop you sent that no recipient has acknowledged: the hub deletes it.
    ///
    /// Refused (recall_refused) once a recipient has acknowledged: that party
    /// has the data. Recipients that downloaded it without acknowledging are
    /// named in a warning: ask them to delete their copy.
    #[command(verbatim_doc_comment)]
    Recall {
        /// The drop id.
        id: String,
        /// Print the hub's answer and the receipt path as JSON.
        #[arg(long)]
        json: bool,
    },
    /// What did we send to whom (and receive from whom) last month? Answered
    /// from this machine's journal alone: no hub, key or network needed.
    ///
    /// Every send, fetch and recall by this client is appended to
    /// <state dir>/journal.jsonl; this lists them, oldest first.
    #[command(verbatim_doc_comment)]
    Journal {
        /// Only entries on or after this date (YYYY-MM-DD or RFC 3339).
        #[arg(long)]
        since: Option<String>,
        /// Only drops under this agreement.
        #[arg(long)]
        agreement: Option<String>,
        /// Only drops sent to or received from this party (its id).
        #[arg(long)]
        party: Option<String>,
        /// Also list the hub log checkpoints this client verified.
        #[arg(long)]
        checkpoints: bool,
        /// Print the matching entries as a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Cosign the hub's log checkpoint as a witness, after verifying it is
    /// consistent with everything this client saw before.
    ///
    /// With --identity it reads the log as that member; without, it signs
    /// its requests with the witness key itself (which the directory must list).
    Witness {
        #[command(subcommand)]
        command: Option<WitnessCommand>,
    },
    /// For information-governance officers: verify and export the signed transfer log.
    ///
    /// A hub serves its log to members of its directory and the witnesses it
    /// lists: give --identity (or --witness-key), or verify a bundle a member
    /// exported (--bundle). Only a hub whose log is public answers without one.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Run a self-contained demonstration with a local hub and example keys.
    Demo,
    /// Generate synthetic test data (invented pupils, never real people).
    #[command(subcommand)]
    Sample(SampleCommand),
    /// Print a shell completion script to stdout.
    ///
    /// e.g. `sealdrop completions bash > ~/.local/share/bash-completion/completions/sealdrop`
    /// (zsh: a file `_sealdrop` in a folder on $fpath; fish: ~/.config/fish/completions/sealdrop.fish).
    #[command(verbatim_doc_comment)]
    Completions {
        /// The shell.
        shell: sealdrop_cli_docs::Shell,
    },
    /// Write the manual pages, one per command (sealdrop.1, sealdrop-send.1, ...), into a folder.
    ///
    /// e.g. `sealdrop man --out ~/.local/share/man/man1`, then `man sealdrop-send`.
    /// Existing pages of the same names are replaced.
    #[command(verbatim_doc_comment)]
    Man {
        /// The folder (created if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum SampleCommand {
    /// Write a synthetic free-school-meals pupil list (.csv or .xlsx, by extension);
    /// the same seed and options give the same file.
    Fsm {
        /// Number of pupil rows.
        #[arg(long)]
        rows: u64,
        /// Random seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// The borough whose schools the pupils attend (party id, e.g. `camden`).
        #[arg(long, default_value = "camden")]
        school_la: String,
        /// Spread out-of-borough pupils over this many nearest other boroughs (1 to 32).
        #[arg(long, default_value_t = 12)]
        home_las: usize,
        /// Percentage of pupils living in the school borough itself (0 to 100).
        #[arg(long, default_value_t = 70)]
        local_share: u8,
        /// Exactly this many rows get a home authority outside London (cannot be routed).
        #[arg(long, default_value_t = 0)]
        unroutable: u64,
        /// The file to create, FILE.csv or FILE.xlsx (never overwritten).
        #[arg(short = 'o', long = "out")]
        out: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Rebuild the log's tree from every entry and check every signature and rule.
    Verify {
        /// Check an exported bundle offline instead of the hub's log.
        #[arg(long)]
        bundle: Option<PathBuf>,
        /// How many parties' witnesses must have cosigned the checkpoint.
        #[arg(long, default_value_t = 0)]
        witnesses: usize,
        /// The hub's log key (text or file), when the directory does not list the hub.
        #[arg(long)]
        log_key: Option<String>,
        /// Print the verdict as JSON.
        #[arg(long)]
        json: bool,
        /// Exit 7 (`error[audit_warnings]`) when the log verifies with warnings, e.g. an
        /// entry signed with a key revoked from before it; without it warnings are shown
        /// and the exit status is 0.
        #[arg(long)]
        strict: bool,
    },
    /// Verify the log, then write the IG report: who sent what to whom, delivery times, expiries, key changes.
    Report {
        /// Report from an exported bundle instead of the hub's log.
        #[arg(long)]
        bundle: Option<PathBuf>,
        /// Only drops under this agreement.
        #[arg(long)]
        agreement: Option<String>,
        /// Only drops committed on or after this date (YYYY-MM-DD or RFC 3339).
        #[arg(long)]
        since: Option<String>,
        /// Only drops committed before this date, exclusive (YYYY-MM-DD or RFC 3339):
        /// `--since 2026-11-01 --until 2026-12-01` is November.
        #[arg(long)]
        until: Option<String>,
        /// Replace existing --csv and --html files (otherwise refused: they are evidence).
        #[arg(long)]
        force: bool,
        /// Write one CSV row per drop and recipient here.
        #[arg(long)]
        csv: Option<PathBuf>,
        /// Write the self-contained HTML report here.
        #[arg(long)]
        html: Option<PathBuf>,
        /// The hub's log key (text or file), when the directory does not list the hub.
        #[arg(long)]
        log_key: Option<String>,
        /// Print one JSON object per drop and recipient on stdout (JSON Lines; the CSV's columns).
        #[arg(long)]
        json: bool,
    },
    /// Download the whole log into one self-contained bundle for an offline machine.
    Export {
        /// The bundle file to write (an existing one is refused unless --force).
        #[arg(short = 'o', long = "out")]
        out: PathBuf,
        /// Replace an existing bundle file.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Subcommand)]
enum WitnessCommand {
    /// Create a witness key for your party and print its public key for the coordinator's directory.
    Keygen {
        /// Your party id.
        #[arg(long)]
        party: PartyId,
        /// Where to write the secret witness key (mode 0600).
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// Print an age identity file that stock `age -d -i FILE` accepts.
    ///
    /// It holds your secret key. Redirected to a file (`> id.txt`), the file
    /// is made private (mode 0600) before the key is written; with -o FILE a
    /// new file is created with mode 0600 (never overwritten). It is not
    /// printed to a terminal unless --force.
    #[command(verbatim_doc_comment)]
    ExportAge {
        /// Write it to this new file (mode 0600) instead of stdout.
        #[arg(short = 'o', long = "out", value_name = "FILE")]
        out: Option<PathBuf>,
        /// Print it even when stdout is a terminal (where the screen and its scrollback show it).
        #[arg(long)]
        force: bool,
    },
    /// Print your public key card (JSON, for the coordinator); its fingerprint goes to stderr.
    Show {
        /// Print one JSON object: key_name, fingerprint and the card.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum DirectoryCommand {
    /// Create the coordinator's (authority's) key pair: FILE and FILE.pub.
    Keygen {
        /// The authority's name, e.g. `london-isa-coordinator`.
        #[arg(long)]
        name: String,
        /// The secret key file to create (mode 0600); the public key goes beside it as .pub.
        #[arg(long)]
        out: PathBuf,
    },
    /// Write a first unsigned directory (serial 1) from the members' key cards.
    ///
    /// Reads every file in --cards: each member's key card (the JSON line
    /// `sealdrop keygen` printed) and each witness key (`sealdrop witness
    /// keygen`). Members are grouped into parties by the party on their card;
    /// a London party id (e.g. `camden`, `city-of-london`) gets its display name,
    /// GSS code and DfE LA number from the built-in London list, other parties
    /// from --reference, else their id as name (shown, for you to fill in). One
    /// agreement between all the parties is written. The file is never
    /// overwritten. Then `directory sign` (and, once the hub exists, `directory set-hub`).
    #[command(verbatim_doc_comment)]
    New {
        /// The folder of key cards (and witness keys), one a file.
        #[arg(long, value_name = "DIR")]
        cards: PathBuf,
        /// More parties' names and codes: CSV `name,gss_code,dfe_la_number` with a header row,
        /// the shape of keys-example/london-local-authorities.csv (the id is the name as a slug).
        #[arg(long, value_name = "CSV")]
        reference: Option<PathBuf>,
        /// The starting agreement's id, a slug such as `london-fsm-ehc`.
        #[arg(long, value_name = "ID")]
        agreement: String,
        /// Its short title (default: the id).
        #[arg(long)]
        title: Option<String>,
        /// What the data may be used for.
        #[arg(long)]
        purpose: String,
        /// The lawful basis for sharing (UK GDPR article and statute).
        #[arg(long)]
        lawful_basis: String,
        /// Sharing may start (YYYY-MM-DD or RFC 3339; default now).
        #[arg(long, value_name = "DATE")]
        valid_from: Option<String>,
        /// Sharing must stop, exclusive (YYYY-MM-DD or RFC 3339; default a year after --valid-from).
        #[arg(long, value_name = "DATE")]
        valid_until: Option<String>,
        /// The longest a drop may wait on the hub, in days.
        #[arg(long, default_value_t = 30, value_name = "DAYS")]
        max_expiry_days: u32,
        /// The unsigned directory to create (never overwritten).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// List the hub in the unsigned directory file: its origin and log key (raises the serial).
    ///
    /// The log key exists only once the hub operator ran `sealdrop-hub init`
    /// (with a directory signed without it): the operator sends you what
    /// `sealdrop-hub verifier-key --data DIR` prints, you set it here, sign
    /// and publish. Clients then check the hub's log against this key instead
    /// of trusting it at first contact.
    #[command(verbatim_doc_comment)]
    SetHub {
        /// The unsigned directory (JSON), edited in place.
        #[arg(long)]
        input: PathBuf,
        /// The hub's origin (default: the log key's name, which must be the same).
        #[arg(long)]
        origin: Option<String>,
        /// The hub's log key: a file holding what `sealdrop-hub verifier-key` prints, or the text.
        #[arg(long, value_name = "KEY_OR_FILE")]
        log_key: String,
    },
    /// Print the fingerprint of the key in a file, to compare by phone.
    ///
    /// Any key sealdrop uses: authority.pub, a member's key card, a witness
    /// key, the hub's log key (hub-log.pub), or the public part of a secret
    /// key file. The fingerprint is the one `keygen`, `key show`, `audit
    /// verify` and the IG report show.
    #[command(verbatim_doc_comment)]
    Fingerprint {
        /// The key file.
        file: PathBuf,
        /// Print one JSON object: kind, name, fingerprint.
        #[arg(long)]
        json: bool,
    },
    /// Sign an unsigned directory (JSON) with the authority key.
    Sign {
        /// The authority's secret key file.
        #[arg(long)]
        key: PathBuf,
        /// The unsigned directory, JSON.
        #[arg(long)]
        input: PathBuf,
        /// Where to write the signed directory.
        #[arg(long)]
        out: PathBuf,
    },
    /// Add a member's public key card to its party in the unsigned directory file (raises the serial).
    AddMember {
        /// The unsigned directory (JSON), edited in place.
        #[arg(long)]
        input: PathBuf,
        /// The member's public key card (JSON, as `sealdrop keygen` prints it).
        #[arg(long)]
        card: PathBuf,
    },
    /// Revoke a member key in the unsigned directory file: it moves to the party's `revoked`
    /// list for good, optionally replaced by the member's new key card (raises the serial).
    /// Then sign and publish the file.
    Revoke {
        /// The unsigned directory (JSON), edited in place.
        #[arg(long)]
        input: PathBuf,
        /// The key to revoke, `<party>/<member>`.
        #[arg(long, value_name = "PARTY/MEMBER")]
        key: String,
        /// Why (kept in the directory, shown to whoever still tries to use the key).
        #[arg(long)]
        reason: String,
        /// From when the key is not to be trusted (default now); for a lost or stolen key,
        /// the last time it was known safe. Drops committed before this time stay readable.
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
        /// The member's new public key card, to list in the old key's place.
        #[arg(long, value_name = "CARD")]
        replace_with: Option<PathBuf>,
    },
    /// Upload a signed directory to the hub (checked against --authority first).
    Publish {
        /// The signed directory file.
        file: PathBuf,
    },
    /// Fetch, verify and summarise the hub's directory.
    Show {
        /// Print the verified directory as JSON.
        #[arg(long)]
        json: bool,
    },
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

/// `sealdrop completions SHELL`.
fn write_completions(shell: sealdrop_cli_docs::Shell) -> Result<()> {
    sealdrop_cli_docs::write_completions(Cli::command(), shell, &mut crate::stdout::Stdout::lock())
        .map_err(|e| Error::io("cannot write the completion script to stdout", e))
}

/// The EXIT STATUS section of every man page, from the same table as `--help`.
pub fn exit_status_man_section() -> sealdrop_cli_docs::ManSection {
    sealdrop_cli_docs::ManSection {
        heading: "EXIT STATUS".to_owned(),
        entries: crate::error::exit_statuses()
            .into_iter()
            .map(|(code, meaning)| (code.to_string(), format!("{}{}.", meaning[..1].to_uppercase(), &meaning[1..])))
            .collect(),
    }
}

/// The sections after clap_mangen's on the man page of the command at
/// `path`: EXIT STATUS, then its EXAMPLES (man-pages(7)'s order). The
/// examples are their own section rather than the `--help` text's after-help,
/// which clap_mangen would render as one run-on paragraph.
pub fn man_sections(path: &[String]) -> Vec<sealdrop_cli_docs::ManSection> {
    let mut sections = vec![exit_status_man_section()];
    if let Some(examples) = examples::examples(&path.join(" ")) {
        sections.push(sealdrop_cli_docs::ManSection {
            heading: "EXAMPLES".to_owned(),
            entries: examples.iter().map(|(what, command)| ((*command).to_owned(), format!("{what}."))).collect(),
        });
    }
    sections
}

/// `sealdrop man --out DIR`.
fn write_man_pages(dir: &std::path::Path) -> Result<()> {
    // The top-level help's exit-status list becomes each page's EXIT STATUS section instead.
    let cmd = Cli::command().after_help(None::<&'static str>);
    let pages = sealdrop_cli_docs::write_man_pages_with(cmd, dir, &man_sections)
        .map_err(|e| Error::io(format!("cannot write the man pages into {}", dir.display()), e))?;
    eprintln!("wrote {} man pages into {}", pages.len(), dir.display());
    Ok(())
}

/// How `send --split-by` was asked to behave.
#[derive(Clone, Copy, Debug)]
struct SplitMode {
    dry_run: bool,
    yes: bool,
    json: bool,
}

/// `send --split-by`: plan, show, confirm, send, report.
fn split_send(settings: &Settings, req: &SplitRequest, mode: SplitMode, out: &mut dyn Write) -> Result<()> {
    use std::io::IsTerminal;
    let session = settings.session()?;
    let plan = split::plan(settings, &session, req)?;
    let summary = split::render_summary(&plan, &session.directory.directory);
    if mode.json {
        eprint!("{summary}");
    } else {
        write!(out, "{summary}").map_err(|e| Error::io("cannot write to stdout", e))?;
    }
    let json_out = |out: &mut dyn Write, value: serde_json::Value| {
        writeln!(out, "{}", serde_json::to_string_pretty(&value).unwrap_or_default())
            .map_err(|e| Error::io("cannot write to stdout", e))
    };
    if let Some(e) = plan.refusal() {
        if mode.json {
            json_out(out, serde_json::json!({"plan": plan, "sent": false}))?;
        }
        return Err(e.clone());
    }
    let pending = plan.to_send().count();
    if mode.dry_run || pending == 0 {
        if mode.json {
            json_out(out, serde_json::json!({"plan": plan, "sent": false}))?;
        }
        eprintln!(
            "{}",
            if mode.dry_run { "dry run: nothing was sent" } else { "every part was already sent; nothing to do" }
        );
        return Ok(());
    }
    if !mode.yes {
        if !std::io::stdin().is_terminal() {
            return Err(Error::input(
                "confirmation_required",
                "not sending without confirmation: run this in a terminal to confirm, or add --yes once the summary (see --dry-run) is right",
            ));
        }
        eprint!("Send {pending} drop(s) as shown above? Type yes to send: ");
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer).map_err(|e| Error::io("cannot read the answer", e))?;
        if !matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
            return Err(Error::new(
                crate::error::Kind::Other,
                "cancelled",
                "cancelled: nothing was sent; run the same command again and type yes when the summary is right",
            ));
        }
    }
    let outcome = split::send(settings, &session, &plan, req);
    // After Ctrl-C, the interrupt handler has the last word.
    crate::interrupt::settle();
    let outcome = outcome?;
    for ((party, status), part) in outcome.parts.iter().zip(&plan.parts) {
        let line = match status {
            PartStatus::Sent { drop, .. } => {
                format!("sent {drop} to {} ({party}): {} rows", part.name, split::group_digits(part.rows))
            }
            PartStatus::AlreadySent { drop, committed } => {
                format!("already sent {drop} to {} ({party}) at {committed}; not sent again", part.name)
            }
            PartStatus::Failed { code, message } => format!("NOT SENT to {} ({party}): {message} [{code}]", part.name),
        };
        if mode.json {
            eprintln!("{line}");
        } else {
            writeln!(out, "{line}").map_err(|e| Error::io("cannot write to stdout", e))?;
        }
    }
    if mode.json {
        json_out(out, serde_json::json!({"plan": plan, "sent": true, "parts": outcome.parts}))?;
    }
    match outcome.failure() {
        Some(e) => Err(e),
        None => Ok(()),
    }
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
            Error::input("bad_date", format!("{flag} {text:?} is not a date: use YYYY-MM-DD or an RFC 3339 time"))
        })
}

/// Parses `--since`: a date (midnight UTC) or an RFC 3339 time.
fn parse_since(text: &str) -> Result<jiff::Timestamp> {
    parse_date("--since", text)
}

impl Cli {
    /// Runs the command and turns errors into a one-line message and exit status.
    pub fn run(self) -> ExitCode {
        let result = self.dispatch();
        // An interrupted send reports and exits from its handler.
        crate::interrupt::settle();
        match result {
            Ok(()) => ExitCode::SUCCESS,
            // Whoever read stdout stopped early (`| head`): not a failure (see crate::stdout).
            Err(e) if e.code == "io" && crate::stdout::closed() => ExitCode::SUCCESS,
            Err(e) => {
                // An empty message means the details were already reported.
                if !e.message.is_empty() {
                    eprintln!("{e}");
                }
                ExitCode::from(e.kind.exit_code())
            }
        }
    }

    /// Resolves the settings (flags, then environment, then config file) and
    /// checks the hub URL (see [`crate::hub_url`]). Also returns the config
    /// file's path and whether plain http to other machines is allowed.
    fn settings(&self) -> Result<(Settings, PathBuf, bool)> {
        let config_path = self
            .global
            .config
            .clone()
            .or_else(default_config_path)
            .ok_or_else(|| Error::input("no_config_dir", "cannot find your config folder; pass --config FILE"))?;
        let file = ConfigFile::load(&config_path)?;
        let g = &self.global;
        if let Some(ca) = g.hub_ca.as_ref().or(file.hub_ca.as_ref()) {
            crate::transport::trust_hub_ca(ca)?;
        }
        let state_dir = g.state_dir.clone().or(file.state_dir).or_else(default_state_dir).ok_or_else(|| {
            Error::input("no_state_dir", "cannot find a folder for local state; pass --state-dir DIR")
        })?;
        let hub = g.hub.clone().or(file.hub);
        // Flag or environment (clap), then the config file.
        let insecure_http = g.insecure_http.or(file.insecure_http).unwrap_or(false);
        if let Some(url) = &hub {
            // Before anything can connect anywhere.
            crate::hub_url::check(url, insecure_http)?;
        }
        Ok((
            Settings {
                hub,
                identity: g.identity.clone().or(file.identity),
                authority: g.authority.clone().or(file.authority),
                state_dir,
                quiet: g.quiet,
                witness_key: g.witness_key.clone().or(file.witness_key),
                resume_min_bytes: crate::context::resume_min_bytes(file.resume_min_bytes)?,
                clock: sealdrop_proto::clock::clock_from_env(),
            },
            config_path,
            insecure_http,
        ))
    }

    fn dispatch(self) -> Result<()> {
        // These describe the command line itself: no settings, config file or hub.
        match &self.command {
            Command::Completions { shell } => return write_completions(*shell),
            Command::Man { out } => return write_man_pages(out),
            _ => {}
        }
        let (settings, config_path, insecure_http) = self.settings()?;
        let mut out = crate::stdout::Stdout::lock();
        let print =
            |out: &mut dyn Write, s: &str| writeln!(out, "{s}").map_err(|e| Error::io("cannot write to stdout", e));
        match self.command {
            Command::Init => {
                let absolute = |p: Option<PathBuf>| p.map(|p| std::path::absolute(&p).unwrap_or(p));
                let cfg = ConfigFile {
                    hub: settings.hub.clone(),
                    identity: absolute(settings.identity.clone()),
                    authority: settings.authority.as_deref().map(crate::context::authority_setting).transpose()?,
                    state_dir: absolute(Some(settings.state_dir.clone())),
                    witness_key: absolute(settings.witness_key.clone()),
                    resume_min_bytes: (settings.resume_min_bytes != crate::context::DEFAULT_RESUME_MIN_BYTES)
                        .then_some(settings.resume_min_bytes),
                    // Saved only when needed: the hub URL was checked against it above.
                    insecure_http: insecure_http.then_some(true),
                    hub_ca: absolute(self.global.hub_ca.clone().or(ConfigFile::load(&config_path)?.hub_ca)),
                };
                if let Some(a) = &cfg.authority {
                    crate::context::parse_authority(a)?;
                }
                if cfg.identity.is_some() {
                    settings.identity()?;
                }
                cfg.save(&config_path)?;
                print(&mut out, &format!("saved {}", config_path.display()))
            }
            Command::Keygen { party, member, out: path } => {
                let key = MemberSecretKey::generate(party, member);
                write_new_atomic(&path, key.to_file_text().as_bytes(), true)?;
                let card = serde_json::to_string(&key.public()).map_err(|e| Error::input("internal", e.to_string()))?;
                eprintln!(
                    "wrote secret key {} (mode 0600); fingerprint {}\nsend this public key card to your coordinator:",
                    path.display(),
                    key.public().fingerprint()
                );
                print(&mut out, &card)
            }
            Command::Key(KeyCommand::ExportAge { out: path, force }) => crate::secret_out::export_age(
                &settings.identity()?.age_identity_file(),
                path.as_deref(),
                force,
                &mut out,
            ),
            Command::Key(KeyCommand::Show { json }) => {
                let card = settings.identity()?.public();
                if json {
                    let value = serde_json::json!({
                        "key_name": card.signing_key.name(),
                        "fingerprint": card.fingerprint(),
                        "card": card,
                    });
                    return print(
                        &mut out,
                        &serde_json::to_string_pretty(&value).map_err(|e| Error::input("internal", e.to_string()))?,
                    );
                }
                eprintln!("fingerprint {} (compare it with the coordinator by phone)", card.fingerprint());
                print(&mut out, &serde_json::to_string(&card).map_err(|e| Error::input("internal", e.to_string()))?)
            }
            Command::Directory(DirectoryCommand::Keygen { name, out: path }) => {
                let (key, pub_path) = crate::directory_cmd::keygen(&name, &path)?;
                eprintln!("wrote {} (secret, mode 0600) and {}", path.display(), pub_path.display());
                print(&mut out, &key.verifier().to_string())
            }
            Command::Directory(DirectoryCommand::New {
                cards,
                reference,
                agreement,
                title,
                purpose,
                lawful_basis,
                valid_from,
                valid_until,
                max_expiry_days,
                out: path,
            }) => {
                let date = |flag: &str, t: Option<String>| t.map(|t| parse_date(flag, &t)).transpose();
                let agreement = crate::directory_setup::NewAgreement {
                    id: agreement,
                    title,
                    purpose,
                    lawful_basis,
                    valid_from: date("--valid-from", valid_from)?,
                    valid_until: date("--valid-until", valid_until)?,
                    max_expiry_days,
                };
                let created = crate::directory_setup::new_directory(
                    &cards,
                    reference.as_deref(),
                    &agreement,
                    settings.clock.now(),
                    &path,
                )?;
                let d = &created.directory;
                let members: usize = d.parties.iter().map(|p| p.members.len()).sum();
                print(
                    &mut out,
                    &format!(
                        "wrote {} (serial 1): {} parties, {members} member keys from {} files, agreement {}",
                        path.display(),
                        d.parties.len(),
                        created.cards.len(),
                        agreement.id
                    ),
                )?;
                for p in &d.parties {
                    let fps: Vec<String> =
                        p.members.iter().map(|m| format!("{} {}", m.member, m.signing_key.fingerprint())).collect();
                    print(&mut out, &format!("  {:<24} {:<26} {}", p.id.as_str(), p.name, fps.join(", ")))?;
                }
                if !created.unnamed.is_empty() {
                    let ids: Vec<&str> = created.unnamed.iter().map(|p| p.as_str()).collect();
                    eprintln!(
                        "note: no display name or codes known for {}: edit their `name` and `aliases` in {} (or pass --reference CSV)",
                        ids.join(", "),
                        path.display()
                    );
                }
                eprintln!(
                    "check each fingerprint with its member by phone, then: sealdrop directory sign --key authority.key --input {} --out directory.signed",
                    path.display()
                );
                Ok(())
            }
            Command::Directory(DirectoryCommand::SetHub { input, origin, log_key }) => {
                let edit = crate::directory_setup::set_hub(&input, origin.as_deref(), &log_key)?;
                print(
                    &mut out,
                    &format!(
                        "listed the hub in {} (serial {} -> serial {}); now sign and publish it",
                        input.display(),
                        edit.old_serial,
                        edit.new_serial
                    ),
                )
            }
            Command::Directory(DirectoryCommand::Fingerprint { file, json }) => {
                let f = crate::directory_setup::fingerprint(&file)?;
                if json {
                    return print(
                        &mut out,
                        &serde_json::to_string_pretty(&f).map_err(|e| Error::input("internal", e.to_string()))?,
                    );
                }
                print(&mut out, &format!("{}  {}  ({})", f.fingerprint, f.name, f.kind))
            }
            Command::Directory(DirectoryCommand::Sign { key, input, out: path }) => {
                let signed = crate::directory_cmd::sign(&settings, &key, &input, &path)?;
                print(
                    &mut out,
                    &format!(
                        "signed directory serial {} with {} parties and {} agreements: {}",
                        signed.directory.serial,
                        signed.directory.parties.len(),
                        signed.directory.agreements.len(),
                        path.display()
                    ),
                )
            }
            Command::Directory(DirectoryCommand::AddMember { input, card }) => {
                let edit = crate::directory_cmd::add_member(&input, &card)?;
                print(
                    &mut out,
                    &format!(
                        "added {} to {} (serial {} -> serial {}); now sign and publish it",
                        edit.added.unwrap_or_default(),
                        input.display(),
                        edit.old_serial,
                        edit.new_serial
                    ),
                )
            }
            Command::Directory(DirectoryCommand::Revoke { input, key, reason, at, replace_with }) => {
                let at = match at {
                    Some(text) => sealdrop_proto::clock::parse_time(&text).ok_or_else(|| {
                        Error::input(
                            "bad_time",
                            format!("--at {text:?} is not an RFC 3339 time, e.g. 2026-11-20T09:00:00Z"),
                        )
                    })?,
                    None => settings.clock.now().round(jiff::Unit::Second).unwrap_or_else(|_| settings.clock.now()),
                };
                let edit = crate::directory_cmd::revoke(&input, &key, at, &reason, replace_with.as_deref())?;
                let added = edit.added.map(|k| format!(", new key {k} listed")).unwrap_or_default();
                print(
                    &mut out,
                    &format!(
                        "revoked {key} from {at}{added} in {} (serial {} -> serial {}); now sign and publish it",
                        input.display(),
                        edit.old_serial,
                        edit.new_serial
                    ),
                )
            }
            Command::Directory(DirectoryCommand::Publish { file }) => {
                let serial = crate::directory_cmd::publish(&settings, &file)?;
                print(&mut out, &format!("the hub now enforces directory serial {serial}"))
            }
            Command::Directory(DirectoryCommand::Show { json }) => {
                let d = settings.trusted_directory(&settings.hub_as_reader()?)?.directory;
                if json {
                    return print(
                        &mut out,
                        &serde_json::to_string_pretty(&d).map_err(|e| Error::input("internal", e.to_string()))?,
                    );
                }
                print(
                    &mut out,
                    &format!(
                        "directory serial {} issued {} (verified against the pinned authority key)",
                        d.serial, d.issued_at
                    ),
                )?;
                for p in &d.parties {
                    print(
                        &mut out,
                        &format!(
                            "  {:<26} {:<28} {:<16} {} key(s)",
                            p.id,
                            p.name,
                            p.aliases.join(" "),
                            p.members.len()
                        ),
                    )?;
                }
                for a in &d.agreements {
                    print(
                        &mut out,
                        &format!(
                            "  agreement {}: {} ({} parties, drops live at most {} days, {} to {})",
                            a.id,
                            a.title,
                            a.parties.len(),
                            a.max_expiry_days,
                            a.valid_from,
                            a.valid_until
                        ),
                    )?;
                }
                Ok(())
            }
            Command::Send {
                split_by: Some(column),
                sheet,
                agreement,
                expires,
                json,
                paths,
                dry_run,
                yes,
                allow_unroutable,
                encoding,
                ..
            } => {
                let [input] = <[PathBuf; 1]>::try_from(paths).map_err(|_| {
                    Error::input("split_one_file", "--split-by splits exactly one .csv or .xlsx file; give just one")
                })?;
                let encoding = encoding.as_deref().map(crate::encoding::parse_label).transpose()?;
                if let Some(e) = encoding {
                    eprintln!("reading {} as {}: the parts are sent converted to UTF-8", input.display(), e.name());
                }
                let req = SplitRequest { input, column, sheet, agreement, expires, allow_unroutable, encoding };
                crate::interrupt::install("split")?;
                split_send(&settings, &req, SplitMode { dry_run, yes, json }, &mut out)
            }
            Command::Send { to, agreement, expires, json, paths, allow_empty, allow_own_party, encoding, .. } => {
                crate::interrupt::install("send")?;
                let allow = crate::preflight::Allow { empty: allow_empty, own_party: allow_own_party };
                let outcome = send::send(&settings, &SendRequest { to, agreement, expires, paths, allow, encoding });
                // After Ctrl-C, the interrupt handler has the last word.
                crate::interrupt::settle();
                let outcome = outcome?;
                if json {
                    print(
                        &mut out,
                        &serde_json::to_string(&outcome).map_err(|e| Error::input("internal", e.to_string()))?,
                    )
                } else {
                    eprintln!(
                        "sent {} file(s), {} encrypted, to {} under `{}`; expires {}",
                        outcome.files,
                        human_bytes(outcome.size),
                        outcome.recipients.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(", "),
                        outcome.agreement,
                        outcome.expires
                    );
                    print(&mut out, outcome.id.as_str())
                }
            }
            Command::Inbox { json } => crate::inbox::run(&settings, json, &mut out),
            Command::Fetch { ids, all, out: dest, json, merge_csv, keep_formulas } => {
                // `fetch` refuses before fetching anything when the merge
                // could not be written, and only when there is something to fetch.
                let which = if all { Which::All } else { Which::Ids(ids) };
                let run = fetch::fetch(&settings, &which, &dest, merge_csv.as_deref())?;
                let nothing_fetched = run.results.is_empty();
                let mut first_err = None;
                let mut report = Vec::new();
                let mut fetched = Vec::new();
                for r in &run.skipped {
                    eprintln!("{}", r.skip_note());
                    report.push(serde_json::json!({"ok": false, "skipped": true, "drop": r.drop, "code": r.code, "message": r.message}));
                }
                for r in run.results {
                    match r {
                        Ok(o) => {
                            if !json {
                                eprintln!(
                                    "fetched {} from {}: {} file(s), {} into {} ({})",
                                    o.id,
                                    o.from,
                                    o.files,
                                    human_bytes(o.bytes),
                                    crate::names::shown_path(&o.dest),
                                    o.names_note()
                                );
                            }
                            for w in &o.formulas {
                                eprintln!("{}", w.describe());
                            }
                            report.push(serde_json::json!({"ok": true, "drop": o}));
                            fetched.push(o);
                        }
                        Err(e) => {
                            eprintln!("{e}");
                            report.push(serde_json::json!({"ok": false, "code": e.code, "message": e.message}));
                            first_err.get_or_insert(e);
                        }
                    }
                }
                if !json && report.is_empty() {
                    eprintln!("no drops waiting");
                }
                // Merge whatever this run fetched, even when some drops failed.
                let formulas =
                    if keep_formulas { crate::merge::Formulas::Keep } else { crate::merge::Formulas::Neutralise };
                let merge_result = merge_csv.as_deref().map(|path| {
                    crate::fetch::csv_parts(&fetched)
                        .and_then(|parts| crate::merge::merge_csv_parts(&parts, path, formulas))
                });
                let merge_err = match &merge_result {
                    Some(Err(e)) => {
                        let e = Error {
                            message: format!(
                                "{}; the fetched files are in place in {} (the drops were acknowledged, so a new fetch will not bring them again): fix or combine them there",
                                e.message,
                                crate::names::shown_path(&dest)
                            ),
                            ..e.clone()
                        };
                        eprintln!("{e}");
                        Some(e)
                    }
                    Some(Ok(None)) if nothing_fetched => {
                        let path = merge_csv.as_deref().unwrap_or(std::path::Path::new(""));
                        let kept =
                            if path.symlink_metadata().is_ok() { "was left as it is" } else { "was not written" };
                        eprintln!(
                            "nothing was waiting to fetch, so nothing was merged: {} {kept}",
                            crate::names::shown_path(path)
                        );
                        None
                    }
                    Some(Ok(None)) => {
                        eprintln!("no CSV parts to merge");
                        None
                    }
                    Some(Ok(Some(m))) => {
                        let plural = |n: u64, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
                        eprintln!(
                            "merged {} from {} (from {}) into {}",
                            plural(m.rows, "row"),
                            plural(m.parts as u64, "part"),
                            m.parties.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(", "),
                            crate::names::shown_path(&m.path)
                        );
                        if m.neutralised > 0 {
                            eprintln!(
                                "{} that a spreadsheet would run as a formula {} written with a leading ' (the received files are unchanged; --keep-formulas writes them as sent)",
                                plural(m.neutralised, "cell"),
                                if m.neutralised == 1 { "was" } else { "were" }
                            );
                        }
                        None
                    }
                    None => None,
                };
                if json {
                    let value = match &merge_result {
                        None => serde_json::json!(report),
                        Some(r) => {
                            let merged = match r {
                                Ok(Some(m)) => serde_json::json!(m),
                                _ => serde_json::Value::Null,
                            };
                            let mut v = serde_json::json!({"drops": report, "merged": merged});
                            if let Some(e) = &merge_err {
                                v["merge_error"] = serde_json::json!({"code": e.code, "message": e.message});
                            }
                            v
                        }
                    };
                    print(
                        &mut out,
                        &serde_json::to_string_pretty(&value).map_err(|e| Error::input("internal", e.to_string()))?,
                    )?;
                }
                // A failed fetch decides the exit status; then a failed merge.
                match first_err.or(merge_err) {
                    // Already printed above; exit with its status without printing again.
                    Some(e) => Err(Error { message: String::new(), ..e }),
                    None => Ok(()),
                }
            }
            Command::Status { id, since, agreement, json } => {
                let since = since.map(|s| parse_since(&s)).transpose()?;
                crate::status::run(&settings, &crate::status::StatusRequest { id, since, agreement }, json, &mut out)
            }
            Command::Recall { id, json } => crate::recall::run(&settings, &id, json, &mut out),
            Command::Journal { since, agreement, party, checkpoints, json } => {
                let since = since.map(|s| parse_since(&s)).transpose()?;
                let party = party.map(|p| crate::suggest::journal_party(&settings, &p)).transpose()?;
                let filter = crate::journal::Filter { since, agreement, party, checkpoints };
                crate::journal::run(&settings.state_dir, &filter, json, &mut out)
            }
            Command::Witness { command: Some(WitnessCommand::Keygen { party, out: path }) } => {
                let key = sealdrop_proto::keys::NoteSigningKey::generate(&format!("{party}.witness")).map_err(|e| {
                    Error::input("bad_key_name", format!("{e}; give your party id as --party, e.g. camden"))
                })?;
                write_new_atomic(&path, format!("{}\n", key.to_note_text().as_str()).as_bytes(), true)?;
                eprintln!(
                    "wrote witness key {} (mode 0600); ask the coordinator to list this under your party's witness_keys:",
                    path.display()
                );
                print(&mut out, &key.cosigner_verifier().to_string())
            }
            Command::Witness { command: None } => {
                let path = settings.witness_key.clone().ok_or_else(|| {
                    Error::input(
                        "no_witness_key",
                        "no witness key given: pass --witness-key FILE (make one with `sealdrop witness keygen`)",
                    )
                })?;
                let key = crate::logcheck::load_witness_key(&path)?;
                // A member's session verifies the checkpoint (and, with a
                // witness key, cosigns it); a witness without a member key
                // verifies it the same way, signing its requests as the witness.
                let (hub, checkpoint) = if settings.identity.is_some() {
                    let session = settings.session()?;
                    (session.hub, session.checkpoint)
                } else {
                    settings.witness_session(&key)?
                };
                crate::logcheck::witness(&hub, &key, &checkpoint, settings.clock.now())?;
                print(&mut out, &format!("cosigned checkpoint of {} entries as {}", checkpoint.size, key.name()))
            }
            Command::Audit(AuditCommand::Verify { bundle, witnesses, log_key, json, strict }) => {
                let verdict = match &bundle {
                    Some(path) => crate::audit_cmd::verify_bundle(&settings, path, witnesses, log_key.as_deref())?,
                    None => crate::audit_cmd::verify_hub(&settings, witnesses, log_key.as_deref())?,
                };
                crate::audit_cmd::report_verdict(&verdict, json, strict, &mut out)
            }
            Command::Audit(AuditCommand::Report {
                bundle,
                agreement,
                since,
                until,
                force,
                csv,
                html,
                log_key,
                json,
            }) => {
                let since = since.map(|s| parse_since(&s)).transpose()?;
                let until = until.map(|s| parse_date("--until", &s)).transpose()?;
                let req = crate::audit_cmd::ReportRequest {
                    bundle,
                    agreement,
                    since,
                    until,
                    force,
                    csv: csv.clone(),
                    html: html.clone(),
                    log_key,
                    json,
                };
                let (verdict, report) = crate::audit_cmd::report(&settings, &req)?;
                let mut lines = vec![format!(
                    "log of {} verified ({} entries); report covers {} drops",
                    verdict.origin, verdict.entries, report.totals.drops
                )];
                lines.extend(csv.iter().chain(html.iter()).map(|path| format!("wrote {}", path.display())));
                if !json {
                    return lines.iter().try_for_each(|l| print(&mut out, l));
                }
                // stdout carries only the rows.
                lines.iter().for_each(|l| eprintln!("{l}"));
                crate::audit::report::write_json_lines(&report, &mut out)
                    .map_err(|e| Error::io("cannot write the rows to stdout", e))
            }
            Command::Audit(AuditCommand::Export { out: path, force }) => {
                let n = crate::audit_cmd::export(&settings, &path, force)?;
                print(
                    &mut out,
                    &format!(
                        "exported {n} log entries, the checkpoint and every directory version to {}",
                        path.display()
                    ),
                )
            }
            Command::Demo => crate::demo::run(&mut out),
            Command::Completions { .. } | Command::Man { .. } => {
                unreachable!("answered at the top, before the settings are resolved")
            }
            Command::Sample(SampleCommand::Fsm {
                rows,
                seed,
                school_la,
                home_las,
                local_share,
                unroutable,
                out: path,
            }) => {
                let opts = crate::sample::FsmOptions { rows, seed, school_la, home_las, local_share, unroutable };
                let summary = crate::sample::write_fsm(&opts, &path)?;
                eprintln!("{}", summary.describe(&path));
                Ok(())
            }
        }
    }
}
