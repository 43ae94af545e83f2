//! The hub's Prometheus metrics: what operators watch, served in the
//! OpenMetrics text format on a listener of its own (see [`crate::serve_with`]).
//!
//! Built on `prometheus-client`: each [`Hub`](crate::Hub) owns its own
//! registry (no process-wide recorder, so several hubs in one test process
//! never mix their counts), and every label set is a typed struct, so only
//! the values listed here can ever become labels.
//!
//! **No label ever holds a drop id, a party id, a key name or a raw path.**
//! Routes are the router's templates (`/v1/drops/{id}/content`), error codes
//! the stable strings of [`ErrorCode`], deletion reasons the
//! four the transfer log knows plus `abandoned`. Party ids are left out on
//! purpose: a scrape should not become a second record of who sends to whom
//! (the transfer log is that record, with signatures).

use std::sync::atomic::AtomicI64;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use sealdrop_log::entry::DeletionReason;
use sealdrop_proto::error_code::ErrorCode;

/// The content type of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Why a drop's ciphertext was deleted, as a label value.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum DeletedReason {
    /// Every recipient acknowledged.
    Delivered,
    /// Its expiry passed before every recipient acknowledged.
    Expired,
    /// Its sharing agreement stopped being in force.
    AgreementEnded,
    /// The sender recalled it.
    Recalled,
    /// Never committed, removed at its expiry (not in the transfer log:
    /// nobody but its sender knew of it).
    Abandoned,
}

impl DeletedReason {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Expired => "expired",
            Self::AgreementEnded => "agreement_ended",
            Self::Recalled => "recalled",
            Self::Abandoned => "abandoned",
        }
    }
}

impl From<DeletionReason> for DeletedReason {
    fn from(reason: DeletionReason) -> Self {
        match reason {
            DeletionReason::Delivered => Self::Delivered,
            DeletionReason::Expired => Self::Expired,
            DeletionReason::AgreementEnded => Self::AgreementEnded,
            DeletionReason::Recalled => Self::Recalled,
        }
    }
}

impl EncodeLabelValue for DeletedReason {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        EncodeLabelValue::encode(&self.as_str(), encoder)
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: DeletedReason,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabels {
    code: &'static str,
}

/// A request's route and method: the route is always a router template.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteStatusLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CapLabels {
    /// `evicted` (closed to admit another) or `refused` (turned away).
    action: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

/// Buckets of the request latency histogram, in seconds: 1 ms to about
/// 17 minutes (a large upload or download is one request).
fn latency_histogram() -> Histogram {
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(0.001, 4.0, 11))
}

/// The hub's metrics. Cheap to update from any thread.
pub struct Metrics {
    registry: Registry,
    drops_created: Counter,
    drops_committed: Counter,
    drops_fetched: Counter,
    drops_acknowledged: Counter,
    drops_deleted: Family<ReasonLabels, Counter>,
    uploaded_bytes: Counter,
    downloaded_bytes: Counter,
    errors: Family<CodeLabels, Counter>,
    requests: Family<RouteStatusLabels, Counter>,
    request_duration: Family<RouteLabels, Histogram, fn() -> Histogram>,
    in_flight: Gauge,
    transfer_log_entries: Gauge,
    sweeper_runs: Family<ResultLabels, Counter>,
    sweeper_files_removed: Counter,
    /// When the last sweep finished (Unix seconds), 0 before the first.
    last_sweep: Gauge<i64, AtomicI64>,
    connections_open: Gauge,
    connections_closed_by_cap: Family<CapLabels, Counter>,
    /// Inbox requests waiting for a drop (`GET /v1/inbox?wait=N`), so an
    /// operator can tell them from requests that are slow.
    inbox_waiting: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh set of metrics, every counter at zero, in a registry of its own.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("sealdrop_hub");
        let m = Metrics {
            registry: Registry::default(),
            drops_created: Counter::default(),
            drops_committed: Counter::default(),
            drops_fetched: Counter::default(),
            drops_acknowledged: Counter::default(),
            drops_deleted: Family::default(),
            uploaded_bytes: Counter::default(),
            downloaded_bytes: Counter::default(),
            errors: Family::default(),
            requests: Family::default(),
            request_duration: Family::new_with_constructor(latency_histogram as fn() -> Histogram),
            in_flight: Gauge::default(),
            transfer_log_entries: Gauge::default(),
            sweeper_runs: Family::default(),
            sweeper_files_removed: Counter::default(),
            last_sweep: Gauge::default(),
            connections_open: Gauge::default(),
            connections_closed_by_cap: Family::default(),
            inbox_waiting: Gauge::default(),
        };
        registry.register(
            "drops_created",
            "Drops announced (POST /v1/drops that created a drop)",
            m.drops_created.clone(),
        );
        registry.register("drops_committed", "Drops committed with a signed manifest", m.drops_committed.clone());
        registry.register(
            "drops_fetched",
            "Downloads of a drop's ciphertext, whole or a range (each is a drop_fetched log entry)",
            m.drops_fetched.clone(),
        );
        registry.register("drops_acknowledged", "Signed receipts accepted", m.drops_acknowledged.clone());
        registry.register(
            "drops_deleted",
            "Drops whose ciphertext the hub deleted, by reason",
            m.drops_deleted.clone(),
        );
        registry.register_with_unit(
            "uploaded",
            "Ciphertext bytes received in uploads (including uploads later cut off)",
            Unit::Bytes,
            m.uploaded_bytes.clone(),
        );
        registry.register_with_unit(
            "downloaded",
            "Ciphertext bytes sent in downloads",
            Unit::Bytes,
            m.downloaded_bytes.clone(),
        );
        registry.register("errors", "API errors served, by stable error code", m.errors.clone());
        registry.register("requests", "Requests answered, by method, route template and status", m.requests.clone());
        registry.register_with_unit(
            "request_duration",
            "Time from a request's arrival until its response body was sent, by method and route template",
            Unit::Seconds,
            m.request_duration.clone(),
        );
        registry.register(
            "requests_in_flight",
            "Requests being handled now (a streaming upload or download counts until its body ends)",
            m.in_flight.clone(),
        );
        registry.register(
            "transfer_log_entries",
            "Entries in the signed transfer log (read at scrape time)",
            m.transfer_log_entries.clone(),
        );
        registry.register(
            "sweeper_runs",
            "Sweeps of expired and agreement-ended drops, by result",
            m.sweeper_runs.clone(),
        );
        registry.register(
            "sweeper_files_removed",
            "Ciphertext and upload files the sweeper removed",
            m.sweeper_files_removed.clone(),
        );
        registry.register_with_unit(
            "sweeper_last_run_timestamp",
            "When the last sweep finished (Unix time; 0 before the first)",
            Unit::Seconds,
            m.last_sweep.clone(),
        );
        registry.register("connections_open", "Client connections open now", m.connections_open.clone());
        registry.register(
            "connections_capped",
            "Connections the connection cap closed to admit another (evicted) or turned away (refused)",
            m.connections_closed_by_cap.clone(),
        );
        registry.register(
            "inbox_waiting",
            "Inbox requests waiting now for a drop to be committed (GET /v1/inbox?wait=N; also in requests_in_flight)",
            m.inbox_waiting.clone(),
        );
        Metrics { registry, ..m }
    }

    /// `n` client connections are open.
    pub fn set_connections_open(&self, n: usize) {
        self.connections_open.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// `n` inbox requests are waiting for a drop.
    pub fn set_inbox_waiting(&self, n: usize) {
        self.inbox_waiting.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// The connection cap closed (`evicted`) or turned away (`refused`) a connection.
    pub fn connection_closed_by_cap(&self, action: &'static str) {
        self.connections_closed_by_cap.get_or_create(&CapLabels { action }).inc();
    }

    /// A new drop was created (not an idempotent replay).
    pub fn drop_created(&self) {
        self.drops_created.inc();
    }

    /// A drop was committed.
    pub fn drop_committed(&self) {
        self.drops_committed.inc();
    }

    /// A download of a drop was served (logged as `drop_fetched`).
    pub fn drop_fetched(&self) {
        self.drops_fetched.inc();
    }

    /// A receipt was accepted.
    pub fn drop_acknowledged(&self) {
        self.drops_acknowledged.inc();
    }

    /// A drop's ciphertext was deleted for `reason`.
    pub fn drop_deleted(&self, reason: DeletedReason) {
        self.drops_deleted.get_or_create(&ReasonLabels { reason }).inc();
    }

    /// `n` more upload bytes arrived.
    pub fn uploaded(&self, n: u64) {
        self.uploaded_bytes.inc_by(n);
    }

    /// `n` more download bytes were sent.
    pub fn downloaded(&self, n: u64) {
        self.downloaded_bytes.inc_by(n);
    }

    /// An API error with `code` was served.
    pub fn error(&self, code: ErrorCode) {
        self.errors.get_or_create(&CodeLabels { code: code.as_str() }).inc();
    }

    /// A request started.
    pub fn request_started(&self) {
        self.in_flight.inc();
    }

    /// A request to the route template `route` ended with `status` after
    /// `seconds` (its response body sent or abandoned).
    pub fn request_finished(&self, method: &str, route: &str, status: u16, seconds: f64) {
        self.in_flight.dec();
        let (method, route) = (method.to_owned(), route.to_owned());
        self.requests.get_or_create(&RouteStatusLabels { method: method.clone(), route: route.clone(), status }).inc();
        self.request_duration.get_or_create(&RouteLabels { method, route }).observe(seconds);
    }

    /// A sweep finished (`ok`) or failed, removing `files_removed` files.
    pub fn sweep_finished(&self, ok: bool, files_removed: usize, now_unix: i64) {
        self.sweeper_runs.get_or_create(&ResultLabels { result: if ok { "ok" } else { "failed" } }).inc();
        self.sweeper_files_removed.inc_by(files_removed as u64);
        self.last_sweep.set(now_unix);
    }

    /// Sets the transfer log's size (done at scrape time).
    pub fn set_transfer_log_entries(&self, size: u64) {
        self.transfer_log_entries.set(i64::try_from(size).unwrap_or(i64::MAX));
    }

    /// Requests in flight now.
    pub fn in_flight(&self) -> i64 {
        self.in_flight.get()
    }

    /// Everything, in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Reads a value from metrics text: the sample `name{labels}` (labels as
/// written, e.g. `reason="delivered"`, or empty), for tests and tools.
pub fn sample(text: &str, name: &str, labels: &str) -> Option<f64> {
    let wanted = if labels.is_empty() { name.to_owned() } else { format!("{name}{{{labels}}}") };
    text.lines().find_map(|line| {
        let (key, value) = line.rsplit_once(' ')?;
        (key == wanted).then(|| value.parse().ok()).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_appear_under_their_names_and_labels() {
        let m = Metrics::new();
        m.drop_created();
        m.drop_deleted(DeletedReason::AgreementEnded);
        m.drop_deleted(DeletedReason::AgreementEnded);
        m.uploaded(1000);
        m.error(ErrorCode::NotFound);
        m.request_started();
        assert_eq!(m.in_flight(), 1);
        m.request_finished("GET", "/v1/drops/{id}", 404, 0.002);
        assert_eq!(m.in_flight(), 0);
        m.sweep_finished(true, 3, 1_780_000_000);
        let text = m.encode();
        assert_eq!(sample(&text, "sealdrop_hub_drops_created_total", ""), Some(1.0), "{text}");
        assert_eq!(sample(&text, "sealdrop_hub_drops_committed_total", ""), Some(0.0), "{text}");
        assert_eq!(
            sample(&text, "sealdrop_hub_drops_deleted_total", "reason=\"agreement_ended\""),
            Some(2.0),
            "{text}"
        );
        assert_eq!(sample(&text, "sealdrop_hub_uploaded_bytes_total", ""), Some(1000.0), "{text}");
        assert_eq!(sample(&text, "sealdrop_hub_errors_total", "code=\"not_found\""), Some(1.0), "{text}");
        assert_eq!(
            sample(&text, "sealdrop_hub_requests_total", "method=\"GET\",route=\"/v1/drops/{id}\",status=\"404\""),
            Some(1.0),
            "{text}"
        );
        assert_eq!(
            sample(&text, "sealdrop_hub_request_duration_seconds_count", "method=\"GET\",route=\"/v1/drops/{id}\""),
            Some(1.0),
            "{text}"
        );
        assert_eq!(sample(&text, "sealdrop_hub_sweeper_runs_total", "result=\"ok\""), Some(1.0), "{text}");
        assert_eq!(sample(&text, "sealdrop_hub_sweeper_files_removed_total", ""), Some(3.0), "{text}");
        m.set_connections_open(7);
        m.connection_closed_by_cap("evicted");
        let text = m.encode();
        assert_eq!(sample(&text, "sealdrop_hub_connections_open", ""), Some(7.0), "{text}");
        assert_eq!(sample(&text, "sealdrop_hub_connections_capped_total", "action=\"evicted\""), Some(1.0), "{text}");
        assert!(text.trim_end().ends_with("# EOF"), "OpenMetrics text ends with # EOF: {text}");
    }

    #[test]
    fn two_hubs_do_not_share_counts() {
        let (a, b) = (Metrics::new(), Metrics::new());
        a.drop_committed();
        assert_eq!(sample(&a.encode(), "sealdrop_hub_drops_committed_total", ""), Some(1.0));
        assert_eq!(sample(&b.encode(), "sealdrop_hub_drops_committed_total", ""), Some(0.0));
    }
}
