//! The `sealdrop-hub` binary: init, serve on port 0 printing the bound
//! address first, answer requests, stop on SIGTERM; errors as `error: ...`.

mod common;

use std::io::{BufRead as _, BufReader, Read as _};
use std::path::Path;
use std::process::{Command, Stdio};

use sealdrop_proto::api::HubInfo;
use sealdrop_proto::directory::SignedDirectory;
use sealdrop_proto::keys::NoteSigningKey;

use common::{member, party};

const BIN: &str = env!("CARGO_BIN_EXE_sealdrop-hub");

/// Serial 1 of a directory of camden alone, signed by `authority`.
fn directory_note(authority: &NoteSigningKey) -> String {
    let dir = common::directory(1, vec![party(&[&member("camden", "data-team")], vec![])], vec![]);
    SignedDirectory::sign(dir, authority).unwrap().note
}

fn init(data: &Path, authority: &str, directory: &Path) -> std::process::Output {
    Command::new(BIN)
        .args(["init", "--data"])
        .arg(data)
        .args(["--origin", "hub.test/sealdrop", "--authority", authority, "--directory"])
        .arg(directory)
        .env_remove("SEALDROP_HUB_DATA")
        .output()
        .unwrap()
}

#[test]
fn init_serve_and_stop() {
    let tmp = tempfile::tempdir().unwrap();
    let authority = NoteSigningKey::generate("test-authority").unwrap();
    let dir_file = tmp.path().join("directory.note");
    std::fs::write(&dir_file, directory_note(&authority)).unwrap();
    let key_file = tmp.path().join("authority.pub");
    std::fs::write(&key_file, format!("{}\n", authority.verifier())).unwrap();
    let data = tmp.path().join("data");

    // The authority key as a file.
    let out = init(&data, key_file.to_str().unwrap(), &dir_file);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("initialised hub hub.test/sealdrop"), "{stdout}");
    assert!(stdout.contains("hub.test/sealdrop+"), "prints the log public key: {stdout}");
    assert!(stdout.contains("`hub` field") && stdout.contains("verifier-key"), "says where it goes: {stdout}");

    // A second init refuses, with a one-line error.
    let out = init(&data, &authority.verifier().to_string(), &dir_file);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("error: ") && stderr.contains("already holds an initialised hub"), "{stderr}");
    // A bad authority argument.
    let out = init(&tmp.path().join("other"), "not-a-key", &dir_file);
    assert!(String::from_utf8_lossy(&out.stderr).contains("error: --authority"));

    // Serve on port 0 with a test clock; the first stdout line is the address.
    let clock = tmp.path().join("clock");
    std::fs::write(&clock, "2026-06-01T00:00:00Z").unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--data"])
        .arg(&data)
        .args(["--listen", "127.0.0.1:0"])
        .env("SEALDROP_TEST_CLOCK", &clock)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let addr = line.trim();
    assert!(addr.starts_with("127.0.0.1:") && !addr.ends_with(":0"), "{line:?}");

    let info: HubInfo = reqwest::blocking::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("http://{addr}/v1/info"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!((info.origin.as_str(), info.directory_serial), ("hub.test/sealdrop", 1));

    let killed = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "graceful shutdown exits 0: {status}");
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert!(stderr.contains("SEALDROP_TEST_CLOCK"), "warns about the test clock: {stderr}");
    assert!(stderr.contains("route=/v1/info"), "logs the route: {stderr}");
    assert!(!stderr.contains('\u{1b}'), "no colour codes when stderr is not a terminal");
}

#[test]
fn serve_refuses_an_uninitialised_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let out =
        Command::new(BIN).args(["serve", "--data"]).arg(tmp.path()).args(["--listen", "127.0.0.1:0"]).output().unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "no address is printed");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("error[data_dir]: ") && stderr.contains("sealdrop-hub init"), "{stderr}");
}
