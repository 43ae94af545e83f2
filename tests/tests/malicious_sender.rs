//! A drop made by hand, outside the `sealdrop` client: encrypted with stock
//! `age` and sent over the raw API with a correctly signed manifest. A
//! well-formed one must arrive (interop from stock age into the client); one
//! whose archive tries to write outside the output folder, or holds anything
//! but plain files and folders (links, devices, FIFOs), or names no file
//! system can hold, must be refused with one `unsafe_archive` error line,
//! without writing anywhere and without acknowledging the drop.

use std::path::{Path, PathBuf};
use std::process::Command;

use sealdrop_e2e::{
    AGREEMENT, Hub, Party, assert_one_error_line, error_code, http, list_dir, member_key, read_bytes, tree,
};
use sealdrop_proto::api::{Commit, CreateDrop, CreatedDrop};
use sealdrop_proto::drop::{EncryptedTo, Manifest};
use sealdrop_proto::ids::key_name;
use sealdrop_proto::request::sign_request;

fn age_binary() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).map(|d| d.join("age")).find(|p| p.is_file()).unwrap_or_else(|| {
        panic!("the stock `age` binary is not on PATH: install it (Debian/Ubuntu: `apt-get install age`) and rerun")
    })
}

/// One raw tar entry.
enum Entry<'a> {
    File(&'a [u8], &'a [u8]),
    Dir(&'a [u8]),
    Symlink(&'a [u8], &'a [u8]),
    /// A hard link: the name, and the path it links to.
    Hardlink(&'a [u8], &'a [u8]),
    /// A character device (1, 3: `/dev/null`'s numbers).
    CharDevice(&'a [u8]),
    /// A block device (8, 0: a whole disk's numbers).
    BlockDevice(&'a [u8]),
    Fifo(&'a [u8]),
    /// A file whose name is longer than a tar header holds: written as a
    /// GNU long-name record (`././@LongLink`) before its header.
    LongNamedFile(&'a [u8], &'a [u8]),
}

/// The GNU long-name record that gives the next entry the name `name`.
fn gnu_long_name(b: &mut tar::Builder<Vec<u8>>, name: &[u8]) {
    let mut h = tar::Header::new_gnu();
    h.as_gnu_mut().unwrap().name[..13].copy_from_slice(b"././@LongLink");
    h.set_entry_type(tar::EntryType::GNULongName);
    let mut data = name.to_vec();
    data.push(0);
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_cksum();
    b.append(&h, data.as_slice()).unwrap();
}

/// A tar archive written header by header, so that names the `tar` crate
/// would refuse (`..`, absolute paths) can be written.
fn raw_tar(entries: &[Entry<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_ustar();
        let (name, data, kind, link): (&[u8], &[u8], _, &[u8]) = match e {
            Entry::File(n, d) => (n, d, tar::EntryType::Regular, b""),
            Entry::Dir(n) => (n, b"", tar::EntryType::Directory, b""),
            Entry::Symlink(n, target) => (n, b"", tar::EntryType::Symlink, target),
            Entry::Hardlink(n, target) => (n, b"", tar::EntryType::Link, target),
            Entry::CharDevice(n) => (n, b"", tar::EntryType::Char, b""),
            Entry::BlockDevice(n) => (n, b"", tar::EntryType::Block, b""),
            Entry::Fifo(n) => (n, b"", tar::EntryType::Fifo, b""),
            Entry::LongNamedFile(n, d) => {
                gnu_long_name(&mut b, n);
                h = tar::Header::new_gnu();
                (&n[..100], d, tar::EntryType::Regular, b"")
            }
        };
        if let Entry::CharDevice(_) = e {
            h.set_device_major(1).unwrap();
            h.set_device_minor(3).unwrap();
        }
        if let Entry::BlockDevice(_) = e {
            h.set_device_major(8).unwrap();
            h.set_device_minor(0).unwrap();
        }
        if let Some(u) = h.as_ustar_mut() {
            u.name[..name.len()].copy_from_slice(name);
            u.linkname[..link.len()].copy_from_slice(link);
        } else {
            h.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name);
        }
        h.set_entry_type(kind);
        h.set_size(data.len() as u64);
        h.set_mode(if matches!(kind, tar::EntryType::Regular) { 0o644 } else { 0o755 });
        h.set_mtime(1_700_000_000);
        h.set_cksum();
        b.append(&h, data).unwrap();
    }
    b.into_inner().unwrap()
}

/// Sends `plaintext` from `sender` to `recipient` without the client: create
/// the drop, encrypt with stock age to the recipient's key, upload, and commit
/// with a manifest the sender signs. Returns the drop id.
fn send_by_hand(hub: &Hub, sender: &str, recipient: &str, plaintext: &[u8]) -> String {
    let (id, reply) = send_by_hand_with(hub, sender, recipient, plaintext, |_| {});
    assert_eq!(reply.status, 200, "commit: {reply:?}");
    id
}

/// Like [`send_by_hand`], but lets `edit` change the manifest before it is
/// signed, and returns the hub's reply to the commit unchecked.
fn send_by_hand_with(
    hub: &Hub,
    sender: &str,
    recipient: &str,
    plaintext: &[u8],
    edit: impl FnOnce(&mut Manifest),
) -> (String, http::Reply) {
    let key = member_key(sender);
    let card = member_key(recipient).public();
    let base = &hub.url;

    let create = CreateDrop {
        recipients: vec![card.party.clone()],
        agreement: AGREEMENT.into(),
        expires: sealdrop_proto::Timestamp::from_second(http::now() + 86400).unwrap(),
        idempotency_key: None,
    };
    let body = serde_json::to_vec(&create).unwrap();
    let reply = http::signed_at(base, &key.signing, "POST", "/v1/drops", http::now(), &body);
    assert_eq!(reply.status, 200, "create: {reply:?}");
    let created: CreatedDrop = serde_json::from_str(&reply.body).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain.tar");
    let cipher = dir.path().join("cipher.age");
    std::fs::write(&plain, plaintext).unwrap();
    let out = Command::new(age_binary())
        .arg("-r")
        .arg(&card.age_recipient)
        .arg("-o")
        .arg(&cipher)
        .arg(&plain)
        .output()
        .unwrap();
    assert!(out.status.success(), "age -r failed: {}", String::from_utf8_lossy(&out.stderr));
    let ciphertext = read_bytes(&cipher);

    let path = format!("/v1/drops/{}/content", created.id);
    let auth = sign_request(&key.signing, "PUT", &path, http::now(), None);
    let mut req = http::client().put(format!("{base}{path}")).body(ciphertext.clone());
    for (name, value) in auth.headers() {
        req = req.header(name, value);
    }
    let reply = http::Reply::from(req.send());
    assert_eq!(reply.status, 200, "upload: {reply:?}");

    let mut manifest = sealdrop_e2e::manifest_for(sender, recipient, &created, &ciphertext);
    edit(&mut manifest);
    let commit = Commit { manifest: sealdrop_proto::note::sign_doc(&manifest, &key.signing), known_size: None };
    let body = serde_json::to_vec(&commit).unwrap();
    let reply =
        http::signed_at(base, &key.signing, "POST", &format!("/v1/drops/{}/commit", created.id), http::now(), &body);
    (created.id.to_string(), reply)
}

#[test]
fn a_drop_encrypted_by_stock_age_is_fetched_by_the_client() {
    let hub = Hub::start();
    let islington = Party::new(&hub, "islington");
    let camden = Party::new(&hub, "camden");
    let tar = raw_tar(&[
        Entry::File(b"hand made.csv", b"made by hand\n"),
        Entry::Dir(b"sub/"),
        Entry::File(b"sub/inner.txt", b"inner\n"),
    ]);
    let id = send_by_hand(&hub, "camden", "islington", &tar);
    assert!(islington.inbox_ids().contains(&id));
    let out = islington.work().join("in");
    islington.fetch(&id, &out);
    let got = tree(&out);
    assert_eq!(got.keys().map(String::as_str).collect::<Vec<_>>(), ["hand made.csv", "sub/", "sub/inner.txt"]);
    assert_eq!(got["hand made.csv"], b"made by hand\n");
    assert_eq!(got["sub/inner.txt"], b"inner\n");
    assert_eq!(camden.status_of(&id)["state"], "delivered");
}

/// Sends `tar` by hand and checks islington's fetch is refused and writes
/// nothing: neither into its output folder nor into `outside` next to it.
fn escape_is_refused(make_tar: impl FnOnce(&Path) -> Vec<u8>) {
    let hub = Hub::start();
    let islington = Party::new(&hub, "islington");
    let landing = islington.work().join("landing");
    let out = landing.join("out");
    let outside = landing.join("outside");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    let id = send_by_hand(&hub, "camden", "islington", &make_tar(&outside));

    let (exit, stderr) = islington.fail(["fetch".as_ref(), id.as_str().as_ref(), "-o".as_ref(), out.as_os_str()]);
    assert_one_error_line(&stderr);
    assert_eq!(error_code(&stderr).as_deref(), Some("unsafe_archive"), "{stderr}");
    assert_eq!(exit, 4, "a refused drop is a verification failure (exit 4): {stderr}");
    assert!(list_dir(&outside).is_empty(), "the drop wrote outside the output folder: {:?}", list_dir(&outside));
    assert_eq!(list_dir(&landing), ["out", "outside"], "the drop wrote beside the output folder");
    assert!(tree(&out).is_empty(), "a refused drop left files behind: {:?}", tree(&out).keys());
    assert!(islington.inbox_ids().contains(&id), "a refused drop was acknowledged");
}

#[test]
fn a_parent_directory_path_in_the_archive_is_refused() {
    escape_is_refused(|_| {
        raw_tar(&[Entry::File(b"ok.txt", b"fine\n"), Entry::File(b"../outside/escaped.txt", b"x\n")])
    });
}

#[test]
fn an_absolute_path_in_the_archive_is_refused() {
    escape_is_refused(|outside| {
        let target = outside.join("absolute.txt");
        let name = target.to_str().unwrap().as_bytes().to_vec();
        raw_tar(&[Entry::File(&name, b"x\n")])
    });
}

#[test]
fn a_symlink_in_the_archive_is_refused() {
    escape_is_refused(|outside| {
        let target = outside.to_str().unwrap().as_bytes().to_vec();
        raw_tar(&[Entry::Symlink(b"link", &target), Entry::File(b"link/through-symlink.txt", b"x\n")])
    });
}

/// Like [`escape_is_refused`], for an archive that names `victim`, a file
/// outside the output folder (a link to it, then data for the link): the
/// file must come through unchanged.
fn link_to_a_file_outside_is_refused(make_tar: impl FnOnce(&[u8]) -> Vec<u8>) {
    let elsewhere = tempfile::tempdir().unwrap();
    let victim = elsewhere.path().join("victim.txt");
    std::fs::write(&victim, b"precious\n").unwrap();
    let target = victim.to_str().unwrap().as_bytes().to_vec();
    escape_is_refused(|_| make_tar(&target));
    assert_eq!(read_bytes(&victim), b"precious\n", "the drop wrote through a link");
    assert_eq!(list_dir(elsewhere.path()), ["victim.txt"]);
}

#[test]
fn a_hard_link_in_the_archive_is_refused() {
    link_to_a_file_outside_is_refused(|target| {
        raw_tar(&[Entry::Hardlink(b"link.txt", target), Entry::File(b"link.txt", b"overwritten\n")])
    });
}

#[test]
fn a_hard_link_inside_the_archive_is_refused() {
    // Even to a file of the same archive: a link is never written.
    escape_is_refused(|_| raw_tar(&[Entry::File(b"a.txt", b"a\n"), Entry::Hardlink(b"b.txt", b"a.txt")]));
}

#[test]
fn a_character_device_in_the_archive_is_refused() {
    escape_is_refused(|_| raw_tar(&[Entry::File(b"ok.txt", b"fine\n"), Entry::CharDevice(b"null")]));
}

#[test]
fn a_block_device_in_the_archive_is_refused() {
    escape_is_refused(|_| raw_tar(&[Entry::BlockDevice(b"disk")]));
}

#[test]
fn a_fifo_in_the_archive_is_refused() {
    escape_is_refused(|_| raw_tar(&[Entry::Dir(b"sub/"), Entry::Fifo(b"sub/pipe")]));
}

#[test]
fn a_name_longer_than_a_file_system_allows_is_refused() {
    // One name of 300 bytes: more than any Linux file system holds (255).
    let name = format!("{}.csv", "n".repeat(296));
    escape_is_refused(|_| raw_tar(&[Entry::LongNamedFile(name.as_bytes(), b"x\n")]));
}

#[test]
fn a_path_longer_than_a_file_system_allows_is_refused() {
    // 2,100 folders deep, 4,205 bytes: more than a path may be (4,096).
    let name = format!("{}f.csv", "d/".repeat(2_100));
    escape_is_refused(|_| raw_tar(&[Entry::LongNamedFile(name.as_bytes(), b"x\n")]));
}

#[test]
fn a_long_name_climbing_out_is_refused() {
    // The long-name record carries `..` past the 100 bytes a header shows.
    let name = format!("{}/../../../outside/escaped.txt", "a".repeat(120));
    escape_is_refused(|_| raw_tar(&[Entry::LongNamedFile(name.as_bytes(), b"x\n")]));
}

#[test]
fn a_name_twice_in_the_archive_is_refused() {
    // The second copy must not silently replace the first.
    escape_is_refused(|_| raw_tar(&[Entry::File(b"a.txt", b"first\n"), Entry::File(b"a.txt", b"second\n")]));
}

#[test]
fn the_hub_refuses_a_manifest_that_misstates_the_ciphertext() {
    let hub = Hub::start();
    let islington = Party::new(&hub, "islington");
    let tar = raw_tar(&[Entry::File(b"a.txt", b"a\n")]);
    let (id, reply) = send_by_hand_with(&hub, "camden", "islington", &tar, |m| {
        m.ciphertext_sha256 = "00".repeat(32);
    });
    reply.assert_error(422, "hash_mismatch");
    assert!(!islington.inbox_ids().contains(&id), "an uncommitted drop is visible to its recipient");
    assert!(!hub.has_ciphertext(&id), "an uncommitted upload is stored as a committed blob");
}

#[test]
fn the_hub_refuses_a_manifest_encrypting_to_a_non_recipient() {
    let hub = Hub::start();
    let islington = Party::new(&hub, "islington");
    let tar = raw_tar(&[Entry::File(b"a.txt", b"a\n")]);
    let westminster = member_key("westminster").public();
    let (id, reply) = send_by_hand_with(&hub, "camden", "islington", &tar, |m| {
        m.encrypted_to.push(EncryptedTo {
            key: key_name(&westminster.party, &westminster.member),
            age_recipient: westminster.age_recipient.clone(),
        });
    });
    reply.assert_error(422, "bad_manifest");
    assert!(!islington.inbox_ids().contains(&id));
}
