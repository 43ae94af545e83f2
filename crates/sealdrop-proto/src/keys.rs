//! Keys: member key pairs (an age identity to decrypt, post-quantum by
//! default (see [`crate::age_keys`]), plus an Ed25519 key to sign), their public key cards, and Ed25519 keys in the C2SP
//! signed-note text forms (`PRIVATE+KEY+name+id+...` and `name+id+...`)
//! used by the sharing agreement's coordinator (the authority) and the hub.
//!
//! Signatures from anyone who could be an attacker are checked with
//! [`ed25519_dalek::VerifyingKey::verify_strict`], never the lenient `verify`.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::age_keys::{AgeIdentity, AgeKeyError, AgeRecipient, KeyKind};
use crate::ids::{MemberName, PartyId, key_name};

/// Signature algorithm byte for Ed25519 in signed notes.
pub const ALG_ED25519: u8 = 0x01;
/// Signature algorithm byte for C2SP tlog-cosignature/v1 (Ed25519 over
/// `cosignature/v1\ntime <T>\n` + the checkpoint body; the signature bytes are
/// the 8-byte big-endian time followed by the Ed25519 signature).
pub const ALG_COSIGNATURE_V1: u8 = 0x04;

/// Why a key could not be read.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("not a sealdrop member secret key file (the first line must be `{MEMBER_KEY_HEADER}`)")]
    NotAMemberKey,
    #[error("the member key file is missing its `{0}:` line")]
    MissingField(&'static str),
    #[error("the member key file has a bad `{field}:` line: {reason}")]
    BadField { field: &'static str, reason: String },
    #[error("malformed signed-note key: expected `{expected}`")]
    BadNoteKey { expected: &'static str },
    #[error("the key id in the key does not match its name and public key")]
    KeyIdMismatch,
    #[error("the public key is not a valid Ed25519 point")]
    BadPublicKey,
    #[error("{0}")]
    BadAgeRecipient(#[from] AgeKeyError),
    #[error("the member key file's `age-recipient:` is not the public half of its `age-identity:`")]
    RecipientMismatch,
}

/// First line of a member secret key file.
pub const MEMBER_KEY_HEADER: &str = "SEALDROP-MEMBER-SECRET-KEY-V1";

/// Computes the signed-note key id of an Ed25519 public key under `name`
/// (c2sp.org/signed-note: the first four bytes of SHA-256(name || "\n" || 0x01 || key)).
pub fn note_key_id(name: &str, key: &VerifyingKey) -> u32 {
    key_id_for(ALG_ED25519, name, key)
}

/// The signed-note key id of a key of algorithm `alg` under `name`.
pub fn key_id_for(alg: u8, name: &str, key: &VerifyingKey) -> u32 {
    let mut encoded = vec![alg];
    encoded.extend_from_slice(key.as_bytes());
    signed_note::key_id(name, &encoded)
}

/// The message a tlog-cosignature/v1 signature covers.
pub fn cosignature_message(time: u64, checkpoint_body: &[u8]) -> Vec<u8> {
    let mut msg = format!("cosignature/v1\ntime {time}\n").into_bytes();
    msg.extend_from_slice(checkpoint_body);
    msg
}

/// A short, stable fingerprint of an Ed25519 public key for people to compare:
/// `SHA256:` and the first 16 bytes of its SHA-256 in hex.
pub fn fingerprint(key: &VerifyingKey) -> String {
    let digest = Sha256::digest(key.as_bytes());
    format!("SHA256:{}", hex::encode(&digest[..16]))
}

/// A public Ed25519 key with the name it signs under, in the signed-note
/// verifier-key text form `<name>+<8 hex key id>+<base64(0x01 || key)>`.
///
/// Two algorithms are understood: plain Ed25519 signatures (`0x01`) and C2SP
/// witness cosignatures (`0x04`, see [`ALG_COSIGNATURE_V1`]).
#[derive(Clone, PartialEq, Eq)]
pub struct NoteVerifierKey {
    name: String,
    id: u32,
    key: VerifyingKey,
    alg: u8,
}

impl NoteVerifierKey {
    /// Wraps a public key under a name (plain Ed25519 signatures).
    pub fn new(name: &str, key: VerifyingKey) -> Result<Self, KeyError> {
        Self::with_alg(ALG_ED25519, name, key)
    }
    /// Wraps a public key under a name for algorithm `alg` (0x01 or 0x04).
    pub fn with_alg(alg: u8, name: &str, key: VerifyingKey) -> Result<Self, KeyError> {
        if !signed_note::is_key_name_valid(name) {
            return Err(KeyError::BadNoteKey { expected: "a key name without spaces or '+'" });
        }
        if alg != ALG_ED25519 && alg != ALG_COSIGNATURE_V1 {
            return Err(KeyError::BadNoteKey { expected: "an Ed25519 (0x01) or cosignature (0x04) key" });
        }
        Ok(Self { name: name.to_owned(), id: key_id_for(alg, name, &key), key, alg })
    }
    /// The signature algorithm byte.
    pub fn alg(&self) -> u8 {
        self.alg
    }
    /// Whether this is a witness cosignature key.
    pub fn is_cosigner(&self) -> bool {
        self.alg == ALG_COSIGNATURE_V1
    }
    /// The name the key signs under.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The signed-note key id.
    pub fn id(&self) -> u32 {
        self.id
    }
    /// The Ed25519 public key.
    pub fn key(&self) -> &VerifyingKey {
        &self.key
    }
    /// The fingerprint people compare (see [`fingerprint`]).
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.key)
    }
    /// Checks a signature strictly (no malleable or small-order encodings).
    /// For a cosignature key, `msg` is the checkpoint body and `sig` the
    /// 8-byte time followed by the signature, as in a signed note.
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        if self.alg == ALG_COSIGNATURE_V1 {
            let Some((time, sig)) = sig.split_first_chunk::<8>() else { return false };
            let Ok(sig) = Signature::from_slice(sig) else { return false };
            return self.key.verify_strict(&cosignature_message(u64::from_be_bytes(*time), msg), &sig).is_ok();
        }
        let Ok(sig) = Signature::from_slice(sig) else { return false };
        self.key.verify_strict(msg, &sig).is_ok()
    }
}

impl fmt::Display for NoteVerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut encoded = vec![self.alg];
        encoded.extend_from_slice(self.key.as_bytes());
        write!(f, "{}+{:08x}+{}", self.name, self.id, B64.encode(encoded))
    }
}

impl fmt::Debug for NoteVerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NoteVerifierKey({self})")
    }
}

impl FromStr for NoteVerifierKey {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, KeyError> {
        const EXPECTED: &str = "<name>+<8 hex digits>+<base64 Ed25519 key>";
        let bad = || KeyError::BadNoteKey { expected: EXPECTED };
        let mut parts = s.trim().splitn(3, '+');
        let (Some(name), Some(id_hex), Some(b64)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad());
        };
        if id_hex.len() != 8 || !signed_note::is_key_name_valid(name) {
            return Err(bad());
        }
        let id = u32::from_str_radix(id_hex, 16).map_err(|_| bad())?;
        let raw = B64.decode(b64).map_err(|_| bad())?;
        let [alg @ (ALG_ED25519 | ALG_COSIGNATURE_V1), key @ ..] = raw.as_slice() else { return Err(bad()) };
        let key: [u8; 32] = key.try_into().map_err(|_| bad())?;
        let key = VerifyingKey::from_bytes(&key).map_err(|_| KeyError::BadPublicKey)?;
        let vk = Self::with_alg(*alg, name, key)?;
        if vk.id != id {
            return Err(KeyError::KeyIdMismatch);
        }
        Ok(vk)
    }
}

impl Serialize for NoteVerifierKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for NoteVerifierKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

impl signed_note::Verifier for NoteVerifierKey {
    fn name(&self) -> &str {
        &self.name
    }
    fn key_id(&self) -> u32 {
        self.id
    }
    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        NoteVerifierKey::verify(self, msg, sig)
    }
}

/// An Ed25519 signing key with the name it signs under. The secret is
/// zeroized when the value is dropped (ed25519-dalek's `zeroize` feature).
#[derive(Clone)]
pub struct NoteSigningKey {
    name: String,
    key: SigningKey,
}

impl NoteSigningKey {
    /// Generates a fresh key under `name`.
    pub fn generate(name: &str) -> Result<Self, KeyError> {
        Self::from_signing_key(name, SigningKey::generate(&mut rand::rngs::OsRng))
    }
    /// Wraps an existing key.
    pub fn from_signing_key(name: &str, key: SigningKey) -> Result<Self, KeyError> {
        if !signed_note::is_key_name_valid(name) {
            return Err(KeyError::BadNoteKey { expected: "a key name without spaces or '+'" });
        }
        Ok(Self { name: name.to_owned(), key })
    }
    /// Reads the signed-note private key form `PRIVATE+KEY+<name>+<id>+<base64(0x01 || seed)>`.
    pub fn from_note_text(s: &str) -> Result<Self, KeyError> {
        const EXPECTED: &str = "PRIVATE+KEY+<name>+<8 hex digits>+<base64 Ed25519 seed>";
        let bad = || KeyError::BadNoteKey { expected: EXPECTED };
        let rest = s.trim().strip_prefix("PRIVATE+KEY+").ok_or_else(bad)?;
        let mut parts = rest.splitn(3, '+');
        let (Some(name), Some(id_hex), Some(b64)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad());
        };
        let id = u32::from_str_radix(id_hex, 16).map_err(|_| bad())?;
        let raw = Zeroizing::new(B64.decode(b64).map_err(|_| bad())?);
        let [ALG_ED25519, seed @ ..] = raw.as_slice() else { return Err(bad()) };
        let seed: Zeroizing<[u8; 32]> = Zeroizing::new(seed.try_into().map_err(|_| bad())?);
        let key = Self::from_signing_key(name, SigningKey::from_bytes(&seed))?;
        if note_key_id(name, &key.key.verifying_key()) != id {
            return Err(KeyError::KeyIdMismatch);
        }
        Ok(key)
    }
    /// The signed-note private key form. Treat the result as a secret.
    pub fn to_note_text(&self) -> Zeroizing<String> {
        let mut raw = Zeroizing::new(vec![ALG_ED25519]);
        raw.extend_from_slice(self.key.as_bytes());
        Zeroizing::new(format!(
            "PRIVATE+KEY+{}+{:08x}+{}",
            self.name,
            note_key_id(&self.name, &self.key.verifying_key()),
            B64.encode(raw.as_slice())
        ))
    }
    /// The matching public key.
    pub fn verifier(&self) -> NoteVerifierKey {
        NoteVerifierKey {
            name: self.name.clone(),
            id: note_key_id(&self.name, &self.key.verifying_key()),
            key: self.key.verifying_key(),
            alg: ALG_ED25519,
        }
    }
    /// The matching public key as a witness cosignature (0x04) key.
    pub fn cosigner_verifier(&self) -> NoteVerifierKey {
        NoteVerifierKey {
            name: self.name.clone(),
            id: key_id_for(ALG_COSIGNATURE_V1, &self.name, &self.key.verifying_key()),
            key: self.key.verifying_key(),
            alg: ALG_COSIGNATURE_V1,
        }
    }
    /// The name the key signs under.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Signs raw bytes (callers add their own domain separation).
    pub fn sign_bytes(&self, msg: &[u8]) -> Signature {
        self.key.sign(msg)
    }
    /// The raw signing key, for building other signers (cosignatures).
    pub fn signing_key(&self) -> &SigningKey {
        &self.key
    }
}

impl fmt::Debug for NoteSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NoteSigningKey({}, <secret>)", self.name)
    }
}

impl signed_note::Signer for NoteSigningKey {
    fn name(&self) -> &str {
        &self.name
    }
    fn key_id(&self) -> u32 {
        note_key_id(&self.name, &self.key.verifying_key())
    }
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, ed25519_dalek::SignatureError> {
        Ok(self.key.sign(msg).to_vec())
    }
}

/// The public half of a member key: what the coordinator puts in the
/// directory, handed over as a "public key card" (this struct as JSON).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberPublicKey {
    /// The organisation the member belongs to.
    pub party: PartyId,
    /// The member's name within the party.
    pub member: MemberName,
    /// Where files for this member are encrypted to: `age1pq1...`
    /// (post-quantum), `age1...` (classic) or `age1<plugin>1...`.
    pub age_recipient: String,
    /// The member's Ed25519 key in signed-note verifier form, named `<party>/<member>`.
    pub signing_key: NoteVerifierKey,
}

impl MemberPublicKey {
    /// Checks that the parts agree with each other: the signing key's name is
    /// `<party>/<member>` and the age recipient parses.
    pub fn validate(&self) -> Result<(), KeyError> {
        if self.signing_key.name() != key_name(&self.party, &self.member) {
            return Err(KeyError::BadField {
                field: "signing_key",
                reason: format!(
                    "its name is {:?} but the card is for {}",
                    self.signing_key.name(),
                    key_name(&self.party, &self.member)
                ),
            });
        }
        self.age_recipient()?;
        Ok(())
    }
    /// The parsed age recipient.
    pub fn age_recipient(&self) -> Result<AgeRecipient, KeyError> {
        Ok(self.age_recipient.parse()?)
    }
    /// The kind of the age key (post-quantum, classic, plugin).
    pub fn key_kind(&self) -> Result<KeyKind, KeyError> {
        Ok(self.age_recipient()?.kind())
    }
    /// The key's fingerprint (of its signing key).
    pub fn fingerprint(&self) -> String {
        self.signing_key.fingerprint()
    }
}

/// A member's secret key pair. Both halves are zeroized on drop.
pub struct MemberSecretKey {
    /// The organisation the member belongs to.
    pub party: PartyId,
    /// The member's name within the party.
    pub member: MemberName,
    /// Decrypts drops addressed to this member.
    pub age_identity: AgeIdentity,
    /// Where files for this member are encrypted to: the public half of a
    /// native `age_identity`, or for a plugin identity the recipient the
    /// token gave (a plugin identity is only a reference to the token, so
    /// the recipient cannot be derived from it).
    pub age_recipient: AgeRecipient,
    /// Signs manifests, receipts and requests, named `<party>/<member>`.
    pub signing: NoteSigningKey,
}

impl fmt::Debug for MemberSecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MemberSecretKey({}/{}, <secret>)", self.party, self.member)
    }
}

impl MemberSecretKey {
    /// Generates a fresh key pair for a member, post-quantum.
    pub fn generate(party: PartyId, member: MemberName) -> Self {
        let (age_identity, age_recipient) = AgeIdentity::generate_pair();
        Self::with_age_key(party, member, age_identity, age_recipient)
    }

    /// Generates a fresh key pair for a member with a classic (X25519) age
    /// key, for correspondents whose tools cannot read post-quantum files.
    pub fn generate_classic(party: PartyId, member: MemberName) -> Self {
        let (age_identity, age_recipient) = AgeIdentity::generate_classic_pair();
        Self::with_age_key(party, member, age_identity, age_recipient)
    }

    /// A fresh signing key with a given age key pair (for a plugin identity,
    /// the recipient the plugin gave). The caller checks that the two belong
    /// together; for a native identity [`MemberSecretKey::from_file_text`]
    /// does.
    pub fn with_age_key(
        party: PartyId,
        member: MemberName,
        age_identity: AgeIdentity,
        age_recipient: AgeRecipient,
    ) -> Self {
        let signing = NoteSigningKey::generate(&key_name(&party, &member))
            .expect("party and member ids never contain spaces or '+'");
        Self { party, member, age_identity, age_recipient, signing }
    }

    /// The public key card.
    pub fn public(&self) -> MemberPublicKey {
        MemberPublicKey {
            party: self.party.clone(),
            member: self.member.clone(),
            age_recipient: self.age_recipient.to_string(),
            signing_key: self.signing.verifier(),
        }
    }

    /// The key file's text. Treat the result as a secret.
    pub fn to_file_text(&self) -> Zeroizing<String> {
        use age::secrecy::ExposeSecret;
        let seed = Zeroizing::new(B64.encode(self.signing.signing_key().as_bytes()));
        let age_secret = self.age_identity.to_secret_string();
        Zeroizing::new(format!(
            "{MEMBER_KEY_HEADER}\n\
             # sealdrop member secret key for {party}/{member}: keep it private (mode 0600).\n\
             # Public fingerprint: {fp}; age key: {kind}\n\
             party: {party}\n\
             member: {member}\n\
             age-identity: {age}\n\
             age-recipient: {recipient}\n\
             signing-key: {seed}\n",
            party = self.party,
            member = self.member,
            fp = self.signing.verifier().fingerprint(),
            kind = self.age_identity.kind(),
            age = age_secret.expose_secret(),
            recipient = self.age_recipient,
            seed = seed.as_str(),
        ))
    }

    /// Parses a key file's text.
    pub fn from_file_text(text: &str) -> Result<Self, KeyError> {
        let mut lines = text.lines();
        if lines.next().map(str::trim) != Some(MEMBER_KEY_HEADER) {
            return Err(KeyError::NotAMemberKey);
        }
        let (mut party, mut member, mut age_id, mut age_recipient, mut seed) = (None, None, None, None, None);
        for line in lines.map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
            let Some((field, value)) = line.split_once(':') else {
                return Err(KeyError::BadField { field: "?", reason: "every line must be `field: value`".into() });
            };
            let value = value.trim();
            match field.trim() {
                "party" => party = Some(value.to_owned()),
                "member" => member = Some(value.to_owned()),
                "age-identity" => age_id = Some(Zeroizing::new(value.to_owned())),
                "age-recipient" => age_recipient = Some(value.to_owned()),
                "signing-key" => seed = Some(Zeroizing::new(value.to_owned())),
                _ => {}
            }
        }
        let party: PartyId = party
            .ok_or(KeyError::MissingField("party"))?
            .parse()
            .map_err(|e: crate::ids::IdError| KeyError::BadField { field: "party", reason: e.to_string() })?;
        let member: MemberName = member
            .ok_or(KeyError::MissingField("member"))?
            .parse()
            .map_err(|e: crate::ids::IdError| KeyError::BadField { field: "member", reason: e.to_string() })?;
        let age_identity: AgeIdentity = age_id
            .ok_or(KeyError::MissingField("age-identity"))?
            .parse()
            .map_err(|e: AgeKeyError| KeyError::BadField { field: "age-identity", reason: e.to_string() })?;
        // Key files written before issue 21 have no `age-recipient:`: a
        // native identity's is derived; a plugin identity needs the line.
        let age_recipient = match (age_identity.to_public(), age_recipient) {
            (Some(derived), None) => derived,
            (Some(derived), Some(written)) if derived.to_string() == written => derived,
            (Some(_), Some(_)) => return Err(KeyError::RecipientMismatch),
            (None, None) => return Err(KeyError::MissingField("age-recipient")),
            (None, Some(written)) => written
                .parse()
                .map_err(|e: AgeKeyError| KeyError::BadField { field: "age-recipient", reason: e.to_string() })?,
        };
        let seed = seed.ok_or(KeyError::MissingField("signing-key"))?;
        let raw = Zeroizing::new(
            B64.decode(seed.as_bytes())
                .map_err(|_| KeyError::BadField { field: "signing-key", reason: "not base64".into() })?,
        );
        let raw: Zeroizing<[u8; 32]> =
            Zeroizing::new(raw.as_slice().try_into().map_err(|_| KeyError::BadField {
                field: "signing-key",
                reason: "not a 32-byte Ed25519 seed".into(),
            })?);
        let signing = NoteSigningKey::from_signing_key(&key_name(&party, &member), SigningKey::from_bytes(&raw))?;
        Ok(Self { party, member, age_identity, age_recipient, signing })
    }

    /// An age identity file that stock age accepts (`age -d -i FILE`; for a
    /// post-quantum key, age 1.3 or later).
    pub fn age_identity_file(&self) -> Zeroizing<String> {
        use age::secrecy::ExposeSecret;
        Zeroizing::new(format!(
            "# sealdrop member {}/{} ({} age key)\n# public key: {}\n{}\n",
            self.party,
            self.member,
            self.age_identity.kind(),
            self.age_recipient,
            self.age_identity.to_secret_string().expose_secret()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member() -> MemberSecretKey {
        MemberSecretKey::generate("camden".parse().unwrap(), "data-team".parse().unwrap())
    }

    #[test]
    fn member_key_file_round_trips() {
        let key = member();
        let text = key.to_file_text();
        let back = MemberSecretKey::from_file_text(&text).unwrap();
        assert_eq!(back.public(), key.public());
        assert!(text.starts_with(MEMBER_KEY_HEADER));
        back.public().validate().unwrap();
    }

    #[test]
    fn member_keys_are_post_quantum_unless_asked() {
        let key = member();
        assert_eq!(key.public().key_kind().unwrap(), KeyKind::PostQuantum);
        assert!(key.public().age_recipient.starts_with("age1pq1"));
        let classic = MemberSecretKey::generate_classic("camden".parse().unwrap(), "data-team".parse().unwrap());
        assert_eq!(classic.public().key_kind().unwrap(), KeyKind::Classic);
        let back = MemberSecretKey::from_file_text(&classic.to_file_text()).unwrap();
        assert_eq!(back.public(), classic.public());
    }

    #[test]
    fn old_key_files_without_a_recipient_line_still_load() {
        let key = MemberSecretKey::generate_classic("camden".parse().unwrap(), "data-team".parse().unwrap());
        let text: String =
            key.to_file_text().lines().filter(|l| !l.starts_with("age-recipient:")).map(|l| format!("{l}\n")).collect();
        assert_eq!(MemberSecretKey::from_file_text(&text).unwrap().public(), key.public());
        // A recipient line that is not the identity's own is refused.
        let other = member().public().age_recipient;
        let forged = key.to_file_text().replace(&key.public().age_recipient, &other);
        assert!(matches!(MemberSecretKey::from_file_text(&forged), Err(KeyError::RecipientMismatch)));
    }

    #[test]
    fn member_key_file_errors_name_the_problem() {
        let err = MemberSecretKey::from_file_text("hello").unwrap_err();
        assert!(matches!(err, KeyError::NotAMemberKey));
        let text = member().to_file_text().replace("signing-key:", "# removed");
        let err = MemberSecretKey::from_file_text(&text).unwrap_err();
        assert!(err.to_string().contains("signing-key"), "{err}");
    }

    #[test]
    fn note_keys_round_trip_and_check_ids() {
        let sk = NoteSigningKey::generate("authority.example").unwrap();
        let vk = sk.verifier();
        let text = vk.to_string();
        let parsed: NoteVerifierKey = text.parse().unwrap();
        assert_eq!(parsed, vk);
        let sk2 = NoteSigningKey::from_note_text(&sk.to_note_text()).unwrap();
        assert_eq!(sk2.verifier(), vk);
        // A key id that does not match is refused.
        let (name_id, b64) = text.rsplit_once('+').unwrap();
        let (name, _) = name_id.split_once('+').unwrap();
        let forged = format!("{name}+00000000+{b64}");
        assert!(forged.parse::<NoteVerifierKey>().is_err());
    }

    #[test]
    fn note_key_format_matches_signed_note_crate() {
        // Cross-check our encoding with the signed_note crate's own parser.
        let sk = NoteSigningKey::generate("example.com/log").unwrap();
        let theirs = signed_note::StandardVerifier::new(&sk.verifier().to_string()).unwrap();
        use signed_note::Verifier as _;
        assert_eq!(theirs.key_id(), sk.verifier().id());
        let sig = sk.sign_bytes(b"hello");
        assert!(theirs.verify(b"hello", &sig.to_bytes()));
        assert!(signed_note::StandardSigner::new(&sk.to_note_text()).is_ok());
    }

    #[test]
    fn cosigner_keys_have_their_own_id_and_message() {
        let sk = NoteSigningKey::generate("witness.camden").unwrap();
        let vk = sk.cosigner_verifier();
        assert!(vk.is_cosigner());
        assert_ne!(vk.id(), sk.verifier().id());
        let parsed: NoteVerifierKey = vk.to_string().parse().unwrap();
        assert_eq!(parsed, vk);
        let body = b"origin\n3\nAAAA\n";
        let sig = sk.sign_bytes(&cosignature_message(1_700_000_000, body));
        let mut bytes = 1_700_000_000u64.to_be_bytes().to_vec();
        bytes.extend_from_slice(&sig.to_bytes());
        assert!(vk.verify(body, &bytes));
        bytes[7] ^= 1; // another time
        assert!(!vk.verify(body, &bytes));
        // A plain signature does not pass as a cosignature.
        assert!(!vk.verify(body, &sk.sign_bytes(body).to_bytes()));
    }

    #[test]
    fn verification_is_strict() {
        let sk = NoteSigningKey::generate("x").unwrap();
        let vk = sk.verifier();
        let sig = sk.sign_bytes(b"msg").to_bytes();
        assert!(vk.verify(b"msg", &sig));
        assert!(!vk.verify(b"msh", &sig));
        let mut bad = sig;
        bad[0] ^= 1;
        assert!(!vk.verify(b"msg", &bad));
        assert!(!vk.verify(b"msg", &sig[..63]));
    }

    #[test]
    fn card_with_mismatched_name_is_refused() {
        let mut card = member().public();
        card.member = "someone-else".parse().unwrap();
        assert!(card.validate().is_err());
    }
}
