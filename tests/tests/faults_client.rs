//! Faults lose nothing, on the client's side: the real `sealdrop` is killed
//! (SIGKILL) in the middle of a large transfer, caught there by a
//! [`CutProxy`] that holds the connection still (so the kill lands mid-way
//! every time, however fast or loaded the machine).
//!
//! - Killed mid-fetch: nothing but the client's hidden staging folder is in
//!   the output folder, the drop is not acknowledged, the next command
//!   removes the staging folder (saying so), and the next fetch resumes
//!   from the partial download kept in the state dir and places exactly
//!   what was sent.
//! - Killed mid-fetch, and the drop then recalled: the next command run
//!   removes the staging folder (decrypted files) at once, from whatever
//!   folder it runs, and says so.
//! - Killed mid-send: the recipient sees nothing, and the same `sealdrop
//!   send` run again completes (starting over: a send killed before its
//!   local copy was finished cannot be continued, see docs/architecture.md).

use std::ffi::OsStr;
use std::path::Path;
use std::time::{Duration, Instant};

use sealdrop_e2e::{Cut, CutProxy, Hub, Party, list_dir, pseudo_random_bytes, read_bytes, recipient_status, tree};

const MIB: usize = 1024 * 1024;
/// Generous: the test machine has two cores and other work.
const WAIT: Duration = Duration::from_secs(120);

/// Waits (at most [`WAIT`]) until `ready` holds.
fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let started = Instant::now();
    while !ready() {
        assert!(started.elapsed() < WAIT, "timed out after {WAIT:?} waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn size_of(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// The bytes of every regular file under `dir`.
fn bytes_under(dir: &Path) -> u64 {
    tree(dir).values().map(|c| c.len() as u64).sum()
}

#[test]
fn a_client_killed_mid_fetch_leaves_no_output_and_the_next_fetch_gives_the_exact_content() {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    let data = pseudo_random_bytes(40 * MIB, 21);
    let id = camden.send("islington", &[&camden.file("ehcp-scans.bin", &data)]);
    let ciphertext = hub.ciphertext(&id).expect("the hub holds the ciphertext");

    // The download is held after 16 MiB.
    let proxy = CutProxy::start(&hub.addr, Some(Cut::stall_response("GET /v1/drops/", "/content", 16 << 20)));
    let mut islington = Party::with_url(&proxy.url, "islington");
    let out = islington.work().join("incoming");
    let staging = out.join(format!(".sealdrop-incoming-{id}"));
    let spool = islington.state.join("downloads").join(format!("{id}.age.part"));
    let mut fetching = islington.spawn([OsStr::new("fetch"), OsStr::new(&id), OsStr::new("-o"), out.as_os_str()]);
    proxy.wait_stalled(WAIT);
    // Everything the proxy let through is received, kept and partly
    // decrypted before the kill.
    wait_until("the partial download is kept", || size_of(&spool) >= 15 << 20);
    wait_until("decrypted files are staged", || staging.is_dir() && bytes_under(&staging) >= 8 << 20);
    fetching.kill().expect("kill sealdrop fetch");
    let killed = fetching.wait_with_output().expect("wait for sealdrop fetch");
    assert!(!killed.status.success(), "the fetch finished before it was killed");

    // Only the hidden staging folder, holding less than the drop.
    assert_eq!(list_dir(&out), [format!(".sealdrop-incoming-{id}")], "a killed fetch left output");
    assert!(bytes_under(&staging) < data.len() as u64);
    let kept = read_bytes(&spool);
    assert!(kept.len() >= 15 << 20 && kept.len() < ciphertext.len());
    assert!(kept[..] == ciphertext[..kept.len()], "the partial download is not the start of the ciphertext");
    islington.point_at(&hub);
    // The next command (here `inbox`) removes the decrypted files and says so.
    let inbox = islington.run(["inbox"]);
    let said = String::from_utf8_lossy(&inbox.stderr);
    assert!(said.contains(&format!(".sealdrop-incoming-{id}: drop {id} was being unpacked there")), "{said}");
    assert!(list_dir(&out).is_empty(), "decrypted files outlived the killed fetch: {:?}", list_dir(&out));
    assert_eq!(islington.inbox_ids(), [id.as_str()], "a killed fetch acknowledged the drop");
    let status = camden.status_of(&id);
    assert_eq!(recipient_status(&status, "islington")["outcome"], "fetched", "{status}");

    // The next fetch resumes and places the file.
    let again = islington.run([OsStr::new("fetch"), OsStr::new(&id), OsStr::new("-o"), out.as_os_str()]);
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(again.status.success(), "{err}");
    assert!(err.contains(&format!("resuming drop {id} from byte {} of {}", kept.len(), ciphertext.len())), "{err}");
    let got = tree(&out);
    assert_eq!(got.keys().collect::<Vec<_>>(), ["ehcp-scans.bin"], "exactly the drop's file, no staging folder");
    assert!(got["ehcp-scans.bin"] == data, "the fetched file differs from what was sent");
    assert!(!spool.exists(), "the partial download outlived the fetch");
    assert!(islington.inbox_ids().is_empty(), "the drop was not acknowledged");
    hub.assert_consistent(&[&camden, &islington]);
}

#[test]
fn decrypted_files_left_by_a_killed_fetch_are_removed_when_the_drop_is_recalled() {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    let data = pseudo_random_bytes(24 * MIB, 23);
    let id = camden.send("islington", &[&camden.file("ehcp-scans.bin", &data)]);
    let proxy = CutProxy::start(&hub.addr, Some(Cut::stall_response("GET /v1/drops/", "/content", 12 << 20)));
    let mut islington = Party::with_url(&proxy.url, "islington");
    let out = islington.work().join("incoming");
    let staging = out.join(format!(".sealdrop-incoming-{id}"));
    let mut fetching = islington.spawn([OsStr::new("fetch"), OsStr::new(&id), OsStr::new("-o"), out.as_os_str()]);
    proxy.wait_stalled(WAIT);
    wait_until("decrypted files are staged", || staging.is_dir() && bytes_under(&staging) >= 4 << 20);
    fetching.kill().expect("kill sealdrop fetch");
    fetching.wait().expect("wait for sealdrop fetch");
    assert_eq!(sealdrop_e2e::mode_of(&staging) & 0o777, 0o700, "the staging folder is not private");

    // The sender takes the drop back; the recipient's next fetch --all (in
    // another folder: its inbox is empty now) still finds and removes the
    // decrypted files and says so.
    camden.ok(["recall", id.as_str()]);
    islington.point_at(&hub);
    let elsewhere = islington.work().join("elsewhere");
    let run = islington.run([OsStr::new("fetch"), OsStr::new("--all"), OsStr::new("-o"), elsewhere.as_os_str()]);
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{err}");
    let said = format!(".sealdrop-incoming-{id}: drop {id} was being unpacked there by a fetch that did not finish");
    assert!(err.lines().any(|l| l.starts_with("removed ") && l.contains(&said)), "{err}");
    assert!(!staging.exists(), "decrypted files of a recalled drop outlived the fetch");
    assert!(list_dir(&out).is_empty(), "{:?}", list_dir(&out));
    // Said once: the next run has nothing to clean.
    let run = islington.run([OsStr::new("inbox")]);
    assert!(!String::from_utf8_lossy(&run.stderr).contains("removed"), "{}", String::from_utf8_lossy(&run.stderr));
}

#[test]
fn a_client_killed_mid_send_shows_nothing_and_the_same_send_again_completes() {
    let hub = Hub::start();
    // The upload is held after 6 MiB.
    let proxy = CutProxy::start(&hub.addr, Some(Cut::stall_request("PUT /v1/drops/", "/content", 6 << 20)));
    let mut camden = Party::with_url(&proxy.url, "camden");
    let islington = Party::new(&hub, "islington");
    let data = pseudo_random_bytes(24 * MIB, 22);
    let file = camden.file("ehcp-scans.bin", &data);
    let mut sending = camden.spawn([OsStr::new("send"), OsStr::new("--to"), OsStr::new("islington"), file.as_os_str()]);
    proxy.wait_stalled(WAIT);
    let line = proxy.requests_matching("PUT /v1/drops/", "/content")[0].line.clone();
    let first = line.split('/').nth(3).unwrap_or_default().to_owned();
    let part = hub.data.path().join("uploads").join(format!("{first}.part"));
    wait_until("the hub holds part of the upload", || size_of(&part) >= 5 << 20);
    sending.kill().expect("kill sealdrop send");
    let killed = sending.wait_with_output().expect("wait for sealdrop send");
    assert!(!killed.status.success(), "the send finished before it was killed");

    // Nothing is visible to the recipient; to the sender the drop is open.
    camden.point_at(&hub);
    assert!(islington.inbox_ids().is_empty(), "a half-sent drop is visible");
    assert_eq!(camden.status_of(&first)["state"], "open");
    hub.assert_consistent(&[&camden, &islington]);

    // The same command again: its local copy was never finished, so it
    // starts over with a new drop, and completes.
    let again = camden.run([OsStr::new("send"), OsStr::new("--to"), OsStr::new("islington"), file.as_os_str()]);
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(again.status.success(), "{err}");
    let id = String::from_utf8_lossy(&again.stdout).trim().to_owned();
    assert_ne!(id, first, "an unfinished local copy cannot be continued");
    assert!(err.contains(&format!("withdrew drop {first}")), "the killed run's drop is replaced: {err}");
    let outgoing = camden.state.join("outgoing");
    assert!(!outgoing.exists() || list_dir(&outgoing).is_empty(), "copies left in {}", outgoing.display());
    assert_eq!(islington.inbox_ids(), [id.as_str()], "only the completed drop is visible");
    let got = tree(&{
        let out = islington.work().join("incoming");
        islington.fetch(&id, &out);
        out
    });
    assert_eq!(got.keys().collect::<Vec<_>>(), ["ehcp-scans.bin"]);
    assert!(got["ehcp-scans.bin"] == data, "the fetched file differs from what was sent");
    let drops = hub.assert_consistent(&[&camden, &islington]);
    // The killed run left its record, so the same send withdrew its open
    // drop before sending: the hub no longer has it.
    assert!(!drops.contains_key(&first), "the killed run's drop was replaced: {:?}", drops.get(&first));
    assert_eq!(drops[&id].state.as_str(), "delivered");
    let sent = camden.journal().into_iter().filter(|l| l["event"] == "sent").count();
    assert_eq!(sent, 1, "the journal records the completed send only");
}
