//! Member key files protected by a passphrase (issue 21), through the real
//! binaries against a real hub: `keygen --passphrase` writes an age file
//! (never the plain key), a new member sends and fetches with the
//! passphrase given by a file descriptor and by a systemd credentials
//! folder, `key passphrase` adds, changes and removes it, and a wrong or
//! missing passphrase is a one-line error that leaves everything as it was;
//! and the same for a key file encrypted to an age plugin (the test plugin
//! `age-plugin-sealdroptest`, a stand-in for a hardware token).

use std::ffi::OsStr;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use sealdrop_e2e::test_plugin::{TokenKey, generate_token_key};
use sealdrop_e2e::{Coordinator, Hub, Party, assert_one_error_line, error_code, json, mode_of, read_text, write_file};

/// The first line of an ASCII-armored age file.
const ARMOR_BEGIN: &str = "-----BEGIN AGE ENCRYPTED FILE-----";

/// Runs `cmd ARGS` with `stdin` written to its standard input.
fn run_with_stdin(mut cmd: Command, args: &[&OsStr], stdin: &str) -> Output {
    cmd.args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

/// `party`'s `sealdrop ARGS`, its passphrase(s) written to stdin; asserts success, returns stdout.
fn ok_with_stdin(party: &Party, args: &[&str], stdin: &str) -> String {
    let args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
    let out = run_with_stdin(party.command(), &args, stdin);
    assert!(
        out.status.success(),
        "`sealdrop {args:?}` failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `party`'s `sealdrop ARGS`, stdin as given; asserts failure with `code`
/// (exit 3, one line); returns stderr.
fn fails_with_stdin(party: &Party, args: &[&str], stdin: &str, code: &str) -> String {
    let args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
    let out = run_with_stdin(party.command(), &args, stdin);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(error_code(&stderr).as_deref(), Some(code), "`sealdrop {args:?}`: {stderr}");
    assert_one_error_line(&stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    stderr
}

/// `cmd` run through `sh` with file descriptor 3 open on `file`, as a shell
/// script or a service manager hands a program a passphrase.
fn with_fd3_reading(cmd: Command, file: &Path) -> Command {
    let mut shell = Command::new("sh");
    shell.arg("-c").arg("exec \"$@\" 3<\"$PASSPHRASE_FILE\"").arg("sh").env("PASSPHRASE_FILE", file);
    shell.arg(cmd.get_program()).args(cmd.get_args());
    for (name, value) in cmd.get_envs() {
        match value {
            Some(value) => shell.env(name, value),
            None => shell.env_remove(name),
        };
    }
    if let Some(dir) = cmd.get_current_dir() {
        shell.current_dir(dir);
    }
    shell
}

/// The key file is an age file, private, and does not show the key.
fn assert_protected(key: &Path) {
    let text = read_text(key);
    assert!(text.starts_with(ARMOR_BEGIN), "an ASCII-armored age file: {text}");
    assert!(!text.contains("SEALDROP-MEMBER-SECRET-KEY"), "the plain key must not show: {text}");
    assert!(!text.contains("AGE-SECRET-KEY"), "the plain key must not show: {text}");
    assert_eq!(mode_of(key), 0o600);
}

/// The card `key show` prints, unlocking with `passphrase` on stdin.
fn card_with(party: &Party, passphrase: &str) -> String {
    ok_with_stdin(party, &["--passphrase-fd", "0", "key", "show"], &format!("{passphrase}\n"))
}

#[test]
fn a_member_with_a_passphrase_protected_key_sends_and_fetches_with_the_passphrase_from_an_fd_or_a_credential() {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    let coordinator = Coordinator::new();

    // Islington's new member makes a protected key; the passphrase comes from fd 0.
    let mut jsmith = Party::new(&hub, "islington");
    jsmith.key = jsmith.dir.path().join("j.smith.key");
    let key_arg = jsmith.key.to_str().unwrap();
    let keygen = [
        "--passphrase-fd",
        "0",
        "keygen",
        "--party",
        "islington",
        "--member",
        "j.smith",
        "--out",
        key_arg,
        "--passphrase",
    ];
    let card = ok_with_stdin(&jsmith, &keygen, "correct horse battery\n");
    assert_protected(&jsmith.key);
    let card_file = jsmith.dir.path().join("card.json");
    write_file(&card_file, card.trim());
    coordinator.run(&["directory", "add-member", "--card", card_file.to_str().unwrap()]);
    coordinator.publish(&camden);
    // The key it unlocks is the one whose card was printed.
    assert_eq!(card_with(&jsmith, "correct horse battery").trim(), card.trim());

    // Camden sends; j.smith lists and fetches with the passphrase on a file descriptor.
    let sent = camden.send("islington", &[&camden.file("plan.txt", "EHC plan for j.smith")]);
    let listed = ok_with_stdin(&jsmith, &["--passphrase-fd", "0", "inbox", "--json"], "correct horse battery\n");
    assert!(listed.contains(&sent), "{listed}");
    // Through fd 3, as a shell or a service manager opens it.
    let passphrase_file = jsmith.dir.path().join("passphrase");
    write_file(&passphrase_file, "correct horse battery\n");
    let out_dir = jsmith.work().join("got");
    let fetched = run_with_stdin(
        with_fd3_reading(jsmith.command(), &passphrase_file),
        &[
            OsStr::new("--passphrase-fd"),
            "3".as_ref(),
            "fetch".as_ref(),
            sent.as_ref(),
            "-o".as_ref(),
            out_dir.as_os_str(),
        ],
        "",
    );
    assert!(fetched.status.success(), "fetch with --passphrase-fd 3: {}", String::from_utf8_lossy(&fetched.stderr));
    assert_eq!(read_text(&out_dir.join("plan.txt")), "EHC plan for j.smith");

    // As a service: the passphrase is the systemd credential `sealdrop-passphrase`.
    let credentials = tempfile::tempdir().unwrap();
    write_file(&credentials.path().join("sealdrop-passphrase"), "correct horse battery\n");
    let mut cmd = jsmith.command();
    cmd.env("CREDENTIALS_DIRECTORY", credentials.path());
    let reply = jsmith.file("reply.txt", "received, thank you");
    let out = run_with_stdin(cmd, &["send".as_ref(), "--to".as_ref(), "camden".as_ref(), reply.as_os_str()], "");
    assert!(out.status.success(), "send with a credential: {}", String::from_utf8_lossy(&out.stderr));
    let reply_id = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let back = camden.work().join("back");
    camden.fetch(&reply_id, &back);
    assert_eq!(read_text(&back.join("reply.txt")), "received, thank you");
}

#[test]
fn a_wrong_or_missing_passphrase_is_one_line_with_its_code_and_nothing_is_written() {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    let islington = Party::new(&hub, "islington");
    let sent = camden.send("islington", &[&camden.file("a.csv", "urn\n1\n")]);
    ok_with_stdin(&islington, &["key", "passphrase", "--new-passphrase-fd", "0"], "right one\n");
    let protected = read_text(&islington.key);
    // The state a command leaves, but for the fetch lock, which `fetch`
    // takes (and leaves, unlocked) before it loads the key.
    let state = || {
        let mut files = sealdrop_e2e::tree(&islington.state);
        files.remove("fetch.lock");
        files
    };
    let state_before = state();

    let out_dir = islington.work().join("out");
    let out_arg = out_dir.to_str().unwrap();
    let stderr = fails_with_stdin(
        &islington,
        &["--passphrase-fd", "0", "fetch", &sent, "-o", out_arg],
        "wrong one\n",
        "wrong_passphrase",
    );
    assert!(stderr.contains(islington.key.to_str().unwrap()), "names the key file: {stderr}");
    assert!(!out_dir.exists(), "nothing is written");
    // Nor by `key passphrase`: the file stays as it was.
    fails_with_stdin(
        &islington,
        &["--passphrase-fd", "0", "key", "passphrase", "--new-passphrase-fd", "0"],
        "wrong one\nnew one\n",
        "wrong_passphrase",
    );
    assert_eq!(read_text(&islington.key), protected);

    // Non-interactive with no source at all (stdin and stderr are not a terminal, no credential).
    let (exit, stderr) = islington.fail(["fetch", &sent, "-o", out_arg]);
    assert_eq!(exit, 3, "{stderr}");
    assert_eq!(error_code(&stderr).as_deref(), Some("passphrase_required"), "{stderr}");
    assert_one_error_line(&stderr);
    for way in
        ["--passphrase-fd", "sealdrop-passphrase", "CREDENTIALS_DIRECTORY", "terminal", "no environment variable"]
    {
        assert!(stderr.contains(way), "the error names `{way}`: {stderr}");
    }
    assert!(!out_dir.exists(), "nothing is written");
    // An empty descriptor and a credentials folder without the credential are no source either.
    fails_with_stdin(&islington, &["--passphrase-fd", "0", "inbox"], "", "passphrase_unreadable");
    let empty = tempfile::tempdir().unwrap();
    let mut cmd = islington.command();
    cmd.env("CREDENTIALS_DIRECTORY", empty.path());
    let out = run_with_stdin(cmd, &["inbox".as_ref()], "");
    assert_eq!(error_code(&String::from_utf8_lossy(&out.stderr)).as_deref(), Some("passphrase_required"));
    assert_eq!(state(), state_before, "no state was written by the failed commands");

    // The right passphrase opens it.
    ok_with_stdin(&islington, &["--passphrase-fd", "0", "fetch", &sent, "-o", out_arg], "right one\n");
    assert_eq!(read_text(&out_dir.join("a.csv")), "urn\n1\n");
}

#[test]
fn key_passphrase_adds_changes_and_removes_it_keeping_the_same_key() {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    let original = read_text(&camden.key);
    let card = camden.ok(["key", "show"]);

    // Add.
    ok_with_stdin(&camden, &["key", "passphrase", "--new-passphrase-fd", "0"], "first passphrase\n");
    assert_protected(&camden.key);
    assert_eq!(card_with(&camden, "first passphrase"), card);

    // Change: the current passphrase and the new one on two lines of one
    // descriptor. The command needs the key twice (to read it and to check
    // it is a key): the second use reads no line, or it would take the new
    // passphrase for the old one and fail.
    ok_with_stdin(
        &camden,
        &["--passphrase-fd", "0", "key", "passphrase", "--new-passphrase-fd", "0"],
        "first passphrase\nsecond passphrase\n",
    );
    assert_protected(&camden.key);
    assert_eq!(card_with(&camden, "second passphrase"), card);
    fails_with_stdin(&camden, &["--passphrase-fd", "0", "key", "show"], "first passphrase\n", "wrong_passphrase");
    // The changed key works against the hub.
    let out = ok_with_stdin(&camden, &["--passphrase-fd", "0", "directory", "show", "--json"], "second passphrase\n");
    assert!(json(&out)["serial"].as_u64().is_some(), "{out}");

    // An empty new passphrase is refused, and the file stays.
    let before = read_text(&camden.key);
    fails_with_stdin(
        &camden,
        &["--passphrase-fd", "0", "key", "passphrase", "--new-passphrase-fd", "0"],
        "second passphrase\n\n",
        "passphrase_unreadable",
    );
    assert_eq!(read_text(&camden.key), before);

    // Remove: the plain key file again, byte for byte.
    ok_with_stdin(&camden, &["--passphrase-fd", "0", "key", "passphrase", "--remove"], "second passphrase\n");
    assert_eq!(read_text(&camden.key), original);
    assert_eq!(mode_of(&camden.key), 0o600);
    assert_eq!(camden.ok(["key", "show"]), card);
}

#[test]
fn malware_running_as_the_member_unlocks_the_key_with_the_passphrase_it_is_given() {
    // What a passphrase does not cover: a service's passphrase file (or the
    // terminal, or the credential) is readable by whatever runs as the member.
    let camden = Party::with_url(&format!("http://127.0.0.1:{}", sealdrop_e2e::closed_port()), "camden");
    let plain = read_text(&camden.key);
    ok_with_stdin(&camden, &["key", "passphrase", "--new-passphrase-fd", "0"], "service passphrase\n");
    assert_protected(&camden.key);
    let passphrase_file = camden.dir.path().join("passphrase");
    write_file(&passphrase_file, "service passphrase\n");

    // The attack: read the passphrase the service is given, then unlock the key.
    let stolen_passphrase = read_text(&passphrase_file);
    let stolen = camden.work().join("stolen.txt");
    let args = ["--passphrase-fd", "0", "key", "export-age", "-o", stolen.to_str().unwrap()];
    ok_with_stdin(&camden, &args, &stolen_passphrase);
    let identity = read_text(&stolen);
    let secret = identity.lines().find(|l| l.starts_with("AGE-SECRET-KEY")).expect("an age identity");
    assert!(plain.contains(secret), "the thief holds the member's own decryption key");
}

/// `cmd` run on a terminal of its own (`script` gives it a pseudo-terminal
/// as its controlling terminal, stdin, stdout and stderr), `typed` typed on
/// it; returns whether it succeeded and everything the terminal showed.
fn on_a_terminal(cmd: &Command, typed: &str) -> (bool, String) {
    let quote = |s: &OsStr| format!("'{}'", s.to_str().unwrap().replace('\'', "'\\''"));
    let line: Vec<String> = std::iter::once(cmd.get_program()).chain(cmd.get_args()).map(quote).collect();
    let mut script = Command::new("script");
    script.args(["-q", "-e", "-c", &line.join(" "), "/dev/null"]);
    for (name, value) in cmd.get_envs() {
        match value {
            Some(value) => script.env(name, value),
            None => script.env_remove(name),
        };
    }
    if let Some(dir) = cmd.get_current_dir() {
        script.current_dir(dir);
    }
    let out = run_with_stdin(script, &[], typed);
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `party`'s `sealdrop ARGS` as a command, for [`on_a_terminal`].
fn sealdrop(party: &Party, args: &[&str]) -> Command {
    let mut cmd = party.command();
    cmd.args(args);
    cmd
}

#[test]
fn the_terminal_asks_once_and_stock_age_opens_the_same_file_both_ways() {
    let camden = Party::with_url(&format!("http://127.0.0.1:{}", sealdrop_e2e::closed_port()), "camden");
    let plain = read_text(&camden.key);
    let card = camden.ok(["key", "show"]);

    // The new passphrase is typed twice; then a command asks for it once.
    let (ok, shown) = on_a_terminal(&sealdrop(&camden, &["key", "passphrase"]), "on the tty\non the tty\n");
    assert!(ok, "{shown}");
    assert!(shown.contains("New passphrase for member key") && shown.contains("Type it again"), "{shown}");
    assert_protected(&camden.key);
    let (ok, shown) = on_a_terminal(&sealdrop(&camden, &["key", "show"]), "on the tty\n");
    assert!(ok, "{shown}");
    assert_eq!(shown.matches("Passphrase for member key").count(), 1, "asked once: {shown}");
    assert!(shown.contains(card.trim()), "{shown}");

    // Stock age opens sealdrop's file with the same passphrase.
    let age_plain = camden.work().join("plain.key");
    let mut age = Command::new("age");
    age.arg("-d").arg("-o").arg(&age_plain).arg(&camden.key);
    let (ok, shown) = on_a_terminal(&age, "on the tty\n");
    assert!(ok, "stock age -d: {shown}");
    assert_eq!(read_text(&age_plain), plain);

    // `key passphrase --remove` needs the key twice and asks once.
    let (ok, shown) = on_a_terminal(&sealdrop(&camden, &["key", "passphrase", "--remove"]), "on the tty\n");
    assert!(ok, "{shown}");
    assert_eq!(shown.matches("Passphrase for member key").count(), 1, "asked once: {shown}");
    assert_eq!(read_text(&camden.key), plain);

    // A key file stock age protected (`age -p -a`) is one sealdrop opens.
    let mut age = Command::new("age");
    age.args(["-p", "-a", "-o"]).arg(camden.work().join("by-age.key")).arg(&camden.key);
    let (ok, shown) = on_a_terminal(&age, "stock passphrase\nstock passphrase\n");
    assert!(ok, "stock age -p: {shown}");
    sealdrop_e2e::copy_with_mode(&camden.work().join("by-age.key"), &camden.key, 0o600);
    assert_protected(&camden.key);
    assert_eq!(card_with(&camden, "stock passphrase"), card);
}

/// The card `key show` prints, unlocking with the plugin identity file `identity`.
fn card_through_plugin(party: &Party, identity: &str) -> String {
    party.ok(["--key-plugin-identity", identity, "key", "show"])
}

/// The token's PIN prompt (crates/sealdrop-test-plugin), as the client shows it.
const PIN_PROMPT: &str = "Enter the PIN of the sealdroptest token";

/// A token key of the test plugin, its identity file written into `party`'s folder.
fn token_identity(party: &Party, extra: &[&str]) -> (TokenKey, std::path::PathBuf) {
    let token = generate_token_key(extra);
    let file = party.dir.path().join("token-identity.txt");
    write_file(&file, &token.identity_file);
    (token, file)
}

#[test]
fn a_key_file_encrypted_to_a_plugin_works_with_the_plugin_on_path_and_fails_cleanly_without_it() {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    let islington = Party::new(&hub, "islington");
    let plain = read_text(&islington.key);
    let (token, identity) = token_identity(&islington, &[]);
    let identity_arg = identity.to_str().unwrap();

    islington.ok(["key", "protect", "--plugin-recipient", &token.recipient, "--plugin-identity", identity_arg]);
    assert_protected(&islington.key);

    // With the plugin on PATH (the harness puts it first) and its identity file: send and fetch.
    let sent = camden.send("islington", &[&camden.file("plan.txt", "held by the token")]);
    let out_dir = islington.work().join("got");
    islington.ok(["--key-plugin-identity", identity_arg, "fetch", &sent, "-o", out_dir.to_str().unwrap()]);
    assert_eq!(read_text(&out_dir.join("plan.txt")), "held by the token");
    // `init` saves the identity file's place, so later commands need no flag.
    let config = islington.dir.path().join("config.toml");
    let config_arg = config.to_str().unwrap();
    islington.ok(["--config", config_arg, "--key-plugin-identity", identity_arg, "init"]);
    assert!(read_text(&config).contains("key_plugin_identity"), "{}", read_text(&config));
    assert_eq!(islington.ok(["--config", config_arg, "key", "show"]), card_through_plugin(&islington, identity_arg));

    // Without the plugin on PATH: one line naming the missing plugin, nothing written.
    let mut cmd = islington.command();
    cmd.env("PATH", std::env::var_os("PATH").unwrap_or_default());
    let elsewhere = islington.work().join("elsewhere");
    let args = ["--key-plugin-identity", identity_arg, "fetch", &sent, "-o", elsewhere.to_str().unwrap()];
    let out = run_with_stdin(cmd, &args.map(OsStr::new), "");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(error_code(&stderr).as_deref(), Some("key_plugin_missing"), "{stderr}");
    assert_one_error_line(&stderr);
    assert!(stderr.contains("age-plugin-sealdroptest"), "names the plugin: {stderr}");
    assert!(!elsewhere.exists());

    // Without the identity file, or with another token's: one line, the code says the plugin failed.
    let (_, code_stderr) = islington.fail(["key", "show"]);
    assert_eq!(error_code(&code_stderr).as_deref(), Some("key_plugin_failed"), "{code_stderr}");
    assert!(code_stderr.contains("--key-plugin-identity"), "{code_stderr}");
    let other = islington.dir.path().join("other-token.txt");
    write_file(&other, generate_token_key(&[]).identity_file);
    let (_, stderr) = islington.fail(["--key-plugin-identity", other.to_str().unwrap(), "key", "show"]);
    assert_eq!(error_code(&stderr).as_deref(), Some("key_plugin_failed"), "{stderr}");
    assert_one_error_line(&stderr);

    // A passphrase instead, then none: the same key throughout.
    ok_with_stdin(
        &islington,
        &["--key-plugin-identity", identity_arg, "key", "passphrase", "--new-passphrase-fd", "0"],
        "instead of the token\n",
    );
    ok_with_stdin(&islington, &["--passphrase-fd", "0", "key", "passphrase", "--remove"], "instead of the token\n");
    assert_eq!(read_text(&islington.key), plain);
}

#[test]
fn a_plugin_that_asks_for_a_pin_asks_once_on_the_terminal_and_fails_cleanly_without_one() {
    let camden = Party::with_url(&format!("http://127.0.0.1:{}", sealdrop_e2e::closed_port()), "camden");
    let card = camden.ok(["key", "show"]);
    let (token, identity) = token_identity(&camden, &["--pin", "2468"]);
    let identity_arg = identity.to_str().unwrap();

    // `key protect` checks the new file opens: the token asks for its PIN.
    let protect = ["key", "protect", "--plugin-recipient", &token.recipient, "--plugin-identity", identity_arg];
    let (ok, shown) = on_a_terminal(&sealdrop(&camden, &protect), "2468\n");
    assert!(ok, "{shown}");
    assert_protected(&camden.key);

    // A command asks for the PIN once.
    let before = read_text(&camden.key);
    let (ok, shown) =
        on_a_terminal(&sealdrop(&camden, &["--key-plugin-identity", identity_arg, "key", "show"]), "2468\n");
    assert!(ok, "{shown}");
    assert_eq!(shown.matches(PIN_PROMPT).count(), 1, "asked once: {shown}");
    assert!(shown.contains(card.trim()), "{shown}");

    // No terminal to type the PIN on: one line, and the file stays.
    let (_, stderr) = camden.fail(["--key-plugin-identity", identity_arg, "key", "show"]);
    assert_eq!(error_code(&stderr).as_deref(), Some("key_plugin_failed"), "{stderr}");
    assert_one_error_line(&stderr);
    // A wrong PIN: the same.
    let (ok, shown) =
        on_a_terminal(&sealdrop(&camden, &["--key-plugin-identity", identity_arg, "key", "show"]), "1111\n");
    assert!(!ok, "{shown}");
    assert!(shown.contains("error[key_plugin_failed]"), "{shown}");
    assert_eq!(read_text(&camden.key), before);
}
