//! [`SettingsStore`] on PostgreSQL.

use async_trait::async_trait;

use super::PgMetaStore;
use crate::storage::meta::{MetaError, SettingsStore};

#[async_trait]
impl SettingsStore for PgMetaStore {
    async fn setting(&self, key: &str) -> Result<Option<String>, MetaError> {
        let client = self.client().await?;
        let stmt = client.prepare_cached("SELECT value FROM settings WHERE key = $1").await?;
        Ok(client.query_opt(&stmt, &[&key]).await?.map(|row| row.get(0)))
    }

    async fn set_setting(&self, key: &str, value: &str) -> Result<(), MetaError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "INSERT INTO settings (key, value) VALUES ($1, $2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )
            .await?;
        client.execute(&stmt, &[&key, &value]).await?;
        Ok(())
    }
}
