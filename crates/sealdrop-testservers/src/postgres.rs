//! [`PgCluster`]: a real PostgreSQL 15 cluster from Debian's packages,
//! created by `initdb` in a temporary folder and started by `pg_ctl` on a
//! free loopback port; never the system's service.
//!
//! Starting a cluster takes a second or two, so a test binary shares one
//! ([`PgCluster::shared`]) and gives each test its own database
//! ([`PgCluster::database`]). A static is never dropped, so every cluster
//! also has a watchdog: a small shell process that waits for the test
//! process to end (however it ends, even `kill -9`) and then stops the
//! cluster and removes its folder. Dropping a cluster stops it at once.
//!
//! [`PgCluster::start_tls`] starts one the way managed databases run: TLS
//! on, with a certificate from a CA made for it, and plain TCP refused by
//! `pg_hba.conf`, so a client that does not speak TLS cannot get in.

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// Where Debian's `postgresql-15` package puts the server programs.
pub const PG_BIN: &str = "/usr/lib/postgresql/15/bin";
/// Names another folder of PostgreSQL programs (`initdb`, `pg_ctl`, `createdb`).
pub const PG_BIN_ENV: &str = "SEALDROP_PG_BIN";
/// How PostgreSQL is installed (CI's `.ci/run` does it).
pub const PG_INSTALL: &str = "apt-get install postgresql";
/// The operating-system user PostgreSQL runs as when the tests run as root
/// (PostgreSQL refuses to run as root); the package creates it.
const PG_OS_USER: &str = "postgres";
/// The cluster's superuser, whatever user runs the tests.
const SUPERUSER: &str = "postgres";
/// How often the watchdog looks whether the test process still runs.
const WATCHDOG_POLL: &str = "0.5";
/// The names a TLS cluster's certificate is valid for.
pub const SERVER_NAMES: [&str; 2] = ["localhost", "127.0.0.1"];
/// A TLS cluster's certificate and key, in its data directory.
const SERVER_CERT: &str = "server.crt";
const SERVER_KEY: &str = "server.key";

/// A PostgreSQL cluster on `127.0.0.1` that trusts every local connection.
/// Dropping it stops the server (`pg_ctl stop -m immediate`) and removes its
/// folder.
#[derive(Debug)]
pub struct PgCluster {
    /// The folder of the programs it was started with, for `createdb` and `pg_ctl stop`.
    bin: PathBuf,
    /// Holds the data directory, the server's log and its socket; removed on drop.
    root: tempfile::TempDir,
    /// The TCP port it listens on.
    port: u16,
    /// Whether its programs run as [`PG_OS_USER`] (the tests run as root).
    as_postgres_user: bool,
    /// Stops the cluster if this process ends without dropping it (see the
    /// module docs); a drop stops the cluster itself and ends the watchdog.
    watchdog: Option<Child>,
    /// The CA that signed the server's certificate (PEM), for clients to
    /// verify it, when the cluster was started with TLS.
    ca_certificate: Option<PathBuf>,
}

impl PgCluster {
    /// The cluster shared by every test of this test binary, started by the
    /// first caller; its watchdog stops it when the binary exits.
    pub fn shared() -> &'static Self {
        static SHARED: OnceLock<PgCluster> = OnceLock::new();
        SHARED.get_or_init(Self::start)
    }

    /// The TLS-only cluster ([`Self::start_tls`]) shared by every test of
    /// this test binary, started by the first caller.
    pub fn shared_tls() -> &'static Self {
        static SHARED_TLS: OnceLock<PgCluster> = OnceLock::new();
        SHARED_TLS.get_or_init(Self::start_tls)
    }

    /// Starts a new cluster. Panics with a one-line message if PostgreSQL is
    /// not installed or does not start.
    pub fn start() -> Self {
        Self::start_with(false)
    }

    /// Starts a new cluster that accepts TCP connections over TLS only
    /// (`hostssl` in `pg_hba.conf`, plain TCP rejected by `hostnossl`). Its
    /// certificate is signed by a CA made for this cluster
    /// ([`Self::ca_certificate`]) and names `localhost` and `127.0.0.1`.
    pub fn start_tls() -> Self {
        Self::start_with(true)
    }

    fn start_with(tls: bool) -> Self {
        let bin =
            std::env::var_os(PG_BIN_ENV).filter(|p| !p.is_empty()).map_or_else(|| PathBuf::from(PG_BIN), PathBuf::from);
        if !bin.join("initdb").is_file() || !bin.join("pg_ctl").is_file() {
            panic!(
                "PostgreSQL 15 (initdb, pg_ctl) is not installed in {}: run `{PG_INSTALL}` or set {PG_BIN_ENV} to its bin folder",
                bin.display()
            );
        }
        let as_postgres_user = running_as_root();
        let root = tempfile::Builder::new().prefix("sealdrop-pg-").tempdir().expect("create the cluster's folder");
        if as_postgres_user {
            // Everything the server writes lives under this folder.
            run(Command::new("chown").args([&format!("{PG_OS_USER}:"), "-R"]).arg(root.path()), "chown");
        }
        let port = free_port();
        let mut cluster = Self { bin, root, port, as_postgres_user, watchdog: None, ca_certificate: None };
        let data = cluster.data_dir();
        cluster.run_pg("initdb", |c| {
            c.args(["-A", "trust", "-U", SUPERUSER, "--no-sync", "-E", "UTF8", "--locale", "C", "-D"]).arg(&data);
        });
        // The socket goes in the cluster's own folder (the system's belongs
        // to the packaged service). fsync is off: a test cluster never needs
        // to survive a power cut, and the shared machine's disk is slow.
        let mut options = format!(
            "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c fsync=off -c max_connections=200",
            cluster.root.path().display()
        );
        if tls {
            cluster.ca_certificate = Some(cluster.set_up_tls());
            options.push_str(&format!(" -c ssl=on -c ssl_cert_file={SERVER_CERT} -c ssl_key_file={SERVER_KEY}"));
        }
        let log = cluster.root.path().join("server.log");
        let started = cluster.try_pg("pg_ctl", |c| {
            c.args(["start", "-w", "-t", "60", "-D"]).arg(&data).arg("-l").arg(&log).args(["-o", &options]);
        });
        if !started.status.success() {
            let server_log = std::fs::read_to_string(&log).unwrap_or_default();
            panic!(
                "PostgreSQL did not start on port {port}: {}\n{server_log}",
                String::from_utf8_lossy(&started.stderr).trim()
            );
        }
        cluster.watchdog = Some(cluster.spawn_watchdog());
        cluster
    }

    /// Creates a new, empty database with a name no other call used and
    /// returns its URL, `postgres://postgres@127.0.0.1:PORT/NAME`.
    pub fn database(&self) -> String {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = format!("sealdrop_test_{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let port = self.port.to_string();
        self.run_pg("createdb", |c| {
            c.args(["-h", "127.0.0.1", "-p", &port, "-U", SUPERUSER, &name]);
        });
        format!("postgres://{SUPERUSER}@127.0.0.1:{port}/{name}")
    }

    /// Creates a login role with `password` (URL-safe characters) and a new
    /// database it owns, and returns the URL,
    /// `postgres://ROLE:PASSWORD@127.0.0.1:PORT/NAME`. On a TLS cluster the
    /// role must sign in with SCRAM-SHA-256; a plain cluster trusts it.
    pub fn database_with_password(&self, password: &str) -> String {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let role = format!("sealdrop_role_{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let port = self.port.to_string();
        let sql = format!("CREATE ROLE {role} LOGIN PASSWORD '{}'", password.replace('\'', "''"));
        self.run_pg("psql", |c| {
            c.args([
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                SUPERUSER,
                "-d",
                "postgres",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                &sql,
            ]);
        });
        self.run_pg("createdb", |c| {
            c.args(["-h", "127.0.0.1", "-p", &port, "-U", SUPERUSER, "-O", &role, &role]);
        });
        format!("postgres://{role}:{password}@127.0.0.1:{port}/{role}")
    }

    /// The TCP port the cluster listens on (on `127.0.0.1`).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The CA certificate (PEM file) that signed the server's certificate,
    /// if the cluster was started by [`Self::start_tls`].
    pub fn ca_certificate(&self) -> Option<&Path> {
        self.ca_certificate.as_deref()
    }

    /// Writes the server's certificate and key into the data directory and
    /// a `pg_hba.conf` that lets TCP clients in over TLS only; returns the
    /// path of the CA's certificate.
    fn set_up_tls(&self) -> PathBuf {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name.push(DnType::CommonName, "sealdrop test PostgreSQL CA");
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = rcgen::CertifiedIssuer::self_signed(ca, KeyPair::generate().expect("CA key")).expect("CA cert");
        let server_key = KeyPair::generate().expect("server key");
        let mut server = CertificateParams::new(SERVER_NAMES.map(str::to_owned).to_vec()).expect("server params");
        server.distinguished_name.push(DnType::CommonName, "sealdrop test PostgreSQL");
        let server = server.signed_by(&server_key, &ca).expect("server cert");

        let data = self.data_dir();
        // The superuser is trusted (the tests' own createdb); every other
        // role signs in with its password, as on a managed database.
        let hba = "local all all trust\n\
                   hostssl all postgres 127.0.0.1/32 trust\n\
                   hostssl all all 127.0.0.1/32 scram-sha-256\n\
                   hostnossl all all 127.0.0.1/32 reject\n";
        for (name, contents) in
            [(SERVER_CERT, server.pem()), (SERVER_KEY, server_key.serialize_pem()), ("pg_hba.conf", hba.to_owned())]
        {
            let path = data.join(name);
            std::fs::write(&path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
            // PostgreSQL refuses a key that others can read.
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
                .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
            if self.as_postgres_user {
                run(Command::new("chown").arg(format!("{PG_OS_USER}:")).arg(&path), "chown");
            }
        }
        let ca_path = self.root.path().join("ca.pem");
        std::fs::write(&ca_path, ca.pem()).unwrap_or_else(|e| panic!("write {}: {e}", ca_path.display()));
        ca_path
    }

    fn data_dir(&self) -> PathBuf {
        self.root.path().join("data")
    }

    /// Runs one of PostgreSQL's programs (as [`PG_OS_USER`] when root) and
    /// panics with its error output if it fails.
    fn run_pg(&self, program: &str, args: impl FnOnce(&mut Command)) {
        let out = self.try_pg(program, args);
        if !out.status.success() {
            panic!("{program} failed: {}", String::from_utf8_lossy(&out.stderr).trim());
        }
    }

    fn try_pg(&self, program: &str, args: impl FnOnce(&mut Command)) -> Output {
        let mut command = self.pg_command(program);
        args(&mut command);
        command.stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("cannot run {program}: {e}"))
    }

    fn pg_command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        let mut command = if self.as_postgres_user {
            let mut c = Command::new("runuser");
            c.args(["-u", PG_OS_USER, "--"]).arg(path);
            c
        } else {
            Command::new(path)
        };
        // The data directory's parent is root's; PostgreSQL's programs
        // expect to be able to stat their working directory.
        command.current_dir(self.root.path());
        command
    }

    /// Starts the process that stops the cluster and removes its folder once
    /// this test process has ended, whether or not anything drops it.
    fn spawn_watchdog(&self) -> Child {
        let stop =
            format!("{} stop -m immediate -D {}", shell_quote(&self.bin.join("pg_ctl")), shell_quote(&self.data_dir()));
        let stop = if self.as_postgres_user { format!("runuser -u {PG_OS_USER} -- {stop}") } else { stop };
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep {WATCHDOG_POLL}; done; {stop} >/dev/null 2>&1; rm -rf {root}",
            pid = std::process::id(),
            root = shell_quote(self.root.path()),
        );
        // Its own process group, so a terminal's ^C reaches the tests first
        // and the watchdog outlives them.
        use std::os::unix::process::CommandExt as _;
        Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start the cluster's watchdog")
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
        let data = self.data_dir();
        let _ = self.try_pg("pg_ctl", |c| {
            c.args(["stop", "-m", "immediate", "-D"]).arg(&data);
        });
    }
}

/// Whether this process runs as root (then PostgreSQL's programs must not).
fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false)
}

/// A TCP port free on loopback now (the server binds it moments later).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    listener.local_addr().expect("a bound socket's address").port()
}

fn run(command: &mut Command, what: &str) {
    let out = command.output().unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    if !out.status.success() {
        panic!("{what} failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
}

fn shell_quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_serves_fresh_databases_until_dropped() {
        let cluster = PgCluster::start();
        let (a, b) = (cluster.database(), cluster.database());
        assert_ne!(a, b, "each call makes its own database");
        let port = cluster.port();
        assert!(a.starts_with(&format!("postgres://postgres@127.0.0.1:{port}/")), "{a}");
        let psql = |url: &str| {
            cluster.try_pg("psql", |c| {
                c.args([url, "-At", "-c", "SELECT current_database()"]);
            })
        };
        let out = psql(&a);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), a.rsplit('/').next().unwrap());
        let root = cluster.root.path().to_owned();
        drop(cluster);
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err(), "the server still listens on {port}");
        assert!(!root.exists(), "the cluster's folder was removed");
    }

    /// libpq (psql) gets in over TLS with the certificate verified against
    /// the cluster's CA and its name, and is turned away without TLS.
    #[test]
    fn a_tls_cluster_verifies_to_its_ca_and_refuses_plain_tcp() {
        let cluster = PgCluster::shared_tls();
        let url = cluster.database();
        let ca = cluster.ca_certificate().expect("a TLS cluster has a CA");
        let psql = |query: &str| {
            cluster.try_pg("psql", |c| {
                c.arg(format!("{url}?{query}")).args([
                    "-At",
                    "-c",
                    "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                ]);
            })
        };
        let verified = psql(&format!("sslmode=verify-full&sslrootcert={}", ca.display()));
        assert!(verified.status.success(), "{}", String::from_utf8_lossy(&verified.stderr));
        assert_eq!(String::from_utf8_lossy(&verified.stdout).trim(), "t", "the session is encrypted");
        let plain = psql("sslmode=disable");
        assert!(!plain.status.success(), "plain TCP was let in");
        let refusal = String::from_utf8_lossy(&plain.stderr);
        assert!(refusal.contains("rejects connection") && refusal.contains("no encryption"), "{refusal}");

        // A role of its own signs in with its password, and only with it.
        let own = cluster.database_with_password("pw-of-the-role");
        let as_role = |url: &str| {
            cluster.try_pg("psql", |c| {
                c.arg(format!("{url}?sslmode=verify-full&sslrootcert={}", ca.display())).args([
                    "-At",
                    "-c",
                    "SELECT current_user = current_database()",
                ]);
            })
        };
        let signed_in = as_role(&own);
        assert!(signed_in.status.success(), "{}", String::from_utf8_lossy(&signed_in.stderr));
        assert_eq!(String::from_utf8_lossy(&signed_in.stdout).trim(), "t", "the role owns its database");
        let wrong = as_role(&own.replace("pw-of-the-role", "another-pw"));
        assert!(!wrong.status.success(), "a wrong password was let in");
        assert!(String::from_utf8_lossy(&wrong.stderr).contains("password authentication failed"));
        assert!(PgCluster::shared().ca_certificate().is_none(), "a plain cluster has no CA");
    }

    #[test]
    fn the_shared_cluster_is_started_once() {
        assert_eq!(PgCluster::shared().port(), PgCluster::shared().port());
        assert!(std::net::TcpStream::connect(("127.0.0.1", PgCluster::shared().port())).is_ok());
    }
}
