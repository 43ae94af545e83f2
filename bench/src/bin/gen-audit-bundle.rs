//! Writes a realistic audit bundle of N entries (default 1,000,000) for the
//! `audit verify` benchmark, with the authority's and the log's public keys
//! next to it:
//!
//! ```text
//! gen-audit-bundle --out DIR [--entries N] [--parties P]
//!   DIR/audit.bundle   the bundle, as `sealdrop audit export` writes it (bundle.json first)
//!   DIR/authority.pub  the authority's verifier key (for --authority)
//!   DIR/log.pub        the hub's log key (for --log-key)
//! ```
//!
//! The log is the one `sealdrop_log::testlog::generate` makes, with its
//! keys ([`TestKeys`]: one `data-team` member and one witness per party; 33
//! parties by default, as many as London's local authorities, `testlog`
//! naming twelve after boroughs and the rest `council-12` to `council-32`)
//! and its mix of drops:
//! most are committed to one recipient, fetched, acknowledged and deleted
//! as delivered; every tenth goes to two recipients; every fiftieth expires
//! unfetched; every hundredth (offset 33) is fetched and recalled.
//! Directory serial 1 is published at entry 0, serial 2 half way. The last
//! drop is cut short when N falls inside it (a live drop, as in a real log).
//!
//! Unlike `generate`, which holds the whole log in memory (over half a GB
//! for a million entries), this streams:
//! drops are signed on every core a few thousand at a time and spooled to
//! disk while the Merkle root is computed; then the checkpoint is signed
//! and cosigned by every witness, and the bundle is written with
//! [`BundleWriter`], re-reading the spool. Memory stays at a few tens of MB.

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use jiff::SignedDuration;

use sealdrop_log::bundle::{BundleMeta, BundleWriter};
use sealdrop_log::checkpoint;
use sealdrop_log::cosign::{add_cosignatures, cosign};
use sealdrop_log::entry::{DeletionReason, HubStatement};
use sealdrop_log::testlog::{self, Kind, TestKeys, entry_count, time_of};
use sealdrop_log::tree::RootBuilder;
use sealdrop_proto::directory::SignedDirectory;
use sealdrop_proto::ids::DropId;

/// Drops signed per round (spread over the workers).
const ROUND: usize = 8192;

const USAGE: &str = "usage: gen-audit-bundle --out DIR [--entries N (1000000)] [--parties P (33)]";

struct Args {
    out: PathBuf,
    entries: u64,
    parties: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut out = None;
    let mut entries = 1_000_000u64;
    let mut parties = 33usize;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match a.as_str() {
            "--out" => out = Some(PathBuf::from(value("--out")?)),
            "--entries" => {
                entries = value("--entries")?.replace('_', "").parse().map_err(|e| format!("--entries: {e}"))?
            }
            "--parties" => parties = value("--parties")?.parse().map_err(|e| format!("--parties: {e}"))?,
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unexpected argument {other:?}\n{USAGE}")),
        }
    }
    let out = out.ok_or_else(|| format!("--out is required\n{USAGE}"))?;
    if parties < 3 {
        return Err("--parties must be at least 3".into());
    }
    if entries < 2 {
        return Err("--entries must be at least 2 (the two directory publications)".into());
    }
    Ok(Args { out, entries, parties })
}

/// The drop mix of `sealdrop_log::testlog`, for drop number `d`.
fn kind(d: u64, parties: usize) -> Kind {
    testlog::kind(usize::try_from(d).expect("drop numbers fit in usize"), parties)
}

fn drop_id(salt: &[u8; 16], d: u64) -> DropId {
    testlog::drop_id(salt, usize::try_from(d).expect("drop numbers fit in usize"))
}

/// One unit of work, in log order.
enum Item {
    /// The hub publishes directory `serial` at entry `at`.
    Publish { at: u64, serial: u64 },
    /// Drop `d` starts at entry `start` under directory `serial`; only its first `take` entries are logged.
    Drop { d: u64, start: u64, serial: u64, take: u64 },
}

struct Gen<'a> {
    keys: &'a TestKeys,
    dirs: &'a [SignedDirectory; 2],
    salt: [u8; 16],
}

impl Gen<'_> {
    fn publish(&self, at: u64, serial: u64) -> Vec<u8> {
        let d = &self.dirs[serial as usize - 1];
        self.keys.hub_entry(&HubStatement::DirectoryPublished {
            time: time_of(at),
            serial: d.directory.serial,
            sha256: d.sha256_hex(),
        })
    }

    /// The entries of drop `d` (as `testlog` lays them out), cut to `take`.
    fn drop_entries(&self, d: u64, start: u64, serial: u64, take: u64, out: &mut Vec<Vec<u8>>) {
        let keys = self.keys;
        let n = keys.members.len() as u64;
        let k = kind(d, keys.members.len());
        let sender = keys.party((d % n) as usize);
        let mut recipients = vec![keys.party(((d + 1) % n) as usize).clone()];
        if k == Kind::TwoRecipients {
            recipients.push(keys.party(((d + 2) % n) as usize).clone());
        }
        let t = time_of(start);
        let expires = match k {
            Kind::Expired => t + SignedDuration::from_secs(1),
            _ => t + SignedDuration::from_hours(7 * 24),
        };
        let id = drop_id(&self.salt, d);
        let m = keys.manifest(id.clone(), sender, &recipients, serial, t - SignedDuration::from_secs(60), expires);
        let mut e = vec![keys.commit_entry(t, &m)];
        let mut i = start + 1;
        let delete = |at: u64, reason| HubStatement::DropDeleted { time: time_of(at), drop: id.clone(), reason };
        match k {
            Kind::Expired => e.push(keys.hub_entry(&delete(i, DeletionReason::Expired))),
            Kind::Recalled => {
                e.push(keys.fetch_entry(&m.drop, &recipients[0], time_of(i)));
                e.push(keys.recall_entry(&m.drop, sender, time_of(i + 1)));
                e.push(keys.hub_entry(&delete(i + 2, DeletionReason::Recalled)));
            }
            Kind::Delivered | Kind::TwoRecipients => {
                for r in &recipients {
                    e.push(keys.fetch_entry(&m.drop, r, time_of(i)));
                    e.push(keys.ack_entry(time_of(i + 1), &keys.receipt(&m, r, time_of(i + 1))));
                    i += 2;
                }
                e.push(keys.hub_entry(&delete(i, DeletionReason::Delivered)));
            }
        }
        debug_assert_eq!(e.len() as u64, entry_count(k));
        e.truncate(take as usize);
        out.extend(e);
    }

    fn run(&self, items: &[Item]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for item in items {
            match *item {
                Item::Publish { at, serial } => out.push(self.publish(at, serial)),
                Item::Drop { d, start, serial, take } => self.drop_entries(d, start, serial, take, &mut out),
            }
        }
        out
    }
}

fn write_key(path: &PathBuf, what: &str, key: &impl std::fmt::Display) -> io::Result<()> {
    fs::write(path, format!("# {what} (generated by gen-audit-bundle)\n{key}\n"))
}

fn run(args: &Args) -> io::Result<()> {
    let started = Instant::now();
    fs::create_dir_all(&args.out)?;
    let bundle_path = args.out.join("audit.bundle");
    let spool_path = args.out.join("audit.bundle.spool");
    let keys = TestKeys::new(args.parties);
    let dirs = [keys.directory(1), keys.directory(2)];
    let generator = Gen { keys: &keys, dirs: &dirs, salt: rand::random() };
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());

    // Pass 1: sign the entries, spool them (u16 length, bytes) and compute the root.
    let mut spool = BufWriter::with_capacity(1 << 20, File::create(&spool_path)?);
    let mut root = RootBuilder::new();
    let half = (args.entries / 2).max(1);
    let (mut next, mut d, mut d2_published, mut drops) = (0u64, 0u64, false, 0u64);
    let mut last_report = 0u64;
    while next < args.entries {
        // Plan a round, in log order.
        let mut items = Vec::with_capacity(ROUND + 2);
        if next == 0 {
            items.push(Item::Publish { at: 0, serial: 1 });
            next = 1;
        }
        while items.len() < ROUND && next < args.entries {
            if !d2_published && next >= half {
                items.push(Item::Publish { at: next, serial: 2 });
                d2_published = true;
                next += 1;
                continue;
            }
            let count = entry_count(kind(d, args.parties));
            let take = count.min(args.entries - next);
            items.push(Item::Drop { d, start: next, serial: if d2_published { 2 } else { 1 }, take });
            next += take;
            d += 1;
            drops += 1;
        }
        // Sign it on every core; write it in order.
        let per = items.len().div_ceil(workers).max(1);
        let parts: Vec<Vec<Vec<u8>>> = std::thread::scope(|s| {
            let handles: Vec<_> = items.chunks(per).map(|c| s.spawn(|| generator.run(c))).collect();
            handles.into_iter().map(|h| h.join().expect("generator worker panicked")).collect()
        });
        for e in parts.iter().flatten() {
            root.push(e);
            let len = u16::try_from(e.len()).map_err(|_| io::Error::other("an entry longer than 65,535 bytes"))?;
            spool.write_all(&len.to_be_bytes())?;
            spool.write_all(e)?;
        }
        if root.size() - last_report >= 200_000 {
            last_report = root.size();
            eprintln!("  signed {} entries ({:.1} s)", root.size(), started.elapsed().as_secs_f64());
        }
    }
    spool.flush()?;
    drop(spool);
    assert_eq!(root.size(), args.entries, "planned exactly the entries asked for");

    // The checkpoint, cosigned by every party's witness.
    let note = checkpoint::sign(&keys.log, root.size(), &root.root());
    let time = time_of(root.size()).as_second() as u64;
    let lines: Vec<String> = keys.witnesses.iter().map(|w| cosign(&note, w, time)).collect();
    let cp = add_cosignatures(&note, &lines).map_err(io::Error::other)?;

    // Pass 2: the bundle, as the hub's export writes it.
    let meta = BundleMeta::new(keys.log.verifier(), keys.authority.verifier(), cp);
    let mut w = BundleWriter::new(BufWriter::with_capacity(1 << 20, File::create(&bundle_path)?), &meta)?;
    // Directory 2 only when published (a very short log may end first).
    for d in dirs.iter().take(if d2_published { 2 } else { 1 }) {
        w.add_directory(d.directory.serial, &d.note)?;
    }
    let mut r = BufReader::with_capacity(1 << 20, File::open(&spool_path)?);
    let mut buf = Vec::with_capacity(1 << 16);
    for _ in 0..args.entries {
        let mut len = [0u8; 2];
        r.read_exact(&mut len)?;
        buf.resize(usize::from(u16::from_be_bytes(len)), 0);
        r.read_exact(&mut buf)?;
        w.add_entry(&buf)?;
    }
    w.finish()?.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    fs::remove_file(&spool_path)?;

    write_key(&args.out.join("authority.pub"), "the authority's verifier key", &keys.authority.verifier())?;
    write_key(&args.out.join("log.pub"), "the hub's log key", &keys.log.verifier())?;
    let size = fs::metadata(&bundle_path)?.len();
    eprintln!(
        "wrote {}: {} entries, {drops} drops, {} parties, {:.1} MB in {:.1} s",
        bundle_path.display(),
        args.entries,
        args.parties,
        size as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gen-audit-bundle: {e}");
            ExitCode::FAILURE
        }
    }
}
