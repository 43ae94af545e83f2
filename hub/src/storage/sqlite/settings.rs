//! [`SettingsStore`] on SQLite.

use async_trait::async_trait;
use rusqlite::OptionalExtension as _;

use super::{Db, SqliteMetaStore};
use crate::storage::meta::{MetaError, SettingsStore};

/// The steps themselves, blocking (see [`SqliteMetaStore::blocking`]).
impl Db {
    fn setting(&self, key: &str) -> Result<Option<String>, MetaError> {
        Ok(self
            .conn()
            .prepare_cached("SELECT value FROM settings WHERE key = ?1")?
            .query_row([key], |r| r.get(0))
            .optional()?)
    }

    fn set_setting(&self, key: &str, value: &str) -> Result<(), MetaError> {
        self.durably(|tx| {
            tx.prepare_cached(
                "INSERT INTO settings (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )?
            .execute([key, value])?;
            Ok(())
        })
    }
}

#[async_trait]
impl SettingsStore for SqliteMetaStore {
    async fn setting(&self, key: &str) -> Result<Option<String>, MetaError> {
        let key = key.to_owned();
        self.blocking(move |db| db.setting(&key)).await
    }

    async fn set_setting(&self, key: &str, value: &str) -> Result<(), MetaError> {
        let (key, value) = (key.to_owned(), value.to_owned());
        self.blocking(move |db| db.set_setting(&key, &value)).await
    }
}
