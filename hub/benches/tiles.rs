//! Serving the transfer log as tlog-tiles from a log of 100,000 entries in
//! the hub's SQLite store.
//!
//! - `tiles_store/*`: what `GET /v1/log/tile/...` asks of the store
//!   (`transfer_log::read_tile`): check the tile is in the tree, then
//!   `sealdrop_log::tiles::hash_tile` over the stored hashes, or
//!   `LogStore::log_entries` + `sealdrop_log::tiles::encode_entry_bundle`,
//!   each read a trip to the store's blocking pool.
//! - `tiles_handler/*`: the route's handler itself (`api::tlog::tile`, with
//!   its path parsing and response), called directly on an opened hub, no
//!   HTTP.
//!
//! `cargo bench -p sealdrop-hub --bench tiles`

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sealdrop_hub::storage::{LogStore as _, SqliteMetaStore};
use sealdrop_hub::transfer_log::read_tile;
use sealdrop_hub::{Hub, InitOptions, log_key};
use sealdrop_log::tiles::TilePath;
use sealdrop_proto::clock::SystemClock;
use sealdrop_proto::directory::{Directory, Party, SignedDirectory};
use sealdrop_proto::keys::{MemberSecretKey, NoteSigningKey};

const LOG_SIZE: u64 = 100_000;
const ORIGIN: &str = "hub.sealdrop.test";

/// The tiles served, by their tlog-tiles paths in a log of [`LOG_SIZE`] entries.
const TILES: [(&str, &str); 5] = [
    ("hash_L0_full", "0/200"),
    ("hash_L0_partial", "0/390.p/160"),
    ("hash_L1_full", "1/000"),
    ("entries_full", "entries/200"),
    ("entries_partial", "entries/390.p/160"),
];

/// An initialised hub data directory whose log holds [`LOG_SIZE`] entries.
fn setup(rt: &tokio::runtime::Runtime) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("hub");
    let authority = NoteSigningKey::generate("authority.sealdrop.test").expect("valid name");
    let member = MemberSecretKey::generate("camden".parse().expect("valid"), "data-team".parse().expect("valid"));
    let directory = Directory {
        serial: 1,
        issued_at: "2026-01-01T00:00:00Z".parse().expect("valid"),
        hub: None,
        parties: vec![Party::with_member("Camden", member.public())],
        agreements: vec![],
    };
    let signed = SignedDirectory::sign(directory, &authority).expect("a consistent directory");
    let opts = InitOptions {
        data_dir: data_dir.clone(),
        origin: ORIGIN.into(),
        authority: authority.verifier(),
        directory_note: signed.note,
        backends: Default::default(),
    };
    sealdrop_hub::init(&opts, &SystemClock).expect("init");
    // The init wrote entry 0; append realistic entries up to LOG_SIZE, in
    // batches as a busy hub would.
    let store = SqliteMetaStore::open(&data_dir.join(sealdrop_hub::hub::DB_FILE)).expect("open store");
    let key = log_key::load(&data_dir.join(log_key::LOG_KEY_FILE), ORIGIN).expect("log key");
    let drops = usize::try_from(LOG_SIZE / 4).expect("small");
    let entries = sealdrop_log::testlog::generate(4, drops).entries;
    rt.block_on(async {
        let want = usize::try_from(LOG_SIZE - store.log_size().await.expect("size")).expect("small");
        for chunk in entries[..want].chunks(1000) {
            store.append_log(chunk, Box::new(key.clone())).await.expect("append");
        }
        assert_eq!(store.log_size().await.expect("size"), LOG_SIZE);
    });
    dir
}

/// What the handler asks of the store, for one parsed tile.
fn tile_from_store(rt: &tokio::runtime::Runtime, store: &SqliteMetaStore, tile: TilePath) -> Option<Vec<u8>> {
    rt.block_on(read_tile(store, tile)).expect("the tile")
}

fn tiles(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    let dir = setup(&rt);
    let data_dir = dir.path().join("hub");
    // Opening checks the whole stored log, as a restarted hub does.
    let hub = Hub::open(&data_dir, Arc::new(SystemClock)).expect("open hub");
    // A store of its own on the same database, for the store-level figures.
    let store = SqliteMetaStore::open(&data_dir.join(sealdrop_hub::hub::DB_FILE)).expect("open store");
    assert_eq!(rt.block_on(store.recompute_log()).expect("consistent").0, LOG_SIZE);

    let mut g = c.benchmark_group("tiles_store");
    for (name, path) in TILES {
        let tile = TilePath::parse(path).expect("a tile path");
        let bytes = tile_from_store(&rt, &store, tile).expect("in the tree");
        g.throughput(Throughput::Bytes(bytes.len() as u64));
        g.bench_function(name, |b| b.iter(|| tile_from_store(&rt, &store, tile).expect("in the tree")));
    }
    g.finish();

    let mut g = c.benchmark_group("tiles_handler");
    for (name, path) in TILES {
        let tile = TilePath::parse(path).expect("a tile path");
        let expected = tile_from_store(&rt, &store, tile).expect("in the tree");
        let serve = || async {
            // The handler after its reader was let in (a member's signature, or a public log).
            let reader = sealdrop_hub::api::log_access::LogReader;
            let response = sealdrop_hub::api::tlog::tile(reader, State(hub.clone()), Ok(Path(path.to_owned())))
                .await
                .expect("served");
            axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body")
        };
        assert_eq!(rt.block_on(serve()), expected[..], "{path}");
        g.throughput(Throughput::Bytes(expected.len() as u64));
        g.bench_function(name, |b| b.iter(|| rt.block_on(serve())));
    }
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! { name = benches; config = config(); targets = tiles }
criterion_main!(benches);
