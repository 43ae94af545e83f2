//! An error from tokio-postgres or the pool in words: tokio-postgres 0.7's
//! errors show only their kind ("db error", "error connecting to server"),
//! and what the server or the network said is in their causes.

use std::error::Error as StdError;

/// An error with all its causes on one line. tokio-postgres's errors show
/// only their kind ("db error"); the server's words are in the causes.
pub(crate) fn describe(err: &(dyn StdError + 'static)) -> String {
    let mut line = String::new();
    for cause in causes(err) {
        let text = cause.to_string().replace('\n', "; ");
        // An io::Error shows the error it wraps, which comes next.
        if !line.contains(&text) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&text);
        }
    }
    line
}

/// An error and its causes. `io::Error` hides the error it wraps from
/// `source()` (it returns that error's own source), and tokio-rustls wraps
/// rustls's errors in one, so it is opened with `get_ref`.
pub(super) fn causes<'a>(err: &'a (dyn StdError + 'static)) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(Some(err), |&e: &&'a (dyn StdError + 'static)| {
        match e.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
            Some(inner) => Some(inner as &(dyn StdError + 'static)),
            None => e.source(),
        }
    })
}

#[cfg(test)]
mod tests {
    use crate::storage::meta::MetaError;
    use crate::storage::meta_conformance::postgres_url;
    use crate::storage::postgres::PgMetaStore;

    #[tokio::test]
    async fn a_statements_error_shows_what_the_server_said() {
        let store = PgMetaStore::connect(&postgres_url().await).await.unwrap();
        let err = store.client().await.unwrap().execute("SELECT * FROM no_such_table", &[]).await.unwrap_err();
        let shown = MetaError::from(err).to_string();
        assert_eq!(shown, r#"db error: ERROR: relation "no_such_table" does not exist"#);
    }
}
