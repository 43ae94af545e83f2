//! How a re-run of a split finds the parts an earlier run committed: each
//! part's `CreateDrop` carries an idempotency key, and the hub answers a
//! key it already holds with the drop made under it.
//!
//! The key is an HMAC-SHA256 over the input file's SHA-256, the sheet, the
//! column and the recipient, under a secret only the sending member can
//! compute: HKDF-SHA256 from the member's Ed25519 signing key, for this use
//! alone. It used to be a plain SHA-256 of the same fields, which let the
//! hub confirm a guess of the input (last term's list with one pupil
//! changed, say) by hashing it; without the secret the key says nothing
//! about the file.
//!
//! What it costs: only the same member key finds its earlier parts. Another
//! member of the party re-running the split (or the same person after a
//! new `sealdrop keygen`) makes other keys, so the hub sees new drops and
//! the parts are sent again. The split's summary says whose re-runs are
//! recognised.

use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use sealdrop_proto::ids::PartyId;
use sealdrop_proto::keys::MemberSecretKey;

/// HKDF salt and info: this secret is for split idempotency keys only.
const SALT: &[u8] = b"sealdrop split idempotency";
const INFO: &[u8] = b"sealdrop-split-idempotency-v2";
/// The first field of every key: a new construction, never equal to a v1 key.
const DOMAIN: &str = "sealdrop-split-v2";

/// A secret derived from a member's signing key for one use (its HKDF salt
/// and info), to make idempotency keys the hub learns nothing from. Never
/// leaves this process; zeroed when dropped. Split's keys and the watch
/// service's are made with it, each under its own salt and info.
pub struct MemberMacKey(Zeroizing<[u8; 32]>);

impl MemberMacKey {
    /// Derives the secret from `me`'s signing key, for the use `salt` and `info` name.
    pub fn derive(me: &MemberSecretKey, salt: &[u8], info: &[u8]) -> Self {
        let seed = Zeroizing::new(me.signing.signing_key().to_bytes());
        let mut secret = Zeroizing::new([0u8; 32]);
        Hkdf::<Sha256>::new(Some(salt), seed.as_slice())
            .expand(info, secret.as_mut_slice())
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        Self(secret)
    }

    /// HMAC-SHA256 over `fields`, each length-prefixed (moving a boundary
    /// between fields changes the result), as 64 lowercase hex digits.
    pub fn mac(&self, fields: &[&str]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.0.as_slice()).expect("HMAC takes a key of any length");
        for field in fields {
            mac.update(&(field.len() as u64).to_be_bytes());
            mac.update(field.as_bytes());
        }
        hex::encode(mac.finalize().into_bytes())
    }
}

/// The secret a member's split idempotency keys are made under.
pub struct RerunSecret(MemberMacKey);

impl RerunSecret {
    /// Derives the secret from `me`'s signing key.
    pub fn of(me: &MemberSecretKey) -> Self {
        Self(MemberMacKey::derive(me, SALT, INFO))
    }

    /// The idempotency key of one part (64 lowercase hex digits): the same
    /// member, input, sheet, column and recipient give the same key.
    pub fn key(&self, input_sha256: &str, sheet: Option<&str>, column: &str, party: &PartyId) -> String {
        self.0.mac(&[DOMAIN, input_sha256, sheet.unwrap_or(""), column, party.as_str()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest as _;

    fn member(party: &str, name: &str) -> MemberSecretKey {
        MemberSecretKey::generate(party.parse().unwrap(), name.parse().unwrap())
    }

    #[test]
    fn keys_separate_every_field_and_every_member() {
        let camden: PartyId = "camden".parse().unwrap();
        let hackney: PartyId = "hackney".parse().unwrap();
        let me = member("camden", "data-team");
        let secret = RerunSecret::of(&me);
        let k = secret.key("ab", None, "home_la", &camden);
        assert!(k.len() == 64 && k.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()), "{k}");
        assert_eq!(k, RerunSecret::of(&me).key("ab", None, "home_la", &camden), "a re-run finds the same key");
        for other in [
            secret.key("ac", None, "home_la", &camden),
            secret.key("ab", Some("FSM"), "home_la", &camden),
            secret.key("ab", None, "home_la_code", &camden),
            secret.key("ab", None, "home_la", &hackney),
            secret.key("a", Some("b"), "home_la", &camden),
            // Another member of the same party: the cost of keeping the key secret.
            RerunSecret::of(&member("camden", "analyst")).key("ab", None, "home_la", &camden),
        ] {
            assert_ne!(k, other);
        }
    }

    #[test]
    fn the_key_is_not_the_hash_anyone_could_compute() {
        let camden: PartyId = "camden".parse().unwrap();
        let input = hex::encode(sha2::Sha256::digest(b"pupil_ref,home_la\nSYN1,Camden\n"));
        let mut plain = sha2::Sha256::new();
        for field in ["sealdrop-split-v1", input.as_str(), "", "home_la", "camden"] {
            plain.update((field.len() as u64).to_be_bytes());
            plain.update(field.as_bytes());
        }
        let guessable = hex::encode(plain.finalize());
        let key = RerunSecret::of(&member("camden", "data-team")).key(&input, None, "home_la", &camden);
        assert_ne!(key, guessable);
    }
}
