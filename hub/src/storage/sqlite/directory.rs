//! [`DirectoryStore`] on SQLite.

use async_trait::async_trait;
use rusqlite::{OptionalExtension as _, params};

use super::{Db, SqliteMetaStore, log, to_i64, to_u64};
use crate::storage::meta::{AppendTurn, DirectoryStore, MetaError, StoredDirectory};

/// The steps themselves, blocking (see [`SqliteMetaStore::blocking`]).
impl Db {
    fn current_directory(&self) -> Result<Option<StoredDirectory>, MetaError> {
        let row = self
            .conn()
            .prepare_cached("SELECT serial, note, sha256, accepted_at FROM directories ORDER BY serial DESC LIMIT 1")?
            .query_row([], |r| Ok((r.get::<_, i64>(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .optional()?;
        row.map(|(serial, note, sha256, accepted_at)| {
            Ok(StoredDirectory { serial: to_u64(serial, "directory serial")?, note, sha256, accepted_at })
        })
        .transpose()
    }

    fn insert_directory(
        &self,
        dir: &StoredDirectory,
        log_entry: &[u8],
        turn: &dyn AppendTurn,
    ) -> Result<u64, MetaError> {
        self.appending(turn, |tx| {
            tx.prepare_cached("INSERT INTO directories (serial, note, sha256, accepted_at) VALUES (?1, ?2, ?3, ?4)")?
                .execute(params![to_i64(dir.serial, "directory serial")?, dir.note, dir.sha256, dir.accepted_at])?;
            log::append(tx, &[log_entry.to_vec()], turn)
        })
    }

    fn directory(&self, serial: u64) -> Result<Option<StoredDirectory>, MetaError> {
        let row = self
            .conn()
            .prepare_cached("SELECT note, sha256, accepted_at FROM directories WHERE serial = ?1")?
            .query_row([to_i64(serial, "directory serial")?], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?;
        Ok(row.map(|(note, sha256, accepted_at)| StoredDirectory { serial, note, sha256, accepted_at }))
    }
}

#[async_trait]
impl DirectoryStore for SqliteMetaStore {
    async fn current_directory(&self) -> Result<Option<StoredDirectory>, MetaError> {
        self.blocking(Db::current_directory).await
    }

    async fn current_serial(&self) -> Result<Option<u64>, MetaError> {
        self.blocking(|db| {
            let max: Option<i64> = db.conn().query_row("SELECT max(serial) FROM directories", [], |r| r.get(0))?;
            max.map(|s| to_u64(s, "directory serial")).transpose()
        })
        .await
    }

    async fn insert_directory(
        &self,
        dir: &StoredDirectory,
        log_entry: &[u8],
        turn: Box<dyn AppendTurn>,
    ) -> Result<u64, MetaError> {
        let (dir, log_entry) = (dir.clone(), log_entry.to_vec());
        self.blocking(move |db| db.insert_directory(&dir, &log_entry, turn.as_ref())).await
    }

    async fn directory(&self, serial: u64) -> Result<Option<StoredDirectory>, MetaError> {
        self.blocking(move |db| db.directory(serial)).await
    }
}
