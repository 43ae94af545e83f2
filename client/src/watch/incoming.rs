//! The inbox side: wait on the hub's inbox (a long-poll, so a drop is seen
//! within a second or two without polling load), fetch what is new into
//! `inbox/<sender>/<agreement>/` (verified, placed, then acknowledged), merge
//! CSV parts per agreement with `--merge-csv`, and tell people.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use jiff::Timestamp;
use sealdrop_proto::ids::DropId;

use super::Service;
use crate::error::{Error, Result};
use crate::fetch::{Destination, FetchOutcome, Which};
use crate::notify::{Event, EventKind};

/// What the inbox side remembers between passes.
#[derive(Debug, Default)]
pub struct Incoming {
    /// Drops that failed for good (refused, not for this member): not
    /// fetched again, and their commit times keep the long-poll from
    /// answering at once for them.
    stuck: HashMap<DropId, Timestamp>,
    /// Drops whose failure people were told about, with its code: told
    /// once, not on every pass.
    told: HashMap<DropId, String>,
}

/// What one pass did.
#[derive(Debug, Default)]
pub struct Pass {
    /// Drops fetched.
    pub fetched: usize,
    /// Drops that failed.
    pub failed: usize,
}

impl Incoming {
    /// Waits up to `wait` for drops (zero: just looks), then fetches them.
    pub fn pass(&mut self, svc: &Service, wait: Duration) -> Result<Pass> {
        let (hub, _) = svc.settings.hub_as_member()?;
        let since = self.stuck.values().max().copied();
        let inbox = if wait.is_zero() { hub.inbox()? } else { hub.inbox_wait(wait, since)? };
        let now = svc.now();
        svc.monitor.polled(now);
        // Forget drops that left the inbox (expired, recalled).
        self.stuck.retain(|id, _| inbox.drops.iter().any(|d| d.id == *id));
        self.told.retain(|id, _| inbox.drops.iter().any(|d| d.id == *id));
        let state_dir = &svc.settings.state_dir;
        let ids: Vec<String> = inbox
            .drops
            .iter()
            .filter(|d| !self.stuck.contains_key(&d.id) && crate::refused::load(state_dir, &d.id).is_none())
            .map(|d| d.id.to_string())
            .collect();
        for d in inbox.drops.iter().filter(|d| crate::refused::load(state_dir, &d.id).is_some()) {
            self.stuck.insert(d.id.clone(), d.committed);
        }
        if ids.is_empty() {
            return Ok(Pass::default());
        }
        let run = crate::fetch::fetch_to(
            &svc.settings,
            &Which::Ids(ids.clone()),
            Destination::BySender(&svc.layout.inbox()),
            None,
        )?;
        let mut pass = Pass::default();
        let mut fetched = Vec::new();
        for (id, result) in ids.iter().zip(run.results) {
            match result {
                Ok(o) => {
                    pass.fetched += 1;
                    svc.monitor.received(svc.now());
                    svc.notify(arrived(svc, &o));
                    fetched.push(o);
                }
                Err(e) => {
                    pass.failed += 1;
                    self.failed(svc, id, &inbox, &e);
                }
            }
        }
        if svc.options.merge_csv {
            merge(svc, &fetched);
        }
        Ok(pass)
    }

    /// Records and tells of drop `id`'s failure (once per drop and code).
    fn failed(&mut self, svc: &Service, id: &str, inbox: &sealdrop_proto::api::Inbox, e: &Error) {
        let now = svc.now();
        svc.monitor.failed(now, "fetch", id, e);
        let entry = inbox.drops.iter().find(|d| d.id.as_str() == id);
        if let Some(d) = entry {
            // A refusal of what the sender signed, or a drop not for this
            // member, does not pass by trying again.
            if crate::refused::load(&svc.settings.state_dir, &d.id).is_some() || e.kind == crate::error::Kind::Input {
                self.stuck.insert(d.id.clone(), d.committed);
            }
            if self.told.get(&d.id) == Some(&e.code) {
                return;
            }
            self.told.insert(d.id.clone(), e.code.clone());
        }
        svc.notify(Event {
            drops: entry.map(|d| vec![d.id.clone()]).unwrap_or_default(),
            from: entry.map(|d| d.from.clone()),
            agreement: entry.map(|d| d.agreement.clone()),
            bytes: entry.map(|d| d.size),
            code: Some(e.code.clone()),
            reason: Some(e.message.clone()),
            ..svc.event(EventKind::FetchFailed)
        });
    }
}

/// The `arrived` event of a fetched drop.
fn arrived(svc: &Service, o: &FetchOutcome) -> Event {
    Event {
        drops: vec![o.id.clone()],
        from: Some(o.from.clone()),
        to: vec![svc.party.clone()],
        agreement: Some(o.agreement.clone()),
        files: Some(o.files as u64),
        bytes: Some(o.bytes),
        file_names: o.names.clone(),
        ..svc.event(EventKind::Arrived)
    }
}

/// `--merge-csv`: the CSV parts of this pass, merged per agreement into
/// `inbox/merged/<agreement>-<time>.csv`. A merge that fails leaves the
/// received files as they are and is reported; it never loses a drop.
fn merge(svc: &Service, fetched: &[FetchOutcome]) {
    let mut by_agreement: BTreeMap<&str, Vec<&FetchOutcome>> = BTreeMap::new();
    for o in fetched {
        by_agreement.entry(o.agreement.as_str()).or_default().push(o);
    }
    let stamp = svc.now().strftime("%Y%m%d-%H%M%S").to_string();
    for (agreement, outcomes) in by_agreement {
        let merged_dir = svc.layout.merged();
        let result = crate::fsutil::create_private_dir(&merged_dir)
            .and_then(|()| crate::fetch::csv_parts(outcomes.iter().copied()))
            .and_then(|parts| {
                let free = |n: u32| {
                    let suffix = if n == 1 { String::new() } else { format!("-{n}") };
                    merged_dir.join(format!("{agreement}-{stamp}{suffix}.csv"))
                };
                let out = (1..).map(free).find(|p| p.symlink_metadata().is_err()).unwrap_or_else(|| free(1));
                crate::merge::merge_csv_parts(&parts, &out, crate::merge::Formulas::Neutralise)
            });
        match result {
            Ok(Some(m)) => eprintln!("merged {} rows from {} parts into {}", m.rows, m.parts, m.path.display()),
            Ok(None) => {}
            Err(e) => {
                eprintln!("warning: the CSV parts of agreement {agreement} were not merged: {e}");
                svc.monitor.failed(svc.now(), "merge", agreement, &e);
            }
        }
    }
}
