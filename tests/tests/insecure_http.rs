//! Plain `http://` hub URLs: refused before any connection unless the host
//! is this machine's loopback or the user says `--insecure-http` (flag,
//! `SEALDROP_INSECURE_HTTP`, or `insecure_http = true` in the config file).

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{IpAddr, TcpListener, UdpSocket};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use sealdrop_e2e::{Hub, Party, error_code, read_text, write_file};

/// This machine's address on its network (not loopback): the source address
/// of its route towards TEST-NET-1. Connecting a UDP socket sends nothing.
fn own_network_address() -> IpAddr {
    let socket = UdpSocket::bind("0.0.0.0:0").expect("bind a UDP socket");
    socket.connect("192.0.2.1:9").expect("this machine needs an IPv4 route to another host for this test");
    let ip = socket.local_addr().expect("local address").ip();
    assert!(!ip.is_loopback() && !ip.is_unspecified(), "no network address found, got {ip}");
    ip
}

/// A stand-in hub on this machine's network address: it answers every
/// connection with `503` and reports each request line it received.
struct Listener {
    url: String,
    requests: mpsc::Receiver<String>,
}

impl Listener {
    fn start() -> Self {
        let ip = own_network_address();
        let listener = TcpListener::bind((ip, 0)).expect("bind on the network address");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, requests) = mpsc::channel();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let mut line = String::new();
                let _ = BufReader::new(&conn).read_line(&mut line);
                let _ = conn
                    .write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                if tx.send(line.trim().to_owned()).is_err() {
                    return;
                }
            }
        });
        Self { url, requests }
    }

    /// The request lines received so far.
    fn received(&self) -> Vec<String> {
        self.requests.try_iter().collect()
    }
}

#[test]
fn plain_http_to_another_machine_is_refused_before_any_connection() {
    // TEST-NET-1: nothing answers there, so only a refusal before connecting is instant.
    let camden = Party::with_url("http://192.0.2.1:9", "camden");
    let started = Instant::now();
    let stderr = camden.fail_with(["inbox"], 3, "insecure_hub_url");
    assert!(started.elapsed() < Duration::from_secs(5), "the refusal took {:?}", started.elapsed());
    assert!(stderr.contains("use https://192.0.2.1"), "the error must say to use https: {stderr}");
    assert!(stderr.contains("--insecure-http"), "the error must name --insecure-http: {stderr}");

    // A listener on this machine's network address sees no connection at all.
    let listener = Listener::start();
    let camden = Party::with_url(&listener.url, "camden");
    for args in [&["inbox"][..], &["status", "--json"], &["directory", "show"], &["audit", "export", "-o", "b.tar"]] {
        camden.fail_with(args, 3, "insecure_hub_url");
    }
    // Give a connection, had there been one, time to arrive.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(listener.received(), Vec::<String>::new(), "the client connected despite refusing the URL");
}

/// Runs `inbox` with extra global `args` and `SEALDROP_INSECURE_HTTP` set to
/// `env` (if given); returns (stderr, request lines the listener got).
fn inbox_through(listener: &Listener, camden: &Party, args: &[&str], env: Option<&str>) -> (String, Vec<String>) {
    let mut cmd = camden.command();
    cmd.args(args);
    if let Some(value) = env {
        cmd.env("SEALDROP_INSECURE_HTTP", value);
    }
    let out = cmd.arg("inbox").stdin(std::process::Stdio::null()).output().unwrap();
    assert!(!out.status.success(), "the stand-in hub answers 503, so inbox must fail");
    std::thread::sleep(Duration::from_millis(100));
    (String::from_utf8_lossy(&out.stderr).into_owned(), listener.received())
}

#[test]
fn insecure_http_from_flag_environment_or_config_lets_it_connect() {
    let listener = Listener::start();
    let camden = Party::with_url(&listener.url, "camden");
    let config = camden.dir.path().join("none.toml");
    let connects = |how: &str, args: &[&str], env: Option<&str>| {
        let (stderr, requests) = inbox_through(&listener, &camden, args, env);
        assert_eq!(error_code(&stderr).as_deref(), Some("http_503"), "{how}: {stderr}");
        assert_eq!(requests, ["GET /v1/directory HTTP/1.1"], "{how}: the client did not reach the listener");
    };
    connects("--insecure-http", &["--insecure-http"], None);
    connects("--insecure-http=true", &["--insecure-http=true"], None);
    connects("SEALDROP_INSECURE_HTTP=1", &[], Some("1"));
    write_file(&config, "insecure_http = true\n");
    connects("insecure_http = true in the config file", &[], None);

    // Flags and environment come before the config file (which still says true).
    for (how, args, env) in
        [("SEALDROP_INSECURE_HTTP=0", &[][..], Some("0")), ("--insecure-http=false", &["--insecure-http=false"], None)]
    {
        let (stderr, requests) = inbox_through(&listener, &camden, args, env);
        assert_eq!(error_code(&stderr).as_deref(), Some("insecure_hub_url"), "{how}: {stderr}");
        assert!(requests.is_empty(), "{how}: the client connected: {requests:?}");
    }
    let (stderr, _) = inbox_through(&listener, &camden, &[], Some("maybe"));
    assert_eq!(error_code(&stderr).as_deref(), Some("usage"), "a value that is not yes/no is a usage error: {stderr}");
}

#[test]
fn init_saves_insecure_http_only_when_asked_and_checks_the_url_first() {
    let listener = Listener::start();
    let camden = Party::with_url(&listener.url, "camden");
    let config = camden.dir.path().join("none.toml");
    camden.fail_with(["init"], 3, "insecure_hub_url");
    assert!(!config.exists(), "a refused init wrote the config file");
    camden.ok(["--insecure-http", "init"]);
    let saved = read_text(&config);
    assert!(saved.contains("insecure_http = true"), "{saved}");
    assert!(saved.contains(&format!("hub = \"{}\"", listener.url)), "{saved}");
}

#[test]
fn plain_http_to_this_machine_needs_no_flag() {
    let hub = Hub::start();
    let port = hub.addr.rsplit(':').next().unwrap();
    for url in [format!("http://localhost:{port}"), format!("http://127.0.0.1:{port}/")] {
        let camden = Party::with_url(&url, "camden");
        assert_eq!(camden.inbox(), Vec::<serde_json::Value>::new(), "{url}");
    }
}
