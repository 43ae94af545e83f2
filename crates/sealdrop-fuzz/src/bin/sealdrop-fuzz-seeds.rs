//! Writes the seed corpora: `sealdrop-fuzz-seeds [DIR]` (default
//! `fuzz/corpus`) puts every target's seeds in `DIR/<target>/seed-*`.

use std::path::PathBuf;

fn main() {
    let dir = std::env::args_os().nth(1).map_or_else(|| PathBuf::from("fuzz/corpus"), PathBuf::from);
    match sealdrop_fuzz::seeds::write_all(&dir) {
        Ok(n) => println!("wrote {n} seeds under {}", dir.display()),
        Err(e) => {
            eprintln!("error: cannot write the seeds under {}: {e}", dir.display());
            std::process::exit(1);
        }
    }
}
