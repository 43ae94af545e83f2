//! Tests of the connection cap.

use tokio::net::TcpStream;

use super::*;

fn registry(total: usize, per_address: usize, trusted: &str) -> Registry {
    Registry::new(
        ConnectionLimits { total, per_address },
        Arc::new(TrustedProxies::parse(trusted).unwrap()),
        Arc::new(Metrics::new()),
    )
}

fn peer(ip: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip.parse().unwrap(), port)
}

/// A request in flight (with a body still arriving), authenticated or not.
fn busy(r: &Registry, conn: &Conn, authenticated: bool) {
    r.begin_request(conn, true);
    conn.authenticated.store(authenticated, Ordering::Release);
    if authenticated {
        conn.vouched.store(true, Ordering::Release);
    }
}

#[test]
fn under_the_caps_everyone_is_admitted_and_released() {
    let r = registry(4, 2, "");
    let a = r.admit(peer("192.0.2.1", 1)).unwrap();
    let b = r.admit(peer("192.0.2.2", 1)).unwrap();
    assert_eq!(r.len(), 2);
    assert!(Arc::ptr_eq(&r.get(&peer("192.0.2.1", 1)).unwrap(), &a));
    r.release(&a);
    r.release(&a);
    assert_eq!(r.len(), 1);
    r.release(&b);
    assert!(r.is_empty());
}

#[test]
fn at_the_total_cap_the_longest_idle_goes_first_then_the_oldest_unauthenticated() {
    let r = registry(3, 10, "");
    let idle_old = r.admit(peer("192.0.2.1", 1)).unwrap();
    let idle_new = r.admit(peer("192.0.2.2", 1)).unwrap();
    let member = r.admit(peer("192.0.2.3", 1)).unwrap();
    busy(&r, &member, true);
    let newcomer = r.admit(peer("192.0.2.4", 1)).unwrap();
    assert!(idle_old.is_closing(), "the connection idle longest was closed");
    assert!(!idle_new.is_closing() && !member.is_closing());
    assert_eq!(r.len(), 3);
    // The newcomer trickles an unauthenticated body; the other idle one goes next.
    busy(&r, &newcomer, false);
    let _ = r.admit(peer("192.0.2.5", 1)).unwrap();
    assert!(idle_new.is_closing());
    // Now: the member (authenticated), the trickler, and a fresh idle one.
    // An idle connection goes before an unauthenticated request.
    let _ = r.admit(peer("192.0.2.6", 1)).unwrap();
    assert!(!newcomer.is_closing(), "an idle connection was closed before the unauthenticated request");
    assert!(!member.is_closing());
}

#[test]
fn a_members_idle_connection_goes_after_strangers_and_slow_requests() {
    let r = registry(3, 10, "");
    let member = r.admit(peer("192.0.2.1", 1)).unwrap();
    busy(&r, &member, true);
    r.end_request(&member);
    let stranger = r.admit(peer("192.0.2.2", 1)).unwrap();
    let slow = r.admit(peer("192.0.2.3", 1)).unwrap();
    busy(&r, &slow, false);
    // The member's connection has been idle longest, yet goes last:
    // first the idle stranger,
    let fourth = r.admit(peer("192.0.2.4", 1)).unwrap();
    assert!(stranger.is_closing() && !slow.is_closing() && !member.is_closing());
    // (strangers make room for strangers)
    let fifth = r.admit(peer("192.0.2.5", 1)).unwrap();
    assert!(fourth.is_closing() && !slow.is_closing() && !member.is_closing());
    // then the slow unauthenticated request,
    busy(&r, &fifth, true);
    let sixth = r.admit(peer("192.0.2.6", 1)).unwrap();
    assert!(slow.is_closing() && !member.is_closing());
    // and only then the member's idle connection.
    busy(&r, &sixth, true);
    let _ = r.admit(peer("192.0.2.7", 1)).unwrap();
    assert!(member.is_closing());
}

#[test]
fn a_client_between_public_requests_goes_after_silent_and_slow_strangers() {
    let r = registry(4, 10, "");
    // A client that completed a public request and is about to send the next.
    let client = r.admit(peer("192.0.2.1", 1)).unwrap();
    r.begin_request(&client, false);
    r.end_request(&client);
    // A public request being answered.
    let answering = r.admit(peer("192.0.2.2", 1)).unwrap();
    r.begin_request(&answering, false);
    let silent = r.admit(peer("192.0.2.3", 1)).unwrap();
    let slow = r.admit(peer("192.0.2.4", 1)).unwrap();
    busy(&r, &slow, false);
    // Each newcomer then serves a member, so only the four above compete;
    // they go in this order.
    let expected = ["silent", "slow", "client", "answering"];
    for (i, port) in (5..9).enumerate() {
        let newcomer = r.admit(peer(&format!("192.0.2.{port}"), 1)).unwrap();
        busy(&r, &newcomer, true);
        let closed: Vec<&str> = [("silent", &silent), ("slow", &slow), ("client", &client), ("answering", &answering)]
            .into_iter()
            .filter(|(_, c)| c.is_closing())
            .map(|(name, _)| name)
            .collect();
        assert_eq!(closed, expected[..=i], "after newcomer {}", i + 1);
    }
}

#[test]
fn authenticated_requests_are_never_closed_for_a_newcomer() {
    let r = registry(2, 10, "");
    let a = r.admit(peer("192.0.2.1", 1)).unwrap();
    let b = r.admit(peer("192.0.2.2", 1)).unwrap();
    busy(&r, &a, true);
    busy(&r, &b, true);
    assert_eq!(r.admit(peer("192.0.2.3", 1)).unwrap_err(), Refused::Full(2));
    assert!(!a.is_closing() && !b.is_closing());
    assert_eq!(r.closed_by_caps(), (0, 1));
    // Once a request ends, its connection is idle and expendable again.
    r.end_request(&a);
    r.admit(peer("192.0.2.3", 1)).unwrap();
    assert!(a.is_closing() && !b.is_closing());
}

#[test]
fn one_address_only_ever_closes_its_own_connections() {
    let r = registry(100, 2, "");
    let other = r.admit(peer("192.0.2.9", 1)).unwrap();
    let first = r.admit(peer("192.0.2.1", 1)).unwrap();
    let second = r.admit(peer("192.0.2.1", 2)).unwrap();
    busy(&r, &second, true);
    let third = r.admit(peer("192.0.2.1", 3)).unwrap();
    assert!(first.is_closing(), "its own idle connection made room");
    assert!(!other.is_closing());
    busy(&r, &third, true);
    assert!(matches!(r.admit(peer("192.0.2.1", 4)), Err(Refused::Address(_, 2))));
    // IPv6 addresses of one /64 are one address.
    let v6a = r.admit(peer("2001:db8::1", 1)).unwrap();
    let v6b = r.admit(peer("2001:db8::2", 1)).unwrap();
    let _v6c = r.admit(peer("2001:db8::3", 1)).unwrap();
    assert!(v6a.is_closing() && !v6b.is_closing());
    assert_eq!(r.len(), 5);
}

#[test]
fn trusted_proxies_count_only_towards_the_total() {
    let r = registry(5, 1, "10.0.0.1");
    let conns: Vec<_> = (1..=5).map(|port| r.admit(peer("10.0.0.1", port)).unwrap()).collect();
    assert!(conns.iter().all(|c| !c.is_closing()));
    let _ = r.admit(peer("10.0.0.1", 6)).unwrap();
    assert!(conns[0].is_closing(), "the total cap still holds");
}

#[test]
fn a_closed_stream_fails_its_reads_and_writes_and_wakes_its_task() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let _client = TcpStream::connect(addr).await.unwrap();
        let (server, peer) = listener.accept().await.unwrap();
        let r = Arc::new(registry(1, 1, ""));
        let conn = r.admit(peer).unwrap();
        let mut stream = TrackedStream { inner: server, conn: Arc::clone(&conn), registry: Arc::clone(&r) };
        // A read parked waiting for bytes fails as soon as the
        // connection is closed from elsewhere.
        let closer = Arc::clone(&conn);
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            closer.close();
        });
        let mut buf = [0u8; 16];
        let read = tokio::time::timeout(std::time::Duration::from_secs(5), stream.read(&mut buf)).await;
        let err = read.expect("the parked read was woken").unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionAborted);
        assert!(stream.write_all(b"x").await.is_err());
        assert_eq!(r.len(), 1);
        drop(stream);
        assert!(r.is_empty(), "dropping the stream leaves the registry");
    });
}
