//! Seed inputs for every target, made by sealdrop's own code from the
//! fixture's keys: real directories, manifests, receipts, requests, log
//! entries, proofs, checkpoints, bundles, archives, ciphertexts,
//! spreadsheets, journals, config files and keys, plus a few hostile
//! variants. `sealdrop-fuzz-seeds DIR` writes them to `DIR/<target>/seed-*`.

use std::io::Write;

use age::secrecy::ExposeSecret;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use jiff::{SignedDuration, Timestamp};

use sealdrop::config::ConfigFile;
use sealdrop::journal::{self, Event};
use sealdrop_demo::sample::{FsmOptions, write_fsm};
use sealdrop_log::entry::LogEntry;
use sealdrop_log::proof::OfflineProof;
use sealdrop_log::tiles::encode_entry_bundle;
use sealdrop_proto::api::{
    Ack, Acked, Commit, Committed, ConsistencyProof, Cosign, CosignatureAccepted, CreateDrop, CreatedDrop,
    DirectoryAccepted, DropDetails, DropState, ErrorBody, ErrorDetail, HubInfo, Inbox, InboxEntry, InclusionProof,
    LogProof, Recall, Recalled, RecipientStatus, Sent, SentDrop, UploadProgress, Uploaded,
};
use sealdrop_proto::directory::{RevokedKey, SignedDirectory};
use sealdrop_proto::drop::{EncryptedTo, Manifest, Receipt};
use sealdrop_proto::ids::{DropId, PartyId};
use sealdrop_proto::note::sign_doc;
use sealdrop_proto::request::{
    HEADER_CONTENT, HEADER_KEY, HEADER_NONCE, HEADER_SIGNATURE, HEADER_TIME, RequestAuth, UNSIGNED_BODY, signed_string,
};

use crate::fixtures::{NOW, fixture, signed_request};

/// One seed: its target, a file name (without the `seed-` prefix) and its bytes.
pub type Seed = (&'static str, String, Vec<u8>);

/// Every seed of every target.
pub fn seeds() -> Vec<Seed> {
    let mut out = Vec::new();
    let mut add = |target: &'static str, name: &str, bytes: Vec<u8>| out.push((target, name.to_owned(), bytes));
    documents(&mut add);
    hub_inputs(&mut add);
    log_inputs(&mut add);
    client_inputs(&mut add);
    out
}

/// Writes every seed to `dir/<target>/seed-<name>`, replacing older seeds.
pub fn write_all(dir: &Path) -> std::io::Result<usize> {
    let seeds = seeds();
    for (target, name, bytes) in &seeds {
        let folder = dir.join(target);
        std::fs::create_dir_all(&folder)?;
        std::fs::write(folder.join(format!("seed-{name}")), bytes)?;
    }
    Ok(seeds.len())
}

type Add<'a> = dyn FnMut(&'static str, &str, Vec<u8>) + 'a;

fn drop_id(n: u8) -> DropId {
    format!("d-{}", char::from(b'a' + n).to_string().repeat(26)).parse().expect("valid drop id")
}

fn now() -> Timestamp {
    Timestamp::from_second(NOW).expect("valid")
}

/// A manifest from camden under the example directory's agreement.
fn manifest(to: &[usize]) -> Manifest {
    let f = fixture();
    let dir = &f.example.directory;
    let recipients: Vec<PartyId> = to.iter().map(|&i| f.member(i).party.clone()).collect();
    Manifest {
        drop: drop_id(0),
        sender: f.member(0).party.clone(),
        sender_member: f.member(0).member.clone(),
        encrypted_to: recipients
            .iter()
            .flat_map(|p| dir.party(p).expect("example party").members.iter().map(move |m| (p, m)))
            .map(|(p, m)| EncryptedTo { key: format!("{p}/{}", m.member), age_recipient: m.age_recipient.clone() })
            .collect(),
        recipients,
        agreement: "london-fsm-ehc".into(),
        directory_serial: 1,
        ciphertext_sha256: "ab".repeat(32),
        ciphertext_len: 12_345,
        created: now(),
        expires: now() + SignedDuration::from_hours(48),
    }
}

fn receipt(m: &Manifest) -> Receipt {
    let f = fixture();
    Receipt {
        drop: m.drop.clone(),
        recipient: f.member(1).party.clone(),
        member: f.member(1).member.clone(),
        ciphertext_sha256: m.ciphertext_sha256.clone(),
        ciphertext_len: m.ciphertext_len,
        received: now(),
    }
}

fn documents(add: &mut Add<'_>) {
    let f = fixture();
    add("directory", "example", f.example.note.clone().into_bytes());
    for (serial, note) in &f.log.directories {
        add("directory", &format!("log-serial-{serial}"), note.clone().into_bytes());
    }
    // A rotation: camden's key revoked and replaced.
    let mut next = f.example.directory.clone();
    next.serial = 2;
    let old = next.parties.iter().find(|p| p.id.as_str() == "camden").expect("camden").members[0].clone();
    let camden = next.parties.iter_mut().find(|p| p.id.as_str() == "camden").expect("camden");
    camden.members = vec![];
    camden.revoked = vec![RevokedKey {
        member: old.member.clone(),
        signing_key: old.signing_key.clone(),
        revoked_at: now(),
        reason: "left".into(),
    }];
    let rotated = SignedDirectory::sign(next, &f.log.keys.authority).expect("consistent");
    add("directory", "revocation", rotated.note.into_bytes());
    add("directory", "tampered", f.example.note.replacen("\"serial\": 1", "\"serial\": 7", 1).into_bytes());

    let m = manifest(&[1]);
    add("manifest", "to-islington", sign_doc(&m, &f.member(0).signing).into_bytes());
    add("manifest", "to-two", sign_doc(&manifest(&[1, 2]), &f.member(0).signing).into_bytes());
    add("manifest", "signed-by-islington", sign_doc(&m, &f.member(1).signing).into_bytes());
    for (i, e) in f.log.entries.iter().enumerate() {
        match LogEntry::from_bytes(e).expect("parses") {
            LogEntry::DropCommitted { manifest, .. } => add("manifest", &format!("log-{i}"), manifest.into_bytes()),
            LogEntry::DropAcknowledged { receipt, .. } => add("receipt", &format!("log-{i}"), receipt.into_bytes()),
            _ => {}
        }
    }
    add("receipt", "islington", sign_doc(&receipt(&m), &f.member(1).signing).into_bytes());
    add("receipt", "by-camden", sign_doc(&receipt(&m), &f.member(0).signing).into_bytes());
}

/// A request head and body in the `request_auth` target's form.
fn request_text(method: &str, path: &str, auth: &RequestAuth, body: &[u8]) -> Vec<u8> {
    let mut out = format!("{method} {path}\n").into_bytes();
    for (name, value) in [
        (HEADER_KEY, &auth.key),
        (HEADER_TIME, &auth.time.to_string()),
        (HEADER_NONCE, &auth.nonce),
        (HEADER_CONTENT, &auth.content),
        (HEADER_SIGNATURE, &auth.signature),
    ] {
        out.extend_from_slice(format!("{name}: {value}\n").as_bytes());
    }
    out.push(b'\n');
    out.extend_from_slice(body);
    out
}

fn hub_inputs(add: &mut Add<'_>) {
    let f = fixture();
    let camden = &f.member(0).signing;
    let create = serde_json::to_vec(&CreateDrop {
        recipients: vec!["islington".parse().expect("valid")],
        agreement: "london-fsm-ehc".into(),
        expires: now() + SignedDuration::from_hours(48),
        idempotency_key: Some("0f".repeat(32)),
    })
    .expect("serialises");
    let requests: [(&str, &str, &str, &[u8], i64); 5] = [
        ("inbox", "GET", "/v1/inbox", b"", NOW),
        ("create", "POST", "/v1/drops", &create, NOW - 30),
        ("recall", "POST", &format!("/v1/drops/{}/recall", drop_id(1)), b"{}", NOW + 10),
        ("stale", "GET", "/v1/sent", b"", NOW - 3600),
        ("query", "GET", "/v1/log/proof/inclusion?index=1&size=9", b"", NOW),
    ];
    for (i, (name, method, path, body, time)) in requests.into_iter().enumerate() {
        let auth = signed_request(camden, method, path, time, body, &format!("seed-nonce-{i:06}"));
        add("request_auth", name, request_text(method, path, &auth, body));
    }
    let mut streamed = signed_request(camden, "PUT", "/v1/drops/x/content", NOW, b"", "seed-nonce-streamed");
    streamed.content = UNSIGNED_BODY.into();
    let msg = signed_string("PUT", "/v1/drops/x/content", NOW, &streamed.nonce, UNSIGNED_BODY, camden.name());
    streamed.signature = B64.encode(camden.sign_bytes(msg.as_bytes()).to_bytes());
    add("request_auth", "unsigned-put", request_text("PUT", "/v1/drops/x/content", &streamed, b"ciphertext"));
    let stranger = signed_request(&f.log.keys.log, "GET", "/v1/inbox", NOW, b"", "seed-nonce-stranger");
    add("request_auth", "unknown-key", request_text("GET", "/v1/inbox", &stranger, b""));

    for (name, text) in [
        ("open", "1000\nbytes=0-"),
        ("closed", "1000\nbytes=10-20"),
        ("suffix", "1000\nbytes=-5"),
        ("empty", "0\nbytes=0-"),
        ("multiple", "1000\nbytes=0-1,5-6"),
        ("spaced", "18446744073709551615\n Bytes = 5 - 18446744073709551615 "),
    ] {
        add("range", name, text.as_bytes().to_vec());
    }

    let m = manifest(&[1]);
    let note = sign_doc(&m, camden);
    let rec = RecipientStatus {
        party: "islington".parse().expect("valid"),
        fetched: Some(now()),
        acknowledged: None,
        acknowledged_by: None,
        fetched_log_index: Some(4),
        acknowledged_log_index: None,
    };
    let inclusion = InclusionProof {
        index: 3,
        size: f.tree.size(),
        hashes: f.tree.inclusion_proof(3, f.tree.size()).expect("in range").iter().map(|h| B64.encode(h.0)).collect(),
    };
    let consistency = ConsistencyProof {
        old: 5,
        new: f.tree.size(),
        hashes: f.tree.consistency_proof(5, f.tree.size()).expect("in range").iter().map(|h| B64.encode(h.0)).collect(),
    };
    let cosign_line = sealdrop_log::cosign::cosign(&f.checkpoint(9, 0), &f.log.keys.witnesses[0], 1_700_000_000);
    let json: Vec<(&str, Vec<u8>)> = vec![
        ("create-drop", create),
        ("commit", to_json(&Commit { manifest: note.clone(), known_size: Some(3) })),
        ("ack", to_json(&Ack { receipt: sign_doc(&receipt(&m), &f.member(1).signing), known_size: None })),
        ("recall", to_json(&Recall {})),
        ("cosign", to_json(&Cosign { size: 9, line: cosign_line })),
        (
            "hub-info",
            to_json(&HubInfo {
                origin: f.log_key().name().to_owned(),
                directory_serial: 2,
                version: "0.1.0".into(),
                log_key: f.log_key().to_string(),
            }),
        ),
        ("created", to_json(&CreatedDrop { id: m.drop.clone(), created: now(), expires: m.expires, committed: None })),
        ("uploaded", to_json(&Uploaded { sha256: m.ciphertext_sha256.clone(), len: 12_345 })),
        ("progress", to_json(&UploadProgress { received: 100, complete: false })),
        ("committed", to_json(&Committed { id: m.drop.clone(), committed: now(), log_index: 4, proof: None, already: false })),
        (
            "committed-with-proof",
            to_json(&Committed {
                id: m.drop.clone(),
                committed: now(),
                log_index: 4,
                proof: Some(LogProof {
                    checkpoint: "hub.example.org\n5\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n\u{2014} hub.example.org AAAA\n".into(),
                    entry: "eyJ0eXBlIjoiaHViIn0=".into(),
                    inclusion: vec!["AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".into()],
                    consistency: Some(ConsistencyProof { old: 3, new: 5, hashes: vec![] }),
                }),
                already: false,
            }),
        ),
        (
            "inbox",
            to_json(&Inbox {
                drops: vec![InboxEntry {
                    id: m.drop.clone(),
                    from: m.sender.clone(),
                    size: 12_345,
                    created: now(),
                    committed: now(),
                    expires: m.expires,
                    agreement: m.agreement.clone(),
                }],
            }),
        ),
        (
            "details",
            to_json(&DropDetails {
                id: m.drop.clone(),
                manifest: note,
                state: DropState::Committed,
                committed: Some(now()),
                committed_log_index: Some(3),
            }),
        ),
        ("acked", to_json(&Acked { ciphertext_deleted: true, log_index: 7, proof: None })),
        (
            "recalled",
            to_json(&Recalled {
                id: m.drop.clone(),
                recalled: now(),
                log_index: 9,
                ciphertext_deleted: true,
                downloaded_by: vec![rec.clone()],
            }),
        ),
        (
            "sent",
            to_json(&Sent {
                drops: vec![SentDrop {
                    id: m.drop.clone(),
                    state: DropState::Recalled,
                    agreement: m.agreement.clone(),
                    size: 12_345,
                    created: now(),
                    committed: Some(now()),
                    expires: m.expires,
                    recipients: vec![rec],
                    idempotency_key: Some("0f".repeat(32)),
                    deleted: Some(now()),
                    committed_log_index: Some(3),
                    deleted_log_index: Some(9),
                }],
            }),
        ),
        ("directory-accepted", to_json(&DirectoryAccepted { serial: 3 })),
        ("inclusion", to_json(&inclusion)),
        ("consistency", to_json(&consistency)),
        ("cosignature-accepted", to_json(&CosignatureAccepted { size: 9, witness: f.witness_keys()[0].to_string() })),
        (
            "error",
            to_json(&ErrorBody {
                error: ErrorDetail { code: "bad_manifest".into(), message: "the manifest is not signed".into() },
            }),
        ),
    ];
    for (name, bytes) in json {
        add("api_json", name, bytes.clone());
        if name == "inclusion" || name == "consistency" {
            add("proof", name, bytes);
        }
    }
    age_headers(add);
}

/// Ciphertexts' first bytes: from the `age` crate (with its grease stanza),
/// one shaped as Go's `age` writes it (no grease), and refused ones.
fn age_headers(add: &mut Add<'_>) {
    let f = fixture();
    let encrypt = |members: &[usize]| {
        let recipients: Vec<_> =
            members.iter().map(|&i| f.member(i).public().age_recipient().expect("valid")).collect();
        let enc =
            age::Encryptor::with_recipients(recipients.iter().map(|r| r.native().expect("native"))).expect("some");
        let mut w = enc.wrap_output(Vec::new()).expect("in memory");
        w.write_all(b"a drop's archive").expect("in memory");
        w.finish().expect("in memory")
    };
    add("age_header", "to-islington", encrypt(&[1]));
    add("age_header", "to-two", encrypt(&[1, 2]));
    add("age_header", "extra-key", encrypt(&[1, 2, 0]));
    let mut truncated = encrypt(&[1]);
    truncated.truncate(60);
    add("age_header", "truncated", truncated);
    let stanza = |tag: &str, args: &str| format!("-> {tag} {args}\n{}A\n", "B".repeat(42));
    let header = |stanzas: &str| {
        let mut h = format!("age-encryption.org/v1\n{stanzas}--- {}A\n", "C".repeat(42)).into_bytes();
        h.extend_from_slice(&[7u8; 16 + 40]);
        h
    };
    // Go's age writes no grease; a post-quantum stanza's argument is 1,120 bytes.
    let mlkem = || stanza("mlkem768x25519", &format!("{}A", "D".repeat(1493)));
    add("age_header", "go-age", header(&mlkem()));
    add("age_header", "scrypt", header(&format!("{}{}", mlkem(), stanza("scrypt", "c2FsdA 18"))));
    add("age_header", "armored", b"-----BEGIN AGE ENCRYPTED FILE-----\nYWdlLWVuY3J5cHRpb24ub3JnL3Yx\n".to_vec());
}

fn to_json<T: serde::Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("serialises")
}

fn log_inputs(add: &mut Add<'_>) {
    let f = fixture();
    let n = f.tree.size();
    for (i, e) in f.log.entries.iter().enumerate() {
        add("log_entry", &format!("entry-{i:02}"), e.clone());
    }
    let spaced = String::from_utf8(f.log.entries[1].clone()).expect("UTF-8").replacen(",", ", ", 1);
    add("log_entry", "not-canonical", spaced.into_bytes());
    let lines = |entries: &[Vec<u8>]| entries.join(&b'\n');
    add("audit_log", "whole", lines(&f.log.entries));
    add("audit_log", "prefix", lines(&f.log.entries[..8]));
    // A request time that once overflowed the audit's clock-skew check.
    let mut far = f.log.entries.clone();
    let fetch = String::from_utf8(far[2].clone()).expect("UTF-8");
    let time = fetch.split("\"time\":").nth(1).and_then(|t| t.split(',').next()).expect("a request time");
    far[2] = fetch.replacen(&format!("\"time\":{time},"), "\"time\":-9223372036854775808,", 1).into_bytes();
    add("audit_log", "request-time-min", lines(&far));
    let mut gap = f.log.entries.clone();
    gap.remove(3);
    add("audit_log", "entry-missing", lines(&gap));

    for (size, witnesses) in [(n, 3), (n, 0), (1, 1), (9, 2)] {
        add("checkpoint", &format!("size-{size}-witnesses-{witnesses}"), f.checkpoint(size, witnesses).into_bytes());
    }
    add("checkpoint", "log", f.log.checkpoint.clone().into_bytes());
    for (index, size, witnesses) in [(0, n, 3), (5, n, 1), (n - 1, n, 0), (2, 9, 2)] {
        let mut p = OfflineProof::build(&f.tree, index, &f.checkpoint(size, witnesses)).expect("in range");
        if index == 5 {
            p.extra = Some(format!("drop {}", drop_id(2)));
        }
        add("proof", &format!("offline-{index}-of-{size}"), p.to_text().into_bytes());
    }

    for path in ["0/000", "0/000.p/19", "1/000.p/1", "entries/000.p/19", "0/x001/x234/067", "63/x001/000.p/255"] {
        add("tiles", &path.replace('/', "_"), path.as_bytes().to_vec());
    }
    add("tiles", "entry-bundle", encode_entry_bundle(&f.log.entries).expect("small"));

    add("audit_bundle", "log", f.log.write_bundle(Vec::new()).expect("in memory"));
}

fn client_inputs(add: &mut Add<'_>) {
    let f = fixture();
    let tmp = tempfile::tempdir().expect("a temporary folder");
    let src = tmp.path().join("src");
    std::fs::create_dir_all(src.join("reports/sub")).expect("writable");
    std::fs::write(src.join("reports/a.csv"), "x,y\n1,2\n").expect("writable");
    std::fs::write(src.join("reports/sub/Zoë pupil list.csv"), "é\n").expect("writable");
    std::fs::write(src.join("single.txt"), "hello").expect("writable");
    let plan =
        sealdrop::archive::plan(&[src.join("reports"), src.join("single.txt")]).expect("a plan of regular files");
    let tar = sealdrop::archive::write(&plan, Vec::new(), |_| {}).expect("in memory");
    add("tar_extract", "drop", tar.clone());
    for (name, kind, path, link) in [
        ("parent", tar::EntryType::Regular, "../escape.txt", None),
        ("absolute", tar::EntryType::Regular, "/tmp/abs.txt", None),
        ("symlink", tar::EntryType::Symlink, "link", Some("/etc/passwd")),
        ("hardlink", tar::EntryType::Link, "hard", Some("single.txt")),
        ("device", tar::EntryType::Char, "dev", None),
        ("fifo", tar::EntryType::Fifo, "fifo", None),
    ] {
        add("tar_extract", name, raw_tar(&[(path, kind, link)]));
    }
    add(
        "tar_extract",
        "duplicate",
        raw_tar(&[("a.txt", tar::EntryType::Regular, None), ("a.txt", tar::EntryType::Regular, None)]),
    );
    // Found by fuzzing: a modification time past the clock's range made extraction panic.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(2);
    h.set_mode(0o644);
    h.set_mtime(u64::MAX);
    b.append_data(&mut h, "file.txt", &b"hi"[..]).expect("in memory");
    add("tar_extract", "huge-mtime", b.into_inner().expect("in memory"));
    let long = format!("{}/file.txt", "long-folder-name".repeat(12));
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(4);
    h.set_mode(0o755);
    b.append_data(&mut h, &long, &b"data"[..]).expect("in memory");
    add("tar_extract", "long-name", b.into_inner().expect("in memory"));

    let recipient = f.member(1).public().age_recipient().expect("valid");
    let other = f.member(2).public().age_recipient().expect("valid");
    for (name, recipients) in [("to-islington", vec![recipient.clone()]), ("to-two", vec![other, recipient])] {
        let enc =
            age::Encryptor::with_recipients(recipients.iter().map(|r| r.native().expect("native"))).expect("some");
        let mut w = enc.wrap_output(Vec::new()).expect("in memory");
        w.write_all(&tar).expect("in memory");
        add("age_decrypt", name, w.finish().expect("in memory"));
    }

    let csv_path = tmp.path().join("fsm.csv");
    let opts = FsmOptions { rows: 25, seed: 7, unroutable: 2, ..FsmOptions::default() };
    write_fsm(&opts, &csv_path).expect("a sample list");
    let fsm = std::fs::read(&csv_path).expect("readable");
    add("split_csv", "fsm", fsm.clone());
    add(
        "split_csv",
        "quoted-bom-crlf",
        "\u{feff}id,name,home_la\r\n1,\"Smith, Jo\",Islington\r\n\r\n2,\"two\r\nlines \"\"q\"\"\",\"E09000012\"\r\n,,\r\n3,Zoë,\r\n4,short\r\n5,last,London Borough of Camden"
            .as_bytes()
            .to_vec(),
    );
    let xlsx_path = tmp.path().join("fsm.xlsx");
    write_fsm(&FsmOptions { rows: 12, ..opts }, &xlsx_path).expect("a sample workbook");
    add("split_xlsx", "fsm", std::fs::read(&xlsx_path).expect("readable"));

    let part = "pupil,home_la\r\n1,Camden\r\n2,\"Islington, N1\"\r\n";
    add("merge_csv", "two-parts", format!("{part}=====\n{part}").into_bytes());
    add("merge_csv", "bom", format!("\u{feff}{part}=====\n\u{feff}pupil,home_la\n3,Hackney\n").into_bytes());
    add("merge_csv", "headers-differ", format!("{part}=====\npupil,home\n3,x\n").into_bytes());
    add("merge_csv", "fsm", fsm);

    let state = tmp.path().join("state");
    let m = manifest(&[1]);
    let t = now();
    let events = [
        Event::Sent(journal::Sent {
            drop: m.drop.clone(),
            recipients: m.recipients.clone(),
            agreement: m.agreement.clone(),
            names: vec!["fsm-islington.csv".into()],
            plaintext_bytes: Some(2048),
            ciphertext_sha256: m.ciphertext_sha256.clone(),
            ciphertext_len: m.ciphertext_len,
            created: t,
            committed: t,
            expires: m.expires,
            log_index: 4,
            receipt: Some("/state/log/receipts/4.tlog-proof".into()),
            manifest_key_fingerprint: Some(f.member(0).signing.verifier().fingerprint()),
        }),
        Event::Received(journal::Received {
            drop: drop_id(3),
            from: "hackney".parse().expect("valid"),
            agreement: m.agreement.clone(),
            names: vec!["fsm-camden.csv".into(), "folder".into()],
            dest: "/home/ig/incoming".into(),
            files: 2,
            bytes: 4096,
            log_index: 8,
            receipt: None,
            manifest_key_fingerprint: Some(f.member(2).signing.verifier().fingerprint()),
            receipt_key_fingerprint: Some(f.member(0).signing.verifier().fingerprint()),
        }),
        Event::Recalled(journal::Recalled { drop: m.drop.clone(), recalled: t, log_index: 11, receipt: None }),
        Event::Checkpoint(journal::Checkpoint {
            origin: f.log_key().name().to_owned(),
            size: f.tree.size(),
            root: B64.encode(f.tree.root().0),
        }),
    ];
    for (i, e) in events.into_iter().enumerate() {
        journal::append(&state, t + SignedDuration::from_secs(i as i64), e).expect("writable");
    }
    let mut lines = std::fs::read(journal::path(&state)).expect("readable");
    add("journal", "four-events", lines.clone());
    lines.extend_from_slice(b"{\"v\":1,\"time\":\"2027-01-15T08:00:00Z\",\"event\":\"se");
    add("journal", "cut-short", lines);

    let config = ConfigFile {
        hub: Some("https://hub.example.org".into()),
        identity: Some("/home/ig/.sealdrop/camden.key".into()),
        authority: Some(f.log.keys.authority.verifier().to_string()),
        state_dir: Some("/home/ig/.local/share/sealdrop".into()),
        witness_key: Some("/home/ig/.sealdrop/witness.key".into()),
        resume_min_bytes: Some(8 << 20),
        insecure_http: Some(false),
        hub_ca: Some("/home/ig/.sealdrop/council-ca.pem".into()),
        key_plugin_identity: Some("/home/ig/.sealdrop/yubikey-identity.txt".into()),
        // The watch service's sections are left out: the corpus's seed keeps its bytes.
        watch: None,
        notify: None,
    };
    add("config", "full", toml::to_string_pretty(&config).expect("serialises").into_bytes());
    add("config", "empty", Vec::new());

    let authority = &f.log.keys.authority;
    add("keys", "authority-pub", format!("{}\n", authority.verifier()).into_bytes());
    add("keys", "authority-key", authority.to_note_text().as_bytes().to_vec());
    add("keys", "member-key", f.member(0).to_file_text().as_bytes().to_vec());
    add("keys", "card", to_json(&f.member(0).public()));
    add("keys", "witness-pub", f.witness_keys()[0].to_string().into_bytes());
    add("keys", "age-identity", f.member(0).age_identity.to_secret_string().expose_secret().as_bytes().to_vec());
    add("keys", "party-id", b"barking-and-dagenham".to_vec());
    add("keys", "drop-id", drop_id(4).to_string().into_bytes());
}

/// A tar of entries written byte for byte (the tar crate's own checks would
/// refuse to build the hostile ones).
fn raw_tar(entries: &[(&str, tar::EntryType, Option<&str>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, kind, link) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(*kind);
        let data: &[u8] = if *kind == tar::EntryType::Regular { b"evil" } else { b"" };
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        let gnu = h.as_gnu_mut().expect("a GNU header");
        gnu.name[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(l) = link {
            gnu.linkname[..l.len()].copy_from_slice(l.as_bytes());
        }
        h.set_cksum();
        b.append(&h, data).expect("in memory");
    }
    b.into_inner().expect("in memory")
}
