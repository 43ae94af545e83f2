//! [`DropStore`] on SQLite: the drop state machine's conditional steps,
//! each one transaction with the log entries it records.

use async_trait::async_trait;
use rusqlite::{OptionalExtension as _, params};
use sealdrop_proto::api::DropState;
use sealdrop_proto::ids::{DropId, PartyId};

use super::rows::{DROP_COLUMNS, load_drops, load_drops_with, recipients_of, state_from_str, stored_state};
use super::{Db, SqliteMetaStore, log, log_index, parse, to_i64, to_u64};
use crate::storage::meta::{
    AckOutcome, AckRecord, AppendTurn, CommitRecord, ContentDigest, CreateOutcome, DropRecord, DropStore, EndOutcome,
    EndRecord, FetchOutcome, FetchRecord, MetaError, NewDrop, RecipientRecord, SentRecord, SweepItem,
};

/// Stores the open drop `drop` and its recipients inside transaction `tx`,
/// handling its idempotency key as [`DropStore::create_drop`] says.
pub(super) fn insert_open_drop(tx: &rusqlite::Transaction<'_>, drop: &NewDrop) -> Result<CreateOutcome, MetaError> {
    // BEGIN IMMEDIATE holds the write lock, so the drop found here
    // cannot change before the insert; the unique index on
    // (sender, idempotency_key) would refuse a second drop anyway.
    let mut replaced = None;
    if let Some(key) = &drop.idempotency_key {
        let existing: Option<(String, String)> = tx
            .prepare_cached("SELECT id, state FROM drops WHERE sender = ?1 AND idempotency_key = ?2")?
            .query_row([drop.sender.as_str(), key], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        if let Some((id, state)) = existing {
            if state_from_str(&state)? != DropState::Open {
                let sql = format!("SELECT {DROP_COLUMNS} FROM drops WHERE id = ?1");
                let rec = load_drops(tx, &sql, [&id])?
                    .pop()
                    .ok_or_else(|| MetaError::Corrupt(format!("drop {id} vanished inside a transaction")))?;
                return Ok(CreateOutcome::AlreadyCommitted(Box::new(rec)));
            }
            // Explicitly rather than by the foreign key's cascade, so
            // this does not depend on foreign keys being enforced.
            tx.prepare_cached("DELETE FROM drop_recipients WHERE drop_id = ?1")?.execute([&id])?;
            tx.prepare_cached("DELETE FROM drops WHERE id = ?1 AND state = 'open'")?.execute([&id])?;
            replaced = Some(parse::<DropId>(id, "drop id")?);
        }
    }
    tx.prepare_cached(
        "INSERT INTO drops (id, sender, sender_member, agreement, created, expires, state, idempotency_key)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'open', ?7)",
    )?
    .execute(params![
        drop.id.as_str(),
        drop.sender.as_str(),
        drop.sender_member.as_str(),
        drop.agreement,
        drop.created,
        drop.expires,
        drop.idempotency_key
    ])?;
    let mut stmt = tx.prepare_cached("INSERT INTO drop_recipients (drop_id, party) VALUES (?1, ?2)")?;
    for party in &drop.recipients {
        stmt.execute([drop.id.as_str(), party.as_str()])?;
    }
    Ok(CreateOutcome::Created { replaced })
}

/// Marks open drop `id` committed as `commit` says, inside transaction
/// `tx`; with `upload_recorded`, only if its recorded upload is
/// `commit.content` (a three-step commit; a drop stored whole records none).
/// Returns whether it did.
pub(super) fn mark_committed(
    tx: &rusqlite::Transaction<'_>,
    id: &str,
    commit: &CommitRecord,
    upload_recorded: bool,
) -> Result<bool, MetaError> {
    let sql = if upload_recorded {
        "UPDATE drops SET state = 'committed', committed = ?2, manifest = ?3, sha256 = ?4, size = ?5,
             sender_member = ?6, upload_sha256 = NULL, upload_len = NULL
         WHERE id = ?1 AND state = 'open' AND upload_sha256 = ?4 AND upload_len = ?5"
    } else {
        "UPDATE drops SET state = 'committed', committed = ?2, manifest = ?3, sha256 = ?4, size = ?5,
             sender_member = ?6
         WHERE id = ?1 AND state = 'open'"
    };
    let len = to_i64(commit.content.len, "content length")?;
    let n = tx.prepare_cached(sql)?.execute(params![
        id,
        commit.committed,
        commit.manifest,
        commit.content.sha256,
        len,
        commit.sender_member.as_str()
    ])?;
    Ok(n == 1)
}

/// What a party holds as committed drops, in bytes (read from an index alone).
pub(super) const COMMITTED_BYTES: &str =
    "SELECT COALESCE(SUM(size), 0) FROM drops WHERE sender = ?1 AND state = 'committed'";

/// The steps themselves, blocking (see [`SqliteMetaStore::blocking`]).
impl Db {
    fn create_drop(&self, drop: &NewDrop) -> Result<CreateOutcome, MetaError> {
        let create = |tx: &rusqlite::Transaction<'_>| insert_open_drop(tx, drop);
        if drop.durable_now { self.durably(create) } else { super::in_transaction(&mut self.conn(), create) }
    }

    fn drop_by_idempotency_key(&self, party: &PartyId, key: &str) -> Result<Option<DropRecord>, MetaError> {
        let conn = self.conn();
        let sql = format!("SELECT {DROP_COLUMNS} FROM drops WHERE sender = ?1 AND idempotency_key = ?2");
        Ok(load_drops(&conn, &sql, [party.as_str(), key])?.pop())
    }

    fn drop_record(&self, id: &DropId) -> Result<Option<DropRecord>, MetaError> {
        let conn = self.conn();
        let sql = format!("SELECT {DROP_COLUMNS} FROM drops WHERE id = ?1");
        Ok(load_drops(&conn, &sql, [id.as_str()])?.pop())
    }

    fn drop_state(&self, id: &DropId) -> Result<Option<DropState>, MetaError> {
        let state = stored_state(&self.conn(), id)?;
        state.map(|s| state_from_str(&s)).transpose()
    }

    fn set_upload(&self, id: &DropId, upload: Option<&ContentDigest>, at: i64) -> Result<bool, MetaError> {
        let (sha, len) = match upload {
            Some(d) => (Some(d.sha256.as_str()), Some(to_i64(d.len, "upload length")?)),
            None => (None, None),
        };
        let n = self
            .conn()
            .prepare_cached(
                "UPDATE drops SET upload_sha256 = ?2, upload_len = ?3, upload_active = ?4 WHERE id = ?1 AND state = 'open'",
            )?
            .execute(params![id.as_str(), sha, len, at])?;
        Ok(n == 1)
    }

    fn upload_activity(&self, id: &DropId) -> Result<Option<i64>, MetaError> {
        Ok(self
            .conn()
            .prepare_cached("SELECT COALESCE(upload_active, created) FROM drops WHERE id = ?1 AND state = 'open'")?
            .query_row([id.as_str()], |r| r.get(0))
            .optional()?)
    }

    fn commit_drop(&self, id: &DropId, commit: &CommitRecord, turn: &dyn AppendTurn) -> Result<Option<u64>, MetaError> {
        self.appending(turn, |tx| {
            if !mark_committed(tx, id.as_str(), commit, true)? {
                return Ok(None);
            }
            let index = log::append(tx, std::slice::from_ref(&commit.log_entry), turn)?;
            log_index::committed(tx, id.as_str(), log::to_i64(index)?)?;
            Ok(Some(index))
        })
    }

    fn record_fetch(&self, id: &DropId, fetch: &FetchRecord, turn: &dyn AppendTurn) -> Result<FetchOutcome, MetaError> {
        self.appending(turn, |tx| {
            let state = stored_state(tx, id)?;
            if state.as_deref() != Some("committed") {
                return Ok(FetchOutcome::NotCommitted);
            }
            let downloads = log_index::downloads(tx, id.as_str(), fetch.party.as_str())?;
            if !sealdrop_log::policy::may_download(downloads) {
                return Ok(FetchOutcome::LimitReached { downloads });
            }
            tx.prepare_cached(
                "UPDATE drop_recipients SET fetched = ?3 WHERE drop_id = ?1 AND party = ?2 AND fetched IS NULL",
            )?
            .execute(params![id.as_str(), fetch.party.as_str(), fetch.at])?;
            let index = log::append(tx, std::slice::from_ref(&fetch.log_entry), turn)?;
            log_index::fetched(tx, id.as_str(), fetch.party.as_str(), log::to_i64(index)?)?;
            Ok(FetchOutcome::Recorded { log_index: index })
        })
    }

    fn end_drop(&self, id: &DropId, end: &EndRecord, turn: &dyn AppendTurn) -> Result<EndOutcome, MetaError> {
        let state = match end.state {
            DropState::Expired => "expired",
            DropState::Recalled => "recalled",
            other => return Err(MetaError::Corrupt(format!("a drop cannot be ended as {other:?}"))),
        };
        self.appending(turn, |tx| {
            let current = stored_state(tx, id)?;
            match current.as_deref() {
                Some("committed") => {}
                Some(other) => return Ok(EndOutcome::NotCommitted(Some(state_from_str(other)?))),
                None => return Ok(EndOutcome::NotCommitted(None)),
            }
            if end.unless_acknowledged {
                let acked: Vec<RecipientRecord> =
                    recipients_of(tx, id.as_str())?.into_iter().filter(|r| r.acknowledged.is_some()).collect();
                if !acked.is_empty() {
                    return Ok(EndOutcome::Acknowledged(acked));
                }
            }
            tx.prepare_cached("UPDATE drops SET state = ?2, deleted = ?3 WHERE id = ?1 AND state = 'committed'")?
                .execute(params![id.as_str(), state, end.at])?;
            let log_index = log::append(tx, &end.log_entries, turn)?;
            // The hub's deletion statement is the last entry appended.
            let deleted_at = log_index + (end.log_entries.len() as u64).saturating_sub(1);
            log_index::ended(tx, id.as_str(), log::to_i64(deleted_at)?)?;
            Ok(EndOutcome::Ended { log_index })
        })
    }

    fn forget_open_drop(&self, id: &DropId) -> Result<bool, MetaError> {
        self.durably(|tx| {
            let n = tx.prepare_cached("DELETE FROM drops WHERE id = ?1 AND state = 'open'")?.execute([id.as_str()])?;
            if n == 1 {
                tx.prepare_cached("DELETE FROM drop_recipients WHERE drop_id = ?1")?.execute([id.as_str()])?;
            }
            Ok(n == 1)
        })
    }

    fn due_for_sweep(&self, now: i64, in_force: &[String], limit: usize) -> Result<Vec<SweepItem>, MetaError> {
        let agreements = serde_json::to_string(in_force).map_err(|e| MetaError::Corrupt(e.to_string()))?;
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT id, state, expires, agreement FROM drops
             WHERE (state IN ('open', 'committed') AND expires <= ?1)
                OR (state = 'committed' AND agreement NOT IN (SELECT value FROM json_each(?2)))
             ORDER BY expires, id LIMIT ?3",
        )?;
        let rows = stmt
            .query_map(params![now, agreements, to_i64(limit as u64, "limit")?], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?, r.get::<_, String>(3)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|(id, state, expires, agreement)| {
                Ok(SweepItem { id: parse(id, "drop id")?, state: state_from_str(&state)?, expires, agreement })
            })
            .collect()
    }

    fn acknowledge(&self, id: &DropId, ack: &AckRecord, turn: &dyn AppendTurn) -> Result<AckOutcome, MetaError> {
        self.appending(turn, |tx| {
            let state = stored_state(tx, id)?;
            if state.as_deref() != Some("committed") {
                return Ok(AckOutcome::NotCommitted);
            }
            let acked: Option<(Option<i64>, i64)> = tx
                .prepare_cached(
                    "SELECT acknowledged, downloads FROM drop_recipients WHERE drop_id = ?1 AND party = ?2",
                )?
                .query_row([id.as_str(), ack.party.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            match acked {
                None => return Ok(AckOutcome::NotCommitted),
                Some((Some(_), _)) => return Ok(AckOutcome::AlreadyAcknowledged),
                Some((None, downloads)) if !sealdrop_log::policy::may_acknowledge(downloads.max(0).unsigned_abs()) => {
                    return Ok(AckOutcome::NotDownloaded);
                }
                Some((None, _)) => {}
            }
            tx.prepare_cached(
                "UPDATE drop_recipients SET acknowledged = ?3, ack_member = ?4, receipt = ?5
                 WHERE drop_id = ?1 AND party = ?2 AND acknowledged IS NULL",
            )?
            .execute(params![
                id.as_str(),
                ack.party.as_str(),
                ack.at,
                ack.member.as_str(),
                ack.receipt
            ])?;
            let waiting: i64 = tx
                .prepare_cached("SELECT count(*) FROM drop_recipients WHERE drop_id = ?1 AND acknowledged IS NULL")?
                .query_row([id.as_str()], |r| r.get(0))?;
            let delivered = waiting == 0;
            let mut entries = vec![ack.log_entry.clone()];
            if delivered {
                tx.prepare_cached("UPDATE drops SET state = 'delivered', deleted = ?2 WHERE id = ?1")?
                    .execute(params![id.as_str(), ack.at])?;
                entries.push(ack.delivered_entry.clone());
            }
            let log_index = log::append(tx, &entries, turn)?;
            log_index::acknowledged(tx, id.as_str(), ack.party.as_str(), log::to_i64(log_index)?)?;
            if delivered {
                log_index::ended(tx, id.as_str(), log::to_i64(log_index + 1)?)?;
            }
            Ok(AckOutcome::Recorded { delivered, log_index })
        })
    }

    fn inbox(&self, party: &PartyId, now: i64) -> Result<Vec<DropRecord>, MetaError> {
        let columns = DROP_COLUMNS.split(", ").map(|c| format!("d.{c}")).collect::<Vec<_>>().join(", ");
        let sql = format!(
            "SELECT {columns} FROM drops d JOIN drop_recipients r ON r.drop_id = d.id
             WHERE r.party = ?1 AND r.acknowledged IS NULL AND d.state = 'committed' AND d.expires > ?2
             ORDER BY d.committed, d.id"
        );
        load_drops(&self.conn(), &sql, params![party.as_str(), now])
    }

    fn sent(&self, party: &PartyId, id: Option<&DropId>) -> Result<Vec<SentRecord>, MetaError> {
        let sql = format!(
            "SELECT {DROP_COLUMNS}, idempotency_key FROM drops WHERE sender = ?1 AND (?2 IS NULL OR id = ?2)
             ORDER BY created DESC, rowid DESC"
        );
        let key_column = DROP_COLUMNS.split(", ").count();
        let rows = load_drops_with(&self.conn(), &sql, params![party.as_str(), id.map(DropId::as_str)], |r| {
            r.get(key_column)
        })?;
        Ok(rows.into_iter().map(|(drop, idempotency_key)| SentRecord { drop, idempotency_key }).collect())
    }

    fn party_holdings(&self, party: &PartyId) -> Result<crate::storage::meta::PartyHoldings, MetaError> {
        let conn = self.conn();
        let committed: i64 = conn.prepare_cached(COMMITTED_BYTES)?.query_row([party.as_str()], |r| r.get(0))?;
        let mut statement = conn.prepare_cached(
            "SELECT id, upload_len, upload_active IS NOT NULL FROM drops WHERE sender = ?1 AND state = 'open'",
        )?;
        let rows = statement
            .query_map([party.as_str()], |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<i64>>(1)?, r.get(2)?)))?
            .collect::<Result<Vec<(String, Option<i64>, bool)>, _>>()?;
        let open = rows
            .into_iter()
            .map(|(id, len, started)| {
                Ok(crate::storage::meta::OpenDrop {
                    id: parse(id, "drop id")?,
                    upload_len: len.map(|n| to_u64(n, "upload length")).transpose()?,
                    upload_started: started,
                })
            })
            .collect::<Result<_, MetaError>>()?;
        Ok(crate::storage::meta::PartyHoldings { committed_bytes: to_u64(committed, "held bytes")?, open })
    }
}

#[async_trait]
impl DropStore for SqliteMetaStore {
    async fn create_drop(&self, drop: &NewDrop) -> Result<CreateOutcome, MetaError> {
        let drop = drop.clone();
        self.blocking(move |db| db.create_drop(&drop)).await
    }

    async fn drop_by_idempotency_key(&self, party: &PartyId, key: &str) -> Result<Option<DropRecord>, MetaError> {
        let (party, key) = (party.clone(), key.to_owned());
        self.blocking(move |db| db.drop_by_idempotency_key(&party, &key)).await
    }

    async fn drop_record(&self, id: &DropId) -> Result<Option<DropRecord>, MetaError> {
        let id = id.clone();
        self.blocking(move |db| db.drop_record(&id)).await
    }

    async fn drop_state(&self, id: &DropId) -> Result<Option<DropState>, MetaError> {
        let id = id.clone();
        self.blocking(move |db| db.drop_state(&id)).await
    }

    async fn set_upload(&self, id: &DropId, upload: Option<&ContentDigest>, at: i64) -> Result<bool, MetaError> {
        let (id, upload) = (id.clone(), upload.cloned());
        self.blocking(move |db| db.set_upload(&id, upload.as_ref(), at)).await
    }

    async fn upload_activity(&self, id: &DropId) -> Result<Option<i64>, MetaError> {
        let id = id.clone();
        self.blocking(move |db| db.upload_activity(&id)).await
    }

    async fn commit_drop(
        &self,
        id: &DropId,
        commit: &CommitRecord,
        turn: Box<dyn AppendTurn>,
    ) -> Result<Option<u64>, MetaError> {
        let (id, commit) = (id.clone(), commit.clone());
        self.blocking(move |db| db.commit_drop(&id, &commit, turn.as_ref())).await
    }

    async fn record_fetch(
        &self,
        id: &DropId,
        fetch: &FetchRecord,
        turn: Box<dyn AppendTurn>,
    ) -> Result<FetchOutcome, MetaError> {
        let (id, fetch) = (id.clone(), fetch.clone());
        self.blocking(move |db| db.record_fetch(&id, &fetch, turn.as_ref())).await
    }

    async fn end_drop(&self, id: &DropId, end: &EndRecord, turn: Box<dyn AppendTurn>) -> Result<EndOutcome, MetaError> {
        let (id, end) = (id.clone(), end.clone());
        self.blocking(move |db| db.end_drop(&id, &end, turn.as_ref())).await
    }

    async fn forget_open_drop(&self, id: &DropId) -> Result<bool, MetaError> {
        let id = id.clone();
        self.blocking(move |db| db.forget_open_drop(&id)).await
    }

    async fn due_for_sweep(&self, now: i64, in_force: &[String], limit: usize) -> Result<Vec<SweepItem>, MetaError> {
        let in_force = in_force.to_vec();
        self.blocking(move |db| db.due_for_sweep(now, &in_force, limit)).await
    }

    async fn acknowledge(
        &self,
        id: &DropId,
        ack: &AckRecord,
        turn: Box<dyn AppendTurn>,
    ) -> Result<AckOutcome, MetaError> {
        let (id, ack) = (id.clone(), ack.clone());
        self.blocking(move |db| db.acknowledge(&id, &ack, turn.as_ref())).await
    }

    async fn inbox(&self, party: &PartyId, now: i64) -> Result<Vec<DropRecord>, MetaError> {
        let party = party.clone();
        self.blocking(move |db| db.inbox(&party, now)).await
    }

    async fn sent(&self, party: &PartyId, id: Option<&DropId>) -> Result<Vec<SentRecord>, MetaError> {
        let (party, id) = (party.clone(), id.cloned());
        self.blocking(move |db| db.sent(&party, id.as_ref())).await
    }

    async fn party_holdings(&self, party: &PartyId) -> Result<crate::storage::meta::PartyHoldings, MetaError> {
        let party = party.clone();
        self.blocking(move |db| db.party_holdings(&party)).await
    }
}
