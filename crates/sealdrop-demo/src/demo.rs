//! `sealdrop demo`: the whole exchange on one machine with nothing to set up.
//! A hub runs in-process on a loopback port with a temporary data dir; the
//! published example keys (post-quantum, compiled in from keys-example/) act
//! for the boroughs. Camden's schools list of pupils on free school meals (synthetic)
//! is split by each pupil's home borough: Camden looks at the summary, sees
//! the rows that cannot go, sends one drop per home borough, and each borough
//! fetches exactly its residents' rows. Every step is narrated, including a
//! look at what the hub stored, a re-run that sends nothing twice, and the IG
//! officer's audit of the log with the flows it shows.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sealdrop_proto::age_keys::{self, KeyKind};
use sealdrop_proto::clock::SystemClock;
use sealdrop_proto::directory::{Directory, SignedDirectory};

use sealdrop::context::Settings;
use sealdrop::error::{Error, ErrorCode, Result};
use sealdrop::fetch::{self, Which};
use sealdrop::fsutil::{human_bytes, write_atomic};
use sealdrop::split::{self, SplitRequest};

const AUTHORITY_PUB: &str = include_str!("../../../keys-example/authority.pub");
const DIRECTORY: &str = include_str!("../../../keys-example/directory.signed");
/// Every borough's published example member key.
const KEYS: [(&str, &str); 33] = [
    ("barking-and-dagenham", include_str!("../../../keys-example/parties/barking-and-dagenham.key")),
    ("barnet", include_str!("../../../keys-example/parties/barnet.key")),
    ("bexley", include_str!("../../../keys-example/parties/bexley.key")),
    ("brent", include_str!("../../../keys-example/parties/brent.key")),
    ("bromley", include_str!("../../../keys-example/parties/bromley.key")),
    ("camden", include_str!("../../../keys-example/parties/camden.key")),
    ("city-of-london", include_str!("../../../keys-example/parties/city-of-london.key")),
    ("croydon", include_str!("../../../keys-example/parties/croydon.key")),
    ("ealing", include_str!("../../../keys-example/parties/ealing.key")),
    ("enfield", include_str!("../../../keys-example/parties/enfield.key")),
    ("greenwich", include_str!("../../../keys-example/parties/greenwich.key")),
    ("hackney", include_str!("../../../keys-example/parties/hackney.key")),
    ("hammersmith-and-fulham", include_str!("../../../keys-example/parties/hammersmith-and-fulham.key")),
    ("haringey", include_str!("../../../keys-example/parties/haringey.key")),
    ("harrow", include_str!("../../../keys-example/parties/harrow.key")),
    ("havering", include_str!("../../../keys-example/parties/havering.key")),
    ("hillingdon", include_str!("../../../keys-example/parties/hillingdon.key")),
    ("hounslow", include_str!("../../../keys-example/parties/hounslow.key")),
    ("islington", include_str!("../../../keys-example/parties/islington.key")),
    ("kensington-and-chelsea", include_str!("../../../keys-example/parties/kensington-and-chelsea.key")),
    ("kingston-upon-thames", include_str!("../../../keys-example/parties/kingston-upon-thames.key")),
    ("lambeth", include_str!("../../../keys-example/parties/lambeth.key")),
    ("lewisham", include_str!("../../../keys-example/parties/lewisham.key")),
    ("merton", include_str!("../../../keys-example/parties/merton.key")),
    ("newham", include_str!("../../../keys-example/parties/newham.key")),
    ("redbridge", include_str!("../../../keys-example/parties/redbridge.key")),
    ("richmond-upon-thames", include_str!("../../../keys-example/parties/richmond-upon-thames.key")),
    ("southwark", include_str!("../../../keys-example/parties/southwark.key")),
    ("sutton", include_str!("../../../keys-example/parties/sutton.key")),
    ("tower-hamlets", include_str!("../../../keys-example/parties/tower-hamlets.key")),
    ("waltham-forest", include_str!("../../../keys-example/parties/waltham-forest.key")),
    ("wandsworth", include_str!("../../../keys-example/parties/wandsworth.key")),
    ("westminster", include_str!("../../../keys-example/parties/westminster.key")),
];

fn other(e: impl std::fmt::Display) -> Error {
    Error::new(ErrorCode::DemoFailed, e.to_string())
}

struct Narrator<'a> {
    out: &'a mut dyn Write,
    step: usize,
}

impl Narrator<'_> {
    fn step(&mut self, title: &str) -> Result<()> {
        self.step += 1;
        writeln!(self.out, "\n== {}. {title}", self.step).map_err(other)
    }
    fn say(&mut self, text: &str) -> Result<()> {
        writeln!(self.out, "   {text}").map_err(other)
    }
}

/// A hub running on a background thread until dropped.
struct LocalHub {
    url: String,
    data: PathBuf,
    /// The key that signs the hub's log checkpoints.
    log_key: sealdrop_proto::keys::NoteVerifierKey,
    /// The hub itself, to show what it stored.
    hub: sealdrop_hub::Hub,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<std::io::Result<()>>>,
}

impl LocalHub {
    fn start(data: &Path, authority: &str) -> Result<Self> {
        let authority = authority.trim().parse().map_err(other)?;
        sealdrop_hub::init(
            &sealdrop_hub::InitOptions {
                data_dir: data.to_owned(),
                origin: "demo.sealdrop.invalid".into(),
                authority,
                directory_note: DIRECTORY.to_owned(),
                backends: Default::default(),
            },
            &SystemClock,
        )
        .map_err(other)?;
        let hub = sealdrop_hub::Hub::open(data, Arc::new(SystemClock)).map_err(other)?;
        let log_key = hub.log_verifier();
        let served = hub.clone();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(other)?;
        listener.set_nonblocking(true).map_err(other)?;
        let url = format!("http://{}", listener.local_addr().map_err(other)?);
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().map_err(other)?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener)?;
                sealdrop_hub::serve(listener, served, async move {
                    let _ = stopped.await;
                })
                .await
            })
        });
        Ok(Self { url, data: data.to_owned(), log_key, hub, stop: Some(stop), thread: Some(thread) })
    }
}

impl Drop for LocalHub {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn settings(root: &Path, url: &str, party: &str) -> Settings {
    Settings {
        hub: Some(url.to_owned()),
        identity: Some(root.join(party).join("member.key")),
        authority: Some(AUTHORITY_PUB.trim().to_owned()),
        state_dir: root.join(party).join("state"),
        quiet: true,
        witness_key: None,
        resume_min_bytes: sealdrop::context::DEFAULT_RESUME_MIN_BYTES,
        clock: Arc::new(SystemClock),
        key_unlock: Default::default(),
    }
}

fn hub_files_containing(dir: &Path, needles: &[&str]) -> Result<Vec<String>> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).map_err(other)? {
            let path = entry.map_err(other)?.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).map_err(other)?;
                for n in needles {
                    if bytes.windows(n.len()).any(|w| w == n.as_bytes()) {
                        hits.push(format!("{} contains {n:?}", path.display()));
                    }
                }
            }
        }
    }
    Ok(hits)
}

/// What kind of keys the directory's members have, in words.
fn describe_keys(directory: &Directory) -> String {
    let kinds: Vec<Option<KeyKind>> =
        directory.parties.iter().flat_map(|p| p.members.iter().map(|m| age_keys::kind_of(&m.age_recipient))).collect();
    let post_quantum = kinds.iter().filter(|k| **k == Some(KeyKind::PostQuantum)).count();
    if post_quantum == kinds.len() {
        format!(
            "Keys: post-quantum (ML-KEM-768 + X25519) for all {post_quantum} members, as `sealdrop keygen` makes them: what is sent today stays sealed even against a future quantum computer."
        )
    } else {
        format!(
            "Keys: {post_quantum} of {} post-quantum (ML-KEM-768 + X25519); the others classic or plugin keys.",
            kinds.len()
        )
    }
}

/// Runs the demo, narrating to `out`.
pub fn run(out: &mut dyn Write) -> Result<()> {
    let tmp = tempfile::Builder::new().prefix("sealdrop-demo-").tempdir().map_err(other)?;
    let root = tmp.path();
    let mut n = Narrator { out, step: 0 };
    writeln!(n.out, "sealdrop demo: Camden routes its schools' free school meals list to the boroughs where the pupils live.\nEverything runs on this machine in {}; the keys are the PUBLISHED EXAMPLE keys in keys-example/.", root.display()).map_err(other)?;

    n.step("The coordinator's signed directory")?;
    let authority = sealdrop::context::parse_authority(AUTHORITY_PUB.trim())?;
    let dir = SignedDirectory::verify(DIRECTORY, &authority)
        .map_err(|e| sealdrop::trust::directory_error(e, "keys-example"))?;
    let agreement = &dir.directory.agreements[0];
    n.say(&format!(
        "Signed by {} (fingerprint {}), serial {}.",
        authority.name(),
        authority.fingerprint(),
        dir.directory.serial
    ))?;
    n.say(&format!("{} parties; agreement `{}`: {}.", dir.directory.parties.len(), agreement.id, agreement.title))?;
    n.say(&describe_keys(&dir.directory))?;
    n.say("Clients encrypt only to keys from a directory they verified against this pinned key.")?;

    n.step("Start a hub")?;
    let hub = LocalHub::start(&root.join("hub-data"), AUTHORITY_PUB)?;
    n.say(&format!("The hub listens on {} and keeps its data in {}.", hub.url, hub.data.display()))?;
    n.say("It holds no decryption keys: it can relay ciphertext, never read it, and cannot swap anyone's key.")?;
    n.say(&format!(
        "Its transfer log is signed with {} (fingerprint {}); each borough pins that key and checks, at every step, that the log only ever grew.",
        hub.log_key.name(),
        hub.log_key.fingerprint()
    ))?;
    for (party, key) in KEYS {
        write_atomic(&root.join(party).join("member.key"), key.as_bytes(), true)?;
        // In real use the fingerprint is compared with the coordinator, or the directory lists the hub.
        write_atomic(
            &root.join(party).join("state").join(sealdrop::logcheck::LOG_DIR).join("log.vkey"),
            format!("{}\n", hub.log_key).as_bytes(),
            false,
        )?;
    }

    n.step("Camden's schools list (synthetic)")?;
    let list = root.join("camden").join("fsm-autumn-2026.csv");
    let sample = crate::sample::write_fsm(
        &crate::sample::FsmOptions { rows: 2_000, seed: 2026, unroutable: 3, ..Default::default() },
        &list,
    )?;
    n.say(&format!(
        "{}: {} pupils at Camden schools on free school meals, with each child's home local authority.",
        list.display(),
        split::group_digits(sample.rows)
    ))?;
    n.say(&format!(
        "{} live in Camden, {} in {} other London boroughs, {} outside London. Names and pupil numbers are invented (SYN…).",
        split::group_digits(sample.local()),
        split::group_digits(sample.rows - sample.local() - sample.unroutable),
        sample.home_las.len() - 1,
        sample.unroutable
    ))?;

    n.step("Look before sending: `sealdrop send --split-by home_la fsm-autumn-2026.csv`")?;
    let camden = settings(root, &hub.url, "camden");
    let session = camden.session()?;
    let mut req = SplitRequest { input: list.clone(), column: "home_la".into(), ..Default::default() };
    let plan = split::plan(&camden, &session, &req)?;
    for line in split::render_summary(&plan, &session.directory.directory).lines() {
        n.say(&format!("| {line}"))?;
    }
    let refusal = plan.refusal().map(|e| e.to_string()).unwrap_or_default();
    n.say(&format!("Refused before anything left Camden: {refusal}"))?;
    n.say("The analyst checks the unroutable file: these children live outside London, handled under another agreement. So the rest may go:")?;

    n.step("Send: `sealdrop send --split-by home_la --allow-unroutable --yes fsm-autumn-2026.csv`")?;
    req.allow_unroutable = true;
    let plan = split::plan(&camden, &session, &req)?;
    let outcome = split::send(&camden, &session, &plan, &req)?;
    let mut sent = Vec::new();
    for ((party, status), part) in outcome.parts.iter().zip(&plan.parts) {
        match status {
            split::PartStatus::Sent { drop, .. } => {
                n.say(&format!(
                    "{drop} -> {:<24} {:>4} rows in {}, encrypted to {party}'s keys only",
                    part.name, part.rows, part.file_name
                ))?;
                sent.push((party.clone(), part.rows, part.file_name.clone()));
            }
            other_status => return Err(other(format!("the part for {party} was not sent: {other_status:?}"))),
        }
    }
    n.say("Each part: the CSV with the original header row -> tar -> age to that borough's keys -> SHA-256 -> upload -> signed manifest -> commit -> a log entry.")?;

    n.step("Run it again (say the network had failed half-way)")?;
    let again = split::plan(&camden, &session, &req)?;
    n.say(&format!(
        "The hub already has {} of {} parts under this run's idempotency keys (an HMAC, under a secret only Camden's member key gives, of the file's hash, the column and the borough: the hub cannot check a guess of the file): nothing is sent twice.",
        again.parts.iter().filter(|p| p.already_sent.is_some()).count(),
        again.parts.len()
    ))?;

    n.step("What the hub stored")?;
    let stored = hub.hub.stored_ciphertexts(64).map_err(other)?;
    if let Some(c) = stored.first() {
        let mut lines = c.head.split(|b| *b == b'\n').map(|l| String::from_utf8_lossy(l).into_owned());
        let first_line = lines.next().unwrap_or_default();
        // The first recipient stanza's type: the file key wrapped for the recipient's key.
        let stanza = lines.next().unwrap_or_default().split(' ').take(2).collect::<Vec<_>>().join(" ");
        n.say(&format!(
            "{} ciphertexts (the small ones are rows of the hub's database, larger ones files in {}), e.g. drop {}  {}  begins {first_line:?}, then {stanza:?} (the file key, wrapped for the borough's key). Every part is padded inside the encryption to at least 32 KiB, so the hub cannot tell 14 rows from 177.",
            stored.len(),
            root.join("hub-data").join("blobs").display(),
            c.id,
            human_bytes(c.len)
        ))?;
    }
    let hits =
        hub_files_containing(&root.join("hub-data"), &["fsm-autumn-2026", "SYN000000", "Primary School", "home_la"])?;
    if hits.is_empty() {
        n.say("Searched every file of the hub (database included) for the file names, pupil numbers, school names and column names: not found. Ciphertext only.")?;
    } else {
        return Err(other(format!("the hub stored plaintext: {}", hits.join("; "))));
    }

    n.step("Each home borough fetches its part")?;
    let mut total = 0u64;
    for (party, rows, file_name) in &sent {
        let me = settings(root, &hub.url, party.as_str());
        let dest = root.join(party.as_str()).join("received");
        let mut got = 0u64;
        for r in fetch::fetch(&me, &Which::All, &dest, None)?.results {
            let r = r?;
            got += r.files as u64;
        }
        let text = std::fs::read_to_string(dest.join(file_name)).map_err(other)?;
        let dir = &session.directory.directory;
        let header: Vec<&str> = text.lines().next().unwrap_or_default().split(',').collect();
        let col = header.iter().position(|h| *h == "home_la").unwrap_or(0);
        let theirs = text
            .lines()
            .skip(1)
            .filter(|l| dir.resolve_party(l.split(',').nth(col).unwrap_or("")).is_some_and(|p| &p.id == party))
            .count() as u64;
        if got != 1 || theirs != *rows || text.lines().count() as u64 != rows + 1 {
            return Err(other(format!("{party} did not get exactly its {rows} rows ({theirs} of its own found)")));
        }
        total += rows;
        n.say(&format!("{:<24} verified Camden's manifest signature and the hash, decrypted {file_name}: {rows} rows, every one a resident of {party}; receipt signed", party.as_str()))?;
    }
    n.say(&format!(
        "{} rows delivered in all; Camden's own {} rows and the 3 unroutable rows never left Camden.",
        split::group_digits(total),
        split::group_digits(plan.own_rows)
    ))?;

    n.step("A mistake caught in time: `sealdrop recall`")?;
    let corrections = root.join("camden").join("fsm-corrections-brent.csv");
    write_atomic(&corrections, b"upn,home_la\nA123456789012,Brent\n", false)?;
    let wrong = sealdrop::send::send(
        &camden,
        &sealdrop::send::SendRequest {
            to: vec!["barnet".into()],
            agreement: None,
            expires: Some("2d".into()),
            paths: vec![corrections],
            ..Default::default()
        },
    )?;
    n.say(&format!("Camden sent fsm-corrections-brent.csv to Barnet instead of Brent (drop {}).", wrong.id))?;
    let recalled = sealdrop::recall::recall(&camden, wrong.id.as_str())?;
    let barnet = settings(root, &hub.url, "barnet");
    let barnet_got = fetch::fetch(&barnet, &Which::All, &root.join("barnet").join("received"), None)?.results.len();
    if barnet_got != 0 || hub.hub.stored_ciphertexts(0).map_err(other)?.iter().any(|c| c.id == wrong.id) {
        return Err(other("the recalled drop is still on the hub or in Barnet's inbox"));
    }
    n.say(&format!(
        "Recalled before Barnet opened it: the hub deleted the ciphertext and logged Camden's signed recall (log entry {}); Barnet's inbox is empty. After a recipient acknowledges, a recall is refused and names who has the data.",
        recalled.recalled.log_index
    ))?;

    n.step("Camden checks delivery: `sealdrop status`")?;
    let status: sealdrop_proto::api::Sent = camden.session()?.hub.sent(None)?;
    let live: Vec<_> = status.drops.iter().filter(|d| d.state != sealdrop_proto::api::DropState::Recalled).collect();
    let acknowledged = live.iter().filter(|d| d.recipients.iter().all(|r| r.acknowledged.is_some())).count();
    n.say(&format!(
        "{acknowledged} of {} drops acknowledged by their recipient (a signed receipt each); {} recalled.",
        live.len(),
        status.drops.len() - live.len()
    ))?;
    let left = hub.hub.stored_ciphertexts(0).map_err(other)?.len();
    n.say(&format!("Ciphertexts left on the hub: {left}."))?;
    let receipts = root.join("camden").join("state").join(sealdrop::logcheck::LOG_DIR).join("receipts");
    let mut kept: Vec<String> = std::fs::read_dir(&receipts)
        .map_err(other)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    kept.sort();
    n.say(&format!(
        "Camden keeps {} offline proofs that the hub logged each commit and the recall, e.g. {}",
        kept.len(),
        kept.first().map(String::as_str).unwrap_or("-")
    ))?;

    n.step("An information-governance officer audits the transfer log")?;
    let verdict = sealdrop::audit_cmd::verify_hub(&camden, 0, Some(&hub.log_key.to_string()))?;
    n.say(&format!(
        "{} entries rebuilt into the Merkle tree and matched to the signed checkpoint; {} signatures checked (coordinator, boroughs, hub).",
        verdict.entries, verdict.signatures_checked
    ))?;
    n.say(&format!(
        "Drops committed {}, fetched {} times, acknowledged {} times, ciphertext deleted after delivery {} and on recall {} (each recall signed by the sender): verdict {}.",
        verdict.drops_committed,
        verdict.fetches,
        verdict.acknowledgements,
        verdict.deleted.delivered,
        verdict.deleted.recalled,
        if verdict.verified { "VERIFIED" } else { "FAILED" }
    ))?;
    if !verdict.verified {
        return Err(other(format!("the demo's own log failed its audit: {}", verdict.failures.join("; "))));
    }
    let report_dir = root.join("ig");
    let (_, report) = sealdrop::audit_cmd::report(
        &camden,
        &sealdrop::audit_cmd::ReportRequest {
            bundle: None,
            agreement: None,
            since: None,
            until: None,
            force: true,
            csv: Some(report_dir.join("flows.csv")),
            html: Some(report_dir.join("report.html")),
            log_key: Some(hub.log_key.to_string()),
            json: false,
        },
    )?;
    n.say("The flows the log shows (sender -> recipient: drops, ciphertext), from `sealdrop audit report`:")?;
    for ((from, to), flow) in &report.matrix {
        n.say(&format!(
            "  {} -> {:<24} {} drop(s), {}",
            report.party_name(from),
            report.party_name(to),
            flow.drops,
            human_bytes(flow.bytes)
        ))?;
    }
    n.say(&format!(
        "{} of the {} drops were post-quantum: the report's `encryption` column and its HTML page show it per drop and per agreement.",
        report.totals.post_quantum, report.totals.drops
    ))?;
    n.say("`sealdrop audit export` puts the same log in one file for an offline machine; the report also comes as HTML with a sender x recipient heatmap.")?;
    drop(hub);
    writeln!(n.out, "\nDone. The temporary folder is removed now. See README.md for real use with a hub and councils on separate machines.").map_err(other)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_example_directory_verifies() {
        let authority = sealdrop::context::parse_authority(AUTHORITY_PUB.trim()).unwrap();
        let d = SignedDirectory::verify(DIRECTORY, &authority).unwrap();
        assert_eq!(d.directory.parties.len(), 33);
        for (party, key) in KEYS {
            let k = sealdrop_proto::keys::MemberSecretKey::from_file_text(key).unwrap();
            assert_eq!(k.party.as_str(), party);
            let (_, listed) = d.directory.member_by_key_name(k.signing.name()).unwrap();
            assert_eq!(listed.signing_key, k.signing.verifier());
            assert_eq!(k.age_identity.kind(), KeyKind::PostQuantum, "{party}");
        }
        assert!(describe_keys(&d.directory).starts_with("Keys: post-quantum (ML-KEM-768 + X25519) for all 33 members"));
    }
}
