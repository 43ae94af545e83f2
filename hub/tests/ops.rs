//! What operators see of a hub served in-process: `/readyz` turning 503 for
//! each reason it can, the metrics counting every way a drop ends and every
//! sweep, and `serve_with` serving TLS and a separate metrics listener.

mod common;

use sealdrop_hub::metrics::sample;
use sealdrop_hub::{ServeOptions, config};
use sealdrop_proto::api::{Commit, Committed, CreatedDrop, Recall, Uploaded};
use sealdrop_proto::directory::SignedDirectory;
use sealdrop_proto::note::sign_doc;

use common::{DAY, Keys, World, content, inner_fsm, ok, party};

impl Keys {
    fn ops_directory(&self) -> SignedDirectory {
        let parties =
            vec![party(&[&self.camden], vec![]), party(&[&self.islington], vec![]), party(&[&self.hackney], vec![])];
        SignedDirectory::sign(common::directory(1, parties, vec![inner_fsm()]), &self.authority).unwrap()
    }
}

impl World {
    /// Bytes shaped like a drop's ciphertext to islington (see [`common::ciphertext`]).
    fn ciphertext(&self, len: usize) -> Vec<u8> {
        common::ciphertext(&self.keys.ops_directory().directory, &["islington"], len)
    }

    async fn start_ops() -> World {
        World::launch(|keys| keys.ops_directory().note, |hub| hub).await
    }

    /// Creates, uploads and commits a drop from camden to islington.
    async fn committed(&self, data: &[u8], expires_in: i64) -> CreatedDrop {
        let camden = &self.keys.camden;
        let drop: CreatedDrop = ok(self.create(camden, &["islington"], expires_in).await).await;
        let _: Uploaded = ok(self.upload(camden, &drop.id, data).await).await;
        let manifest = common::manifest(&self.keys.ops_directory().directory, camden, &drop, &["islington"], data);
        let body = Commit { manifest: sign_doc(&manifest, &camden.signing), known_size: None };
        let _: Committed = ok(self.post(camden, &format!("/v1/drops/{}/commit", drop.id), &body).await).await;
        drop
    }

    async fn readiness(&self) -> (u16, serde_json::Value) {
        let resp = self.fetch("/readyz").await;
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap())
    }

    fn metric(&self, name: &str, labels: &str) -> f64 {
        let text = self.hub().metrics().encode();
        sample(&text, name, labels).unwrap_or_else(|| panic!("no {name}{{{labels}}} in:\n{text}"))
    }
}

fn failed_checks(readiness: &serde_json::Value) -> Vec<String> {
    readiness["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["ok"] == false)
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn readiness_names_what_is_wrong_and_health_does_not_care() {
    let world = World::start_ops().await;
    let (status, body) = world.readiness().await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ready"], true);
    assert!(!world.data_dir().join(sealdrop_hub::api::health::PROBE_FILE).exists(), "the probe file is removed");

    // The ciphertext folder is gone (a disk not mounted, say).
    let blobs = world.data_dir().join("blobs");
    std::fs::rename(&blobs, world.data_dir().join("blobs.away")).unwrap();
    let (status, body) = world.readiness().await;
    assert_eq!((status, failed_checks(&body)), (503, vec!["blob_store".to_owned()]), "{body}");
    assert_eq!(world.fetch("/healthz").await.status(), 200, "liveness is not readiness");
    std::fs::rename(world.data_dir().join("blobs.away"), &blobs).unwrap();
    assert_eq!(world.readiness().await.0, 200);

    // An entry behind the hub's back: the log is ahead of its checkpoint.
    let db = rusqlite::Connection::open(world.data_dir().join(sealdrop_hub::hub::DB_FILE)).unwrap();
    db.execute("INSERT INTO log_entries (idx, data) VALUES ((SELECT MAX(idx) + 1 FROM log_entries), x'00')", [])
        .unwrap();
    let (status, body) = world.readiness().await;
    assert_eq!((status, failed_checks(&body)), (503, vec!["transfer_log".to_owned()]), "{body}");
    db.execute("DELETE FROM log_entries WHERE idx = (SELECT MAX(idx) FROM log_entries)", []).unwrap();
    assert_eq!(world.readiness().await.0, 200);

    // Shutting down: no new work, whatever else holds.
    world.hub().begin_shutdown();
    let (status, body) = world.readiness().await;
    assert_eq!((status, failed_checks(&body)), (503, vec!["not_shutting_down".to_owned()]), "{body}");
    // The answer names checks, never paths or database errors.
    assert!(!body.to_string().contains(world.data_dir().to_str().unwrap()), "{body}");
}

#[tokio::test]
async fn metrics_count_every_way_a_drop_ends_and_every_sweep() {
    let world = World::start_ops().await;
    let sweeps_at_start = world.metric("sealdrop_hub_sweeper_runs_total", "result=\"ok\"");
    assert_eq!(sweeps_at_start, 1.0, "the catch-up sweep when the hub opened");
    let (camden, islington) = (&world.keys.camden, &world.keys.islington);

    // Delivered: fetched and acknowledged.
    let data = world.ciphertext(10_000);
    let delivered = world.committed(&data, 7 * DAY).await;
    let body = world.get(islington, &format!("/v1/drops/{}/content", delivered.id)).await.bytes().await.unwrap();
    assert_eq!(body.as_ref(), &data[..]);
    let receipt = world.receipt(islington, &delivered.id, &data);
    let _: serde_json::Value =
        ok(world.post(islington, &format!("/v1/drops/{}/ack", delivered.id), &receipt).await).await;
    // Recalled.
    let recalled = world.committed(&world.ciphertext(500), 7 * DAY).await;
    let _: serde_json::Value =
        ok(world.post(camden, &format!("/v1/drops/{}/recall", recalled.id), &Recall {}).await).await;
    // Expired, and one never committed (abandoned): both due in a day.
    let _expired = world.committed(&world.ciphertext(700), DAY).await;
    let abandoned: CreatedDrop = ok(world.create(camden, &["islington"], DAY).await).await;
    let _: Uploaded = ok(world.upload(camden, &abandoned.id, &content(300)).await).await;
    // A second recall is refused: an error with its stable code.
    let again = world.post(camden, &format!("/v1/drops/{}/recall", recalled.id), &Recall {}).await;
    assert_eq!(again.status(), 410);

    world.advance(DAY + 1);
    let report = world.hub().sweep().await.unwrap();
    assert_eq!((report.expired, report.abandoned), (1, 1));

    assert_eq!(world.metric("sealdrop_hub_drops_created_total", ""), 4.0);
    assert_eq!(world.metric("sealdrop_hub_drops_committed_total", ""), 3.0);
    assert_eq!(world.metric("sealdrop_hub_drops_fetched_total", ""), 1.0);
    assert_eq!(world.metric("sealdrop_hub_drops_acknowledged_total", ""), 1.0);
    for reason in ["delivered", "recalled", "expired", "abandoned"] {
        assert_eq!(world.metric("sealdrop_hub_drops_deleted_total", &format!("reason=\"{reason}\"")), 1.0, "{reason}");
    }
    assert_eq!(world.metric("sealdrop_hub_errors_total", "code=\"gone\""), 1.0);
    assert_eq!(world.metric("sealdrop_hub_uploaded_bytes_total", ""), (10_000 + 500 + 700 + 300) as f64);
    assert_eq!(world.metric("sealdrop_hub_downloaded_bytes_total", ""), 10_000.0);
    assert_eq!(world.metric("sealdrop_hub_sweeper_runs_total", "result=\"ok\""), sweeps_at_start + 1.0);
    // The expired drop's ciphertext and the abandoned drop's upload.
    assert_eq!(world.metric("sealdrop_hub_sweeper_files_removed_total", ""), 2.0);
    assert_eq!(world.metric("sealdrop_hub_sweeper_last_run_timestamp_seconds", ""), world.now() as f64);
    assert_eq!(world.metric("sealdrop_hub_requests_in_flight", ""), 0.0);
}

#[tokio::test]
async fn serve_with_tls_and_a_metrics_listener_then_stop() {
    let world = World::start_ops().await;
    let hub = world.hub().clone();
    let tmp = tempfile::tempdir().unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let (cert, key) = (tmp.path().join("hub.crt"), tmp.path().join("hub.key"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (addr, metrics_addr) = (listener.local_addr().unwrap(), metrics.local_addr().unwrap());
    let options = ServeOptions {
        tls: Some(sealdrop_hub::tls::server_config(&cert, &key).unwrap()),
        metrics: Some(metrics),
        shutdown_grace: config::DEFAULT_SHUTDOWN_GRACE,
        header_read_timeout: config::DEFAULT_HEADER_READ_TIMEOUT,
        connections: sealdrop_hub::connections::ConnectionLimits::default(),
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(sealdrop_hub::serve_with(listener, hub, options, async {
        stopped.await.ok();
    }));

    let trusted = reqwest::Certificate::from_pem(certified.cert.pem().as_bytes()).unwrap();
    let client = reqwest::Client::builder().no_proxy().tls_certs_only([trusted]).build().unwrap();
    let resp = client.get(format!("https://{addr}/healthz")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.version(), reqwest::Version::HTTP_11, "only HTTP/1.1 is offered");
    let info: serde_json::Value =
        client.get(format!("https://{addr}/v1/info")).send().await.unwrap().json().await.unwrap();
    assert_eq!(info["origin"], common::ORIGIN);
    assert!(world.client.get(format!("http://{addr}/healthz")).send().await.is_err(), "plain HTTP on the TLS port");

    let text = world.client.get(format!("http://{metrics_addr}/metrics")).send().await.unwrap();
    assert_eq!(text.headers()["content-type"], sealdrop_hub::metrics::CONTENT_TYPE);
    let text = text.text().await.unwrap();
    let healthz = "method=\"GET\",route=\"/healthz\",status=\"200\"";
    assert_eq!(sample(&text, "sealdrop_hub_requests_total", healthz), Some(1.0), "{text}");
    assert_eq!(sample(&text, "sealdrop_hub_transfer_log_entries", ""), Some(1.0), "{text}");

    stop.send(()).unwrap();
    let done = tokio::time::timeout(std::time::Duration::from_secs(10), server).await;
    done.expect("serve_with returns once stopped").unwrap().unwrap();
    assert!(world.client.get(format!("http://{metrics_addr}/metrics")).send().await.is_err(), "metrics stopped too");
}
