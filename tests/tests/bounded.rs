//! Bounded under abuse, without a key and with one: each attack is made as
//! an attacker would make it, on raw sockets from many source addresses
//! (loopback has all of 127.0.0.0/8) or with a member's own key, against
//! the real `sealdrop-hub`, while real `sealdrop` commands must keep working.
//!
//! 1. Connections: idle and slow connections fill the cap, and members
//!    are still served; one address only ever displaces its own.
//! 2. Memory: 400 slow connections trickling bodies leave the hub small.
//! 3. Quotas: a member's never-ending uploads stop at its party's quota.
//! 4. Private files, whatever the umask.
//! 5. Deleted means deleted, for small drops kept in the database.
//!
//! (The client address behind a reverse proxy is in `rate_limits.rs`.)

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sealdrop_e2e::{Hub, Party, TestClock, http, list_dir, member_key, mode_of, pseudo_random_bytes, raw, tree};
use sealdrop_proto::api::{CreateDrop, CreatedDrop};

const MIB: usize = 1024 * 1024;

/// The hub process's peak resident memory (VmHWM), in KiB.
fn peak_rss_kib(hub: &Hub) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", hub.pid())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmHWM in /proc/{}/status", hub.pid()))
}

/// A sample from the hub's metrics (0 when absent).
fn metric(hub: &Hub, name: &str) -> f64 {
    hub.scrape()
        .lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Sends a small file from camden to islington and fetches it, with the
/// real binaries: the hub still serves members.
fn a_member_sends_and_fetches(hub: &Hub, tag: &str) {
    let camden = Party::new(hub, "camden");
    let islington = Party::new(hub, "islington");
    let data = pseudo_random_bytes(20_000, tag.len() as u64);
    let file = camden.file(&format!("{tag}.bin"), &data);
    let started = Instant::now();
    let id = camden.send("islington", &[&file]);
    let out = islington.work().join(tag);
    islington.fetch(&id, &out);
    assert_eq!(tree(&out).get(&format!("{tag}.bin")), Some(&data), "the fetched file differs");
    eprintln!("{tag}: a member's send and fetch took {:?}", started.elapsed());
}

// ---------------------------------------------------------------------------
// An attacker's connections

/// What one of an attacker's connections does.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// Connects and sends nothing.
    Idle,
    /// Sends a request head a header line every half second, never ending it.
    SlowHead,
    /// Publishes a "directory" (no key needed) declaring `declared` bytes:
    /// sends `first` of them at once, then a byte every half second.
    SlowBody { declared: usize, first: usize },
}

/// Many connections kept open by an attacker, each reopened `pause` after
/// the hub closes it, until stopped.
struct Attack {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    /// Connections opened, and answers (or closings) the hub gave them.
    opened: Arc<AtomicUsize>,
    ended: Arc<AtomicUsize>,
    /// Status codes of the answers seen, by code.
    answers: Arc<std::sync::Mutex<std::collections::BTreeMap<u16, usize>>>,
}

impl Attack {
    /// One connection per `(source address, kind)`.
    fn start(addr: &str, slots: Vec<(String, Kind)>, pause: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (opened, ended) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let answers = Arc::new(std::sync::Mutex::new(std::collections::BTreeMap::new()));
        let threads = slots
            .into_iter()
            .map(|(from, kind)| {
                let (addr, stop, opened, ended, answers) =
                    (addr.to_owned(), stop.clone(), opened.clone(), ended.clone(), answers.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let Ok(conn) = raw::connect_from(&from, &addr) else {
                            std::thread::sleep(pause);
                            continue;
                        };
                        opened.fetch_add(1, Ordering::Relaxed);
                        if let Some(status) = hold(conn, kind, &stop) {
                            *answers.lock().unwrap().entry(status).or_default() += 1;
                        }
                        ended.fetch_add(1, Ordering::Relaxed);
                        std::thread::sleep(pause);
                    }
                })
            })
            .collect();
        Self { stop, threads, opened, ended, answers }
    }

    /// Waits (at most `within`) until more than `n` connections were opened:
    /// a thread noticed the hub closed its connection and came back, as an
    /// attacker would. On a loaded machine that can take longer than the
    /// members' rounds.
    fn wait_opened_more_than(&self, n: usize, within: Duration) {
        let started = Instant::now();
        while self.opened.load(Ordering::Relaxed) <= n && started.elapsed() < within {
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stop(self) -> (usize, usize, std::collections::BTreeMap<u16, usize>) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().unwrap();
        }
        let answers = self.answers.lock().unwrap().clone();
        (self.opened.load(Ordering::Relaxed), self.ended.load(Ordering::Relaxed), answers)
    }
}

/// Keeps `conn` busy as `kind` until the hub answers or closes it (the
/// status of its answer, if any) or the attack stops.
fn hold(mut conn: TcpStream, kind: Kind, stop: &AtomicBool) -> Option<u16> {
    conn.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let mut writer = conn.try_clone().unwrap();
    let first: Vec<u8> = match kind {
        Kind::Idle => Vec::new(),
        Kind::SlowHead => b"POST /v1/directory HTTP/1.1\r\nhost: hub\r\n".to_vec(),
        Kind::SlowBody { declared, first } => {
            let mut bytes = raw::head("POST", "/v1/directory", None, None, &[("content-length", declared.to_string())])
                .into_bytes();
            bytes.extend(std::iter::repeat_n(b'x', first));
            bytes
        }
    };
    // The first bytes on a thread: a refused body is never read, and the
    // write may block until the hub closes the connection.
    let sender = std::thread::spawn(move || writer.write_all(&first).ok().map(|()| writer));
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    let mut last_trickle = Instant::now();
    let mut writer: Option<TcpStream> = None;
    let mut sender = Some(sender);
    loop {
        match conn.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
        if answer.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
        if stop.load(Ordering::Relaxed) {
            break;
        }
        if sender.as_ref().is_some_and(JoinHandle::is_finished) {
            writer = sender.take().and_then(|s| s.join().unwrap());
            if writer.is_none() {
                break;
            }
        }
        if let Some(w) = writer.as_mut()
            && last_trickle.elapsed() >= Duration::from_millis(500)
        {
            last_trickle = Instant::now();
            let more: &[u8] = if matches!(kind, Kind::SlowHead) { b"x-slow: a\r\n" } else { b"x" };
            if !matches!(kind, Kind::Idle) && w.write_all(more).is_err() {
                break;
            }
        }
    }
    let _ = conn.shutdown(std::net::Shutdown::Both);
    if let Some(s) = sender {
        let _ = s.join();
    }
    let head = String::from_utf8_lossy(&answer);
    head.split_whitespace().nth(1).and_then(|s| s.parse().ok())
}

/// `n` source addresses on loopback, `127.0.<net>.1` onwards.
fn addresses(net: u8, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("127.0.{net}.{}", i + 1)).collect()
}

// ---------------------------------------------------------------------------
// 1. Connections

#[test]
fn idle_and_slow_connections_from_many_addresses_fill_the_cap_and_members_are_still_served() {
    let hub = Hub::start_with_options(&[
        "--max-connections",
        "40",
        "--max-connections-per-address",
        "4",
        "--metrics-listen",
        "127.0.0.1:0",
    ]);
    // 30 addresses x 4 connections: three times the cap, of every slow kind.
    let mut slots = Vec::new();
    for (i, from) in addresses(1, 30).into_iter().enumerate() {
        for k in 0..4 {
            let kind = match (i + k) % 3 {
                0 => Kind::Idle,
                1 => Kind::SlowHead,
                _ => Kind::SlowBody { declared: MIB, first: 100 },
            };
            slots.push((from.clone(), kind));
        }
    }
    let attack = Attack::start(&hub.addr, slots, Duration::from_millis(500));
    let started = Instant::now();
    while metric(&hub, "sealdrop_hub_connections_open") < 40.0 {
        assert!(started.elapsed() < Duration::from_secs(30), "the attack never filled the cap");
        std::thread::sleep(Duration::from_millis(50));
    }
    // The cap is full of strangers: members still send and fetch, again and again.
    for round in 0..3 {
        a_member_sends_and_fetches(&hub, &format!("round-{round}"));
        let open = metric(&hub, "sealdrop_hub_connections_open");
        assert!(open <= 40.0, "{open} connections open, over the cap of 40");
    }
    let evicted = metric(&hub, "sealdrop_hub_connections_capped_total{action=\"evicted\"}");
    attack.wait_opened_more_than(120, Duration::from_secs(30));
    let (opened, ended, _) = attack.stop();
    assert!(evicted > 0.0, "the cap never closed a connection");
    assert!(opened > 120 && ended > 0, "the attack opened {opened} connections, {ended} ended");
    let log = hub.log();
    assert!(log.contains("connection cap reached"), "the hub says so in its log:\n{log}");
}

/// A connection from `from`, with time for the hub to admit it (admission
/// runs on the connection's own task, so order by a short pause).
fn admitted(from: &str, hub: &Hub) -> TcpStream {
    let conn = raw::connect_from(from, &hub.addr).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    conn
}

/// Whether the hub has closed `conn` (within `wait`).
fn closed_within(conn: &mut TcpStream, wait: Duration) -> bool {
    conn.set_read_timeout(Some(wait)).unwrap();
    raw::closed(conn)
}

#[test]
fn one_address_over_its_connection_cap_only_ever_closes_its_own_and_members_uploads_are_never_closed() {
    let hub = Hub::start_with_options(&["--max-connections-per-address", "3", "--metrics-listen", "127.0.0.1:0"]);
    let mut neighbour = admitted("127.0.2.2", &hub);
    let mut own: Vec<TcpStream> = (0..3).map(|_| admitted("127.0.2.1", &hub)).collect();
    // A fourth from the same address: its own longest idle goes.
    let _fourth = admitted("127.0.2.1", &hub);
    // (Within a second: the header timeout, 5 s, is not what closes it.)
    assert!(closed_within(&mut own[0], Duration::from_secs(1)), "the oldest idle connection of the address stayed");
    assert!(!closed_within(&mut own[1], Duration::from_millis(300)));
    assert!(!closed_within(&mut neighbour, Duration::from_millis(300)), "another address's connection was closed");

    // Three members' uploads from one address, authenticated and stalled
    // half-way: never closed for a newcomer, who is turned away instead.
    let key = member_key("camden").signing;
    let mut uploads = Vec::new();
    for _ in 0..3 {
        let drop = create_drop(&hub, "camden", http::now());
        let path = format!("/v1/drops/{}/content", drop.id);
        let head = raw::head("PUT", &path, Some((&key, http::now())), None, &[("content-length", MIB.to_string())]);
        let mut conn = admitted("127.0.2.3", &hub);
        conn.write_all(head.as_bytes()).unwrap();
        conn.write_all(&[7u8; 1000]).unwrap();
        uploads.push(conn);
    }
    std::thread::sleep(Duration::from_millis(300));
    let mut newcomer = raw::connect_from("127.0.2.3", &hub.addr).unwrap();
    assert!(closed_within(&mut newcomer, Duration::from_secs(1)), "the newcomer was let in over three uploads");
    for up in &mut uploads {
        assert!(!closed_within(up, Duration::from_millis(200)), "a member's upload was closed for a newcomer");
    }
    assert!(metric(&hub, "sealdrop_hub_connections_capped_total{action=\"refused\"}") >= 1.0);
    assert!(metric(&hub, "sealdrop_hub_connections_capped_total{action=\"evicted\"}") >= 1.0);
    // Finished, the uploads free the address's connections.
    drop(uploads);
    std::thread::sleep(Duration::from_millis(300));
    let mut later = admitted("127.0.2.3", &hub);
    later.write_all(raw::head("GET", "/healthz", None, None, &[]).as_bytes()).unwrap();
    assert_eq!(raw::read_response(&mut later).map(|r| r.status), Some(200));
}

#[test]
fn with_the_default_settings_a_silent_or_idle_kept_alive_connection_is_closed_within_seconds() {
    let hub = Hub::start();
    let mut silent = raw::connect(&hub.addr);
    let mut kept = raw::connect(&hub.addr);
    kept.write_all(raw::head("GET", "/healthz", None, None, &[]).as_bytes()).unwrap();
    assert_eq!(raw::read_response(&mut kept).map(|r| r.status), Some(200));
    let started = Instant::now();
    assert!(closed_within(&mut silent, Duration::from_secs(15)), "a connection that sent nothing stayed open");
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(4) && took < Duration::from_secs(8), "closed after {took:?}, not ~5 s");
    assert!(closed_within(&mut kept, Duration::from_secs(5)), "an idle kept-alive connection stayed open");
}

// ---------------------------------------------------------------------------
// 2. Memory for requests nobody authenticated

#[test]
fn four_hundred_slow_connections_trickling_bodies_leave_the_hub_under_128_mib_and_a_send_working() {
    let hub = Hub::start();
    a_member_sends_and_fetches(&hub, "warm-up");
    // 400 connections from 50 addresses, all publishing "directories" (no
    // key needed): half fill the largest body the hub takes at once and then
    // trickle, half trickle from the start; every one reconnects as soon
    // as the hub refuses or closes it.
    let mut slots = Vec::new();
    for (i, from) in addresses(3, 50).into_iter().enumerate() {
        for k in 0..8 {
            let first = if (i + k) % 2 == 0 { 2 * MIB - 1 } else { 100 };
            slots.push((from.clone(), Kind::SlowBody { declared: 2 * MIB, first }));
        }
    }
    let attack = Attack::start(&hub.addr, slots, Duration::from_millis(500));
    std::thread::sleep(Duration::from_secs(4));
    a_member_sends_and_fetches(&hub, "under-attack");
    std::thread::sleep(Duration::from_secs(4));
    let peak = peak_rss_kib(&hub);
    let (opened, _, answers) = attack.stop();
    eprintln!("peak RSS {peak} KiB; {opened} attack connections; answers {answers:?}");
    assert!(opened >= 400, "the attack opened only {opened} connections");
    assert!(answers.get(&503).is_some_and(|n| *n > 0), "the budget never refused a body: {answers:?}");
    assert!(peak < 128 * 1024, "the hub's peak RSS reached {peak} KiB under the attack");
    // A directory that does not say its length is refused before it is read.
    let head = raw::head("POST", "/v1/directory", None, None, &[("transfer-encoding", "chunked".to_owned())]);
    raw::exchange(&hub.addr, &head, b"5\r\nhello\r\n0\r\n\r\n")
        .expect("an answer")
        .assert_error(411, "length_required");
    a_member_sends_and_fetches(&hub, "after");
}

// ---------------------------------------------------------------------------
// 3. A member's never-ending uploads

/// `party` announces a drop to islington over the raw API, signed at `time`.
fn create_drop(hub: &Hub, party: &str, time: i64) -> CreatedDrop {
    let body = serde_json::to_vec(&CreateDrop {
        recipients: vec!["islington".parse().unwrap()],
        agreement: sealdrop_e2e::AGREEMENT.into(),
        expires: sealdrop_proto::Timestamp::from_second(time + 2 * 86_400).unwrap(),
        idempotency_key: None,
    })
    .unwrap();
    let reply = http::signed_at(&hub.url, &member_key(party).signing, "POST", "/v1/drops", time, &body);
    assert_eq!(reply.status, 200, "create: {reply:?}");
    serde_json::from_str(&reply.body).unwrap()
}

/// An upload that never ends: chunked, 64 KiB chunks, one every 200 ms
/// while `slow` is set (so several can be open at once well before the
/// party's byte quota, however late each thread starts on a loaded
/// machine), then as fast as the hub takes them. Returns the hub's answer.
fn never_ending_upload(addr: &str, id: &str, slow: Arc<AtomicBool>) -> Option<raw::Response> {
    let key = member_key("camden").signing;
    let path = format!("/v1/drops/{id}/content");
    let head = raw::head("PUT", &path, Some((&key, http::now())), None, &[("transfer-encoding", "chunked".into())]);
    let mut conn = raw::connect(addr);
    let mut writer = conn.try_clone().unwrap();
    let id_seed = id.bytes().map(u64::from).sum::<u64>() * 1000;
    std::thread::spawn(move || {
        if writer.write_all(head.as_bytes()).is_err() {
            return;
        }
        for n in 0u64.. {
            let chunk = pseudo_random_bytes(64 * 1024, id_seed + n);
            let mut framed = format!("{:x}\r\n", chunk.len()).into_bytes();
            framed.extend_from_slice(&chunk);
            framed.extend_from_slice(b"\r\n");
            if writer.write_all(&framed).is_err() {
                return;
            }
            if slow.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    });
    raw::read_response(&mut conn)
}

/// Bytes of uploads the hub holds: files in `uploads/` and upload rows.
fn upload_bytes_on_disk(hub: &Hub) -> u64 {
    let files: u64 = std::fs::read_dir(hub.data.path().join("uploads"))
        .map(|d| d.filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum())
        .unwrap_or(0);
    let rows: u64 = hub
        .query_text("SELECT CAST(COALESCE(SUM(length(data)), 0) AS TEXT) FROM inline_blobs WHERE stage = 'upload'", &[])
        .parse()
        .unwrap();
    files + rows
}

#[test]
fn a_members_never_ending_uploads_stop_at_its_partys_quota_and_other_parties_still_send() {
    const QUOTA: u64 = 8 * MIB as u64;
    let hub = Hub::start_with_options(&["--max-held-bytes-per-party", "8388608", "--max-open-uploads-per-party", "3"]);
    // Camden stores a drop first: it counts, and nothing touches it.
    let camden = Party::new(&hub, "camden");
    let stored_data = pseudo_random_bytes(MIB, 5);
    let stored = camden.send("islington", &[&camden.file("stored.bin", &stored_data)]);

    // Watch what the hub writes while the attack runs.
    let watching = Arc::new(AtomicBool::new(true));
    let most = Arc::new(AtomicU64::new(0));
    let watcher = {
        let (watching, most, data) = (watching.clone(), most.clone(), hub.data.path().to_owned());
        std::thread::spawn(move || {
            while watching.load(Ordering::Relaxed) {
                let files: u64 = std::fs::read_dir(data.join("uploads"))
                    .map(|d| d.filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum())
                    .unwrap_or(0);
                most.fetch_max(files, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let drops: Vec<CreatedDrop> = (0..4).map(|_| create_drop(&hub, "camden", http::now())).collect();
    let slow = Arc::new(AtomicBool::new(true));
    let uploads: Vec<_> = drops[..3]
        .iter()
        .map(|d| {
            let (addr, id, slow) = (hub.addr.clone(), d.id.to_string(), slow.clone());
            std::thread::spawn(move || never_ending_upload(&addr, &id, slow))
        })
        .collect();
    // While three are open, a fourth is refused at once, naming the limit.
    // Wait until the hub holds all three (their files in uploads/): on a
    // loaded machine a fixed pause was not always enough.
    let started = Instant::now();
    while list_dir(&hub.data.path().join("uploads")).len() < 3 {
        assert!(started.elapsed() < Duration::from_secs(30), "the three uploads never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let fourth = format!("/v1/drops/{}/content", drops[3].id);
    let key = member_key("camden").signing;
    let head = raw::head("PUT", &fourth, Some((&key, http::now())), None, &[("content-length", "10".into())]);
    // The head alone: the hub answers before reading any body, and a body
    // it never read would turn its close into a reset that can destroy the
    // answer before this side reads it.
    let reply = raw::exchange(&hub.addr, &head, b"").expect("an answer");
    let message = reply.assert_error(429, "quota_open_uploads");
    assert!(message.contains("max_open_uploads_per_party = 3"), "{message}");
    slow.store(false, Ordering::Relaxed);
    // The three never-ending uploads are each stopped at the quota.
    for upload in uploads {
        let reply = upload.join().unwrap().expect("an answer to the never-ending upload");
        let message = reply.assert_error(507, "quota_held_bytes");
        assert!(message.contains("max_held_bytes_per_party = 8388608"), "{message}");
        assert!(message.contains("nothing already stored was touched"), "{message}");
    }
    watching.store(false, Ordering::Relaxed);
    watcher.join().unwrap();
    let most = most.load(Ordering::Relaxed);
    assert!(most <= QUOTA, "the hub held {most} bytes of uploads at once, over the quota of {QUOTA}");
    assert_eq!(upload_bytes_on_disk(&hub), 0, "the refused uploads were discarded");
    // A declared length over what is left is refused before a byte is read.
    let path = format!("/v1/drops/{}/content", drops[3].id);
    let head = raw::head("PUT", &path, Some((&key, http::now())), None, &[("content-length", (QUOTA).to_string())]);
    raw::exchange(&hub.addr, &head, &[]).expect("an answer").assert_error(507, "quota_held_bytes");

    // Nothing stored was touched; another party sends; camden sends again.
    let islington = Party::new(&hub, "islington");
    islington.fetch(&stored, &islington.work().join("stored"));
    assert_eq!(tree(&islington.work().join("stored")).get("stored.bin"), Some(&stored_data));
    let hackney = Party::new(&hub, "hackney");
    let from_hackney = hackney.send("islington", &[&hackney.file("h.bin", pseudo_random_bytes(300_000, 9))]);
    islington.fetch(&from_hackney, &islington.work().join("h"));
    camden.send("islington", &[&camden.file("again.bin", pseudo_random_bytes(100_000, 10))]);
}

// ---------------------------------------------------------------------------
// 4. Private files, whatever the umask

fn path_str(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

/// Every file and folder under `dir` whose mode is not 0600 (files) or
/// 0700 (folders), with its mode.
fn not_private(dir: &Path) -> Vec<String> {
    let mut wrong = Vec::new();
    let mode = mode_of(dir) & 0o777;
    if mode != 0o700 {
        wrong.push(format!("{} {mode:o}", dir.display()));
    }
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        if meta.is_dir() {
            wrong.extend(not_private(&path));
        } else if mode_of(&path) & 0o777 != 0o600 {
            wrong.push(format!("{} {:o}", path.display(), mode_of(&path) & 0o777));
        }
    }
    wrong
}

#[test]
fn under_umask_022_every_file_the_hub_writes_is_0600_and_every_folder_0700() {
    let mut hub = Hub::start_with_umask(0o022, &["--body-idle-timeout", "1"]);
    let camden = Party::new(&hub, "camden");
    let islington = Party::new(&hub, "islington");
    // A small drop (a database row), a large one (a file), one fetched, and
    // an upload cut off half-way (kept for its sender to continue).
    let small = camden.send("islington", &[&camden.file("small.csv", "upn,name\nA1,Ada\n")]);
    let large = camden.send("islington", &[&camden.file("large.bin", pseudo_random_bytes(300_000, 3))]);
    islington.fetch(&small, &islington.work().join("small"));
    let drop = create_drop(&hub, "camden", http::now());
    let key = member_key("camden").signing;
    let path = format!("/v1/drops/{}/content", drop.id);
    let head = raw::head("PUT", &path, Some((&key, http::now())), None, &[("content-length", (2 * MIB).to_string())]);
    let reply = raw::exchange(&hub.addr, &head, &pseudo_random_bytes(200_000, 4)).expect("an answer");
    reply.assert_error(408, "request_timeout");
    let data = hub.data.path().to_owned();
    assert!(data.join("blobs").join(format!("{large}.age")).exists() && data.join("hub.db-wal").exists());
    assert!(data.join("uploads").join(format!("{}.part", drop.id)).exists(), "the cut-off upload is kept");
    assert_eq!(not_private(&data), Vec::<String>::new(), "files or folders others can read");
    // A backup taken while it serves, and a data directory restored from it.
    let backups = tempfile::tempdir().unwrap();
    let (backup, restored) = (backups.path().join("backup"), backups.path().join("restored"));
    for args in [
        ["backup", "--data", path_str(&data), "--to", path_str(&backup)],
        ["restore", "--from", path_str(&backup), "--data", path_str(&restored)],
    ] {
        let mut command = sealdrop_e2e::hub_command();
        command.args(args);
        let out = sealdrop_e2e::under_umask(&command, 0o022).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    assert_eq!(not_private(&backup), Vec::<String>::new(), "a backup's files others can read");
    assert_eq!(not_private(&restored), Vec::<String>::new(), "a restored data directory's files others can read");

    // A data directory from an older release (the database as the umask
    // made it) is made private when the hub opens it.
    hub.stop();
    for (file, mode) in [("hub.db", 0o644), ("hub.db-wal", 0o644), ("", 0o755), ("blobs", 0o755)] {
        sealdrop_e2e::chmod(&data.join(file), mode);
    }
    sealdrop_e2e::chmod(&data.join("blobs").join(format!("{large}.age")), 0o644);
    hub.restart();
    assert_eq!(not_private(&data), Vec::<String>::new(), "an older data directory stayed readable");
    assert!(hub.log().contains("made files and folders of the data directory private"), "{}", hub.log());
    let mut islington = islington;
    islington.point_at(&hub);
    islington.fetch(&large, &islington.work().join("large"));
}

// ---------------------------------------------------------------------------
// 5. Deleted means deleted

/// The files under `dir` holding `needle`.
fn holding(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(holding(&path, needle));
        } else if std::fs::read(&path).is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle)) {
            found.push(path.display().to_string());
        }
    }
    found
}

/// A distinctive 64-byte run from the middle of drop `id`'s stored
/// ciphertext (a row of the hub's database), found in its files now.
fn run_of(hub: &Hub, id: &str) -> Vec<u8> {
    let ciphertext = hub.ciphertext(id).expect("the hub holds the ciphertext");
    assert!(ciphertext.len() <= 64 * 1024, "a small drop, kept in the database");
    let run = ciphertext[ciphertext.len() / 2..ciphertext.len() / 2 + 64].to_vec();
    assert!(!holding(hub.data.path(), &run).is_empty(), "the test must find the ciphertext while it is stored");
    run
}

/// The reasons the log gives for deleting drop `id`.
fn logged_deletions(hub: &Hub, id: &str) -> Vec<String> {
    hub.log_entries()
        .into_iter()
        .filter_map(|e| match e {
            sealdrop_log::entry::LogEntry::Hub { statement } => {
                sealdrop_proto::note::peek_doc::<sealdrop_log::entry::HubStatement>(&statement).ok()
            }
            _ => None,
        })
        .filter_map(|s| match s {
            sealdrop_log::entry::HubStatement::DropDeleted { drop, reason, .. } if drop.as_str() == id => {
                Some(format!("{reason:?}").to_lowercase())
            }
            _ => None,
        })
        .collect()
}

/// Waits until no file of the data directory holds `run`.
fn wait_until_gone(hub: &Hub, run: &[u8], what: &str) {
    let started = Instant::now();
    loop {
        let found = holding(hub.data.path(), run);
        if found.is_empty() {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{what}: the ciphertext is still in {found:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn once_a_small_drops_deletion_is_logged_no_byte_of_its_ciphertext_is_left_in_any_file() {
    let clock = TestClock::new();
    let hub = Hub::start_with_clock(&clock, &["--sweep-interval", "0.1"]);
    let camden = Party::new(&hub, "camden").with_clock(&clock);
    let islington = Party::new(&hub, "islington").with_clock(&clock);
    let file = |name: &str, seed: u64| camden.file(name, pseudo_random_bytes(5_000, seed));
    let delivered = camden.send("islington", &[&file("delivered.bin", 1)]);
    let recalled = camden.send("islington", &[&file("recalled.bin", 2)]);
    let expired = camden.send("islington", &[&file("expired.bin", 3)]);
    let runs: Vec<Vec<u8>> = [&delivered, &recalled, &expired].iter().map(|id| run_of(&hub, id)).collect();

    // Delivered: the answer to the acknowledgement comes once it is gone.
    islington.fetch(&delivered, &islington.work().join("d"));
    assert_eq!(logged_deletions(&hub, &delivered), vec!["delivered"]);
    assert_eq!(holding(hub.data.path(), &runs[0]), Vec::<String>::new(), "delivered, yet still on disk");
    // Recalled: likewise.
    camden.ok(["recall", &recalled]);
    assert_eq!(logged_deletions(&hub, &recalled), vec!["recalled"]);
    assert_eq!(holding(hub.data.path(), &runs[1]), Vec::<String>::new(), "recalled, yet still on disk");
    assert!(!holding(hub.data.path(), &runs[2]).is_empty(), "a drop still waiting is kept");
    // Expired, by the sweeper.
    clock.advance(6 * 86_400);
    wait_until_gone(&hub, &runs[2], "expired");
    assert_eq!(logged_deletions(&hub, &expired), vec!["expired"]);

    // An upload never committed, removed by the sweeper after the resume window.
    let drop = create_drop(&hub, "camden", clock.now());
    let upload = pseudo_random_bytes(5_000, 4);
    let key = member_key("camden").signing;
    let path = format!("/v1/drops/{}/content", drop.id);
    let head = raw::head("PUT", &path, Some((&key, clock.now())), None, &[("content-length", "5000".into())]);
    assert_eq!(raw::exchange(&hub.addr, &head, &upload).map(|r| r.status), Some(200));
    let run = upload[2000..2064].to_vec();
    assert!(!holding(hub.data.path(), &run).is_empty(), "the upload is stored");
    clock.advance(86_400 + 1);
    wait_until_gone(&hub, &run, "an abandoned upload");
}
