//! Enforcing the per-party quotas ([`crate::quota`]) on an upload as it
//! streams: see that module for what is counted and why.

use std::sync::Arc;

use sealdrop_proto::error_code::ErrorCode;
use sealdrop_proto::ids::{DropId, PartyId};

use super::DropError;
use crate::hub::Hub;
use crate::quota::{Ledger, Quotas};

/// What rests on the hub for a party, apart from its uploads in flight,
/// and the settled counts it was read against.
#[derive(Debug, Clone, Copy)]
struct Resting {
    bytes: u64,
    uploads: u64,
    settled_bytes: u64,
    settled_uploads: u64,
}

/// An upload in flight, counted against its party's quotas until dropped.
pub struct Upload {
    hub: Hub,
    ledger: Arc<Ledger>,
    party: PartyId,
    id: DropId,
    quotas: Quotas,
    resting: Resting,
    /// Bytes this upload holds if it ends now (set by [`Upload::keep`]).
    kept: u64,
    /// Bytes this upload received since `resting` was read.
    since_read: u64,
}

/// On stores other instances share, an upload reads what rests on the hub
/// again each time it has grown by this much: the uploads other instances
/// receive for the party are seen there, not in this instance's memory.
pub const SHARED_REREAD_BYTES: u64 = 32 << 20;

impl std::fmt::Debug for Upload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upload").field("party", &self.party).field("id", &self.id).finish_non_exhaustive()
    }
}

impl Upload {
    /// Starts counting an upload of drop `id` by `party` that begins after
    /// `offset` bytes already held (a continued upload) and declares
    /// `declared` more, if it says. Refuses when the party already has as
    /// many uploads open as allowed (429), or when what it holds plus what
    /// this upload declares is over its bytes quota (507).
    pub async fn begin(
        hub: &Hub,
        party: &PartyId,
        id: &DropId,
        offset: u64,
        declared: Option<u64>,
    ) -> Result<Upload, DropError> {
        let ledger = hub.quota_ledger();
        let quotas = hub.config().quotas;
        ledger.with(party, |u| u.streaming.insert(id.clone(), offset));
        let mut upload = Upload {
            hub: hub.clone(),
            ledger,
            party: party.clone(),
            id: id.clone(),
            quotas,
            resting: Resting { bytes: 0, uploads: 0, settled_bytes: 0, settled_uploads: 0 },
            kept: 0,
            since_read: 0,
        };
        upload.resting = upload.read_resting().await?;
        let (_, uploads) = upload.totals();
        if uploads > u64::from(quotas.open_uploads) {
            upload.resting = upload.read_resting().await?;
            let (_, uploads) = upload.totals();
            if uploads > u64::from(quotas.open_uploads) {
                return Err(too_many_uploads(party, quotas.open_uploads, uploads - 1));
            }
        }
        if let Some(declared) = declared {
            let (held, _) = upload.totals();
            if held.saturating_add(declared) > quotas.held_bytes {
                upload.resting = upload.read_resting().await?;
                let (held, _) = upload.totals();
                if held.saturating_add(declared) > quotas.held_bytes {
                    return Err(over_bytes(party, quotas.held_bytes, held, declared));
                }
            }
        }
        Ok(upload)
    }

    /// Counts `n` more bytes of this upload before they are written;
    /// refuses (507) if that takes the party past its bytes quota.
    pub async fn grow(&mut self, n: u64) -> Result<(), DropError> {
        self.ledger.with(&self.party, |u| {
            if let Some(bytes) = u.streaming.get_mut(&self.id) {
                *bytes = bytes.saturating_add(n);
            }
        });
        self.since_read = self.since_read.saturating_add(n);
        if self.since_read >= SHARED_REREAD_BYTES && self.hub.coordination().shared() {
            self.reread().await?;
        }
        let (held, _) = self.totals();
        if held <= self.quotas.held_bytes {
            return Ok(());
        }
        // Perhaps deliveries freed room since this upload began.
        self.reread().await?;
        let (held, _) = self.totals();
        if held <= self.quotas.held_bytes {
            return Ok(());
        }
        let streamed = self.ledger.with(&self.party, |u| u.streaming.get(&self.id).copied().unwrap_or(0));
        Err(over_bytes(&self.party, self.quotas.held_bytes, held - streamed, streamed))
    }

    /// Records that the bytes this upload received stay on the hub when it
    /// ends (finished, or cut off and kept for continuing).
    pub fn keep(&mut self) {
        self.kept = self.ledger.with(&self.party, |u| u.streaming.get(&self.id).copied().unwrap_or(0));
    }

    /// The party's bytes held and uploads open now, as far as this upload knows.
    fn totals(&self) -> (u64, u64) {
        let r = self.resting;
        self.ledger.with(&self.party, |u| {
            let streaming: u64 = u.streaming.values().sum();
            let bytes =
                r.bytes.saturating_add(u.settled_bytes.saturating_sub(r.settled_bytes)).saturating_add(streaming);
            let uploads = r.uploads + u.settled_uploads.saturating_sub(r.settled_uploads) + u.streaming.len() as u64;
            (bytes, uploads)
        })
    }

    async fn reread(&mut self) -> Result<(), DropError> {
        self.resting = self.read_resting().await?;
        self.since_read = 0;
        Ok(())
    }

    /// Reads what rests on the hub for the party, leaving out the drops
    /// with an upload in flight (counted in memory).
    async fn read_resting(&self) -> Result<Resting, DropError> {
        let (in_flight, settled_bytes, settled_uploads) = self.ledger.with(&self.party, |u| {
            (u.streaming.keys().cloned().collect::<Vec<_>>(), u.settled_bytes, u.settled_uploads)
        });
        let holdings = self.hub.drops().party_holdings(&self.party).await?;
        let mut bytes = holdings.committed_bytes;
        let mut uploads = 0;
        for open in holdings.open.iter().filter(|o| !in_flight.contains(&o.id)) {
            let held = match open.upload_len {
                Some(len) => len,
                None if open.upload_started => self.hub.blobs().upload_len(&open.id).await?.unwrap_or(0),
                None => 0,
            };
            if held > 0 {
                bytes = bytes.saturating_add(held);
                uploads += 1;
            }
        }
        Ok(Resting { bytes, uploads, settled_bytes, settled_uploads })
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        let kept = self.kept;
        self.ledger.with(&self.party, |u| {
            u.streaming.remove(&self.id);
            if kept > 0 {
                u.settled_bytes = u.settled_bytes.saturating_add(kept);
                u.settled_uploads += 1;
            }
        });
    }
}

fn too_many_uploads(party: &PartyId, max: u32, open: u64) -> DropError {
    DropError::new(
        ErrorCode::QuotaOpenUploads,
        format!(
            "your party `{party}` already has {open} uploads open on this hub, the most it allows \
             (max_open_uploads_per_party = {max}): let one finish or commit it, then send again"
        ),
    )
    .with_retry_after(60)
}

fn over_bytes(party: &PartyId, max: u64, held: u64, upload: u64) -> DropError {
    DropError::new(
        ErrorCode::QuotaHeldBytes,
        format!(
            "this upload ({upload} bytes) would take the ciphertext your party `{party}` has on this hub past the \
             most it holds for one party (max_held_bytes_per_party = {max} bytes; {held} held now): nothing already \
             stored was touched; send again once recipients have fetched earlier drops, or ask the hub's operator"
        ),
    )
}
