//! The transfer log's tables in SQLite: the entries, the Merkle tree's
//! stored hashes (in `tlog_tiles`' stored-hash index order), the signed
//! checkpoints and the witnesses' cosignatures.
//!
//! [`LogStore`] and [`CosignatureStore`] are implemented here too.
//!
//! [`append`] runs inside the caller's transaction, so a state change, its
//! entries, their hashes and the checkpoint that covers them commit together
//! or not at all. [`recompute`] rebuilds every stored hash from the entries
//! on start-up, reading both tables once in order and keeping only the
//! tree's frontier (at most 64 hashes) in memory.

use async_trait::async_trait;

use rusqlite::{Connection, OptionalExtension as _, params};
use sealdrop_log::entry::MAX_ENTRY_BYTES;
use tlog_tiles::{HASH_SIZE, Hash, HashReader, stored_hash_index, stored_hashes, tree_hash};

use super::{Db, SqliteMetaStore};
use crate::storage::frontier::Frontier;
use crate::storage::meta::{AppendTurn, CosignatureStore, LogStore, MetaError, StoredCheckpoint, setting};

/// The log's tables (the second migration).
pub(super) const MIGRATION: &str = "CREATE TABLE log_entries (
        idx INTEGER PRIMARY KEY,
        data BLOB NOT NULL
    ) STRICT;
    CREATE TABLE log_hashes (
        idx INTEGER PRIMARY KEY,
        hash BLOB NOT NULL
    ) STRICT;
    CREATE TABLE checkpoints (
        size INTEGER PRIMARY KEY,
        note TEXT NOT NULL
    ) STRICT;
    CREATE TABLE cosignatures (
        size INTEGER NOT NULL REFERENCES checkpoints (size),
        witness TEXT NOT NULL,
        line TEXT NOT NULL,
        PRIMARY KEY (size, witness)
    ) STRICT;";

fn inconsistent(message: impl Into<String>) -> MetaError {
    MetaError::LogInconsistent(message.into())
}

fn tlog_error(what: &str, e: tlog_tiles::Error) -> MetaError {
    inconsistent(format!("{what}: {e}"))
}

pub(super) fn to_i64(n: u64) -> Result<i64, MetaError> {
    i64::try_from(n).map_err(|_| inconsistent(format!("log index {n} is too large to store")))
}

fn to_u64(n: i64) -> Result<u64, MetaError> {
    u64::try_from(n).map_err(|_| inconsistent(format!("stored log index {n} is negative")))
}

fn to_hash(blob: &[u8], index: u64) -> Result<Hash, MetaError> {
    let bytes: [u8; HASH_SIZE] =
        blob.try_into().map_err(|_| inconsistent(format!("stored hash {index} is {} bytes, not 32", blob.len())))?;
    Ok(Hash(bytes))
}

/// Reads stored hashes through a connection, or an open transaction (which
/// dereferences to one), so an append sees the hashes it has just written.
pub(super) struct SqlHashReader<'a>(pub &'a Connection);

impl HashReader for SqlHashReader<'_> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog_tiles::Error> {
        read_hashes(self.0, indexes).map_err(|e| tlog_tiles::Error::InvalidInput(e.to_string()))
    }
}

/// The stored hashes at `indexes`; an error if one is missing.
pub(super) fn read_hashes(conn: &Connection, indexes: &[u64]) -> Result<Vec<Hash>, MetaError> {
    let mut stmt = conn.prepare_cached("SELECT hash FROM log_hashes WHERE idx = ?1")?;
    indexes
        .iter()
        .map(|&i| {
            let blob: Option<Vec<u8>> = stmt.query_row([to_i64(i)?], |r| r.get(0)).optional()?;
            let blob = blob.ok_or_else(|| inconsistent(format!("stored hash {i} is missing")))?;
            to_hash(&blob, i)
        })
        .collect()
}

/// The number of entries: one more than the highest index (indexes are
/// dense; [`recompute`] checks that on start-up).
pub(super) fn size(conn: &Connection) -> Result<u64, MetaError> {
    let max: Option<i64> = conn.prepare_cached("SELECT max(idx) FROM log_entries")?.query_row([], |r| r.get(0))?;
    max.map_or(Ok(0), |m| Ok(to_u64(m)? + 1))
}

/// The size and note of the latest checkpoint.
pub(super) fn latest_checkpoint(conn: &Connection) -> Result<Option<(u64, String)>, MetaError> {
    let row: Option<(i64, String)> = conn
        .prepare_cached("SELECT size, note FROM checkpoints ORDER BY size DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    row.map(|(size, note)| Ok((to_u64(size)?, note))).transpose()
}

/// Appends `entries` and stores the checkpoint for the new size that `turn` signs.
/// Call it inside the transaction of the state change the entries record.
/// Returns the first entry's index. Refuses to append when the latest
/// checkpoint does not cover exactly the stored entries, so the hub never
/// signs a checkpoint that does not extend the one before.
pub(super) fn append(conn: &Connection, entries: &[Vec<u8>], turn: &dyn AppendTurn) -> Result<u64, MetaError> {
    let start = size(conn)?;
    let latest = latest_checkpoint(conn)?.map(|(s, _)| s);
    if latest.unwrap_or(0) != start {
        return Err(inconsistent(format!(
            "the latest checkpoint covers {} entries but {start} are stored: refusing to sign another",
            latest.unwrap_or(0)
        )));
    }
    if entries.is_empty() {
        return Ok(start);
    }
    if start == 0 {
        conn.prepare_cached("INSERT INTO settings (key, value) VALUES (?1, '1') ON CONFLICT (key) DO NOTHING")?
            .execute([setting::LOG_STARTED])?;
    }
    let reader = SqlHashReader(conn);
    let mut insert_entry = conn.prepare_cached("INSERT INTO log_entries (idx, data) VALUES (?1, ?2)")?;
    let mut insert_hash = conn.prepare_cached("INSERT INTO log_hashes (idx, hash) VALUES (?1, ?2)")?;
    let mut n = start;
    for data in entries {
        if data.len() > MAX_ENTRY_BYTES {
            return Err(MetaError::LogEntryTooLarge(data.len()));
        }
        let hashes = stored_hashes(n, data, &reader).map_err(|e| tlog_error("computing the tree hashes", e))?;
        insert_entry.execute(params![to_i64(n)?, data])?;
        let first = stored_hash_index(0, n);
        for (offset, hash) in (0u64..).zip(&hashes) {
            insert_hash.execute(params![to_i64(first + offset)?, &hash.0[..]])?;
        }
        n += 1;
    }
    crate::failpoint::hit(crate::failpoint::LOG_AFTER_APPEND_BEFORE_CHECKPOINT);
    let root = tree_hash(n, &reader).map_err(|e| tlog_error("computing the tree hash", e))?;
    let note = turn.sign_checkpoint(n, &root);
    conn.prepare_cached("INSERT INTO checkpoints (size, note) VALUES (?1, ?2)")?.execute(params![to_i64(n)?, note])?;
    Ok(start)
}

/// Recomputes every stored hash from the entries, checks each against the
/// stored one, and returns the number of entries and the tree hash.
pub(super) fn recompute(conn: &Connection) -> Result<(u64, Hash), MetaError> {
    let mut entries = conn.prepare_cached("SELECT idx, data FROM log_entries ORDER BY idx")?;
    let mut hashes = conn.prepare_cached("SELECT idx, hash FROM log_hashes ORDER BY idx")?;
    let mut entry_rows = entries.query([])?;
    let mut hash_rows = hashes.query([])?;
    let mut frontier = Frontier::default();
    let mut n = 0u64;
    while let Some(row) = entry_rows.next()? {
        let idx = to_u64(row.get(0)?)?;
        if idx != n {
            return Err(inconsistent(format!("entry {n} is missing (the next stored entry is {idx})")));
        }
        let data = row.get_ref(1)?.as_blob().map_err(rusqlite::Error::from)?;
        let computed = stored_hashes(n, data, &frontier).map_err(|e| tlog_error("recomputing the tree", e))?;
        let first = stored_hash_index(0, n);
        for (offset, want) in (0u64..).zip(&computed) {
            let at = first + offset;
            let Some(hash_row) = hash_rows.next()? else {
                return Err(inconsistent(format!("stored hash {at} (of entry {n}) is missing")));
            };
            let (got_idx, blob) =
                (to_u64(hash_row.get(0)?)?, hash_row.get_ref(1)?.as_blob().map_err(rusqlite::Error::from)?);
            if got_idx != at {
                return Err(inconsistent(format!("stored hash {at} (of entry {n}) is missing")));
            }
            if to_hash(blob, at)? != *want {
                return Err(inconsistent(format!(
                    "stored hash {at} does not match entry {n}: an entry or a hash was changed"
                )));
            }
        }
        frontier.advance(n, &computed);
        n += 1;
    }
    if let Some(extra) = hash_rows.next()? {
        let idx: i64 = extra.get(0)?;
        return Err(inconsistent(format!("stored hash {idx} belongs to no stored entry")));
    }
    let root = tree_hash(n, &frontier).map_err(|e| tlog_error("recomputing the tree hash", e))?;
    Ok((n, root))
}

/// The log's reads, blocking (see [`SqliteMetaStore::blocking`]).
impl Db {
    fn log_entries(&self, start: u64, count: u64) -> Result<Vec<Vec<u8>>, MetaError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached("SELECT data FROM log_entries WHERE idx >= ?1 ORDER BY idx LIMIT ?2")?;
        let rows = stmt.query_map([to_i64(start)?, to_i64(count)?], |r| r.get::<_, Vec<u8>>(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn checkpoint(&self, size: u64) -> Result<Option<String>, MetaError> {
        Ok(self
            .conn()
            .prepare_cached("SELECT note FROM checkpoints WHERE size = ?1")?
            .query_row([to_i64(size)?], |r| r.get(0))
            .optional()?)
    }
}

#[async_trait]
impl LogStore for SqliteMetaStore {
    async fn append_log(&self, entries: &[Vec<u8>], turn: Box<dyn AppendTurn>) -> Result<u64, MetaError> {
        let entries = entries.to_vec();
        self.blocking(move |db| db.appending(turn.as_ref(), |tx| append(tx, &entries, turn.as_ref()))).await
    }

    async fn log_size(&self) -> Result<u64, MetaError> {
        self.blocking(|db| size(&db.conn())).await
    }

    async fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, MetaError> {
        let latest = self.blocking(|db| latest_checkpoint(&db.conn())).await?;
        Ok(latest.map(|(size, note)| StoredCheckpoint { size, note }))
    }

    async fn checkpoint(&self, size: u64) -> Result<Option<String>, MetaError> {
        self.blocking(move |db| db.checkpoint(size)).await
    }

    async fn log_entries(&self, start: u64, count: u64) -> Result<Vec<Vec<u8>>, MetaError> {
        self.blocking(move |db| db.log_entries(start, count)).await
    }

    async fn log_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, MetaError> {
        let indexes = indexes.to_vec();
        self.blocking(move |db| read_hashes(&db.conn(), &indexes)).await
    }

    async fn recompute_log(&self) -> Result<(u64, Hash), MetaError> {
        self.blocking(|db| recompute(&db.conn())).await
    }
}

#[async_trait]
impl CosignatureStore for SqliteMetaStore {
    async fn cosignatures(&self, size: u64) -> Result<Vec<String>, MetaError> {
        let size = to_i64(size)?;
        self.blocking(move |db| {
            let conn = db.conn();
            let mut stmt = conn.prepare_cached("SELECT line FROM cosignatures WHERE size = ?1 ORDER BY witness")?;
            let rows = stmt.query_map([size], |r| r.get::<_, String>(0))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn put_cosignature(&self, size: u64, witness: &str, line: &str) -> Result<bool, MetaError> {
        let size = to_i64(size)?;
        let (witness, line) = (witness.to_owned(), line.to_owned());
        self.blocking(move |db| {
            db.durably(|tx| {
                let known: Option<i64> = tx
                    .prepare_cached("SELECT size FROM checkpoints WHERE size = ?1")?
                    .query_row([size], |r| r.get(0))
                    .optional()?;
                if known.is_none() {
                    return Ok(false);
                }
                tx.prepare_cached(
                    "INSERT INTO cosignatures (size, witness, line) VALUES (?1, ?2, ?3)
                 ON CONFLICT (size, witness) DO UPDATE SET line = excluded.line",
                )?
                .execute(params![size, witness, line])?;
                Ok(true)
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sealdrop_proto::keys::NoteSigningKey;
    // An RFC 6962 root computed independently of `tlog_tiles`' stored hashes
    // (a streaming frontier, checked against the CT reference vectors).
    use sealdrop_log::tree::root_of_entries;
    use tlog_tiles::stored_hash_count;

    fn db() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;").unwrap();
        conn.execute_batch(MIGRATION).unwrap();
        conn
    }

    fn entry(i: u64) -> Vec<u8> {
        format!("{{\"n\":{i}}}").into_bytes()
    }

    #[test]
    fn appends_in_batches_match_the_reference_tree() {
        let conn = db();
        let key = NoteSigningKey::generate("hub.example").unwrap();
        let mut all = Vec::new();
        for batch in [1, 1, 2, 5, 1, 30, 300] {
            let entries: Vec<Vec<u8>> = (0..batch).map(|i| entry(all.len() as u64 + i)).collect();
            let first = append(&conn, &entries, &key).unwrap();
            assert_eq!(first, all.len() as u64);
            all.extend(entries);
            let n = all.len() as u64;
            assert_eq!(size(&conn).unwrap(), n);
            let count: i64 = conn.query_row("SELECT count(*) FROM log_hashes", [], |r| r.get(0)).unwrap();
            assert_eq!(count as u64, stored_hash_count(n));
            let (cp_size, note) = latest_checkpoint(&conn).unwrap().unwrap();
            let cp = sealdrop_log::checkpoint::open(&note, &key.verifier()).unwrap();
            assert_eq!((cp_size, cp.size), (n, n));
            assert_eq!(root_of_entries(&all), (n, cp.root));
            assert_eq!(recompute(&conn).unwrap(), (n, cp.root));
        }
    }

    #[test]
    fn recompute_catches_every_kind_of_edit() {
        let key = NoteSigningKey::generate("hub.example").unwrap();
        let fresh = || {
            let conn = db();
            let entries: Vec<Vec<u8>> = (0..20).map(entry).collect();
            append(&conn, &entries, &key).unwrap();
            conn
        };
        assert_eq!(recompute(&fresh()).unwrap().0, 20);
        let edits = [
            "UPDATE log_entries SET data = X'00' WHERE idx = 7",
            "UPDATE log_hashes SET hash = zeroblob(32) WHERE idx = 5",
            "UPDATE log_hashes SET hash = X'00' WHERE idx = 0",
            "DELETE FROM log_entries WHERE idx = 3",
            "DELETE FROM log_entries WHERE idx = 19",
            "DELETE FROM log_hashes WHERE idx = 2",
            "INSERT INTO log_hashes (idx, hash) VALUES (1000, zeroblob(32))",
        ];
        for sql in edits {
            let conn = fresh();
            conn.execute(sql, []).unwrap();
            let err = recompute(&conn).unwrap_err();
            assert!(matches!(err, MetaError::LogInconsistent(_)), "{sql}: {err}");
        }
    }

    #[test]
    fn append_refuses_a_log_whose_checkpoint_does_not_match_its_entries() {
        let conn = db();
        let key = NoteSigningKey::generate("hub.example").unwrap();
        append(&conn, &[entry(0), entry(1)], &key).unwrap();
        // A checkpoint ahead of the entries (as if entries were removed).
        conn.execute("DELETE FROM log_entries WHERE idx = 1", []).unwrap();
        let err = append(&conn, &[entry(9)], &key).unwrap_err();
        assert!(matches!(err, MetaError::LogInconsistent(_)), "{err}");
        // Entries ahead of the latest checkpoint.
        let conn = db();
        append(&conn, &[entry(0), entry(1)], &key).unwrap();
        conn.execute("DELETE FROM checkpoints", []).unwrap();
        let err = append(&conn, &[entry(2)], &key).unwrap_err();
        assert!(matches!(err, MetaError::LogInconsistent(_)), "{err}");
        assert_eq!(size(&conn).unwrap(), 2, "nothing was appended");
    }

    #[test]
    fn oversized_entries_are_refused() {
        let conn = db();
        let key = NoteSigningKey::generate("hub.example").unwrap();
        let err = append(&conn, &[vec![b'x'; MAX_ENTRY_BYTES + 1]], &key).unwrap_err();
        assert!(matches!(err, MetaError::LogEntryTooLarge(_)), "{err}");
        append(&conn, &[vec![b'x'; MAX_ENTRY_BYTES]], &key).unwrap();
    }
}
