//! End-to-end test harness for sealdrop: builds and runs the real `sealdrop`
//! and `sealdrop-hub` binaries against each other.
//!
//! - [`bins`] builds both binaries once per test process and returns their paths.
//! - [`Hub`] initialises a hub in a temporary data directory, serves it on a
//!   free local port and kills it when dropped.
//! - [`Party`] runs `sealdrop` as one of the example parties, with its own
//!   copy of the key (mode 0600), its own state directory and no user config.
//! - [`http`] signs raw requests to the hub for the tests that go around the client.
//! - [`raw`] writes HTTP/1.1 by hand on a TCP connection, for requests no
//!   client library would send (hostile paths, lying Content-Lengths, slow heads).
//! - [`CutProxy`] stands between a client and the hub and cuts one
//!   connection part-way (a download's answer or an upload's body), as a
//!   network fault would.
//! - [`TestTls`] makes a private CA and a server certificate for 127.0.0.1,
//!   for a hub serving TLS itself.
//! - [`webhook::WebhookReceiver`] and [`smtp::SmtpReceiver`]: a real HTTP
//!   server and a real SMTP server (aiosmtpd, with STARTTLS) that keep what
//!   the client's notifications send them.
//! - [`test_plugin`] builds `age-plugin-sealdroptest` (a software stand-in for a
//!   hardware token) and puts its folder first on the client's `PATH`.

use rusqlite::OptionalExtension as _;
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::{BufRead as _, BufReader, Read as _};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;

use sha2::{Digest as _, Sha256};
use tempfile::TempDir;

/// The agreement in `keys-example/directory.json` that covers every borough.
pub const AGREEMENT: &str = "london-fsm-ehc";

/// Environment variables the binaries read that must never leak in from the
/// developer's shell.
const SEALDROP_ENV: &[&str] = &[
    "SEALDROP_HUB",
    "SEALDROP_IDENTITY",
    "SEALDROP_AUTHORITY",
    "SEALDROP_STATE",
    "SEALDROP_CONFIG",
    "SEALDROP_TEST_CLOCK",
    "SEALDROP_RESUME_MIN_BYTES",
    "SEALDROP_INSECURE_HTTP",
    "SEALDROP_WITNESS_KEY",
    "SEALDROP_HUB_CA",
    "SEALDROP_KEY_PLUGIN_IDENTITY",
];

/// The workspace root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ lives in the workspace").to_path_buf()
}

/// `<repo>/keys-example`.
pub fn keys_example() -> PathBuf {
    repo_root().join("keys-example")
}

/// `<repo>/keys-example/authority.pub`.
pub fn authority_pub() -> PathBuf {
    keys_example().join("authority.pub")
}

/// The authority's key name (the part of `authority.pub` before the first `+`).
pub fn authority_name() -> String {
    let text = read_text(&authority_pub());
    text.trim().split('+').next().expect("split yields one part").to_owned()
}

/// Paths to the binaries under test.
#[derive(Debug)]
pub struct Bins {
    /// `sealdrop`.
    pub client: PathBuf,
    /// `sealdrop-hub`.
    pub hub: PathBuf,
    /// `sealdrop-demo`, which `sealdrop demo` and `sealdrop sample` run from beside `sealdrop`.
    pub demo: PathBuf,
}

/// Builds `sealdrop`, `sealdrop-hub` and `sealdrop-demo` once per test process (cargo's own
/// lock keeps parallel test processes safe) and returns their paths.
///
/// The hub is built with its `failpoints` feature (`tests/tests/faults.rs`
/// arms them), in its own cargo run: cargo unifies features across the
/// packages of one run, and `sealdrop-demo` links the hub's library, so one
/// run would build the demo with fail points it must never have.
pub fn bins() -> &'static Bins {
    static BINS: OnceLock<Bins> = OnceLock::new();
    BINS.get_or_init(|| {
        let root = repo_root();
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
        for args in [
            &["build", "-p", "sealdrop", "-p", "sealdrop-demo", "--bins"][..],
            &["build", "-p", "sealdrop-hub", "--bins", "--features", "failpoints"][..],
        ] {
            let out = Command::new(&cargo)
                .args(args)
                .current_dir(&root)
                .stdin(Stdio::null())
                .output()
                .expect("run cargo build");
            assert!(
                out.status.success(),
                "`cargo {}` failed:\n{}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let target = target_dir();
        let bins = Bins {
            client: target.join("debug/sealdrop"),
            hub: target.join("debug/sealdrop-hub"),
            demo: target.join("debug/sealdrop-demo"),
        };
        for bin in [&bins.client, &bins.hub, &bins.demo] {
            assert!(bin.is_file(), "{} was not built", bin.display());
        }
        bins
    })
}

/// Cargo's target folder for this workspace (`CARGO_TARGET_DIR` when set).
pub fn target_dir() -> PathBuf {
    let root = repo_root();
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() { dir } else { root.join(dir) }
        }
        _ => root.join("target"),
    }
}

// ---------------------------------------------------------------------------
// Small file helpers

/// Reads a file as UTF-8, naming it on failure.
pub fn read_text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Reads a file, naming it on failure.
pub fn read_bytes(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Writes a file (creating its parent folders), naming it on failure.
pub fn write_file(path: &Path, content: impl AsRef<[u8]>) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("mkdir {}: {e}", parent.display()));
    }
    std::fs::write(path, content).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// Sets a file's permission bits.
pub fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

/// A file's permission bits (`0o777` part).
pub fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap_or_else(|e| panic!("stat {}: {e}", path.display())).permissions().mode() & 0o777
}

/// Copies a file and sets its mode.
pub fn copy_with_mode(from: &Path, to: &Path, mode: u32) {
    std::fs::copy(from, to).unwrap_or_else(|e| panic!("copy {} -> {}: {e}", from.display(), to.display()));
    chmod(to, mode);
}

/// Every file under `dir` (recursively, hidden ones included) by its path
/// relative to `dir`, with its content. Folders appear as entries ending in
/// `/` with empty content, so empty and leftover folders are visible too.
pub fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display())) {
            let entry = entry.expect("dir entry");
            let path = entry.path();
            let rel = path.strip_prefix(root).expect("under root").to_string_lossy().into_owned();
            let ft = entry.file_type().expect("file type");
            if ft.is_dir() {
                out.insert(format!("{rel}/"), Vec::new());
                walk(root, &path, out);
            } else {
                out.insert(rel, read_bytes(&path));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// The names in a folder (hidden ones included), sorted.
pub fn list_dir(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Deterministic pseudo-random bytes (xorshift64*), so tests need no RNG crate.
pub fn pseudo_random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Flips every bit of the byte at `offset` in a file.
pub fn flip_byte(path: &Path, offset: usize) {
    let mut data = read_bytes(path);
    assert!(offset < data.len(), "offset {offset} is past the end of {} ({} bytes)", path.display(), data.len());
    data[offset] ^= 0xff;
    std::fs::write(path, data).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// Whether `s` looks like a drop id: `d-` and 26 lowercase letters or digits.
pub fn is_drop_id(s: &str) -> bool {
    s.parse::<sealdrop_proto::ids::DropId>().is_ok()
}

/// The `<code>` of the first `error[<code>]: ...` line in a client's stderr.
pub fn error_code(stderr: &str) -> Option<String> {
    stderr.lines().find_map(|l| {
        let rest = l.trim_start().strip_prefix("error[")?;
        let (code, _) = rest.split_once("]:")?;
        Some(code.to_owned())
    })
}

/// Asserts stderr holds exactly one `error[<code>]: <message>` line with a message.
pub fn assert_one_error_line(stderr: &str) {
    let errors: Vec<&str> = stderr.lines().filter(|l| l.trim_start().starts_with("error")).collect();
    assert_eq!(errors.len(), 1, "expected exactly one `error[<code>]: <message>` line, stderr:\n{stderr}");
    let message = errors[0].split_once("]:").map(|(_, m)| m.trim()).unwrap_or_default();
    assert!(!message.is_empty(), "the error line has no message: {stderr}");
}

/// A port on 127.0.0.1 that nothing listens on (bound, then released).
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("local addr").port();
    drop(l);
    port
}

/// Parses JSON, showing the text on failure.
pub fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"))
}

/// Parses an RFC 3339 timestamp field, naming it on failure.
pub fn timestamp(v: &serde_json::Value, field: &str) -> sealdrop_proto::Timestamp {
    let s = v[field].as_str().unwrap_or_else(|| panic!("`{field}` is not a string in {v}"));
    s.parse().unwrap_or_else(|e| panic!("`{field}` = {s:?} is not RFC 3339: {e}"))
}

// ---------------------------------------------------------------------------
// Directories

/// `keys-example/directory.json` as JSON.
pub fn example_directory_json() -> serde_json::Value {
    json(&read_text(&keys_example().join("directory.json")))
}

/// Writes `directory` as JSON to `dir/name.json`, signs it with the key file
/// `key` through `sealdrop directory sign`, and returns the signed note's text.
pub fn sign_directory(dir: &Path, name: &str, directory: &serde_json::Value, key: &Path) -> String {
    let input = dir.join(format!("{name}.json"));
    let out = dir.join(format!("{name}.signed"));
    write_file(&input, serde_json::to_string_pretty(directory).expect("serialize"));
    Tool::new().ok([
        OsStr::new("directory"),
        OsStr::new("sign"),
        OsStr::new("--key"),
        key.as_os_str(),
        OsStr::new("--input"),
        input.as_os_str(),
        OsStr::new("--out"),
        out.as_os_str(),
    ]);
    read_text(&out)
}

/// A private copy (mode 0600) of `keys-example/authority.key` in `dir`.
pub fn authority_key_copy(dir: &Path) -> PathBuf {
    let to = dir.join("authority.key");
    if !to.exists() {
        copy_with_mode(&keys_example().join("authority.key"), &to, 0o600);
    }
    to
}

/// The example directory with `serial` set, signed by the example authority.
pub fn example_directory_signed_with_serial(dir: &Path, serial: u64) -> String {
    let mut d = example_directory_json();
    d["serial"] = serial.into();
    // Let `directory sign` fill in a fresh issued_at.
    if let Some(obj) = d.as_object_mut() {
        obj.remove("issued_at");
    }
    sign_directory(dir, &format!("directory-{serial}"), &d, &authority_key_copy(dir))
}

// ---------------------------------------------------------------------------
// Running the client

/// Runs `cmd ARGS`.
fn run_args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(mut cmd: Command, args: I) -> Output {
    cmd.args(args);
    run_command(cmd)
}

/// Runs `cmd ARGS`, asserting success; returns stdout.
fn ok_args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(cmd: Command, args: I) -> String {
    let args: Vec<S> = args.into_iter().collect();
    let os: Vec<&OsStr> = args.iter().map(AsRef::as_ref).collect();
    ok_output(&os, run_args(cmd, &os))
}

/// Runs `cmd ARGS`, asserting failure; returns the exit code and stderr.
fn fail_args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(cmd: Command, args: I) -> (i32, String) {
    let args: Vec<S> = args.into_iter().collect();
    let os: Vec<&OsStr> = args.iter().map(AsRef::as_ref).collect();
    fail_output(&os, run_args(cmd, &os))
}

/// Runs a command, returning its output.
fn run_command(mut cmd: Command) -> Output {
    cmd.stdin(Stdio::null());
    cmd.output().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"))
}

fn describe(args: &[&OsStr], out: &Output) -> String {
    let args: Vec<String> = args.iter().map(|a| a.to_string_lossy().into_owned()).collect();
    format!(
        "`sealdrop {}` exited with {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn ok_output(args: &[&OsStr], out: Output) -> String {
    assert!(out.status.success(), "expected success: {}", describe(args, &out));
    String::from_utf8(out.stdout).expect("stdout is UTF-8")
}

fn fail_output(args: &[&OsStr], out: Output) -> (i32, String) {
    assert!(!out.status.success(), "expected failure: {}", describe(args, &out));
    let code = out.status.code().unwrap_or_else(|| panic!("killed by a signal: {}", describe(args, &out)));
    (code, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// The coordinator's side of a rotation, as the README describes it: edit
/// the unsigned directory with `directory add-member` / `directory revoke`,
/// sign, publish.
#[derive(Debug)]
pub struct Coordinator {
    /// Runs `sealdrop` for the coordinator, in its own folder.
    pub tool: Tool,
    /// The unsigned directory (JSON) the coordinator edits.
    pub json: std::path::PathBuf,
    /// The authority key (a private copy of the example one).
    pub key: std::path::PathBuf,
}

impl Default for Coordinator {
    fn default() -> Self {
        Self::new()
    }
}

impl Coordinator {
    /// Gives each of `parties` one new member key made with `keygen
    /// OPTIONS` in place of its example keys (a party's keys are of one
    /// kind), publishes the directory through `publisher`, and installs
    /// each new key in the matching [`Party`] of `members`.
    pub fn rekey(&self, publisher: &Party, members: &[&Party], options: &[&str]) {
        let mut dir: serde_json::Value = json(&read_text(&self.json));
        for party in members {
            let (key, card) = new_member_with(self.tool.dir.path(), &party.id, "data-team", options);
            let card = json(&read_text(&card));
            let entry =
                dir["parties"].as_array_mut().unwrap().iter_mut().find(|p| p["id"] == party.id.as_str()).unwrap();
            entry["members"] = serde_json::json!([{
                "member": card["member"], "age_recipient": card["age_recipient"], "signing_key": card["signing_key"],
            }]);
            copy_with_mode(&key, &party.key, 0o600);
        }
        dir["serial"] = (dir["serial"].as_u64().unwrap() + 1).into();
        write_file(&self.json, serde_json::to_string_pretty(&dir).unwrap());
        self.publish(publisher);
    }

    /// The example directory (`keys-example/directory.json`) and a copy of its authority key.
    pub fn new() -> Self {
        let tool = Tool::new();
        let json = tool.dir.path().join("directory.json");
        write_file(&json, serde_json::to_string_pretty(&example_directory_json()).unwrap());
        let key = authority_key_copy(tool.dir.path());
        Self { tool, json, key }
    }

    /// Runs `sealdrop ARGS --input <the unsigned directory>`.
    pub fn run(&self, args: &[&str]) -> String {
        let mut all: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
        all.extend([OsStr::new("--input"), self.json.as_os_str()]);
        self.tool.ok(all)
    }

    /// Signs the current file and publishes it to `hub` (as `publisher`, any client).
    pub fn publish(&self, publisher: &Party) {
        let signed = self.tool.dir.path().join("directory.signed");
        self.tool.ok([
            OsStr::new("directory"),
            "sign".as_ref(),
            "--key".as_ref(),
            self.key.as_os_str(),
            "--input".as_ref(),
            self.json.as_os_str(),
            "--out".as_ref(),
            signed.as_os_str(),
        ]);
        publisher.ok([OsStr::new("directory"), "publish".as_ref(), signed.as_os_str()]);
    }
}

/// A new member key for `party/member`, made with `sealdrop keygen`; returns the key file and its card file.
pub fn new_member(dir: &Path, party: &str, member: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    new_member_with(dir, party, member, &[])
}

/// [`new_member`] with more `keygen` options, e.g. `--classic`.
pub fn new_member_with(dir: &Path, party: &str, member: &str, options: &[&str]) -> (PathBuf, PathBuf) {
    let key = dir.join(format!("{party}-{member}.key"));
    let mut args: Vec<&OsStr> = vec![
        OsStr::new("keygen"),
        "--party".as_ref(),
        party.as_ref(),
        "--member".as_ref(),
        member.as_ref(),
        "--out".as_ref(),
        key.as_os_str(),
    ];
    args.extend(options.iter().map(OsStr::new));
    let out = Tool::new().ok(args);
    let card = out.lines().find(|l| l.trim_start().starts_with('{')).expect("keygen prints the card").to_owned();
    let card_file = dir.join(format!("{party}-{member}.card.json"));
    write_file(&card_file, card);
    (key, card_file)
}

/// `sealdrop` with no identity, hub or authority: for `keygen` and `directory`
/// commands. Runs in its own temporary folder with no user config.
#[derive(Debug)]
pub struct Tool {
    /// Working folder (also HOME).
    pub dir: TempDir,
}

impl Default for Tool {
    fn default() -> Self {
        Self::new()
    }
}

impl Tool {
    /// A fresh tool runner.
    pub fn new() -> Self {
        Self { dir: tempfile::tempdir().expect("tempdir") }
    }

    /// The base command.
    pub fn command(&self) -> Command {
        base_command(self.dir.path())
    }

    /// Runs `sealdrop ARGS`.
    pub fn run<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(&self, args: I) -> Output {
        run_args(self.command(), args)
    }

    /// Runs and asserts success; returns stdout.
    pub fn ok<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(&self, args: I) -> String {
        ok_args(self.command(), args)
    }

    /// Runs and asserts failure; returns the exit code and stderr.
    pub fn fail<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(&self, args: I) -> (i32, String) {
        fail_args(self.command(), args)
    }
}

/// `sealdrop` with a clean environment rooted at `home`.
fn base_command(home: &Path) -> Command {
    let mut cmd = Command::new(&bins().client);
    for var in SEALDROP_ENV {
        cmd.env_remove(var);
    }
    let config = home.join("none.toml");
    cmd.env("SEALDROP_CONFIG", &config)
        .env("NO_COLOR", "1")
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_DATA_HOME", home.join(".local/share"))
        .env("XDG_STATE_HOME", home.join(".local/state"))
        .env("XDG_CACHE_HOME", home.join(".cache"))
        // age finds plugins on PATH: the test plugin comes first, as a token's would.
        .env("PATH", test_plugin::path_with_test_plugin())
        .current_dir(home);
    cmd
}

/// One party's `sealdrop`, acting with its example key against one hub.
#[derive(Debug)]
pub struct Party {
    /// The party id, e.g. `camden`.
    pub id: String,
    /// Holds the key, the state dir and the working folder.
    pub dir: TempDir,
    /// The copy of the party's secret key (mode 0600).
    pub key: PathBuf,
    /// The client's state dir.
    pub state: PathBuf,
    /// The hub's URL.
    pub hub_url: String,
    /// What `--authority` is given.
    pub authority: PathBuf,
    /// The test clock file the client reads the time from, if any.
    pub clock: Option<PathBuf>,
    /// What `--hub-ca` is given, if anything.
    pub hub_ca: Option<PathBuf>,
}

impl Party {
    /// A party talking to `hub`.
    pub fn new(hub: &Hub, id: &str) -> Self {
        Self::with_url(&hub.url, id)
    }

    /// A party talking to the hub at `url` (which may not be listening).
    pub fn with_url(url: &str, id: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = dir.path().join(format!("{id}.key"));
        copy_with_mode(&keys_example().join("parties").join(format!("{id}.key")), &key, 0o600);
        let state = dir.path().join("state");
        std::fs::create_dir(&state).expect("mkdir state");
        let work = dir.path().join("work");
        std::fs::create_dir(&work).expect("mkdir work");
        Self {
            id: id.to_owned(),
            dir,
            key,
            state,
            hub_url: url.to_owned(),
            authority: authority_pub(),
            clock: None,
            hub_ca: None,
        }
    }

    /// The same party reading the time from `clock` (see [`TestClock`]).
    pub fn with_clock(mut self, clock: &TestClock) -> Self {
        self.clock = Some(clock.path().to_path_buf());
        self
    }

    /// The same party (same key and state dir) pointed at another hub.
    pub fn point_at(&mut self, hub: &Hub) {
        self.hub_url = hub.url.clone();
    }

    /// A scratch folder for this party's files (the client's working dir).
    pub fn work(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    /// The base command with the global options.
    pub fn command(&self) -> Command {
        let mut cmd = base_command(self.dir.path());
        if let Some(clock) = &self.clock {
            cmd.env("SEALDROP_TEST_CLOCK", clock);
        }
        cmd.current_dir(self.work())
            .arg("--hub")
            .arg(&self.hub_url)
            .arg("--identity")
            .arg(&self.key)
            .arg("--authority")
            .arg(&self.authority)
            .arg("--state-dir")
            .arg(&self.state);
        if let Some(ca) = &self.hub_ca {
            cmd.arg("--hub-ca").arg(ca);
        }
        cmd
    }

    /// Runs `sealdrop GLOBALS ARGS`.
    pub fn run<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(&self, args: I) -> Output {
        run_args(self.command(), args)
    }

    /// Runs and asserts success; returns stdout.
    pub fn ok<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(&self, args: I) -> String {
        ok_args(self.command(), args)
    }

    /// Runs and asserts failure; returns the exit code and stderr.
    pub fn fail<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(&self, args: I) -> (i32, String) {
        fail_args(self.command(), args)
    }

    /// Starts `sealdrop GLOBALS ARGS` in the background (stdout and stderr
    /// piped), for a test that stops it or the hub part-way.
    pub fn spawn<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(&self, args: I) -> Child {
        let mut cmd = self.command();
        cmd.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"))
    }

    /// Runs, asserts failure with error code `code`; returns the exit code and stderr.
    pub fn fail_code<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(&self, args: I, code: &str) -> (i32, String) {
        let args: Vec<S> = args.into_iter().collect();
        let shown: Vec<String> = args.iter().map(|a| a.as_ref().to_string_lossy().into_owned()).collect();
        let (exit, stderr) = self.fail(args);
        assert_eq!(
            error_code(&stderr).as_deref(),
            Some(code),
            "`sealdrop {}`: expected error code `{code}`, stderr:\n{stderr}",
            shown.join(" ")
        );
        assert_one_error_line(&stderr);
        (exit, stderr)
    }

    /// Runs, asserts failure with `exit` and error code `code`; returns stderr.
    pub fn fail_with<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(&self, args: I, exit: i32, code: &str) -> String {
        let args: Vec<S> = args.into_iter().collect();
        let shown: Vec<String> = args.iter().map(|a| a.as_ref().to_string_lossy().into_owned()).collect();
        let (got_exit, stderr) = self.fail(args);
        assert_eq!(
            error_code(&stderr).as_deref(),
            Some(code),
            "`sealdrop {}`: expected error code `{code}`, stderr:\n{stderr}",
            shown.join(" ")
        );
        assert_one_error_line(&stderr);
        assert_eq!(got_exit, exit, "`sealdrop {}`: expected exit {exit}, stderr:\n{stderr}", shown.join(" "));
        stderr
    }

    /// Writes a file under the work folder and returns its path.
    pub fn file(&self, rel: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let path = self.work().join(rel);
        write_file(&path, content);
        path
    }

    /// `sealdrop send --to TO PATHS...`, returning the drop id.
    pub fn send(&self, to: &str, paths: &[&Path]) -> String {
        let mut args: Vec<&OsStr> = vec![OsStr::new("send"), OsStr::new("--to"), OsStr::new(to)];
        args.extend(paths.iter().map(|p| p.as_os_str()));
        let out = self.ok(&args);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 1, "`send` must print the drop id as its only stdout line, got:\n{out}");
        let id = lines[0].trim().to_owned();
        assert!(is_drop_id(&id), "`send` printed {id:?}, not a drop id (`d-` + 26 lowercase letters/digits)");
        id
    }

    /// `sealdrop inbox --json`.
    pub fn inbox(&self) -> Vec<serde_json::Value> {
        let out = self.ok(["inbox", "--json"]);
        match json(&out) {
            serde_json::Value::Array(a) => a,
            other => panic!("`inbox --json` must print a JSON array, got {other}"),
        }
    }

    /// The ids in `inbox --json`.
    pub fn inbox_ids(&self) -> Vec<String> {
        self.inbox()
            .iter()
            .map(|e| e["id"].as_str().unwrap_or_else(|| panic!("entry without id: {e}")).to_owned())
            .collect()
    }

    /// `sealdrop fetch ID -o DIR` (asserting success); returns stdout.
    pub fn fetch(&self, id: &str, out: &Path) -> String {
        self.ok([OsStr::new("fetch"), OsStr::new(id), OsStr::new("-o"), out.as_os_str()])
    }

    /// `sealdrop status --json`.
    pub fn status(&self) -> Vec<serde_json::Value> {
        let out = self.ok(["status", "--json"]);
        match json(&out) {
            serde_json::Value::Array(a) => a,
            other => panic!("`status --json` must print a JSON array, got {other}"),
        }
    }

    /// One drop's entry in `status --json`.
    pub fn status_of(&self, id: &str) -> serde_json::Value {
        let all = self.status();
        all.iter()
            .find(|d| d["id"] == id)
            .unwrap_or_else(|| panic!("drop {id} is not in `status --json`: {all:?}"))
            .clone()
    }

    /// `sealdrop journal --json`: this machine's journal, oldest first.
    pub fn journal(&self) -> Vec<serde_json::Value> {
        match json(&self.ok(["journal", "--json"])) {
            serde_json::Value::Array(a) => a,
            other => panic!("`journal --json` must print a JSON array, got {other}"),
        }
    }

    /// The party's member secret key.
    pub fn secret_key(&self) -> sealdrop_proto::keys::MemberSecretKey {
        member_key(&self.id)
    }
}

/// The recipient entry for `party` in a `status --json` drop.
pub fn recipient_status<'a>(drop: &'a serde_json::Value, party: &str) -> &'a serde_json::Value {
    drop["recipients"]
        .as_array()
        .unwrap_or_else(|| panic!("`recipients` is not an array in {drop}"))
        .iter()
        .find(|r| r["party"] == party)
        .unwrap_or_else(|| panic!("{party} is not among the recipients of {drop}"))
}

/// An example party's member secret key.
pub fn member_key(party: &str) -> sealdrop_proto::keys::MemberSecretKey {
    let path = keys_example().join("parties").join(format!("{party}.key"));
    sealdrop_proto::keys::MemberSecretKey::from_file_text(&read_text(&path))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The manifest `sender` signs for `drop`, to `recipient`'s example member
/// key only, under [`AGREEMENT`] and directory serial 1, stating
/// `ciphertext`: for tests that drive the API by hand (edit it before
/// signing to make it lie).
pub fn manifest_for(
    sender: &str,
    recipient: &str,
    drop: &sealdrop_proto::api::CreatedDrop,
    ciphertext: &[u8],
) -> sealdrop_proto::drop::Manifest {
    let key = member_key(sender);
    let card = member_key(recipient).public();
    sealdrop_proto::drop::Manifest {
        drop: drop.id.clone(),
        sender: key.party.clone(),
        sender_member: key.member.clone(),
        recipients: vec![card.party.clone()],
        encrypted_to: vec![sealdrop_proto::drop::EncryptedTo {
            key: sealdrop_proto::ids::key_name(&card.party, &card.member),
            age_recipient: card.age_recipient.clone(),
        }],
        agreement: AGREEMENT.into(),
        directory_serial: 1,
        ciphertext_sha256: sha256_hex(ciphertext),
        ciphertext_len: ciphertext.len() as u64,
        created: drop.created,
        expires: drop.expires,
    }
}

/// `plaintext` encrypted to `recipients` outside the client, as a sender
/// with other tools would: by the stock `age` binary when every key is
/// classic (Debian's age 1.1 encrypts to nothing else), else by the `age`
/// crate, which writes post-quantum files as Go age 1.3 does (the CCTV
/// vectors prove the format).
pub fn age_encrypt(recipients: &[&str], plaintext: &[u8]) -> Vec<u8> {
    use sealdrop_proto::age_keys::{AgeRecipient, KeyKind, kind_of};
    if recipients.iter().any(|r| kind_of(r) != Some(KeyKind::Classic)) {
        let parsed: Vec<AgeRecipient> = recipients.iter().map(|r| r.parse().expect("an age recipient")).collect();
        let encryptor =
            age::Encryptor::with_recipients(parsed.iter().map(|r| r.native().expect("a native key"))).expect("keys");
        let mut w = encryptor.wrap_output(Vec::new()).expect("in memory");
        std::io::Write::write_all(&mut w, plaintext).expect("in memory");
        return w.finish().expect("in memory");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (plain, cipher) = (dir.path().join("plain"), dir.path().join("cipher.age"));
    write_file(&plain, plaintext);
    let mut age = Command::new("age");
    for r in recipients {
        age.arg("-r").arg(r);
    }
    let out = age
        .arg("-o")
        .arg(&cipher)
        .arg(&plain)
        .output()
        .unwrap_or_else(|e| panic!("run the stock `age` binary (Debian: `apt-get install age`): {e}"));
    assert!(out.status.success(), "age -r failed: {}", String::from_utf8_lossy(&out.stderr));
    read_bytes(&cipher)
}

/// `len` bytes standing in for a drop's ciphertext to `keys` keys (the
/// example keys are post-quantum), for tests that drive the API by hand: an
/// age v1 header with `keys` `mlkem768x25519` recipient stanzas (which the
/// hub counts against the manifest at commit), then [`pseudo_random_bytes`]
/// from `seed`. Not decryptable: the encapsulated keys and wrapped file
/// keys are made up, and the hub never decrypts.
pub fn age_shaped(keys: usize, len: usize, seed: u64) -> Vec<u8> {
    use base64::Engine as _;
    let b64 = |n: u64| base64::engine::general_purpose::STANDARD_NO_PAD.encode(Sha256::digest(n.to_be_bytes()));
    // The stanza's argument encodes 1,120 bytes (the C2SP age spec).
    let enc = |n: u64| base64::engine::general_purpose::STANDARD_NO_PAD.encode(pseudo_random_bytes(1120, n));
    let mut out = b"age-encryption.org/v1\n".to_vec();
    for k in 0..keys as u64 {
        let stanza = format!("-> mlkem768x25519 {}\n{}\n", enc(seed ^ (2 * k)), b64(seed ^ (2 * k + 1)));
        out.extend_from_slice(stanza.as_bytes());
    }
    out.extend_from_slice(format!("--- {}\n", b64(!seed)).as_bytes());
    assert!(out.len() <= len, "{len} bytes cannot hold an age header for {keys} keys ({} bytes)", out.len());
    let header = out.len();
    out.extend(pseudo_random_bytes(len - header, seed));
    out
}

// ---------------------------------------------------------------------------
// Time

/// A clock file that a hub and its clients read the time from (through
/// `SEALDROP_TEST_CLOCK`), so a test moves time forward by writing it,
/// never by sleeping. Starts at the real time, in whole seconds.
#[derive(Debug)]
pub struct TestClock {
    dir: TempDir,
    file: PathBuf,
    now: std::cell::Cell<i64>,
}

impl Default for TestClock {
    fn default() -> Self {
        Self::new()
    }
}

impl TestClock {
    /// A clock at the current real time.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("now");
        let clock = Self { dir, file, now: std::cell::Cell::new(0) };
        clock.set(sealdrop_proto::Timestamp::now().as_second());
        clock
    }

    /// The file the processes read.
    pub fn path(&self) -> &Path {
        &self.file
    }

    /// Sets the time (Unix seconds). Written to a temporary file and
    /// renamed, so a process never reads half a time.
    pub fn set(&self, unix: i64) {
        let tmp = self.dir.path().join("now.tmp");
        std::fs::write(&tmp, unix.to_string()).expect("write the test clock");
        std::fs::rename(&tmp, &self.file).expect("move the test clock into place");
        self.now.set(unix);
    }

    /// Moves the time forward by `secs`.
    pub fn advance(&self, secs: i64) {
        self.set(self.now.get() + secs);
    }

    /// The time now (Unix seconds).
    pub fn now(&self) -> i64 {
        self.now.get()
    }
}

// ---------------------------------------------------------------------------
// The hub

/// The prefix under which [`Hub::start_on_object_store`] keeps objects in the bucket.
pub const OBJECT_STORE_PREFIX: &str = "hub";

/// A running `sealdrop-hub serve` over a temporary data directory.
#[derive(Debug)]
pub struct Hub {
    /// The data directory (`--data`).
    pub data: TempDir,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// `http://127.0.0.1:PORT` (`https://` when it serves TLS).
    pub url: String,
    /// `127.0.0.1:PORT` of the metrics listener, when `--metrics-listen` was given.
    pub metrics_addr: Option<String>,
    logs: TempDir,
    child: Child,
    /// The test clock file `serve` reads the time from, if any (kept across restarts).
    clock: Option<PathBuf>,
    /// The umask `init` and `serve` run with, if set (kept across restarts).
    umask: Option<u32>,
    /// Environment every `serve` of this hub runs with (kept across
    /// restarts): where it keeps ciphertexts, and the object store's
    /// endpoint and credentials.
    env: Vec<(String, String)>,
    /// The shared stores it runs on, if not the embedded ones: where the
    /// tests read its records and ciphertexts (and what keeps the object
    /// store running).
    shared: Option<SharedStores>,
}

impl Hub {
    /// Initialises a hub with the example authority and directory and serves it.
    pub fn start() -> Self {
        Self::start_with(None, &[])
    }

    /// Like [`Hub::start`], reading the time from `clock` (see [`TestClock`])
    /// and with extra `serve` options, e.g. `--sweep-interval 0.1`.
    pub fn start_with_clock(clock: &TestClock, options: &[&str]) -> Self {
        Self::start_with(Some(clock.path()), options)
    }

    /// Like [`Hub::start`], with extra `serve` options, e.g.
    /// `--metrics-listen 127.0.0.1:0` or `--tls-cert FILE --tls-key FILE`
    /// (the URL is then `https://`).
    pub fn start_with_options(options: &[&str]) -> Self {
        Self::start_with(None, options)
    }

    /// An initialised data directory (the example authority and directory)
    /// that no hub serves yet, for `check-config` and `serve` run by hand.
    pub fn init_data() -> TempDir {
        Self::init_data_with(&[])
    }

    /// Like [`Hub::init_data`], with `init` run with `env` (where the
    /// stores are, say: `SEALDROP_HUB_BLOBS` and the `AWS_*` variables).
    pub fn init_data_with(env: &[(&str, &str)]) -> TempDir {
        let data = tempfile::tempdir().expect("tempdir");
        let keys = keys_example();
        let mut init = hub_command();
        init.arg("init")
            .arg("--data")
            .arg(data.path())
            .args(["--origin", "test-hub", "--authority"])
            .arg(keys.join("authority.pub"))
            .arg("--directory")
            .arg(keys.join("directory.signed"))
            .envs(env.iter().copied());
        let out = run_command(init);
        assert!(out.status.success(), "`sealdrop-hub init` failed: {}", String::from_utf8_lossy(&out.stderr));
        data
    }

    /// Like [`Hub::start_with_options`], with the data directory made inside
    /// `parent` (e.g. a small [`Tmpfs`], to fill the hub's disk).
    pub fn start_in(parent: &Path, options: &[&str]) -> Self {
        let data = tempfile::tempdir_in(parent)
            .unwrap_or_else(|e| panic!("make the hub's data directory in {}: {e}", parent.display()));
        Self::start_with_data(data, None, options)
    }

    fn start_with(clock: Option<&Path>, options: &[&str]) -> Self {
        Self::start_with_data(tempfile::tempdir().expect("tempdir"), clock, options)
    }

    /// [`Hub::start_on`] the embedded stores.
    fn start_on_embedded(clock: Option<&TestClock>, options: &[&str]) -> Self {
        Self::start_with(clock.map(TestClock::path), options)
    }

    /// Like [`Hub::start_with_options`], with `init` and `serve` (and every
    /// restart) run under `umask` (e.g. `0o022`, a common default), as from
    /// an operator's shell.
    pub fn start_with_umask(umask: u32, options: &[&str]) -> Self {
        Self::start_full(tempfile::tempdir().expect("tempdir"), None, options, Some(umask), Vec::new())
    }

    fn start_with_data(data: TempDir, clock: Option<&Path>, options: &[&str]) -> Self {
        Self::start_full(data, clock, options, None, Vec::new())
    }

    /// Like [`Hub::start_with_clock`] (the clock optional), keeping larger
    /// ciphertexts in `s3`'s bucket under [`OBJECT_STORE_PREFIX`]
    /// (`SEALDROP_HUB_BLOBS` and the `AWS_*` variables, at every restart too).
    pub fn start_on_object_store(
        s3: &sealdrop_testservers::S3Server,
        clock: Option<&TestClock>,
        options: &[&str],
    ) -> Self {
        let location = format!("s3://{}/{OBJECT_STORE_PREFIX}", sealdrop_testservers::S3Server::BUCKET);
        let mut env = vec![("SEALDROP_HUB_BLOBS".to_owned(), location)];
        env.extend(s3.env().into_iter().map(|(k, v)| (k.to_owned(), v)));
        let data = tempfile::tempdir().expect("tempdir");
        Self::start_full(data, clock.map(TestClock::path), options, None, env)
    }

    fn start_full(
        data: TempDir,
        clock: Option<&Path>,
        options: &[&str],
        umask: Option<u32>,
        env: Vec<(String, String)>,
    ) -> Self {
        let bins = bins();
        let logs = tempfile::tempdir().expect("tempdir");
        let keys = keys_example();
        let mut init = hub_command();
        match clock {
            Some(path) => init.env("SEALDROP_TEST_CLOCK", path),
            None => init.env_remove("SEALDROP_TEST_CLOCK"),
        };
        init.arg("init")
            .arg("--data")
            .arg(data.path())
            .args(["--origin", "test-hub", "--authority"])
            .arg(keys.join("authority.pub"))
            .arg("--directory")
            .arg(keys.join("directory.signed"))
            // Where the stores are (`init` checks them and records where the ciphertexts go).
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let init = match umask {
            Some(umask) => under_umask(&init, umask),
            None => init,
        };
        let out = run_command(init);
        assert!(
            out.status.success(),
            "`sealdrop-hub init` failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );

        let clock = clock.map(Path::to_path_buf);
        let serve_env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let serve = Serve { options, env: &serve_env, listen: "127.0.0.1:0", clock: clock.as_deref(), umask };
        let (child, addr, metrics_addr) = spawn_serve(&bins.hub, data.path(), &logs.path().join("hub.stderr"), &serve);
        let url = hub_url(&addr, options);
        Self { data, addr, url, metrics_addr, logs, child, clock, umask, env, shared: None }
    }

    /// Serves a data directory already made by `sealdrop-hub init` (with
    /// another authority and directory than the example ones, say),
    /// reading the time from `clock` if given.
    pub fn serve_initialised(data: TempDir, clock: Option<&TestClock>) -> Self {
        let bins = bins();
        let logs = tempfile::tempdir().expect("tempdir");
        let clock = clock.map(|c| c.path().to_path_buf());
        let serve = Serve { options: &[], env: &[], listen: "127.0.0.1:0", clock: clock.as_deref(), umask: None };
        let (child, addr, metrics_addr) = spawn_serve(&bins.hub, data.path(), &logs.path().join("hub.stderr"), &serve);
        let url = hub_url(&addr, &[]);
        Self { data, addr, url, metrics_addr, logs, child, clock, umask: None, env: Vec::new(), shared: None }
    }

    /// Sends SIGTERM and waits (at most a minute) for the process to exit;
    /// returns its exit status and how long it took.
    pub fn terminate(&mut self) -> (std::process::ExitStatus, std::time::Duration) {
        self.signal_term();
        self.terminate_wait()
    }

    /// Sends SIGTERM to the hub process and returns at once.
    pub fn signal_term(&self) {
        let sent = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().expect("run kill");
        assert!(sent.success(), "kill -TERM {} failed", self.child.id());
    }

    /// Waits (at most a minute) for the hub process to exit; returns its
    /// exit status and how long the wait took.
    pub fn terminate_wait(&mut self) -> (std::process::ExitStatus, std::time::Duration) {
        let started = std::time::Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for the hub") {
                return (status, started.elapsed());
            }
            assert!(
                started.elapsed() < std::time::Duration::from_secs(60),
                "the hub did not exit within a minute of SIGTERM:\n{}",
                self.log()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// `GET http://METRICS/metrics`: the metrics text.
    pub fn scrape(&self) -> String {
        let addr = self.metrics_addr.as_ref().expect("the hub was started with --metrics-listen");
        let reply = http::Reply::from(http::client().get(format!("http://{addr}/metrics")).send());
        assert_eq!(reply.status, 200, "{reply:?}");
        reply.body
    }

    /// Stops the hub process (SIGKILL), keeping its data directory.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts `serve` again on the same data directory (a new port: call
    /// `Party::point_at` afterwards).
    pub fn restart(&mut self) {
        self.restart_with(&[]);
    }

    /// Like [`Hub::restart`], with extra `serve` options (e.g. a small
    /// `--max-upload-bytes` to make some uploads fail).
    pub fn restart_with(&mut self, options: &[&str]) {
        self.respawn(options, &[], "127.0.0.1:0");
    }

    /// Like [`Hub::restart`], with `SEALDROP_HUB_FAILPOINT` set to `point`
    /// (`<name>[@<n>]`): the hub aborts when it gets there (see
    /// `hub/src/failpoint.rs`); [`Hub::wait_exit`] waits for that.
    pub fn restart_with_failpoint(&mut self, point: &str) {
        self.restart_with_failpoint_and(point, &[]);
    }

    /// Like [`Hub::restart_with_failpoint`], with extra `serve` options.
    pub fn restart_with_failpoint_and(&mut self, point: &str, options: &[&str]) {
        self.respawn(options, &[("SEALDROP_HUB_FAILPOINT", point)], "127.0.0.1:0");
    }

    /// Like [`Hub::restart`], listening on the same port again, so clients
    /// already pointed at it (and running) reach the new process.
    pub fn restart_on_same_port(&mut self) {
        let addr = self.addr.clone();
        self.respawn(&[], &[], &addr);
    }

    /// Like [`Hub::restart_on_same_port`], with `SEALDROP_HUB_FAILPOINT`
    /// set to `point`, so running clients reach the hub that will abort.
    pub fn restart_on_same_port_with_failpoint(&mut self, point: &str) {
        let addr = self.addr.clone();
        self.respawn(&[], &[("SEALDROP_HUB_FAILPOINT", point)], &addr);
    }

    fn respawn(&mut self, options: &[&str], env: &[(&str, &str)], listen: &str) {
        self.stop();
        let mut all: Vec<(&str, &str)> = self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        all.extend_from_slice(env);
        let serve = Serve { options, env: &all, listen, clock: self.clock.as_deref(), umask: self.umask };
        let (child, addr, metrics_addr) =
            spawn_serve(&bins().hub, self.data.path(), &self.logs.path().join("hub.stderr"), &serve);
        self.child = child;
        self.url = hub_url(&addr, options);
        self.addr = addr;
        self.metrics_addr = metrics_addr;
    }

    /// The hub process's id (to signal it, or read its memory use from `/proc`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the hub process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("ask whether the hub exited").is_none()
    }

    /// Waits (at most `within`) for the hub process to exit by itself, e.g.
    /// at a fail point; returns its exit status.
    pub fn wait_exit(&mut self, within: std::time::Duration) -> std::process::ExitStatus {
        let started = std::time::Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for the hub") {
                return status;
            }
            assert!(started.elapsed() < within, "the hub is still running after {within:?}:\n{}", self.log());
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// A copy of the data directory (stop the hub first for a clean copy).
    pub fn copy_data(&self) -> TempDir {
        let copy = tempfile::tempdir().expect("tempdir");
        copy_tree(self.data.path(), copy.path());
        copy
    }

    /// Replaces the data directory with `snapshot`, as an operator restoring
    /// an old backup (or rewriting history) would; the hub must be stopped.
    pub fn replace_data(&mut self, snapshot: &Path) {
        std::fs::remove_dir_all(self.data.path()).expect("remove data dir");
        std::fs::create_dir(self.data.path()).expect("recreate data dir");
        copy_tree(snapshot, self.data.path());
    }

    /// Where the hub keeps a committed drop's ciphertext when it is large;
    /// a small one (64 KiB or less) is a row of its database instead.
    fn blob_file(&self, id: &str) -> PathBuf {
        self.data.path().join("blobs").join(format!("{id}.age"))
    }

    /// The committed ciphertext of drop `id` as the hub stores it, from its
    /// file or its database row (on the shared stores, its objects in the
    /// bucket), or `None` if the hub holds none.
    pub fn ciphertext(&self, id: &str) -> Option<Vec<u8>> {
        if let Some(stores) = &self.shared {
            return stores.ciphertext(id);
        }
        if let Ok(bytes) = std::fs::read(self.blob_file(id)) {
            return Some(bytes);
        }
        let db = rusqlite::Connection::open(self.data.path().join("hub.db")).expect("open the hub's database");
        db.busy_timeout(std::time::Duration::from_secs(5)).expect("busy timeout");
        db.query_row("SELECT data FROM inline_blobs WHERE drop_id = ?1 AND stage = 'blob'", [id], |r| r.get(0))
            .optional()
            .expect("read the hub's inline ciphertexts")
    }

    /// Whether the hub still holds drop `id`'s committed ciphertext.
    pub fn has_ciphertext(&self, id: &str) -> bool {
        self.ciphertext(id).is_some()
    }

    /// Replaces drop `id`'s stored ciphertext behind the hub's back, where
    /// it is kept, as a malicious or compromised operator could (an
    /// embedded hub's).
    pub fn set_ciphertext(&self, id: &str, bytes: &[u8]) {
        self.embedded_only("set_ciphertext");
        let file = self.blob_file(id);
        if file.exists() {
            std::fs::write(&file, bytes).unwrap_or_else(|e| panic!("write {}: {e}", file.display()));
            return;
        }
        let changed =
            self.tamper_sql("UPDATE inline_blobs SET data = ?1 WHERE drop_id = ?2 AND stage = 'blob'", &[&bytes, &id]);
        assert_eq!(changed, 1, "the hub holds no ciphertext of drop {id}");
    }

    /// Runs SQL on the hub's database behind its back, as a malicious or
    /// compromised hub operator could; returns the number of rows changed
    /// (an embedded hub's `hub.db`).
    pub fn tamper_sql(&self, sql: &str, params: &[&dyn rusqlite::ToSql]) -> usize {
        self.embedded_only("tamper_sql");
        let db = rusqlite::Connection::open(self.data.path().join("hub.db")).expect("open the hub's database");
        db.busy_timeout(std::time::Duration::from_secs(5)).expect("busy timeout");
        db.execute(sql, params).unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// A value from the hub's database (an embedded hub's `hub.db`).
    pub fn query_text(&self, sql: &str, params: &[&dyn rusqlite::ToSql]) -> String {
        self.embedded_only("query_text");
        let db = rusqlite::Connection::open(self.data.path().join("hub.db")).expect("open the hub's database");
        db.query_row(sql, params, |r| r.get(0)).unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Everything the hub keeps: every row of every table of its database
    /// (as text, sorted) and every file of its data directory but the
    /// database's own (on the shared stores, and every object of the bucket
    /// under `bucket/`), so a test can show a refused request changed nothing.
    pub fn snapshot(&self) -> HubSnapshot {
        if let Some(stores) = &self.shared {
            let mut files = tree(self.data.path());
            files.retain(|name, _| !name.ends_with(".readyz-probe"));
            files.extend(stores.all_objects().into_iter().map(|(name, bytes)| (format!("bucket/{name}"), bytes)));
            return HubSnapshot { rows: stores.all_rows(), files };
        }
        let db = rusqlite::Connection::open(self.data.path().join("hub.db")).expect("open the hub's database");
        db.busy_timeout(std::time::Duration::from_secs(5)).expect("busy timeout");
        let tables: Vec<String> = db
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
            .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect())
            .expect("list the hub's tables");
        let mut rows = BTreeMap::new();
        for table in tables {
            let mut st = db.prepare(&format!("SELECT * FROM \"{table}\"")).expect("select");
            let columns = st.column_count();
            let mut all: Vec<String> = st
                .query_map([], |r| {
                    (0..columns).map(|i| r.get::<_, rusqlite::types::Value>(i).map(|v| format!("{v:?}"))).collect()
                })
                .and_then(|rows| rows.map(|row| row.map(|cells: Vec<String>| cells.join(" | "))).collect())
                .unwrap_or_else(|e| panic!("read table {table}: {e}"));
            all.sort();
            rows.insert(table, all);
        }
        let mut files = tree(self.data.path());
        files.retain(|name, _| !name.starts_with("hub.db") && !name.ends_with(".readyz-probe"));
        HubSnapshot { rows, files }
    }

    /// Panics unless the hub runs on the embedded stores: `helper` reads or
    /// writes `hub.db` or the data directory's files.
    fn embedded_only(&self, helper: &str) {
        assert!(self.shared.is_none(), "Hub::{helper} works on an embedded hub's hub.db only");
    }

    /// `sealdrop-hub verifier-key` of this hub: its log's verifier key.
    pub fn verifier_key(&self) -> String {
        let mut command = hub_command();
        command.envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let out = command.args(["verifier-key", "--data"]).arg(self.data.path()).output().expect("run verifier-key");
        assert!(out.status.success(), "verifier-key: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).expect("a key is text").trim().to_owned()
    }

    /// What the hub wrote on stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.logs.path().join("hub.stderr")).unwrap_or_default()
    }

    /// A GET of the transfer log or the directory as a member would make
    /// it: signed by camden's example key at the hub's time (its test
    /// clock's, if it has one). A hub serves these to members and witnesses
    /// only unless it runs with `--log-access public`.
    pub fn read(&self, path: &str) -> http::Reply {
        self.read_as(&member_key("camden").signing, path)
    }

    /// [`Hub::read`] signed by `key` (a witness's, an outsider's, ...).
    pub fn read_as(&self, key: &sealdrop_proto::keys::NoteSigningKey, path: &str) -> http::Reply {
        let now = match &self.clock {
            Some(file) => read_text(file).trim().parse().expect("the test clock holds Unix seconds"),
            None => http::now(),
        };
        http::signed_at(&self.url, key, "GET", path, now, b"")
    }

    /// `POST /v1/directory` with a signed directory note.
    pub fn post_directory(&self, note: &str) -> http::Reply {
        http::Reply::from(http::client().post(format!("{}/v1/directory", self.url)).body(note.to_owned()).send())
    }

    /// Publishes a signed directory, asserting the hub accepts it.
    pub fn publish(&self, note: &str) {
        let reply = self.post_directory(note);
        assert_eq!(reply.status, 200, "the hub refused a directory: {reply:?}");
    }
}

/// What a hub keeps, at one moment (see [`Hub::snapshot`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubSnapshot {
    /// Each table's rows, as text, sorted.
    pub rows: BTreeMap<String, Vec<String>>,
    /// Each file of the data directory (but the database's) with its content.
    pub files: BTreeMap<String, Vec<u8>>,
}

impl HubSnapshot {
    /// The number of entries in the transfer log.
    pub fn log_size(&self) -> usize {
        self.rows.get("log_entries").map_or(0, Vec::len)
    }

    /// What changed from `before`, table by table (rows added and removed)
    /// and file by file, leaving out the tables named in `ignore`; empty
    /// when nothing did.
    pub fn changes_since(&self, before: &HubSnapshot, ignore: &[&str]) -> Vec<String> {
        let mut changes = Vec::new();
        let tables: std::collections::BTreeSet<&String> = self.rows.keys().chain(before.rows.keys()).collect();
        for table in tables.into_iter().filter(|t| !ignore.contains(&t.as_str())) {
            let (now, then) = (self.rows.get(table.as_str()), before.rows.get(table.as_str()));
            let (now, then) = (now.map_or(&[][..], Vec::as_slice), then.map_or(&[][..], Vec::as_slice));
            for row in now.iter().filter(|r| !then.contains(r)) {
                changes.push(format!("{table}: added {row}"));
            }
            for row in then.iter().filter(|r| !now.contains(r)) {
                changes.push(format!("{table}: removed {row}"));
            }
        }
        let names: std::collections::BTreeSet<&String> = self.files.keys().chain(before.files.keys()).collect();
        for name in names {
            if self.files.get(name) != before.files.get(name) {
                changes.push(format!("file {name} changed"));
            }
        }
        changes
    }
}

/// Copies a folder tree, keeping file modes.
pub fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("dir entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            std::fs::create_dir_all(&target).expect("mkdir");
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// The variables `sealdrop-hub` reads that must never leak in from the
/// developer's shell.
const HUB_ENV: &[&str] = &[
    "SEALDROP_HUB_CONFIG",
    "SEALDROP_HUB_DATA",
    "SEALDROP_HUB_LISTEN",
    "SEALDROP_HUB_TLS_CERT",
    "SEALDROP_HUB_TLS_KEY",
    "SEALDROP_HUB_MAX_UPLOAD_BYTES",
    "SEALDROP_HUB_SWEEP_INTERVAL",
    "SEALDROP_HUB_METRICS_LISTEN",
    "SEALDROP_HUB_LOG_FORMAT",
    "SEALDROP_HUB_LOG_FILTER",
    "SEALDROP_HUB_SHUTDOWN_GRACE",
    "SEALDROP_HUB_RATE_LIMIT_PER_ADDRESS",
    "SEALDROP_HUB_RATE_LIMIT_PER_ADDRESS_BURST",
    "SEALDROP_HUB_RATE_LIMIT_PER_PARTY",
    "SEALDROP_HUB_RATE_LIMIT_PER_PARTY_BURST",
    "SEALDROP_HUB_RATE_LIMIT_LOOPBACK",
    "SEALDROP_HUB_HEADER_READ_TIMEOUT",
    "SEALDROP_HUB_BODY_IDLE_TIMEOUT",
    "SEALDROP_HUB_UPLOAD_RESUME_WINDOW",
    "SEALDROP_HUB_BLOBS",
    "SEALDROP_HUB_DATABASE",
    "SEALDROP_TEST_CLOCK",
    "SEALDROP_HUB_FAILPOINT",
    "RUST_LOG",
];

/// `sealdrop-hub` with none of its variables inherited.
pub fn hub_command() -> Command {
    let mut command = Command::new(&bins().hub);
    for var in HUB_ENV {
        command.env_remove(var);
    }
    command
}

/// The URL of a hub bound to `addr`: `https://` when `options` turn TLS on.
fn hub_url(addr: &str, options: &[&str]) -> String {
    let scheme = if options.contains(&"--tls-cert") { "https" } else { "http" };
    format!("{scheme}://{addr}")
}

/// How [`spawn_serve`] runs `serve`.
struct Serve<'a> {
    /// Extra options.
    options: &'a [&'a str],
    /// Extra environment variables.
    env: &'a [(&'a str, &'a str)],
    /// `--listen`: `127.0.0.1:0` for a free port.
    listen: &'a str,
    /// The test clock file, if any.
    clock: Option<&'a Path>,
    /// The umask to run it with, if set.
    umask: Option<u32>,
}

/// `command` run by `sh` after `umask UMASK`, with the same arguments and
/// environment (the process is the command itself: `sh` execs it).
pub fn under_umask(command: &Command, umask: u32) -> Command {
    let mut wrapped = Command::new("sh");
    wrapped.arg("-c").arg(format!("umask {umask:03o} && exec \"$0\" \"$@\"")).arg(command.get_program());
    wrapped.args(command.get_args());
    for (name, value) in command.get_envs() {
        match value {
            Some(value) => wrapped.env(name, value),
            None => wrapped.env_remove(name),
        };
    }
    wrapped
}

/// Spawns `sealdrop-hub serve` on `serve.listen` and reads its address (and
/// the metrics listener's, when the options ask for one).
fn spawn_serve(hub_bin: &Path, data: &Path, stderr_path: &Path, serve: &Serve<'_>) -> (Child, String, Option<String>) {
    let Serve { options, env, listen, clock, umask } = *serve;
    let stderr_path = stderr_path.to_path_buf();
    let stderr = std::fs::OpenOptions::new().create(true).append(true).open(&stderr_path).expect("create hub log");
    let mut command = Command::new(hub_bin);
    for var in HUB_ENV {
        command.env_remove(var);
    }
    match clock {
        Some(path) => command.env("SEALDROP_TEST_CLOCK", path),
        None => command.env_remove("SEALDROP_TEST_CLOCK"),
    };
    command.envs(env.iter().copied());
    command.arg("serve").arg("--data").arg(data).args(["--listen", listen]).args(options);
    if let Some(umask) = umask {
        command = under_umask(&command, umask);
    }
    let mut child =
        command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(stderr).spawn().expect("spawn sealdrop-hub serve");
    let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
    let mut line = String::new();
    let read = stdout.read_line(&mut line);
    let addr = line.trim().to_owned();
    if !matches!(read, Ok(n) if n > 0) || addr.parse::<std::net::SocketAddr>().is_err() {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "`sealdrop-hub serve` must print its bound address `127.0.0.1:PORT` as its first stdout line; \
                 got {line:?} ({read:?}). stderr:\n{}",
            std::fs::read_to_string(&stderr_path).unwrap_or_default()
        );
    }
    let metrics_addr = options.contains(&"--metrics-listen").then(|| {
        let mut line = String::new();
        let _ = stdout.read_line(&mut line);
        let metrics = line.trim().to_owned();
        assert!(
            metrics.parse::<std::net::SocketAddr>().is_ok(),
            "with --metrics-listen, the second stdout line must be the metrics address; got {line:?}"
        );
        metrics
    });
    // Keep draining stdout so the hub never blocks on a full pipe.
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = stdout.read_to_end(&mut sink);
    });
    (child, addr, metrics_addr)
}

// ---------------------------------------------------------------------------
// A small disk

/// A tmpfs of a fixed size mounted on a fresh temporary folder, unmounted
/// when dropped: a disk small enough for a test to fill. Mounting needs root
/// (the test machines and CI run the tests as root).
#[derive(Debug)]
pub struct Tmpfs {
    /// The mount point.
    dir: TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `bytes` bytes (mode 0700). `Err` says why when
    /// mounting is not permitted here (not root, or a container without the
    /// capability), for the test to print as its reason to skip; any other
    /// failure to mount panics.
    pub fn mount(bytes: u64) -> Result<Self, String> {
        let dir = tempfile::tempdir().expect("tempdir");
        let options = format!("size={bytes},mode=0700");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &options, "sealdrop-test"])
            .arg(dir.path())
            .stdin(Stdio::null())
            .output();
        match out {
            Ok(out) if out.status.success() => Ok(Self { dir }),
            Ok(out) => {
                let why = String::from_utf8_lossy(&out.stderr).trim().to_owned();
                let lower = why.to_lowercase();
                let not_permitted = ["permission denied", "only root", "must be superuser", "not permitted"];
                assert!(
                    not_permitted.iter().any(|p| lower.contains(p)),
                    "cannot mount a {bytes}-byte tmpfs on {} ({}: {why})",
                    dir.path().display(),
                    out.status
                );
                Err(format!(
                    "mounting a tmpfs is not permitted here ({why}); run the tests as root to fill a small disk"
                ))
            }
            Err(e) => panic!(
                "cannot run `mount` ({e}); this test fills a small disk under the hub and needs `mount` and root"
            ),
        }
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Bytes still free for files (as `df` counts them).
    pub fn free_bytes(&self) -> u64 {
        let out = Command::new("df").args(["--output=avail", "-B1"]).arg(self.path()).output().expect("run df");
        assert!(out.status.success(), "df failed: {}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8_lossy(&out.stdout);
        let avail = text.lines().nth(1).map(str::trim).unwrap_or_default();
        avail.parse().unwrap_or_else(|e| panic!("df printed {text:?}: {e}"))
    }

    /// Writes `name` until the disk is full (the write fails with "no space
    /// left on device"); returns how many bytes it took.
    pub fn fill(&self, name: &str) -> u64 {
        use std::io::Write as _;
        let path = self.path().join(name);
        let mut file = std::fs::File::create(&path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
        let mut written = 0u64;
        // Large writes first, then ever smaller ones down to a byte, so no
        // page is left half free.
        let mut chunk = 1usize << 20;
        let zeros = vec![0u8; chunk];
        while chunk > 0 {
            match file.write(&zeros[..chunk]) {
                Ok(0) => chunk /= 2,
                Ok(n) => written += n as u64,
                Err(e) if e.kind() == std::io::ErrorKind::StorageFull => chunk /= 2,
                Err(e) => panic!("fill {}: {e}", path.display()),
            }
        }
        let _ = file.sync_all();
        written
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // The hub (whose data dir is inside) is dropped first when it was
        // made after this; a lazy unmount covers anything still open.
        let unmounted = Command::new("umount").arg(self.path()).status().is_ok_and(|s| s.success());
        if !unmounted {
            let _ = Command::new("umount").arg("-l").arg(self.path()).status();
        }
    }
}

// ---------------------------------------------------------------------------
// The hub's records, read behind its back

/// A drop as the hub's database holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDrop {
    /// The drop id.
    pub id: String,
    /// The sending party.
    pub sender: String,
    /// `open`, `committed`, `delivered`, `expired` or `recalled`.
    pub state: String,
    /// The committed ciphertext's SHA-256 (hex), once committed.
    pub sha256: Option<String>,
    /// The committed ciphertext's length, once committed.
    pub size: Option<u64>,
    /// The recipient parties.
    pub recipients: Vec<String>,
    /// The recipient parties that acknowledged it.
    pub acknowledged_by: Vec<String>,
}

impl Hub {
    /// Every drop in the hub's database, by id.
    pub fn stored_drops(&self) -> BTreeMap<String, StoredDrop> {
        if let Some(stores) = &self.shared {
            return stored_drops_in(stores);
        }
        let db = rusqlite::Connection::open(self.data.path().join("hub.db")).expect("open the hub's database");
        db.busy_timeout(std::time::Duration::from_secs(5)).expect("busy timeout");
        let mut drops: BTreeMap<String, StoredDrop> = BTreeMap::new();
        let mut stmt = db.prepare("SELECT id, sender, state, sha256, size FROM drops").expect("query drops");
        let rows = stmt
            .query_map([], |r| {
                Ok(StoredDrop {
                    id: r.get(0)?,
                    sender: r.get(1)?,
                    state: r.get(2)?,
                    sha256: r.get(3)?,
                    size: r.get::<_, Option<i64>>(4)?.map(|n| u64::try_from(n).expect("a size is not negative")),
                    recipients: Vec::new(),
                    acknowledged_by: Vec::new(),
                })
            })
            .expect("read drops");
        for row in rows {
            let drop = row.expect("a drop row");
            drops.insert(drop.id.clone(), drop);
        }
        let mut stmt = db
            .prepare("SELECT drop_id, party, acknowledged IS NOT NULL FROM drop_recipients ORDER BY party")
            .expect("query the recipients");
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, bool>(2)?)))
            .expect("read the recipients");
        for row in rows {
            let (id, party, acknowledged) = row.expect("a recipient row");
            let drop = drops.get_mut(&id).unwrap_or_else(|| panic!("recipient row of unknown drop {id}"));
            if acknowledged {
                drop.acknowledged_by.push(party.clone());
            }
            drop.recipients.push(party);
        }
        drops
    }

    /// Every entry of the hub's transfer log, in order, parsed.
    pub fn log_entries(&self) -> Vec<sealdrop_log::entry::LogEntry> {
        if let Some(stores) = &self.shared {
            return stores
                .query("SELECT idx, encode(data, 'hex') FROM log_entries ORDER BY idx")
                .into_iter()
                .map(|row| {
                    let (idx, data) = (row[0].clone().unwrap_or_default(), row[1].clone().unwrap_or_default());
                    let data = hex::decode(data).expect("encode(.., 'hex') is hex");
                    sealdrop_log::entry::LogEntry::from_bytes(&data).unwrap_or_else(|e| panic!("log entry {idx}: {e}"))
                })
                .collect();
        }
        let db = rusqlite::Connection::open(self.data.path().join("hub.db")).expect("open the hub's database");
        db.busy_timeout(std::time::Duration::from_secs(5)).expect("busy timeout");
        let mut stmt = db.prepare("SELECT idx, data FROM log_entries ORDER BY idx").expect("query the log");
        let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?))).expect("read the log");
        rows.map(|row| {
            let (idx, data) = row.expect("a log row");
            sealdrop_log::entry::LogEntry::from_bytes(&data).unwrap_or_else(|e| panic!("log entry {idx}: {e}"))
        })
        .collect()
    }

    /// The indexes of the `drop_committed` entries of each drop in the transfer log.
    pub fn commits_in_log(&self) -> BTreeMap<String, Vec<usize>> {
        commits_in(&self.log_entries())
    }

    /// Asserts what no crash may break, from the hub's records and from
    /// each of `parties`' point of view, and returns the stored drops:
    ///
    /// - every drop is either committed (or ended after that) and then in the
    ///   transfer log exactly once, or open and then not in the log at all,
    ///   with no committed ciphertext (on the embedded stores: see the check);
    /// - every committed drop's stored ciphertext has the hash and length
    ///   the database (and the signed manifest) states;
    /// - each party's next command passes its log consistency check, its
    ///   inbox is exactly the committed drops addressed to it that it has not
    ///   acknowledged (nothing open or half-done shows), and its `status`
    ///   shows each drop it sent in the hub's state;
    /// - each party's journal agrees with the hub on every drop it records
    ///   as sent (committed, same hash, the log index of its commit) or
    ///   received (acknowledged by it, the log index of its receipt);
    /// - `sealdrop audit verify` passes and counts every commit.
    pub fn assert_consistent(&self, parties: &[&Party]) -> BTreeMap<String, StoredDrop> {
        use sealdrop_log::entry::LogEntry;
        let drops = self.stored_drops();
        let entries = self.log_entries();
        let commits = commits_in(&entries);
        for d in drops.values() {
            let logged = commits.get(&d.id).map_or(0, Vec::len);
            if d.state == "open" {
                assert_eq!(logged, 0, "drop {} is open but its commit is in the transfer log", d.id);
                // On the shared stores a blob of an open drop may be another
                // instance's commit in progress, so the hub keeps one a crash
                // left (never serving it) until the drop is sent again or expires.
                assert!(
                    self.shared.is_some() || !self.has_ciphertext(&d.id),
                    "drop {} is open but has a committed ciphertext",
                    d.id
                );
                continue;
            }
            assert_eq!(logged, 1, "drop {} is {} but its commit is in the log {logged} times", d.id, d.state);
            if d.state == "committed" {
                let stored =
                    self.ciphertext(&d.id).unwrap_or_else(|| panic!("committed drop {} has no ciphertext", d.id));
                assert_eq!(Some(sha256_hex(&stored)), d.sha256, "drop {}'s stored ciphertext has another hash", d.id);
                assert_eq!(Some(stored.len() as u64), d.size, "drop {}'s stored ciphertext has another length", d.id);
            }
        }
        for id in commits.keys() {
            assert!(
                drops.get(id).is_some_and(|d| d.state != "open"),
                "the log commits drop {id}, which the hub does not hold as committed"
            );
        }
        for party in parties {
            let inbox: std::collections::BTreeSet<String> = party.inbox_ids().into_iter().collect();
            let waiting: std::collections::BTreeSet<String> = drops
                .values()
                .filter(|d| d.state == "committed" && d.recipients.contains(&party.id))
                .filter(|d| !d.acknowledged_by.contains(&party.id))
                .map(|d| d.id.clone())
                .collect();
            assert_eq!(inbox, waiting, "{}'s inbox is not the committed drops waiting for it", party.id);
            let status = party.status();
            for shown in &status {
                let id = shown["id"].as_str().unwrap_or_default();
                let stored = drops.get(id).unwrap_or_else(|| panic!("{}'s status shows unknown drop {id}", party.id));
                assert_eq!(shown["state"], stored.state.as_str(), "{}'s status of drop {id}", party.id);
            }
            let sent_by_party = drops.values().filter(|d| d.sender == party.id).count();
            assert_eq!(status.len(), sent_by_party, "{}'s status does not list every drop it sent", party.id);
            for line in party.journal() {
                let id = line["drop"].as_str().unwrap_or_default();
                let index = line["log_index"].as_u64().map(|i| usize::try_from(i).expect("index fits"));
                match line["event"].as_str() {
                    Some("sent") => {
                        let stored = drops.get(id).filter(|d| d.state != "open");
                        let stored =
                            stored.unwrap_or_else(|| panic!("{}'s journal sent {id}, not committed", party.id));
                        assert_eq!(line["ciphertext_sha256"].as_str(), stored.sha256.as_deref(), "journal of {id}");
                        assert_eq!(
                            index.and_then(|i| commits.get(id)?.contains(&i).then_some(())),
                            Some(()),
                            "{}'s journal names log index {index:?} for the commit of {id}",
                            party.id
                        );
                    }
                    Some("received") => {
                        let acked = drops.get(id).is_some_and(|d| d.acknowledged_by.contains(&party.id));
                        assert!(
                            acked,
                            "{}'s journal received {id}, which the hub does not hold as acknowledged",
                            party.id
                        );
                        let entry = index.and_then(|i| entries.get(i));
                        let receipt_of = match entry {
                            Some(LogEntry::DropAcknowledged { receipt, .. }) => {
                                sealdrop_proto::note::peek_doc::<sealdrop_proto::drop::Receipt>(receipt)
                                    .ok()
                                    .map(|r| r.drop.to_string())
                            }
                            _ => None,
                        };
                        assert_eq!(
                            receipt_of.as_deref(),
                            Some(id),
                            "{}'s journal: log index {index:?} for {id}",
                            party.id
                        );
                    }
                    _ => {}
                }
            }
        }
        if let Some(auditor) = parties.first() {
            let verdict = json(&auditor.ok(["audit", "verify", "--json"]));
            assert_eq!(verdict["verified"], true, "the audit failed: {verdict}");
            assert_eq!(verdict["entries"].as_u64(), Some(entries.len() as u64), "the audit saw another log: {verdict}");
            let committed: usize = commits.values().map(Vec::len).sum();
            assert_eq!(verdict["drops_committed"].as_u64(), Some(committed as u64), "{verdict}");
        }
        drops
    }
}

/// Every drop in a shared-stores hub's database, by id (see [`Hub::stored_drops`]).
fn stored_drops_in(stores: &SharedStores) -> BTreeMap<String, StoredDrop> {
    let mut drops: BTreeMap<String, StoredDrop> = BTreeMap::new();
    for row in stores.query("SELECT id, sender, state, sha256, size FROM drops") {
        let text = |i: usize| row[i].clone().unwrap_or_default();
        let drop = StoredDrop {
            id: text(0),
            sender: text(1),
            state: text(2),
            sha256: row[3].clone(),
            size: row[4].as_deref().map(|n| n.parse().expect("a size is a number")),
            recipients: Vec::new(),
            acknowledged_by: Vec::new(),
        };
        drops.insert(drop.id.clone(), drop);
    }
    let sql = "SELECT drop_id, party, acknowledged IS NOT NULL FROM drop_recipients ORDER BY party";
    for row in stores.query(sql) {
        let (id, party) = (row[0].clone().unwrap_or_default(), row[1].clone().unwrap_or_default());
        let drop = drops.get_mut(&id).unwrap_or_else(|| panic!("recipient row of unknown drop {id}"));
        if row[2].as_deref() == Some("t") {
            drop.acknowledged_by.push(party.clone());
        }
        drop.recipients.push(party);
    }
    drops
}

/// The indexes of the `drop_committed` entries of each drop in `entries`.
pub fn commits_in(entries: &[sealdrop_log::entry::LogEntry]) -> BTreeMap<String, Vec<usize>> {
    let mut commits: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (index, entry) in entries.iter().enumerate() {
        if let sealdrop_log::entry::LogEntry::DropCommitted { manifest, .. } = entry {
            let m: sealdrop_proto::drop::Manifest =
                sealdrop_proto::note::peek_doc(manifest).expect("a logged manifest parses");
            commits.entry(m.drop.to_string()).or_default().push(index);
        }
    }
    commits
}

// ---------------------------------------------------------------------------
// TLS

/// A private CA and a server certificate it signed for `127.0.0.1` and
/// `localhost`, as PEM files in a temporary folder: what an operator with a
/// council's own CA would give `sealdrop-hub serve --tls-cert/--tls-key`
/// and its clients `--hub-ca`.
#[derive(Debug)]
pub struct TestTls {
    dir: TempDir,
}

impl Default for TestTls {
    fn default() -> Self {
        Self::new()
    }
}

impl TestTls {
    /// Makes the CA and the server certificate.
    pub fn new() -> Self {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
        let dir = tempfile::tempdir().expect("tempdir");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name.push(DnType::CommonName, "sealdrop test council CA");
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = rcgen::CertifiedIssuer::self_signed(ca, KeyPair::generate().expect("CA key")).expect("CA cert");
        let server_key = KeyPair::generate().expect("server key");
        let mut server =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).expect("server params");
        server.distinguished_name.push(DnType::CommonName, "sealdrop test hub");
        let server = server.signed_by(&server_key, &ca).expect("server cert");
        write_file(&dir.path().join("ca.pem"), ca.pem());
        write_file(&dir.path().join("hub.crt"), server.pem());
        write_file(&dir.path().join("hub.key"), server_key.serialize_pem());
        chmod(&dir.path().join("hub.key"), 0o600);
        Self { dir }
    }

    /// The CA certificate (PEM), for clients.
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The server certificate (PEM).
    pub fn cert(&self) -> PathBuf {
        self.dir.path().join("hub.crt")
    }

    /// The server's private key (PEM, mode 0600).
    pub fn key(&self) -> PathBuf {
        self.dir.path().join("hub.key")
    }

    /// The `serve` options that turn TLS on with this certificate.
    pub fn serve_options(&self) -> [String; 4] {
        [
            "--tls-cert".to_owned(),
            self.cert().to_string_lossy().into_owned(),
            "--tls-key".to_owned(),
            self.key().to_string_lossy().into_owned(),
        ]
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- sealdrop-hub stderr ({}) ---\n{}", self.addr, self.log());
        }
    }
}

// ---------------------------------------------------------------------------
// Raw HTTP

/// Raw, signed HTTP requests to the hub.
pub mod backend;
pub mod shared_stores;
pub mod smtp;
pub mod test_plugin;
pub mod watch;
pub mod webhook;
pub use backend::Backend;
pub use shared_stores::SharedStores;

pub mod http {
    use sealdrop_proto::keys::NoteSigningKey;
    use sealdrop_proto::request::{RequestAuth, sign_request};

    /// A blocking HTTP client without proxies.
    pub fn client() -> reqwest::blocking::Client {
        reqwest::blocking::Client::builder().no_proxy().build().expect("HTTP client")
    }

    /// Unix seconds now.
    pub fn now() -> i64 {
        sealdrop_proto::Timestamp::now().as_second()
    }

    /// A hub's reply: status, body and error code if the body is an error.
    #[derive(Clone)]
    pub struct Reply {
        /// HTTP status.
        pub status: u16,
        /// The body as text (lossy).
        pub body: String,
        /// The body's bytes.
        pub bytes: Vec<u8>,
    }

    impl std::fmt::Debug for Reply {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            let shown: String = self.body.chars().take(600).collect();
            write!(f, "HTTP {} {shown:?}", self.status)
        }
    }

    impl Reply {
        /// Reads a response, panicking if the request did not reach the hub.
        pub fn from(r: reqwest::Result<reqwest::blocking::Response>) -> Self {
            let r = r.expect("HTTP request to the hub");
            let status = r.status().as_u16();
            let bytes = r.bytes().expect("read body").to_vec();
            let body = String::from_utf8_lossy(&bytes).into_owned();
            Self { status, body, bytes }
        }

        /// `error.code` from a `{"error": {"code", "message"}}` body.
        pub fn code(&self) -> Option<String> {
            let v: serde_json::Value = serde_json::from_str(&self.body).ok()?;
            v["error"]["code"].as_str().map(str::to_owned)
        }

        /// Asserts the status and error code (and that a message is present).
        pub fn assert_error(&self, status: u16, code: &str) {
            assert_eq!(self.status, status, "expected HTTP {status} `{code}`, got {self:?}");
            let v: serde_json::Value =
                serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("error body is not JSON ({e}): {self:?}"));
            assert_eq!(v["error"]["code"], code, "expected error code `{code}`, got {self:?}");
            assert!(
                v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()),
                "the error has no message: {self:?}"
            );
        }
    }

    /// A request with explicit auth headers.
    pub fn send_with_auth(
        base: &str,
        method: &str,
        path: &str,
        auth: Option<&RequestAuth>,
        body: Option<Vec<u8>>,
    ) -> Reply {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = client().request(method, format!("{base}{path}"));
        if let Some(auth) = auth {
            for (name, value) in auth.headers() {
                req = req.header(name, value);
            }
        }
        if let Some(body) = body {
            req = req.header("content-type", "application/json").body(body);
        }
        Reply::from(req.send())
    }

    /// A request signed by `key` at time `time` over `body`.
    pub fn signed_at(base: &str, key: &NoteSigningKey, method: &str, path: &str, time: i64, body: &[u8]) -> Reply {
        let auth = sign_request(key, method, path, time, Some(body));
        let body = if body.is_empty() && method == "GET" { None } else { Some(body.to_vec()) };
        send_with_auth(base, method, path, Some(&auth), body)
    }

    /// A `GET` signed now by `key`.
    pub fn signed_get(base: &str, key: &NoteSigningKey, path: &str) -> Reply {
        signed_at(base, key, "GET", path, now(), b"")
    }

    /// Signs a request with a nonce of the caller's choosing (to replay
    /// one the hub has seen); `body` is `None` for a streamed (`UNSIGNED`) body.
    pub fn sign_with_nonce(
        key: &NoteSigningKey,
        method: &str,
        path: &str,
        time: i64,
        body: Option<&[u8]>,
        nonce: &str,
    ) -> RequestAuth {
        use base64::Engine as _;
        use sealdrop_proto::request::{UNSIGNED_BODY, body_sha256, signed_string};
        let content = body.map_or_else(|| UNSIGNED_BODY.to_owned(), body_sha256);
        let message = signed_string(method, path, time, nonce, &content, key.name());
        let signature = base64::engine::general_purpose::STANDARD.encode(key.sign_bytes(message.as_bytes()).to_bytes());
        RequestAuth { key: key.name().to_owned(), time, nonce: nonce.to_owned(), content, signature }
    }

    /// A request with explicit auth headers and any content type (or none).
    pub fn send_raw(
        base: &str,
        method: &str,
        path: &str,
        auth: Option<&RequestAuth>,
        content_type: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> (Reply, Option<String>) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = client().request(method, format!("{base}{path}"));
        if let Some(auth) = auth {
            for (name, value) in auth.headers() {
                req = req.header(name, value);
            }
        }
        if let Some(content_type) = content_type {
            req = req.header("content-type", content_type);
        }
        if let Some(body) = body {
            req = req.body(body);
        }
        let response = req.send().expect("HTTP request to the hub");
        let retry_after =
            response.headers().get("retry-after").map(|v| v.to_str().expect("Retry-After is text").to_owned());
        (Reply::from(Ok(response)), retry_after)
    }
}

// ---------------------------------------------------------------------------
// Network faults

/// Which body of a request/answer exchange a [`CutProxy`] cuts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CutSide {
    /// The hub's answer (a download): after this many bytes of the
    /// response body (the bytes after the response head).
    Response,
    /// The client's request (an upload): after this many bytes of the
    /// request body as sent on the wire (with chunk framing, if chunked).
    Request,
    /// The client's request, not cut but stalled: after this many bytes of
    /// the request body nothing more is forwarded, and both connections stay
    /// open until [`CutProxy::release`] lets the rest through or the hub
    /// closes its side (it was killed, say). An upload is thus caught in
    /// the middle for as long as a test needs.
    StallRequest,
    /// The hub's answer, stalled after this many body bytes, until
    /// [`CutProxy::release`] lets the rest through or the client goes away
    /// (it was killed, say): a download caught in the middle.
    StallResponse,
}

/// Which connection a [`CutProxy`] cuts, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cut {
    /// The request line must start with this, e.g. `GET /v1/drops/`.
    pub line_starts_with: String,
    /// ... and contain this, e.g. `/content`.
    pub line_contains: String,
    /// Which body is cut.
    pub side: CutSide,
    /// How many bytes of that body get through before both connections close.
    pub after: u64,
}

impl Cut {
    /// Cuts the answer to the first request whose line starts with
    /// `starts_with` and contains `contains`, after `after` body bytes.
    pub fn response(starts_with: &str, contains: &str, after: u64) -> Self {
        Self { line_starts_with: starts_with.into(), line_contains: contains.into(), side: CutSide::Response, after }
    }

    /// Cuts the body of the first request whose line starts with
    /// `starts_with` and contains `contains`, after `after` bytes.
    pub fn request(starts_with: &str, contains: &str, after: u64) -> Self {
        Self { line_starts_with: starts_with.into(), line_contains: contains.into(), side: CutSide::Request, after }
    }

    /// Stalls the body of the first request whose line starts with
    /// `starts_with` and contains `contains` after `after` bytes (see
    /// [`CutSide::StallRequest`]).
    pub fn stall_request(starts_with: &str, contains: &str, after: u64) -> Self {
        Self {
            line_starts_with: starts_with.into(),
            line_contains: contains.into(),
            side: CutSide::StallRequest,
            after,
        }
    }

    /// Stalls the answer to the first request whose line starts with
    /// `starts_with` and contains `contains` after `after` body bytes (see
    /// [`CutSide::StallResponse`]).
    pub fn stall_response(starts_with: &str, contains: &str, after: u64) -> Self {
        Self {
            line_starts_with: starts_with.into(),
            line_contains: contains.into(),
            side: CutSide::StallResponse,
            after,
        }
    }

    fn matches(&self, line: &str) -> bool {
        line.starts_with(&self.line_starts_with) && line.contains(&self.line_contains)
    }
}

/// A request as a [`CutProxy`] saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeenRequest {
    /// The request line, e.g. `GET /v1/inbox HTTP/1.1`.
    pub line: String,
    /// The headers as sent by the client, names in lower case.
    pub headers: Vec<(String, String)>,
    /// Whether this is the connection the proxy cut.
    pub cut: bool,
}

impl SeenRequest {
    /// The value of the header `name` (any case), if sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Default)]
struct ProxyState {
    armed: Option<Cut>,
    seen: Vec<SeenRequest>,
    /// Acting as the operator's reverse proxy: the local address it
    /// connects to the hub from, and it appends the client's address to
    /// `X-Forwarded-For` (see [`CutProxy::reverse_proxy`]).
    forward_from: Option<std::net::IpAddr>,
    /// A header changed in the hub's answers (see [`CutProxy::rewrite_response_header`]).
    rewrite: Option<HeaderRewrite>,
    /// A connection is held at its stall point now.
    stalled: bool,
    /// The test let the held connection go on.
    released: bool,
}

/// A TCP proxy on 127.0.0.1 in front of a hub, for network faults: it cuts
/// the first connection that matches its armed [`Cut`] part-way (closing
/// both sides, as a dropped connection would) and forwards everything else
/// as it is, recording every request line and its headers.
///
/// It adds `Connection: close` to each request (the signature does not
/// cover it), so every connection carries exactly one request and a cut
/// never hits a request kept alive on the same connection. A cut fires
/// once; [`CutProxy::arm`] sets another.
#[derive(Debug)]
pub struct CutProxy {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// `http://127.0.0.1:PORT`, to give clients as the hub's URL.
    pub url: String,
    state: std::sync::Arc<std::sync::Mutex<ProxyState>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    accept: Option<std::thread::JoinHandle<()>>,
}

/// Bytes a request or response head may take at most.
const MAX_HEAD: usize = 64 * 1024;

impl CutProxy {
    /// Listens on a free loopback port and forwards to `upstream`
    /// (`HOST:PORT`, e.g. [`Hub::addr`]), cutting as `cut` says if given.
    pub fn start(upstream: &str, cut: Option<Cut>) -> Self {
        Self::start_with(upstream, cut, None)
    }

    /// A reverse proxy in front of the hub as an operator would run one
    /// (nginx with `proxy_set_header X-Forwarded-For
    /// $proxy_add_x_forwarded_for`): it connects to the hub from `from`
    /// (e.g. `127.0.0.2`, the address the hub is told to trust) and appends
    /// each client's address to the request's `X-Forwarded-For`, keeping
    /// whatever the client wrote there before it.
    pub fn reverse_proxy(upstream: &str, from: &str) -> Self {
        Self::start_with(upstream, None, Some(from.parse().expect("an IP address to connect from")))
    }

    fn start_with(upstream: &str, cut: Option<Cut>, forward_from: Option<std::net::IpAddr>) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address").to_string();
        let state = std::sync::Arc::new(std::sync::Mutex::new(ProxyState {
            armed: cut,
            seen: Vec::new(),
            forward_from,
            rewrite: None,
            stalled: false,
            released: false,
        }));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (upstream, st, halt) = (upstream.to_owned(), state.clone(), stop.clone());
        let accept = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if halt.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = conn else { continue };
                let (upstream, st) = (upstream.clone(), st.clone());
                std::thread::spawn(move || proxy_connection(client, &upstream, &st));
            }
        });
        Self { url: format!("http://{addr}"), addr, state, stop, accept: Some(accept) }
    }

    /// Arms a new cut (replacing one that has not fired).
    pub fn arm(&self, cut: Cut) {
        let mut state = self.lock();
        state.armed = Some(cut);
        state.released = false;
    }

    /// Sets the header `name` to `value`, or removes it when `None`, in
    /// every answer to a request whose line starts with `line_starts_with`
    /// from now on: a hub that lies about that header, or one that predates it.
    pub fn rewrite_response_header(&self, line_starts_with: &str, name: &str, value: Option<&str>) {
        self.lock().rewrite = Some(HeaderRewrite {
            line_starts_with: line_starts_with.to_owned(),
            name: name.to_owned(),
            value: value.map(str::to_owned),
        });
    }

    /// Whether a stalled connection ([`CutSide::StallRequest`],
    /// [`CutSide::StallResponse`]) is being held at its stall point now.
    pub fn stalled(&self) -> bool {
        self.lock().stalled
    }

    /// Waits (at most `within`) until a connection is held at its stall point.
    pub fn wait_stalled(&self, within: std::time::Duration) {
        let started = std::time::Instant::now();
        while !self.stalled() {
            assert!(started.elapsed() < within, "no connection reached the proxy's stall point within {within:?}");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    /// Lets the stalled connection go on: the rest is forwarded as it is.
    pub fn release(&self) {
        self.lock().released = true;
    }

    /// Whether the armed cut is still waiting for its connection.
    pub fn armed(&self) -> bool {
        self.lock().armed.is_some()
    }

    /// Every request seen so far, in the order they arrived.
    pub fn requests(&self) -> Vec<SeenRequest> {
        self.lock().seen.clone()
    }

    /// The requests seen so far whose line starts with `starts_with` and contains `contains`.
    pub fn requests_matching(&self, starts_with: &str, contains: &str) -> Vec<SeenRequest> {
        self.requests().into_iter().filter(|r| r.line.starts_with(starts_with) && r.line.contains(contains)).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ProxyState> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = std::net::TcpStream::connect(&self.addr);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

/// Reads from `from` until `buf` holds a head ending in a blank line;
/// returns its length (the rest of `buf` is body), or `None` if the
/// connection ended first.
fn read_head(from: &mut std::net::TcpStream, buf: &mut Vec<u8>) -> Option<usize> {
    use std::io::Read as _;
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            return Some(pos + 4);
        }
        if buf.len() > MAX_HEAD {
            return None;
        }
        match from.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Copies at most `limit` bytes from `from` to `to`.
fn copy_at_most(from: &mut std::net::TcpStream, to: &mut std::net::TcpStream, limit: u64) {
    use std::io::Read as _;
    let _ = std::io::copy(&mut from.take(limit), to);
}

/// Forwards one connection (one request, see [`CutProxy`]).
fn proxy_connection(mut client: std::net::TcpStream, upstream: &str, state: &std::sync::Mutex<ProxyState>) {
    use std::io::Write as _;
    use std::net::Shutdown;
    let mut buf = Vec::new();
    let Some(head_len) = read_head(&mut client, &mut buf) else { return };
    let head = String::from_utf8_lossy(&buf[..head_len]).into_owned();
    let mut lines = head.split("\r\n").filter(|l| !l.is_empty());
    let line = lines.next().unwrap_or_default().to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let (cut, forward_from, rewrite) = {
        let mut st = lock_state(state);
        let cut = if st.armed.as_ref().is_some_and(|c| c.matches(&line)) { st.armed.take() } else { None };
        st.seen.push(SeenRequest { line: line.clone(), headers: headers.clone(), cut: cut.is_some() });
        let rewrite = st.rewrite.clone().filter(|r| line.starts_with(&r.line_starts_with));
        (cut, st.forward_from, rewrite)
    };
    let connected = match forward_from {
        Some(from) => raw::connect_from(&from.to_string(), upstream),
        None => std::net::TcpStream::connect(upstream),
    };
    let Ok(mut up) = connected else {
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    let mut new_head = format!("{line}\r\n");
    let forwarded = |n: &str| forward_from.is_some() && n == "x-forwarded-for";
    for (n, v) in headers.iter().filter(|(n, _)| n != "connection" && n != "keep-alive" && !forwarded(n)) {
        new_head.push_str(&format!("{n}: {v}\r\n"));
    }
    if forward_from.is_some() {
        let client_ip = client.peer_addr().map(|a| a.ip().to_string()).unwrap_or_default();
        let earlier: Vec<&str> =
            headers.iter().filter(|(n, _)| n == "x-forwarded-for").map(|(_, v)| v.as_str()).collect();
        let chain = if earlier.is_empty() { client_ip } else { format!("{}, {client_ip}", earlier.join(", ")) };
        new_head.push_str(&format!("x-forwarded-for: {chain}\r\n"));
    }
    new_head.push_str("connection: close\r\n\r\n");
    let early_body = buf[head_len..].to_vec();

    if let Some(Cut { side: side @ (CutSide::Request | CutSide::StallRequest), after, .. }) = cut {
        let first = early_body.len().min(usize::try_from(after).unwrap_or(usize::MAX));
        if up.write_all(new_head.as_bytes()).is_ok() && up.write_all(&early_body[..first]).is_ok() {
            copy_at_most(&mut client, &mut up, after - first as u64);
        }
        // Held until released, or until either side goes away (the hub
        // answering early counts: there is nothing left to stall).
        if side == CutSide::StallRequest && hold(state, || closed_or_readable(&up) || closed(&client)) {
            let _ = up.set_read_timeout(None);
            let _ = client.set_read_timeout(None);
            relay(client, up, early_body[first..].to_vec(), None);
            return;
        }
        let _ = up.shutdown(Shutdown::Both);
        let _ = client.shutdown(Shutdown::Both);
        return;
    }

    let Some(Cut { side, after, .. }) = cut else {
        let mut first = new_head.into_bytes();
        first.extend_from_slice(&early_body);
        relay(client, up, first, rewrite.as_ref());
        return;
    };
    // The request goes through whole, on its own thread.
    let (Ok(mut client_in), Ok(mut up_out)) = (client.try_clone(), up.try_clone()) else { return };
    let requests = std::thread::spawn(move || {
        if up_out.write_all(new_head.as_bytes()).is_ok() && up_out.write_all(&early_body).is_ok() {
            let _ = std::io::copy(&mut client_in, &mut up_out);
        }
        let _ = up_out.shutdown(Shutdown::Write);
    });
    let mut answer = Vec::new();
    if let Some(head_len) = read_head(&mut up, &mut answer) {
        let body_now = (answer.len() - head_len).min(usize::try_from(after).unwrap_or(usize::MAX));
        if client.write_all(&answer[..head_len + body_now]).is_ok() {
            copy_at_most(&mut up, &mut client, after - body_now as u64);
        }
        // The client sends its whole request and then waits: its side ends
        // only when it goes away.
        if side == CutSide::StallResponse
            && hold(state, || requests.is_finished())
            && client.write_all(&answer[head_len + body_now..]).is_ok()
        {
            let _ = std::io::copy(&mut up, &mut client);
        }
    }
    let _ = client.flush();
    let _ = up.shutdown(Shutdown::Both);
    let _ = client.shutdown(Shutdown::Both);
    let _ = requests.join();
}

fn lock_state(state: &std::sync::Mutex<ProxyState>) -> std::sync::MutexGuard<'_, ProxyState> {
    state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Holds a stalled connection until the test releases it (`true`) or
/// `gone` says the other side went away (`false`).
fn hold(state: &std::sync::Mutex<ProxyState>, mut gone: impl FnMut() -> bool) -> bool {
    lock_state(state).stalled = true;
    let released = loop {
        if std::mem::take(&mut lock_state(state).released) {
            break true;
        }
        if gone() {
            break false;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    lock_state(state).stalled = false;
    released
}

/// Peeks at a connection, waiting briefly (so [`hold`] also looks at its
/// release flag): `Some(0)` when it was closed, `Some(n)` when bytes wait,
/// `None` when it is open and quiet.
fn peek(conn: &std::net::TcpStream) -> Option<usize> {
    let _ = conn.set_read_timeout(Some(std::time::Duration::from_millis(20)));
    match conn.peek(&mut [0u8; 1]) {
        Ok(n) => Some(n),
        Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => None,
        Err(_) => Some(0),
    }
}

/// Whether the connection was closed or has bytes to read (the hub answered).
fn closed_or_readable(conn: &std::net::TcpStream) -> bool {
    peek(conn).is_some()
}

/// Whether the connection was closed (a client with more to send is not).
fn closed(conn: &std::net::TcpStream) -> bool {
    peek(conn) == Some(0)
}

/// A header a [`CutProxy`] changes in the hub's answers.
#[derive(Clone, Debug)]
struct HeaderRewrite {
    /// Which requests' answers: those whose line starts with this.
    line_starts_with: String,
    /// The header's name.
    name: String,
    /// Its new value, or `None` to remove it.
    value: Option<String>,
}

impl HeaderRewrite {
    /// `head` (status line and headers, ending in a blank line) changed.
    fn apply(&self, head: &str) -> String {
        let mut lines: Vec<String> = head
            .split("\r\n")
            .filter(|l| !l.is_empty())
            .filter(|l| !l.split_once(':').is_some_and(|(n, _)| n.trim().eq_ignore_ascii_case(&self.name)))
            .map(str::to_owned)
            .collect();
        if let Some(value) = &self.value {
            lines.push(format!("{}: {value}", self.name));
        }
        format!("{}\r\n\r\n", lines.join("\r\n"))
    }
}

/// Forwards a connection both ways until it ends: `first`, then the rest
/// of the client's request, to the hub on a thread of its own; the hub's
/// answer to the client here, its head changed by `rewrite` if given.
fn relay(
    mut client: std::net::TcpStream,
    mut up: std::net::TcpStream,
    first: Vec<u8>,
    rewrite: Option<&HeaderRewrite>,
) {
    use std::io::Write as _;
    use std::net::Shutdown;
    let (Ok(mut client_in), Ok(mut up_out)) = (client.try_clone(), up.try_clone()) else { return };
    let requests = std::thread::spawn(move || {
        if up_out.write_all(&first).is_ok() {
            let _ = std::io::copy(&mut client_in, &mut up_out);
        }
        let _ = up_out.shutdown(Shutdown::Write);
    });
    if let Some(rewrite) = rewrite {
        let mut answer = Vec::new();
        if let Some(head_len) = read_head(&mut up, &mut answer) {
            let head = rewrite.apply(&String::from_utf8_lossy(&answer[..head_len]));
            if client.write_all(head.as_bytes()).is_ok() && client.write_all(&answer[head_len..]).is_ok() {
                let _ = std::io::copy(&mut up, &mut client);
            }
        }
    } else {
        let _ = std::io::copy(&mut up, &mut client);
    }
    let _ = client.shutdown(Shutdown::Both);
    let _ = requests.join();
}

// ---------------------------------------------------------------------------
// Raw HTTP/1.1

/// HTTP/1.1 written by hand on a TCP connection, for what an HTTP client
/// library will not send: paths it would normalise (`/../`), bodies shorter
/// or longer than their Content-Length, heads sent a byte at a time, a
/// megabyte of headers, connections that stop half-way.
pub mod raw {
    use std::io::{Read as _, Write as _};
    use std::net::TcpStream;
    use std::time::Duration;

    use sealdrop_proto::keys::NoteSigningKey;
    use sealdrop_proto::request::sign_request;

    /// A response as read off the wire.
    #[derive(Clone)]
    pub struct Response {
        /// The status code.
        pub status: u16,
        /// The status line and headers.
        pub head: String,
        /// The body (as long as its Content-Length says).
        pub body: Vec<u8>,
    }

    impl std::fmt::Debug for Response {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            let body: String = String::from_utf8_lossy(&self.body).chars().take(600).collect();
            write!(f, "HTTP {} {body:?}", self.status)
        }
    }

    impl Response {
        /// The body as JSON.
        pub fn json(&self) -> serde_json::Value {
            serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("the body is not JSON ({e}): {self:?}"))
        }

        /// Asserts the status and the hub's JSON error shape with `code`;
        /// returns the message.
        pub fn assert_error(&self, status: u16, code: &str) -> String {
            assert_eq!(self.status, status, "expected HTTP {status} `{code}`, got {self:?}");
            let v = self.json();
            assert_eq!(v["error"]["code"], code, "expected error code `{code}`, got {self:?}");
            let message = v["error"]["message"].as_str().unwrap_or_default().to_owned();
            assert!(!message.is_empty(), "the error has no message: {self:?}");
            message
        }

        /// The value of header `name` (any case), if present.
        pub fn header(&self, name: &str) -> Option<&str> {
            self.head
                .lines()
                .skip(1)
                .filter_map(|l| l.split_once(':'))
                .find_map(|(n, v)| n.trim().eq_ignore_ascii_case(name).then_some(v.trim()))
        }
    }

    /// A request head: the request line, `host`, `headers`, and the
    /// signature headers of `key` (signed now, over `body`, or marked
    /// unsigned for an upload when `body` is `None`).
    pub fn head(
        method: &str,
        path: &str,
        signer: Option<(&NoteSigningKey, i64)>,
        body: Option<&[u8]>,
        headers: &[(&str, String)],
    ) -> String {
        let mut head = format!("{method} {path} HTTP/1.1\r\nhost: sealdrop-hub\r\n");
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if let Some((key, time)) = signer {
            for (name, value) in sign_request(key, method, path, time, body).headers() {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
        }
        head.push_str("\r\n");
        head
    }

    /// A connection to the hub at `addr` (`127.0.0.1:PORT`), reads timing out after 30 s.
    pub fn connect(addr: &str) -> TcpStream {
        let conn = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect to the hub at {addr}: {e}"));
        conn.set_read_timeout(Some(Duration::from_secs(30))).expect("read timeout");
        conn
    }

    /// A connection to `addr` from the local address `from` (any of
    /// 127.0.0.0/8 on loopback), so one test can act as many clients, each
    /// with an address of its own. Reads time out after 30 s.
    pub fn connect_from(from: &str, addr: &str) -> std::io::Result<TcpStream> {
        use socket2::{Domain, Socket, Type};
        let target: std::net::SocketAddr =
            addr.parse().map_err(|e| std::io::Error::other(format!("{addr} is not IP:PORT: {e}")))?;
        let source: std::net::IpAddr =
            from.parse().map_err(|e| std::io::Error::other(format!("{from} is not an IP address: {e}")))?;
        let socket = Socket::new(Domain::for_address(target), Type::STREAM, None)?;
        socket.bind(&std::net::SocketAddr::new(source, 0).into())?;
        socket.connect(&target.into())?;
        let conn: TcpStream = socket.into();
        conn.set_read_timeout(Some(Duration::from_secs(30)))?;
        Ok(conn)
    }

    /// Sends `head` and `body` on a new connection and reads the answer.
    /// The body is written on a thread of its own, ignoring write errors,
    /// so an answer the hub gives before reading all of it (a 413) is read
    /// all the same. `None`: the hub closed the connection without one.
    pub fn exchange(addr: &str, head: &str, body: &[u8]) -> Option<Response> {
        let mut conn = connect(addr);
        let mut writer = conn.try_clone().expect("clone the connection");
        let mut request = head.as_bytes().to_vec();
        request.extend_from_slice(body);
        let sender = std::thread::spawn(move || {
            let _ = writer.write_all(&request);
            let _ = writer.flush();
        });
        let response = read_response(&mut conn);
        drop(conn);
        let _ = sender.join();
        response
    }

    /// Reads one response: its head, then as many body bytes as its
    /// Content-Length says (0 without one). `None` if the connection ended
    /// (or broke) before a whole head arrived.
    pub fn read_response(conn: &mut TcpStream) -> Option<Response> {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 16 * 1024];
        let head_len = loop {
            if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break pos + 4;
            }
            match conn.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_len]).into_owned();
        let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let mut response = Response { status, head, body: Vec::new() };
        let len: usize = response.header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
        let mut body = buf.split_off(head_len);
        while body.len() < len {
            match conn.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => body.extend_from_slice(&chunk[..n]),
            }
        }
        body.truncate(len);
        response.body = body;
        Some(response)
    }

    /// Whether the hub has closed `conn`: a read returns end of file or a
    /// reset (anything it sent first is read and dropped). Waits at most
    /// the connection's read timeout; `false` if the connection is still open then.
    pub fn closed(conn: &mut TcpStream) -> bool {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match conn.read(&mut chunk) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                    return false;
                }
                Err(_) => return true,
            }
        }
    }
}
