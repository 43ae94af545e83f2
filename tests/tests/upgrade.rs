//! A hub data directory written by an older release is served by today's
//! hub after an in-place upgrade of its database schema: its drops fetch
//! intact, its transfer log verifies and goes on growing, and new drops use
//! today's storage.
//!
//! `tests/fixtures/hub-data-v4/` was written by the hub and client of commit
//! fd8a4c5 (database schema 4: every ciphertext a file; small ones became
//! database rows in schema 5) with `tests/fixtures/make-hub-data-v4.sh`, at
//! the test clock time below, with the example keys of that time (classic
//! X25519 keys, before `keys-example/` was made again with post-quantum
//! ones), kept in `tests/fixtures/hub-data-v4-keys/`.

use std::path::Path;

use sealdrop_e2e::{Hub, Party, TestClock, bins, chmod, copy_with_mode, list_dir, repo_root};

/// When the fixture was written (2026-12-01T00:00:00Z, its test clock).
const FIXTURE_TIME: i64 = 1_796_083_200;

/// `id`, with the key and authority the fixture was written with.
fn fixture_party(hub: &Hub, id: &str, clock: &TestClock) -> Party {
    let keys = repo_root().join("tests/fixtures/hub-data-v4-keys");
    let mut party = Party::new(hub, id).with_clock(clock);
    copy_with_mode(&keys.join(format!("{id}.key")), &party.key, 0o600);
    party.authority = keys.join("authority.pub");
    party
}

fn schema_version(data: &Path) -> i64 {
    let db = rusqlite::Connection::open(data.join("hub.db")).unwrap();
    db.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap()
}

#[test]
fn a_data_directory_from_an_older_release_is_upgraded_in_place() {
    let fixture = repo_root().join("tests/fixtures/hub-data-v4");
    let clock = TestClock::new();
    clock.set(FIXTURE_TIME + 3600);
    let mut hub = Hub::start_with_clock(&clock, &[]);
    hub.stop();
    hub.replace_data(&fixture);
    // Git keeps no file modes beyond the executable bit; the hub insists.
    chmod(&hub.data.path().join("log.key"), 0o600);
    assert_eq!(schema_version(hub.data.path()), 4, "the fixture is from before the current schema");
    let old_files = list_dir(&hub.data.path().join("blobs"));
    assert_eq!(old_files.len(), 2, "the old release kept both waiting ciphertexts as files: {old_files:?}");

    hub.restart();
    assert_eq!(schema_version(hub.data.path()), 9, "upgraded in place to the current schema (9 migrations)");

    // Islington, on a fresh machine, fetches what the old release stored.
    let islington = fixture_party(&hub, "islington", &clock);
    let inbox = islington.inbox();
    assert_eq!(inbox.len(), 2, "{inbox:?}");
    for entry in &inbox {
        assert_eq!(entry["from"], "camden", "{entry}");
    }
    let got = islington.work().join("got");
    for (i, entry) in inbox.iter().enumerate() {
        islington.fetch(entry["id"].as_str().unwrap(), &got.join(i.to_string()));
    }
    let fetched: Vec<Vec<u8>> = (0..2)
        .flat_map(|i| {
            let dir = got.join(i.to_string());
            list_dir(&dir).into_iter().map(move |name| std::fs::read(dir.join(name)).unwrap())
        })
        .collect();
    let big: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
    assert!(fetched.contains(&b"urn,la\n1001,202\n1002,202\n".to_vec()), "the small file arrived intact");
    assert!(fetched.contains(&big), "the large file arrived intact");

    // The old history and the new entries verify together.
    let vkey = {
        let out = std::process::Command::new(&bins().hub)
            .args(["verifier-key", "--data"])
            .arg(hub.data.path())
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let audit: serde_json::Value =
        serde_json::from_str(&islington.ok(["audit", "verify", "--log-key", &vkey, "--json"])).unwrap();
    assert_eq!(audit["verified"], true, "{audit}");
    // The old release's drops: two to islington and one delivered to camden.
    assert_eq!(audit["drops_committed"], 3, "{audit}");
    assert_eq!(audit["deleted"]["delivered"], 3, "{audit}");

    // A new small drop is kept the current way (a database row, no file).
    let camden = fixture_party(&hub, "camden", &clock);
    let id = camden.send("islington", &[&camden.file("new.csv", "urn,la\n2001,202\n")]);
    assert!(!hub.data.path().join("blobs").join(format!("{id}.age")).exists(), "a small ciphertext is a row now");
    assert!(hub.has_ciphertext(&id));
    islington.fetch(&id, &got.join("new"));
    assert_eq!(std::fs::read(got.join("new/new.csv")).unwrap(), b"urn,la\n2001,202\n");

    // Where the log records each step of the old drops was filled from the
    // log at the upgrade: the sender's status proves every one of them.
    let status = camden.status();
    assert_eq!(status.len(), 3, "two drops of the old release and the new one: {status:?}");
    for d in &status {
        assert_eq!((d["state"].as_str(), d["verified"].as_bool()), (Some("delivered"), Some(true)), "{d}");
    }
}
