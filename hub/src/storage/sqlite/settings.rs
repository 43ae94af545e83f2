//! [`SettingsStore`] on SQLite.

use rusqlite::OptionalExtension as _;

use super::SqliteMetaStore;
use crate::storage::meta::{MetaError, SettingsStore};

impl SettingsStore for SqliteMetaStore {
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
