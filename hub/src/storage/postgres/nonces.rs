//! [`NonceStore`] on PostgreSQL: the primary key `(key, nonce)` refuses a
//! nonce seen by any instance sharing the database.

use async_trait::async_trait;

use super::PgMetaStore;
use crate::storage::meta::{MetaError, NonceStore};

#[async_trait]
impl NonceStore for PgMetaStore {
    async fn insert_nonce(&self, key: &str, nonce: &str, seen: i64) -> Result<bool, MetaError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("INSERT INTO nonces (key, nonce, seen) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
            .await?;
        Ok(client.execute(&stmt, &[&key, &nonce, &seen]).await? == 1)
    }

    async fn purge_nonces(&self, before: i64) -> Result<usize, MetaError> {
        let client = self.client().await?;
        let stmt = client.prepare_cached("DELETE FROM nonces WHERE seen < $1").await?;
        let purged = client.execute(&stmt, &[&before]).await?;
        usize::try_from(purged).map_err(|_| MetaError::Corrupt(format!("{purged} nonces purged")))
    }
}
