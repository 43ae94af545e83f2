//! Request authentication as the hub runs it before any handler:
//! `api::auth::verify_headers` (headers well-formed, clock skew, key looked
//! up in a 12-party directory, Ed25519 `verify_strict`) and
//! `api::auth::check_body` (the body's SHA-256 against the signed one).
//! The nonce check that follows is a database insert and is left out.
//!
//! `cargo bench -p sealdrop-hub --bench auth`

use std::hint::black_box;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, Method};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sealdrop_hub::api::auth::{check_body, verify_headers};
use sealdrop_proto::request::sign_request;

const NOW: i64 = 1_800_000_000;
const PATH: &str = "/v1/drops";
const BODY: &[u8] = br#"{"recipients":["islington","hackney"],"agreement":"london-data-sharing","expires":"2027-01-08T09:00:00Z","idempotency_key":null}"#;

fn auth(c: &mut Criterion) {
    let keys = sealdrop_log::testlog::TestKeys::new(12);
    let directory = keys.directory(1).directory;
    // The last party, so the key lookup walks the whole directory.
    let me = &keys.members[11];
    let signed = sign_request(&me.signing, "POST", PATH, NOW - 5, Some(BODY));
    let mut headers = HeaderMap::new();
    for (name, value) in signed.headers() {
        headers.insert(name, HeaderValue::from_str(&value).expect("header text"));
    }
    let method = Method::POST;

    let mut g = c.benchmark_group("hub_auth");
    g.throughput(Throughput::Elements(1));
    g.bench_function("verify_headers", |b| {
        b.iter(|| verify_headers(&directory, 1, NOW, &method, PATH, black_box(&headers)).expect("authenticated"))
    });
    g.bench_function("verify_headers_and_body", |b| {
        b.iter(|| {
            let (caller, auth) =
                verify_headers(&directory, 1, NOW, &method, PATH, black_box(&headers)).expect("authenticated");
            check_body(&auth, black_box(BODY)).expect("body matches");
            caller
        })
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! { name = benches; config = config(); targets = auth }
criterion_main!(benches);
