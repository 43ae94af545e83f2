//! TLS to a real PostgreSQL that accepts TLS only ([`PgCluster::start_tls`]):
//! each `sslmode` against it, with the right CA, a wrong one and a host name
//! the certificate does not hold; and `require` against a server without TLS.

use std::path::{Path, PathBuf};

use sealdrop_testservers::PgCluster;

use crate::storage::meta::{MetaError, SettingsStore as _};
use crate::storage::postgres::{PgMetaStore, Transport};

async fn tls_cluster() -> &'static PgCluster {
    tokio::task::spawn_blocking(PgCluster::shared_tls).await.unwrap()
}

/// A new database on the TLS cluster, its URL with `params` added, and the
/// cluster's CA.
async fn database(params: &str) -> (String, PathBuf) {
    let cluster = tls_cluster().await;
    let url = tokio::task::spawn_blocking(|| cluster.database()).await.unwrap();
    let ca = cluster.ca_certificate().unwrap().to_owned();
    (format!("{url}?{}", params.replace("{ca}", &ca.display().to_string())), ca)
}

/// The store works: the migration ran, and it writes and reads back.
async fn assert_store_works(store: &PgMetaStore) {
    store.set_setting("origin", "tls.example").await.unwrap();
    assert_eq!(store.setting("origin").await.unwrap().as_deref(), Some("tls.example"));
}

async fn refusal(url: &str) -> String {
    let err = PgMetaStore::connect(url).await.unwrap_err();
    assert!(matches!(err, MetaError::PostgresConfig(_)), "{err:?}");
    let message = err.to_string();
    assert!(!message.contains('\n'), "one line: {message}");
    message
}

/// Another CA, which signed nothing the server holds.
fn wrong_ca(dir: &Path) -> PathBuf {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, "some other CA");
    let ca = params.self_signed(&KeyPair::generate().unwrap()).unwrap();
    let path = dir.join("other-ca.pem");
    std::fs::write(&path, ca.pem()).unwrap();
    path
}

#[tokio::test]
async fn verify_full_to_the_servers_ca_connects_over_checked_tls() {
    let (url, _) = database("sslmode=verify-full&sslrootcert={ca}").await;
    let store = PgMetaStore::connect(&url).await.unwrap();
    assert_eq!(store.transport(), Transport::TlsFullyChecked);
    assert_store_works(&store).await;
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_refused_saying_which_ca_to_give() {
    let dir = tempfile::tempdir().unwrap();
    let other = wrong_ca(dir.path());
    let (url, _) = database(&format!("sslmode=verify-full&sslrootcert={}", other.display())).await;
    // A password in the URL (the cluster trusts, so any will do) is never shown.
    let url = url.replacen("postgres@", "postgres:s3cret-pw@", 1);
    let message = refusal(&url).await;
    assert!(
        message.contains(&format!("is not signed by the CA in sslrootcert={}", other.display()))
            && message.contains("give as sslrootcert the CA certificate that signed it"),
        "{message}"
    );
    assert!(!message.contains("s3cret-pw"), "{message}");
    // verify-ca checks the CA all the same.
    let message = refusal(&url.replace("verify-full", "verify-ca")).await;
    assert!(message.contains("is not signed by the CA"), "{message}");
}

#[tokio::test]
async fn plain_tcp_is_refused_by_the_server_and_the_error_says_to_use_tls() {
    let (url, _) = database("sslmode=disable").await;
    let message = refusal(&url).await;
    assert!(message.contains("the database accepts only TLS connections, and sslmode=disable sent none"), "{message}");
}

#[tokio::test]
async fn verify_full_checks_the_host_name_and_verify_ca_does_not() {
    // The certificate names localhost and 127.0.0.1; the URL names another
    // host, reached at 127.0.0.1 through `hostaddr`.
    let (url, _) = database("sslmode=verify-full&sslrootcert={ca}&hostaddr=127.0.0.1").await;
    let url = url.replacen("@127.0.0.1:", "@db.sealdrop.test:", 1);
    let message = refusal(&url).await;
    assert!(
        message.contains("is for localhost, 127.0.0.1 and not for db.sealdrop.test")
            && message.contains("use sslmode=verify-ca to check only the CA"),
        "{message}"
    );
    let store = PgMetaStore::connect(&url.replace("verify-full", "verify-ca")).await.unwrap();
    assert_eq!(store.transport(), Transport::TlsCaChecked);
    assert_store_works(&store).await;
}

#[tokio::test]
async fn prefer_and_require_encrypt_and_check_the_ca_only_when_given_one() {
    // No sslmode is `prefer`: TLS, as the server offers it.
    let (url, _) = database("application_name=hub").await;
    assert_eq!(PgMetaStore::connect(&url).await.unwrap().transport(), Transport::TlsUnchecked);
    let (url, _) = database("sslmode=require").await;
    let store = PgMetaStore::connect(&url).await.unwrap();
    assert_eq!(store.transport(), Transport::TlsUnchecked);
    assert_store_works(&store).await;
    let (url, _) = database("sslmode=require&sslrootcert={ca}").await;
    assert_eq!(PgMetaStore::connect(&url).await.unwrap().transport(), Transport::TlsCaChecked);
    let dir = tempfile::tempdir().unwrap();
    let (url, _) = database(&format!("sslmode=prefer&sslrootcert={}", wrong_ca(dir.path()).display())).await;
    assert!(refusal(&url).await.contains("is not signed by the CA"), "a given CA is checked under prefer too");
}

#[tokio::test]
async fn require_refuses_a_server_without_tls_and_prefer_falls_back() {
    let url = tokio::task::spawn_blocking(|| PgCluster::shared().database()).await.unwrap();
    let message = refusal(&format!("{url}?sslmode=require")).await;
    assert!(message.contains("the database does not offer TLS, and sslmode=require requires it"), "{message}");
    assert_eq!(PgMetaStore::connect(&url).await.unwrap().transport(), Transport::Unencrypted);
}

#[tokio::test]
async fn an_unreadable_or_empty_sslrootcert_is_reported_before_connecting() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let url = format!("postgres://hub@127.0.0.1:1/db?sslmode=verify-full&sslrootcert={}", missing.display());
    assert!(refusal(&url).await.contains(&format!("cannot read sslrootcert={}", missing.display())));
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    let url = format!("postgres://hub@127.0.0.1:1/db?sslmode=verify-full&sslrootcert={}", empty.display());
    assert!(refusal(&url).await.contains("holds no PEM certificate"));
}

#[tokio::test]
async fn an_unreachable_database_is_reported_with_the_reason_and_no_password() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let message = refusal(&format!("postgres://hub:s3cret-pw@127.0.0.1:{port}/db?sslmode=disable")).await;
    assert!(message.contains("cannot connect: error connecting to server: Connection refused"), "{message}");
    assert!(!message.contains("s3cret-pw"), "{message}");
}

/// As on a managed database: a role with a password, SCRAM-SHA-256 over
/// checked TLS, and `channel_binding=require`, which tokio-postgres honours
/// only if the TLS stream yields the server certificate's binding
/// (SCRAM-SHA-256-PLUS), so the password exchange is tied to this session.
#[tokio::test]
async fn a_password_signs_in_over_verify_full_bound_to_the_tls_session() {
    let cluster = tls_cluster().await;
    let url = tokio::task::spawn_blocking(|| cluster.database_with_password("role-pw-1")).await.unwrap();
    let ca = cluster.ca_certificate().unwrap().display().to_string();
    let url = format!("{url}?sslmode=verify-full&sslrootcert={ca}&channel_binding=require");
    let store = PgMetaStore::connect(&url).await.unwrap();
    assert_eq!(store.transport(), Transport::TlsFullyChecked);
    assert_store_works(&store).await;

    let message = refusal(&url.replace("role-pw-1", "wrong-pw-2")).await;
    assert!(message.contains("password authentication failed for user"), "{message}");
    assert!(!message.contains("wrong-pw-2"), "{message}");
}
