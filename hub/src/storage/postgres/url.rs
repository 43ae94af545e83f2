//! The database URL, read as libpq reads it. tokio-postgres parses most of
//! it but refuses `sslmode=verify-ca`, `sslmode=verify-full` and
//! `sslrootcert`, which managed databases need: those are taken out here and
//! become [`TlsSettings`], and the rest goes to tokio-postgres unchanged.
//! Also the URL with its password hidden, for messages and the log.

use std::path::PathBuf;

use percent_encoding::percent_decode_str;

/// How much TLS the hub asks of the database: libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Plain TCP only.
    Disable,
    /// TLS if the server offers it, else plain TCP (libpq's default).
    Prefer,
    /// TLS or no connection.
    Require,
    /// TLS, the certificate signed by a CA from `sslrootcert`.
    VerifyCa,
    /// As `VerifyCa`, and the certificate names the host connected to.
    VerifyFull,
}

impl SslMode {
    const ALL: [Self; 5] = [Self::Disable, Self::Prefer, Self::Require, Self::VerifyCa, Self::VerifyFull];

    /// Its name in a URL.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        }
    }
}

/// The CAs the database's certificate is checked against: libpq's `sslrootcert`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootCerts {
    /// None named: `prefer` and `require` then check no certificate, and
    /// `verify-ca`/`verify-full` refuse to start.
    Unset,
    /// A PEM file of CA certificates (the provider's bundle, or your own CA).
    File(PathBuf),
    /// `sslrootcert=system`: the CAs this machine trusts.
    System,
}

/// The URL's TLS parameters, checked against each other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// How much TLS to insist on.
    pub mode: SslMode,
    /// What the certificate is checked against.
    pub roots: RootCerts,
}

/// A database URL, split into what tokio-postgres reads and what the hub does.
#[derive(Debug)]
pub struct DatabaseUrl {
    /// Everything but the TLS parameters, with `sslmode` set to what
    /// tokio-postgres knows (`verify-*` need TLS, so they are `require` there).
    pub config: tokio_postgres::Config,
    /// The TLS parameters, which choose the certificate verifier.
    pub tls: TlsSettings,
    /// The URL with its password replaced, safe to show.
    pub shown: String,
}

impl DatabaseUrl {
    /// Reads a `postgres://` URL. The error is one line that says what to
    /// change, and never shows the password.
    pub fn parse(url: &str) -> Result<Self, String> {
        let shown = redact_password(url);
        let Some((scheme, rest)) = url.split_once("://").filter(|(s, _)| *s == "postgres" || *s == "postgresql") else {
            return Err(
                "the database must be a URL, postgres://user:password@host:port/database (TLS options go after ?, \
                 such as ?sslmode=verify-full&sslrootcert=/path/to/ca.pem)"
                    .to_owned(),
            );
        };
        // tokio-postgres takes everything up to the first `@` as the user
        // and password, which may hold a `?`; the parameters follow them.
        let after_credentials = rest.find('@').map_or(0, |at| at + 1);
        let (base, query) = match rest[after_credentials..].find('?') {
            Some(q) => rest.split_at(after_credentials + q),
            None => (rest, ""),
        };
        let (mut sslmode, mut sslrootcert) = (None, None);
        let mut kept = Vec::new();
        for pair in query.trim_start_matches('?').split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match &*decode(key) {
                "sslmode" => sslmode = Some(decode(value)),
                "sslrootcert" => sslrootcert = Some(decode(value)),
                "sslcert" | "sslkey" => {
                    return Err("the hub does not present client certificates (sslcert, sslkey): let the database \
                                authenticate it by password (SCRAM) over sslmode=verify-full"
                        .to_owned());
                }
                _ => kept.push(pair),
            }
        }
        let roots = match sslrootcert.as_deref() {
            None => RootCerts::Unset,
            Some("system") => RootCerts::System,
            Some(path) => RootCerts::File(PathBuf::from(path)),
        };
        let mode = match sslmode.as_deref() {
            Some(value) => SslMode::ALL.into_iter().find(|m| m.as_str() == value).ok_or_else(|| {
                format!(
                    "sslmode={value} in the database URL is not one the hub knows: give disable, prefer, require, \
                     verify-ca or verify-full"
                )
            })?,
            // As libpq: the system's CAs mean nothing without the name check.
            None if roots == RootCerts::System => SslMode::VerifyFull,
            None => SslMode::Prefer,
        };
        let tls = TlsSettings { mode, roots };
        check(&tls)?;

        let mut rebuilt = format!("{scheme}://{base}");
        if !kept.is_empty() {
            rebuilt.push('?');
            rebuilt.push_str(&kept.join("&"));
        }
        let mut config: tokio_postgres::Config = rebuilt.parse().map_err(|e| {
            format!(
                "{shown} is not a PostgreSQL URL: {}; give postgres://USER:PASSWORD@HOST:PORT/DATABASE",
                super::error_text::describe(&e)
            )
        })?;
        // libpq ignores sslmode on a Unix socket, where PostgreSQL offers
        // no TLS (and the connection never leaves the machine).
        let socket_only = config.get_hostaddrs().is_empty()
            && config.get_hosts().iter().all(|h| matches!(h, tokio_postgres::config::Host::Unix(_)));
        config.ssl_mode(match mode {
            _ if socket_only => tokio_postgres::config::SslMode::Disable,
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => tokio_postgres::config::SslMode::Require,
        });
        Ok(Self { config, tls, shown })
    }
}

/// Refuses the combinations libpq refuses, saying what to give instead.
fn check(tls: &TlsSettings) -> Result<(), String> {
    match (tls.mode, &tls.roots) {
        (SslMode::VerifyCa | SslMode::VerifyFull, RootCerts::Unset) => Err(format!(
            "sslmode={} in the database URL checks the database's certificate but names no CA: add \
             sslrootcert=/path/to/ca.pem (the CA that signed it; managed databases publish theirs) or \
             sslrootcert=system (the CAs this machine trusts)",
            tls.mode.as_str()
        )),
        (mode, RootCerts::System) if mode != SslMode::VerifyFull => Err(format!(
            "sslrootcert=system trusts every public CA, so it is only safe with the host name checked too: use \
             sslmode=verify-full, not sslmode={}",
            mode.as_str()
        )),
        _ => Ok(()),
    }
}

fn decode(s: &str) -> std::borrow::Cow<'_, str> {
    percent_decode_str(s).decode_utf8_lossy()
}

/// The URL with the password (in the user part or a `password=` parameter)
/// replaced by `***`; a string that is not a URL is not shown if it names a
/// password. The
/// user part ends at the first `@`, as tokio-postgres reads it, so a
/// password holding `/` or `?` is hidden too.
pub fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        // A libpq `key=value` string, a path, a typo: shown unless it may
        // hold a password.
        return match url.to_ascii_lowercase().contains("password") {
            true => "(not shown: it holds a password)".to_owned(),
            false => url.to_owned(),
        };
    };
    let (credentials, address) = match rest.split_once('@') {
        Some((credentials, address)) => (Some(credentials), address),
        None => (None, rest),
    };
    let mut shown = format!("{scheme}://");
    if let Some(credentials) = credentials {
        match credentials.split_once(':') {
            Some((user, _)) => shown.push_str(&format!("{user}:***@")),
            None => shown.push_str(&format!("{credentials}@")),
        }
    }
    let (base, query) = address.split_once('?').unwrap_or((address, ""));
    shown.push_str(base);
    if !query.is_empty() {
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if decode(key).eq_ignore_ascii_case("password") => format!("{key}=***"),
                _ => pair.to_owned(),
            })
            .collect();
        shown.push('?');
        shown.push_str(&pairs.join("&"));
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> Result<DatabaseUrl, String> {
        DatabaseUrl::parse(url)
    }

    #[test]
    fn without_sslmode_a_url_prefers_tls_as_libpq_does() {
        let url = parse("postgres://hub@db.example:5433/sealdrop").unwrap();
        assert_eq!(url.tls, TlsSettings { mode: SslMode::Prefer, roots: RootCerts::Unset });
        assert_eq!(url.config.get_ssl_mode(), tokio_postgres::config::SslMode::Prefer);
        assert_eq!(url.config.get_dbname(), Some("sealdrop"));
        assert_eq!(url.config.get_ports(), [5433]);
    }

    #[test]
    fn tls_parameters_are_taken_out_and_the_others_kept() {
        let url = parse(
            "postgresql://hub:pa%3Fss@db.example/sealdrop?application_name=hub&sslmode=verify-full\
             &sslrootcert=%2Fetc%2Fsealdrop%2Frds%20ca.pem&connect_timeout=5",
        )
        .unwrap();
        assert_eq!(
            url.tls,
            TlsSettings { mode: SslMode::VerifyFull, roots: RootCerts::File("/etc/sealdrop/rds ca.pem".into()) }
        );
        assert_eq!(url.config.get_ssl_mode(), tokio_postgres::config::SslMode::Require);
        assert_eq!(url.config.get_application_name(), Some("hub"));
        assert_eq!(url.config.get_connect_timeout(), Some(&std::time::Duration::from_secs(5)));
        assert_eq!(url.config.get_password(), Some(&b"pa?ss"[..]));

        let url = parse("postgres://hub@db.example/sealdrop?sslmode=require&sslrootcert=/ca.pem").unwrap();
        assert_eq!(
            (url.tls.mode, url.config.get_ssl_mode()),
            (SslMode::Require, tokio_postgres::config::SslMode::Require)
        );
        let url = parse("postgres://hub@db.example/sealdrop?sslmode=disable").unwrap();
        assert_eq!(url.config.get_ssl_mode(), tokio_postgres::config::SslMode::Disable);
        let url = parse("postgres://hub@%2Frun%2Fpostgresql/sealdrop?sslmode=require").unwrap();
        assert_eq!(url.config.get_ssl_mode(), tokio_postgres::config::SslMode::Disable, "no TLS on a socket");
        // The system's CAs default to the full check, as in libpq.
        let url = parse("postgres://hub@db.example/sealdrop?sslrootcert=system").unwrap();
        assert_eq!(url.tls, TlsSettings { mode: SslMode::VerifyFull, roots: RootCerts::System });
    }

    #[test]
    fn settings_libpq_refuses_are_refused_with_what_to_give() {
        for (url, says) in [
            ("postgres://hub@db/s?sslmode=verify-full", "add sslrootcert=/path/to/ca.pem"),
            ("postgres://hub@db/s?sslmode=verify-ca", "add sslrootcert=/path/to/ca.pem"),
            ("postgres://hub@db/s?sslmode=require&sslrootcert=system", "use sslmode=verify-full"),
            ("postgres://hub@db/s?sslmode=allow", "give disable, prefer, require, verify-ca or verify-full"),
            ("host=db user=hub sslmode=require", "must be a URL, postgres://"),
            ("postgres://hub@db/s?sslcert=/x.pem", "does not present client certificates"),
            ("postgres://hub@db/s?sslcompression=1", "unknown option `sslcompression`"),
        ] {
            let err = parse(url).unwrap_err();
            assert!(err.contains(says), "{url}: {err}");
        }
    }

    #[test]
    fn the_shown_url_hides_the_password() {
        let url = "postgres://hub:s3cret@db.example:5432/sealdrop?password=s3cret2&sslmode=nonsense";
        assert_eq!(redact_password(url), "postgres://hub:***@db.example:5432/sealdrop?password=***&sslmode=nonsense");
        assert_eq!(redact_password("postgres://hub:pa/ss?x@db/s?a=1"), "postgres://hub:***@db/s?a=1");
        assert!(!parse(url).unwrap_err().contains("s3cret"));
        let err = parse("postgres://hub:s3cret@db.example:notaport/sealdrop").unwrap_err();
        assert!(err.contains("hub:***@") && !err.contains("s3cret"), "{err}");
        assert_eq!(redact_password("postgres://hub@db/s?sslmode=require"), "postgres://hub@db/s?sslmode=require");
        assert!(!redact_password("host=db password=s3cret").contains("s3cret"));
        assert_eq!(redact_password("/srv/hub.db"), "/srv/hub.db");
    }
}
