//! What the hub reads from a request before anything else: the signature
//! headers, the `Range` header, and the JSON bodies of its routes (and the
//! client reads of its answers).

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Serialize;
use serde::de::DeserializeOwned;

use sealdrop_hub::api::auth::{AuthedBody, Json, check_body, verify_headers};
use sealdrop_hub::byte_range::parse_range;
use sealdrop_hub::service::create::{check_create, check_idempotency_key};
use sealdrop_proto::api::{
    Ack, Acked, Commit, Committed, ConsistencyProof, Cosign, CosignatureAccepted, CreateDrop, CreatedDrop,
    DirectoryAccepted, DropDetails, ErrorBody, HubInfo, Inbox, InclusionProof, Recall, Recalled, Sent, UploadProgress,
    Uploaded,
};
use sealdrop_proto::drop::Manifest;
use sealdrop_proto::keys::NoteVerifierKey;
use sealdrop_proto::note::peek_doc;
use sealdrop_proto::request::{RequestAuth, signed_string};

use crate::fixtures::{NOW, fixture};

/// A request head in HTTP/1 form, as the hub's authentication sees it:
///
/// ```text
/// GET /v1/inbox
/// sealdrop-key: camden/data-team
/// sealdrop-time: 1800000000
/// ...
///
/// <body>
/// ```
///
/// checked with `api::auth::verify_headers` against the example directory
/// at [`NOW`], then `check_body`.
///
/// Asserts: a request that passes is signed by one of the fixture's members
/// with exactly the signature that key makes over the signed string; it
/// fails for another method or path; its body, when accepted, is the one
/// signed; and the parsed headers read back the same.
pub fn request_auth(data: &[u8]) -> bool {
    let (head, body) = match data.windows(2).position(|w| w == b"\n\n") {
        Some(i) => (&data[..i], &data[i + 2..]),
        None => (data, &b""[..]),
    };
    let mut lines = head.split(|b| *b == b'\n');
    let Some(first) = lines.next() else { return false };
    let Ok(first) = std::str::from_utf8(first) else { return false };
    let Some((method, path)) = first.split_once(' ') else { return false };
    let Ok(method) = Method::from_bytes(method.as_bytes()) else { return false };
    let mut headers = HeaderMap::new();
    for line in lines {
        let Some(colon) = line.iter().position(|b| *b == b':') else { continue };
        let value = line[colon + 1..].strip_prefix(b" ").unwrap_or(&line[colon + 1..]);
        if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(&line[..colon]), HeaderValue::from_bytes(value)) {
            headers.append(name, value);
        }
    }
    let parsed = RequestAuth::from_headers(|h| headers.get(h).and_then(|v| v.to_str().ok()));
    if let Ok(auth) = &parsed {
        let map: Vec<(&str, String)> = auth.headers().into_iter().collect();
        let again = RequestAuth::from_headers(|h| map.iter().find(|(n, _)| *n == h).map(|(_, v)| v.as_str()));
        assert_eq!(again.as_ref(), Ok(auth), "request headers changed in a round trip");
    }
    let f = fixture();
    let dir = &f.example.directory;
    let check = |method: &Method, path: &str| verify_headers(dir, dir.serial, NOW, method, path, &headers);
    let Ok((caller, auth)) = check(&method, path) else { return false };
    assert_eq!(parsed.as_ref().ok(), Some(&auth));
    let member = f.member_named(&auth.key).expect("only the fixture's members' requests can verify");
    let msg = signed_string(method.as_str(), path, auth.time, &auth.nonce, &auth.content, &auth.key);
    let sig = B64.decode(&auth.signature).expect("a signature that verified is base64");
    assert_eq!(sig, member.signing.sign_bytes(msg.as_bytes()).to_bytes(), "a request signature the key never made");
    assert_eq!(caller.key, member.signing.verifier());
    assert!(check(&method, &format!("{path}x")).is_err(), "the signature does not bind the path");
    let other = if method == Method::GET { Method::POST } else { Method::GET };
    assert!(check(&other, path).is_err(), "the signature does not bind the method");
    if check_body(&auth, body).is_ok() {
        assert_eq!(auth.content, sealdrop_proto::request::body_sha256(body));
    }
    true
}

/// A `Range` header value after a first line giving the ciphertext's length:
/// `"<total>\n<value>"`, parsed with `byte_range::parse_range`.
///
/// Asserts: a range served lies inside the ciphertext and is not empty.
pub fn range(data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else { return false };
    let Some((total, value)) = text.split_once('\n') else { return false };
    let Ok(total) = total.parse::<u64>() else { return false };
    let Ok(r) = parse_range(value, total) else { return false };
    assert!(r.start <= r.end && r.end < total, "{value:?} of {total} bytes gave {r:?}");
    assert_eq!(r.len(), r.end - r.start + 1);
    true
}

/// A JSON body, read as every request type the hub accepts (through its own
/// `Json` body parser) and every answer the client reads from the hub.
///
/// Asserts: whatever parses reads back equal from its own JSON; a drop
/// announcement goes through the hub's checks (`check_idempotency_key`,
/// `check_create` for camden against the example directory) without
/// panicking; keys, proofs and manifests inside answers are read as the
/// client reads them.
pub fn api_json(data: &[u8]) -> bool {
    let mut accepted = false;
    let f = fixture();
    if let Some(req) = hub_body::<CreateDrop>(data) {
        accepted = true;
        if check_idempotency_key(req.idempotency_key.as_deref()).is_ok() {
            let now = jiff::Timestamp::from_second(NOW).expect("a valid time");
            let _ = check_create(&f.example.directory, &f.caller(0), &req, now);
        }
    }
    accepted |= hub_body::<Commit>(data).inspect(|c| drop(peek_doc::<Manifest>(&c.manifest))).is_some();
    accepted |= hub_body::<Ack>(data).is_some();
    accepted |= hub_body::<Recall>(data).is_some();
    if let Some(c) = hub_body::<Cosign>(data) {
        accepted = true;
        let line = c.line.strip_suffix('\n').unwrap_or(&c.line);
        if let Ok(sig) = signed_note::Signature::from_bytes(line.as_bytes()) {
            let bytes = sig.to_bytes();
            let line = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
            let again = signed_note::Signature::from_bytes(line).expect("a signature line's own bytes parse");
            assert_eq!(again.to_bytes(), sig.to_bytes());
        }
    }
    if let Some(info) = answer::<HubInfo>(data) {
        accepted = true;
        if let Ok(k) = info.log_key.parse::<NoteVerifierKey>() {
            assert_eq!(k.to_string().parse::<NoteVerifierKey>().ok(), Some(k));
        }
    }
    if let Some(p) = answer::<InclusionProof>(data) {
        accepted = true;
        let _ = decode_hashes(&p.hashes);
    }
    if let Some(p) = answer::<ConsistencyProof>(data) {
        accepted = true;
        let _ = decode_hashes(&p.hashes);
    }
    if let Some(d) = answer::<DropDetails>(data) {
        accepted = true;
        let _ = peek_doc::<Manifest>(&d.manifest);
    }
    accepted |= answer::<CreatedDrop>(data).is_some();
    accepted |= answer::<Uploaded>(data).is_some();
    accepted |= answer::<UploadProgress>(data).is_some();
    accepted |= answer::<Committed>(data).is_some();
    accepted |= answer::<Inbox>(data).is_some();
    accepted |= answer::<Acked>(data).is_some();
    accepted |= answer::<Recalled>(data).is_some();
    accepted |= answer::<Sent>(data).is_some();
    accepted |= answer::<DirectoryAccepted>(data).is_some();
    accepted |= answer::<CosignatureAccepted>(data).is_some();
    accepted |= answer::<ErrorBody>(data).is_some();
    accepted
}

/// Proof hashes as the client decodes them: base64 of 32 bytes each.
pub fn decode_hashes(hashes: &[String]) -> Option<Vec<sealdrop_log::Hash>> {
    hashes.iter().map(|h| B64.decode(h).ok().and_then(|b| b.try_into().ok()).map(sealdrop_log::Hash)).collect()
}

fn hub_body<T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug + Send>(data: &[u8]) -> Option<T> {
    let Json(v) = <Json<T> as AuthedBody>::parse(data).ok()?;
    assert_round_trip(&v);
    Some(v)
}

fn answer<T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug>(data: &[u8]) -> Option<T> {
    let v: T = serde_json::from_slice(data).ok()?;
    assert_round_trip(&v);
    Some(v)
}

fn assert_round_trip<T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug>(v: &T) {
    let json = serde_json::to_vec(v).expect("API types serialise");
    let back: T = serde_json::from_slice(&json).expect("an API type's own JSON parses");
    assert_eq!(&back, v, "{} changed in a JSON round trip", std::any::type_name::<T>());
}

/// A ciphertext's first bytes, as the hub reads them at commit and the
/// client before decrypting: `age_header::check` against islington's key,
/// and against islington's and hackney's.
///
/// Asserts: reading the input a byte at a time reaches the same verdict as
/// the whole of it; an accepted header parses on its own, holds one stanza
/// of the listed keys' kind (`mlkem768x25519` for the example's
/// post-quantum keys) per listed key, and is exactly what age itself reads as the
/// header (age's decryptor opens the input cut 16 bytes past it, where the
/// payload nonce ends, and not one byte shorter).
pub fn age_header(data: &[u8]) -> bool {
    use sealdrop_proto::age_header::{MLKEM768X25519, X25519, check, parse, read_and_check};
    use sealdrop_proto::drop::EncryptedTo;
    let f = fixture();
    let key = |i: usize| {
        let card = f.member(i).public();
        EncryptedTo { key: f.member(i).signing.name().to_owned(), age_recipient: card.age_recipient }
    };
    let mut accepted = false;
    for keys in [vec![key(1)], vec![key(1), key(2)]] {
        let whole = check(data, &keys, true).map(|len| len.expect("a complete input gets a verdict"));
        let (read, streamed) = read_and_check(&mut OneByteAtATime(data), &keys).expect("reading memory");
        assert_eq!(streamed, whole, "reading a byte at a time gave another verdict");
        assert!(data.starts_with(&read), "the bytes read are not the input's start");
        let Ok(len) = whole else { continue };
        accepted = true;
        let header = parse(&data[..len]).expect("an accepted header parses").expect("on its own");
        assert_eq!(header.len, len);
        let native = header.stanzas.iter().filter(|s| s.tag == X25519 || s.tag == MLKEM768X25519).count();
        assert_eq!(native, keys.len());
        if data.len() >= len + 16 {
            assert!(age::Decryptor::new(&data[..len + 16]).is_ok(), "age reads the header differently");
            assert!(age::Decryptor::new(&data[..len + 15]).is_err(), "age's header ends before ours");
        }
    }
    accepted
}

/// A reader handing out one byte per read.
struct OneByteAtATime<'a>(&'a [u8]);

impl std::io::Read for OneByteAtATime<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        match (self.0.split_first(), out.first_mut()) {
            (Some((b, rest)), Some(slot)) => {
                *slot = *b;
                self.0 = rest;
                Ok(1)
            }
            _ => Ok(0),
        }
    }
}
