//! Opening a hub's data directory: reading its identity from the stores,
//! checking the stored directory and transfer log, and making the files
//! agree with the database after a crash. Opening is synchronous (the
//! binary, backups and tests call it before or outside any runtime), so
//! the async store calls it makes run on a short-lived runtime of their own
//! ([`block_on`]).

use std::future::Future;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64};
use std::sync::{Arc, RwLock};

use sealdrop_proto::api::DropState;
use sealdrop_proto::clock::Clock;
use sealdrop_proto::directory::SignedDirectory;
use sealdrop_proto::keys::NoteVerifierKey;

use super::{DB_FILE, Hub, HubConfig, Inner, whole_seconds};
use crate::client_addr::TrustedProxies;
use crate::error::HubError;
use crate::inbox_wait::InboxWaits;
use crate::locks::DropLocks;
use crate::metrics::Metrics;
use crate::rate_limit::Limiters;
use crate::sequencer::Sequencer;
use crate::storage::meta::setting;
use crate::storage::postgres::PgMetaStore;
use crate::storage::{Backends, DatabaseLocation, SettingsStore, SqliteMetaStore, Stores};
use crate::{log_key, transfer_log};

/// What start-up cleanup removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CleanupReport {
    /// Upload files of drops that are no longer open, unknown, or never finished.
    pub uploads_removed: usize,
    /// Blob files of drops that are not committed (delivered, unknown, or a
    /// crash between promotion and the database commit).
    pub blobs_removed: usize,
}

/// The verifier key of the log of an initialised hub, without opening the
/// hub (no checks, no cleanup, no change to its stores): what the
/// coordinator lists in the directory's `hub` field and auditors use to
/// verify checkpoints. The key file is the instance's (`data_dir`), its
/// origin comes from the database.
pub fn read_log_verifier(data_dir: &Path, backends: &Backends) -> Result<NoteVerifierKey, HubError> {
    Ok(survey(data_dir, backends)?.log_verifier)
}

/// What [`survey`] found.
#[derive(Debug, Clone)]
pub struct Survey {
    /// The verifier key of the hub's log.
    pub log_verifier: NoteVerifierKey,
    /// What the database is, e.g. `PostgreSQL at postgres://hub@db/hub (schema version 1)`.
    pub database: String,
    /// Where the hub keeps its ciphertexts, as recorded when it last opened
    /// (`None`: not recorded yet).
    pub blobs: Option<String>,
}

/// Reads an initialised hub's origin from its database and its log key
/// from `data_dir`, changing nothing (`check-config`, `verifier-key`).
pub fn survey(data_dir: &Path, backends: &Backends) -> Result<Survey, HubError> {
    let (origin, blobs, database) = block_on(|| async {
        let (settings, database) = look_at_database(data_dir, &backends.database).await?;
        Ok((settings.setting(setting::ORIGIN).await?, settings.setting(setting::BLOBS).await?, database))
    })?;
    let origin = origin.ok_or_else(|| match &backends.database {
        DatabaseLocation::Sqlite => HubError::Corrupt("the origin setting is missing".into()),
        DatabaseLocation::Postgres(url) => HubError::DatabaseHoldsNoHub(url.to_string()),
    })?;
    let log_verifier = log_key::load(&data_dir.join(log_key::LOG_KEY_FILE), &origin)?.verifier();
    Ok(Survey { log_verifier, database, blobs })
}

/// The settings of an initialised hub's database, opened changing nothing,
/// and a phrase saying what the database is (for `check-config`).
pub(crate) async fn look_at_database(
    data_dir: &Path,
    database: &DatabaseLocation,
) -> Result<(Arc<dyn SettingsStore>, String), HubError> {
    match database {
        DatabaseLocation::Sqlite => {
            let db = data_dir.join(DB_FILE);
            if !db.is_file() {
                return Err(HubError::NotInitialised(data_dir.to_owned()));
            }
            Ok((Arc::new(SqliteMetaStore::open(&db)?), format!("the SQLite file {}", db.display())))
        }
        DatabaseLocation::Postgres(url) => {
            let (store, version) = PgMetaStore::connect_as_is(url.connect_string())
                .await
                .map_err(|source| HubError::Database { database: url.to_string(), source })?;
            let transport = store.transport();
            Ok((Arc::new(store), format!("PostgreSQL at {url} (schema version {version}), connected {transport}")))
        }
    }
}

/// Runs `work` to completion from synchronous code, on a short-lived
/// runtime in its own thread (so it works whether or not the caller is
/// itself inside a Tokio runtime): opening a hub, initialising one, and the
/// blocking helpers of the binary's subcommands.
pub(crate) fn block_on<T, F>(work: impl FnOnce() -> F + Send) -> Result<T, HubError>
where
    T: Send,
    F: Future<Output = Result<T, HubError>>,
{
    let joined = std::thread::scope(|s| {
        s.spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| HubError::Internal(format!("cannot start a runtime for the stores: {e}")))?;
            runtime.block_on(work())
        })
        .join()
    });
    match joined {
        Ok(result) => result,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

impl Hub {
    /// Opens an initialised data directory (making its files private, see
    /// [`crate::private_files`]) on the embedded stores (SQLite, and files
    /// for larger ciphertexts: [`Stores::sqlite`]), checks the stored
    /// directory against the authority key and the log key's permissions,
    /// checks the transfer log (see [`transfer_log::check_on_open`]: a log
    /// whose history changed is refused), and removes files left behind by
    /// a crash.
    pub fn open(data_dir: &Path, clock: Arc<dyn Clock>) -> Result<Hub, HubError> {
        Self::open_on(data_dir, clock, &Backends::default())
    }

    /// [`Hub::open`] on the stores `backends` names, from synchronous code
    /// (tests, tools). A server opens with [`Hub::open_with`] on its own
    /// runtime instead, since a database pool belongs to the runtime that
    /// opened it.
    pub fn open_on(data_dir: &Path, clock: Arc<dyn Clock>, backends: &Backends) -> Result<Hub, HubError> {
        block_on(|| Self::open_with(data_dir, clock, backends))
    }

    /// [`Hub::open`] on the stores `backends` names: the metadata in the
    /// SQLite file in `data_dir` or in PostgreSQL (which migrates its schema
    /// first), the larger ciphertexts in files or an object store (small
    /// ones stay in SQLite, see [`Stores::sqlite_with`]; PostgreSQL holds
    /// none, see [`Stores::postgres`]). `data_dir` is this instance's:
    /// the log key, and with a shared database nothing else that matters.
    ///
    /// The ciphertexts' location is recorded in the database
    /// ([`setting::BLOBS`]) the first time the hub works on it, and opening
    /// with another one is refused: the ciphertexts the hub holds would be
    /// missing. Tools working on the data directory alone (`backup`) read it.
    pub async fn open_with(data_dir: &Path, clock: Arc<dyn Clock>, backends: &Backends) -> Result<Hub, HubError> {
        let stores = match &backends.database {
            DatabaseLocation::Sqlite => {
                let db = data_dir.join(DB_FILE);
                if !db.is_file() {
                    return Err(HubError::NotInitialised(data_dir.to_owned()));
                }
                // Before the database opens its -wal and -shm files (they take its mode).
                crate::private_files::tighten(data_dir)?;
                Stores::sqlite_with(SqliteMetaStore::open(&db)?, data_dir, &backends.blobs)?
            }
            DatabaseLocation::Postgres(url) => {
                if !data_dir.join(log_key::LOG_KEY_FILE).is_file() {
                    return Err(HubError::NotInitialised(data_dir.to_owned()));
                }
                crate::private_files::tighten(data_dir)?;
                let store = PgMetaStore::connect(url.connect_string())
                    .await
                    .map_err(|source| HubError::Database { database: url.to_string(), source })?;
                if store.setting(setting::ORIGIN).await?.is_none() {
                    return Err(HubError::DatabaseHoldsNoHub(url.to_string()));
                }
                Stores::postgres(store, data_dir, &backends.blobs)?
            }
        };
        let settings = stores.settings.clone();
        let given = backends.blobs.to_string();
        if let Some(recorded) = settings.setting(setting::BLOBS).await?
            && recorded != given
        {
            return Err(HubError::BlobsElsewhere { recorded, given });
        }
        let hub = Hub::start(data_dir, stores, clock).await?;
        // Once the hub works on the location, not when a wrong one fails to open.
        settings.set_setting(setting::BLOBS, &given).await?;
        Ok(hub)
    }

    /// [`Hub::open`] on `stores`, whatever their back ends.
    pub(crate) async fn start(data_dir: &Path, stores: Stores, clock: Arc<dyn Clock>) -> Result<Hub, HubError> {
        let settings = stores.settings.as_ref();
        let origin = settings
            .setting(setting::ORIGIN)
            .await?
            .ok_or_else(|| HubError::Corrupt("the origin setting is missing".into()))?;
        let authority: NoteVerifierKey = settings
            .setting(setting::AUTHORITY)
            .await?
            .ok_or_else(|| HubError::Corrupt("the authority setting is missing".into()))?
            .parse()
            .map_err(|e| HubError::Corrupt(format!("the stored authority key: {e}")))?;
        let stored = stores
            .directories
            .current_directory()
            .await?
            .ok_or_else(|| HubError::Corrupt("no directory has been stored".into()))?;
        let directory = SignedDirectory::verify(&stored.note, &authority).map_err(|e| {
            HubError::Corrupt(format!("the stored directory serial {} does not verify: {e}", stored.serial))
        })?;
        let log_key = log_key::load(&data_dir.join(log_key::LOG_KEY_FILE), &origin)?;
        let now = whole_seconds(clock.now());
        let log_size = transfer_log::check_on_open(stores.log.as_ref(), settings, &log_key, &directory, now).await?;
        let metrics = Arc::new(Metrics::new());
        let hub = Hub {
            inner: Arc::new(Inner {
                data_dir: data_dir.to_owned(),
                origin,
                authority,
                sequencer: Sequencer::new(log_key),
                clock,
                stores,
                directory: RwLock::new(Arc::new(directory)),
                directory_checks: Default::default(),
                publish: tokio::sync::Mutex::new(()),
                locks: DropLocks::default(),
                last_nonce_purge: AtomicI64::new(i64::MIN),
                leading: AtomicBool::new(false),
                metrics: Arc::clone(&metrics),
                shutting_down: AtomicBool::new(false),
                quota_ledger: Arc::default(),
                inbox_waits: Arc::new(InboxWaits::new(metrics)),
            }),
            config: HubConfig::default(),
            limiters: Arc::new(Limiters::new(HubConfig::default().rate_limits)),
            trusted_proxies: Arc::new(TrustedProxies::none()),
            one_request_memory: Arc::new(tokio::sync::Semaphore::new(crate::hub::one_request_permits(
                HubConfig::default().one_request_memory,
            ))),
        };
        // Clean up after a crash and catch up on what expired while the hub
        // was down, before serving, unless another instance leads that work.
        let (report, swept) = hub.periodic_work().await?.unwrap_or_default();
        tracing::info!(
            uploads_removed = report.uploads_removed,
            blobs_removed = report.blobs_removed,
            expired_at_start = swept.expired + swept.agreement_ended,
            directory_serial = hub.directory().directory.serial,
            log_size,
            "opened hub data directory"
        );
        Ok(hub)
    }

    /// Makes the files agree with the database after a crash: an upload is
    /// kept only for an open drop (finished, or cut off and to be continued),
    /// a blob only for a committed drop. A crash between promoting a blob and committing
    /// the database therefore leaves the drop open and invisible (the sender
    /// uploads again), never half-visible.
    ///
    /// Safe while other instances serve the same stores (it runs when an
    /// instance takes the lead of the periodic work, see [`crate::sweeper`]):
    /// an upload is removed only when its drop is no longer open (committed
    /// drops' uploads were promoted, ended and unknown drops take no more
    /// uploads), and a blob only when its drop is not open and not
    /// committed (ended or unknown drops are never committed again). What
    /// would not be safe, a blob of an open drop, is kept on shared stores.
    pub async fn clean_up(&self) -> Result<CleanupReport, HubError> {
        let drops = self.drops();
        let blobs = self.blobs();
        let mut report = CleanupReport::default();
        for id in blobs.list_uploads().await? {
            let record = drops.drop_record(&id).await?;
            // An open drop keeps its upload, finished or cut off: the sender
            // may commit it or continue it (the sweeper removes it at expiry).
            let keep = record.is_some_and(|r| r.state == DropState::Open);
            if !keep {
                blobs.delete_upload(&id).await?;
                report.uploads_removed += 1;
                tracing::info!(drop = %id, "removed an orphaned upload");
            }
        }
        for id in blobs.list_blobs().await? {
            let state = drops.drop_state(&id).await?;
            if state == Some(DropState::Open) && self.coordination().shared() {
                // Another instance may have promoted this upload and be about
                // to commit the drop: removing the blob now would leave a
                // committed drop without its ciphertext. Kept instead; if it
                // is a crash's leftover, the drop's next upload and commit
                // replace it, or the sweeper removes it with the drop at
                // its expiry (the blob of an open drop is never served).
                continue;
            }
            if state != Some(DropState::Committed) {
                blobs.delete_blob(&id).await?;
                if state == Some(DropState::Open) {
                    // The upload was promoted but never committed: it is gone
                    // from uploads/, so the drop must be uploaded again.
                    drops.set_upload(&id, None, self.now().as_second()).await?;
                }
                report.blobs_removed += 1;
                tracing::info!(drop = %id, "removed an uncommitted or delivered blob");
            }
        }
        Ok(report)
    }
}
