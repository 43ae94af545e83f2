//! The `sealdrop-demo` command line: `demo` (also what it does with no
//! command, so `cargo run -p sealdrop-demo` is the whole demo) and
//! `sample fsm`, with the arguments `sealdrop demo` and `sealdrop sample`
//! pass on. The `sample` options are the client's own definition, so the
//! two programs cannot parse them differently.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use sealdrop::cli::external::SampleCommand;
use sealdrop::error::{Result, USAGE_EXIT};

/// sealdrop's demonstration and synthetic test data.
#[derive(Debug, Parser)]
#[command(name = "sealdrop-demo", version, after_help = sealdrop::error::exit_codes_help())]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a self-contained demonstration with a local hub and example keys (the default).
    Demo,
    /// Generate synthetic test data (invented pupils, never real people).
    #[command(subcommand)]
    Sample(SampleCommand),
}

/// Parses the command line and runs it; errors are reported as the
/// `sealdrop` client reports them (one line, the same exit statuses).
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if matches!(e.kind(), clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("{}", sealdrop::usage::usage_error(&e.render().to_string()));
            return ExitCode::from(USAGE_EXIT);
        }
    };
    let result = run(cli.command.unwrap_or(Command::Demo));
    sealdrop::interrupt::settle();
    sealdrop::cli::finish(result.map(|()| ExitCode::SUCCESS))
}

fn run(command: Command) -> Result<()> {
    match command {
        Command::Demo => crate::demo::run(&mut sealdrop::stdout::Stdout::lock()),
        Command::Sample(SampleCommand::Fsm(args)) => {
            let opts = crate::sample::FsmOptions {
                rows: args.rows,
                seed: args.seed,
                school_la: args.school_la,
                home_las: args.home_las,
                local_share: args.local_share,
                unroutable: args.unroutable,
            };
            let summary = crate::sample::write_fsm(&opts, &args.out)?;
            eprintln!("{}", summary.describe(&args.out));
            Ok(())
        }
    }
}
