//! Keeping the directory an instance enforces in step with the database
//! when other instances share it: a directory accepted on one instance (a
//! member's key revoked, say) must be in force on every instance.
//!
//! Each instance keeps the directory in memory ([`Hub::directory`]), as a
//! single hub does. On shared stores ([`Coordination::shared`](crate::storage::Coordination::shared)) it asks the
//! database for the current serial (one indexed read of a number) before
//! it authenticates a request and before it sweeps, at most once every
//! [`DIRECTORY_CHECK_INTERVAL`], and loads, verifies and adopts a newer
//! directory when there is one. So an instance verifies a request against
//! a directory that is at most [`DIRECTORY_CHECK_INTERVAL`] (plus one
//! read of the database, for requests arriving while that read runs)
//! older than the newest stored: a key removed on one instance stops
//! working on every other within a second. On the embedded stores the one
//! process accepts every directory itself, so nothing is asked.
//!
//! Publishing checks again, in the log's turn that every instance takes
//! before it appends, that the stored serial is still older than the one
//! offered: two instances accepting directories at once can never store
//! an older one after a newer one.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sealdrop_proto::directory::{DirectoryError, SignedDirectory};

use super::{Hub, PublishError};
use crate::storage::MetaError;

/// How stale, at most, an instance on shared stores lets its directory be.
pub const DIRECTORY_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// When an instance last asked the database for the current serial.
#[derive(Debug)]
pub(super) struct DirectoryChecks {
    /// What `last_ms` counts from.
    origin: Instant,
    /// Milliseconds from `origin` to the start of the last check, plus one
    /// (0: never checked).
    last_ms: AtomicU64,
}

impl Default for DirectoryChecks {
    fn default() -> Self {
        Self { origin: Instant::now(), last_ms: AtomicU64::new(0) }
    }
}

impl DirectoryChecks {
    /// Whether a check is due now; if so, the caller makes it (one caller
    /// at a time wins).
    fn due(&self) -> bool {
        let now = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX).saturating_add(1);
        let last = self.last_ms.load(Ordering::Relaxed);
        let interval = u64::try_from(DIRECTORY_CHECK_INTERVAL.as_millis()).unwrap_or(u64::MAX);
        (last == 0 || now.saturating_sub(last) >= interval)
            && self.last_ms.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
    }
}

impl Hub {
    /// Adopts a directory another instance accepted, if the database holds
    /// one newer than this instance's and a check is due (see the module's
    /// doc). Does nothing on the embedded stores.
    pub(crate) async fn refresh_directory(&self) -> Result<(), MetaError> {
        if !self.coordination().shared() || !self.inner.directory_checks.due() {
            return Ok(());
        }
        self.adopt_stored_directory().await
    }

    /// Adopts the stored directory if its serial is newer than the one in
    /// force here, after verifying it against the authority key.
    pub(super) async fn adopt_stored_directory(&self) -> Result<(), MetaError> {
        let current = self.directory().directory.serial;
        if self.directories().current_serial().await?.is_none_or(|stored| stored <= current) {
            return Ok(());
        }
        let Some(stored) = self.directories().current_directory().await? else { return Ok(()) };
        let authority = self.inner.authority.clone();
        let serial = stored.serial;
        // Parsing and verifying a note of up to 2 MiB is work for the blocking pool.
        let verified = tokio::task::spawn_blocking(move || SignedDirectory::verify(&stored.note, &authority))
            .await?
            .map_err(|e| MetaError::Corrupt(format!("the stored directory serial {serial} does not verify: {e}")))?;
        let mut slot = self.inner.directory.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        // Another task may have adopted or published a newer one meanwhile.
        if slot.directory.serial < verified.directory.serial {
            tracing::info!(serial, "enforcing the directory another instance accepted");
            *slot = Arc::new(verified);
        }
        Ok(())
    }

    /// Refuses `offered` unless its serial is newer than the newest stored:
    /// called in the log's turn, which every instance takes before it
    /// stores a directory, so no other instance stores one meanwhile.
    pub(super) async fn refuse_stored_rollback(&self, offered: u64) -> Result<(), PublishError> {
        if !self.coordination().shared() {
            return Ok(());
        }
        match self.directories().current_serial().await? {
            Some(current) if current >= offered => Err(DirectoryError::Rollback { offered, current }.into()),
            _ => Ok(()),
        }
    }
}
