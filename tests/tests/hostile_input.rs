//! Hostile input never hurts the hub: oversized, truncated and lying bodies,
//! path tricks in every path parameter, malformed JSON, huge heads and slow
//! clients, each sent by hand (see [`raw`]) to the real `sealdrop-hub`, with
//! what the hub stores (database rows, upload rows and files, log entries)
//! checked before and after.

use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use sealdrop_e2e::{AGREEMENT, Hub, Party, age_shaped, http, member_key, pseudo_random_bytes, raw, sha256_hex, tree};
use sealdrop_proto::api::{Commit, CreateDrop, CreatedDrop, UPLOAD_OFFSET_HEADER};
use sealdrop_proto::keys::NoteSigningKey;

const MIB: usize = 1024 * 1024;

fn camden() -> NoteSigningKey {
    member_key("camden").signing
}

/// Everything the hub keeps that a refused request could have added to.
#[derive(Debug, PartialEq, Eq)]
struct Stored {
    drops: String,
    uploads: String,
    inline_blobs: String,
    log_entries: String,
    /// Every file and folder under `uploads/` and `blobs/`.
    files: Vec<String>,
}

fn stored(hub: &Hub) -> Stored {
    let count = |sql: &str| hub.query_text(sql, &[]);
    let mut files: Vec<String> = Vec::new();
    for dir in ["uploads", "blobs"] {
        files.extend(tree(&hub.data.path().join(dir)).into_keys().map(|name| format!("{dir}/{name}")));
    }
    Stored {
        drops: count("SELECT CAST(count(*) AS TEXT) FROM drops"),
        uploads: count("SELECT CAST(count(*) AS TEXT) FROM drops WHERE upload_len IS NOT NULL"),
        inline_blobs: count("SELECT CAST(count(*) AS TEXT) FROM inline_blobs"),
        log_entries: count("SELECT CAST(count(*) AS TEXT) FROM log_entries"),
        files,
    }
}

/// Camden announces a drop for islington over the raw API.
fn create(hub: &Hub) -> CreatedDrop {
    let body = serde_json::to_vec(&CreateDrop {
        recipients: vec!["islington".parse().unwrap()],
        agreement: AGREEMENT.into(),
        expires: sealdrop_proto::Timestamp::from_second(http::now() + 86_400).unwrap(),
        idempotency_key: None,
    })
    .unwrap();
    let reply = http::signed_at(&hub.url, &camden(), "POST", "/v1/drops", http::now(), &body);
    assert_eq!(reply.status, 200, "create: {reply:?}");
    serde_json::from_str(&reply.body).unwrap()
}

/// Camden commits `drop` with a manifest stating `ciphertext`.
fn commit(hub: &Hub, drop: &CreatedDrop, ciphertext: &[u8]) -> http::Reply {
    let key = member_key("camden");
    let manifest = sealdrop_e2e::manifest_for("camden", "islington", drop, ciphertext);
    let commit = Commit { manifest: sealdrop_proto::note::sign_doc(&manifest, &key.signing), known_size: None };
    let body = serde_json::to_vec(&commit).unwrap();
    http::signed_at(&hub.url, &key.signing, "POST", &format!("/v1/drops/{}/commit", drop.id), http::now(), &body)
}

/// `PUT /v1/drops/{id}/content` with `bytes`, continuing from `offset`.
fn put_content(hub: &Hub, id: &str, offset: u64, bytes: &[u8]) -> http::Reply {
    let path = format!("/v1/drops/{id}/content");
    let auth = sealdrop_proto::request::sign_request(&camden(), "PUT", &path, http::now(), None);
    let mut req = http::client().put(format!("{}{path}", hub.url)).body(bytes.to_vec());
    if offset > 0 {
        req = req.header(UPLOAD_OFFSET_HEADER, offset.to_string());
    }
    for (name, value) in auth.headers() {
        req = req.header(name, value);
    }
    http::Reply::from(req.send())
}

/// How many bytes of drop `id`'s upload the hub holds, and whether they are a finished upload.
fn progress(hub: &Hub, id: &str) -> (u64, bool) {
    let reply = http::signed_get(&hub.url, &camden(), &format!("/v1/drops/{id}/upload"));
    assert_eq!(reply.status, 200, "{reply:?}");
    let v = sealdrop_e2e::json(&reply.body);
    (v["received"].as_u64().unwrap(), v["complete"].as_bool().unwrap())
}

/// Waits (at most 10 s) until `check` holds.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The head of a signed upload of drop `id`: with a Content-Length, or chunked.
fn upload_head(id: &str, content_length: Option<usize>, offset: u64) -> String {
    let mut headers = vec![("content-type", "application/octet-stream".to_owned())];
    match content_length {
        Some(len) => headers.push(("content-length", len.to_string())),
        None => headers.push(("transfer-encoding", "chunked".to_owned())),
    }
    if offset > 0 {
        headers.push((UPLOAD_OFFSET_HEADER, offset.to_string()));
    }
    raw::head("PUT", &format!("/v1/drops/{id}/content"), Some((&camden(), http::now())), None, &headers)
}

/// `data` in HTTP/1.1 chunked encoding, `size` bytes a chunk, with the final empty chunk.
fn chunked(data: &[u8], size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / size * 12 + 8);
    for chunk in data.chunks(size) {
        out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

fn state_of(hub: &Hub, id: &str) -> String {
    hub.query_text("SELECT state FROM drops WHERE id = ?1", &[&id])
}

/// After a hostile request, the hub still serves the real client: camden
/// sends a file with `sealdrop send` and islington fetches exactly it.
fn still_serves_a_send_and_fetch(hub: &Hub) {
    let camden = Party::new(hub, "camden");
    let islington = Party::new(hub, "islington");
    let data = pseudo_random_bytes(20_000, 0x5eed);
    let file = camden.file("after.bin", &data);
    let id = camden.send("islington", &[&file]);
    let out = islington.work().join("received");
    islington.fetch(&id, &out);
    assert!(tree(&out).get("after.bin").is_some_and(|b| *b == data), "the fetched file differs after hostile input");
}

// ---------------------------------------------------------------------------
// 1. Oversized bodies

#[test]
fn oversized_json_bodies_are_refused_with_413_and_nothing_is_stored() {
    let hub = Hub::start();
    let drop = create(&hub);
    let before = stored(&hub);
    // Valid JSON, just too large: 2 MiB against the 1 MiB limit.
    let big = serde_json::to_vec(&serde_json::json!({
        "recipients": ["islington"],
        "agreement": "a".repeat(2 * MIB),
        "expires": "2030-01-01T00:00:00Z",
    }))
    .unwrap();
    let routes = [
        "/v1/drops".to_owned(),
        format!("/v1/drops/{}/commit", drop.id),
        format!("/v1/drops/{}/ack", drop.id),
        format!("/v1/drops/{}/recall", drop.id),
        "/v1/log/cosignature".to_owned(),
    ];
    for path in &routes {
        // With a declared Content-Length: refused before the body is read.
        let head = raw::head(
            "POST",
            path,
            Some((&camden(), http::now())),
            Some(&big),
            &[("content-type", "application/json".to_owned()), ("content-length", big.len().to_string())],
        );
        let reply = raw::exchange(&hub.addr, &head, &big).unwrap_or_else(|| panic!("POST {path}: no answer"));
        let message = reply.assert_error(413, "payload_too_large");
        assert!(message.contains("1048576 bytes"), "the message says the limit: {message}");
        // Chunked, without a length: refused once the limit is passed.
        let head = raw::head(
            "POST",
            path,
            Some((&camden(), http::now())),
            Some(&big),
            &[("content-type", "application/json".to_owned()), ("transfer-encoding", "chunked".to_owned())],
        );
        let reply = raw::exchange(&hub.addr, &head, &chunked(&big, 64 * 1024))
            .unwrap_or_else(|| panic!("POST {path} (chunked): no answer"));
        reply.assert_error(413, "payload_too_large");
    }
    // The directory (unauthenticated, 2 MiB at most): refused from its
    // declared length, and without one (it is never read unbounded).
    let note = vec![b'x'; 3 * MIB];
    let head = raw::head("POST", "/v1/directory", None, None, &[("content-length", note.len().to_string())]);
    raw::exchange(&hub.addr, &head, &note).expect("an answer").assert_error(413, "payload_too_large");
    let head = raw::head("POST", "/v1/directory", None, None, &[("transfer-encoding", "chunked".to_owned())]);
    raw::exchange(&hub.addr, &head, &chunked(&note, 100_000)).expect("an answer").assert_error(411, "length_required");

    assert_eq!(stored(&hub), before, "a refused body changed what the hub stores");
    assert_eq!(hub.query_text("SELECT CAST(max(serial) AS TEXT) FROM directories", &[]), "1");
    assert_eq!(http::Reply::from(http::client().get(format!("{}/v1/info", hub.url)).send()).status, 200);
    still_serves_a_send_and_fetch(&hub);
}

#[test]
fn an_oversized_upload_is_refused_with_413_and_nothing_is_stored() {
    let hub = Hub::start_with_options(&["--max-upload-bytes", "100000"]);
    let drop = create(&hub);
    let id = drop.id.to_string();
    let before = stored(&hub);
    let data = age_shaped(1, 200_000, 1);

    let reply = raw::exchange(&hub.addr, &upload_head(&id, Some(data.len()), 0), &data).expect("an answer");
    let message = reply.assert_error(413, "payload_too_large");
    assert!(message.contains("100000 bytes"), "{message}");
    assert_eq!(stored(&hub), before);
    // Chunked: the hub only learns the size as it reads (past 64 KiB the
    // upload is already in a file), and removes what it wrote.
    let reply = raw::exchange(&hub.addr, &upload_head(&id, None, 0), &chunked(&data, 16 * 1024)).expect("an answer");
    reply.assert_error(413, "payload_too_large");
    eventually("the refused upload's file is gone", || stored(&hub) == before);
    assert_eq!(progress(&hub, &id), (0, false));
    // A continuation cannot go past the limit either.
    let reply = raw::exchange(&hub.addr, &upload_head(&id, Some(60_000), 50_000), &data[..60_000]).expect("answer");
    reply.assert_error(413, "payload_too_large");
    assert_eq!(stored(&hub), before);
    assert_eq!(state_of(&hub, &id), "open");

    // The control: exactly the limit is accepted and commits.
    let reply = put_content(&hub, &id, 0, &data[..100_000]);
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(commit(&hub, &drop, &data[..100_000]).status, 200);
    still_serves_a_send_and_fetch(&hub);
}

// ---------------------------------------------------------------------------
// 2. Truncated uploads and lying Content-Lengths

/// An upload of `total` bytes whose connection closes after `sent`: only a
/// resumable prefix of the open drop is kept, a commit is refused, and the
/// sender can continue and commit. Small uploads (a database row) and large
/// ones (a file) alike.
fn truncated_upload_keeps_a_resumable_prefix(total: usize, sent: usize) {
    let hub = Hub::start();
    let drop = create(&hub);
    let id = drop.id.to_string();
    let data = age_shaped(1, total, total as u64);
    let log_before = stored(&hub).log_entries;

    let mut conn = raw::connect(&hub.addr);
    conn.write_all(upload_head(&id, Some(total), 0).as_bytes()).unwrap();
    conn.write_all(&data[..sent]).unwrap();
    conn.flush().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    drop_connection(conn);

    eventually("the hub holds the prefix", || progress(&hub, &id) == (sent as u64, false));
    // Nothing is committed or visible, and the commit of the whole is refused.
    let reply = commit(&hub, &drop, &data);
    reply.assert_error(409, "conflict");
    assert!(reply.body.contains("no content yet"), "{reply:?}");
    assert_eq!(state_of(&hub, &id), "open");
    assert!(!hub.has_ciphertext(&id), "a cut-off upload became a blob");
    assert_eq!(stored(&hub).log_entries, log_before, "something was logged");
    let inbox = http::signed_get(&hub.url, &member_key("islington").signing, "/v1/inbox");
    assert!(!inbox.body.contains(&id), "the recipient sees an uncommitted drop: {inbox:?}");
    // Where the prefix lives: a row up to 64 KiB, a file beyond.
    let part = hub.data.path().join("uploads").join(format!("{id}.part"));
    let row = hub.query_text("SELECT CAST(count(*) AS TEXT) FROM inline_blobs WHERE drop_id = ?1", &[&id]);
    if sent <= 64 * 1024 {
        assert_eq!((row.as_str(), part.exists()), ("1", false));
    } else {
        assert_eq!((row.as_str(), sealdrop_e2e::read_bytes(&part) == data[..sent]), ("0", true));
    }

    // It is a prefix the sender continues, and the whole then commits.
    let reply = put_content(&hub, &id, sent as u64, &data[sent..]);
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(sealdrop_e2e::json(&reply.body)["sha256"], sha256_hex(&data));
    let reply = commit(&hub, &drop, &data);
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(hub.ciphertext(&id).as_deref(), Some(data.as_slice()));
    still_serves_a_send_and_fetch(&hub);
}

/// Closes a connection at once, both ways.
fn drop_connection(conn: std::net::TcpStream) {
    let _ = conn.shutdown(std::net::Shutdown::Both);
}

#[test]
fn a_small_upload_cut_off_mid_body_keeps_only_a_resumable_prefix() {
    truncated_upload_keeps_a_resumable_prefix(40_000, 10_000);
}

#[test]
fn a_large_upload_cut_off_mid_body_keeps_only_a_resumable_prefix() {
    truncated_upload_keeps_a_resumable_prefix(600_000, 300_000);
}

#[test]
fn a_body_longer_than_its_content_length_is_cut_there_and_the_wrong_digest_refused() {
    let hub = Hub::start();
    let drop = create(&hub);
    let id = drop.id.to_string();
    let data = age_shaped(1, 80_000, 3);
    // 50,000 declared, 80,000 sent: the hub takes the declared bytes as the
    // body, and the rest is not a request.
    let reply = raw::exchange(&hub.addr, &upload_head(&id, Some(50_000), 0), &data).expect("an answer");
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.json()["len"], 50_000);
    assert_eq!(reply.json()["sha256"], sha256_hex(&data[..50_000]));
    assert_eq!(progress(&hub, &id), (50_000, true));
    // A manifest for what the sender meant is refused: the hub holds other bytes.
    commit(&hub, &drop, &data).assert_error(422, "hash_mismatch");
    assert_eq!(state_of(&hub, &id), "open");
    assert!(!hub.has_ciphertext(&id));
    // Only a manifest for exactly what the hub received commits.
    assert_eq!(commit(&hub, &drop, &data[..50_000]).status, 200);
    still_serves_a_send_and_fetch(&hub);
}

// ---------------------------------------------------------------------------
// 3. Path tricks

/// Values for a path parameter that try to leave the data directory, or to
/// slip past a parser: every one must be refused (400 or 404) in the JSON
/// error shape, and touch no file.
fn path_tricks(outside: &str) -> Vec<String> {
    let look_alike: String = "d-".chars().chain("аааааааааааааааааааааааааа".chars()).collect();
    let look_alike: String =
        look_alike.bytes().map(|b| if b.is_ascii() { (b as char).to_string() } else { format!("%{b:02X}") }).collect();
    vec![
        "..".to_owned(),
        "../..".to_owned(),
        "../../hub.db".to_owned(),
        format!("../../../{outside}"),
        "./.".to_owned(),
        "..%2F..%2Fhub.db".to_owned(),
        "%2e%2e%2f%2e%2e%2fhub.db".to_owned(),
        "%2E%2E".to_owned(),
        format!("..%2F..%2F{outside}"),
        format!("%2e%2e%2f%2e%2e%2f{outside}"),
        format!("..%5C..%5C{outside}"),
        format!("%2Ftmp%2F{outside}"),
        "sentinel".to_owned(),
        "..%2Fsentinel".to_owned(),
        "d-aaaaaaaaaaaaaaaaaaaaaaaaaa%2F..%2F..%2Fsentinel".to_owned(),
        "d-aaaaaaaaaaaaaaaaaaaaaaaaaa%00".to_owned(),
        "%00".to_owned(),
        "d-aaaaaaaaaaaaa%00aaaaaaaaaaaa".to_owned(),
        format!("d-{}", "a".repeat(10_000)),
        "9".repeat(5_000),
        "18446744073709551616".to_owned(),
        "-1".to_owned(),
        look_alike,
        // Fullwidth full stops and solidus, and an overlong UTF-8 `.`.
        "%EF%BC%8E%EF%BC%8E%EF%BC%8Fsentinel".to_owned(),
        "%C0%AE%C0%AE%2Fsentinel".to_owned(),
        "%FF".to_owned(),
    ]
}

#[test]
fn path_tricks_in_every_path_parameter_are_refused_and_touch_no_file() {
    let hub = Hub::start();
    // Sentinels: beside the data directory, and inside it where `uploads/..`
    // or `blobs/..` would lead.
    let parent = hub.data.path().parent().unwrap().to_owned();
    let outside = tempfile::Builder::new().prefix("sealdrop-sentinel-").tempfile_in(&parent).unwrap();
    std::fs::write(outside.path(), b"outside the data directory\n").unwrap();
    let outside_name = outside.path().file_name().unwrap().to_str().unwrap().to_owned();
    for name in ["sentinel", "sentinel.part", "sentinel.age"] {
        std::fs::write(hub.data.path().join(name), format!("{name}\n")).unwrap();
    }
    let sentinel_state = |p: &Path| (sealdrop_e2e::read_bytes(p), std::fs::metadata(p).unwrap().modified().unwrap());
    let outside_before = sentinel_state(outside.path());
    let names_before: Vec<String> = tree(hub.data.path()).into_keys().collect();
    let content_before: Vec<_> = ["sentinel", "sentinel.part", "sentinel.age"]
        .iter()
        .map(|n| sentinel_state(&hub.data.path().join(n)))
        .collect();
    let stored_before = stored(&hub);

    // Every route with a path parameter; `{}` is the parameter.
    let routes: &[(&str, &str, Option<&[u8]>)] = &[
        ("GET", "/v1/drops/{}", None),
        ("GET", "/v1/drops/{}/content", None),
        ("PUT", "/v1/drops/{}/content", Some(b"ciphertext")),
        ("GET", "/v1/drops/{}/upload", None),
        ("POST", "/v1/drops/{}/commit", Some(br#"{"manifest":"x"}"#)),
        ("POST", "/v1/drops/{}/ack", Some(br#"{"receipt":"x"}"#)),
        ("POST", "/v1/drops/{}/recall", Some(b"{}")),
        ("GET", "/v1/log/entry/{}", None),
        ("GET", "/v1/log/tile/{}", None),
        ("GET", "/v1/log/tile/0/{}", None),
        ("GET", "/v1/log/tile/entries/{}", None),
        ("GET", "/v1/log/tile/0/000.p/{}", None),
        ("GET", "/v1/directory/{}", None),
    ];
    let mut tried = 0;
    for (method, template, body) in routes {
        for trick in path_tricks(&outside_name) {
            let path = template.replace("{}", &trick);
            // Signed (as every route, the log's and the directory's reads
            // included, needs by default), so the parameter is what gets
            // checked, not the signature.
            let mut headers = Vec::new();
            if let Some(body) = body {
                headers.push(("content-length", body.len().to_string()));
            }
            let head = raw::head(method, &path, Some((&camden(), http::now())), Some(body.unwrap_or(b"")), &headers);
            let reply = raw::exchange(&hub.addr, &head, body.unwrap_or(b""))
                .unwrap_or_else(|| panic!("{method} {path}: no answer"));
            assert!(matches!(reply.status, 400 | 404), "{method} {path}: {reply:?}");
            let code = if reply.status == 400 { "bad_request" } else { "not_found" };
            reply.assert_error(reply.status, code);
            tried += 1;
        }
    }
    assert!(tried > 250, "{tried} requests");

    assert_eq!(sentinel_state(outside.path()), outside_before, "the file beside the data directory changed");
    let content_after: Vec<_> = ["sentinel", "sentinel.part", "sentinel.age"]
        .iter()
        .map(|n| sentinel_state(&hub.data.path().join(n)))
        .collect();
    assert_eq!(content_after, content_before, "a sentinel in the data directory changed");
    let names_after: Vec<String> = tree(hub.data.path()).into_keys().collect();
    assert_eq!(names_after, names_before, "files appeared or went in the data directory");
    let siblings: Vec<String> =
        sealdrop_e2e::list_dir(&parent).into_iter().filter(|n| n.contains("sentinel") && n != &outside_name).collect();
    assert!(siblings.is_empty(), "files appeared beside the data directory: {siblings:?}");
    assert_eq!(stored(&hub), stored_before);
    still_serves_a_send_and_fetch(&hub);
}

// ---------------------------------------------------------------------------
// 4. Malformed JSON, wrong types, unknown fields

#[test]
fn malformed_json_wrong_types_and_unknown_fields_are_refused_naming_the_problem() {
    let hub = Hub::start();
    let drop = create(&hub);
    let before = stored(&hub);
    let (commit_path, ack_path, recall_path) = (
        format!("/v1/drops/{}/commit", drop.id),
        format!("/v1/drops/{}/ack", drop.id),
        format!("/v1/drops/{}/recall", drop.id),
    );
    let (create_path, commit_path, ack_path, recall_path, cosign_path) =
        ("/v1/drops", commit_path.as_str(), ack_path.as_str(), recall_path.as_str(), "/v1/log/cosignature");
    let good_create = r#""recipients":["islington"],"agreement":"london-fsm-ehc","expires":"2030-01-01T00:00:00Z""#;
    // (route, body, what the message must contain)
    let cases: Vec<(&str, String, &str)> = vec![
        // Not JSON, cut short, or followed by more.
        (create_path, "{".to_owned(), "EOF"),
        (create_path, "recipients=islington".to_owned(), "must be a JSON object"),
        (create_path, r#"{recipients: ["islington"]}"#.to_owned(), "key must be a string"),
        (create_path, String::new(), "EOF"),
        (create_path, format!("{{{good_create}}} {{}}"), "trailing characters"),
        (create_path, "[1,2,3]".to_owned(), "must be a JSON object"),
        (create_path, "null".to_owned(), "must be a JSON object"),
        // A struct's fields in order, as an array: serde would take it; the hub does not.
        (create_path, r#"[["islington"],"london-fsm-ehc","2030-01-01T00:00:00Z"]"#.to_owned(), "must be a JSON object"),
        // Wrong types, named by field.
        (
            create_path,
            r#"{"recipients":"islington","agreement":"a","expires":"2030-01-01T00:00:00Z"}"#.to_owned(),
            "at `recipients`",
        ),
        (
            create_path,
            r#"{"recipients":["islington"],"agreement":7,"expires":"2030-01-01T00:00:00Z"}"#.to_owned(),
            "at `agreement`",
        ),
        (
            create_path,
            r#"{"recipients":["islington"],"agreement":"a","expires":"next week"}"#.to_owned(),
            "at `expires`",
        ),
        (
            create_path,
            r#"{"recipients":["Not A Party!"],"agreement":"a","expires":"2030-01-01T00:00:00Z"}"#.to_owned(),
            "at `recipients[0]`",
        ),
        (create_path, format!(r#"{{{good_create},"idempotency_key":5}}"#), "at `idempotency_key`"),
        (commit_path, r#"{"manifest":5}"#.to_owned(), "at `manifest`"),
        (commit_path, r#"{"manifest":"x","known_size":-1}"#.to_owned(), "at `known_size`"),
        (ack_path, r#"{"receipt":["x"]}"#.to_owned(), "at `receipt`"),
        (recall_path, r#""recall""#.to_owned(), "must be a JSON object"),
        (recall_path, "[]".to_owned(), "must be a JSON object"),
        (cosign_path, r#"{"size":"big","line":"x"}"#.to_owned(), "at `size`"),
        (cosign_path, r#"{"size":1,"line":null}"#.to_owned(), "at `line`"),
        // Missing fields.
        (create_path, r#"{"recipients":["islington"],"agreement":"a"}"#.to_owned(), "missing field `expires`"),
        (commit_path, "{}".to_owned(), "missing field `manifest`"),
        (ack_path, r#"{"known_size":1}"#.to_owned(), "missing field `receipt`"),
        (cosign_path, r#"{"size":1}"#.to_owned(), "missing field `line`"),
        // Unknown fields, refused by name on every request type.
        (create_path, format!(r#"{{{good_create},"priority":"high"}}"#), "unknown field `priority`"),
        (commit_path, r#"{"manifest":"x","force":true}"#.to_owned(), "unknown field `force`"),
        (ack_path, r#"{"receipt":"x","delete":false}"#.to_owned(), "unknown field `delete`"),
        (recall_path, r#"{"reason":"oops"}"#.to_owned(), "unknown field `reason`"),
        (cosign_path, r#"{"size":1,"line":"x","witness":"me"}"#.to_owned(), "unknown field `witness`"),
        // Duplicates and very deep nesting (refused at the first level the type does not expect).
        (ack_path, r#"{"receipt":"x","receipt":"y"}"#.to_owned(), "duplicate field `receipt`"),
        (create_path, format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)), "must be a JSON object"),
        (
            create_path,
            format!(
                r#"{{"recipients":[{}{}],"agreement":"a","expires":"2030-01-01T00:00:00Z"}}"#,
                "[".repeat(10_000),
                "]".repeat(10_000)
            ),
            "at `recipients[0]`",
        ),
    ];
    for (path, body, needle) in &cases {
        let reply = http::signed_at(&hub.url, &camden(), "POST", path, http::now(), body.as_bytes());
        assert_eq!(reply.status, 400, "POST {path} {body:.80}: {reply:?}");
        reply.assert_error(400, "bad_request");
        let message = sealdrop_e2e::json(&reply.body)["error"]["message"].as_str().unwrap().to_owned();
        assert!(message.contains(needle), "POST {path} {body:.80}: the message must say {needle:?}: {message}");
        assert!(!message.contains('\n'), "one line: {message}");
    }
    assert_eq!(stored(&hub), before, "a refused body changed what the hub stores");
    still_serves_a_send_and_fetch(&hub);
}

// ---------------------------------------------------------------------------
// 5. Huge heads

/// The hub process's peak resident memory, in KiB.
fn peak_rss_kib(hub: &Hub) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", hub.pid())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmHWM in /proc/{}/status", hub.pid()))
}

/// A refused head: a 431 answer, or the connection closed without one.
fn assert_refused_head(reply: Option<raw::Response>, what: &str) {
    if let Some(reply) = reply {
        assert_eq!(reply.status, 431, "{what}: {reply:?}");
    }
}

#[test]
fn huge_heads_are_refused_with_bounded_memory_and_the_hub_serves_the_next_request() {
    let hub = Hub::start();
    // Warm up, then measure.
    for _ in 0..3 {
        assert_eq!(http::signed_get(&hub.url, &camden(), "/v1/inbox").status, 200);
    }
    let before = peak_rss_kib(&hub);
    let one_mib_value = format!("GET /v1/info HTTP/1.1\r\nhost: hub\r\nx-filler: {}\r\n\r\n", "a".repeat(MIB));
    let mut many = String::from("GET /v1/info HTTP/1.1\r\nhost: hub\r\n");
    for i in 0..10_000 {
        many.push_str(&format!("x-h{i}: v\r\n"));
    }
    many.push_str("\r\n");
    // Several at once, and again, so growth per request would show.
    for _ in 0..4 {
        let senders: Vec<_> = (0..4)
            .map(|i| {
                let (addr, head) = (hub.addr.clone(), if i % 2 == 0 { one_mib_value.clone() } else { many.clone() });
                std::thread::spawn(move || raw::exchange(&addr, &head, b""))
            })
            .collect();
        for (i, s) in senders.into_iter().enumerate() {
            assert_refused_head(s.join().unwrap(), if i % 2 == 0 { "a 1 MiB header" } else { "10,000 headers" });
        }
    }
    // A signed request with a 1 MiB header is refused the same way.
    let head =
        raw::head("GET", "/v1/inbox", Some((&camden(), http::now())), Some(b""), &[("x-filler", "b".repeat(MIB))]);
    assert_refused_head(raw::exchange(&hub.addr, &head, b""), "a signed request with a 1 MiB header");

    let after = peak_rss_kib(&hub);
    assert!(after.saturating_sub(before) < 32 * 1024, "the hub's peak memory grew from {before} KiB to {after} KiB");
    // Still up, and serving.
    assert_eq!(http::signed_get(&hub.url, &camden(), "/v1/inbox").status, 200);
    let reply = raw::exchange(&hub.addr, &raw::head("GET", "/healthz", None, None, &[]), b"").expect("an answer");
    assert_eq!(reply.status, 200, "{reply:?}");
    still_serves_a_send_and_fetch(&hub);
}

// ---------------------------------------------------------------------------
// 6. Slow clients

/// A hub that gives a request's head 1 s and waits 1 s for a body that stalls.
fn impatient_hub() -> Hub {
    Hub::start_with_options(&["--header-read-timeout", "1", "--body-idle-timeout", "1"])
}

#[test]
fn a_connection_that_sends_nothing_is_closed_within_the_header_timeout() {
    let hub = impatient_hub();
    let mut conn = raw::connect(&hub.addr);
    let started = Instant::now();
    assert!(raw::closed(&mut conn), "the hub kept an idle connection open for 30 s");
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(4), "closed after {took:?}");

    // The same between two requests on a kept-alive connection.
    let mut conn = raw::connect(&hub.addr);
    conn.write_all(raw::head("GET", "/healthz", None, None, &[]).as_bytes()).unwrap();
    let reply = raw::read_response(&mut conn).expect("an answer");
    assert_eq!(reply.status, 200);
    let started = Instant::now();
    assert!(raw::closed(&mut conn), "the hub kept an idle kept-alive connection open");
    assert!(started.elapsed() < Duration::from_secs(4), "closed after {:?}", started.elapsed());
    still_serves_a_send_and_fetch(&hub);
}

#[test]
fn a_head_sent_a_byte_at_a_time_is_cut_off() {
    let hub = impatient_hub();
    let head = raw::head("GET", "/v1/inbox", Some((&camden(), http::now())), Some(b""), &[]);
    let mut conn = raw::connect(&hub.addr);
    let mut writer = conn.try_clone().unwrap();
    let started = Instant::now();
    // One byte every 50 ms: the whole head would take about 40 s.
    let trickle = std::thread::spawn(move || {
        let mut sent = 0;
        for b in head.as_bytes() {
            if writer.write_all(&[*b]).is_err() {
                break;
            }
            sent += 1;
            std::thread::sleep(Duration::from_millis(50));
        }
        (sent, head.len())
    });
    let mut answer = Vec::new();
    let closed = {
        use std::io::Read as _;
        conn.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let _ = conn.read_to_end(&mut answer);
        started.elapsed()
    };
    assert!(closed < Duration::from_secs(4), "the hub waited {closed:?} for a trickled head");
    assert!(!String::from_utf8_lossy(&answer).contains(" 200 "), "a trickled head was served");
    drop_connection(conn);
    let (sent, len) = trickle.join().unwrap();
    assert!(sent < len, "the whole head got through ({sent} of {len} bytes)");
    assert_eq!(http::signed_get(&hub.url, &camden(), "/v1/inbox").status, 200, "the hub still serves");
    still_serves_a_send_and_fetch(&hub);
}

#[test]
fn an_upload_that_stops_half_way_is_answered_408_and_its_prefix_kept_for_continuation() {
    let hub = impatient_hub();
    let drop = create(&hub);
    let id = drop.id.to_string();
    let data = age_shaped(1, 300_000, 6);
    let mut conn = raw::connect(&hub.addr);
    conn.write_all(upload_head(&id, Some(data.len()), 0).as_bytes()).unwrap();
    conn.write_all(&data[..120_000]).unwrap();
    conn.flush().unwrap();
    let started = Instant::now();
    // Then nothing, with the connection open.
    let reply = raw::read_response(&mut conn).expect("an answer");
    let took = started.elapsed();
    let message = reply.assert_error(408, "request_timeout");
    assert!(message.contains("continue it from byte 120000"), "{message}");
    assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(5), "answered after {took:?}");
    assert!(raw::closed(&mut conn), "the connection stays open after the timeout");

    assert_eq!(progress(&hub, &id), (120_000, false));
    let reply = put_content(&hub, &id, 120_000, &data[120_000..]);
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(commit(&hub, &drop, &data).status, 200);
    assert_eq!(hub.ciphertext(&id).as_deref(), Some(data.as_slice()));

    // A JSON body that stalls is given up on the same way.
    let body = br#"{"recipients":["islington"],"agreement":"london-fsm-ehc","expires":"2030-01-01T00:00:00Z"}"#;
    let head = raw::head(
        "POST",
        "/v1/drops",
        Some((&camden(), http::now())),
        Some(body),
        &[("content-length", body.len().to_string())],
    );
    let mut conn = raw::connect(&hub.addr);
    conn.write_all(head.as_bytes()).unwrap();
    conn.write_all(&body[..10]).unwrap();
    raw::read_response(&mut conn).expect("an answer").assert_error(408, "request_timeout");
    still_serves_a_send_and_fetch(&hub);
}

#[test]
fn a_slow_but_steady_upload_outlasts_the_idle_timeout() {
    let hub = impatient_hub();
    let drop = create(&hub);
    let id = drop.id.to_string();
    let data = age_shaped(1, 200_000, 7);
    let mut conn = raw::connect(&hub.addr);
    conn.write_all(upload_head(&id, Some(data.len()), 0).as_bytes()).unwrap();
    let started = Instant::now();
    // 10 pieces 400 ms apart: 4 s in all, four times the idle timeout,
    // never more than 0.4 s without data.
    for piece in data.chunks(20_000) {
        std::thread::sleep(Duration::from_millis(400));
        conn.write_all(piece).unwrap();
        conn.flush().unwrap();
    }
    let reply = raw::read_response(&mut conn).expect("an answer");
    assert!(started.elapsed() > Duration::from_secs(3), "the upload was not slow: {:?}", started.elapsed());
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.json()["sha256"], sha256_hex(&data));
    assert_eq!(commit(&hub, &drop, &data).status, 200);
    still_serves_a_send_and_fetch(&hub);
}
