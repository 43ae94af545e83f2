//! The age header at the start of every drop's ciphertext, and the one rule
//! about it: it holds exactly one recipient stanza per key the sender's
//! manifest lists in `encrypted_to`, and nothing that could carry the file
//! key to anyone else.
//!
//! The header is not secret (it is the cleartext start of the ciphertext),
//! so the hub applies [`check_recipients`] at commit, and every recipient
//! again before decrypting: a drop encrypted to more keys than its manifest
//! says would otherwise be readable by someone nobody agreed to.
//!
//! The stanzas are parsed with age-core's own parser (the one the `age`
//! crate uses), so what is counted here is what age will read. Which
//! recipient a stanza is for cannot be told from the header (an X25519 or
//! `mlkem768x25519` stanza names only an ephemeral share), so the rule counts
//! stanzas by type against the keys listed of that kind
//! ([`crate::age_keys`]): `mlkem768x25519` for post-quantum keys, `X25519`
//! for classic ones, and for keys held by age plugins, stanzas of any other
//! type (a plugin chooses its own), one per plugin key. A drop is never
//! mixed: post-quantum stanzas beside any other kind are refused, as the age
//! spec requires.

use std::collections::{BTreeMap, BTreeSet};

use crate::drop::EncryptedTo;

/// The first line of every age v1 file.
const MAGIC: &[u8] = b"age-encryption.org/v1\n";
/// The start of the header's last line (`--- <MAC>`).
const MAC_TAG: &[u8] = b"---";
/// The MAC line: `--- ` and 43 base64 characters (32 bytes) and a line feed.
const MAC_LINE_LEN: usize = 3 + 1 + 43 + 1;

use crate::age_keys::{DropKind, KeyKind, drop_kind};
pub use crate::age_keys::{MLKEM768X25519, X25519};

/// The suffix of the one stanza age itself adds to every header it writes
/// (`grease_the_joint`: random tag, arguments and body, so parsers keep
/// ignoring unknown types). It wraps nothing age writes: allowed once.
const GREASE_SUFFIX: &str = "-grease";

/// Bytes of header to read at most for a drop listing `keys` keys: the
/// magic line, the MAC line, age's grease stanza (at most about 230 bytes)
/// and 2 KiB per key (an X25519 stanza is 98 bytes; an `mlkem768x25519`
/// one about 1,560). A longer header is refused without reading further.
pub fn max_header_len(keys: usize) -> usize {
    1024 + 2048 * keys
}

/// One recipient stanza as the header holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StanzaShape {
    /// Its type (`X25519`, ...).
    pub tag: String,
    /// How many arguments follow the type.
    pub args: usize,
    /// Its decoded body's length in bytes.
    pub body_len: usize,
}

/// A parsed header: its stanzas, and how many bytes it takes (where the
/// encrypted payload starts).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// The recipient stanzas, in order.
    pub stanzas: Vec<StanzaShape>,
    /// The header's length in bytes, MAC line included.
    pub len: usize,
}

/// Why a header was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// Not an age v1 binary file (armored, another version, or not age).
    #[error("the ciphertext is not an age v1 file")]
    NotAge,
    /// The header does not parse.
    #[error("the ciphertext's age header is malformed ({0})")]
    Malformed(String),
    /// The header is longer than a drop for this many keys can need.
    #[error("the ciphertext's age header is longer than {0} bytes, more than its keys need")]
    TooLong(usize),
    /// The stanzas do not match the keys the manifest lists.
    #[error("{0}")]
    Mismatch(String),
}

/// Parses the age header at the start of `bytes`. `Ok(None)`: `bytes` ends
/// before the header does (read more, up to [`max_header_len`]).
pub fn parse(bytes: &[u8]) -> Result<Option<Header>, HeaderError> {
    let head = &bytes[..bytes.len().min(MAGIC.len())];
    if !MAGIC.starts_with(head) {
        return Err(HeaderError::NotAge);
    }
    if bytes.len() < MAGIC.len() {
        return Ok(None);
    }
    let mut rest = &bytes[MAGIC.len()..];
    let mut stanzas = Vec::new();
    loop {
        if rest.len() < MAC_TAG.len() {
            return Ok(None);
        }
        if rest.starts_with(MAC_TAG) {
            if stanzas.is_empty() {
                return Err(HeaderError::Malformed("it has no recipient stanza".into()));
            }
            if rest.len() < MAC_LINE_LEN {
                return Ok(None);
            }
            // The MAC itself is age's to check when it decrypts; only the
            // line's shape decides where the header ends.
            let line = &rest[..MAC_LINE_LEN];
            let mac = &line[4..MAC_LINE_LEN - 1];
            if line[3] != b' ' || line[MAC_LINE_LEN - 1] != b'\n' || !is_base64_of_32_bytes(mac) {
                return Err(HeaderError::Malformed("its MAC line is not `--- ` and 32 bytes in base64".into()));
            }
            let len = bytes.len() - rest.len() + MAC_LINE_LEN;
            return Ok(Some(Header { stanzas, len }));
        }
        match age_core::format::read::age_stanza(rest) {
            Ok((after, stanza)) => {
                stanzas.push(StanzaShape {
                    tag: stanza.tag.to_owned(),
                    args: stanza.args.len(),
                    body_len: stanza.body().len(),
                });
                rest = after;
            }
            Err(e) if e.is_incomplete() => return Ok(None),
            Err(_) => {
                return Err(HeaderError::Malformed(format!("recipient stanza {} does not parse", stanzas.len() + 1)));
            }
        }
    }
}

/// Canonical unpadded base64 of exactly 32 bytes, as age writes (and reads) a MAC.
fn is_base64_of_32_bytes(text: &[u8]) -> bool {
    use base64::Engine as _;
    let mut out = [0u8; 33];
    matches!(base64::engine::general_purpose::STANDARD_NO_PAD.decode_slice(text, &mut out), Ok(32))
}

/// The stanzas a plugin key's recipient is counted against: any type
/// other than age's native ones and its grease.
const PLUGIN_STANZAS: &str = "plugin";

/// The rule: `header` holds exactly one recipient stanza per key in
/// `encrypted_to` (counted by kind, each native stanza of the shape its type
/// has), at most age's own grease stanza besides, and nothing else; no key is
/// listed twice; the keys are all post-quantum or none are. The hub applies
/// it at commit, the recipient before decrypting. Returns whether the drop is
/// post-quantum.
pub fn check_recipients(header: &Header, encrypted_to: &[EncryptedTo]) -> Result<DropKind, HeaderError> {
    let mut keys = BTreeSet::new();
    let mut kinds = Vec::new();
    let mut listed: BTreeMap<&'static str, usize> = BTreeMap::new();
    for e in encrypted_to {
        if !keys.insert(e.age_recipient.as_str()) {
            return Err(HeaderError::Mismatch(format!("the manifest lists key {} twice in encrypted_to", e.key)));
        }
        let Some(kind) = crate::age_keys::kind_of(&e.age_recipient) else {
            return Err(HeaderError::Mismatch(format!(
                "the manifest lists key {} with an age recipient of a kind sealdrop does not encrypt to",
                e.key
            )));
        };
        kinds.push((e.key.as_str(), kind));
        *listed.entry(stanzas_for(kind)).or_default() += 1;
    }
    let drop = drop_kind(kinds).map_err(|e| HeaderError::Mismatch(format!("the manifest's encrypted_to: {e}")))?;
    let mut found: BTreeMap<&str, usize> = BTreeMap::new();
    let mut grease = 0;
    let plugin_keys = listed.get(PLUGIN_STANZAS).copied().unwrap_or(0);
    for (i, s) in header.stanzas.iter().enumerate() {
        let n = i + 1;
        if s.tag == X25519 || s.tag == MLKEM768X25519 {
            // X25519: an ephemeral share, and the wrapped file key (32 bytes).
            // mlkem768x25519: the HPKE encapsulated key, and the same 32 bytes.
            if s.args != 1 || s.body_len != 32 {
                return Err(HeaderError::Malformed(format!("{} stanza {n} is not shaped like one", s.tag)));
            }
            *found.entry(if s.tag == X25519 { X25519 } else { MLKEM768X25519 }).or_default() += 1;
        } else if s.tag.ends_with(GREASE_SUFFIX) && grease == 0 {
            grease += 1;
        } else if plugin_keys > 0 {
            *found.entry(PLUGIN_STANZAS).or_default() += 1;
        } else {
            return Err(HeaderError::Mismatch(format!(
                "recipient stanza {n} is of type {:?}, which sealdrop does not encrypt to: the file key may be wrapped for someone the manifest does not list",
                s.tag
            )));
        }
    }
    for kind in listed.keys().chain(found.keys()).collect::<BTreeSet<_>>() {
        let (want, got) = (listed.get(kind).copied().unwrap_or(0), found.get(kind).copied().unwrap_or(0));
        if want != got {
            let what = if *kind == PLUGIN_STANZAS { "plugin" } else { kind };
            return Err(HeaderError::Mismatch(format!(
                "the age header holds {got} {what} recipient stanza(s) but the manifest lists {want} such key(s) in encrypted_to: {}",
                if got > want {
                    "the drop is readable by keys it does not name"
                } else {
                    "some listed keys cannot decrypt it"
                }
            )));
        }
    }
    Ok(drop)
}

/// The stanza type a key of `kind` is counted against.
fn stanzas_for(kind: KeyKind) -> &'static str {
    match kind {
        KeyKind::PostQuantum => MLKEM768X25519,
        KeyKind::Classic => X25519,
        KeyKind::Plugin => PLUGIN_STANZAS,
    }
}

/// Parses the header at the start of `prefix` (all of the ciphertext's
/// first bytes, up to [`max_header_len`] for `encrypted_to`) and applies
/// [`check_recipients`]. `complete`: `prefix` is the whole ciphertext, so
/// a header that has not ended is truncated. Returns the header's length,
/// or `Ok(None)` when more bytes are needed.
pub fn check(prefix: &[u8], encrypted_to: &[EncryptedTo], complete: bool) -> Result<Option<usize>, HeaderError> {
    let limit = max_header_len(encrypted_to.len());
    match parse(&prefix[..prefix.len().min(limit)])? {
        Some(header) => check_recipients(&header, encrypted_to).map(|_| Some(header.len)),
        None if complete && prefix.len() < limit => Err(HeaderError::Malformed("it ends before its MAC line".into())),
        None if prefix.len() >= limit => Err(HeaderError::TooLong(limit)),
        None => Ok(None),
    }
}

/// Reads the header from the start of `input` (at most [`max_header_len`]
/// bytes) and checks it against `encrypted_to`. Returns every byte read
/// (the caller passes them on to age before the rest of `input`) and the
/// verdict; an error reading `input` is returned as such.
pub fn read_and_check(
    input: &mut impl std::io::Read,
    encrypted_to: &[EncryptedTo],
) -> std::io::Result<(Vec<u8>, Result<usize, HeaderError>)> {
    let limit = max_header_len(encrypted_to.len());
    let mut buf = Vec::with_capacity(4096.min(limit));
    let mut chunk = [0u8; 4096];
    loop {
        let want = chunk.len().min(limit - buf.len()).max(1);
        let n = match input.read(&mut chunk[..want]) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        buf.extend_from_slice(&chunk[..n]);
        match check(&buf, encrypted_to, n == 0) {
            Ok(None) => {}
            Ok(Some(len)) => return Ok((buf, Ok(len))),
            Err(e) => return Ok((buf, Err(e))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read as _, Write as _};

    use crate::age_keys::{AgeIdentity, AgeRecipient};

    /// A classic key (most rules here are about counting, the same for every kind).
    fn key(name: &str) -> (AgeIdentity, EncryptedTo) {
        key_of(name, AgeIdentity::generate_classic())
    }

    fn pq_key(name: &str) -> (AgeIdentity, EncryptedTo) {
        key_of(name, AgeIdentity::generate())
    }

    fn key_of(name: &str, id: AgeIdentity) -> (AgeIdentity, EncryptedTo) {
        let e = EncryptedTo { key: name.to_owned(), age_recipient: id.to_public().unwrap().to_string() };
        (id, e)
    }

    fn encrypt(to: &[&EncryptedTo], plaintext: &[u8]) -> Vec<u8> {
        let recipients: Vec<AgeRecipient> = to.iter().map(|e| e.age_recipient.parse().unwrap()).collect();
        let enc = age::Encryptor::with_recipients(recipients.iter().map(|r| r.native().unwrap())).unwrap();
        let mut out = Vec::new();
        let mut w = enc.wrap_output(&mut out).unwrap();
        w.write_all(plaintext).unwrap();
        w.finish().unwrap();
        out
    }

    #[test]
    fn a_header_with_one_stanza_per_listed_key_passes_and_ends_where_age_reads_on() {
        let (a_id, a) = key("islington/data-team");
        let (_, b) = key("hackney/data-team");
        let ct = encrypt(&[&a, &b], b"hello");
        let len = check(&ct, &[a.clone(), b.clone()], true).unwrap().unwrap();
        // What follows the header is the payload: age decrypts from there.
        let header = parse(&ct).unwrap().unwrap();
        assert_eq!(header.len, len);
        assert_eq!(header.stanzas.iter().filter(|s| s.tag == X25519).count(), 2);
        assert!(header.stanzas.iter().any(|s| s.tag.ends_with("-grease")), "age writes a grease stanza");
        let mut plain = Vec::new();
        age::Decryptor::new(&ct[..])
            .unwrap()
            .decrypt(std::iter::once(a_id.native().unwrap()))
            .unwrap()
            .read_to_end(&mut plain)
            .unwrap();
        assert_eq!(plain, b"hello");
        // Read from a stream, the bytes read come back to be passed on.
        let (read, verdict) = read_and_check(&mut &ct[..], &[a, b]).unwrap();
        assert_eq!(verdict.unwrap(), len);
        assert!(ct.starts_with(&read) && read.len() >= len);
    }

    #[test]
    fn an_extra_key_a_missing_one_or_a_listed_key_twice_is_refused() {
        let (_, a) = key("islington/data-team");
        let (_, b) = key("hackney/data-team");
        let (_, eve) = key("eve");
        let to_three = encrypt(&[&a, &b, &eve], b"x");
        let e = check(&to_three, &[a.clone(), b.clone()], true).unwrap_err();
        assert!(matches!(&e, HeaderError::Mismatch(m) if m.contains("3 X25519") && m.contains("lists 2")), "{e}");
        let to_one = encrypt(&[&a], b"x");
        assert!(matches!(check(&to_one, &[a.clone(), b.clone()], true), Err(HeaderError::Mismatch(_))));
        let to_a = encrypt(&[&a], b"x");
        let e = check(&to_a, &[a.clone(), a.clone()], true).unwrap_err();
        assert!(e.to_string().contains("twice"), "{e}");
        assert!(check(&to_a, &[a], true).unwrap().is_some());
    }

    #[test]
    fn a_post_quantum_drop_holds_only_mlkem768x25519_stanzas() {
        let (a_id, a) = pq_key("islington/data-team");
        let (_, b) = pq_key("hackney/data-team");
        let ct = encrypt(&[&a, &b], b"hello");
        let header = parse(&ct).unwrap().unwrap();
        let tags: Vec<&str> =
            header.stanzas.iter().map(|s| s.tag.as_str()).filter(|t| !t.ends_with("-grease")).collect();
        assert_eq!(tags, [MLKEM768X25519, MLKEM768X25519]);
        assert_eq!(check_recipients(&header, &[a.clone(), b.clone()]), Ok(DropKind::PostQuantum));
        let mut plain = Vec::new();
        age::Decryptor::new(&ct[..])
            .unwrap()
            .decrypt(std::iter::once(a_id.native().unwrap()))
            .unwrap()
            .read_to_end(&mut plain)
            .unwrap();
        assert_eq!(plain, b"hello");
        // One post-quantum key more than listed, or one fewer, is refused as for classic keys.
        let (_, eve) = pq_key("eve");
        let e = check(&encrypt(&[&a, &b, &eve], b"x"), &[a.clone(), b.clone()], true).unwrap_err();
        assert!(matches!(&e, HeaderError::Mismatch(m) if m.contains("3 mlkem768x25519")), "{e}");
        // A classic drop is classic.
        let (_, c) = key("camden/data-team");
        let classic = parse(&encrypt(&[&c], b"x")).unwrap().unwrap();
        assert_eq!(check_recipients(&classic, std::slice::from_ref(&c)), Ok(DropKind::Classic));
    }

    #[test]
    fn a_drop_mixing_post_quantum_and_classic_stanzas_is_refused() {
        let (_, pq) = pq_key("islington/data-team");
        let (_, classic) = key("hackney/data-team");
        // age itself will not write such a file; a hostile sender writes the header by hand.
        let x = format!("-> X25519 {}\n{}A\n", "B".repeat(43), "C".repeat(42));
        let m = format!("-> mlkem768x25519 {}\n{}A\n", "B".repeat(1494), "C".repeat(42));
        let e = check(&header_with(&format!("{m}{x}")), &[pq, classic], true).unwrap_err();
        assert!(
            matches!(&e, HeaderError::Mismatch(m) if m.contains("is post-quantum but hackney/data-team is classic")),
            "{e}"
        );
    }

    #[test]
    fn a_plugin_key_is_counted_against_one_stanza_of_the_plugins_own_type() {
        let plugin = EncryptedTo {
            key: "camden/yubikey".into(),
            age_recipient: {
                let hrp = bech32::Hrp::parse("age1yubikey").unwrap();
                bech32::encode::<bech32::Bech32>(hrp, &[7u8; 33]).unwrap()
            },
        };
        let (_, c) = key("camden/data-team");
        let x = format!("-> X25519 {}\n{}A\n", "B".repeat(43), "C".repeat(42));
        let piv = "-> piv-p256 abc def\nAAAA\n";
        let both = [plugin.clone(), c.clone()];
        assert!(check(&header_with(&format!("{x}{piv}")), &both, true).unwrap().is_some());
        // A second plugin stanza is one reader too many; none is one too few.
        let e = check(&header_with(&format!("{x}{piv}{piv}")), &both, true).unwrap_err();
        assert!(matches!(&e, HeaderError::Mismatch(m) if m.contains("2 plugin")), "{e}");
        assert!(matches!(check(&header_with(&x), &both, true), Err(HeaderError::Mismatch(_))));
    }

    /// A header written by hand: the magic line, `stanzas` and a MAC line.
    fn header_with(stanzas: &str) -> Vec<u8> {
        format!("age-encryption.org/v1\n{stanzas}--- {}\npayload", "A".repeat(43)).into_bytes()
    }

    #[test]
    fn another_stanza_type_or_a_second_grease_is_refused() {
        let (_, a) = key("a");
        // A 32-byte body is 43 base64 characters, the last of them with no trailing bits.
        let body = format!("{}A", "C".repeat(42));
        let x = format!("-> X25519 {}\n{body}\n", "B".repeat(43));
        assert!(check(&header_with(&x), std::slice::from_ref(&a), true).unwrap().is_some());
        let grease = "-> a-grease x y\nAAAA\n";
        assert!(check(&header_with(&format!("{x}{grease}")), std::slice::from_ref(&a), true).unwrap().is_some());
        let twice = format!("{x}{grease}{grease}");
        assert!(matches!(check(&header_with(&twice), std::slice::from_ref(&a), true), Err(HeaderError::Mismatch(_))));
        for other in ["-> scrypt c2FsdA 18\nAAAA\n", "-> ssh-ed25519 abc def\nAAAA\n", "-> piv-p256 abc def\nAAAA\n"] {
            let e = check(&header_with(&format!("{x}{other}")), std::slice::from_ref(&a), true).unwrap_err();
            assert!(matches!(&e, HeaderError::Mismatch(m) if m.contains("does not encrypt to")), "{other}: {e}");
        }
        // An X25519 stanza that is not shaped like one.
        let odd = format!("-> X25519 {} extra\n{body}\n", "B".repeat(43));
        assert!(matches!(check(&header_with(&odd), &[a], true), Err(HeaderError::Malformed(_))));
    }

    #[test]
    fn truncated_overlong_and_foreign_headers_are_refused() {
        let (_, a) = key("a");
        let ct = encrypt(&[&a], b"x");
        let header_len = parse(&ct).unwrap().unwrap().len;
        for cut in [0, 5, 22, 30, header_len - 1] {
            assert_eq!(check(&ct[..cut], std::slice::from_ref(&a), false).unwrap(), None, "{cut}");
            assert!(matches!(check(&ct[..cut], std::slice::from_ref(&a), true), Err(HeaderError::Malformed(_))));
        }
        assert_eq!(
            check(b"-----BEGIN AGE ENCRYPTED FILE-----\n", std::slice::from_ref(&a), false),
            Err(HeaderError::NotAge)
        );
        assert_eq!(check(b"age-encryption.org/v2\n", std::slice::from_ref(&a), false), Err(HeaderError::NotAge));
        let endless = format!("age-encryption.org/v1\n{}", "-> x-grease\nAAAA\n".repeat(1000));
        let limit = max_header_len(1);
        assert_eq!(check(endless.as_bytes(), std::slice::from_ref(&a), false), Err(HeaderError::TooLong(limit)));
        let (read, verdict) = read_and_check(&mut endless.as_bytes(), std::slice::from_ref(&a)).unwrap();
        assert_eq!(read.len(), limit, "reading stops at the limit");
        assert_eq!(verdict, Err(HeaderError::TooLong(limit)));
        assert!(matches!(parse(b"age-encryption.org/v1\n--- x\n"), Err(HeaderError::Malformed(_))));
        assert!(matches!(parse(b"age-encryption.org/v1\n-> \n"), Err(HeaderError::Malformed(_))));
    }
}
