//! The sender's side after a send: which recipients acknowledged, and
//! which never got the drop (it expired first: a non-delivery report).
//! Each drop the service sent is tracked in `.sealdrop/tracking.json` until
//! every recipient has an outcome that cannot change; each outcome is told
//! once. The outcomes are `status`'s, checked against the signed log, never
//! the hub's word alone.

use std::collections::BTreeMap;
use std::path::PathBuf;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use sealdrop_proto::ids::{DropId, PartyId};

use super::Service;
use crate::error::{Error, ErrorCode, Result};
use crate::notify::{Event, EventKind};
use crate::status::{Outcome, StatusRequest};

/// Drops tracked at most: the oldest are dropped from tracking (never from
/// the hub or the journal) beyond this, so the file stays small.
const MOST_TRACKED: usize = 10_000;

/// One sent drop being tracked.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Tracked {
    /// The job that sent it (for people reading the event).
    pub job: String,
    /// When it was committed: the status check asks for drops since the oldest.
    pub committed: Timestamp,
    /// The agreement.
    pub agreement: Option<String>,
    /// Bytes of the file sent, if known.
    pub bytes: Option<u64>,
    /// Each recipient's outcome as last told (absent: nothing told yet).
    pub told: BTreeMap<PartyId, String>,
    /// The file's name, for events that may carry names.
    pub file: String,
    /// Its recipients.
    pub to: Vec<PartyId>,
}

/// `.sealdrop/tracking.json`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Tracking {
    /// Drops not yet settled for every recipient.
    pub drops: BTreeMap<DropId, Tracked>,
}

impl Tracking {
    fn path(svc: &Service) -> PathBuf {
        svc.layout.private().join("tracking.json")
    }

    /// Reads the file (none: nothing tracked).
    pub fn load(svc: &Service) -> Result<Self> {
        let path = Self::path(svc);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                Error::new(
                    ErrorCode::WatchStateInvalid,
                    format!("{} is not valid ({e}); remove it (only acknowledgement notices are lost)", path.display()),
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(Error::io(format!("cannot read {}", path.display()), e)),
        }
    }

    fn save(&self, svc: &Service) -> Result<()> {
        let text = serde_json::to_vec_pretty(self).map_err(|e| Error::new(ErrorCode::Internal, e.to_string()))?;
        crate::fsutil::write_atomic(&Self::path(svc), &text, true)
    }

    /// Starts tracking a drop just sent.
    pub fn add(&mut self, svc: &Service, id: DropId, tracked: Tracked) -> Result<()> {
        self.drops.insert(id, tracked);
        while self.drops.len() > MOST_TRACKED {
            let oldest = self.drops.iter().min_by_key(|(_, t)| t.committed).map(|(id, _)| id.clone());
            oldest.map(|id| self.drops.remove(&id));
        }
        self.save(svc)
    }

    /// Asks the hub (checked against the log) how every tracked drop's
    /// recipients fared, tells each new final outcome once, and stops
    /// tracking drops settled for every recipient. Returns how many drops
    /// are still tracked.
    pub fn check(&mut self, svc: &Service) -> Result<usize> {
        if self.drops.is_empty() {
            return Ok(0);
        }
        let session = svc.settings.session()?;
        let since = self.drops.values().map(|t| t.committed).min();
        let req = StatusRequest { since: since.map(|t| t - jiff::SignedDuration::from_hours(1)), ..Default::default() };
        let checked = crate::status::check(&svc.settings, &session, &req)?;
        let unbacked: Vec<String> = checked
            .views
            .iter()
            .filter(|v| !v.backed.problems.is_empty())
            .map(|v| format!("{}: {}", v.claimed.id, v.backed.problems.join("; ")))
            .collect();
        for v in &checked.views {
            let Some(t) = self.drops.get_mut(&v.claimed.id) else { continue };
            let shown = crate::status::status_drop(v, &checked.names);
            let mut settled = true;
            for r in &shown.recipients {
                let event = match r.outcome {
                    Outcome::Acknowledged => Some(EventKind::Acknowledged),
                    Outcome::NotDelivered | Outcome::Undeliverable => Some(EventKind::Undelivered),
                    Outcome::Recalled => None,
                    Outcome::Waiting | Outcome::Fetched | Outcome::Unbacked => {
                        settled = false;
                        None
                    }
                };
                let name = r.outcome.as_str().to_owned();
                if t.told.get(&r.party) == Some(&name) {
                    continue;
                }
                if let Some(kind) = event {
                    svc.notify(Event {
                        drops: vec![v.claimed.id.clone()],
                        from: Some(svc.party.clone()),
                        to: vec![r.party.clone()],
                        agreement: t.agreement.clone(),
                        files: Some(1),
                        bytes: t.bytes,
                        file_names: vec![t.file.clone()],
                        reason: r.reason.clone(),
                        ..svc.event(kind)
                    });
                    t.told.insert(r.party.clone(), name);
                }
            }
            if settled {
                self.drops.remove(&v.claimed.id);
            }
        }
        // A drop this service sent that the hub no longer lists at all.
        for m in &checked.missing {
            self.drops.remove(&m.sent.drop);
        }
        self.save(svc)?;
        if !unbacked.is_empty() {
            return Err(Error::new(
                ErrorCode::UnbackedClaims,
                format!("the hub claims what its signed log does not back: {}", unbacked.join(" | ")),
            ));
        }
        Ok(self.drops.len())
    }
}
