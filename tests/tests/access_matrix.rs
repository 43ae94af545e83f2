//! The access-control matrix: `request_auth.rs` checks each way a request
//! signature can fail on one route; here every route the hub lists in its
//! own `GET /v1/openapi.json` is tried by every caller that must be refused,
//! against the real `sealdrop-hub` binary.
//!
//! For each signed route: no signature, a stale time, a replayed nonce, a
//! key not in the directory, a revoked key, a witness key (on the routes
//! only members may call), and a member of a party with no business there
//! (not the sender, not a recipient, not a party to the agreement). Each
//! must be refused with its status and stable code, that pair must be what
//! the description documents for the route, and nothing may change on the
//! hub (no row, no file, no log entry). The same request by the right party
//! then gets past all of that, and so does a listed witness's on the routes
//! that read the log or the directory. For each public route: it answers
//! without a signature, the same to everyone, holds no secret, and no
//! method it does not list writes anything.
//!
//! Both settings of the hub's `log_access` are covered: by default the
//! log's and the directory's reads are signed routes (members and listed
//! witnesses); with `--log-access public` they are public routes, and the
//! rest of the matrix is unchanged.
//!
//! Routes come from the description only, so a new route fails this test
//! until it has a case here: a signed route needs an entry in
//! [`signed_cases`]; a public one must be listed in [`PUBLIC_ROUTES`] (or,
//! for the log's and the directory's reads, [`LOG_READ_ROUTES`]) with the
//! reason it may be public, and needs values for its parameters in
//! [`public_value`] (a public write needs a case of its own).

use std::collections::BTreeMap;
use std::ffi::OsStr;

use sealdrop_e2e::http::{self, Reply};
use sealdrop_e2e::{
    AGREEMENT, Backend, Hub, HubSnapshot, Party, Tool, authority_key_copy, example_directory_json, json, member_key,
    read_text, sign_directory, write_file,
};
use sealdrop_proto::keys::NoteSigningKey;
use sealdrop_proto::request::{
    HEADER_CONTENT, HEADER_KEY, HEADER_NONCE, HEADER_SIGNATURE, HEADER_TIME, MAX_CLOCK_SKEW_SECS, RequestAuth,
    new_nonce, sign_request,
};
use serde_json::Value;

/// An agreement between camden and islington only (in the test's second
/// directory version), so westminster can be a party to no agreement the
/// drop travels under.
const PAIR_AGREEMENT: &str = "camden-islington";
/// Bytes the sender's file holds, to look for in public answers.
const SECRET_CONTENT: &str = "pupil 4711 lives at 1 Secret Street";
/// The file's name, which the hub never learns.
const SECRET_NAME: &str = "confidential-fsm-list.csv";
/// The signature security scheme's name in the description.
const SIGNATURE_SCHEME: &str = "sealdrop_request_signature";
/// The methods tried on every path.
const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];
/// The description's mark on the operations that read the log or the directory.
const READABLE_BY: &str = "x-sealdrop-readable-by";
/// The `serve` option that makes the log public.
const PUBLIC_LOG: [&str; 2] = ["--log-access", "public"];

/// A hub with a committed drop, an open drop, a revoked key and a witness.
struct World {
    hub: Hub,
    /// Whether the hub serves its log to anyone.
    public_log: bool,
    /// Camden's witness key, listed by the directory in force.
    witness: NoteSigningKey,
    /// The log's size once set up.
    log_size: u64,
    /// The description as served.
    description: Value,
    /// camden -> islington, committed (under the agreement of everyone).
    committed: String,
    /// camden -> islington, created but not committed.
    open: String,
    /// Another such drop, for the sender to withdraw (the withdrawal removes
    /// it, and `open` must stay for the upload's and the commit's cases).
    to_withdraw: String,
    /// hackney's key, revoked by the directory in force.
    revoked: NoteSigningKey,
    /// A cosignature line by camden's witness key, and the checkpoint size it is for.
    cosignature: (u64, String),
    /// Some bytes from the middle of the committed drop's ciphertext.
    ciphertext_sample: Vec<u8>,
    /// The directory version 1 note (older than the one in force).
    first_directory: String,
}

fn setup(backend: Backend) -> World {
    setup_with(backend, &[])
}

/// [`setup`] with extra `serve` options.
fn setup_with(backend: Backend, options: &[&str]) -> World {
    let hub = Hub::start_on(backend, None, options);
    let camden = Party::new(&hub, "camden");
    let file = camden.file(SECRET_NAME, SECRET_CONTENT);
    let committed = camden.send("islington", &[&file]);
    let ciphertext = hub.ciphertext(&committed).expect("the hub holds the committed ciphertext");
    let middle = ciphertext.len() / 2;
    let ciphertext_sample = ciphertext[middle - 16..middle + 16].to_vec();
    let first_directory = hub.read("/v1/directory").body;

    // The open drop, announced over raw HTTP as the client would.
    let body = create_body(&["islington"], AGREEMENT);
    let created = http::signed_at(&hub.url, &member_key("camden").signing, "POST", "/v1/drops", http::now(), &body);
    assert_eq!(created.status, 200, "{created:?}");
    let open = json(&created.body)["id"].as_str().expect("a drop id").to_owned();
    let created = http::signed_at(&hub.url, &member_key("camden").signing, "POST", "/v1/drops", http::now(), &body);
    assert_eq!(created.status, 200, "{created:?}");
    let to_withdraw = json(&created.body)["id"].as_str().expect("a drop id").to_owned();

    // Directory version 2, as the coordinator makes it: an agreement of two
    // parties and a witness key for camden, then `directory revoke` of
    // hackney's key (which raises the serial), signed and published.
    let tool = Tool::new();
    let witness = NoteSigningKey::generate("camden.witness").expect("a witness key");
    let mut d = example_directory_json();
    let mut pair = d["agreements"][0].clone();
    pair["id"] = PAIR_AGREEMENT.into();
    pair["title"] = "camden and islington only".into();
    pair["parties"] = serde_json::json!(["camden", "islington"]);
    d["agreements"].as_array_mut().expect("agreements").push(pair);
    let camden_entry = d["parties"].as_array_mut().unwrap().iter_mut().find(|p| p["id"] == "camden").unwrap();
    camden_entry["witness_keys"] = serde_json::json!([witness.cosigner_verifier().to_string()]);
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
        "access matrix test".as_ref(),
    ]);
    let revised = json(&read_text(&input));
    assert_eq!(revised["serial"], 2, "`directory revoke` raises the serial");
    hub.publish(&sign_directory(tool.dir.path(), "directory-2", &revised, &authority_key_copy(tool.dir.path())));

    let checkpoint = hub.read("/v1/log/checkpoint").body;
    let size: u64 = checkpoint.lines().nth(1).and_then(|l| l.parse().ok()).expect("the checkpoint's size line");
    let line = sealdrop_log::cosign::cosign(&checkpoint, &witness, http::now().unsigned_abs());

    let reply = http::Reply::from(http::client().get(format!("{}/v1/openapi.json", hub.url)).send());
    assert_eq!(reply.status, 200, "{reply:?}");
    let description = json(&reply.body);
    World {
        hub,
        public_log: options.windows(2).any(|o| o == PUBLIC_LOG),
        witness,
        log_size: size,
        description,
        committed,
        open,
        to_withdraw,
        revoked: member_key("hackney").signing,
        cosignature: (size, line),
        ciphertext_sample,
        first_directory,
    }
}

fn create_body(recipients: &[&str], agreement: &str) -> Vec<u8> {
    let expires = sealdrop_proto::Timestamp::from_second(http::now() + 86_400).unwrap();
    serde_json::to_vec(&serde_json::json!({"recipients": recipients, "agreement": agreement, "expires": expires}))
        .unwrap()
}

/// A request body and how it is signed.
#[derive(Clone)]
enum Body {
    /// No body (a GET signs the empty body).
    None,
    /// A JSON body, hashed into the signature.
    Json(Vec<u8>),
    /// A streamed upload, signed as `UNSIGNED`.
    Stream(Vec<u8>),
    /// A drop in one request (`PUT /v1/drops/{id}`), hashed into the signature.
    Drop(Vec<u8>),
}

impl Body {
    fn signed(&self) -> Option<&[u8]> {
        match self {
            Body::None => Some(b""),
            Body::Json(b) | Body::Drop(b) => Some(b),
            Body::Stream(_) => None,
        }
    }

    fn wire(&self) -> (Option<&'static str>, Option<Vec<u8>>) {
        match self {
            Body::None => (None, None),
            Body::Json(b) => (Some("application/json"), Some(b.clone())),
            Body::Stream(b) => (Some("application/octet-stream"), Some(b.clone())),
            Body::Drop(b) => (Some(sealdrop_proto::api::PUT_DROP_CONTENT_TYPE), Some(b.clone())),
        }
    }
}

/// What the wrong party must get.
enum Expect {
    /// Refused with this status and code.
    Refused(u16, &'static str),
    /// Served (200), without this drop in it: the route only ever shows the
    /// caller's own party's drops.
    ServedWithout(String),
}

/// One signed route's requests.
struct Case {
    /// The party whose request this is.
    rightful: &'static str,
    /// The drop in the path's `{id}`, if it has one.
    drop: Option<String>,
    /// The value of any other path parameter.
    params: Vec<(&'static str, String)>,
    /// The query string, if any (with its `?`).
    query: String,
    body: Body,
    /// Parties with no business here, and what each must get.
    wrong: Vec<(&'static str, Expect)>,
}

/// Every signed route's case, by `METHOD template` as the description
/// writes them. A signed route without one fails the test.
fn signed_cases(w: &World) -> BTreeMap<&'static str, Case> {
    let mut cases = member_cases(w);
    if !w.public_log {
        cases.extend(log_read_cases(w));
    }
    cases
}

/// The log's and the directory's reads, signed routes unless the log is
/// public: any member reads them (no party is a wrong one), and a listed
/// witness (see the test).
fn log_read_cases(w: &World) -> BTreeMap<&'static str, Case> {
    let size = w.log_size;
    let read = |params: Vec<(&'static str, String)>, query: String| Case {
        rightful: "camden",
        drop: None,
        params,
        query,
        body: Body::None,
        wrong: vec![],
    };
    BTreeMap::from([
        ("GET /v1/directory", read(vec![], String::new())),
        ("GET /v1/directory/{serial}", read(vec![("serial", "1".into())], String::new())),
        ("GET /v1/log/checkpoint", read(vec![], String::new())),
        ("GET /v1/log/tile/{path}", read(vec![("path", format!("0/000.p/{size}"))], String::new())),
        ("GET /v1/log/entry/{index}", read(vec![("index", "0".into())], String::new())),
        ("GET /v1/log/proof/inclusion", read(vec![], format!("?index=0&size={size}"))),
        ("GET /v1/log/proof/consistency", read(vec![], format!("?old=1&new={size}"))),
    ])
}

/// The routes only members may call.
fn member_cases(w: &World) -> BTreeMap<&'static str, Case> {
    let d = || Some(w.committed.clone());
    let o = || Some(w.open.clone());
    let forbidden = Expect::Refused(403, "forbidden");
    let json = |v: Value| Body::Json(serde_json::to_vec(&v).unwrap());
    let (size, line) = &w.cosignature;
    BTreeMap::from([
        (
            "POST /v1/drops",
            Case {
                rightful: "camden",
                drop: None,
                params: vec![],
                query: String::new(),
                body: Body::Json(create_body(&["islington"], PAIR_AGREEMENT)),
                // Westminster is no party to the agreement it names.
                wrong: vec![("westminster", Expect::Refused(422, "not_in_agreement"))],
            },
        ),
        (
            "GET /v1/drops/{id}",
            Case {
                rightful: "camden",
                drop: d(),
                params: vec![],
                query: String::new(),
                body: Body::None,
                wrong: vec![("westminster", forbidden)],
            },
        ),
        (
            "DELETE /v1/drops/{id}",
            Case {
                rightful: "camden",
                drop: Some(w.to_withdraw.clone()),
                params: vec![],
                query: String::new(),
                body: Body::None,
                // The recipient may not withdraw the sender's drop, and to
                // anyone else the drop does not exist.
                wrong: vec![
                    ("islington", Expect::Refused(403, "forbidden")),
                    ("westminster", Expect::Refused(404, "not_found")),
                ],
            },
        ),
        (
            "GET /v1/drops/{id}/content",
            Case {
                rightful: "islington",
                drop: d(),
                params: vec![],
                query: String::new(),
                body: Body::None,
                // Nor may the sender download what it sent.
                wrong: vec![
                    ("westminster", Expect::Refused(403, "forbidden")),
                    ("camden", Expect::Refused(403, "forbidden")),
                ],
            },
        ),
        (
            "PUT /v1/drops/{id}/content",
            Case {
                rightful: "camden",
                drop: o(),
                params: vec![],
                query: String::new(),
                body: Body::Stream(b"age ciphertext would be here".to_vec()),
                wrong: vec![
                    ("islington", Expect::Refused(403, "forbidden")),
                    ("westminster", Expect::Refused(403, "forbidden")),
                ],
            },
        ),
        (
            "PUT /v1/drops/{id}",
            Case {
                rightful: "camden",
                // The committed drop's id: whoever sends another manifest
                // for it, the sender included, changes nothing.
                drop: d(),
                params: vec![],
                query: String::new(),
                body: Body::Drop(sealdrop_proto::api::put_drop_body("not a manifest", b"age ciphertext")),
                wrong: vec![
                    ("islington", Expect::Refused(409, "drop_exists")),
                    ("westminster", Expect::Refused(409, "drop_exists")),
                ],
            },
        ),
        (
            "GET /v1/drops/{id}/upload",
            Case {
                rightful: "camden",
                drop: o(),
                params: vec![],
                query: String::new(),
                body: Body::None,
                // A recipient (not the sender), and a stranger to the drop.
                wrong: vec![
                    ("islington", Expect::Refused(403, "forbidden")),
                    ("westminster", Expect::Refused(403, "forbidden")),
                ],
            },
        ),
        (
            "POST /v1/drops/{id}/commit",
            Case {
                rightful: "camden",
                drop: o(),
                params: vec![],
                query: String::new(),
                body: json(serde_json::json!({"manifest": "not a manifest"})),
                wrong: vec![
                    ("islington", Expect::Refused(403, "forbidden")),
                    ("westminster", Expect::Refused(403, "forbidden")),
                ],
            },
        ),
        (
            "POST /v1/drops/{id}/ack",
            Case {
                rightful: "islington",
                drop: d(),
                params: vec![],
                query: String::new(),
                body: json(serde_json::json!({"receipt": "not a receipt"})),
                // Nor may the sender acknowledge its own drop.
                wrong: vec![
                    ("westminster", Expect::Refused(403, "forbidden")),
                    ("camden", Expect::Refused(403, "forbidden")),
                ],
            },
        ),
        (
            "POST /v1/drops/{id}/recall",
            Case {
                rightful: "camden",
                drop: d(),
                params: vec![],
                query: String::new(),
                body: json(serde_json::json!({})),
                // The recipient may not take the sender's drop back, and to
                // anyone else the drop does not exist.
                wrong: vec![
                    ("islington", Expect::Refused(403, "forbidden")),
                    ("westminster", Expect::Refused(404, "not_found")),
                ],
            },
        ),
        (
            "GET /v1/inbox",
            Case {
                rightful: "islington",
                drop: None,
                params: vec![],
                query: String::new(),
                body: Body::None,
                wrong: vec![("westminster", Expect::ServedWithout(w.committed.clone()))],
            },
        ),
        (
            "GET /v1/sent",
            Case {
                rightful: "camden",
                drop: None,
                params: vec![],
                query: format!("?id={}", w.committed),
                body: Body::None,
                wrong: vec![("westminster", Expect::Refused(404, "not_found"))],
            },
        ),
        (
            "POST /v1/log/cosignature",
            Case {
                rightful: "camden",
                drop: None,
                params: vec![],
                query: String::new(),
                body: json(serde_json::json!({"size": size, "line": line})),
                // Camden's witness line, sent by another party.
                wrong: vec![("islington", Expect::Refused(422, "bad_cosignature"))],
            },
        ),
    ])
}

/// Every route anyone may call without a signature whatever the hub's
/// `log_access`, by `METHOD template` as the description writes them, and
/// why it may be public. A route the description does not mark as signed
/// must be here (or in [`LOG_READ_ROUTES`] on a public log), and one here
/// must not be signed: a new route fails the test until it is a case of
/// [`signed_cases`] or listed here with its reason.
const PUBLIC_ROUTES: [(&str, &str); 5] = [
    ("GET /healthz", "liveness for load balancers: answers `ok` and nothing else"),
    ("GET /readyz", "readiness for orchestrators: names its checks and whether each passed, never why one failed"),
    ("GET /v1/info", "the hub's origin, version, directory serial and log key, needed before anything can be verified"),
    ("GET /v1/openapi.json", "this description of the API, the same for every hub of this version and setting"),
    (
        "POST /v1/directory",
        "the body carries the coordinator's signature: only a newer directory signed by the authority fixed at init is accepted",
    ),
];

/// The routes that read the log and the directory: public only when the
/// operator opts in with `log_access = "public"` (a public transparency
/// log), and then why each may be.
const LOG_READ_ROUTES: [(&str, &str); 7] = [
    ("GET /v1/directory", "the coordinator-signed directory of parties and public keys, which every client verifies"),
    ("GET /v1/directory/{serial}", "earlier signed directories, for auditors checking the log's `directory_published`"),
    ("GET /v1/log/checkpoint", "the operator made the transfer log public, for witnesses and auditors without a key"),
    ("GET /v1/log/tile/{path}", "the transfer log's tiles (ids, hashes, times, key names, signatures; no content)"),
    ("GET /v1/log/entry/{index}", "one transfer-log entry"),
    ("GET /v1/log/proof/inclusion", "inclusion proofs of the public log"),
    ("GET /v1/log/proof/consistency", "consistency proofs of the public log, for clients and witnesses"),
];

/// Asserts the description's unsigned routes are exactly [`PUBLIC_ROUTES`],
/// and [`LOG_READ_ROUTES`] too when the log is public.
fn assert_public_routes_listed(routes: &[(String, String, Value)], public_log: bool) {
    let unsigned: std::collections::BTreeSet<String> =
        routes.iter().filter(|(_, _, op)| !is_signed(op)).map(|(m, p, _)| format!("{m} {p}")).collect();
    let log_reads = if public_log { &LOG_READ_ROUTES[..] } else { &[] };
    let listed: std::collections::BTreeSet<String> =
        PUBLIC_ROUTES.iter().chain(log_reads).map(|(r, _)| (*r).to_owned()).collect();
    let unlisted: Vec<&String> = unsigned.difference(&listed).collect();
    assert!(
        unlisted.is_empty(),
        "routes served without a signature that the access matrix does not list as public (add each to \
         PUBLIC_ROUTES with the reason it may be public, or make it a signed route): {unlisted:?}"
    );
    let not_public: Vec<&String> = listed.difference(&unsigned).collect();
    assert!(
        not_public.is_empty(),
        "routes listed as public that the hub does not serve unsigned (remove them from PUBLIC_ROUTES): {not_public:?}"
    );
}

/// Replaces each `{name}` of `template` with `value(name)`.
fn instantiate(template: &str, mut value: impl FnMut(&str) -> String) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        let end = rest[start..].find('}').map(|e| start + e).unwrap_or_else(|| panic!("unclosed {{ in {template}"));
        out.push_str(&rest[..start]);
        out.push_str(&value(&rest[start + 1..end]));
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// Every `(METHOD, path template, operation)` the description lists.
fn described(description: &Value) -> Vec<(String, String, Value)> {
    let paths = description["paths"].as_object().expect("the description lists paths");
    let mut all = Vec::new();
    for (path, item) in paths {
        for (method, operation) in item.as_object().expect("a path item") {
            if ["get", "put", "post", "delete", "patch", "head", "options", "trace"].contains(&method.as_str()) {
                all.push((method.to_uppercase(), path.clone(), operation.clone()));
            }
        }
    }
    all
}

fn is_signed(operation: &Value) -> bool {
    operation["security"].as_array().is_some_and(|s| s.iter().any(|r| r.get(SIGNATURE_SCHEME).is_some()))
}

/// Asserts the description documents `status` with `code` for the operation.
fn assert_documented(route: &str, operation: &Value, status: u16, code: &str) {
    let response = &operation["responses"][status.to_string()];
    let text = response["description"].as_str().unwrap_or_else(|| {
        panic!("{route} answered {status} `{code}`, which its description does not list: {}", operation["responses"])
    });
    assert!(text.contains(&format!("`{code}`")), "{route}: the description of {status} does not name `{code}`: {text}");
}

/// Sends one request, and asserts it changed nothing on the hub (but the
/// tables in `ignore`).
fn unchanged(hub: &Hub, what: &str, ignore: &[&str], send: impl FnOnce() -> Reply) -> Reply {
    let before = hub.snapshot();
    let reply = send();
    let after = hub.snapshot();
    let changes = after.changes_since(&before, ignore);
    assert!(changes.is_empty(), "{what} ({reply:?}) changed the hub:\n{}", changes.join("\n"));
    assert_eq!(after.log_size(), before.log_size(), "{what} added to the transfer log");
    reply
}

fn send(hub: &Hub, method: &str, path: &str, auth: Option<&RequestAuth>, body: &Body) -> Reply {
    let (content_type, bytes) = body.wire();
    http::send_raw(&hub.url, method, path, auth, content_type, bytes).0
}

fn key_of(party: &str) -> NoteSigningKey {
    member_key(party).signing
}

fn every_route_refuses_every_caller_it_must_and_changes_nothing(backend: Backend) {
    refuses_every_caller_it_must(&setup(backend));
}

fn with_a_public_log_every_other_route_still_refuses_every_caller_it_must(backend: Backend) {
    refuses_every_caller_it_must(&setup_with(backend, &PUBLIC_LOG));
}

fn refuses_every_caller_it_must(w: &World) {
    let hub = &w.hub;
    let mut cases = signed_cases(w);
    let routes = described(&w.description);
    assert!(routes.iter().any(|(m, p, _)| m == "GET" && p == "/v1/openapi.json"), "the description lists itself");
    for (method, path, _) in &routes {
        assert!(
            path.starts_with("/v1/") || path == "/healthz" || path == "/readyz",
            "{method} {path} is outside the API's space"
        );
    }

    assert_public_routes_listed(&routes, w.public_log);

    let mut controls = Vec::new();
    for (method, template, operation) in routes.iter().filter(|(_, _, op)| is_signed(op)) {
        let route = format!("{method} {template}");
        let case = cases.remove(route.as_str()).unwrap_or_else(|| {
            panic!("{route} is a signed route with no case in the access matrix: add one to signed_cases")
        });
        let path = instantiate(template, |name| match (name, &case.drop) {
            ("id", Some(id)) => id.clone(),
            _ => case
                .params
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| panic!("{route}: no value for its path parameter `{name}`")),
        }) + &case.query;
        // Who may read it: marked on the log's and the directory's reads only.
        let reads = operation.get(READABLE_BY).is_some();
        assert_eq!(reads, route.starts_with("GET /v1/log/") || route.starts_with("GET /v1/directory"), "{route}");
        // The description asks for the five signed headers.
        let headers: Vec<&str> = operation["parameters"]
            .as_array()
            .map(|ps| ps.iter().filter(|p| p["in"] == "header").filter_map(|p| p["name"].as_str()).collect())
            .unwrap_or_default();
        for header in [HEADER_KEY, HEADER_TIME, HEADER_NONCE, HEADER_CONTENT, HEADER_SIGNATURE] {
            assert!(headers.contains(&header), "{route} does not list the signed header {header}");
        }
        let key = key_of(case.rightful);
        let signed_by = |k: &NoteSigningKey, time: i64| sign_request(k, method, &path, time, case.body.signed());
        let refused = |what: &str, auth: Option<RequestAuth>, status: u16, code: &str| {
            let reply =
                unchanged(hub, &format!("{route} {what}"), &[], || send(hub, method, &path, auth.as_ref(), &case.body));
            reply.assert_error(status, code);
            assert_documented(&route, operation, status, code);
        };

        refused("without a signature", None, 401, "unauthenticated");
        let stale = http::now() - MAX_CLOCK_SKEW_SECS - 60;
        refused("signed too long ago", Some(signed_by(&key, stale)), 401, "stale_request");
        let stranger = NoteSigningKey::generate(&format!("{}/intruder", case.rightful)).unwrap();
        refused("signed by a key not in the directory", Some(signed_by(&stranger, http::now())), 401, "unknown_key");
        refused("signed by a revoked key", Some(signed_by(&w.revoked, http::now())), 401, "key_revoked");
        // A witness key the directory lists is no member key: it reads the
        // log and hands in its own cosignature (below), and nothing else.
        if !reads && route != "POST /v1/log/cosignature" {
            refused("signed by a listed witness key", Some(signed_by(&w.witness, http::now())), 401, "unknown_key");
        }
        // A nonce the hub has seen from this key, on a request otherwise right.
        let nonce = new_nonce();
        let first = http::sign_with_nonce(&key, "GET", "/v1/inbox", http::now(), Some(b""), &nonce);
        assert_eq!(send(hub, "GET", "/v1/inbox", Some(&first), &Body::None).status, 200);
        let replay = http::sign_with_nonce(&key, method, &path, http::now(), case.body.signed(), &nonce);
        refused("with a replayed nonce", Some(replay), 401, "replayed_nonce");

        // Members of parties with no business here. Their nonces are kept
        // (they were authenticated), and nothing else changes.
        for (wrong, expect) in &case.wrong {
            let auth = signed_by(&key_of(wrong), http::now());
            let what = format!("{route} by {wrong}");
            let reply = unchanged(hub, &what, &["nonces"], || send(hub, method, &path, Some(&auth), &case.body));
            match expect {
                Expect::Refused(status, code) => {
                    reply.assert_error(*status, code);
                    assert_documented(&route, operation, *status, code);
                }
                Expect::ServedWithout(id) => {
                    assert_eq!(reply.status, 200, "{what}: {reply:?}");
                    assert!(!reply.body.contains(id.as_str()), "{what} shows drop {id}: {reply:?}");
                }
            }
        }
        controls.push((route, method.clone(), path, key, case.body, reads));
    }
    let missing: Vec<&str> = cases.keys().copied().collect();
    assert!(missing.is_empty(), "cases for routes the hub does not describe (remove them): {missing:?}");

    // The same requests by the right party get past every check above (they
    // may still fail on their made-up content: a bogus manifest is 422).
    for (route, method, path, key, body, reads) in controls {
        let auth = sign_request(&key, &method, &path, http::now(), body.signed());
        let reply = send(hub, &method, &path, Some(&auth), &body);
        assert!(
            !matches!(reply.status, 401 | 403 | 404),
            "{route} by its own party was refused as if it were not: {reply:?}"
        );
        // And the listed witness, where a witness may sign.
        if reads || route == "POST /v1/log/cosignature" {
            let auth = sign_request(&w.witness, &method, &path, http::now(), body.signed());
            let by_witness = send(hub, &method, &path, Some(&auth), &body);
            assert_eq!(by_witness.status, 200, "{route} by the listed witness: {by_witness:?}");
            if reads {
                assert_eq!(by_witness.bytes, reply.bytes, "{route}: the witness reads what a member reads");
            }
        }
    }
}

/// A value for a public route's parameter `name`, or a failure naming it.
fn public_value(name: &str, log_size: u64) -> String {
    match name {
        "serial" => "2".into(),
        "index" => "0".into(),
        "size" | "new" => log_size.to_string(),
        "old" => "1".into(),
        // The level-0 tile of the whole (small) log.
        "path" => {
            assert!(log_size < 256, "the test's log fits one tile");
            format!("0/000.p/{log_size}")
        }
        other => panic!("no value for the public parameter `{other}`: add one to public_value"),
    }
}

fn public_routes_serve_public_data_to_anyone_and_take_no_writes(backend: Backend) {
    public_routes_serve_public_data(&setup(backend));
}

fn with_a_public_log_the_log_and_directory_reads_are_public_routes_too(backend: Backend) {
    let w = setup_with(backend, &PUBLIC_LOG);
    let routes = described(&w.description);
    for (route, _) in LOG_READ_ROUTES {
        let (_, _, operation) = routes
            .iter()
            .find(|(m, p, _)| format!("{m} {p}") == route)
            .unwrap_or_else(|| panic!("{route} is not described"));
        assert!(!is_signed(operation), "{route} is public on a public log");
        let readers = operation[READABLE_BY].as_str().unwrap_or_default();
        assert!(readers.starts_with("anyone"), "{route}: {readers}");
    }
    public_routes_serve_public_data(&w);
}

fn public_routes_serve_public_data(w: &World) {
    let hub = &w.hub;
    let log_size = hub.snapshot().log_size() as u64;
    let routes = described(&w.description);
    assert_public_routes_listed(&routes, w.public_log);
    let camden = key_of("camden");
    let secrets = [
        SECRET_CONTENT.to_owned(),
        SECRET_NAME.to_owned(),
        "AGE-SECRET-KEY".to_owned(),
        "PRIVATE+KEY".to_owned(),
        read_text(&hub.data.path().join("log.key")).trim().to_owned(),
    ];
    for (method, template, operation) in routes.iter().filter(|(_, _, op)| !is_signed(op)) {
        let route = format!("{method} {template}");
        if method != "GET" {
            let authenticated_by = operation["x-sealdrop-authenticated-by"].as_str();
            assert!(
                route == "POST /v1/directory" && authenticated_by.is_some(),
                "{route} is a public write with no case in the access matrix"
            );
            continue;
        }
        let mut query = Vec::new();
        for p in operation["parameters"].as_array().into_iter().flatten() {
            if p["in"] == "query" && p["required"] == true {
                let name = p["name"].as_str().expect("a parameter name");
                query.push(format!("{name}={}", public_value(name, log_size)));
            }
        }
        let mut path = instantiate(template, |name| public_value(name, log_size));
        if !query.is_empty() {
            path = format!("{path}?{}", query.join("&"));
        }
        let anyone = unchanged(hub, &route, &[], || send(hub, "GET", &path, None, &Body::None));
        assert_eq!(anyone.status, 200, "{route} ({path}) without a signature: {anyone:?}");
        let signed = sign_request(&camden, "GET", &path, http::now(), Some(b""));
        let member = unchanged(hub, &route, &[], || send(hub, "GET", &path, Some(&signed), &Body::None));
        assert_eq!(
            (member.status, &member.bytes),
            (anyone.status, &anyone.bytes),
            "{route} answers a member differently from anyone: it must serve only public data"
        );
        for secret in &secrets {
            assert!(!anyone.body.contains(secret.as_str()), "{route} serves {secret:?}");
        }
        assert!(
            !anyone.bytes.windows(w.ciphertext_sample.len()).any(|win| win == w.ciphertext_sample),
            "{route} serves a drop's ciphertext"
        );
    }

    // Every method a path does not list is refused, and writes nothing,
    // signed or not.
    let mut paths: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (method, template, _) in &routes {
        paths.entry(template.as_str()).or_default().push(method.as_str());
    }
    for (template, listed) in paths {
        let path = instantiate(template, |name| match name {
            "id" => w.committed.clone(),
            other => public_value(other, log_size),
        });
        for method in METHODS.iter().filter(|m| !listed.contains(m)) {
            let body = Body::Json(b"{\"serial\": 99}".to_vec());
            let route = format!("{method} {template}");
            let auth = sign_request(&camden, method, &path, http::now(), body.signed());
            for auth in [None, Some(&auth)] {
                let reply = unchanged(hub, &route, &["nonces"], || send(hub, method, &path, auth, &body));
                reply.assert_error(404, "not_found");
            }
        }
    }

    // The one public write: a directory carries the coordinator's own
    // signature, so a forged or an older one changes nothing.
    let tool = Tool::new();
    let impostor = tool.dir.path().join("impostor.key");
    tool.ok([
        OsStr::new("directory"),
        "keygen".as_ref(),
        "--name".as_ref(),
        sealdrop_e2e::authority_name().as_str().as_ref(),
        "--out".as_ref(),
        impostor.as_os_str(),
    ]);
    let mut d = example_directory_json();
    d["serial"] = 9.into();
    let forged = sign_directory(tool.dir.path(), "forged", &d, &impostor);
    let operation = &w.description["paths"]["/v1/directory"]["post"];
    for (what, note, status, code) in [
        ("a forged directory", forged, 422, "directory_bad_signature"),
        ("an older directory", w.first_directory.clone(), 409, "directory_rollback"),
    ] {
        let reply = unchanged(hub, what, &[], || hub.post_directory(&note));
        reply.assert_error(status, code);
        assert_documented("POST /v1/directory", operation, status, code);
    }
}

/// The same on every back end: the description is built into the binary.
#[test]
fn the_description_names_the_signature_scheme_and_the_one_error_shape() {
    let hub = Hub::start();
    let reply = http::Reply::from(http::client().get(format!("{}/v1/openapi.json", hub.url)).send());
    assert_eq!(reply.status, 200, "{reply:?}");
    let d = json(&reply.body);
    assert!(d["openapi"].as_str().is_some_and(|v| v.starts_with("3.")), "OpenAPI 3: {}", d["openapi"]);
    let scheme = &d["components"]["securitySchemes"][SIGNATURE_SCHEME];
    assert_eq!((scheme["type"].as_str(), scheme["in"].as_str()), (Some("apiKey"), Some("header")), "{scheme}");
    assert_eq!(scheme["name"], HEADER_SIGNATURE);
    let text = scheme["description"].as_str().unwrap();
    for header in [HEADER_KEY, HEADER_TIME, HEADER_NONCE, HEADER_CONTENT, HEADER_SIGNATURE] {
        assert!(text.contains(header), "the scheme does not explain {header}: {text}");
    }
    let error = &d["components"]["schemas"]["ErrorBody"];
    assert_eq!(error["properties"]["error"]["$ref"], "#/components/schemas/ErrorDetail", "{error}");
    // Every error answer of every route is that shape; every route can be rate limited.
    for (method, path, operation) in described(&d) {
        for (status, response) in operation["responses"].as_object().unwrap() {
            if status.starts_with('4') || (status.starts_with('5') && status != "503") {
                let schema = &response["content"]["application/json"]["schema"]["$ref"];
                assert_eq!(schema, "#/components/schemas/ErrorBody", "{method} {path} {status}");
            }
        }
        assert!(operation["responses"]["429"]["headers"]["Retry-After"].is_object(), "{method} {path}");
    }
    // Every reference resolves.
    let text = reply.body.as_str();
    for reference in text.split("\"$ref\": \"#/components/schemas/").skip(1) {
        let name = reference.split('"').next().unwrap();
        assert!(d["components"]["schemas"][name].is_object(), "dangling reference to {name}");
    }
}

/// `HubSnapshot` is what every check above relies on: it must see a change.
fn a_snapshot_sees_a_new_row_and_a_new_log_entry(backend: Backend) {
    let hub = Hub::start_on(backend, None, &[]);
    let before: HubSnapshot = hub.snapshot();
    let camden = Party::new(&hub, "camden");
    let file = camden.file("a.csv", "x");
    camden.send("islington", &[&file]);
    let after = hub.snapshot();
    assert!(after.log_size() > before.log_size());
    let changes = after.changes_since(&before, &[]);
    assert!(changes.iter().any(|c| c.starts_with("drops: added")), "{changes:?}");
    assert!(after.changes_since(&after.clone(), &[]).is_empty());
}

sealdrop_e2e::on_both_backends!(
    every_route_refuses_every_caller_it_must_and_changes_nothing,
    with_a_public_log_every_other_route_still_refuses_every_caller_it_must,
    public_routes_serve_public_data_to_anyone_and_take_no_writes,
    with_a_public_log_the_log_and_directory_reads_are_public_routes_too,
    a_snapshot_sees_a_new_row_and_a_new_log_entry,
);
