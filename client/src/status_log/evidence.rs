//! Drops the hub no longer lists, and the evidence kept when the log does
//! not back what the hub says.

use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::Serialize;

use sealdrop_proto::api::SentDrop;
use sealdrop_proto::ids::DropId;

use crate::error::{Error, Result};
use crate::fsutil::write_atomic;
use crate::journal::Journal;

/// A drop this client committed (its journal says so, with the receipt
/// that proves the commit is logged) that the hub does not list.
#[derive(Clone, Debug, PartialEq)]
pub struct Missing {
    /// The journal's record of the send.
    pub sent: crate::journal::Sent,
    /// The receipt proving the hub logged the commit.
    pub receipt: Option<PathBuf>,
}

/// The drops this client committed that the hub's answer leaves out.
/// `listed` are the ids the hub listed; `keep` the request's filters.
pub fn missing(journal: &Journal, listed: &[DropId], keep: impl Fn(&crate::journal::Sent) -> bool) -> Vec<Missing> {
    let mut seen = std::collections::HashSet::new();
    journal
        .entries
        .iter()
        .filter_map(|e| match &e.event {
            crate::journal::Event::Sent(s) => Some(s),
            _ => None,
        })
        .filter(|s| !listed.contains(&s.drop) && keep(s) && seen.insert(s.drop.clone()))
        .map(|s| Missing { sent: s.clone(), receipt: s.receipt.clone().filter(|r| r.exists()) })
        .collect()
}

/// Keeps the evidence of claims the log does not back in
/// `<state>/log/evidence/status-<time>/`: the hub's answer as received,
/// what is wrong, and for each committed drop the hub no longer lists, its
/// journal record and the offline receipt proving its commit is logged.
pub fn keep_evidence(
    state_dir: &Path,
    now: Timestamp,
    answer: &[SentDrop],
    problems: &[String],
    missing: &[Missing],
) -> Result<PathBuf> {
    let base = state_dir.join(crate::logcheck::LOG_DIR).join("evidence");
    // A folder of its own, also for two runs within one second.
    let dir = (0u32..)
        .map(|n| match n {
            0 => base.join(format!("status-{}", now.as_second())),
            n => base.join(format!("status-{}.{n}", now.as_second())),
        })
        .find(|d| !d.exists())
        .unwrap_or_else(|| base.join("status"));
    write_atomic(&dir.join("hub-sent.json"), &pretty(answer), false)?;
    write_atomic(&dir.join("problems.txt"), format!("{}\n", problems.join("\n")).as_bytes(), false)?;
    for m in missing {
        write_atomic(&dir.join(format!("{}.journal.json", m.sent.drop)), &pretty(&m.sent), false)?;
        if let Some(r) = &m.receipt {
            let bytes = std::fs::read(r).map_err(|e| Error::io(format!("cannot read {}", r.display()), e))?;
            write_atomic(&dir.join(format!("{}.committed.tlog-proof", m.sent.drop)), &bytes, false)?;
        }
    }
    Ok(dir)
}

/// Pretty JSON of anything serialisable (evidence for people to read).
fn pretty<T: Serialize + ?Sized>(v: &T) -> Vec<u8> {
    serde_json::to_vec_pretty(v).unwrap_or_default()
}
