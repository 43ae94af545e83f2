//! A hub on a PostgreSQL that accepts only TLS, as managed databases do:
//! the real `sealdrop-hub` binary against a real cluster started by the
//! test (`PgCluster::shared_tls`, with a CA made for it and plain TCP
//! rejected in `pg_hba.conf`) and a real s3s-fs. With `sslmode=verify-full`
//! and the cluster's CA the hub is initialised, serves a drop and passes
//! `check-config`; with another CA, or without TLS, each tool stops with
//! one line that says what to change and never shows the password.

use sealdrop_e2e::{Hub, Party, SharedStores, hub_command, tree};
use sealdrop_testservers::PgCluster;

/// A new database on the TLS-only cluster, its URL with the role's
/// password and `params` (`{ca}` stands for the cluster's CA), and a new
/// object store.
fn tls_stores(params: &str) -> SharedStores {
    let cluster = PgCluster::shared_tls();
    let ca = cluster.ca_certificate().expect("a TLS cluster has a CA").display().to_string();
    let database = format!("{}?{}", cluster.database_with_password(PASSWORD), params.replace("{ca}", &ca));
    SharedStores::on(database)
}

const PASSWORD: &str = "pw-never-shown";

/// `sealdrop-hub` run with `stores`' environment, the database URL replaced by `database`.
fn hub_tool(stores: &SharedStores, database: &str, args: &[&str]) -> (bool, String, String) {
    let mut command = hub_command();
    command.envs(stores.env()).env("SEALDROP_HUB_DATABASE", database).args(args);
    let out = command.output().expect("run sealdrop-hub");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Another CA, which signed nothing the cluster holds.
fn other_ca(dir: &std::path::Path) -> std::path::PathBuf {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, "not the database's CA");
    let path = dir.join("other-ca.pem");
    std::fs::write(&path, params.self_signed(&KeyPair::generate().unwrap()).unwrap().pem()).unwrap();
    path
}

#[test]
fn a_hub_serves_from_a_database_that_accepts_only_checked_tls() {
    let stores = tls_stores("sslmode=verify-full&sslrootcert={ca}&channel_binding=require");
    let hub = Hub::start_on_shared_stores(&stores, None, &[]);
    let camden = Party::new(&hub, "camden");
    let islington = Party::new(&hub, "islington");
    let id = camden.send("islington", &[&camden.file("plan.txt", "over TLS to the database\n")]);
    let out = tempfile::tempdir().unwrap();
    islington.fetch(&id, out.path());
    assert_eq!(tree(out.path()).get("plan.txt").map(Vec::as_slice), Some(&b"over TLS to the database\n"[..]));

    let data = hub.data.path().to_str().unwrap();
    let (ok, said, err) = hub_tool(&stores, &stores.database, &["check-config", "--data", data]);
    assert!(ok, "{said}{err}");
    assert!(said.contains("its database is PostgreSQL at postgres://") && !said.contains(PASSWORD), "{said}");

    // The same database, checked against a CA that did not sign its certificate.
    let dir = tempfile::tempdir().unwrap();
    let ca = PgCluster::shared_tls().ca_certificate().unwrap().display().to_string();
    let other = other_ca(dir.path()).display().to_string();
    let (ok, _, err) = hub_tool(&stores, &stores.database.replace(&ca, &other), &["check-config", "--data", data]);
    assert!(!ok, "a certificate from another CA was accepted");
    assert!(err.contains(&format!("is not signed by the CA in sslrootcert={other}")), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(!err.contains(PASSWORD), "{err}");

    // Without TLS the server itself turns the hub away.
    let plain = stores.database.replace("sslmode=verify-full", "sslmode=disable");
    let (ok, _, err) = hub_tool(&stores, &plain, &["check-config", "--data", data]);
    assert!(!ok, "a plain connection was let in");
    assert!(err.contains("the database accepts only TLS connections, and sslmode=disable sent none"), "{err}");
    assert!(!err.contains(PASSWORD), "{err}");
}

#[test]
fn a_verifying_mode_without_a_ca_is_refused_before_connecting() {
    let stores = tls_stores("sslmode=verify-full");
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, err) = hub_tool(&stores, &stores.database, &["check-config", "--data", dir.path().to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("add sslrootcert=/path/to/ca.pem"), "{err}");
    assert!(!err.contains(PASSWORD), "{err}");
}
