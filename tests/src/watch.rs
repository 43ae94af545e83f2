//! `sealdrop watch` as a process for the end-to-end tests: a party's
//! service over a temporary watch folder, with helpers to wait for what it
//! does (files appearing, leaving, events told).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::Party;

/// A running `sealdrop watch` (killed when dropped).
pub struct Watcher {
    /// The watch folder.
    pub dir: PathBuf,
    /// Where the notify command hook appends each event (one JSON per line).
    pub events_file: PathBuf,
    child: Option<Child>,
    stderr: PathBuf,
    args: Vec<String>,
}

/// Polls `what` every 50 ms until it returns `Some`, for at most `within`.
pub fn wait_for<T>(within: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(started.elapsed() < within, "waited {within:?} for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Watcher {
    /// Starts `sealdrop watch --dir <party dir>/watch` for `party` with a
    /// 1-second settle time, a command hook recording every event, and
    /// `extra` options.
    pub fn start(party: &Party, extra: &[&str]) -> Self {
        let dir = party.dir.path().join("watch");
        let events_file = party.dir.path().join("events.jsonl");
        let hook = party.dir.path().join("record-event.sh");
        crate::write_file(
            &hook,
            format!("#!/bin/sh\ncat >> '{}'\necho >> '{}'\n", events_file.display(), events_file.display()),
        );
        crate::chmod(&hook, 0o755);
        let mut args: Vec<String> = vec!["watch".into(), "--dir".into(), dir.to_string_lossy().into_owned()];
        // Defaults for the tests, unless `extra` gives its own.
        for (flag, value) in [("--settle", "1"), ("--status-interval", "1")] {
            if !extra.contains(&flag) {
                args.extend([flag.to_owned(), value.to_owned()]);
            }
        }
        args.extend(["--notify-command".to_owned(), hook.to_string_lossy().into_owned()]);
        args.extend(extra.iter().map(|s| s.to_string()));
        let stderr = party.dir.path().join("watch.stderr");
        let mut w = Self { dir, events_file, child: None, stderr, args };
        w.spawn(party);
        w
    }

    fn spawn(&mut self, party: &Party) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.stderr).expect("watch log");
        let mut cmd = party.command();
        cmd.args(&self.args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(log);
        let started_before =
            self.log().matches("\nwatching ").count() + usize::from(self.log().starts_with("watching "));
        let mut child = cmd.spawn().expect("start sealdrop watch");
        // Ready once it says it is watching (after it made its folders and
        // took the folder's lock); an early exit is a failure with its log.
        wait_for(Duration::from_secs(30), "the service to start watching", || {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("sealdrop watch exited ({status}) at start:\n{}", self.log());
            }
            let log = self.log();
            let started = log.matches("\nwatching ").count() + usize::from(log.starts_with("watching "));
            (started > started_before).then_some(())
        });
        self.child = Some(child);
    }

    /// Kills the service abruptly (SIGKILL), as a power cut would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again with the same options.
    pub fn restart(&mut self, party: &Party) {
        self.kill();
        self.spawn(party);
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("running");
        let _ = Command::new("kill").arg("-TERM").arg(c.id().to_string()).status();
        let started = Instant::now();
        loop {
            if let Some(status) = c.try_wait().expect("wait") {
                return status;
            }
            assert!(started.elapsed() < Duration::from_secs(30), "watch did not stop on SIGTERM:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// What the service wrote on stderr.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Saves `content` as `outbox/<rel>` the way a careful writer does:
    /// into a temporary name, then renamed.
    pub fn drop_file(&self, rel: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let path = self.dir.join("outbox").join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let tmp = path.with_file_name(format!(".{}.tmp", path.file_name().unwrap().to_string_lossy()));
        std::fs::write(&tmp, content).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        path
    }

    /// The events told so far (the command hook's records).
    pub fn events(&self) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(&self.events_file).unwrap_or_default();
        serde_json::Deserializer::from_str(&text)
            .into_iter::<serde_json::Value>()
            .map(|e| e.unwrap_or_else(|e| panic!("events {text:?}: {e}")))
            .collect()
    }

    /// Waits for an event of `kind` and returns it.
    pub fn wait_event(&self, kind: &str, within: Duration) -> serde_json::Value {
        wait_for(within, &format!("a `{kind}` event (log:\n{})", self.log()), || {
            self.events().into_iter().find(|e| e["kind"] == kind)
        })
    }

    /// The job folders in `sent/` (or `failed/`).
    pub fn jobs(&self, folder: &str) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(self.dir.join(folder))
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    /// Waits until `folder` (`sent` or `failed`) holds `n` jobs.
    pub fn wait_jobs(&self, folder: &str, n: usize, within: Duration) -> Vec<PathBuf> {
        wait_for(within, &format!("{n} job(s) in {folder}/ (log:\n{})", self.log()), || {
            let jobs = self.jobs(folder);
            (jobs.len() >= n).then_some(jobs)
        })
    }

    /// The status file (`null` before the service wrote it).
    pub fn status(&self) -> serde_json::Value {
        match std::fs::read_to_string(self.dir.join("status.json")) {
            Ok(text) => crate::json(&text),
            Err(_) => serde_json::Value::Null,
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The files below `dir` (not the folders), as paths relative to it.
pub fn files_below(dir: &Path) -> Vec<String> {
    crate::tree(dir).into_keys().filter(|k| !k.ends_with('/')).collect()
}
