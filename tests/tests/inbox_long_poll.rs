//! The inbox long-poll end to end: a recipient's client, through the
//! client library's `HubApi::inbox_wait` (what `sealdrop watch` calls),
//! waits on a real `sealdrop-hub serve` process while another party sends
//! with the real `sealdrop send`; the waiting call returns with that drop
//! as soon as it is committed, well before its wait would end.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sealdrop::transport::HubApi;
use sealdrop_e2e::{Hub, Party};
use sealdrop_proto::clock::SystemClock;

/// The hub's gauge of waiting inbox requests.
fn waiting(hub: &Hub) -> Option<f64> {
    hub.scrape().lines().find_map(|l| l.strip_prefix("sealdrop_hub_inbox_waiting ")).and_then(|v| v.trim().parse().ok())
}

#[test]
fn a_waiting_client_gets_a_drop_another_party_sends_well_before_its_wait_ends() {
    let hub = Hub::start_with_options(&["--metrics-listen", "127.0.0.1:0"]);
    let camden = Party::new(&hub, "camden");
    let islington = Party::new(&hub, "islington");
    let api = HubApi::new(&hub.url, Some(islington.secret_key().signing), Arc::new(SystemClock)).unwrap();
    assert!(api.inbox().unwrap().drops.is_empty());
    // The harness builds `sealdrop` on first use: do that before the wait
    // starts, so the wait measures the hub, not the build.
    camden.ok(["--version"]);

    let waiter = std::thread::spawn(move || {
        let started = Instant::now();
        let inbox = api.inbox_wait(Duration::from_secs(60), None);
        (inbox, started.elapsed())
    });
    // Send only once the request waits, so what is tested is the wake-up,
    // not a drop that was already there.
    let give_up = Instant::now() + Duration::from_secs(30);
    while waiting(&hub) != Some(1.0) {
        assert!(Instant::now() < give_up, "the inbox request never waited: {:?}", waiting(&hub));
        std::thread::sleep(Duration::from_millis(20));
    }
    let file = camden.file("pupils.csv", "upn,fsm\nA123,1\n");
    let sending = Instant::now();
    let id = camden.send("islington", &[&file]);
    let send_took = sending.elapsed();

    let (inbox, took) = waiter.join().unwrap();
    let ids: Vec<String> = inbox.unwrap().drops.into_iter().map(|d| d.id.to_string()).collect();
    assert_eq!(ids, vec![id], "the waiting client got the drop camden sent");
    // Generous: the send itself (a process, several requests) may be slow
    // on a loaded machine, but the wait is 60 s.
    assert!(took < Duration::from_secs(45), "answered after {took:?} (the send took {send_took:?})");
    assert_eq!(waiting(&hub), Some(0.0));
}
