//! Running a hub: TLS in the hub with a council's private CA, the config
//! file and `check-config`, health and readiness, Prometheus metrics after a
//! real send and fetch, JSON logs that never hold names, content or keys,
//! and a graceful shutdown bounded by `shutdown_grace`. All against the
//! real `sealdrop-hub` and `sealdrop` binaries.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use sealdrop_e2e::{
    AGREEMENT, Hub, Party, TestTls, error_code, http, hub_command, json, member_key, read_bytes, read_text, write_file,
};
use sealdrop_proto::request::sign_request;

fn tls_client(ca: &Path) -> reqwest::blocking::Client {
    let cert = reqwest::Certificate::from_pem(&read_bytes(ca)).expect("CA PEM");
    reqwest::blocking::Client::builder().no_proxy().tls_certs_only([cert]).build().expect("TLS client")
}

/// The value of the sample `name{labels}` in metrics text.
fn sample(text: &str, name: &str, labels: &str) -> f64 {
    find_sample(text, name, labels).unwrap_or_else(|| panic!("no sample {name}{{{labels}}} in:\n{text}"))
}

fn find_sample(text: &str, name: &str, labels: &str) -> Option<f64> {
    let wanted = if labels.is_empty() { name.to_owned() } else { format!("{name}{{{labels}}}") };
    text.lines().find_map(|line| {
        let (key, value) = line.rsplit_once(' ')?;
        (key == wanted).then(|| value.parse().ok()).flatten()
    })
}

#[test]
fn tls_in_the_hub_send_and_fetch_with_the_councils_ca() {
    let tls = TestTls::new();
    let options = tls.serve_options();
    let options: Vec<&str> = options.iter().map(String::as_str).collect();
    let hub = Hub::start_with_options(&options);
    assert!(hub.url.starts_with("https://127.0.0.1:"), "{}", hub.url);

    // A real handshake with the CA trusted: the request succeeds.
    let reply = http::Reply::from(tls_client(&tls.ca()).get(format!("{}/healthz", hub.url)).send());
    assert_eq!((reply.status, reply.body.as_str()), (200, "ok\n"));
    // Without the CA the certificate is refused...
    let untrusted = reqwest::blocking::Client::builder().no_proxy().build().unwrap();
    let err = untrusted.get(format!("{}/healthz", hub.url)).send().expect_err("an untrusted certificate");
    assert!(format!("{err:?}").contains("UnknownIssuer"), "{err:?}");
    // ... and plain HTTP to the TLS port gets no HTTP answer.
    let plain = http::client().get(format!("http://{}/healthz", hub.addr)).send();
    assert!(plain.is_err(), "plain HTTP on the TLS port was answered: {:?}", plain.map(|r| r.status()));

    // The client, given the CA with --hub-ca, sends and fetches over TLS.
    let mut camden = Party::new(&hub, "camden");
    let mut islington = Party::new(&hub, "islington");
    let content = b"upn,fsm\nA123,1\nsent over TLS\n".to_vec();
    let file = camden.file("pupils.csv", &content);
    // Without the CA the client says what to do.
    let (exit, stderr) = camden.fail(["send", "--to", "islington", file.to_str().unwrap()]);
    assert_eq!(error_code(&stderr).as_deref(), Some("hub_untrusted"), "{stderr}");
    assert!(stderr.contains("--hub-ca"), "{stderr}");
    assert_eq!(exit, 5, "{stderr}");
    camden.hub_ca = Some(tls.ca());
    islington.hub_ca = Some(tls.ca());
    let id = camden.send("islington", &[&file]);
    let out = islington.work().join("in");
    islington.fetch(&id, &out);
    assert_eq!(read_bytes(&out.join("pupils.csv")), content);
    assert_eq!(islington.status().len(), 0, "islington sent nothing");
    assert_eq!(camden.status_of(&id)["state"], "delivered");

    // The CA from the environment works the same; a file that is no CA is refused.
    let mut cmd = islington.command();
    let not_pem = islington.file("not-a-ca.pem", "hello");
    cmd.env("SEALDROP_HUB_CA", &not_pem).arg("inbox");
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The flag (set by Party) wins over the variable, so this one works...
    assert!(out.status.success(), "{stderr}");
    islington.hub_ca = None;
    let mut cmd = islington.command();
    cmd.env("SEALDROP_HUB_CA", &not_pem).arg("inbox");
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert_eq!(error_code(&stderr).as_deref(), Some("bad_hub_ca"), "{stderr}");
    let mut cmd = islington.command();
    cmd.env("SEALDROP_HUB_CA", tls.ca()).args(["inbox", "--json"]);
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(json(&String::from_utf8_lossy(&out.stdout)), serde_json::json!([]));
}

/// Runs `sealdrop-hub check-config ARGS` with `env`; returns (success, stdout, stderr).
fn check_config(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let mut cmd = hub_command();
    cmd.arg("check-config").args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run check-config");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn assert_error_lines(stderr: &str, needles: &[&str]) {
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), needles.len(), "one `error:` or `error[code]:` line per problem, got:\n{stderr}");
    for line in &lines {
        assert!(line.starts_with("error: ") || (line.starts_with("error[") && line.contains("]: ")), "{stderr}");
    }
    for needle in needles {
        assert!(stderr.contains(needle), "{needle:?} is not in:\n{stderr}");
    }
}

#[test]
fn check_config_reaches_the_object_store_that_blobs_names_and_serve_stops_on_a_missing_bucket() {
    let s3 = sealdrop_testservers::S3Server::start();
    let env: Vec<(&str, String)> = s3.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut init_env = env.clone();
    init_env.push(("SEALDROP_HUB_BLOBS", "s3://sealdrop-test/hub/"));
    let data = Hub::init_data_with(&init_env);
    let dir = data.path().to_str().unwrap();
    let before = sealdrop_e2e::tree(data.path());
    let (ok, stdout, stderr) = check_config(&["--data", dir, "--blobs", "s3://sealdrop-test/hub/"], &env);
    assert!(ok, "{stderr}");
    assert!(stdout.lines().any(|l| l.starts_with("blobs = \"s3://sealdrop-test/hub\"") && l.ends_with("# --blobs")));
    assert!(
        stdout.contains("ciphertexts are kept in s3://sealdrop-test/hub, which holds 0 blobs and 0 uploads"),
        "{stdout}"
    );
    assert!(sealdrop_e2e::tree(data.path()) == before, "check-config changed the data directory");
    // The hub keeps its ciphertexts where it was made to: any other location is refused.
    let (ok, _, stderr) = check_config(&["--data", dir], &env);
    assert!(!ok);
    assert_error_lines(
        &stderr,
        &[
            "error[blob_store]: blobs = \"files\": this hub's ciphertexts are in s3://sealdrop-test/hub; set blobs = \"s3://sealdrop-test/hub\"",
        ],
    );

    // No such bucket, and wrong credentials: one line each, with its code.
    let (ok, _, stderr) = check_config(&["--data", dir, "--blobs", "s3://no-such-bucket"], &env);
    assert!(!ok);
    assert_error_lines(&stderr, &["error[blob_store]: blobs = \"s3://no-such-bucket\": cannot list"]);
    let mut wrong = env.clone();
    wrong.push(("AWS_SECRET_ACCESS_KEY", "not-the-secret"));
    let (ok, _, stderr) = check_config(&["--data", dir, "--blobs", "s3://sealdrop-test/hub"], &wrong);
    assert!(!ok);
    assert_error_lines(&stderr, &["error[blob_store]: blobs = \"s3://sealdrop-test/hub\""]);

    // serve keeps larger ciphertexts in the bucket (tests/tests/object_store.rs);
    // one it cannot reach stops the start (at the start-up clean-up) and
    // serves nothing, and so does another location than the hub's.
    for (blobs, env, says) in [
        ("s3://sealdrop-test/hub", &wrong, "in the object store"),
        ("s3://no-such-bucket", &env, "this hub's ciphertexts are in s3://sealdrop-test/hub, not s3://no-such-bucket"),
    ] {
        let mut serve = hub_command();
        serve.args(["serve", "--data", dir, "--listen", "127.0.0.1:0", "--blobs", blobs]).envs(env.iter().copied());
        let out = serve.output().unwrap();
        assert!(!out.status.success());
        assert!(out.stdout.is_empty(), "it listened: {}", String::from_utf8_lossy(&out.stdout));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{stderr}");
    }
}

#[test]
fn check_config_prints_the_effective_settings_or_every_problem() {
    let data = Hub::init_data();
    let tls = TestTls::new();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hub.toml");
    write_file(
        &config,
        format!(
            "# the hub\ndata = {:?}\nlisten = \"127.0.0.1:0\"\ntls_cert = {:?}\ntls_key = {:?}\n\
             metrics_listen = \"127.0.0.1:0\"\nlog_format = \"json\"\nshutdown_grace = 5\nsweep_interval = 30\n\
             max_upload_bytes = 1048576\n",
            data.path(),
            tls.cert(),
            tls.key()
        ),
    );
    let cfg = config.to_str().unwrap();
    let (ok, stdout, stderr) = check_config(&["--config", cfg], &[]);
    assert!(ok, "{stderr}");
    let line = |key: &str| -> String {
        stdout
            .lines()
            .find(|l| l.starts_with(&format!("{key} =")))
            .unwrap_or_else(|| panic!("{key}: {stdout}"))
            .to_owned()
    };
    assert!(line("listen").contains("\"127.0.0.1:0\"") && line("listen").contains("key `listen`"), "{stdout}");
    assert!(line("shutdown_grace").contains("= 5"), "{stdout}");
    assert!(line("max_upload_bytes").contains("= 1048576"), "{stdout}");
    assert!(line("log_filter").contains("\"info\"") && line("log_filter").ends_with("# default"), "{stdout}");
    assert!(stdout.contains("log verifier key is test-hub+"), "{stdout}");

    // The environment beats the file, a flag beats the environment.
    let env = [("SEALDROP_HUB_SHUTDOWN_GRACE", "7"), ("SEALDROP_HUB_LOG_FORMAT", "text")];
    let (ok, stdout, stderr) = check_config(&["--config", cfg, "--log-format", "json"], &env);
    assert!(ok, "{stderr}");
    let grace = stdout.lines().find(|l| l.starts_with("shutdown_grace")).unwrap();
    assert!(grace.contains("= 7") && grace.ends_with("# SEALDROP_HUB_SHUTDOWN_GRACE"), "{stdout}");
    let format = stdout.lines().find(|l| l.starts_with("log_format")).unwrap();
    assert!(format.contains("\"json\"") && format.ends_with("# --log-format"), "{stdout}");
    // The config file can come from the environment too.
    let (ok, _, stderr) = check_config(&[], &[("SEALDROP_HUB_CONFIG", cfg)]);
    assert!(ok, "{stderr}");

    // serve takes the same file: TLS and metrics as configured.
    let mut serve = hub_command();
    serve.args(["serve", "--config", cfg]).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let mut child = serve.spawn().unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut api = String::new();
    let mut metrics = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut api).unwrap();
    std::io::BufRead::read_line(&mut stdout, &mut metrics).unwrap();
    let ready = tls_client(&tls.ca()).get(format!("https://{}/readyz", api.trim())).send().unwrap();
    assert_eq!(ready.status(), 200);
    let scraped = http::client().get(format!("http://{}/metrics", metrics.trim())).send().unwrap();
    assert_eq!(scraped.status(), 200);
    let _ = child.kill();
    let _ = child.wait();

    // An unknown key is refused by name; nothing is printed on stdout.
    let bad = dir.path().join("bad.toml");
    write_file(&bad, format!("data = {:?}\nlisten_address = \"127.0.0.1:1\"\n", data.path()));
    let (ok, stdout, stderr) = check_config(&["--config", bad.to_str().unwrap()], &[]);
    assert!(!ok && stdout.is_empty(), "{stdout}");
    assert_error_lines(&stderr, &["unknown key `listen_address`"]);

    // Bad values: each named with its source, one line each.
    write_file(&bad, "data = \"hub\"\nlisten = \"everywhere\"\nshutdown_grace = \"soon\"\n");
    let (ok, _, stderr) = check_config(
        &["--config", bad.to_str().unwrap(), "--log-format", "yaml"],
        &[("SEALDROP_HUB_MAX_UPLOAD_BYTES", "-1")],
    );
    assert!(!ok);
    assert_error_lines(
        &stderr,
        &[
            "key `listen` = \"everywhere\"",
            "key `shutdown_grace` = \"soon\"",
            "--log-format = \"yaml\"",
            "SEALDROP_HUB_MAX_UPLOAD_BYTES = \"-1\"",
        ],
    );

    // What the settings point to: a folder that is no hub, a key that is
    // not the certificate's.
    let other = TestTls::new();
    let empty = tempfile::tempdir().unwrap();
    let (ok, _, stderr) = check_config(
        &[
            "--data",
            empty.path().to_str().unwrap(),
            "--tls-cert",
            tls.cert().to_str().unwrap(),
            "--tls-key",
            other.key().to_str().unwrap(),
        ],
        &[],
    );
    assert!(!ok);
    assert_error_lines(&stderr, &["is not an initialised hub data directory", "does not belong to the certificate"]);
    // A missing config file, and no data directory at all.
    let (ok, _, stderr) = check_config(&["--config", dir.path().join("missing.toml").to_str().unwrap()], &[]);
    assert!(!ok);
    assert_error_lines(&stderr, &["cannot read the config file"]);
    let (ok, _, stderr) = check_config(&[], &[]);
    assert!(!ok);
    assert_error_lines(&stderr, &["no data directory"]);
}

#[test]
fn health_readiness_and_metrics_after_a_real_send_and_fetch() {
    let hub = Hub::start_with_options(&["--metrics-listen", "127.0.0.1:0"]);
    let client = http::client();
    let healthz = http::Reply::from(client.get(format!("{}/healthz", hub.url)).send());
    assert_eq!((healthz.status, healthz.body.as_str()), (200, "ok\n"));
    let readyz = http::Reply::from(client.get(format!("{}/readyz", hub.url)).send());
    assert_eq!(readyz.status, 200, "{readyz:?}");
    let ready = json(&readyz.body);
    assert_eq!(ready["ready"], true);
    let names: Vec<&str> = ready["checks"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["not_shutting_down", "data_dir", "database", "blob_store", "transfer_log"]);
    // Metrics are not on the API listener.
    let on_api = http::Reply::from(client.get(format!("{}/metrics", hub.url)).send());
    on_api.assert_error(404, "not_found");

    let camden = Party::new(&hub, "camden");
    let islington = Party::new(&hub, "islington");
    let content = sealdrop_e2e::pseudo_random_bytes(200_000, 11);
    let file = camden.file("cohort.bin", &content);
    let id = camden.send("islington", &[&file]);
    let out = islington.work().join("in");
    islington.fetch(&id, &out);
    assert_eq!(read_bytes(&out.join("cohort.bin")), content);
    // Two refusals with stable codes: no signature, and no such route.
    http::Reply::from(client.get(format!("{}/v1/inbox", hub.url)).send()).assert_error(401, "unauthenticated");
    http::Reply::from(client.get(format!("{}/v1/nowhere/{id}", hub.url)).send()).assert_error(404, "not_found");

    // A hash tile and an entry bundle (directory, committed, fetched,
    // acknowledged, deleted: 5 entries so far), read as an auditor would.
    for tile in ["0/000.p/5", "entries/000.p/5"] {
        let reply = hub.read(&format!("/v1/log/tile/{tile}"));
        assert_eq!(reply.status, 200, "{tile}: {reply:?}");
    }

    let text = hub.scrape();
    // Tiles are labelled by what they are, from a fixed set: never the raw
    // path, nor the router's catch-all `{*path}`.
    let tile = "method=\"GET\",route=\"/v1/log/tile/{level}/{index}\",status=\"200\"";
    assert_eq!(sample(&text, "sealdrop_hub_requests_total", tile), 1.0, "{text}");
    let entries = "method=\"GET\",route=\"/v1/log/tile/entries/{index}\",status=\"200\"";
    assert_eq!(sample(&text, "sealdrop_hub_requests_total", entries), 1.0, "{text}");
    assert!(!text.contains("{*path}") && !text.contains("000.p"), "{text}");
    assert_eq!(sample(&text, "sealdrop_hub_drops_created_total", ""), 1.0);
    assert_eq!(sample(&text, "sealdrop_hub_drops_committed_total", ""), 1.0);
    assert_eq!(sample(&text, "sealdrop_hub_drops_fetched_total", ""), 1.0);
    assert_eq!(sample(&text, "sealdrop_hub_drops_acknowledged_total", ""), 1.0);
    assert_eq!(sample(&text, "sealdrop_hub_drops_deleted_total", "reason=\"delivered\""), 1.0);
    let uploaded = sample(&text, "sealdrop_hub_uploaded_bytes_total", "");
    let downloaded = sample(&text, "sealdrop_hub_downloaded_bytes_total", "");
    assert_eq!(uploaded, downloaded, "the one upload and the one download are the same ciphertext");
    // The tar archive padded to its size class, then age's header (a
    // post-quantum stanza is ~1,560 bytes) and tags.
    let archive = 512 + (content.len() as u64).div_ceil(512) * 512 + 1024;
    let padded = sealdrop_proto::padding::padded_len(archive) as f64;
    assert!(uploaded > padded && uploaded < padded + 3072.0, "{uploaded}");
    assert_eq!(sample(&text, "sealdrop_hub_errors_total", "code=\"unauthenticated\""), 1.0);
    assert!(sample(&text, "sealdrop_hub_errors_total", "code=\"not_found\"") >= 2.0, "{text}");
    // 200 kB fits in one request: created, uploaded and committed at once.
    let put = "method=\"PUT\",route=\"/v1/drops/{id}\",status=\"200\"";
    assert_eq!(sample(&text, "sealdrop_hub_requests_total", put), 1.0);
    let get = "method=\"GET\",route=\"/v1/drops/{id}/content\"";
    assert_eq!(sample(&text, "sealdrop_hub_request_duration_seconds_count", get), 1.0);
    // GET /metrics on the API listener and GET /v1/nowhere/...: two unmatched routes.
    assert_eq!(sample(&text, "sealdrop_hub_requests_total", "method=\"GET\",route=\"unmatched\",status=\"404\""), 2.0);
    assert!(sample(&text, "sealdrop_hub_sweeper_runs_total", "result=\"ok\"") >= 1.0, "the start-up sweep");
    assert_eq!(sample(&text, "sealdrop_hub_requests_in_flight", ""), 0.0);
    // The log gauge is the checkpoint's size: directory, committed, fetched,
    // acknowledged, deleted.
    let checkpoint = hub.read("/v1/log/checkpoint").body;
    let size: f64 = checkpoint.lines().nth(1).unwrap().parse().unwrap();
    assert_eq!(size, 5.0, "{checkpoint}");
    assert_eq!(sample(&text, "sealdrop_hub_transfer_log_entries", ""), size);
    // No label holds a drop id, a party or a raw path.
    for needle in [id.as_str(), "camden", "islington", "/v1/nowhere"] {
        assert!(!text.contains(needle), "{needle:?} appears in the metrics:\n{text}");
    }
    assert!(!contains_drop_id(&text), "a drop id appears in the metrics:\n{text}");
}

/// Whether `text` holds anything shaped like a drop id (`d-` and 26
/// lowercase letters or digits).
fn contains_drop_id(text: &str) -> bool {
    text.match_indices("d-").any(|(at, _)| text.get(at..at + 28).is_some_and(sealdrop_e2e::is_drop_id))
}

/// The secret parts of a member key file: the age identity and the signing key.
fn member_secrets(party: &str) -> Vec<String> {
    let text = read_text(&sealdrop_e2e::keys_example().join("parties").join(format!("{party}.key")));
    let secrets: Vec<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("age-identity: ").or_else(|| l.strip_prefix("signing-key: ")))
        .map(|s| s.trim().to_owned())
        .collect();
    assert_eq!(secrets.len(), 2, "{party}'s key file has an age identity and a signing key");
    secrets
}

#[test]
fn json_logs_parse_and_hold_no_file_names_content_or_keys() {
    let mut hub = Hub::start_with_options(&["--log-format", "json", "--log-filter", "debug"]);
    let camden = Party::new(&hub, "camden");
    let islington = Party::new(&hub, "islington");
    let name = "Zanzibar-Academy-pupil-premium-7f3a.csv";
    let marker = "QUOKKA-CONTENT-MARKER-51c9e2";
    let content = format!("upn,name\nA123,{marker}\n").repeat(50);
    let file = camden.file(name, &content);
    let id = camden.send("islington", &[&file]);
    let out = islington.work().join("in");
    islington.fetch(&id, &out);
    assert_eq!(read_text(&out.join(name)), content);
    // A refused request logs too.
    http::Reply::from(http::client().get(format!("{}/v1/inbox", hub.url)).send()).assert_error(401, "unauthenticated");
    let (status, _) = hub.terminate();
    assert!(status.success(), "{status}");

    let log = hub.log();
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.len() > 10, "the hub logged its requests:\n{log}");
    for line in &lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("a log line is not JSON ({e}): {line}"));
        assert!(v["timestamp"].is_string() && v["level"].is_string(), "{line}");
    }
    // The request lines carry the route template and the drop id, not the path.
    let request = lines
        .iter()
        .map(|l| json(l))
        .find(|v| v["span"]["route"] == "/v1/drops/{id}/content" && v["message"] == "request")
        .unwrap_or_else(|| panic!("no request line for the content route:\n{log}"));
    assert_eq!(request["span"]["drop"], id.as_str(), "{request}");

    let log_key = read_text(&hub.data.path().join("log.key"));
    // PRIVATE+KEY+<name>+<id>+<base64, which may itself hold '+'>.
    let log_key_secret = log_key.trim().splitn(5, '+').nth(4).unwrap().to_owned();
    assert!(log_key_secret.len() >= 40, "the log key's secret part: {log_key}");
    let mut secrets = vec![log_key_secret];
    secrets.extend(member_secrets("camden"));
    secrets.extend(member_secrets("islington"));
    let mut never = vec![name.to_owned(), "Zanzibar".to_owned(), marker.to_owned(), hex::encode(marker)];
    never.extend(secrets);
    for needle in &never {
        assert!(!log.contains(needle.as_str()), "the hub's log holds {needle:?}:\n{log}");
    }
}

/// A drop created by camden for islington, as the raw API sees it.
fn create_drop(hub: &Hub) -> String {
    let key = member_key("camden");
    let body = serde_json::json!({
        "recipients": ["islington"],
        "agreement": AGREEMENT,
        "expires": sealdrop_proto::Timestamp::from_second(http::now() + 86_400).unwrap(),
    });
    let reply = http::signed_at(&hub.url, &key.signing, "POST", "/v1/drops", http::now(), body.to_string().as_bytes());
    assert_eq!(reply.status, 200, "{reply:?}");
    json(&reply.body)["id"].as_str().unwrap().to_owned()
}

/// Starts an upload of `len` bytes to drop `id` on a raw connection, sending
/// only the head and `first` bytes of the body.
fn start_upload(hub: &Hub, id: &str, len: usize, first: &[u8]) -> TcpStream {
    let path = format!("/v1/drops/{id}/content");
    let auth = sign_request(&member_key("camden").signing, "PUT", &path, http::now(), None);
    let mut head = format!(
        "PUT {path} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/octet-stream\r\ncontent-length: {len}\r\n",
        hub.addr
    );
    for (name, value) in auth.headers() {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut conn = TcpStream::connect(&hub.addr).expect("connect to the hub");
    conn.write_all(head.as_bytes()).unwrap();
    conn.write_all(first).unwrap();
    conn.flush().unwrap();
    conn
}

#[test]
fn sigterm_lets_a_slow_upload_finish_then_stops() {
    let mut hub = Hub::start_with_options(&["--shutdown-grace", "20"]);
    let id = create_drop(&hub);
    let body = sealdrop_e2e::pseudo_random_bytes(300_000, 5);
    let mut conn = start_upload(&hub, &id, body.len(), &body[..100_000]);
    // Let the hub take the first part before the signal.
    std::thread::sleep(Duration::from_millis(300));
    let signalled = Instant::now();
    hub.signal_term();
    std::thread::sleep(Duration::from_millis(500));
    // The hub no longer accepts connections, but is still running.
    assert!(TcpStream::connect(&hub.addr).is_err(), "the hub still accepts connections after SIGTERM");
    // The rest of the upload arrives slowly, after the signal.
    for chunk in body[100_000..].chunks(50_000) {
        conn.write_all(chunk).unwrap();
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "the upload in flight was not completed: {answer}");
    let json_start = answer.find("\r\n\r\n").unwrap() + 4;
    let uploaded = json(answer[json_start..].trim());
    assert_eq!(uploaded["len"], body.len());
    assert_eq!(uploaded["sha256"], sealdrop_e2e::sha256_hex(&body));
    let (status, _) = hub.terminate_wait();
    assert!(status.success(), "{status}");
    assert!(signalled.elapsed() < Duration::from_secs(10), "the hub waited for nothing once the upload finished");
    let log = hub.log();
    assert!(log.contains("shutting down") && log.contains("stopped"), "{log}");
    assert!(!log.contains("grace period ended"), "nothing was cut off:\n{log}");

    // The completed upload is kept: after a restart the hub holds all of it.
    hub.restart();
    let reply = http::signed_get(&hub.url, &member_key("camden").signing, &format!("/v1/drops/{id}/upload"));
    assert_eq!(reply.status, 200, "{reply:?}");
    let progress = json(&reply.body);
    assert_eq!((progress["received"].as_u64(), progress["complete"].as_bool()), (Some(300_000), Some(true)));
}

#[test]
fn sigterm_cuts_off_an_upload_that_outlasts_the_grace() {
    let mut hub = Hub::start_with_options(&["--shutdown-grace", "1.5"]);
    let id = create_drop(&hub);
    let mut conn = start_upload(&hub, &id, 1_000_000, &[7u8; 1000]);
    std::thread::sleep(Duration::from_millis(300));
    let signalled = Instant::now();
    hub.signal_term();
    let (status, _) = hub.terminate_wait();
    let took = signalled.elapsed();
    assert!(status.success(), "{status}");
    assert!(took >= Duration::from_millis(1400), "the hub did not wait for the upload in flight: {took:?}");
    assert!(took < Duration::from_millis(4500), "the hub overran its 1.5 s grace: {took:?}");
    // The connection was closed without an answer.
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut answer = Vec::new();
    let _ = conn.read_to_end(&mut answer);
    assert!(!String::from_utf8_lossy(&answer).contains("HTTP/1.1 200"), "{}", String::from_utf8_lossy(&answer));
    let log = hub.log();
    assert!(log.contains("grace period ended"), "the cut-off is logged:\n{log}");
}

/// `key=value` lines of a systemd unit, by key (a key may repeat).
fn unit_settings(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';') && !l.starts_with('['))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

/// A unit's settings, with `one(key)` (the last value, which is the one
/// systemd uses) and `all(key)` for keys that may repeat.
struct Unit {
    path: std::path::PathBuf,
    text: String,
    settings: Vec<(String, String)>,
}

impl Unit {
    fn read(relative: &str) -> Self {
        let path = sealdrop_e2e::repo_root().join(relative);
        let text = read_text(&path);
        let settings = unit_settings(&text);
        Self { path, text, settings }
    }

    fn all(&self, key: &str) -> Vec<&str> {
        self.settings.iter().filter(|(k, _)| k == key).map(|(_, v)| v.as_str()).collect()
    }

    fn one(&self, key: &str) -> &str {
        self.all(key)
            .last()
            .copied()
            .unwrap_or_else(|| panic!("{} does not set {key}:\n{}", self.path.display(), self.text))
    }

    /// The sandboxing every sealdrop service runs under: a file system it
    /// cannot write outside its own folders, no privileges to gain, no
    /// capabilities, the system calls of an ordinary service, private files.
    fn assert_hardened(&self) {
        for (key, value) in [
            ("ProtectSystem", "strict"),
            ("NoNewPrivileges", "yes"),
            ("PrivateTmp", "yes"),
            ("PrivateDevices", "yes"),
            ("ProtectHome", "yes"),
            ("MemoryDenyWriteExecute", "yes"),
            ("LockPersonality", "yes"),
            ("RestrictRealtime", "yes"),
            ("RestrictSUIDSGID", "yes"),
            ("RestrictNamespaces", "yes"),
            ("ProtectKernelTunables", "yes"),
            ("ProtectKernelModules", "yes"),
            ("ProtectControlGroups", "yes"),
            ("SystemCallArchitectures", "native"),
            ("CapabilityBoundingSet", ""),
            ("UMask", "0077"),
        ] {
            assert_eq!(self.one(key), value, "{key} in {}", self.path.display());
        }
        assert!(self.all("SystemCallFilter").contains(&"@system-service"), "{}", self.text);
        let families: Vec<&str> = self.one("RestrictAddressFamilies").split_whitespace().collect();
        assert_eq!(families, ["AF_INET", "AF_INET6", "AF_UNIX"], "{}", self.path.display());
    }

    /// Every `--flag` of ExecStart appears in `help` (the subcommand's
    /// `--help`) as a word of its own (`--dir <DIR>`, `--once`), so a
    /// longer flag that merely starts with it does not count.
    fn assert_flags_in(&self, help: &str) {
        let exec = self.one("ExecStart");
        let words: Vec<&str> = help.split(|c: char| c.is_whitespace() || c == ',' || c == '=').collect();
        for flag in exec.split_whitespace().filter(|w| w.starts_with("--")) {
            assert!(words.contains(&flag), "ExecStart's {flag} is not in the --help:\n{help}");
        }
    }
}

/// `systemd-analyze verify` accepts the units, given together (a timer needs
/// its service beside it), with `from` in each (the installed binary's path)
/// replaced by `to` (the built one), and warns about none of them.
fn systemd_accepts(units: &[&Unit], from: &str, to: &Path) {
    let dir = tempfile::tempdir().unwrap();
    let mut copies = Vec::new();
    for unit in units {
        let copy = dir.path().join(unit.path.file_name().unwrap());
        write_file(&copy, unit.text.replace(from, &to.to_string_lossy()));
        copies.push(copy);
    }
    let verify = std::process::Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .args(&copies)
        .output()
        .expect("systemd-analyze must be installed (.ci/run installs systemd)");
    let stderr = String::from_utf8_lossy(&verify.stderr);
    assert!(verify.status.success(), "systemd-analyze verify refused a unit:\n{stderr}");
    for unit in units {
        let name = unit.path.file_name().unwrap().to_string_lossy();
        assert!(!stderr.contains(&format!("{name}:")), "systemd-analyze warned about {name}:\n{stderr}");
    }
}

#[test]
fn the_systemd_unit_is_hardened_and_its_flags_exist() {
    let root = sealdrop_e2e::repo_root();
    let unit = Unit::read("deploy/sealdrop-hub.service");
    unit.assert_hardened();
    assert!(unit.one("ReadWritePaths").split_whitespace().any(|p| p == "/var/lib/sealdrop"), "{}", unit.text);
    assert!(
        unit.all("User").len() == 1 || unit.one("DynamicUser") == "yes",
        "a dedicated or dynamic user: {}",
        unit.text
    );
    // Time to drain: systemd's stop timeout outlasts the grace in deploy/hub.toml.
    let toml: toml::Table = read_text(&root.join("deploy/hub.toml")).parse().unwrap();
    let grace = toml["shutdown_grace"].as_integer().unwrap();
    let stop_timeout: i64 = unit.one("TimeoutStopSec").trim_end_matches('s').parse().unwrap();
    assert!(stop_timeout > grace, "TimeoutStopSec {stop_timeout} must exceed shutdown_grace {grace}");

    // Every flag of ExecStart exists in `serve --help`.
    let exec = unit.one("ExecStart");
    let mut words = exec.split_whitespace();
    let binary = words.next().unwrap();
    assert!(binary.ends_with("/sealdrop-hub"), "{exec}");
    assert_eq!(words.next(), Some("serve"), "{exec}");
    assert!(exec.split_whitespace().any(|w| w == "--config"), "{exec}");
    let help = hub_command().args(["serve", "--help"]).output().unwrap();
    unit.assert_flags_in(&String::from_utf8_lossy(&help.stdout));

    // systemd itself accepts the unit (with ExecStart pointing at the built binary).
    systemd_accepts(&[&unit], binary, &sealdrop_e2e::bins().hub);
}

/// The folder the watch units serve, and the words of their ExecStart after
/// the binary, checked against what docs/watch.md sets up.
fn watch_exec(unit: &Unit) -> (String, Vec<String>) {
    let exec = unit.one("ExecStart");
    let mut words = exec.split_whitespace();
    assert_eq!(words.next(), Some("/usr/local/bin/sealdrop"), "{exec}");
    let words: Vec<String> = words.map(str::to_owned).collect();
    assert_eq!(words.first().map(String::as_str), Some("watch"), "{exec}");
    let dir = words.iter().skip_while(|w| *w != "--dir").nth(1).unwrap_or_else(|| panic!("no --dir in {exec}"));
    (dir.clone(), words)
}

#[test]
fn the_watch_units_are_hardened_and_systemd_accepts_them() {
    let service = Unit::read("deploy/sealdrop-watch.service");
    let once = Unit::read("deploy/sealdrop-watch-once.service");
    let timer = Unit::read("deploy/sealdrop-watch-once.timer");
    for unit in [&service, &once] {
        unit.assert_hardened();
        // Its own user: a folder of staff's files and a member key that no
        // other service on the machine can reach, nor it theirs.
        assert_eq!(unit.all("User"), ["sealdrop-watch"], "{}", unit.path.display());
        assert_eq!(unit.one("StateDirectory"), "sealdrop-watch", "{}", unit.path.display());
        assert_eq!(unit.one("StateDirectoryMode"), "0700", "{}", unit.path.display());
        // It may write to the folder it watches, and nowhere else outside its state.
        let (dir, _) = watch_exec(unit);
        assert!(dir.starts_with("/srv/sealdrop/"), "{dir}");
        assert_eq!(unit.all("ReadWritePaths"), [dir.as_str()], "{}", unit.path.display());
        // The member key's passphrase comes from an encrypted credential
        // under the name the client reads (docs/key-protection.md), never
        // from the environment.
        let credential = unit.one("LoadCredentialEncrypted");
        assert!(credential.starts_with("sealdrop-passphrase:/"), "{credential}");
        for env in unit.all("Environment") {
            assert!(!env.to_lowercase().contains("pass"), "a passphrase in the environment: {env}");
        }
        assert!(unit.one("Environment").starts_with("SEALDROP_CONFIG=/var/lib/sealdrop-watch/"), "{}", unit.text);
    }
    let (_, words) = watch_exec(&service);
    assert!(!words.iter().any(|w| w == "--once"), "the service runs until stopped: {words:?}");
    assert!(words.iter().any(|w| w == "--status-listen"), "{words:?}");
    let listen = words.iter().skip_while(|w| *w != "--status-listen").nth(1).unwrap();
    assert!(listen.starts_with("127.0.0.1:"), "/healthz and /metrics stay on loopback: {listen}");
    assert_eq!(service.one("Restart"), "on-failure");
    assert_eq!(service.one("Type"), "exec");
    let (_, words) = watch_exec(&once);
    assert!(words.iter().any(|w| w == "--once"), "{words:?}");
    assert_eq!(once.one("Type"), "oneshot");
    assert_eq!(watch_exec(&once).0, watch_exec(&service).0, "both units serve one folder");
    assert!(timer.one("OnUnitInactiveSec").ends_with("min"), "{}", timer.text);

    systemd_accepts(&[&service, &once, &timer], "/usr/local/bin/sealdrop", &sealdrop_e2e::bins().client);
}

#[test]
fn every_flag_the_watch_units_give_is_in_watch_help() {
    let help = std::process::Command::new(&sealdrop_e2e::bins().client).args(["watch", "--help"]).output().unwrap();
    assert!(help.status.success(), "`sealdrop watch --help`: {}", String::from_utf8_lossy(&help.stderr));
    let help = String::from_utf8_lossy(&help.stdout);
    for unit in ["deploy/sealdrop-watch.service", "deploy/sealdrop-watch-once.service"] {
        Unit::read(unit).assert_flags_in(&help);
    }
}

#[test]
fn the_example_hub_toml_is_a_valid_config() {
    let root = sealdrop_e2e::repo_root();
    let example = root.join("deploy/hub.toml");
    // Its paths are a server's; point them at a test hub and certificate.
    let data = Hub::init_data();
    let tls = TestTls::new();
    let (ok, stdout, stderr) = check_config(
        &[
            "--config",
            example.to_str().unwrap(),
            "--data",
            data.path().to_str().unwrap(),
            "--tls-cert",
            tls.cert().to_str().unwrap(),
            "--tls-key",
            tls.key().to_str().unwrap(),
        ],
        &[],
    );
    assert!(ok, "{stderr}");
    let text = read_text(&example);
    for key in sealdrop_hub_keys() {
        assert!(text.contains(&format!("{key} =")), "deploy/hub.toml shows `{key}`");
        assert!(stdout.contains(key.as_str()), "{stdout}");
    }
}

/// Every key `check-config` reports, read from its output on an empty config.
fn sealdrop_hub_keys() -> Vec<String> {
    let data = Hub::init_data();
    let (ok, stdout, stderr) = check_config(&["--data", data.path().to_str().unwrap()], &[]);
    assert!(ok, "{stderr}");
    let keys: Vec<String> = stdout
        .lines()
        .filter(|l| !l.starts_with("# the configuration"))
        .map(|l| l.trim_start_matches("# ").split([' ', '=']).next().unwrap().to_owned())
        .collect();
    assert_eq!(keys.len(), 28, "{stdout}");
    keys
}
