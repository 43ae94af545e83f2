//! Where the transfer log records each drop's life, kept beside the drop's
//! rows: its `drop_committed` entry (`drops.commit_index`), the hub's
//! `drop_deleted` statement (`drops.end_index`), and per recipient party its
//! first `drop_fetched` entry, how many downloads it made and its
//! `drop_acknowledged` entry (`drop_recipients.fetch_index`, `downloads`,
//! `ack_index`).
//!
//! The transactions that append those entries set these columns, so the
//! hub can bound each party's downloads and refuse an acknowledgement
//! without a logged download ([`sealdrop_log::policy`]) without reading the
//! log, and tell a sender which entries prove what `GET /v1/sent` says (the
//! sender checks them; the hub is not trusted with this). A database from
//! before these columns is filled once from the log itself ([`fill_once`]).

use rusqlite::{Connection, OptionalExtension as _, params};
use sealdrop_log::entry::{DropEventKind, LogEntry};

use crate::storage::meta::MetaError;

/// The migration that adds the columns.
pub(super) const MIGRATION: &str = "ALTER TABLE drops ADD COLUMN commit_index INTEGER;
    ALTER TABLE drops ADD COLUMN end_index INTEGER;
    ALTER TABLE drop_recipients ADD COLUMN downloads INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE drop_recipients ADD COLUMN fetch_index INTEGER;
    ALTER TABLE drop_recipients ADD COLUMN ack_index INTEGER;";

/// Set once the columns were filled from the log, so a database from
/// before them is filled exactly once.
const FILLED: &str = "log_indexed";

/// Fills the columns from the log's entries, in one transaction, unless
/// that was done before. One pass over the log, parsing every entry: for a
/// log of a million entries a few seconds, once.
pub(super) fn fill_once(conn: &mut Connection) -> Result<(), MetaError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let done: Option<String> =
        tx.query_row("SELECT value FROM settings WHERE key = ?1", [FILLED], |r| r.get(0)).optional()?;
    if done.is_none() {
        fill(&tx)?;
        tx.execute("INSERT INTO settings (key, value) VALUES (?1, '1')", [FILLED])?;
    }
    tx.commit()?;
    Ok(())
}

/// Sets every column from the log's entries, forgetting what they held.
fn fill(conn: &Connection) -> Result<(), MetaError> {
    conn.execute_batch(
        "UPDATE drops SET commit_index = NULL, end_index = NULL;
         UPDATE drop_recipients SET downloads = 0, fetch_index = NULL, ack_index = NULL;",
    )?;
    let mut entries = conn.prepare("SELECT idx, data FROM log_entries ORDER BY idx")?;
    let mut rows = entries.query([])?;
    while let Some(row) = rows.next()? {
        let index: i64 = row.get(0)?;
        let data = row.get_ref(1)?.as_blob().map_err(rusqlite::Error::from)?;
        let Some(event) = LogEntry::from_bytes(data).ok().and_then(|e| e.drop_event()) else { continue };
        let (drop, party) = (event.drop.as_str(), event.party.as_ref().map(|p| p.as_str()));
        match event.kind {
            DropEventKind::Committed => {
                conn.prepare_cached("UPDATE drops SET commit_index = ?2 WHERE id = ?1 AND commit_index IS NULL")?
                    .execute(params![drop, index])?;
            }
            DropEventKind::Fetched => fetched(conn, drop, party.unwrap_or_default(), index)?,
            DropEventKind::Acknowledged => acknowledged(conn, drop, party.unwrap_or_default(), index)?,
            DropEventKind::Deleted => ended(conn, drop, index)?,
            DropEventKind::Recalled => {}
        }
    }
    Ok(())
}

/// Records a download by `party` logged at `index`.
pub(super) fn fetched(conn: &Connection, drop: &str, party: &str, index: i64) -> Result<(), MetaError> {
    conn.prepare_cached(
        "UPDATE drop_recipients SET downloads = downloads + 1, fetch_index = COALESCE(fetch_index, ?3)
         WHERE drop_id = ?1 AND party = ?2",
    )?
    .execute(params![drop, party, index])?;
    Ok(())
}

/// Records `party`'s acknowledgement logged at `index`.
pub(super) fn acknowledged(conn: &Connection, drop: &str, party: &str, index: i64) -> Result<(), MetaError> {
    conn.prepare_cached("UPDATE drop_recipients SET ack_index = ?3 WHERE drop_id = ?1 AND party = ?2")?
        .execute(params![drop, party, index])?;
    Ok(())
}

/// Records the hub's deletion statement logged at `index`.
pub(super) fn ended(conn: &Connection, drop: &str, index: i64) -> Result<(), MetaError> {
    conn.prepare_cached("UPDATE drops SET end_index = ?2 WHERE id = ?1")?.execute(params![drop, index])?;
    Ok(())
}

/// Records the commit logged at `index`.
pub(super) fn committed(conn: &Connection, drop: &str, index: i64) -> Result<(), MetaError> {
    conn.prepare_cached("UPDATE drops SET commit_index = ?2 WHERE id = ?1")?.execute(params![drop, index])?;
    Ok(())
}

/// How many downloads of `drop` by `party` are logged (0 if it is no recipient).
pub(super) fn downloads(conn: &Connection, drop: &str, party: &str) -> Result<u64, MetaError> {
    let n: Option<i64> = conn
        .prepare_cached("SELECT downloads FROM drop_recipients WHERE drop_id = ?1 AND party = ?2")?
        .query_row([drop, party], |r| r.get(0))
        .optional()?;
    Ok(n.map_or(0, |n| n.max(0).unsigned_abs()))
}
