//! `sealdrop recall ID`: the sender takes back a committed drop that no
//! recipient has acknowledged. The hub deletes the ciphertext and logs the
//! sender's signed request; this client keeps an offline receipt of that log
//! entry, like `fetch` does for an acknowledgement, and names every
//! recipient that downloaded the ciphertext without acknowledging (it may
//! hold a copy). Once a recipient has acknowledged, the hub refuses
//! (`recall_refused`, naming who has the data).

use std::io::Write;
use std::path::PathBuf;

use serde::Serialize;

use sealdrop_log::entry::LogEntry;
use sealdrop_proto::api::{Recalled, code};

use crate::context::Settings;
use crate::error::{Error, ErrorCode, Kind, Result};
use crate::journal::{self, Event};
use crate::withdraw::Withdrawal;

/// What a recall did.
#[derive(Clone, Debug, Serialize)]
pub struct RecallOutcome {
    /// The hub's answer.
    #[serde(flatten)]
    pub recalled: Recalled,
    /// The offline proof (c2sp.org/tlog-proof) that the hub logged the recall.
    pub receipt: PathBuf,
}

/// Recalls drop `id`, keeps the log receipt and journals it.
pub fn recall(settings: &Settings, id: &str) -> Result<RecallOutcome> {
    let id = crate::status::parse_drop_id(id)?;
    let session = settings.session()?;
    let recalled: Recalled = session.hub.recall(&id)?;
    let receipt = settings
        .keep_receipt(
            &session,
            recalled.log_index,
            &format!("{id}.recalled"),
            |e| matches!(e, LogEntry::DropRecalled { drop, .. } if *drop == id),
            None,
        )
        .map_err(|e| Error { message: format!("drop {id} was recalled, but: {}", e.message), ..e });
    journal::record_at(
        &settings.state_dir,
        settings.clock.now(),
        Event::Recalled(journal::Recalled {
            drop: id.clone(),
            recalled: recalled.recalled,
            log_index: recalled.log_index,
            receipt: receipt.as_ref().ok().map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone())),
        }),
    );
    if let Err(e) = &receipt {
        // The recall itself happened: say who may hold a copy before failing.
        warn_downloads(&recalled);
        return Err(e.clone());
    }
    Ok(RecallOutcome { recalled, receipt: receipt? })
}

/// The warning for each recipient that downloaded the drop without
/// acknowledging it.
pub fn download_warnings(r: &Recalled) -> Vec<String> {
    r.downloaded_by
        .iter()
        .map(|d| {
            let when = d.fetched.map_or_else(String::new, |t| format!(" at {t}"));
            format!(
                "warning: {} downloaded drop {}{when} without acknowledging it and may hold a copy; ask them to delete it",
                d.party, r.id
            )
        })
        .collect()
}

fn warn_downloads(r: &Recalled) {
    for w in download_warnings(r) {
        eprintln!("{w}");
    }
}

/// The line printed for a recall.
pub fn summary(r: &Recalled) -> String {
    let deleted = if r.ciphertext_deleted {
        "the hub deleted its ciphertext"
    } else {
        "the hub withdrew it and deletes its ciphertext file at its next start"
    };
    format!("recalled drop {} at {}; {deleted} (log entry {})", r.id, r.recalled, r.log_index)
}

/// `sealdrop recall ID [--json]`.
pub fn run(settings: &Settings, id: &str, json: bool, out: &mut dyn Write) -> Result<()> {
    let outcome = match recall(settings, id) {
        // The hub's `conflict`: the drop was never committed (a send that
        // failed or was stopped). Nobody can see it; what the sender wants
        // is that it goes, so withdraw it.
        Err(e) if e.kind == Kind::Refused && e.code == code::CONFLICT => {
            return withdraw_open(settings, id, json, out, e);
        }
        r => r?,
    };
    let text = if json {
        serde_json::to_string_pretty(&outcome)
            .map_err(|e| Error::with_kind(Kind::Input, ErrorCode::Internal, e.to_string()))?
    } else {
        summary(&outcome.recalled)
    };
    writeln!(out, "{text}").map_err(|e| Error::io("cannot write to stdout", e))?;
    warn_downloads(&outcome.recalled);
    Ok(())
}

/// `recall` of a drop that was never committed: withdraws it
/// (`DELETE /v1/drops/{id}`); `refusal` is the recall's answer, returned if
/// the drop turns out not to be open after all.
fn withdraw_open(settings: &Settings, id: &str, json: bool, out: &mut dyn Write, refusal: Error) -> Result<()> {
    let id = crate::status::parse_drop_id(id)?;
    let session = settings.session()?;
    match crate::withdraw::withdraw(&session.hub, &id) {
        Withdrawal::Withdrawn => {}
        Withdrawal::Failed(e) => return Err(e),
        Withdrawal::AlreadyGone | Withdrawal::Committed => return Err(refusal),
    }
    crate::withdraw::forget(&settings.state_dir, &id);
    crate::outgoing::discard(&settings.state_dir, &id);
    let text = if json {
        serde_json::json!({"id": id, "withdrawn": true, "committed": false}).to_string()
    } else {
        format!("drop {id} was never committed, so nobody could see it; withdrew it from the hub (nothing was sent)")
    };
    writeln!(out, "{text}").map_err(|e| Error::io("cannot write to stdout", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sealdrop_proto::api::RecipientStatus;
    use sealdrop_proto::ids::DropId;

    fn recalled(downloaded_by: Vec<RecipientStatus>, deleted: bool) -> Recalled {
        Recalled {
            id: DropId::random(),
            recalled: "2026-11-17T12:00:00Z".parse().unwrap(),
            log_index: 42,
            ciphertext_deleted: deleted,
            downloaded_by,
        }
    }

    #[test]
    fn recall_summary_and_warnings() {
        let r = recalled(
            vec![RecipientStatus {
                party: "islington".parse().unwrap(),
                fetched: Some("2026-11-16T08:00:00Z".parse().unwrap()),
                acknowledged: None,
                acknowledged_by: None,
                fetched_log_index: Some(41),
                acknowledged_log_index: None,
            }],
            true,
        );
        assert_eq!(
            summary(&r),
            format!("recalled drop {} at 2026-11-17T12:00:00Z; the hub deleted its ciphertext (log entry 42)", r.id)
        );
        assert_eq!(
            download_warnings(&r),
            [format!(
                "warning: islington downloaded drop {} at 2026-11-16T08:00:00Z without acknowledging it and may hold a copy; ask them to delete it",
                r.id
            )]
        );
        let quiet = recalled(vec![], false);
        assert!(download_warnings(&quiet).is_empty());
        assert!(summary(&quiet).contains("deletes its ciphertext file at its next start"), "{}", summary(&quiet));
    }

    #[test]
    fn recall_json_is_the_response_plus_the_receipt() {
        let r = recalled(vec![], true);
        let v =
            serde_json::to_value(RecallOutcome { recalled: r.clone(), receipt: "/s/log/receipts/x.tlog-proof".into() })
                .unwrap();
        assert_eq!(v["id"], r.id.as_str());
        assert_eq!(v["recalled"], "2026-11-17T12:00:00Z");
        assert_eq!(v["log_index"], 42);
        assert_eq!(v["ciphertext_deleted"], true);
        assert_eq!(v["downloaded_by"], serde_json::json!([]));
        assert_eq!(v["receipt"], "/s/log/receipts/x.tlog-proof");
    }
}
