//! [`DirectoryStore`] on PostgreSQL.

use async_trait::async_trait;

use super::{PgMetaStore, log, to_i64, to_u64};
use crate::storage::meta::{AppendTurn, DirectoryStore, MetaError, StoredDirectory};

#[async_trait]
impl DirectoryStore for PgMetaStore {
    async fn current_serial(&self) -> Result<Option<u64>, MetaError> {
        let client = self.client().await?;
        let stmt = client.prepare_cached("SELECT max(serial) FROM directories").await?;
        client.query_one(&stmt, &[]).await?.get::<_, Option<i64>>(0).map(|s| to_u64(s, "directory serial")).transpose()
    }

    async fn current_directory(&self) -> Result<Option<StoredDirectory>, MetaError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("SELECT serial, note, sha256, accepted_at FROM directories ORDER BY serial DESC LIMIT 1")
            .await?;
        client
            .query_opt(&stmt, &[])
            .await?
            .map(|row| {
                Ok(StoredDirectory {
                    serial: to_u64(row.get(0), "directory serial")?,
                    note: row.get(1),
                    sha256: row.get(2),
                    accepted_at: row.get(3),
                })
            })
            .transpose()
    }

    async fn insert_directory(
        &self,
        dir: &StoredDirectory,
        log_entry: &[u8],
        turn: Box<dyn AppendTurn>,
    ) -> Result<u64, MetaError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let insert = tx
            .prepare_cached("INSERT INTO directories (serial, note, sha256, accepted_at) VALUES ($1, $2, $3, $4)")
            .await?;
        tx.execute(&insert, &[&to_i64(dir.serial, "directory serial")?, &dir.note, &dir.sha256, &dir.accepted_at])
            .await?;
        let index = log::append(&tx, &[log_entry.to_vec()], turn.as_ref()).await?;
        tx.commit().await?;
        turn.committed();
        log::wait_durable(&client).await?;
        Ok(index)
    }

    async fn directory(&self, serial: u64) -> Result<Option<StoredDirectory>, MetaError> {
        let client = self.client().await?;
        let stmt = client.prepare_cached("SELECT note, sha256, accepted_at FROM directories WHERE serial = $1").await?;
        let row = client.query_opt(&stmt, &[&to_i64(serial, "directory serial")?]).await?;
        Ok(row.map(|row| StoredDirectory { serial, note: row.get(0), sha256: row.get(1), accepted_at: row.get(2) }))
    }
}
