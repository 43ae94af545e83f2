//! Hubs on the back ends several instances share: PostgreSQL for the
//! metadata and an S3-compatible store for the ciphertexts, both real
//! servers started by the test (see `sealdrop-testservers`), and any
//! number of `sealdrop-hub serve` processes on them.
//!
//! The tests read what such a hub keeps behind its back as they do an
//! embedded hub's `hub.db` and files: the database with `psql`,
//! PostgreSQL's own client, and the bucket from the folder s3s-fs keeps
//! its objects in.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};

use sealdrop_testservers::postgres::{PG_BIN, PG_BIN_ENV};
use sealdrop_testservers::{PgCluster, S3Server};

use crate::{Hub, OBJECT_STORE_PREFIX, Serve, TestClock, bins, hub_url, spawn_serve, tree};

/// `psql`'s field and record separators and its text for NULL: control
/// characters no value the tests read holds.
const FIELD: char = '\u{1f}';
const RECORD: char = '\u{1e}';
const NULL: &str = "\u{1}";
/// The line `psql` echoes after each query's rows.
const DONE: &str = "\u{2}sealdrop-query-done\u{2}";

/// One hub's shared stores: a new database in this test binary's
/// PostgreSQL cluster and an S3-compatible server of its own. Cloning
/// shares them (every instance of the hub keeps a clone, so the server
/// lives as long as the last one).
#[derive(Debug, Clone)]
pub struct SharedStores {
    /// The database's URL (`postgres://postgres@127.0.0.1:PORT/NAME`).
    pub database: String,
    /// The object store; ciphertexts go under [`OBJECT_STORE_PREFIX`] in its bucket.
    pub s3: Arc<S3Server>,
    /// One `psql` session the tests' queries go through, started at the
    /// first: a snapshot around each of hundreds of requests would spend
    /// most of its time starting a process and a connection per query.
    psql: Arc<Mutex<Option<Psql>>>,
}

/// A running `psql` reading queries from its stdin.
#[derive(Debug)]
struct Psql {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Psql {
    fn start(database: &str) -> Self {
        let bin = std::env::var_os(PG_BIN_ENV).filter(|p| !p.is_empty()).map_or_else(|| PG_BIN.into(), PathBuf::from);
        let mut child = Command::new(bin.join("psql"))
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .args(["-F", &FIELD.to_string(), "-R", &RECORD.to_string(), "-P", &format!("null={NULL}")])
            .args(["-d", database])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run psql");
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        Self { child, stdin, stdout }
    }

    /// The text `psql` printed for `sql`'s rows; panics with its error
    /// (`psql` stops at the first).
    fn run(&mut self, sql: &str) -> String {
        let sent = writeln!(self.stdin, "{sql};\n\\echo {DONE}").and_then(|()| self.stdin.flush());
        let mut text = String::new();
        loop {
            let mut line = String::new();
            let read = self.stdout.read_line(&mut line);
            if sent.is_err() || !matches!(read, Ok(n) if n > 0) {
                let mut error = String::new();
                let _ = self.child.stderr.as_mut().map(|e| e.read_to_string(&mut error));
                panic!("psql {sql}: {}", error.trim());
            }
            if line.trim_end_matches('\n') == DONE {
                return text;
            }
            text.push_str(&line);
        }
    }
}

impl Drop for Psql {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl SharedStores {
    /// A new empty database and a new object store.
    pub fn start() -> Self {
        Self::on(PgCluster::shared().database())
    }

    /// The database at `database` (a URL, e.g. to a TLS-only cluster) and a
    /// new object store.
    pub fn on(database: String) -> Self {
        Self { database, s3: Arc::new(S3Server::start()), psql: Arc::new(Mutex::new(None)) }
    }

    /// The same object store with the database at `database` (a database
    /// restored from a dump, say).
    pub fn with_database(&self, database: String) -> Self {
        Self { database, s3: Arc::clone(&self.s3), psql: Arc::new(Mutex::new(None)) }
    }

    /// `blobs` as the hub takes it.
    pub fn blobs(&self) -> String {
        format!("s3://{}/{OBJECT_STORE_PREFIX}", S3Server::BUCKET)
    }

    /// The environment `init` and `serve` get: `SEALDROP_HUB_DATABASE`,
    /// `SEALDROP_HUB_BLOBS` and the object store's `AWS_*` variables.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env = vec![
            ("SEALDROP_HUB_DATABASE".to_owned(), self.database.clone()),
            ("SEALDROP_HUB_BLOBS".to_owned(), self.blobs()),
        ];
        env.extend(self.s3.env().into_iter().map(|(k, v)| (k.to_owned(), v)));
        env
    }

    /// Runs `sql` on the hub's database with `psql` and returns the rows,
    /// each a list of its values as text (`None` for NULL).
    pub fn query(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        let mut session = self.psql.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let text = session.get_or_insert_with(|| Psql::start(&self.database)).run(sql);
        let text = text.strip_suffix('\n').unwrap_or(&text);
        if text.is_empty() {
            return Vec::new();
        }
        text.split(RECORD).map(|row| row.split(FIELD).map(|v| (v != NULL).then(|| v.to_owned())).collect()).collect()
    }

    /// The folder under which the hub's objects are files (s3s-fs keeps an
    /// object as a file named by its key).
    pub fn objects(&self) -> PathBuf {
        self.s3.bucket_dir().join(OBJECT_STORE_PREFIX)
    }

    /// Drop `id`'s committed ciphertext as the bucket holds it (its
    /// manifest's segments, in order), or `None` if it holds none.
    pub fn ciphertext(&self, id: &str) -> Option<Vec<u8>> {
        let manifest = std::fs::read(self.objects().join("blobs").join(id)).ok()?;
        let manifest: serde_json::Value = serde_json::from_slice(&manifest).expect("a blob manifest is JSON");
        let generation = manifest["generation"].as_str().expect("a manifest names its generation");
        let segments = manifest["segments"].as_array().expect("a manifest lists its segments");
        let folder = self.objects().join("segments").join(id).join(generation);
        let mut bytes = Vec::new();
        for (index, size) in segments.iter().enumerate() {
            let segment = std::fs::read(folder.join(format!("{index:08}"))).expect("a manifest's segment is there");
            assert_eq!(Some(segment.len() as u64), size.as_u64(), "segment {index} of drop {id} has another size");
            bytes.extend(segment);
        }
        Some(bytes)
    }

    /// Every row of every table of the database (as text, sorted), by table.
    pub fn all_rows(&self) -> BTreeMap<String, Vec<String>> {
        let tables = self.query("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'");
        let tables: Vec<String> = tables.into_iter().filter_map(|mut row| row.remove(0)).collect();
        // One query for all (a snapshot is taken around every request of a
        // long test): each row as its table's name and its text.
        let every_row = tables
            .iter()
            .map(|table| format!("SELECT '{table}', t::text FROM \"{table}\" t"))
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        let mut rows: BTreeMap<String, Vec<String>> = tables.into_iter().map(|t| (t, Vec::new())).collect();
        for row in self.query(&every_row) {
            let (table, text) = (row[0].clone().unwrap_or_default(), row[1].clone().unwrap_or_default());
            rows.entry(table).or_default().push(text);
        }
        rows.values_mut().for_each(|all| all.sort());
        rows
    }

    /// Every object in the bucket with its content.
    pub fn all_objects(&self) -> BTreeMap<String, Vec<u8>> {
        tree(&self.s3.bucket_dir())
    }
}

impl Hub {
    /// Initialises a hub (the example authority and directory) on `stores`
    /// and serves it: the first instance. Its data directory holds only
    /// this instance's log key and spool.
    pub fn start_on_shared_stores(stores: &SharedStores, clock: Option<&TestClock>, options: &[&str]) -> Self {
        let data = tempfile::tempdir().expect("tempdir");
        let mut hub = Self::start_full(data, clock.map(TestClock::path), options, None, stores.env());
        hub.shared = Some(stores.clone());
        hub
    }

    /// The shared stores the hub runs on, or `None` for an embedded hub.
    pub fn shared_stores(&self) -> Option<&SharedStores> {
        self.shared.as_ref()
    }

    /// Another `serve` process of the same hub: a data directory of its own
    /// holding a copy of the log key (as an operator installs it), the same
    /// database, bucket, clock and environment, and `options`.
    pub fn another_instance(&self, options: &[&str]) -> Hub {
        self.another_instance_with_env(options, &[])
    }

    /// Like [`Hub::another_instance`], with `SEALDROP_HUB_FAILPOINT` set to
    /// `point` (`<name>[@<n>]`): the instance aborts when it gets there
    /// (see `hub/src/failpoint.rs`); [`Hub::wait_exit`] waits for that.
    pub fn another_instance_with_failpoint(&self, point: &str) -> Hub {
        self.another_instance_with_env(&[], &[("SEALDROP_HUB_FAILPOINT", point)])
    }

    fn another_instance_with_env(&self, options: &[&str], extra: &[(&str, &str)]) -> Hub {
        let mut hub =
            Self::instance(self.data.path(), self.env.clone(), self.clock.clone(), self.umask, options, extra);
        hub.shared = self.shared.clone();
        hub
    }

    /// A `serve` process of a hub already in `stores` (moved there by
    /// `sealdrop-hub migrate`), with a data directory of its own holding a
    /// copy of the log key in `log_key_dir` (the old data directory).
    pub fn serve_moved(log_key_dir: &Path, stores: &SharedStores, options: &[&str]) -> Hub {
        let mut hub = Self::instance(log_key_dir, stores.env(), None, None, options, &[]);
        hub.shared = Some(stores.clone());
        hub
    }

    /// A `serve` process with a new data directory holding a copy of
    /// `log_key_dir`'s log key, its stores named by `env` (and `extra`
    /// for this start only).
    fn instance(
        log_key_dir: &Path,
        env: Vec<(String, String)>,
        clock: Option<PathBuf>,
        umask: Option<u32>,
        options: &[&str],
        extra: &[(&str, &str)],
    ) -> Hub {
        let data = tempfile::tempdir().expect("tempdir");
        copy_log_key(log_key_dir, data.path());
        let logs = tempfile::tempdir().expect("tempdir");
        let mut serve_env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        serve_env.extend_from_slice(extra);
        let serve = Serve { options, env: &serve_env, listen: "127.0.0.1:0", clock: clock.as_deref(), umask };
        let (child, addr, metrics_addr) =
            spawn_serve(&bins().hub, data.path(), &logs.path().join("hub.stderr"), &serve);
        let url = hub_url(&addr, options);
        Hub { data, addr, url, metrics_addr, logs, child, clock, umask, env, shared: None }
    }
}

/// Copies `from/log.key` to `to/log.key` with mode 0600.
fn copy_log_key(from: &Path, to: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    let target = to.join("log.key");
    std::fs::copy(from.join("log.key"), &target).expect("copy the log key");
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).expect("chmod 600 the log key");
}
