//! Reading drops and their recipients' progress out of PostgreSQL rows.

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::{parse, to_u64};
use crate::storage::meta::{DropRecord, MetaError, RecipientRecord};
use crate::storage::sqlite::rows::{digest, state_from_str};

/// The columns a [`DropRecord`] is read from, in [`drop_from_row`]'s order.
pub(super) const DROP_COLUMNS: &str = "id, sender, sender_member, agreement, created, expires, state, \
     upload_sha256, upload_len, sha256, size, committed, manifest, deleted, commit_index, end_index";

/// How many columns [`DROP_COLUMNS`] names: a query may select more after them.
pub(super) const DROP_COLUMN_COUNT: usize = 16;

fn index(i: Option<i64>) -> Result<Option<u64>, MetaError> {
    i.map(|i| to_u64(i, "log index")).transpose()
}

fn drop_from_row(row: &Row, recipients: Vec<RecipientRecord>) -> Result<DropRecord, MetaError> {
    Ok(DropRecord {
        id: parse(row.get(0), "drop id")?,
        sender: parse(row.get(1), "sender")?,
        sender_member: parse(row.get(2), "sender member")?,
        agreement: row.get(3),
        created: row.get(4),
        expires: row.get(5),
        state: state_from_str(row.get(6))?,
        upload: digest(row.get(7), row.get(8), "upload")?,
        content: digest(row.get(9), row.get(10), "content")?,
        committed: row.get(11),
        manifest: row.get(12),
        deleted: row.get(13),
        commit_index: index(row.get(14))?,
        end_index: index(row.get(15))?,
        recipients,
    })
}

/// A drop's recipients, in the order the sender listed them.
pub(super) async fn recipients_of(client: &impl GenericClient, id: &str) -> Result<Vec<RecipientRecord>, MetaError> {
    let stmt = client
        .prepare_cached(
            "SELECT party, fetched, acknowledged, ack_member, receipt, downloads, fetch_index, ack_index
             FROM drop_recipients WHERE drop_id = $1 ORDER BY position",
        )
        .await?;
    client
        .query(&stmt, &[&id])
        .await?
        .iter()
        .map(|row| {
            Ok(RecipientRecord {
                party: parse(row.get(0), "recipient party")?,
                fetched: row.get(1),
                acknowledged: row.get(2),
                ack_member: row.get::<_, Option<String>>(3).map(|m| parse(m, "acknowledging member")).transpose()?,
                receipt: row.get(4),
                downloads: to_u64(row.get(5), "download count")?,
                fetch_index: index(row.get(6))?,
                ack_index: index(row.get(7))?,
            })
        })
        .collect()
}

/// The drops `sql` selects (starting with [`DROP_COLUMNS`]) with their
/// recipients, and the rows themselves for any further columns.
pub(super) async fn load_drops(
    client: &impl GenericClient,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<(DropRecord, Row)>, MetaError> {
    let stmt = client.prepare_cached(sql).await?;
    let mut drops = Vec::new();
    for row in client.query(&stmt, params).await? {
        let recipients = recipients_of(client, row.get(0)).await?;
        drops.push((drop_from_row(&row, recipients)?, row));
    }
    Ok(drops)
}

/// The drop `id` with its recipients.
pub(super) async fn load_drop(client: &impl GenericClient, id: &str) -> Result<Option<DropRecord>, MetaError> {
    let sql = format!("SELECT {DROP_COLUMNS} FROM drops WHERE id = $1");
    Ok(load_drops(client, &sql, &[&id]).await?.pop().map(|(drop, _)| drop))
}
