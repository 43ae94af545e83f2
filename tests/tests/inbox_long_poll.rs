//! The inbox long-poll end to end: a recipient's client, through the
//! client library's `HubApi::inbox_wait` (what `sealdrop watch` calls),
//! waits on a real `sealdrop-hub serve` process while another party sends
//! with the real `sealdrop send`; the waiting call returns with that drop
//! as soon as it is committed, well before its wait would end. And across
//! two instances of one hub on one PostgreSQL database and one object store
//! (real servers, see `sealdrop_e2e::SharedStores`): a request waiting on
//! one instance, which no commit elsewhere wakes, learns of a drop sent
//! through the other within its 2-second reread; so does the `sealdrop
//! watch` service, which fetches it into its inbox folder and acknowledges it.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sealdrop::transport::HubApi;
use sealdrop_e2e::watch::{Watcher, wait_for};
use sealdrop_e2e::{AGREEMENT, Hub, Party, SharedStores, recipient_status};
use sealdrop_proto::Timestamp;
use sealdrop_proto::api::Inbox;
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

/// The wait the requests across instances ask for.
const WAIT_ACROSS: Duration = Duration::from_secs(30);

/// How soon after its commit a drop committed through another instance
/// reaches a request waiting here: nothing wakes it in this process, the
/// request reads the inbox again every 2 s (`RECHECK_INTERVAL`,
/// hub/src/inbox_wait.rs); the rest is slack for a loaded machine and the
/// commit time the hub records, its whole second (up to 1 s early). Were
/// the rereads missing, the answer would come only as the 30 s wait ends,
/// some 25 s after the commit.
const REREAD_BOUND: Duration = Duration::from_secs(7);

/// What a request waiting on one instance answered.
struct Waited {
    api: HubApi,
    inbox: Inbox,
    /// Since the request was made.
    took: Duration,
    /// The time it answered, on the clock the hubs share (the system's).
    answered: Timestamp,
}

/// Makes `api`'s inbox request wait (for [`WAIT_ACROSS`], with `since`) on
/// `waiting_on`, then, once it waits there, has `sender` send `file` to
/// islington with the real `sealdrop send` through its own hub: returns
/// the drop id sent and what the waiting request answered.
fn wait_while_sent(
    waiting_on: &Hub,
    api: HubApi,
    since: Option<Timestamp>,
    sender: &Party,
    file: &Path,
) -> (String, Waited) {
    let waiter = std::thread::spawn(move || {
        let started = Instant::now();
        let inbox = api.inbox_wait(WAIT_ACROSS, since).expect("the waiting inbox request");
        let (took, answered) = (started.elapsed(), Timestamp::now());
        Waited { api, inbox, took, answered }
    });
    // Sent only once the request waits (registered before its first read),
    // so the drop is not simply there when it first reads.
    let give_up = Instant::now() + Duration::from_secs(30);
    while waiting(waiting_on) != Some(1.0) {
        assert!(Instant::now() < give_up, "the inbox request never waited: {:?}", waiting(waiting_on));
        std::thread::sleep(Duration::from_millis(20));
    }
    let id = sender.send("islington", &[file]);
    (id, waiter.join().expect("the waiting thread"))
}

/// Asserts `waited` answered with drop `id` within [`REREAD_BOUND`] of its
/// commit, before its wait ran out.
fn answered_by_reread(waited: &Waited, id: &str) -> Timestamp {
    let entry = waited.inbox.drops.iter().find(|d| d.id.as_str() == id);
    let committed =
        entry.unwrap_or_else(|| panic!("the waiting request's answer lacks {id}: {:?}", waited.inbox)).committed;
    let after = waited.answered.duration_since(committed);
    assert!(
        after.as_secs_f64() <= REREAD_BOUND.as_secs_f64(),
        "answered {after:?} after the commit elsewhere (rereads every 2 s)"
    );
    assert!(waited.took < WAIT_ACROSS - Duration::from_secs(1), "answered only as the wait ended: {:?}", waited.took);
    committed
}

#[test]
fn a_client_waiting_on_one_instance_gets_a_drop_sent_through_the_other_within_a_reread() {
    let a = Hub::start_on_shared_stores(&SharedStores::start(), None, &["--metrics-listen", "127.0.0.1:0"]);
    let b = a.another_instance(&[]);
    let camden = Party::new(&b, "camden");
    let islington = Party::new(&a, "islington");
    let api = HubApi::new(&a.url, Some(islington.secret_key().signing), Arc::new(SystemClock)).unwrap();
    assert!(api.inbox().unwrap().drops.is_empty());
    // Built before any wait starts, so the waits measure the hubs.
    camden.ok(["--version"]);

    // An empty inbox: the drop committed on B is the answer on A.
    let (first, waited) = wait_while_sent(&a, api, None, &camden, &camden.file("pupils.csv", "upn,fsm\nA123,1\n"));
    let ids: Vec<String> = waited.inbox.drops.iter().map(|d| d.id.to_string()).collect();
    assert_eq!(ids, vec![first.clone()], "the waiting client got the drop camden sent through the other instance");
    let first_committed = answered_by_reread(&waited, &first);
    assert_eq!(waiting(&a), Some(0.0));

    // With `since` (what `sealdrop watch` asks when a drop stays in its
    // inbox): the drop already there is not new, the one committed on B
    // after it is. Its commit is in a later second than the first's (the
    // hub's times are whole seconds, and `since` compares them).
    while Timestamp::now().as_second() <= first_committed.as_second() {
        std::thread::sleep(Duration::from_millis(50));
    }
    let file = camden.file("pupils-2.csv", "upn,fsm\nB456,0\n");
    let (second, waited) = wait_while_sent(&a, waited.api, Some(first_committed), &camden, &file);
    let mut ids: Vec<String> = waited.inbox.drops.iter().map(|d| d.id.to_string()).collect();
    ids.sort();
    let mut both = vec![first, second.clone()];
    both.sort();
    assert_eq!(ids, both, "the whole inbox, the drop committed on the other instance included");
    answered_by_reread(&waited, &second);
}

#[test]
fn the_watch_service_waiting_on_one_instance_fetches_and_acknowledges_a_drop_sent_through_the_other() {
    let a = Hub::start_on_shared_stores(&SharedStores::start(), None, &["--metrics-listen", "127.0.0.1:0"]);
    let b = a.another_instance(&[]);
    let camden = Party::new(&b, "camden");
    let islington = Party::new(&a, "islington");
    // Its inbox requests wait the hub's longest wait, a minute.
    let receiver = Watcher::start(&islington, &["--poll", "60"]);
    let within = Duration::from_secs(90);
    wait_for(within, "the service's inbox request to wait on A", || (waiting(&a) == Some(1.0)).then_some(()));

    let content = b"upn,fsm\nA123,1\n";
    let id = camden.send("islington", &[&camden.file("fsm.csv", content)]);
    let sent = Instant::now();
    let placed = receiver.dir.join("inbox").join("camden").join(AGREEMENT).join("fsm.csv");
    wait_for(within, "the drop in islington's inbox folder", || placed.is_file().then_some(()));
    // A reread (2 s), then a fetch, checks and the file placed: seconds.
    // Without the rereads it would come as the minute's wait ends.
    let took = sent.elapsed();
    assert!(took < Duration::from_secs(20), "placed {took:?} after the send through the other instance returned");
    assert_eq!(std::fs::read(&placed).unwrap(), content);
    let arrived = receiver.wait_event("arrived", within);
    assert_eq!(arrived["drops"], serde_json::json!([id]));
    assert_eq!(arrived["from"], "camden");

    // Acknowledged through A; camden sees it through B, and it has left
    // islington's inbox on both.
    wait_for(within, "camden to see the drop acknowledged through the other instance", || {
        (recipient_status(&camden.status_of(&id), "islington")["outcome"] == "acknowledged").then_some(())
    });
    assert!(islington.inbox_ids().is_empty());
    assert!(Party::new(&b, "islington").inbox_ids().is_empty());
    assert_eq!(receiver.status()["received"], 1);
}
