//! `sealdrop-hub check-config`, and the same checks `serve` makes before it
//! starts: what the settings point to, changing nothing. The data
//! directory is an initialised hub's, with a private log key, and its
//! database (a PostgreSQL one is connected to) holds that hub; the TLS
//! certificate and key parse, belong together and would be accepted by
//! clients (see [`crate::tls_cert::inspect`]); an object store named by
//! `blobs` answers, and its bucket lists. Every problem is returned, one
//! line each, with a stable code.

use sealdrop_proto::error_code::ErrorCode;

use crate::config::{BlobsLocation, ServeSettings};
pub use crate::tls_cert::Problem;

/// What [`check`] found usable, for printing.
#[derive(Debug, Clone)]
pub struct CheckReport {
    /// The hub's log verifier key, read from the data directory.
    pub log_verifier: String,
    /// What the database is: proof that it was reached and holds this hub.
    pub database: String,
    /// Where ciphertexts are kept and, for an object store, what it holds:
    /// proof that it was reached with the credentials given.
    pub blobs: String,
}

/// Checks the data directory and the TLS files of `settings` at `now`;
/// every problem found, or what was read.
pub fn check(settings: &ServeSettings, now: jiff::Timestamp) -> Result<CheckReport, Vec<Problem>> {
    let mut problems = Vec::new();
    let hub = match crate::hub::survey(&settings.data, &settings.backends) {
        Ok(found) => Some(found),
        Err(e) => {
            problems.push(Problem::new(ErrorCode::DataDir, format!("data directory: {e}")));
            None
        }
    };
    problems.extend(tls_problems(settings, now));
    let blobs = match blobs(&settings.backends.blobs) {
        Ok(found) => Some(found),
        Err(problem) => {
            problems.push(problem);
            None
        }
    };
    let given = settings.backends.blobs.to_string();
    if let Some(recorded) = hub.as_ref().and_then(|h| h.blobs.as_ref())
        && blobs.is_some()
        && *recorded != given
    {
        problems.push(Problem::new(
            ErrorCode::BlobStore,
            format!(
                "blobs = \"{given}\": this hub's ciphertexts are in {recorded}; set blobs = \"{recorded}\" (serve \
                 refuses any other)"
            ),
        ));
    }
    match (hub, blobs) {
        (Some(hub), Some(blobs)) if problems.is_empty() => {
            Ok(CheckReport { log_verifier: hub.log_verifier.to_string(), database: hub.database, blobs })
        }
        _ => Err(problems),
    }
}

/// Where ciphertexts are kept, as a phrase; an object store is connected
/// to and its contents counted, changing nothing.
pub fn blobs(location: &BlobsLocation) -> Result<String, Problem> {
    let BlobsLocation::S3(s3) = location else { return Ok("in the data directory".to_owned()) };
    let problem = |why: String| {
        // An S3 error may quote a response body over several lines.
        let why = why.split_whitespace().collect::<Vec<_>>().join(" ");
        Problem::new(
            ErrorCode::BlobStore,
            format!(
                "blobs = \"{s3}\": {why}; check the bucket exists and AWS_ENDPOINT_URL, AWS_REGION, \
                 AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY"
            ),
        )
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| problem(format!("cannot start the async runtime: {e}")))?;
    let found = runtime.block_on(crate::storage::object::survey(s3)).map_err(|e| problem(e.to_string()))?;
    Ok(format!("in {s3}, which holds {} blobs and {} uploads", found.blobs, found.uploads))
}

/// The problems of the TLS files of `settings` at `now` (none without TLS).
pub fn tls_problems(settings: &ServeSettings, now: jiff::Timestamp) -> Vec<Problem> {
    settings.tls.as_ref().map(|tls| crate::tls_cert::inspect(&tls.cert, &tls.key, now)).unwrap_or_default()
}
