//! Chat webhooks: each event POSTed as JSON to a Slack or Teams channel's
//! incoming webhook, or to any receiver that takes plain JSON. A webhook
//! URL is itself a secret (whoever has it can post to the channel), so
//! errors and logs show only its scheme and host.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use reqwest::Url;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Event, EventKind, chain, failed, invalid};
use crate::error::{Error, ErrorCode, Result};

/// How long one POST may take, connection included: chat services answer
/// in well under a second; a hung one must not hold up the service.
pub const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);

/// How much of an unsuccessful answer's body is quoted in the error (Slack
/// answers e.g. `invalid_payload`): enough to say why, not a whole page.
const BODY_QUOTED: usize = 200;

/// What the POSTed JSON looks like.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookFormat {
    /// `{"text": summary}`: Slack incoming webhooks, and Teams' older
    /// "Incoming Webhook" connectors, Mattermost and Rocket.Chat.
    #[default]
    Slack,
    /// A `message` with one Adaptive Card: what a Teams Workflows
    /// "post to a channel when a webhook request is received" flow takes.
    Teams,
    /// `{"text": summary, "event": {...}}`: for a receiver of one's own.
    Json,
}

impl WebhookFormat {
    /// Every format, as named in the config file and `--notify-webhook-format`.
    pub const ALL: [WebhookFormat; 3] = [WebhookFormat::Slack, WebhookFormat::Teams, WebhookFormat::Json];

    /// The format's name.
    pub const fn as_str(self) -> &'static str {
        match self {
            WebhookFormat::Slack => "slack",
            WebhookFormat::Teams => "teams",
            WebhookFormat::Json => "json",
        }
    }
}

impl fmt::Display for WebhookFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for WebhookFormat {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        WebhookFormat::ALL.into_iter().find(|f| f.as_str() == s.trim()).ok_or_else(|| {
            invalid("webhook", format!("format {s:?} is not one of slack, teams, json; slack suits Slack and older Teams connectors, teams a Teams Workflows webhook"))
        })
    }
}

/// `[notify.webhook]`: where to POST each event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSink {
    /// The incoming webhook's URL, as the chat service gave it (a secret).
    pub url: String,
    /// The JSON the receiver expects.
    #[serde(default)]
    pub format: WebhookFormat,
    /// The events to post; absent means every event.
    pub events: Option<Vec<EventKind>>,
}

/// A checked [`WebhookSink`], with its HTTP client.
pub(crate) struct Webhook {
    url: Url,
    format: WebhookFormat,
    /// `https://host[:port]/...`: the URL as errors show it, without its secret path.
    shown: String,
    /// A runtime of its own, current-thread, driven by the thread that
    /// notifies, as [`crate::transport::HubApi`] does for the hub.
    http: (tokio::runtime::Runtime, reqwest::Client),
}

impl Webhook {
    /// Checks the URL: https, or http to this machine only (a webhook URL
    /// is a bearer secret, and the event would cross the network in clear).
    pub(crate) fn new(sink: &WebhookSink) -> Result<Self> {
        let url = Url::parse(&sink.url).map_err(|e| {
            invalid("webhook", format!("url is not a URL ({e}); paste the webhook URL the chat service gave"))
        })?;
        let shown = format!("{}://{}/...", url.scheme(), url.host_str().unwrap_or(""));
        let shown = match url.port() {
            Some(port) => shown.replacen("/...", &format!(":{port}/..."), 1),
            None => shown,
        };
        let local = url.host_str().is_some_and(crate::hub_url::is_loopback);
        match url.scheme() {
            "https" => {}
            "http" if local => {}
            "http" => {
                return Err(invalid(
                    "webhook",
                    format!(
                        "url {shown} is plain http to another machine, which would show the webhook's secret URL and the event to the network; use its https:// URL"
                    ),
                ));
            }
            other => {
                return Err(invalid("webhook", format!("url scheme {other:?} is not https; give the https:// URL")));
            }
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::new(ErrorCode::Internal, format!("cannot start the webhook's HTTP client: {e}")))?;
        let client = reqwest::Client::builder()
            .timeout(WEBHOOK_TIMEOUT)
            .connect_timeout(WEBHOOK_TIMEOUT)
            // A redirect would turn the POST into a GET (or re-send it
            // elsewhere); a webhook that moved is reported instead.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("sealdrop/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::new(ErrorCode::HttpClient, e.to_string()))?;
        Ok(Self { url, format: sink.format, shown, http: (runtime, client) })
    }

    /// POSTs `event`; anything but a 2xx answer is a failure naming the status.
    pub(crate) fn post(&self, event: &Event) -> Result<()> {
        if tokio::runtime::Handle::try_current().is_ok() {
            // block_on would panic inside another runtime; say so instead.
            return Err(failed("the webhook was called from inside an async runtime; call notify from a plain thread"));
        }
        let (runtime, client) = &self.http;
        let shown = &self.shown;
        let format = self.format;
        runtime.block_on(async {
            let answer = client.post(self.url.clone()).json(&body(format, event)).send().await.map_err(|e| {
                // reqwest puts the URL in its message: the path is the secret.
                let why = chain(&e.without_url());
                let hint = if why.contains("certificate") {
                    "check that the URL is the chat service's own"
                } else {
                    "check the URL and the network (a proxy may be needed)"
                };
                failed(format!("posting to the webhook {shown} failed: {why}; {hint}"))
            })?;
            let status = answer.status();
            if status.is_success() {
                return Ok(());
            }
            let quoted = quote_body(answer).await;
            Err(failed(format!(
                "the webhook {shown} answered {status}{quoted}; check the URL and that it takes the `{format}` format"
            )))
        })
    }
}

/// ` (body: ...)`, the start of an answer's body on one line, or nothing.
async fn quote_body(mut answer: reqwest::Response) -> String {
    let mut bytes = Vec::new();
    // Chunk by chunk, so a huge error page is not read whole.
    while bytes.len() < BODY_QUOTED {
        match tokio::time::timeout(Duration::from_secs(2), answer.chunk()).await {
            Ok(Ok(Some(chunk))) => bytes.extend_from_slice(&chunk),
            _ => break,
        }
    }
    let mut text: String = String::from_utf8_lossy(&bytes).chars().filter(|c| !c.is_control()).collect();
    if text.chars().count() > BODY_QUOTED {
        text = text.chars().take(BODY_QUOTED).collect::<String>() + "...";
    }
    if text.trim().is_empty() { String::new() } else { format!(" (body: {})", text.trim()) }
}

/// The JSON POSTed for `event` in `format`.
pub fn body(format: WebhookFormat, event: &Event) -> Value {
    let summary = event.summary();
    match format {
        WebhookFormat::Slack => json!({ "text": summary }),
        WebhookFormat::Json => json!({ "text": summary, "event": event }),
        WebhookFormat::Teams => {
            let facts: Vec<Value> = event
                .lines()
                .lines()
                .filter_map(|line| line.split_once(": "))
                .map(|(title, value)| json!({ "title": title, "value": value }))
                .collect();
            json!({
                "type": "message",
                "attachments": [{
                    "contentType": "application/vnd.microsoft.card.adaptive",
                    "contentUrl": null,
                    "content": {
                        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                        "type": "AdaptiveCard",
                        "version": "1.4",
                        "body": [
                            { "type": "TextBlock", "text": summary, "wrap": true, "weight": "Bolder" },
                            { "type": "FactSet", "facts": facts },
                        ],
                    },
                }],
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> Event {
        let mut e = Event::new(EventKind::Acknowledged, "camden".parse().unwrap(), jiff::Timestamp::UNIX_EPOCH);
        e.drops = vec!["d-00000000000000000000000007".parse().unwrap()];
        e.to = vec!["islington".parse().unwrap()];
        e.agreement = Some("london-fsm-ehc".to_owned());
        e
    }

    #[test]
    fn each_format_carries_the_summary_where_its_receiver_reads_it() {
        let e = event();
        assert_eq!(body(WebhookFormat::Slack, &e), json!({ "text": e.summary() }));
        let j = body(WebhookFormat::Json, &e);
        assert_eq!(j["text"], json!(e.summary()));
        assert_eq!(j["event"]["kind"], "acknowledged");
        assert_eq!(j["event"]["drops"], json!(["d-00000000000000000000000007"]));
        let t = body(WebhookFormat::Teams, &e);
        assert_eq!(t["type"], "message");
        let card = &t["attachments"][0];
        assert_eq!(card["contentType"], "application/vnd.microsoft.card.adaptive");
        assert_eq!(card["content"]["type"], "AdaptiveCard");
        assert_eq!(card["content"]["body"][0]["text"], json!(e.summary()));
        let facts = card["content"]["body"][1]["facts"].as_array().unwrap();
        assert!(facts.contains(&json!({ "title": "agreement", "value": "london-fsm-ehc" })), "{facts:?}");
        assert!(facts.contains(&json!({ "title": "event", "value": "acknowledged" })), "{facts:?}");
    }

    #[test]
    fn urls_must_be_https_or_local_and_errors_never_show_the_secret_path() {
        let sink = |url: &str| WebhookSink { url: url.to_owned(), format: WebhookFormat::Slack, events: None };
        for ok in ["https://hooks.slack.com/services/T/B/secret", "http://127.0.0.1:9/hook", "http://localhost/x"] {
            assert!(Webhook::new(&sink(ok)).is_ok(), "{ok}");
        }
        for (bad, says) in [
            ("http://hooks.example.org/services/T0/B0/TOKEN123", "plain http to another machine"),
            ("ftp://hooks.example.org/TOKEN123", "is not https"),
            ("not a url", "url is not a URL"),
        ] {
            let e = Webhook::new(&sink(bad)).err().unwrap_or_else(|| panic!("{bad} was accepted"));
            assert_eq!(e.code, "notify_config_invalid");
            assert!(e.message.starts_with("[notify.webhook] ") && e.message.contains(says), "{}", e.message);
            assert!(!e.message.contains("TOKEN123"), "{}", e.message);
        }
        assert_eq!("teams".parse::<WebhookFormat>().unwrap(), WebhookFormat::Teams);
        assert!("slak".parse::<WebhookFormat>().unwrap_err().message.contains("slack, teams, json"));
    }
}
