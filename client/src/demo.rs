//! `sealdrop demo`: the whole exchange on one machine with nothing to set up.
//! A hub runs in-process on a loopback port with a temporary data dir; the
//! published example keys (compiled in from keys-example/) act for three
//! boroughs; Camden sends each of two home boroughs its own residents'
//! synthetic records, and they fetch and decrypt them. Every step is narrated,
//! including a look at what the hub stored.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sealdrop_proto::clock::SystemClock;
use sealdrop_proto::directory::SignedDirectory;

use crate::context::Settings;
use crate::error::{Error, Kind, Result};
use crate::fetch::{self, Which};
use crate::fsutil::{human_bytes, write_atomic};
use crate::send::{self, SendRequest};

const AUTHORITY_PUB: &str = include_str!("../../keys-example/authority.pub");
const DIRECTORY: &str = include_str!("../../keys-example/directory.signed");
const KEYS: [(&str, &str); 3] = [
    ("camden", include_str!("../../keys-example/parties/camden.key")),
    ("islington", include_str!("../../keys-example/parties/islington.key")),
    ("hackney", include_str!("../../keys-example/parties/hackney.key")),
];

fn other(e: impl std::fmt::Display) -> Error {
    Error::new(Kind::Other, "demo_failed", e.to_string())
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
            },
            &SystemClock,
        )
        .map_err(other)?;
        let hub = sealdrop_hub::Hub::open(data, Arc::new(SystemClock)).map_err(other)?;
        let log_key = hub.log_verifier();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(other)?;
        listener.set_nonblocking(true).map_err(other)?;
        let url = format!("http://{}", listener.local_addr().map_err(other)?);
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().map_err(other)?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener)?;
                sealdrop_hub::serve(listener, hub, async move {
                    let _ = stopped.await;
                })
                .await
            })
        });
        Ok(Self { url, data: data.to_owned(), log_key, stop: Some(stop), thread: Some(thread) })
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

/// Synthetic pupil records: invented names and pupil numbers that cannot be
/// mistaken for real ones.
fn synthetic_records(home: &str, home_la: &str, n: usize, seed: u64) -> String {
    const FIRST: [&str; 8] = ["Ada", "Bram", "Cleo", "Dev", "Esme", "Femi", "Gus", "Hana"];
    const LAST: [&str; 6] = ["Example", "Sample", "Testcase", "Placeholder", "Fictional", "Madeup"];
    const SCHOOLS: [&str; 3] = ["Synthetic Primary School", "Example Academy", "Demo Hill School"];
    let mut s = seed;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let mut csv = String::from(
        "pupil_ref,first_name,last_name,date_of_birth,school,school_la,home_la,fsm_eligible,fsm_start,ehc_plan\n",
    );
    for i in 0..n {
        let r = next();
        csv.push_str(&format!(
            "SYNTH-{home_la}-{i:04},{},{},201{}-0{}-1{},{},Camden,{home},yes,2025-09-0{},{}\n",
            FIRST[(r % 8) as usize],
            LAST[((r >> 8) % 6) as usize],
            4 + (r >> 16) % 5,
            1 + (r >> 20) % 9,
            (r >> 24) % 10,
            SCHOOLS[((r >> 28) % 3) as usize],
            1 + (r >> 32) % 9,
            if (r >> 36) % 5 == 0 { "yes" } else { "no" },
        ));
    }
    csv
}

fn settings(root: &Path, url: &str, party: &str) -> Settings {
    Settings {
        hub: Some(url.to_owned()),
        identity: Some(root.join(party).join("member.key")),
        authority: Some(AUTHORITY_PUB.trim().to_owned()),
        state_dir: root.join(party).join("state"),
        quiet: true,
        witness_key: None,
        clock: Arc::new(SystemClock),
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

/// Runs the demo, narrating to `out`.
pub fn run(out: &mut dyn Write) -> Result<()> {
    let tmp = tempfile::Builder::new().prefix("sealdrop-demo-").tempdir().map_err(other)?;
    let root = tmp.path();
    let mut n = Narrator { out, step: 0 };
    writeln!(n.out, "sealdrop demo: Camden routes free school meals records to the boroughs where the pupils live.\nEverything runs on this machine in {}; the keys are the PUBLISHED EXAMPLE keys in keys-example/.", root.display()).map_err(other)?;

    n.step("The coordinator's signed directory")?;
    let authority = crate::context::parse_authority(AUTHORITY_PUB.trim())?;
    let dir =
        SignedDirectory::verify(DIRECTORY, &authority).map_err(|e| crate::trust::directory_error(e, "keys-example"))?;
    let agreement = &dir.directory.agreements[0];
    n.say(&format!(
        "Signed by {} (fingerprint {}), serial {}.",
        authority.name(),
        authority.fingerprint(),
        dir.directory.serial
    ))?;
    n.say(&format!("{} parties; agreement `{}`: {}.", dir.directory.parties.len(), agreement.id, agreement.title))?;
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
            &root.join(party).join("state").join(crate::logcheck::LOG_DIR).join("log.vkey"),
            format!("{}\n", hub.log_key).as_bytes(),
            false,
        )?;
    }

    n.step("Camden prepares each home borough's records (synthetic)")?;
    let outgoing = root.join("camden").join("outgoing");
    let files = [
        ("islington", "206", outgoing.join("islington-residents-fsm.csv"), 12usize),
        ("hackney", "204", outgoing.join("hackney-residents-fsm.csv"), 7usize),
    ];
    for (party, la, path, rows) in &files {
        write_atomic(path, synthetic_records(party, la, *rows, 0x5eed + *rows as u64).as_bytes(), false)?;
        n.say(&format!("{}: {rows} pupils living in {party}", path.display()))?;
    }

    n.step("Camden sends each borough only its own residents' file")?;
    let camden = settings(root, &hub.url, "camden");
    let mut drops = Vec::new();
    for (party, _, path, _) in &files {
        let sent = send::send(
            &camden,
            &SendRequest { to: vec![party.to_string()], agreement: None, expires: None, paths: vec![path.clone()] },
        )?;
        n.say(&format!(
            "drop {} -> {party}: {} plaintext, {} ciphertext, SHA-256 {}..., agreement `{}`, expires {}",
            sent.id,
            human_bytes(sent.plaintext_bytes),
            human_bytes(sent.size),
            &sent.sha256[..16],
            sent.agreement,
            sent.expires
        ))?;
        drops.push((party, sent));
    }
    n.say("Each file was put in a tar archive, encrypted with age to the recipient's keys from the signed directory, hashed and streamed up; then Camden signed a manifest and committed.")?;

    n.step("What the hub stored")?;
    let blobs = root.join("hub-data").join("blobs");
    let mut listing: Vec<_> = std::fs::read_dir(&blobs).map_err(other)?.filter_map(|e| e.ok()).collect();
    listing.sort_by_key(|e| e.file_name());
    for e in &listing {
        let bytes = std::fs::read(e.path()).map_err(other)?;
        let first_line =
            bytes.split(|b| *b == b'\n').next().map(|l| String::from_utf8_lossy(l).into_owned()).unwrap_or_default();
        n.say(&format!("{}  {}  begins {first_line:?}", e.path().display(), human_bytes(bytes.len() as u64)))?;
    }
    let hits = hub_files_containing(
        &root.join("hub-data"),
        &["islington-residents-fsm.csv", "hackney-residents-fsm.csv", "SYNTH-", "Example Academy"],
    )?;
    if hits.is_empty() {
        n.say("Searched every file of the hub (database included) for the file names and pupil records: not found. Ciphertext only.")?;
    } else {
        return Err(other(format!("the hub stored plaintext: {}", hits.join("; "))));
    }

    for (party, sent) in &drops {
        n.step(&format!("{} fetches its drop", capitalise(party)))?;
        let me = settings(root, &hub.url, party);
        let dest = root.join(party).join("received");
        let results = fetch::fetch(&me, &Which::All, &dest)?;
        for r in results {
            let got = r?;
            n.say(&format!(
                "verified Camden's signature on the manifest, the SHA-256 and length, decrypted: {} file(s), {} -> {}",
                got.files,
                human_bytes(got.bytes),
                dest.join(&got.names[0]).display()
            ))?;
            let text = std::fs::read_to_string(dest.join(&got.names[0])).map_err(other)?;
            for line in text.lines().take(3) {
                n.say(&format!("  | {line}"))?;
            }
            n.say(&format!(
                "signed a receipt; the hub {} the ciphertext of {}",
                if got.ciphertext_deleted { "deleted" } else { "kept" },
                sent.id
            ))?;
        }
    }

    n.step("Camden checks delivery")?;
    let session = camden.session()?;
    let sent: sealdrop_proto::api::Sent = session.hub.get("/v1/sent")?;
    for d in &sent.drops {
        for r in &d.recipients {
            n.say(&format!(
                "{} -> {}: acknowledged {} by {}",
                d.id,
                r.party,
                r.acknowledged.map(|t| t.to_string()).unwrap_or_else(|| "not yet".into()),
                r.acknowledged_by.as_deref().unwrap_or("-")
            ))?;
        }
    }
    let left = std::fs::read_dir(&blobs).map_err(other)?.count();
    n.say(&format!("Ciphertext files left on the hub: {left}."))?;
    let receipts = root.join("camden").join("state").join(crate::logcheck::LOG_DIR).join("receipts");
    let mut kept: Vec<String> = std::fs::read_dir(&receipts)
        .map_err(other)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    kept.sort();
    n.say(&format!("Camden keeps offline proofs that the hub logged each commit: {}", kept.join(", ")))?;

    n.step("An information-governance officer audits the transfer log")?;
    let verdict = crate::audit_cmd::verify_hub(&camden, 0, Some(&hub.log_key.to_string()))?;
    n.say(&format!(
        "{} entries rebuilt into the Merkle tree and matched to the signed checkpoint; {} signatures checked (coordinator, boroughs, hub).",
        verdict.entries, verdict.signatures_checked
    ))?;
    n.say(&format!(
        "Drops committed {}, fetched {} times, acknowledged {} times, ciphertext deleted after delivery {}: verdict {}.",
        verdict.drops_committed,
        verdict.fetches,
        verdict.acknowledgements,
        verdict.deleted[0],
        if verdict.verified { "VERIFIED" } else { "FAILED" }
    ))?;
    if !verdict.verified {
        return Err(other(format!("the demo's own log failed its audit: {}", verdict.failures.join("; "))));
    }
    n.say("`sealdrop audit export` would put the same log in one file for an offline machine; `sealdrop audit report` draws who sent what to whom.")?;
    drop(hub);
    writeln!(n.out, "\nDone. The temporary folder is removed now. See README.md for real use with a hub and councils on separate machines.").map_err(other)?;
    Ok(())
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().collect::<String>() + c.as_str()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_records_are_clearly_synthetic() {
        let csv = synthetic_records("islington", "206", 20, 1);
        assert_eq!(csv.lines().count(), 21);
        assert!(csv.lines().skip(1).all(|l| l.starts_with("SYNTH-206-") && l.contains(",islington,")));
    }

    #[test]
    fn embedded_example_directory_verifies() {
        let authority = crate::context::parse_authority(AUTHORITY_PUB.trim()).unwrap();
        let d = SignedDirectory::verify(DIRECTORY, &authority).unwrap();
        assert_eq!(d.directory.parties.len(), 33);
        for (party, key) in KEYS {
            let k = sealdrop_proto::keys::MemberSecretKey::from_file_text(key).unwrap();
            assert_eq!(k.party.as_str(), party);
            let (_, listed) = d.directory.member_by_key_name(k.signing.name()).unwrap();
            assert_eq!(listed.signing_key, k.signing.verifier());
        }
    }
}
