//! The committed fuzz corpora as a regression test on stable Rust: every
//! file in `fuzz/corpus/<target>/` goes through the same harness the fuzz
//! target calls, so an input that once found a bug (or covered a path) is
//! checked on every `cargo test`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use sealdrop_fuzz::{TARGETS, harness};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.expect("readable").path())
        .collect();
    v.sort();
    v
}

/// Replays one target's corpus; returns (inputs, accepted).
fn replay(target: &str) -> (usize, usize) {
    let run = harness(target).expect("a target in TARGETS");
    let dir = fuzz_dir().join("corpus").join(target);
    let mut accepted = 0;
    let inputs = files(&dir);
    for path in &inputs {
        let data = std::fs::read(path).expect("readable");
        let ok = std::panic::catch_unwind(|| run(&data))
            .unwrap_or_else(|_| panic!("{target}: the harness panicked on {}", path.display()));
        accepted += usize::from(ok);
    }
    (inputs.len(), accepted)
}

#[test]
fn every_target_has_a_fuzz_target_file_and_a_corpus() {
    let names: BTreeSet<&str> = TARGETS.iter().map(|(n, _)| *n).collect();
    let stem = |p: &PathBuf| p.file_stem().and_then(|s| s.to_str()).map(str::to_owned);
    let sources: BTreeSet<String> = files(&fuzz_dir().join("fuzz_targets")).iter().filter_map(stem).collect();
    let corpora: BTreeSet<String> = files(&fuzz_dir().join("corpus")).iter().filter_map(stem).collect();
    let names: BTreeSet<String> = names.into_iter().map(str::to_owned).collect();
    assert_eq!(sources, names, "fuzz/fuzz_targets/*.rs and sealdrop_fuzz::TARGETS differ");
    assert_eq!(corpora, names, "fuzz/corpus/* and sealdrop_fuzz::TARGETS differ");
    let manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).expect("fuzz/Cargo.toml");
    for n in &names {
        assert!(manifest.contains(&format!("name = \"{n}\"")), "fuzz/Cargo.toml has no [[bin]] {n}");
    }
}

/// One test per target, so a failure names its target and the others still run.
macro_rules! corpus_tests {
    ($($target:ident),* $(,)?) => {$(
        #[test]
        fn $target() {
            let (inputs, accepted) = replay(stringify!($target));
            assert!(inputs > 0, "fuzz/corpus/{} is empty", stringify!($target));
            // The seeds include inputs the parser accepts, so the corpus
            // keeps exercising the success path and its assertions.
            assert!(accepted > 0, "no input in fuzz/corpus/{} is accepted any more", stringify!($target));
        }
    )*};
}

corpus_tests!(
    directory,
    manifest,
    receipt,
    request_auth,
    range,
    api_json,
    age_header,
    log_entry,
    audit_log,
    proof,
    checkpoint,
    tiles,
    audit_bundle,
    tar_extract,
    age_decrypt,
    split_csv,
    split_xlsx,
    merge_csv,
    journal,
    config,
    keys,
);

#[test]
fn the_corpus_tests_cover_every_target() {
    let source = include_str!("corpus.rs");
    for (name, _) in TARGETS {
        assert!(source.contains(&format!("    {name},\n")), "corpus_tests! does not list {name}");
    }
}

/// The seeds the harnesses must refuse: hostile or altered inputs. Every
/// other seed is a genuine document or file and must be accepted, so the
/// harnesses' assertions about accepted inputs run on real data.
const REFUSED_SEEDS: &[(&str, &str)] = &[
    ("directory", "tampered"),
    ("manifest", "signed-by-islington"),
    // Fixture-log manifests and receipts of drops islington does not receive
    // or did not acknowledge: genuine, but not for the checking party.
    ("manifest", "log-5"),
    ("manifest", "log-8"),
    ("receipt", "by-camden"),
    ("receipt", "log-16"),
    ("request_auth", "stale"),
    ("request_auth", "unknown-key"),
    ("range", "empty"),
    ("range", "multiple"),
    ("audit_log", "entry-missing"),
    ("audit_log", "request-time-min"),
    ("tar_extract", "parent"),
    ("tar_extract", "absolute"),
    ("tar_extract", "symlink"),
    ("tar_extract", "hardlink"),
    ("tar_extract", "device"),
    ("tar_extract", "fifo"),
    ("tar_extract", "duplicate"),
    ("merge_csv", "headers-differ"),
    ("age_header", "extra-key"),
    ("age_header", "scrypt"),
    ("age_header", "armored"),
    ("age_header", "truncated"),
];

#[test]
fn genuine_seeds_are_accepted_and_hostile_ones_refused() {
    let mut wrong = Vec::new();
    for (target, name, bytes) in sealdrop_fuzz::seeds::seeds() {
        let expected = !REFUSED_SEEDS.contains(&(target, name.as_str()));
        if harness(target).expect("a target")(&bytes) != expected {
            wrong.push(format!("{target}/seed-{name}: expected {}", if expected { "accepted" } else { "refused" }));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
