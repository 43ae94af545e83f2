use std::fs::File;
use std::io::{self, Read};

use sha2::{Digest as _, Sha256};

use sealdrop_proto::directory::Directory;
use sealdrop_proto::drop::Manifest;
use sealdrop_proto::keys::MemberSecretKey;

use super::place::*;
use super::receive::*;
use super::spool::*;
use super::*;

#[test]
fn a_revoked_senders_manifest_counts_only_for_drops_committed_before_the_revocation() {
    use sealdrop_proto::directory::{Agreement, Party, RevokedKey};
    use sealdrop_proto::drop::EncryptedTo;
    let sender = MemberSecretKey::generate("camden".parse().unwrap(), "data-team".parse().unwrap());
    let replacement = MemberSecretKey::generate("camden".parse().unwrap(), "data-team".parse().unwrap());
    let me = MemberSecretKey::generate("islington".parse().unwrap(), "data-team".parse().unwrap());
    let revoked_at: jiff::Timestamp = "2026-11-20T09:00:00Z".parse().unwrap();
    let camden = Party {
        revoked: vec![RevokedKey {
            member: sender.member.clone(),
            signing_key: sender.signing.verifier(),
            revoked_at,
            reason: "left".into(),
        }],
        ..Party::with_member("Camden", replacement.public())
    };
    let dir = Directory {
        serial: 2,
        issued_at: revoked_at,
        hub: None,
        parties: vec![camden, Party::with_member("Islington", me.public())],
        agreements: Vec::<Agreement>::new(),
    };
    let id = DropId::random();
    let manifest = Manifest {
        drop: id.clone(),
        sender: sender.party.clone(),
        sender_member: sender.member.clone(),
        recipients: vec![me.party.clone()],
        encrypted_to: vec![EncryptedTo {
            key: me.signing.name().to_owned(),
            age_recipient: me.age_recipient.to_string(),
        }],
        agreement: "a".into(),
        directory_serial: 1,
        ciphertext_sha256: "ab".repeat(32),
        ciphertext_len: 1,
        created: revoked_at,
        expires: revoked_at,
    };
    let note = sign_doc(&manifest, &sender.signing);
    let before: jiff::Timestamp = "2026-11-20T08:59:59Z".parse().unwrap();
    assert_eq!(verify_manifest(&dir, &me, &id, &note, || Ok(Some(before))).unwrap(), manifest);
    for committed in [Some(revoked_at), None] {
        let e = verify_manifest(&dir, &me, &id, &note, || Ok(committed)).unwrap_err();
        assert_eq!(e.code, "bad_manifest", "{committed:?}: {}", e.message);
        assert!(e.message.contains("signed with camden/data-team's key, revoked from 2026-11-20T09:00:00Z (left)"));
    }
    // A log that cannot prove the commit is not a verdict on the sender.
    let e = verify_manifest(&dir, &me, &id, &note, || Err(Error::new(ErrorCode::LogNotIncluded, "no"))).unwrap_err();
    assert_eq!(e.code, "log_not_included");
    // The replacement key signs for drops at any time, and the log is not asked.
    let renewed = sign_doc(&manifest, &replacement.signing);
    let unasked = || -> Result<Option<jiff::Timestamp>> { panic!("the log was asked") };
    assert_eq!(verify_manifest(&dir, &me, &id, &renewed, unasked).unwrap(), manifest);
    // Nor for a manifest no key of the party signed.
    let stranger = MemberSecretKey::generate("camden".parse().unwrap(), "data-team".parse().unwrap());
    let forged = sign_doc(&manifest, &stranger.signing);
    assert_eq!(verify_manifest(&dir, &me, &id, &forged, unasked).unwrap_err().code, "bad_manifest");
}

/// An output folder with a staging folder holding a drop's top-level entries.
struct Fixture {
    dir: tempfile::TempDir,
    id: DropId,
}

impl Fixture {
    fn new() -> Self {
        Self { dir: tempfile::tempdir().unwrap(), id: DropId::random() }
    }

    fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    fn staging(&self) -> PathBuf {
        self.out().join(format!("{INCOMING_PREFIX}{}", self.id))
    }

    /// Stages `rel` (a file, or a file inside a folder) with `content`.
    fn stage(&self, rel: &str, content: &str) {
        write(&self.staging().join(rel), content);
    }

    fn place(&self, names: &[&str], taken: &HashSet<String>) -> Result<PathBuf> {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        place(&self.staging(), &self.out(), &self.id, &names, taken, None)
    }

    fn outcome(&self, dest: PathBuf, names: &[&str]) -> FetchOutcome {
        FetchOutcome {
            id: self.id.clone(),
            from: "camden".parse().unwrap(),
            agreement: "a".into(),
            files: names.len(),
            bytes: 0,
            names: names.iter().map(|n| (*n).to_owned()).collect(),
            dest,
            ciphertext_deleted: true,
            receipt: PathBuf::new(),
            formulas: Vec::new(),
        }
    }
}

fn write(path: &Path, content: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

/// The names in a folder, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

#[test]
fn fetch_places_a_drop_with_free_names_straight_into_the_output_folder() {
    let f = Fixture::new();
    f.stage("a.csv", "a");
    f.stage("reports/b.csv", "b");
    let dest = f.place(&["a.csv", "reports"], &HashSet::new()).unwrap();
    assert_eq!(dest, f.out());
    assert_eq!(read(&f.out().join("a.csv")), "a");
    assert_eq!(read(&f.out().join("reports/b.csv")), "b");
    let o = f.outcome(dest, &["a.csv", "reports"]);
    assert!(!o.in_own_folder());
    assert_eq!(o.names_note(), "a.csv, reports");
}

#[test]
fn fetch_places_a_drop_with_a_taken_name_whole_in_its_own_folder() {
    let f = Fixture::new();
    write(&f.out().join("fsm-islington.csv"), "already here");
    f.stage("fsm-islington.csv", "new");
    f.stage("notes.txt", "n");
    let dest = f.place(&["fsm-islington.csv", "notes.txt"], &HashSet::new()).unwrap();
    assert_eq!(dest, f.out().join(f.id.as_str()));
    assert_eq!(read(&f.out().join("fsm-islington.csv")), "already here");
    assert_eq!(names(&dest), ["fsm-islington.csv", "notes.txt"]);
    assert_eq!(read(&dest.join("fsm-islington.csv")), "new");
    assert!(!f.out().join("notes.txt").exists(), "part of the drop went beside the folder");
    let o = f.outcome(dest, &["fsm-islington.csv", "notes.txt"]);
    assert!(o.in_own_folder());
    assert_eq!(o.names_note(), "fsm-islington.csv, notes.txt; a file named fsm-islington.csv was already there");
    let o = FetchOutcome { names: vec!["fsm-islington.csv".into()], ..o };
    assert_eq!(o.names_note(), "fsm-islington.csv; a file of that name was already there");
}

#[test]
fn fetch_never_merges_into_an_existing_folder() {
    let f = Fixture::new();
    write(&f.out().join("reports/mine.csv"), "mine");
    f.stage("reports/theirs.csv", "theirs");
    let dest = f.place(&["reports"], &HashSet::new()).unwrap();
    assert_eq!(names(&f.out().join("reports")), ["mine.csv"]);
    assert_eq!(read(&dest.join("reports/theirs.csv")), "theirs");
    assert_eq!(f.outcome(dest, &["reports"]).names_note(), "reports; a folder of that name was already there");
}

#[test]
fn fetch_counts_names_an_earlier_drop_of_the_run_placed() {
    let f = Fixture::new();
    f.stage("fsm-islington.csv", "second");
    let taken = HashSet::from(["fsm-islington.csv".to_owned()]);
    let dest = f.place(&["fsm-islington.csv"], &taken).unwrap();
    assert_eq!(dest, f.out().join(f.id.as_str()));
    assert_eq!(read(&dest.join("fsm-islington.csv")), "second");
}

#[test]
fn fetch_refuses_when_the_drops_own_folder_is_taken_too() {
    let f = Fixture::new();
    write(&f.out().join("a.csv"), "old");
    write(&f.out().join(f.id.as_str()), "a file named like the drop");
    f.stage("a.csv", "new");
    f.stage("b.csv", "b");
    let before = names(&f.out());
    let err = f.place(&["b.csv", "a.csv"], &HashSet::new()).unwrap_err();
    assert_eq!(err.code, "output_exists");
    assert!(err.message.contains(f.id.as_str()), "{}", err.message);
    assert_eq!(names(&f.out()), before, "something was placed");
    assert_eq!(read(&f.out().join(f.id.as_str())), "a file named like the drop");
    assert_eq!(read(&f.out().join("a.csv")), "old");
}

#[test]
fn fetch_undoes_a_partial_move() {
    let f = Fixture::new();
    f.stage("a.csv", "a");
    f.stage("dir/x.csv", "x");
    // Not staged, so moving it fails after the first two.
    let err = f.place(&["a.csv", "dir", "missing.csv"], &HashSet::new()).unwrap_err();
    assert_eq!(err.code, "io", "{err:?}");
    assert_eq!(names(&f.out()), [format!("{INCOMING_PREFIX}{}", f.id)], "a partial drop was left behind");
    assert_eq!(read(&f.staging().join("dir/x.csv")), "x");

    // The same in the drop's own folder: the folder goes too.
    write(&f.out().join("a.csv"), "old");
    let err = f.place(&["a.csv", "dir", "missing.csv"], &HashSet::new()).unwrap_err();
    assert_eq!(err.code, "io", "{err:?}");
    assert_eq!(names(&f.out()), [format!("{INCOMING_PREFIX}{}", f.id), "a.csv".to_owned()]);
}

/// Yields `data`, then fails with `ConnectionReset` (a connection cut mid-body).
struct CutAfter<'a>(&'a [u8]);

impl Read for CutAfter<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.0.is_empty() {
            return Err(io::Error::new(io::ErrorKind::ConnectionReset, "connection reset"));
        }
        let n = out.len().min(self.0.len());
        out[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn fetch_spool_is_created_private_only_when_wanted() {
    let state = tempfile::tempdir().unwrap();
    let id = DropId::random();
    assert!(Spool::open(state.path(), &id, 100, false).unwrap().is_none());
    assert!(!state.path().join(DOWNLOADS_DIR).exists(), "nothing is created for a small drop");

    let spool = Spool::open(state.path(), &id, 100, true).unwrap().unwrap();
    assert_eq!(spool.len, 0);
    assert_eq!(spool.path, spool_path(state.path(), &id));
    assert_eq!(spool.path, state.path().join("downloads").join(format!("{id}.age.part")));
    assert_eq!(mode(&spool.path), 0o600);
    assert_eq!(mode(&state.path().join(DOWNLOADS_DIR)), 0o700);
}

#[test]
fn fetch_spool_resumes_a_prefix_and_drops_a_complete_or_overlong_one() {
    let state = tempfile::tempdir().unwrap();
    let id = DropId::random();
    let path = spool_path(state.path(), &id);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();

    // A prefix is resumed from, even when the drop is below the threshold now.
    std::fs::write(&path, b"0123").unwrap();
    let spool = Spool::open(state.path(), &id, 10, false).unwrap().unwrap();
    assert_eq!(spool.len, 4);
    assert_eq!(mode(&path), 0o600, "an existing spool is made private");
    drop(spool);

    // As long as the ciphertext or longer: emptied when wanted, deleted when not.
    for len in [10, 11] {
        std::fs::write(&path, vec![b'x'; len]).unwrap();
        let spool = Spool::open(state.path(), &id, 10, true).unwrap().unwrap();
        assert_eq!((spool.len, std::fs::metadata(&path).unwrap().len()), (0, 0), "{len}");
        drop(spool);
        std::fs::write(&path, vec![b'x'; len]).unwrap();
        assert!(Spool::open(state.path(), &id, 10, false).unwrap().is_none());
        assert!(!path.exists(), "{len}");
    }
}

#[test]
fn fetch_spool_in_use_is_refused() {
    let state = tempfile::tempdir().unwrap();
    let id = DropId::random();
    let held = Spool::open(state.path(), &id, 10, true).unwrap().unwrap();
    let err = Spool::open(state.path(), &id, 10, true).err().unwrap();
    assert_eq!(err.code, "fetch_in_progress");
    assert!(err.message.contains(id.as_str()), "{}", err.message);
    drop(held);
    assert!(Spool::open(state.path(), &id, 10, true).unwrap().is_some());
}

#[test]
fn fetch_source_replays_the_prefix_then_appends_what_arrives() {
    let state = tempfile::tempdir().unwrap();
    let id = DropId::random();
    let path = spool_path(state.path(), &id);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, b"hello ").unwrap();
    let spool = Spool::open(state.path(), &id, 11, false).unwrap().unwrap();
    let prefix = File::open(&spool.path).unwrap();
    let mut source =
        Source::new(Some(prefix), spool.len, &b"world"[..], Some(&spool.file), indicatif::ProgressBar::hidden());
    let mut got = Vec::new();
    source.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"hello world");
    assert!(source.finish());
    assert_eq!(
        source.digest(),
        Received { sha256: hex::encode(Sha256::digest(b"hello world")), len: 11 },
        "the hash covers prefix and rest"
    );
    assert_eq!(source.failure, None);
    assert_eq!(std::fs::read(&path).unwrap(), b"hello world");
}

#[test]
fn forwarding_hands_over_everything_then_the_end() {
    let data: Vec<u8> = (0..RECEIVE_CHUNK * 2 + 5).map(|i| (i % 253) as u8).collect();
    let (tx, rx) = std::sync::mpsc::sync_channel(RECEIVE_QUEUE);
    let reader = std::thread::spawn(move || {
        let mut got = Vec::new();
        ChunkReader::new(rx).read_to_end(&mut got).unwrap();
        got
    });
    assert_eq!(forward(&mut &data[..], &tx, None).unwrap(), data.len() as u64);
    drop(tx);
    assert!(reader.join().unwrap() == data);
}

#[test]
fn forwarding_into_chunks_handed_back_keeps_every_byte() {
    // Chunks are read into again once the reader hands them back; a short
    // read at the end must not carry bytes of an earlier chunk.
    let data: Vec<u8> = (0..RECEIVE_CHUNK * (RECEIVE_QUEUE * 3) + 777).map(|i| (i % 241) as u8).collect();
    let (tx, rx) = std::sync::mpsc::sync_channel(RECEIVE_QUEUE);
    let (back, spare) = std::sync::mpsc::sync_channel(RECEIVE_QUEUE);
    let reader = std::thread::spawn(move || {
        let mut got = Vec::new();
        ChunkReader::new(rx).returning(back).read_to_end(&mut got).unwrap();
        got
    });
    // Uneven reads from the source, so chunks fill over several reads.
    let mut source = Trickle(&data[..], 100_001);
    assert_eq!(forward(&mut source, &tx, Some(&spare)).unwrap(), data.len() as u64);
    drop(tx);
    assert!(reader.join().unwrap() == data);
    assert!(spare.try_recv().is_ok(), "chunks came back to be reused");
}

/// Yields at most the given number of bytes per read.
struct Trickle<'a>(&'a [u8], usize);

impl Read for Trickle<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = out.len().min(self.1).min(self.0.len());
        out[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

#[test]
fn forwarding_passes_on_a_broken_download_after_what_arrived() {
    let (tx, rx) = std::sync::mpsc::sync_channel(RECEIVE_QUEUE);
    let err = forward(&mut CutAfter(b"abc"), &tx, None).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
    drop(tx);
    let mut reader = ChunkReader::new(rx);
    let mut got = [0u8; 8];
    assert_eq!(reader.read(&mut got).unwrap(), 3);
    assert_eq!(&got[..3], b"abc");
    assert_eq!(reader.read(&mut got).unwrap_err().kind(), io::ErrorKind::ConnectionReset);
}

#[test]
fn forwarding_reads_to_the_end_when_the_reader_stops_early() {
    let data = vec![1u8; RECEIVE_CHUNK * (RECEIVE_QUEUE + 4)];
    let (tx, rx) = std::sync::mpsc::sync_channel(RECEIVE_QUEUE);
    drop(rx); // decryption gave up at once
    let mut source = &data[..];
    assert_eq!(forward(&mut source, &tx, None).unwrap(), data.len() as u64);
    assert!(source.is_empty(), "every byte was read (and so hashed) anyway");
}

#[test]
fn fetch_source_remembers_a_broken_download() {
    let state = tempfile::tempdir().unwrap();
    let id = DropId::random();
    let spool = Spool::open(state.path(), &id, 100, true).unwrap().unwrap();
    let mut source = Source::new(None, 0, CutAfter(b"abc"), Some(&spool.file), indicatif::ProgressBar::hidden());
    let mut got = Vec::new();
    assert_eq!(source.read_to_end(&mut got).unwrap_err().kind(), io::ErrorKind::ConnectionAborted);
    assert_eq!(got, b"abc");
    // Every later read repeats the failure: it never looks like a clean end.
    assert!(source.read(&mut [0; 8]).is_err());
    assert!(matches!(source.failure, Some(Failure::Network(ref e)) if e.contains("reset")));
    assert!(source.finish());
    assert_eq!(source.digest().len, 3);
    assert_eq!(std::fs::read(&spool.path).unwrap(), b"abc");
}

#[test]
fn fetch_source_fails_when_the_prefix_is_shorter_than_claimed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p");
    std::fs::write(&path, b"abc").unwrap();
    let mut source =
        Source::new(Some(File::open(&path).unwrap()), 5, &b"zz"[..], None, indicatif::ProgressBar::hidden());
    let mut got = Vec::new();
    assert!(source.read_to_end(&mut got).is_err());
    assert!(matches!(source.failure, Some(Failure::Spool(_))), "{:?}", source.failure);
    assert!(!source.finish(), "no spool");
}

#[test]
fn fetch_all_removes_spools_of_drops_no_longer_waiting() {
    let state = tempfile::tempdir().unwrap();
    let (waiting, gone, busy) = (DropId::random(), DropId::random(), DropId::random());
    for id in [&waiting, &gone] {
        drop(Spool::open(state.path(), id, 10, true).unwrap());
    }
    let held = Spool::open(state.path(), &busy, 10, true).unwrap().unwrap();
    let foreign = state.path().join(DOWNLOADS_DIR).join("notes.txt");
    std::fs::write(&foreign, b"mine").unwrap();
    remove_stale_spools(state.path(), &[waiting.to_string()]);
    assert!(spool_path(state.path(), &waiting).exists());
    assert!(!spool_path(state.path(), &gone).exists());
    assert!(spool_path(state.path(), &busy).exists(), "a spool in use is left alone");
    assert!(foreign.exists());
    drop(held);
}
