//! [`DropStore`] on PostgreSQL: the drop state machine's conditional steps,
//! each one transaction with the log entries it records.
//!
//! Several instances may change one drop at once, so a step that decides
//! on a drop's state first locks its row (`SELECT ... FOR UPDATE`): a fetch
//! racing a recall or the sweeper on another instance waits, then sees the
//! drop ended. Every appending step locks the drop's row before the log
//! head's (see [`super::log`]), always in that order, so two steps cannot
//! wait for each other.

use async_trait::async_trait;
use deadpool_postgres::{GenericClient, Transaction};
use sealdrop_proto::api::DropState;
use sealdrop_proto::ids::{DropId, PartyId};

use super::rows::{DROP_COLUMN_COUNT, DROP_COLUMNS, load_drop, load_drops, recipients_of};
use super::{PgMetaStore, log, parse, to_i64, to_u64};
use crate::storage::meta::{
    AckOutcome, AckRecord, AppendTurn, CommitRecord, ContentDigest, CreateOutcome, DropRecord, DropStore, EndOutcome,
    EndRecord, FetchOutcome, FetchRecord, MetaError, NewDrop, OpenDrop, PartyHoldings, RecipientRecord, SentRecord,
    SweepItem,
};
use crate::storage::sqlite::rows::state_from_str;

/// Locks drop `id`'s row for the transaction and returns its state, or
/// `None` if there is no such drop.
async fn lock_state(tx: &Transaction<'_>, id: &DropId) -> Result<Option<String>, MetaError> {
    let stmt = tx.prepare_cached("SELECT state FROM drops WHERE id = $1 FOR UPDATE").await?;
    Ok(tx.query_opt(&stmt, &[&id.as_str()]).await?.map(|row| row.get(0)))
}

async fn create(tx: &Transaction<'_>, drop: &NewDrop) -> Result<CreateOutcome, MetaError> {
    if !drop.durable_now {
        // The commit that follows in the same request flushes the WAL past
        // this transaction (see `NewDrop::durable_now`).
        tx.batch_execute("SET LOCAL synchronous_commit = off").await?;
    }
    let mut replaced = None;
    if let Some(key) = &drop.idempotency_key {
        let find = tx
            .prepare_cached("SELECT id, state FROM drops WHERE sender = $1 AND idempotency_key = $2 FOR UPDATE")
            .await?;
        if let Some(row) = tx.query_opt(&find, &[&drop.sender.as_str(), key]).await? {
            let (id, state): (String, String) = (row.get(0), row.get(1));
            if state_from_str(&state)? != DropState::Open {
                let rec = load_drop(tx, &id)
                    .await?
                    .ok_or_else(|| MetaError::Corrupt(format!("drop {id} vanished inside a transaction")))?;
                return Ok(CreateOutcome::AlreadyCommitted(Box::new(rec)));
            }
            let forget = tx.prepare_cached("DELETE FROM drops WHERE id = $1 AND state = 'open'").await?;
            tx.execute(&forget, &[&id]).await?;
            replaced = Some(parse::<DropId>(id, "drop id")?);
        }
    }
    let insert = tx
        .prepare_cached(
            "INSERT INTO drops (id, sender, sender_member, agreement, created, expires, state, idempotency_key)
             VALUES ($1, $2, $3, $4, $5, $6, 'open', $7)",
        )
        .await?;
    tx.execute(
        &insert,
        &[
            &drop.id.as_str(),
            &drop.sender.as_str(),
            &drop.sender_member.as_str(),
            &drop.agreement,
            &drop.created,
            &drop.expires,
            &drop.idempotency_key,
        ],
    )
    .await?;
    let parties: Vec<&str> = drop.recipients.iter().map(PartyId::as_str).collect();
    let recipients = tx
        .prepare_cached(
            "INSERT INTO drop_recipients (drop_id, party, position)
             SELECT $1, party, position - 1 FROM unnest($2::TEXT[]) WITH ORDINALITY AS r (party, position)",
        )
        .await?;
    tx.execute(&recipients, &[&drop.id.as_str(), &parties]).await?;
    Ok(CreateOutcome::Created { replaced })
}

async fn commit(
    tx: &Transaction<'_>,
    id: &DropId,
    commit: &CommitRecord,
    turn: &dyn AppendTurn,
) -> Result<Option<u64>, MetaError> {
    let len = to_i64(commit.content.len, "content length")?;
    let update = tx
        .prepare_cached(
            "UPDATE drops SET state = 'committed', committed = $2, manifest = $3, sha256 = $4, size = $5,
                sender_member = $6, upload_sha256 = NULL, upload_len = NULL
             WHERE id = $1 AND state = 'open' AND upload_sha256 = $4 AND upload_len = $5",
        )
        .await?;
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 6] = [
        &id.as_str(),
        &commit.committed,
        &commit.manifest,
        &commit.content.sha256,
        &len,
        &commit.sender_member.as_str(),
    ];
    if tx.execute(&update, &params).await? != 1 {
        return Ok(None);
    }
    let index = log::append(tx, std::slice::from_ref(&commit.log_entry), turn).await?;
    let at = tx.prepare_cached("UPDATE drops SET commit_index = $2 WHERE id = $1").await?;
    tx.execute(&at, &[&id.as_str(), &to_i64(index, "log index")?]).await?;
    Ok(Some(index))
}

async fn fetch(
    tx: &Transaction<'_>,
    id: &DropId,
    fetch: &FetchRecord,
    turn: &dyn AppendTurn,
) -> Result<FetchOutcome, MetaError> {
    if lock_state(tx, id).await?.as_deref() != Some("committed") {
        return Ok(FetchOutcome::NotCommitted);
    }
    let (drop, party) = (id.as_str(), fetch.party.as_str());
    let count = tx.prepare_cached("SELECT downloads FROM drop_recipients WHERE drop_id = $1 AND party = $2").await?;
    let downloads =
        tx.query_opt(&count, &[&drop, &party]).await?.map_or(0, |row| row.get::<_, i64>(0).max(0).unsigned_abs());
    if !sealdrop_log::policy::may_download(downloads) {
        return Ok(FetchOutcome::LimitReached { downloads });
    }
    let first = tx
        .prepare_cached("UPDATE drop_recipients SET fetched = $3 WHERE drop_id = $1 AND party = $2 AND fetched IS NULL")
        .await?;
    tx.execute(&first, &[&drop, &party, &fetch.at]).await?;
    let index = log::append(tx, std::slice::from_ref(&fetch.log_entry), turn).await?;
    let counted = tx
        .prepare_cached(
            "UPDATE drop_recipients SET downloads = downloads + 1, fetch_index = COALESCE(fetch_index, $3)
             WHERE drop_id = $1 AND party = $2",
        )
        .await?;
    tx.execute(&counted, &[&drop, &party, &to_i64(index, "log index")?]).await?;
    Ok(FetchOutcome::Recorded { log_index: index })
}

async fn end(
    tx: &Transaction<'_>,
    id: &DropId,
    end: &EndRecord,
    turn: &dyn AppendTurn,
) -> Result<EndOutcome, MetaError> {
    let state = match end.state {
        DropState::Expired => "expired",
        DropState::Recalled => "recalled",
        other => return Err(MetaError::Corrupt(format!("a drop cannot be ended as {other:?}"))),
    };
    match lock_state(tx, id).await?.as_deref() {
        Some("committed") => {}
        Some(other) => return Ok(EndOutcome::NotCommitted(Some(state_from_str(other)?))),
        None => return Ok(EndOutcome::NotCommitted(None)),
    }
    if end.unless_acknowledged {
        let acked: Vec<RecipientRecord> =
            recipients_of(tx, id.as_str()).await?.into_iter().filter(|r| r.acknowledged.is_some()).collect();
        if !acked.is_empty() {
            return Ok(EndOutcome::Acknowledged(acked));
        }
    }
    let update =
        tx.prepare_cached("UPDATE drops SET state = $2, deleted = $3 WHERE id = $1 AND state = 'committed'").await?;
    tx.execute(&update, &[&id.as_str(), &state, &end.at]).await?;
    let log_index = log::append(tx, &end.log_entries, turn).await?;
    // The hub's deletion statement is the last entry appended.
    let deleted_at = log_index + (end.log_entries.len() as u64).saturating_sub(1);
    let at = tx.prepare_cached("UPDATE drops SET end_index = $2 WHERE id = $1").await?;
    tx.execute(&at, &[&id.as_str(), &to_i64(deleted_at, "log index")?]).await?;
    Ok(EndOutcome::Ended { log_index })
}

async fn acknowledge(
    tx: &Transaction<'_>,
    id: &DropId,
    ack: &AckRecord,
    turn: &dyn AppendTurn,
) -> Result<AckOutcome, MetaError> {
    if lock_state(tx, id).await?.as_deref() != Some("committed") {
        return Ok(AckOutcome::NotCommitted);
    }
    let (drop, party) = (id.as_str(), ack.party.as_str());
    let progress = tx
        .prepare_cached("SELECT acknowledged, downloads FROM drop_recipients WHERE drop_id = $1 AND party = $2")
        .await?;
    match tx
        .query_opt(&progress, &[&drop, &party])
        .await?
        .map(|row| (row.get::<_, Option<i64>>(0), row.get::<_, i64>(1)))
    {
        None => return Ok(AckOutcome::NotCommitted),
        Some((Some(_), _)) => return Ok(AckOutcome::AlreadyAcknowledged),
        Some((None, downloads)) if !sealdrop_log::policy::may_acknowledge(downloads.max(0).unsigned_abs()) => {
            return Ok(AckOutcome::NotDownloaded);
        }
        Some((None, _)) => {}
    }
    let record = tx
        .prepare_cached(
            "UPDATE drop_recipients SET acknowledged = $3, ack_member = $4, receipt = $5
             WHERE drop_id = $1 AND party = $2 AND acknowledged IS NULL",
        )
        .await?;
    tx.execute(&record, &[&drop, &party, &ack.at, &ack.member.as_str(), &ack.receipt]).await?;
    let waiting =
        tx.prepare_cached("SELECT count(*) FROM drop_recipients WHERE drop_id = $1 AND acknowledged IS NULL").await?;
    let delivered = tx.query_one(&waiting, &[&drop]).await?.get::<_, i64>(0) == 0;
    let mut entries = vec![ack.log_entry.clone()];
    if delivered {
        let deliver = tx.prepare_cached("UPDATE drops SET state = 'delivered', deleted = $2 WHERE id = $1").await?;
        tx.execute(&deliver, &[&drop, &ack.at]).await?;
        entries.push(ack.delivered_entry.clone());
    }
    let log_index = log::append(tx, &entries, turn).await?;
    let at = tx.prepare_cached("UPDATE drop_recipients SET ack_index = $3 WHERE drop_id = $1 AND party = $2").await?;
    tx.execute(&at, &[&drop, &party, &to_i64(log_index, "log index")?]).await?;
    if delivered {
        let ended = tx.prepare_cached("UPDATE drops SET end_index = $2 WHERE id = $1").await?;
        tx.execute(&ended, &[&drop, &to_i64(log_index + 1, "log index")?]).await?;
    }
    Ok(AckOutcome::Recorded { delivered, log_index })
}

/// Runs one appending step in a transaction; the turn ends once it has
/// committed, and the step returns once the commit is durable.
macro_rules! appending {
    ($store:expr, $turn:expr, |$tx:ident| $step:expr) => {{
        let mut client = $store.client().await?;
        let $tx = client.transaction().await?;
        let out = $step.await?;
        $tx.commit().await?;
        $turn.committed();
        log::wait_durable(&client).await?;
        Ok(out)
    }};
}

#[async_trait]
impl DropStore for PgMetaStore {
    async fn create_drop(&self, drop: &NewDrop) -> Result<CreateOutcome, MetaError> {
        let mut client = self.client().await?;
        // Two creates with one new idempotency key, on two instances, both
        // find no drop to lock; the unique index refuses the second insert,
        // and run again it finds the first's drop and answers as for it.
        let mut tries = 0;
        loop {
            tries += 1;
            let tx = client.transaction().await?;
            match create(&tx, drop).await {
                Ok(out) => {
                    tx.commit().await?;
                    return Ok(out);
                }
                Err(MetaError::Postgres(e))
                    if tries == 1 && e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) => {}
                Err(e) => return Err(e),
            }
        }
    }

    async fn drop_by_idempotency_key(&self, party: &PartyId, key: &str) -> Result<Option<DropRecord>, MetaError> {
        let sql = format!("SELECT {DROP_COLUMNS} FROM drops WHERE sender = $1 AND idempotency_key = $2");
        Ok(load_drops(&self.client().await?, &sql, &[&party.as_str(), &key]).await?.pop().map(|(drop, _)| drop))
    }

    async fn drop_record(&self, id: &DropId) -> Result<Option<DropRecord>, MetaError> {
        load_drop(&self.client().await?, id.as_str()).await
    }

    async fn drop_state(&self, id: &DropId) -> Result<Option<DropState>, MetaError> {
        let client = self.client().await?;
        let stmt = client.prepare_cached("SELECT state FROM drops WHERE id = $1").await?;
        client.query_opt(&stmt, &[&id.as_str()]).await?.map(|row| state_from_str(row.get(0))).transpose()
    }

    async fn set_upload(&self, id: &DropId, upload: Option<&ContentDigest>, at: i64) -> Result<bool, MetaError> {
        let (sha, len) = match upload {
            Some(d) => (Some(d.sha256.as_str()), Some(to_i64(d.len, "upload length")?)),
            None => (None, None),
        };
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "UPDATE drops SET upload_sha256 = $2, upload_len = $3, upload_active = $4 WHERE id = $1 AND state = 'open'",
            )
            .await?;
        Ok(client.execute(&stmt, &[&id.as_str(), &sha, &len, &at]).await? == 1)
    }

    async fn upload_activity(&self, id: &DropId) -> Result<Option<i64>, MetaError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("SELECT COALESCE(upload_active, created) FROM drops WHERE id = $1 AND state = 'open'")
            .await?;
        Ok(client.query_opt(&stmt, &[&id.as_str()]).await?.map(|row| row.get(0)))
    }

    async fn commit_drop(
        &self,
        id: &DropId,
        record: &CommitRecord,
        turn: Box<dyn AppendTurn>,
    ) -> Result<Option<u64>, MetaError> {
        appending!(self, turn, |tx| commit(&tx, id, record, turn.as_ref()))
    }

    async fn record_fetch(
        &self,
        id: &DropId,
        record: &FetchRecord,
        turn: Box<dyn AppendTurn>,
    ) -> Result<FetchOutcome, MetaError> {
        appending!(self, turn, |tx| fetch(&tx, id, record, turn.as_ref()))
    }

    async fn end_drop(
        &self,
        id: &DropId,
        record: &EndRecord,
        turn: Box<dyn AppendTurn>,
    ) -> Result<EndOutcome, MetaError> {
        appending!(self, turn, |tx| end(&tx, id, record, turn.as_ref()))
    }

    async fn forget_open_drop(&self, id: &DropId) -> Result<bool, MetaError> {
        let client = self.client().await?;
        // The recipients' rows go by the foreign key's cascade.
        let stmt = client.prepare_cached("DELETE FROM drops WHERE id = $1 AND state = 'open'").await?;
        Ok(client.execute(&stmt, &[&id.as_str()]).await? == 1)
    }

    async fn due_for_sweep(&self, now: i64, in_force: &[String], limit: usize) -> Result<Vec<SweepItem>, MetaError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT id, state, expires, agreement FROM drops
                 WHERE (state IN ('open', 'committed') AND expires <= $1)
                    OR (state = 'committed' AND NOT agreement = ANY($2))
                 ORDER BY expires, id LIMIT $3",
            )
            .await?;
        let limit = to_i64(limit as u64, "limit")?;
        client
            .query(&stmt, &[&now, &in_force, &limit])
            .await?
            .into_iter()
            .map(|row| {
                Ok(SweepItem {
                    id: parse(row.get(0), "drop id")?,
                    state: state_from_str(row.get(1))?,
                    expires: row.get(2),
                    agreement: row.get(3),
                })
            })
            .collect()
    }

    async fn acknowledge(
        &self,
        id: &DropId,
        record: &AckRecord,
        turn: Box<dyn AppendTurn>,
    ) -> Result<AckOutcome, MetaError> {
        appending!(self, turn, |tx| acknowledge(&tx, id, record, turn.as_ref()))
    }

    async fn inbox(&self, party: &PartyId, now: i64) -> Result<Vec<DropRecord>, MetaError> {
        let columns = DROP_COLUMNS.split(", ").map(|c| format!("d.{c}")).collect::<Vec<_>>().join(", ");
        let sql = format!(
            "SELECT {columns} FROM drops d JOIN drop_recipients r ON r.drop_id = d.id
             WHERE r.party = $1 AND r.acknowledged IS NULL AND d.state = 'committed' AND d.expires > $2
             ORDER BY d.committed, d.id"
        );
        let drops = load_drops(&self.client().await?, &sql, &[&party.as_str(), &now]).await?;
        Ok(drops.into_iter().map(|(drop, _)| drop).collect())
    }

    async fn sent(&self, party: &PartyId, id: Option<&DropId>) -> Result<Vec<SentRecord>, MetaError> {
        // Newest first; drops created in the same second, last stored first.
        let sql = format!(
            "SELECT {DROP_COLUMNS}, idempotency_key FROM drops
             WHERE sender = $1 AND ($2::TEXT IS NULL OR id = $2)
             ORDER BY created DESC, stored DESC"
        );
        let drops = load_drops(&self.client().await?, &sql, &[&party.as_str(), &id.map(DropId::as_str)]).await?;
        Ok(drops
            .into_iter()
            .map(|(drop, row)| SentRecord { drop, idempotency_key: row.get(DROP_COLUMN_COUNT) })
            .collect())
    }

    async fn party_holdings(&self, party: &PartyId) -> Result<PartyHoldings, MetaError> {
        let client = self.client().await?;
        let held = client
            .prepare_cached(
                "SELECT COALESCE(SUM(size), 0)::BIGINT FROM drops WHERE sender = $1 AND state = 'committed'",
            )
            .await?;
        let committed: i64 = client.query_one(&held, &[&party.as_str()]).await?.get(0);
        let open = client
            .prepare_cached(
                "SELECT id, upload_len, upload_active IS NOT NULL FROM drops WHERE sender = $1 AND state = 'open'",
            )
            .await?;
        let open = client
            .query(&open, &[&party.as_str()])
            .await?
            .into_iter()
            .map(|row| {
                Ok(OpenDrop {
                    id: parse(row.get(0), "drop id")?,
                    upload_len: row.get::<_, Option<i64>>(1).map(|n| to_u64(n, "upload length")).transpose()?,
                    upload_started: row.get(2),
                })
            })
            .collect::<Result<_, MetaError>>()?;
        Ok(PartyHoldings { committed_bytes: to_u64(committed, "held bytes")?, open })
    }
}
