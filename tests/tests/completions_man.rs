//! Shell completions, man pages and the documented exit statuses of both
//! binaries, generated from their command-line definitions.

use std::path::Path;
use std::process::{Command, Stdio};

use clap::CommandFactory as _;
use sealdrop::error::{Kind, USAGE_EXIT, exit_statuses};
use sealdrop_e2e::{Hub, Party, Tool, authority_pub, bins, closed_port, list_dir, read_text, write_file};

/// Every visible subcommand path of the client, e.g. `["directory", "show"]`.
fn client_command_paths() -> Vec<Vec<String>> {
    fn walk(cmd: &clap::Command, prefix: &[String], out: &mut Vec<Vec<String>>) {
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set() && s.get_name() != "help") {
            let mut path = prefix.to_vec();
            path.push(sub.get_name().to_owned());
            out.push(path.clone());
            walk(sub, &path, out);
        }
    }
    let mut out = Vec::new();
    walk(&sealdrop::cli::Cli::command(), &[], &mut out);
    out
}

/// The long flags of the client's global options (`--hub`, `--quiet`, ...).
fn client_global_flags() -> Vec<String> {
    let cmd = sealdrop::cli::Cli::command();
    let flags: Vec<String> = cmd
        .get_arguments()
        .filter(|a| a.is_global_set())
        .filter_map(|a| a.get_long())
        .map(|l| format!("--{l}"))
        .collect();
    assert!(flags.len() >= 9, "{flags:?}");
    flags
}

/// The long flags a subcommand defines itself (not the global ones, not --help).
fn own_flags(path: &[String]) -> Vec<String> {
    let mut cmd = sealdrop::cli::Cli::command();
    for name in path {
        cmd = cmd.find_subcommand(name).unwrap_or_else(|| panic!("no subcommand {name}")).clone();
    }
    cmd.get_arguments()
        .filter(|a| !a.is_global_set())
        .filter_map(|a| a.get_long())
        .filter(|l| *l != "help")
        .map(|l| format!("--{l}"))
        .collect()
}

/// The hub's subcommands, read from its `--help`.
fn hub_subcommands() -> Vec<String> {
    commands_in_help(&run_ok(Command::new(&bins().hub).arg("--help")))
}

/// The commands a `--help` lists (none if it has no Commands section).
fn commands_in_help(help: &str) -> Vec<String> {
    let Some(commands) = help.split("Commands:").nth(1) else { return Vec::new() };
    commands
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .map(|l| l.split_whitespace().next().unwrap().to_owned())
        .filter(|c| c != "help")
        .collect()
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// What bash completes for the words typed so far (the last one being completed).
fn bash_complete(script: &Path, words: &[&str]) -> Vec<String> {
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let program = format!(
        "source '{}'\nCOMP_WORDS=({})\nCOMP_CWORD={}\nCOMP_LINE='{}'\nCOMP_POINT=${{#COMP_LINE}}\n_{} '{}' '{}' '{}'\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display(),
        quoted.join(" "),
        words.len() - 1,
        words.join(" "),
        words[0].replace('-', "__"),
        words[0],
        words[words.len() - 1],
        words[words.len() - 2],
    );
    run_ok(Command::new("bash").arg("-c").arg(program)).lines().map(str::to_owned).collect()
}

#[test]
fn bash_completion_of_the_client_knows_every_subcommand_and_completes() {
    let tool = Tool::new();
    let script = tool.ok(["completions", "bash"]);
    let path = tool.dir.path().join("sealdrop.bash");
    write_file(&path, &script);
    let syntax = Command::new("bash").arg("-n").arg(&path).output().unwrap();
    assert!(syntax.status.success(), "bash -n: {}", String::from_utf8_lossy(&syntax.stderr));
    let paths = client_command_paths();
    assert!(paths.len() > 20, "{paths:?}");
    for p in &paths {
        let name = p.last().unwrap();
        assert!(script.contains(name.as_str()), "the bash completion does not mention `{}`", p.join(" "));
    }
    // It really completes: a subcommand, a nested one and an option.
    assert_eq!(bash_complete(&path, &["sealdrop", "direc"]), ["directory"]);
    assert!(bash_complete(&path, &["sealdrop", "directory", "sh"]).contains(&"show".to_owned()));
    assert_eq!(bash_complete(&path, &["sealdrop", "send", "--split-b"]), ["--split-by"]);
    assert!(bash_complete(&path, &["sealdrop", "--insecure"]).iter().any(|w| w.starts_with("--insecure-http")));
}

#[test]
fn every_shell_gets_a_completion_script_from_both_binaries() {
    let tool = Tool::new();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let client = tool.ok(["completions", shell]);
        assert!(client.contains("sealdrop") && client.contains("split-by"), "{shell}:\n{client}");
        let hub = run_ok(Command::new(&bins().hub).args(["completions", shell]));
        assert!(hub.contains("sealdrop-hub") && hub.contains("verifier-key"), "{shell}:\n{hub}");
    }
    let path = tool.dir.path().join("hub.bash");
    let hub = run_ok(Command::new(&bins().hub).args(["completions", "bash"]));
    write_file(&path, &hub);
    let syntax = Command::new("bash").arg("-n").arg(&path).output().unwrap();
    assert!(syntax.status.success(), "bash -n: {}", String::from_utf8_lossy(&syntax.stderr));
    let subcommands = hub_subcommands();
    for c in ["init", "serve", "verifier-key", "completions", "man"] {
        assert!(subcommands.iter().any(|s| s == c), "{c} is not in {subcommands:?}");
    }
    for c in &subcommands {
        assert!(hub.contains(c.as_str()), "the hub's bash completion does not mention `{c}`");
    }
    let (exit, stderr) = tool.fail(["completions", "tcsh"]);
    assert_eq!((exit, sealdrop_e2e::error_code(&stderr).as_deref()), (2, Some("usage")), "{stderr}");
}

/// `man -l` renders a page to plain text.
fn render_man(page: &Path) -> String {
    let out = Command::new("man")
        .arg("-l")
        .arg(page)
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "120")
        .env("LANG", "C")
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .output()
        .expect("run `man` (Debian: apt-get install man-db groff-base)");
    assert!(out.status.success(), "man -l {}: {}", page.display(), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn man_pages_of_the_client_one_per_command_render_with_exit_statuses() {
    let tool = Tool::new();
    let dir = tool.dir.path().join("share/man/man1");
    let out = tool.run(["man", "--out", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut want: Vec<String> = client_command_paths().iter().map(|p| format!("sealdrop-{}.1", p.join("-"))).collect();
    want.push("sealdrop.1".to_owned());
    want.sort();
    assert_eq!(list_dir(&dir), want, "one page per command, and no temporary files left");

    let send = dir.join("sealdrop-send.1");
    let text = render_man(&send);
    assert!(text.contains("--split-by <COLUMN>"), "sealdrop-send(1) does not document --split-by:\n{text}");
    assert!(text.contains("Split one .csv or .xlsx file by this column"), "{text}");
    let groff = Command::new("groff").args(["-man", "-Tutf8", "-ww", "-z"]).arg(&send).output().expect("run groff");
    assert!(groff.status.success() && groff.stderr.is_empty(), "groff: {}", String::from_utf8_lossy(&groff.stderr));

    // Every page documents the exit statuses, from the same table as the code.
    for page in ["sealdrop.1", "sealdrop-send.1", "sealdrop-directory-show.1"] {
        let text = render_man(&dir.join(page));
        let section = text.split("EXIT STATUS").nth(1).unwrap_or_else(|| panic!("{page} has no EXIT STATUS:\n{text}"));
        for (code, meaning) in exit_statuses() {
            let first_words: String = meaning.split_whitespace().take(3).collect::<Vec<_>>().join(" ");
            assert!(
                section.lines().any(|l| {
                    let l = l.trim_start();
                    l.starts_with(&format!("{code} ")) && l.contains(&first_words[1..])
                }),
                "{page}: exit status {code} ({meaning}) is not documented:\n{section}"
            );
        }
    }
    let top = render_man(&dir.join("sealdrop.1"));
    assert!(top.contains("sealdrop-directory(1)") && top.contains("--insecure-http"), "{top}");

    // Running it again replaces the pages in place.
    write_file(&send, "stale");
    let again = tool.run(["man", "--out", dir.to_str().unwrap()]);
    assert!(again.status.success());
    assert!(read_text(&send).contains("split\\-by"), "the stale page was not replaced");
    assert_eq!(list_dir(&dir), want);

    // A folder that cannot be made is an error that says so.
    let blocker = tool.dir.path().join("a-file");
    write_file(&blocker, "x");
    let (exit, stderr) = tool.fail(["man", "--out", blocker.join("man1").to_str().unwrap()]);
    assert_eq!(exit, i32::from(Kind::Other.exit_code()), "{stderr}");
    assert!(stderr.contains("cannot write the man pages into"), "{stderr}");
}

#[test]
fn man_pages_of_the_hub_one_per_command() {
    let tool = Tool::new();
    let dir = tool.dir.path().join("man1");
    run_ok(Command::new(&bins().hub).arg("man").arg("--out").arg(&dir));
    let mut want: Vec<String> = Vec::new();
    for c in hub_subcommands() {
        // A page per nested command too (`tls self-signed`).
        let nested = commands_in_help(&run_ok(Command::new(&bins().hub).args([c.as_str(), "--help"])));
        want.extend(nested.iter().map(|n| format!("sealdrop-hub-{c}-{n}.1")));
        want.push(format!("sealdrop-hub-{c}.1"));
    }
    want.push("sealdrop-hub.1".to_owned());
    want.sort();
    assert_eq!(list_dir(&dir), want);
    let serve = render_man(&dir.join("sealdrop-hub-serve.1"));
    assert!(serve.contains("--listen") && serve.contains("--data"), "{serve}");
}

/// The `Exit status:` list of `sealdrop --help`, as (status, meaning).
fn documented_exit_statuses(help: &str) -> Vec<(u8, String)> {
    help.split("Exit status:")
        .nth(1)
        .expect("`sealdrop --help` has an `Exit status:` list")
        .lines()
        .skip(1)
        .map_while(|l| l.strip_prefix("  "))
        .map(|l| {
            let (code, meaning) = l.split_once("  ").unwrap_or_else(|| panic!("not `  N  meaning`: {l:?}"));
            (code.parse().unwrap_or_else(|_| panic!("not a status: {l:?}")), meaning.to_owned())
        })
        .collect()
}

#[test]
fn help_documents_the_exit_statuses_the_client_really_uses() {
    let tool = Tool::new();
    let documented = documented_exit_statuses(&tool.ok(["--help"]));
    let table: Vec<(u8, String)> = exit_statuses().into_iter().map(|(c, m)| (c, m.to_owned())).collect();
    assert_eq!(documented, table, "`--help` must list exactly the client's exit statuses");
    let doc = read_text(&sealdrop_e2e::repo_root().join("docs/cli.md"));
    let doc_rows: Vec<(u8, String)> = doc
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.trim().trim_matches('|').split('|').map(str::trim).collect();
            Some((cells.first()?.parse().ok()?, cells.get(1)?.to_string()))
        })
        .collect();
    assert_eq!(doc_rows, table, "docs/cli.md's exit-status table must match the client's");
    let meaning_of =
        |code: i32| documented.iter().find(|(c, _)| i32::from(*c) == code).map(|(_, m)| m.clone()).unwrap_or_default();

    // Each documented status is the one a real failure of that kind exits with.
    let (exit, _) = tool.fail(["inbox", "--no-such-option"]);
    assert_eq!(exit, i32::from(USAGE_EXIT));
    assert!(meaning_of(exit).starts_with("usage error"), "{}", meaning_of(exit));

    let (exit, stderr) = tool.fail(["inbox"]);
    assert_eq!(sealdrop_e2e::error_code(&stderr).as_deref(), Some("no_identity"), "{stderr}");
    assert_eq!(exit, i32::from(Kind::Input.exit_code()));
    assert!(meaning_of(exit).starts_with("bad input"), "{}", meaning_of(exit));

    let bundle = tool.dir.path().join("not-a-bundle.tar");
    write_file(&bundle, "this is not a tar file");
    let authority = authority_pub();
    let (exit, stderr) = tool.fail([
        "--authority",
        authority.to_str().unwrap(),
        "audit",
        "verify",
        "--bundle",
        bundle.to_str().unwrap(),
    ]);
    assert_eq!(sealdrop_e2e::error_code(&stderr).as_deref(), Some("bundle_invalid"), "{stderr}");
    assert_eq!(exit, i32::from(Kind::Verification.exit_code()));
    assert!(meaning_of(exit).starts_with("verification failure"), "{}", meaning_of(exit));

    let nowhere = Party::with_url(&format!("http://127.0.0.1:{}", closed_port()), "camden");
    let (exit, _) = nowhere.fail_code(["inbox"], "hub_unreachable");
    assert_eq!(exit, i32::from(Kind::Unreachable.exit_code()));
    assert!(meaning_of(exit).contains("could not be reached"), "{}", meaning_of(exit));

    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    let (exit, _) = camden.fail_code(["recall", "d-aaaaaaaaaaaaaaaaaaaaaaaaaa"], "not_found");
    assert_eq!(exit, i32::from(Kind::Refused.exit_code()));
    assert!(meaning_of(exit).contains("refused"), "{}", meaning_of(exit));

    let blocker = tool.dir.path().join("a-file");
    write_file(&blocker, "x");
    let (exit, _) = tool.fail(["man", "--out", blocker.join("sub").to_str().unwrap()]);
    assert_eq!(exit, i32::from(Kind::Other.exit_code()));
    assert!(meaning_of(exit).starts_with("other failure"), "{}", meaning_of(exit));
}

#[test]
fn every_command_s_help_shows_its_own_options_then_the_global_ones_then_examples() {
    let tool = Tool::new();
    let globals = client_global_flags();
    let mut paths = client_command_paths();
    paths.insert(0, Vec::new());
    for path in &paths {
        let shown = format!("sealdrop {}", path.join(" ")).trim_end().to_owned();
        for flag in ["-h", "--help"] {
            let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
            args.push(flag);
            let help = tool.ok(&args);
            let heading = help
                .find("\nGlobal options:\n")
                .unwrap_or_else(|| panic!("`{shown} {flag}` has no `Global options:` heading:\n{help}"));
            let (own, rest) = help.split_at(heading);
            // An option's line starts with its flags: `  -q, --quiet` or `      --hub <HUB>`.
            let lists = |text: &str, flag: &str| {
                text.lines().any(|l| {
                    let l = l.trim_start();
                    let named =
                        |f: &str| f == flag || f.starts_with(&format!("{flag} ")) || f.starts_with(&format!("{flag}["));
                    l.starts_with('-') && (named(l) || l.split(", ").nth(1).is_some_and(named))
                })
            };
            for g in &globals {
                assert!(!lists(own, g), "`{shown} {flag}` lists the global {g} among its own options:\n{help}");
                assert!(lists(rest, g), "`{shown} {flag}` does not list {g} under Global options:\n{help}");
            }
            for o in own_flags(path) {
                assert!(
                    lists(own, &o),
                    "`{shown} {flag}`: its own {o} is not listed before the global options:\n{help}"
                );
            }
            let examples = rest
                .split("\nExamples:\n")
                .nth(1)
                .unwrap_or_else(|| panic!("`{shown} {flag}` has no Examples section after the options:\n{help}"));
            let commands: Vec<&str> =
                examples.lines().map_while(|l| l.strip_prefix("  ")).filter_map(|l| l.strip_prefix("  ")).collect();
            assert!(!commands.is_empty(), "`{shown} {flag}`: no example commands:\n{help}");
            assert!(
                commands.iter().all(|c| c.starts_with("sealdrop ")),
                "`{shown} {flag}`: an example is not a sealdrop command: {commands:?}"
            );
            assert!(
                commands.iter().any(|c| {
                    let words: Vec<&str> =
                        c.split_whitespace().filter(|w| !w.starts_with('-') && !w.contains('/')).collect();
                    path.iter().all(|p| words.contains(&p.as_str()))
                }),
                "`{shown} {flag}`: no example runs `{shown}`: {commands:?}"
            );
        }
    }
}

#[test]
fn every_man_page_of_the_client_has_examples() {
    let tool = Tool::new();
    let dir = tool.dir.path().join("man1");
    tool.ok(["man", "--out", dir.to_str().unwrap()]);
    let pages = list_dir(&dir);
    assert!(pages.len() > 20, "{pages:?}");
    for page in &pages {
        let roff = read_text(&dir.join(page));
        let at = roff.find(".SH EXAMPLES\n").unwrap_or_else(|| panic!("{page} has no EXAMPLES section"));
        assert!(
            roff[at..].contains(".TP\n\\fBsealdrop"),
            "{page}: EXAMPLES holds no sealdrop command:\n{}",
            &roff[at..]
        );
    }
    let send = render_man(&dir.join("sealdrop-send.1"));
    let examples = send.split("\nEXAMPLES\n").nth(1).unwrap_or_else(|| panic!("{send}"));
    assert!(examples.contains("sealdrop send --to islington"), "{examples}");
    assert!(send.contains("\nGLOBAL OPTIONS\n"), "the man page does not set the global options apart:\n{send}");
    let groff = Command::new("groff").args(["-man", "-Tutf8", "-ww", "-z"]).arg(dir.join("sealdrop-status.1")).output();
    let groff = groff.expect("run groff");
    assert!(groff.status.success() && groff.stderr.is_empty(), "groff: {}", String::from_utf8_lossy(&groff.stderr));
}
