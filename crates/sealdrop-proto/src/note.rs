//! Signed documents: a C2SP signed note whose text is a type line
//! (`sealdrop/manifest/v1`) followed by the document as JSON.
//!
//! The type line gives domain separation: a signature over a manifest can
//! never be read as a signature over a receipt, a directory, a request or a
//! checkpoint (a checkpoint's first line is the log's origin, which may not
//! start with `sealdrop/`). The signed bytes are kept verbatim, so no JSON
//! canonicalisation is needed: verifiers check the exact text they received.

use serde::Serialize;
use serde::de::DeserializeOwned;
use signed_note::{Note, Verifier};

use crate::keys::{NoteSigningKey, NoteVerifierKey};

/// A document type that travels as a signed note.
pub trait SignedDoc: Serialize + DeserializeOwned {
    /// The first line of the note's text, e.g. `sealdrop/manifest/v1`.
    const TYPE: &'static str;
    /// What people call it in error messages.
    const WHAT: &'static str;
}

/// Why a signed document was refused.
#[derive(Debug, thiserror::Error)]
pub enum DocError {
    #[error("the {what} is not a well-formed signed note")]
    Malformed { what: &'static str },
    #[error("expected a {what} (`{expected}`) but found `{found}`")]
    WrongType { what: &'static str, expected: &'static str, found: String },
    #[error("the {what}'s signature by {signer} does not verify: it was altered or forged")]
    BadSignature { what: &'static str, signer: String },
    #[error("the {what} is not signed by any key allowed to sign it (signed by: {signers})")]
    NoTrustedSignature { what: &'static str, signers: String },
    #[error("the {what}'s content is not valid: {reason}")]
    BadContent { what: &'static str, reason: String },
    #[error(
        "the {what} would be {len} bytes, more than the {MAX_DOC_BYTES} a signed note may hold (a post-quantum member key takes about 2,200 bytes)"
    )]
    TooLarge { what: &'static str, len: usize },
}

/// The most a document's text may take: the signed-note format's limit on a
/// whole note (1,000,000 bytes, enforced by the `signed_note` crate on every
/// note read) less room for signature lines.
pub const MAX_DOC_BYTES: usize = 1_000_000 - 16 * 1024;

/// A verified document with the exact note it came from.
#[derive(Debug, Clone)]
pub struct Opened<T> {
    /// The parsed document.
    pub doc: T,
    /// The name of the first trusted key whose signature verified.
    pub signer: String,
    /// That key itself: what people are shown its fingerprint of, since a
    /// member name can be reused with a new key (a lost laptop replaced).
    pub key: NoteVerifierKey,
    /// The note exactly as received, for storage, logging and re-verification.
    pub note: String,
}

/// Signs a document with `key` after checking that the note will not exceed
/// what signed notes may hold ([`MAX_DOC_BYTES`]), which every reader would
/// refuse. For documents whose size the signer does not bound (a directory).
pub fn sign_doc_checked<T: SignedDoc>(doc: &T, key: &NoteSigningKey) -> Result<String, DocError> {
    let len = T::TYPE.len() + 2 + serde_json::to_string_pretty(doc).expect("documents always serialize").len();
    if len > MAX_DOC_BYTES {
        return Err(DocError::TooLarge { what: T::WHAT, len });
    }
    Ok(sign_doc(doc, key))
}

/// Signs a document with `key`, returning the signed note's text.
pub fn sign_doc<T: SignedDoc>(doc: &T, key: &NoteSigningKey) -> String {
    let mut text = String::from(T::TYPE);
    text.push('\n');
    text.push_str(&serde_json::to_string_pretty(doc).expect("documents always serialize"));
    text.push('\n');
    let mut note = Note::new(text.as_bytes(), &[]).expect("JSON text never has control characters");
    note.add_sigs(&[key]).expect("key names are validated when keys are made");
    String::from_utf8(note.to_bytes()).expect("notes are UTF-8")
}

/// Verifies `note` against `trusted` keys and parses the document.
///
/// Signatures by keys outside `trusted` are ignored (as signed-note requires);
/// a signature by a trusted key that fails is an error even when another
/// trusted signature verifies.
pub fn open_doc<T: SignedDoc>(note: &str, trusted: &[NoteVerifierKey]) -> Result<Opened<T>, DocError> {
    let parsed = Note::from_bytes(note.as_bytes()).map_err(|_| DocError::Malformed { what: T::WHAT })?;
    let mut first_good = None;
    let mut seen = Vec::new();
    for sig in parsed_signatures(&parsed) {
        seen.push(sig.name().to_owned());
        let Some(key) = trusted.iter().find(|k| k.name() == sig.name() && k.id() == sig.id()) else {
            continue;
        };
        if !Verifier::verify(key, parsed.text(), sig.signature()) {
            return Err(DocError::BadSignature { what: T::WHAT, signer: key.name().to_owned() });
        }
        first_good.get_or_insert_with(|| key.clone());
    }
    let Some(key) = first_good else {
        return Err(DocError::NoTrustedSignature {
            what: T::WHAT,
            signers: if seen.is_empty() { "nobody".into() } else { seen.join(", ") },
        });
    };
    let doc = parse_text::<T>(parsed.text())?;
    Ok(Opened { doc, signer: key.name().to_owned(), key, note: note.to_owned() })
}

/// The key name and key id of each signature line on `note`, without
/// verifying any: for telling which of several known keys made a signature
/// that was verified elsewhere (the offline audit), never for trusting it.
pub fn signature_ids(note: &str) -> Vec<(String, u32)> {
    match Note::from_bytes(note.as_bytes()) {
        Ok(parsed) => parsed_signatures(&parsed).iter().map(|s| (s.name().to_owned(), s.id())).collect(),
        Err(_) => Vec::new(),
    }
}

/// Reads a document without checking any signature: only for showing what a
/// refused document claimed, never for acting on it.
pub fn peek_doc<T: SignedDoc>(note: &str) -> Result<T, DocError> {
    let parsed = Note::from_bytes(note.as_bytes()).map_err(|_| DocError::Malformed { what: T::WHAT })?;
    parse_text::<T>(parsed.text())
}

fn parse_text<T: SignedDoc>(text: &[u8]) -> Result<T, DocError> {
    let text = std::str::from_utf8(text).map_err(|_| DocError::Malformed { what: T::WHAT })?;
    let (first, body) = text.split_once('\n').ok_or(DocError::Malformed { what: T::WHAT })?;
    if first != T::TYPE {
        return Err(DocError::WrongType { what: T::WHAT, expected: T::TYPE, found: first.chars().take(60).collect() });
    }
    serde_json::from_str(body).map_err(|e| DocError::BadContent { what: T::WHAT, reason: e.to_string() })
}

fn parsed_signatures(note: &Note) -> Vec<signed_note::Signature> {
    // `Note` does not expose its signatures directly; re-parse them from the
    // encoded form, which `Note::from_bytes` has already validated.
    let bytes = note.to_bytes();
    let text_len = note.text().len();
    let sig_block = &bytes[text_len + 1..];
    sig_block
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .filter_map(|l| signed_note::Signature::from_bytes(l).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Thing {
        n: u32,
        s: String,
    }
    impl SignedDoc for Thing {
        const TYPE: &'static str = "sealdrop/test-thing/v1";
        const WHAT: &'static str = "test thing";
    }

    #[derive(Debug, Serialize, Deserialize)]
    struct Other {
        n: u32,
        s: String,
    }
    impl SignedDoc for Other {
        const TYPE: &'static str = "sealdrop/other/v1";
        const WHAT: &'static str = "other";
    }

    fn thing() -> Thing {
        Thing { n: 7, s: "héllo \"quoted\"\nnewline".into() }
    }

    #[test]
    fn sign_and_open() {
        let key = NoteSigningKey::generate("camden/alice").unwrap();
        let note = sign_doc(&thing(), &key);
        assert!(note.starts_with("sealdrop/test-thing/v1\n{"));
        assert!(note.contains("\n\n\u{2014} camden/alice "));
        let opened = open_doc::<Thing>(&note, &[key.verifier()]).unwrap();
        assert_eq!(opened.doc, thing());
        assert_eq!(opened.signer, "camden/alice");
    }

    #[test]
    fn tampering_is_caught() {
        let key = NoteSigningKey::generate("camden/alice").unwrap();
        let note = sign_doc(&thing(), &key);
        let tampered = note.replace("\"n\": 7", "\"n\": 8");
        assert_ne!(tampered, note);
        let err = open_doc::<Thing>(&tampered, &[key.verifier()]).unwrap_err();
        assert!(matches!(err, DocError::BadSignature { .. }), "{err}");
    }

    #[test]
    fn untrusted_signer_is_refused() {
        let key = NoteSigningKey::generate("camden/alice").unwrap();
        let other = NoteSigningKey::generate("camden/alice").unwrap();
        let note = sign_doc(&thing(), &key);
        let err = open_doc::<Thing>(&note, &[other.verifier()]).unwrap_err();
        assert!(matches!(err, DocError::NoTrustedSignature { .. }), "{err}");
    }

    #[test]
    fn opened_names_the_key_that_verified_among_keys_of_one_name() {
        // A member name reused with a new key: both are trusted (the old one
        // revoked only from later), and each document says which signed it.
        let old = NoteSigningKey::generate("islington/data-team").unwrap();
        let new = NoteSigningKey::generate("islington/data-team").unwrap();
        let trusted = [new.verifier(), old.verifier()];
        let by_old = open_doc::<Thing>(&sign_doc(&thing(), &old), &trusted).unwrap();
        let by_new = open_doc::<Thing>(&sign_doc(&thing(), &new), &trusted).unwrap();
        assert_eq!((by_old.key, by_new.key), (old.verifier(), new.verifier()));
        assert_eq!(by_old.signer, by_new.signer);
        let ids = |k: &NoteSigningKey| signature_ids(&sign_doc(&thing(), k));
        assert_eq!(ids(&old), [("islington/data-team".to_owned(), old.verifier().id())]);
        assert_ne!(ids(&old), ids(&new));
        assert!(signature_ids("not a note").is_empty());
    }

    #[test]
    fn type_confusion_is_refused() {
        let key = NoteSigningKey::generate("k").unwrap();
        let note = sign_doc(&Other { n: 1, s: "x".into() }, &key);
        let err = open_doc::<Thing>(&note, &[key.verifier()]).unwrap_err();
        assert!(matches!(err, DocError::WrongType { .. }), "{err}");
    }

    #[test]
    fn garbage_is_malformed() {
        let key = NoteSigningKey::generate("k").unwrap();
        for junk in ["", "hello", "a\n\nb\n", "sealdrop/test-thing/v1\n{}\n\n\u{2014} k AAAA\n"] {
            assert!(open_doc::<Thing>(junk, &[key.verifier()]).is_err(), "{junk:?}");
        }
    }
}
