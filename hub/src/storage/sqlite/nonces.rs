//! [`NonceStore`] on SQLite.

use rusqlite::params;

use super::SqliteMetaStore;
use crate::storage::meta::{MetaError, NonceStore};

impl NonceStore for SqliteMetaStore {
    fn insert_nonce(&self, key: &str, nonce: &str, seen: i64) -> Result<bool, MetaError> {
        let n = self
            .conn()
            .prepare_cached("INSERT INTO nonces (key, nonce, seen) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING")?
            .execute(params![key, nonce, seen])?;
        Ok(n == 1)
    }

    fn purge_nonces(&self, before: i64) -> Result<usize, MetaError> {
        Ok(self.conn().prepare_cached("DELETE FROM nonces WHERE seen < ?1")?.execute([before])?)
    }
}
