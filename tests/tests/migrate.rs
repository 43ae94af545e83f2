//! `sealdrop-hub migrate`: a hub that served real drops (the real
//! `sealdrop-hub serve` and client) moves to a real PostgreSQL (a cluster
//! the test binary starts) and a real S3-compatible server (`s3s-fs`).
//! Refused while the hub serves and into targets that hold something; the
//! data directory is unchanged; the report says what moved; and `serve` on
//! the new stores serves the drops that were waiting, takes new ones, and
//! signs a log that `audit verify` checks as the continuation of the old.

use std::path::Path;
use std::process::Output;

use sealdrop_e2e::{Hub, Party, SharedStores, error_code, hub_command, pseudo_random_bytes, tree};

/// `sealdrop-hub migrate --data DATA --blobs ...`, the database given as
/// the unit's environment file gives it (`SEALDROP_HUB_DATABASE`, keeping
/// its password out of process listings).
fn migrate(data: &Path, database: &str, stores: &SharedStores) -> Output {
    let mut command = hub_command();
    command.arg("migrate").arg("--data").arg(data).args(["--blobs", &stores.blobs()]);
    command.env("SEALDROP_HUB_DATABASE", database).envs(stores.s3.env()).output().expect("run sealdrop-hub migrate")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A hub that served drops: one delivered, and a small and a large one
/// waiting for islington.
struct Served {
    hub: Hub,
    camden: Party,
    islington: Party,
    /// The waiting drops: (id, file name, content).
    waiting: Vec<(String, &'static str, Vec<u8>)>,
}

fn served_hub() -> Served {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    let islington = Party::new(&hub, "islington");
    let delivered = camden.send("islington", &[&camden.file("delivered.csv", "x\n1\n")]);
    islington.fetch(&delivered, &islington.work().join("in-1"));
    let mut waiting = Vec::new();
    for (name, content) in [("small.csv", b"x\n2\n".to_vec()), ("large.bin", pseudo_random_bytes(400_000, 20))] {
        let id = camden.send("islington", &[&camden.file(name, &content)]);
        waiting.push((id, name, content));
    }
    Served { hub, camden, islington, waiting }
}

#[test]
fn a_stopped_hub_moves_once_and_only_into_empty_targets() {
    let Served { mut hub, .. } = served_hub();
    let stores = SharedStores::start();

    let out = migrate(hub.data.path(), &stores.database, &stores);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(error_code(&stderr).as_deref(), Some("data_dir_in_use"), "{stderr}");
    sealdrop_e2e::assert_one_error_line(&stderr);

    hub.terminate();
    let before = tree(hub.data.path());
    let out = migrate(hub.data.path(), &stores.database, &stores);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.starts_with("moved hub test-hub from "), "{stdout}");
    assert!(stdout.contains("and verified the copy"), "{stdout}");
    assert!(stdout.contains("drops 3, drop_recipients 3,"), "{stdout}");
    assert!(stdout.contains("ciphertexts: 2 committed ("), "{stdout}");
    assert!(stdout.contains(&format!("into {}", stores.blobs())), "{stdout}");
    assert!(stdout.contains(&format!("into PostgreSQL at {}\n", stores.database)), "{stdout}");
    assert!(stdout.contains(&format!("give each instance database = \"{}\"", stores.database)), "{stdout}");
    assert!(stdout.contains("log.key into each instance's data directory"), "{stdout}");
    assert!(tree(hub.data.path()) == before, "migrate changed the data directory");

    // Again into the same targets: the database holds the hub now.
    let out = migrate(hub.data.path(), &stores.database, &stores);
    let stderr = text(&out.stderr);
    assert_eq!(error_code(&stderr).as_deref(), Some("migrate_target_not_empty"), "{stderr}");
    assert!(stderr.contains("the target database already holds a hub"), "{stderr}");
    // A new database, the same prefix: the bucket holds the hub's objects.
    let out = migrate(hub.data.path(), &sealdrop_testservers::PgCluster::shared().database(), &stores);
    let stderr = text(&out.stderr);
    assert_eq!(error_code(&stderr).as_deref(), Some("migrate_target_not_empty"), "{stderr}");
    assert!(stderr.contains(&format!("the bucket prefix {} already holds objects", stores.blobs())), "{stderr}");
}

#[test]
fn the_moved_hub_serves_the_waiting_drops_and_continues_the_same_log() {
    let Served { mut hub, mut camden, mut islington, waiting } = served_hub();
    let vkey = hub_command().args(["verifier-key", "--data"]).arg(hub.data.path()).output().unwrap();
    let vkey = text(&vkey.stdout).trim().to_owned();
    hub.terminate();
    let stores = SharedStores::start();
    let out = migrate(hub.data.path(), &stores.database, &stores);
    assert!(out.status.success(), "{}", text(&out.stderr));

    // A new instance: its own data directory with a copy of the log key.
    let moved = Hub::serve_moved(hub.data.path(), &stores, &[]);
    assert!(!moved.data.path().join("hub.db").exists());
    camden.point_at(&moved);
    islington.point_at(&moved);
    let mut inbox = islington.inbox_ids();
    inbox.sort();
    let mut expected: Vec<String> = waiting.iter().map(|(id, _, _)| id.clone()).collect();
    expected.sort();
    assert_eq!(inbox, expected, "the drops waiting before the move");
    for (id, name, content) in &waiting {
        let out = tempfile::tempdir().unwrap();
        islington.fetch(id, out.path());
        assert!(tree(out.path()).get(*name) == Some(content), "{name} fetched from the moved hub differs");
    }
    assert!(islington.inbox_ids().is_empty());
    // New drops go through the moved hub too.
    let after = camden.send("islington", &[&camden.file("after.csv", "x\n3\n")]);
    islington.fetch(&after, &islington.work().join("in-after"));

    // One log across the move: the clients kept checking it (a rollback or
    // a fork would have failed their fetches), and it verifies whole.
    for party in [&camden, &islington] {
        let out = party.ok(["audit", "verify", "--log-key", &vkey, "--json"]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["verified"], true, "{v}");
        assert_eq!(v["drops_committed"], 4, "{v}");
        assert_eq!(v["acknowledgements"], 4, "{v}");
        assert_eq!(v["deleted"]["delivered"], 4, "{v}");
    }
}
