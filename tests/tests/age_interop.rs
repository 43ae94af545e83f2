//! A drop's ciphertext is a plain age file that stock `age` decrypts with the
//! identity `sealdrop key export-age` prints; the plaintext is a tar archive.
//!
//! Debian's age (1.1) reads classic keys only, so the stock-tool tests give
//! their parties classic keys (`keygen --classic`); a post-quantum drop is
//! read with the identity file format of age 1.3 through the `age` crate.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use sealdrop_e2e::{Coordinator, Hub, Party, chmod, read_bytes, write_file};

/// The stock `age` binary; fails the test when it is not installed.
fn age_binary() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).map(|d| d.join("age")).find(|p| p.is_file()).unwrap_or_else(|| {
        panic!("the stock `age` binary is not on PATH: install it (Debian/Ubuntu: `apt-get install age`) and rerun")
    })
}

/// The regular files in a tar archive, by path, with their content.
fn tar_files(tar: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut archive = tar::Archive::new(tar);
    let mut out = Vec::new();
    for entry in archive.entries().expect("a tar archive") {
        let mut entry = entry.expect("a tar entry");
        let path = entry.path().expect("entry path").to_string_lossy().into_owned();
        assert!(!path.starts_with('/') && !path.split('/').any(|c| c == ".."), "unsafe tar path {path:?}");
        if entry.header().entry_type().is_file() {
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            out.push((path.trim_start_matches("./").to_owned(), data));
        }
    }
    out
}

fn decrypt_with_stock_age(identity: &Path, blob: &Path, out: &Path) {
    let result =
        Command::new(age_binary()).arg("-d").arg("-i").arg(identity).arg("-o").arg(out).arg(blob).output().unwrap();
    assert!(
        result.status.success(),
        "stock age could not decrypt the drop:\n{}",
        String::from_utf8_lossy(&result.stderr)
    );
}

#[test]
fn stock_age_decrypts_a_drop_with_the_exported_identity() {
    let age = age_binary();
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    let islington = Party::new(&hub, "islington");
    let westminster = Party::new(&hub, "westminster");
    Coordinator::new().rekey(&camden, &[&islington, &westminster], &["--classic"]);
    let content = b"upn,name\nA1,\xc3\x89lodie\n".to_vec();
    let file = camden.file("eligibility.csv", &content);
    let id = camden.send("islington", &[&file]);
    let blob = islington.work().join("drop.age");
    write_file(&blob, hub.ciphertext(&id).expect("the hub holds the ciphertext"));
    assert!(read_bytes(&blob).starts_with(b"age-encryption.org/v1\n"), "the stored blob is not an age file");

    let identity = islington.ok(["key", "export-age"]);
    assert!(
        identity.lines().any(|l| l.starts_with("AGE-SECRET-KEY-1")),
        "`key export-age` printed no AGE-SECRET-KEY-1 line"
    );
    let id_file = islington.work().join("identity.txt");
    write_file(&id_file, &identity);
    chmod(&id_file, 0o600);

    let tar_path = islington.work().join("out.tar");
    decrypt_with_stock_age(&id_file, &blob, &tar_path);
    let files = tar_files(&read_bytes(&tar_path));
    assert_eq!(
        files.len(),
        1,
        "expected one file in the archive, got {:?}",
        files.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    assert_eq!(files[0].0, "eligibility.csv");
    assert_eq!(files[0].1, content);

    // Another party's exported identity cannot decrypt it.
    let other = westminster.work().join("identity.txt");
    write_file(&other, westminster.ok(["key", "export-age"]));
    chmod(&other, 0o600);
    let result = Command::new(age).arg("-d").arg("-i").arg(&other).arg(&blob).output().unwrap();
    assert!(!result.status.success(), "westminster's identity decrypted a drop for islington");
}

#[test]
fn stock_age_decrypts_a_folder_drop_for_each_recipient() {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    camden.file("bundle/a.csv", b"a\n");
    camden.file("bundle/sub/b c.txt", "b — ✓\n".as_bytes());
    let (islington, hackney) = (Party::new(&hub, "islington"), Party::new(&hub, "hackney"));
    Coordinator::new().rekey(&camden, &[&islington, &hackney], &["--classic"]);
    let id = camden.send("islington,hackney", &[&camden.work().join("bundle")]);
    let blob = camden.work().join("drop.age");
    write_file(&blob, hub.ciphertext(&id).expect("the hub holds the ciphertext"));
    for party in [islington, hackney] {
        let p = party.id.clone();
        let id_file = party.work().join("identity.txt");
        write_file(&id_file, party.ok(["key", "export-age"]));
        chmod(&id_file, 0o600);
        let tar_path = party.work().join("out.tar");
        decrypt_with_stock_age(&id_file, &blob, &tar_path);
        let mut files = tar_files(&read_bytes(&tar_path));
        files.sort();
        assert_eq!(
            files,
            vec![
                ("bundle/a.csv".to_owned(), b"a\n".to_vec()),
                ("bundle/sub/b c.txt".to_owned(), "b — ✓\n".as_bytes().to_vec())
            ],
            "{p}"
        );
    }
}

#[test]
fn key_show_prints_the_public_card() {
    let hub = Hub::start();
    let islington = Party::new(&hub, "islington");
    let card = sealdrop_e2e::json(&islington.ok(["key", "show"]));
    let want = islington.secret_key().public();
    assert_eq!(card["party"], "islington");
    assert_eq!(card["member"], want.member.as_str());
    assert_eq!(card["age_recipient"], want.age_recipient.as_str());
    assert_eq!(card["signing_key"], want.signing_key.to_string().as_str());
    let show = islington.ok(["key", "show"]);
    assert!(!show.contains("AGE-SECRET-KEY"), "`key show` printed the secret key");
}

#[test]
fn a_post_quantum_drop_holds_only_mlkem768x25519_stanzas_and_opens_with_the_exported_identity() {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    let islington = Party::new(&hub, "islington");
    let content = b"upn,name\nA1,Zo\xc3\xab\n".to_vec();
    let id = camden.send("islington", &[&camden.file("eligibility.csv", &content)]);
    let blob = hub.ciphertext(&id).expect("the hub holds the ciphertext");
    let header = sealdrop_proto::age_header::parse(&blob).unwrap().expect("a whole header");
    let tags: Vec<&str> = header.stanzas.iter().map(|s| s.tag.as_str()).filter(|t| !t.ends_with("-grease")).collect();
    assert_eq!(tags, ["mlkem768x25519"], "the example keys are post-quantum: nothing else may be in the header");

    // The exported identity is age 1.3's post-quantum form, which the age crate reads as Go age does.
    let identity = islington.ok(["key", "export-age"]);
    assert!(identity.lines().any(|l| l.starts_with("AGE-SECRET-KEY-PQ-1")), "{identity}");
    let ids = age::IdentityFile::from_buffer(identity.as_bytes()).unwrap().into_identities().unwrap();
    let mut tar = Vec::new();
    age::Decryptor::new(&blob[..])
        .unwrap()
        .decrypt(ids.iter().map(|i| i.as_ref() as &dyn age::Identity))
        .unwrap()
        .read_to_end(&mut tar)
        .unwrap();
    assert_eq!(tar_files(&tar), vec![("eligibility.csv".to_owned(), content)]);

    // Debian's age 1.1 cannot open it, and says so (the README tells users which tools open which drops).
    let dir = tempfile::tempdir().unwrap();
    let (id_file, blob_file) = (dir.path().join("id.txt"), dir.path().join("drop.age"));
    write_file(&id_file, &identity);
    chmod(&id_file, 0o600);
    write_file(&blob_file, &blob);
    let result = Command::new(age_binary()).arg("-d").arg("-i").arg(&id_file).arg(&blob_file).output().unwrap();
    assert!(!result.status.success(), "age 1.1 cannot read post-quantum identities");
}
