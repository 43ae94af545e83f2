//! Uploading a drop's ciphertext: a streamed, signed PUT whose body arrives
//! in large chunks from another thread, and feeding a file into one.

use std::io::{self, Read};

use bytes::Bytes;

use sealdrop_proto::api::{UPLOAD_OFFSET_HEADER, Uploaded};
use sealdrop_proto::ids::DropId;

use super::HubApi;
use super::api::content_path;
use crate::error::{Error, Result};

/// Bytes per chunk [`feed`] reads and hands to the connection.
pub const CHUNK: usize = 256 * 1024;
/// Chunks waiting for the connection at most.
const DEPTH: usize = 8;

impl HubApi {
    /// Uploads drop `id`'s ciphertext, which arrives as chunks on `chunks`,
    /// written to the connection as they come. The blocking client reads a
    /// body 8 KiB at a time with a thread hand-off each, which cost more
    /// than the encryption; this sends each large chunk in one go through
    /// the async client on a runtime local to the calling thread. A chunk
    /// that is an error ends the upload with that error (the hub sees a
    /// broken body and keeps nothing it could mistake for a finished
    /// upload). `offset`, when set, continues an upload the hub holds that
    /// many bytes of.
    pub fn upload(
        &self,
        id: &DropId,
        offset: Option<u64>,
        chunks: tokio::sync::mpsc::Receiver<io::Result<Bytes>>,
    ) -> Result<Uploaded> {
        let mut req = self.signed(reqwest::Method::PUT, &content_path(id), None)?;
        if let Some(offset) = offset {
            req = req.header(UPLOAD_OFFSET_HEADER, offset.to_string());
        }
        let chunks = std::sync::Arc::new(std::sync::Mutex::new(chunks));
        let body_chunks = std::sync::Arc::clone(&chunks);
        let body = futures_util::stream::poll_fn(move |cx| {
            body_chunks.lock().unwrap_or_else(std::sync::PoisonError::into_inner).poll_recv(cx)
        });
        let req = req.header("content-type", "application/octet-stream").body(reqwest::Body::wrap_stream(body));
        let answer = self.exchange(req, async |r| self.json::<Uploaded>(r).await);
        // The body can outlive the exchange: when the connection fails, the
        // task holding it is never polled again (this runtime only runs
        // inside `exchange`), and whoever feeds the channel would wait for
        // room forever. Closing it makes their next send fail at once.
        chunks.lock().unwrap_or_else(std::sync::PoisonError::into_inner).close();
        answer
    }

    /// Uploads drop `id`'s ciphertext from a whole file, streamed in large
    /// writes (see [`Self::upload`]).
    pub fn upload_file(&self, id: &DropId, file: std::fs::File) -> Result<Uploaded> {
        let (tx, rx) = tokio::sync::mpsc::channel(DEPTH);
        let reader = std::thread::spawn(move || feed(file, &tx));
        let uploaded = self.upload(id, None, rx);
        let read = reader.join();
        match (uploaded, read) {
            (Ok(u), _) => Ok(u),
            (Err(e), Ok(Err(read))) => Err(Error::io(format!("cannot read the file to upload ({})", e.message), read)),
            (Err(e), _) => Err(e),
        }
    }
}

/// Sends everything `reader` yields to an upload in chunks of [`CHUNK`]; a
/// read error is passed on so the upload fails instead of ending short.
pub fn feed(mut reader: impl Read, tx: &tokio::sync::mpsc::Sender<io::Result<Bytes>>) -> io::Result<()> {
    loop {
        let mut buf = vec![0u8; CHUNK];
        let mut filled = 0;
        while filled < CHUNK {
            match reader.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let _ = tx.blocking_send(Err(io::Error::new(e.kind(), e.to_string())));
                    return Err(e);
                }
            }
        }
        if filled == 0 {
            return Ok(());
        }
        buf.truncate(filled);
        if tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
            // The upload stopped; it reports why.
            return Ok(());
        }
    }
}
