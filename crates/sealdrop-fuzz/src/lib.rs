//! Fuzz harnesses for every parser of untrusted input in sealdrop.
//!
//! Each harness is a function from bytes to "was the input accepted",
//! shared by the cargo-fuzz targets in `fuzz/fuzz_targets/` (one per entry
//! of [`TARGETS`], compiled with libFuzzer) and by this crate's corpus
//! regression test, which replays every committed corpus file in
//! `fuzz/corpus/<target>/` on stable Rust. A harness panics when the code
//! under test panics or breaks one of the properties its docs list; the
//! keys and documents it checks against are in [`fixtures`].
//!
//! See `docs/fuzzing.md` for what each target checks and how to run them.
#![forbid(unsafe_code)]

pub mod check;
pub mod fixtures;
pub mod seeds;
pub mod targets;

/// A harness: runs one input, panics on a bug, returns whether the parser
/// under test accepted the input.
pub type Harness = fn(&[u8]) -> bool;

/// Every fuzz target: its name (the file `fuzz/fuzz_targets/<name>.rs` and
/// the corpus folder `fuzz/corpus/<name>/`) and its harness.
pub const TARGETS: &[(&str, Harness)] = &[
    ("directory", targets::docs::directory),
    ("manifest", targets::docs::manifest),
    ("receipt", targets::docs::receipt),
    ("request_auth", targets::hub::request_auth),
    ("range", targets::hub::range),
    ("api_json", targets::hub::api_json),
    ("age_header", targets::hub::age_header),
    ("log_entry", targets::log::log_entry),
    ("audit_log", targets::log::audit_log),
    ("proof", targets::log::proof),
    ("checkpoint", targets::log::checkpoint),
    ("tiles", targets::log::tiles),
    ("audit_bundle", targets::log::audit_bundle),
    ("tar_extract", targets::client::tar_extract),
    ("age_decrypt", targets::client::age_decrypt),
    ("split_csv", targets::client::split_csv),
    ("split_xlsx", targets::client::split_xlsx),
    ("merge_csv", targets::client::merge_csv),
    ("journal", targets::client::journal),
    ("config", targets::client::config),
    ("keys", targets::client::keys),
];

/// The harness of target `name`.
pub fn harness(name: &str) -> Option<Harness> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, h)| *h)
}
