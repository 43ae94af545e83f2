//! [`NonceStore`] on SQLite.

use async_trait::async_trait;
use rusqlite::params;

use super::SqliteMetaStore;
use crate::storage::meta::{MetaError, NonceStore};

#[async_trait]
impl NonceStore for SqliteMetaStore {
    async fn insert_nonce(&self, key: &str, nonce: &str, seen: i64) -> Result<bool, MetaError> {
        let (key, nonce) = (key.to_owned(), nonce.to_owned());
        self.blocking(move |db| {
            let n = db
                .conn()
                .prepare_cached("INSERT INTO nonces (key, nonce, seen) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING")?
                .execute(params![key, nonce, seen])?;
            Ok(n == 1)
        })
        .await
    }

    async fn purge_nonces(&self, before: i64) -> Result<usize, MetaError> {
        self.blocking(move |db| {
            Ok(db.conn().prepare_cached("DELETE FROM nonces WHERE seen < ?1")?.execute([before])?)
        })
        .await
    }
}
