//! The C2SP CCTV age test vectors for every recipient type sealdrop reads,
//! run through the `age` crate the way sealdrop decrypts: the whole file
//! through `Decryptor::new_buffered`, then the identities, then the stream.
//!
//! - `hybrid*`: `mlkem768x25519` (post-quantum member keys, `age::pq`).
//! - `scrypt*`: passphrase-encrypted files (passphrase-protected identity files).
//! - `x25519*`: classic member keys, so the upgrade from age 0.12 to 0.13
//!   is shown to change nothing for them.
//!
//! A vector passes when a `success` file decrypts to the payload whose
//! SHA-256 it names and every other file fails in the stage it names
//! (header, unwrapping the file key, HMAC, payload). The vectors live
//! outside the repository (`../shared/reference/cctv-age/` beside the
//! checkout); the test fails, never skips, when they are missing or fewer.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{BufReader, Read as _, Write as _};
use std::path::{Path, PathBuf};

use age::secrecy::{ExposeSecret as _, SecretString};
use sealdrop_proto::age_header;
use sealdrop_proto::age_keys::{AgeIdentity, DropKind, KeyKind};
use sealdrop_proto::drop::EncryptedTo;
use sha2::{Digest as _, Sha256};

/// How many vectors of each family the copy of the CCTV suite holds (commit
/// 1e3d2860d46e). A different number means the folder is not the copy this
/// test was written against, or is partly missing: never a silent pass.
const EXPECTED_FAMILIES: [(&str, usize); 3] = [("hybrid", 18), ("scrypt", 25), ("x25519", 14)];

/// The highest scrypt work factor (log2 N) accepted, as Go age's default:
/// 2^22 takes seconds and 4 GiB; 2^23 (`scrypt_work_factor_23`) is refused
/// before any work, so a hostile file cannot make a reader spend minutes
/// and 8 GiB. age's own default (its timing target plus 4) depends on the
/// machine and could reach 23 on a fast one.
const MAX_SCRYPT_WORK_FACTOR: u8 = 22;

/// Where the vectors are: `shared/reference/cctv-age` beside the checkout.
fn vector_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/reference/cctv-age");
    assert!(
        dir.join("UPSTREAM-README.md").is_file(),
        "the CCTV age test vectors are missing: expected a copy of C2SP CCTV's age/testdata at {} \
         (with its UPSTREAM-README.md); put it there to run this test",
        dir.display()
    );
    dir
}

/// What decrypting a vector must give (`expect:`).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Expect {
    Success { payload_sha256: [u8; 32] },
    NoMatch,
    HmacFailure,
    HeaderFailure,
    PayloadFailure { payload_sha256: [u8; 32] },
    ArmorFailure,
}

/// One vector file: its textual header's fields and the age file after it.
struct Vector {
    name: String,
    expect: Expect,
    identities: Vec<String>,
    passphrases: Vec<String>,
    armored: bool,
    age_file: Vec<u8>,
}

impl Vector {
    fn read(path: &Path) -> Vector {
        let name = path.file_name().and_then(|n| n.to_str()).expect("a vector's name is text").to_owned();
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("reading vector {name}: {e}"));
        let split = bytes
            .windows(2)
            .position(|w| w == b"\n\n")
            .unwrap_or_else(|| panic!("vector {name} has no empty line after its header"));
        let header = std::str::from_utf8(&bytes[..split]).unwrap_or_else(|_| panic!("vector {name}: header not text"));
        let body = &bytes[split + 2..];

        let mut fields: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for line in header.lines() {
            let (key, value) = line
                .split_once(": ")
                .unwrap_or_else(|| panic!("vector {name}: header line {line:?} is not `key: value`"));
            fields.entry(key).or_default().push(value);
        }
        let one = |key: &str| -> Option<&str> {
            match fields.get(key).map(Vec::as_slice) {
                None => None,
                Some([value]) => Some(value),
                Some(_) => panic!("vector {name}: `{key}` given more than once"),
            }
        };
        let payload = || -> [u8; 32] {
            let hex = one("payload").unwrap_or_else(|| panic!("vector {name}: no `payload` for its `expect`"));
            hex::decode(hex)
                .ok()
                .and_then(|b| b.try_into().ok())
                .unwrap_or_else(|| panic!("vector {name}: bad payload"))
        };
        let expect = match one("expect").unwrap_or_else(|| panic!("vector {name} has no `expect`")) {
            "success" => Expect::Success { payload_sha256: payload() },
            "no match" => Expect::NoMatch,
            "HMAC failure" => Expect::HmacFailure,
            "header failure" => Expect::HeaderFailure,
            "payload failure" => Expect::PayloadFailure { payload_sha256: payload() },
            "armor failure" => Expect::ArmorFailure,
            other => panic!("vector {name}: unknown expect {other:?}"),
        };
        for key in fields.keys() {
            // The upstream README says to ignore files with unknown keys; this
            // test must know about them instead (they would change the count).
            let known = ["expect", "payload", "file key", "identity", "passphrase", "armored", "compressed", "comment"];
            assert!(known.contains(key), "vector {name}: unknown header key {key:?} (a newer CCTV suite?)");
        }
        let age_file = match one("compressed") {
            None => body.to_vec(),
            Some("zlib") => {
                let mut out = Vec::new();
                flate2::read::ZlibDecoder::new(body)
                    .read_to_end(&mut out)
                    .unwrap_or_else(|e| panic!("vector {name}: zlib: {e}"));
                out
            }
            Some(other) => panic!("vector {name}: unknown compression {other:?}"),
        };
        let field = |key: &str| fields.get(key).map(|v| v.iter().map(|s| s.to_string()).collect()).unwrap_or_default();
        Vector {
            expect,
            identities: field("identity"),
            passphrases: field("passphrase"),
            armored: one("armored") == Some("yes"),
            age_file,
            name,
        }
    }
}

/// Every vector whose name starts with `family` followed by `_` or nothing.
fn family(dir: &Path, family: &str) -> Vec<Vector> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            name == family || name.strip_prefix(family).is_some_and(|rest| rest.starts_with('_'))
        })
        .collect();
    names.sort();
    names.iter().map(|p| Vector::read(p)).collect()
}

/// The identities a vector names, read as sealdrop reads a member's key
/// (`age_keys::AgeIdentity`: `AGE-SECRET-KEY-PQ-1` is `age::pq`,
/// `AGE-SECRET-KEY-1` classic X25519), and each passphrase as an
/// `age::scrypt::Identity` capped at [`MAX_SCRYPT_WORK_FACTOR`].
fn identities(v: &Vector) -> (Vec<AgeIdentity>, Vec<age::scrypt::Identity>) {
    let keys = v
        .identities
        .iter()
        .map(|text| {
            let id: AgeIdentity = text.parse().unwrap_or_else(|e| panic!("vector {}: identity: {e}", v.name));
            let want = if text.starts_with("AGE-SECRET-KEY-PQ-1") { KeyKind::PostQuantum } else { KeyKind::Classic };
            assert_eq!(id.kind(), want, "vector {}", v.name);
            id
        })
        .collect();
    let passphrases = v
        .passphrases
        .iter()
        .map(|passphrase| {
            let mut id = age::scrypt::Identity::new(SecretString::from(passphrase.clone()));
            id.set_max_work_factor(MAX_SCRYPT_WORK_FACTOR);
            id
        })
        .collect();
    (keys, passphrases)
}

/// Where decrypting stopped, and with what.
enum Outcome {
    /// `Decryptor::new_buffered` refused the header.
    HeaderRefused(age::DecryptError),
    /// The header parsed but no file key came out of it (or its MAC failed).
    UnwrapRefused(age::DecryptError),
    /// The stream failed after `released` bytes of plaintext.
    PayloadFailed { error: std::io::Error, released: Vec<u8> },
    /// Decrypted to the end.
    Decrypted(Vec<u8>),
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::HeaderRefused(e) => write!(f, "header refused: {e:?}"),
            Outcome::UnwrapRefused(e) => write!(f, "file key not unwrapped: {e:?}"),
            Outcome::PayloadFailed { error, released } => {
                write!(f, "payload failed after {} bytes: {error}", released.len())
            }
            Outcome::Decrypted(plaintext) => write!(f, "decrypted {} bytes", plaintext.len()),
        }
    }
}

fn decrypt(v: &Vector) -> Outcome {
    let (keys, passphrases) = identities(v);
    let native = keys.iter().map(|k| k.native().expect("a native key"));
    let ids = native.chain(passphrases.iter().map(|p| p as &dyn age::Identity));
    let decryptor = match age::Decryptor::new_buffered(BufReader::new(&v.age_file[..])) {
        Ok(d) => d,
        Err(e) => return Outcome::HeaderRefused(e),
    };
    let mut stream = match decryptor.decrypt(ids) {
        Ok(s) => s,
        Err(e) => return Outcome::UnwrapRefused(e),
    };
    let mut released = Vec::new();
    match stream.read_to_end(&mut released) {
        Ok(_) => Outcome::Decrypted(released),
        Err(error) => Outcome::PayloadFailed { error, released },
    }
}

/// Whether `outcome` is what the vector expects, in the stage it names.
fn judge(expect: &Expect, outcome: &Outcome) -> Result<(), String> {
    use age::DecryptError as E;
    let digest_is = |plaintext: &[u8], want: &[u8; 32]| {
        let got: [u8; 32] = Sha256::digest(plaintext).into();
        if &got == want {
            Ok(())
        } else {
            Err(format!("plaintext SHA-256 {} != expected {}", hex::encode(got), hex::encode(want)))
        }
    };
    match (expect, outcome) {
        (Expect::Success { payload_sha256 }, Outcome::Decrypted(plaintext)) => digest_is(plaintext, payload_sha256),
        // A stanza that cannot be well formed is refused by the identity it is
        // for (InvalidHeader), or before any work (ExcessiveWork): both are the
        // header stage, as is anything `Decryptor::new_buffered` refuses.
        (Expect::HeaderFailure, Outcome::HeaderRefused(_))
        | (Expect::HeaderFailure, Outcome::UnwrapRefused(E::InvalidHeader | E::ExcessiveWork { .. }))
        | (Expect::NoMatch, Outcome::UnwrapRefused(E::NoMatchingKeys | E::DecryptionFailed))
        | (Expect::HmacFailure, Outcome::UnwrapRefused(E::InvalidMac)) => Ok(()),
        // Whatever plaintext was released before the failure must be the right one.
        (Expect::PayloadFailure { payload_sha256 }, Outcome::PayloadFailed { released, .. }) => {
            digest_is(released, payload_sha256)
        }
        (expect, outcome) => Err(format!("expected {expect:?}, got {outcome}")),
    }
}

/// Runs every vector of `families`, checks the counts, and fails listing
/// every vector that did not behave as it says.
fn run(families: &[(&str, usize)]) -> BTreeMap<String, (Expect, String)> {
    let dir = vector_dir();
    let mut failures = Vec::new();
    let mut ran = BTreeMap::new();
    for &(name, expected) in families {
        let vectors = family(&dir, name);
        assert_eq!(
            vectors.len(),
            expected,
            "found {} `{name}*` vectors in {}, expected {expected}: not the CCTV copy this test was written for",
            vectors.len(),
            dir.display()
        );
        for v in vectors {
            // Drops and identity files are binary age; no vector of these
            // families is armored (armor_* are another family).
            assert!(!v.armored, "vector {} is armored: sealdrop reads binary age only", v.name);
            let outcome = decrypt(&v);
            if let Err(why) = judge(&v.expect, &outcome) {
                failures.push(format!("{}: {why}", v.name));
            }
            ran.insert(v.name, (v.expect, outcome.to_string()));
        }
    }
    assert!(failures.is_empty(), "{} CCTV vector(s) misbehaved:\n{}", failures.len(), failures.join("\n"));
    ran
}

/// How many of `ran` expected success, i.e. really decrypted.
fn successes(ran: &BTreeMap<String, (Expect, String)>, prefix: &str) -> usize {
    ran.iter().filter(|(name, (e, _))| name.starts_with(prefix) && matches!(e, Expect::Success { .. })).count()
}

#[test]
fn every_hybrid_vector_behaves_as_it_says() {
    let ran = run(&[EXPECTED_FAMILIES[0]]);
    // hybrid, hybrid_and_x25519, hybrid_grease, hybrid_multiple_recipients.
    assert_eq!(successes(&ran, "hybrid"), 4, "{ran:#?}");
    // The low-order and identity-point X25519 shares are refused as Go age
    // refuses them: in the header stage, by the post-quantum identity itself.
    for name in ["hybrid_low_order", "hybrid_identity"] {
        let (expect, outcome) = &ran[name];
        assert_eq!(*expect, Expect::HeaderFailure);
        assert!(outcome.contains("InvalidHeader"), "{name}: {outcome}");
    }
}

#[test]
fn every_scrypt_vector_behaves_as_it_says() {
    let ran = run(&[EXPECTED_FAMILIES[1]]);
    assert_eq!(successes(&ran, "scrypt"), 1, "{ran:#?}");
    // Refused for its cost alone, before any scrypt work is done.
    let (_, outcome) = &ran["scrypt_work_factor_23"];
    assert!(outcome.contains("ExcessiveWork") && outcome.contains("required: 23"), "scrypt_work_factor_23: {outcome}");
}

#[test]
fn every_x25519_vector_behaves_as_it_says() {
    let ran = run(&[EXPECTED_FAMILIES[2]]);
    // x25519, x25519_grease, x25519_multiple_recipients.
    assert_eq!(successes(&ran, "x25519"), 3, "{ran:#?}");
}

/// A post-quantum round trip the way a sender encrypts a drop: age::pq keys
/// freshly generated, and the header holds one `mlkem768x25519` stanza per
/// recipient and nothing else but age's grease stanza.
#[test]
fn post_quantum_round_trip_header_holds_only_mlkem768x25519_stanzas() {
    let members: Vec<age::pq::Identity> = (0..3).map(|_| age::pq::Identity::generate()).collect();
    let recipients: Vec<age::pq::Recipient> = members.iter().map(age::pq::Identity::to_public).collect();
    for r in &recipients {
        assert!(r.to_string().starts_with("age1pq1"), "{r}");
    }
    let plaintext: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let encryptor = age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))
        .expect("post-quantum recipients alone");
    let mut ciphertext = Vec::new();
    let mut writer = encryptor.wrap_output(&mut ciphertext).expect("age writes its header");
    writer.write_all(&plaintext).expect("encrypting");
    writer.finish().expect("age finishes the stream");

    let header = age_header::parse(&ciphertext).expect("a well-formed header").expect("a whole header");
    let (grease, pq): (Vec<_>, Vec<_>) = header.stanzas.iter().partition(|s| s.tag.ends_with("-grease"));
    assert!(grease.len() <= 1, "{:?}", header.stanzas);
    assert_eq!(pq.len(), members.len(), "{:?}", header.stanzas);
    for s in pq {
        // One argument (the 1,120-byte ML-KEM-768 + X25519 encapsulation) and
        // a wrapped 16-byte file key with its 16-byte tag.
        assert_eq!((s.tag.as_str(), s.args, s.body_len), ("mlkem768x25519", 1, 32), "{:?}", header.stanzas);
    }
    // The rule the hub applies at commit and each recipient before decrypting.
    let encrypted_to: Vec<EncryptedTo> = recipients
        .iter()
        .enumerate()
        .map(|(i, r)| EncryptedTo { key: format!("camden/member-{i}"), age_recipient: r.to_string() })
        .collect();
    assert_eq!(age_header::check_recipients(&header, &encrypted_to), Ok(DropKind::PostQuantum));

    for member in &members {
        let decryptor = age::Decryptor::new_buffered(BufReader::new(&ciphertext[..])).expect("header");
        let mut out = Vec::new();
        decryptor
            .decrypt(std::iter::once(member as &dyn age::Identity))
            .expect("each member unwraps the file key")
            .read_to_end(&mut out)
            .expect("the stream decrypts");
        assert_eq!(out, plaintext);
    }

    // Someone else's post-quantum key opens nothing.
    let outsider = age::pq::Identity::generate();
    let decryptor = age::Decryptor::new_buffered(BufReader::new(&ciphertext[..])).expect("header");
    assert!(matches!(
        decryptor.decrypt(std::iter::once(&outsider as &dyn age::Identity)),
        Err(age::DecryptError::NoMatchingKeys)
    ));

    // The identity text round-trips in the form Go age 1.3 writes.
    let text = members[0].to_string();
    assert!(text.expose_secret().starts_with("AGE-SECRET-KEY-PQ-1"));
    let again: age::pq::Identity = text.expose_secret().parse().expect("its own text");
    assert_eq!(again.to_public().to_string(), recipients[0].to_string());
}

/// age 0.13 refuses to mix post-quantum and classic recipients in one file
/// (the C2SP spec: a drop is all post-quantum or all classic).
#[test]
fn post_quantum_and_classic_recipients_are_never_mixed() {
    let pq = AgeIdentity::generate().to_public().expect("native");
    let classic = AgeIdentity::generate_classic().to_public().expect("native");
    let (pq, classic) = (pq.native().expect("native"), classic.native().expect("native"));
    for mixed in [[pq, classic], [classic, pq]] {
        assert!(matches!(
            age::Encryptor::with_recipients(mixed.into_iter()),
            Err(age::EncryptError::IncompatibleRecipients { .. })
        ));
    }
}
