//! Fuzz target `split_csv`: see `sealdrop_fuzz::targets` and docs/fuzzing.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sealdrop_fuzz::harness("split_csv").expect("a target in TARGETS")(data);
});
