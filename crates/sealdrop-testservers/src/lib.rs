//! Real servers for sealdrop's tests, each started by the test that needs it
//! in a temporary folder and stopped when dropped: never an in-process mock.
//!
//! [`S3Server`] is `s3s-fs`, a small S3-compatible server from crates.io that
//! keeps objects as files. A missing server binary fails the test with one
//! line saying how to install it: a test that passed without its server
//! would prove nothing.
//!
//! [`PgCluster`] is PostgreSQL 15 from Debian's packages (see [`postgres`]).

pub mod postgres;

pub use postgres::{PG_BIN, PgCluster};

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How `s3s-fs` is installed (CI's `.ci/run` does it).
pub const S3S_FS_INSTALL: &str = "cargo install s3s-fs --version 0.14.1 --locked --features binary";
/// Names the `s3s-fs` binary when it is not on `PATH` or in cargo's bin folder.
pub const S3S_FS_ENV: &str = "SEALDROP_S3S_FS";
/// How long the server may take to listen (it takes milliseconds).
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// What `s3s-fs` logs once it listens, followed by its address.
const LISTENING: &str = "server is running at http://";

/// An S3-compatible server on a free loopback port, with one empty bucket.
/// Dropping it kills the server and removes its objects.
#[derive(Debug)]
pub struct S3Server {
    /// The server process, killed on drop.
    child: Child,
    /// Where the server keeps its objects (a folder per bucket).
    _root: tempfile::TempDir,
    /// `http://127.0.0.1:PORT`.
    endpoint: String,
}

impl S3Server {
    /// The bucket every server starts with.
    pub const BUCKET: &str = "sealdrop-test";
    /// The access key the server accepts.
    pub const ACCESS_KEY: &str = "sealdrop-test-key";
    /// The secret key the server accepts.
    pub const SECRET_KEY: &str = "sealdrop-test-secret";
    /// Any region: the server ignores it, but request signing needs one.
    pub const REGION: &str = "us-east-1";

    /// Starts the server. Panics with a one-line message if `s3s-fs` is not
    /// installed or does not start.
    pub fn start() -> Self {
        let binary = find_s3s_fs().unwrap_or_else(|| {
            panic!(
                "s3s-fs (the S3-compatible test server) is not installed: run `{S3S_FS_INSTALL}` \
                 or set {S3S_FS_ENV} to its path"
            )
        });
        let root = tempfile::Builder::new().prefix("sealdrop-s3-").tempdir().expect("create the S3 server's folder");
        // s3s-fs keeps a bucket as a folder of its root.
        std::fs::create_dir(root.path().join(Self::BUCKET)).expect("create the test bucket");
        let mut child = Command::new(&binary)
            .args(["--host", "127.0.0.1", "--port", "0", "--access-key", Self::ACCESS_KEY])
            .args(["--secret-key", Self::SECRET_KEY])
            .arg(root.path())
            .env("RUST_LOG", "s3s_fs=info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let stdout = child.stdout.take().expect("the server's stdout is piped");
        let (address_tx, address_rx) = mpsc::channel();
        // Reads the address the server logs, then keeps draining its log so
        // a full pipe never stalls it.
        std::thread::spawn(move || {
            let mut address_tx = Some(address_tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(at) = line.find(LISTENING)
                    && let Some(tx) = address_tx.take()
                {
                    let address: String =
                        line[at + LISTENING.len()..].chars().take_while(|c| !c.is_whitespace()).collect();
                    let _ = tx.send(address);
                }
            }
        });
        let address = match address_rx.recv_timeout(START_TIMEOUT) {
            Ok(address) => address,
            Err(_) => {
                let status = child.try_wait().ok().flatten();
                let _ = child.kill();
                let _ = child.wait();
                panic!("{} did not start listening within {START_TIMEOUT:?} (exit: {status:?})", binary.display());
            }
        };
        Self { child, _root: root, endpoint: format!("http://{address}") }
    }

    /// The server's URL, `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The folder that holds [`S3Server::BUCKET`]'s objects, a file per
    /// object under its key, so a test can see what a client stored.
    pub fn bucket_dir(&self) -> PathBuf {
        self._root.path().join(Self::BUCKET)
    }

    /// The standard AWS environment variables that point a client (such as
    /// `sealdrop-hub serve` with `blobs = "s3://..."`) at this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_REGION", Self::REGION.to_owned()),
            ("AWS_ACCESS_KEY_ID", Self::ACCESS_KEY.to_owned()),
            ("AWS_SECRET_ACCESS_KEY", Self::SECRET_KEY.to_owned()),
            ("AWS_ALLOW_HTTP", "true".to_owned()),
        ]
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `$SEALDROP_S3S_FS`, else `s3s-fs` on `PATH`, else in cargo's bin folder
/// (where `cargo install` puts it, not always on a test's `PATH`).
fn find_s3s_fs() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(S3S_FS_ENV).filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    let on_path = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter();
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cargo")))
        .map(|home| home.join("bin"));
    on_path.chain(cargo_home).map(|dir| dir.join("s3s-fs")).find(|candidate| candidate.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_listens_until_dropped() {
        let server = S3Server::start();
        let address = server.endpoint().trim_start_matches("http://").to_owned();
        assert!(std::net::TcpStream::connect(&address).is_ok(), "nothing listens at {address}");
        let env = server.env();
        assert!(env.contains(&("AWS_ENDPOINT_URL", server.endpoint().to_owned())));
        drop(server);
        assert!(std::net::TcpStream::connect(&address).is_err(), "the server still listens at {address}");
    }
}
