//! Request signing: every request a party makes to the hub carries an
//! Ed25519 signature by one of its member keys over the method, the path and
//! query, a timestamp, a single-use nonce and the body's SHA-256.
//!
//! A streamed upload's body cannot be hashed before it is sent, so it is
//! signed with the explicit marker [`UNSIGNED_BODY`]; the ciphertext's hash is
//! then bound by the signed manifest at commit.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD as B64URL};
use sha2::{Digest, Sha256};

use crate::keys::{NoteSigningKey, NoteVerifierKey};

/// Header naming the signing key as the directory lists it: a member key
/// (`<party>/<member>`), or, for reading the transfer log and the directory
/// and storing a cosignature, a witness key (its signed-note name).
pub const HEADER_KEY: &str = "sealdrop-key";
/// Header with the request time in Unix seconds.
pub const HEADER_TIME: &str = "sealdrop-time";
/// Header with a random single-use nonce.
pub const HEADER_NONCE: &str = "sealdrop-nonce";
/// Header with the body's SHA-256 in hex, or [`UNSIGNED_BODY`].
pub const HEADER_CONTENT: &str = "sealdrop-content-sha256";
/// Header with the base64 Ed25519 signature.
pub const HEADER_SIGNATURE: &str = "sealdrop-signature";
/// Marker for a streamed body whose hash is bound later by a signed manifest.
pub const UNSIGNED_BODY: &str = "UNSIGNED";
/// How far a request's time may be from the hub's clock, in seconds.
pub const MAX_CLOCK_SKEW_SECS: i64 = 300;

/// The authentication headers of one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestAuth {
    /// The signing key's name: `<party>/<member>` for a member key, the
    /// key's own name for a witness key.
    pub key: String,
    /// Unix seconds.
    pub time: i64,
    /// Random, single use.
    pub nonce: String,
    /// Hex SHA-256 of the body, or [`UNSIGNED_BODY`].
    pub content: String,
    /// Base64 Ed25519 signature over [`signed_string`].
    pub signature: String,
}

/// Why a request's authentication failed. The hub turns these into error codes.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RequestAuthError {
    #[error("the request is not signed: header `{0}` is missing")]
    Missing(&'static str),
    #[error("header `{0}` is malformed")]
    Malformed(&'static str),
    #[error("the request signature does not verify")]
    BadSignature,
}

/// The exact bytes a request signature covers.
pub fn signed_string(method: &str, path_and_query: &str, time: i64, nonce: &str, content: &str, key: &str) -> String {
    format!("sealdrop-request/v1\n{method}\n{path_and_query}\n{time}\n{nonce}\n{content}\n{key}\n")
}

/// Hex SHA-256 of a body.
pub fn body_sha256(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

/// A fresh random nonce (128 bits, base64url).
pub fn new_nonce() -> String {
    use rand::RngCore;
    let mut b = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut b);
    B64URL.encode(b)
}

/// Signs a request. `body` is `Some(bytes)` for a buffered body (an empty
/// body is `Some(&[])`) and `None` for a streamed one.
pub fn sign_request(
    key: &NoteSigningKey,
    method: &str,
    path_and_query: &str,
    time: i64,
    body: Option<&[u8]>,
) -> RequestAuth {
    let nonce = new_nonce();
    let content = body.map_or_else(|| UNSIGNED_BODY.to_owned(), body_sha256);
    let msg = signed_string(method, path_and_query, time, &nonce, &content, key.name());
    let signature = B64.encode(key.sign_bytes(msg.as_bytes()).to_bytes());
    RequestAuth { key: key.name().to_owned(), time, nonce, content, signature }
}

impl RequestAuth {
    /// Reads the headers through `get` (header name -> value).
    pub fn from_headers<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Result<Self, RequestAuthError> {
        let need = |h: &'static str| get(h).ok_or(RequestAuthError::Missing(h));
        let key = need(HEADER_KEY)?;
        // Any signed-note key name: a member's `<party>/<member>`, or a
        // witness key's name (which the directory does not constrain).
        if key.len() > 200 || !signed_note::is_key_name_valid(key) {
            return Err(RequestAuthError::Malformed(HEADER_KEY));
        }
        let time = need(HEADER_TIME)?.parse::<i64>().map_err(|_| RequestAuthError::Malformed(HEADER_TIME))?;
        let nonce = need(HEADER_NONCE)?;
        if !(16..=64).contains(&nonce.len())
            || !nonce.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(RequestAuthError::Malformed(HEADER_NONCE));
        }
        let content = need(HEADER_CONTENT)?;
        if content != UNSIGNED_BODY && !crate::drop::is_sha256_hex(content) {
            return Err(RequestAuthError::Malformed(HEADER_CONTENT));
        }
        let signature = need(HEADER_SIGNATURE)?;
        if signature.len() > 100 {
            return Err(RequestAuthError::Malformed(HEADER_SIGNATURE));
        }
        Ok(Self {
            key: key.to_owned(),
            time,
            nonce: nonce.to_owned(),
            content: content.to_owned(),
            signature: signature.to_owned(),
        })
    }

    /// The headers to send, as (name, value) pairs.
    pub fn headers(&self) -> [(&'static str, String); 5] {
        [
            (HEADER_KEY, self.key.clone()),
            (HEADER_TIME, self.time.to_string()),
            (HEADER_NONCE, self.nonce.clone()),
            (HEADER_CONTENT, self.content.clone()),
            (HEADER_SIGNATURE, self.signature.clone()),
        ]
    }

    /// Verifies the signature with `key` for the given method and path.
    pub fn verify(&self, key: &NoteVerifierKey, method: &str, path_and_query: &str) -> Result<(), RequestAuthError> {
        let sig = B64.decode(&self.signature).map_err(|_| RequestAuthError::Malformed(HEADER_SIGNATURE))?;
        let msg = signed_string(method, path_and_query, self.time, &self.nonce, &self.content, &self.key);
        if key.name() == self.key && key.verify(msg.as_bytes(), &sig) {
            Ok(())
        } else {
            Err(RequestAuthError::BadSignature)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn as_map(a: &RequestAuth) -> HashMap<&'static str, String> {
        a.headers().into_iter().collect()
    }

    #[test]
    fn round_trip_and_binding() {
        let key = NoteSigningKey::generate("camden/data-team").unwrap();
        let auth = sign_request(&key, "POST", "/v1/drops?x=1", 1000, Some(b"{}"));
        let map = as_map(&auth);
        let parsed = RequestAuth::from_headers(|h| map.get(h).map(String::as_str)).unwrap();
        assert_eq!(parsed, auth);
        parsed.verify(&key.verifier(), "POST", "/v1/drops?x=1").unwrap();
        assert_eq!(parsed.verify(&key.verifier(), "GET", "/v1/drops?x=1"), Err(RequestAuthError::BadSignature));
        assert_eq!(parsed.verify(&key.verifier(), "POST", "/v1/drops?x=2"), Err(RequestAuthError::BadSignature));
        let mut later = parsed.clone();
        later.time += 1;
        assert_eq!(later.verify(&key.verifier(), "POST", "/v1/drops?x=1"), Err(RequestAuthError::BadSignature));
        let mut other_body = parsed;
        other_body.content = body_sha256(b"[]");
        assert_eq!(other_body.verify(&key.verifier(), "POST", "/v1/drops?x=1"), Err(RequestAuthError::BadSignature));
    }

    #[test]
    fn streamed_bodies_are_marked_unsigned() {
        let key = NoteSigningKey::generate("camden/data-team").unwrap();
        let auth = sign_request(&key, "PUT", "/v1/drops/x/content", 5, None);
        assert_eq!(auth.content, UNSIGNED_BODY);
        auth.verify(&key.verifier(), "PUT", "/v1/drops/x/content").unwrap();
    }

    #[test]
    fn missing_and_malformed_headers() {
        let key = NoteSigningKey::generate("camden/data-team").unwrap();
        let map = as_map(&sign_request(&key, "GET", "/v1/inbox", 5, Some(b"")));
        for h in [HEADER_KEY, HEADER_TIME, HEADER_NONCE, HEADER_CONTENT, HEADER_SIGNATURE] {
            let err =
                RequestAuth::from_headers(|n| if n == h { None } else { map.get(n).map(String::as_str) }).unwrap_err();
            assert_eq!(err, RequestAuthError::Missing(h));
        }
        let err =
            RequestAuth::from_headers(|n| if n == HEADER_TIME { Some("soon") } else { map.get(n).map(String::as_str) })
                .unwrap_err();
        assert_eq!(err, RequestAuthError::Malformed(HEADER_TIME));
    }

    #[test]
    fn the_key_header_is_any_signed_note_key_name() {
        let key = NoteSigningKey::generate("camden.witness").unwrap();
        let map = as_map(&sign_request(&key, "GET", "/v1/log/checkpoint", 5, Some(b"")));
        let parsed = RequestAuth::from_headers(|n| map.get(n).map(String::as_str)).unwrap();
        assert_eq!(parsed.key, "camden.witness", "a witness key's name has no slash");
        parsed.verify(&key.verifier(), "GET", "/v1/log/checkpoint").unwrap();
        let long = "k".repeat(201);
        for bad in ["", "two words", "a+b", long.as_str()] {
            let err =
                RequestAuth::from_headers(|n| if n == HEADER_KEY { Some(bad) } else { map.get(n).map(String::as_str) })
                    .unwrap_err();
            assert_eq!(err, RequestAuthError::Malformed(HEADER_KEY), "{bad:?}");
        }
    }

    #[test]
    fn another_key_with_the_same_name_fails() {
        let key = NoteSigningKey::generate("camden/data-team").unwrap();
        let impostor = NoteSigningKey::generate("camden/data-team").unwrap();
        let auth = sign_request(&impostor, "GET", "/v1/inbox", 5, Some(b""));
        assert_eq!(auth.verify(&key.verifier(), "GET", "/v1/inbox"), Err(RequestAuthError::BadSignature));
    }
}
