//! `sealdrop-hub migrate`: a hub that served real drops (the real
//! `sealdrop-hub serve` and client) moves to a real PostgreSQL (a cluster
//! the test binary starts) and a real S3-compatible server (`s3s-fs`).
//! Refused while the hub serves and into targets that hold something; the
//! data directory is unchanged; the report says what moved.

use std::path::Path;
use std::process::Output;

use sealdrop_e2e::{Hub, Party, error_code, hub_command, pseudo_random_bytes, tree};
use sealdrop_testservers::{PgCluster, S3Server};

/// Where the moved hub keeps its ciphertexts.
const MOVED: &str = "s3://sealdrop-test/moved";

fn migrate(data: &Path, database: &str, s3: &S3Server) -> Output {
    let mut command = hub_command();
    command.arg("migrate").arg("--data").arg(data).args(["--to", database, "--blobs", MOVED]).envs(s3.env());
    command.output().expect("run sealdrop-hub migrate")
}

/// A hub that served drops: one delivered, a small one and a large one
/// waiting for islington.
fn served_hub() -> Hub {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    let islington = Party::new(&hub, "islington");
    let delivered = camden.send("islington", &[&camden.file("delivered.csv", "x\n1\n")]);
    islington.fetch(&delivered, &islington.work().join("in-1"));
    camden.send("islington", &[&camden.file("small.csv", "x\n2\n")]);
    camden.send("islington", &[&camden.file("large.bin", pseudo_random_bytes(400_000, 20))]);
    hub
}

#[test]
fn a_stopped_hub_moves_once_and_only_into_empty_targets() {
    let mut hub = served_hub();
    let s3 = S3Server::start();
    let database = PgCluster::shared().database();

    let out = migrate(hub.data.path(), &database, &s3);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(error_code(&stderr).as_deref(), Some("data_dir_in_use"), "{stderr}");
    sealdrop_e2e::assert_one_error_line(&stderr);

    hub.terminate();
    let before = tree(hub.data.path());
    let out = migrate(hub.data.path(), &database, &s3);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.starts_with("moved hub test-hub from "), "{stdout}");
    assert!(stdout.contains("and verified the copy"), "{stdout}");
    assert!(stdout.contains("drops 3, drop_recipients 3,"), "{stdout}");
    assert!(stdout.contains("ciphertexts: 2 committed ("), "{stdout}");
    assert!(stdout.contains(&format!("into {MOVED}")), "{stdout}");
    assert!(stdout.contains("set database = \"postgres://...\""), "{stdout}");
    assert!(stdout.contains("log.key into each instance's data directory"), "{stdout}");
    assert!(tree(hub.data.path()) == before, "migrate changed the data directory");

    // Again into the same targets: the database holds the hub now.
    let out = migrate(hub.data.path(), &database, &s3);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(error_code(&stderr).as_deref(), Some("migrate_target_not_empty"), "{stderr}");
    assert!(stderr.contains("the target database already holds a hub"), "{stderr}");
    // A new database, the same prefix: the bucket holds the hub's objects.
    let out = migrate(hub.data.path(), &PgCluster::shared().database(), &s3);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(error_code(&stderr).as_deref(), Some("migrate_target_not_empty"), "{stderr}");
    assert!(stderr.contains(&format!("the bucket prefix {MOVED} already holds objects")), "{stderr}");
}
