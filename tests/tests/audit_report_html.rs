//! The IG report's HTML renders in a real browser: a generated log of the 33
//! London councils goes through `sealdrop::audit::report`, and Debian's
//! Chromium (headless) loads the page, serialises its DOM and screenshots it.
//!
//! Chromium is required: without it this test fails and says how to install
//! it. Set `SEALDROP_REPORT_OUT=<folder>` to keep the HTML and the PNG.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sealdrop::audit::report::{ReportInput, build, write_csv, write_html};
use sealdrop_log::entry::{DeletionReason, HubStatement, LogEntry, SignedRequest};
use sealdrop_proto::Timestamp;
use sealdrop_proto::directory::{Agreement, Directory, Party, SignedDirectory};
use sealdrop_proto::drop::{EncryptedTo, Manifest, Receipt};
use sealdrop_proto::ids::{DropId, PartyId};
use sealdrop_proto::keys::{MemberSecretKey, NoteSigningKey};
use sealdrop_proto::note::sign_doc;

const CHROMIUM: &str = "/usr/bin/chromium";

const BOROUGHS: [&str; 33] = [
    "Barking & Dagenham",
    "Barnet",
    "Bexley",
    "Brent",
    "Bromley",
    "Camden",
    "City of London",
    "Croydon",
    "Ealing",
    "Enfield",
    "Greenwich",
    "Hackney",
    "Hammersmith & Fulham",
    "Haringey",
    "Harrow",
    "Havering",
    "Hillingdon",
    "Hounslow",
    "Islington",
    "Kensington & Chelsea",
    "Kingston upon Thames",
    "Lambeth",
    "Lewisham",
    "Merton",
    "Newham",
    "Redbridge",
    "Richmond upon Thames",
    "Southwark",
    "Sutton",
    "Tower Hamlets",
    "Waltham Forest",
    "Wandsworth",
    "Westminster",
];

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn t(s: &str) -> i64 {
    s.parse::<Timestamp>().unwrap().as_second()
}

fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(secs).unwrap()
}

fn id_of(name: &str) -> PartyId {
    PartyId::from_display_name(&name.replace('&', "and")).unwrap()
}

struct Log {
    entries: Vec<(i64, LogEntry)>,
    directories: Vec<SignedDirectory>,
    names: Vec<&'static str>,
}

fn party(key: &MemberSecretKey, name: &str, witness: Option<&NoteSigningKey>) -> Party {
    let card = key.public();
    Party {
        witness_keys: witness.map(|w| vec![w.cosigner_verifier()]).unwrap_or_default(),
        revoked: vec![],
        ..Party::with_member(name, card)
    }
}

fn agreement(id: &str, title: &str, parties: &[PartyId]) -> Agreement {
    Agreement {
        id: id.to_owned(),
        title: title.to_owned(),
        purpose: "Statutory duties".to_owned(),
        lawful_basis: "UK GDPR Art. 6(1)(e); Children Act 2004 s.10".to_owned(),
        parties: parties.to_vec(),
        max_expiry_days: 14,
        valid_from: "2025-09-01T00:00:00Z".parse().unwrap(),
        valid_until: "2027-09-01T00:00:00Z".parse().unwrap(),
        require_pq: false,
    }
}

/// A realistic log: three directory versions and ~700 drops between the 33
/// London councils over four months, with expiries, recalls and waits.
fn generate() -> Log {
    let mut rng = Rng(0x5ea1_d209_2026_0001);
    let authority = NoteSigningKey::generate("london-coordinator").unwrap();
    let hub = NoteSigningKey::generate("hub.london.example/log").unwrap();
    let ids: Vec<PartyId> = BOROUGHS.iter().map(|n| id_of(n)).collect();
    // Classic keys at first: the drops of January and early February are classic.
    let mut keys: Vec<MemberSecretKey> =
        ids.iter().map(|p| MemberSecretKey::generate_classic(p.clone(), "data-team".parse().unwrap())).collect();

    let fsm = agreement("london-fsm-2026", "Free school meals eligibility", &ids);
    let sen = agreement("sen-transfers", "SEND records on school transfer", &ids[..14]);
    let care = agreement("care-leavers", "Care leavers' placements", &ids[10..22]);
    let yj = agreement("youth-justice-ne", "Youth justice (north-east)", &[4, 11, 13, 24, 29].map(|i| ids[i].clone()));

    let dir = |serial: u64,
               issued: &str,
               keys: &[MemberSecretKey],
               witnesses: &[(usize, &NoteSigningKey)],
               ags: Vec<Agreement>| {
        let parties = keys
            .iter()
            .enumerate()
            .map(|(i, k)| party(k, BOROUGHS[i], witnesses.iter().find(|(w, _)| *w == i).map(|(_, k)| *k)))
            .collect();
        let d = Directory { serial, issued_at: issued.parse().unwrap(), hub: None, parties, agreements: ags };
        SignedDirectory::sign(d, &authority).unwrap()
    };
    let w_camden = NoteSigningKey::generate("witness.camden").unwrap();
    let w_hackney = NoteSigningKey::generate("witness.hackney").unwrap();
    let mut directories =
        vec![dir(1, "2026-01-02T09:00:00Z", &keys, &[(5, &w_camden)], vec![fsm.clone(), sen.clone()])];
    // Serial 2: every council moves to a post-quantum key (so every later
    // drop is post-quantum), Hackney adds a witness, a new agreement.
    let classic_keys = std::mem::replace(
        &mut keys,
        ids.iter().map(|p| MemberSecretKey::generate(p.clone(), "data-team".parse().unwrap())).collect(),
    );
    directories.push(dir(
        2,
        "2026-02-16T10:00:00Z",
        &keys,
        &[(5, &w_camden), (11, &w_hackney)],
        vec![fsm.clone(), sen.clone(), care.clone()],
    ));
    // Serial 3: Camden drops its witness, youth justice added, SEND extended.
    let mut sen3 = sen.clone();
    sen3.parties = ids[..16].to_vec();
    sen3.max_expiry_days = 21;
    directories.push(dir(3, "2026-03-23T11:30:00Z", &keys, &[(11, &w_hackney)], vec![fsm, sen3, care, yj]));

    let mut entries: Vec<(i64, LogEntry)> = Vec::new();
    let hub_says = |time: i64, st: HubStatement, entries: &mut Vec<(i64, LogEntry)>| {
        entries.push((time, LogEntry::Hub { statement: sign_doc(&st, &hub) }));
    };
    for (d, when) in directories.iter().zip(["2026-01-02T09:30:00Z", "2026-02-16T10:05:00Z", "2026-03-23T12:00:00Z"]) {
        let st = HubStatement::DirectoryPublished {
            time: when.parse().unwrap(),
            serial: d.directory.serial,
            sha256: d.sha256_hex(),
        };
        hub_says(t(when), st, &mut entries);
    }

    // Some councils send far more than others.
    let weight: Vec<f64> = (0..ids.len()).map(|i| 0.3 + ((i * 7919) % 13) as f64 / 4.0).collect();
    let start = t("2026-01-05T08:00:00Z");
    let end = t("2026-04-24T18:00:00Z");
    let serial_at = |time: i64| {
        directories.iter().rev().find(|d| d.directory.issued_at.as_second() <= time).map_or(1, |d| d.directory.serial)
    };
    let mut time = start;
    while time < end {
        time += 600 + rng.below(4 * 3600) as i64;
        let serial = serial_at(time);
        // The keys in force when the drop is sent.
        let keys = if serial == 1 { &classic_keys } else { &keys };
        let ags = &directories[serial as usize - 1].directory.agreements;
        let ag = &ags[match rng.below(10) {
            0..=5 => 0,
            n => n % ags.len(),
        }];
        let members: Vec<usize> = ag.parties.iter().map(|p| ids.iter().position(|q| q == p).unwrap()).collect();
        let mut pick = rng.unit() * members.iter().map(|&i| weight[i]).sum::<f64>();
        let sender = *members
            .iter()
            .find(|&&i| {
                pick -= weight[i];
                pick <= 0.0
            })
            .unwrap_or(&members[0]);
        let mut to: Vec<usize> = Vec::new();
        for _ in 0..(1 + rng.below(5) / 3) {
            let r = members[rng.below(members.len())];
            if r != sender && !to.contains(&r) {
                to.push(r);
            }
        }
        if to.is_empty() {
            continue;
        }
        let drop = DropId::random();
        let expires = time + 14 * 86400;
        let len = 20_000 + (rng.unit().powi(3) * 400e6) as u64;
        let m = Manifest {
            drop: drop.clone(),
            sender: ids[sender].clone(),
            sender_member: "data-team".parse().unwrap(),
            recipients: to.iter().map(|&i| ids[i].clone()).collect(),
            encrypted_to: to
                .iter()
                .map(|&i| EncryptedTo {
                    key: format!("{}/data-team", ids[i]),
                    age_recipient: keys[i].public().age_recipient,
                })
                .collect(),
            agreement: ag.id.clone(),
            directory_serial: serial,
            ciphertext_sha256: "cd".repeat(32),
            ciphertext_len: len,
            created: at(time),
            expires: at(expires),
        };
        entries.push((
            time,
            LogEntry::DropCommitted { committed: at(time), manifest: sign_doc(&m, &keys[sender].signing) },
        ));
        if rng.below(60) == 0 {
            let when = time + 300 + rng.below(7200) as i64;
            hub_says(
                when,
                HubStatement::DropDeleted { time: at(when), drop, reason: DeletionReason::Recalled },
                &mut entries,
            );
            continue;
        }
        let slow = rng.below(12) == 0;
        let mut last_ack = None::<i64>;
        let mut all = true;
        for &r in &to {
            // Hours to acknowledge: mostly same day, a long tail.
            let hours = (rng.unit() * 6.2 - 1.0).exp() * if slow { 6.0 } else { 1.0 };
            let ack = time + (hours * 3600.0) as i64;
            if ack >= expires || ack > end || rng.below(25) == 0 {
                all = false;
                continue;
            }
            let fetched = ack - 60 - rng.below(1800) as i64;
            let request = SignedRequest {
                method: "GET".into(),
                path: format!("/v1/drops/{drop}/content"),
                key: format!("{}/data-team", ids[r]),
                time: fetched,
                nonce: format!("{:016x}", rng.next()),
                content: "UNSIGNED".into(),
                signature: "c2lnbmF0dXJl".into(),
            };
            entries.push((
                fetched,
                LogEntry::DropFetched { drop: drop.clone(), party: ids[r].clone(), fetched: at(fetched), request },
            ));
            let receipt = Receipt {
                drop: drop.clone(),
                recipient: ids[r].clone(),
                member: "data-team".parse().unwrap(),
                ciphertext_sha256: "cd".repeat(32),
                ciphertext_len: len,
                received: at(ack - 5),
            };
            entries.push((
                ack,
                LogEntry::DropAcknowledged { acknowledged: at(ack), receipt: sign_doc(&receipt, &keys[r].signing) },
            ));
            last_ack = last_ack.max(Some(ack));
        }
        match (all, last_ack) {
            (true, Some(a)) => hub_says(
                a,
                HubStatement::DropDeleted { time: at(a), drop, reason: DeletionReason::Delivered },
                &mut entries,
            ),
            _ if expires <= end => hub_says(
                expires,
                HubStatement::DropDeleted { time: at(expires), drop, reason: DeletionReason::Expired },
                &mut entries,
            ),
            _ => {}
        }
    }
    entries.sort_by_key(|(time, _)| *time);
    Log { entries, directories, names: BOROUGHS.to_vec() }
}

/// Runs Chromium headless with its own profile, killing it after two minutes.
fn chromium(profile: &Path, args: &[String]) -> (bool, String, String) {
    assert!(
        Path::new(CHROMIUM).exists(),
        "this test renders the report in Chromium, which is not installed: run `apt-get install chromium` \
         (as root: `apt-get install -y chromium`) and run the test again"
    );
    let mut child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {CHROMIUM}: {e}; run `apt-get install chromium`"));
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("Chromium did not finish within two minutes: {}", err.join().unwrap());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    (status.success(), out.join().unwrap(), err.join().unwrap())
}

fn file_url(p: &Path) -> String {
    format!("file://{}", p.display())
}

fn screenshot(dir: &Path, page: &Path, name: &str) -> PathBuf {
    let png = dir.join(name);
    let profile = tempfile::tempdir().unwrap();
    let (ok, _, err) = chromium(
        profile.path(),
        &[format!("--screenshot={}", png.display()), "--window-size=1280,2000".into(), file_url(page)],
    );
    assert!(ok, "chromium --screenshot failed: {err}");
    assert!(png.exists(), "chromium wrote no screenshot: {err}");
    png
}

#[test]
fn report_renders_in_chromium() {
    let log = generate();
    assert!(log.entries.len() > 1500, "a realistic log: {} entries", log.entries.len());
    let dir = tempfile::tempdir().unwrap();
    let size = log.entries.len() as u64;
    let report = build(ReportInput {
        entries: Box::new(log.entries.into_iter().enumerate().map(|(i, (_, e))| (i as u64, e))),
        directories: log.directories,
        origin: "hub.london.example/log".into(),
        checkpoint_size: size,
        agreement: None,
        since: None,
        until: None,
        generated_at: "2026-04-25T09:00:00Z".parse().unwrap(),
    });
    assert_eq!(report.parties.len(), 33);
    assert!(report.totals.expired_undelivered > 0 && report.totals.recalled > 0 && report.totals.waiting > 0);
    // The drops before the move to post-quantum keys (16 February) are classic.
    let (pq, drops) = (report.totals.post_quantum, report.totals.drops);
    assert!(drops / 2 < pq && pq < drops, "{pq} of {drops} drops post-quantum");
    let html = dir.path().join("report.html");
    write_html(&report, &html).unwrap();
    write_csv(&report, &dir.path().join("report.csv")).unwrap();

    // The DOM as Chromium parsed it.
    let profile = tempfile::tempdir().unwrap();
    let (ok, dom, err) = chromium(profile.path(), &["--dump-dom".into(), file_url(&html)]);
    assert!(ok, "chromium --dump-dom failed: {err}");
    assert!(dom.contains("<title>Transfer log report — hub.london.example/log</title>"), "title missing: {dom:.400}");
    assert!(dom.contains("id=\"matrix\""), "the matrix SVG is missing");
    assert!(dom.contains("Sender by recipient matrix of drops"));
    assert!(dom.contains("id=\"agreements\"") && dom.contains("id=\"ack-histogram\""));
    assert_eq!(dom.matches("<svg").count(), 4, "check mark, matrix, agreements, histogram");
    let names: BTreeMap<_, _> = log.names.iter().map(|n| (n, n.replace('&', "&amp;"))).collect();
    for (name, escaped) in &names {
        assert!(dom.contains(escaped.as_str()), "party {name} missing from the DOM");
    }
    assert!(dom.contains("Free school meals eligibility"));
    let share = format!("{:.1}%", pq as f64 * 100.0 / drops as f64).replace(".0%", "%");
    assert!(dom.contains(&format!("<div class=\"v\">{share}</div><div class=\"l\">Post-quantum</div>")), "{share}");
    assert!(dom.contains("<th scope=\"col\" class=\"num\">Post-quantum</th>"));
    // Waiting drops are all recent: post-quantum; some expired drops are older.
    assert!(dom.contains(">post-quantum</span>") && dom.contains(">classic</span>"));
    assert!(!dom.contains("<script"), "the report needs no script");

    // The screenshot is a real page, not a blank one.
    let blank = dir.path().join("blank.html");
    std::fs::write(&blank, "<!DOCTYPE html><html lang=\"en\"><title>blank</title><body></body></html>").unwrap();
    let blank_png = screenshot(dir.path(), &blank, "blank.png");
    let png = screenshot(dir.path(), &html, "report.png");
    let (size, blank_size) = (std::fs::metadata(&png).unwrap().len(), std::fs::metadata(&blank_png).unwrap().len());
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    // IHDR: width and height.
    let w = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let h = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    assert_eq!((w, h), (1280, 2000));
    assert!(size > 20_000, "the screenshot is only {size} bytes: the page did not render");
    assert!(size > 10 * blank_size, "the screenshot ({size} B) is barely larger than a blank page ({blank_size} B)");

    if let Some(out) = std::env::var_os("SEALDROP_REPORT_OUT") {
        let out = PathBuf::from(out);
        std::fs::create_dir_all(&out).unwrap();
        for f in ["report.html", "report.csv", "report.png"] {
            std::fs::copy(dir.path().join(f), out.join(f)).unwrap();
        }
    }
}
