//! E-mail: each event mailed through the council's SMTP submission server
//! (port 587), always over STARTTLS: a server that does not offer it, or
//! whose certificate does not verify, is a failure, never a plaintext
//! fallback. The subject is the event's summary; the body its fields as
//! lines, then as JSON for a mail rule or script.

use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::SmtpTransport;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{Message, Transport as _};
use serde::{Deserialize, Serialize};

use super::{Event, EventKind, chain, failed, invalid};
use crate::error::Result;

/// How long each SMTP step (connecting, each command, the message) may
/// take: a relay that stops answering must not hold up the service.
pub const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// The SMTP submission port, used when `smtp_server` names none.
pub const SUBMISSION_PORT: u16 = 587;

/// `[notify.email]`: where and to whom to mail each event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailSink {
    /// The submission server, `host` or `host:port` (587 when no port).
    pub smtp_server: String,
    /// The sender address (`sealdrop@council.gov.uk` or `Data team <...>`);
    /// relays usually accept only their own domain's.
    pub from: String,
    /// The recipients: one mail goes to all of them.
    pub to: Vec<String>,
    /// The user name for SMTP AUTH, when the relay requires it.
    pub username: Option<String>,
    /// A file holding the password for `username` (mode 0600, like key
    /// files); never a flag or an environment variable, which other users
    /// or logs may see.
    pub password_file: Option<PathBuf>,
    /// A PEM file of the CA that signed the relay's certificate, for a
    /// council relay with a private CA (trusted besides the system's CAs).
    pub ca_file: Option<PathBuf>,
    /// The events to mail; absent means every event.
    pub events: Option<Vec<EventKind>>,
}

/// A checked [`EmailSink`], with its SMTP transport.
pub(crate) struct Mailer {
    transport: SmtpTransport,
    from: Mailbox,
    to: Vec<Mailbox>,
    /// `host:port`, as errors show it.
    server: String,
}

impl Mailer {
    /// Checks the addresses and files and prepares the transport (no
    /// connection is made until the first mail).
    pub(crate) fn new(sink: &EmailSink) -> Result<Self> {
        let (host, port) = host_port(&sink.smtp_server)?;
        let server = format!("{host}:{port}");
        let mailbox = |key: &str, text: &str| {
            text.parse::<Mailbox>().map_err(|e| {
                invalid("email", format!("{key} {text:?} is not an e-mail address ({e}); write it as name@example.org"))
            })
        };
        let from = mailbox("from", &sink.from)?;
        if sink.to.is_empty() {
            return Err(invalid("email", "to is empty; list at least one address to mail"));
        }
        let to = sink.to.iter().map(|t| mailbox("to", t)).collect::<Result<Vec<_>>>()?;
        let mut tls = TlsParameters::builder(host.clone());
        if let Some(ca) = &sink.ca_file {
            tls = tls.add_root_certificate(read_ca(ca)?);
        }
        let tls = tls
            .build_rustls()
            .map_err(|e| invalid("email", format!("cannot set up TLS for {server}: {}", chain(&e))))?;
        let mut transport = SmtpTransport::builder_dangerous(host.as_str())
            .port(port)
            // Required: STARTTLS or no mail, never a plaintext fallback.
            .tls(Tls::Required(tls))
            .timeout(Some(SMTP_TIMEOUT));
        match (&sink.username, &sink.password_file) {
            (Some(user), Some(file)) => {
                let password = crate::fsutil::read_secret_file(file, "SMTP password file")?;
                // A trailing newline is the editor's, not the password's.
                let password = password.trim_end_matches(['\r', '\n']).to_owned();
                transport = transport.credentials(Credentials::new(user.clone(), password));
            }
            (None, None) => {}
            (Some(_), None) => {
                return Err(invalid("email", "username is set but password_file is not; give both, or neither"));
            }
            (None, Some(_)) => {
                return Err(invalid("email", "password_file is set but username is not; give both, or neither"));
            }
        }
        Ok(Self { transport: transport.build(), from, to, server })
    }

    /// Mails `event` to every recipient.
    pub(crate) fn send(&self, event: &Event) -> Result<()> {
        let server = &self.server;
        let mut message = Message::builder().from(self.from.clone()).subject(event.summary());
        for to in &self.to {
            message = message.to(to.clone());
        }
        let json = serde_json::to_string_pretty(event).unwrap_or_default();
        let body = format!("{}\n{}\n\n{json}\n", event.summary(), event.lines());
        let message = message
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|e| failed(format!("cannot build the mail for {server}: {e}")))?;
        self.transport.send(&message).map(drop).map_err(|e| {
            let why = chain(&e);
            let hint = if e.is_tls() || why.contains("certificate") || why.contains("STARTTLS") {
                "the relay must offer STARTTLS with a certificate this machine trusts; for a private CA set ca_file in [notify.email]"
            } else if e.is_permanent() {
                "the relay refused it: check from, to, username and password_file in [notify.email]"
            } else {
                "check smtp_server in [notify.email] and that the relay is up"
            };
            failed(format!("mailing through {server} failed: {why}; {hint}"))
        })
    }
}

/// `host` or `host:port` (IPv6 in brackets), the port 587 by default.
fn host_port(text: &str) -> Result<(String, u16)> {
    let text = text.trim();
    let bad = |why: &str| {
        invalid(
            "email",
            format!("smtp_server {text:?} {why}; write it as host or host:port, e.g. smtp.example.org:587"),
        )
    };
    let (host, port) = match text.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') || host.ends_with(']') => {
            (host, port.parse::<u16>().map_err(|_| bad("has a port that is not a number"))?)
        }
        _ => (text, SUBMISSION_PORT),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || host.contains(['/', ' ', '@']) {
        return Err(bad("is not a host name"));
    }
    if port == 465 {
        return Err(bad(
            "names port 465, implicit TLS, which sealdrop does not speak; use the submission port 587 (STARTTLS)",
        ));
    }
    Ok((host.to_owned(), port))
}

/// The CA certificate(s) in `path` (PEM).
fn read_ca(path: &Path) -> Result<Certificate> {
    let shown = path.display();
    let pem = std::fs::read(path)
        .map_err(|e| invalid("email", format!("ca_file {shown} cannot be read ({e}); check the path")))?;
    if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
        return Err(invalid(
            "email",
            format!("ca_file {shown} holds no `-----BEGIN CERTIFICATE-----` block; give the relay CA's PEM file"),
        ));
    }
    Certificate::from_pem(&pem).map_err(|e| {
        invalid(
            "email",
            format!("ca_file {shown} is not a PEM certificate ({}); give the relay CA's PEM file", chain(&e)),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sink() -> EmailSink {
        EmailSink {
            smtp_server: "smtp.example.org".to_owned(),
            from: "Sealdrop <sealdrop@camden.example>".to_owned(),
            to: vec!["data-team@camden.example".to_owned()],
            username: None,
            password_file: None,
            ca_file: None,
            events: None,
        }
    }

    #[test]
    fn servers_take_the_submission_port_unless_one_is_given() {
        assert_eq!(host_port("smtp.example.org").unwrap(), ("smtp.example.org".to_owned(), 587));
        assert_eq!(host_port("smtp.example.org:2525").unwrap(), ("smtp.example.org".to_owned(), 2525));
        assert_eq!(host_port("[::1]:25").unwrap(), ("::1".to_owned(), 25));
        for bad in ["smtp.example.org:x", "", "smtp.example.org:465", "a b:25"] {
            let e = host_port(bad).unwrap_err();
            assert!(e.message.starts_with("[notify.email] smtp_server"), "{}", e.message);
        }
    }

    #[test]
    fn addresses_credentials_and_ca_files_are_checked_at_start() {
        assert!(Mailer::new(&sink()).is_ok());
        let check = |s: EmailSink, says: &str| {
            let e = Mailer::new(&s).err().unwrap_or_else(|| panic!("accepted: {s:?}"));
            assert!(e.message.contains(says), "{}", e.message);
            e
        };
        let e = check(
            EmailSink { from: "not an address".to_owned(), ..sink() },
            "from \"not an address\" is not an e-mail address",
        );
        assert_eq!(e.code, "notify_config_invalid");
        check(EmailSink { to: vec![], ..sink() }, "to is empty");
        check(EmailSink { to: vec!["x@".to_owned()], ..sink() }, "to \"x@\" is not an e-mail address");
        check(EmailSink { username: Some("u".to_owned()), ..sink() }, "password_file is not");
        check(
            EmailSink { ca_file: Some("/no/such/ca.pem".into()), ..sink() },
            "ca_file /no/such/ca.pem cannot be read",
        );
        check(EmailSink { ca_file: Some("/etc/passwd".into()), ..sink() }, "holds no `-----BEGIN CERTIFICATE-----`");

        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let pw = dir.path().join("pw");
        std::fs::write(&pw, "hunter2\n").unwrap();
        std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o644)).unwrap();
        let open = EmailSink { username: Some("u".to_owned()), password_file: Some(pw.clone()), ..sink() };
        let e = check(open.clone(), "can be read by other users");
        assert_eq!(e.code, "key_permissions");
        assert!(!e.message.contains("hunter2"));
        std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(Mailer::new(&open).is_ok());
    }
}
