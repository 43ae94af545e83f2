//! The test plugin (`age-plugin-sealdroptest`) does real cryptography and behaves as a
//! token does, judged by a client nobody here wrote: stock `age` finds it on `PATH`,
//! encrypts to its recipient and decrypts through it, with the PIN typed on a terminal
//! (under `script`) and the touch message shown.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use sealdrop_e2e::test_plugin::{TokenKey, generate_token_key, path_with_test_plugin};
use sealdrop_e2e::{read_bytes, read_text, write_file};

/// The stock `age` binary; fails the test when it is not installed.
fn age_binary() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).map(|d| d.join("age")).find(|p| p.is_file()).unwrap_or_else(|| {
        panic!("the stock `age` binary is not on PATH: install it (Debian/Ubuntu: `apt-get install age`) and rerun")
    })
}

/// Stock `age` with the test plugin first on `PATH`, no terminal.
fn age(dir: &Path) -> Command {
    let mut cmd = Command::new(age_binary());
    cmd.env("PATH", path_with_test_plugin()).current_dir(dir).stdin(Stdio::null());
    cmd
}

fn encrypt_to(dir: &Path, key: &TokenKey, message: &[u8]) -> PathBuf {
    let plain = dir.join("message.txt");
    let sealed = dir.join("message.age");
    write_file(&plain, message);
    let out = age(dir).arg("-r").arg(&key.recipient).arg("-o").arg(&sealed).arg(&plain).output().unwrap();
    assert!(out.status.success(), "age -r failed:\n{}", String::from_utf8_lossy(&out.stderr));
    sealed
}

fn identity_file(dir: &Path, key: &TokenKey, name: &str) -> PathBuf {
    let path = dir.join(name);
    write_file(&path, &key.identity_file);
    path
}

/// `age -d` under `script`, so age asks on a terminal and `typed` answers.
fn decrypt_on_a_terminal(dir: &Path, identity: &Path, sealed: &Path, out: &Path, typed: &str) -> Output {
    let inner = format!("age -d -i '{}' -o '{}' '{}'", identity.display(), out.display(), sealed.display());
    let mut cmd = Command::new("script");
    cmd.args(["-qec", &inner, "/dev/null"])
        .env("PATH", path_with_test_plugin())
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("run script (util-linux)");
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), typed.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

/// The recipient stanza lines of an age file's header.
fn stanza_lines(sealed: &Path) -> Vec<String> {
    let bytes = read_bytes(sealed);
    let header_end = bytes.windows(4).position(|w| w == b"\n---").expect("an age header");
    String::from_utf8_lossy(&bytes[..header_end]).lines().filter(|l| l.starts_with("-> ")).map(str::to_owned).collect()
}

#[test]
fn stock_age_encrypts_to_the_plugin_and_decrypts_through_it() {
    let dir = tempfile::tempdir().unwrap();
    let key = generate_token_key(&[]);
    assert!(key.recipient.starts_with("age1sealdroptest1"), "recipient {}", key.recipient);
    let sealed = encrypt_to(dir.path(), &key, b"upn,name\nA1,Ann\n");
    let stanzas = stanza_lines(&sealed);
    assert_eq!(stanzas.len(), 1, "one stanza: {stanzas:?}");
    assert!(stanzas[0].starts_with("-> sealdroptest "), "the plugin's own stanza: {stanzas:?}");

    let out = dir.path().join("opened.txt");
    let identity = identity_file(dir.path(), &key, "token.txt");
    let result = age(dir.path()).arg("-d").arg("-i").arg(&identity).arg("-o").arg(&out).arg(&sealed).output().unwrap();
    assert!(result.status.success(), "age -d failed:\n{}", String::from_utf8_lossy(&result.stderr));
    assert_eq!(read_text(&out), "upn,name\nA1,Ann\n");

    // Another token's key cannot open it: the wrapping is real, not a label.
    let other = identity_file(dir.path(), &generate_token_key(&[]), "other.txt");
    let refused = age(dir.path()).arg("-d").arg("-i").arg(&other).arg(&sealed).output().unwrap();
    assert!(!refused.status.success(), "another token opened the file");
}

#[test]
fn a_pin_token_asks_for_its_pin_and_refuses_a_wrong_one() {
    let dir = tempfile::tempdir().unwrap();
    let key = generate_token_key(&["--pin", "482916", "--touch"]);
    let sealed = encrypt_to(dir.path(), &key, b"EHC plan\n");
    let identity = identity_file(dir.path(), &key, "token.txt");

    let out = dir.path().join("opened.txt");
    let right = decrypt_on_a_terminal(dir.path(), &identity, &sealed, &out, "482916\n");
    let shown = String::from_utf8_lossy(&right.stdout);
    assert!(right.status.success(), "the right PIN failed:\n{shown}{}", String::from_utf8_lossy(&right.stderr));
    assert!(shown.contains("Enter the PIN of the sealdroptest token"), "no PIN prompt:\n{shown}");
    assert!(shown.contains("Touch the sealdroptest token"), "no touch message:\n{shown}");
    assert_eq!(read_text(&out), "EHC plan\n");

    let wrong_out = dir.path().join("wrong.txt");
    let wrong = decrypt_on_a_terminal(dir.path(), &identity, &sealed, &wrong_out, "000000\n");
    let shown = String::from_utf8_lossy(&wrong.stdout);
    assert!(!wrong.status.success(), "a wrong PIN opened the file:\n{shown}");
    assert!(shown.contains("wrong PIN"), "the plugin's refusal is not shown:\n{shown}");
    assert!(std::fs::metadata(&wrong_out).map_or(true, |m| m.len() == 0), "plaintext written on a wrong PIN");

    // With no terminal to ask on, the token refuses rather than guessing.
    let blind = age(dir.path()).arg("-d").arg("-i").arg(&identity).arg(&sealed).output().unwrap();
    let stderr = String::from_utf8_lossy(&blind.stderr);
    assert!(!blind.status.success(), "decrypted without a PIN");
    assert!(stderr.contains("could not ask for it"), "unclear failure without a terminal:\n{stderr}");
}
