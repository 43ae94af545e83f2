//! The README's "Real use" section, run as written: every ```` ```sh ```` block
//! in it, command by command, against a real hub serving TLS, from the
//! coordinator's first key to the IG officer's report. The README cannot
//! drift from the product again: a command that no longer works, or works
//! only after a step the README does not give, fails this test with the
//! README line it came from.
//!
//! How the section is read:
//! - Each block starts with a comment naming whose machine it runs on
//!   (`# Coordinator:`, `# Camden:`, `# Hub operator:` ...); a comment of
//!   that shape inside a block switches machine. A block without one fails
//!   the test, so a new block cannot be left out of the run.
//! - Each machine gets its own home folder (`~`, where secret keys, settings
//!   and received files live); all share one working folder, which stands
//!   for the trusted channels between them (key cards to the coordinator,
//!   `authority.pub` and the signed directory to everyone, the hub's
//!   certificate and log key).
//! - Only host names, ports and the hub's data folder are substituted
//!   ([`SUBSTITUTIONS`]); everything else runs as printed, through `bash`.
//! - `sealdrop-hub serve` runs in the background until the end of the test.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sealdrop_e2e::{bins, read_text, repo_root};

/// One command of the section.
#[derive(Debug)]
struct Step {
    /// README line the command starts on, for the failure message.
    line: usize,
    /// Whose machine runs it, as the README names it (`Camden`).
    machine: String,
    /// The command as printed (continuation lines joined).
    command: String,
}

/// The "## Real use" section's commands, in order.
fn real_use_steps(readme: &str) -> Vec<Step> {
    let lines: Vec<&str> = readme.lines().collect();
    let start = lines.iter().position(|l| l.starts_with("## Real use")).expect("README has a \"## Real use\" section");
    let end = lines[start + 1..].iter().position(|l| l.starts_with("## ")).map_or(lines.len(), |i| start + 1 + i);
    let mut steps = Vec::new();
    let mut i = start;
    while i < end {
        let fence = lines[i].trim_start();
        if !fence.starts_with("```") {
            i += 1;
            continue;
        }
        let info = fence.trim_start_matches('`').trim();
        let block_start = i + 1;
        i += 1;
        let mut body = Vec::new();
        while i < end && !lines[i].trim_start().starts_with("```") {
            body.push((i + 1, lines[i].trim()));
            i += 1;
        }
        i += 1;
        if info != "sh" {
            continue;
        }
        let mut machine: Option<String> = None;
        let mut pending: Option<(usize, String)> = None;
        for (number, text) in body {
            if pending.is_none() {
                if let Some(name) = machine_comment(text) {
                    machine = Some(name);
                    continue;
                }
                if text.is_empty() || text.starts_with('#') {
                    continue;
                }
            }
            let machine = machine.clone().unwrap_or_else(|| {
                panic!(
                    "README.md line {block_start}: the block does not say whose machine runs it; \
                     start it with a comment such as `# Camden:`"
                )
            });
            let (first, mut command) = pending.take().unwrap_or((number, String::new()));
            if let Some(head) = text.strip_suffix('\\') {
                command.push_str(head.trim_end());
                command.push(' ');
                pending = Some((first, command));
            } else {
                command.push_str(text);
                steps.push(Step { line: first, machine, command });
            }
        }
        assert!(pending.is_none(), "README.md line {block_start}: a block ends with a continued line");
    }
    steps
}

/// `# Camden:` or `# Hub operator:` names a machine; other comments do not.
fn machine_comment(text: &str) -> Option<String> {
    let name = text.strip_prefix("# ")?.strip_suffix(':')?;
    let plausible = !name.is_empty()
        && name.len() <= 30
        && name.starts_with(|c: char| c.is_ascii_uppercase())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == ' ' || c == '\'' || c == '-');
    plausible.then(|| name.to_owned())
}

/// What is replaced in every command before it runs, and why: the README's
/// host name does not resolve here, its port may be taken, and its data
/// folder needs root.
const SUBSTITUTIONS: &[(&str, &str)] = &[
    ("hub.example.org", "localhost"),
    ("0.0.0.0:8443", "127.0.0.1:{port}"),
    (":8443", ":{port}"),
    ("/var/lib/sealdrop", "{data}"),
];

/// A free loopback port (bound and released: the hub binds it moments later).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind a free port").local_addr().expect("local addr").port()
}

/// The machines' homes, the shared folder, and the hub running in the
/// background (killed when the test ends, pass or fail).
struct World {
    root: tempfile::TempDir,
    port: u16,
    path: String,
    serving: Vec<Child>,
}

impl Drop for World {
    fn drop(&mut self) {
        for child in &mut self.serving {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl World {
    fn new() -> Self {
        let bins = bins();
        let dir_of = |p: &Path| p.parent().expect("binary in a folder").to_path_buf();
        let mut path = vec![dir_of(&bins.client), dir_of(&bins.hub)];
        path.extend(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()));
        let path = std::env::join_paths(path).expect("PATH").into_string().expect("PATH is UTF-8");
        let world = Self { root: tempfile::tempdir().expect("tempdir"), port: free_port(), path, serving: Vec::new() };
        std::fs::create_dir_all(world.shared()).expect("mkdir shared");
        world
    }

    fn shared(&self) -> PathBuf {
        self.root.path().join("shared")
    }

    fn data(&self) -> PathBuf {
        self.root.path().join("hub-data")
    }

    fn home(&self, machine: &str) -> PathBuf {
        let slug: String =
            machine.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect();
        let home = self.root.path().join("homes").join(slug);
        std::fs::create_dir_all(&home).expect("mkdir home");
        home
    }

    fn substitute(&self, command: &str) -> String {
        let mut out = command.to_owned();
        for (from, to) in SUBSTITUTIONS {
            let to = to.replace("{port}", &self.port.to_string()).replace("{data}", &self.data().display().to_string());
            out = out.replace(from, &to);
        }
        out
    }

    fn command(&self, machine: &str, script: &str) -> Command {
        let mut command = Command::new("bash");
        command.args(["-o", "pipefail", "-c", script]).current_dir(self.shared()).env_clear();
        let home = self.home(machine);
        command.env("HOME", &home).env("PATH", &self.path).env("LANG", "C.UTF-8").env("TMPDIR", self.root.path());
        // The tests' own build may point cargo elsewhere; nothing else leaks in.
        command.stdin(Stdio::null());
        command
    }

    /// Runs one step; `serve` is left running. Returns stdout.
    fn run(&mut self, step: &Step) -> String {
        let script = self.substitute(&step.command);
        if step.command.starts_with("sealdrop-hub serve") {
            let log = std::fs::File::create(self.root.path().join("serve.log")).expect("serve log");
            let mut command = self.command(&step.machine, &format!("exec {script}"));
            command.stdout(Stdio::null()).stderr(log);
            let child = command.spawn().expect("spawn serve");
            self.serving.push(child);
            self.wait_for_hub(step);
            return String::new();
        }
        let out = self.command(&step.machine, &script).output().expect("run bash");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "README.md line {} ({}): `{}` failed ({})\nran: {script}\n--- stdout ---\n{stdout}\n--- stderr ---\n{}",
            step.line,
            step.machine,
            step.command,
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    fn wait_for_hub(&mut self, step: &Step) {
        let started = Instant::now();
        loop {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            let child = self.serving.last_mut().expect("serve was spawned");
            let exited = child.try_wait().expect("wait serve");
            if exited.is_some() || started.elapsed() > Duration::from_secs(30) {
                let mut log = String::new();
                let _ = std::fs::File::open(self.root.path().join("serve.log")).map(|mut f| f.read_to_string(&mut log));
                panic!(
                    "README.md line {} ({}): `{}` did not start serving ({exited:?}):\n{log}",
                    step.line, step.machine, step.command
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn the_readme_real_use_section_runs_as_written_against_a_tls_hub() {
    let readme = read_text(&repo_root().join("README.md"));
    let steps = real_use_steps(&readme);
    assert!(steps.len() >= 20, "the Real use section has only {} commands: {steps:#?}", steps.len());
    let mut world = World::new();
    let mut outputs: BTreeMap<usize, String> = BTreeMap::new();
    for step in &steps {
        outputs.insert(step.line, world.run(step));
    }

    // The run is only a walk-through if it did what the README promises:
    // the hub spoke TLS, Islington received Camden's records, and the
    // IG officer's verification passed and wrote its report.
    let hub_commands: Vec<&Step> = steps.iter().filter(|s| s.command.starts_with("sealdrop-hub serve")).collect();
    assert_eq!(hub_commands.len(), 1, "one `sealdrop-hub serve` in the section");
    assert!(hub_commands[0].command.contains("--tls-cert"), "the hub serves TLS itself: {:?}", hub_commands[0]);
    let machines: std::collections::BTreeSet<&str> = steps.iter().map(|s| s.machine.as_str()).collect();
    for machine in ["Coordinator", "Hub operator", "Camden", "Islington", "IG officer"] {
        assert!(machines.contains(machine), "no step runs on {machine}'s machine: {machines:?}");
    }
    let received = world.home("Islington").join("incoming");
    let names = sealdrop_e2e::list_dir(&received);
    assert!(!names.is_empty(), "Islington received nothing into ~/incoming");
    let sent = world.shared();
    for name in &names {
        if let Some(original) = [sent.join(name), world.home("Camden").join(name)].into_iter().find(|p| p.is_file()) {
            assert_eq!(
                sealdrop_e2e::read_bytes(&received.join(name)),
                sealdrop_e2e::read_bytes(&original),
                "{name} arrived changed"
            );
        }
    }
    let report = std::fs::read_dir(world.shared())
        .expect("read shared")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "html"))
        .expect("the IG officer's HTML report was written");
    assert!(read_text(&report).contains("<html"), "{} is an HTML page", report.display());
}

#[test]
fn a_block_without_its_machine_fails_the_reader() {
    let readme = "## Real use\n```sh\nsealdrop keygen\n```\n## Next\n";
    let caught = std::panic::catch_unwind(|| real_use_steps(readme));
    assert!(caught.is_err(), "a block that does not say whose machine runs it is refused");
    let readme = "## Real use\n1. x\n   ```sh\n   # Camden:\n   sealdrop send \\\n     --to islington f.csv\n   # Islington:\n   sealdrop fetch --all  # every drop\n   ```\n```json\n{}\n```\n## Next\n```sh\nnot run\n```\n";
    let steps = real_use_steps(readme);
    let seen: Vec<(&str, &str, usize)> =
        steps.iter().map(|s| (s.machine.as_str(), s.command.as_str(), s.line)).collect();
    assert_eq!(
        seen,
        vec![
            ("Camden", "sealdrop send --to islington f.csv", 5),
            ("Islington", "sealdrop fetch --all  # every drop", 8)
        ]
    );
}
