//! The hub's shared state: its identity (origin, authority key, log key), the
//! directory it currently enforces, its stores and its clock. Handlers get a
//! cheap clone of [`Hub`]; nothing in here knows about HTTP.

mod current_directory;
mod open;
#[cfg(test)]
/// Several instances on one PostgreSQL database and one bucket.
mod tests;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

use jiff::Timestamp;
use sealdrop_proto::clock::Clock;
use sealdrop_proto::directory::{DirectoryError, SignedDirectory};
use sealdrop_proto::ids::DropId;
use sealdrop_proto::keys::{NoteSigningKey, NoteVerifierKey};
use sealdrop_proto::request::MAX_CLOCK_SKEW_SECS;

use crate::client_addr::TrustedProxies;
use crate::error::HubError;
use crate::inbox_wait::InboxWaits;
use crate::locks::{DropGuard, DropLocks};
use crate::metrics::Metrics;
use crate::quota::{self, Quotas};
use crate::rate_limit::{Limiters, RateLimits};
use crate::sequencer::{Sequencer, Turn};
use crate::storage::meta::StoredDirectory;
use crate::storage::{
    BlobStore, Coordination, CosignatureStore, DirectoryStore, DropStore, LogStore, MetaError, NonceStore, Stores,
};
use crate::transfer_log;

pub use current_directory::DIRECTORY_CHECK_INTERVAL;
pub(crate) use open::block_on;
pub use open::{CleanupReport, Survey, read_log_verifier, survey};

pub use crate::storage::sqlite::DB_FILE;

/// The default largest upload: 64 GiB.
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 64 << 30;

/// How often, at most, the hub forgets expired request nonces (seconds).
const NONCE_PURGE_INTERVAL_SECS: i64 = 60;

/// How often, by default, the running hub looks for drops to delete.
pub const DEFAULT_SWEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

/// How long, by default, a request body may send nothing before the hub
/// gives up on it (see [`HubConfig::body_idle_timeout`]).
pub const DEFAULT_BODY_IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// The default, and the longest, [`HubConfig::upload_resume_window`]: a day.
pub const MAX_UPLOAD_RESUME_WINDOW: std::time::Duration = std::time::Duration::from_secs(86_400);

/// Who may read the transfer log and the directory (`log_access` in
/// `hub.toml`; enforced by [`crate::api::log_access`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogAccess {
    /// Members of the directory in force and the witnesses it lists, by
    /// signed request (the default).
    #[default]
    Members,
    /// Anyone, without a signature: a public transparency log.
    Public,
}

impl LogAccess {
    /// `members` or `public`, as in `hub.toml`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Members => "members",
            Self::Public => "public",
        }
    }
}

/// Limits an operator may tune.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HubConfig {
    /// The largest ciphertext the hub accepts for one drop, in bytes.
    pub max_upload_bytes: u64,
    /// The largest ciphertext the hub takes in one request
    /// (`PUT /v1/drops/{id}`, see [`crate::service::put`]): the request is
    /// read into memory, so this bounds what each one holds.
    pub max_single_request_bytes: u64,
    /// How often the running hub deletes the ciphertext of drops whose
    /// expiry passed or whose agreement ended (see [`crate::sweeper`]). A
    /// drop past its expiry can no longer be fetched whatever this is; it
    /// bounds how long its ciphertext stays on disk.
    pub sweep_interval: std::time::Duration,
    /// Requests allowed per source address and per party (see
    /// [`crate::rate_limit`]).
    pub rate_limits: RateLimits,
    /// How long a request body may send nothing before the hub stops
    /// waiting for it (see [`crate::api::idle_body`]): a client that stops
    /// half-way through an upload must not hold its connection, the drop's
    /// lock and an open file for ever. Per wait, not per request, so a slow
    /// but steady upload of any size completes.
    pub body_idle_timeout: std::time::Duration,
    /// How long the upload of a drop that is not committed (finished, or cut
    /// off and kept for the sender to continue) is kept after its last
    /// activity; the sweeper then removes it, and the drop stays open until
    /// its expiry (the sender uploads again). At most
    /// [`MAX_UPLOAD_RESUME_WINDOW`], so abandoned ciphertext does not wait
    /// on disk for the drop's whole expiry (five days by default).
    pub upload_resume_window: std::time::Duration,
    /// Who may read the transfer log and the directory (see
    /// [`crate::api::log_access`]).
    pub log_access: LogAccess,
    /// What one party may have the hub hold (see [`crate::quota`]).
    pub quotas: Quotas,
    /// How many inbox requests may wait for a drop at once (see
    /// [`crate::inbox_wait`]): each holds a connection, so this keeps
    /// long-polls from taking the connection cap. Beyond it a request
    /// answers at once.
    pub max_inbox_waiters: usize,
    /// How often a waiting inbox request reads its inbox again without a
    /// wake-up, for commits on other instances
    /// ([`crate::inbox_wait::RECHECK_INTERVAL`]). Not a `hub.toml` key:
    /// tests lengthen it to tell a wake-up from a reread.
    pub inbox_recheck_interval: std::time::Duration,
    /// How many bytes of one-request bodies (`PUT /v1/drops/{id}`) the hub
    /// holds in memory at once, across every connection. Each such body is
    /// read whole before it is checked, so without a budget the connection
    /// cap times `max_single_request_bytes` (half a gigabyte at the
    /// defaults) could be held by slow senders. Beyond it a drop is answered
    /// `too_large_for_one_request`, and the client sends it in three
    /// requests, which stream. Not a `hub.toml` key: lower
    /// `max_single_request_bytes` to hold less.
    pub one_request_memory: u64,
}

/// The default of [`HubConfig::one_request_memory`]: 16 MiB, so that with
/// everything else the hub stays within its memory targets.
pub const DEFAULT_ONE_REQUEST_MEMORY: u64 = 16 * 1024 * 1024;

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            max_upload_bytes: DEFAULT_MAX_UPLOAD_BYTES,
            max_single_request_bytes: sealdrop_proto::api::DEFAULT_MAX_SINGLE_REQUEST_BYTES,
            sweep_interval: DEFAULT_SWEEP_INTERVAL,
            rate_limits: RateLimits::default(),
            body_idle_timeout: DEFAULT_BODY_IDLE_TIMEOUT,
            upload_resume_window: MAX_UPLOAD_RESUME_WINDOW,
            log_access: LogAccess::Members,
            quotas: Quotas::default(),
            max_inbox_waiters: crate::inbox_wait::DEFAULT_MAX_INBOX_WAITERS,
            inbox_recheck_interval: crate::inbox_wait::RECHECK_INTERVAL,
            one_request_memory: DEFAULT_ONE_REQUEST_MEMORY,
        }
    }
}

/// A running hub's state. Cloning is cheap and shares everything.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
    config: HubConfig,
    /// The token buckets of [`HubConfig::rate_limits`], made again when
    /// the limits change (before serving).
    limiters: Arc<Limiters>,
    /// The reverse proxies whose `X-Forwarded-For` is believed.
    trusted_proxies: Arc<TrustedProxies>,
    /// What is left of [`HubConfig::one_request_memory`], in KiB, made
    /// again when the budget changes (before serving).
    one_request_memory: Arc<tokio::sync::Semaphore>,
}

/// The permits (KiB) of a one-request memory budget of `bytes`.
pub(crate) fn one_request_permits(bytes: u64) -> usize {
    usize::try_from(bytes.div_ceil(1024)).unwrap_or(usize::MAX).min(tokio::sync::Semaphore::MAX_PERMITS)
}

struct Inner {
    data_dir: PathBuf,
    origin: String,
    authority: NoteVerifierKey,
    sequencer: Sequencer,
    clock: Arc<dyn Clock>,
    /// One handle per storage area (see [`Stores`]).
    stores: Stores,
    directory: RwLock<Arc<SignedDirectory>>,
    /// When this instance last looked for a directory another instance
    /// accepted (see [`current_directory`]).
    directory_checks: current_directory::DirectoryChecks,
    /// Serialises directory publication so two uploads cannot both pass the
    /// rollback check against the same current serial.
    publish: tokio::sync::Mutex<()>,
    locks: DropLocks,
    last_nonce_purge: AtomicI64,
    /// Whether this instance led the periodic work at its last look (see
    /// [`crate::sweeper`]): the sweeper cleans up when it takes the lead.
    leading: AtomicBool,
    /// What operators scrape (see [`crate::metrics`]).
    metrics: Arc<Metrics>,
    /// Set once a shutdown has begun, so `/readyz` tells load balancers to
    /// stop sending new work while requests in flight finish.
    shutting_down: AtomicBool,
    /// Every party's uploads in flight (see [`crate::quota`]).
    quota_ledger: Arc<quota::Ledger>,
    /// The inbox requests waiting for a drop (see [`crate::inbox_wait`]).
    inbox_waits: Arc<InboxWaits>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("data_dir", &self.inner.data_dir)
            .field("origin", &self.inner.origin)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Why a published directory was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    #[error(transparent)]
    Meta(#[from] MetaError),
    #[error(transparent)]
    LogEntry(#[from] sealdrop_log::entry::EntryError),
}

/// `t` without its fraction of a second, so times round-trip exactly through
/// the database into manifests and log entries.
pub(crate) fn whole_seconds(t: Timestamp) -> Timestamp {
    sealdrop_proto::clock::whole_second(t)
}

/// A committed ciphertext as stored: see [`Hub::stored_ciphertexts`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCiphertext {
    /// The drop it belongs to.
    pub id: DropId,
    /// Its size in bytes.
    pub len: u64,
    /// Its first bytes (as many as asked for, at most `len`).
    pub head: Vec<u8>,
}

impl Hub {
    /// The same hub with other limits.
    pub fn with_config(mut self, config: HubConfig) -> Hub {
        if config.rate_limits != self.config.rate_limits {
            self.limiters = Arc::new(Limiters::new(config.rate_limits));
        }
        if config.one_request_memory != self.config.one_request_memory {
            self.one_request_memory =
                Arc::new(tokio::sync::Semaphore::new(one_request_permits(config.one_request_memory)));
        }
        self.config = config;
        self
    }

    /// The same hub holding at most `bytes` of one-request bodies at once.
    pub fn with_one_request_memory(self, bytes: u64) -> Hub {
        let config = HubConfig { one_request_memory: bytes, ..self.config };
        self.with_config(config)
    }

    /// Reserves `bytes` of the one-request memory budget for a body about to
    /// be read (a body larger than the whole budget takes all of it); `None`
    /// when the budget is taken by bodies being read now.
    pub(crate) fn hold_one_request_memory(&self, bytes: u64) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let total = one_request_permits(self.config.one_request_memory);
        let want = one_request_permits(bytes).clamp(1, total.max(1));
        let want = u32::try_from(want).unwrap_or(u32::MAX);
        Arc::clone(&self.one_request_memory).try_acquire_many_owned(want).ok()
    }

    /// The same hub with other rate limits.
    pub fn with_rate_limits(self, rate_limits: RateLimits) -> Hub {
        let config = HubConfig { rate_limits, ..self.config };
        self.with_config(config)
    }

    /// The hub's rate limiters.
    pub fn limiters(&self) -> &Limiters {
        &self.limiters
    }

    /// The same hub believing the `X-Forwarded-For` of these proxies (see
    /// [`crate::client_addr`]).
    pub fn with_trusted_proxies(mut self, proxies: TrustedProxies) -> Hub {
        self.trusted_proxies = Arc::new(proxies);
        self
    }

    /// The reverse proxies whose `X-Forwarded-For` is believed.
    pub fn trusted_proxies(&self) -> &TrustedProxies {
        &self.trusted_proxies
    }

    /// The same, shared (for the connection registry).
    pub fn trusted_proxies_handle(&self) -> Arc<TrustedProxies> {
        Arc::clone(&self.trusted_proxies)
    }

    /// The same hub with other per-party quotas.
    pub fn with_quotas(mut self, quotas: Quotas) -> Hub {
        self.config.quotas = quotas;
        self
    }

    /// Every party's uploads in flight.
    pub(crate) fn quota_ledger(&self) -> Arc<quota::Ledger> {
        Arc::clone(&self.inner.quota_ledger)
    }

    /// The same hub sweeping every `interval`.
    pub fn with_sweep_interval(mut self, interval: std::time::Duration) -> Hub {
        self.config.sweep_interval = interval;
        self
    }

    /// The same hub with another upload size limit.
    pub fn with_max_upload_bytes(mut self, bytes: u64) -> Hub {
        self.config.max_upload_bytes = bytes;
        self
    }

    /// The same hub taking ciphertexts of at most `bytes` in one request.
    pub fn with_max_single_request_bytes(mut self, bytes: u64) -> Hub {
        self.config.max_single_request_bytes = bytes;
        self
    }

    /// The same hub giving up on a request body after `timeout` without data.
    pub fn with_body_idle_timeout(mut self, timeout: std::time::Duration) -> Hub {
        self.config.body_idle_timeout = timeout;
        self
    }

    /// The same hub keeping an uncommitted upload for `window` after its
    /// last activity (at most [`MAX_UPLOAD_RESUME_WINDOW`]).
    pub fn with_upload_resume_window(mut self, window: std::time::Duration) -> Hub {
        self.config.upload_resume_window = window.min(MAX_UPLOAD_RESUME_WINDOW);
        self
    }

    /// The same hub serving its log and directory to `access`.
    pub fn with_log_access(mut self, access: LogAccess) -> Hub {
        self.config.log_access = access;
        self
    }

    /// The hub's limits.
    pub fn config(&self) -> HubConfig {
        self.config
    }

    /// The hub's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// The hub's metrics, shared (for bodies that outlive the handler).
    pub fn metrics_handle(&self) -> Arc<Metrics> {
        Arc::clone(&self.inner.metrics)
    }

    /// Marks the hub as shutting down: `/readyz` answers 503 from now on,
    /// and inbox requests waiting for a drop answer now (none waits from
    /// now on), so they do not hold up the drain.
    pub fn begin_shutdown(&self) {
        self.inner.shutting_down.store(true, Ordering::SeqCst);
        self.inner.inbox_waits.shut_down();
    }

    /// The inbox requests waiting for a drop.
    pub(crate) fn inbox_waits(&self) -> &Arc<InboxWaits> {
        &self.inner.inbox_waits
    }

    /// The same hub rereading a waiting inbox request's inbox every `interval`.
    pub fn with_inbox_recheck_interval(mut self, interval: std::time::Duration) -> Hub {
        self.config.inbox_recheck_interval = interval;
        self
    }

    /// The same hub letting at most `n` inbox requests wait at once.
    pub fn with_max_inbox_waiters(mut self, n: usize) -> Hub {
        self.config.max_inbox_waiters = n;
        self
    }

    /// Whether a shutdown has begun.
    pub fn is_shutting_down(&self) -> bool {
        self.inner.shutting_down.load(Ordering::SeqCst)
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.inner.data_dir
    }

    /// The hub's origin name.
    pub fn origin(&self) -> &str {
        &self.inner.origin
    }

    /// The authority key that signs directories.
    pub fn authority(&self) -> &NoteVerifierKey {
        &self.inner.authority
    }

    /// The public half of the log key, for the coordinator's directory listing.
    pub fn log_verifier(&self) -> NoteVerifierKey {
        self.inner.sequencer.verifier()
    }

    /// The log key, which signs checkpoints and the hub's statements.
    pub(crate) fn log_key(&self) -> &NoteSigningKey {
        self.inner.sequencer.key()
    }

    /// The directory the hub currently enforces.
    pub fn directory(&self) -> Arc<SignedDirectory> {
        Arc::clone(&self.inner.directory.read().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// Now, in whole seconds, so times round-trip exactly through the
    /// database into manifests.
    pub fn now(&self) -> Timestamp {
        whole_seconds(self.inner.clock.now())
    }

    /// A turn at the transfer log (see [`crate::sequencer`]): taken before
    /// reading the time that goes into new log entries and handed, as the
    /// append's `AppendTurn`, to the store call that appends (e.g.
    /// `DropStore::commit_drop`), which ends it once its transaction
    /// commits. Take a drop's lock, if any, before this, never after.
    /// Its time, [`Turn::now`], is the one the entries carry: the clock's,
    /// never before the log's last entry (another instance's clock may be
    /// ahead of this one's).
    pub(crate) async fn log_turn(&self) -> Result<Turn, MetaError> {
        self.inner.sequencer.turn(self.inner.stores.coordination.as_ref(), || self.now()).await
    }

    pub(crate) fn drops(&self) -> &dyn DropStore {
        self.inner.stores.drops.as_ref()
    }

    pub(crate) fn log(&self) -> &dyn LogStore {
        self.inner.stores.log.as_ref()
    }

    pub(crate) fn directories(&self) -> &dyn DirectoryStore {
        self.inner.stores.directories.as_ref()
    }

    pub(crate) fn cosignatures(&self) -> &dyn CosignatureStore {
        self.inner.stores.cosignatures.as_ref()
    }

    fn nonces(&self) -> &dyn NonceStore {
        self.inner.stores.nonces.as_ref()
    }

    pub(crate) fn blobs(&self) -> &dyn BlobStore {
        self.inner.stores.blobs.as_ref()
    }

    /// The store of small drops whole, where the back end has one.
    pub(crate) fn whole_drops(&self) -> Option<&dyn crate::storage::whole::WholeDropStore> {
        self.inner.stores.whole.as_deref()
    }

    /// Turns at the log and the lead of periodic work among the instances
    /// on this hub's stores.
    pub(crate) fn coordination(&self) -> &dyn Coordination {
        self.inner.stores.coordination.as_ref()
    }

    /// Whether this instance led the periodic work at its last look.
    pub(crate) fn leading(&self) -> &AtomicBool {
        &self.inner.leading
    }

    pub(crate) fn locks(&self) -> &DropLocks {
        &self.inner.locks
    }

    /// Takes drop `id`'s lock, on this instance and among the instances
    /// sharing the stores (see [`crate::locks`]).
    pub(crate) async fn lock_drop(&self, id: &DropId) -> Result<DropGuard, MetaError> {
        self.inner.locks.lock(id, self.coordination()).await
    }

    /// The committed ciphertexts this hub stores, each with its size and up
    /// to `head` of its first bytes: what an operator (or the demo) can see
    /// of the store without knowing where each one lives (small ones are
    /// rows of the database, larger ones files). Blocking.
    pub fn stored_ciphertexts(&self, head: usize) -> Result<Vec<StoredCiphertext>, HubError> {
        let hub = self.clone();
        block_on(|| async move {
            let mut out = Vec::new();
            for id in hub.blobs().list_blobs().await? {
                let Some(mut blob) = hub.blobs().open_blob(&id).await? else { continue };
                let mut first = Vec::with_capacity(head.min(64 * 1024));
                tokio::io::AsyncReadExt::read_to_end(
                    &mut tokio::io::AsyncReadExt::take(&mut blob.reader, head as u64),
                    &mut first,
                )
                .await
                .map_err(|e| HubError::io("read the ciphertext of", format!("drop {id}"), e))?;
                out.push(StoredCiphertext { id, len: blob.len, head: first });
            }
            Ok(out)
        })
    }

    /// Verifies a directory against the authority key, refuses one that is
    /// not newer than the current one, stores it with its transfer-log entry
    /// and starts enforcing it.
    pub async fn publish_directory(&self, note: &str) -> Result<Arc<SignedDirectory>, PublishError> {
        let _serial = self.inner.publish.lock().await;
        if self.coordination().shared() {
            // Checked against the newest directory of any instance, not a stale one.
            self.adopt_stored_directory().await?;
        }
        let (current, authority, note) = (self.directory(), self.inner.authority.clone(), note.to_owned());
        // Parsing and verifying a note of up to 2 MiB is work for the blocking pool.
        let next = tokio::task::spawn_blocking(move || {
            SignedDirectory::verify_successor(&note, &authority, &current.directory)
        })
        .await
        .map_err(MetaError::from)??;
        let turn = self.log_turn().await?;
        self.refuse_stored_rollback(next.directory.serial).await?;
        let now = turn.now();
        let entry = transfer_log::directory_entry(self.log_key(), now, &next)?;
        let stored = StoredDirectory {
            serial: next.directory.serial,
            note: next.note.clone(),
            sha256: next.sha256_hex(),
            accepted_at: now.as_second(),
        };
        let log_index = self.directories().insert_directory(&stored, &entry, Box::new(turn)).await?;
        tracing::debug!(log_index, serial = stored.serial, "logged the directory");
        let next = Arc::new(next);
        *self.inner.directory.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::clone(&next);
        Ok(next)
    }

    /// Records a request nonce, first forgetting nonces too old to be
    /// replayed (at most once a minute). Returns `false` for a replay.
    pub(crate) async fn consume_nonce(&self, key: &str, nonce: &str) -> Result<bool, MetaError> {
        let now = self.now().as_second();
        let last = self.inner.last_nonce_purge.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= NONCE_PURGE_INTERVAL_SECS
            && self.inner.last_nonce_purge.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
            // Periodic work, so the leading instance's; a replay on another
            // instance is refused all the same (the nonces are shared).
            && self.inner.stores.coordination.lead().await?
        {
            // A replay must carry its original signed time, which the skew
            // check keeps within MAX_CLOCK_SKEW_SECS of now, and the original
            // was seen within the skew of that time: older nonces are safe to forget.
            let purged = self.nonces().purge_nonces(now - 2 * MAX_CLOCK_SKEW_SECS).await?;
            tracing::debug!(purged, "forgot old request nonces");
        }
        self.nonces().insert_nonce(key, nonce, now).await
    }
}
