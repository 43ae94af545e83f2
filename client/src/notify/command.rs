//! The command hook: a program run on this machine for each event, for
//! whatever the team's own tooling wants (a ticket, a log line, a text
//! message gateway). Run without a shell, so nothing in an event is ever
//! interpreted as shell syntax; the event is given as JSON on its standard
//! input and in `SEALDROP_*` environment variables. Its output is
//! discarded (nothing reads it, and a chatty hook cannot fill a pipe and
//! hang); it is killed, with every process it started, when it overruns.

use std::io::Write as _;
use std::os::unix::process::{CommandExt as _, ExitStatusExt as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{Event, EventKind, failed, invalid};
use crate::error::Result;

/// How long a hook may run: enough to call a slow internal service, short
/// enough that a hung hook does not hold up the service's next pass.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// How often a running hook is checked for having finished.
const POLL: Duration = Duration::from_millis(20);

/// `[notify.command]`: the program to run on each event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandSink {
    /// The program: a path, or a name looked up on `PATH` when the service starts.
    pub program: PathBuf,
    /// Arguments given before nothing else: the event comes on stdin and in the environment.
    #[serde(default)]
    pub args: Vec<String>,
    /// The events to run it for; absent means every event.
    pub events: Option<Vec<EventKind>>,
}

/// A checked [`CommandSink`].
pub(crate) struct CommandHook {
    program: PathBuf,
    args: Vec<String>,
    /// How long it may run; [`COMMAND_TIMEOUT`] unless a test shortens it.
    pub(crate) timeout: Duration,
}

impl CommandHook {
    /// Resolves the program now, so a missing one stops the service at start.
    pub(crate) fn new(sink: &CommandSink) -> Result<Self> {
        let program = resolve(&sink.program)?;
        Ok(Self { program, args: sink.args.clone(), timeout: COMMAND_TIMEOUT })
    }

    /// Runs the hook for `event` and waits for it, at most `timeout`.
    pub(crate) fn run(&self, event: &Event) -> Result<()> {
        let shown = self.program.display();
        let json = serde_json::to_vec(event).map_err(|e| failed(format!("cannot write the event as JSON: {e}")))?;
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args).stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::null());
        // Its own process group, so a timeout kills whatever it started too.
        cmd.process_group(0);
        // The hook sees only this event's SEALDROP_ variables, never the
        // service's own settings (key paths, hub) under the same prefix.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("SEALDROP_") {
                cmd.env_remove(name);
            }
        }
        let drops: Vec<&str> = event.drops.iter().map(|d| d.as_str()).collect();
        cmd.env("SEALDROP_EVENT", event.kind.as_str())
            .env("SEALDROP_PARTY", event.party.as_str())
            .env("SEALDROP_DROPS", drops.join(" "))
            .env("SEALDROP_FROM", event.from.as_ref().map_or("", |p| p.as_str()))
            .env("SEALDROP_AGREEMENT", event.agreement.as_deref().unwrap_or(""))
            .env("SEALDROP_CODE", event.code.as_deref().unwrap_or(""));
        let mut child = cmd.spawn().map_err(|e| {
            failed(format!("cannot run the notification command {shown}: {e}; check [notify.command] program"))
        })?;
        // Written from a thread: a hook that never reads its input must not
        // block the service; killing it ends the write with a broken pipe.
        let stdin = child.stdin.take();
        let writer = std::thread::spawn(move || {
            if let Some(mut stdin) = stdin {
                let _ = stdin.write_all(&json);
            }
        });
        let deadline = Instant::now() + self.timeout;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Ok(status),
                Ok(None) if Instant::now() >= deadline => break Err(None),
                Ok(None) => std::thread::sleep(POLL),
                Err(e) => break Err(Some(e)),
            }
        };
        let outcome = match status {
            Ok(status) if status.success() => Ok(()),
            Ok(status) => {
                let how = match (status.code(), status.signal()) {
                    (Some(code), _) => format!("exited with status {code}"),
                    (None, Some(signal)) => format!("was killed by signal {signal}"),
                    (None, None) => "failed".to_owned(),
                };
                Err(failed(format!(
                    "the notification command {shown} {how} for the {} event; run it by hand with the event JSON on its standard input to see why",
                    event.kind
                )))
            }
            Err(waiting) => {
                kill_group(&mut child);
                let limit = self.timeout.as_secs_f64();
                let why = match waiting {
                    None => format!("ran longer than {limit} s and was killed"),
                    Some(e) => format!("could not be waited for ({e}) and was killed"),
                };
                Err(failed(format!(
                    "the notification command {shown} {why}; it must finish within {limit} s (start any longer work in the background with setsid)"
                )))
            }
        };
        let _ = writer.join();
        outcome
    }
}

/// Kills the hook's whole process group, then reaps the hook.
fn kill_group(child: &mut std::process::Child) {
    let pid = rustix::process::Pid::from_child(child);
    if rustix::process::kill_process_group(pid, rustix::process::Signal::KILL).is_err() {
        // The group is gone already, or never formed: the hook itself at least.
        let _ = child.kill();
    }
    let _ = child.wait();
}

/// The program to run: a path as given (it must be an executable file), or
/// a bare name found on `PATH`.
fn resolve(program: &Path) -> Result<PathBuf> {
    let shown = program.display();
    if program.as_os_str().is_empty() {
        return Err(invalid("command", "program is empty; give the path of the program to run"));
    }
    if program.components().count() > 1 || program.is_absolute() {
        return executable(program)
            .map(|()| program.to_path_buf())
            .map_err(|why| invalid("command", format!("program {shown} {why}; give the path of an executable file")));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| executable(candidate).is_ok())
        .ok_or_else(|| {
            invalid(
                "command",
                format!("program {shown} is not on PATH; give its full path, e.g. /usr/local/bin/{shown}"),
            )
        })
}

/// Whether `path` is a file someone may execute; why not otherwise.
fn executable(path: &Path) -> std::result::Result<(), String> {
    use std::os::unix::fs::PermissionsExt as _;
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot be read ({e})"))?;
    if !meta.is_file() {
        return Err("is not a file".to_owned());
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err("is not executable (run `chmod +x` on it)".to_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_program_is_checked_when_the_service_starts() {
        let sink = |p: &str| CommandSink { program: p.into(), args: vec![], events: None };
        assert!(CommandHook::new(&sink("/bin/sh")).is_ok());
        assert_eq!(CommandHook::new(&sink("sh")).unwrap().program.file_name().unwrap(), "sh");
        for (program, says) in [
            ("/no/such/hook", "cannot be read"),
            ("/etc", "is not a file"),
            ("/etc/passwd", "is not executable"),
            ("no-such-hook-anywhere", "is not on PATH"),
            ("", "program is empty"),
        ] {
            let e = CommandHook::new(&sink(program)).err().unwrap_or_else(|| panic!("{program} was accepted"));
            assert_eq!(e.code, "notify_config_invalid", "{program}");
            assert!(e.message.starts_with("[notify.command] ") && e.message.contains(says), "{}", e.message);
        }
    }
}
