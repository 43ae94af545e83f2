//! [`WebhookReceiver`]: a real HTTP server on 127.0.0.1 that keeps the JSON
//! bodies POSTed to it, as a chat service's incoming webhook would receive
//! them, or answers every request with an error status, as a broken or
//! revoked webhook does.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The largest body kept: a notification is a few KiB.
const MAX_BODY: usize = 1 << 20;

/// One request as received.
#[derive(Clone, Debug)]
pub struct WebhookRequest {
    /// The request line's path (the secret part of a real webhook URL).
    pub path: String,
    /// The `Content-Type` header, lowercased.
    pub content_type: String,
    /// The body, parsed as JSON (`Value::Null` if it did not parse).
    pub body: Value,
}

#[derive(Default)]
struct Received {
    requests: Mutex<Vec<WebhookRequest>>,
    arrived: Condvar,
}

/// A local webhook receiver; stops when dropped.
pub struct WebhookReceiver {
    port: u16,
    received: Arc<Received>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl WebhookReceiver {
    /// A receiver answering `200 OK` to every POST.
    pub fn start() -> Self {
        Self::answering(200)
    }

    /// A receiver answering `status` (e.g. 500) to every request, after
    /// keeping its body all the same.
    pub fn answering(status: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local addr").port();
        let received = Arc::new(Received::default());
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (received, stop) = (Arc::clone(&received), Arc::clone(&stop));
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(stream) = stream {
                        // One at a time: the notifier posts one after another.
                        serve(stream, status, &received);
                    }
                }
            })
        };
        Self { port, received, stop, thread: Some(thread) }
    }

    /// The URL to give the notifier (any path; `/hook/secret` stands for a real webhook's token).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook/secret-token", self.port)
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<WebhookRequest> {
        self.received.requests.lock().expect("lock").clone()
    }

    /// Waits until `n` requests arrived (at most `timeout`) and returns
    /// their bodies; panics if fewer came.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        let mut requests = self.received.requests.lock().expect("lock");
        while requests.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "{} of {n} webhook requests arrived within {timeout:?}", requests.len());
            requests = self.received.arrived.wait_timeout(requests, left).expect("lock").0;
        }
        requests.iter().map(|r| r.body.clone()).collect()
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Reads one HTTP/1.1 request, keeps it, answers `status` and closes.
fn serve(stream: TcpStream, status: u16, received: &Received) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(&stream);
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
    let (mut length, mut content_type) = (0usize, String::new());
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            match name.trim().to_ascii_lowercase().as_str() {
                "content-length" => length = value.trim().parse().unwrap_or(0),
                "content-type" => content_type = value.trim().to_ascii_lowercase(),
                _ => {}
            }
        }
    }
    let mut body = vec![0; length.min(MAX_BODY)];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    received.requests.lock().expect("lock").push(WebhookRequest { path, content_type, body });
    received.arrived.notify_all();
    let text = if status == 200 { "ok" } else { "receiver failed on purpose" };
    let reason = if status == 200 { "OK" } else { "Error" };
    let answer = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
        text.len()
    );
    let _ = (&stream).write_all(answer.as_bytes());
}
