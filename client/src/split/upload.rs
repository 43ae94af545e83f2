//! Step 3b: uploading and committing the encrypted parts, several at once,
//! each through the same send path as `send` ([`crate::deliver`]).

use std::collections::HashMap;
use std::fs::File;
use std::path::PathBuf;
use std::sync::Mutex;

use jiff::Timestamp;

use sealdrop_log::entry::LogEntry;
use sealdrop_proto::api::LogProof;
use sealdrop_proto::directory::Agreement;
use sealdrop_proto::drop::EncryptedTo;
use sealdrop_proto::ids::DropId;

use super::encrypt::encrypt_parts;
use super::{PartStatus, Plan, SplitOutcome, SplitRequest};
use crate::context::{Session, Settings};
use crate::deliver::{Contents, Opening, Sealed};
use crate::error::{Error, ErrorCode, Result};
use crate::pipe::Digested;

/// Parts uploaded at once.
const UPLOADERS: usize = 4;

/// A part encrypted into the spool, ready to upload.
pub(super) struct Spooled {
    pub(super) index: usize,
    pub(super) path: PathBuf,
    pub(super) digest: Digested,
    pub(super) encrypted_to: Vec<EncryptedTo>,
}

/// Steps 3: encrypts and sends the plan's parts that are still missing. Call
/// only when [`Plan::refusal`] is `None` and the analyst confirmed.
pub fn send(settings: &Settings, session: &Session, plan: &Plan, req: &SplitRequest) -> Result<SplitOutcome> {
    if let Some(e) = plan.refusal() {
        return Err(e.clone());
    }
    let dir = &session.directory.directory;
    let agreement_id = plan.agreement.as_deref().unwrap_or_default();
    let agreement = dir
        .agreement(agreement_id)
        .ok_or_else(|| Error::new(ErrorCode::UnknownAgreement, format!("agreement {agreement_id:?} vanished")))?;
    let lifetime = crate::send::lifetime(agreement, plan.expires.as_deref(), settings.clock.now())?;
    let spool_root = settings.state_dir.join("spool");
    std::fs::create_dir_all(&spool_root)
        .map_err(|e| Error::io(format!("cannot create {}", spool_root.display()), e))?;
    let spool = tempfile::Builder::new()
        .prefix("split-")
        .tempdir_in(&spool_root)
        .map_err(|e| Error::io(format!("cannot create a spool folder in {}", spool_root.display()), e))?;
    // Ctrl-C from here on withdraws the parts created and not committed.
    crate::interrupt::working();
    crate::interrupt::scratch(spool.path());
    let spooled = encrypt_parts(settings, session, plan, req, spool.path())?;

    let queue = Mutex::new(spooled.into_iter());
    let results: Mutex<Vec<(usize, Result<PartResult>)>> = Mutex::new(Vec::new());
    let workers = UPLOADERS.min(plan.parts.len()).max(1);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let next = queue.lock().map(|mut q| q.next()).ok().flatten();
                    let Some(part) = next else { break };
                    let r = upload_part(settings, session, plan, agreement, lifetime, &part);
                    if let Ok(mut all) = results.lock() {
                        all.push((part.index, r));
                    }
                }
            });
        }
    });
    let results = results.into_inner().unwrap_or_default();
    // Receipts in log order: each moves the client's newest verified
    // checkpoint forward, and the next part's checkpoint is then never
    // older than it (parts were committed in parallel).
    let mut committed: Vec<(usize, DropId, Timestamp, u64, String, Option<LogProof>)> = Vec::new();
    let mut by_index: HashMap<usize, PartStatus> = HashMap::new();
    for (i, r) in results {
        let status = match r {
            Ok(PartResult::Committed { drop, committed: at, log_index, manifest, proof }) => {
                committed.push((i, drop, at, log_index, manifest, proof));
                continue;
            }
            Ok(PartResult::Existing { drop, committed }) => PartStatus::AlreadySent { drop, committed },
            Err(e) => PartStatus::Failed { code: e.code.clone(), message: e.message.clone() },
        };
        by_index.insert(i, status);
    }
    committed.sort_by_key(|c| c.3);
    for (i, drop, at, log_index, manifest, proof) in committed {
        let p = &plan.parts[i];
        let receipt = settings.keep_receipt(
            session,
            log_index,
            &format!("{drop}.committed"),
            |e| matches!(e, LogEntry::DropCommitted { manifest: m, .. } if *m == manifest),
            proof.as_ref(),
        );
        crate::journal::record_sent(
            &settings.state_dir,
            settings.clock.now(),
            &manifest,
            &session.me.signing.verifier(),
            vec![p.file_name.clone()],
            Some(p.bytes),
            at,
            log_index,
            receipt.as_deref().ok(),
        );
        let status = match receipt {
            Ok(receipt) => PartStatus::Sent { drop, committed: at, receipt },
            Err(e) => PartStatus::Failed {
                code: e.code.clone(),
                message: format!("drop {drop} was committed, but: {}", e.message),
            },
        };
        by_index.insert(i, status);
    }
    let mut parts = Vec::new();
    for (i, p) in plan.parts.iter().enumerate() {
        let status = match (&p.already_sent, by_index.remove(&i)) {
            (Some((drop, committed)), _) => PartStatus::AlreadySent { drop: drop.clone(), committed: *committed },
            (None, Some(status)) => status,
            (None, None) => PartStatus::Failed {
                code: ErrorCode::Internal.as_str().into(),
                message: "the part was not attempted".into(),
            },
        };
        parts.push((p.party.clone(), status));
    }
    Ok(SplitOutcome { parts })
}

enum PartResult {
    Committed { drop: DropId, committed: Timestamp, log_index: u64, manifest: String, proof: Option<LogProof> },
    Existing { drop: DropId, committed: Timestamp },
}

/// Creates (idempotently), uploads and commits one spooled part.
fn upload_part(
    settings: &Settings,
    session: &Session,
    plan: &Plan,
    agreement: &Agreement,
    lifetime: jiff::SignedDuration,
    part: &Spooled,
) -> Result<PartResult> {
    let p = &plan.parts[part.index];
    let hub = &session.hub;
    let now = settings.clock.now();
    let expires = crate::send::expiry_at(now, lifetime)?;
    let recipients = [p.party.clone()];
    let created = crate::deliver::open(
        session,
        Opening {
            recipients: &recipients,
            agreement: &agreement.id,
            expires,
            idempotency_key: Some(p.idempotency_key.clone()),
            // No local record: the part's idempotency key makes a re-run replace it.
            state_dir: None,
        },
    )?;
    if let Some(committed) = created.committed {
        return Ok(PartResult::Existing { drop: created.id, committed });
    }
    let file = File::open(&part.path).map_err(|e| Error::io("cannot open a spooled part", e))?;
    let uploaded = hub.upload_file(&created.id, file)?;
    if uploaded.sha256 != part.digest.sha256 || uploaded.len != part.digest.len {
        return Err(Error::new(
            ErrorCode::UploadCorrupted,
            format!(
                "the hub received {} bytes with SHA-256 {} but {} bytes with {} were sent; nothing was committed, try again",
                uploaded.len, uploaded.sha256, part.digest.len, part.digest.sha256
            ),
        ));
    }
    let Sealed { note, committed } = crate::deliver::commit(
        settings,
        session,
        &created,
        Contents {
            recipients: recipients.to_vec(),
            encrypted_to: part.encrypted_to.clone(),
            agreement: agreement.id.clone(),
        },
        &part.digest,
    )?;
    Ok(PartResult::Committed {
        drop: created.id,
        committed: committed.committed,
        log_index: committed.log_index,
        manifest: note,
        proof: committed.proof,
    })
}
