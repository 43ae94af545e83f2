//! [`SmtpReceiver`]: a real SMTP server for the notification tests, aiosmtpd
//! (Debian's `python3-aiosmtpd`, installed by .ci/run) running
//! `tests/smtp_receiver.py`. With STARTTLS (a certificate from
//! [`crate::TestTls`]'s private CA) it refuses MAIL before STARTTLS, as a
//! council's submission relay does; [`SmtpReceiver::without_starttls`]
//! offers no STARTTLS at all.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

use crate::TestTls;

/// Debian's Python, where `python3-aiosmtpd` installs (a `python3` first on
/// `PATH`, such as pyenv's, would not see it).
const PYTHON: &str = "/usr/bin/python3";

/// One message as the server received it.
#[derive(Clone, Debug)]
pub struct ReceivedMail {
    /// The message as sent (headers and body, CRLF line ends).
    pub raw: String,
    /// `MAIL FROM`.
    pub mail_from: String,
    /// `RCPT TO`s.
    pub rcpt_tos: Vec<String>,
    /// Whether the session had switched to TLS with STARTTLS.
    pub tls: bool,
    /// The user name of a successful AUTH, if any.
    pub login: Option<String>,
}

impl ReceivedMail {
    /// A header's value (unfolded), e.g. `Subject`.
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.raw.split("\r\n\r\n").next().unwrap_or("");
        let mut value: Option<String> = None;
        for line in head.split("\r\n") {
            match (&mut value, line.starts_with([' ', '\t'])) {
                (Some(v), true) => v.push_str(line),
                (Some(_), false) => break,
                (None, _) => {
                    if let Some((n, v)) = line.split_once(':')
                        && n.eq_ignore_ascii_case(name)
                    {
                        value = Some(v.trim().to_owned());
                    }
                }
            }
        }
        value
    }
}

/// A running SMTP server; killed when dropped.
pub struct SmtpReceiver {
    child: Child,
    /// Held open: the server stops when it is closed.
    _stdin: Option<ChildStdin>,
    port: u16,
    out: TempDir,
    tls: Option<TestTls>,
}

impl SmtpReceiver {
    /// A server offering and requiring STARTTLS, with a certificate for
    /// 127.0.0.1 from a private CA ([`Self::ca`]).
    pub fn start() -> Self {
        Self::launch(true, None)
    }

    /// As [`Self::start`], also requiring AUTH as `user` with `password`.
    pub fn with_auth(user: &str, password: &str) -> Self {
        Self::launch(true, Some((user, password)))
    }

    /// A server that offers no STARTTLS (a misconfigured or downgraded relay).
    pub fn without_starttls() -> Self {
        Self::launch(false, None)
    }

    fn launch(starttls: bool, auth: Option<(&str, &str)>) -> Self {
        assert!(
            Path::new(PYTHON).exists(),
            "{PYTHON} is missing: install python3-aiosmtpd (apt-get install -y python3-aiosmtpd; .ci/run does)"
        );
        let out = tempfile::tempdir().expect("tempdir");
        let tls = starttls.then(TestTls::new);
        let script = crate::repo_root().join("tests/smtp_receiver.py");
        let mut cmd = Command::new(PYTHON);
        cmd.arg(&script).arg("--out").arg(out.path());
        if let Some(tls) = &tls {
            cmd.arg("--cert").arg(tls.cert()).arg("--key").arg(tls.key());
        }
        if let Some((user, password)) = auth {
            cmd.args(["--user", user, "--password", password]);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {PYTHON} {}: {e}", script.display()));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped stdout");
        // The port, printed once the server listens; a thread, so a server
        // that never starts fails the test instead of hanging it.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
        let port = match line.trim().parse::<u16>() {
            Ok(port) => port,
            Err(_) => {
                let _ = child.kill();
                panic!("the SMTP receiver did not start (it printed {line:?}); is python3-aiosmtpd installed?");
            }
        };
        Self { child, _stdin: stdin, port, out, tls }
    }

    /// `127.0.0.1:PORT`, for `smtp_server`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The PEM file of the CA that signed its certificate (STARTTLS servers only).
    pub fn ca(&self) -> PathBuf {
        self.tls.as_ref().expect("a STARTTLS server").ca()
    }

    /// Every message received so far, oldest first.
    pub fn messages(&self) -> Vec<ReceivedMail> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(self.out.path())
            .expect("read the receiver's folder")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect();
        names.sort();
        names
            .into_iter()
            .map(|eml| {
                let meta: Value =
                    serde_json::from_str(&std::fs::read_to_string(eml.with_extension("json")).expect("meta"))
                        .expect("meta JSON");
                ReceivedMail {
                    raw: std::fs::read_to_string(&eml).expect("message"),
                    mail_from: meta["mail_from"].as_str().unwrap_or("").to_owned(),
                    rcpt_tos: meta["rcpt_tos"]
                        .as_array()
                        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
                        .unwrap_or_default(),
                    tls: meta["tls"] == Value::Bool(true),
                    login: meta["login"].as_str().map(str::to_owned),
                }
            })
            .collect()
    }

    /// Waits until `n` messages arrived (at most `timeout`); panics if fewer came.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<ReceivedMail> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.messages();
            if got.len() >= n {
                return got;
            }
            assert!(Instant::now() < deadline, "{} of {n} mails arrived within {timeout:?}", got.len());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for SmtpReceiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
