//! The commands that describe the command line itself, `completions` and
//! `man`, and the sections sealdrop adds to every man page.

use std::path::PathBuf;

use clap::{CommandFactory as _, Subcommand};

use super::{Cli, examples};
use crate::error::{Error, Result};

#[derive(Debug, Subcommand)]
pub(super) enum DescribeCommand {
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

impl DescribeCommand {
    /// Runs it: no settings, config file or hub are needed.
    pub(super) fn run(self) -> Result<()> {
        match self {
            DescribeCommand::Completions { shell } => write_completions(shell),
            DescribeCommand::Man { out } => write_man_pages(&out),
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
