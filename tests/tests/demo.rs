//! The README's first command: the demo (`sealdrop-demo`, here run as
//! `sealdrop demo`, which passes it on) runs the whole exchange with nothing
//! to set up, from any folder, and narrates what it checked.

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
        "Keys: post-quantum (ML-KEM-768 + X25519) for all 33 members",
        // The stored header's first stanza is the post-quantum one.
        "begins \"age-encryption.org/v1\", then \"-> mlkem768x25519\"",
        "13 of the 13 drops were post-quantum",
        "error[unroutable_rows]: 3 rows",
        "1,398 rows for Camden (your own party) stay here",
        "The hub already has 12 of 12 parts",
        "599 rows delivered in all",
        "12 of 12 drops acknowledged",
        "Ciphertexts left on the hub: 0.",
        "Recalled before Barnet opened it",
        "; 1 recalled.",
        "on recall 1 (each recall signed by the sender)",
        "verdict VERIFIED",
        "Camden -> Islington",
    ] {
        assert!(stdout.contains(said), "the demo should say {said:?}:\n{stdout}");
    }
    // Each home borough's line says every row it got is its own resident's.
    let fetched: Vec<&str> = stdout.lines().filter(|l| l.contains("every one a resident of")).collect();
    assert_eq!(fetched.len(), 12, "one fetch per home borough:\n{stdout}");
    // The split is deterministic (seeded sample): the same 12 boroughs each time.
    for borough in ["islington", "westminster", "haringey", "hackney", "city-of-london", "wandsworth"] {
        assert!(fetched.iter().any(|l| l.trim_start().starts_with(borough)), "{borough} fetched:\n{stdout}");
    }
}

#[test]
fn without_sealdrop_demo_the_client_says_how_to_install_it() {
    // A `sealdrop` alone in its folder, with nothing on PATH: as installed by
    // `cargo install --path client` without the demo.
    let alone = tempfile::tempdir().unwrap();
    let client = alone.path().join("sealdrop");
    std::fs::copy(&bins().client, &client).unwrap();
    for args in [&["demo"][..], &["sample", "fsm", "--rows", "5", "-o", "fsm.csv"]] {
        let out = Command::new(&client)
            .args(args)
            .current_dir(alone.path())
            .env("SEALDROP_CONFIG", alone.path().join("none.toml"))
            .env("HOME", alone.path())
            .env("PATH", alone.path().join("empty"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.starts_with("error[demo_not_installed]: "), "{args:?}: {stderr}");
        assert!(stderr.contains("cargo install --locked --path crates/sealdrop-demo"), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(!alone.path().join("fsm.csv").exists());
    }
}
