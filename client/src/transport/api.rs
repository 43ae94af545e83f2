//! The hub's endpoints, typed: the one place that knows their paths
//! (`/v1/...`), how each is asked (signed or not, read with retries or
//! not) and what it answers.

use std::time::Duration;

use sealdrop_proto::api::{
    Ack, Acked, Commit, Committed, ConsistencyProof, Cosign, CreateDrop, CreatedDrop, DIRECTORY_SERIAL_HEADER,
    DirectoryAccepted, DropDetails, HubInfo, Inbox, InclusionProof, PUT_DROP_CONTENT_TYPE, Recall, Recalled, Sent,
    UploadProgress, Withdrawn, put_drop_body,
};
use sealdrop_proto::error_code::ErrorCode;
use sealdrop_proto::ids::DropId;

use super::HubApi;
use crate::error::Result;

/// The longest wait the hub grants an inbox request (`wait`, seconds).
const INBOX_MAX_WAIT_SECS: u64 = 60;

/// How much longer than its wait an inbox request may take to be answered:
/// the hub answers by the end of the wait plus one read of the inbox, so a
/// request still unanswered after this is stuck (a proxy holding it, a hub
/// that stopped), and is given up rather than waited on for ever.
const INBOX_ANSWER_MARGIN: Duration = Duration::from_secs(30);

/// The answer to `GET /v1/log/checkpoint`.
pub struct ServedCheckpoint {
    /// The signed checkpoint note, unverified.
    pub note: String,
    /// The serial of the directory the hub says it enforces
    /// ([`DIRECTORY_SERIAL_HEADER`]), when it sent a well-formed one: an
    /// unverified hint of whether the directory this client holds is current.
    pub directory_serial: Option<u64>,
}

/// Whether a refusal of `PUT /v1/drops/{id}` means "send it in three
/// requests": a hub that predates the route answers `not_found` (its
/// answer to a method a route lacks), a proxy may answer 405, and a hub
/// that takes smaller drops only says `too_large_for_one_request`.
fn not_taken_in_one_request(code: &str) -> bool {
    code == ErrorCode::NotFound.as_str() || code == "http_405" || code == ErrorCode::TooLargeForOneRequest.as_str()
}

/// The path of drop `id`'s ciphertext: what an upload and a download ask
/// for, and so what a download the transfer log records was signed for.
pub fn content_path(id: &DropId) -> String {
    format!("/v1/drops/{id}/content")
}

impl HubApi {
    /// The hub's description of itself (unsigned): its log key and limits.
    pub fn info(&self) -> Result<HubInfo> {
        self.get_unsigned_json("/v1/info")
    }

    /// The hub's current directory, as the signed note it serves.
    pub fn directory(&self) -> Result<String> {
        self.read_text("/v1/directory")
    }

    /// The directory of `serial`, as the signed note it serves.
    pub fn directory_at(&self, serial: u64) -> Result<String> {
        self.read_text(&format!("/v1/directory/{serial}"))
    }

    /// Publishes a directory signed by the authority (unsigned request: the
    /// note carries the authority's signature).
    pub fn publish_directory(&self, note: String) -> Result<DirectoryAccepted> {
        self.post_text_unsigned("/v1/directory", note)
    }

    /// The transfer log's current checkpoint note, with the cosignatures
    /// the hub holds for it, and the serial of the directory the hub says it
    /// enforces.
    pub fn checkpoint(&self) -> Result<ServedCheckpoint> {
        self.read("/v1/log/checkpoint", async |r| {
            let directory_serial = r
                .headers()
                .get(DIRECTORY_SERIAL_HEADER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse().ok());
            let note = r.text().await.map_err(|e| self.transport_error(e))?;
            Ok(ServedCheckpoint { note, directory_serial })
        })
    }

    /// The proof that the log of `new` entries extends the one of `old`.
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<ConsistencyProof> {
        self.read_json(&format!("/v1/log/proof/consistency?old={old}&new={new}"))
    }

    /// The proof that entry `index` is in the log of `size` entries.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<InclusionProof> {
        self.read_json(&format!("/v1/log/proof/inclusion?index={index}&size={size}"))
    }

    /// Log entry `index`, as the bytes its leaf hash covers.
    pub fn log_entry(&self, index: u64) -> Result<Vec<u8>> {
        self.read_bytes(&format!("/v1/log/entry/{index}"))
    }

    /// The log tile at `tile` (a c2sp.org/tlog-tiles path such as
    /// `tile/entries/000`).
    pub fn log_tile(&self, tile: &str) -> Result<Vec<u8>> {
        self.read_bytes(&format!("/v1/log/{tile}"))
    }

    /// Hands the hub a witness cosignature of its checkpoint.
    pub fn cosign(&self, cosign: &Cosign) -> Result<()> {
        let _: serde_json::Value = self.post("/v1/log/cosignature", cosign)?;
        Ok(())
    }

    /// The drops waiting for this member's party.
    pub fn inbox(&self) -> Result<Inbox> {
        self.get("/v1/inbox")
    }

    /// The drops waiting for this member's party, once one committed after
    /// `since` (any, without `since`) is there: the hub holds the request
    /// up to `wait` (whole seconds, at most 60; it shortens a longer one)
    /// for such a drop to be committed, then answers with the whole inbox,
    /// which may be empty (also early, when the hub shuts down or too many
    /// requests already wait). A `wait` under a second is [`Self::inbox`].
    pub fn inbox_wait(&self, wait: Duration, since: Option<jiff::Timestamp>) -> Result<Inbox> {
        let secs = wait.as_secs().min(INBOX_MAX_WAIT_SECS);
        if secs == 0 {
            return self.inbox();
        }
        let path = match since {
            // Whole seconds (as the hub's times are) and `Z`: nothing in the
            // query needs escaping, so the path signed is the path sent.
            Some(t) => format!("/v1/inbox?wait={secs}&since={}", sealdrop_proto::clock::whole_second(t)),
            None => format!("/v1/inbox?wait={secs}"),
        };
        self.get_within(&path, Duration::from_secs(secs) + INBOX_ANSWER_MARGIN)
    }

    /// This party's sent drops, or only drop `id`.
    pub fn sent(&self, id: Option<&DropId>) -> Result<Sent> {
        match id {
            Some(id) => self.get(&format!("/v1/sent?id={id}")),
            None => self.get("/v1/sent"),
        }
    }

    /// Drop `id` as its recipient sees it: its signed manifest and where
    /// the log records its commit.
    pub fn drop_details(&self, id: &DropId) -> Result<DropDetails> {
        self.get(&format!("/v1/drops/{id}"))
    }

    /// Opens a new drop.
    pub fn create_drop(&self, create: &CreateDrop) -> Result<CreatedDrop> {
        self.post("/v1/drops", create)
    }

    /// How much of drop `id`'s upload the hub holds.
    pub fn upload_progress(&self, id: &DropId) -> Result<UploadProgress> {
        self.get(&format!("/v1/drops/{id}/upload"))
    }

    /// Commits drop `id` with its signed manifest.
    pub fn commit(&self, id: &DropId, commit: &Commit) -> Result<Committed> {
        self.post(&format!("/v1/drops/{id}/commit"), commit)
    }

    /// Creates, uploads and commits drop `id` (chosen by the sender) in one
    /// request: its signed `manifest` and `ciphertext`, with `known_size`
    /// (the newest checkpoint size verified) for the answer's consistency
    /// proof, and the send's idempotency key if it has one. `Ok(None)` when
    /// the hub does not take drops so (an older hub without the route
    /// answers `not_found` or 405) or not this one (over its
    /// `max_single_request_bytes`): send it in three requests then.
    pub fn put_drop(
        &self,
        id: &DropId,
        manifest: &str,
        ciphertext: &[u8],
        known_size: Option<u64>,
        idempotency_key: Option<&str>,
    ) -> Result<Option<Committed>> {
        // Only digits and lowercase hex: nothing in the query needs escaping,
        // so the path signed is the path sent.
        let mut query: Vec<String> = Vec::new();
        if let Some(n) = known_size {
            query.push(format!("known_size={n}"));
        }
        if let Some(key) = idempotency_key {
            query.push(format!("idempotency_key={key}"));
        }
        let path = match query.is_empty() {
            true => format!("/v1/drops/{id}"),
            false => format!("/v1/drops/{id}?{}", query.join("&")),
        };
        let body = put_drop_body(manifest, ciphertext);
        let req = self.signed(reqwest::Method::PUT, &path, Some(&body))?;
        let req = req.header("content-type", PUT_DROP_CONTENT_TYPE).body(body);
        match self.exchange(req, async |r| self.json::<Committed>(r).await) {
            Ok(committed) => Ok(Some(committed)),
            Err(e) if not_taken_in_one_request(&e.code) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Withdraws drop `id`, never committed, given at most `within` to
    /// answer (it runs while the user waits for their prompt).
    pub fn withdraw(&self, id: &DropId, within: Duration) -> Result<Withdrawn> {
        self.delete(&format!("/v1/drops/{id}"), within)
    }

    /// Acknowledges drop `id` with a signed receipt.
    pub fn ack(&self, id: &DropId, ack: &Ack) -> Result<Acked> {
        self.post(&format!("/v1/drops/{id}/ack"), ack)
    }

    /// Takes drop `id` back from recipients who have not fetched it.
    pub fn recall(&self, id: &DropId) -> Result<Recalled> {
        self.post(&format!("/v1/drops/{id}/recall"), &Recall {})
    }
}
