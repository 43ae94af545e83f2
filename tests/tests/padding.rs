//! Padding inside the encryption: what the hub records of a drop's size is
//! its size class, not the size of the list; and a recipient refuses a drop
//! whose plaintext carries anything but zeros after the tar archive's end.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sealdrop_e2e::{
    AGREEMENT, Hub, Party, assert_one_error_line, error_code, http, member_key, read_bytes, tree, write_file,
};
use sealdrop_proto::api::{Commit, CreateDrop, CreatedDrop};
use sealdrop_proto::padding::MIN_PADDED;
use sealdrop_proto::request::sign_request;

fn age_binary() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).map(|d| d.join("age")).find(|p| p.is_file()).unwrap_or_else(|| {
        panic!("the stock `age` binary is not on PATH: install it (Debian/Ubuntu: `apt-get install age`) and rerun")
    })
}

/// The length of an age file's header (through the MAC line). The header
/// is not secret (the hub can parse it); the age library adds a "grease"
/// stanza of random length to each, so what a drop's size tells the hub is
/// its payload: the rest.
fn header_len(ciphertext: &[u8]) -> usize {
    let mac = ciphertext.windows(5).position(|w| w == b"\n--- ").expect("an age header");
    mac + 1 + ciphertext[mac + 1..].iter().position(|&b| b == b'\n').expect("the MAC line ends") + 1
}

/// The payload length of each drop in `ids`, from the hub's own records:
/// the size its database holds, less the header of the blob it stores
/// (whose length must be that size).
fn payloads_the_hub_sees(hub: &Hub, ids: &[String]) -> Vec<u64> {
    let stored = hub.stored_drops();
    ids.iter()
        .map(|id| {
            let size = stored[id].size.expect("a committed drop has a size");
            let blob = hub.ciphertext(id).expect("the hub holds the ciphertext");
            assert_eq!(blob.len() as u64, size, "drop {id}: the recorded size is not the blob's");
            size - header_len(&blob) as u64
        })
        .collect()
}

/// An age payload of one class: the padded plaintext in 64 KiB chunks, a
/// 16-byte nonce first and a 16-byte tag per chunk.
fn payload_of_class(class: u64) -> u64 {
    16 + class + class.div_ceil(64 * 1024) * 16
}

#[test]
fn the_hub_sees_one_size_for_every_list_of_1_to_120_rows() {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    let islington = Party::new(&hub, "islington");
    let mut lists = Vec::new();
    // Hammersmith and Fulham's schools, seed 2: the longest rows of the
    // sample generator (16.3 KB for 120 rows).
    for (rows, seed, school) in [(1, 1, "camden"), (2, 1, "camden"), (17, 3, "camden"), (60, 1, "hackney")]
        .into_iter()
        .chain([(119, 2, "hammersmith-and-fulham"), (120, 2, "hammersmith-and-fulham"), (120, 1, "camden")])
    {
        let file = camden.work().join(format!("fsm-{school}-{rows}-{seed}.csv"));
        let (rows, seed) = (rows.to_string(), seed.to_string());
        camden.ok([
            "sample",
            "fsm",
            "--rows",
            &rows,
            "--seed",
            &seed,
            "--school-la",
            school,
            "-o",
            file.to_str().unwrap(),
        ]);
        lists.push(file);
    }
    let sizes: Vec<u64> = lists.iter().map(|f| std::fs::metadata(f).unwrap().len()).collect();
    assert!(sizes.iter().min() < Some(&300) && sizes.iter().max() > Some(&16_000), "list sizes {sizes:?}");
    let ids: Vec<String> = lists.iter().map(|f| camden.send("islington", &[f])).collect();

    let payloads = payloads_the_hub_sees(&hub, &ids);
    assert!(
        payloads.iter().all(|&p| p == payload_of_class(MIN_PADDED)),
        "lists of {sizes:?} bytes look like {payloads:?} bytes to the hub"
    );
    // The recipient gets each list byte for byte: the padding stays inside.
    let out = islington.work().join("in");
    islington.ok(["fetch", "--all", "-o", out.to_str().unwrap()]);
    let got = tree(&out);
    for f in &lists {
        let name = f.file_name().unwrap().to_str().unwrap();
        assert_eq!(got[name], read_bytes(f), "{name}");
    }

    // A split's parts too: 120 rows over 8 boroughs, parts of different
    // row counts, all one size to the hub.
    let list = camden.work().join("fsm-split.csv");
    let list = list.to_str().unwrap();
    camden.ok(["sample", "fsm", "--rows", "120", "--home-las", "8", "--local-share", "0", "-o", list]);
    let summary = camden.ok(["send", "--split-by", "home_la", "--yes", list]);
    let parts: Vec<String> = hub.stored_drops().into_keys().filter(|id| !ids.contains(id)).collect();
    assert_eq!(parts.len(), 8, "{summary}");
    // Each part's line in the summary: "  Name  N rows  SIZE  file.csv".
    let counts: std::collections::BTreeSet<u64> = summary
        .lines()
        .filter(|l| l.ends_with(".csv"))
        .filter_map(|l| l.split(" rows").next()?.split_whitespace().last()?.parse().ok())
        .collect();
    assert!(counts.len() > 2, "the parts should differ in rows: {counts:?}\n{summary}");
    let payloads = payloads_the_hub_sees(&hub, &parts);
    assert!(payloads.iter().all(|&p| p == payload_of_class(MIN_PADDED)), "parts look like {payloads:?}\n{summary}");
}

#[test]
fn a_large_drop_is_padded_within_its_class_overhead() {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    // Just over 1 MiB of file: the archive passes a power of two.
    let data = sealdrop_e2e::pseudo_random_bytes((1 << 20) + 100, 5);
    let id = camden.send("islington", &[&camden.file("big.bin", &data)]);
    let payload = payloads_the_hub_sees(&hub, &[id])[0];
    let archive = 512 + (data.len() as u64).div_ceil(512) * 512 + 1024;
    let class = sealdrop_proto::padding::padded_len(archive);
    assert_eq!(payload, payload_of_class(class));
    // E = 20: classes 32 KiB apart, under 3.2 % over the archive.
    assert!(class > archive && (class - archive) * 32 < archive, "{archive} -> {class}");
}

/// A tar archive of one file, ending with the two zero blocks.
fn one_file_tar(name: &str, content: &[u8]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(content.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(1_700_000_000);
    b.append_data(&mut h, name, content).unwrap();
    b.into_inner().unwrap()
}

/// Sends `plaintext` from camden to islington without the client: age
/// encrypts (`sealdrop_e2e::age_encrypt`), the raw API uploads, camden's key
/// signs the manifest.
fn send_by_hand(hub: &Hub, plaintext: &[u8]) -> String {
    let key = member_key("camden");
    let card = member_key("islington").public();
    let create = CreateDrop {
        recipients: vec![card.party.clone()],
        agreement: AGREEMENT.into(),
        expires: sealdrop_proto::Timestamp::from_second(http::now() + 86400).unwrap(),
        idempotency_key: None,
    };
    let reply = http::signed_at(
        &hub.url,
        &key.signing,
        "POST",
        "/v1/drops",
        http::now(),
        &serde_json::to_vec(&create).unwrap(),
    );
    assert_eq!(reply.status, 200, "create: {reply:?}");
    let created: CreatedDrop = serde_json::from_str(&reply.body).unwrap();

    let ciphertext = sealdrop_e2e::age_encrypt(&[&card.age_recipient], plaintext);

    let path = format!("/v1/drops/{}/content", created.id);
    let auth = sign_request(&key.signing, "PUT", &path, http::now(), None);
    let mut req = http::client().put(format!("{}{path}", hub.url)).body(ciphertext.clone());
    for (name, value) in auth.headers() {
        req = req.header(name, value);
    }
    assert_eq!(http::Reply::from(req.send()).status, 200, "upload");
    let manifest = sealdrop_e2e::manifest_for("camden", "islington", &created, &ciphertext);
    let commit = Commit { manifest: sealdrop_proto::note::sign_doc(&manifest, &key.signing), known_size: None };
    let commit_path = format!("/v1/drops/{}/commit", created.id);
    let reply = http::signed_at(
        &hub.url,
        &key.signing,
        "POST",
        &commit_path,
        http::now(),
        &serde_json::to_vec(&commit).unwrap(),
    );
    assert_eq!(reply.status, 200, "commit: {reply:?}");
    created.id.to_string()
}

/// Islington's fetch of `id` is refused as `unsafe_archive` (exit 4), with
/// one error line, nothing written and nothing acknowledged.
fn fetch_is_refused(islington: &Party, id: &str) -> String {
    let out = islington.work().join(format!("out-{id}"));
    std::fs::create_dir_all(&out).unwrap();
    let (exit, stderr) = islington.fail(["fetch", id, "-o", out.to_str().unwrap()]);
    assert_one_error_line(&stderr);
    assert_eq!(error_code(&stderr).as_deref(), Some("unsafe_archive"), "{stderr}");
    assert_eq!(exit, 4, "a refused drop is a verification failure: {stderr}");
    assert!(tree(&out).is_empty(), "a refused drop left {:?}", tree(&out).keys());
    assert!(islington.inbox_ids().contains(&id.to_owned()), "a refused drop was acknowledged");
    stderr
}

#[test]
fn a_sender_cannot_hide_bytes_after_the_archive_end() {
    let hub = Hub::start();
    let islington = Party::new(&hub, "islington");
    let tar = one_file_tar("list.csv", b"pupil_ref,home_la\nSYN1,Islington\n");

    // A byte in the padding, deep inside it: stock tar would never show it.
    let mut hidden = tar.clone();
    hidden.resize(MIN_PADDED as usize, 0);
    hidden[20_000] = b'!';
    let stderr = fetch_is_refused(&islington, &send_by_hand(&hub, &hidden));
    assert!(stderr.contains("after its archive's end") && stderr.contains("zeros"), "{stderr}");

    // An entry after a lone zero block: sealdrop's reader stops at the
    // block, GNU tar warns and stops too, but `tar -i` (which reads through
    // the padding) extracts it. The tools must not disagree on what a drop
    // holds: refused.
    let mut second = tar[..tar.len() - 1024].to_vec();
    second.extend_from_slice(&[0u8; 512]);
    second.extend_from_slice(&one_file_tar("second.csv", b"only GNU tar sees this\n"));
    let gnu = tempfile::tempdir().unwrap();
    let smuggled = gnu.path().join("smuggled.tar");
    write_file(&smuggled, &second);
    let listed = Command::new("tar").arg("-tif").arg(&smuggled).output().unwrap();
    assert!(String::from_utf8_lossy(&listed.stdout).contains("second.csv"), "{listed:?}");
    fetch_is_refused(&islington, &send_by_hand(&hub, &second));

    // Zeros after the end, by hand and not to any class (stock tar's own
    // 10 KiB records, or 100 KiB of them), are fine.
    for padded_to in [10_240, 100 * 1024] {
        let mut zeros = tar.clone();
        zeros.resize(padded_to, 0);
        let id = send_by_hand(&hub, &zeros);
        let out = islington.work().join(format!("ok-{padded_to}"));
        islington.fetch(&id, &out);
        assert_eq!(tree(&out)["list.csv"], b"pupil_ref,home_la\nSYN1,Islington\n");
    }
}

/// Runs `age -d -i IDENTITY BLOB | tar ARGS -C OUT` and returns both
/// processes' outcomes.
fn age_into_tar(identity: &Path, blob: &Path, tar_args: &[&str], out: &Path) -> (Output, Output) {
    std::fs::create_dir_all(out).unwrap();
    let mut age = Command::new(age_binary())
        .arg("-d")
        .arg("-i")
        .arg(identity)
        .arg(blob)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let tar = Command::new("tar").args(tar_args).arg("-C").arg(out).stdin(age.stdout.take().unwrap()).output().unwrap();
    (age.wait_with_output().unwrap(), tar)
}

#[test]
fn stock_age_and_gnu_tar_open_padded_drops_from_a_pipe() {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    let islington = Party::new(&hub, "islington");
    // Debian's age (1.1) reads classic identities only.
    sealdrop_e2e::Coordinator::new().rekey(&camden, &[&islington], &["--classic"]);
    let identity = islington.work().join("identity.txt");
    write_file(&identity, islington.ok(["key", "export-age"]));
    sealdrop_e2e::chmod(&identity, 0o600);
    // A small list (32 KiB class: padding under the 64 KiB a pipe holds)
    // and 4 MiB of file (its class pads 126 KiB: more than a pipe holds).
    let small = camden.file("small/list.csv", b"pupil_ref,home_la\nSYN1,Islington\n");
    let large = camden.file("large/data.bin", sealdrop_e2e::pseudo_random_bytes(4 << 20, 9));
    for file in [small, large] {
        let id = camden.send("islington", &[&file]);
        let blob = islington.work().join(format!("{id}.age"));
        write_file(&blob, hub.ciphertext(&id).unwrap());
        let name = file.file_name().unwrap().to_str().unwrap();

        // As the README says: `age -d | tar -xi` reads the padding too, so
        // both exit 0 and say nothing.
        let out = islington.work().join(format!("xi-{id}"));
        let (age, tar) = age_into_tar(&identity, &blob, &["-xi"], &out);
        assert!(age.status.success() && age.stderr.is_empty(), "age: {age:?}");
        assert!(tar.status.success() && tar.stderr.is_empty(), "tar: {tar:?}");
        assert_eq!(tree(&out)[name], read_bytes(&file));

        // Plain `tar -x` stops at the end marker: it exits 0 without a
        // word, the files are whole; age may be stopped by SIGPIPE when
        // more padding is left than the pipe holds (a shell with
        // `pipefail` then reports 141).
        let out = islington.work().join(format!("x-{id}"));
        let (age, tar) = age_into_tar(&identity, &blob, &["-x"], &out);
        assert!(tar.status.success() && tar.stderr.is_empty(), "tar: {tar:?}");
        use std::os::unix::process::ExitStatusExt as _;
        assert!(age.status.success() || age.status.signal() == Some(13), "age: {age:?}");
        assert_eq!(tree(&out)[name], read_bytes(&file));

        // Decrypting to a file first: `tar -xf` exits 0 without a word.
        let plain = islington.work().join(format!("{id}.tar"));
        let age =
            Command::new(age_binary()).arg("-d").arg("-i").arg(&identity).arg("-o").arg(&plain).arg(&blob).status();
        assert!(age.unwrap().success());
        let out = islington.work().join(format!("xf-{id}"));
        std::fs::create_dir_all(&out).unwrap();
        let tar = Command::new("tar").arg("-xf").arg(&plain).arg("-C").arg(&out).output().unwrap();
        assert!(tar.status.success() && tar.stderr.is_empty(), "tar: {tar:?}");
        assert_eq!(tree(&out)[name], read_bytes(&file));
        let plaintext = read_bytes(&plain);
        assert_eq!(plaintext.len() as u64, sealdrop_proto::padding::padded_len(plaintext.len() as u64));
    }
}
