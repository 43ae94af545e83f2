//! Talking to the hub over HTTP: every request a party makes is signed by its
//! member key (see `sealdrop_proto::request`); errors from the hub keep their
//! stable code.

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use reqwest::blocking::{Client, RequestBuilder, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use sealdrop_proto::api::{ErrorBody, UPLOAD_OFFSET_HEADER, Uploaded};
use sealdrop_proto::clock::Clock;
use sealdrop_proto::keys::NoteSigningKey;
use sealdrop_proto::request::sign_request;

use crate::error::{Error, Kind, Result};

/// Extra CA certificates this process trusts for the hub's TLS certificate,
/// beside the system's (`--hub-ca`, `SEALDROP_HUB_CA`, config `hub_ca`):
/// for a hub whose certificate comes from a council's private CA. Process
/// wide because a `sealdrop` run talks to one hub, and set once, before the
/// first [`HubClient`] is made, by [`trust_hub_ca`].
static EXTRA_ROOTS: OnceLock<Vec<reqwest::Certificate>> = OnceLock::new();

/// Trusts the CA certificates in the PEM file `path` (one or more), in
/// addition to the system's, for every hub connection this process makes.
/// Refuses a file that holds no certificate, or a second, different call.
pub fn trust_hub_ca(path: &Path) -> Result<()> {
    let bad = |why: String| {
        Error::input(
            "bad_hub_ca",
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
pub struct HubClient {
    base: String,
    http: Client,
    key: Option<NoteSigningKey>,
    clock: Arc<dyn Clock>,
    /// For uploads (see [`Self::put_chunks`]): an async client and the
    /// runtime its pooled connections live on, made at the first upload and
    /// kept so later uploads reuse the connection.
    streaming: std::sync::OnceLock<(tokio::runtime::Runtime, reqwest::Client)>,
}

impl HubClient {
    /// A client for the hub at `base` (e.g. `https://hub.example.org`).
    pub fn new(base: &str, key: Option<NoteSigningKey>, clock: Arc<dyn Clock>) -> Result<Self> {
        let base = base.trim_end_matches('/').to_owned();
        let url = reqwest::Url::parse(&base).map_err(|e| {
            Error::input(
                "bad_hub_url",
                format!("hub URL {base:?} is not valid ({e}); use e.g. https://hub.example.org"),
            )
        })?;
        if !matches!(url.scheme(), "http" | "https") || url.path() != "/" {
            return Err(Error::input(
                "bad_hub_url",
                format!("hub URL {base:?} must be http(s)://HOST[:PORT] with no path"),
            ));
        }
        let http = Client::builder()
            .tls_certs_merge(extra_roots())
            .connect_timeout(Duration::from_secs(15))
            .timeout(None)
            .user_agent(concat!("sealdrop/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::new(Kind::Other, "http_client", e.to_string()))?;
        Ok(Self { base, http, key, clock, streaming: std::sync::OnceLock::new() })
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
            Error::input("no_identity", "this needs your member key: pass --identity FILE or run `sealdrop init`")
        })?;
        let auth = sign_request(key, method.as_str(), path_and_query, self.clock.now().as_second(), body);
        Ok(auth.headers().into_iter().collect())
    }

    fn signed(&self, method: reqwest::Method, path_and_query: &str, body: Option<&[u8]>) -> Result<RequestBuilder> {
        let headers = self.auth_headers(&method, path_and_query, body)?;
        let mut req = self.http.request(method, format!("{}{}", self.base, path_and_query));
        for (name, value) in headers {
            req = req.header(name, value);
        }
        Ok(req)
    }

    fn send(&self, req: RequestBuilder) -> Result<Response> {
        let resp = req.send().map_err(|e| self.transport_error(e))?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        let text = resp.text().unwrap_or_default();
        Err(self.refusal(status, &text))
    }

    /// The error for an unsuccessful answer: the hub's own code and message
    /// when it sent a sealdrop error body.
    fn refusal(&self, status: reqwest::StatusCode, text: &str) -> Error {
        match serde_json::from_str::<ErrorBody>(text) {
            Ok(body) => Error::new(Kind::Refused, &body.error.code, format!("the hub refused: {}", body.error.message)),
            Err(_) => Error::new(
                Kind::Refused,
                &format!("http_{}", status.as_u16()),
                format!("the hub answered {status} without a sealdrop error body; is {} a sealdrop hub?", self.base),
            ),
        }
    }

    fn transport_error(&self, e: reqwest::Error) -> Error {
        if let Some(why) = certificate_problem(&e) {
            return Error::new(
                Kind::Unreachable,
                "hub_untrusted",
                format!(
                    "the hub at {} presented a TLS certificate this machine does not trust ({why}); \
                     if a private CA signed it, pass its certificate with --hub-ca FILE (or SEALDROP_HUB_CA, or hub_ca in the config file)",
                    self.base
                ),
            );
        }
        if e.is_connect() || e.is_timeout() {
            Error::new(
                Kind::Unreachable,
                "hub_unreachable",
                format!("cannot reach the hub at {}; check --hub and that the hub is running", self.base),
            )
        } else {
            Error::new(
                Kind::Unreachable,
                "hub_unreachable",
                format!("connection to the hub at {} failed: {e}", self.base),
            )
        }
    }

    fn json<T: DeserializeOwned>(&self, resp: Response) -> Result<T> {
        resp.json()
            .map_err(|e| Error::new(Kind::Other, "bad_response", format!("the hub sent an unexpected answer: {e}")))
    }

    /// An unauthenticated GET returning text.
    pub fn get_text_unsigned(&self, path: &str) -> Result<String> {
        let resp = self.send(self.http.get(format!("{}{}", self.base, path)))?;
        resp.text().map_err(|e| self.transport_error(e))
    }

    /// An unauthenticated GET returning JSON.
    pub fn get_unsigned_json<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let resp = self.send(self.http.get(format!("{}{}", self.base, path)))?;
        self.json(resp)
    }

    /// An unauthenticated GET returning bytes.
    pub fn get_bytes_unsigned(&self, path: &str) -> Result<Vec<u8>> {
        let resp = self.send(self.http.get(format!("{}{}", self.base, path)))?;
        resp.bytes().map(|b| b.to_vec()).map_err(|e| self.transport_error(e))
    }

    /// An unauthenticated POST of text returning JSON.
    pub fn post_text_unsigned<T: DeserializeOwned>(&self, path: &str, body: String) -> Result<T> {
        let req = self.http.post(format!("{}{}", self.base, path)).header("content-type", "text/plain").body(body);
        let resp = self.send(req)?;
        self.json(resp)
    }

    /// A signed GET returning JSON.
    pub fn get<T: DeserializeOwned>(&self, path_and_query: &str) -> Result<T> {
        let resp = self.send(self.signed(reqwest::Method::GET, path_and_query, Some(b""))?)?;
        self.json(resp)
    }

    /// A signed POST of JSON returning JSON.
    pub fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T> {
        let bytes = serde_json::to_vec(body).map_err(|e| Error::new(Kind::Other, "internal", e.to_string()))?;
        let req = self.signed(reqwest::Method::POST, path, Some(&bytes))?;
        let resp = self.send(req.header("content-type", "application/json").body(bytes))?;
        self.json(resp)
    }

    /// A signed streamed PUT whose body arrives as chunks on `chunks`, written
    /// to the connection as they come. The blocking client reads a body
    /// 8 KiB at a time with a thread hand-off each, which cost more than the
    /// encryption; this sends each large chunk in one go through the async
    /// client on a runtime local to the calling thread. A chunk that is an
    /// error ends the upload with that error (the hub sees a broken body and
    /// keeps nothing it could mistake for a finished upload). `offset`, when
    /// set, continues an upload the hub holds that many bytes of.
    pub fn put_chunks(
        &self,
        path: &str,
        offset: Option<u64>,
        chunks: tokio::sync::mpsc::Receiver<std::io::Result<bytes::Bytes>>,
    ) -> Result<Uploaded> {
        let method = reqwest::Method::PUT;
        let headers = self.auth_headers(&method, path, None)?;
        let (runtime, http) = self.streaming()?;
        let mut req = http.request(method, format!("{}{}", self.base, path));
        for (name, value) in headers {
            req = req.header(name, value);
        }
        if let Some(offset) = offset {
            req = req.header(UPLOAD_OFFSET_HEADER, offset.to_string());
        }
        let mut chunks = chunks;
        let body = futures_util::stream::poll_fn(move |cx| chunks.poll_recv(cx));
        let req = req.header("content-type", "application/octet-stream").body(reqwest::Body::wrap_stream(body));
        runtime.block_on(async {
            let resp = req.send().await.map_err(|e| self.transport_error(e))?;
            let status = resp.status();
            if !status.is_success() {
                let text = resp.text().await.unwrap_or_default();
                return Err(self.refusal(status, &text));
            }
            resp.json::<Uploaded>()
                .await
                .map_err(|e| Error::new(Kind::Other, "bad_response", format!("the hub sent an unexpected answer: {e}")))
        })
    }

    fn streaming(&self) -> Result<&(tokio::runtime::Runtime, reqwest::Client)> {
        if let Some(made) = self.streaming.get() {
            return Ok(made);
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::new(Kind::Other, "internal", format!("cannot start the upload: {e}")))?;
        let http = reqwest::Client::builder()
            .tls_certs_merge(extra_roots())
            .connect_timeout(Duration::from_secs(15))
            .user_agent(concat!("sealdrop/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::new(Kind::Other, "http_client", e.to_string()))?;
        Ok(self.streaming.get_or_init(|| (runtime, http)))
    }

    /// A signed PUT of a whole file, streamed in large writes (see [`Self::put_chunks`]).
    pub fn put_file(&self, path: &str, file: std::fs::File) -> Result<Uploaded> {
        let (tx, rx) = tokio::sync::mpsc::channel(8);
        let reader = std::thread::spawn(move || crate::upload::feed(file, &tx));
        let uploaded = self.put_chunks(path, None, rx);
        let read = reader.join();
        match (uploaded, read) {
            (Ok(u), _) => Ok(u),
            (Err(e), Ok(Err(read))) => Err(Error::io(format!("cannot read the file to upload ({})", e.message), read)),
            (Err(e), _) => Err(e),
        }
    }

    /// A signed GET whose body is read as a stream.
    pub fn get_stream(&self, path: &str) -> Result<Response> {
        self.send(self.signed(reqwest::Method::GET, path, Some(b""))?)
    }

    /// A signed GET of the bytes from `start` on (`Range: bytes=START-`),
    /// read as a stream: a hub that serves ranges answers 206 Partial
    /// Content with a `Content-Range`; one that does not, 200 with all of
    /// it. A `start` at or beyond the end is refused with `bad_range`.
    pub fn get_stream_from(&self, path: &str, start: u64) -> Result<Response> {
        let req = self.signed(reqwest::Method::GET, path, Some(b""))?;
        self.send(req.header(reqwest::header::RANGE, format!("bytes={start}-")))
    }
}
