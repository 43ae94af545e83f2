//! Fuzz target `audit_bundle`: see `sealdrop_fuzz::targets` and docs/fuzzing.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sealdrop_fuzz::harness("audit_bundle").expect("a target in TARGETS")(data);
});
