//! Reading drops and their recipients' progress out of rows.

use rusqlite::{Connection, OptionalExtension as _, Row};
use sealdrop_proto::api::DropState;
use sealdrop_proto::ids::DropId;

use super::{parse, to_u64};
use crate::storage::meta::{ContentDigest, DropRecord, MetaError, RecipientRecord};

/// The columns a [`DropRecord`] is read from, in [`RawDrop`]'s order.
pub(super) const DROP_COLUMNS: &str = "id, sender, sender_member, agreement, created, expires, state, \
     upload_sha256, upload_len, sha256, size, committed, manifest, deleted, commit_index, end_index";

pub(in crate::storage) fn state_from_str(s: &str) -> Result<DropState, MetaError> {
    match s {
        "open" => Ok(DropState::Open),
        "committed" => Ok(DropState::Committed),
        "delivered" => Ok(DropState::Delivered),
        "expired" => Ok(DropState::Expired),
        "recalled" => Ok(DropState::Recalled),
        other => Err(MetaError::Corrupt(format!("unknown drop state {other:?}"))),
    }
}

pub(in crate::storage) fn digest(
    sha256: Option<String>,
    len: Option<i64>,
    what: &str,
) -> Result<Option<ContentDigest>, MetaError> {
    match (sha256, len) {
        (Some(sha256), Some(len)) => Ok(Some(ContentDigest { sha256, len: to_u64(len, what)? })),
        (None, None) => Ok(None),
        _ => Err(MetaError::Corrupt(format!("{what} has a hash without a length or the reverse"))),
    }
}

/// The columns of [`DROP_COLUMNS`] as raw values, converted outside the
/// row callback so conversion errors keep their message.
type RawDrop = (
    String,
    String,
    String,
    String,
    i64,
    i64,
    String,
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<i64>,
    Option<i64>,
    Option<String>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
);

pub(super) fn raw_drop(r: &Row<'_>) -> rusqlite::Result<RawDrop> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
        r.get(10)?,
        r.get(11)?,
        r.get(12)?,
        r.get(13)?,
        r.get(14)?,
        r.get(15)?,
    ))
}

pub(super) fn drop_from_raw(raw: RawDrop, recipients: Vec<RecipientRecord>) -> Result<DropRecord, MetaError> {
    let (
        id,
        sender,
        member,
        agreement,
        created,
        expires,
        state,
        up_sha,
        up_len,
        sha,
        size,
        committed,
        manifest,
        deleted,
        commit_index,
        end_index,
    ) = raw;
    Ok(DropRecord {
        id: parse(id, "drop id")?,
        sender: parse(sender, "sender")?,
        sender_member: parse(member, "sender member")?,
        agreement,
        created,
        expires,
        state: state_from_str(&state)?,
        upload: digest(up_sha, up_len, "upload")?,
        content: digest(sha, size, "content")?,
        committed,
        manifest,
        deleted,
        commit_index: commit_index.map(|i| to_u64(i, "log index")).transpose()?,
        end_index: end_index.map(|i| to_u64(i, "log index")).transpose()?,
        recipients,
    })
}

type RawRecipient = (String, Option<i64>, Option<i64>, Option<String>, Option<String>, i64, Option<i64>, Option<i64>);

pub(super) fn recipients_of(conn: &Connection, id: &str) -> Result<Vec<RecipientRecord>, MetaError> {
    let mut stmt = conn.prepare_cached(
        "SELECT party, fetched, acknowledged, ack_member, receipt, downloads, fetch_index, ack_index
         FROM drop_recipients WHERE drop_id = ?1 ORDER BY rowid",
    )?;
    let raws = stmt
        .query_map([id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?))
        })?
        .collect::<Result<Vec<RawRecipient>, _>>()?;
    let index = |i: Option<i64>| i.map(|i| to_u64(i, "log index")).transpose();
    raws.into_iter()
        .map(|(party, fetched, acknowledged, member, receipt, downloads, fetch_index, ack_index)| {
            Ok(RecipientRecord {
                party: parse(party, "recipient party")?,
                fetched,
                acknowledged,
                ack_member: member.map(|m| parse(m, "acknowledging member")).transpose()?,
                receipt,
                downloads: to_u64(downloads, "download count")?,
                fetch_index: index(fetch_index)?,
                ack_index: index(ack_index)?,
            })
        })
        .collect()
}

pub(super) fn load_drops(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<DropRecord>, MetaError> {
    Ok(load_drops_with(conn, sql, params, |_| Ok(()))?.into_iter().map(|(d, ())| d).collect())
}

/// [`load_drops`] for a query that selects more columns after
/// [`DROP_COLUMNS`], which `extra` reads from each row.
pub(super) fn load_drops_with<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    extra: impl Fn(&Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<(DropRecord, T)>, MetaError> {
    let raws = conn
        .prepare_cached(sql)?
        .query_map(params, |r| Ok((raw_drop(r)?, extra(r)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    raws.into_iter()
        .map(|(raw, more)| {
            let recipients = recipients_of(conn, &raw.0)?;
            Ok((drop_from_raw(raw, recipients)?, more))
        })
        .collect()
}

/// A drop's state as stored (`open`, `committed`, ...), or `None` if there is no such drop.
pub(super) fn stored_state(conn: &Connection, id: &DropId) -> Result<Option<String>, MetaError> {
    Ok(conn
        .prepare_cached("SELECT state FROM drops WHERE id = ?1")?
        .query_row([id.as_str()], |r| r.get(0))
        .optional()?)
}
