//! The pipeline: the calling thread reads, hashes and applies; workers parse and verify.

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex, mpsc};

use super::input::SignatureCheck;
use super::parse::{Parsed, parse_entry};
use super::rules::Auditor;
use super::signatures::{SigJob, verify_jobs};
use crate::tree::RootBuilder;

// The pipeline.

/// The most chunks read but not yet applied.
const AHEAD: usize = 8;
/// The most signature batches waiting to be verified before more entries are read.
const VERIFYING: usize = 4;

/// Work for the pool.
enum Task {
    /// Parse chunk `seq`.
    Parse(u64, Vec<Vec<u8>>),
    /// Verify a batch of signatures.
    Verify(Vec<SigJob>),
}

/// A problem with entry `.0`.
pub(super) type Failure = (u64, String);

/// Work done.
enum Done {
    Parsed(u64, Vec<Parsed>),
    Verified(Vec<Failure>),
    /// A worker panicked (the pipeline cannot finish).
    Panicked,
}

/// Tells the calling thread when a worker panics, so it does not wait forever.
struct PanicGuard(mpsc::Sender<Done>);

impl Drop for PanicGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = self.0.send(Done::Panicked);
        }
    }
}

/// Runs the entries through the pipeline. The calling thread reads and
/// hashes chunks of `chunk` entries and queues them to be parsed; applies
/// the rules to parsed chunks in log order, which queues signature checks;
/// and queues those `batch` at a time. `threads` workers take the oldest
/// task of either kind, so every core stays busy whatever the mix; at most
/// [`AHEAD`] chunks are read but not yet applied and, before reading on, at
/// most [`VERIFYING`] batches wait to be verified, so memory stays bounded.
/// Returns the signature failures (by entry) and the read failure, if any.
pub(super) fn run_entries(
    a: &mut Auditor,
    entries: &mut dyn Iterator<Item = io::Result<Vec<u8>>>,
    root: &mut RootBuilder,
    mode: SignatureCheck,
    threads: usize,
    chunk: usize,
    batch: usize,
) -> (Vec<Failure>, Option<Failure>) {
    let (chunk, batch) = (chunk.max(1), batch.max(1));
    let (task_tx, task_rx) = mpsc::channel::<Task>();
    let task_rx = Arc::new(Mutex::new(task_rx));
    let (done_tx, done_rx) = mpsc::channel::<Done>();
    let mut read_failure = None;
    let mut sig_failures = Vec::new();
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            let (task_rx, guard) = (Arc::clone(&task_rx), PanicGuard(done_tx.clone()));
            s.spawn(move || {
                loop {
                    // The lock is held only while waiting for the next task.
                    let task = task_rx.lock().map_or(Err(mpsc::RecvError), |rx| rx.recv());
                    let done = match task {
                        Err(_) => break,
                        Ok(Task::Parse(seq, raw)) => Done::Parsed(seq, raw.iter().map(|e| parse_entry(e)).collect()),
                        Ok(Task::Verify(jobs)) => Done::Verified(verify_jobs(&jobs, mode)),
                    };
                    if guard.0.send(done).is_err() {
                        break;
                    }
                }
            });
        }
        drop(done_tx);
        // Dropped on leaving this closure (also when unwinding), which ends the workers.
        let tasks = task_tx;
        let (mut next_read, mut next_apply, mut verifying, mut eof) = (0u64, 0u64, 0usize, false);
        let mut ready: BTreeMap<u64, Vec<Parsed>> = BTreeMap::new();
        let send = |task: Task| tasks.send(task).expect("the audit workers are running");
        loop {
            while !eof && next_read - next_apply < AHEAD as u64 && verifying < VERIFYING {
                let mut raw = Vec::with_capacity(chunk);
                while raw.len() < chunk && read_failure.is_none() {
                    match entries.next() {
                        None => break,
                        Some(Ok(e)) => {
                            root.push(&e);
                            raw.push(e);
                        }
                        Some(Err(e)) => read_failure = Some((root.size(), e.to_string())),
                    }
                }
                eof = raw.len() < chunk;
                if !raw.is_empty() {
                    send(Task::Parse(next_read, raw));
                    next_read += 1;
                }
            }
            if let Some(parsed) = ready.remove(&next_apply) {
                let base = next_apply * chunk as u64;
                for (i, p) in parsed.into_iter().enumerate() {
                    a.apply(base + i as u64, p);
                    if a.jobs.len() >= batch {
                        let jobs = std::mem::replace(&mut a.jobs, Vec::with_capacity(batch));
                        a.report.signatures_checked += jobs.len() as u64;
                        send(Task::Verify(jobs));
                        verifying += 1;
                    }
                }
                next_apply += 1;
                continue;
            }
            if eof && next_apply == next_read {
                if !a.jobs.is_empty() {
                    let jobs = std::mem::take(&mut a.jobs);
                    a.report.signatures_checked += jobs.len() as u64;
                    send(Task::Verify(jobs));
                    verifying += 1;
                }
                if verifying == 0 {
                    break;
                }
            }
            match done_rx.recv() {
                Ok(Done::Parsed(seq, parsed)) => {
                    ready.insert(seq, parsed);
                }
                Ok(Done::Verified(bad)) => {
                    verifying -= 1;
                    sig_failures.extend(bad);
                }
                Ok(Done::Panicked) | Err(_) => panic!("audit worker panicked"),
            }
        }
    });
    // Batches finish in any order; each entry has at most one signature.
    sig_failures.sort_by_key(|(i, _)| *i);
    (sig_failures, read_failure)
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD as B64;

    use super::super::{verify, verify_in};
    use crate::entry::LogEntry;

    /// Chunk and batch sizes, and the number of workers, change nothing in
    /// the report, failures included.
    #[test]
    fn pipeline_shape_changes_nothing() {
        let mut log = crate::testlog::generate(3, 40);
        let forge = |note: &str| {
            let (head, b64) = note.trim_end().rsplit_once(' ').unwrap();
            let mut raw = B64.decode(b64).unwrap();
            raw[10] ^= 0x40;
            format!("{head} {}\n", B64.encode(raw))
        };
        for i in [1, 40, 77, 150] {
            log.entries[i] = match log.entry(i) {
                LogEntry::Hub { statement } => LogEntry::Hub { statement: forge(&statement) },
                LogEntry::DropCommitted { committed, manifest } => {
                    LogEntry::DropCommitted { committed, manifest: forge(&manifest) }
                }
                LogEntry::DropAcknowledged { acknowledged, receipt } => {
                    LogEntry::DropAcknowledged { acknowledged, receipt: forge(&receipt) }
                }
                LogEntry::DropFetched { drop, party, fetched, mut request } => {
                    request.nonce.push('x');
                    LogEntry::DropFetched { drop, party, fetched, request }
                }
                LogEntry::DropRecalled { drop, party, recalled, mut request } => {
                    request.nonce.push('x');
                    LogEntry::DropRecalled { drop, party, recalled, request }
                }
            }
            .to_bytes()
            .unwrap();
        }
        // A replayed fetch, after its drop's deletion.
        let fetch = log.entries[2].clone();
        log.entries.insert(120, fetch);
        log.reseal();
        let expected = format!("{:?}", verify(log.audit_input(3)));
        assert!(expected.contains("a replay"), "{expected}");
        assert!(expected.contains("does not verify"), "{expected}");
        for threads in [1, 2, 3] {
            for (chunk, batch) in [(1, 1), (7, 5), (64, 3), (1000, 1000)] {
                let mut input = log.audit_input(3);
                input.threads = threads;
                let got = format!("{:?}", verify_in(input, chunk, batch));
                assert_eq!(got, expected, "threads {threads}, chunk {chunk}, batch {batch}");
            }
        }
    }
}
