//! Talking to the hub over HTTP: every request a party makes is signed by its
//! member key (see `sealdrop_proto::request`); errors from the hub keep their
//! stable code.

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use reqwest::blocking::{Client, RequestBuilder, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use sealdrop_proto::api::{ErrorBody, Uploaded};
use sealdrop_proto::clock::Clock;
use sealdrop_proto::keys::NoteSigningKey;
use sealdrop_proto::request::sign_request;

use crate::error::{Error, Kind, Result};

/// A connection to one hub, optionally acting as one member.
pub struct HubClient {
    base: String,
    http: Client,
    key: Option<NoteSigningKey>,
    clock: Arc<dyn Clock>,
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
            .connect_timeout(Duration::from_secs(15))
            .timeout(None)
            .user_agent(concat!("sealdrop/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::new(Kind::Other, "http_client", e.to_string()))?;
        Ok(Self { base, http, key, clock })
    }

    /// The hub's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn signed(&self, method: reqwest::Method, path_and_query: &str, body: Option<&[u8]>) -> Result<RequestBuilder> {
        let key = self.key.as_ref().ok_or_else(|| {
            Error::input("no_identity", "this needs your member key: pass --identity FILE or run `sealdrop init`")
        })?;
        let auth = sign_request(key, method.as_str(), path_and_query, self.clock.now().as_second(), body);
        let mut req = self.http.request(method, format!("{}{}", self.base, path_and_query));
        for (name, value) in auth.headers() {
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
        Err(match serde_json::from_str::<ErrorBody>(&text) {
            Ok(body) => Error::new(Kind::Refused, &body.error.code, format!("the hub refused: {}", body.error.message)),
            Err(_) => Error::new(
                Kind::Refused,
                &format!("http_{}", status.as_u16()),
                format!("the hub answered {status} without a sealdrop error body; is {} a sealdrop hub?", self.base),
            ),
        })
    }

    fn transport_error(&self, e: reqwest::Error) -> Error {
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

    /// A signed streamed PUT of `body` (its hash is bound later by the manifest).
    pub fn put_stream(&self, path: &str, body: impl Read + Send + 'static) -> Result<Uploaded> {
        let req = self.signed(reqwest::Method::PUT, path, None)?;
        let resp =
            self.send(req.header("content-type", "application/octet-stream").body(reqwest::blocking::Body::new(body)))?;
        self.json(resp)
    }

    /// A signed PUT of a whole file, streamed with its length announced.
    pub fn put_file(&self, path: &str, file: std::fs::File) -> Result<Uploaded> {
        let req = self.signed(reqwest::Method::PUT, path, None)?;
        let resp = self.send(req.header("content-type", "application/octet-stream").body(file))?;
        self.json(resp)
    }

    /// A signed GET whose body is read as a stream.
    pub fn get_stream(&self, path: &str) -> Result<Response> {
        self.send(self.signed(reqwest::Method::GET, path, Some(b""))?)
    }
}
