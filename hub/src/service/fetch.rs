//! What recipients read: their inbox and a drop's ciphertext.
//!
//! Only committed, unexpired drops that the party has not yet acknowledged
//! are offered. Every time the ciphertext is served, whole or as one range
//! ([`crate::byte_range`]), the transfer log records it (`drop_fetched`)
//! with the recipient's signed request as evidence; the recipient's final
//! hash check covers the whole ciphertext, so a range never weakens what is
//! verified.
//!
//! Each party may download a drop at most
//! [`sealdrop_log::policy::MAX_DOWNLOADS_PER_PARTY`] times, whole or in
//! ranges (the count and the log entry are one transaction); then
//! `download_limit`. Every download is a permanent log entry, so a member
//! looping over 1-byte ranges could otherwise grow the log forever.

use sealdrop_log::entry::{LogEntry, SignedRequest};
use sealdrop_proto::api::{DropState, Inbox, InboxEntry};
use sealdrop_proto::error_code::ErrorCode;
use sealdrop_proto::ids::{DropId, PartyId};

use super::agreement::agreement_allows;
use super::{Caller, DropError, Drops, RequestEvidence, entry_bytes, ts};
use crate::byte_range::{ByteRange, RangeError, parse_range};
use crate::inbox_wait::Wake;
use crate::storage::BlobRead;
use crate::storage::meta::{FetchOutcome, FetchRecord};

/// Whether `inbox` holds a drop committed after `since` (any drop, without `since`).
fn has_new(inbox: &Inbox, since: Option<jiff::Timestamp>) -> bool {
    inbox.drops.iter().any(|d| since.is_none_or(|s| d.committed > s))
}

/// What a download serves.
pub enum Download {
    /// The whole ciphertext.
    Whole(BlobRead),
    /// One range of it.
    Range {
        /// The bytes of the range only.
        blob: BlobRead,
        /// Which bytes they are.
        range: ByteRange,
        /// The whole ciphertext's length, which the answer states.
        total: u64,
    },
    /// The range asked for cannot be served; nothing was logged.
    RangeRefused {
        /// Why.
        error: RangeError,
        /// The whole ciphertext's length, which the refusal states.
        total: u64,
    },
}

/// The refusal of a download beyond the bound: each download is a
/// permanent log entry, so no party may grow the log without end.
fn download_limit(id: &DropId, party: &PartyId, downloads: u64) -> DropError {
    DropError::new(
        ErrorCode::DownloadLimit,
        format!(
            "your party `{party}` has downloaded drop {id} {downloads} times, the most the hub serves one party (each \
             download is a permanent entry in the transfer log): ask the sender to send it again"
        ),
    )
}

impl Drops<'_> {
    /// The caller's party's inbox, oldest first. Drops the party may not
    /// fetch now (their agreement ended or no longer includes the sender or
    /// the party) are left out: the sweeper deletes the ones whose
    /// agreement ended.
    pub async fn inbox(&self, caller: &Caller) -> Result<Inbox, DropError> {
        let now = self.hub.now();
        let drops = self.hub.drops().inbox(&caller.party, now.as_second()).await?;
        let directory = self.hub.directory();
        let drops = drops
            .into_iter()
            .filter(|d| {
                let parties = [("sender", &d.sender), ("your party", &caller.party)];
                agreement_allows(&directory.directory, &d.agreement, &parties, now).is_ok()
            })
            .map(|d| {
                Ok(InboxEntry {
                    from: d.sender,
                    size: d.content.map_or(0, |c| c.len),
                    created: ts(d.created)?,
                    committed: ts(d.committed.unwrap_or(d.created))?,
                    expires: ts(d.expires)?,
                    agreement: d.agreement,
                    id: d.id,
                })
            })
            .collect::<Result<Vec<_>, DropError>>()?;
        Ok(Inbox { drops })
    }

    /// The caller's party's inbox once it holds a drop committed after
    /// `since` (any drop, without `since`), waiting up to `wait` for one
    /// (see [`crate::inbox_wait`]); after the wait, or when the hub shuts
    /// down or too many requests already wait, the inbox as it is (maybe
    /// empty). A zero `wait` is [`Self::inbox`].
    pub async fn inbox_wait(
        &self,
        caller: &Caller,
        wait: std::time::Duration,
        since: Option<jiff::Timestamp>,
    ) -> Result<Inbox, DropError> {
        let hub = self.hub;
        if wait.is_zero() {
            return self.inbox(caller).await;
        }
        let deadline = tokio::time::Instant::now() + wait;
        // Registered before the first read, so a commit after that read
        // wakes the wait below at once.
        let Some(mut waiter) = hub.inbox_waits().register(&caller.party, hub.config().max_inbox_waiters) else {
            return self.inbox(caller).await;
        };
        loop {
            let inbox = self.inbox(caller).await?;
            if has_new(&inbox, since) || tokio::time::Instant::now() >= deadline {
                return Ok(inbox);
            }
            // Another instance's commit wakes nobody here: read again now and then.
            let recheck = (tokio::time::Instant::now() + hub.config().inbox_recheck_interval).min(deadline);
            if waiter.wait(recheck).await == Wake::Shutdown {
                return self.inbox(caller).await;
            }
        }
    }

    /// A member of a recipient party downloads drop `id`, whole or the one
    /// range `requested` (the `Range` header as received, judged only after
    /// every other check, so a bad range tells nobody outside the drop
    /// anything about it), and the log records the download.
    pub async fn download(
        &self,
        caller: &Caller,
        id: DropId,
        requested: Option<Result<&str, RangeError>>,
        evidence: RequestEvidence<'_>,
    ) -> Result<Download, DropError> {
        let hub = self.hub;
        let rec = self.load(&id).await?;
        let Some(me) = rec.recipient(&caller.party) else {
            return Err(DropError::forbidden(format!(
                "only the recipient parties may download drop {id}, and your party `{}` is not one",
                caller.party
            )));
        };
        match rec.state {
            DropState::Open => return Err(DropError::not_found(format!("there is no drop {id} on this hub"))),
            DropState::Delivered => {
                return Err(DropError::gone(format!("drop {id} was delivered to every recipient and deleted")));
            }
            DropState::Expired => {
                return Err(DropError::gone(format!(
                    "drop {id} expired at {} and its ciphertext was deleted: ask the sender to send it again",
                    ts(rec.expires)?
                )));
            }
            DropState::Recalled => {
                return Err(DropError::gone(format!(
                    "drop {id} was recalled by its sender and its ciphertext deleted"
                )));
            }
            DropState::Committed => {}
        }
        if let Some(at) = me.acknowledged {
            return Err(DropError::gone(format!(
                "your party acknowledged drop {id} at {}; the hub no longer serves it to you",
                ts(at)?
            )));
        }
        let turn = hub.log_turn().await?;
        let now = turn.now();
        if sealdrop_proto::policy::drop_expired(rec.expires, now.as_second()) {
            return Err(DropError::gone(format!(
                "drop {id} expired at {}: ask the sender to send it again",
                ts(rec.expires)?
            )));
        }
        agreement_allows(
            &hub.directory().directory,
            &rec.agreement,
            &[("sender", &rec.sender), ("your party", &caller.party)],
            now,
        )?;
        let range = match requested {
            None => None,
            Some(value) => {
                let Some(total) = rec.content.as_ref().map(|c| c.len) else {
                    return Err(DropError::internal(format_args!("committed drop {id} has no content digest")));
                };
                match value.and_then(|v| parse_range(v, total)) {
                    Ok(range) => Some((range, total)),
                    Err(error) => return Ok(Download::RangeRefused { error, total }),
                }
            }
        };
        let blob = match range {
            None => hub.blobs().open_blob(&id).await?,
            Some((r, _)) => hub.blobs().open_blob_from(&id, r.start).await?,
        };
        let Some(blob) = blob else {
            return Err(DropError::gone(format!("drop {id}'s ciphertext is no longer on the hub")));
        };
        if let Some((r, total)) = range
            && r.start + blob.len != total
        {
            return Err(DropError::internal(format_args!(
                "drop {id}'s stored ciphertext has {} bytes, not the {total} committed",
                r.start + blob.len
            )));
        }
        let fetched = LogEntry::DropFetched {
            drop: id.clone(),
            party: caller.party.clone(),
            fetched: now,
            request: SignedRequest::from_auth(evidence.auth, "GET", evidence.signed_path),
        };
        let log_entry = entry_bytes(&fetched, |e| {
            DropError::bad_request(format!("{e}: this request cannot be logged; request the content without a query"))
        })?;
        let fetch = FetchRecord { party: caller.party.clone(), at: now.as_second(), log_entry };
        let log_index = match hub.drops().record_fetch(&id, &fetch, Box::new(turn)).await? {
            FetchOutcome::Recorded { log_index } => log_index,
            // Ended (expired, recalled) between the checks above and now.
            FetchOutcome::NotCommitted => return Err(DropError::gone(format!("drop {id} is no longer available"))),
            FetchOutcome::LimitReached { downloads } => return Err(download_limit(&id, &caller.party, downloads)),
        };
        hub.metrics().drop_fetched();
        Ok(match range {
            None => {
                tracing::info!(len = blob.len, log_index, "serving content");
                Download::Whole(blob)
            }
            Some((range, total)) => {
                tracing::info!(
                    len = range.len(),
                    start = range.start,
                    end = range.end,
                    total,
                    log_index,
                    "serving content range"
                );
                Download::Range { blob, range, total }
            }
        })
    }
}
