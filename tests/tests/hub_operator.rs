//! The hub operator's afternoon (issue 18): a certificate made with
//! `sealdrop-hub tls self-signed` that the real client accepts over TLS; a
//! CA certificate (what `openssl req -x509` makes) refused by `check-config`
//! and by `serve` with the reason, every problem on a line of its own; one
//! `serve` per data directory; the start-up log line's rate limits. All
//! against the real `sealdrop-hub` and `sealdrop` binaries.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use sealdrop_e2e::{
    AGREEMENT, Hub, Party, http, hub_command, json, member_key, mode_of, read_bytes, read_text, write_file,
};
use sealdrop_proto::request::sign_request;

/// Runs `sealdrop-hub ARGS`; returns (exit code, stdout, stderr).
fn hub_tool(args: &[&str]) -> (i32, String, String) {
    let out = hub_command().args(args).output().expect("run sealdrop-hub");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The `error[<code>]` codes of stderr's lines, asserting every line is one
/// `error[<code>]: <message>`.
fn error_codes(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .map(|line| {
            let rest = line.strip_prefix("error[").unwrap_or_else(|| panic!("not an `error[code]:` line: {stderr}"));
            let (code, message) = rest.split_once("]: ").unwrap_or_else(|| panic!("no `]: ` in: {stderr}"));
            assert!(message.len() > 20, "a message that says what to do: {line}");
            code.to_owned()
        })
        .collect()
}

fn self_signed(dir: &Path, hosts: &[&str]) -> (PathBuf, PathBuf, String) {
    let (cert, key) = (dir.join("hub.crt"), dir.join("hub.key"));
    let mut args = vec!["tls", "self-signed", "--cert", cert.to_str().unwrap(), "--key", key.to_str().unwrap()];
    for host in hosts {
        args.extend(["--host", host]);
    }
    let (exit, stdout, stderr) = hub_tool(&args);
    assert_eq!(exit, 0, "{stderr}");
    (cert, key, stdout)
}

#[test]
fn a_self_signed_certificate_from_the_hub_carries_a_real_send_and_fetch() {
    let tmp = tempfile::tempdir().unwrap();
    let (cert, key, stdout) = self_signed(tmp.path(), &["127.0.0.1", "localhost"]);
    assert_eq!(mode_of(&key) & 0o777, 0o600, "the private key is private");
    // It prints the fingerprint clients can check, and how they trust it.
    let fingerprint = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("SHA-256 fingerprint: "))
        .unwrap_or_else(|| panic!("no fingerprint in:\n{stdout}"))
        .to_owned();
    let der = rustls_pemfile_der(&cert);
    let hex: Vec<String> = sealdrop_e2e::sha256_hex(&der)
        .to_uppercase()
        .as_bytes()
        .chunks(2)
        .map(|c| String::from_utf8(c.to_vec()).unwrap())
        .collect();
    assert_eq!(fingerprint, hex.join(":"), "{stdout}");
    let trust = format!("sealdrop init --hub https://127.0.0.1:8443 --hub-ca {}", cert.display());
    assert!(stdout.contains(&trust), "{trust:?} is not in:\n{stdout}");

    // check-config accepts it; never overwritten.
    let data = Hub::init_data();
    let (exit, _, stderr) = hub_tool(&[
        "check-config",
        "--data",
        data.path().to_str().unwrap(),
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    assert_eq!(exit, 0, "{stderr}");
    let before = read_bytes(&cert);
    let again = tmp.path().join("again.key");
    let (exit, stdout, stderr) = hub_tool(&[
        "tls",
        "self-signed",
        "--host",
        "127.0.0.1",
        "--cert",
        cert.to_str().unwrap(),
        "--key",
        again.to_str().unwrap(),
    ]);
    assert_ne!(exit, 0, "{stdout}");
    assert_eq!(error_codes(&stderr), ["file_exists"], "{stderr}");
    assert_eq!(read_bytes(&cert), before);
    assert!(!again.exists(), "nothing written when one of the files exists");

    // A real hub serves it, and the real client trusting it with --hub-ca sends and fetches.
    let hub = Hub::start_with_options(&["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()]);
    assert!(hub.url.starts_with("https://127.0.0.1:"), "{}", hub.url);
    let mut camden = Party::new(&hub, "camden");
    let mut islington = Party::new(&hub, "islington");
    camden.hub_ca = Some(cert.clone());
    islington.hub_ca = Some(cert.clone());
    let content = b"upn,fsm\nA123,1\nover the hub's own certificate\n".to_vec();
    let file = camden.file("pupils.csv", &content);
    let id = camden.send("islington", &[&file]);
    let out = islington.work().join("in");
    islington.fetch(&id, &out);
    assert_eq!(read_bytes(&out.join("pupils.csv")), content);
    assert_eq!(camden.status_of(&id)["state"], "delivered");
}

/// The DER of the first PEM certificate in `path`.
fn rustls_pemfile_der(path: &Path) -> Vec<u8> {
    let text = read_text(path);
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    base64_decode(&body)
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(text.trim()).expect("base64")
}

/// What `openssl req -x509 -newkey ec ... -subj /CN=127.0.0.1` makes: a
/// self-signed CA:TRUE certificate with no subjectAltName.
fn openssl_style_ca(dir: &Path) -> (PathBuf, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, "127.0.0.1");
    let key_pair = KeyPair::generate().unwrap();
    let certificate = params.self_signed(&key_pair).unwrap();
    let (cert, key) = (dir.join("ca-style.crt"), dir.join("ca-style.key"));
    write_file(&cert, certificate.pem());
    write_file(&key, key_pair.serialize_pem());
    sealdrop_e2e::chmod(&key, 0o600);
    (cert, key)
}

#[test]
fn a_ca_certificate_is_refused_by_check_config_and_serve_with_every_problem() {
    let tmp = tempfile::tempdir().unwrap();
    let (cert, key) = openssl_style_ca(tmp.path());
    let data = Hub::init_data();
    let tls = ["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()];
    let mut args = vec!["check-config", "--data", data.path().to_str().unwrap()];
    args.extend(tls);
    let (exit, stdout, stderr) = hub_tool(&args);
    assert_ne!(exit, 0, "check-config accepted a CA certificate:\n{stdout}");
    assert!(stdout.is_empty(), "{stdout}");
    // Every problem, one line each: a CA, and no subjectAltName.
    assert_eq!(error_codes(&stderr), ["tls_cert_is_ca", "tls_cert_no_san"], "{stderr}");
    assert!(stderr.contains("CA:TRUE") && stderr.contains("sealdrop-hub tls self-signed"), "{stderr}");

    // With a folder that is no hub's too: that problem as well, not just the first.
    let empty = tempfile::tempdir().unwrap();
    let mut args = vec!["check-config", "--data", empty.path().to_str().unwrap()];
    args.extend(tls);
    let (exit, _, everything) = hub_tool(&args);
    assert_ne!(exit, 0);
    assert_eq!(error_codes(&everything), ["data_dir", "tls_cert_is_ca", "tls_cert_no_san"], "{everything}");

    // serve refuses it at start-up with the same lines, before binding or opening anything.
    let mut args = vec!["serve", "--data", data.path().to_str().unwrap(), "--listen", "127.0.0.1:0"];
    args.extend(tls);
    let (exit, stdout, serve_stderr) = hub_tool(&args);
    assert_ne!(exit, 0, "serve started with a CA certificate:\n{stdout}");
    assert!(stdout.is_empty(), "nothing bound: {stdout}");
    assert_eq!(serve_stderr, stderr, "serve says what check-config says");
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

/// Waits (at most `within`) for `child` to exit; kills it if it does not.
fn wait_or_kill(child: &mut Child, within: Duration) -> Option<std::process::ExitStatus> {
    let started = Instant::now();
    while started.elapsed() < within {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

#[test]
fn a_second_serve_on_the_same_data_directory_stops_having_touched_nothing() {
    let hub = Hub::start();
    // An upload in progress: half its bytes sent, the connection open.
    let id = create_drop(&hub);
    let body = sealdrop_e2e::pseudo_random_bytes(200_000, 7);
    let path = format!("/v1/drops/{id}/content");
    let auth = sign_request(&member_key("camden").signing, "PUT", &path, http::now(), None);
    let mut head = format!(
        "PUT {path} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/octet-stream\r\ncontent-length: {}\r\n",
        hub.addr,
        body.len()
    );
    for (name, value) in auth.headers() {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut conn = std::net::TcpStream::connect(&hub.addr).unwrap();
    conn.write_all(head.as_bytes()).unwrap();
    conn.write_all(&body[..100_000]).unwrap();
    conn.flush().unwrap();
    // Let the hub take the first part (into its database or a file).
    std::thread::sleep(Duration::from_millis(500));
    let before = hub.snapshot();

    // A second serve on the same data directory, on a free port: refused at once.
    let mut second = hub_command()
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(hub.data.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_or_kill(&mut second, Duration::from_secs(10));
    let mut stdout = String::new();
    let mut stderr = String::new();
    second.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
    second.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    let status = status.unwrap_or_else(|| panic!("a second serve on the same data directory kept running:\n{stderr}"));
    assert!(!status.success(), "{stderr}");
    assert!(stdout.is_empty(), "the second serve bound nothing: {stdout}");
    assert_eq!(error_codes(&stderr), ["data_dir_in_use"], "{stderr}");
    assert!(stderr.contains("in use by another `sealdrop-hub serve`"), "{stderr}");
    assert_eq!(hub.snapshot(), before, "the second serve changed the first one's data directory");

    // The upload in progress survives: the rest arrives and it is stored.
    conn.write_all(&body[100_000..]).unwrap();
    conn.flush().unwrap();
    let mut reply = [0u8; 12];
    conn.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"HTTP/1.1 200", "the upload in progress was lost");
}

/// Waits (at most 10 s) for the hub's log to hold a line containing `needle`; returns that line.
fn wait_for_log_line(hub: &Hub, needle: &str) -> String {
    let started = Instant::now();
    loop {
        if let Some(line) = hub.log().lines().find(|l| l.contains(needle)) {
            return line.to_owned();
        }
        assert!(started.elapsed() < Duration::from_secs(10), "no log line with {needle:?}:\n{}", hub.log());
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_start_up_log_line_shows_the_rate_limits_as_settings() {
    let hub = Hub::start_with_options(&["--rate-limit-per-address", "0", "--rate-limit-per-party", "7"]);
    let line = wait_for_log_line(&hub, "serving");
    // Named as in hub.toml, with their values: not Rust's debug text.
    for field in [
        "rate_limit_per_address=0",
        "rate_limit_per_party=7",
        "rate_limit_per_party_burst=400",
        "rate_limit_loopback=\"limit\"",
    ] {
        assert!(line.contains(field), "{field:?} is not in the start-up line: {line}");
    }
    // An address limit turned off has no burst.
    assert!(!line.contains("rate_limit_per_address_burst"), "{line}");
    for debug in ["RateLimits", "Rate {", "Some(", "per_second"] {
        assert!(!line.contains(debug), "{debug:?} (Rust debug text) in the start-up line: {line}");
    }
}
