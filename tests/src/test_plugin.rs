//! The test age plugin, `age-plugin-sealdroptest` (crates/sealdrop-test-plugin): a
//! software stand-in for a hardware token. Built once per test process, in its own
//! cargo run (see [`crate::bins`] for why runs are kept apart), and linked alone into a
//! folder of its own, so a test can put exactly it on `PATH`, or leave it off.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The plugin's name as age spells it in `age1sealdroptest1...` and `AGE-PLUGIN-SEALDROPTEST-1...`.
pub const PLUGIN_NAME: &str = "sealdroptest";

/// The plugin's binary name, which age looks for on `PATH`.
pub const PLUGIN_BINARY: &str = "age-plugin-sealdroptest";

/// The folder holding only the test plugin (built on first use).
pub fn test_plugin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
        let out = Command::new(&cargo)
            .args(["build", "-p", "sealdrop-test-plugin", "--bins"])
            .current_dir(crate::repo_root())
            .stdin(Stdio::null())
            .output()
            .expect("run cargo build");
        assert!(
            out.status.success(),
            "`cargo build -p sealdrop-test-plugin` failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let built = crate::target_dir().join("debug").join(PLUGIN_BINARY);
        assert!(built.is_file(), "{} was not built", built.display());
        let dir = crate::target_dir().join("test-age-plugins");
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        // A symbolic link follows rebuilds; made under a private name and renamed into
        // place, so test processes running side by side never see a half-made one.
        let link = dir.join(PLUGIN_BINARY);
        let temporary = dir.join(format!("{PLUGIN_BINARY}.{}.tmp", std::process::id()));
        let _ = std::fs::remove_file(&temporary);
        std::os::unix::fs::symlink(&built, &temporary)
            .unwrap_or_else(|e| panic!("link {} to {}: {e}", temporary.display(), built.display()));
        std::fs::rename(&temporary, &link).unwrap_or_else(|e| panic!("rename to {}: {e}", link.display()));
        dir
    })
}

/// `PATH` with the test plugin's folder first: what the client processes the harness
/// starts get. The test process's own `PATH` does not have it (a test that runs the
/// client without the plugin gives it that).
pub fn path_with_test_plugin() -> OsString {
    let inherited = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::iter::once(test_plugin_dir().to_path_buf()).chain(std::env::split_paths(&inherited));
    std::env::join_paths(dirs).expect("PATH entries hold no ':'")
}

/// A key pair made on the simulated token by `age-plugin-sealdroptest --generate`.
#[derive(Debug, Clone)]
pub struct TokenKey {
    /// `AGE-PLUGIN-SEALDROPTEST-1...`: what the member's key file names (on a real token
    /// this only points at the key; here it carries it).
    pub identity: String,
    /// `age1sealdroptest1...`: what senders encrypt to.
    pub recipient: String,
    /// The whole output, as an age identity file (comments and the identity line).
    pub identity_file: String,
}

/// Makes a token key; `extra` is passed on (`--pin PIN`, `--touch`).
pub fn generate_token_key(extra: &[&str]) -> TokenKey {
    let out = Command::new(test_plugin_dir().join(PLUGIN_BINARY))
        .arg("--generate")
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .expect("run age-plugin-sealdroptest --generate");
    assert!(out.status.success(), "--generate failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let identity_file = String::from_utf8(out.stdout).expect("UTF-8 output");
    let recipient = identity_file
        .lines()
        .find_map(|l| l.strip_prefix("# recipient: "))
        .unwrap_or_else(|| panic!("no `# recipient:` line in:\n{identity_file}"))
        .to_owned();
    let identity = identity_file
        .lines()
        .find(|l| l.starts_with("AGE-PLUGIN-SEALDROPTEST-1"))
        .unwrap_or_else(|| panic!("no identity line in:\n{identity_file}"))
        .to_owned();
    TokenKey { identity, recipient, identity_file }
}

/// Runs `cmd` (with its program, arguments, environment and folder) under
/// `script`, so it has a terminal: `typed` is what is typed on it (a PIN
/// and its newline). The output interleaves stdout and stderr as the
/// terminal showed them, with `\r\n` line ends.
pub fn run_on_a_terminal(cmd: &Command, typed: &str) -> std::process::Output {
    let quote = |s: &std::ffi::OsStr| format!("'{}'", s.to_string_lossy().replace('\'', r"'\''"));
    let line: Vec<String> = std::iter::once(quote(cmd.get_program())).chain(cmd.get_args().map(quote)).collect();
    let mut script = Command::new("script");
    script.args(["-qec", &line.join(" "), "/dev/null"]);
    for (name, value) in cmd.get_envs() {
        match value {
            Some(value) => script.env(name, value),
            None => script.env_remove(name),
        };
    }
    if let Some(dir) = cmd.get_current_dir() {
        script.current_dir(dir);
    }
    script.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = script.spawn().expect("run script (util-linux)");
    std::io::Write::write_all(child.stdin.as_mut().expect("piped stdin"), typed.as_bytes())
        .expect("type on the terminal");
    child.wait_with_output().expect("wait for script")
}

/// Makes `party` a member whose decryption key is `token`'s (keygen
/// `--plugin-identity`, run on a terminal where `typed` answers the token's
/// PIN prompt), in place of its example keys, and publishes the directory
/// through `publisher`. Returns keygen's terminal output.
pub fn give_token_key(
    coordinator: &crate::Coordinator,
    publisher: &crate::Party,
    party: &crate::Party,
    token: &TokenKey,
    typed: &str,
) -> String {
    let token_file = party.dir.path().join("token-identity.txt");
    crate::write_file(&token_file, &token.identity_file);
    crate::chmod(&token_file, 0o600);
    let key = party.dir.path().join("token-member.key");
    let mut keygen = coordinator.tool.command();
    keygen.args(["keygen", "--party", &party.id, "--member", "data-team", "--out"]);
    keygen.arg(&key).arg("--plugin-identity").arg(&token_file);
    let out = run_on_a_terminal(&keygen, typed);
    let shown = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "keygen --plugin-identity failed:\n{shown}");
    let card = shown.lines().map(str::trim).find(|l| l.starts_with('{')).expect("keygen prints the card");
    let card = crate::json(card);
    assert_eq!(card["age_recipient"], token.recipient.as_str(), "the card carries the token's recipient");

    let mut dir = crate::json(&crate::read_text(&coordinator.json));
    let entry = dir["parties"]
        .as_array_mut()
        .expect("parties")
        .iter_mut()
        .find(|p| p["id"] == party.id.as_str())
        .expect("the party is in the directory");
    entry["members"] = serde_json::json!([{
        "member": card["member"], "age_recipient": card["age_recipient"], "signing_key": card["signing_key"],
    }]);
    dir["serial"] = (dir["serial"].as_u64().expect("serial") + 1).into();
    crate::write_file(&coordinator.json, serde_json::to_string_pretty(&dir).expect("JSON"));
    coordinator.publish(publisher);
    crate::copy_with_mode(&key, &party.key, 0o600);
    shown
}
