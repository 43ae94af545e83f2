//! TLS in the hub itself: the certificate chain and private key (PEM files)
//! become a rustls server configuration, checked before the hub serves.
//!
//! The crypto provider is aws-lc-rs, the one the client's `reqwest` already
//! uses, so the workspace builds a single TLS crypto library. Only
//! HTTP/1.1 is offered through ALPN: a ciphertext upload or download is one
//! long stream, which HTTP/2's per-stream flow-control windows would only
//! slow down, and it is what the client and a reverse proxy speak anyway.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sealdrop_proto::error_code::ErrorCode;

/// Why the TLS certificate or key cannot be used. Each message is one line
/// that names the file and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the TLS certificate {}: {source}", .path.display())]
    ReadCert {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read the TLS private key {}: {source}", .path.display())]
    ReadKey {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{} holds no PEM certificate (`-----BEGIN CERTIFICATE-----`): give the server certificate first, then its intermediates",
        .0.display()
    )]
    NoCertificate(PathBuf),
    #[error("{} is not a valid PEM certificate file: {reason}", .path.display())]
    BadCertificate { path: PathBuf, reason: String },
    #[error(
        "{} holds no PEM private key (PKCS#8, PKCS#1 or SEC1): give the key that belongs to the certificate",
        .0.display()
    )]
    NoKey(PathBuf),
    #[error("{} is not a usable private key: {reason}", .path.display())]
    BadKey { path: PathBuf, reason: String },
    #[error(
        "the TLS private key {} does not belong to the certificate {}: give the matching pair",
        .key.display(), .cert.display()
    )]
    KeyMismatch { cert: PathBuf, key: PathBuf },
}

impl TlsError {
    /// The stable code of the one-line error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::ReadCert { .. } | Self::ReadKey { .. } => ErrorCode::TlsFileUnreadable,
            Self::NoCertificate(_) | Self::BadCertificate { .. } => ErrorCode::TlsCertInvalid,
            Self::NoKey(_) | Self::BadKey { .. } => ErrorCode::TlsKeyInvalid,
            Self::KeyMismatch { .. } => ErrorCode::TlsKeyMismatch,
        }
    }
}

/// Reads a PEM certificate chain and private key and builds the server
/// configuration, refusing a key that does not match the certificate.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let cert_pem = std::fs::read(cert).map_err(|source| TlsError::ReadCert { path: cert.to_owned(), source })?;
    let key_pem = std::fs::read(key).map_err(|source| TlsError::ReadKey { path: key.to_owned(), source })?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::BadCertificate { path: cert.to_owned(), reason: e.to_string() })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate(cert.to_owned()));
    }
    let private_key = match PrivateKeyDer::from_pem_slice(&key_pem) {
        Ok(k) => k,
        Err(rustls::pki_types::pem::Error::NoItemsFound) => return Err(TlsError::NoKey(key.to_owned())),
        Err(e) => return Err(TlsError::BadKey { path: key.to_owned(), reason: e.to_string() }),
    };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::BadKey { path: key.to_owned(), reason: e.to_string() })?;
    let mut config = builder.with_no_client_auth().with_single_cert(chain, private_key).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => TlsError::KeyMismatch { cert: cert.to_owned(), key: key.to_owned() },
        rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented => {
            TlsError::BadCertificate { path: cert.to_owned(), reason: e.to_string() }
        }
        other => TlsError::BadKey { path: key.to_owned(), reason: other.to_string() },
    })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let (cert, key) = (dir.join(format!("{name}.crt")), dir.join(format!("{name}.key")));
        std::fs::write(&cert, certified.cert.pem()).unwrap();
        std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
        (cert, key)
    }

    #[test]
    fn a_matching_pair_loads() {
        let tmp = tempfile::tempdir().unwrap();
        let (cert, key) = pair(tmp.path(), "a");
        let config = server_config(&cert, &key).unwrap();
        assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
    }

    #[test]
    fn bad_files_are_named() {
        let tmp = tempfile::tempdir().unwrap();
        let (cert_a, key_a) = pair(tmp.path(), "a");
        let (_, key_b) = pair(tmp.path(), "b");
        let err = server_config(&cert_a, &key_b).unwrap_err();
        assert!(matches!(err, TlsError::KeyMismatch { .. }), "{err}");
        assert!(err.to_string().contains("does not belong"), "{err}");

        let missing = tmp.path().join("missing.pem");
        let unreadable = server_config(&missing, &key_a).unwrap_err();
        assert!(matches!(unreadable, TlsError::ReadCert { .. }), "{unreadable}");
        assert!(unreadable.to_string().contains("missing.pem"), "{unreadable}");

        // Key and certificate swapped.
        let no_cert = server_config(&key_a, &cert_a).unwrap_err();
        assert!(matches!(no_cert, TlsError::NoCertificate(_)), "{no_cert}");
        let no_key = server_config(&cert_a, &cert_a).unwrap_err();
        assert!(matches!(no_key, TlsError::NoKey(_)), "{no_key}");
        for e in [err, unreadable, no_cert, no_key] {
            assert!(!e.to_string().contains('\n'), "one line: {e}");
        }
    }
}
