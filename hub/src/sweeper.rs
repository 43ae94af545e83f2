//! Retention: the hub deletes ciphertext as soon as its rules say so, and
//! proves it in the transfer log.
//!
//! A drop's ciphertext is deleted when every recipient has acknowledged (the
//! acknowledgement handler does that), when the sender recalls it (the recall
//! handler), and here, when its expiry passes or its sharing agreement is no
//! longer in force. Every deletion of a committed drop is a `drop_deleted`
//! statement signed with the log key and appended in the same transaction as
//! the state change; the file goes after the database says so, and start-up
//! cleanup removes any file a crash left behind.
//!
//! [`Hub::sweep`] runs once when the hub opens (catching up on whatever
//! expired while it was down, before it serves anything), then every
//! [`HubConfig::sweep_interval`](crate::HubConfig) while it serves
//! ([`run`]), and after a new directory version is published (which may end
//! an agreement).
//!
//! Several instances on one database sweep one at a time: the one that
//! leads the periodic work
//! ([`Coordination::lead`](crate::storage::Coordination::lead); on the
//! embedded stores the only process always does). When the leader dies the
//! lead passes to the first instance whose next tick asks for it, and that
//! instance first cleans up ([`Hub::clean_up`]), as a hub does when it
//! opens after a crash: what the dead leader left half done is then
//! removed. Sweeping is made of conditional updates, so two instances that
//! both believe for a moment that they lead only repeat work.
//!
//! A drop that was never committed is invisible to everyone
//! but its sender and absent from the log; at its expiry its rows and any
//! partial upload are simply removed.
//!
//! Before that, the upload of a drop that is not committed (finished, or cut
//! off and kept for the sender to continue) is removed once it has been
//! inactive for longer than [`HubConfig::upload_resume_window`](crate::HubConfig)
//! (at most a day): abandoned ciphertext must not wait on disk for the
//! drop's whole expiry. The drop stays open; its sender uploads again (a
//! re-run of `sealdrop send` does), or it goes at its expiry. An upload in
//! progress holds its drop's lock and is never touched.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::time::Duration;

use sealdrop_log::entry::{DeletionReason, HubStatement};
use sealdrop_proto::api::DropState;

use crate::error::HubError;
use crate::hub::{CleanupReport, Hub};
use crate::metrics::DeletedReason;
use crate::storage::meta::{EndOutcome, EndRecord, SweepItem};
use crate::transfer_log::hub_entry;

/// Drops looked at per database query.
const BATCH: usize = 256;

/// What one sweep removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepReport {
    /// Committed drops deleted at their expiry (logged `expired`).
    pub expired: usize,
    /// Committed drops deleted because their agreement ended (logged `agreement_ended`).
    pub agreement_ended: usize,
    /// Drops never committed, removed at their expiry (nothing to log).
    pub abandoned: usize,
    /// Uploads of open drops removed after the resume window (the drops stay open).
    pub stale_uploads: usize,
    /// Ciphertext and upload files removed from disk.
    pub files_removed: usize,
}

impl SweepReport {
    /// Whether the sweep changed anything.
    pub fn is_empty(&self) -> bool {
        *self == SweepReport::default()
    }
}

impl Hub {
    /// The periodic work, if this instance leads it (see the module's doc):
    /// clean-up first if it has just taken the lead (or opens), then a
    /// sweep. `None` when another instance leads.
    pub(crate) async fn periodic_work(&self) -> Result<Option<(CleanupReport, SweepReport)>, HubError> {
        if !self.coordination().lead().await? {
            if self.leading().swap(false, Ordering::SeqCst) {
                tracing::info!("another instance leads the periodic work now");
            }
            return Ok(None);
        }
        // The agreements in force are those of the newest directory.
        self.refresh_directory().await?;
        let cleanup = if self.leading().swap(true, Ordering::SeqCst) {
            CleanupReport::default()
        } else {
            // The lead may be cleared again should the clean-up fail, so the
            // next tick tries it again.
            self.clean_up().await.inspect_err(|_| self.leading().store(false, Ordering::SeqCst))?
        };
        Ok(Some((cleanup, self.sweep().await?)))
    }

    /// Ends every drop whose expiry has passed or whose agreement is no
    /// longer in force under the current directory, deletes their files, and
    /// logs each committed one. Safe to run concurrently with requests: each
    /// drop is ended under its lock by a conditional update, so a drop that
    /// was delivered or recalled meanwhile is left alone.
    pub async fn sweep(&self) -> Result<SweepReport, HubError> {
        let mut report = SweepReport::default();
        let swept = self.sweep_into(&mut report).await;
        // Files removed before a failure were removed all the same.
        self.metrics().sweep_finished(swept.is_ok(), report.files_removed, self.now().as_second());
        swept.map(|()| report)
    }

    async fn sweep_into(&self, report: &mut SweepReport) -> Result<(), HubError> {
        loop {
            let now = self.now();
            let directory = self.directory();
            let in_force: Vec<String> =
                directory.directory.agreements.iter().filter(|a| a.in_force(now)).map(|a| a.id.clone()).collect();
            let due = self.drops().due_for_sweep(now.as_second(), &in_force, BATCH).await?;
            let done = due.len() < BATCH;
            for item in due {
                self.end_one(&item, now.as_second(), report).await?;
            }
            if done {
                break;
            }
        }
        self.remove_stale_uploads(report).await?;
        if !report.is_empty() {
            tracing::info!(
                expired = report.expired,
                agreement_ended = report.agreement_ended,
                abandoned = report.abandoned,
                stale_uploads = report.stale_uploads,
                files_removed = report.files_removed,
                "swept"
            );
        }
        Ok(())
    }

    /// Removes the uploads of open drops inactive for longer than the
    /// resume window, wherever they live (a database row for a small one, a
    /// file for a larger one). Skips a drop whose lock is held: an upload
    /// (or commit) of it is under way. Uploads of drops that are not open
    /// are start-up cleanup's (they only outlive a crash).
    async fn remove_stale_uploads(&self, report: &mut SweepReport) -> Result<(), HubError> {
        let now = self.now().as_second();
        let window = i64::try_from(self.config().upload_resume_window.as_secs()).unwrap_or(i64::MAX);
        let inactive_since = now.saturating_sub(window);
        for id in self.blobs().list_uploads().await? {
            let Some(_lock) = self.locks().try_lock(&id, self.coordination()).await? else { continue };
            let last_active = self.drops().upload_activity(&id).await?;
            // Kept while `now - last_active` is at most the window.
            if last_active.is_none_or(|t| t >= inactive_since) {
                continue;
            }
            // The bytes go first: should clearing the record fail, a commit
            // finds no upload and asks for it again, never the reverse.
            let removed = self.blobs().delete_upload(&id).await?;
            self.drops().set_upload(&id, None, now).await?;
            if removed {
                report.stale_uploads += 1;
                report.files_removed += 1;
                tracing::info!(
                    drop = %id,
                    inactive_secs = last_active.map(|t| now - t),
                    "removed the upload of a drop that was not committed, inactive for longer than the resume window"
                );
            }
        }
        Ok(())
    }

    async fn end_one(&self, item: &SweepItem, now: i64, report: &mut SweepReport) -> Result<(), HubError> {
        let id = item.id.clone();
        let _lock = self.lock_drop(&id).await?;
        let drops = self.drops();
        if item.state == DropState::Open {
            let forgotten = drops.forget_open_drop(&id).await?;
            if forgotten {
                report.abandoned += 1;
                self.metrics().drop_deleted(DeletedReason::Abandoned);
                report.files_removed += usize::from(self.blobs().delete_upload(&id).await?);
                report.files_removed += usize::from(self.blobs().delete_blob(&id).await?);
                tracing::info!(drop = %id, "removed a drop that was never committed, at its expiry");
            }
            return Ok(());
        }
        let reason = if sealdrop_proto::policy::drop_expired(item.expires, now) {
            DeletionReason::Expired
        } else {
            DeletionReason::AgreementEnded
        };
        // The entry's time is read now, in the log's turn (see
        // `Hub::log_turn`), not at the start of the sweep: requests may have
        // logged later times since.
        let turn = self.log_turn().await?;
        let time = turn.now();
        let statement = HubStatement::DropDeleted { time, drop: id.clone(), reason };
        let entry = hub_entry(self.log_key(), &statement).to_bytes()?;
        let end = EndRecord {
            state: DropState::Expired,
            at: time.as_second(),
            log_entries: vec![entry],
            unless_acknowledged: false,
        };
        let outcome = drops.end_drop(&id, &end, Box::new(turn)).await?;
        let EndOutcome::Ended { log_index } = outcome else {
            // Delivered or recalled since the query: nothing to do.
            return Ok(());
        };
        match reason {
            DeletionReason::AgreementEnded => report.agreement_ended += 1,
            _ => report.expired += 1,
        }
        self.metrics().drop_deleted(reason.into());
        // The database says ended before the file goes: if deleting fails,
        // start-up cleanup removes blobs of drops that are not committed.
        match self.blobs().delete_blob(&id).await {
            Ok(removed) => report.files_removed += usize::from(removed),
            Err(e) => tracing::warn!(drop = %id, error = %e, "could not delete the ciphertext of an ended drop"),
        }
        tracing::info!(drop = %id, ?reason, log_index, "deleted the ciphertext of a drop that was not delivered in time");
        Ok(())
    }
}

/// Sweeps every `interval`, when this instance leads the periodic work,
/// until `shutdown` completes. A failed sweep is
/// logged and retried at the next tick: the hub keeps serving.
pub async fn run(hub: Hub, interval: Duration, shutdown: impl Future<Output = ()>) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await; // The first tick is immediate; the hub swept when it opened.
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            _ = ticks.tick() => {
                if let Err(e) = hub.periodic_work().await {
                    tracing::error!(error = %e, "the sweep failed; retrying at the next interval");
                }
            }
        }
    }
}
