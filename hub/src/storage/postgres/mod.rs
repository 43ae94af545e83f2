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
//! Connections are plain TCP (or a Unix socket): TLS to a managed database
//! is not built in yet, so `sslmode=require` in the URL fails to connect
//! rather than falling back.
//!
//! Each store trait is implemented in its own module (settings, nonces,
//! directory, drops, log, and the instances' [`coordination`]); this one
//! holds the pool.

mod coordination;
mod directory;
mod drops;
mod log;
mod nonces;
mod rows;
mod schema;
mod settings;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use deadpool_postgres::{Client, Manager, ManagerConfig, Pool, RecyclingMethod};

use super::meta::MetaError;
use crate::storage::convert::{parse, to_i64, to_u64};

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
}

impl std::fmt::Debug for PgMetaStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PgMetaStore")
    }
}

impl PgMetaStore {
    /// Connects to the database at `url` (`postgres://user@host:port/db`,
    /// or any form `tokio-postgres` accepts) and brings its schema up to
    /// date. Instances opening the same database together migrate it once.
    pub async fn connect(url: &str) -> Result<Self, MetaError> {
        let store = Self::pool(url)?;
        schema::migrate(&mut store.client().await?).await?;
        Ok(store)
    }

    /// Connects to the database at `url` changing nothing, for tools that
    /// only look (`check-config`, `verifier-key`): an error if its schema is
    /// not this hub's (none yet, or older or newer). Returns the store and
    /// the schema version.
    pub async fn connect_as_is(url: &str) -> Result<(Self, usize), MetaError> {
        let store = Self::pool(url)?;
        let version = schema::current_version(&store.client().await?).await?;
        Ok((store, version))
    }

    /// The pool of connections to `url`; nothing is connected yet.
    fn pool(url: &str) -> Result<Self, MetaError> {
        let config: tokio_postgres::Config =
            url.parse().map_err(|e| MetaError::PostgresConfig(format!("the database URL is not valid: {e}")))?;
        let manager = Manager::from_config(
            config.clone(),
            tokio_postgres::NoTls,
            // A connection returned to the pool is checked when taken again
            // only by its state, not a query: a broken one fails its next
            // statement, and the method's error says so.
            ManagerConfig { recycling_method: RecyclingMethod::Fast },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .build()
            .map_err(|e| MetaError::PostgresConfig(format!("cannot build the connection pool: {e}")))?;
        Ok(Self { pool, sessions: Arc::new(coordination::Sessions::new(config)) })
    }

    /// A connection of the pool: the store's methods take one each, and
    /// `migrate` one for its `COPY` (so it connects as the store does).
    pub(crate) async fn client(&self) -> Result<Client, MetaError> {
        Ok(self.pool.get().await?)
    }
}
