//! `sealdrop send` of a small drop takes one request (`PUT /v1/drops/{id}`)
//! instead of create, upload and commit, counted in the hub's own request
//! metrics; the drop is fetched, acknowledged and audited as any other. A
//! hub that takes no drop in one request (`--max-single-request-bytes 0`,
//! as a hub that predates the route) and a drop over 1 MiB go by the three
//! steps.

use sealdrop_e2e::{Backend, Hub, Party, pseudo_random_bytes, read_bytes};

const METRICS: [&str; 2] = ["--metrics-listen", "127.0.0.1:0"];

/// The `sealdrop_hub_requests_total` sample for `method route status`, 0 if absent.
fn requests(text: &str, method: &str, route: &str, status: u16) -> f64 {
    let key = format!("sealdrop_hub_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}}");
    text.lines()
        .find_map(|line| line.rsplit_once(' ').filter(|(k, _)| *k == key).and_then(|(_, v)| v.parse().ok()))
        .unwrap_or(0.0)
}

/// How many of the three steps' requests the hub served, by route.
fn three_steps(text: &str) -> [f64; 3] {
    [
        requests(text, "POST", "/v1/drops", 200),
        requests(text, "PUT", "/v1/drops/{id}/content", 200),
        requests(text, "POST", "/v1/drops/{id}/commit", 200),
    ]
}

/// Sends `content` from camden to islington, fetches and acknowledges it,
/// audits the log from camden; returns the hub's metrics text after the send.
fn send_fetch_audit(hub: &Hub, content: &[u8]) -> String {
    let camden = Party::new(hub, "camden");
    let islington = Party::new(hub, "islington");
    let file = camden.file("cohort.bin", content);
    let id = camden.send("islington", &[&file]);
    let after_send = hub.scrape();
    assert!(islington.inbox_ids().contains(&id), "the drop is not in islington's inbox");
    let out = islington.work().join("in");
    islington.fetch(&id, &out);
    assert_eq!(read_bytes(&out.join("cohort.bin")), content);
    assert!(!islington.inbox_ids().contains(&id), "fetched and acknowledged, the drop left the inbox");
    let journal = camden.journal();
    let sent = journal.iter().filter(|e| e["event"] == "sent" && e["drop"] == id.as_str()).count();
    assert_eq!(sent, 1, "the send is in camden's journal once: {journal:?}");
    let vkey = hub.verifier_key();
    let audit = camden.ok(["audit", "verify", "--log-key", &vkey, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&audit).unwrap();
    assert_eq!((v["verified"].as_bool(), v["drops_committed"].as_u64()), (Some(true), Some(1)), "{v}");
    assert_eq!(v["acknowledgements"], 1, "{v}");
    after_send
}

fn a_small_send_is_one_request_and_fetches_and_audits_as_any(backend: Backend) {
    let hub = Hub::start_on(backend, None, &METRICS);
    let text = send_fetch_audit(&hub, &pseudo_random_bytes(14_000, 3));
    assert_eq!(requests(&text, "PUT", "/v1/drops/{id}", 200), 1.0, "{text}");
    assert_eq!(three_steps(&text), [0.0; 3], "no create, upload or commit: {text}");
}

fn a_hub_that_takes_no_drop_in_one_request_gets_the_three_steps(backend: Backend) {
    let hub = Hub::start_on(backend, None, &["--metrics-listen", "127.0.0.1:0", "--max-single-request-bytes", "0"]);
    let text = send_fetch_audit(&hub, &pseudo_random_bytes(14_000, 4));
    assert_eq!(requests(&text, "PUT", "/v1/drops/{id}", 413), 1.0, "refused, then the three steps: {text}");
    assert_eq!(requests(&text, "PUT", "/v1/drops/{id}", 200), 0.0, "{text}");
    assert_eq!(three_steps(&text), [1.0; 3], "{text}");
}

fn a_drop_over_a_mebibyte_goes_by_the_three_steps(backend: Backend) {
    let hub = Hub::start_on(backend, None, &METRICS);
    let text = send_fetch_audit(&hub, &pseudo_random_bytes(1_200_000, 5));
    let tried: f64 = [200, 413].iter().map(|s| requests(&text, "PUT", "/v1/drops/{id}", *s)).sum();
    assert_eq!(tried, 0.0, "a drop this large is not even tried in one request: {text}");
    assert_eq!(three_steps(&text), [1.0; 3], "{text}");
}

sealdrop_e2e::on_both_backends!(
    a_small_send_is_one_request_and_fetches_and_audits_as_any,
    a_hub_that_takes_no_drop_in_one_request_gets_the_three_steps,
    a_drop_over_a_mebibyte_goes_by_the_three_steps,
);
