//! A bounded load test: 8 senders and 4 fetchers, each a loop of the real
//! `sealdrop` binary, work at the same time against one real hub on
//! loopback, for a fixed count of drops (not a fixed time, so a slow machine
//! takes longer but checks the same thing).
//!
//! At the end every drop is accounted for: each id a sender was given is
//! committed once in the transfer log, fetched once, acknowledged once and
//! delivered; each recipient's journal receives exactly the drops addressed
//! to it, and the files it placed are byte for byte what was sent; the log
//! holds exactly the entries those drops make and nothing else, and `sealdrop
//! audit verify` passes ([`Hub::assert_consistent`]).

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sealdrop_e2e::{Hub, Party, pseudo_random_bytes, tree};
use sealdrop_log::entry::LogEntry;

const SENDERS: [&str; 8] = ["camden", "hackney", "barnet", "brent", "bexley", "bromley", "croydon", "ealing"];
const FETCHERS: [&str; 4] = ["islington", "haringey", "lambeth", "newham"];
const DROPS_PER_SENDER: usize = 12;
/// A bound on the whole run, so a lost drop fails the test instead of
/// hanging it (it takes well under a minute on a two-core machine).
const FINISH_WITHIN: Duration = Duration::from_secs(180);

/// One file a sender delivers.
struct Planned {
    name: String,
    to: &'static str,
    data: Vec<u8>,
}

/// The files sender `s` sends: mostly small (rows of the hub's database),
/// every fourth one large enough to be a file on the hub.
fn plan(s: usize, sender: &str) -> Vec<Planned> {
    (0..DROPS_PER_SENDER)
        .map(|j| {
            let seed = (s * DROPS_PER_SENDER + j) as u64 + 100;
            let len = if j % 4 == 3 { 300 * 1024 + s * 37 * 1024 } else { 2_000 + (s * 7 + j) * 3_001 };
            Planned {
                name: format!("{sender}-{j}.bin"),
                to: FETCHERS[(s + j) % FETCHERS.len()],
                data: pseudo_random_bytes(len, seed),
            }
        })
        .collect()
}

#[test]
fn eight_senders_and_four_fetchers_account_for_every_drop() {
    let hub = Hub::start();
    let senders: Vec<(Party, Vec<Planned>)> =
        SENDERS.iter().enumerate().map(|(s, id)| (Party::new(&hub, id), plan(s, id))).collect();
    let fetchers: Vec<(Party, PathBuf)> = FETCHERS
        .iter()
        .map(|id| {
            let party = Party::new(&hub, id);
            let out = party.work().join("incoming");
            (party, out)
        })
        .collect();
    let expected_for = |to: &str| senders.iter().flat_map(|(_, files)| files).filter(|f| f.to == to).count();
    let entries_before = hub.log_entries().len();

    let started = Instant::now();
    let senders_left = AtomicUsize::new(SENDERS.len());
    let (sent, fetch_runs): (Vec<Vec<String>>, Vec<usize>) = std::thread::scope(|scope| {
        let sending: Vec<_> = senders
            .iter()
            .map(|(party, files)| {
                let senders_left = &senders_left;
                scope.spawn(move || {
                    let ids: Vec<String> =
                        files.iter().map(|f| party.send(f.to, &[&party.file(&f.name, &f.data)])).collect();
                    senders_left.fetch_sub(1, Ordering::SeqCst);
                    ids
                })
            })
            .collect();
        // Each fetcher fetches whatever waits for it, again and again, until
        // every file addressed to it is in its folder.
        let fetching: Vec<_> = fetchers
            .iter()
            .map(|(party, out)| {
                let expected = expected_for(&party.id);
                let senders_left = &senders_left;
                scope.spawn(move || {
                    let mut runs = 0;
                    loop {
                        let placed = if out.exists() { tree(out).len() } else { 0 };
                        if placed == expected {
                            return runs;
                        }
                        assert!(
                            started.elapsed() < FINISH_WITHIN,
                            "{} placed {placed} of {expected} files within {FINISH_WITHIN:?}",
                            party.id
                        );
                        party.ok([OsStr::new("fetch"), OsStr::new("--all"), OsStr::new("-o"), out.as_os_str()]);
                        runs += 1;
                        if senders_left.load(Ordering::SeqCst) > 0 {
                            std::thread::sleep(Duration::from_millis(50));
                        }
                    }
                })
            })
            .collect();
        let sent = sending.into_iter().map(|t| t.join().expect("a sender failed")).collect();
        let runs = fetching.into_iter().map(|t| t.join().expect("a fetcher failed")).collect();
        (sent, runs)
    });
    let elapsed = started.elapsed();

    // Every id is a drop of its own, sent by whom it says, to whom it says.
    let total = SENDERS.len() * DROPS_PER_SENDER;
    let mut planned_by_id: BTreeMap<String, (&str, &Planned)> = BTreeMap::new();
    for ((party, files), ids) in senders.iter().zip(&sent) {
        assert_eq!(ids.len(), files.len());
        for (id, file) in ids.iter().zip(files) {
            assert!(planned_by_id.insert(id.clone(), (party.id.as_str(), file)).is_none(), "drop id {id} given twice");
        }
    }
    assert_eq!(planned_by_id.len(), total);

    let parties: Vec<&Party> = senders.iter().map(|(p, _)| p).chain(fetchers.iter().map(|(p, _)| p)).collect();
    let drops = hub.assert_consistent(&parties);
    assert_eq!(drops.len(), total, "the hub holds drops nobody sent");
    for (id, (sender, file)) in &planned_by_id {
        let d = &drops[id];
        assert_eq!((d.sender.as_str(), d.state.as_str()), (*sender, "delivered"), "drop {id}");
        assert_eq!(
            (d.recipients.clone(), d.acknowledged_by.clone()),
            (vec![file.to.to_owned()], vec![file.to.to_owned()]),
            "drop {id}"
        );
    }

    // Each recipient received exactly its drops, once, and placed them whole.
    let mut received: BTreeSet<String> = BTreeSet::new();
    for (party, out) in &fetchers {
        for line in party.journal().into_iter().filter(|l| l["event"] == "received") {
            let id = line["drop"].as_str().expect("a drop id").to_owned();
            let (sender, file) = planned_by_id.get(&id).unwrap_or_else(|| panic!("{} received unknown {id}", party.id));
            assert_eq!((line["from"].as_str(), file.to), (Some(*sender), party.id.as_str()), "drop {id}");
            assert_eq!(line["names"], serde_json::json!([file.name]), "drop {id}");
            assert!(received.insert(id.clone()), "drop {id} was received twice");
        }
        let placed = tree(out);
        let mine: BTreeMap<&str, &Planned> =
            planned_by_id.values().filter(|(_, f)| f.to == party.id).map(|(_, f)| (f.name.as_str(), *f)).collect();
        assert_eq!(placed.keys().map(String::as_str).collect::<Vec<_>>(), mine.keys().copied().collect::<Vec<_>>());
        for (name, content) in &placed {
            assert!(*content == mine[name.as_str()].data, "{}: {name} arrived changed", party.id);
        }
    }
    assert_eq!(received.len(), total, "not every drop was received");

    // The log holds exactly what these drops make: per drop one commit, one
    // fetch, one receipt and the hub's statement that it deleted it.
    let entries = hub.log_entries();
    let new = &entries[entries_before..];
    let mut kinds: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut statements = 0;
    for entry in new {
        let (kind, id) = match entry {
            LogEntry::DropCommitted { manifest, .. } => {
                let m: sealdrop_proto::drop::Manifest = sealdrop_proto::note::peek_doc(manifest).expect("manifest");
                ("committed", m.drop.to_string())
            }
            LogEntry::DropFetched { drop, .. } => ("fetched", drop.to_string()),
            LogEntry::DropAcknowledged { receipt, .. } => {
                let r: sealdrop_proto::drop::Receipt = sealdrop_proto::note::peek_doc(receipt).expect("receipt");
                ("acknowledged", r.drop.to_string())
            }
            LogEntry::Hub { .. } => {
                statements += 1;
                continue;
            }
            other => panic!("unexpected log entry {other:?}"),
        };
        assert!(planned_by_id.contains_key(&id), "the log names drop {id}, which nobody sent");
        assert!(kinds.entry(kind).or_default().insert(id.clone()), "drop {id} {kind} twice in the log");
    }
    for kind in ["committed", "fetched", "acknowledged"] {
        assert_eq!(kinds.get(kind).map_or(0, BTreeSet::len), total, "{kind} entries");
    }
    assert_eq!(statements, total, "one deletion statement per delivered drop");
    assert_eq!(new.len(), 4 * total);

    eprintln!(
        "load: {total} drops from {} senders to {} fetchers in {elapsed:.1?} ({:.1} drops/s); fetch runs {fetch_runs:?}",
        SENDERS.len(),
        FETCHERS.len(),
        total as f64 / elapsed.as_secs_f64(),
    );
}
