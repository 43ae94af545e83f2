//! The body of `PUT /v1/drops/{id}`, a small drop sent in one request: the
//! signed manifest and the ciphertext in one binary body, so the ciphertext
//! travels as it is (no base64) and the hub can check the manifest before it
//! stores anything.

/// The content type of a `PUT /v1/drops/{id}` body ([`put_drop_body`]).
pub const PUT_DROP_CONTENT_TYPE: &str = "application/vnd.sealdrop.drop-v1";

/// The ciphertext size up to which a hub takes a drop in one request
/// (`PUT /v1/drops/{id}`) unless its operator set
/// `max_single_request_bytes`; a client tries the one request up to this
/// size and falls back to the three steps on `too_large_for_one_request`.
pub const DEFAULT_MAX_SINGLE_REQUEST_BYTES: u64 = 1 << 20;

/// The longest manifest a `PUT /v1/drops/{id}` body may carry: a log entry
/// (which holds the manifest verbatim) is at most 65,535 bytes.
pub const MAX_PUT_DROP_MANIFEST_LEN: usize = 65_535;

/// The body of `PUT /v1/drops/{id}`: the manifest's length as a 4-byte
/// big-endian number, the signed manifest (signed-note text), then the
/// ciphertext. Binary, so the ciphertext travels as it is (no base64).
pub fn put_drop_body(manifest: &str, ciphertext: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(4 + manifest.len() + ciphertext.len());
    // A manifest longer than u32 cannot be signed into a log entry anyway;
    // the hub refuses any past MAX_PUT_DROP_MANIFEST_LEN.
    body.extend_from_slice(&u32::try_from(manifest.len()).unwrap_or(u32::MAX).to_be_bytes());
    body.extend_from_slice(manifest.as_bytes());
    body.extend_from_slice(ciphertext);
    body
}

/// Why a `PUT /v1/drops/{id}` body cannot be split.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PutDropBodyError {
    /// Shorter than its 4-byte length, or than the length it states.
    #[error("the body ends before the manifest its first 4 bytes announce")]
    Truncated,
    /// The stated manifest length is over [`MAX_PUT_DROP_MANIFEST_LEN`].
    #[error("the manifest is {0} bytes, more than the {MAX_PUT_DROP_MANIFEST_LEN} a log entry holds")]
    ManifestTooLong(usize),
    /// The manifest is not UTF-8 text.
    #[error("the manifest is not UTF-8 text")]
    NotText,
}

/// Splits a `PUT /v1/drops/{id}` body into the manifest text and the ciphertext.
pub fn split_put_drop_body(body: &[u8]) -> Result<(&str, &[u8]), PutDropBodyError> {
    let (len, rest) = body.split_first_chunk::<4>().ok_or(PutDropBodyError::Truncated)?;
    let len = u32::from_be_bytes(*len) as usize;
    if len > MAX_PUT_DROP_MANIFEST_LEN {
        return Err(PutDropBodyError::ManifestTooLong(len));
    }
    if rest.len() < len {
        return Err(PutDropBodyError::Truncated);
    }
    let (manifest, ciphertext) = rest.split_at(len);
    let manifest = std::str::from_utf8(manifest).map_err(|_| PutDropBodyError::NotText)?;
    Ok((manifest, ciphertext))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_put_drop_body_splits_back_into_what_was_joined() {
        let body = put_drop_body("manifest text\n", b"age\x00bytes");
        assert_eq!(&body[..4], &14u32.to_be_bytes());
        assert_eq!(split_put_drop_body(&body), Ok(("manifest text\n", &b"age\x00bytes"[..])));
        assert_eq!(split_put_drop_body(&put_drop_body("m", b"")), Ok(("m", &b""[..])));
    }

    #[test]
    fn a_malformed_put_drop_body_is_refused() {
        assert_eq!(split_put_drop_body(b"\x00\x00\x00"), Err(PutDropBodyError::Truncated));
        assert_eq!(split_put_drop_body(b"\x00\x00\x00\x05abcd"), Err(PutDropBodyError::Truncated));
        let long = (MAX_PUT_DROP_MANIFEST_LEN as u32 + 1).to_be_bytes();
        assert_eq!(split_put_drop_body(&long), Err(PutDropBodyError::ManifestTooLong(MAX_PUT_DROP_MANIFEST_LEN + 1)));
        assert_eq!(split_put_drop_body(b"\x00\x00\x00\x02\xff\xfe"), Err(PutDropBodyError::NotText));
    }
}
