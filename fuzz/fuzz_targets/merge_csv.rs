//! Fuzz target `merge_csv`: see `sealdrop_fuzz::targets` and docs/fuzzing.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sealdrop_fuzz::harness("merge_csv").expect("a target in TARGETS")(data);
});
