//! Load generator for `bench/run small_drops`: many small drops from many
//! senders at once, against a real hub, or the same files PUT to a plain web
//! server as the baseline.
//!
//! ```text
//! small-drops sealdrop --hub URL[,URL...] --keys DIR --authority FILE --state DIR --files DIR [--senders 32] [--drops-per-sender 200]
//! small-drops put --url URL --files DIR [--senders 32] [--drops-per-sender 200]
//! small-drops make-files --files DIR --count N --size 4096
//! ```
//!
//! `sealdrop` runs the client library's own send (`sealdrop::send::send_in`:
//! tar, age, upload, signed manifest, commit, receipt with inclusion proof)
//! on one thread per sender; each sender is a different borough (its example
//! key) with its own session, opened before timing starts, as a borough's
//! long-running sender would. Given several hub URLs (instances of one
//! hub), sender `s` uses URL `s mod n`. `put` PUTs the same files with one keep-alive
//! HTTP connection per sender. Both print one JSON line:
//! `{"drops": N, "seconds": S, "per_second": R}`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};
use std::time::Instant;

use sealdrop::context::Settings;
use sealdrop::send::{SendRequest, send_in};
use sealdrop_proto::clock::SystemClock;

fn main() {
    if let Err(e) = run() {
        eprintln!("small-drops: {e}");
        std::process::exit(2);
    }
}

type Res<T> = Result<T, String>;

struct Args {
    mode: String,
    flags: std::collections::HashMap<String, String>,
}

impl Args {
    fn parse() -> Res<Self> {
        let mut it = std::env::args().skip(1);
        let mode = it.next().ok_or("name a mode: sealdrop, put or make-files")?;
        let mut flags = std::collections::HashMap::new();
        while let Some(flag) = it.next() {
            let name = flag.strip_prefix("--").ok_or_else(|| format!("unexpected argument {flag}"))?;
            let value = it.next().ok_or_else(|| format!("--{name} needs a value"))?;
            flags.insert(name.to_owned(), value);
        }
        Ok(Self { mode, flags })
    }
    fn get(&self, name: &str) -> Res<&str> {
        self.flags.get(name).map(String::as_str).ok_or_else(|| format!("--{name} is required"))
    }
    fn num(&self, name: &str, default: usize) -> Res<usize> {
        match self.flags.get(name) {
            Some(v) => v.parse().map_err(|_| format!("--{name} must be a number")),
            None => Ok(default),
        }
    }
}

fn run() -> Res<()> {
    let args = Args::parse()?;
    match args.mode.as_str() {
        "make-files" => make_files(Path::new(args.get("files")?), args.num("count", 6400)?, args.num("size", 4096)?),
        "sealdrop" => report(sealdrop_drops(&args)?),
        "put" => report(put_drops(&args)?),
        other => Err(format!("unknown mode {other}: use sealdrop, put or make-files")),
    }
}

fn report((drops, seconds): (usize, f64)) -> Res<()> {
    println!("{{\"drops\": {drops}, \"seconds\": {seconds:.3}, \"per_second\": {:.1}}}", drops as f64 / seconds);
    Ok(())
}

fn make_files(dir: &Path, count: usize, size: usize) -> Res<()> {
    use rand::RngCore as _;
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut rng = rand::thread_rng();
    let mut buf = vec![0u8; size];
    for i in 0..count {
        rng.fill_bytes(&mut buf);
        let path = file_path(dir, i);
        std::fs::write(&path, &buf).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(())
}

fn file_path(dir: &Path, i: usize) -> PathBuf {
    dir.join(format!("f{i:06}.bin"))
}

/// Runs `work(sender, first_file)` on `senders` threads started together;
/// each does `per_sender` drops. Returns the drops done and the seconds from
/// the common start to the last finish.
fn timed_threads(
    senders: usize,
    per_sender: usize,
    prepare: impl Fn(usize) -> Res<Box<dyn FnMut(usize) -> Res<()> + Send>>,
) -> Res<(usize, f64)> {
    let barrier = Arc::new(Barrier::new(senders + 1));
    let mut handles = Vec::new();
    for s in 0..senders {
        let mut work = prepare(s)?;
        let barrier = barrier.clone();
        handles.push(std::thread::spawn(move || -> Res<()> {
            barrier.wait();
            for j in 0..per_sender {
                work(s * per_sender + j)?;
            }
            Ok(())
        }));
    }
    barrier.wait();
    let start = Instant::now();
    for h in handles {
        h.join().map_err(|_| "a sender thread panicked".to_owned())??;
    }
    Ok((senders * per_sender, start.elapsed().as_secs_f64()))
}

fn sealdrop_drops(args: &Args) -> Res<(usize, f64)> {
    let hubs: Vec<String> = args.get("hub")?.split(',').map(str::to_owned).collect();
    let keys = PathBuf::from(args.get("keys")?);
    let authority = args.get("authority")?.to_owned();
    let state = PathBuf::from(args.get("state")?);
    let files = PathBuf::from(args.get("files")?);
    let senders = args.num("senders", 32)?;
    let per_sender = args.num("drops-per-sender", 200)?;
    let mut parties: Vec<String> = std::fs::read_dir(&keys)
        .map_err(|e| format!("cannot list {}: {e}", keys.display()))?
        .filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix(".key").map(str::to_owned))
        .collect();
    parties.sort();
    if parties.len() < senders + 1 {
        return Err(format!(
            "{} has {} party keys; {senders} senders need {}",
            keys.display(),
            parties.len(),
            senders + 1
        ));
    }
    let parties = Arc::new(parties);
    timed_threads(senders, per_sender, |s| {
        let me = &parties[s];
        // Each sender sends to the next borough along.
        let to = parties[(s + 1) % parties.len()].clone();
        let dir = state.join(me);
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let identity = dir.join("member.key");
        std::fs::copy(keys.join(format!("{me}.key")), &identity).map_err(|e| format!("cannot copy {me}'s key: {e}"))?;
        set_private(&identity)?;
        let settings = Settings {
            hub: Some(hubs[s % hubs.len()].clone()),
            identity: Some(identity),
            authority: Some(authority.clone()),
            state_dir: dir.join("state"),
            quiet: true,
            witness_key: None,
            resume_min_bytes: u64::MAX,
            clock: Arc::new(SystemClock),
            key_unlock: Default::default(),
        };
        let session = settings.session().map_err(|e| format!("{me}: {}", e.message))?;
        let files = files.clone();
        Ok(Box::new(move |i| {
            let req = SendRequest { to: vec![to.clone()], paths: vec![file_path(&files, i)], ..Default::default() };
            send_in(&settings, &session, &req).map(|_| ()).map_err(|e| format!("{}: {}", e.code, e.message))
        }))
    })
}

fn set_private(path: &Path) -> Res<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(|e| e.to_string())
}

fn put_drops(args: &Args) -> Res<(usize, f64)> {
    let url = args.get("url")?.trim_end_matches('/').to_owned();
    let files = PathBuf::from(args.get("files")?);
    let senders = args.num("senders", 32)?;
    let per_sender = args.num("drops-per-sender", 200)?;
    timed_threads(senders, per_sender, |_| {
        let http = reqwest::blocking::Client::new();
        let (url, files) = (url.clone(), files.clone());
        Ok(Box::new(move |i| {
            let body = std::fs::read(file_path(&files, i)).map_err(|e| e.to_string())?;
            let resp = http.put(format!("{url}/f{i:06}.bin")).body(body).send().map_err(|e| e.to_string())?;
            if !resp.status().is_success() {
                return Err(format!("PUT answered {}", resp.status()));
            }
            Ok(())
        }))
    })
}
