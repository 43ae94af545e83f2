//! A small drop in one request (`PUT /v1/drops/{id}`): created, uploaded,
//! committed and logged at once, under exactly the checks of the three
//! steps (create, upload, commit).
//!
//! The sender chooses the id and signs the manifest before the hub has seen
//! the drop, so the facts a create would have decided are the sender's:
//! `created` is its clock (within [`MAX_CLOCK_SKEW_SECS`] of the hub's, the
//! window request signatures get), and `expires` must be exactly what the
//! agreement allows from `created` (refused, not trimmed: the manifest is
//! already signed). Then the create's checks ([`check_announcement`]) and the
//! commit's ([`check_commit`], the age header rule) run on the manifest and
//! the ciphertext, which the request carries whole and the hub holds in
//! memory (at most `max_single_request_bytes`). Only then is anything stored:
//! where the back end keeps small ciphertexts with the drops (SQLite, up to
//! the inline tier's 64 KiB) the drop is stored whole, rows, ciphertext,
//! commit, log entry and proof in one transaction ([`WholeDropStore`]), so
//! nothing of it exists until all of it does; elsewhere in the order a
//! three-step send stores it (drop row, upload, promotion, commit with its
//! log entry), so every store and every sweep sees nothing it does not see
//! from a three-step send.
//!
//! A re-run is safe: for an id already committed with the byte-equal
//! manifest the answer is that commit again (marked `already`); for any
//! other drop of that id, `drop_exists` (or `conflict` while it is open).

use bytes::Bytes;
use futures_util::{Stream, StreamExt as _};
use jiff::Timestamp;
use sealdrop_proto::api::{Committed, DropState, LogProof, MAX_PUT_DROP_MANIFEST_LEN, split_put_drop_body};
use sealdrop_proto::drop::Manifest;
use sealdrop_proto::error_code::ErrorCode;
use sealdrop_proto::ids::DropId;
use sealdrop_proto::note::peek_doc;
use sealdrop_proto::request::MAX_CLOCK_SKEW_SECS;
use sha2::{Digest as _, Sha256};

use super::commit::{bad_manifest, check_commit, header_verdict, recheck_commit};
use super::create::{Announcement, check_announcement, check_idempotency_key};
use super::quota::Upload;
use super::upload::BodyBreak;
use super::{Caller, DropError, Drops, record_drop, ts};
use crate::storage::meta::{CommitRecord, ContentDigest, CreateOutcome, DropRecord, NewDrop, RecipientRecord};
use crate::storage::whole::{WholeDrop, WholeDropStore, WholeOutcome};
use crate::transfer_log::{appended_proof, prove_appended};

/// A drop in one request, as it arrives.
pub struct PutDropRequest<B> {
    /// The size of the newest log checkpoint the sender verified, for a
    /// consistency proof in the answer (as [`sealdrop_proto::api::Commit`]).
    pub known_size: Option<u64>,
    /// The sender's idempotency key, as a create takes it: the hub keeps one
    /// drop per sender party and key, so a re-run that goes by the three
    /// steps (a smaller cap, another hub version) finds the drop this
    /// request committed, and a re-run in one request finds one the three
    /// steps committed.
    pub idempotency_key: Option<String>,
    /// The length the sender declared, if any: a body declared too large
    /// is refused before any of it is read.
    pub content_length: Option<u64>,
    /// The hex SHA-256 the sender signed for the body, if it signed one.
    pub signed_sha256: Option<String>,
    /// The body's chunks.
    pub body: B,
}

fn too_large(cap: u64) -> DropError {
    DropError::new(
        ErrorCode::TooLargeForOneRequest,
        format!(
            "the ciphertext is larger than this hub takes in one request ({cap} bytes): send it in three requests \
             (create, upload, commit)"
        ),
    )
}

/// The most a body may hold: its length prefix, the longest manifest, and
/// the largest ciphertext taken in one request.
fn body_limit(cap: u64) -> u64 {
    cap.saturating_add(4 + MAX_PUT_DROP_MANIFEST_LEN as u64)
}

/// Reads the body into memory, refusing it as soon as it passes `limit`
/// (a declared length past it before reading anything).
async fn read_bounded(
    body: impl Stream<Item = Result<Bytes, BodyBreak>>,
    declared: Option<u64>,
    limit: u64,
    cap: u64,
) -> Result<Vec<u8>, DropError> {
    if declared.is_some_and(|len| len > limit) {
        return Err(too_large(cap));
    }
    // A declared length is known to be within the limit; reserve no more
    // than that, and nothing for an undeclared one.
    let mut out = Vec::with_capacity(usize::try_from(declared.unwrap_or(0)).unwrap_or(0));
    let mut stream = std::pin::pin!(body);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| match e {
            BodyBreak::Idle(idle) => DropError::new(
                ErrorCode::RequestTimeout,
                format!(
                    "the request sent nothing for {} s, so the hub stopped waiting; nothing was stored: send it again",
                    idle.as_secs_f64()
                ),
            ),
            BodyBreak::Broken(e) => {
                DropError::bad_request(format!("the request was interrupted ({e}); nothing was stored: send it again"))
            }
        })?;
        if out.len() as u64 + chunk.len() as u64 > limit {
            return Err(too_large(cap));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// The drop a manifest announces, as its rows would hold it once created
/// and uploaded: what [`check_commit`] compares the manifest with.
fn record_of(
    id: &DropId,
    caller: &Caller,
    m: &Manifest,
    agreement: &str,
    expires: i64,
    digest: &ContentDigest,
) -> DropRecord {
    DropRecord {
        id: id.clone(),
        sender: caller.party.clone(),
        sender_member: caller.member.clone(),
        agreement: agreement.to_owned(),
        created: m.created.as_second(),
        expires,
        state: DropState::Open,
        upload: Some(digest.clone()),
        content: None,
        committed: None,
        manifest: None,
        deleted: None,
        commit_index: None,
        end_index: None,
        recipients: m.recipients.iter().cloned().map(RecipientRecord::waiting).collect(),
    }
}

/// The refusal of a drop whose idempotency key names drop `earlier`, committed.
fn sent_under_key(earlier: &DropId) -> DropError {
    DropError::new(
        ErrorCode::DropExists,
        format!("drop {earlier} was sent under this idempotency key already: nothing was sent again"),
    )
}

/// The sender's `created` is its own clock: within the clock skew of the
/// hub's `now`, as a request signature's time must be.
fn check_created(created: Timestamp, now: Timestamp) -> Result<(), DropError> {
    if (created.as_second() - now.as_second()).abs() > MAX_CLOCK_SKEW_SECS {
        return Err(DropError::new(
            ErrorCode::BadManifest,
            format!(
                "the manifest's `created` {created} is more than {MAX_CLOCK_SKEW_SECS} s from the hub's clock ({now}): \
                 set the sender's clock right and send again"
            ),
        ));
    }
    Ok(())
}

impl Drops<'_> {
    /// A member of the sending party creates, uploads and commits drop `id`
    /// in one request; the answer is the commit's, with its log proof.
    pub async fn put_drop(
        &self,
        caller: &Caller,
        id: DropId,
        req: PutDropRequest<impl Stream<Item = Result<Bytes, BodyBreak>>>,
    ) -> Result<Committed, DropError> {
        let hub = self.hub;
        record_drop(&id);
        check_idempotency_key(req.idempotency_key.as_deref())?;
        let cap = hub.config().max_single_request_bytes.min(hub.config().max_upload_bytes);
        let limit = body_limit(cap);
        // Held until the request is answered: the body is in memory until then.
        let _memory = hub.hold_one_request_memory(req.content_length.unwrap_or(limit).min(limit)).ok_or_else(|| {
            DropError::new(
                ErrorCode::TooLargeForOneRequest,
                "the hub is holding as many one-request drops in memory as it allows right now: send it in three \
                 requests (create, upload, commit), which stream",
            )
        })?;
        let body = read_bounded(req.body, req.content_length, limit, cap).await?;
        if req.signed_sha256.is_some_and(|signed| signed != hex::encode(Sha256::digest(&body))) {
            return Err(DropError::new(
                ErrorCode::BadSignature,
                "the body's SHA-256 does not match the signed `sealdrop-content-sha256` header",
            ));
        }
        let (note, ciphertext) = split_put_drop_body(&body).map_err(|e| DropError::bad_request(e.to_string()))?;
        if ciphertext.len() as u64 > cap {
            return Err(too_large(cap));
        }
        let digest = ContentDigest { sha256: hex::encode(Sha256::digest(ciphertext)), len: ciphertext.len() as u64 };

        let _lock = hub.lock_drop(&id).await?;
        if let Some(rec) = hub.drops().drop_record(&id).await? {
            return self.again(caller, rec, note, req.known_size).await;
        }
        if let Some(key) = &req.idempotency_key
            && let Some(earlier) = hub.drops().drop_by_idempotency_key(&caller.party, key).await?
            && earlier.state != DropState::Open
        {
            return Err(sent_under_key(&earlier.id));
        }
        // The claimed facts, unverified: the announcement's checks run on
        // them, then `check_commit` verifies the signature and that the
        // manifest states exactly these facts.
        let claimed = peek_doc::<Manifest>(note).map_err(|e| bad_manifest(e.to_string()))?;
        let now = hub.now();
        check_created(claimed.created, now)?;
        let announced =
            Announcement { recipients: &claimed.recipients, agreement: &claimed.agreement, expires: claimed.expires };
        let (agreement, expires) = {
            let directory = hub.directory();
            let (a, expires) = check_announcement(&directory.directory, caller, &announced, claimed.created, now)?;
            (a.id.clone(), expires)
        };
        // A create trims an expiry a little beyond the limit, and the client
        // signs what the hub answers; here the manifest is signed already.
        if expires != claimed.expires.as_second() {
            return Err(DropError::new(
                ErrorCode::BadExpiry,
                format!(
                    "the manifest's expiry {} is after the latest agreement `{agreement}` allows for a drop created \
                     at {}, {}: sign a manifest with an expiry within it",
                    claimed.expires,
                    claimed.created,
                    ts(expires)?
                ),
            ));
        }
        let rec = record_of(&id, caller, &claimed, &agreement, expires, &digest);
        let (manifest, _) = check_commit(&hub.directory().directory, caller, &rec, note, &digest, now)?;
        header_verdict(ciphertext, &claimed.encrypted_to, true)?;

        // Counted against the party's quotas, as an upload of this size.
        let mut quota = Upload::begin(hub, &caller.party, &id, 0, Some(digest.len)).await?;
        quota.grow(digest.len).await?;
        let new = NewDrop {
            id: id.clone(),
            sender: caller.party.clone(),
            sender_member: caller.member.clone(),
            agreement,
            created: rec.created,
            expires,
            recipients: claimed.recipients.clone(),
            idempotency_key: req.idempotency_key,
            durable_now: false,
        };
        let ciphertext = Bytes::copy_from_slice(ciphertext);
        let whole = hub.whole_drops().filter(|w| digest.len <= w.max_len());
        let (log_index, committed, proof) = match whole {
            Some(whole) => {
                self.put_whole(whole, caller, &rec, (&manifest, note), new, ciphertext, req.known_size).await?
            }
            None => {
                let (log_index, committed) =
                    self.create_and_commit(caller, &rec, (&manifest, note), &new, ciphertext).await?;
                let proof = prove_appended(hub.log(), log_index, req.known_size).await?;
                (log_index, committed, proof)
            }
        };
        // Committed: from here on nothing is taken back.
        crate::failpoint::hit(crate::failpoint::COMMIT_AFTER_DB);
        quota.keep();
        let metrics = hub.metrics();
        metrics.drop_created();
        metrics.uploaded(digest.len);
        metrics.drop_committed();
        for r in &rec.recipients {
            hub.inbox_waits().committed(&r.party);
        }
        tracing::info!(size = digest.len, log_index, "committed in one request");
        Ok(Committed { id, committed, log_index, proof: Some(proof), already: false })
    }

    /// The drop stored whole ([`WholeDropStore`]): in the log's turn, the
    /// commit's checks again at the entry's time, then rows, ciphertext,
    /// commit, entry and proof in one transaction. Nothing is stored unless
    /// all of it is.
    #[allow(clippy::too_many_arguments, reason = "the facts of one checked drop, each used once")]
    async fn put_whole(
        &self,
        whole: &dyn WholeDropStore,
        caller: &Caller,
        rec: &DropRecord,
        (manifest, note): (&Manifest, &str),
        new: NewDrop,
        ciphertext: Bytes,
        known_size: Option<u64>,
    ) -> Result<(u64, Timestamp, LogProof), DropError> {
        let hub = self.hub;
        let Some(digest) = rec.upload.clone() else {
            return Err(DropError::internal("a drop in one request without its digest"));
        };
        let turn = hub.log_turn().await?;
        let now = turn.now();
        // As a commit: the agreement may have ended, or the drop expired,
        // while the request waited for its turn.
        let log_entry = recheck_commit(&hub.directory().directory, caller, rec, manifest, note, &digest, now)?;
        let commit = CommitRecord {
            sender_member: caller.member.clone(),
            manifest: note.to_owned(),
            content: digest,
            committed: now.as_second(),
            log_entry,
        };
        let entry = commit.log_entry.clone();
        match whole.put_whole(WholeDrop { drop: new, commit, ciphertext, known_size }, Box::new(turn)).await? {
            WholeOutcome::Committed { log_index, replaced, proof } => {
                // An open drop of the key (a three-step run cut off) was
                // replaced, as a create replaces it.
                if let Some(old) = replaced {
                    self.discard_files(&old).await;
                }
                Ok((log_index, now, appended_proof(proof, &entry)))
            }
            WholeOutcome::AlreadyCommitted(earlier) => Err(sent_under_key(&earlier.id)),
        }
    }

    /// The drop created, then stored and committed as a three-step send
    /// stores it, for back ends that keep ciphertexts apart from the drops.
    /// Returns the entry's index and time; on an error nothing is left.
    async fn create_and_commit(
        &self,
        caller: &Caller,
        rec: &DropRecord,
        (manifest, note): (&Manifest, &str),
        new: &NewDrop,
        ciphertext: Bytes,
    ) -> Result<(u64, Timestamp), DropError> {
        let hub = self.hub;
        let id = &rec.id;
        match hub.drops().create_drop(new).await? {
            // An open drop of the key (a three-step run cut off) is replaced,
            // as a create replaces it.
            CreateOutcome::Created { replaced: Some(old) } => self.discard_files(&old).await,
            CreateOutcome::Created { replaced: None } => {}
            CreateOutcome::AlreadyCommitted(earlier) => return Err(sent_under_key(&earlier.id)),
        }
        let stored = self.store_and_commit(caller, rec, (manifest, note), ciphertext).await;
        if stored.is_err() {
            // Nothing of a refused or failed request stays behind: the
            // drop was never visible, so its rows and files just go.
            self.discard_files(id).await;
            if let Err(forget) = hub.drops().forget_open_drop(id).await {
                tracing::warn!(error = %forget, "could not remove the rows of a failed drop");
            }
        }
        stored
    }

    /// Stores the ciphertext of the drop `rec` (created, still open) as an
    /// upload, promotes it and commits it in the log's turn, checking again
    /// at the entry's time. Returns the entry's index and time; on an error
    /// nothing is committed, and the caller removes the drop.
    async fn store_and_commit(
        &self,
        caller: &Caller,
        rec: &DropRecord,
        (manifest, note): (&Manifest, &str),
        ciphertext: Bytes,
    ) -> Result<(u64, Timestamp), DropError> {
        let hub = self.hub;
        let id = &rec.id;
        let Some(digest) = rec.upload.clone() else {
            return Err(DropError::internal("a drop in one request without its digest"));
        };
        // Created in this request, under its lock: no earlier upload to discard.
        let mut sink = hub.blobs().begin_new_upload(id).await?;
        sink.write(ciphertext).await?;
        sink.finish().await?;
        crate::failpoint::hit(crate::failpoint::UPLOAD_BEFORE_RECORD);
        if !hub.drops().set_upload(id, Some(&digest), hub.now().as_second()).await? {
            return Err(DropError::conflict(format!("drop {id} changed while it was stored: send it again")));
        }
        hub.blobs().promote(id).await?;
        crate::failpoint::hit(crate::failpoint::COMMIT_AFTER_PROMOTE);
        let turn = hub.log_turn().await?;
        let now = turn.now();
        // As a commit: the agreement may have ended, or the drop expired,
        // while the blob was stored.
        let log_entry = match recheck_commit(&hub.directory().directory, caller, rec, manifest, note, &digest, now) {
            Ok(checked) => checked,
            Err(e) => {
                drop(turn);
                return Err(e);
            }
        };
        let record = CommitRecord {
            sender_member: caller.member.clone(),
            manifest: note.to_owned(),
            content: digest,
            committed: now.as_second(),
            log_entry,
        };
        let Some(log_index) = hub.drops().commit_drop(id, &record, Box::new(turn)).await? else {
            return Err(DropError::conflict(format!("drop {id} changed during the commit: send it again")));
        };
        Ok((log_index, now))
    }

    /// The answer to a request for an id the hub holds a drop of: the
    /// committed drop again when the request is a re-run of the one that
    /// committed it (the byte-equal manifest, so the same member signed the
    /// same facts); `drop_exists` otherwise, and `conflict` while the drop
    /// is open (a three-step send of it is under way).
    async fn again(
        &self,
        caller: &Caller,
        rec: DropRecord,
        note: &str,
        known_size: Option<u64>,
    ) -> Result<Committed, DropError> {
        let id = &rec.id;
        if rec.sender == caller.party && rec.state == DropState::Open {
            return Err(DropError::conflict(format!(
                "drop {id} is open: it is being sent in three requests; send this drop under another id"
            )));
        }
        if rec.sender != caller.party || rec.manifest.as_deref() != Some(note) {
            return Err(DropError::new(
                ErrorCode::DropExists,
                format!("drop {id} exists already with another manifest: send this drop under another id"),
            ));
        }
        let (Some(committed), Some(log_index)) = (rec.committed, rec.commit_index) else {
            return Err(DropError::internal(format_args!("drop {id} has a manifest but no commit time or entry")));
        };
        let proof = prove_appended(self.hub.log(), log_index, known_size).await?;
        Ok(Committed { id: id.clone(), committed: ts(committed)?, log_index, proof: Some(proof), already: true })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(parts: &[&'static [u8]]) -> impl Stream<Item = Result<Bytes, BodyBreak>> {
        futures_util::stream::iter(parts.iter().map(|p| Ok(Bytes::from_static(p))).collect::<Vec<_>>())
    }

    fn code(r: Result<Vec<u8>, DropError>) -> ErrorCode {
        r.unwrap_err().code()
    }

    #[tokio::test]
    async fn a_body_is_read_up_to_its_limit_and_no_further() {
        assert_eq!(read_bounded(chunks(&[b"abc", b"de"]), None, 5, 1).await.unwrap(), b"abcde");
        assert_eq!(code(read_bounded(chunks(&[b"abc", b"def"]), None, 5, 1).await), ErrorCode::TooLargeForOneRequest);
        // A declared length past the limit is refused before anything is read.
        let never = futures_util::stream::once(async { panic!("the body was read") });
        assert_eq!(code(read_bounded(never, Some(6), 5, 1).await), ErrorCode::TooLargeForOneRequest);
        let broken = futures_util::stream::iter([Err(BodyBreak::Broken("reset".into()))]);
        assert_eq!(code(read_bounded(broken, None, 5, 1).await), ErrorCode::BadRequest);
    }

    #[test]
    fn created_must_be_within_the_clock_skew() {
        let now: Timestamp = "2026-06-01T00:00:00Z".parse().unwrap();
        let at = |s: i64| Timestamp::from_second(now.as_second() + s).unwrap();
        for ok in [0, MAX_CLOCK_SKEW_SECS, -MAX_CLOCK_SKEW_SECS] {
            check_created(at(ok), now).unwrap();
        }
        for bad in [MAX_CLOCK_SKEW_SECS + 1, -MAX_CLOCK_SKEW_SECS - 1] {
            assert_eq!(check_created(at(bad), now).unwrap_err().code(), ErrorCode::BadManifest);
        }
    }
}
