//! Request signing and verification, and signed-manifest verification: the
//! per-request work of the client (signing) and the hub (verifying, with
//! `verify_strict`).
//!
//! `cargo bench -p sealdrop-proto --bench request`

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sealdrop_proto::drop::{EncryptedTo, Manifest};
use sealdrop_proto::ids::{DropId, key_name};
use sealdrop_proto::keys::MemberSecretKey;
use sealdrop_proto::note::{open_doc, sign_doc};
use sealdrop_proto::request::{RequestAuth, sign_request};

const NOW: i64 = 1_800_000_000;
const PATH: &str = "/v1/drops";
/// A `CreateDrop` body of the usual size.
const BODY: &[u8] = br#"{"recipients":["islington","hackney"],"agreement":"london-data-sharing","expires":"2027-01-08T09:00:00Z","idempotency_key":null}"#;

fn member(party: &str) -> MemberSecretKey {
    MemberSecretKey::generate(party.parse().expect("valid party"), "data-team".parse().expect("valid member"))
}

fn requests(c: &mut Criterion) {
    let me = member("camden");
    let verifier = me.signing.verifier();
    let auth = sign_request(&me.signing, "POST", PATH, NOW, Some(BODY));
    let headers: HashMap<&'static str, String> = auth.headers().into_iter().collect();

    let mut g = c.benchmark_group("request");
    g.throughput(Throughput::Elements(1));
    g.bench_function("sign", |b| {
        b.iter(|| sign_request(black_box(&me.signing), "POST", black_box(PATH), NOW, Some(black_box(BODY))))
    });
    g.bench_function("verify", |b| b.iter(|| black_box(&auth).verify(black_box(&verifier), "POST", PATH)));
    // What the hub does per request before touching the database: parse the
    // headers, verify the signature (verify_strict), hash the body.
    g.bench_function("parse_verify_body", |b| {
        b.iter(|| {
            let parsed =
                RequestAuth::from_headers(|h| black_box(&headers).get(h).map(String::as_str)).expect("well-formed");
            parsed.verify(&verifier, "POST", PATH).expect("verifies");
            assert_eq!(parsed.content, sealdrop_proto::request::body_sha256(black_box(BODY)));
        })
    });
    g.finish();
}

fn manifests(c: &mut Criterion) {
    let me = member("camden");
    let recipients = [member("islington"), member("hackney")];
    let manifest = Manifest {
        drop: DropId::random(),
        sender: me.party.clone(),
        sender_member: me.member.clone(),
        recipients: recipients.iter().map(|r| r.party.clone()).collect(),
        encrypted_to: recipients
            .iter()
            .map(|r| EncryptedTo { key: key_name(&r.party, &r.member), age_recipient: r.public().age_recipient })
            .collect(),
        agreement: "london-data-sharing".into(),
        directory_serial: 7,
        ciphertext_sha256: "ab".repeat(32),
        ciphertext_len: 1_234_567,
        created: "2027-01-01T09:00:00Z".parse().expect("valid"),
        expires: "2027-01-06T09:00:00Z".parse().expect("valid"),
    };
    let trusted = [me.signing.verifier()];
    let note = sign_doc(&manifest, &me.signing);

    let mut g = c.benchmark_group("manifest");
    g.throughput(Throughput::Elements(1));
    g.bench_function("sign", |b| b.iter(|| sign_doc(black_box(&manifest), &me.signing)));
    // The hub's first check at commit (`open_doc` with the caller's key).
    g.bench_function("open", |b| {
        b.iter(|| open_doc::<Manifest>(black_box(&note), black_box(&trusted)).expect("verifies"))
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! { name = benches; config = config(); targets = requests, manifests }
criterion_main!(benches);
