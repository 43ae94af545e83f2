//! Hubs on the back ends several instances share: PostgreSQL for the
//! metadata and an S3-compatible store for the ciphertexts, both real
//! servers started by the test (see `sealdrop-testservers`), and any
//! number of `sealdrop-hub serve` processes on them.

use std::path::{Path, PathBuf};

use sealdrop_testservers::{PgCluster, S3Server};

use crate::{Hub, OBJECT_STORE_PREFIX, Serve, TestClock, bins, hub_url, spawn_serve};

/// One hub's shared stores: a new database in this test binary's
/// PostgreSQL cluster and an S3-compatible server of its own.
#[derive(Debug)]
pub struct SharedStores {
    /// The database's URL (`postgres://postgres@127.0.0.1:PORT/NAME`).
    pub database: String,
    /// The object store; ciphertexts go under [`OBJECT_STORE_PREFIX`] in its bucket.
    pub s3: S3Server,
}

impl SharedStores {
    /// A new empty database and a new object store.
    pub fn start() -> Self {
        Self { database: PgCluster::shared().database(), s3: S3Server::start() }
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
}

impl Hub {
    /// Initialises a hub (the example authority and directory) on `stores`
    /// and serves it: the first instance. Its data directory holds only
    /// this instance's log key and spool.
    pub fn start_on_shared_stores(stores: &SharedStores, clock: Option<&TestClock>, options: &[&str]) -> Self {
        let data = tempfile::tempdir().expect("tempdir");
        Self::start_full(data, clock.map(TestClock::path), options, None, stores.env())
    }

    /// Another `serve` process of the same hub: a data directory of its own
    /// holding a copy of the log key (as an operator installs it), the same
    /// database, bucket, clock and environment, and `options`.
    pub fn another_instance(&self, options: &[&str]) -> Hub {
        Self::instance(self.data.path(), self.env.clone(), self.clock.clone(), self.umask, options)
    }

    /// A `serve` process of a hub already in `stores` (moved there by
    /// `sealdrop-hub migrate`), with a data directory of its own holding a
    /// copy of the log key in `log_key_dir` (the old data directory).
    pub fn serve_moved(log_key_dir: &Path, stores: &SharedStores, options: &[&str]) -> Hub {
        Self::instance(log_key_dir, stores.env(), None, None, options)
    }

    /// A `serve` process with a new data directory holding a copy of
    /// `log_key_dir`'s log key, its stores named by `env`.
    fn instance(
        log_key_dir: &Path,
        env: Vec<(String, String)>,
        clock: Option<PathBuf>,
        umask: Option<u32>,
        options: &[&str],
    ) -> Hub {
        let data = tempfile::tempdir().expect("tempdir");
        copy_log_key(log_key_dir, data.path());
        let logs = tempfile::tempdir().expect("tempdir");
        let serve_env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let serve = Serve { options, env: &serve_env, listen: "127.0.0.1:0", clock: clock.as_deref(), umask };
        let (child, addr, metrics_addr) =
            spawn_serve(&bins().hub, data.path(), &logs.path().join("hub.stderr"), &serve);
        let url = hub_url(&addr, options);
        Hub { data, addr, url, metrics_addr, logs, child, clock, umask, env }
    }
}

/// Copies `from/log.key` to `to/log.key` with mode 0600.
fn copy_log_key(from: &Path, to: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    let target = to.join("log.key");
    std::fs::copy(from.join("log.key"), &target).expect("copy the log key");
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).expect("chmod 600 the log key");
}
