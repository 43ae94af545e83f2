//! The connection to one hub: one async HTTP client on a runtime the
//! calling thread drives, request signing by the member key (see
//! `sealdrop_proto::request`), and hub errors keeping their stable code.
//! The requests themselves, by path, are private to [`crate::transport`]:
//! the rest of the client calls the typed endpoints in `api.rs`.

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use sealdrop_proto::api::ErrorBody;
use sealdrop_proto::api::code::UNAUTHENTICATED;
use sealdrop_proto::clock::Clock;
use sealdrop_proto::keys::NoteSigningKey;
use sealdrop_proto::request::sign_request;

use crate::error::{Error, ErrorCode, Result};

/// Extra CA certificates this process trusts for the hub's TLS certificate,
/// beside the system's (`--hub-ca`, `SEALDROP_HUB_CA`, config `hub_ca`):
/// for a hub whose certificate comes from a council's private CA. Process
/// wide because a `sealdrop` run talks to one hub, and set once, before the
/// first [`HubApi`] is made, by [`trust_hub_ca`].
static EXTRA_ROOTS: OnceLock<Vec<reqwest::Certificate>> = OnceLock::new();

/// Trusts the CA certificates in the PEM file `path` (one or more), in
/// addition to the system's, for every hub connection this process makes.
/// Refuses a file that holds no certificate, or a second, different call.
pub fn trust_hub_ca(path: &Path) -> Result<()> {
    let bad = |why: String| {
        Error::new(
            ErrorCode::BadHubCa,
            format!(
                "--hub-ca {}: {why}; give the PEM file of the CA that signed the hub's certificate",
                path.display()
            ),
        )
    };
    let pem = std::fs::read(path).map_err(|e| bad(format!("cannot read it ({e})")))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| bad(format!("not a PEM certificate ({e})")))?;
    if certs.is_empty() {
        return Err(bad("it holds no `-----BEGIN CERTIFICATE-----` block".to_owned()));
    }
    let count = certs.len();
    if EXTRA_ROOTS.set(certs).is_err() && EXTRA_ROOTS.get().map(Vec::len) != Some(count) {
        return Err(bad("another CA file is already trusted in this process".to_owned()));
    }
    Ok(())
}

fn extra_roots() -> Vec<reqwest::Certificate> {
    EXTRA_ROOTS.get().cloned().unwrap_or_default()
}

/// How many times one read of the log or the directory waits out a `429`
/// (see [`HubApi::read`]), and the longest wait it accepts: enough
/// to pace a long read (a party's bucket refills within a second or two),
/// while a longer wait is reported at once, saying when to retry, rather
/// than spent silently.
const READ_RETRIES: u32 = 10;
const READ_RETRY_MAX_SECS: u64 = 5;

/// The `Retry-After` of an answer, in seconds (the hub sends whole
/// seconds; an HTTP date from a proxy is not worth parsing here).
/// How long an idle kept-alive connection to the hub is kept for reuse:
/// less than the hub's own limit (`header_read_timeout`, 5 s by default),
/// after which the hub closes it, so the client never sends a request on a
/// connection the hub is closing at that moment (the request would fail).
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(3);

fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<u64> {
    headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim().parse().ok()
}

/// The TLS certificate failure behind a transport error, if that is what
/// it is (an unknown issuer, a name mismatch, an expired certificate), as
/// rustls words it.
fn certificate_problem(e: &reqwest::Error) -> Option<String> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(err) = source {
        let text = err.to_string();
        if text.contains("certificate") {
            return Some(text);
        }
        source = err.source();
    }
    None
}

/// A connection to one hub, optionally acting as one member.
///
/// Every request, downloads included, runs on reqwest's async client,
/// driven by a runtime on the calling thread (`block_on`): reqwest's
/// blocking client hands every request (and every read of a body) to a
/// thread of its own and back, and those hand-offs were a third of a
/// client's CPU time sending many small drops.
pub struct HubApi {
    base: String,
    key: Option<NoteSigningKey>,
    clock: Arc<dyn Clock>,
    /// The async client and the runtime its pooled connections live on,
    /// made at the first request and kept so later requests reuse the
    /// connection. A current-thread runtime: whichever thread waits on it
    /// drives it, so a request costs no thread hand-off.
    http: std::sync::OnceLock<(tokio::runtime::Runtime, reqwest::Client)>,
}

impl HubApi {
    /// A client for the hub at `base` (e.g. `https://hub.example.org`).
    pub fn new(base: &str, key: Option<NoteSigningKey>, clock: Arc<dyn Clock>) -> Result<Self> {
        // The plain-http rule (`hub_url::check`) is applied when settings are resolved.
        crate::hub_url::parse(base)?;
        let base = base.trim_end_matches('/').to_owned();
        Ok(Self { base, key, clock, http: std::sync::OnceLock::new() })
    }

    /// The hub's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The signature headers of a request as this member.
    fn auth_headers(
        &self,
        method: &reqwest::Method,
        path_and_query: &str,
        body: Option<&[u8]>,
    ) -> Result<Vec<(&'static str, String)>> {
        let key = self.key.as_ref().ok_or_else(|| {
            Error::new(ErrorCode::NoIdentity, "this needs your member key: pass --identity FILE or run `sealdrop init`")
        })?;
        let auth = sign_request(key, method.as_str(), path_and_query, self.clock.now().as_second(), body);
        Ok(auth.headers().into_iter().collect())
    }

    pub(super) fn signed(
        &self,
        method: reqwest::Method,
        path_and_query: &str,
        body: Option<&[u8]>,
    ) -> Result<reqwest::RequestBuilder> {
        let headers = self.auth_headers(&method, path_and_query, body)?;
        let mut req = self.async_client()?.request(method, format!("{}{}", self.base, path_and_query));
        for (name, value) in headers {
            req = req.header(name, value);
        }
        Ok(req)
    }

    pub(super) fn unsigned(&self, method: reqwest::Method, path: &str) -> Result<reqwest::RequestBuilder> {
        Ok(self.async_client()?.request(method, format!("{}{}", self.base, path)))
    }

    /// Sends `req` and reads the whole answer with `read`, on the calling
    /// thread; an unsuccessful answer becomes the hub's error.
    pub(super) fn exchange<T>(
        &self,
        req: reqwest::RequestBuilder,
        read: impl AsyncFnOnce(reqwest::Response) -> Result<T>,
    ) -> Result<T> {
        let (runtime, _) = self.runtime()?;
        runtime.block_on(async {
            let resp = req.send().await.map_err(|e| self.transport_error(e))?;
            let status = resp.status();
            if !status.is_success() {
                let retry_after = retry_after(resp.headers());
                let text = resp.text().await.unwrap_or_default();
                return Err(self.refusal(status, retry_after, &text));
            }
            read(resp).await
        })
    }

    /// The error for an unsuccessful answer: the hub's own code and message
    /// when it sent a sealdrop error body (a hub's `rate_limited` message
    /// says when to retry). A `429` without one (a proxy in front of the
    /// hub sent it) still says when, from `Retry-After`.
    pub(super) fn refusal(&self, status: reqwest::StatusCode, retry_after: Option<u64>, text: &str) -> Error {
        let error = match serde_json::from_str::<ErrorBody>(text) {
            Ok(body) => Error::refused(body.error.code, format!("the hub refused: {}", body.error.message)),
            Err(_) if status == reqwest::StatusCode::TOO_MANY_REQUESTS => {
                let wait = match retry_after {
                    Some(1) => "1 second".to_owned(),
                    Some(secs) => format!("{secs} seconds"),
                    None => "a minute".to_owned(),
                };
                Error::new(
                    ErrorCode::RateLimited,
                    format!(
                        "the hub at {} (or a proxy in front of it) is limiting requests: wait {wait}, then run the same command again",
                        self.base
                    ),
                )
            }
            Err(_) => Error::refused(
                format!("http_{}", status.as_u16()),
                format!(
                    "the hub answered {status} without a sealdrop error body; check that --hub {} is a sealdrop hub (a proxy in front of it may have answered)",
                    self.base
                ),
            ),
        };
        Error { retry_after: retry_after.filter(|_| status == reqwest::StatusCode::TOO_MANY_REQUESTS), ..error }
    }

    pub(super) fn transport_error(&self, e: reqwest::Error) -> Error {
        if let Some(why) = certificate_problem(&e) {
            return Error::new(
                ErrorCode::HubUntrusted,
                format!(
                    "the hub at {} presented a TLS certificate this machine does not trust ({why}); \
                     if a private CA signed it, pass its certificate with --hub-ca FILE (or SEALDROP_HUB_CA, or hub_ca in the config file)",
                    self.base
                ),
            );
        }
        if e.is_connect() || e.is_timeout() {
            Error::new(
                ErrorCode::HubUnreachable,
                format!("cannot reach the hub at {}; check --hub and that the hub is running", self.base),
            )
        } else {
            Error::new(
                ErrorCode::HubUnreachable,
                format!(
                    "connection to the hub at {} failed: {e}; check the network and run the same command again",
                    self.base
                ),
            )
        }
    }

    pub(super) async fn json<T: DeserializeOwned>(&self, resp: reqwest::Response) -> Result<T> {
        let bytes = resp.bytes().await.map_err(|e| self.transport_error(e))?;
        serde_json::from_slice(&bytes).map_err(|e| self.unexpected_answer(e))
    }

    /// An answer that does not parse: most likely another program or
    /// another version at the hub's address.
    fn unexpected_answer(&self, e: impl std::fmt::Display) -> Error {
        Error::new(
            ErrorCode::BadResponse,
            format!(
                "the hub sent an unexpected answer: {e}; check that --hub {} is a sealdrop hub of this version (`sealdrop --version`)",
                self.base
            ),
        )
    }

    /// An unauthenticated GET returning JSON.
    pub(super) fn get_unsigned_json<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.exchange(self.unsigned(reqwest::Method::GET, path)?, async |r| self.json(r).await)
    }

    /// An unauthenticated POST of text returning JSON.
    pub(super) fn post_text_unsigned<T: DeserializeOwned>(&self, path: &str, body: String) -> Result<T> {
        let req = self.unsigned(reqwest::Method::POST, path)?.header("content-type", "text/plain").body(body);
        self.exchange(req, async |r| self.json(r).await)
    }

    /// A GET of the transfer log or the directory, returning text: signed
    /// by this client's key when it has one (a member key, or a witness key
    /// the directory lists), which a hub keeping its log for its members
    /// requires; unsigned without one, which only a hub whose log is public
    /// answers (the refusal then says which key to give). Reads are
    /// idempotent, so a `429` with a short `Retry-After` is waited out (a
    /// long read such as an audit export can meet the party's rate limit).
    pub(super) fn read_text(&self, path: &str) -> Result<String> {
        self.read(path, async |r| r.text().await.map_err(|e| self.transport_error(e)))
    }

    /// [`Self::read_text`] returning bytes.
    pub(super) fn read_bytes(&self, path: &str) -> Result<Vec<u8>> {
        self.read(path, async |r| r.bytes().await.map(|b| b.to_vec()).map_err(|e| self.transport_error(e)))
    }

    /// [`Self::read_text`] returning JSON.
    pub(super) fn read_json<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.read(path, async |r| self.json(r).await)
    }

    pub(super) fn read<T>(&self, path: &str, read: impl AsyncFn(reqwest::Response) -> Result<T>) -> Result<T> {
        let (runtime, _) = self.runtime()?;
        let mut waits = 0;
        loop {
            // Signed afresh each time: a new nonce and time.
            let req = match self.key {
                Some(_) => self.signed(reqwest::Method::GET, path, Some(b""))?,
                None => self.unsigned(reqwest::Method::GET, path)?,
            };
            let answer = runtime.block_on(async {
                let resp = req.send().await.map_err(|e| self.transport_error(e))?;
                let status = resp.status();
                if status.is_success() {
                    return read(resp).await.map(Ok);
                }
                let retry_after = retry_after(resp.headers());
                Ok(Err((status, retry_after, resp.text().await.unwrap_or_default())))
            })?;
            match answer {
                Ok(value) => return Ok(value),
                Err((reqwest::StatusCode::TOO_MANY_REQUESTS, Some(secs), _))
                    if waits < READ_RETRIES && secs <= READ_RETRY_MAX_SECS =>
                {
                    waits += 1;
                    std::thread::sleep(Duration::from_secs(secs.max(1)));
                }
                Err((status, retry_after, text)) => {
                    let refused = self.refusal(status, retry_after, &text);
                    if self.key.is_none() && refused.code == UNAUTHENTICATED {
                        return Err(Error::new(
                            ErrorCode::NoIdentity,
                            format!(
                                "the hub at {} serves its transfer log and directory only to members of its directory \
                                 and the witnesses it lists: give your member key with --identity FILE (or your party's \
                                 witness key with --witness-key FILE), or verify a bundle a member exported with \
                                 `sealdrop audit verify --bundle FILE`",
                                self.base
                            ),
                        ));
                    }
                    return Err(refused);
                }
            }
        }
    }

    /// A signed GET returning JSON.
    pub(super) fn get<T: DeserializeOwned>(&self, path_and_query: &str) -> Result<T> {
        self.exchange(self.signed(reqwest::Method::GET, path_and_query, Some(b""))?, async |r| self.json(r).await)
    }

    /// A signed GET returning JSON, given at most `within` to answer (a
    /// long-poll, which the hub holds on purpose).
    pub(super) fn get_within<T: DeserializeOwned>(&self, path_and_query: &str, within: Duration) -> Result<T> {
        let req = self.signed(reqwest::Method::GET, path_and_query, Some(b""))?.timeout(within);
        self.exchange(req, async |r| self.json(r).await)
    }

    /// A signed DELETE (of an empty body) returning JSON, given at most
    /// `within` to answer: it runs while the user waits to get their prompt
    /// back (an interrupted send withdrawing its drop).
    pub(super) fn delete<T: DeserializeOwned>(&self, path: &str, within: Duration) -> Result<T> {
        let req = self.signed(reqwest::Method::DELETE, path, Some(b""))?.timeout(within);
        self.exchange(req, async |r| self.json(r).await)
    }

    /// Another client for the same hub, as the same member, with its own
    /// connections and runtime: for a thread that must talk to the hub
    /// while this client is busy on another (the interrupt handler).
    pub fn twin(&self) -> Self {
        Self {
            base: self.base.clone(),
            key: self.key.clone(),
            clock: Arc::clone(&self.clock),
            http: std::sync::OnceLock::new(),
        }
    }

    /// A signed POST of JSON returning JSON.
    pub(super) fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T> {
        let bytes = serde_json::to_vec(body).map_err(|e| Error::new(ErrorCode::Internal, e.to_string()))?;
        let req = self.signed(reqwest::Method::POST, path, Some(&bytes))?;
        self.exchange(req.header("content-type", "application/json").body(bytes), async |r| self.json(r).await)
    }

    pub(super) fn runtime(&self) -> Result<&(tokio::runtime::Runtime, reqwest::Client)> {
        if let Some(made) = self.http.get() {
            return Ok(made);
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::new(ErrorCode::Internal, format!("cannot start the HTTP client: {e}")))?;
        let http = reqwest::Client::builder()
            .tls_certs_merge(extra_roots())
            .connect_timeout(Duration::from_secs(15))
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .user_agent(concat!("sealdrop/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::new(ErrorCode::HttpClient, e.to_string()))?;
        Ok(self.http.get_or_init(|| (runtime, http)))
    }

    pub(super) fn async_client(&self) -> Result<&reqwest::Client> {
        Ok(&self.runtime()?.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Kind;
    use sealdrop_proto::api::code::RATE_LIMITED;

    fn client() -> HubApi {
        HubApi::new("http://127.0.0.1:9", None, Arc::new(sealdrop_proto::clock::SystemClock)).unwrap()
    }

    #[test]
    fn a_429_says_when_to_retry_even_without_a_sealdrop_body() {
        let e = client().refusal(reqwest::StatusCode::TOO_MANY_REQUESTS, Some(7), "<html>slow down</html>");
        assert_eq!((e.kind, e.code.as_str()), (Kind::Refused, RATE_LIMITED));
        assert!(e.message.contains("wait 7 seconds, then run the same command again"), "{}", e.message);
        let e = client().refusal(reqwest::StatusCode::TOO_MANY_REQUESTS, None, "");
        assert!(e.message.contains("wait a minute"), "{}", e.message);
        // The hub's own answer keeps its code and message (which says when).
        let body = r#"{"error":{"code":"rate_limited","message":"too many requests: retry after 2 seconds"}}"#;
        let e = client().refusal(reqwest::StatusCode::TOO_MANY_REQUESTS, Some(2), body);
        assert_eq!(e.code, RATE_LIMITED);
        assert_eq!(e.message, "the hub refused: too many requests: retry after 2 seconds");
    }
}
