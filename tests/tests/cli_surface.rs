//! The command line's own surface (issue 18): usage errors that keep clap's
//! content, a closed stdout (`| head`) ending a command quietly, `init`
//! saving paths that work from any folder, `key export-age` keeping the
//! secret private, and `sealdrop-hub init`'s `--origin` and output.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use sealdrop_e2e::{
    Hub, Party, TestTls, Tool, bins, copy_with_mode, error_code, hub_command, keys_example, mode_of, read_text,
    write_file,
};

/// The lines of a usage error's stderr, checked for the shape every usage
/// error has: one `error[usage]:` line first, which says which help to read,
/// then only indented lines (the usage), and none of clap's own footer.
fn usage_error(tool: &Tool, args: &[&str]) -> Vec<String> {
    let (exit, stderr) = tool.fail(args);
    assert_eq!(exit, 2, "`sealdrop {}`: usage errors exit 2: {stderr}", args.join(" "));
    let lines: Vec<String> = stderr.lines().map(str::to_owned).collect();
    assert!(lines[0].starts_with("error[usage]: "), "`sealdrop {}`: {stderr}", args.join(" "));
    assert!(lines[0].contains("--help`"), "the error line names the help to read: {stderr}");
    assert!(lines[1..].iter().all(|l| l.starts_with("  ")), "only the first line is unindented: {stderr}");
    assert!(!stderr.contains("For more information"), "{stderr}");
    sealdrop_e2e::assert_one_error_line(&stderr);
    lines
}

#[test]
fn usage_errors_keep_clap_s_missing_arguments_tips_and_usage() {
    let tool = Tool::new();

    let lines = usage_error(&tool, &["send"]);
    assert!(
        lines[0].starts_with("error[usage]: the following required arguments were not provided: --to <TO>, <PATHS>..."),
        "the missing arguments are listed on the error line: {lines:?}"
    );
    assert!(lines[0].ends_with("see `sealdrop send --help`"), "{lines:?}");
    assert!(lines[1].starts_with("  Usage: sealdrop send ") && lines[1].contains("--to <TO> <PATHS>..."), "{lines:?}");

    let lines = usage_error(&tool, &["sned"]);
    assert!(lines[0].contains("unrecognized subcommand 'sned'"), "{lines:?}");
    assert!(lines[0].contains("a similar subcommand exists: 'send'"), "the did-you-mean tip is lost: {lines:?}");
    assert_eq!(lines[1], "  Usage: sealdrop [OPTIONS] <COMMAND>");

    let lines = usage_error(&tool, &["send", "--too", "x"]);
    assert!(lines[0].contains("unexpected argument '--too' found"), "{lines:?}");
    assert!(lines[0].contains("a similar argument exists: '--to'"), "the did-you-mean tip is lost: {lines:?}");
    assert!(lines[0].ends_with("see `sealdrop send --help`"), "{lines:?}");

    let lines = usage_error(&tool, &["directory", "sh"]);
    assert!(lines[0].contains("a similar subcommand exists: 'show'"), "{lines:?}");
    assert!(lines[0].ends_with("see `sealdrop directory --help`"), "{lines:?}");

    let lines = usage_error(&tool, &["completions", "tcsh"]);
    assert!(lines[0].contains("invalid value 'tcsh'") && lines[0].contains("possible values: bash,"), "{lines:?}");
}

/// Runs `cmd` with its stdout the write end of a pipe whose read end is
/// already closed, as after `| head` has read what it wanted: every write fails.
fn into_closed_pipe(mut cmd: Command) -> Output {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    cmd.stdin(Stdio::null()).stdout(writer).stderr(Stdio::piped());
    cmd.output().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"))
}

fn assert_quiet_success(what: &str, out: &Output) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "`{what}` into a closed pipe must exit 0: {stderr}");
    assert!(!stderr.contains("error"), "`{what}` into a closed pipe printed an error: {stderr}");
    assert!(!stderr.to_lowercase().contains("broken pipe"), "`{what}`: {stderr}");
}

#[test]
fn a_closed_stdout_ends_every_command_quietly() {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    let islington = Party::new(&hub, "islington");
    for i in 0..3 {
        camden.send("islington", &[&camden.file(&format!("part-{i}.csv"), format!("row,{i}\n"))]);
    }
    let party_commands: [(&Party, &[&str]); 9] = [
        (&camden, &["status"]),
        (&camden, &["status", "--json"]),
        (&camden, &["journal"]),
        (&camden, &["journal", "--json"]),
        (&islington, &["inbox"]),
        (&islington, &["inbox", "--json"]),
        (&islington, &["key", "show"]),
        (&islington, &["directory", "show"]),
        (&islington, &["directory", "show", "--json"]),
    ];
    for (party, args) in party_commands {
        let mut cmd = party.command();
        cmd.args(args);
        assert_quiet_success(&args.join(" "), &into_closed_pipe(cmd));
    }
    let tool = Tool::new();
    for shell in ["bash", "zsh", "fish"] {
        let mut cmd = tool.command();
        cmd.args(["completions", shell]);
        assert_quiet_success(&format!("completions {shell}"), &into_closed_pipe(cmd));
    }
    // Nothing was lost: the drops are still waiting, as before.
    assert_eq!(islington.inbox_ids().len(), 3);

    // The real thing: the completion script (about 90 KB) is more than a
    // pipe holds, so `head` closes the pipe while it is still being written.
    let script = format!("set -o pipefail; '{}' completions bash | head -1", bins().client.display());
    let env = tool.command();
    let bash = Command::new("bash")
        .arg("-c")
        .arg(script)
        .envs(env.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .current_dir(tool.dir.path())
        .stdin(Stdio::null())
        .output()
        .expect("run bash");
    assert_eq!(String::from_utf8_lossy(&bash.stdout), "_sealdrop() {\n");
    assert_quiet_success("completions bash | head -1", &bash);
}

#[test]
fn init_saves_absolute_paths_so_commands_work_from_any_folder() {
    let tls = TestTls::new();
    let options: Vec<String> = tls.serve_options().to_vec();
    let options: Vec<&str> = options.iter().map(String::as_str).collect();
    let hub = Hub::start_with_options(&options);
    assert!(hub.url.starts_with("https://"), "{}", hub.url);

    let tool = Tool::new();
    let setup = tool.dir.path().join("setup");
    std::fs::create_dir_all(setup.join("keys")).unwrap();
    copy_with_mode(&keys_example().join("parties/camden.key"), &setup.join("keys/camden.key"), 0o600);
    copy_with_mode(&keys_example().join("authority.pub"), &setup.join("keys/authority.pub"), 0o644);
    copy_with_mode(&tls.ca(), &setup.join("keys/ca.pem"), 0o644);
    tool.ok([
        OsStr::new("witness"),
        "keygen".as_ref(),
        "--party".as_ref(),
        "camden".as_ref(),
        "--out".as_ref(),
        setup.join("keys/witness.key").as_os_str(),
    ]);
    let config = tool.dir.path().join("none.toml");

    // Every path relative to the folder init runs in.
    let mut init = tool.command();
    init.current_dir(&setup).args([
        "--hub",
        &hub.url,
        "--identity",
        "keys/camden.key",
        "--authority",
        "keys/authority.pub",
        "--state-dir",
        "state",
        "--witness-key",
        "keys/witness.key",
        "--hub-ca",
        "./keys/ca.pem",
        "init",
    ]);
    let out = init.stdin(Stdio::null()).output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "init failed: {stderr}");
    assert_eq!(stdout, format!("saved {}\n", config.display()), "init prints only where it saved");
    assert_eq!(stderr, "", "init printed more than its one line");

    let saved: toml::Table = toml::from_str(&read_text(&config)).unwrap();
    for (key, rel) in [
        ("identity", "keys/camden.key"),
        ("authority", "keys/authority.pub"),
        ("state_dir", "state"),
        ("witness_key", "keys/witness.key"),
        ("hub_ca", "keys/ca.pem"),
    ] {
        let value = saved[key].as_str().unwrap_or_else(|| panic!("{key} is not saved: {saved}"));
        assert!(Path::new(value).is_absolute(), "{key} is saved relative: {value:?}");
        assert_eq!(
            std::fs::canonicalize(value).ok(),
            std::fs::canonicalize(setup.join(rel)).ok(),
            "{key} = {value:?} does not name setup/{rel}"
        );
    }

    // From another folder, with nothing but the config file.
    let elsewhere = tool.dir.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let mut inbox = tool.command();
    inbox.current_dir(&elsewhere).args(["inbox", "--json"]);
    let out = inbox.stdin(Stdio::null()).output().unwrap();
    assert!(
        out.status.success(),
        "a command run from another folder than init's failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(sealdrop_e2e::json(&String::from_utf8_lossy(&out.stdout)), serde_json::json!([]));
    assert!(setup.join("state").is_dir(), "the state went elsewhere");
    assert!(!elsewhere.join("state").exists(), "the state dir was taken relative to the later folder");

    // Verifier-key text stays text.
    let text = read_text(&keys_example().join("authority.pub")).trim().to_owned();
    let mut init = tool.command();
    init.current_dir(&setup).args(["--authority", &text, "init"]);
    assert!(init.stdin(Stdio::null()).output().unwrap().status.success());
    let saved: toml::Table = toml::from_str(&read_text(&config)).unwrap();
    assert_eq!(saved["authority"].as_str(), Some(text.as_str()));
}

/// `sealdrop ARGS > FILE` run by `sh` under umask 022, in `party`'s work folder.
fn export_into(party: &Party, file: &str, args: &[&str]) -> Output {
    let mut cmd = party.command();
    cmd.args(args);
    Command::new("sh")
        .arg("-c")
        .arg(format!("umask 022; exec \"$0\" \"$@\" > {file}"))
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .envs(cmd.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .current_dir(party.work())
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Whether stock `age -d -i IDENTITY` opens a file encrypted to the identity's recipient.
fn stock_age_decrypts_with(identity: &Path) {
    let recipient = Command::new("age-keygen").arg("-y").arg(identity).output().expect("run age-keygen");
    assert!(recipient.status.success(), "age-keygen -y: {}", String::from_utf8_lossy(&recipient.stderr));
    let recipient = String::from_utf8(recipient.stdout).unwrap().trim().to_owned();
    let dir = identity.parent().unwrap();
    let plain = dir.join("plain.txt");
    write_file(&plain, "only for islington\n");
    let sealed = dir.join("plain.txt.age");
    let enc = Command::new("age").arg("-e").arg("-r").arg(&recipient).arg("-o").arg(&sealed).arg(&plain).output();
    assert!(enc.unwrap().status.success());
    let dec = Command::new("age").arg("-d").arg("-i").arg(identity).arg(&sealed).output().expect("run age");
    assert!(dec.status.success(), "stock age -d -i: {}", String::from_utf8_lossy(&dec.stderr));
    assert_eq!(dec.stdout, b"only for islington\n");
}

#[test]
fn key_export_age_never_leaves_the_secret_readable_by_others() {
    let islington = Party::with_url(&format!("http://127.0.0.1:{}", sealdrop_e2e::closed_port()), "islington");
    let work = islington.work();
    // A classic key: the stock age here (Debian's 1.1) reads no post-quantum identity.
    let (classic, _) = sealdrop_e2e::new_member_with(&work, "islington", "data-team", &["--classic"]);
    sealdrop_e2e::copy_with_mode(&classic, &islington.key, 0o600);

    // A new file made by the shell under umask 022 (mode 0644 until now).
    let out = export_into(&islington, "id.txt", &["key", "export-age"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(mode_of(&work.join("id.txt")), 0o600, "the redirected identity file is readable by others");
    assert!(read_text(&work.join("id.txt")).lines().any(|l| l.starts_with("AGE-SECRET-KEY-1")));
    stock_age_decrypts_with(&work.join("id.txt"));

    // An existing file, opened (and truncated) by the shell as it was.
    write_file(&work.join("old.txt"), "an old readable file\n");
    sealdrop_e2e::chmod(&work.join("old.txt"), 0o644);
    let out = export_into(&islington, "old.txt", &["key", "export-age"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(mode_of(&work.join("old.txt")), 0o600);
    assert_eq!(read_text(&work.join("old.txt")), read_text(&work.join("id.txt")));

    // -o FILE: a new private file, never replacing one.
    let dest = work.join("keys/islington-age.txt");
    let out = islington.run([OsStr::new("key"), "export-age".as_ref(), "-o".as_ref(), dest.as_os_str()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stdout.is_empty(), "-o printed the key too");
    assert_eq!(mode_of(&dest), 0o600);
    assert_eq!(read_text(&dest), read_text(&work.join("id.txt")));
    write_file(&dest, "keep me\n");
    let (exit, stderr) = islington
        .fail_code([OsStr::new("key"), "export-age".as_ref(), "-o".as_ref(), dest.as_os_str()], "output_exists");
    assert_eq!(exit, 3, "{stderr}");
    assert_eq!(read_text(&dest), "keep me\n", "-o replaced an existing file");

    // A terminal: refused, unless --force (`script` gives the command a pseudo-terminal).
    let on_terminal = |extra: &str| {
        let cmd = islington.command();
        let words: Vec<String> = std::iter::once(cmd.get_program())
            .chain(cmd.get_args())
            .map(|a| format!("'{}'", a.to_string_lossy()))
            .collect();
        let out = Command::new("script")
            .args(["-q", "-e", "-c"])
            .arg(format!("{} key export-age {extra}", words.join(" ")))
            .arg("/dev/null")
            .envs(cmd.get_envs().filter_map(|(k, v)| Some((k, v?))))
            .current_dir(&work)
            .stdin(Stdio::null())
            .output()
            .expect("run script (util-linux)");
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let (exit, shown) = on_terminal("");
    assert_eq!(exit, Some(3), "{shown}");
    assert_eq!(error_code(&shown).as_deref(), Some("secret_to_terminal"), "{shown}");
    assert!(!shown.contains("AGE-SECRET-KEY"), "the secret reached the terminal: {shown}");
    let (exit, shown) = on_terminal("--force");
    assert_eq!(exit, Some(0), "{shown}");
    assert!(shown.contains("AGE-SECRET-KEY-1"), "{shown}");
}

/// `sealdrop-hub init --origin ORIGIN` into a new data directory.
fn hub_init(dir: &Path, origin: &str) -> Output {
    let keys = keys_example();
    let mut init = hub_command();
    init.arg("init")
        .arg("--data")
        .arg(dir.join("data"))
        .args(["--origin", origin, "--authority"])
        .arg(keys.join("authority.pub"))
        .arg("--directory")
        .arg(keys.join("directory.signed"))
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    init.output().unwrap()
}

#[test]
fn hub_init_refuses_a_url_as_origin_naming_the_right_value() {
    for (typed, meant) in [
        ("https://hub.example.gov.uk/", "hub.example.gov.uk"),
        ("http://hub.example.gov.uk/sealdrop/", "hub.example.gov.uk/sealdrop"),
        ("https://hub.example.gov.uk", "hub.example.gov.uk"),
        ("hub.example.gov.uk/", "hub.example.gov.uk"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let out = hub_init(dir.path(), typed);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "--origin {typed} was accepted: {stderr}");
        assert!(stderr.contains(&format!("use --origin {meant} ")), "--origin {typed}: {stderr}");
        assert!(!dir.path().join("data").exists(), "a refused init made the data directory");
    }
}

#[test]
fn hub_init_prints_its_report_and_no_log_lines() {
    let dir = tempfile::tempdir().unwrap();
    let out = hub_init(dir.path(), "hub.example.gov.uk");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stderr, "", "init logged on stderr");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].starts_with("initialised hub hub.example.gov.uk in "), "{stdout}");
    assert_eq!(lines.len(), 7, "the report is the summary line and six indented lines: {stdout}");
    assert!(lines[1..].iter().all(|l| l.starts_with("  ")), "{stdout}");
    assert!(lines[1].starts_with("  database:") && lines[6].contains("verifier-key --data"), "{stdout}");
    assert_eq!(lines[2], "  ciphertexts: files", "{stdout}");
    assert!(!stdout.contains("INFO"), "{stdout}");
}

#[test]
fn the_examples_that_need_no_hub_run_as_written() {
    // Run by a shell as a user would type them, `sealdrop` found on PATH, in
    // a fresh home folder (the folders the install examples write into exist).
    let tool = Tool::new();
    for dir in [".local/share/bash-completion/completions", ".zfunc"] {
        std::fs::create_dir_all(tool.dir.path().join(dir)).unwrap();
    }
    let bin_dir = bins().client.parent().unwrap().to_path_buf();
    let path = std::env::join_paths(
        std::iter::once(bin_dir).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
    )
    .unwrap();
    let mut ran = 0;
    for (command_path, examples) in sealdrop::cli::examples::EXAMPLES {
        if !["keygen", "directory keygen", "witness keygen", "sample fsm", "completions", "man"].contains(command_path)
        {
            continue;
        }
        for (what, line) in *examples {
            let env = tool.command();
            let out = Command::new("sh")
                .arg("-c")
                .arg(line)
                .envs(env.get_envs().filter_map(|(k, v)| Some((k, v?))))
                .env("PATH", &path)
                .env("MANPAGER", "cat")
                .current_dir(tool.dir.path())
                .stdin(Stdio::null())
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "the example `{line}` ({what}) failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            ran += 1;
        }
    }
    assert!(ran >= 8, "{ran}");
    let home = tool.dir.path();
    for made in [
        ".sealdrop/camden.key",
        "authority.key",
        "authority.pub",
        "witness.key",
        "fsm.csv",
        "fsm.xlsx",
        ".local/share/bash-completion/completions/sealdrop",
        ".zfunc/_sealdrop",
        ".local/share/man/man1/sealdrop-send.1",
        "man1/sealdrop-send.1",
    ] {
        assert!(home.join(made).is_file(), "the examples did not make {made}");
    }
    assert_eq!(mode_of(&home.join(".sealdrop/camden.key")), 0o600);
}
