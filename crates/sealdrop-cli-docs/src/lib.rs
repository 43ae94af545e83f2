//! Shell completions and man pages for sealdrop's binaries (`sealdrop`,
//! `sealdrop-hub`), generated from their clap definitions at run time, so
//! they always describe exactly the binary that prints them and can never
//! drift from `--help`.
//!
//! - [`write_completions`]: a completion script for one [`Shell`].
//! - [`man_pages`] and [`write_man_pages`]: one roff page per command and
//!   visible subcommand (`sealdrop.1`, `sealdrop-send.1`,
//!   `sealdrop-directory-show.1`, ...), with extra sections such as EXIT
//!   STATUS on every page; [`man_pages_with`] and [`write_man_pages_with`]
//!   choose each page's extra sections (such as its EXAMPLES) by its command path.
#![forbid(unsafe_code)]

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use clap_mangen::roff::{Roff, bold, roman};

pub use clap_complete::Shell;

/// Writes the completion script for `shell` to `out`. The script is built in
/// memory first, so a failed write (a closed pipe) is reported rather than
/// half-written silently.
pub fn write_completions(mut cmd: clap::Command, shell: Shell, out: &mut dyn Write) -> io::Result<()> {
    let bin_name = cmd.get_bin_name().unwrap_or_else(|| cmd.get_name()).to_owned();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, bin_name, &mut script);
    out.write_all(&script)?;
    out.flush()
}

/// A section added to every man page after the generated ones: a heading
/// (e.g. `EXIT STATUS`) and tagged paragraphs (e.g. `3` / "bad input").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManSection {
    /// The section heading, upper case by man-page convention.
    pub heading: String,
    /// Each entry's tag (shown in bold) and its text.
    pub entries: Vec<(String, String)>,
}

/// One rendered man page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManPage {
    /// The file name, `<command>[-<subcommand>...].1`.
    pub file_name: String,
    /// The page in roff.
    pub roff: Vec<u8>,
}

/// Renders a page for `cmd` and for each of its visible subcommands, at any
/// depth (clap's own `help` subcommand excluded), each ending with `extra`.
pub fn man_pages(cmd: clap::Command, extra: &[ManSection]) -> Vec<ManPage> {
    man_pages_with(cmd, &|_| extra.to_vec())
}

/// Like [`man_pages`], with each page's extra sections chosen by `extra`
/// from the page's command path: `[]` for the program itself,
/// `["directory", "show"]` for `prog directory show` (e.g. its EXAMPLES).
pub fn man_pages_with(cmd: clap::Command, extra: &dyn Fn(&[String]) -> Vec<ManSection>) -> Vec<ManPage> {
    fn collect(
        cmd: clap::Command,
        path: &[String],
        source: &str,
        extra: &dyn Fn(&[String]) -> Vec<ManSection>,
        pages: &mut Vec<ManPage>,
    ) {
        pages.push(render(&cmd, source, &extra(path)));
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned() {
            let mut sub_path = path.to_vec();
            sub_path.push(sub.get_name().to_owned());
            collect(sub, &sub_path, source, extra, pages);
        }
    }
    let mut cmd = cmd.disable_help_subcommand(true);
    // Building names every subcommand `<parent>-<name>`, which becomes its page's title and file name.
    cmd.build();
    let source = format!("{} {}", cmd.get_name(), cmd.get_version().unwrap_or_default()).trim_end().to_owned();
    let mut pages = Vec::new();
    collect(cmd, &[], &source, extra, &mut pages);
    pages
}

/// Renders one page: clap_mangen's page, then `extra`. Every page names the
/// whole program and its version as its source (clap gives subcommands none).
fn render(cmd: &clap::Command, source: &str, extra: &[ManSection]) -> ManPage {
    let man = clap_mangen::Man::new(cmd.clone()).source(source);
    let mut roff = Vec::new();
    man.render(&mut roff).expect("writing to memory cannot fail");
    let mut sections = Roff::new();
    for section in extra {
        sections.control("SH", [section.heading.as_str()]);
        for (tag, text) in &section.entries {
            sections.control("TP", []);
            sections.text([bold(tag.as_str())]);
            sections.text([roman(text.as_str())]);
        }
    }
    // `render` starts with roff's apostrophe preamble, which the page already has.
    let preamble = Roff::new().render();
    let rendered = sections.render();
    roff.extend_from_slice(rendered.strip_prefix(preamble.as_str()).unwrap_or(&rendered).as_bytes());
    ManPage { file_name: man.get_filename(), roff }
}

/// Writes [`man_pages`] into `dir` (created if missing). Each page goes to a
/// temporary file in `dir` that is synced and then renamed over its name, so
/// a reader (or `man`) never sees half a page; an existing page is replaced.
/// Returns the paths written, the top-level page first.
pub fn write_man_pages(cmd: clap::Command, dir: &Path, extra: &[ManSection]) -> io::Result<Vec<PathBuf>> {
    write_man_pages_with(cmd, dir, &|_| extra.to_vec())
}

/// [`write_man_pages`] of [`man_pages_with`]: each page's extra sections chosen by its command path.
pub fn write_man_pages_with(
    cmd: clap::Command,
    dir: &Path,
    extra: &dyn Fn(&[String]) -> Vec<ManSection>,
) -> io::Result<Vec<PathBuf>> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    for page in man_pages_with(cmd, extra) {
        let path = dir.join(&page.file_name);
        // Man pages are for everyone to read, unlike tempfile's default 0600.
        let mut tmp = tempfile::Builder::new()
            .prefix(".sealdrop-man-")
            .permissions(std::fs::Permissions::from_mode(0o644))
            .tempfile_in(dir)?;
        tmp.write_all(&page.roff)?;
        tmp.as_file().sync_all()?;
        tmp.persist(&path).map_err(|e| e.error)?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Arg, Command};

    fn tool() -> Command {
        Command::new("tool")
            .version("1.2.3")
            .about("A tool.")
            .after_help("Read this.")
            .arg(Arg::new("verbose").long("verbose").action(clap::ArgAction::SetTrue).help("Say more."))
            .subcommand(
                Command::new("send")
                    .about("Send things.")
                    .arg(Arg::new("split-by").long("split-by").value_name("COLUMN").help("Split by COLUMN.")),
            )
            .subcommand(
                Command::new("directory").about("Directory tools.").subcommand(Command::new("show").about("Show it.")),
            )
            .subcommand(Command::new("secret").hide(true))
    }

    fn exit_status() -> ManSection {
        ManSection {
            heading: "EXIT STATUS".into(),
            entries: vec![("0".into(), "Success.".into()), ("7".into(), "Seven went wrong.".into())],
        }
    }

    #[test]
    fn one_page_per_visible_command_named_after_its_path() {
        let names: Vec<String> = man_pages(tool(), &[]).into_iter().map(|p| p.file_name).collect();
        assert_eq!(names, ["tool.1", "tool-send.1", "tool-directory.1", "tool-directory-show.1"]);
    }

    #[test]
    fn pages_carry_options_subcommands_and_the_extra_sections() {
        let pages = man_pages(tool(), &[exit_status()]);
        let text =
            |name: &str| String::from_utf8(pages.iter().find(|p| p.file_name == name).unwrap().roff.clone()).unwrap();
        let top = text("tool.1");
        assert!(top.contains("\n.TH tool 1  \"tool 1.2.3\""), "{top}");
        assert!(top.contains("tool\\-send(1)"), "{top}");
        assert!(top.contains("Read this."), "{top}");
        assert!(!top.contains("secret"), "a hidden subcommand is listed: {top}");
        let send = text("tool-send.1");
        assert!(send.contains("\\-\\-split\\-by"), "{send}");
        assert!(send.contains("Split by COLUMN."), "{send}");
        for page in [&top, &send, &text("tool-directory-show.1")] {
            let at = page.find(".SH \"EXIT STATUS\"").unwrap_or_else(|| panic!("no EXIT STATUS: {page}"));
            assert!(page[at..].contains(".TP\n\\fB7\\fR\nSeven went wrong."), "{page}");
        }
    }

    #[test]
    fn each_page_gets_the_sections_chosen_for_its_command_path() {
        let examples = |path: &[String]| {
            vec![ManSection {
                heading: "EXAMPLES".into(),
                entries: vec![(format!("tool {}", path.join(" ")).trim_end().to_owned(), "Run it.".into())],
            }]
        };
        let pages = man_pages_with(tool(), &examples);
        let text =
            |name: &str| String::from_utf8(pages.iter().find(|p| p.file_name == name).unwrap().roff.clone()).unwrap();
        assert!(text("tool.1").contains(".SH EXAMPLES\n.TP\n\\fBtool\\fR\nRun it."), "{}", text("tool.1"));
        let show = text("tool-directory-show.1");
        assert!(show.contains(".SH EXAMPLES\n.TP\n\\fBtool directory show\\fR\nRun it."), "{show}");
    }

    #[test]
    fn writing_replaces_pages_atomically_and_leaves_no_temporary_files() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("man/man1");
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(out.join("tool-send.1"), "old page").unwrap();
        let written = write_man_pages(tool(), &out, &[]).unwrap();
        assert_eq!(written.len(), 4);
        assert_eq!(written[0], out.join("tool.1"));
        let mut names: Vec<String> =
            std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        assert_eq!(names, ["tool-directory-show.1", "tool-directory.1", "tool-send.1", "tool.1"]);
        let send = std::fs::read_to_string(out.join("tool-send.1")).unwrap();
        assert!(send.contains("\n.TH tool-send 1  \"tool 1.2.3\""), "{send}");
        assert_eq!(std::fs::metadata(out.join("tool.1")).unwrap().permissions().mode() & 0o777, 0o644);
    }

    #[test]
    fn completions_name_every_subcommand_and_report_a_failed_write() {
        let mut script = Vec::new();
        write_completions(tool(), Shell::Bash, &mut script).unwrap();
        let script = String::from_utf8(script).unwrap();
        for word in ["tool", "send", "directory", "show", "--split-by"] {
            assert!(script.contains(word), "{word} missing from:\n{script}");
        }

        struct Closed;
        impl Write for Closed {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let err = write_completions(tool(), Shell::Zsh, &mut Closed).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    }
}
