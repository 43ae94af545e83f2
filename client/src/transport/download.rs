//! Downloading a drop's ciphertext as a `std::io::Read` stream on the same
//! async client as every other request: each read waits for the next chunk
//! the connection delivers, driving the runtime on the calling thread, so
//! no thread hand-off and no copy beyond the one into the reader's buffer.
//! Memory stays bounded by the chunk in hand.

use std::io::{self, Read};

use bytes::{Buf as _, Bytes};

use sealdrop_proto::ids::DropId;

use super::HubApi;
use super::api::content_path;
use crate::error::Result;

/// The hub's answer to a download, its body read as a stream.
pub struct Download<'a> {
    runtime: &'a tokio::runtime::Runtime,
    response: reqwest::Response,
    /// What is left of the chunk the connection delivered last.
    current: Bytes,
}

impl HubApi {
    /// Downloads drop `id`'s ciphertext: all of it, or with `from`, the bytes
    /// from there on (`Range: bytes=FROM-`). A hub that serves ranges
    /// answers 206 Partial Content with a `Content-Range` (see
    /// [`Download::is_partial`]); one that does not, 200 with all of it. A
    /// `from` at or beyond the end is refused with `bad_range`.
    pub fn download(&self, id: &DropId, from: Option<u64>) -> Result<Download<'_>> {
        let mut req = self.signed(reqwest::Method::GET, &content_path(id), Some(b""))?;
        if let Some(start) = from {
            req = req.header(reqwest::header::RANGE, format!("bytes={start}-"));
        }
        let response = self.exchange(req, async |r| Ok(r))?;
        let (runtime, _) = self.runtime()?;
        Ok(Download { runtime, response, current: Bytes::new() })
    }
}

impl Download<'_> {
    /// Whether the hub answered with part of the ciphertext (206).
    pub fn is_partial(&self) -> bool {
        self.response.status() == reqwest::StatusCode::PARTIAL_CONTENT
    }

    /// The `Content-Range` the hub answered with, if any.
    pub fn content_range(&self) -> Option<&str> {
        self.response.headers().get(reqwest::header::CONTENT_RANGE).and_then(|v| v.to_str().ok())
    }
}

impl Read for Download<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        while self.current.is_empty() {
            match self.runtime.block_on(self.response.chunk()) {
                Ok(Some(chunk)) => self.current = chunk,
                Ok(None) => return Ok(0),
                Err(e) => return Err(io::Error::other(e)),
            }
        }
        let n = out.len().min(self.current.len());
        out[..n].copy_from_slice(&self.current[..n]);
        self.current.advance(n);
        Ok(n)
    }
}
