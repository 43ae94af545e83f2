//! Fuzz target `age_header`: see `sealdrop_fuzz::targets` and docs/fuzzing.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sealdrop_fuzz::harness("age_header").expect("a target in TARGETS")(data);
});
