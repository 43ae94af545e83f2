//! `sealdrop demo` and `sealdrop sample`: run by the separate `sealdrop-demo`
//! executable (crates/sealdrop-demo), so that the client does not link the
//! hub the demo starts, nor carry the example keys. They stay commands of
//! `sealdrop` (with their help, completions and man pages) and are passed on
//! like git's and cargo's external subcommands: the executable beside this
//! one, else the one on `PATH`, with the arguments parsed here and its exit
//! status passed through.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::error::{Error, ErrorCode, Result};

/// The program that runs the demo and writes sample data.
pub const EXECUTABLE: &str = "sealdrop-demo";

/// `sealdrop sample ...` (and `sealdrop-demo sample ...`).
#[derive(Debug, Subcommand)]
pub enum SampleCommand {
    /// Write a synthetic free-school-meals pupil list (.csv or .xlsx, by extension);
    /// the same seed and options give the same file.
    Fsm(FsmArgs),
}

// The options of `sample fsm`; its help text is the variant's above.
#[derive(Debug, Args)]
pub struct FsmArgs {
    /// Number of pupil rows.
    #[arg(long)]
    pub rows: u64,
    /// Random seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The borough whose schools the pupils attend (party id, e.g. `camden`).
    #[arg(long, default_value = "camden")]
    pub school_la: String,
    /// Spread out-of-borough pupils over this many nearest other boroughs (1 to 32).
    #[arg(long, default_value_t = 12)]
    pub home_las: usize,
    /// Percentage of pupils living in the school borough itself (0 to 100).
    #[arg(long, default_value_t = 70)]
    pub local_share: u8,
    /// Exactly this many rows get a home authority outside London (cannot be routed).
    #[arg(long, default_value_t = 0)]
    pub unroutable: u64,
    /// The file to create, FILE.csv or FILE.xlsx (never overwritten).
    #[arg(short = 'o', long = "out")]
    pub out: PathBuf,
}

impl SampleCommand {
    /// The `sealdrop-demo` arguments that run this command: every option
    /// spelt out, so the other program parses exactly what was parsed here.
    pub fn external_args(&self) -> Vec<OsString> {
        match self {
            SampleCommand::Fsm(a) => {
                let mut args: Vec<OsString> = ["sample", "fsm"].map(OsString::from).into();
                for (flag, value) in [
                    ("--rows", a.rows.to_string()),
                    ("--seed", a.seed.to_string()),
                    ("--school-la", a.school_la.clone()),
                    ("--home-las", a.home_las.to_string()),
                    ("--local-share", a.local_share.to_string()),
                    ("--unroutable", a.unroutable.to_string()),
                ] {
                    args.extend([OsString::from(flag), OsString::from(value)]);
                }
                args.extend([OsString::from("--out"), a.out.clone().into_os_string()]);
                args
            }
        }
    }
}

/// Runs `sealdrop-demo` with `args`, its standard streams this process's,
/// and returns its exit status (128 + the signal's number if a signal ended
/// it, as a shell reports it).
pub fn run(args: &[OsString]) -> Result<ExitCode> {
    let beside = std::env::current_exe().ok().and_then(|exe| Some(exe.parent()?.join(EXECUTABLE)));
    // Not beside this executable: the system looks it up on PATH.
    let program = beside.filter(|p| p.is_file()).unwrap_or_else(|| PathBuf::from(EXECUTABLE));
    let status = std::process::Command::new(&program).args(args).status().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::new(
                ErrorCode::DemoNotInstalled,
                format!(
                    "`sealdrop demo` and `sealdrop sample` are run by the {EXECUTABLE} program, which is neither beside sealdrop nor on PATH; install it from sealdrop's source with `cargo install --locked --path crates/{EXECUTABLE}`, or run `cargo run --release -p {EXECUTABLE} -- ARGS` there"
                ),
            )
        } else {
            Error::io(format!("cannot run {}", program.display()), e)
        }
    })?;
    let code = status.code().unwrap_or_else(|| {
        use std::os::unix::process::ExitStatusExt as _;
        status.signal().map_or(1, |signal| 128 + signal)
    });
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}
