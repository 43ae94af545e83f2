//! The hub's own TLS certificate: `sealdrop-hub tls self-signed` makes one
//! that TLS clients built on rustls/webpki (the sealdrop client among them)
//! accept, and [`inspect`] finds what would make them refuse one, for
//! `check-config` and for `serve` at start-up.
//!
//! The common recipe `openssl req -x509 -newkey ... -subj /CN=host` makes a
//! certificate with `basicConstraints CA:TRUE` and no subjectAltName:
//! webpki refuses a CA certificate as a server's (`CaUsedAsEndEntity`)
//! even when it is the very one the client trusts with `--hub-ca`, and it
//! matches the host name against the subjectAltName only, never the CN.
//! [`self_signed`] makes an end-entity certificate instead: no CA,
//! subjectAltName with the names (DNS or IP), extended key usage
//! serverAuth.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use sealdrop_proto::error_code::ErrorCode;
use sha2::{Digest as _, Sha256};

/// One problem found with the settings, for a one-line `error[code]: ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The stable code of the `error[code]` line, kept as the
    /// [`ErrorCode`]'s string because that line is all it is used for.
    pub code: &'static str,
    /// What is wrong and what to do, one line.
    pub message: String,
}

impl Problem {
    /// A problem with the code `code`.
    pub fn new(code: ErrorCode, message: String) -> Self {
        Self { code: code.as_str(), message }
    }
}

/// The longest validity `tls self-signed` gives (about ten years).
pub const MAX_DAYS: u32 = 3650;

/// What [`self_signed`] wrote.
#[derive(Debug, Clone)]
pub struct SelfSigned {
    /// SHA-256 of the certificate (DER), as `AB:CD:...`.
    pub fingerprint: String,
    /// The end of its validity.
    pub not_after: jiff::Timestamp,
}

/// Why [`self_signed`] made nothing.
#[derive(Debug, thiserror::Error)]
pub enum SelfSignedError {
    #[error("{} already exists: refusing to overwrite it; choose another file or remove it first", .0.display())]
    Exists(PathBuf),
    #[error("{0:?} is not a host name or IP address: give the name clients use in `--hub https://NAME:PORT`")]
    BadHost(String),
    #[error("give at least one --host, the name (or IP address) clients use in `--hub https://NAME:PORT`")]
    NoHost,
    #[error("--days {0} is out of range: give 1 to {MAX_DAYS}")]
    BadDays(u32),
    #[error("cannot make the certificate: {0}")]
    Make(String),
    #[error("cannot write {}: {source}; choose a folder you can write to", .path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl SelfSignedError {
    /// The stable code of the one-line error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Exists(_) => ErrorCode::FileExists,
            Self::BadHost(_) | Self::NoHost | Self::BadDays(_) => ErrorCode::Usage,
            Self::Make(_) => ErrorCode::TlsCertMake,
            Self::Write { .. } => ErrorCode::WriteFailed,
        }
    }
}

/// Makes a self-signed end-entity certificate for `hosts` (DNS names or IP
/// addresses, the first also its common name), valid from an hour before
/// `now` for `days` days, with a new ECDSA P-256 key; writes the
/// certificate to `cert` and the key to `key` (mode 0600), refusing to
/// overwrite either.
pub fn self_signed(
    hosts: &[String],
    days: u32,
    cert: &Path,
    key: &Path,
    now: jiff::Timestamp,
) -> Result<SelfSigned, SelfSignedError> {
    use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose};
    let first = hosts.first().ok_or(SelfSignedError::NoHost)?;
    if !(1..=MAX_DAYS).contains(&days) {
        return Err(SelfSignedError::BadDays(days));
    }
    for host in hosts {
        let ok = host.parse::<std::net::IpAddr>().is_ok()
            || (!host.is_empty()
                && host.len() <= 253
                && host.split('.').all(|label| {
                    !label.is_empty()
                        && label.len() <= 63
                        && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '*')
                }));
        if !ok {
            return Err(SelfSignedError::BadHost(host.clone()));
        }
    }
    for path in [cert, key] {
        if path.symlink_metadata().is_ok() {
            return Err(SelfSignedError::Exists(path.to_owned()));
        }
    }
    let make = |e: rcgen::Error| SelfSignedError::Make(e.to_string());
    let mut params = CertificateParams::new(hosts.to_vec()).map_err(make)?;
    params.distinguished_name.push(DnType::CommonName, first.as_str());
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let unix = |t: jiff::Timestamp| {
        time::OffsetDateTime::from_unix_timestamp(t.as_second()).map_err(|e| SelfSignedError::Make(e.to_string()))
    };
    let not_before = now - jiff::SignedDuration::from_hours(1);
    let not_after = now + jiff::SignedDuration::from_hours(24 * i64::from(days));
    params.not_before = unix(not_before)?;
    params.not_after = unix(not_after)?;
    let key_pair = KeyPair::generate().map_err(make)?;
    let certificate = params.self_signed(&key_pair).map_err(make)?;
    write_new(key, key_pair.serialize_pem().as_bytes(), 0o600)?;
    if let Err(e) = write_new(cert, certificate.pem().as_bytes(), 0o644) {
        let _ = std::fs::remove_file(key);
        return Err(e);
    }
    Ok(SelfSigned { fingerprint: fingerprint(certificate.der()), not_after })
}

/// Creates `path` (never replacing a file) with `mode` and writes `bytes`.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), SelfSignedError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let write_error = |source| SelfSignedError::Write { path: path.to_owned(), source };
    let mut file = options.open(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::AlreadyExists => SelfSignedError::Exists(path.to_owned()),
        _ => write_error(source),
    })?;
    file.write_all(bytes).and_then(|()| file.sync_all()).map_err(write_error)
}

/// SHA-256 of a certificate (DER), as upper-case hex pairs joined by `:`
/// (how `openssl x509 -fingerprint -sha256` shows it).
pub fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der).iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
}

/// Every problem with the certificate chain `cert` and key `key` that
/// would stop the hub serving them or clients accepting them, one each:
/// unreadable or unparsable files, a key that is not the certificate's
/// (see [`crate::tls::server_config`]), and for the server certificate
/// (the first): a CA certificate, no subjectAltName, an extended key usage
/// without serverAuth, expired or not yet valid at `now`.
pub fn inspect(cert: &Path, key: &Path, now: jiff::Timestamp) -> Vec<Problem> {
    let mut problems = Vec::new();
    if let Err(e) = crate::tls::server_config(cert, key) {
        problems.push(Problem::new(e.code(), format!("TLS: {e}")));
    }
    let Ok(pem) = std::fs::read(cert) else { return problems };
    let Some(Ok(der)) = CertificateDer::pem_slice_iter(&pem).next() else { return problems };
    problems.extend(leaf_problems(cert, &der, now));
    problems
}

/// What to do about a certificate clients would refuse.
const REMEDY: &str = "make one with `sealdrop-hub tls self-signed --host NAME --cert FILE --key FILE`, or have \
                      your CA issue an end-entity (CA:FALSE) server certificate with the hub's names in its \
                      subjectAltName (see docs/operations.md, TLS certificates)";

fn leaf_problems(path: &Path, der: &[u8], now: jiff::Timestamp) -> Vec<Problem> {
    let shown = path.display();
    let parsed = match x509_parser::parse_x509_certificate(der) {
        Ok((_, parsed)) => parsed,
        Err(e) => {
            return vec![Problem::new(
                ErrorCode::TlsCertInvalid,
                format!("TLS: the first certificate in {shown} is not a valid X.509 certificate: {e}"),
            )];
        }
    };
    let mut problems = Vec::new();
    let mut push = |code, message: String| problems.push(Problem::new(code, format!("TLS: {message}")));
    if matches!(parsed.basic_constraints(), Ok(Some(ext)) if ext.value.ca) {
        push(
            ErrorCode::TlsCertIsCa,
            format!(
                "the certificate in {shown} is a CA certificate (basicConstraints CA:TRUE, as `openssl req -x509` \
                 makes by default), which clients refuse as a server's own (CaUsedAsEndEntity) even when told to \
                 trust it: {REMEDY}"
            ),
        );
    }
    match parsed.subject_alternative_name() {
        Ok(Some(san)) if !san.value.general_names.is_empty() => {}
        Ok(_) => push(
            ErrorCode::TlsCertNoSan,
            format!(
                "the certificate in {shown} has no subjectAltName, so it names no host clients could match \
                 (the common name is not used): {REMEDY}"
            ),
        ),
        Err(e) => push(ErrorCode::TlsCertInvalid, format!("the subjectAltName of the certificate in {shown}: {e}")),
    }
    if let Ok(Some(eku)) = parsed.extended_key_usage()
        && !eku.value.server_auth
        && !eku.value.any
    {
        push(
            ErrorCode::TlsCertWrongUsage,
            format!(
                "the certificate in {shown} has an extended key usage without serverAuth, so clients refuse it \
                 for a server: {REMEDY}"
            ),
        );
    }
    let validity = parsed.validity();
    let (from, until) = (validity.not_before.timestamp(), validity.not_after.timestamp());
    let when = |secs: i64| jiff::Timestamp::from_second(secs).map_or_else(|_| secs.to_string(), |t| t.to_string());
    if now.as_second() > until {
        push(
            ErrorCode::TlsCertExpired,
            format!(
                "the certificate in {shown} expired at {}: renew it (your ACME client, your CA, or \
                 `sealdrop-hub tls self-signed` into new files) and restart the hub",
                when(until)
            ),
        );
    } else if now.as_second() < from {
        push(
            ErrorCode::TlsCertNotYetValid,
            format!(
                "the certificate in {shown} is not valid before {} (now is {now}): check this machine's clock, \
                 or wait",
                when(from)
            ),
        );
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> jiff::Timestamp {
        "2026-06-01T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn a_self_signed_certificate_is_an_end_entity_for_its_names() {
        let tmp = tempfile::tempdir().unwrap();
        let (cert, key) = (tmp.path().join("hub.crt"), tmp.path().join("hub.key"));
        let hosts = vec!["hub.example.gov.uk".to_owned(), "127.0.0.1".to_owned()];
        let made = self_signed(&hosts, 30, &cert, &key, now()).unwrap();
        assert_eq!(made.fingerprint.len(), 32 * 3 - 1, "{}", made.fingerprint);
        assert!(inspect(&cert, &key, now()).is_empty(), "{:?}", inspect(&cert, &key, now()));

        let pem = std::fs::read(&cert).unwrap();
        let der = CertificateDer::from_pem_slice(&pem).unwrap();
        assert_eq!(fingerprint(&der), made.fingerprint);
        let (_, parsed) = x509_parser::parse_x509_certificate(&der).unwrap();
        let bc = parsed.basic_constraints().unwrap().expect("basicConstraints");
        assert!(!bc.value.ca);
        let names = format!("{:?}", parsed.subject_alternative_name().unwrap().unwrap().value.general_names);
        assert!(
            names.contains("DNSName(\"hub.example.gov.uk\")") && names.contains("IPAddress([127, 0, 0, 1])"),
            "{names}"
        );
        assert!(parsed.extended_key_usage().unwrap().unwrap().value.server_auth);
        assert_eq!(
            parsed.validity().not_after.timestamp(),
            (now() + jiff::SignedDuration::from_hours(720)).as_second()
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
        }
        // Expired 30 days on; refused, never overwritten.
        let later = now() + jiff::SignedDuration::from_hours(24 * 31);
        let problems = inspect(&cert, &key, later);
        assert_eq!(problems.iter().map(|p| p.code).collect::<Vec<_>>(), ["tls_cert_expired"], "{problems:?}");
        let err = self_signed(&hosts, 30, &cert, &tmp.path().join("other.key"), now()).unwrap_err();
        assert_eq!(err.code().as_str(), "file_exists", "{err}");
        assert!(!tmp.path().join("other.key").exists(), "nothing is written when one file exists");
        assert_eq!(std::fs::read(&cert).unwrap(), pem);
        let err = self_signed(&["not a host".to_owned()], 30, &tmp.path().join("a"), &tmp.path().join("b"), now());
        assert_eq!(err.unwrap_err().code().as_str(), "usage");
    }

    #[test]
    fn a_ca_certificate_without_names_reports_every_problem() {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
        let tmp = tempfile::tempdir().unwrap();
        // What `openssl req -x509 -newkey ... -subj /CN=host` makes.
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, "hub.example.gov.uk");
        params.not_after = rcgen::date_time_ymd(2026, 1, 1);
        let key_pair = KeyPair::generate().unwrap();
        let certificate = params.self_signed(&key_pair).unwrap();
        let (cert, key) = (tmp.path().join("ca.crt"), tmp.path().join("ca.key"));
        std::fs::write(&cert, certificate.pem()).unwrap();
        let other = KeyPair::generate().unwrap();
        std::fs::write(&key, other.serialize_pem()).unwrap();
        let problems = inspect(&cert, &key, now());
        let codes: Vec<&str> = problems.iter().map(|p| p.code).collect();
        assert_eq!(
            codes,
            ["tls_key_mismatch", "tls_cert_is_ca", "tls_cert_no_san", "tls_cert_expired"],
            "{problems:?}"
        );
        let is_ca = &problems[1].message;
        assert!(is_ca.contains("CA:TRUE") && is_ca.contains("sealdrop-hub tls self-signed"), "{is_ca}");
        assert!(problems.iter().all(|p| !p.message.contains('\n')), "{problems:?}");
    }
}
