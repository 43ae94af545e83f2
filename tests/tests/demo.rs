//! The README's first command: `sealdrop demo` runs the whole exchange with
//! nothing to set up, from any folder, and narrates what it checked.

use std::process::Command;

use sealdrop_e2e::bins;

#[test]
fn the_demo_runs_end_to_end_from_any_folder() {
    let elsewhere = tempfile::tempdir().unwrap();
    let out = Command::new(&bins().client)
        .arg("demo")
        .current_dir(elsewhere.path())
        .env("SEALDROP_CONFIG", elsewhere.path().join("none.toml"))
        .env("HOME", elsewhere.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "demo failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    for said in [
        "Ciphertext only.",
        "begins \"age-encryption.org/v1\"",
        "Islington fetches its drop",
        "Hackney fetches its drop",
        "Ciphertext files left on the hub: 0.",
        "verdict VERIFIED",
    ] {
        assert!(stdout.contains(said), "the demo should say {said:?}:\n{stdout}");
    }
    assert_eq!(stdout.matches("acknowledged 20").count(), 2, "both deliveries acknowledged:\n{stdout}");
}
