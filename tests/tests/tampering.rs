//! Ciphertext altered on the hub is refused: nothing is written, nothing acknowledged.

use sealdrop_e2e::{Hub, Party, list_dir, pseudo_random_bytes, read_bytes, recipient_status, tree};

/// Sends a file of several age chunks (64 KiB each) from camden to islington,
/// lets `tamper` alter the stored ciphertext, then checks the fetch is refused
/// cleanly and the drop can still be fetched once the ciphertext is restored.
fn fetch_of_tampered_drop_is_refused(tamper: impl FnOnce(&mut Vec<u8>)) {
    fetch_of_tampered_drop_of_size_is_refused(300_000, tamper);
}

/// As [`fetch_of_tampered_drop_is_refused`], for a file of `size` bytes (a
/// ciphertext of 64 KiB or less is kept in the hub's database, a larger one
/// in a file: both are checked the same way).
fn fetch_of_tampered_drop_of_size_is_refused(size: usize, tamper: impl FnOnce(&mut Vec<u8>)) {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    let islington = Party::new(&hub, "islington");
    let content = pseudo_random_bytes(size, 42);
    let file = camden.file("outgoing/records.bin", &content);
    let id = camden.send("islington", &[&file]);

    let original = hub.ciphertext(&id).expect("the hub holds the ciphertext");
    let mut altered = original.clone();
    tamper(&mut altered);
    assert_ne!(altered, original, "the test did not alter the ciphertext");
    hub.set_ciphertext(&id, &altered);

    let landing = islington.work().join("landing");
    let out = landing.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let stderr =
        islington.fail_with(["fetch".as_ref(), id.as_str().as_ref(), "-o".as_ref(), out.as_os_str()], 4, "tampered");
    assert!(stderr.lines().count() <= 3, "expected a one-line error, got:\n{stderr}");

    let left = tree(&landing);
    assert_eq!(left.keys().collect::<Vec<_>>(), ["out/"], "a refused fetch left files behind: {:?}", left.keys());
    assert!(islington.inbox_ids().contains(&id), "the tampered drop left the inbox (was it acknowledged?)");
    let status = camden.status_of(&id);
    assert_eq!(status["state"], "committed", "{status}");
    let r = recipient_status(&status, "islington");
    assert!(r["acknowledged"].is_null(), "a tampered drop was acknowledged: {status}");
    assert!(r["acknowledged_by"].is_null(), "{status}");
    assert_eq!(hub.ciphertext(&id), Some(altered), "the hub deleted the ciphertext of an unacknowledged drop");

    // With the ciphertext restored the same drop is fetched and acknowledged.
    hub.set_ciphertext(&id, &original);
    islington.fetch(&id, &out);
    assert_eq!(list_dir(&out), ["records.bin"]);
    assert_eq!(read_bytes(&out.join("records.bin")), content);
    assert!(recipient_status(&camden.status_of(&id), "islington")["acknowledged"].is_string());
}

#[test]
fn a_flipped_byte_in_the_payload_is_caught() {
    fetch_of_tampered_drop_is_refused(|data| {
        let middle = data.len() / 2;
        data[middle] ^= 0xff;
    });
}

#[test]
fn a_flipped_byte_in_a_small_drop_kept_in_the_database_is_caught() {
    fetch_of_tampered_drop_of_size_is_refused(2_000, |data| {
        assert!(data.len() < 64 * 1024, "a small drop");
        let middle = data.len() / 2;
        data[middle] ^= 0xff;
    });
}

#[test]
fn a_flipped_byte_in_the_age_header_is_caught() {
    fetch_of_tampered_drop_is_refused(|data| {
        assert!(data.starts_with(b"age-encryption.org/v1\n"), "the blob is not an age file");
        // Change one base64 character of the first recipient stanza's
        // ephemeral share into another valid one: the header still parses.
        let stanza = data.windows(3).position(|w| w == b"-> ").expect("an age recipient stanza");
        let line_end = stanza + data[stanza..].iter().position(|&b| b == b'\n').unwrap();
        let at = line_end - 5;
        data[at] = if data[at] == b'A' { b'B' } else { b'A' };
    });
}

#[test]
fn a_flipped_byte_in_the_header_mac_is_caught() {
    fetch_of_tampered_drop_is_refused(|data| {
        let mac = data.windows(4).position(|w| w == b"\n---").expect("the age header's MAC line") + 5;
        data[mac + 3] ^= 0xff;
    });
}

#[test]
fn a_truncated_ciphertext_is_caught() {
    fetch_of_tampered_drop_is_refused(|data| data.truncate(data.len() - 1000));
}
