//! Properties several harnesses assert: signatures that verify are the
//! signer's own, a signed note changed by one byte no longer verifies, and
//! an extracted archive stays inside its folder.

use std::io::Read;
use std::path::Path;

use signed_note::{Note, Signature};

use sealdrop::archive::{self, Extracted};
use sealdrop_proto::keys::{NoteSigningKey, cosignature_message};

/// A signed note's text (ending in its newline) and its signature lines, or
/// `None` when `signed_note` refuses the note.
pub fn note_parts(note: &str) -> Option<(&str, Vec<Signature>)> {
    let parsed = Note::from_bytes(note.as_bytes()).ok()?;
    let text_len = parsed.text().len();
    let sigs = note.as_bytes()[text_len + 1..]
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(Signature::from_bytes)
        .collect::<Result<Vec<_>, _>>()
        .ok()?;
    Some((&note[..text_len], sigs))
}

/// Asserts that the signature on `note` under `key`'s name and key id (as
/// an Ed25519 signer or, for a witness, a cosigner) is exactly the one `key`
/// makes over the note's text. Ed25519 signs deterministically, so any other
/// signature that verified would be a forgery or a malleated signature.
///
/// Only the first line per name and key id counts: signed-note verifiers
/// (Go's `note.Open` and the `signed_note` crate) ignore later lines by the
/// same key without checking them, so a genuine first line may be followed
/// by garbage (found by the `checkpoint` target; see docs/fuzzing.md).
pub fn assert_genuine(note: &str, key: &NoteSigningKey) {
    let (text, sigs) = note_parts(note).expect("a note that verified is well-formed");
    let plain_id = key.verifier().id();
    let cosigner_id = key.cosigner_verifier().id();
    let mut seen = Vec::new();
    for sig in sigs.iter().filter(|s| s.name() == key.name()) {
        if seen.contains(&sig.id()) {
            continue;
        }
        seen.push(sig.id());
        if sig.id() == plain_id {
            let own = key.sign_bytes(text.as_bytes()).to_bytes();
            assert_eq!(sig.signature(), own, "a signature by {} that the key never made verified", key.name());
        } else if sig.id() == cosigner_id {
            let (time, _) = sig.signature().split_first_chunk::<8>().expect("a cosignature carries its time");
            let time = u64::from_be_bytes(*time);
            let mut own = time.to_be_bytes().to_vec();
            own.extend_from_slice(&key.sign_bytes(&cosignature_message(time, text.as_bytes())).to_bytes());
            assert_eq!(sig.signature(), own, "a cosignature by {} that the witness never made verified", key.name());
        }
    }
}

/// Asserts that `note` with one byte of its signed text changed (chosen by
/// `pick`) no longer passes `verifies`.
pub fn assert_tamper_refused(note: &str, pick: usize, verifies: impl Fn(&str) -> bool) {
    let Some((text, _)) = note_parts(note) else { return };
    let bytes = note.as_bytes();
    let len = text.len();
    // An ASCII byte other than a line break, so the result stays UTF-8.
    let Some(at) = (0..len).map(|k| (pick + k) % len).find(|&i| bytes[i].is_ascii() && bytes[i] != b'\n') else {
        return;
    };
    let mut changed = bytes.to_vec();
    changed[at] = if bytes[at] == b'a' { b'b' } else { b'a' };
    let changed = String::from_utf8(changed).expect("an ASCII byte replaced by another");
    assert!(!verifies(&changed), "the note still verifies with byte {at} of its text changed:\n{changed}");
}

/// Extracts `input` as a drop's archive (`sealdrop::archive::extract`) into
/// an empty folder `dest` inside a fresh temporary folder, and asserts that
/// nothing appeared beside `dest`, that `dest` holds only regular files and
/// folders (no links, devices or pipes), and, when extraction succeeded,
/// that it holds exactly what it reported. Returns whether extraction
/// succeeded.
pub fn extract_contained(input: impl Read) -> bool {
    let base = tempfile::tempdir().expect("a temporary folder");
    let dest = base.path().join("dest");
    std::fs::create_dir(&dest).expect("an empty destination");
    let result = archive::extract(input, &dest);
    let beside: Vec<String> = names(base.path());
    assert_eq!(beside, ["dest"], "extraction wrote outside its folder");
    let (mut files, mut bytes) = (0usize, 0u64);
    walk(&dest, &mut files, &mut bytes);
    match result {
        Ok(Extracted { files: f, bytes: b, top_level }) => {
            assert_eq!((files, bytes), (f, b), "extraction reported other files than it wrote");
            let mut listed = top_level.clone();
            listed.sort();
            listed.dedup();
            assert_eq!(listed.len(), top_level.len(), "a top-level name is reported twice");
            assert_eq!(names(&dest), listed, "the top-level names reported are not what was written");
            true
        }
        Err(_) => false,
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("readable")
        .map(|e| e.expect("readable").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn walk(dir: &Path, files: &mut usize, bytes: &mut u64) {
    for e in std::fs::read_dir(dir).expect("readable") {
        let path = e.expect("readable").path();
        let meta = std::fs::symlink_metadata(&path).expect("readable");
        let kind = meta.file_type();
        if kind.is_dir() {
            walk(&path, files, bytes);
        } else {
            assert!(kind.is_file(), "extraction made {} a link, device or pipe", path.display());
            *files += 1;
            *bytes += meta.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sealdrop_proto::keys::NoteSigningKey;

    fn signed(key: &NoteSigningKey) -> String {
        let mut n = Note::new(b"some text\nsecond line\n", &[]).expect("valid");
        n.add_sigs(&[key]).expect("valid");
        String::from_utf8(n.to_bytes()).expect("UTF-8")
    }

    #[test]
    fn genuine_signatures_pass() {
        let key = NoteSigningKey::generate("k").expect("valid");
        let note = signed(&key);
        assert_genuine(&note, &key);
        assert_tamper_refused(&note, 3, |n| n == note);
    }

    #[test]
    #[should_panic(expected = "never made")]
    fn another_signature_under_the_same_name_and_id_is_caught() {
        let key = NoteSigningKey::generate("k").expect("valid");
        // Swap in a signature over other text, keeping name and key id.
        let other = {
            let mut n = Note::new(b"other\n", &[]).expect("valid");
            n.add_sigs(&[&key]).expect("valid");
            String::from_utf8(n.to_bytes()).expect("UTF-8")
        };
        let forged = format!("some text\nsecond line\n\n{}", other.rsplit_once("\n\n").expect("a note").1);
        assert_genuine(&forged, &key);
    }

    #[test]
    #[should_panic(expected = "still verifies")]
    fn a_verifier_that_ignores_the_text_is_caught() {
        let key = NoteSigningKey::generate("k").expect("valid");
        assert_tamper_refused(&signed(&key), 0, |_| true);
    }

    #[test]
    fn a_safe_archive_extracts_inside_its_folder() {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(2);
        h.set_mode(0o644);
        b.append_data(&mut h, "folder/file.txt", &b"hi"[..]).expect("in memory");
        assert!(extract_contained(&b.into_inner().expect("in memory")[..]));
        assert!(!extract_contained(&b"not a tar"[..]));
    }
}
