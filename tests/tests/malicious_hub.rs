//! A malicious or compromised hub operator edits what the hub stores. The
//! recipient's client checks the sender's signed manifest itself, so altered
//! or swapped manifests are refused: nothing is written, nothing acknowledged.
//! A ciphertext of the hub's own making is caught by the hash check, which
//! decides before anything inside it is judged: the sender is never blamed.

use sealdrop_e2e::{Hub, Party, recipient_status, tree, write_file};

fn refused_fetch_leaves_nothing(hub: &Hub, sender: &Party, recipient: &Party, id: &str) {
    let landing = recipient.work().join("landing");
    std::fs::create_dir_all(&landing).unwrap();
    let stderr =
        recipient.fail_with(["fetch".as_ref(), id.as_ref(), "-o".as_ref(), landing.as_os_str()], 4, "bad_manifest");
    assert!(stderr.contains(id), "the error names the drop: {stderr}");
    assert!(tree(&landing).is_empty(), "a refused fetch wrote {:?}", tree(&landing).keys());
    assert!(recipient.inbox_ids().contains(&id.to_owned()), "the drop was acknowledged");
    let status = sender.status_of(id);
    assert!(recipient_status(&status, &recipient.id)["acknowledged"].is_null(), "{status}");
    assert!(hub.has_ciphertext(id));
}

#[test]
fn a_manifest_altered_on_the_hub_is_refused() {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    let islington = Party::new(&hub, "islington");
    let id = camden.send("islington", &[&camden.file("fsm.csv", "a,b\n1,2\n")]);

    // The operator moves the expiry in the stored manifest; the text no longer matches Camden's signature.
    let manifest = hub.query_text("SELECT manifest FROM drops WHERE id = ?1", &[&id]);
    let altered = manifest.replacen("\"expires\": \"", "\"expires\": \"2", 1);
    assert_ne!(altered, manifest);
    assert_eq!(hub.tamper_sql("UPDATE drops SET manifest = ?1 WHERE id = ?2", &[&altered, &id]), 1);
    refused_fetch_leaves_nothing(&hub, &camden, &islington, &id);
}

#[test]
fn another_drops_validly_signed_manifest_is_refused() {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    let islington = Party::new(&hub, "islington");
    let first = camden.send("islington", &[&camden.file("one.csv", "x\n1\n")]);
    let second = camden.send("islington", &[&camden.file("two.csv", "x\n2\n")]);

    // A genuine Camden signature, but over the other drop's manifest.
    let other = hub.query_text("SELECT manifest FROM drops WHERE id = ?1", &[&first]);
    assert_eq!(hub.tamper_sql("UPDATE drops SET manifest = ?1 WHERE id = ?2", &[&other, &second]), 1);
    refused_fetch_leaves_nothing(&hub, &camden, &islington, &second);
}

#[test]
fn a_key_file_that_is_not_a_member_key_is_refused() {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    write_file(&camden.key, "this is not a key\n");
    sealdrop_e2e::chmod(&camden.key, 0o600);
    let stderr = camden.fail_with(["inbox"], 3, "key_invalid");
    assert!(stderr.contains(camden.key.to_str().unwrap()), "the error names the file: {stderr}");
}

/// `plaintext` encrypted to `recipient` as another tool would.
fn age_encrypt(recipient: &str, plaintext: &[u8]) -> Vec<u8> {
    sealdrop_e2e::age_encrypt(&[recipient], plaintext)
}

#[test]
fn a_hub_that_swaps_in_its_own_ciphertext_is_caught_as_tampering_not_blamed_on_the_sender() {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    let islington = Party::new(&hub, "islington");
    let id = camden.send("islington", &[&camden.file("fsm.csv", "upn\nA1\n")]);

    // The operator knows islington's public key: it builds an archive with
    // a symbolic link (which the recipient refuses as unsafe), encrypts it
    // to islington, and serves it in place of camden's ciphertext.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    h.set_mode(0o777);
    b.append_link(&mut h, "fsm.csv", "/etc/passwd").unwrap();
    let swapped = age_encrypt(&sealdrop_e2e::member_key("islington").public().age_recipient, &b.into_inner().unwrap());
    hub.set_ciphertext(&id, &swapped);

    let landing = islington.work().join("landing");
    std::fs::create_dir_all(&landing).unwrap();
    let stderr =
        islington.fail_with(["fetch".as_ref(), id.as_ref(), "-o".as_ref(), landing.as_os_str()], 4, "tampered");
    assert!(stderr.contains("does not match its signed manifest"), "{stderr}");
    assert!(!stderr.contains("unsafe"), "the hub's ciphertext was blamed on the sender: {stderr}");
    assert!(tree(&landing).is_empty(), "a refused fetch wrote {:?}", tree(&landing).keys());
    assert!(islington.inbox_ids().contains(&id), "the drop was acknowledged");
    // Tampering is the hub's doing: the next fetch --all tries it again.
    let again = islington.run(["fetch".as_ref(), "--all".as_ref(), "-o".as_ref(), landing.as_os_str()]);
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(err.contains("error[tampered]") && !err.contains("skipped"), "{err}");
}
