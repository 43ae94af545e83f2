//! The hub's transfer-log append: `MetaStore::append_log` on the SQLite
//! store (a real database file, WAL, `synchronous=FULL`). Every call is one
//! durable transaction that stores the entries and their tree hashes and
//! signs one checkpoint, so batching spreads the commit and the signature
//! over more entries. Entries are realistic ones (commits, fetches,
//! acknowledgements, deletions) from `sealdrop_log::testlog`.
//!
//! `cargo bench -p sealdrop-hub --bench log_append`

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sealdrop_hub::storage::{MetaStore, SqliteMetaStore};
use sealdrop_proto::keys::NoteSigningKey;

const BATCHES: [usize; 4] = [1, 16, 64, 256];

fn append(c: &mut Criterion) {
    let entries = sealdrop_log::testlog::generate(4, 150).entries;
    let key = NoteSigningKey::generate("hub.sealdrop.test").expect("valid name");
    let mut g = c.benchmark_group("log_append");
    for batch in BATCHES {
        // A fresh database per batch size, so each starts from the same log size.
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteMetaStore::open(&dir.path().join("hub.db")).expect("open store");
        // Start from a log that is not tiny, as a running hub's is.
        for chunk in entries.chunks(256).cycle().take(40) {
            store.append_log(chunk, &key).expect("prefill");
        }
        let mut next = entries.iter().cycle();
        g.throughput(Throughput::Elements(batch as u64));
        g.bench_with_input(BenchmarkId::new("sqlite_entries_per_txn", batch), &batch, |b, &batch| {
            b.iter_batched(
                || next.by_ref().take(batch).cloned().collect::<Vec<_>>(),
                |chunk| store.append_log(&chunk, &key).expect("append"),
                criterion::BatchSize::SmallInput,
            )
        });
        let size = store.log_size().expect("size");
        let (recomputed, _) = store.recompute_log().expect("the stored tree is consistent");
        assert_eq!(recomputed, size);
    }
    g.finish();
}

fn config() -> Criterion {
    Criterion::default().sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(4))
}

criterion_group! { name = benches; config = config(); targets = append }
criterion_main!(benches);
