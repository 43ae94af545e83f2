//! The kinds of age key a member can hold, and the rules about mixing them.
//!
//! - **Post-quantum** (`age1pq1...` / `AGE-SECRET-KEY-PQ-1...`): the hybrid
//!   ML-KEM-768 + X25519 recipient of the C2SP age spec (`mlkem768x25519`
//!   stanzas), the default for new keys. Records of vulnerable children stay
//!   sensitive for decades, and a hub is where ciphertext is harvested in bulk
//!   ("harvest now, decrypt later").
//! - **Classic** (`age1...` / `AGE-SECRET-KEY-1...`): X25519 (`X25519`
//!   stanzas). Keys made before post-quantum keys existed keep working.
//! - **Plugin** (`age1<name>1...` / `AGE-PLUGIN-<NAME>-1...`): a key held by
//!   an age plugin (a YubiKey, a TPM). Encrypting to it runs the plugin on
//!   the sender's machine; its stanza's type is the plugin's own. Whether a
//!   plugin's stanzas resist a quantum computer cannot be told from its
//!   recipient, so sealdrop counts a plugin key as not post-quantum.
//!
//! The cryptography is the `age` crate's own (`age::pq` since age 0.13),
//! composed by its maintainers and checked against the C2SP CCTV vectors in
//! `tests/cctv_age.rs`; this module only names and sorts keys. Everything
//! that knows which key kinds exist is here, so a new kind is one place.
//!
//! The rule about mixing ([`drop_kind`]): the age spec forbids a file whose
//! recipients are partly post-quantum (an attacker with a quantum computer
//! would simply unwrap the classic stanza), so a drop's keys are all
//! post-quantum or none are. A party's members are encrypted to together, so
//! the coordinator's directory keeps each party to one side
//! (`Directory::validate`).

#![allow(deprecated)] // age 0.13 deprecates X25519 encryption; classic keys are supported here on purpose.

use std::fmt;
use std::str::FromStr;

use age::secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};

/// The stanza type of a post-quantum recipient.
pub const MLKEM768X25519: &str = "mlkem768x25519";
/// The stanza type of a classic recipient.
pub const X25519: &str = "X25519";

/// Which kind of age key a recipient or identity is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyKind {
    /// Hybrid ML-KEM-768 + X25519 (`age1pq1...`).
    PostQuantum,
    /// X25519 (`age1...`).
    Classic,
    /// Held by an age plugin (`age1<plugin>1...`).
    Plugin,
}

impl KeyKind {
    /// Safe against a future quantum computer.
    pub fn is_post_quantum(self) -> bool {
        self == KeyKind::PostQuantum
    }
    /// The word people read: `post-quantum`, `classic`, `plugin`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::PostQuantum => "post-quantum",
            KeyKind::Classic => "classic",
            KeyKind::Plugin => "plugin",
        }
    }
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Plugin names that look like a plugin but are age's own native
/// recipient types (`age1tag1...`, `age1tagpq1...`), which sealdrop does
/// not encrypt to yet: read as plugins they would run a binary that does
/// not exist.
const NATIVE_NOT_SUPPORTED: [&str; 2] = ["tag", "tagpq"];

/// Where a member's files are encrypted to.
#[derive(Clone)]
pub enum AgeRecipient {
    /// `age1pq1...`.
    PostQuantum(Box<age::pq::Recipient>),
    /// `age1...`.
    Classic(age::x25519::Recipient),
    /// `age1<plugin>1...`.
    Plugin(age::plugin::Recipient),
}

impl AgeRecipient {
    /// Its kind.
    pub fn kind(&self) -> KeyKind {
        match self {
            AgeRecipient::PostQuantum(_) => KeyKind::PostQuantum,
            AgeRecipient::Classic(_) => KeyKind::Classic,
            AgeRecipient::Plugin(_) => KeyKind::Plugin,
        }
    }
    /// The stanza type age writes for it, or `None` for a plugin (whose
    /// stanzas carry a type of the plugin's choosing).
    pub fn stanza_type(&self) -> Option<&'static str> {
        match self {
            AgeRecipient::PostQuantum(_) => Some(MLKEM768X25519),
            AgeRecipient::Classic(_) => Some(X25519),
            AgeRecipient::Plugin(_) => None,
        }
    }
    /// The recipient as age's own type, for a native key (`None` for a
    /// plugin key, which needs the plugin run with callbacks: the client's
    /// business).
    pub fn native(&self) -> Option<&dyn age::Recipient> {
        match self {
            AgeRecipient::PostQuantum(r) => Some(r.as_ref()),
            AgeRecipient::Classic(r) => Some(r),
            AgeRecipient::Plugin(_) => None,
        }
    }
    /// The recipient of a plugin key (`None` for a native key).
    pub fn plugin(&self) -> Option<&age::plugin::Recipient> {
        match self {
            AgeRecipient::Plugin(p) => Some(p),
            _ => None,
        }
    }
}

/// Why an age recipient or identity was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AgeKeyError {
    /// Not a recipient of a kind sealdrop encrypts to.
    #[error(
        "{0:?} is not an age recipient sealdrop encrypts to (post-quantum `age1pq1...`, classic `age1...`, or a plugin's `age1<name>1...`)"
    )]
    BadRecipient(String),
    /// A native type sealdrop does not support yet.
    #[error(
        "age recipients of type `age1{0}1...` are not supported by sealdrop yet; use the plugin's own recipient (`age1<plugin>1...`)"
    )]
    UnsupportedNative(String),
    /// Not an identity of a kind sealdrop decrypts with.
    #[error(
        "not an age identity sealdrop decrypts with (post-quantum `AGE-SECRET-KEY-PQ-1...`, classic `AGE-SECRET-KEY-1...`, or a plugin's `AGE-PLUGIN-<NAME>-1...`)"
    )]
    BadIdentity,
}

impl FromStr for AgeRecipient {
    type Err = AgeKeyError;
    /// Remembered per recipient text (see [`kinds`]): a sender parses
    /// every recipient's key for each send and every member's key for each
    /// directory it verifies, and a post-quantum key is ~1,960 characters of
    /// Bech32 (7.8 % of the client's CPU a small drop, and 4 % more in
    /// checking the directory, before this).
    fn from_str(s: &str) -> Result<Self, AgeKeyError> {
        kinds::parsed(s, parse_recipient)
    }
}

/// Parses an age recipient of a kind sealdrop encrypts to.
fn parse_recipient(s: &str) -> Result<AgeRecipient, AgeKeyError> {
    // Post-quantum first: a plugin recipient's prefix `age1` + name
    // would also match `age1pq`.
    if let Ok(r) = s.parse::<age::pq::Recipient>() {
        return Ok(AgeRecipient::PostQuantum(Box::new(r)));
    }
    if let Ok(r) = s.parse::<age::x25519::Recipient>() {
        return Ok(AgeRecipient::Classic(r));
    }
    match s.parse::<age::plugin::Recipient>() {
        // A malformed `age1pq1...` is a bad recipient, not a plugin called `pq`.
        Ok(r) if r.plugin() == "pq" => Err(AgeKeyError::BadRecipient(s.to_owned())),
        Ok(r) if NATIVE_NOT_SUPPORTED.contains(&r.plugin()) => {
            Err(AgeKeyError::UnsupportedNative(r.plugin().to_owned()))
        }
        Ok(r) => Ok(AgeRecipient::Plugin(r)),
        Err(_) => Err(AgeKeyError::BadRecipient(s.to_owned())),
    }
}

impl fmt::Display for AgeRecipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AgeRecipient::PostQuantum(r) => r.fmt(f),
            AgeRecipient::Classic(r) => r.fmt(f),
            AgeRecipient::Plugin(r) => r.fmt(f),
        }
    }
}

impl fmt::Debug for AgeRecipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AgeRecipient({}, {})", self.kind(), abbreviated(&self.to_string()))
    }
}

/// A recipient as people can read it in a message: a post-quantum one is
/// ~1,960 characters.
pub fn abbreviated(recipient: &str) -> String {
    if recipient.len() <= 40 {
        return recipient.to_owned();
    }
    format!("{}...{}", &recipient[..20], &recipient[recipient.len() - 8..])
}

/// The kind of the age recipient written as `recipient`, if sealdrop
/// encrypts to it.
///
/// Remembered per recipient (by its SHA-256): parsing a post-quantum
/// recipient decodes ~1,960 characters of Bech32 and checks its X25519 half,
/// which cost the hub ~13 % of its CPU on small drops (its commit checks
/// each `encrypted_to` key twice), while a directory lists the same few
/// hundred keys all day. The answer depends on the text alone, so
/// remembering it changes nothing but the time.
pub fn kind_of(recipient: &str) -> Option<KeyKind> {
    kinds::remembered(recipient, |r| r.parse::<AgeRecipient>().ok().map(|r| r.kind()))
}

/// The memory behind [`kind_of`] and parsing an [`AgeRecipient`], bounded.
mod kinds {
    use std::collections::HashMap;
    use std::sync::{LazyLock, Mutex, PoisonError};

    use sha2::{Digest as _, Sha256};

    use super::{AgeKeyError, AgeRecipient, KeyKind};

    /// At most this many recipients are remembered (~50 bytes each); past
    /// it the memory starts again, so text nobody lists (a forged
    /// manifest's) cannot grow it.
    pub(super) const MAX: usize = 4096;

    static SEEN: LazyLock<Mutex<HashMap<[u8; 32], Option<KeyKind>>>> = LazyLock::new(Mutex::default);

    /// At most this many parsed recipients are remembered (a few KiB
    /// each, a post-quantum key being an ML-KEM-768 encapsulation key).
    pub(super) const MAX_PARSED: usize = 256;

    static PARSED: LazyLock<Mutex<HashMap<[u8; 32], AgeRecipient>>> = LazyLock::new(Mutex::default);

    /// Only recipients that parsed are remembered: a refusal quotes the
    /// text, which may be long and is nobody's key.
    pub(super) fn parsed(
        recipient: &str,
        parse: impl FnOnce(&str) -> Result<AgeRecipient, AgeKeyError>,
    ) -> Result<AgeRecipient, AgeKeyError> {
        let key: [u8; 32] = Sha256::digest(recipient.as_bytes()).into();
        if let Some(parsed) = PARSED.lock().unwrap_or_else(PoisonError::into_inner).get(&key) {
            return Ok(parsed.clone());
        }
        let parsed = parse(recipient)?;
        let mut seen = PARSED.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.len() >= MAX_PARSED {
            seen.clear();
        }
        seen.insert(key, parsed.clone());
        Ok(parsed)
    }

    #[cfg(test)]
    pub(super) fn parsed_len() -> usize {
        PARSED.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    pub(super) fn remembered(recipient: &str, parse: impl FnOnce(&str) -> Option<KeyKind>) -> Option<KeyKind> {
        let key: [u8; 32] = Sha256::digest(recipient.as_bytes()).into();
        if let Some(kind) = SEEN.lock().unwrap_or_else(PoisonError::into_inner).get(&key) {
            return *kind;
        }
        // Parsed outside the lock: two threads may both parse a new key.
        let kind = parse(recipient);
        let mut seen = SEEN.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.len() >= MAX {
            seen.clear();
        }
        seen.insert(key, kind);
        kind
    }

    #[cfg(test)]
    pub(super) fn len() -> usize {
        SEEN.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

/// A member's age decryption key. Secret: never printed by `Debug`.
#[derive(Clone)]
pub enum AgeIdentity {
    /// `AGE-SECRET-KEY-PQ-1...`.
    PostQuantum(Box<age::pq::Identity>),
    /// `AGE-SECRET-KEY-1...`.
    Classic(age::x25519::Identity),
    /// `AGE-PLUGIN-<NAME>-1...`: a reference to a key the plugin's token holds.
    Plugin(age::plugin::Identity),
}

impl AgeIdentity {
    /// A new post-quantum identity.
    pub fn generate() -> Self {
        AgeIdentity::PostQuantum(Box::new(age::pq::Identity::generate()))
    }
    /// A new classic (X25519) identity, for a member whose correspondents
    /// cannot yet read post-quantum files.
    pub fn generate_classic() -> Self {
        AgeIdentity::Classic(age::x25519::Identity::generate())
    }
    /// A new post-quantum key pair: the identity and its recipient.
    pub fn generate_pair() -> (Self, AgeRecipient) {
        let id = age::pq::Identity::generate();
        let recipient = AgeRecipient::PostQuantum(Box::new(id.to_public()));
        (AgeIdentity::PostQuantum(Box::new(id)), recipient)
    }
    /// A new classic key pair: the identity and its recipient.
    pub fn generate_classic_pair() -> (Self, AgeRecipient) {
        let id = age::x25519::Identity::generate();
        let recipient = AgeRecipient::Classic(id.to_public());
        (AgeIdentity::Classic(id), recipient)
    }
    /// Its kind.
    pub fn kind(&self) -> KeyKind {
        match self {
            AgeIdentity::PostQuantum(_) => KeyKind::PostQuantum,
            AgeIdentity::Classic(_) => KeyKind::Classic,
            AgeIdentity::Plugin(_) => KeyKind::Plugin,
        }
    }
    /// The matching recipient, for a native key (a plugin identity is only a
    /// reference to the token: its recipient comes from the plugin).
    pub fn to_public(&self) -> Option<AgeRecipient> {
        match self {
            AgeIdentity::PostQuantum(id) => Some(AgeRecipient::PostQuantum(Box::new(id.to_public()))),
            AgeIdentity::Classic(id) => Some(AgeRecipient::Classic(id.to_public())),
            AgeIdentity::Plugin(_) => None,
        }
    }
    /// The identity's text, as age identity files hold it. A secret.
    pub fn to_secret_string(&self) -> SecretString {
        match self {
            AgeIdentity::PostQuantum(id) => id.to_string(),
            AgeIdentity::Classic(id) => id.to_string(),
            AgeIdentity::Plugin(id) => SecretString::from(id.to_string()),
        }
    }
    /// The identity as age's own type, for a native key (`None` for a
    /// plugin key, which needs the plugin run with callbacks).
    pub fn native(&self) -> Option<&dyn age::Identity> {
        match self {
            AgeIdentity::PostQuantum(id) => Some(id.as_ref()),
            AgeIdentity::Classic(id) => Some(id),
            AgeIdentity::Plugin(_) => None,
        }
    }
    /// The identity of a plugin key (`None` for a native key).
    pub fn plugin(&self) -> Option<&age::plugin::Identity> {
        match self {
            AgeIdentity::Plugin(p) => Some(p),
            _ => None,
        }
    }
}

impl FromStr for AgeIdentity {
    type Err = AgeKeyError;
    fn from_str(s: &str) -> Result<Self, AgeKeyError> {
        if let Ok(id) = s.parse::<age::pq::Identity>() {
            return Ok(AgeIdentity::PostQuantum(Box::new(id)));
        }
        if let Ok(id) = s.parse::<age::x25519::Identity>() {
            return Ok(AgeIdentity::Classic(id));
        }
        s.parse::<age::plugin::Identity>().map(AgeIdentity::Plugin).map_err(|_| AgeKeyError::BadIdentity)
    }
}

impl fmt::Debug for AgeIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AgeIdentity({}, <secret>)", self.kind())
    }
}

impl PartialEq for AgeIdentity {
    fn eq(&self, other: &Self) -> bool {
        self.to_secret_string().expose_secret() == other.to_secret_string().expose_secret()
    }
}

/// Whether a drop is post-quantum: all its keys are, or none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropKind {
    /// Every stanza is `mlkem768x25519`.
    PostQuantum,
    /// No stanza is post-quantum (classic and plugin keys).
    Classic,
}

impl DropKind {
    /// Whether the drop is post-quantum.
    pub fn is_post_quantum(self) -> bool {
        self == DropKind::PostQuantum
    }
}

/// Why a set of keys cannot be encrypted to together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MixedKeys {
    /// Nothing to encrypt to.
    #[error("there are no keys to encrypt to")]
    None,
    /// Some post-quantum, some not.
    #[error(
        "{post_quantum} is post-quantum but {other} is {other_kind}: one drop cannot be encrypted to both (the age spec forbids it, since the classic key would undo the protection)"
    )]
    Mixed {
        /// A post-quantum key's name.
        post_quantum: String,
        /// A key that is not.
        other: String,
        /// That key's kind.
        other_kind: KeyKind,
    },
}

/// The kind of a drop encrypted to `keys` (`(name, kind)` pairs), or why
/// they cannot share one drop.
pub fn drop_kind<'a>(keys: impl IntoIterator<Item = (&'a str, KeyKind)>) -> Result<DropKind, MixedKeys> {
    let (mut pq, mut other) = (None, None);
    for (name, kind) in keys {
        if kind.is_post_quantum() {
            pq.get_or_insert(name);
        } else {
            other.get_or_insert((name, kind));
        }
    }
    match (pq, other) {
        (None, None) => Err(MixedKeys::None),
        (Some(_), None) => Ok(DropKind::PostQuantum),
        (None, Some(_)) => Ok(DropKind::Classic),
        (Some(p), Some((o, kind))) => {
            Err(MixedKeys::Mixed { post_quantum: p.to_owned(), other: o.to_owned(), other_kind: kind })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A well-formed recipient of plugin `name`.
    fn plugin_recipient(name: &str) -> String {
        let hrp = bech32::Hrp::parse(&format!("age1{name}")).unwrap();
        bech32::encode::<bech32::Bech32>(hrp, &[7u8; 33]).unwrap()
    }

    #[test]
    fn a_remembered_kind_is_the_parsed_one_and_the_memory_stays_bounded() {
        let pq = AgeIdentity::generate().to_public().unwrap().to_string();
        let classic = AgeIdentity::generate_classic().to_public().unwrap().to_string();
        // Asked twice: the second answer comes from memory and must agree.
        for _ in 0..2 {
            assert_eq!(kind_of(&pq), Some(KeyKind::PostQuantum));
            assert_eq!(kind_of(&classic), Some(KeyKind::Classic));
            // One character changed breaks the checksum: not remembered as valid.
            let mut broken = pq.clone();
            broken.replace_range(100..101, if &pq[100..101] == "q" { "p" } else { "q" });
            assert_eq!(kind_of(&broken), None);
        }
        // Parsed recipients come back as the same key, from memory too.
        for _ in 0..2 {
            assert_eq!(pq.parse::<AgeRecipient>().unwrap().to_string(), pq);
            assert_eq!(classic.parse::<AgeRecipient>().unwrap().to_string(), classic);
        }
        for _ in 0..kinds::MAX_PARSED + 10 {
            let fresh = AgeIdentity::generate_classic().to_public().unwrap().to_string();
            assert_eq!(fresh.parse::<AgeRecipient>().unwrap().to_string(), fresh);
        }
        assert!(kinds::parsed_len() <= kinds::MAX_PARSED, "{} parsed remembered", kinds::parsed_len());
        for i in 0..kinds::MAX + 10 {
            assert_eq!(kind_of(&format!("age1nope{i}")), None);
        }
        assert!(kinds::len() <= kinds::MAX, "{} remembered", kinds::len());
        assert_eq!(kind_of(&pq), Some(KeyKind::PostQuantum), "still right after the memory started again");
    }

    #[test]
    fn recipients_are_sorted_by_kind() {
        let pq = AgeIdentity::generate();
        let classic = AgeIdentity::generate_classic();
        let pq_r = pq.to_public().unwrap().to_string();
        assert!(pq_r.starts_with("age1pq1"), "{pq_r}");
        assert_eq!(kind_of(&pq_r), Some(KeyKind::PostQuantum));
        assert_eq!(kind_of(&classic.to_public().unwrap().to_string()), Some(KeyKind::Classic));
        let plugin = plugin_recipient("yubikey");
        assert_eq!(kind_of(&plugin), Some(KeyKind::Plugin));
        assert!(matches!(plugin_recipient("tag").parse::<AgeRecipient>(), Err(AgeKeyError::UnsupportedNative(_))));
        assert_eq!(kind_of("age1nope"), None);
        // A broken post-quantum recipient is not taken for a plugin called `pq`.
        // (Its last character changed to another: a fixed `x` left one key in 32 unchanged.)
        let last = if pq_r.ends_with('x') { 'y' } else { 'x' };
        let broken = format!("{}{last}", &pq_r[..pq_r.len() - 1]);
        assert!(matches!(broken.parse::<AgeRecipient>(), Err(AgeKeyError::BadRecipient(_))));
    }

    #[test]
    fn identities_round_trip_as_text() {
        for id in [AgeIdentity::generate(), AgeIdentity::generate_classic()] {
            let text = id.to_secret_string();
            let back: AgeIdentity = text.expose_secret().parse().unwrap();
            assert_eq!(back, id);
            assert_eq!(back.kind(), id.kind());
            assert!(!format!("{back:?}").contains(text.expose_secret()));
        }
        for (id, recipient) in [AgeIdentity::generate_pair(), AgeIdentity::generate_classic_pair()] {
            assert_eq!(id.to_public().unwrap().to_string(), recipient.to_string(), "a pair belongs together");
        }
        let plugin: AgeIdentity =
            age::plugin::Identity::default_for_plugin("yubikey").unwrap().to_string().parse().unwrap();
        assert_eq!(plugin.kind(), KeyKind::Plugin);
        assert!(plugin.to_public().is_none());
        assert!("AGE-SECRET-KEY-1NOPE".parse::<AgeIdentity>().is_err());
    }

    #[test]
    fn a_drop_never_mixes_post_quantum_and_other_keys() {
        use KeyKind::*;
        assert_eq!(drop_kind([("a", PostQuantum), ("b", PostQuantum)]), Ok(DropKind::PostQuantum));
        assert_eq!(drop_kind([("a", Classic), ("b", Plugin)]), Ok(DropKind::Classic));
        assert_eq!(drop_kind([]), Err(MixedKeys::None));
        let err = drop_kind([("camden/a", PostQuantum), ("hackney/b", Classic)]).unwrap_err();
        assert!(err.to_string().contains("camden/a is post-quantum but hackney/b is classic"), "{err}");
    }
}
