//! What `sealdrop send` does to every byte: tar (`archive::write`) -> age
//! (to every recipient's X25519 key) -> SHA-256 (`pipe::HashingWriter`),
//! composed in one thread, plus each stage alone so the split of the cost
//! is visible. The upload is left out: the ciphertext goes to `io::sink()`.
//! (`send` itself runs tar+age and the hashing on two threads, see
//! `upload.rs`; the per-byte work is the same.)
//!
//! `cargo bench -p sealdrop --bench pipeline`

use sealdrop_proto::age_keys::{AgeIdentity, AgeRecipient};
use std::hint::black_box;
use std::io::{self, Read, Write};
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sealdrop::archive;
use sealdrop::pipe::{Digested, HashingWriter};

const MIB: usize = 1024 * 1024;
const SIZES: [usize; 2] = [MIB, 16 * MIB];
/// Recipients per drop: e.g. two parties with two member keys each.
const RECIPIENTS: usize = 4;

/// Deterministic, incompressible-looking bytes (xorshift).
fn data(len: usize) -> Vec<u8> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Post-quantum keys, as `sealdrop keygen` makes them (the per-file cost of
/// the key kind is one KEM per recipient, measured by bench/run).
fn recipients(n: usize) -> Vec<AgeRecipient> {
    (0..n).map(|_| AgeIdentity::generate().to_public().expect("native")).collect()
}

fn encryptor(recipients: &[AgeRecipient]) -> age::Encryptor {
    age::Encryptor::with_recipients(recipients.iter().map(|r| r.native().expect("native"))).expect("recipients")
}

/// tar -> age -> SHA-256 into `out`, in one thread.
fn tar_encrypt_hash<W: Write>(plan: &archive::Plan, recipients: &[AgeRecipient], out: W) -> (W, Digested) {
    let sink = encryptor(recipients).wrap_output(HashingWriter::new(out)).expect("age header");
    let sink = archive::write(plan, sink, |_| {}).expect("tar");
    sink.finish().expect("age finish").finish()
}

fn pipeline(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = recipients(RECIPIENTS);
    let mut g = c.benchmark_group("pipeline");
    for size in SIZES {
        let plain = data(size);
        let path = dir.path().join(format!("pupils-{size}.csv"));
        std::fs::write(&path, &plain).expect("write input");
        let plan = archive::plan(std::slice::from_ref(&path)).expect("plan");
        let label = format!("{}MiB", size / MIB);
        g.throughput(Throughput::Bytes(size as u64));

        g.bench_with_input(BenchmarkId::new("send", &label), &plan, |b, plan| {
            b.iter(|| tar_encrypt_hash(plan, &keys, io::sink()).1)
        });
        g.bench_with_input(BenchmarkId::new("tar", &label), &plan, |b, plan| {
            b.iter(|| archive::write(plan, io::sink(), |_| {}).expect("tar"))
        });
        g.bench_with_input(BenchmarkId::new("age_encrypt", &label), &plain, |b, plain| {
            b.iter(|| {
                let mut w = encryptor(&keys).wrap_output(io::sink()).expect("age header");
                w.write_all(black_box(plain)).expect("encrypt");
                w.finish().expect("age finish")
            })
        });
        g.bench_with_input(BenchmarkId::new("sha256", &label), &plain, |b, plain| {
            b.iter(|| {
                let mut w = HashingWriter::new(io::sink());
                w.write_all(black_box(plain)).expect("hash");
                w.finish().1
            })
        });
    }
    g.finish();
}

/// The fixed cost per drop: the age header wraps the file key once per
/// recipient (an X25519 exchange each).
fn age_header(c: &mut Criterion) {
    let mut g = c.benchmark_group("age_header");
    for n in [1, 4, 16] {
        let keys = recipients(n);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::from_parameter(n), &keys, |b, keys| {
            b.iter(|| {
                let w = encryptor(keys).wrap_output(Vec::new()).expect("age header");
                w.finish().expect("age finish").len()
            })
        });
    }
    g.finish();
}

/// Sanity check outside the timings: the composed pipeline's output is
/// age ciphertext that decrypts back to the tar of the input.
fn check_round_trip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("check.csv");
    std::fs::write(&path, data(100_000)).expect("write input");
    let plan = archive::plan(std::slice::from_ref(&path)).expect("plan");
    let id = AgeIdentity::generate();
    let (ct, digest) = tar_encrypt_hash(&plan, &[id.to_public().expect("native")], Vec::new());
    assert_eq!(digest.len, ct.len() as u64);
    let decryptor = age::Decryptor::new(&ct[..]).expect("age");
    let mut tar = Vec::new();
    decryptor
        .decrypt(std::iter::once(id.native().expect("native")))
        .expect("decrypt")
        .read_to_end(&mut tar)
        .expect("read");
    assert_eq!(tar, archive::write(&plan, Vec::new(), |_| {}).expect("tar"));
}

fn config() -> Criterion {
    check_round_trip();
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! { name = benches; config = config(); targets = pipeline, age_header }
criterion_main!(benches);
