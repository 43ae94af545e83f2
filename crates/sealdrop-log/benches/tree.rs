//! The log's in-memory Merkle tree: appending entries to a
//! [`MemoryTree`] of 100,000 entries, streaming a root with [`RootBuilder`]
//! (what an audit does per entry), signing and opening a checkpoint, and
//! making and checking an inclusion proof. Entries are realistic ones from
//! `sealdrop_log::testlog`.
//!
//! `cargo bench -p sealdrop-log --bench tree`

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use sealdrop_log::tree::{MemoryTree, RootBuilder, leaf_hash, verify_inclusion};
use sealdrop_log::{checkpoint, testlog};

const BASE: usize = 100_000;
const APPENDED: usize = 1_000;

fn tree(c: &mut Criterion) {
    let log = testlog::generate(4, 300);
    let entries: Vec<&[u8]> = log.entries.iter().map(Vec::as_slice).cycle().take(BASE + APPENDED).collect();
    let base = MemoryTree::from_entries(&entries[..BASE]);
    let more = &entries[BASE..];

    let mut g = c.benchmark_group("tree");
    g.throughput(Throughput::Elements(APPENDED as u64));
    g.bench_function("memory_append_1000_to_100k", |b| {
        b.iter_batched(
            || base.clone(),
            |mut t| {
                for e in more {
                    t.append(e);
                }
                t
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("root_builder_push_1000", |b| {
        b.iter(|| {
            let mut r = RootBuilder::new();
            for e in more {
                r.push(e);
            }
            r.root()
        })
    });

    g.throughput(Throughput::Elements(1));
    let size = base.size();
    let root = base.root();
    g.bench_function("root_of_100k", |b| b.iter(|| black_box(&base).root()));
    let index = 31_337;
    let proof = base.inclusion_proof(index, size).expect("in range");
    let leaf = leaf_hash(entries[index as usize]);
    g.bench_function("inclusion_proof_100k", |b| {
        b.iter(|| black_box(&base).inclusion_proof(black_box(index), size).expect("in range"))
    });
    g.bench_function("verify_inclusion_100k", |b| {
        b.iter(|| verify_inclusion(black_box(&proof), index, size, leaf, root).expect("verifies"))
    });
    let note = checkpoint::sign(&log.keys.log, size, &root);
    let verifier = log.keys.log.verifier();
    g.bench_function("checkpoint_sign", |b| b.iter(|| checkpoint::sign(&log.keys.log, size, black_box(&root))));
    g.bench_function("checkpoint_open", |b| {
        b.iter(|| checkpoint::open(black_box(&note), &verifier).expect("verifies"))
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! { name = benches; config = config(); targets = tree }
criterion_main!(benches);
