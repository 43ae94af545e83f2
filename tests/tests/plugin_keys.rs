//! A member whose decryption key is held by a hardware token, through an age
//! plugin: `keygen --plugin-identity` checks the token's recipient, the
//! directory lists it, senders encrypt to it by running the plugin, and
//! fetch decrypts through it (asking the token's PIN on the terminal). The
//! token is `age-plugin-sealdroptest` (crates/sealdrop-test-plugin), which
//! the harness puts first on the client's PATH; a test takes it off PATH to
//! play a machine without the plugin.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use sealdrop_e2e::test_plugin::{generate_token_key, give_token_key, run_on_a_terminal};
use sealdrop_e2e::{Coordinator, Hub, Party, Tool, assert_one_error_line, error_code, read_bytes, read_text};

/// `cmd ARGS` with nobody at a terminal.
fn run(mut cmd: Command, args: &[&OsStr]) -> Output {
    cmd.args(args).stdin(Stdio::null()).output().expect("run sealdrop")
}

/// `cmd ARGS` on a machine where the test plugin is not installed: PATH as
/// the test process has it, without the plugin's folder.
fn without_plugin(mut cmd: Command, args: &[&OsStr]) -> Output {
    cmd.env("PATH", std::env::var_os("PATH").unwrap_or_default());
    run(cmd, args)
}

/// Asserts `out` failed with `code` in one line; returns stderr.
fn failed_with(out: &Output, code: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "expected error[{code}], but it succeeded:\n{stderr}");
    assert_eq!(error_code(&stderr).as_deref(), Some(code), "stderr:\n{stderr}");
    assert_one_error_line(&stderr);
    assert_eq!(out.status.code(), Some(3), "an input error exits 3:\n{stderr}");
    stderr
}

/// The recipient stanza lines of an age file's header, without the random
/// `-grease` stanzas age adds (which no identity claims).
fn stanza_lines(ciphertext: &[u8]) -> Vec<String> {
    let end = ciphertext.windows(4).position(|w| w == b"\n---").expect("an age header");
    let is_grease = |l: &&str| l.split(' ').nth(1).is_some_and(|tag| tag.ends_with("-grease"));
    String::from_utf8_lossy(&ciphertext[..end])
        .lines()
        .filter(|l| l.starts_with("-> ") && !is_grease(l))
        .map(str::to_owned)
        .collect()
}

fn fetch_args<'a>(id: &'a str, out: &'a Path) -> [&'a OsStr; 4] {
    [OsStr::new("fetch"), OsStr::new(id), OsStr::new("-o"), out.as_os_str()]
}

#[test]
fn a_drop_to_a_plugin_held_key_goes_through_and_its_header_holds_the_plugins_stanza() {
    let hub = Hub::start();
    let (camden, islington) = (Party::new(&hub, "camden"), Party::new(&hub, "islington"));
    let token = generate_token_key(&[]);
    give_token_key(&Coordinator::new(), &camden, &islington, &token, "");

    // The key file names the token's key and carries its recipient; the card says plugin.
    let key_text = read_text(&islington.key);
    assert!(key_text.contains(&format!("age-identity: {}", token.identity)), "{key_text}");
    assert!(key_text.contains(&format!("age-recipient: {}", token.recipient)), "{key_text}");
    let shown = sealdrop_e2e::json(&islington.ok(["key", "show", "--json"]));
    assert_eq!(shown["key_kind"], "plugin");
    assert_eq!(shown["card"]["age_recipient"], token.recipient.as_str());

    let content = b"upn,name\nA1,Ann\n";
    let file = camden.file("eligibility.csv", content);
    let id = camden.send("islington", &[&file]);
    let stanzas = stanza_lines(&hub.ciphertext(&id).expect("the hub holds the ciphertext"));
    assert_eq!(stanzas.len(), 1, "one stanza for islington's one key: {stanzas:?}");
    assert!(stanzas[0].starts_with("-> sealdroptest "), "the plugin's own stanza: {stanzas:?}");

    let out = islington.work().join("in");
    islington.fetch(&id, &out);
    assert_eq!(read_bytes(&out.join("eligibility.csv")), content);
}

#[test]
fn without_the_plugin_fetch_fails_cleanly_and_the_drop_stays_waiting() {
    let hub = Hub::start();
    let (camden, islington) = (Party::new(&hub, "camden"), Party::new(&hub, "islington"));
    give_token_key(&Coordinator::new(), &camden, &islington, &generate_token_key(&[]), "");
    let id = camden.send("islington", &[&camden.file("plan.txt", b"EHC plan\n")]);

    let out = islington.work().join("in");
    let stderr = failed_with(&without_plugin(islington.command(), &fetch_args(&id, &out)), "plugin_missing");
    assert!(stderr.contains("`age-plugin-sealdroptest` is not on this machine's PATH"), "{stderr}");
    assert!(!out.join("plan.txt").exists(), "nothing is written without the key");
    assert_eq!(islington.inbox_ids(), std::slice::from_ref(&id), "the drop stays waiting");

    // With the plugin back, `fetch --all` takes it: it was not recorded as refused.
    let all = run(islington.command(), &[OsStr::new("fetch"), OsStr::new("--all"), OsStr::new("-o"), out.as_os_str()]);
    assert!(all.status.success(), "{}", String::from_utf8_lossy(&all.stderr));
    assert_eq!(read_text(&out.join("plan.txt")), "EHC plan\n");
}

#[test]
fn a_sender_without_the_plugin_is_told_which_plugin_to_install() {
    let hub = Hub::start();
    let (camden, islington) = (Party::new(&hub, "camden"), Party::new(&hub, "islington"));
    give_token_key(&Coordinator::new(), &camden, &islington, &generate_token_key(&[]), "");
    let file = camden.file("eligibility.csv", b"upn\nA1\n");

    let send = without_plugin(camden.command(), &[OsStr::new("send"), OsStr::new("--to=islington"), file.as_os_str()]);
    let stderr = failed_with(&send, "plugin_missing");
    assert!(stderr.contains("islington/data-team"), "names whose key: {stderr}");
    assert!(stderr.contains("age-plugin-sealdroptest"), "names the plugin: {stderr}");
    assert!(islington.inbox_ids().is_empty(), "nothing reached the hub");
}

#[test]
fn a_pin_token_asks_on_the_terminal_and_a_run_without_one_fails_cleanly() {
    let hub = Hub::start();
    let (camden, islington) = (Party::new(&hub, "camden"), Party::new(&hub, "islington"));
    let token = generate_token_key(&["--pin", "482916", "--touch"]);
    // keygen's probe goes through the token too: it asks for the PIN.
    let keygen = give_token_key(&Coordinator::new(), &camden, &islington, &token, "482916\n");
    assert!(keygen.contains("Enter the PIN of the sealdroptest token"), "{keygen}");
    let id = camden.send("islington", &[&camden.file("plan.txt", b"EHC plan\n")]);
    let out = islington.work().join("in");

    // Nobody at a terminal (cron, a service): a clean failure, not a wait.
    let stderr = failed_with(&run(islington.command(), &fetch_args(&id, &out)), "plugin_input_needed");
    assert!(stderr.contains("no terminal"), "{stderr}");

    let mut fetch = islington.command();
    fetch.args(fetch_args(&id, &out));
    let wrong = run_on_a_terminal(&fetch, "000000\n");
    let shown = String::from_utf8_lossy(&wrong.stdout);
    assert_eq!(wrong.status.code(), Some(3), "a wrong PIN fails:\n{shown}");
    assert!(shown.contains("error[plugin_failed]") && shown.contains("wrong PIN"), "{shown}");
    assert!(!out.join("plan.txt").exists(), "nothing is written on a wrong PIN");
    assert_eq!(islington.inbox_ids(), std::slice::from_ref(&id), "the drop stays waiting");

    let right = run_on_a_terminal(&fetch, "482916\n");
    let shown = String::from_utf8_lossy(&right.stdout);
    assert!(right.status.success(), "the right PIN fetches:\n{shown}");
    assert!(shown.contains("Enter the PIN of the sealdroptest token"), "the PIN is asked:\n{shown}");
    assert!(shown.contains("Touch the sealdroptest token"), "the token's message is shown:\n{shown}");
    assert_eq!(read_text(&out.join("plan.txt")), "EHC plan\n");
}

#[test]
fn keygen_refuses_a_recipient_that_is_not_the_tokens() {
    let tool = Tool::new();
    let (token, other) = (generate_token_key(&[]), generate_token_key(&[]));
    let token_file = tool.dir.path().join("token.txt");
    sealdrop_e2e::write_file(&token_file, &token.identity_file);
    let key = tool.dir.path().join("member.key");
    let keygen = |recipient: &str| -> Vec<std::ffi::OsString> {
        ["keygen", "--party", "islington", "--member", "data-team", "--out"]
            .map(Into::into)
            .into_iter()
            .chain([key.clone().into_os_string(), "--plugin-identity".into(), token_file.clone().into_os_string()])
            .chain(["--plugin-recipient".into(), recipient.into()])
            .collect()
    };
    let args = keygen(&other.recipient);
    let args: Vec<&OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    let stderr = failed_with(&run(tool.command(), &args), "plugin_key_mismatch");
    assert!(stderr.contains("is not the key of the token"), "{stderr}");
    assert!(!key.exists(), "no key file is written for a pair that does not belong together");

    // Without the plugin the pair cannot be checked, so nothing is written either.
    let args = keygen(&token.recipient);
    let args: Vec<&OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    failed_with(&without_plugin(tool.command(), &args), "plugin_missing");
    assert!(!key.exists());

    // The right pair, the recipient taken from the identity file's comment.
    let ok = run(
        tool.command(),
        &[
            OsStr::new("keygen"),
            OsStr::new("--party=islington"),
            OsStr::new("--member=data-team"),
            OsStr::new("--out"),
            key.as_os_str(),
            OsStr::new("--plugin-identity"),
            token_file.as_os_str(),
        ],
    );
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let card = sealdrop_e2e::json(String::from_utf8_lossy(&ok.stdout).trim());
    assert_eq!(card["age_recipient"], token.recipient.as_str());
    assert_eq!(sealdrop_e2e::mode_of(&key), 0o600);
}
