//! Sending a drop: files -> tar -> zero padding to the size class
//! ([`crate::padding`]) -> age (to every member key of every
//! recipient, from the verified directory) -> SHA-256 -> streamed upload ->
//! signed manifest -> commit. Nothing holds a whole file in memory, except
//! a drop whose ciphertext fits in one request ([`crate::send_small`]: at
//! most 1 MiB), which goes to the hub in that one request.

use std::path::PathBuf;

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use sealdrop_log::entry::LogEntry;
use sealdrop_proto::age_keys::AgeRecipient;
use sealdrop_proto::api::CreatedDrop;
use sealdrop_proto::directory::{Agreement, Directory};
use sealdrop_proto::drop::EncryptedTo;
use sealdrop_proto::ids::{DropId, PartyId};
use sealdrop_proto::policy::{self, AgreementRefusal, ExpiryRefusal, NotInForce};

use crate::archive;
use crate::context::Settings;
use crate::deliver::{Contents, Opening, Sealed};
use crate::error::{Error, ErrorCode, Kind, Result};
use crate::outgoing::Pending;
use crate::pipe::{Digested, progress_bar};
use crate::send_small::OneRequest;
use crate::upload::{self, NewUpload};

/// The default time a drop waits for its recipients, as NHS MESH does.
pub const DEFAULT_EXPIRY_DAYS: i64 = 5;

/// What to send.
#[derive(Clone, Debug, Default)]
pub struct SendRequest {
    /// Recipients, by party id, display name or alias.
    pub to: Vec<String>,
    /// The agreement; may be omitted when exactly one applies.
    pub agreement: Option<String>,
    /// How long the drop may wait, e.g. `2d` or `36h`.
    pub expires: Option<String>,
    /// Files and folders.
    pub paths: Vec<PathBuf>,
    /// What the sender allowed that is refused by default (see `preflight`).
    pub allow: crate::preflight::Allow,
    /// `--encoding`: what a `.csv` file named here that is not UTF-8 is
    /// written in; it is sent converted to UTF-8 (see `encoding`).
    pub encoding: Option<String>,
}

/// What was sent.
#[derive(Clone, Debug, Serialize)]
pub struct SendOutcome {
    /// The drop's id.
    pub id: DropId,
    /// Recipient parties.
    pub recipients: Vec<PartyId>,
    /// The agreement it travels under.
    pub agreement: String,
    /// Files in the drop.
    pub files: usize,
    /// Plaintext bytes of file content.
    pub plaintext_bytes: u64,
    /// Ciphertext bytes stored on the hub.
    pub size: u64,
    /// Ciphertext SHA-256.
    pub sha256: String,
    /// When the hub committed it.
    pub committed: Timestamp,
    /// When it expires.
    pub expires: Timestamp,
    /// The offline proof (c2sp.org/tlog-proof) that the hub logged the commit.
    pub receipt: PathBuf,
}

/// Parses `2d`, `36h` into a duration.
pub fn parse_expiry(text: &str) -> Result<SignedDuration> {
    let bad = || {
        Error::new(ErrorCode::BadExpiry, format!("--expires {text:?} is not valid: use hours or days, e.g. 36h or 2d"))
    };
    let t = text.trim();
    let (n, unit) = t.split_at(t.len().saturating_sub(1));
    let n: i64 = n.parse().map_err(|_| bad())?;
    if n <= 0 {
        return Err(bad());
    }
    match unit {
        "h" => Ok(SignedDuration::from_hours(n)),
        "d" => Ok(SignedDuration::from_hours(n.checked_mul(24).ok_or_else(bad)?)),
        _ => Err(bad()),
    }
}

/// How long a drop may wait: `--expires` if given (at most what the
/// agreement allows), else the default capped by the agreement.
pub fn lifetime(agreement: &Agreement, expires: Option<&str>, now: Timestamp) -> Result<SignedDuration> {
    match expires {
        Some(text) => {
            let d = parse_expiry(text)?;
            match policy::lifetime_refusal(agreement, now, d) {
                None => Ok(d),
                // A drop may not wait beyond its agreement's end (the hub refuses that too).
                Some(ExpiryRefusal::OutlivesAgreement) => Err(Error::new(
                    ErrorCode::BadExpiry,
                    format!(
                        "--expires {text} would outlive agreement `{}`, which ends at {}; choose at most {}h; nothing was sent",
                        agreement.id,
                        agreement.valid_until,
                        agreement.valid_until.duration_since(now).as_hours()
                    ),
                )),
                // Only a lifetime longer than the agreement allows is left:
                // `parse_expiry` takes only positive ones.
                Some(_) => Err(Error::new(
                    ErrorCode::BadExpiry,
                    format!(
                        "--expires {text} is longer than agreement `{}` lets a drop wait ({} days); nothing was sent",
                        agreement.id, agreement.max_expiry_days
                    ),
                )),
            }
        }
        None => Ok(policy::default_lifetime(agreement, now, SignedDuration::from_hours(DEFAULT_EXPIRY_DAYS * 24))),
    }
}

/// The expiry to ask the hub for: `now + lifetime` in whole seconds,
/// rounded down. Rounding to the nearest second asked for up to half a
/// second more than the agreement allows whenever `now` was in the second
/// half of a second, and the hub refused it (`bad_expiry`) at random.
pub fn expiry_at(now: Timestamp, lifetime: SignedDuration) -> Result<Timestamp> {
    let exact = now.checked_add(lifetime).map_err(|e| Error::new(ErrorCode::BadExpiry, e.to_string()))?;
    Timestamp::from_second(exact.as_second()).map_err(|e| Error::new(ErrorCode::BadExpiry, e.to_string()))
}

/// Resolves recipients through the directory.
pub fn resolve_recipients(dir: &Directory, to: &[String]) -> Result<Vec<PartyId>> {
    let mut out: Vec<PartyId> = Vec::new();
    for t in to.iter().flat_map(|t| t.split(',')).map(str::trim).filter(|t| !t.is_empty()) {
        let party = dir.resolve_party(t).ok_or_else(|| unknown_party(dir, t))?;
        if !out.contains(&party.id) {
            out.push(party.id.clone());
        }
    }
    if out.is_empty() {
        return Err(Error::new(ErrorCode::NoRecipients, "name at least one recipient with --to PARTY"));
    }
    Ok(out)
}

/// The error for `text`, which names no party in `dir`: with the party it
/// most likely meant, if one is alike enough.
pub fn unknown_party(dir: &Directory, text: &str) -> Error {
    let what_to_do = match crate::suggest::party(dir, text) {
        Some(id) => format!("did you mean {id}?"),
        None => "use a party id, name, GSS code or LA number, see `sealdrop directory show`".to_owned(),
    };
    Error::new(
        ErrorCode::UnknownParty,
        format!("no party {text:?} in the signed directory (serial {}); {what_to_do}", dir.serial),
    )
}

/// The error for `id`, which names no agreement in `dir`: with the one it
/// most likely meant, if one is alike enough.
pub fn unknown_agreement(dir: &Directory, id: &str) -> Error {
    let what_to_do = match crate::suggest::agreement(dir, id) {
        Some(a) => format!("did you mean {a}?"),
        None => "see `sealdrop directory show` for the agreements".to_owned(),
    };
    Error::new(
        ErrorCode::UnknownAgreement,
        format!("no agreement {id:?} in the signed directory (serial {}); {what_to_do}", dir.serial),
    )
}

/// Chooses and checks the agreement: every party must be in it and it must be in force.
pub fn choose_agreement<'d>(
    dir: &'d Directory,
    given: Option<&str>,
    sender: &PartyId,
    recipients: &[PartyId],
    now: Timestamp,
) -> Result<&'d Agreement> {
    let everyone = || std::iter::once(sender).chain(recipients.iter());
    let a = match given {
        Some(id) => dir.agreement(id).ok_or_else(|| unknown_agreement(dir, id))?,
        None => {
            let covering: Vec<&Agreement> =
                dir.agreements.iter().filter(|a| policy::outsiders(a, everyone()).next().is_none()).collect();
            let fits: Vec<&Agreement> = covering.iter().copied().filter(|a| a.in_force(now)).collect();
            match fits.as_slice() {
                [one] => *one,
                // The agreement that would cover them is not in force: say which and why.
                [] if covering.len() == 1 => covering[0],
                [] => {
                    return Err(Error::new(
                        ErrorCode::NoAgreement,
                        format!("no agreement in force covers {sender} and {}; check the recipients", join(recipients)),
                    ));
                }
                many => {
                    return Err(Error::new(
                        ErrorCode::AgreementAmbiguous,
                        format!(
                            "several agreements apply ({}); choose one with --agreement",
                            many.iter().map(|a| a.id.as_str()).collect::<Vec<_>>().join(", ")
                        ),
                    ));
                }
            }
        }
    };
    policy::agreement_admits(a, everyone().map(|p| ((), p)), now).map_err(|refusal| match refusal {
        AgreementRefusal::NotInForce(why) => not_in_force(a, why),
        AgreementRefusal::NotInAgreement { party, .. } => Error::new(
            ErrorCode::NotInAgreement,
            format!("{party} is not a party to agreement `{}` ({}); nothing was sent", a.id, a.title),
        ),
    })?;
    Ok(a)
}

/// The refusal of agreement `a`, which is not in force now, naming its window.
pub fn not_in_force(a: &Agreement, why: NotInForce) -> Error {
    let rule = match why {
        NotInForce::NotYet { valid_from } => format!("is not in force until {valid_from}"),
        NotInForce::Ended { valid_until } => format!("ended at {valid_until}"),
    };
    Error::new(
        ErrorCode::AgreementNotInForce,
        format!("agreement `{}` {rule}: nothing may be sent under it now; nothing was sent", a.id),
    )
}

fn join(p: &[PartyId]) -> String {
    p.iter().map(PartyId::as_str).collect::<Vec<_>>().join(", ")
}

/// A key's name (`<party>/<member>`) and its age recipient.
pub type NamedRecipient = (String, AgeRecipient);

/// The age recipients of every member key of `party` in the directory, and
/// the manifest's record of them. A party with no member keys is refused:
/// nobody there could decrypt.
pub fn party_keys(dir: &Directory, party: &PartyId) -> Result<(Vec<NamedRecipient>, Vec<EncryptedTo>)> {
    let p = dir
        .party(party)
        .ok_or_else(|| Error::new(ErrorCode::UnknownParty, format!("{party} vanished from the directory")))?;
    if p.members.is_empty() {
        return Err(Error::new(
            ErrorCode::UnknownParty,
            format!("{} has no member keys in the directory; ask the coordinator", p.name),
        ));
    }
    let mut keys = Vec::new();
    let mut listed = Vec::new();
    for m in &p.members {
        let card = p.card(m);
        let recipient = card.age_recipient().map_err(|e| Error::new(ErrorCode::DirectoryInvalid, e.to_string()))?;
        keys.push((card.signing_key.name().to_owned(), recipient));
        listed.push(EncryptedTo { key: card.signing_key.name().to_owned(), age_recipient: m.age_recipient.clone() });
    }
    Ok((keys, listed))
}

/// Under an agreement that requires post-quantum keys, refuses any other
/// kind before anything is encrypted. The coordinator cannot sign such a
/// directory; this holds even against one signed by an older client.
pub fn require_post_quantum(agreement: &Agreement, keys: &[(String, AgeRecipient)]) -> Result<()> {
    match keys.iter().find(|(_, r)| !policy::agreement_admits_key(agreement, r.kind())) {
        None => Ok(()),
        Some((name, r)) => Err(Error::new(
            ErrorCode::NotPostQuantum,
            format!(
                "agreement `{}` requires post-quantum keys but {name}'s key is {}; nothing was sent: ask the coordinator to publish that member's post-quantum key",
                agreement.id,
                r.kind()
            ),
        )),
    }
}

/// Sends a drop.
pub fn send(settings: &Settings, req: &SendRequest) -> Result<SendOutcome> {
    let session = settings.session()?;
    send_in(settings, &session, req)
}

/// What a send under an idempotency key did: see [`send_keyed`].
#[derive(Clone, Debug)]
pub enum Keyed {
    /// Sent now.
    Sent(SendOutcome),
    /// An earlier run under the same key committed this drop; nothing was
    /// sent again.
    AlreadySent {
        /// The drop the earlier run committed.
        id: DropId,
        /// When the hub committed it.
        committed: Timestamp,
        /// When it expires.
        expires: Timestamp,
    },
}

/// Sends a drop in a session already open (a program sending many drops
/// verifies the directory and the log once, not per drop).
pub fn send_in(settings: &Settings, session: &crate::context::Session, req: &SendRequest) -> Result<SendOutcome> {
    match send_with_key(settings, session, req, None)? {
        Keyed::Sent(outcome) => Ok(outcome),
        // Only a create with an idempotency key is answered with a committed drop.
        Keyed::AlreadySent { id, .. } => Err(Error::new(
            ErrorCode::Internal,
            format!("the hub answered a new drop with drop {id}, committed before; nothing was sent"),
        )),
    }
}

/// Sends a drop under `idempotency_key` (64 lowercase hex digits): if a
/// run under the same key already committed a drop, the hub says so and
/// nothing is sent again; if one left its drop open, the hub replaces it.
/// For a program that must never send the same thing twice across
/// restarts (`watch`), whose key is fixed before the first attempt.
pub fn send_keyed(
    settings: &Settings,
    session: &crate::context::Session,
    req: &SendRequest,
    idempotency_key: &str,
) -> Result<Keyed> {
    send_with_key(settings, session, req, Some(idempotency_key.to_owned()))
}

fn send_with_key(
    settings: &Settings,
    session: &crate::context::Session,
    req: &SendRequest,
    idempotency_key: Option<String>,
) -> Result<Keyed> {
    let (hub, me, dir) = (&session.hub, &session.me, &session.directory.directory);
    let recipients = resolve_recipients(dir, &req.to)?;
    crate::preflight::check_recipients(&me.party, &recipients, req.allow)?;
    let now = settings.clock.now();
    let agreement = choose_agreement(dir, req.agreement.as_deref(), &me.party, &recipients, now)?;
    let lifetime = lifetime(agreement, req.expires.as_deref(), now)?;
    let mut encrypted_to = Vec::new();
    let mut age_recipients = Vec::new();
    for party in &recipients {
        let (keys, listed) = party_keys(dir, party)?;
        age_recipients.extend(keys);
        encrypted_to.extend(listed);
    }
    require_post_quantum(agreement, &age_recipients)?;
    crate::age_keys::check_keys(&age_recipients)?;
    let (paths, _converted) = crate::encoding::prepare(settings, &req.paths, req.encoding.as_deref())?;
    let plan = archive::plan(&paths)?;
    for warning in crate::preflight::check_plan(&plan, req.allow)? {
        eprintln!("{warning}");
    }
    let fingerprint = upload::fingerprint(&plan, &recipients, &agreement.id, req.expires.as_deref());

    // From here on, Ctrl-C withdraws what this run created (`interrupt`).
    crate::interrupt::working();
    let resumed = resume(settings, session, &fingerprint, &encrypted_to)?;
    // Drops earlier runs of this same send left open go first: a re-run
    // replaces them (see `withdraw`).
    let keep = resumed.as_ref().map(|(d, _)| &d.id);
    crate::withdraw::replace_earlier(hub, &settings.state_dir, &fingerprint, keep, settings.quiet)?;
    let small = match &resumed {
        Some(_) => OneRequest::ThreeSteps,
        None => crate::send_small::one_request(
            settings,
            session,
            &plan,
            &age_recipients,
            Contents {
                recipients: recipients.clone(),
                encrypted_to: encrypted_to.clone(),
                agreement: agreement.id.clone(),
            },
            agreement,
            lifetime,
            idempotency_key.as_deref(),
            &fingerprint,
        )?,
    };
    let (created, digest, Sealed { note, committed }) = match small {
        OneRequest::AlreadySent { id, committed, expires } => {
            return Ok(Keyed::AlreadySent { id, committed, expires });
        }
        OneRequest::Sent(created, digest, sealed) => (created, digest, *sealed),
        OneRequest::ThreeSteps => {
            let (created, digest) = match three_steps(
                settings,
                session,
                resumed,
                ThreeSteps {
                    recipients: &recipients,
                    agreement,
                    expires: expiry_at(now, lifetime)?,
                    idempotency_key,
                    fingerprint: &fingerprint,
                    encrypted_to: &encrypted_to,
                    plan: &plan,
                    age_recipients,
                },
            )? {
                Ok(done) => done,
                Err(already) => return Ok(already),
            };
            let sealed = crate::deliver::commit(
                settings,
                session,
                &created,
                Contents { recipients: recipients.clone(), encrypted_to, agreement: agreement.id.clone() },
                &digest,
            )?;
            (created, digest, sealed)
        }
    };
    crate::withdraw::forget(&settings.state_dir, &created.id);
    crate::outgoing::discard(&settings.state_dir, &created.id);
    let receipt = settings
        .keep_receipt(
            session,
            committed.log_index,
            &format!("{}.committed", created.id),
            |e| matches!(e, LogEntry::DropCommitted { manifest, .. } if *manifest == note),
            committed.proof.as_ref(),
        )
        .map_err(|e| Error { message: format!("drop {} was committed, but: {}", created.id, e.message), ..e });
    crate::journal::record_sent(
        &settings.state_dir,
        settings.clock.now(),
        &note,
        &me.signing.verifier(),
        crate::journal::top_level_names(&plan),
        Some(plan.total_bytes),
        committed.committed,
        committed.log_index,
        receipt.as_deref().ok(),
    );
    let receipt = receipt?;
    Ok(Keyed::Sent(SendOutcome {
        id: created.id,
        recipients,
        agreement: agreement.id.clone(),
        files: plan.files,
        plaintext_bytes: plan.total_bytes,
        size: digest.len,
        sha256: digest.sha256,
        committed: committed.committed,
        expires: created.expires,
        receipt,
    }))
}

/// What the three steps (create, upload, commit) of a send need.
struct ThreeSteps<'a> {
    recipients: &'a [PartyId],
    agreement: &'a Agreement,
    expires: Timestamp,
    idempotency_key: Option<String>,
    fingerprint: &'a str,
    encrypted_to: &'a [EncryptedTo],
    plan: &'a archive::Plan,
    age_recipients: Vec<NamedRecipient>,
}

/// Creates and uploads the drop (or continues the upload `resumed` names);
/// returns it and its digest for the commit, or, under an idempotency key
/// an earlier run committed, that run's drop.
fn three_steps(
    settings: &Settings,
    session: &crate::context::Session,
    resumed: Option<(CreatedDrop, Digested)>,
    t: ThreeSteps<'_>,
) -> Result<std::result::Result<(CreatedDrop, Digested), Keyed>> {
    let ThreeSteps { recipients, agreement, expires, idempotency_key, fingerprint, encrypted_to, plan, age_recipients } =
        t;
    if let Some((created, digest)) = resumed {
        return Ok(Ok((created, digest)));
    }
    let created = crate::deliver::open(
        session,
        Opening {
            recipients,
            agreement: &agreement.id,
            expires,
            idempotency_key,
            state_dir: Some(&settings.state_dir),
        },
    )?;
    if let Some(committed) = created.committed {
        return Ok(Err(Keyed::AlreadySent { id: created.id, committed, expires: created.expires }));
    }
    // Best effort: without the record, a re-run after a failure
    // sends a new drop and this one waits on the hub until it expires.
    let _ = crate::withdraw::remember(&settings.state_dir, &created.id, fingerprint);
    // A large drop keeps a local copy of its ciphertext so a cut-off
    // upload is continued, not started again (see `upload`).
    let spool = (plan.total_bytes >= settings.resume_min_bytes).then(|| {
        let pending = Pending {
            drop: created.id.clone(),
            fingerprint: fingerprint.to_owned(),
            recipients: recipients.to_vec(),
            agreement: agreement.id.clone(),
            encrypted_to: encrypted_to.to_vec(),
            created: created.created,
            expires: created.expires,
            digest: None,
            base: 0,
        };
        (settings.state_dir.as_path(), pending)
    });
    // The padding to the size class is sent too: the bar counts it.
    let bar = progress_bar(crate::padding::progress_len(plan), "encrypting and sending", settings.quiet);
    let progress = bar.clone();
    let digest = upload::upload_new(
        NewUpload {
            hub: &session.hub,
            id: &created.id,
            plan,
            recipients: age_recipients,
            spool,
            quiet: settings.quiet,
        },
        move |n| progress.inc(n),
    );
    bar.finish_and_clear();
    Ok(Ok((created, digest?)))
}

/// Continues the send that `fingerprint` names if an earlier run of it was
/// cut off after encrypting everything: the hub gets the rest of the
/// ciphertext from the local copy. Returns the drop and the digest to sign,
/// or `None` to send afresh (no such send, the directory now lists other
/// keys for the recipients, or the hub no longer holds the open drop).
fn resume(
    settings: &Settings,
    session: &crate::context::Session,
    fingerprint: &str,
    encrypted_to: &[EncryptedTo],
) -> Result<Option<(CreatedDrop, Digested)>> {
    let Some(pending) = Pending::find(&settings.state_dir, fingerprint) else {
        return Ok(None);
    };
    let id = pending.drop.clone();
    let Some(d) = pending.digest.clone().filter(|_| pending.encrypted_to == encrypted_to) else {
        crate::outgoing::discard(&settings.state_dir, &id);
        return Ok(None);
    };
    let digest = Digested { sha256: d.sha256, len: d.len };
    let (spool, _) = crate::outgoing::spool_paths(&settings.state_dir, &id);
    if !settings.quiet {
        eprintln!("continuing the upload of drop {id} from its local encrypted copy");
    }
    crate::interrupt::opened(&session.hub, &id, Some(&settings.state_dir));
    match upload::continue_upload(&session.hub, &id, &spool, pending.base, &digest) {
        Ok(()) => {
            Ok(Some((CreatedDrop { id, created: pending.created, expires: pending.expires, committed: None }, digest)))
        }
        Err(e) if e.kind == Kind::Refused => {
            // The drop ended or is no longer open: send it again as a new drop.
            if !settings.quiet {
                eprintln!("note: drop {id} cannot be continued ({}); sending afresh", e.message);
            }
            crate::outgoing::discard(&settings.state_dir, &id);
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_parsing() {
        assert_eq!(parse_expiry("2d").unwrap(), SignedDuration::from_hours(48));
        assert_eq!(parse_expiry("36h").unwrap(), SignedDuration::from_hours(36));
        for bad in ["", "d", "0d", "-1d", "2w", "1.5d", "h"] {
            assert_eq!(parse_expiry(bad).unwrap_err().code, "bad_expiry", "{bad}");
        }
    }

    /// The sender's own check, for a directory that reached it without the
    /// coordinator's (a signed directory cannot hold such a key).
    #[test]
    fn under_an_agreement_requiring_post_quantum_keys_the_sender_refuses_any_other_kind() {
        use sealdrop_proto::age_keys::AgeIdentity;
        let mut a = crate::audit::report::fixture::agreement("fsm", &["camden", "islington"], 30);
        let pq = ("islington/a".to_owned(), AgeIdentity::generate().to_public().unwrap());
        let classic = ("islington/b".to_owned(), AgeIdentity::generate_classic().to_public().unwrap());
        require_post_quantum(&a, &[pq.clone(), classic.clone()]).expect("no requirement: any kind");
        a.require_pq = true;
        require_post_quantum(&a, std::slice::from_ref(&pq)).expect("post-quantum keys pass");
        let e = require_post_quantum(&a, &[pq, classic]).unwrap_err();
        assert_eq!(e.code, "not_post_quantum");
        assert!(e.message.contains("islington/b's key is classic; nothing was sent"), "{}", e.message);
    }
}
