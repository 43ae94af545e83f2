//! Attack generator for `bench/run slow_connections`: many slow connections
//! to a hub, as someone without a key would make them, for a fixed time.
//!
//! ```text
//! slow-connections --hub 127.0.0.1:PORT [--connections 400] [--addresses 50] [--seconds 20]
//! ```
//!
//! Each connection publishes a "directory" (the one request anyone may
//! send with a body) declaring the largest body the hub accepts (2 MiB):
//! half send all of it but the last byte at once, half send 100 bytes; then
//! each trickles a byte every half second, never finishing. A connection
//! the hub answers or closes is opened again half a second later. The
//! connections come from `--addresses` loopback addresses (127.0.9.1
//! onwards), as many clients would. Prints one JSON line:
//! `{"connections": N, "opened": N, "answers": {"503": N, ...}}`.

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The largest directory the hub reads.
const DECLARED: usize = 2 * 1024 * 1024;
const PAUSE: Duration = Duration::from_millis(500);

fn main() {
    if let Err(e) = run() {
        eprintln!("slow-connections: {e}");
        std::process::exit(2);
    }
}

fn flag(args: &[String], name: &str, default: &str) -> String {
    args.windows(2).find(|w| w[0] == name).map_or_else(|| default.to_owned(), |w| w[1].clone())
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let hub: SocketAddr = flag(&args, "--hub", "").parse().map_err(|_| "give --hub IP:PORT")?;
    let count: usize = flag(&args, "--connections", "400").parse().map_err(|_| "--connections: a number")?;
    let addresses: usize = flag(&args, "--addresses", "50").parse().map_err(|_| "--addresses: a number")?;
    let seconds: u64 = flag(&args, "--seconds", "20").parse().map_err(|_| "--seconds: a number")?;
    if addresses == 0 || addresses > 250 {
        return Err("--addresses: from 1 to 250".into());
    }
    let stop = Arc::new(AtomicBool::new(false));
    let opened = Arc::new(AtomicUsize::new(0));
    let answers: Arc<Mutex<BTreeMap<u16, usize>>> = Arc::default();
    let threads: Vec<_> = (0..count)
        .map(|i| {
            let from: std::net::IpAddr = format!("127.0.9.{}", i % addresses + 1).parse().expect("an address");
            let first = if i % 2 == 0 { DECLARED - 1 } else { 100 };
            let (stop, opened, answers) = (stop.clone(), opened.clone(), answers.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(conn) = connect_from(from, hub) {
                        opened.fetch_add(1, Ordering::Relaxed);
                        if let Some(status) = trickle(conn, first, &stop) {
                            *answers
                                .lock()
                                .unwrap_or_else(std::sync::PoisonError::into_inner)
                                .entry(status)
                                .or_default() += 1;
                        }
                    }
                    std::thread::sleep(PAUSE);
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(seconds));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    let answers = answers.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    let answers: Vec<String> = answers.iter().map(|(status, n)| format!("\"{status}\": {n}")).collect();
    println!(
        "{{\"connections\": {count}, \"opened\": {}, \"answers\": {{{}}}}}",
        opened.load(Ordering::Relaxed),
        answers.join(", ")
    );
    Ok(())
}

/// A TCP connection to `to` from the local address `from` (any of
/// 127.0.0.0/8 on loopback), so one machine acts as many clients.
fn connect_from(from: std::net::IpAddr, to: SocketAddr) -> std::io::Result<TcpStream> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(to), Type::STREAM, None)?;
    socket.bind(&SocketAddr::new(from, 0).into())?;
    socket.connect_timeout(&to.into(), Duration::from_secs(5))?;
    Ok(socket.into())
}

/// Publishes a never-ending "directory" on `conn`; the status of the hub's
/// answer, if it gave one before closing.
fn trickle(mut conn: TcpStream, first: usize, stop: &AtomicBool) -> Option<u16> {
    conn.set_read_timeout(Some(Duration::from_millis(100))).ok()?;
    let mut writer = conn.try_clone().ok()?;
    let mut request =
        format!("POST /v1/directory HTTP/1.1\r\nhost: hub\r\ncontent-length: {DECLARED}\r\n\r\n").into_bytes();
    request.extend(std::iter::repeat_n(b'x', first));
    // On its own thread: a refused body is never read, and the write blocks
    // until the hub closes the connection.
    let sender = std::thread::spawn(move || writer.write_all(&request).ok().map(|()| writer));
    let (mut answer, mut chunk) = (Vec::new(), [0u8; 4096]);
    let (mut sender, mut writer, mut last) = (Some(sender), None::<TcpStream>, Instant::now());
    while !stop.load(Ordering::Relaxed) {
        match conn.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
        if answer.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
        if sender.as_ref().is_some_and(std::thread::JoinHandle::is_finished) {
            writer = sender.take().and_then(|s| s.join().ok().flatten());
            if writer.is_none() {
                break;
            }
        }
        if let Some(w) = writer.as_mut()
            && last.elapsed() >= PAUSE
        {
            last = Instant::now();
            if w.write_all(b"x").is_err() {
                break;
            }
        }
    }
    let _ = conn.shutdown(std::net::Shutdown::Both);
    if let Some(s) = sender {
        let _ = s.join();
    }
    String::from_utf8_lossy(&answer).split_whitespace().nth(1).and_then(|s| s.parse().ok())
}
