//! Identifiers that cross the wire: party ids, member names and drop ids.
//!
//! Every identifier is validated when it is parsed, so code that holds a
//! [`PartyId`] or a [`DropId`] never has to ask whether it might contain a
//! path separator, a space or an upper-case letter.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why an identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error(
        "party id {0:?} is not valid: use lowercase letters, digits and single hyphens, e.g. `camden` or `city-of-london`"
    )]
    Party(String),
    #[error("member name {0:?} is not valid: use lowercase letters, digits, '.', '_' and '-' (at most 64 characters)")]
    Member(String),
    #[error("drop id {0:?} is not valid: a drop id is `d-` followed by 26 lowercase letters and digits")]
    Drop(String),
}

fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
        && !s.contains("--")
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $check:expr, $err:path) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// The identifier as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                let check: fn(&str) -> bool = $check;
                if check(s) { Ok(Self(s.to_owned())) } else { Err($err(s.to_owned())) }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

string_id!(
    /// An organisation's id: its lowercase name with spaces as hyphens
    /// (`camden`, `city-of-london`, `barking-and-dagenham`).
    PartyId,
    is_slug,
    IdError::Party
);

string_id!(
    /// A member of a party (a person or a team holding one key pair), unique
    /// within the party: `data-team`, `j.smith`.
    MemberName,
    |s| !s.is_empty()
        && s.len() <= 64
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        && !s.starts_with('.'),
    IdError::Member
);

string_id!(
    /// A drop's id, chosen by the hub at creation: `d-` and 26 base32 characters
    /// (130 random bits), safe in URLs and file names.
    DropId,
    |s| s.len() == 28
        && s.starts_with("d-")
        && s[2..].bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
    IdError::Drop
);

/// The OpenAPI schema of an identifier: a string of the documented form.
#[cfg(feature = "openapi")]
macro_rules! id_schema {
    ($name:ident, $pattern:expr, $description:expr, $example:expr) => {
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .pattern(Some($pattern))
                    .description(Some($description))
                    .examples([serde_json::json!($example)])
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

#[cfg(feature = "openapi")]
id_schema!(
    PartyId,
    "^[a-z0-9]+(-[a-z0-9]+)*$",
    "A party's id: lowercase letters, digits and single hyphens, at most 64 characters.",
    "camden"
);
#[cfg(feature = "openapi")]
id_schema!(
    DropId,
    "^d-[a-z0-9]{26}$",
    "A drop's id, chosen by the hub: `d-` and 26 lowercase letters and digits.",
    "d-abcdefghijklmnopqrstuvwxyz"
);

impl PartyId {
    /// Derives the id from a display name: "Barking and Dagenham" becomes
    /// `barking-and-dagenham`. Returns `None` when nothing usable is left.
    pub fn from_display_name(name: &str) -> Option<Self> {
        let mut out = String::new();
        for word in name.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()) {
            if !out.is_empty() {
                out.push('-');
            }
            out.push_str(&word.to_ascii_lowercase());
        }
        out.parse().ok()
    }
}

impl DropId {
    /// A fresh random drop id.
    pub fn random() -> Self {
        use rand::RngCore;
        let mut bytes = [0u8; 26];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self::from_bytes(&bytes)
    }

    /// The id a sender gives the drop it sends under idempotency key `key`
    /// (64 hex digits) from `party` in one request (`PUT /v1/drops/{id}`): a
    /// re-run of the same send asks for the same id, so the hub answers it
    /// with the drop already committed instead of a second one. A hash with
    /// its own domain, so the id says nothing the key does not.
    pub fn for_idempotency_key(party: &PartyId, key: &str) -> Self {
        use sha2::Digest as _;
        let mut h = sha2::Sha256::new();
        h.update(b"sealdrop/drop-id-for-idempotency-key/v1\0");
        h.update(party.as_str().as_bytes());
        h.update(b"\0");
        h.update(key.as_bytes());
        let digest = h.finalize();
        let mut bytes = [0u8; 26];
        bytes.copy_from_slice(&digest[..26]);
        Self::from_bytes(&bytes)
    }

    /// `d-` and one base32 character per byte's low five bits.
    fn from_bytes(bytes: &[u8; 26]) -> Self {
        const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
        let mut s = String::from("d-");
        s.extend(bytes.iter().map(|b| ALPHABET[(*b & 31) as usize] as char));
        Self(s)
    }
}

/// The name a member key signs with in signed notes and requests:
/// `<party>/<member>`.
pub fn key_name(party: &PartyId, member: &MemberName) -> String {
    format!("{party}/{member}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idempotency_keys_drop_id_is_a_drop_id_fixed_per_party_and_key() {
        let (camden, islington): (PartyId, PartyId) = ("camden".parse().unwrap(), "islington".parse().unwrap());
        let key = "ab".repeat(32);
        let id = DropId::for_idempotency_key(&camden, &key);
        assert_eq!(id.as_str().parse::<DropId>().unwrap(), id);
        assert_eq!(DropId::for_idempotency_key(&camden, &key), id);
        assert_ne!(DropId::for_idempotency_key(&islington, &key), id);
        assert_ne!(DropId::for_idempotency_key(&camden, &"cd".repeat(32)), id);
    }

    #[test]
    fn party_ids_follow_the_slug_rule() {
        for ok in ["camden", "city-of-london", "barking-and-dagenham", "a1"] {
            assert!(ok.parse::<PartyId>().is_ok(), "{ok}");
        }
        for bad in ["", "Camden", "city of london", "-x", "x-", "a--b", "../etc", "a/b"] {
            assert!(bad.parse::<PartyId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn party_id_from_display_name() {
        assert_eq!(PartyId::from_display_name("Barking and Dagenham").unwrap().as_str(), "barking-and-dagenham");
        assert_eq!(PartyId::from_display_name("City of London").unwrap().as_str(), "city-of-london");
        assert_eq!(PartyId::from_display_name("Hammersmith and Fulham").unwrap().as_str(), "hammersmith-and-fulham");
        assert!(PartyId::from_display_name("  ").is_none());
    }

    #[test]
    fn drop_ids_are_random_and_valid() {
        let a = DropId::random();
        let b = DropId::random();
        assert_ne!(a, b);
        assert_eq!(a.as_str().parse::<DropId>().unwrap(), a);
        assert!("d-../../etc/passwd".parse::<DropId>().is_err());
        assert!("d-ABCDEFGHIJKLMNOPQRSTUVWXYZ".parse::<DropId>().is_err());
    }

    #[test]
    fn ids_deserialize_only_when_valid() {
        assert!(serde_json::from_str::<PartyId>("\"camden\"").is_ok());
        assert!(serde_json::from_str::<PartyId>("\"Camden\"").is_err());
        assert!(serde_json::from_str::<MemberName>("\"data-team\"").is_ok());
        assert!(serde_json::from_str::<MemberName>("\"a b\"").is_err());
    }
}
