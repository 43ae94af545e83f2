//! Request authentication as extractors: a handler that takes [`Authed`] or
//! [`AuthedStream`] only runs for a request signed by a member key of the
//! hub's *current* directory, so a key the coordinator removes is refused at
//! once. [`SignedBy`] (storing a cosignature) and
//! [`super::log_access::LogReader`] (reading the log and the directory) also
//! take a request signed by a witness key that directory lists (see
//! [`Signer`]).
//!
//! Checks run in a fixed order, each with its own error code, so a caller can
//! tell a wrong clock from a wrong key: headers well-formed (`unauthenticated`),
//! time within the allowed skew (`stale_request`), key in the directory
//! (`unknown_key`), signature (`bad_signature`), body hash (`bad_signature`),
//! and only then the single-use nonce (`replayed_nonce`), so an unauthenticated
//! request can never burn a legitimate caller's nonce. Between the two, the
//! party's rate limit (`rate_limited`, see [`crate::rate_limit`]).

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, OriginalUri, Request};
use axum::http::header::CONTENT_LENGTH;
use axum::http::{HeaderMap, Method, Uri};
use sealdrop_proto::directory::Directory;
use sealdrop_proto::error_code::ErrorCode;
use sealdrop_proto::ids::PartyId;
use sealdrop_proto::keys::NoteVerifierKey;
use sealdrop_proto::policy::within_clock_skew;
use sealdrop_proto::request::{
    HEADER_CONTENT, HEADER_KEY, HEADER_NONCE, HEADER_SIGNATURE, HEADER_TIME, MAX_CLOCK_SKEW_SECS, RequestAuth,
    RequestAuthError, UNSIGNED_BODY, body_sha256,
};
use serde::de::DeserializeOwned;

use super::error::ApiError;
use crate::hub::Hub;
pub use crate::service::Caller;

/// The largest buffered (JSON) request body.
pub const JSON_BODY_LIMIT: usize = 1024 * 1024;

/// Who signed a request to a route that witnesses may call too: reading
/// the transfer log and the directory, and storing a cosignature.
///
/// A witness signs with the Ed25519 key whose cosignature (0x04) form the
/// directory lists under its party's `witness_keys`, naming it in the key
/// header by that key's name. The request's signed string starts
/// `sealdrop-request/v1`, a cosignature's message `cosignature/v1`, so
/// neither can stand for the other.
#[derive(Debug, Clone)]
pub enum Signer {
    /// A member key of the current directory.
    Member(Caller),
    /// A witness key the current directory lists.
    Witness {
        /// The party that lists it.
        party: PartyId,
        /// The key as listed (a cosignature key).
        key: NoteVerifierKey,
    },
}

impl Signer {
    /// The signer's party (whose rate limit the request counts against).
    pub fn party(&self) -> &PartyId {
        match self {
            Self::Member(caller) => &caller.party,
            Self::Witness { party, .. } => party,
        }
    }

    /// The member's name, or the witness key's, for the request log.
    fn name(&self) -> &str {
        match self {
            Self::Member(caller) => caller.member.as_str(),
            Self::Witness { key, .. } => key.name(),
        }
    }
}

/// An authenticated request with a buffered body parsed as `B`.
#[derive(Debug)]
pub struct Authed<B = NoBody> {
    /// Who signed it.
    pub caller: Caller,
    /// The parsed body.
    pub body: B,
    /// The verified authentication headers, kept as evidence in the
    /// transfer log (with [`Authed::path`]).
    pub auth: RequestAuth,
    /// The path and query the signature covers.
    pub path: String,
}

/// How a buffered body is parsed once its hash has been checked.
pub trait AuthedBody: Sized + Send {
    /// Parses the body.
    fn parse(bytes: &[u8]) -> Result<Self, ApiError>;
}

/// A body that is ignored (GET requests sign the empty body).
#[derive(Debug, Clone, Copy)]
pub struct NoBody;

impl AuthedBody for NoBody {
    fn parse(_: &[u8]) -> Result<Self, ApiError> {
        Ok(NoBody)
    }
}

/// A JSON body of one of the protocol's request types.
#[derive(Debug, Clone)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned + Send> AuthedBody for Json<T> {
    /// Parses the body, refusing what the protocol type refuses (every
    /// request type denies unknown fields). The message names the field a
    /// wrong value is in (``at `recipients[0]`: ...``), not only its column.
    fn parse(bytes: &[u8]) -> Result<Self, ApiError> {
        let refused =
            |what: String| ApiError::bad_request(format!("the request body is not valid JSON for this route: {what}"));
        // Every request body is an object: serde would also take a struct
        // from an array of its fields in order, which no client sends.
        if bytes.iter().find(|b| !b.is_ascii_whitespace()).is_some_and(|b| *b != b'{') {
            return Err(refused("it must be a JSON object (`{...}`)".to_owned()));
        }
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if path == "." { refused(inner.to_string()) } else { refused(format!("at `{path}`: {inner}")) }
        })?;
        de.end().map_err(|e| refused(e.to_string()))?;
        Ok(Json(value))
    }
}

/// An authenticated request whose body is streamed (the ciphertext upload).
#[derive(Debug)]
pub struct AuthedStream {
    /// Who signed it.
    pub caller: Caller,
    /// The hex SHA-256 the caller signed for the body, if it did not send
    /// [`UNSIGNED_BODY`]; the handler checks it once the body has been read.
    pub signed_sha256: Option<String>,
    /// The declared Content-Length, if any.
    pub content_length: Option<u64>,
    /// The body, not yet read.
    pub body: Body,
    /// The verified authentication headers.
    pub auth: RequestAuth,
    /// The path and query the signature covers.
    pub path: String,
}

fn unauthenticated(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::Unauthenticated, message)
}

/// Checks everything that does not need the body or the database: headers,
/// time, key and signature.
pub fn verify_headers(
    directory: &Directory,
    directory_serial: u64,
    now: i64,
    method: &Method,
    path_and_query: &str,
    headers: &HeaderMap,
) -> Result<(Caller, RequestAuth), ApiError> {
    for name in [HEADER_KEY, HEADER_TIME, HEADER_NONCE, HEADER_CONTENT, HEADER_SIGNATURE] {
        if headers.get(name).is_some_and(|v| v.to_str().is_err()) {
            return Err(unauthenticated(format!("header `{name}` is not valid text")));
        }
    }
    let auth = RequestAuth::from_headers(|name| headers.get(name).and_then(|v| v.to_str().ok())).map_err(|e| {
        let hint = match e {
            RequestAuthError::Missing(_) => " (sign every request with a member key, e.g. with the sealdrop client)",
            _ => "",
        };
        unauthenticated(format!("{e}{hint}"))
    })?;
    if !within_clock_skew(auth.time, now) {
        let skew = now.saturating_sub(auth.time).saturating_abs();
        return Err(ApiError::new(
            ErrorCode::StaleRequest,
            format!(
                "the request's time {} is {skew} seconds from the hub's clock {now} (at most {MAX_CLOCK_SKEW_SECS} allowed): \
                 check this computer's clock",
                auth.time
            ),
        ));
    }
    let revoked = |auth: &RequestAuth| {
        // A revoked key is named like the member's new key (or like no
        // current key at all): say so only when the signature is the revoked
        // key's own, so a stranger cannot pass for it.
        let (party, r) =
            directory.parties.iter().flat_map(|p| p.revoked.iter().map(move |r| (p, r))).find(|(_, r)| {
                r.signing_key.name() == auth.key && auth.verify(&r.signing_key, method.as_str(), path_and_query).is_ok()
            })?;
        Some(ApiError::new(
            ErrorCode::KeyRevoked,
            format!(
                "key `{}` of `{}` was revoked from {} ({}) in the hub's directory (serial {directory_serial}): \
                 it can no longer be used; make a new key with `sealdrop keygen` and send its card to the coordinator",
                auth.key,
                party.id,
                r.revoked_at,
                if r.reason.is_empty() { "no reason given" } else { r.reason.as_str() },
            ),
        ))
    };
    let Some((party, member)) = directory.member_by_key_name(&auth.key) else {
        if let Some(e) = revoked(&auth) {
            return Err(e);
        }
        return Err(ApiError::new(
            ErrorCode::UnknownKey,
            format!(
                "key `{}` is not a member key in the hub's current directory (serial {directory_serial}): \
                 use a current key or ask the coordinator to add it",
                auth.key
            ),
        ));
    };
    let caller = Caller { party: party.id.clone(), member: member.member.clone(), key: member.signing_key.clone() };
    if auth.verify(&caller.key, method.as_str(), path_and_query).is_err() {
        if let Some(e) = revoked(&auth) {
            return Err(e);
        }
        return Err(ApiError::new(
            ErrorCode::BadSignature,
            format!(
                "the request signature by `{}` does not verify for {method} {path_and_query}: \
                 was it signed with another key or altered on the way?",
                auth.key
            ),
        ));
    }
    Ok((caller, auth))
}

/// Checks everything [`verify_headers`] checks, accepting also a request
/// signed by a witness key the directory lists (see [`Signer`]). A member
/// key is looked for first; a key header that names no member key, or a
/// member key whose signature this is not, is then matched against the
/// witness keys of that name, and the request is a witness's only if one of
/// them verifies it.
pub fn verify_signer(
    directory: &Directory,
    directory_serial: u64,
    now: i64,
    method: &Method,
    path_and_query: &str,
    headers: &HeaderMap,
) -> Result<(Signer, RequestAuth), ApiError> {
    let refused = match verify_headers(directory, directory_serial, now, method, path_and_query, headers) {
        Ok((caller, auth)) => return Ok((Signer::Member(caller), auth)),
        Err(e) if e.code() == ErrorCode::UnknownKey || e.code() == ErrorCode::BadSignature => e,
        Err(e) => return Err(e),
    };
    // The headers parsed and their time is within the skew, or the check
    // above would have said so.
    let Ok(auth) = RequestAuth::from_headers(|name| headers.get(name).and_then(|v| v.to_str().ok())) else {
        return Err(refused);
    };
    let witness = directory.parties.iter().find_map(|p| {
        p.witness_keys
            .iter()
            .filter(|w| w.name() == auth.key)
            .find(|w| {
                // The same Ed25519 key, verifying a plain signature.
                NoteVerifierKey::new(w.name(), *w.key())
                    .is_ok_and(|plain| auth.verify(&plain, method.as_str(), path_and_query).is_ok())
            })
            .map(|w| Signer::Witness { party: p.id.clone(), key: w.clone() })
    });
    match witness {
        Some(signer) => Ok((signer, auth)),
        None if refused.code() == ErrorCode::UnknownKey => Err(ApiError::new(
            ErrorCode::UnknownKey,
            format!(
                "key `{}` is neither a member key nor a witness key in the hub's current directory (serial \
                 {directory_serial}): use a current key or ask the coordinator to list it",
                auth.key
            ),
        )),
        None => Err(refused),
    }
}

/// Checks a buffered body against the signed hash. A buffered body must be
/// hashed: [`UNSIGNED_BODY`] is only for the streamed upload.
pub fn check_body(auth: &RequestAuth, body: &[u8]) -> Result<(), ApiError> {
    if auth.content != body_sha256(body) {
        return Err(ApiError::new(
            ErrorCode::BadSignature,
            format!("the body's SHA-256 does not match the signed `{HEADER_CONTENT}` header"),
        ));
    }
    Ok(())
}

/// The path and query a request signature covers.
fn signed_path(uri: &Uri) -> String {
    uri.path_and_query().map_or("/", |p| p.as_str()).to_owned()
}

/// Authenticates a request's head against the hub's current directory
/// (the newest any instance accepted, see [`Hub::refresh_directory`]) and clock.
async fn authenticate(
    hub: &Hub,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<(Caller, RequestAuth), ApiError> {
    hub.refresh_directory().await?;
    let directory = hub.directory();
    let path_and_query = signed_path(uri);
    let path_and_query = path_and_query.as_str();
    let (caller, auth) = verify_headers(
        &directory.directory,
        directory.directory.serial,
        hub.now().as_second(),
        method,
        path_and_query,
        headers,
    )?;
    // A member's request from here on: the connection cap never closes it for another.
    crate::connections::mark_authenticated();
    let span = tracing::Span::current();
    span.record("party", caller.party.as_str());
    span.record("member", caller.member.as_str());
    // Only now is the party known for sure (nobody can spend another
    // party's allowance by naming its key); before the nonce is used and
    // the body read, so a refused request costs and burns nothing.
    hub.limiters().check_party(&caller.party)?;
    Ok((caller, auth))
}

/// Authenticates a request's head as [`authenticate`] does, accepting a
/// listed witness key too (see [`verify_signer`]).
pub(crate) async fn authenticate_signer(
    hub: &Hub,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<(Signer, RequestAuth), ApiError> {
    hub.refresh_directory().await?;
    let directory = hub.directory();
    let path_and_query = signed_path(uri);
    let (signer, auth) = verify_signer(
        &directory.directory,
        directory.directory.serial,
        hub.now().as_second(),
        method,
        &path_and_query,
        headers,
    )?;
    // A member's or listed witness's request: the connection cap never closes it for another.
    crate::connections::mark_authenticated();
    let span = tracing::Span::current();
    span.record("party", signer.party().as_str());
    span.record("member", signer.name());
    hub.limiters().check_party(signer.party())?;
    Ok((signer, auth))
}

/// Records the nonce, refusing one seen before.
pub(crate) async fn consume_nonce(hub: &Hub, auth: &RequestAuth) -> Result<(), ApiError> {
    let fresh = hub.consume_nonce(&auth.key, &auth.nonce).await?;
    if !fresh {
        return Err(ApiError::new(
            ErrorCode::ReplayedNonce,
            "this request's nonce was already used: every request needs a fresh nonce (was it replayed?)",
        ));
    }
    Ok(())
}

/// The request URI as the client sent it, even if a router rewrote it.
fn original_uri(req: &Request) -> Uri {
    req.extensions().get::<OriginalUri>().map_or_else(|| req.uri().clone(), |o| o.0.clone())
}

/// [`original_uri`] of a request's head.
pub(crate) fn original_uri_of(parts: &axum::http::request::Parts) -> Uri {
    parts.extensions.get::<OriginalUri>().map_or_else(|| parts.uri.clone(), |o| o.0.clone())
}

/// The 413 for a body over `limit` bytes.
fn body_too_large(limit: usize) -> ApiError {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        format!("the request body is larger than this route accepts ({limit} bytes at most); nothing was stored"),
    )
}

/// Refuses a request whose declared Content-Length is over `limit`
/// before a byte of its body is read.
pub fn refuse_declared_over(headers: &HeaderMap, limit: usize) -> Result<(), ApiError> {
    let declared = headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(len) if len > limit as u64 => Err(body_too_large(limit)),
        _ => Ok(()),
    }
}

/// Turns a body-buffering failure into an API error: too large (413),
/// stalled (408) or broken off (400). `limit` is the route's body limit.
pub fn body_rejection(rejection: BytesRejection, limit: usize) -> ApiError {
    if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        body_too_large(limit)
    } else if let Some(idle) = super::idle_body::is_body_idle(&rejection) {
        ApiError::new(
            ErrorCode::RequestTimeout,
            format!("the request body stopped arriving for {} s, so the hub stopped waiting", idle.0.as_secs_f64()),
        )
    } else {
        ApiError::bad_request(format!("the request body could not be read: {}", rejection.body_text()))
    }
}

impl<B: AuthedBody> FromRequest<Hub> for Authed<B> {
    type Rejection = ApiError;

    async fn from_request(req: Request, hub: &Hub) -> Result<Self, ApiError> {
        let uri = original_uri(&req);
        let (caller, auth) = authenticate(hub, req.method(), &uri, req.headers()).await?;
        let body = signed_body(req, hub, &auth).await?;
        let path = signed_path(&uri);
        Ok(Self { caller, body, auth, path })
    }
}

/// An authenticated request with a buffered body parsed as `B`, signed by
/// a member key or a listed witness key (see [`Signer`]).
#[derive(Debug)]
pub struct SignedBy<B> {
    /// Who signed it.
    pub signer: Signer,
    /// The parsed body.
    pub body: B,
}

impl<B: AuthedBody> FromRequest<Hub> for SignedBy<B> {
    type Rejection = ApiError;

    async fn from_request(req: Request, hub: &Hub) -> Result<Self, ApiError> {
        let uri = original_uri(&req);
        let (signer, auth) = authenticate_signer(hub, req.method(), &uri, req.headers()).await?;
        Ok(Self { signer, body: signed_body(req, hub, &auth).await? })
    }
}

/// The body of a request whose head `auth` authenticated: read within the
/// JSON limit, checked against the digest the signature covers, its nonce
/// spent, then parsed. `Authed` and `SignedBy` differ only in who may sign.
async fn signed_body<B: AuthedBody>(req: Request, hub: &Hub, auth: &RequestAuth) -> Result<B, ApiError> {
    refuse_declared_over(req.headers(), JSON_BODY_LIMIT)?;
    let bytes = Bytes::from_request(req, hub).await.map_err(|e| body_rejection(e, JSON_BODY_LIMIT))?;
    check_body(auth, &bytes)?;
    consume_nonce(hub, auth).await?;
    B::parse(&bytes)
}

impl FromRequest<Hub> for AuthedStream {
    type Rejection = ApiError;

    async fn from_request(req: Request, hub: &Hub) -> Result<Self, ApiError> {
        let uri = original_uri(&req);
        let (caller, auth) = authenticate(hub, req.method(), &uri, req.headers()).await?;
        let content_length = match req.headers().get(CONTENT_LENGTH) {
            None => None,
            Some(v) => Some(
                v.to_str()
                    .ok()
                    .and_then(|s| s.parse::<u64>().ok())
                    .ok_or_else(|| ApiError::bad_request("the Content-Length header is not a number"))?,
            ),
        };
        consume_nonce(hub, &auth).await?;
        let signed_sha256 = (auth.content != UNSIGNED_BODY).then(|| auth.content.clone());
        let path = signed_path(&uri);
        Ok(Self { caller, signed_sha256, content_length, body: req.into_body(), auth, path })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use sealdrop_proto::directory::Party;
    use sealdrop_proto::keys::{MemberSecretKey, NoteSigningKey};
    use sealdrop_proto::request::sign_request;

    const NOW: i64 = 1_800_000_000;

    fn setup() -> (MemberSecretKey, Directory) {
        let k = MemberSecretKey::generate("camden".parse().unwrap(), "data-team".parse().unwrap());
        let card = k.public();
        let dir = Directory {
            serial: 3,
            issued_at: "2026-01-01T00:00:00Z".parse().unwrap(),
            hub: None,
            parties: vec![Party::with_member("Camden", card)],
            agreements: vec![],
        };
        (k, dir)
    }

    fn headers(auth: &RequestAuth) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in auth.headers() {
            h.insert(name, HeaderValue::from_str(&value).unwrap());
        }
        h
    }

    fn check(dir: &Directory, method: &str, path: &str, h: &HeaderMap) -> Result<(Caller, RequestAuth), ApiError> {
        verify_headers(dir, dir.serial, NOW, &method.parse().unwrap(), path, h)
    }

    #[test]
    fn a_good_request_names_its_caller() {
        let (k, dir) = setup();
        let auth = sign_request(&k.signing, "GET", "/v1/inbox?x=1", NOW - 10, Some(b""));
        let (caller, parsed) = check(&dir, "GET", "/v1/inbox?x=1", &headers(&auth)).unwrap();
        assert_eq!(caller.party.as_str(), "camden");
        assert_eq!(caller.member.as_str(), "data-team");
        check_body(&parsed, b"").unwrap();
        assert_eq!(check_body(&parsed, b"x").unwrap_err().code(), ErrorCode::BadSignature);
    }

    #[test]
    fn each_failure_has_its_code() {
        let (k, dir) = setup();
        let auth = sign_request(&k.signing, "GET", "/v1/inbox", NOW, Some(b""));
        let mut missing = headers(&auth);
        missing.remove(HEADER_NONCE);
        assert_eq!(check(&dir, "GET", "/v1/inbox", &missing).unwrap_err().code(), ErrorCode::Unauthenticated);

        let mut binary = headers(&auth);
        binary.insert(HEADER_KEY, HeaderValue::from_bytes(b"camden/\xff").unwrap());
        assert_eq!(check(&dir, "GET", "/v1/inbox", &binary).unwrap_err().code(), ErrorCode::Unauthenticated);

        let stale = sign_request(&k.signing, "GET", "/v1/inbox", NOW - MAX_CLOCK_SKEW_SECS - 1, Some(b""));
        assert_eq!(check(&dir, "GET", "/v1/inbox", &headers(&stale)).unwrap_err().code(), ErrorCode::StaleRequest);
        let future = sign_request(&k.signing, "GET", "/v1/inbox", NOW + MAX_CLOCK_SKEW_SECS + 1, Some(b""));
        assert_eq!(check(&dir, "GET", "/v1/inbox", &headers(&future)).unwrap_err().code(), ErrorCode::StaleRequest);

        let stranger = MemberSecretKey::generate("camden".parse().unwrap(), "intern".parse().unwrap());
        let unknown = sign_request(&stranger.signing, "GET", "/v1/inbox", NOW, Some(b""));
        assert_eq!(check(&dir, "GET", "/v1/inbox", &headers(&unknown)).unwrap_err().code(), ErrorCode::UnknownKey);

        let impostor = MemberSecretKey::generate("camden".parse().unwrap(), "data-team".parse().unwrap());
        let forged = sign_request(&impostor.signing, "GET", "/v1/inbox", NOW, Some(b""));
        assert_eq!(check(&dir, "GET", "/v1/inbox", &headers(&forged)).unwrap_err().code(), ErrorCode::BadSignature);

        // The signature binds the method and the exact path and query.
        assert_eq!(check(&dir, "POST", "/v1/inbox", &headers(&auth)).unwrap_err().code(), ErrorCode::BadSignature);
        assert_eq!(check(&dir, "GET", "/v1/inbox?a=1", &headers(&auth)).unwrap_err().code(), ErrorCode::BadSignature);
    }

    #[test]
    fn a_listed_witness_key_signs_where_witnesses_may_and_nowhere_else() {
        let (k, mut dir) = setup();
        let witness = NoteSigningKey::generate("camden.witness").unwrap();
        dir.parties[0].witness_keys.push(witness.cosigner_verifier());
        let auth = sign_request(&witness, "GET", "/v1/log/checkpoint", NOW, Some(b""));
        let check_signer =
            |dir: &Directory, h: &HeaderMap| verify_signer(dir, dir.serial, NOW, &Method::GET, "/v1/log/checkpoint", h);
        let (signer, _) = check_signer(&dir, &headers(&auth)).unwrap();
        assert!(
            matches!(&signer, Signer::Witness { party, key } if party.as_str() == "camden" && *key == witness.cosigner_verifier()),
            "{signer:?}"
        );
        // Not a member: the members' routes refuse it.
        let e = check(&dir, "GET", "/v1/log/checkpoint", &headers(&auth)).unwrap_err();
        assert_eq!(e.code(), ErrorCode::UnknownKey);
        // A member is a member on both.
        let member = sign_request(&k.signing, "GET", "/v1/log/checkpoint", NOW, Some(b""));
        assert!(matches!(check_signer(&dir, &headers(&member)).unwrap().0, Signer::Member(_)));
        // Another key under the witness's name, and the witness's key once the directory no longer lists it.
        let impostor = NoteSigningKey::generate("camden.witness").unwrap();
        let forged = sign_request(&impostor, "GET", "/v1/log/checkpoint", NOW, Some(b""));
        assert_eq!(check_signer(&dir, &headers(&forged)).unwrap_err().code(), ErrorCode::UnknownKey);
        let mut removed = dir.clone();
        removed.parties[0].witness_keys.clear();
        assert_eq!(check_signer(&removed, &headers(&auth)).unwrap_err().code(), ErrorCode::UnknownKey);
        // The signature binds the path, and the time is checked first, as for a member.
        let e = verify_signer(&dir, dir.serial, NOW, &Method::GET, "/v1/log/entry/0", &headers(&auth)).unwrap_err();
        assert_eq!(e.code(), ErrorCode::UnknownKey);
        let stale = sign_request(&witness, "GET", "/v1/log/checkpoint", NOW - MAX_CLOCK_SKEW_SECS - 1, Some(b""));
        assert_eq!(check_signer(&dir, &headers(&stale)).unwrap_err().code(), ErrorCode::StaleRequest);
        // A member key's name with a witness's signature is still the member's bad signature.
        let mut named = dir.clone();
        let clash = NoteSigningKey::generate("camden/data-team").unwrap();
        named.parties[0].witness_keys = vec![clash.cosigner_verifier()];
        let by_clash = sign_request(&clash, "GET", "/v1/log/checkpoint", NOW, Some(b""));
        assert!(matches!(check_signer(&named, &headers(&by_clash)).unwrap().0, Signer::Witness { .. }));
        assert_eq!(
            check(&named, "GET", "/v1/log/checkpoint", &headers(&by_clash)).unwrap_err().code(),
            ErrorCode::BadSignature
        );
    }

    #[test]
    fn buffered_bodies_must_be_hashed() {
        let (k, dir) = setup();
        let auth = sign_request(&k.signing, "POST", "/v1/drops", NOW, None);
        let (_, parsed) = check(&dir, "POST", "/v1/drops", &headers(&auth)).unwrap();
        assert_eq!(check_body(&parsed, b"{}").unwrap_err().code(), ErrorCode::BadSignature);
    }

    #[test]
    fn json_bodies_report_the_serde_error() {
        let err =
            <Json<sealdrop_proto::api::Commit> as AuthedBody>::parse(br#"{"manifest":"x","extra":1}"#).unwrap_err();
        assert_eq!(err.code(), ErrorCode::BadRequest);
        assert!(err.message().contains("extra"), "{}", err.message());
    }

    #[test]
    fn json_errors_name_the_field_and_refuse_trailing_bytes() {
        type Create = Json<sealdrop_proto::api::CreateDrop>;
        let message = |body: &str| <Create as AuthedBody>::parse(body.as_bytes()).unwrap_err().message().to_owned();
        let m = message(r#"{"recipients":"islington","agreement":"a","expires":"2026-01-01T00:00:00Z"}"#);
        assert!(m.contains("at `recipients`") && m.contains("invalid type"), "{m}");
        let m = message(r#"{"recipients":["islington", 7],"agreement":"a","expires":"2026-01-01T00:00:00Z"}"#);
        assert!(m.contains("at `recipients[1]`"), "{m}");
        let m = message(r#"{"recipients":[],"agreement":"a","expires":"tomorrow"}"#);
        assert!(m.contains("at `expires`"), "{m}");
        let m = message(r#"{"recipients":[],"agreement":"a"}"#);
        assert!(m.contains("missing field `expires`"), "{m}");
        let m = message(r#"{"recipients":[],"agreement":"a","expires":"2026-01-01T00:00:00Z"} {}"#);
        assert!(m.contains("trailing characters"), "{m}");
        let m = message(r#"{"recipients":[],"agreement":"a","#);
        assert!(m.contains("EOF"), "{m}");
        // Not an object, even one serde could read a struct from.
        let m = message(r#" [["islington"],"a","2026-01-01T00:00:00Z"]"#);
        assert!(m.contains("must be a JSON object"), "{m}");
        assert!(message("null").contains("must be a JSON object"));
        assert!(message("").contains("EOF"));
    }
}
