//! The hub's metadata stores ([`super::meta`]) on PostgreSQL, so several
//! hub instances can share one database: a pool of connections
//! (`deadpool-postgres` over `tokio-postgres`), the schema versioned in
//! `schema_version` ([`schema`]), and one transaction per state change with
//! its log append, as on SQLite.
//!
//! What SQLite gets from its one connection's mutex, PostgreSQL gets from
//! row locks: every append locks the one row of `log_head` for its
//! transaction (see [`log`]), so appends from every instance take turns and
//! each sees the previous one's checkpoint. An appending transaction
//! commits without waiting for its flush (so the head's lock is not held
//! through an fsync, which would allow one append per fsync for the whole
//! hub), then waits for the flush before the hub answers anyone
//! (`log::wait_durable`); PostgreSQL flushes once for every append waiting.
//!
//! ## TLS
//!
//! The URL's `sslmode` and `sslrootcert` mean what they mean to libpq
//! (`psql`, `pg_dump`), so one URL serves the hub and the backup tools:
//!
//! | `sslmode` | TLS | the database's certificate |
//! | --- | --- | --- |
//! | `disable` | never | - |
//! | `prefer` (no `sslmode`) | if the server offers it | not checked; with `sslrootcert`, signed by it |
//! | `require` | always | not checked; with `sslrootcert`, signed by it |
//! | `verify-ca` | always | signed by `sslrootcert` (required) |
//! | `verify-full` | always | signed by `sslrootcert`, and names the URL's host |
//!
//! On a Unix socket there is no TLS, whatever the `sslmode` (as in libpq).
//! `sslrootcert=/path/ca.pem` is a PEM file of CAs (a managed database's
//! bundle); `sslrootcert=system` is the CAs this machine trusts and, as in
//! libpq, needs `verify-full` (the default then). Unlike libpq the hub does
//! not look in `~/.postgresql/root.crt`: a service names its CA in its URL.
//! `prefer` and `require` without `sslrootcert` check no certificate
//! because libpq's do not: they keep listeners out, not an active attacker.
//!
//! A URL without `sslmode` is `prefer`, as for libpq, not `require`:
//! `require` adds nothing against an attacker who can intercept (it checks
//! no certificate either) and would refuse a database on the same host
//! without TLS, while a URL that is stricter for the hub than for `psql`
//! surprises operators. The check that counts, `verify-full`, cannot be the
//! default because most managed databases sign with a CA of their own that
//! only the operator can supply. Instead [`PgMetaStore::transport`] says
//! what the connection got, and a connection without a checked certificate
//! to another machine is logged as a warning.
//!
//! The URL is read in [`url`] (tokio-postgres refuses `verify-*` and
//! `sslrootcert`, so the hub takes them out), the verifiers are in [`tls`].
//! Each store trait is implemented in its own module (settings, nonces,
//! directory, drops, log, and the instances' [`coordination`]); this one
//! holds the pool.

mod coordination;
mod directory;
mod drops;
pub(crate) mod error_text;
mod log;
mod nonces;
mod rows;
mod schema;
mod settings;
#[cfg(test)]
mod tests;
mod tls;
mod url;

use std::sync::Arc;

use deadpool_postgres::{Client, Manager, ManagerConfig, Pool, RecyclingMethod};

use super::meta::MetaError;
use crate::storage::convert::{parse, to_i64, to_u64};

pub use url::redact_password;
use url::{DatabaseUrl, RootCerts, SslMode};

/// Connections one store (one hub instance) keeps at most: more than the
/// requests that write at once on a small machine, few enough that several
/// instances stay well inside PostgreSQL's default `max_connections` (100).
const POOL_SIZE: usize = 16;

/// The PostgreSQL metadata store. Cloning it shares the pool.
#[derive(Clone)]
pub struct PgMetaStore {
    /// The connections; each trait method takes one for its statements or
    /// its transaction.
    pool: Pool,
    /// The sessions that hold this instance's advisory locks (see
    /// [`coordination`]), apart from the pool so they live as long as
    /// the lock they hold.
    sessions: Arc<coordination::Sessions>,
    /// What the first connection got, for `check-config` and the tests.
    /// (Behind a pooler such as PgBouncer, what the pooler's link to
    /// PostgreSQL got.)
    transport: Transport,
}

/// How the store's connection to the database is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// No TLS: plain TCP or a Unix socket.
    Unencrypted,
    /// TLS, the certificate not checked (`prefer` or `require` without
    /// `sslrootcert`).
    TlsUnchecked,
    /// TLS, the certificate signed by a CA of `sslrootcert`, any name
    /// (`verify-ca`, or `prefer`/`require` with `sslrootcert`).
    TlsCaChecked,
    /// TLS, the certificate signed by a CA of `sslrootcert` and naming the
    /// host (`verify-full`).
    TlsFullyChecked,
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Unencrypted => "without TLS",
            Self::TlsUnchecked => "over TLS, the database's certificate not checked",
            Self::TlsCaChecked => "over TLS, the database's certificate signed by sslrootcert (its name not checked)",
            Self::TlsFullyChecked => "over TLS, the database's certificate checked (sslmode=verify-full)",
        })
    }
}

impl std::fmt::Debug for PgMetaStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PgMetaStore")
    }
}

impl PgMetaStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/db`,
    /// with libpq's `sslmode` and `sslrootcert`; see the module docs) and
    /// brings its schema up to date. Instances opening the same database
    /// together migrate it once. Errors are one line that says what to
    /// change and never shows the password.
    pub async fn connect(url: &str) -> Result<Self, MetaError> {
        let (store, mut client) = Self::open(url).await?;
        schema::migrate(&mut client).await?;
        Ok(store)
    }

    /// Connects to the database at `url` changing nothing, for tools that
    /// only look (`check-config`, `verifier-key`): an error if its schema is
    /// not this hub's (none yet, or older or newer). Returns the store and
    /// the schema version.
    pub async fn connect_as_is(url: &str) -> Result<(Self, usize), MetaError> {
        let (store, client) = Self::open(url).await?;
        let version = schema::current_version(&client).await?;
        Ok((store, version))
    }

    /// How the connection to the database is protected (what the first
    /// connection negotiated; the pool's others use the same settings).
    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// The pool of connections to `url` and its first connection, which
    /// tells what the connections get (logged; a warning if the database is
    /// on another machine and its certificate unchecked).
    async fn open(url: &str) -> Result<(Self, Client), MetaError> {
        let url = DatabaseUrl::parse(url).map_err(MetaError::PostgresConfig)?;
        let tls = tls::connector(&url.tls).map_err(MetaError::PostgresConfig)?;
        let manager = Manager::from_config(
            url.config.clone(),
            tls.clone(),
            // A connection returned to the pool is checked when taken again
            // only by its state, not a query: a broken one fails its next
            // statement, and the method's error says so.
            ManagerConfig { recycling_method: RecyclingMethod::Fast },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .build()
            .map_err(|e| MetaError::PostgresConfig(format!("cannot build the connection pool: {e}")))?;
        let client = pool.get().await.map_err(|e| MetaError::PostgresConfig(tls::explain(&e, &url.tls)))?;
        let encrypted: bool =
            client.query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[]).await?.get(0);
        let transport = match (encrypted, url.tls.mode, &url.tls.roots) {
            (false, ..) => Transport::Unencrypted,
            (true, SslMode::VerifyFull, _) => Transport::TlsFullyChecked,
            (true, _, RootCerts::Unset) => Transport::TlsUnchecked,
            (true, ..) => Transport::TlsCaChecked,
        };
        if matches!(transport, Transport::Unencrypted | Transport::TlsUnchecked) && !is_local(&url.config) {
            tracing::warn!(
                database = %url.shown,
                "connected to the database {transport}: add sslmode=verify-full&sslrootcert=/path/to/ca.pem to the URL"
            );
        } else {
            tracing::info!(database = %url.shown, "connected to the database {transport}");
        }
        let sessions = Arc::new(coordination::Sessions::new(url.config.clone(), tls));
        Ok((Self { pool, sessions, transport }, client))
    }

    /// A connection of the pool: the store's methods take one each, and
    /// `migrate` one for its `COPY` (so it connects as the store does).
    pub(crate) async fn client(&self) -> Result<Client, MetaError> {
        Ok(self.pool.get().await?)
    }
}

/// Checks a database URL as [`PgMetaStore::connect`] reads it, without
/// connecting or reading `sslrootcert`: for the settings, which are read
/// before anything connects. The error is one line and shows no password.
pub fn check_url(url: &str) -> Result<(), String> {
    DatabaseUrl::parse(url).map(drop)
}

/// Whether every host of the URL is this machine (a Unix socket, or a
/// loopback name or address), where a connection without a checked
/// certificate is no risk worth a warning.
fn is_local(config: &tokio_postgres::Config) -> bool {
    use tokio_postgres::config::Host;
    let local_addr = |addr: &std::net::IpAddr| addr.is_loopback();
    let hosts_local = config.get_hosts().iter().all(|host| match host {
        Host::Unix(_) => true,
        Host::Tcp(name) => name == "localhost" || name.parse().as_ref().is_ok_and(local_addr),
    });
    let addrs = config.get_hostaddrs();
    if addrs.is_empty() { hosts_local } else { addrs.iter().all(local_addr) }
}
