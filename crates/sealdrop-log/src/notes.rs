//! Splitting signed notes (c2sp.org/signed-note) into text and signature
//! lines without verifying anything, accepting exactly what
//! `signed_note::Note::from_bytes` accepts. Crate-internal: the audit's hot
//! path parses every entry's note once and verifies signatures in batches.

use signed_note::Signature;

/// signed_note's limits.
const MAX_NOTE_SIZE: usize = 1_000_000;
const MAX_NOTE_SIGNATURES: usize = 100;

/// A note's text (ending in its newline) and its signatures.
pub(crate) struct SplitNote<'a> {
    pub text: &'a str,
    pub sigs: Vec<Signature>,
}

/// Splits a signed note, or `None` when it is malformed.
pub(crate) fn split(note: &str) -> Option<SplitNote<'_>> {
    if note.len() > MAX_NOTE_SIZE || note.bytes().any(|b| b < 0x20 && b != b'\n') {
        return None;
    }
    let (text, block) = note.rsplit_once("\n\n")?;
    let block = block.strip_suffix('\n')?;
    let mut sigs = Vec::new();
    for line in block.split('\n') {
        sigs.push(Signature::from_bytes(line.as_bytes()).ok()?);
        if sigs.len() > MAX_NOTE_SIGNATURES {
            return None;
        }
    }
    Some(SplitNote { text: &note[..text.len() + 1], sigs })
}

/// The text of a signed note, or the whole input when it has no signature
/// block (a bare checkpoint body).
pub(crate) fn text_or_body(note: &str) -> &str {
    match note.rsplit_once("\n\n") {
        Some((text, _)) => &note[..text.len() + 1],
        None => note,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sealdrop_proto::keys::NoteSigningKey;

    #[test]
    fn agrees_with_signed_note() {
        let key = NoteSigningKey::generate("k").unwrap();
        let mut n = signed_note::Note::new(b"hello\nworld\n", &[]).unwrap();
        n.add_sigs(&[&key]).unwrap();
        let text = String::from_utf8(n.to_bytes()).unwrap();
        let s = split(&text).unwrap();
        assert_eq!(s.text, "hello\nworld\n");
        assert_eq!(s.sigs.len(), 1);
        assert_eq!(s.sigs[0].name(), "k");
        for junk in ["", "a\n", "a\n\n", "a\n\nb\n", "a\n\n\u{2014} k AAAAAAA=", "a\tb\n\n\u{2014} k AAAAAAA=\n"] {
            assert!(split(junk).is_none(), "{junk:?}");
            assert!(signed_note::Note::from_bytes(junk.as_bytes()).is_err(), "{junk:?}");
        }
        assert_eq!(text_or_body("a\n1\nx\n"), "a\n1\nx\n");
        assert_eq!(text_or_body(&text), "hello\nworld\n");
    }
}
