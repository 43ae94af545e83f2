//! Set-up shared by the hub's integration tests: member keys, parties and
//! directories; a real hub on a temp data directory, served with `serve` on
//! 127.0.0.1:0, with a clock the tests move by hand (never by sleeping);
//! signed requests; and checks of the responses.
//!
//! Every test file shares one cast of [`Keys`]; each decides which of them
//! its directories list (in an `impl Keys` of its own) and adds the
//! requests its tests make in an `impl World` of its own.

// Every test crate uses a different part of this module.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use jiff::Timestamp;
use reqwest::Method;
use sealdrop_hub::{Hub, InitOptions};
use sealdrop_proto::api::{Ack, CreateDrop, CreatedDrop, ErrorBody};
use sealdrop_proto::clock::Clock;
use sealdrop_proto::directory::{Agreement, Directory, MemberKey, Party};
use sealdrop_proto::drop::{EncryptedTo, Manifest, Receipt};
use sealdrop_proto::ids::DropId;
use sealdrop_proto::keys::{MemberSecretKey, NoteSigningKey, NoteVerifierKey};
use sealdrop_proto::note::sign_doc;
use sealdrop_proto::request::{RequestAuth, sign_request};
use sha2::{Digest as _, Sha256};

/// When every test's clock starts.
pub const START: &str = "2026-06-01T09:00:00Z";
pub const DAY: i64 = 86_400;
/// The hub's origin (and its log key's name).
pub const ORIGIN: &str = "hub.test/sealdrop";

/// A clock the test moves by hand.
#[derive(Debug)]
pub struct TestClock(pub AtomicI64);

impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_second(self.0.load(Ordering::SeqCst)).unwrap()
    }
}

/// The cast: the authority that signs directories; camden, islington,
/// hackney and barnet, each with a `data-team` member; islington's second
/// member `j.smith`; and islington's witness key.
pub struct Keys {
    pub authority: NoteSigningKey,
    pub camden: MemberSecretKey,
    pub islington: MemberSecretKey,
    pub islington2: MemberSecretKey,
    pub hackney: MemberSecretKey,
    pub barnet: MemberSecretKey,
    pub witness: NoteSigningKey,
}

impl Keys {
    pub fn new() -> Self {
        Keys {
            authority: NoteSigningKey::generate("test-authority").unwrap(),
            camden: member("camden", "data-team"),
            islington: member("islington", "data-team"),
            islington2: member("islington", "j.smith"),
            hackney: member("hackney", "data-team"),
            barnet: member("barnet", "data-team"),
            witness: NoteSigningKey::generate("islington-witness").unwrap(),
        }
    }
}

/// A member key of `party`, named `name`: classic, so the made-up
/// [`ciphertext`] headers stay small (100 bytes a key, not 1,600). These
/// tests are about the hub's life cycle; post-quantum headers are checked in
/// `sealdrop_proto::age_header` and end to end.
pub fn member(party: &str, name: &str) -> MemberSecretKey {
    MemberSecretKey::generate_classic(party.parse().unwrap(), name.parse().unwrap())
}

/// The party of `members` (all of one party, at least one), with `witness_keys`.
pub fn party(members: &[&MemberSecretKey], witness_keys: Vec<NoteVerifierKey>) -> Party {
    let id = members[0].party.clone();
    Party {
        name: id.to_string(),
        id,
        aliases: vec![],
        members: members
            .iter()
            .map(|k| {
                let card = k.public();
                MemberKey { member: card.member, age_recipient: card.age_recipient, signing_key: card.signing_key }
            })
            .collect(),
        witness_keys,
        revoked: vec![],
    }
}

/// The `inner-fsm` agreement: camden, islington and hackney, 2026 to 2030,
/// drops of at most 14 days.
pub fn inner_fsm() -> Agreement {
    Agreement {
        id: "inner-fsm".into(),
        title: "Free school meals".into(),
        purpose: "Auto-enrolment".into(),
        lawful_basis: "UK GDPR 6(1)(e)".into(),
        parties: ["camden", "islington", "hackney"].iter().map(|p| p.parse().unwrap()).collect(),
        max_expiry_days: 14,
        valid_from: "2026-01-01T00:00:00Z".parse().unwrap(),
        valid_until: "2030-01-01T00:00:00Z".parse().unwrap(),
        require_pq: false,
    }
}

/// A directory issued at the start of 2026.
pub fn directory(serial: u64, parties: Vec<Party>, agreements: Vec<Agreement>) -> Directory {
    Directory { serial, issued_at: "2026-01-01T00:00:00Z".parse().unwrap(), hub: None, parties, agreements }
}

/// Every member key `directory` lists for each of `recipients`.
pub fn encrypted_to(directory: &Directory, recipients: &[&str]) -> Vec<EncryptedTo> {
    recipients
        .iter()
        .flat_map(|r| {
            let p = directory.party(&r.parse().unwrap()).unwrap();
            p.members
                .iter()
                .map(|m| EncryptedTo { key: format!("{}/{}", p.id, m.member), age_recipient: m.age_recipient.clone() })
        })
        .collect()
}

/// A manifest of `drop` from `sender` for `content`, encrypted to every
/// member `directory` lists for each recipient, under `inner-fsm` and
/// directory serial 1.
pub fn manifest(
    directory: &Directory,
    sender: &MemberSecretKey,
    drop: &CreatedDrop,
    recipients: &[&str],
    content: &[u8],
) -> Manifest {
    let encrypted_to = encrypted_to(directory, recipients);
    Manifest {
        drop: drop.id.clone(),
        sender: sender.party.clone(),
        sender_member: sender.member.clone(),
        recipients: recipients.iter().map(|r| r.parse().unwrap()).collect(),
        encrypted_to,
        agreement: "inner-fsm".into(),
        directory_serial: 1,
        ciphertext_sha256: hex::encode(Sha256::digest(content)),
        ciphertext_len: content.len() as u64,
        created: drop.created,
        expires: drop.expires,
    }
}

/// A running hub, its data directory and clock, and a client for it.
pub struct World {
    pub keys: Arc<Keys>,
    pub clock: Arc<TestClock>,
    pub data: tempfile::TempDir,
    pub client: reqwest::Client,
    pub base: String,
    hub: Option<Hub>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl World {
    /// Makes the keys and initialises a hub (origin [`ORIGIN`]) trusting
    /// their authority, with the directory `first_directory` signs in
    /// force, at [`START`]; opens it, lets `configure` adjust it, and
    /// serves it.
    pub async fn launch(first_directory: impl FnOnce(&Keys) -> String, configure: impl FnOnce(Hub) -> Hub) -> Self {
        let keys = Keys::new();
        let (authority, directory_note) = (keys.authority.verifier(), first_directory(&keys));
        let clock = Arc::new(TestClock(AtomicI64::new(START.parse::<Timestamp>().unwrap().as_second())));
        let data = tempfile::tempdir().unwrap();
        let opts = InitOptions {
            data_dir: data.path().join("hub"),
            origin: ORIGIN.into(),
            authority,
            directory_note,
            backends: Default::default(),
        };
        sealdrop_hub::init(&opts, clock.as_ref()).unwrap();
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let mut world = World {
            keys: Arc::new(keys),
            clock,
            data,
            client,
            base: String::new(),
            hub: None,
            stop: None,
            server: None,
        };
        let hub = configure(Hub::open(&world.data_dir(), world.clock.clone()).unwrap());
        world.serve(hub).await;
        world
    }

    pub fn data_dir(&self) -> PathBuf {
        self.data.path().join("hub")
    }

    /// The file of a drop's large committed ciphertext.
    pub fn blob_file(&self, id: &DropId) -> PathBuf {
        self.data_dir().join("blobs").join(format!("{id}.age"))
    }

    /// The file of a drop's large upload.
    pub fn upload_file(&self, id: &DropId) -> PathBuf {
        self.data_dir().join("uploads").join(format!("{id}.part"))
    }

    /// The stage (`upload` or `blob`) of a drop's small ciphertext, kept
    /// in a row of the hub's database, if it has one.
    pub fn inline_stage(&self, id: &DropId) -> Option<String> {
        use rusqlite::OptionalExtension as _;
        let db = rusqlite::Connection::open(self.data_dir().join("hub.db")).unwrap();
        db.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
        db.query_row("SELECT stage FROM inline_blobs WHERE drop_id = ?1", [id.as_str()], |r| r.get(0))
            .optional()
            .unwrap()
    }

    /// Leaves a drop's finished upload promoted to its blob behind the
    /// hub's back, as a crash between promotion and commit would.
    pub fn promote_behind_the_hubs_back(&self, id: &DropId) {
        if self.upload_file(id).exists() {
            std::fs::rename(self.upload_file(id), self.blob_file(id)).unwrap();
            return;
        }
        let db = rusqlite::Connection::open(self.data_dir().join("hub.db")).unwrap();
        db.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
        let n = db
            .execute("UPDATE inline_blobs SET stage = 'blob' WHERE drop_id = ?1 AND stage = 'upload'", [id.as_str()])
            .unwrap();
        assert_eq!(n, 1, "drop {id} has no upload to promote");
    }

    /// Whether the hub holds a drop's committed ciphertext (a file, or a row).
    pub fn has_blob(&self, id: &DropId) -> bool {
        self.blob_file(id).exists() || self.inline_stage(id).as_deref() == Some("blob")
    }

    /// Whether the hub holds an upload of a drop (a file, or a row).
    pub fn has_upload(&self, id: &DropId) -> bool {
        self.upload_file(id).exists() || self.inline_stage(id).as_deref() == Some("upload")
    }

    /// The hub being served.
    pub fn hub(&self) -> &Hub {
        self.hub.as_ref().expect("the hub is being served")
    }

    /// Serves `hub` on a new port.
    pub async fn serve(&mut self, hub: Hub) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        self.base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        self.stop = Some(tx);
        self.hub = Some(hub.clone());
        self.server = Some(tokio::spawn(sealdrop_hub::serve(listener, hub, async {
            rx.await.ok();
        })));
    }

    /// Stops the server and lets go of the hub.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            tx.send(()).unwrap();
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
        self.hub = None;
    }

    pub fn now(&self) -> i64 {
        self.clock.0.load(Ordering::SeqCst)
    }

    pub fn advance(&self, secs: i64) {
        self.clock.0.fetch_add(secs, Ordering::SeqCst);
    }

    /// Every log entry's bytes, in order (served one by one until a 404).
    #[allow(dead_code, reason = "not every test file reads the log")]
    pub async fn all_entry_bytes(&self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for i in 0.. {
            let resp = self.read(&format!("/v1/log/entry/{i}")).await;
            if resp.status() == 404 {
                break;
            }
            out.push(resp.bytes().await.unwrap().to_vec());
        }
        out
    }

    /// Audits the whole served log offline, with every directory version
    /// the hub published, and asserts it passes.
    #[allow(dead_code, reason = "not every test file audits the log")]
    pub async fn audit_passes(&self) {
        let checkpoint = self.read("/v1/log/checkpoint").await.text().await.unwrap();
        let serial = self.hub().directory().directory.serial;
        let mut directories = std::collections::BTreeMap::new();
        for s in 1..=serial {
            let resp = self.read(&format!("/v1/directory/{s}")).await;
            if resp.status() == 200 {
                directories.insert(s, resp.text().await.unwrap());
            }
        }
        let entries = self.all_entry_bytes().await;
        let (log_key, authority) = (self.hub().log_verifier(), self.keys.authority.verifier());
        let report = tokio::task::spawn_blocking(move || {
            sealdrop_log::audit::verify(sealdrop_log::audit::AuditInput::new(
                log_key,
                authority,
                checkpoint,
                directories,
                entries.into_iter().map(Ok),
                0,
            ))
        })
        .await
        .unwrap();
        assert!(report.ok(), "the audit failed:\n{report}");
    }

    /// Downloads drop `id` as `key` (a logged download, which an
    /// acknowledgement needs) and returns the ciphertext.
    pub async fn download(&self, key: &MemberSecretKey, id: &DropId) -> Vec<u8> {
        let resp = self.get(key, &format!("/v1/drops/{id}/content")).await;
        assert_eq!(resp.status(), 200, "the download of {id} was refused");
        resp.bytes().await.unwrap().to_vec()
    }

    /// An unauthenticated GET.
    pub async fn fetch(&self, path: &str) -> reqwest::Response {
        self.client.get(format!("{}{path}", self.base)).send().await.unwrap()
    }

    /// A GET of the transfer log or the directory, which the hub serves to
    /// members and witnesses only (by default): signed by the first of
    /// camden, islington, hackney and barnet the directory in force lists.
    pub async fn read(&self, path: &str) -> reqwest::Response {
        self.get(self.reader(), path).await
    }

    /// A member key of the directory in force, to read the log with.
    pub fn reader(&self) -> &MemberSecretKey {
        let directory = self.hub().directory();
        let k = &self.keys;
        [&k.camden, &k.islington, &k.hackney, &k.barnet]
            .into_iter()
            .find(|key| directory.directory.member_by_key_name(key.signing.name()).is_some())
            .expect("the directory in force lists one of the cast")
    }

    /// Sends a request with the given authentication headers.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        auth: Option<&RequestAuth>,
        body: Vec<u8>,
    ) -> reqwest::Response {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(auth) = auth {
            for (name, value) in auth.headers() {
                req = req.header(name, value);
            }
        }
        req.body(body).send().await.unwrap()
    }

    /// Signs and sends a request with a buffered body.
    pub async fn call(&self, key: &MemberSecretKey, method: Method, path: &str, body: &[u8]) -> reqwest::Response {
        let auth = sign_request(&key.signing, method.as_str(), path, self.now(), Some(body));
        self.send(method, path, Some(&auth), body.to_vec()).await
    }

    pub async fn get(&self, key: &MemberSecretKey, path: &str) -> reqwest::Response {
        self.call(key, Method::GET, path, b"").await
    }

    pub async fn post<T: serde::Serialize>(&self, key: &MemberSecretKey, path: &str, body: &T) -> reqwest::Response {
        self.call(key, Method::POST, path, &serde_json::to_vec(body).unwrap()).await
    }

    /// Uploads content as a stream would be signed (`UNSIGNED` body).
    pub async fn upload(&self, key: &MemberSecretKey, id: &DropId, content: &[u8]) -> reqwest::Response {
        let path = format!("/v1/drops/{id}/content");
        let auth = sign_request(&key.signing, "PUT", &path, self.now(), None);
        self.send(Method::PUT, &path, Some(&auth), content.to_vec()).await
    }

    /// Creates a drop under `inner-fsm` expiring `expires_in` seconds from now.
    pub async fn create(&self, key: &MemberSecretKey, recipients: &[&str], expires_in: i64) -> reqwest::Response {
        let req = CreateDrop {
            recipients: recipients.iter().map(|r| r.parse().unwrap()).collect(),
            agreement: "inner-fsm".into(),
            expires: Timestamp::from_second(self.now() + expires_in).unwrap(),
            idempotency_key: None,
        };
        self.post(key, "/v1/drops", &req).await
    }

    /// Creates a drop expiring in 7 days.
    pub async fn created(&self, key: &MemberSecretKey, recipients: &[&str]) -> CreatedDrop {
        ok(self.create(key, recipients, 7 * DAY).await).await
    }

    /// `key`'s signed receipt for `content` as drop `id`, received now.
    pub fn receipt(&self, key: &MemberSecretKey, id: &DropId, content: &[u8]) -> Ack {
        let receipt = Receipt {
            drop: id.clone(),
            recipient: key.party.clone(),
            member: key.member.clone(),
            ciphertext_sha256: hex::encode(Sha256::digest(content)),
            ciphertext_len: content.len() as u64,
            received: Timestamp::from_second(self.now()).unwrap(),
        };
        Ack { receipt: sign_doc(&receipt, &key.signing), known_size: None }
    }
}

/// Parses a successful JSON response.
pub async fn ok<T: serde::de::DeserializeOwned>(resp: reqwest::Response) -> T {
    let status = resp.status();
    let text = resp.text().await.unwrap();
    assert!(status.is_success(), "expected success, got {status}: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// Asserts an error response's status and code; returns its message.
pub async fn err(resp: reqwest::Response, status: u16, code: &str) -> String {
    let got = resp.status();
    let text = resp.text().await.unwrap();
    assert_eq!(got.as_u16(), status, "{text}");
    let body: ErrorBody = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not an error body ({e}): {text}"));
    assert_eq!(body.error.code, code, "{}", body.error.message);
    assert!(!body.error.message.is_empty());
    body.error.message
}

/// Bytes standing in for ciphertext where the hub must refuse or never
/// commit them: not age at all.
pub fn content(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// `len` bytes standing in for a drop's ciphertext to `recipients` under
/// `directory`: an age v1 header with one X25519 recipient stanza per key
/// [`manifest`] lists for them (which the hub counts at commit), then
/// [`content`] as payload. Not decryptable: the shares and wrapped keys
/// are made up, and the hub never decrypts.
pub fn ciphertext(directory: &Directory, recipients: &[&str], len: usize) -> Vec<u8> {
    use base64::Engine as _;
    let b64 = |seed: usize| base64::engine::general_purpose::STANDARD_NO_PAD.encode(Sha256::digest(seed.to_be_bytes()));
    let keys = encrypted_to(directory, recipients).len();
    let mut out = b"age-encryption.org/v1\n".to_vec();
    for k in 0..keys {
        out.extend_from_slice(format!("-> X25519 {}\n{}\n", b64(2 * k), b64(2 * k + 1)).as_bytes());
    }
    out.extend_from_slice(format!("--- {}\n", b64(usize::MAX)).as_bytes());
    assert!(out.len() <= len, "{len} bytes cannot hold an age header for {keys} keys ({} bytes)", out.len());
    let header = out.len();
    out.extend(content(len - header));
    out
}
