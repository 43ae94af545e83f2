//! The hub's transfer-log append: `LogStore::append_log` on the SQLite
//! store (a real database file in a tempdir), awaited as the hub awaits it
//! (one trip to the store's blocking pool). Every call is one transaction
//! that stores the entries and their tree hashes and signs one checkpoint,
//! and returns only once the WAL is synced to disk (shared among concurrent
//! callers by the store's group commit). Batching spreads the commit, the
//! sync and the signature over more entries; concurrent callers share syncs.
//! Entries are realistic ones (commits, fetches, acknowledgements,
//! deletions) from `sealdrop_log::testlog`.
//!
//! `cargo bench -p sealdrop-hub --bench log_append`

use std::time::{Duration, Instant};

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sealdrop_hub::storage::{LogStore as _, SqliteMetaStore};
use sealdrop_proto::keys::NoteSigningKey;
use tokio::runtime::Runtime;

const BATCHES: [usize; 4] = [1, 16, 64, 256];
/// Concurrent callers each appending one entry per call.
const CALLERS: [usize; 2] = [4, 16];
/// Calls each concurrent caller makes per iteration.
const CALLS_EACH: usize = 4;

/// A fresh store whose log is not tiny, as a running hub's is.
fn store(rt: &Runtime, entries: &[Vec<u8>], key: &NoteSigningKey) -> (tempfile::TempDir, SqliteMetaStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteMetaStore::open(&dir.path().join("hub.db")).expect("open store");
    for chunk in entries.chunks(256).cycle().take(40) {
        rt.block_on(store.append_log(chunk, Box::new(key.clone()))).expect("prefill");
    }
    (dir, store)
}

fn check(rt: &Runtime, store: &SqliteMetaStore) {
    let size = rt.block_on(store.log_size()).expect("size");
    let (recomputed, _) = rt.block_on(store.recompute_log()).expect("the stored tree is consistent");
    assert_eq!(recomputed, size);
}

fn append(c: &mut Criterion) {
    let entries = sealdrop_log::testlog::generate(4, 150).entries;
    let key = NoteSigningKey::generate("hub.sealdrop.test").expect("valid name");
    let rt = Runtime::new().expect("runtime");
    let mut g = c.benchmark_group("log_append");
    for batch in BATCHES {
        // A fresh database per batch size, so each starts from the same log size.
        let (_dir, store) = store(&rt, &entries, &key);
        let mut next = entries.iter().cycle();
        g.throughput(Throughput::Elements(batch as u64));
        g.bench_with_input(BenchmarkId::new("sqlite_entries_per_txn", batch), &batch, |b, &batch| {
            b.iter_batched(
                || next.by_ref().take(batch).cloned().collect::<Vec<_>>(),
                |chunk| rt.block_on(store.append_log(&chunk, Box::new(key.clone()))).expect("append"),
                BatchSize::SmallInput,
            )
        });
        check(&rt, &store);
    }
    for callers in CALLERS {
        let (_dir, store) = store(&rt, &entries, &key);
        g.throughput(Throughput::Elements((callers * CALLS_EACH) as u64));
        g.bench_with_input(BenchmarkId::new("sqlite_concurrent_callers_1_per_txn", callers), &callers, |b, &n| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for i in 0..iters {
                    let start = Instant::now();
                    std::thread::scope(|s| {
                        for t in 0..n {
                            let (store, key, rt) = (&store, &key, &rt);
                            let entry = &entries[(i as usize * n + t) % entries.len()];
                            s.spawn(move || {
                                for _ in 0..CALLS_EACH {
                                    rt.block_on(store.append_log(std::slice::from_ref(entry), Box::new(key.clone())))
                                        .expect("append");
                                }
                            });
                        }
                    });
                    total += start.elapsed();
                }
                total
            })
        });
        check(&rt, &store);
    }
    g.finish();
}

fn config() -> Criterion {
    Criterion::default().sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(4))
}

criterion_group! { name = benches; config = config(); targets = append }
criterion_main!(benches);
