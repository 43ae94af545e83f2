//! The simulated token: what its identity and recipient strings carry, and the real
//! wrapping and unwrapping behind them.
//!
//! A plugin recipient `age1sealdroptest1...` is a Bech32 wrapper around the text of an
//! age X25519 recipient (`age1...`); a plugin identity `AGE-PLUGIN-SEALDROPTEST-1...`
//! wraps the token's policy (PIN, touch) and the text of the matching X25519 identity.
//! On a real token the secret never leaves the device; here it travels inside the
//! identity string, which is exactly why this plugin is for tests only.
//!
//! The cryptography is age's own X25519 recipient; only the stanza's tag is this
//! plugin's, so an age client can only open the file through the plugin.

// Real tokens (YubiKey PIV, TPM) hold classic elliptic-curve keys; age's classic X25519
// recipient is the software stand-in for such a key.
#![allow(deprecated)]

use std::str::FromStr;

use age::secrecy::ExposeSecret;
use age::{Identity as _, Recipient as _};
use age_core::format::{FileKey, Stanza};

/// The plugin's name: the binary is `age-plugin-sealdroptest`.
pub const PLUGIN_NAME: &str = "sealdroptest";

/// The tag of the stanzas this plugin writes; age's native X25519 code ignores them.
pub const STANZA_TAG: &str = "sealdroptest";

/// The tag age's X25519 code reads and writes.
const NATIVE_TAG: &str = "X25519";

/// The identity payload's layout version (its first byte).
const IDENTITY_FORMAT: u8 = 1;
const FLAG_PIN: u8 = 0b01;
const FLAG_TOUCH: u8 = 0b10;

/// What the token asks of its holder before it unwraps a file key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    /// The PIN the holder must type (through the client's `request_secret`), if any.
    pub pin: Option<String>,
    /// Whether the token asks to be touched (a message through the client).
    pub touch: bool,
}

/// One token: its policy and the X25519 key pair standing in for the key on the device.
pub struct Token {
    /// What the token asks before it unwraps.
    pub policy: Policy,
    identity: age::x25519::Identity,
}

impl Token {
    /// A new token with a fresh key pair.
    pub fn generate(policy: Policy) -> Self {
        Self { policy, identity: age::x25519::Identity::generate() }
    }

    /// The token an identity payload (the bytes inside `AGE-PLUGIN-SEALDROPTEST-1...`) names.
    pub fn from_identity_bytes(bytes: &[u8]) -> Result<Self, String> {
        let [format, flags, pin_len, rest @ ..] = bytes else {
            return Err("identity is too short".to_owned());
        };
        if *format != IDENTITY_FORMAT {
            return Err(format!("identity format {format} is not known"));
        }
        if flags & !(FLAG_PIN | FLAG_TOUCH) != 0 {
            return Err("identity has unknown flags".to_owned());
        }
        let pin_len = usize::from(*pin_len);
        if rest.len() < pin_len {
            return Err("identity is too short for its PIN".to_owned());
        }
        let (pin, native) = rest.split_at(pin_len);
        let pin = match flags & FLAG_PIN {
            0 if pin_len == 0 => None,
            0 => return Err("identity has a PIN but no PIN flag".to_owned()),
            _ => Some(String::from_utf8(pin.to_vec()).map_err(|_| "identity's PIN is not UTF-8".to_owned())?),
        };
        let native = std::str::from_utf8(native).map_err(|_| "identity's key is not text".to_owned())?;
        let identity = age::x25519::Identity::from_str(native).map_err(|e| format!("identity's key: {e}"))?;
        Ok(Self { policy: Policy { pin, touch: flags & FLAG_TOUCH != 0 }, identity })
    }

    /// The identity payload, to be Bech32-encoded as `AGE-PLUGIN-SEALDROPTEST-1...`.
    pub fn identity_bytes(&self) -> Result<Vec<u8>, String> {
        let pin = self.policy.pin.as_deref().unwrap_or_default().as_bytes();
        let pin_len = u8::try_from(pin.len()).map_err(|_| "the PIN is longer than 255 bytes".to_owned())?;
        let mut flags = 0;
        if self.policy.pin.is_some() {
            flags |= FLAG_PIN;
        }
        if self.policy.touch {
            flags |= FLAG_TOUCH;
        }
        let mut bytes = vec![IDENTITY_FORMAT, flags, pin_len];
        bytes.extend_from_slice(pin);
        bytes.extend_from_slice(self.identity.to_string().expose_secret().as_bytes());
        Ok(bytes)
    }

    /// The recipient payload, to be Bech32-encoded as `age1sealdroptest1...`.
    pub fn recipient_bytes(&self) -> Vec<u8> {
        self.identity.to_public().to_string().into_bytes()
    }

    /// The file key, if `stanza` was wrapped to this token; `None` for anyone else's stanza.
    pub fn unwrap(&self, stanza: &Stanza) -> Option<Result<FileKey, String>> {
        let native = Stanza { tag: NATIVE_TAG.to_owned(), args: stanza.args.clone(), body: stanza.body.clone() };
        self.identity.unwrap_stanza(&native).map(|unwrapped| unwrapped.map_err(|e| e.to_string()))
    }
}

/// A recipient of this plugin: the X25519 recipient a payload names.
pub struct TokenRecipient(age::x25519::Recipient);

impl TokenRecipient {
    /// The recipient a payload (the bytes inside `age1sealdroptest1...`) names.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        let text = std::str::from_utf8(bytes).map_err(|_| "recipient is not text".to_owned())?;
        age::x25519::Recipient::from_str(text).map(Self).map_err(|e| format!("recipient: {e}"))
    }

    /// The recipient of a token's identity (age lets a sender encrypt to an identity).
    pub fn of(token: &Token) -> Self {
        Self(token.identity.to_public())
    }

    /// One stanza wrapping `file_key`, with this plugin's tag.
    pub fn wrap(&self, file_key: &FileKey) -> Result<Stanza, String> {
        let (mut stanzas, _labels) = self.0.wrap_file_key(file_key).map_err(|e| e.to_string())?;
        match (stanzas.pop(), stanzas.is_empty()) {
            (Some(native), true) => Ok(Stanza { tag: STANZA_TAG.to_owned(), ..native }),
            _ => Err("age's X25519 recipient did not return exactly one stanza".to_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_key(byte: u8) -> FileKey {
        FileKey::new(Box::new([byte; 16]))
    }

    #[test]
    fn identity_payload_round_trips_with_its_policy() {
        let policy = Policy { pin: Some("123456".to_owned()), touch: true };
        let token = Token::generate(policy.clone());
        let again = Token::from_identity_bytes(&token.identity_bytes().unwrap()).unwrap();
        assert_eq!(again.policy, policy);
        assert_eq!(again.recipient_bytes(), token.recipient_bytes());
    }

    #[test]
    fn a_wrapped_file_key_opens_only_with_its_token() {
        let token = Token::generate(Policy::default());
        let other = Token::generate(Policy::default());
        let recipient = TokenRecipient::from_bytes(&token.recipient_bytes()).unwrap();
        let stanza = recipient.wrap(&file_key(7)).unwrap();
        assert_eq!(stanza.tag, STANZA_TAG);
        let unwrapped = token.unwrap(&stanza).expect("own stanza").unwrap();
        assert_eq!(unwrapped.expose_secret(), &[7; 16]);
        assert!(other.unwrap(&stanza).is_none(), "another token's key must not open it");
    }

    #[test]
    fn malformed_identities_are_refused() {
        let token = Token::generate(Policy::default());
        let mut bytes = token.identity_bytes().unwrap();
        assert!(Token::from_identity_bytes(&bytes[..2]).is_err());
        bytes[0] = 9;
        assert!(Token::from_identity_bytes(&bytes).is_err());
        bytes[0] = IDENTITY_FORMAT;
        bytes[2] = 3; // a PIN length without the PIN flag
        assert!(Token::from_identity_bytes(&bytes).is_err());
    }
}
