//! What the service tells people and monitoring about itself: the status
//! file (`DIR/status.json`), the health answer (`/healthz`) and the
//! Prometheus metrics (`/metrics`), all from one shared record that the
//! outbox, inbox and tracking loops update.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::AtomicI64;

use jiff::{SignedDuration, Timestamp};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::Serialize;

use crate::error::Error;

/// Failures the status file lists, newest last; older ones are dropped
/// (the counters keep the totals).
const RECENT_FAILURES: usize = 20;

/// How long the hub may be unreachable before `/healthz` says unhealthy:
/// a restart of the hub or a short network outage is not an alarm.
const UNREACHABLE_ALARM: SignedDuration = SignedDuration::from_mins(10);

/// One failure, as the status file shows it.
#[derive(Clone, Debug, Serialize)]
pub struct Failure {
    /// When.
    pub at: Timestamp,
    /// What failed: `send`, `fetch`, `status` or `notify`.
    pub what: &'static str,
    /// The job or drop it concerns.
    pub subject: String,
    /// The error's code.
    pub code: String,
    /// The error, one line.
    pub message: String,
}

/// A job waiting in `.sealdrop/work/`, as the status file shows it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Pending {
    /// The job.
    pub job: String,
    /// Failed attempts so far (the hub down, rate limited).
    pub attempts: u32,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
}

/// The status file's content.
#[derive(Clone, Debug, Serialize)]
pub struct Status {
    /// The service's party.
    pub party: String,
    /// When the service started.
    pub started: Timestamp,
    /// When this file was written.
    pub updated: Timestamp,
    /// `ok`, or why not (what `/healthz` says).
    pub health: String,
    /// When the outbox was last looked at.
    pub last_outbox_scan: Option<Timestamp>,
    /// When the hub last answered an inbox request.
    pub last_inbox_poll: Option<Timestamp>,
    /// When the sent drops were last checked for acknowledgements.
    pub last_status_check: Option<Timestamp>,
    /// Since when the hub cannot be reached, if it cannot.
    pub hub_unreachable_since: Option<Timestamp>,
    /// The log check's failure, while it fails.
    pub log_check_failure: Option<String>,
    /// Jobs taken from the outbox, not yet sent.
    pub pending: Vec<Pending>,
    /// Sent drops whose recipients have not all acknowledged.
    pub awaiting_acknowledgement: usize,
    /// Files sent since the service started.
    pub sent: u64,
    /// Drops received since the service started.
    pub received: u64,
    /// The latest failures.
    pub recent_failures: VecDeque<Failure>,
}

/// The metrics `/metrics` serves.
#[derive(Default)]
struct Metrics {
    sent: Counter,
    send_failures: Counter,
    received: Counter,
    fetch_failures: Counter,
    notify_failures: Counter,
    pending: Gauge,
    hub_reachable: Gauge,
    log_check_ok: Gauge,
    last_inbox_poll: Gauge<i64, AtomicI64>,
}

/// The shared record.
pub struct Monitor {
    status: Mutex<Status>,
    metrics: Metrics,
    registry: Registry,
    /// Where the status file is written.
    file: PathBuf,
}

impl Monitor {
    /// A monitor for `party`'s service, writing `file`.
    pub fn new(party: &str, file: PathBuf, now: Timestamp) -> Self {
        let metrics = Metrics::default();
        let mut registry = Registry::with_prefix("sealdrop_watch");
        registry.register("sent", "Files sent from the outbox (a split counts once)", metrics.sent.clone());
        registry.register("send_failures", "Files moved to failed/", metrics.send_failures.clone());
        registry.register("received", "Drops fetched into the inbox", metrics.received.clone());
        registry.register("fetch_failures", "Drops that could not be fetched", metrics.fetch_failures.clone());
        registry.register(
            "notify_failures",
            "Notifications that could not be delivered",
            metrics.notify_failures.clone(),
        );
        registry.register("outbox_pending", "Jobs taken from the outbox and not yet sent", metrics.pending.clone());
        registry.register(
            "hub_reachable",
            "1 while the hub answers, 0 while it cannot be reached",
            metrics.hub_reachable.clone(),
        );
        registry.register(
            "log_check_ok",
            "1 while the hub's log verifies, 0 while it does not",
            metrics.log_check_ok.clone(),
        );
        registry.register(
            "last_inbox_poll_timestamp_seconds",
            "When the hub last answered an inbox request (Unix time)",
            metrics.last_inbox_poll.clone(),
        );
        metrics.hub_reachable.set(1);
        metrics.log_check_ok.set(1);
        let status = Status {
            party: party.to_owned(),
            started: now,
            updated: now,
            health: "ok".into(),
            last_outbox_scan: None,
            last_inbox_poll: None,
            last_status_check: None,
            hub_unreachable_since: None,
            log_check_failure: None,
            pending: vec![],
            awaiting_acknowledgement: 0,
            sent: 0,
            received: 0,
            recent_failures: VecDeque::new(),
        };
        Self { status: Mutex::new(status), metrics, registry, file }
    }

    /// Changes the record, then writes the status file. A status file that
    /// cannot be written is said on stderr, never stops the service.
    pub fn update(&self, now: Timestamp, change: impl FnOnce(&mut Status)) {
        let text = {
            let mut s = self.status.lock().unwrap_or_else(|p| p.into_inner());
            change(&mut s);
            s.updated = now;
            s.health = health(&s, now).unwrap_or_else(|| "ok".into());
            serde_json::to_vec_pretty(&*s).unwrap_or_default()
        };
        if let Err(e) = crate::fsutil::write_atomic(&self.file, &text, false) {
            eprintln!("warning: the status file was not updated: {e}");
        }
    }

    /// The hub answered.
    pub fn hub_answered(&self, now: Timestamp) {
        self.metrics.hub_reachable.set(1);
        self.update(now, |s| s.hub_unreachable_since = None);
    }

    /// The hub could not be reached.
    pub fn hub_unreachable(&self, now: Timestamp) {
        self.metrics.hub_reachable.set(0);
        self.update(now, |s| {
            s.hub_unreachable_since.get_or_insert(now);
        });
    }

    /// The log check failed (`Some`) or passed again (`None`).
    pub fn log_check(&self, now: Timestamp, failure: Option<String>) {
        self.metrics.log_check_ok.set(i64::from(failure.is_none()));
        self.update(now, |s| s.log_check_failure = failure);
    }

    /// An inbox request was answered.
    pub fn polled(&self, now: Timestamp) {
        self.metrics.last_inbox_poll.set(now.as_second());
        self.metrics.hub_reachable.set(1);
        self.update(now, |s| {
            s.last_inbox_poll = Some(now);
            s.hub_unreachable_since = None;
        });
    }

    /// The jobs now waiting.
    pub fn pending(&self, now: Timestamp, pending: Vec<Pending>) {
        self.metrics.pending.set(i64::try_from(pending.len()).unwrap_or(i64::MAX));
        self.update(now, |s| {
            s.pending = pending;
            s.last_outbox_scan = Some(now);
        });
    }

    /// A file was sent.
    pub fn sent(&self, now: Timestamp) {
        self.metrics.sent.inc();
        self.update(now, |s| s.sent += 1);
    }

    /// A drop was received.
    pub fn received(&self, now: Timestamp) {
        self.metrics.received.inc();
        self.update(now, |s| s.received += 1);
    }

    /// Sent drops still waiting for acknowledgements, after a check.
    pub fn checked(&self, now: Timestamp, awaiting: usize) {
        self.update(now, |s| {
            s.awaiting_acknowledgement = awaiting;
            s.last_status_check = Some(now);
        });
    }

    /// Something failed.
    pub fn failed(&self, now: Timestamp, what: &'static str, subject: &str, e: &Error) {
        match what {
            "send" => self.metrics.send_failures.inc(),
            "fetch" => self.metrics.fetch_failures.inc(),
            "notify" => self.metrics.notify_failures.inc(),
            _ => 0,
        };
        self.update(now, |s| {
            if s.recent_failures.len() == RECENT_FAILURES {
                s.recent_failures.pop_front();
            }
            s.recent_failures.push_back(Failure {
                at: now,
                what,
                subject: subject.to_owned(),
                code: e.code.clone(),
                message: e.message.clone(),
            });
        });
    }

    /// `None` when healthy, else why not.
    pub fn health(&self, now: Timestamp) -> Option<String> {
        health(&self.status.lock().unwrap_or_else(|p| p.into_inner()), now)
    }

    /// The metrics in Prometheus's text format.
    pub fn metrics_text(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// A copy of the record.
    pub fn snapshot(&self) -> Status {
        self.status.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Why the service is not healthy, if it is not: its hub's log does not
/// verify (nothing it says can be trusted), or the hub has been unreachable
/// for longer than a restart takes.
fn health(s: &Status, now: Timestamp) -> Option<String> {
    if let Some(f) = &s.log_check_failure {
        return Some(format!("the hub's log does not verify: {f}"));
    }
    match s.hub_unreachable_since {
        Some(since) if now.duration_since(since) >= UNREACHABLE_ALARM => {
            Some(format!("the hub has been unreachable since {since}"))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    #[test]
    fn the_status_file_and_health_follow_what_happens() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("status.json");
        let t0: Timestamp = "2026-12-07T16:00:00Z".parse().unwrap();
        let m = Monitor::new("camden", file.clone(), t0);
        m.sent(t0);
        m.hub_unreachable(t0);
        assert_eq!(m.health(t0 + SignedDuration::from_mins(9)), None, "a short outage is no alarm");
        let later = t0 + SignedDuration::from_mins(11);
        assert!(m.health(later).unwrap().contains("unreachable since 2026-12-07T16:00:00Z"));
        m.polled(later);
        assert_eq!(m.health(later), None);
        for i in 0..25 {
            m.failed(later, "send", &format!("job-{i}"), &Error::new(ErrorCode::UnknownParty, "no party"));
        }
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        assert_eq!(v["sent"], 1);
        assert_eq!(v["health"], "ok");
        assert_eq!(v["recent_failures"].as_array().unwrap().len(), RECENT_FAILURES, "bounded");
        assert_eq!(v["recent_failures"][RECENT_FAILURES - 1]["subject"], "job-24");
        let text = m.metrics_text();
        assert!(text.contains("sealdrop_watch_sent_total 1"), "{text}");
        assert!(text.contains("sealdrop_watch_send_failures_total 25"), "{text}");
        m.log_check(later, Some("log_inconsistent".into()));
        assert!(m.health(later).unwrap().contains("log does not verify"));
        assert!(m.metrics_text().contains("sealdrop_watch_log_check_ok 0"));
    }
}
