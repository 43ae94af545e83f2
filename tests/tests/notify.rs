//! The `watch` service's notifications (`sealdrop::notify`) against real
//! receivers: a local HTTP server for webhooks, aiosmtpd with STARTTLS for
//! e-mail, and shell scripts for the command hook.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::time::{Duration, Instant};

use sealdrop::notify::{
    CommandSink, EmailSink, Event, EventKind, Notifier, NotifyConfig, NotifyFailure, WITHHELD_REASON, WebhookFormat,
    WebhookSink,
};
use sealdrop_e2e::TestTls;
use sealdrop_e2e::smtp::SmtpReceiver;
use sealdrop_e2e::webhook::WebhookReceiver;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);
const FILE_NAME: &str = "smith-john-referral.csv";

fn drop_id(n: u32) -> sealdrop_proto::ids::DropId {
    format!("d-{n:026}").parse().unwrap()
}

/// A drop from camden arrived at islington, with a file name that must not leak.
fn arrived() -> Event {
    let mut e = Event::new(EventKind::Arrived, "islington".parse().unwrap(), "2026-12-07T10:00:00Z".parse().unwrap());
    e.drops = vec![drop_id(1), drop_id(2)];
    e.from = Some("camden".parse().unwrap());
    e.to = vec!["islington".parse().unwrap()];
    e.agreement = Some("london-fsm-ehc".to_owned());
    e.files = Some(2);
    e.bytes = Some(12_595);
    e.file_names = vec![FILE_NAME.to_owned(), "totals.csv".to_owned()];
    e
}

/// A send that failed with a message naming the file.
fn send_failed() -> Event {
    let mut e = Event::new(EventKind::SendFailed, "camden".parse().unwrap(), "2026-12-07T10:05:00Z".parse().unwrap());
    e.to = vec!["islington".parse().unwrap()];
    e.agreement = Some("london-fsm-ehc".to_owned());
    e.file_names = vec![FILE_NAME.to_owned()];
    e.code = Some("empty_file".to_owned());
    e.reason = Some(format!("{FILE_NAME} is empty; check the export"));
    e
}

fn webhook(url: String, format: WebhookFormat, include_file_names: bool) -> NotifyConfig {
    NotifyConfig {
        include_file_names,
        webhook: Some(WebhookSink { url, format, events: None }),
        ..NotifyConfig::default()
    }
}

fn one_failure(failures: Vec<NotifyFailure>, sink: &str) -> String {
    assert_eq!(failures.len(), 1, "{failures:?}");
    let f = &failures[0];
    assert_eq!((f.sink, f.error.code.as_str()), (sink, "notify_failed"), "{}", f.error);
    let line = f.error.to_string();
    assert!(!line.contains('\n'), "one line: {line}");
    line
}

#[test]
fn webhooks_get_each_format_with_the_events_fields_and_no_file_names() {
    let event = arrived();
    for format in [WebhookFormat::Slack, WebhookFormat::Teams, WebhookFormat::Json] {
        let receiver = WebhookReceiver::start();
        let notifier = Notifier::new(&webhook(receiver.url(), format, false)).unwrap();
        assert!(notifier.notify(&event).is_empty());
        let request = &receiver.requests()[0];
        assert_eq!((request.path.as_str(), request.content_type.as_str()), ("/hook/secret-token", "application/json"));
        let body = receiver.wait_for(1, WAIT).remove(0);
        let text = body.to_string();
        assert!(!text.contains("smith") && !text.contains("totals.csv"), "{format}: {text}");
        let summary = event.redacted(false).summary();
        assert!(
            summary.contains(
                "drops d-00000000000000000000000001, d-00000000000000000000000002 from camden to islington arrived"
            ),
            "{summary}"
        );
        assert!(summary.contains("agreement london-fsm-ehc, 2 files, 12.3 KiB"), "{summary}");
        match format {
            WebhookFormat::Slack => assert_eq!(body, json!({ "text": summary })),
            WebhookFormat::Teams => {
                assert_eq!(body["type"], "message");
                let card = &body["attachments"][0];
                assert_eq!(card["contentType"], "application/vnd.microsoft.card.adaptive");
                assert_eq!(card["content"]["body"][0]["text"], json!(summary));
                assert!(text.contains(r#"{"title":"from","value":"camden"}"#), "{text}");
            }
            WebhookFormat::Json => {
                assert_eq!(body["text"], json!(summary));
                let e = &body["event"];
                assert_eq!(e["kind"], "arrived");
                assert_eq!(e["party"], "islington");
                assert_eq!(e["from"], "camden");
                assert_eq!(e["to"], json!(["islington"]));
                assert_eq!(e["drops"], json!([drop_id(1).as_str(), drop_id(2).as_str()]));
                assert_eq!((e["files"].clone(), e["bytes"].clone()), (json!(2), json!(12_595)));
                assert_eq!(e["at"], "2026-12-07T10:00:00Z");
                assert_eq!(e["file_names"], json!([]));
                // The event read back is the event sent, less its names.
                let back: Event = serde_json::from_value(e.clone()).unwrap();
                assert_eq!(back, event.redacted(false));
            }
        }
    }

    // With file names on, they are in the event and the summary.
    let receiver = WebhookReceiver::start();
    let notifier = Notifier::new(&webhook(receiver.url(), WebhookFormat::Json, true)).unwrap();
    assert!(notifier.notify(&event).is_empty());
    let body = receiver.wait_for(1, WAIT).remove(0);
    assert_eq!(body["event"]["file_names"], json!([FILE_NAME, "totals.csv"]));
    assert!(body["text"].as_str().unwrap().contains(FILE_NAME), "{body}");
}

#[test]
fn a_failures_reason_is_withheld_unless_file_names_are_on() {
    let receiver = WebhookReceiver::start();
    let notifier = Notifier::new(&webhook(receiver.url(), WebhookFormat::Json, false)).unwrap();
    assert!(notifier.notify(&send_failed()).is_empty());
    let body = receiver.wait_for(1, WAIT).remove(0);
    assert!(!body.to_string().contains("smith"), "{body}");
    assert_eq!(body["event"]["code"], "empty_file");
    assert_eq!(body["event"]["reason"], WITHHELD_REASON);
    assert_eq!(
        body["text"],
        json!(format!(
            "sealdrop: camden: sending to islington failed (agreement london-fsm-ehc, error[empty_file]: {WITHHELD_REASON})"
        ))
    );

    let receiver = WebhookReceiver::start();
    let notifier = Notifier::new(&webhook(receiver.url(), WebhookFormat::Json, true)).unwrap();
    assert!(notifier.notify(&send_failed()).is_empty());
    let body = receiver.wait_for(1, WAIT).remove(0);
    assert_eq!(body["event"]["reason"], json!(format!("{FILE_NAME} is empty; check the export")));
}

#[test]
fn a_sink_is_told_only_the_events_it_lists() {
    let receiver = WebhookReceiver::start();
    let mut cfg = webhook(receiver.url(), WebhookFormat::Json, false);
    cfg.webhook.as_mut().unwrap().events = Some(vec![EventKind::SendFailed, EventKind::Undelivered]);
    let notifier = Notifier::new(&cfg).unwrap();
    // notify returns once every sink was told: nothing is in flight after it.
    assert!(notifier.notify(&arrived()).is_empty());
    assert!(receiver.requests().is_empty());
    assert!(notifier.notify(&send_failed()).is_empty());
    let bodies = receiver.wait_for(1, WAIT);
    assert_eq!(bodies[0]["event"]["kind"], "send_failed");
    assert_eq!(receiver.requests().len(), 1);
}

#[test]
fn a_webhook_answering_500_is_a_failure_naming_the_status_not_the_secret() {
    let receiver = WebhookReceiver::answering(500);
    let notifier = Notifier::new(&webhook(receiver.url(), WebhookFormat::Slack, false)).unwrap();
    let line = one_failure(notifier.notify(&arrived()), "webhook");
    assert!(line.contains("answered 500 Internal Server Error (body: receiver failed on purpose)"), "{line}");
    assert!(line.contains("http://127.0.0.1:") && !line.contains("secret-token"), "{line}");

    // Nothing listening: a failure too, at once.
    let closed = format!("http://127.0.0.1:{}/hook/secret-token", sealdrop_e2e::closed_port());
    let notifier = Notifier::new(&webhook(closed, WebhookFormat::Slack, false)).unwrap();
    let line = one_failure(notifier.notify(&arrived()), "webhook");
    assert!(line.contains("posting to the webhook http://127.0.0.1:"), "{line}");
    assert!(line.contains("Connection refused") && !line.contains("secret-token"), "{line}");
}

fn email(receiver: &SmtpReceiver, ca_file: Option<&Path>) -> EmailSink {
    EmailSink {
        smtp_server: receiver.addr(),
        from: "Sealdrop <sealdrop@islington.example>".to_owned(),
        to: vec!["data-team@islington.example".to_owned(), "duty@islington.example".to_owned()],
        username: None,
        password_file: None,
        ca_file: ca_file.map(Path::to_path_buf),
        events: None,
    }
}

fn mail_config(sink: EmailSink) -> NotifyConfig {
    NotifyConfig { email: Some(sink), ..NotifyConfig::default() }
}

#[test]
fn an_email_arrives_over_starttls_with_the_summary_as_subject() {
    let relay = SmtpReceiver::start();
    let notifier = Notifier::new(&mail_config(email(&relay, Some(&relay.ca())))).unwrap();
    let event = arrived();
    assert!(notifier.notify(&event).is_empty());
    let mail = relay.wait_for(1, WAIT).remove(0);
    assert!(mail.tls, "the message came over STARTTLS");
    assert_eq!(mail.mail_from, "sealdrop@islington.example");
    assert_eq!(mail.rcpt_tos, ["data-team@islington.example", "duty@islington.example"]);
    assert_eq!(mail.header("Subject").as_deref(), Some(event.redacted(false).summary().as_str()));
    assert!(mail.raw.contains("event: arrived\r\n") && mail.raw.contains("from: camden\r\n"), "{}", mail.raw);
    assert!(mail.raw.contains(r#""kind": "arrived""#), "{}", mail.raw);
    assert!(!mail.raw.contains("smith"), "{}", mail.raw);
}

#[test]
fn the_relay_refuses_mail_before_starttls() {
    // What makes the test above prove STARTTLS: this relay takes no
    // message in the clear, as a council's submission relay does not.
    let relay = SmtpReceiver::start();
    let stream = TcpStream::connect(relay.addr()).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut reply = || {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            all.push_str(&line);
            if line.as_bytes().get(3) != Some(&b'-') {
                return all;
            }
        }
    };
    assert!(reply().starts_with("220"));
    (&stream).write_all(b"EHLO test\r\n").unwrap();
    assert!(reply().contains("250-STARTTLS"));
    (&stream).write_all(b"MAIL FROM:<sealdrop@islington.example>\r\n").unwrap();
    assert!(reply().starts_with("530 Must issue a STARTTLS command first"));
}

#[test]
fn a_relay_whose_certificate_is_not_trusted_gets_no_mail() {
    let relay = SmtpReceiver::start();
    let other_ca = TestTls::new();
    for ca in [None, Some(other_ca.ca())] {
        let notifier = Notifier::new(&mail_config(email(&relay, ca.as_deref()))).unwrap();
        let line = one_failure(notifier.notify(&arrived()), "email");
        assert!(
            line.starts_with(&format!("error[notify_failed]: mailing through {} failed: ", relay.addr())),
            "{line}"
        );
        assert!(line.contains("certificate") && line.contains("set ca_file in [notify.email]"), "{line}");
    }
    assert!(relay.messages().is_empty());
}

#[test]
fn a_relay_without_starttls_gets_no_mail_in_plaintext() {
    let relay = SmtpReceiver::without_starttls();
    let any_ca = TestTls::new();
    let notifier = Notifier::new(&mail_config(email(&relay, Some(&any_ca.ca())))).unwrap();
    let line = one_failure(notifier.notify(&arrived()), "email");
    assert!(line.contains("STARTTLS"), "{line}");
    assert!(relay.messages().is_empty());
}

#[test]
fn smtp_auth_uses_the_password_file_and_a_wrong_password_is_refused() {
    let relay = SmtpReceiver::with_auth("notifier", "correct horse");
    let dir = tempfile::tempdir().unwrap();
    let password_file = dir.path().join("smtp-password");
    for (password, delivered) in [("wrong horse\n", false), ("correct horse\n", true)] {
        std::fs::write(&password_file, password).unwrap();
        std::fs::set_permissions(&password_file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let mut sink = email(&relay, Some(&relay.ca()));
        sink.username = Some("notifier".to_owned());
        sink.password_file = Some(password_file.clone());
        let failures = Notifier::new(&mail_config(sink)).unwrap().notify(&arrived());
        if delivered {
            assert!(failures.is_empty(), "{failures:?}");
            let mail = relay.wait_for(1, WAIT).remove(0);
            assert_eq!((mail.tls, mail.login.as_deref()), (true, Some("notifier")));
        } else {
            let line = one_failure(failures, "email");
            assert!(!line.contains("horse"), "{line}");
            assert!(line.contains("check from, to, username and password_file"), "{line}");
            assert!(relay.messages().is_empty());
        }
    }
}

/// Writes an executable shell script.
fn script(dir: &Path, name: &str, body: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn hook(program: std::path::PathBuf, args: Vec<String>) -> NotifyConfig {
    NotifyConfig { command: Some(CommandSink { program, args, events: None }), ..NotifyConfig::default() }
}

#[test]
fn the_command_hook_gets_the_event_as_json_and_in_its_environment() {
    let dir = tempfile::tempdir().unwrap();
    let program =
        script(dir.path(), "hook.sh", r#"cat > "$1/event.json"; env | grep '^SEALDROP_' | sort > "$1/env.txt""#);
    let notifier = Notifier::new(&hook(program, vec![dir.path().display().to_string()])).unwrap();
    assert!(notifier.notify(&arrived()).is_empty());
    let event: Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("event.json")).unwrap()).unwrap();
    assert_eq!(serde_json::from_value::<Event>(event).unwrap(), arrived().redacted(false));
    let env = std::fs::read_to_string(dir.path().join("env.txt")).unwrap();
    assert_eq!(
        env,
        format!(
            "SEALDROP_AGREEMENT=london-fsm-ehc\nSEALDROP_CODE=\nSEALDROP_DROPS={} {}\nSEALDROP_EVENT=arrived\n\
             SEALDROP_FROM=camden\nSEALDROP_PARTY=islington\n",
            drop_id(1),
            drop_id(2)
        )
    );
}

#[test]
fn a_failing_hook_is_reported_and_the_other_sinks_are_still_told() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = WebhookReceiver::start();
    let mut cfg = hook(script(dir.path(), "fails.sh", "exit 3"), vec![]);
    cfg.webhook = webhook(receiver.url(), WebhookFormat::Slack, false).webhook;
    let line = one_failure(Notifier::new(&cfg).unwrap().notify(&arrived()), "command");
    assert!(line.contains("fails.sh exited with status 3 for the arrived event"), "{line}");
    assert_eq!(receiver.wait_for(1, WAIT).len(), 1);
}

#[test]
fn a_hung_hook_is_killed_with_what_it_started() {
    let dir = tempfile::tempdir().unwrap();
    let program = script(dir.path(), "hangs.sh", r#"sleep 600 & echo $! > "$1/sleep.pid"; wait"#);
    let notifier = Notifier::new(&hook(program, vec![dir.path().display().to_string()]))
        .unwrap()
        .with_command_timeout(Duration::from_millis(500));
    let started = Instant::now();
    let line = one_failure(notifier.notify(&arrived()), "command");
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
    assert!(line.contains("hangs.sh ran longer than 0.5 s and was killed"), "{line}");
    // The sleep the hook started went with it (its process group was killed).
    let pid = std::fs::read_to_string(dir.path().join("sleep.pid")).unwrap();
    let stat = format!("/proc/{}/stat", pid.trim());
    let deadline = Instant::now() + WAIT;
    loop {
        match std::fs::read_to_string(&stat) {
            Err(_) => break,
            // A zombie waiting for init to reap it is dead too.
            Ok(s) if s.rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with('Z')) => break,
            Ok(_) => {
                assert!(Instant::now() < deadline, "the hook's sleep {} still runs", pid.trim());
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

#[test]
fn bad_configs_are_one_line_errors_naming_the_key() {
    let relay = SmtpReceiver::start();
    let cases: Vec<(NotifyConfig, &str)> = vec![
        (webhook("http://hooks.example.org/x".to_owned(), WebhookFormat::Slack, false), "[notify.webhook] url"),
        (hook("/no/such/hook".into(), vec![]), "[notify.command] program /no/such/hook cannot be read"),
        (
            mail_config(EmailSink { to: vec!["nobody".to_owned()], ..email(&relay, None) }),
            "[notify.email] to \"nobody\" is not an e-mail address",
        ),
    ];
    for (cfg, says) in cases {
        let e = Notifier::new(&cfg).unwrap_err();
        assert_eq!(e.code, "notify_config_invalid");
        assert!(e.to_string().starts_with(&format!("error[notify_config_invalid]: {says}")), "{e}");
        assert!(!e.to_string().contains('\n'));
    }
}

#[test]
fn the_docs_name_every_event_and_their_examples_are_valid_config() {
    let docs = sealdrop_e2e::read_text(&sealdrop_e2e::repo_root().join("docs/notifications.md"));
    for kind in EventKind::ALL {
        assert!(docs.contains(&format!("| `{kind}` |")), "docs/notifications.md does not list the event {kind}");
    }
    for format in WebhookFormat::ALL {
        assert!(
            docs.contains(&format!("- `{format}`: ")),
            "docs/notifications.md does not describe the format {format}"
        );
    }
    let examples: Vec<&str> =
        docs.split("```toml\n").skip(1).map(|block| block.split("```").next().unwrap_or("")).collect();
    assert!(examples.len() >= 4, "found {} TOML examples", examples.len());
    for example in examples {
        // Each example is a piece of the client config file: its [notify] section must read.
        let file: toml::Table = toml::from_str(example).unwrap_or_else(|e| panic!("{e}\n{example}"));
        let notify = file.get("notify").unwrap_or_else(|| panic!("no [notify] in\n{example}")).clone();
        notify.try_into::<NotifyConfig>().unwrap_or_else(|e| panic!("{e}\n{example}"));
    }
}
