//! Fuzz target `audit_log`: see `sealdrop_fuzz::targets` and docs/fuzzing.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sealdrop_fuzz::harness("audit_log").expect("a target in TARGETS")(data);
});
