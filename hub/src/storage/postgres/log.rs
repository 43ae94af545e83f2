//! The transfer log's tables in PostgreSQL (entries, stored tree hashes,
//! signed checkpoints, cosignatures): [`LogStore`] and
//! [`CosignatureStore`], and [`append`], which runs inside the transaction
//! of the state change its entries record.
//!
//! An append first locks the one row of `log_head` (`SELECT ... FOR
//! UPDATE`): a second append, from this instance or another on the same
//! database, waits there until the first commits or rolls back, then reads
//! the size the first left. So entry indexes are dense across instances and
//! every checkpoint extends the one before. An append reads only the
//! tree's frontier (at most 64 hashes) and writes its rows in one statement
//! per table, so holding the lock costs a few round trips, not one per entry.

use std::collections::HashMap;

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use sealdrop_log::entry::MAX_ENTRY_BYTES;
use tlog_tiles::{HASH_SIZE, Hash, stored_hash_index, stored_hashes, tree_hash};
use tokio_postgres::IsolationLevel;

use super::PgMetaStore;
use crate::storage::frontier::Frontier;
use crate::storage::meta::{AppendTurn, CosignatureStore, LogStore, MetaError, StoredCheckpoint, setting};

/// Entries [`LogStore::recompute_log`] reads per query.
const RECOMPUTE_PAGE: i64 = 4096;

fn inconsistent(message: impl Into<String>) -> MetaError {
    MetaError::LogInconsistent(message.into())
}

fn tlog_error(what: &str, e: tlog_tiles::Error) -> MetaError {
    inconsistent(format!("{what}: {e}"))
}

fn to_i64(n: u64) -> Result<i64, MetaError> {
    i64::try_from(n).map_err(|_| inconsistent(format!("log index {n} is too large to store")))
}

fn to_u64(n: i64) -> Result<u64, MetaError> {
    u64::try_from(n).map_err(|_| inconsistent(format!("stored log index {n} is negative")))
}

fn to_hash(bytes: &[u8], index: u64) -> Result<Hash, MetaError> {
    let bytes: [u8; HASH_SIZE] =
        bytes.try_into().map_err(|_| inconsistent(format!("stored hash {index} is {} bytes, not 32", bytes.len())))?;
    Ok(Hash(bytes))
}

/// The stored hashes at `indexes`, in that order; an error if one is missing.
async fn read_hashes(client: &impl GenericClient, indexes: &[u64]) -> Result<Vec<Hash>, MetaError> {
    let wanted = indexes.iter().map(|&i| to_i64(i)).collect::<Result<Vec<_>, _>>()?;
    let stmt = client.prepare_cached("SELECT idx, hash FROM log_hashes WHERE idx = ANY($1)").await?;
    let found: HashMap<i64, Vec<u8>> =
        client.query(&stmt, &[&wanted]).await?.into_iter().map(|row| (row.get(0), row.get(1))).collect();
    indexes
        .iter()
        .zip(&wanted)
        .map(|(&i, key)| {
            let bytes = found.get(key).ok_or_else(|| inconsistent(format!("stored hash {i} is missing")))?;
            to_hash(bytes, i)
        })
        .collect()
}

/// The size of the latest checkpoint, if any.
async fn latest_checkpoint_size(client: &impl GenericClient) -> Result<Option<u64>, MetaError> {
    let stmt = client.prepare_cached("SELECT max(size) FROM checkpoints").await?;
    client.query_one(&stmt, &[]).await?.get::<_, Option<i64>>(0).map(to_u64).transpose()
}

/// Refuses `entries` if one is timed before the last stored entry (both
/// read as the hub's own entries; raw bytes that are not have no time).
/// Instances take the log's turn before they read the time (see
/// [`super::coordination`]), so this holds unless one appended without it;
/// checked here, under the log head's row lock, so no append can make
/// `audit verify` fail on the order of times.
async fn refuse_time_going_back(
    tx: &deadpool_postgres::Transaction<'_>,
    start: u64,
    entries: &[Vec<u8>],
) -> Result<(), MetaError> {
    let Some(last) = start.checked_sub(1) else { return Ok(()) };
    let stmt = tx.prepare_cached("SELECT data FROM log_entries WHERE idx = $1").await?;
    let Some(last) = super::coordination::entry_time(tx.query_one(&stmt, &[&to_i64(last)?]).await?.get(0)) else {
        return Ok(());
    };
    match entries.iter().filter_map(|data| super::coordination::entry_time(data)).find(|t| *t < last) {
        Some(entry) => Err(MetaError::LogTimeWentBack { last, entry }),
        None => Ok(()),
    }
}

/// Appends `entries` and stores the checkpoint for the new size that `turn`
/// signs, inside `tx` (the transaction of the state change the entries
/// record), holding the log head's row lock until `tx` ends. The caller
/// commits `tx`, then calls [`wait_durable`] before it answers anyone. Returns the
/// first entry's index. Refuses to append when the head, the stored entries
/// and the latest checkpoint disagree, so the hub never signs a checkpoint
/// that does not extend the one before.
pub(super) async fn append(
    tx: &deadpool_postgres::Transaction<'_>,
    entries: &[Vec<u8>],
    turn: &dyn AppendTurn,
) -> Result<u64, MetaError> {
    let lock = tx.prepare_cached("SELECT size FROM log_head FOR UPDATE").await?;
    let start = to_u64(tx.query_one(&lock, &[]).await?.get(0))?;
    // The head's lock ends with the transaction: committed without waiting
    // for the flush, so the next append (from any instance) does not wait
    // for this one's fsync. The caller then waits for it with
    // [`wait_durable`] before anyone is answered: group commit.
    tx.batch_execute("SET LOCAL synchronous_commit TO off").await?;
    let stored = tx.prepare_cached("SELECT max(idx) FROM log_entries").await?;
    let stored = match tx.query_one(&stored, &[]).await?.get::<_, Option<i64>>(0) {
        Some(max) => to_u64(max)? + 1,
        None => 0,
    };
    let latest = latest_checkpoint_size(tx).await?.unwrap_or(0);
    if stored != start || latest != start {
        return Err(inconsistent(format!(
            "the log head says {start} entries, {stored} are stored and the latest checkpoint covers {latest}: \
             refusing to sign another"
        )));
    }
    if entries.is_empty() {
        return Ok(start);
    }
    if let Some(data) = entries.iter().find(|data| data.len() > MAX_ENTRY_BYTES) {
        return Err(MetaError::LogEntryTooLarge(data.len()));
    }
    refuse_time_going_back(tx, start, entries).await?;
    if start == 0 {
        let started = tx
            .prepare_cached("INSERT INTO settings (key, value) VALUES ($1, '1') ON CONFLICT (key) DO NOTHING")
            .await?;
        tx.execute(&started, &[&setting::LOG_STARTED]).await?;
    }
    let frontier_indexes = Frontier::indexes_at(start);
    let frontier_hashes = read_hashes(tx, &frontier_indexes).await?;
    let mut frontier = Frontier::from_stored(&frontier_indexes, &frontier_hashes);
    let (mut entry_indexes, mut hash_indexes, mut hashes) = (Vec::new(), Vec::new(), Vec::new());
    let mut n = start;
    for data in entries {
        let computed = stored_hashes(n, data, &frontier).map_err(|e| tlog_error("computing the tree hashes", e))?;
        entry_indexes.push(to_i64(n)?);
        let first = stored_hash_index(0, n);
        for (offset, hash) in (0u64..).zip(&computed) {
            hash_indexes.push(to_i64(first + offset)?);
            hashes.push(hash.0.to_vec());
        }
        frontier.advance(n, &computed);
        n += 1;
    }
    let insert_entries = tx
        .prepare_cached("INSERT INTO log_entries (idx, data) SELECT * FROM unnest($1::BIGINT[], $2::BYTEA[])")
        .await?;
    tx.execute(&insert_entries, &[&entry_indexes, &entries]).await?;
    let insert_hashes =
        tx.prepare_cached("INSERT INTO log_hashes (idx, hash) SELECT * FROM unnest($1::BIGINT[], $2::BYTEA[])").await?;
    tx.execute(&insert_hashes, &[&hash_indexes, &hashes]).await?;
    crate::failpoint::hit(crate::failpoint::LOG_AFTER_APPEND_BEFORE_CHECKPOINT);
    let root = tree_hash(n, &frontier).map_err(|e| tlog_error("computing the tree hash", e))?;
    let note = turn.sign_checkpoint(n, &root);
    let size = to_i64(n)?;
    let insert_checkpoint = tx.prepare_cached("INSERT INTO checkpoints (size, note) VALUES ($1, $2)").await?;
    tx.execute(&insert_checkpoint, &[&size, &note]).await?;
    let advance = tx.prepare_cached("UPDATE log_head SET size = $1").await?;
    tx.execute(&advance, &[&size]).await?;
    Ok(start)
}

/// Returns once everything this connection committed is on disk (and on
/// synchronous standbys, as `synchronous_commit` says): a transaction that
/// takes a transaction id writes a commit record, and committing it waits
/// for the write-ahead log to be flushed up to that record, so past every
/// earlier commit. PostgreSQL flushes once for all the callers waiting at
/// that moment, as [`crate::storage::group_sync`] does for SQLite.
pub(super) async fn wait_durable(client: &impl GenericClient) -> Result<(), MetaError> {
    let stmt = client.prepare_cached("SELECT pg_current_xact_id()").await?;
    client.query_one(&stmt, &[]).await?;
    Ok(())
}

#[async_trait]
impl LogStore for PgMetaStore {
    async fn append_log(&self, entries: &[Vec<u8>], turn: Box<dyn AppendTurn>) -> Result<u64, MetaError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let first = append(&tx, entries, turn.as_ref()).await?;
        tx.commit().await?;
        turn.committed();
        wait_durable(&client).await?;
        Ok(first)
    }

    async fn log_size(&self) -> Result<u64, MetaError> {
        let client = self.client().await?;
        let stmt = client.prepare_cached("SELECT size FROM log_head").await?;
        to_u64(client.query_one(&stmt, &[]).await?.get(0))
    }

    async fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, MetaError> {
        let client = self.client().await?;
        let stmt = client.prepare_cached("SELECT size, note FROM checkpoints ORDER BY size DESC LIMIT 1").await?;
        let row = client.query_opt(&stmt, &[]).await?;
        row.map(|row| Ok(StoredCheckpoint { size: to_u64(row.get(0))?, note: row.get(1) })).transpose()
    }

    async fn checkpoint(&self, size: u64) -> Result<Option<String>, MetaError> {
        let client = self.client().await?;
        let stmt = client.prepare_cached("SELECT note FROM checkpoints WHERE size = $1").await?;
        Ok(client.query_opt(&stmt, &[&to_i64(size)?]).await?.map(|row| row.get(0)))
    }

    async fn log_entries(&self, start: u64, count: u64) -> Result<Vec<Vec<u8>>, MetaError> {
        let client = self.client().await?;
        let stmt = client.prepare_cached("SELECT data FROM log_entries WHERE idx >= $1 ORDER BY idx LIMIT $2").await?;
        let rows = client.query(&stmt, &[&to_i64(start)?, &to_i64(count)?]).await?;
        Ok(rows.into_iter().map(|row| row.get(0)).collect())
    }

    async fn log_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, MetaError> {
        read_hashes(&self.client().await?, indexes).await
    }

    async fn recompute_log(&self) -> Result<(u64, Hash), MetaError> {
        let mut client = self.client().await?;
        // One snapshot for every page, so appends meanwhile are not half seen.
        let tx =
            client.build_transaction().isolation_level(IsolationLevel::RepeatableRead).read_only(true).start().await?;
        let entries =
            tx.prepare_cached("SELECT idx, data FROM log_entries WHERE idx >= $1 ORDER BY idx LIMIT $2").await?;
        let hashes =
            tx.prepare_cached("SELECT idx, hash FROM log_hashes WHERE idx >= $1 AND idx < $2 ORDER BY idx").await?;
        let mut frontier = Frontier::default();
        let mut n = 0u64;
        loop {
            let page = tx.query(&entries, &[&to_i64(n)?, &RECOMPUTE_PAGE]).await?;
            let Some(last) = page.last() else { break };
            let end = to_u64(last.get(0))? + 1;
            let page_hashes =
                tx.query(&hashes, &[&to_i64(stored_hash_index(0, n))?, &to_i64(stored_hash_index(0, end))?]).await?;
            let mut page_hashes = page_hashes.iter();
            for row in &page {
                let idx = to_u64(row.get(0))?;
                if idx != n {
                    return Err(inconsistent(format!("entry {n} is missing (the next stored entry is {idx})")));
                }
                let data: &[u8] = row.get(1);
                let computed = stored_hashes(n, data, &frontier).map_err(|e| tlog_error("recomputing the tree", e))?;
                let first = stored_hash_index(0, n);
                for (offset, want) in (0u64..).zip(&computed) {
                    let at = first + offset;
                    let missing = || inconsistent(format!("stored hash {at} (of entry {n}) is missing"));
                    let hash_row = page_hashes.next().ok_or_else(missing)?;
                    if to_u64(hash_row.get(0))? != at {
                        return Err(missing());
                    }
                    if to_hash(hash_row.get(1), at)? != *want {
                        return Err(inconsistent(format!(
                            "stored hash {at} does not match entry {n}: an entry or a hash was changed"
                        )));
                    }
                }
                frontier.advance(n, &computed);
                n += 1;
            }
        }
        let extra = tx.prepare_cached("SELECT min(idx) FROM log_hashes WHERE idx >= $1").await?;
        if let Some(idx) = tx.query_one(&extra, &[&to_i64(stored_hash_index(0, n))?]).await?.get::<_, Option<i64>>(0) {
            return Err(inconsistent(format!("stored hash {idx} belongs to no stored entry")));
        }
        let head = tx.prepare_cached("SELECT size FROM log_head").await?;
        let head = to_u64(tx.query_one(&head, &[]).await?.get(0))?;
        if head != n {
            return Err(inconsistent(format!("the log head says {head} entries but {n} are stored")));
        }
        tx.commit().await?;
        let root = tree_hash(n, &frontier).map_err(|e| tlog_error("recomputing the tree hash", e))?;
        Ok((n, root))
    }
}

#[async_trait]
impl CosignatureStore for PgMetaStore {
    async fn cosignatures(&self, size: u64) -> Result<Vec<String>, MetaError> {
        let client = self.client().await?;
        let stmt = client.prepare_cached("SELECT line FROM cosignatures WHERE size = $1 ORDER BY witness").await?;
        Ok(client.query(&stmt, &[&to_i64(size)?]).await?.into_iter().map(|row| row.get(0)).collect())
    }

    async fn put_cosignature(&self, size: u64, witness: &str, line: &str) -> Result<bool, MetaError> {
        let client = self.client().await?;
        // One statement: stored only if the checkpoint exists.
        let stmt = client
            .prepare_cached(
                "INSERT INTO cosignatures (size, witness, line)
                 SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM checkpoints WHERE size = $1)
                 ON CONFLICT (size, witness) DO UPDATE SET line = excluded.line",
            )
            .await?;
        Ok(client.execute(&stmt, &[&to_i64(size)?, &witness, &line]).await? == 1)
    }
}
