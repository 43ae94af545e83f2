//! Notifications for the `watch` service: a drop arrived, was acknowledged
//! or expired undelivered, or something failed. Each event goes to every
//! configured sink whose `events` include it: a command run on this
//! machine ([`command`]), a chat webhook ([`webhook`]: Slack, Teams, or
//! plain JSON) and e-mail over SMTP with STARTTLS ([`email`]).
//!
//! A notification carries metadata only (see [`Event`]): parties, the
//! agreement, counts, sizes and drop ids, and file names only when the
//! config's `include_file_names` says so. Delivery is bounded (a command
//! is killed after [`command::COMMAND_TIMEOUT`], a webhook given
//! [`webhook::WEBHOOK_TIMEOUT`], SMTP [`email::SMTP_TIMEOUT`] a step) and
//! never panics: a sink that fails is reported to the caller, who records
//! it, and the other sinks are still told. The config is documented in
//! docs/notifications.md.

pub mod command;
pub mod email;
pub mod event;
pub mod webhook;

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use command::CommandSink;
pub use email::EmailSink;
pub use event::{Event, EventKind, UnknownEventKind, WITHHELD_REASON};
pub use webhook::{WebhookFormat, WebhookSink};

use crate::error::{Error, ErrorCode, Result};

/// The `[notify]` section of the client config file (and what the `watch`
/// service's `--notify-*` options build): which sinks are told, and
/// whether file names may leave this machine.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    /// Put file names (and failure messages, which may name a file) into
    /// notifications. Off by default: a file name can itself be personal
    /// data, and chat channels and mailboxes are outside the encryption.
    #[serde(default)]
    pub include_file_names: bool,
    /// Run a program on each event (`[notify.command]`).
    pub command: Option<CommandSink>,
    /// POST each event to a chat webhook (`[notify.webhook]`).
    pub webhook: Option<WebhookSink>,
    /// Mail each event (`[notify.email]`).
    pub email: Option<EmailSink>,
}

/// One sink that could not be told about an event.
#[derive(Debug)]
pub struct NotifyFailure {
    /// `command`, `webhook` or `email`: which config section to look at.
    pub sink: &'static str,
    /// What went wrong (`notify_failed`, one line, no secrets).
    pub error: Error,
}

/// The configured sinks, checked and ready: made once when the service
/// starts (so a bad config stops it at once), then told each event.
pub struct Notifier {
    include_file_names: bool,
    command: Option<(command::CommandHook, Option<Vec<EventKind>>)>,
    webhook: Option<(webhook::Webhook, Option<Vec<EventKind>>)>,
    email: Option<(email::Mailer, Option<Vec<EventKind>>)>,
}

impl std::fmt::Debug for Notifier {
    // By hand: the sinks hold a webhook URL and SMTP credentials, which are secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("include_file_names", &self.include_file_names)
            .field("command", &self.command.is_some())
            .field("webhook", &self.webhook.is_some())
            .field("email", &self.email.is_some())
            .finish()
    }
}

impl Notifier {
    /// Checks `cfg` (URLs, e-mail addresses, files readable, the password
    /// file private) and prepares its sinks; a problem is one
    /// `notify_config_invalid` line naming the key.
    pub fn new(cfg: &NotifyConfig) -> Result<Self> {
        let command = match &cfg.command {
            Some(sink) => Some((command::CommandHook::new(sink)?, checked_events("command", &sink.events)?)),
            None => None,
        };
        let webhook = match &cfg.webhook {
            Some(sink) => Some((webhook::Webhook::new(sink)?, checked_events("webhook", &sink.events)?)),
            None => None,
        };
        let email = match &cfg.email {
            Some(sink) => Some((email::Mailer::new(sink)?, checked_events("email", &sink.events)?)),
            None => None,
        };
        Ok(Self { include_file_names: cfg.include_file_names, command, webhook, email })
    }

    /// Whether no sink is configured (the service then need not build events).
    pub fn is_empty(&self) -> bool {
        self.command.is_none() && self.webhook.is_none() && self.email.is_none()
    }

    /// How long the command hook may run before it (and its process group)
    /// is killed; [`command::COMMAND_TIMEOUT`] unless changed here (tests
    /// use a short one).
    pub fn with_command_timeout(mut self, timeout: Duration) -> Self {
        if let Some((hook, _)) = &mut self.command {
            hook.timeout = timeout;
        }
        self
    }

    /// Tells every sink whose events include `event.kind`, one after the
    /// other, and returns the ones that failed (empty: all were told).
    pub fn notify(&self, event: &Event) -> Vec<NotifyFailure> {
        let event = event.redacted(self.include_file_names);
        let mut failures = Vec::new();
        let mut record = |sink: &'static str, result: Result<()>| {
            if let Err(error) = result {
                failures.push(NotifyFailure { sink, error });
            }
        };
        if let Some((hook, events)) = &self.command
            && wants(events, event.kind)
        {
            record("command", hook.run(&event));
        }
        if let Some((webhook, events)) = &self.webhook
            && wants(events, event.kind)
        {
            record("webhook", webhook.post(&event));
        }
        if let Some((mailer, events)) = &self.email
            && wants(events, event.kind)
        {
            record("email", mailer.send(&event));
        }
        failures
    }
}

/// Whether a sink with `events` (None: every event) is told of `kind`.
fn wants(events: &Option<Vec<EventKind>>, kind: EventKind) -> bool {
    events.as_ref().is_none_or(|list| list.contains(&kind))
}

/// A sink's `events` as given, refusing an empty list: it would silently
/// never notify, which is never what was meant.
fn checked_events(sink: &str, events: &Option<Vec<EventKind>>) -> Result<Option<Vec<EventKind>>> {
    if events.as_ref().is_some_and(Vec::is_empty) {
        return Err(invalid(
            sink,
            "events = [] would never notify; list the events wanted, or remove the key for every event",
        ));
    }
    Ok(events.clone())
}

/// The error for a bad key in `[notify.<sink>]`.
pub(crate) fn invalid(sink: &str, what: impl std::fmt::Display) -> Error {
    Error::new(ErrorCode::NotifyConfigInvalid, format!("[notify.{sink}] {what}"))
}

/// The error for a sink that could not deliver.
pub(crate) fn failed(what: impl std::fmt::Display) -> Error {
    Error::new(ErrorCode::NotifyFailed, what.to_string())
}

/// An error and its sources as one line (`a: b: c`), without repeats
/// (libraries often print their source in their own message too).
pub(crate) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(err) = source {
        let more = err.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = err.source();
    }
    text.retain(|c| !c.is_control());
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The service may share one notifier between threads (the outbox and the inbox loops).
    #[test]
    fn a_notifier_can_be_shared_between_threads() {
        fn shared<T: Send + Sync>() {}
        shared::<Notifier>();
    }

    #[test]
    fn a_sink_without_events_hears_everything_and_one_with_a_list_only_those() {
        for kind in EventKind::ALL {
            assert!(wants(&None, kind));
        }
        let some = Some(vec![EventKind::Arrived, EventKind::SendFailed]);
        let heard: Vec<EventKind> = EventKind::ALL.into_iter().filter(|k| wants(&some, *k)).collect();
        assert_eq!(heard, [EventKind::Arrived, EventKind::SendFailed]);
    }

    #[test]
    fn the_config_reads_from_toml_and_refuses_unknown_keys_and_empty_event_lists() {
        let cfg: NotifyConfig = toml::from_str(
            r#"
            include_file_names = true
            [command]
            program = "/bin/true"
            args = ["--quiet"]
            events = ["arrived", "send_failed"]
            [webhook]
            url = "https://hooks.example.org/services/T0/B0/secret"
            format = "teams"
            "#,
        )
        .unwrap();
        assert!(cfg.include_file_names);
        assert_eq!(cfg.command.as_ref().unwrap().events, Some(vec![EventKind::Arrived, EventKind::SendFailed]));
        assert_eq!(cfg.webhook.as_ref().unwrap().format, WebhookFormat::Teams);
        let notifier = Notifier::new(&cfg).unwrap();
        assert!(!notifier.is_empty());
        // The secret part of the webhook URL is not in the Debug text.
        assert!(!format!("{notifier:?}").contains("secret"));
        assert!(Notifier::new(&NotifyConfig::default()).unwrap().is_empty());

        let e =
            toml::from_str::<NotifyConfig>("[webhook]\nurl = \"https://x.example\"\nformt = \"json\"\n").unwrap_err();
        assert!(e.to_string().contains("unknown field `formt`"), "{e}");
        let e =
            toml::from_str::<NotifyConfig>("[command]\nprogram = \"/bin/true\"\nevents = [\"arived\"]\n").unwrap_err();
        assert!(e.to_string().contains("did you mean arrived?"), "{e}");

        let cfg: NotifyConfig = toml::from_str("[command]\nprogram = \"/bin/true\"\nevents = []\n").unwrap();
        let e = Notifier::new(&cfg).unwrap_err();
        assert_eq!(e.code, "notify_config_invalid");
        assert!(e.message.starts_with("[notify.command] events = [] would never notify"), "{}", e.message);
    }
}
