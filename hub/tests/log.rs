//! The signed transfer log end to end: a real hub on a temp data directory,
//! served on 127.0.0.1:0, read the way an auditor would (checkpoint, tiles,
//! entries, proofs) and verified with `tlog_tiles`' own checks (and
//! `sealdrop_log`'s bundle decoder and Merkle root), never with the hub's
//! code.

mod common;

use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use jiff::Timestamp;
use reqwest::StatusCode;
use sealdrop_hub::Hub;
use sealdrop_hub::api::log_access::LogAccess;
use sealdrop_hub::error::HubError;
use sealdrop_log::checkpoint::SignedCheckpoint;
use sealdrop_log::entry::{DeletionReason, HubStatement, LogEntry};
use sealdrop_log::tiles::decode_entry_bundle;
use sealdrop_log::tree::root_of_entries;
use sealdrop_proto::api::{
    Acked, Commit, Committed, ConsistencyProof, Cosign, CosignatureAccepted, CreatedDrop, DIRECTORY_SERIAL_HEADER,
    HubInfo, InclusionProof, LogProof, Uploaded, code,
};
use sealdrop_proto::directory::{Directory, SignedDirectory};
use sealdrop_proto::ids::DropId;
use sealdrop_proto::keys::{MemberSecretKey, NoteSigningKey, NoteVerifierKey, cosignature_message};
use sealdrop_proto::note::{open_doc, sign_doc};
use sha2::{Digest as _, Sha256};
use tlog_tiles::{Hash, HashReader, Tile, TileHashReader, TileReader, record_hash, stored_hash_index};

use common::{Keys, ORIGIN, START, World, err, inner_fsm, ok, party};

impl Keys {
    /// The directory at `serial`: from serial 2 on, Islington lists its witness key.
    fn directory(&self, serial: u64) -> Directory {
        let witness = if serial >= 2 { vec![self.witness.cosigner_verifier()] } else { vec![] };
        let parties =
            vec![party(&[&self.camden], vec![]), party(&[&self.islington], witness), party(&[&self.hackney], vec![])];
        common::directory(serial, parties, vec![inner_fsm()])
    }

    fn signed_directory(&self, serial: u64) -> SignedDirectory {
        SignedDirectory::sign(self.directory(serial), &self.authority).unwrap()
    }
}

impl World {
    /// Bytes shaped like a drop's ciphertext to `recipients` (see [`common::ciphertext`]).
    fn ciphertext(&self, recipients: &[&str], len: usize) -> Vec<u8> {
        common::ciphertext(&self.keys.directory(1), recipients, len)
    }

    async fn start() -> World {
        World::launch(|keys| keys.signed_directory(1).note, |hub| hub).await
    }

    /// Creates and uploads a drop from camden; returns it with its signed manifest.
    async fn prepare_drop(&self, recipients: &[&str], content: &[u8]) -> (CreatedDrop, String) {
        let camden = &self.keys.camden;
        let drop = self.created(camden, recipients).await;
        let _: Uploaded = ok(self.upload(camden, &drop.id, content).await).await;
        let manifest = common::manifest(&self.keys.directory(1), camden, &drop, recipients, content);
        (drop, sign_doc(&manifest, &camden.signing))
    }

    async fn commit(&self, id: &DropId, manifest: &str) -> Committed {
        self.commit_knowing(id, manifest, None).await
    }

    async fn commit_knowing(&self, id: &DropId, manifest: &str, known_size: Option<u64>) -> Committed {
        let body = Commit { manifest: manifest.to_owned(), known_size };
        ok(self.post(&self.keys.camden, &format!("/v1/drops/{id}/commit"), &body).await).await
    }

    /// Checks the proof a change's answer carries for entry `index` with
    /// `tlog_tiles`' own checks: a checkpoint the log key signed over the
    /// served tree, the served entry, its inclusion, and the consistency
    /// with the tree of `known` entries (`known_root`) when asked.
    async fn check_proof(&self, proof: &LogProof, index: u64, known: Option<(u64, Hash)>) -> SignedCheckpoint {
        let cp = sealdrop_log::checkpoint::open(&proof.checkpoint, &self.hub().log_verifier()).unwrap();
        assert!(cp.size > index, "the checkpoint covers the entry");
        let entry = B64.decode(&proof.entry).unwrap();
        assert_eq!(entry, self.entry_bytes(index).await, "the entry as served");
        let path: Vec<Hash> = proof.inclusion.iter().map(|h| Hash::parse_hash(h).unwrap()).collect();
        tlog_tiles::check_record(&path, cp.size, cp.root, index, record_hash(&entry)).unwrap();
        match known {
            None => assert_eq!(proof.consistency, None),
            Some((old, old_root)) => {
                let c = proof.consistency.as_ref().expect("asked for a consistency proof");
                assert_eq!((c.old, c.new), (old, cp.size));
                let hashes: Vec<Hash> = c.hashes.iter().map(|h| Hash::parse_hash(h).unwrap()).collect();
                tlog_tiles::check_tree(&hashes, cp.size, cp.root, old, old_root).unwrap();
            }
        }
        cp
    }

    /// The served checkpoint, verified with the hub's log key.
    async fn checkpoint(&self) -> SignedCheckpoint {
        let resp = self.read("/v1/log/checkpoint").await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["cache-control"], "no-store");
        assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
        let note = resp.text().await.unwrap();
        sealdrop_log::checkpoint::open(&note, &self.hub().log_verifier()).unwrap()
    }

    async fn entry_bytes(&self, index: u64) -> Vec<u8> {
        let resp = self.read(&format!("/v1/log/entry/{index}")).await;
        assert_eq!(resp.status(), StatusCode::OK, "entry {index}");
        assert_eq!(resp.headers()["content-type"], "application/json");
        resp.bytes().await.unwrap().to_vec()
    }

    async fn entry(&self, index: u64) -> LogEntry {
        LogEntry::from_bytes(&self.entry_bytes(index).await).unwrap()
    }

    /// All entries of the tree of `size`, read from the entry bundles.
    async fn bundled_entries(&self, size: u64) -> Vec<Vec<u8>> {
        let mut entries = Vec::new();
        for n in 0..size.div_ceil(256) {
            let width = (size - n * 256).min(256);
            let tile = Tile::new(8, 0, n, width as u32, true);
            let path = tile.path().replace("tile/8/data/", "entries/");
            let resp = self.read(&format!("/v1/log/tile/{path}")).await;
            assert_eq!(resp.status(), StatusCode::OK, "{path}");
            let cache = if width == 256 { "public, max-age=31536000, immutable" } else { "no-store" };
            assert_eq!(resp.headers()["cache-control"], cache, "{path}");
            let bundle = resp.bytes().await.unwrap();
            let decoded = decode_entry_bundle(&bundle).unwrap();
            assert_eq!(decoded.len() as u64, width, "{path}");
            entries.extend(decoded);
        }
        entries
    }

    async fn inclusion(&self, index: u64, size: u64) -> Vec<Hash> {
        let proof: InclusionProof =
            ok(self.read(&format!("/v1/log/proof/inclusion?index={index}&size={size}")).await).await;
        assert_eq!((proof.index, proof.size), (index, size));
        proof.hashes.iter().map(|h| Hash::parse_hash(h).unwrap()).collect()
    }

    async fn consistency(&self, old: u64, new: u64) -> Vec<Hash> {
        let proof: ConsistencyProof =
            ok(self.read(&format!("/v1/log/proof/consistency?old={old}&new={new}")).await).await;
        assert_eq!((proof.old, proof.new), (old, new));
        proof.hashes.iter().map(|h| Hash::parse_hash(h).unwrap()).collect()
    }

    /// Checks that the served checkpoint extends `prev` (consistency proof),
    /// that every entry is included in it (inclusion proofs), and that the
    /// entry bundles hold the same entries as `/v1/log/entry`; returns it.
    async fn audit(&self, prev: &SignedCheckpoint) -> SignedCheckpoint {
        let cp = self.checkpoint().await;
        assert!(cp.size >= prev.size, "the log never shrinks");
        let proof = self.consistency(prev.size, cp.size).await;
        if prev.size == cp.size {
            assert!(proof.is_empty());
            assert_eq!(cp.root, prev.root, "one size, one root");
        } else {
            tlog_tiles::check_tree(&proof, cp.size, cp.root, prev.size, prev.root).unwrap();
        }
        let bundled = self.bundled_entries(cp.size).await;
        for (i, data) in (0u64..).zip(&bundled) {
            assert_eq!(&self.entry_bytes(i).await, data, "entry {i}");
            let path = self.inclusion(i, cp.size).await;
            tlog_tiles::check_record(&path, cp.size, cp.root, i, record_hash(data)).unwrap();
        }
        cp
    }
}

/// Opens a hub statement with the log key.
fn statement(entry: &LogEntry, log_key: &NoteVerifierKey) -> HubStatement {
    let LogEntry::Hub { statement } = entry else { panic!("not a hub statement: {entry:?}") };
    open_doc::<HubStatement>(statement, std::slice::from_ref(log_key)).unwrap().doc
}

/// A C2SP tlog-cosignature/v1 line by `witness` over `checkpoint` at `time`.
fn cosignature_line(witness: &NoteSigningKey, time: u64, checkpoint: &str) -> String {
    let (text, _) = checkpoint.split_once("\n\n").unwrap();
    let body = format!("{text}\n");
    let sig = witness.sign_bytes(&cosignature_message(time, body.as_bytes()));
    let mut bytes = time.to_be_bytes().to_vec();
    bytes.extend_from_slice(&sig.to_bytes());
    let v = witness.cosigner_verifier();
    String::from_utf8(signed_note::Signature::new(v.name().to_owned(), v.id(), bytes).unwrap().to_bytes()).unwrap()
}

#[tokio::test]
async fn init_logs_the_first_directory() {
    let mut w = World::start().await;
    let log_key = w.hub().log_verifier();
    assert_eq!(log_key.name(), ORIGIN);
    let info: HubInfo = ok(w.fetch("/v1/info").await).await;
    assert_eq!(info.log_key, log_key.to_string(), "/v1/info names the log key");
    let cp = w.checkpoint().await;
    assert_eq!((cp.origin.as_str(), cp.size), (ORIGIN, 1));
    assert_eq!(cp.root, record_hash(&w.entry_bytes(0).await), "a one-entry tree's root is its leaf hash");
    let signed = w.keys.signed_directory(1);
    assert_eq!(
        statement(&w.entry(0).await, &log_key),
        HubStatement::DirectoryPublished { time: START.parse().unwrap(), serial: 1, sha256: signed.sha256_hex() }
    );
    // The directory the entry names is served by serial, and hashes to it.
    let resp = w.read("/v1/directory/1").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let note = resp.text().await.unwrap();
    assert_eq!(note, signed.note);
    assert_eq!(hex::encode(Sha256::digest(note.as_bytes())), signed.sha256_hex());
    err(w.read("/v1/directory/2").await, 404, code::NOT_FOUND).await;
    err(w.read("/v1/directory/latest").await, 400, code::BAD_REQUEST).await;
    err(w.read("/v1/log/entry/1").await, 404, code::NOT_FOUND).await;
    err(w.read("/v1/log/entry/-1").await, 400, code::BAD_REQUEST).await;
    err(w.read(&format!("/v1/log/entry/{}", u64::MAX)).await, 404, code::NOT_FOUND).await;
    err(w.read("/v1/log/tile/0/x018/x446/x744/x073/x709/x551/615").await, 404, code::NOT_FOUND).await;
    err(w.read(&format!("/v1/log/proof/inclusion?index=0&size={}", u64::MAX)).await, 404, code::NOT_FOUND).await;
    err(w.read(&format!("/v1/log/proof/consistency?old=1&new={}", u64::MAX)).await, 404, code::NOT_FOUND).await;
    w.audit(&cp).await;
    w.stop().await;
}

#[tokio::test]
async fn a_drop_is_logged_from_commit_to_deletion() {
    let mut w = World::start().await;
    let log_key = w.hub().log_verifier();
    let (islington, hackney) = (&w.keys.islington, &w.keys.hackney);
    let data = w.ciphertext(&["islington", "hackney"], 10_000);
    let mut cp = w.checkpoint().await;

    // Commit: the manifest, verbatim.
    let (drop, manifest) = w.prepare_drop(&["islington", "hackney"], &data).await;
    assert_eq!(w.checkpoint().await.size, 1, "creating and uploading are not logged");
    w.advance(5);
    let committed = w.commit(&drop.id, &manifest).await;
    assert_eq!(committed.log_index, 1);
    let proved = w.check_proof(committed.proof.as_ref().expect("a commit carries its proof"), 1, None).await;
    assert_eq!(
        w.entry(1).await,
        LogEntry::DropCommitted { committed: Timestamp::from_second(w.now()).unwrap(), manifest: manifest.clone() }
    );
    cp = w.audit(&cp).await;
    assert_eq!(cp.size, 2);
    assert_eq!((proved.size, proved.root), (cp.size, cp.root), "the proof is under the checkpoint of the commit");

    // Fetch: the recipient's own signed request, each time it is served.
    let path = format!("/v1/drops/{}/content", drop.id);
    for expected_index in [2, 3] {
        w.advance(10);
        let resp = w.get(islington, &path).await;
        assert_eq!(resp.bytes().await.unwrap().as_ref(), data.as_slice());
        let LogEntry::DropFetched { drop: d, party, fetched, request } = w.entry(expected_index).await else {
            panic!("entry {expected_index} is not a fetch");
        };
        assert_eq!((d, party.as_str(), fetched.as_second()), (drop.id.clone(), "islington", w.now()));
        assert_eq!((request.method.as_str(), request.path.as_str()), ("GET", path.as_str()));
        request.auth().verify(&islington.signing.verifier(), &request.method, &request.path).unwrap();
        cp = w.audit(&cp).await;
    }

    // Acknowledge: the receipt, verbatim; not the last one, so nothing is deleted.
    w.advance(10);
    let mut ack = w.receipt(islington, &drop.id, &data);
    ack.known_size = Some(cp.size);
    let acked: Acked = ok(w.post(islington, &format!("/v1/drops/{}/ack", drop.id), &ack).await).await;
    assert_eq!((acked.ciphertext_deleted, acked.log_index), (false, 4));
    w.check_proof(acked.proof.as_ref().expect("an acknowledgement carries its proof"), 4, Some((cp.size, cp.root)))
        .await;
    assert_eq!(
        w.entry(4).await,
        LogEntry::DropAcknowledged { acknowledged: Timestamp::from_second(w.now()).unwrap(), receipt: ack.receipt }
    );
    cp = w.audit(&cp).await;
    assert_eq!(cp.size, 5);

    // The last recipient: its fetch, its receipt, and the hub's signed deletion, in order.
    let resp = w.get(hackney, &path).await;
    assert_eq!(resp.bytes().await.unwrap().as_ref(), data.as_slice());
    w.advance(10);
    let ack = w.receipt(hackney, &drop.id, &data);
    let acked: Acked = ok(w.post(hackney, &format!("/v1/drops/{}/ack", drop.id), &ack).await).await;
    assert_eq!((acked.ciphertext_deleted, acked.log_index), (true, 6));
    // The last acknowledgement's checkpoint also covers the hub's deletion.
    let last = w.check_proof(acked.proof.as_ref().unwrap(), 6, None).await;
    assert_eq!(last.size, 8);
    let kinds: Vec<LogEntry> = {
        let mut v = Vec::new();
        for i in 0..8 {
            v.push(w.entry(i).await);
        }
        v
    };
    assert!(matches!(kinds[0], LogEntry::Hub { .. }));
    assert!(matches!(kinds[1], LogEntry::DropCommitted { .. }));
    assert!(matches!(kinds[5], LogEntry::DropFetched { ref party, .. } if party.as_str() == "hackney"));
    assert!(matches!(kinds[6], LogEntry::DropAcknowledged { receipt: ref r, .. } if *r == ack.receipt));
    assert_eq!(
        statement(&kinds[7], &log_key),
        HubStatement::DropDeleted {
            time: Timestamp::from_second(w.now()).unwrap(),
            drop: drop.id.clone(),
            reason: DeletionReason::Delivered
        }
    );
    cp = w.audit(&cp).await;
    assert_eq!(cp.size, 8);
    assert!(!w.data_dir().join("blobs").join(format!("{}.age", drop.id)).exists());
    w.stop().await;
}

#[tokio::test]
async fn a_commit_answers_with_the_consistency_proof_from_the_size_the_sender_knows() {
    let mut w = World::start().await;
    let first = w.checkpoint().await;
    let (a, manifest_a) = w.prepare_drop(&["islington"], &w.ciphertext(&["islington"], 400)).await;
    let committed = w.commit_knowing(&a.id, &manifest_a, Some(first.size)).await;
    let after_a = w.check_proof(committed.proof.as_ref().unwrap(), 1, Some((first.size, first.root))).await;
    assert_eq!(after_a.size, 2);

    // The same size as the new tree: an empty proof.
    let (b, manifest_b) = w.prepare_drop(&["islington"], &w.ciphertext(&["islington"], 500)).await;
    let committed = w.commit_knowing(&b.id, &manifest_b, Some(3)).await;
    let after_b = w.check_proof(committed.proof.as_ref().unwrap(), 2, Some((3, w.checkpoint().await.root))).await;
    assert!(committed.proof.unwrap().consistency.unwrap().hashes.is_empty());

    // A size beyond the tree gets no consistency proof (the client asks for one instead).
    let (c, manifest_c) = w.prepare_drop(&["islington"], &w.ciphertext(&["islington"], 600)).await;
    let committed = w.commit_knowing(&c.id, &manifest_c, Some(after_b.size + 10)).await;
    w.check_proof(committed.proof.as_ref().unwrap(), 3, None).await;
    w.stop().await;
}

/// Reads tiles over HTTP for `tlog_tiles`' own authenticating reader, each
/// request signed by a member (the hub keeps its log for members).
struct HttpTiles {
    client: reqwest::blocking::Client,
    base: String,
    key: NoteSigningKey,
    /// The hub's (test) clock, which does not move while the tiles are read.
    now: i64,
}

impl TileReader for HttpTiles {
    fn height(&self) -> u8 {
        8
    }

    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, tlog_tiles::Error> {
        tiles
            .iter()
            .map(|t| {
                let path = t.path().strip_prefix("tile/8/").unwrap().to_owned();
                let url_path = format!("/v1/log/tile/{path}");
                let auth = sealdrop_proto::request::sign_request(&self.key, "GET", &url_path, self.now, Some(b""));
                let mut req = self.client.get(format!("{}{url_path}", self.base));
                for (name, value) in auth.headers() {
                    req = req.header(name, value);
                }
                let resp = req.send().unwrap();
                if !resp.status().is_success() {
                    return Err(tlog_tiles::Error::InvalidTile);
                }
                let full = t.width() == 256;
                let cache = resp.headers()["cache-control"].to_str().unwrap().to_owned();
                assert_eq!(cache == "public, max-age=31536000, immutable", full, "{path}: {cache}");
                Ok(resp.bytes().unwrap().to_vec())
            })
            .collect()
    }

    fn save_tiles(&self, _: &[Tile], _: &[Vec<u8>]) {}
}

#[tokio::test]
async fn tiles_of_a_large_log_verify_with_tlog_tiles() {
    let mut w = World::start().await;
    // 1 + 4 + 599 entries: two full tiles and a partial one at level 0, a
    // partial tile at level 1; drops and directories interleaved.
    let data = w.ciphertext(&["islington"], 300);
    for _ in 0..4 {
        let (drop, manifest) = w.prepare_drop(&["islington"], &data).await;
        w.commit(&drop.id, &manifest).await;
    }
    for serial in 2..=600 {
        w.hub().publish_directory(&w.keys.signed_directory(serial).note).await.unwrap();
    }
    let cp = w.checkpoint().await;
    assert_eq!(cp.size, 604);
    let entries = w.bundled_entries(cp.size).await;
    assert!(matches!(LogEntry::from_bytes(&entries[603]).unwrap(), LogEntry::Hub { .. }));
    assert!(matches!(LogEntry::from_bytes(&entries[4]).unwrap(), LogEntry::DropCommitted { .. }));

    // Every leaf and the tree's interior, through the hash tiles,
    // authenticated against the checkpoint by tlog_tiles; the proofs it
    // derives from them equal the ones the hub serves.
    let (base, root, size) = (w.base.clone(), cp.root, cp.size);
    let (key, now) = (w.reader().signing.clone(), w.now());
    let (leaves, record_proof, tree_proof) = tokio::task::spawn_blocking(move || {
        let client = reqwest::blocking::Client::builder().no_proxy().build().unwrap();
        let tiles = HttpTiles { client, base, key, now };
        let reader = TileHashReader::new(size, root, &tiles);
        let indexes: Vec<u64> = (0..size).map(|i| stored_hash_index(0, i)).collect();
        let leaves = reader.read_hashes(&indexes).unwrap();
        assert_eq!(tlog_tiles::tree_hash(size, &reader).unwrap(), root);
        let interior =
            reader.read_hashes(&[stored_hash_index(8, 0), stored_hash_index(9, 0), stored_hash_index(3, 70)]);
        assert!(interior.is_ok(), "{interior:?}");
        let record_proof = tlog_tiles::prove_record(size, 300, &reader).unwrap();
        let tree_proof = tlog_tiles::prove_tree(size, 257, &reader).unwrap();
        // A reader that trusts another root refuses the same tiles.
        let forged = TileHashReader::new(size, Hash([0; 32]), &tiles);
        assert!(forged.read_hashes(&indexes[..1]).is_err());
        (leaves, record_proof, tree_proof)
    })
    .await
    .unwrap();
    assert_eq!(leaves.len(), entries.len());
    for (i, (leaf, data)) in leaves.iter().zip(&entries).enumerate() {
        assert_eq!(*leaf, record_hash(data), "leaf {i}");
    }
    assert_eq!(w.inclusion(300, size).await, record_proof);
    assert_eq!(w.consistency(257, size).await, tree_proof);

    // The level-1 tile holds the roots of the two full level-0 tiles.
    let level1 = w.read("/v1/log/tile/1/000.p/2").await.bytes().await.unwrap();
    let roots = [root_of_entries(&entries[..256]).1, root_of_entries(&entries[256..512]).1];
    assert_eq!(level1.as_ref(), [roots[0].0, roots[1].0].concat());
    // Narrower partial tiles of current data are served too, never wider ones.
    let resp = w.read("/v1/log/tile/0/002.p/10").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.bytes().await.unwrap().len(), 10 * 32);
    for beyond in ["0/002.p/93", "0/002", "1/000", "2/000.p/1", "entries/002", "entries/003.p/1"] {
        err(w.read(&format!("/v1/log/tile/{beyond}")).await, 404, code::NOT_FOUND).await;
    }
    w.stop().await;
}

#[tokio::test]
async fn bad_tile_paths_and_proof_queries() {
    let mut w = World::start().await;
    for path in ["0/000.p/1", "entries/000.p/1"] {
        let resp = w.read(&format!("/v1/log/tile/{path}")).await;
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        assert_eq!(resp.headers()["cache-control"], "no-store", "{path}");
    }
    let bundle = w.read("/v1/log/tile/entries/000.p/1").await.bytes().await.unwrap();
    assert_eq!(decode_entry_bundle(&bundle).unwrap(), [w.entry_bytes(0).await]);
    for path in [
        "0/000",
        "0/000.p/2",
        "entries/000",
        "entries/000.p/2",
        "0/001.p/1",
        "1/000.p/1",
        "63/000.p/1",
        // Well-formed, but beyond any tree of at most 2^64 entries.
        "entries/x072/x057/x594/x037/x927/936",
        "0/x018/x446/x744/x073/x709/x551/615.p/1",
    ] {
        err(w.read(&format!("/v1/log/tile/{path}")).await, 404, code::NOT_FOUND).await;
    }
    for path in [
        "0/000.p/0",
        "0/000.p/256",
        "0/0",
        "64/000",
        "999/000",
        "data/000",
        "entries",
        "entries/x",
        "0/000.p/1/extra",
        "8/0/000",
        "nonsense",
        "0/x018/x446/x744/x073/x709/x551/616",
        "01/000",
        "0/001/000",
    ] {
        err(w.read(&format!("/v1/log/tile/{path}")).await, 400, code::BAD_REQUEST).await;
    }
    for query in ["index=0&size=2", "index=0&size=99"] {
        err(w.read(&format!("/v1/log/proof/inclusion?{query}")).await, 404, code::NOT_FOUND).await;
    }
    for query in ["index=1&size=1", "index=0&size=0", "index=0", "index=x&size=1", "index=0&size=1&extra=1"] {
        err(w.read(&format!("/v1/log/proof/inclusion?{query}")).await, 400, code::BAD_REQUEST).await;
    }
    assert!(w.inclusion(0, 1).await.is_empty(), "a one-entry tree needs no path");
    err(w.read("/v1/log/proof/consistency?old=0&new=2").await, 404, code::NOT_FOUND).await;
    err(w.read("/v1/log/proof/consistency?old=1&new=0").await, 400, code::BAD_REQUEST).await;
    err(w.read("/v1/log/proof/consistency?old=1").await, 400, code::BAD_REQUEST).await;
    assert!(w.consistency(0, 1).await.is_empty());
    assert!(w.consistency(1, 1).await.is_empty());
    assert!(w.consistency(0, 0).await.is_empty());
    // Read-only: the log's routes take no writes.
    let resp = w.client.post(format!("{}/v1/log/checkpoint", w.base)).send().await.unwrap();
    err(resp, 404, code::NOT_FOUND).await;
    w.stop().await;
}

#[tokio::test]
async fn the_checkpoint_names_the_serial_of_the_directory_in_force() {
    let mut w = World::start().await;
    let named = |resp: reqwest::Response| resp.headers()[DIRECTORY_SERIAL_HEADER].to_str().unwrap().to_owned();
    assert_eq!(named(w.read("/v1/log/checkpoint").await), "1");
    let publish = w.client.post(format!("{}/v1/directory", w.base)).body(w.keys.signed_directory(2).note);
    assert_eq!(publish.send().await.unwrap().status(), StatusCode::OK);
    assert_eq!(named(w.read("/v1/log/checkpoint").await), "2");
    w.stop().await;
}

async fn cosign(w: &World, key: &MemberSecretKey, size: u64, line: &str) -> reqwest::Response {
    w.post(key, "/v1/log/cosignature", &Cosign { size, line: line.to_owned() }).await
}

#[tokio::test]
async fn witnesses_cosign_checkpoints() {
    let mut w = World::start().await;
    let (camden, islington, witness) = (&w.keys.camden, &w.keys.islington, &w.keys.witness);
    // Serial 2 lists Islington's witness key.
    let publish = w.client.post(format!("{}/v1/directory", w.base)).body(w.keys.signed_directory(2).note);
    assert_eq!(publish.send().await.unwrap().status(), StatusCode::OK);
    let note = w.read("/v1/log/checkpoint").await.text().await.unwrap();
    let cp = sealdrop_log::checkpoint::open(&note, &w.hub().log_verifier()).unwrap();
    assert_eq!(cp.size, 2);

    let line = cosignature_line(witness, 1_780_000_000, &note);
    let accepted: CosignatureAccepted = ok(cosign(&w, islington, 2, &line).await).await;
    assert_eq!((accepted.size, accepted.witness), (2, witness.cosigner_verifier().to_string()));

    // The served checkpoint carries it after the log's signature, and both verify.
    let served = w.read("/v1/log/checkpoint").await.text().await.unwrap();
    assert_eq!(served, format!("{note}{line}"));
    let parsed = signed_note::Note::from_bytes(served.as_bytes()).unwrap();
    let known =
        signed_note::VerifierList::new(vec![Box::new(w.hub().log_verifier()), Box::new(witness.cosigner_verifier())]);
    let (verified, unverified) = parsed.verify(&known).unwrap();
    assert_eq!((verified.len(), unverified.len()), (2, 0));
    assert_eq!(sealdrop_log::checkpoint::open(&served, &w.hub().log_verifier()).unwrap().size, 2);

    // A newer cosignature by the same witness replaces the older one.
    let newer = cosignature_line(witness, 1_780_000_100, &note);
    let _: CosignatureAccepted = ok(cosign(&w, islington, 2, &newer).await).await;
    assert_eq!(w.read("/v1/log/checkpoint").await.text().await.unwrap(), format!("{note}{newer}"));

    // Forged: another key under the witness's name.
    let impostor = NoteSigningKey::generate("islington-witness").unwrap();
    let forged = cosignature_line(&impostor, 1_780_000_000, &note);
    let msg = err(cosign(&w, islington, 2, &forged).await, 422, code::BAD_COSIGNATURE).await;
    assert!(msg.contains("not a witness key"), "{msg}");
    // The right key over another checkpoint body, or the right line for another size.
    let other_body = cosignature_line(witness, 1_780_000_000, &note.replacen("\n2\n", "\n1\n", 1));
    let msg = err(cosign(&w, islington, 2, &other_body).await, 422, code::BAD_COSIGNATURE).await;
    assert!(msg.contains("does not verify"), "{msg}");
    let msg = err(cosign(&w, islington, 1, &line).await, 422, code::BAD_COSIGNATURE).await;
    assert!(msg.contains("does not verify"), "{msg}");
    // Not a signature line, two lines, or another party's witness key.
    err(cosign(&w, islington, 2, "\u{2014} x AAAA").await, 422, code::BAD_COSIGNATURE).await;
    err(cosign(&w, islington, 2, &format!("{line}{line}")).await, 422, code::BAD_COSIGNATURE).await;
    let msg = err(cosign(&w, camden, 2, &line).await, 422, code::BAD_COSIGNATURE).await;
    assert!(msg.contains("`camden`"), "{msg}");
    // No checkpoint of that size; no authentication.
    err(cosign(&w, islington, 9, &line).await, 404, code::NOT_FOUND).await;
    let anonymous = w.client.post(format!("{}/v1/log/cosignature", w.base)).json(&Cosign { size: 2, line });
    err(anonymous.send().await.unwrap(), 401, code::UNAUTHENTICATED).await;
    assert_eq!(w.read("/v1/log/checkpoint").await.text().await.unwrap(), format!("{note}{newer}"), "unchanged");

    // The witness hands in its own cosignature, signing the request itself.
    let own = cosignature_line(witness, 1_780_000_200, &note);
    let body = serde_json::to_vec(&Cosign { size: 2, line: own.clone() }).unwrap();
    let auth = sealdrop_proto::request::sign_request(witness, "POST", "/v1/log/cosignature", w.now(), Some(&body));
    let accepted: CosignatureAccepted =
        ok(w.send(reqwest::Method::POST, "/v1/log/cosignature", Some(&auth), body).await).await;
    assert_eq!(accepted.witness, witness.cosigner_verifier().to_string());
    assert_eq!(w.read("/v1/log/checkpoint").await.text().await.unwrap(), format!("{note}{own}"));
    // But not another witness's, even of its own party.
    let second = NoteSigningKey::generate("islington-witness-2").unwrap();
    let mut d3 = w.keys.directory(3);
    d3.parties[1].witness_keys.push(second.cosigner_verifier());
    let publish = w.client.post(format!("{}/v1/directory", w.base));
    let note3 = SignedDirectory::sign(d3, &w.keys.authority).unwrap().note;
    assert_eq!(publish.body(note3).send().await.unwrap().status(), StatusCode::OK);
    let note = w.read("/v1/log/checkpoint").await.text().await.unwrap();
    let theirs = cosignature_line(&second, 1_780_000_300, &note);
    let body = serde_json::to_vec(&Cosign { size: 3, line: theirs }).unwrap();
    let auth = sealdrop_proto::request::sign_request(witness, "POST", "/v1/log/cosignature", w.now(), Some(&body));
    let msg =
        err(w.send(reqwest::Method::POST, "/v1/log/cosignature", Some(&auth), body).await, 422, code::BAD_COSIGNATURE)
            .await;
    assert!(msg.contains("only its own"), "{msg}");
    assert_eq!(w.read("/v1/log/checkpoint").await.text().await.unwrap(), note, "unchanged");

    // The next checkpoint starts without cosignatures.
    let (drop, manifest) = w.prepare_drop(&["islington"], &w.ciphertext(&["islington"], 300)).await;
    w.commit(&drop.id, &manifest).await;
    let next = w.read("/v1/log/checkpoint").await.text().await.unwrap();
    assert!(next.starts_with(&format!("{ORIGIN}\n4\n")), "{next}");
    assert!(!next.contains("islington-witness"), "{next}");
    w.stop().await;
}

/// A GET signed by `key` (a witness's, say) at the hub's time.
async fn read_as(w: &World, key: &NoteSigningKey, path: &str) -> reqwest::Response {
    let auth = sealdrop_proto::request::sign_request(key, "GET", path, w.now(), Some(b""));
    w.send(reqwest::Method::GET, path, Some(&auth), Vec::new()).await
}

#[tokio::test]
async fn the_log_and_the_directory_are_read_by_members_and_witnesses_unless_public() {
    let mut w = World::launch(|keys| keys.signed_directory(2).note, |hub| hub).await;
    let reads = ["/v1/log/checkpoint", "/v1/log/entry/0", "/v1/log/tile/0/000.p/1", "/v1/directory", "/v1/directory/2"];
    for path in reads {
        let msg = err(w.fetch(path).await, 401, code::UNAUTHENTICATED).await;
        assert!(msg.contains("only to members of its directory and the witnesses it lists"), "{path}: {msg}");
        assert_eq!(w.get(&w.keys.hackney, path).await.status(), StatusCode::OK, "{path} by a member");
        assert_eq!(read_as(&w, &w.keys.witness, path).await.status(), StatusCode::OK, "{path} by the witness");
        let stranger = NoteSigningKey::generate("islington-witness-x").unwrap();
        err(read_as(&w, &stranger, path).await, 401, code::UNKNOWN_KEY).await;
        // A read signs the empty body.
        let auth = sealdrop_proto::request::sign_request(&w.keys.camden.signing, "GET", path, w.now(), Some(b"x"));
        err(w.send(reqwest::Method::GET, path, Some(&auth), Vec::new()).await, 401, code::BAD_SIGNATURE).await;
    }
    // /v1/info stays public.
    let _: HubInfo = ok(w.fetch("/v1/info").await).await;
    let members = w.read("/v1/log/checkpoint").await.text().await.unwrap();

    // The same data directory served with a public log: anyone reads the same bytes.
    w.stop().await;
    let hub = Hub::open(&w.data_dir(), w.clock.clone()).unwrap().with_log_access(LogAccess::Public);
    w.serve(hub).await;
    for path in reads {
        assert_eq!(w.fetch(path).await.status(), StatusCode::OK, "{path} on a public log");
    }
    assert_eq!(w.fetch("/v1/log/checkpoint").await.text().await.unwrap(), members);
    w.stop().await;
}

#[tokio::test]
async fn verifier_key_cli_prints_the_log_key() {
    let mut w = World::start().await;
    let run = |data: PathBuf| {
        std::process::Command::new(env!("CARGO_BIN_EXE_sealdrop-hub"))
            .args(["verifier-key", "--data"])
            .arg(data)
            .env_remove("SEALDROP_HUB_DATA")
            .output()
            .unwrap()
    };
    let out = run(w.data_dir());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "only the key: {stdout:?}");
    assert!(stdout.starts_with(&format!("{ORIGIN}+")), "{stdout}");
    let key: NoteVerifierKey = stdout.trim().parse().unwrap();
    assert_eq!(key, w.hub().log_verifier());
    let note = w.read("/v1/log/checkpoint").await.text().await.unwrap();
    assert_eq!(sealdrop_log::checkpoint::open(&note, &key).unwrap().size, 1);

    let missing = run(w.data.path().join("nowhere"));
    assert!(!missing.status.success() && missing.stdout.is_empty());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("sealdrop-hub init"));
    w.stop().await;
}

fn db(w: &World) -> rusqlite::Connection {
    rusqlite::Connection::open(w.data_dir().join("hub.db")).unwrap()
}

/// One edit of the stored log, how to undo it, and what the refusal must say.
struct Edit {
    apply: Box<dyn Fn(&rusqlite::Connection)>,
    undo: Box<dyn Fn(&rusqlite::Connection)>,
    says: &'static str,
}

fn sql(statement: &'static str) -> Box<dyn Fn(&rusqlite::Connection)> {
    Box::new(move |c| assert_eq!(c.execute(statement, []).unwrap(), 1, "{statement}"))
}

#[tokio::test]
async fn a_hub_whose_log_was_edited_refuses_to_start() {
    let mut w = World::start().await;
    let (created, manifest) = w.prepare_drop(&["islington"], &w.ciphertext(&["islington"], 300)).await;
    w.commit(&created.id, &manifest).await;
    let resp = w.get(&w.keys.islington, &format!("/v1/drops/{}/content", created.id)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let served = w.checkpoint().await;
    assert_eq!(served.size, 3);
    w.stop().await;

    let conn = db(&w);
    let entry1: Vec<u8> = conn.query_row("SELECT data FROM log_entries WHERE idx = 1", [], |r| r.get(0)).unwrap();
    let hash1: Vec<u8> = conn.query_row("SELECT hash FROM log_hashes WHERE idx = 1", [], |r| r.get(0)).unwrap();
    drop(conn);
    let mut flipped = hash1.clone();
    flipped[0] ^= 1;
    let (cp_note, entry) = (served.note.clone(), entry1.clone());
    let edits = [
        Edit {
            apply: sql(
                "UPDATE log_entries SET data = CAST(replace(CAST(data AS TEXT), 'islington', 'hackney') AS BLOB) WHERE idx = 2",
            ),
            undo: sql(
                "UPDATE log_entries SET data = CAST(replace(CAST(data AS TEXT), 'hackney', 'islington') AS BLOB) WHERE idx = 2",
            ),
            says: "does not match entry 2",
        },
        Edit {
            apply: Box::new(move |c| {
                c.execute("UPDATE log_hashes SET hash = ?1 WHERE idx = 1", [&flipped]).unwrap();
            }),
            undo: Box::new(move |c| {
                c.execute("UPDATE log_hashes SET hash = ?1 WHERE idx = 1", [&hash1]).unwrap();
            }),
            says: "stored hash 1 does not match entry 1",
        },
        Edit {
            apply: sql(
                "UPDATE checkpoints SET note = replace(note, char(10) || '3' || char(10), char(10) || '4' || char(10)) WHERE size = 3",
            ),
            undo: sql(
                "UPDATE checkpoints SET note = replace(note, char(10) || '4' || char(10), char(10) || '3' || char(10)) WHERE size = 3",
            ),
            says: "does not verify with the log key",
        },
        Edit {
            apply: sql("DELETE FROM checkpoints WHERE size = 3"),
            undo: Box::new(move |c| {
                c.execute("INSERT INTO checkpoints (size, note) VALUES (3, ?1)", [&cp_note]).unwrap();
            }),
            says: "covers 2 entries but 3 are stored",
        },
        Edit {
            apply: sql("INSERT INTO log_entries (idx, data) VALUES (3, X'7B7D')"),
            undo: sql("DELETE FROM log_entries WHERE idx = 3"),
            says: "stored hash 4 (of entry 3) is missing",
        },
        Edit {
            apply: sql("DELETE FROM log_entries WHERE idx = 1"),
            undo: Box::new(move |c| {
                c.execute("INSERT INTO log_entries (idx, data) VALUES (1, ?1)", [&entry]).unwrap();
            }),
            says: "entry 1 is missing",
        },
    ];
    Hub::open(&w.data_dir(), w.clock.clone()).unwrap();
    for (i, edit) in edits.iter().enumerate() {
        (edit.apply)(&db(&w));
        let e = Hub::open(&w.data_dir(), w.clock.clone()).unwrap_err();
        assert!(matches!(e, HubError::LogInconsistent(_)), "edit {i}: {e}");
        let msg = e.to_string();
        assert!(msg.contains("transfer log is inconsistent") && msg.contains("Do not serve"), "{msg}");
        assert!(msg.contains(edit.says), "edit {i}: {msg}");
        (edit.undo)(&db(&w));
        Hub::open(&w.data_dir(), w.clock.clone()).unwrap_or_else(|e| panic!("after undoing edit {i}: {e}"));
    }

    // Undone, the hub serves the log it served before.
    let hub = Hub::open(&w.data_dir(), w.clock.clone()).unwrap();
    w.serve(hub).await;
    assert_eq!(w.checkpoint().await, served);
    w.stop().await;
}

#[tokio::test]
async fn an_emptied_log_is_refused_but_a_database_from_before_the_log_starts_one() {
    let mut w = World::start().await;
    let (created, manifest) = w.prepare_drop(&["islington"], &w.ciphertext(&["islington"], 300)).await;
    w.commit(&created.id, &manifest).await;
    w.stop().await;
    db(&w)
        .execute_batch(
            "DELETE FROM cosignatures; DELETE FROM checkpoints; DELETE FROM log_hashes; DELETE FROM log_entries;",
        )
        .unwrap();
    let e = Hub::open(&w.data_dir(), w.clock.clone()).unwrap_err();
    assert!(matches!(e, HubError::LogInconsistent(_)), "{e}");
    assert!(e.to_string().contains("entries were deleted"), "{e}");

    // Without the marker, this is a database from before the log: the log
    // starts with the directory in force.
    db(&w).execute("DELETE FROM settings WHERE key = 'log_started'", []).unwrap();
    w.advance(60);
    let hub = Hub::open(&w.data_dir(), w.clock.clone()).unwrap();
    w.serve(hub).await;
    let cp = w.checkpoint().await;
    assert_eq!(cp.size, 1);
    assert_eq!(
        statement(&w.entry(0).await, &w.hub().log_verifier()),
        HubStatement::DirectoryPublished {
            time: Timestamp::from_second(w.now()).unwrap(),
            serial: 1,
            sha256: w.keys.signed_directory(1).sha256_hex()
        }
    );
    w.stop().await;
    Hub::open(&w.data_dir(), w.clock.clone()).unwrap();
}
