//! TLS to PostgreSQL with libpq's meaning of `sslmode` and `sslrootcert`
//! (the table is in [`super`]'s docs), on rustls and aws-lc-rs like the
//! hub's own TLS ([`crate::tls`]); and why a connection failed, in words
//! that say what to change.

use std::error::Error as StdError;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::error_text;
use super::url::{RootCerts, SslMode, TlsSettings};

/// The protocol PostgreSQL 17 expects in ALPN (it refuses another); older
/// servers ignore it.
const ALPN_POSTGRESQL: &[u8] = b"postgresql";

/// The TLS connector for these settings. Reads `sslrootcert` now, so a
/// missing or wrong file is reported before the first connection.
pub(super) fn connector(tls: &TlsSettings) -> Result<MakeRustlsConnect, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot set up TLS to the database: {e}"))?;
    let builder = match (tls.mode, &tls.roots) {
        // tokio-postgres never starts TLS then.
        (SslMode::Disable, _) => builder.with_root_certificates(RootCertStore::empty()),
        (SslMode::Prefer | SslMode::Require, RootCerts::Unset) => {
            builder.dangerous().with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        }
        (SslMode::VerifyFull, roots) => builder.with_webpki_verifier(webpki_verifier(roots, provider)?),
        // libpq checks the chain, not the name, for `verify-ca` and for
        // `prefer`/`require` given a root certificate.
        (_, roots) => {
            builder.dangerous().with_custom_certificate_verifier(Arc::new(CaOnly(webpki_verifier(roots, provider)?)))
        }
    };
    let mut config = builder.with_no_client_auth();
    config.alpn_protocols = vec![ALPN_POSTGRESQL.to_vec()];
    Ok(MakeRustlsConnect::new(config))
}

fn webpki_verifier(roots: &RootCerts, provider: Arc<CryptoProvider>) -> Result<Arc<WebPkiServerVerifier>, String> {
    let mut store = RootCertStore::empty();
    match roots {
        RootCerts::Unset => unreachable!("url::check refuses a verifying mode without sslrootcert"),
        RootCerts::File(path) => {
            let shown = path.display();
            let pem = std::fs::read(path).map_err(|e| {
                format!("cannot read sslrootcert={shown}: {e}: give the path of the CA certificate (PEM) that signed the database's")
            })?;
            let certs = CertificateDer::pem_slice_iter(&pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("sslrootcert={shown} is not a valid PEM file: {e}"))?;
            if certs.is_empty() {
                return Err(format!(
                    "sslrootcert={shown} holds no PEM certificate (-----BEGIN CERTIFICATE-----): give the CA \
                     certificate that signed the database's certificate"
                ));
            }
            for cert in certs {
                store
                    .add(cert)
                    .map_err(|e| format!("sslrootcert={shown} holds a certificate that is not a CA: {e}"))?;
            }
        }
        RootCerts::System => {
            store.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
            if store.is_empty() {
                return Err("sslrootcert=system found no trusted CAs on this machine: install the ca-certificates \
                            package (or set SSL_CERT_FILE), or give sslrootcert=/path/to/ca.pem"
                    .to_owned());
            }
        }
    }
    WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider)
        .build()
        .map_err(|e| format!("cannot use the CAs of sslrootcert: {e}"))
}

/// libpq's `prefer` and `require` without `sslrootcert`: the session is
/// encrypted, but the certificate is not checked, so it keeps passive
/// listeners out and not an active attacker. That is what those modes mean
/// to every PostgreSQL client, so a URL means the same to the hub as to
/// `psql` and `pg_dump`; `verify-full` is the mode that checks.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    // The handshake is still signed by the certificate's key, so the
    // session's keys belong to whoever holds it.
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the certificate must chain to a given CA, for any host
/// name. webpki checks the chain (and dates) before the name, so a name
/// error means everything else passed.
#[derive(Debug)]
struct CaOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for CaOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.0.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            checked => checked,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// Why the first connection to the database failed, as one line that says
/// what to change (without the URL, which callers show). The TLS and server errors are found among the pool
/// error's causes.
pub(super) fn explain(err: &deadpool_postgres::PoolError, tls: &TlsSettings) -> String {
    let err: &(dyn StdError + 'static) = match err {
        deadpool_postgres::PoolError::Backend(backend) => backend,
        other => other,
    };
    let mode = tls.mode.as_str();
    let why = error_text::causes(err).find_map(|cause| {
        if let Some(tls_error) = cause.downcast_ref::<rustls::Error>() {
            return Some(explain_tls(tls_error, tls));
        }
        if let Some(db) = cause.downcast_ref::<tokio_postgres::error::DbError>() {
            // The server's words for a `hostnossl ... reject` line, or for
            // having no line that lets a plain connection in.
            let refused = *db.code() == tokio_postgres::error::SqlState::INVALID_AUTHORIZATION_SPECIFICATION
                && db.message().contains("no encryption");
            return refused.then(|| {
                format!(
                    "the database accepts only TLS connections, and sslmode={mode} sent none: use \
                     sslmode=verify-full with sslrootcert=/path/to/ca.pem (or at least sslmode=require)"
                )
            });
        }
        // tokio-postgres says this, in these words, when `require` (or a
        // `verify-*` mode) meets a server that answered it has no TLS.
        (cause.to_string() == "server does not support TLS").then(|| {
            format!(
                "the database does not offer TLS, and sslmode={mode} requires it: turn on ssl in the database's \
                 server, or connect to one that has it"
            )
        })
    });
    // Callers name the database (its URL without the password).
    why.unwrap_or_else(|| format!("cannot connect: {}", error_text::describe(err)))
}

fn explain_tls(err: &rustls::Error, tls: &TlsSettings) -> String {
    let roots = match &tls.roots {
        RootCerts::File(path) => format!("the CA in sslrootcert={}", path.display()),
        RootCerts::System | RootCerts::Unset => "a CA this machine trusts (sslrootcert=system)".to_owned(),
    };
    let rustls::Error::InvalidCertificate(cert) = err else {
        return format!("TLS with the database failed: {err}");
    };
    match cert {
        CertificateError::UnknownIssuer => format!(
            "the database's certificate is not signed by {roots}: give as sslrootcert the CA certificate that \
             signed it (managed databases publish theirs)"
        ),
        CertificateError::NotValidForName => format!(
            "the database's certificate is not for the host name in the URL, and sslmode={} checks it: connect \
             by a name the certificate holds, or use sslmode=verify-ca to check only the CA",
            tls.mode.as_str()
        ),
        CertificateError::NotValidForNameContext { expected, presented } => format!(
            "the database's certificate is for {} and not for {}, and sslmode={} checks the name: connect by a \
             name the certificate holds, or use sslmode=verify-ca to check only the CA",
            presented.iter().map(|name| bare_name(name)).collect::<Vec<_>>().join(", "),
            expected.to_str(),
            tls.mode.as_str()
        ),
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            "the database's certificate has expired: renew it on the server (or check this machine's clock)".to_owned()
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "the database's certificate is not valid yet: check this machine's clock".to_owned()
        }
        other => format!(
            "the database's certificate was refused ({other:?}): check sslrootcert and the server's certificate"
        ),
    }
}

/// A name as rustls presents it (`DnsName("db.example")`,
/// `IpAddress(10.0.0.5)`), without the wrapping.
fn bare_name(presented: &str) -> &str {
    presented
        .split_once('(')
        .and_then(|(_, inner)| inner.strip_suffix(')'))
        .map_or(presented, |inner| inner.trim_matches('"'))
}

#[cfg(test)]
mod tests;
