//! A hub on the back ends several instances share (`database =
//! "postgres://..."`, `blobs = "s3://..."`): the real `sealdrop-hub` binary
//! against a real PostgreSQL cluster and a real s3s-fs started by the test,
//! with the real client. `init` writes the hub into the database and
//! refuses one that holds a hub already; `check-config` and `verifier-key`
//! read it without changing it; two `serve` processes with their own data
//! directories (each holding a copy of the log key) serve one hub: a drop
//! sent through one is fetched through the other, and the log both sign
//! verifies as one.

use sealdrop_e2e::{Hub, Party, SharedStores, hub_command, pseudo_random_bytes, tree};
use sealdrop_testservers::{PG_BIN, PgCluster};

const MIB: usize = 1024 * 1024;

/// `sealdrop-hub` run with the shared stores' environment.
fn hub_tool(stores: &SharedStores, args: &[&str]) -> std::process::Output {
    let mut command = hub_command();
    command.envs(stores.env()).args(args);
    command.output().expect("run sealdrop-hub")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn init_puts_the_hub_in_postgres_and_the_tools_read_it_from_there() {
    let stores = SharedStores::start();
    let hub = Hub::start_on_shared_stores(&stores, None, &[]);
    let data = hub.data.path().to_str().unwrap().to_owned();
    // The instance's data directory holds its log key, no database.
    assert!(hub.data.path().join("log.key").is_file());
    assert!(!hub.data.path().join("hub.db").exists(), "a PostgreSQL hub made a SQLite file");

    let out = hub_tool(&stores, &["check-config", "--data", &data]);
    let said = text(&out.stdout);
    assert!(out.status.success(), "{said}{}", text(&out.stderr));
    assert!(said.contains("its database is PostgreSQL at postgres://"), "{said}");
    assert!(said.contains("(schema version "), "{said}");
    assert!(said.contains("ciphertexts are kept in s3://"), "{said}");

    let key = hub_tool(&stores, &["verifier-key", "--data", &data]);
    assert!(key.status.success(), "{}", text(&key.stderr));
    assert!(text(&key.stdout).starts_with("test-hub+"), "{}", text(&key.stdout));

    // A second init on the same database is refused, and leaves nothing behind.
    let other = tempfile::tempdir().unwrap();
    let keys = sealdrop_e2e::keys_example();
    let mut init = hub_command();
    init.envs(stores.env())
        .arg("init")
        .arg("--data")
        .arg(other.path().join("hub"))
        .args(["--origin", "second-hub", "--authority"])
        .arg(keys.join("authority.pub"))
        .arg("--directory")
        .arg(keys.join("directory.signed"));
    let out = init.output().unwrap();
    let err = text(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("already holds hub \"test-hub\""), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(!other.path().join("hub").exists(), "a refused init made the data directory");

    // An instance given another hub's log key (same origin) is refused before it serves.
    let stranger = Hub::init_data();
    let wrong_key = tempfile::tempdir().unwrap();
    std::fs::copy(stranger.path().join("log.key"), wrong_key.path().join("log.key")).unwrap();
    let wrong = wrong_key.path().to_str().unwrap();
    let out = hub_tool(&stores, &["serve", "--data", wrong, "--listen", "127.0.0.1:0"]);
    let err = text(&out.stderr);
    assert!(!out.status.success() && out.stdout.is_empty(), "{err}");
    assert!(err.contains("does not verify with the log key") && err.contains("give it a copy of the log key"), "{err}");

    // Serving with the ciphertexts somewhere else is refused: those the hub holds would be missing.
    let instance = tempfile::tempdir().unwrap();
    std::fs::copy(hub.data.path().join("log.key"), instance.path().join("log.key")).unwrap();
    let instance = instance.path().to_str().unwrap();
    let out = hub_tool(&stores, &["serve", "--data", instance, "--listen", "127.0.0.1:0", "--blobs", "files"]);
    let err = text(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("this hub's ciphertexts are in s3://"), "{err}");
}

#[test]
fn two_instances_serve_one_hub_and_sign_one_log() {
    let stores = SharedStores::start();
    let first = Hub::start_on_shared_stores(&stores, None, &[]);
    let second = first.another_instance(&[]);
    let camden = Party::new(&first, "camden");
    let islington = Party::new(&second, "islington");
    let mut hackney = Party::new(&first, "hackney");

    let small = pseudo_random_bytes(2000, 1);
    let large = pseudo_random_bytes(3 * MIB, 2);
    let one = camden.send("islington,hackney", &[&camden.file("plan.txt", &small)]);
    let two = camden.send("islington", &[&camden.file("records.bin", &large)]);

    // Islington, on the other instance, sees and fetches both.
    for (id, name, data) in [(&one, "plan.txt", &small), (&two, "records.bin", &large)] {
        let out = tempfile::tempdir().unwrap();
        islington.fetch(id, out.path());
        let got = tree(out.path());
        assert!(got.get(name).is_some_and(|b| b == data), "{name} fetched through the other instance differs");
    }
    // Hackney moves between instances mid-way: its client keeps checking one log.
    let out = tempfile::tempdir().unwrap();
    hackney.point_at(&second);
    hackney.fetch(&one, out.path());
    hackney.point_at(&first);
    let sent = hackney.send("camden", &[&hackney.file("reply.csv", "x\n1\n")]);
    let inbox = camden.ok(["inbox", "--json"]);
    assert!(inbox.contains(&sent), "camden's inbox on the first instance lacks {sent}: {inbox}");

    // One log: the entries of both instances, verified from either.
    let vkey = text(&hub_tool(&stores, &["verifier-key", "--data", first.data.path().to_str().unwrap()]).stdout);
    for party in [&camden, &islington] {
        let out = party.ok(["audit", "verify", "--log-key", vkey.trim(), "--json"]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["verified"], true, "{v}");
        assert_eq!(v["drops_committed"], 3, "{v}");
        assert_eq!(v["fetches"], 3, "{v}");
    }
}

/// Runs a PostgreSQL client program from Debian's package (`pg_dump`,
/// `pg_restore`), as an operator backing up the hub would.
fn pg_tool(program: &str, args: &[&str]) {
    let out = std::process::Command::new(std::path::Path::new(PG_BIN).join(program)).args(args).output().unwrap();
    assert!(out.status.success(), "{program} failed: {}", text(&out.stderr));
}

#[test]
fn a_pg_dump_restored_into_a_new_database_serves_the_same_hub_and_its_log_verifies() {
    let stores = SharedStores::start();
    let mut hub = Hub::start_on_shared_stores(&stores, None, &[]);
    let camden = Party::new(&hub, "camden");
    let mut islington = Party::new(&hub, "islington");
    let large = pseudo_random_bytes(2 * MIB, 7);
    let delivered = camden.send("islington", &[&camden.file("a.csv", "x\n1\n")]);
    islington.fetch(&delivered, &islington.work().join("in"));
    let waiting = camden.send("islington", &[&camden.file("records.bin", &large)]);

    // The backup as docs/operations.md says: pg_dump while the hub serves
    // (the bucket is kept as it is, as versioning would keep it).
    let dump = tempfile::tempdir().unwrap();
    let dump_file = dump.path().join("hub.dump");
    pg_tool("pg_dump", &["--format=custom", "--file", dump_file.to_str().unwrap(), &stores.database]);
    hub.stop();

    // Restored into a new, empty database and served from there.
    let restored = PgCluster::shared().database();
    pg_tool("pg_restore", &["--no-owner", "--dbname", &restored, dump_file.to_str().unwrap()]);
    let restored = Hub::serve_moved(hub.data.path(), &stores.with_database(restored), &[]);
    islington.point_at(&restored);
    let out = tempfile::tempdir().unwrap();
    islington.fetch(&waiting, out.path());
    assert!(tree(out.path()).get("records.bin").is_some_and(|b| *b == large), "the restored hub served another file");

    let vkey = text(&hub_tool(&stores, &["verifier-key", "--data", hub.data.path().to_str().unwrap()]).stdout);
    let verified = islington.ok(["audit", "verify", "--log-key", vkey.trim(), "--json"]);
    let v: serde_json::Value = serde_json::from_str(&verified).unwrap();
    assert_eq!(v["verified"], true, "{v}");
    assert_eq!((v["drops_committed"].as_u64(), v["fetches"].as_u64()), (Some(2), Some(2)), "{v}");
}
