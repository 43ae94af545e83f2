//! `sealdrop-hub check-config`, and the same checks `serve` makes before it
//! starts: what the settings point to, changing nothing. The data
//! directory is an initialised hub's, with a private log key; the TLS
//! certificate and key parse, belong together and would be accepted by
//! clients (see [`crate::tls_cert::inspect`]). Every problem is returned,
//! one line each, with a stable code.

use sealdrop_proto::error_code::ErrorCode;

use crate::config::ServeSettings;
pub use crate::tls_cert::Problem;

/// What [`check`] found usable, for printing.
#[derive(Debug, Clone)]
pub struct CheckReport {
    /// The hub's log verifier key, read from the data directory.
    pub log_verifier: String,
}

/// Checks the data directory and the TLS files of `settings` at `now`;
/// every problem found, or what was read.
pub fn check(settings: &ServeSettings, now: jiff::Timestamp) -> Result<CheckReport, Vec<Problem>> {
    let mut problems = Vec::new();
    let log_verifier = match crate::hub::read_log_verifier(&settings.data) {
        Ok(key) => Some(key.to_string()),
        Err(e) => {
            problems.push(Problem::new(ErrorCode::DataDir, format!("data directory: {e}")));
            None
        }
    };
    problems.extend(tls_problems(settings, now));
    match log_verifier {
        Some(log_verifier) if problems.is_empty() => Ok(CheckReport { log_verifier }),
        _ => Err(problems),
    }
}

/// The problems of the TLS files of `settings` at `now` (none without TLS).
pub fn tls_problems(settings: &ServeSettings, now: jiff::Timestamp) -> Vec<Problem> {
    settings.tls.as_ref().map(|tls| crate::tls_cert::inspect(&tls.cert, &tls.key, now)).unwrap_or_default()
}
