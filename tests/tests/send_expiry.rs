//! The longest expiry an agreement allows is always accepted: the client
//! asks for `now + lifetime` rounded down to the second (it used to round to
//! the nearest, asking for up to half a second too much whenever it ran in
//! the second half of a second), and the hub tolerates a sender's clock
//! running ahead of its own by as much as it tolerates for signed requests.
//! Time is set on test clocks, so each case is deterministic.

use std::path::PathBuf;

use sealdrop_e2e::{Hub, Party, TestClock, json, timestamp};

/// The example directory's agreement lets a drop wait at most 30 days.
const MAX_DAYS: i64 = 30;

/// A clock file for the client alone, `ahead_ms` milliseconds ahead of `hub`'s.
fn client_clock(dir: &tempfile::TempDir, hub: &TestClock, ahead_ms: i64) -> PathBuf {
    let path = dir.path().join("client-now");
    let t = sealdrop_proto::Timestamp::from_millisecond(hub.now() * 1000 + ahead_ms).unwrap();
    std::fs::write(&path, t.to_string()).unwrap();
    path
}

/// `send --json --expires ...` of a small file, `times` times in a row: each must succeed.
fn send_many(camden: &Party, expires: Option<&str>, times: usize) -> Vec<serde_json::Value> {
    let file = camden.file("fsm.csv", "pupil_ref,name\nSYN001,Zoë\n");
    (0..times)
        .map(|i| {
            let mut args = vec!["send", "--json", "--to", "islington"];
            if let Some(e) = expires {
                args.extend(["--expires", e]);
            }
            args.push(file.to_str().unwrap());
            let out = camden.run(&args);
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "send {i} with --expires {expires:?} failed:\n{err}");
            json(&String::from_utf8_lossy(&out.stdout))
        })
        .collect()
}

#[test]
fn the_longest_expiry_is_accepted_in_the_second_half_of_a_second() {
    let clock = TestClock::new();
    let hub = Hub::start_with_clock(&clock, &[]);
    let files = tempfile::tempdir().unwrap();
    let mut camden = Party::new(&hub, "camden");
    // 700 ms into the hub's second: rounding to the nearest second asked for
    // 300 ms more than 30 days, and the hub refused every time.
    camden.clock = Some(client_clock(&files, &clock, 700));
    for sent in send_many(&camden, Some(&format!("{MAX_DAYS}d")), 4) {
        assert_eq!(timestamp(&sent, "expires").as_second(), clock.now() + MAX_DAYS * 86_400, "{sent}");
    }
    // The default (5 days) is well inside; it is rounded down the same way.
    for sent in send_many(&camden, None, 2) {
        assert_eq!(timestamp(&sent, "expires").as_second(), clock.now() + 5 * 86_400, "{sent}");
    }
}

#[test]
fn a_sender_clock_a_little_ahead_of_the_hub_still_gets_the_longest_expiry() {
    // In three requests: the hub creates the drop on its clock and trims the
    // expiry asked for to its own limit; the signed manifest states what
    // the hub stored (the send committed).
    longest_expiry_with_a_clock_ahead(&["--max-single-request-bytes", "0"], 0);
}

#[test]
fn a_sender_clock_a_little_ahead_of_the_hub_gets_the_longest_expiry_from_its_own_creation_in_one_request() {
    // In one request the sender signs `created` on its own clock (within the
    // five minutes a signed request may be off) and the longest expiry from
    // it, which the hub accepts exactly as the audit checks it.
    longest_expiry_with_a_clock_ahead(&[], 120);
}

/// Sends with the client's clock two minutes ahead of the hub's (started
/// with `options`): the longest expiry is `later` seconds after the hub's
/// now plus 30 days. Then five minutes and more ahead: refused as stale.
fn longest_expiry_with_a_clock_ahead(options: &[&str], later: i64) {
    let clock = TestClock::new();
    let hub = Hub::start_with_clock(&clock, options);
    let files = tempfile::tempdir().unwrap();
    let mut camden = Party::new(&hub, "camden");
    // Two minutes ahead: inside the five minutes a signed request may be off.
    camden.clock = Some(client_clock(&files, &clock, 120_000));
    for sent in send_many(&camden, Some(&format!("{MAX_DAYS}d")), 3) {
        assert_eq!(timestamp(&sent, "expires").as_second(), clock.now() + later + MAX_DAYS * 86_400, "{sent}");
    }
    // Further off than a signed request may be: refused as a stale request,
    // which says to check the clock, not as a bad expiry.
    camden.clock = Some(client_clock(&files, &clock, 400_000));
    let file = camden.file("late.csv", "a\n1\n");
    camden.fail_with(["send", "--to", "islington", "--expires", "30d", file.to_str().unwrap()], 6, "stale_request");
}
