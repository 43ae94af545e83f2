//! Small ciphertexts kept in the hub's database instead of a file each.

use std::sync::Arc;

use rusqlite::{OptionalExtension as _, params};
use sealdrop_proto::ids::DropId;

use super::{Db, parse, to_u64};
use crate::storage::meta::MetaError;

/// Where a drop's ciphertext is in its life, as the blob store sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobStage {
    /// Being uploaded (finished or cut off), not yet committed.
    Upload,
    /// Committed: what recipients download.
    Blob,
}

impl BlobStage {
    fn as_str(self) -> &'static str {
        match self {
            Self::Upload => "upload",
            Self::Blob => "blob",
        }
    }
}

/// Small ciphertexts in a table of the hub's database, one row per drop.
///
/// Why: a file per small drop cost a file creation, an fsync of it and of
/// its folder, and a rename, for a few KiB; a row costs a few pages of the
/// WAL, made durable by the group sync the drop's commit waits for anyway
/// (rows are written with `synchronous=NORMAL` and no sync of their own: a
/// later sync of the same WAL covers every earlier transaction, and the
/// commit that makes a drop visible always comes after its row's writes).
/// Calls block; the blob store runs them on the blocking pool.
#[derive(Clone)]
pub struct InlineBlobs {
    /// The database the rows live in, shared with the metadata store.
    pub(super) db: Arc<Db>,
}

impl std::fmt::Debug for InlineBlobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InlineBlobs")
    }
}

impl InlineBlobs {
    /// Runs `f` on the database's own thread (see `worker`), as every call
    /// of the metadata stores runs: from async code, call the blocking
    /// methods below through this.
    pub async fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&InlineBlobs) -> Result<R, MetaError> + Send + 'static,
    ) -> Result<R, MetaError> {
        let me = self.clone();
        super::worker::run(&self.db, move |_| f(&me)).await
    }

    /// Stores `data` as the drop's upload, replacing any row it had.
    pub fn put_upload(&self, id: &DropId, data: &[u8]) -> Result<(), MetaError> {
        self.db
            .conn()
            .prepare_cached(
                "INSERT INTO inline_blobs (drop_id, stage, data) VALUES (?1, 'upload', ?2)
                 ON CONFLICT (drop_id) DO UPDATE SET stage = 'upload', data = excluded.data",
            )?
            .execute(params![id.as_str(), data])?;
        Ok(())
    }

    /// The drop's bytes at `stage`, if it has a row at that stage.
    pub fn get(&self, id: &DropId, stage: BlobStage) -> Result<Option<Vec<u8>>, MetaError> {
        Ok(self
            .db
            .conn()
            .prepare_cached("SELECT data FROM inline_blobs WHERE drop_id = ?1 AND stage = ?2")?
            .query_row(params![id.as_str(), stage.as_str()], |r| r.get(0))
            .optional()?)
    }

    /// The length of the drop's bytes at `stage`, if it has a row at that stage.
    pub fn len(&self, id: &DropId, stage: BlobStage) -> Result<Option<u64>, MetaError> {
        let len: Option<i64> = self
            .db
            .conn()
            .prepare_cached("SELECT length(data) FROM inline_blobs WHERE drop_id = ?1 AND stage = ?2")?
            .query_row(params![id.as_str(), stage.as_str()], |r| r.get(0))
            .optional()?;
        len.map(|n| to_u64(n, "inline blob length")).transpose()
    }

    /// Turns the drop's upload into its blob; `false` if it has no upload row.
    pub fn promote(&self, id: &DropId) -> Result<bool, MetaError> {
        let n = self
            .db
            .conn()
            .prepare_cached("UPDATE inline_blobs SET stage = 'blob' WHERE drop_id = ?1 AND stage = 'upload'")?
            .execute([id.as_str()])?;
        Ok(n == 1)
    }

    /// Deletes the drop's row at `stage`; `false` if there was none. Returns
    /// once no byte of it is left in the database's files (see
    /// [`crate::storage::scrub`]).
    pub fn delete(&self, id: &DropId, stage: BlobStage) -> Result<bool, MetaError> {
        let n = self
            .db
            .conn()
            .prepare_cached("DELETE FROM inline_blobs WHERE drop_id = ?1 AND stage = ?2")?
            .execute(params![id.as_str(), stage.as_str()])?;
        if n == 1 {
            self.db.scrub()?;
        }
        Ok(n == 1)
    }

    /// The drops with a row at `stage`.
    pub fn list(&self, stage: BlobStage) -> Result<Vec<DropId>, MetaError> {
        let conn = self.db.conn();
        let mut statement =
            conn.prepare_cached("SELECT drop_id FROM inline_blobs WHERE stage = ?1 ORDER BY drop_id")?;
        let ids: Vec<String> = statement.query_map([stage.as_str()], |r| r.get(0))?.collect::<Result<_, _>>()?;
        ids.into_iter().map(|id| parse(id, "inline blob id")).collect()
    }
}
