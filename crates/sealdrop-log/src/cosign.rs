//! Witness cosignatures (c2sp.org/tlog-cosignature v1, Ed25519, key type
//! 0x04): a witness states "as of this time, the largest consistent tree I
//! have seen for this origin has this root" by signing
//! `cosignature/v1\ntime <T>\n` followed by the checkpoint body. In the
//! note the signature line carries the 4-byte key id, the 8-byte big-endian
//! time and the 64-byte signature.
//!
//! A witness must check the checkpoint itself (the log's signature with
//! [`crate::checkpoint::open`] and consistency with what it saw before)
//! before calling [`cosign`].

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use signed_note::Signature;

use sealdrop_proto::keys::{NoteSigningKey, NoteVerifierKey, cosignature_message};

use crate::notes;

/// signed_note's limit on signatures per note.
const MAX_SIGNATURES: usize = 100;

/// Why cosignatures could not be added or verified.
#[derive(Debug, thiserror::Error)]
pub enum CosignError {
    #[error("the checkpoint is not a well-formed signed checkpoint note")]
    Malformed,
    #[error("{0:?} is not a signed-note signature line (`— <name> <base64>`)")]
    BadLine(String),
    #[error("the checkpoint would carry more than {MAX_SIGNATURES} signatures")]
    TooManySignatures,
    #[error("the cosignature by witness {0} does not verify: it was forged or made for another checkpoint")]
    BadCosignature(String),
}

/// A cosignature that verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cosigned {
    /// The witness key's name.
    pub name: String,
    /// When the witness says it saw the checkpoint (Unix seconds).
    pub time: u64,
}

/// Cosigns a checkpoint as `witness` at `time` (Unix seconds), returning the
/// signature line `— <name> <base64(key id || time || signature)>` without a
/// trailing newline. `checkpoint_note` may be the signed note or its bare body.
pub fn cosign(checkpoint_note: &str, witness: &NoteSigningKey, time: u64) -> String {
    let body = notes::text_or_body(checkpoint_note);
    let sig = witness.sign_bytes(&cosignature_message(time, body.as_bytes()));
    let mut bytes = Vec::with_capacity(4 + 8 + 64);
    bytes.extend_from_slice(&witness.cosigner_verifier().id().to_be_bytes());
    bytes.extend_from_slice(&time.to_be_bytes());
    bytes.extend_from_slice(&sig.to_bytes());
    format!("\u{2014} {} {}", witness.name(), B64.encode(bytes))
}

/// The time a cosignature carries, if it has one.
fn cosig_time(sig: &Signature) -> Option<u64> {
    sig.signature().first_chunk::<8>().map(|t| u64::from_be_bytes(*t))
}

/// Adds signature lines (as [`cosign`] returns them, with or without a
/// trailing newline) to a checkpoint note's signature block.
///
/// Exact duplicates are dropped; a line by the same key (name and key id) as
/// one already present replaces it only when it carries a later time, so a
/// witness's newest cosignature is kept and the block cannot grow without
/// bound. Nothing is verified here: see [`verify_cosignatures`].
pub fn add_cosignatures(checkpoint_note: &str, lines: &[String]) -> Result<String, CosignError> {
    let split = notes::split(checkpoint_note).ok_or(CosignError::Malformed)?;
    let mut sigs = split.sigs;
    for line in lines {
        let line = line.strip_suffix('\n').unwrap_or(line);
        let sig = Signature::from_bytes(line.as_bytes())
            .map_err(|_| CosignError::BadLine(line.chars().take(80).collect()))?;
        match sigs.iter_mut().find(|s| s.name() == sig.name() && s.id() == sig.id()) {
            Some(existing) => {
                if cosig_time(&sig) > cosig_time(existing) {
                    *existing = sig;
                }
            }
            None => sigs.push(sig),
        }
    }
    if sigs.len() > MAX_SIGNATURES {
        return Err(CosignError::TooManySignatures);
    }
    let mut out = String::with_capacity(checkpoint_note.len() + lines.len() * 120);
    out.push_str(split.text);
    out.push('\n');
    for s in &sigs {
        out.push_str(std::str::from_utf8(&s.to_bytes()).expect("signature lines are UTF-8"));
    }
    Ok(out)
}

/// Verifies the cosignatures on a checkpoint note by the given witness keys.
///
/// Only cosignature (0x04) keys count: a plain Ed25519 signature by a
/// witness's key is not a cosignature. Signatures by keys not listed are
/// ignored, as signed-note requires; a cosignature by a listed key that does
/// not verify (strictly) is an error naming the witness. Returns one
/// [`Cosigned`] per witness key that cosigned, in note order.
pub fn verify_cosignatures(checkpoint_note: &str, witnesses: &[NoteVerifierKey]) -> Result<Vec<Cosigned>, CosignError> {
    let split = notes::split(checkpoint_note).ok_or(CosignError::Malformed)?;
    tlog_tiles::Checkpoint::from_bytes(split.text.as_bytes()).map_err(|_| CosignError::Malformed)?;
    let mut out: Vec<(u32, Cosigned)> = Vec::new();
    for sig in &split.sigs {
        let Some(key) = witnesses.iter().find(|k| k.is_cosigner() && k.name() == sig.name() && k.id() == sig.id())
        else {
            continue;
        };
        if !key.verify(split.text.as_bytes(), sig.signature()) {
            return Err(CosignError::BadCosignature(key.name().to_owned()));
        }
        let time = cosig_time(sig).expect("a verified cosignature carries its time");
        match out.iter_mut().find(|(id, c)| *id == key.id() && c.name == key.name()) {
            Some((_, c)) => c.time = c.time.max(time),
            None => out.push((key.id(), Cosigned { name: key.name().to_owned(), time })),
        }
    }
    Ok(out.into_iter().map(|(_, c)| c).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint;
    use tlog_tiles::Hash;

    fn setup() -> (NoteSigningKey, NoteSigningKey, NoteSigningKey, String) {
        let log = NoteSigningKey::generate("hub.example").unwrap();
        let w1 = NoteSigningKey::generate("witness.camden").unwrap();
        let w2 = NoteSigningKey::generate("witness.hackney").unwrap();
        let note = checkpoint::sign(&log, 10, &Hash([3; 32]));
        (log, w1, w2, note)
    }

    #[test]
    fn round_trip() {
        let (log, w1, w2, note) = setup();
        let l1 = cosign(&note, &w1, 1_700_000_000);
        assert!(l1.starts_with("\u{2014} witness.camden "));
        assert!(!l1.ends_with('\n'));
        let l2 = cosign(&note, &w2, 1_700_000_001);
        let cosigned = add_cosignatures(&note, &[l1.clone(), format!("{l2}\n"), l1.clone()]).unwrap();
        assert_eq!(cosigned.matches('\u{2014}').count(), 3, "duplicates dropped:\n{cosigned}");
        assert!(cosigned.starts_with(&note), "the log's signature stays first");
        // Still a valid checkpoint for the log.
        checkpoint::open(&cosigned, &log.verifier()).unwrap();
        let keys = [w1.cosigner_verifier(), w2.cosigner_verifier()];
        let got = verify_cosignatures(&cosigned, &keys).unwrap();
        assert_eq!(
            got,
            vec![
                Cosigned { name: "witness.camden".into(), time: 1_700_000_000 },
                Cosigned { name: "witness.hackney".into(), time: 1_700_000_001 },
            ]
        );
        // Unknown witnesses are ignored.
        let w3 = NoteSigningKey::generate("witness.barnet").unwrap();
        assert!(verify_cosignatures(&cosigned, &[w3.cosigner_verifier()]).unwrap().is_empty());
        // The same checkpoint body, bare, is cosigned identically.
        let body = checkpoint::body("hub.example", 10, &Hash([3; 32]));
        assert_eq!(cosign(&body, &w1, 5), cosign(&note, &w1, 5));
        // A later cosignature by the same witness replaces the older one; an older one does not.
        let newer = cosign(&note, &w1, 1_700_000_100);
        let again = add_cosignatures(&cosigned, &[newer, cosign(&note, &w1, 1)]).unwrap();
        assert_eq!(again.matches('\u{2014}').count(), 3);
        assert_eq!(verify_cosignatures(&again, &keys).unwrap()[0].time, 1_700_000_100);
    }

    #[test]
    fn forged_cosignature_names_the_witness() {
        let (_, w1, w2, note) = setup();
        let impostor = NoteSigningKey::generate("witness.camden").unwrap();
        // Same name, other key: its key id differs, so it is merely unknown...
        let other = add_cosignatures(&note, &[cosign(&note, &impostor, 5)]).unwrap();
        assert!(verify_cosignatures(&other, &[w1.cosigner_verifier()]).unwrap().is_empty());
        // ...but a line claiming w1's key id with a bad signature is a forgery.
        let line = cosign(&note, &w1, 5);
        let (head, b64) = line.rsplit_once(' ').unwrap();
        let mut raw = B64.decode(b64).unwrap();
        raw[20] ^= 1;
        let forged = format!("{head} {}", B64.encode(raw));
        let n = add_cosignatures(&note, &[cosign(&note, &w2, 5), forged]).unwrap();
        let err = verify_cosignatures(&n, &[w1.cosigner_verifier(), w2.cosigner_verifier()]).unwrap_err();
        assert!(matches!(&err, CosignError::BadCosignature(w) if w == "witness.camden"), "{err}");
        assert!(err.to_string().contains("witness.camden"));
        // A changed time invalidates the signature too.
        let mut raw = B64.decode(b64).unwrap();
        raw[11] ^= 1;
        let n = add_cosignatures(&note, &[format!("{head} {}", B64.encode(raw))]).unwrap();
        assert!(verify_cosignatures(&n, &[w1.cosigner_verifier()]).is_err());
    }

    #[test]
    fn cosignature_moved_to_another_checkpoint_fails() {
        let (log, w1, _, note) = setup();
        let line = cosign(&note, &w1, 7);
        let other = checkpoint::sign(&log, 11, &Hash([4; 32]));
        let moved = add_cosignatures(&other, &[line]).unwrap();
        assert!(matches!(verify_cosignatures(&moved, &[w1.cosigner_verifier()]), Err(CosignError::BadCosignature(_))));
    }

    #[test]
    fn plain_signature_is_not_a_cosignature() {
        let (_, w1, _, note) = setup();
        // The witness signs the checkpoint as an ordinary (0x01) note signer.
        let mut n = signed_note::Note::from_bytes(note.as_bytes()).unwrap();
        n.add_sigs(&[&w1]).unwrap();
        let plain = String::from_utf8(n.to_bytes()).unwrap();
        assert!(verify_cosignatures(&plain, &[w1.cosigner_verifier()]).unwrap().is_empty());
        // Listing the witness's plain key does not make it count either.
        assert!(verify_cosignatures(&plain, &[w1.verifier()]).unwrap().is_empty());
    }

    #[test]
    fn malformed_input() {
        let (_, w1, _, note) = setup();
        assert!(matches!(add_cosignatures("nope", &[]), Err(CosignError::Malformed)));
        assert!(matches!(add_cosignatures(&note, &["hello".into()]), Err(CosignError::BadLine(_))));
        let mut not_cp = signed_note::Note::new(b"not a checkpoint\n", &[]).unwrap();
        not_cp.add_sigs(&[&w1]).unwrap();
        let not_cp = String::from_utf8(not_cp.to_bytes()).unwrap();
        assert!(verify_cosignatures(&not_cp, &[]).is_err());
        let many: Vec<String> =
            (0..100).map(|i| cosign(&note, &NoteSigningKey::generate(&format!("w{i}")).unwrap(), 1)).collect();
        assert!(matches!(add_cosignatures(&note, &many), Err(CosignError::TooManySignatures)));
    }
}
