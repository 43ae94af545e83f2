//! Who reads the transfer log and the directory. By default the hub serves
//! its checkpoint, tiles, entries, proofs and directories only for requests
//! signed by a member key of the directory in force or a witness key it
//! lists; with `--log-access public` it serves them to anyone. Tile URLs keep
//! the C2SP tlog-tiles layout either way, and `/v1/info`, health and the API
//! description stay public.
//!
//! Here outsiders try, with raw HTTP against the real hub: no key at all, a
//! key the directory does not list, a key it revoked, another key under a
//! listed witness's name, a witness key the directory dropped, and a
//! member's signed read captured and replayed. Each gets 401 with its stable
//! code on every read route, and the refusal is the same byte for byte
//! however large the log is, so it tells nothing about the log, not even its
//! size. Then the people who do read it: members, a witness with only its
//! witness key (through `sealdrop witness` and `sealdrop audit`), and the
//! one-line error for whoever runs `audit` or `directory show` with no key.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use sealdrop_e2e::{
    Coordinator, CutProxy, Hub, Party, Tool, authority_key_copy, authority_pub, error_code, example_directory_json,
    http, json, member_key, new_member, raw, read_text, sign_directory, write_file,
};
use sealdrop_proto::keys::NoteSigningKey;
use sealdrop_proto::request::sign_request;
use sha2::{Digest as _, Sha256};

/// Every route that reads the log or the directory, for a log of `size`
/// entries (the tile paths as C2SP tlog-tiles writes them).
fn read_routes(size: u64) -> Vec<String> {
    vec![
        "/v1/log/checkpoint".to_owned(),
        format!("/v1/log/tile/0/000.p/{size}"),
        format!("/v1/log/tile/entries/000.p/{size}"),
        "/v1/log/entry/0".to_owned(),
        format!("/v1/log/proof/inclusion?index=0&size={size}"),
        format!("/v1/log/proof/consistency?old=1&new={size}"),
        "/v1/directory".to_owned(),
        "/v1/directory/1".to_owned(),
    ]
}

/// The size of the log as a member reads it.
fn log_size(hub: &Hub) -> u64 {
    let checkpoint = hub.read("/v1/log/checkpoint");
    assert_eq!(checkpoint.status, 200, "{checkpoint:?}");
    checkpoint.body.lines().nth(1).and_then(|l| l.parse().ok()).expect("the checkpoint's size line")
}

/// Publishes directory serial 2 as the coordinator makes it: camden lists
/// `witness` as its witness key, then `directory revoke` of hackney's key.
/// Returns the unsigned directory.
fn publish_witness_and_revocation(hub: &Hub, witness: &NoteSigningKey) -> serde_json::Value {
    let tool = Tool::new();
    let mut d = example_directory_json();
    let camden = d["parties"].as_array_mut().unwrap().iter_mut().find(|p| p["id"] == "camden").unwrap();
    camden["witness_keys"] = serde_json::json!([witness.cosigner_verifier().to_string()]);
    let input = tool.dir.path().join("directory.json");
    write_file(&input, serde_json::to_string_pretty(&d).unwrap());
    tool.ok([
        OsStr::new("directory"),
        "revoke".as_ref(),
        "--input".as_ref(),
        input.as_os_str(),
        "--key".as_ref(),
        "hackney/data-team".as_ref(),
        "--reason".as_ref(),
        "laptop stolen".as_ref(),
    ]);
    let revised = json(&read_text(&input));
    hub.publish(&sign_directory(tool.dir.path(), "directory-2", &revised, &authority_key_copy(tool.dir.path())));
    revised
}

/// Publishes `directory` (as [`publish_witness_and_revocation`] returned
/// it) again as serial 3, without camden's witness key.
fn publish_without_witness(hub: &Hub, mut directory: serde_json::Value) {
    let tool = Tool::new();
    directory["serial"] = 3.into();
    directory.as_object_mut().unwrap().remove("issued_at");
    let camden = directory["parties"].as_array_mut().unwrap().iter_mut().find(|p| p["id"] == "camden").unwrap();
    camden["witness_keys"] = serde_json::json!([]);
    hub.publish(&sign_directory(tool.dir.path(), "directory-3", &directory, &authority_key_copy(tool.dir.path())));
}

/// One refusal as an outsider sees it: the status and every header but
/// `date`, and the body.
fn seen(reply: &raw::Response) -> (u16, Vec<String>, Vec<u8>) {
    let headers = reply
        .head
        .lines()
        .skip(1)
        .filter(|l| !l.is_empty() && !l.to_ascii_lowercase().starts_with("date:"))
        .map(str::to_owned)
        .collect();
    (reply.status, headers, reply.body.clone())
}

/// Every outsider's read of every route, over raw TCP; asserts each is
/// refused with its code and returns what each saw.
fn outsiders_try(hub: &Hub, routes: &[String], witness: &NoteSigningKey) -> Vec<(u16, Vec<String>, Vec<u8>)> {
    let stranger = NoteSigningKey::generate("eve/data-team").unwrap();
    let intruder = NoteSigningKey::generate("camden/intruder").unwrap();
    let revoked = member_key("hackney").signing;
    let false_witness = NoteSigningKey::generate(witness.name()).unwrap();
    let callers: [(&str, Option<&NoteSigningKey>, &str); 5] = [
        ("no key at all", None, "unauthenticated"),
        ("a key of no party in the directory", Some(&stranger), "unknown_key"),
        ("a key camden never listed", Some(&intruder), "unknown_key"),
        ("hackney's revoked key", Some(&revoked), "key_revoked"),
        ("another key under the witness's name", Some(&false_witness), "unknown_key"),
    ];
    let mut seen_all = Vec::new();
    for path in routes {
        for (who, key, code) in callers {
            let head = raw::head("GET", path, key.map(|k| (k, http::now())), Some(b""), &[]);
            let reply = raw::exchange(&hub.addr, &head, b"").unwrap_or_else(|| panic!("{path} by {who}: no answer"));
            reply.assert_error(401, code);
            seen_all.push(seen(&reply));
        }
        // A member's read, captured on the way and sent again.
        let head = raw::head("GET", path, Some((&member_key("camden").signing, http::now())), Some(b""), &[]);
        let first = raw::exchange(&hub.addr, &head, b"").expect("an answer");
        assert_eq!(first.status, 200, "{path} by camden: {first:?}");
        let replay = raw::exchange(&hub.addr, &head, b"").expect("an answer");
        replay.assert_error(401, "replayed_nonce");
        seen_all.push(seen(&replay));
    }
    seen_all
}

#[test]
fn an_outsider_learns_nothing_of_the_log_or_the_directory() {
    let hub = Hub::start();
    let witness = NoteSigningKey::generate("camden.witness").unwrap();
    let directory = publish_witness_and_revocation(&hub, &witness);
    let camden = Party::new(&hub, "camden");
    let id = camden.send("islington", &[&camden.file("fsm.csv", "upn\nA123\n")]);
    // The routes as they are named for the first log size; the refusal
    // comes before the hub looks at the path, so they stay the same.
    let small = log_size(&hub);
    let routes = read_routes(small);
    let before = outsiders_try(&hub, &routes, &witness);

    // The log grows: a fetch and an acknowledgement (and the deletion).
    Party::new(&hub, "islington").fetch(&id, &camden.work().join("in"));
    let large = log_size(&hub);
    assert!(large > small, "the log grew from {small} to {large}");
    let after = outsiders_try(&hub, &routes, &witness);
    for (i, (b, a)) in before.iter().zip(&after).enumerate() {
        assert_eq!(b, a, "refusal {i} changed with the log: it tells something about the log");
    }
    for (status, _, body) in &after {
        let text = String::from_utf8_lossy(body);
        for secret in [id.as_str(), "islington", "london-fsm-ehc", "checkpoint of", "entries"] {
            assert!(!text.contains(secret), "a refusal ({status}) tells {secret:?}: {text}");
        }
    }

    // Members and the listed witness read it all; /v1/info, health and the
    // description stay public.
    for path in read_routes(large) {
        assert_eq!(hub.read(&path).status, 200, "{path} by a member");
        assert_eq!(hub.read_as(&witness, &path).status, 200, "{path} by the listed witness");
    }
    for path in ["/v1/info", "/healthz", "/readyz", "/v1/openapi.json"] {
        let reply = http::Reply::from(http::client().get(format!("{}{path}", hub.url)).send());
        assert_eq!(reply.status, 200, "{path}: {reply:?}");
    }

    // A witness key the directory no longer lists reads nothing more.
    publish_without_witness(&hub, directory);
    for path in read_routes(large) {
        let reply = hub.read_as(&witness, &path);
        reply.assert_error(401, "unknown_key");
        assert!(reply.body.contains("neither a member key nor a witness key"), "{reply:?}");
    }
}

/// The C2SP tlog-tiles record hash of an entry: SHA-256(0x00 || entry).
fn record_hash(entry: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(entry);
    h.finalize().into()
}

/// Checks the level-0 hash tile and the entry bundle of the whole (small)
/// log at their C2SP paths, each read with `read`, against the entries.
fn assert_c2sp_tiles(hub: &Hub, read: impl Fn(&str) -> http::Reply) {
    let size = log_size(hub);
    assert!(size < 256, "one partial tile");
    let entries: Vec<Vec<u8>> = (0..size)
        .map(|i| {
            let reply = read(&format!("/v1/log/entry/{i}"));
            assert_eq!(reply.status, 200, "{reply:?}");
            reply.bytes
        })
        .collect();
    // tile/<L>/<N>[.p/<W>]: the record hashes, 32 bytes each.
    let hashes = read(&format!("/v1/log/tile/0/000.p/{size}"));
    assert_eq!(hashes.status, 200, "{hashes:?}");
    assert_eq!(hashes.bytes, entries.iter().flat_map(|e| record_hash(e)).collect::<Vec<u8>>());
    // tile/entries/<N>[.p/<W>]: each entry behind its big-endian 16-bit length.
    let bundle = read(&format!("/v1/log/tile/entries/000.p/{size}"));
    assert_eq!(bundle.status, 200, "{bundle:?}");
    let mut expected = Vec::new();
    for e in &entries {
        expected.extend_from_slice(&u16::try_from(e.len()).unwrap().to_be_bytes());
        expected.extend_from_slice(e);
    }
    assert_eq!(bundle.bytes, expected);
}

#[test]
fn tiles_keep_the_c2sp_layout_whether_the_log_is_for_members_or_public() {
    for options in [&[][..], &["--log-access", "public"][..]] {
        let hub = Hub::start_with_options(options);
        let camden = Party::new(&hub, "camden");
        camden.send("islington", &[&camden.file("a.csv", "x\n1\n")]);
        assert_c2sp_tiles(&hub, |path| hub.read(path));
        let anyone = |path: &str| http::Reply::from(http::client().get(format!("{}{path}", hub.url)).send());
        if options.is_empty() {
            anyone("/v1/log/tile/0/000.p/1").assert_error(401, "unauthenticated");
        } else {
            assert_c2sp_tiles(&hub, anyone);
        }
    }
}

/// `sealdrop` with a hub, the pinned authority and a state dir, but no
/// member key: what an IG officer, a coordinator or a witness without a
/// member key runs.
struct Keyless {
    tool: Tool,
    hub_url: String,
}

impl Keyless {
    fn new(hub: &Hub) -> Self {
        Self { tool: Tool::new(), hub_url: hub.url.clone() }
    }

    fn args(&self, rest: &[&OsStr]) -> Vec<OsString> {
        let state = self.tool.dir.path().join("state");
        std::fs::create_dir_all(&state).expect("mkdir state");
        let mut args: Vec<OsString> = vec![
            "--hub".into(),
            self.hub_url.clone().into(),
            "--authority".into(),
            authority_pub().into(),
            "--state-dir".into(),
            state.into(),
        ];
        args.extend(rest.iter().map(|a| a.to_os_string()));
        args
    }

    fn ok(&self, rest: &[&OsStr]) -> String {
        self.tool.ok(self.args(rest))
    }

    fn fail(&self, rest: &[&OsStr]) -> (i32, String) {
        self.tool.fail(self.args(rest))
    }

    fn path(&self, name: &str) -> PathBuf {
        self.tool.dir.path().join(name)
    }
}

fn os(s: &str) -> &OsStr {
    s.as_ref()
}

fn witness_key_file(dir: &Path, key: &NoteSigningKey) -> PathBuf {
    let path = dir.join("witness.key");
    write_file(&path, format!("{}\n", key.to_note_text().as_str()));
    sealdrop_e2e::chmod(&path, 0o600);
    path
}

#[test]
fn a_witness_without_a_member_key_reads_and_cosigns_with_its_witness_key() {
    let hub = Hub::start();
    let witness = NoteSigningKey::generate("camden.witness").unwrap();
    let directory = publish_witness_and_revocation(&hub, &witness);
    let camden = Party::new(&hub, "camden");
    camden.send("islington", &[&camden.file("a.csv", "x\n1\n")]);

    let w = Keyless::new(&hub);
    let key = witness_key_file(w.tool.dir.path(), &witness);
    let out = w.ok(&[os("--witness-key"), key.as_os_str(), os("witness")]);
    assert!(out.contains("cosigned checkpoint of") && out.contains("camden.witness"), "{out}");
    let checkpoint = hub.read("/v1/log/checkpoint").body;
    let cosigned =
        sealdrop_log::cosign::verify_cosignatures(&checkpoint, &[witness.cosigner_verifier()]).expect("it verifies");
    assert_eq!(cosigned.len(), 1, "{checkpoint}");

    // The same key audits the log, requiring that cosignature.
    let verdict = json(&w.ok(&[
        os("--witness-key"),
        key.as_os_str(),
        os("audit"),
        os("verify"),
        os("--witnesses"),
        os("1"),
        os("--json"),
    ]));
    assert_eq!(verdict["verified"], true, "{verdict}");
    assert_eq!(verdict["witnesses"], serde_json::json!(["camden"]), "{verdict}");

    // Once the directory drops it, the hub refuses it, in one line.
    publish_without_witness(&hub, directory);
    let (exit, stderr) = w.fail(&[os("--witness-key"), key.as_os_str(), os("witness")]);
    assert_eq!((exit, error_code(&stderr).as_deref()), (6, Some("unknown_key")), "{stderr}");
    sealdrop_e2e::assert_one_error_line(&stderr);
}

#[test]
fn without_a_member_key_audit_and_directory_show_say_what_to_give_unless_the_log_is_public() {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    camden.send("islington", &[&camden.file("a.csv", "x\n1\n")]);
    let officer = Keyless::new(&hub);
    let bundle = officer.path("log.bundle");
    for args in [
        vec![os("audit"), os("verify")],
        vec![os("audit"), os("export"), os("-o"), bundle.as_os_str()],
        vec![os("directory"), os("show")],
    ] {
        let (exit, stderr) = officer.fail(&args);
        assert_eq!((exit, error_code(&stderr).as_deref()), (3, Some("no_identity")), "{args:?}: {stderr}");
        sealdrop_e2e::assert_one_error_line(&stderr);
        assert!(stderr.contains("--identity") && stderr.contains("audit verify --bundle"), "{stderr}");
    }
    assert!(!bundle.exists(), "nothing half-written");

    // A member exports, the officer verifies the bundle offline.
    camden.ok([os("audit"), os("export"), os("-o"), bundle.as_os_str()]);
    let verdict = json(&officer.ok(&[os("audit"), os("verify"), os("--bundle"), bundle.as_os_str(), os("--json")]));
    assert_eq!(verdict["verified"], true, "{verdict}");

    // The coordinator publishes without a member key, as before (the body carries its signature).
    let tool = Tool::new();
    let signed = tool.dir.path().join("directory-2.signed");
    write_file(&signed, sealdrop_e2e::example_directory_signed_with_serial(tool.dir.path(), 2));
    let out = officer.ok(&[os("directory"), os("publish"), signed.as_os_str()]);
    assert!(out.contains("serial 2"), "{out}");

    // On a hub whose operator made the log public, no key is needed.
    let public = Hub::start_with_options(&["--log-access", "public"]);
    let camden = Party::new(&public, "camden");
    camden.send("islington", &[&camden.file("a.csv", "x\n1\n")]);
    let officer = Keyless::new(&public);
    let verdict = json(&officer.ok(&[os("audit"), os("verify"), os("--json")]));
    assert_eq!(verdict["verified"], true, "{verdict}");
    assert!(officer.ok(&[os("directory"), os("show")]).contains("directory serial 1"));
}

#[test]
fn a_long_audit_export_is_paced_by_its_partys_rate_limit_not_cut_short() {
    // Reads are signed, so they count against the party: 5 at once, 20 a second.
    let hub = Hub::start_with_options(&["--rate-limit-per-party", "20", "--rate-limit-per-party-burst", "5"]);
    let tool = Tool::new();
    for serial in 2..=12 {
        hub.publish(&sealdrop_e2e::example_directory_signed_with_serial(tool.dir.path(), serial));
    }
    // The export reads the directory, the checkpoint twice, the entry
    // bundle and all 12 directory versions: 16 signed reads.
    let camden = Party::new(&hub, "camden");
    let bundle = camden.work().join("log.bundle");
    let out = camden.ok([os("audit"), os("export"), os("-o"), bundle.as_os_str()]);
    assert!(out.contains("exported 12 log entries"), "{out}");
    // The hub did refuse some of them for the rate: the client waited and asked again.
    assert!(
        hub.log().contains("rate limiting a party's requests"),
        "the export never met the limit, so this test shows nothing:\n{}",
        hub.log()
    );
    let verdict = json(&camden.ok([os("audit"), os("verify"), os("--bundle"), bundle.as_os_str(), os("--json")]));
    assert_eq!((verdict["verified"].as_bool(), verdict["directory_versions"].as_u64()), (Some(true), Some(12)));
}

#[test]
fn a_session_signs_every_read_in_the_same_round_trips() {
    let hub = Hub::start();
    let proxy = CutProxy::start(&hub.addr, None);
    let mut camden = Party::new(&hub, "camden");
    camden.hub_url = proxy.url.clone();
    camden.ok(["inbox"]);
    let lines: Vec<String> =
        proxy.requests().iter().map(|r| r.line.split(' ').take(2).collect::<Vec<_>>().join(" ")).collect();
    assert_eq!(lines, ["GET /v1/directory", "GET /v1/info", "GET /v1/log/checkpoint", "GET /v1/inbox"]);
    for request in proxy.requests() {
        let signed = request.header("sealdrop-signature").is_some();
        assert_eq!(signed, !request.line.starts_with("GET /v1/info "), "{}", request.line);
    }
    // A request signed for one read does not open another.
    let auth = sign_request(&member_key("camden").signing, "GET", "/v1/log/entry/0", http::now(), Some(b""));
    http::send_with_auth(&hub.url, "GET", "/v1/log/checkpoint", Some(&auth), None).assert_error(401, "bad_signature");
}

/// The method and path of each request `proxy` saw from the `from`th on.
fn request_lines(proxy: &CutProxy, from: usize) -> Vec<String> {
    proxy.requests()[from..].iter().map(|r| r.line.split(' ').take(2).collect::<Vec<_>>().join(" ")).collect()
}

/// Lists a new member of islington in the example directory and publishes
/// it (serial 2) through a client other than the one under test; returns
/// the new member's key file.
fn list_a_new_islington_member(hub: &Hub, keys: &Path) -> PathBuf {
    let (key, card) = new_member(keys, "islington", "data-team-2");
    let coordinator = Coordinator::new();
    coordinator.run(&["directory", "add-member", "--card", card.to_str().unwrap()]);
    coordinator.publish(&Party::new(hub, "hackney"));
    key
}

/// Fetches drop `id` as islington's member holding `key`, which only a
/// drop sent under the directory listing that key lets it open.
fn fetch_as(hub: &Hub, key: PathBuf, id: &str) {
    let mut member = Party::new(hub, "islington");
    member.key = key;
    let out = member.work().join("in");
    member.fetch(id, &out);
    assert_eq!(read_text(&out.join("a.csv")), "x\n1\n");
}

#[test]
fn a_later_session_asks_only_for_the_checkpoint_until_a_new_directory_is_published() {
    let hub = Hub::start();
    let proxy = CutProxy::start(&hub.addr, None);
    let mut camden = Party::new(&hub, "camden");
    camden.hub_url = proxy.url.clone();
    camden.ok(["inbox"]);
    // Nothing changed: the checkpoint names the directory this client holds.
    let before = proxy.requests().len();
    camden.ok(["inbox"]);
    assert_eq!(request_lines(&proxy, before), ["GET /v1/log/checkpoint", "GET /v1/inbox"]);
    assert!(proxy.requests()[before..].iter().all(|r| r.header("sealdrop-signature").is_some()));

    // The coordinator lists a new islington member: the next command fetches
    // the new directory and sends under it, so the new member opens the drop.
    let keys = tempfile::tempdir().unwrap();
    let key = list_a_new_islington_member(&hub, keys.path());
    let before = proxy.requests().len();
    let id = camden.send("islington", &[&camden.file("a.csv", "x\n1\n")]);
    let lines = request_lines(&proxy, before);
    assert_eq!(lines[..3], ["GET /v1/log/checkpoint", "GET /v1/directory", "GET /v1/info"], "{lines:?}");
    // Then one round trip again (the send verified the log it grew).
    let before = proxy.requests().len();
    camden.ok(["inbox"]);
    assert_eq!(request_lines(&proxy, before), ["GET /v1/log/checkpoint", "GET /v1/inbox"]);
    fetch_as(&hub, key, &id);
}

#[test]
fn a_hub_naming_no_directory_serial_or_one_the_client_does_not_hold_is_asked_for_its_directory() {
    let header = sealdrop_proto::api::DIRECTORY_SERIAL_HEADER;
    let hub = Hub::start();
    let proxy = CutProxy::start(&hub.addr, None);
    let mut camden = Party::new(&hub, "camden");
    camden.hub_url = proxy.url.clone();
    camden.ok(["inbox"]);
    let full = ["GET /v1/log/checkpoint", "GET /v1/directory", "GET /v1/info", "GET /v1/inbox"];
    // A hub from before the header, and one sending something else in it.
    for served in [None, Some("two"), Some("")] {
        proxy.rewrite_response_header("GET /v1/log/checkpoint ", header, served);
        let before = proxy.requests().len();
        camden.ok(["inbox"]);
        assert_eq!(request_lines(&proxy, before), full, "{served:?}");
    }
    // A hub naming a serial it does not enforce, after a new directory: the
    // client asks for the directory and sends under the new one.
    let keys = tempfile::tempdir().unwrap();
    let key = list_a_new_islington_member(&hub, keys.path());
    proxy.rewrite_response_header("GET /v1/log/checkpoint ", header, Some("99"));
    let before = proxy.requests().len();
    let id = camden.send("islington", &[&camden.file("a.csv", "x\n1\n")]);
    assert_eq!(request_lines(&proxy, before)[..3], full[..3]);
    // And one naming an older serial than the client holds gets no further.
    proxy.rewrite_response_header("GET /v1/log/checkpoint ", header, Some("1"));
    let before = proxy.requests().len();
    camden.ok(["inbox"]);
    assert_eq!(request_lines(&proxy, before), full);
    fetch_as(&hub, key, &id);
}
