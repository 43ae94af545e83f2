//! The tables `migrate` copies, described once for both databases: the
//! copy reads each from SQLite and writes it into PostgreSQL with `COPY`,
//! and the verification reads both again, in the same order, and compares
//! them row by row and column by column.
//!
//! The PostgreSQL schema mirrors SQLite's (storage/postgres/schema.rs) with
//! two differences, both about order: SQLite's `rowid` becomes
//! `drops.stored` (an identity, so inserting drops in rowid order keeps
//! `GET /v1/sent`'s order of drops created in the same second) and
//! `drop_recipients.position` (the sender's order of recipients, numbered
//! here from SQLite's rowid order). `inline_blobs` is not a table here: its
//! ciphertexts go to the object store (see `super::blobs`).

use std::pin::pin;

use futures_util::TryStreamExt as _;
use rusqlite::Connection;
use rusqlite::types::ValueRef;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};

use super::{MigrateError, source_read};

/// A column's type in PostgreSQL (SQLite's are its `STRICT` equivalents).
#[derive(Debug, Clone, Copy)]
pub(super) enum Kind {
    /// `BIGINT` (SQLite `INTEGER`).
    BigInt,
    /// `INTEGER`: only `drop_recipients.position`.
    Int,
    /// `TEXT`.
    Text,
    /// `BYTEA` (SQLite `BLOB`).
    Bytes,
}

impl Kind {
    fn pg_type(self) -> Type {
        match self {
            Self::BigInt => Type::INT8,
            Self::Int => Type::INT4,
            Self::Text => Type::TEXT,
            Self::Bytes => Type::BYTEA,
        }
    }
}

/// One column of a copied table.
#[derive(Debug)]
pub(super) struct Column {
    /// Its name in both databases.
    name: &'static str,
    /// Its type.
    kind: Kind,
    /// What SQLite computes it from, when it has no such column.
    sqlite_expression: Option<&'static str>,
}

const fn column(name: &'static str, kind: Kind) -> Column {
    Column { name, kind, sqlite_expression: None }
}

/// A copied table.
#[derive(Debug)]
pub(super) struct Table {
    /// Its name in both databases.
    pub(super) name: &'static str,
    /// The columns copied, in the order read and written.
    columns: &'static [Column],
    /// Rows left out of the copy and the comparison (a `WHERE` clause, or empty).
    filter: &'static str,
    /// The order SQLite reads the rows in...
    sqlite_order: &'static str,
    /// ... and the same order in PostgreSQL (text compared byte by byte, as SQLite does).
    pg_order: &'static str,
}

use Kind::{BigInt, Bytes, Int, Text};

/// Every table, parents before children (the foreign keys hold at each `COPY`).
pub(super) const TABLES: &[Table] = &[
    Table {
        name: "settings",
        columns: &[column("key", Text), column("value", Text)],
        // Where the larger ciphertexts are: the target's location, written apart.
        filter: "WHERE key <> 'blobs'",
        sqlite_order: "key",
        pg_order: "key COLLATE \"C\"",
    },
    Table {
        name: "directories",
        columns: &[
            column("serial", BigInt),
            column("note", Text),
            column("sha256", Text),
            column("accepted_at", BigInt),
        ],
        filter: "",
        sqlite_order: "serial",
        pg_order: "serial",
    },
    Table {
        name: "drops",
        columns: &[
            column("id", Text),
            column("sender", Text),
            column("sender_member", Text),
            column("agreement", Text),
            column("created", BigInt),
            column("expires", BigInt),
            column("state", Text),
            column("upload_sha256", Text),
            column("upload_len", BigInt),
            column("sha256", Text),
            column("size", BigInt),
            column("committed", BigInt),
            column("manifest", Text),
            column("idempotency_key", Text),
            column("deleted", BigInt),
            column("upload_active", BigInt),
            column("commit_index", BigInt),
            column("end_index", BigInt),
        ],
        filter: "",
        sqlite_order: "rowid",
        pg_order: "stored",
    },
    Table {
        name: "drop_recipients",
        columns: &[
            column("drop_id", Text),
            column("party", Text),
            column("fetched", BigInt),
            column("acknowledged", BigInt),
            column("ack_member", Text),
            column("receipt", Text),
            column("downloads", BigInt),
            column("fetch_index", BigInt),
            column("ack_index", BigInt),
            Column {
                name: "position",
                kind: Int,
                sqlite_expression: Some("ROW_NUMBER() OVER (PARTITION BY drop_id ORDER BY rowid) - 1"),
            },
        ],
        filter: "",
        sqlite_order: "drop_id, rowid",
        pg_order: "drop_id COLLATE \"C\", position",
    },
    Table {
        name: "nonces",
        columns: &[column("key", Text), column("nonce", Text), column("seen", BigInt)],
        filter: "",
        sqlite_order: "key, nonce",
        pg_order: "key COLLATE \"C\", nonce COLLATE \"C\"",
    },
    Table {
        name: "log_entries",
        columns: &[column("idx", BigInt), column("data", Bytes)],
        filter: "",
        sqlite_order: "idx",
        pg_order: "idx",
    },
    Table {
        name: "log_hashes",
        columns: &[column("idx", BigInt), column("hash", Bytes)],
        filter: "",
        sqlite_order: "idx",
        pg_order: "idx",
    },
    Table {
        name: "checkpoints",
        columns: &[column("size", BigInt), column("note", Text)],
        filter: "",
        sqlite_order: "size",
        pg_order: "size",
    },
    Table {
        name: "cosignatures",
        columns: &[column("size", BigInt), column("witness", Text), column("line", Text)],
        filter: "",
        sqlite_order: "size, witness",
        pg_order: "size, witness COLLATE \"C\"",
    },
];

impl Table {
    fn sqlite_select(&self) -> String {
        let columns: Vec<&str> = self.columns.iter().map(|c| c.sqlite_expression.unwrap_or(c.name)).collect();
        format!("SELECT {} FROM {} {} ORDER BY {}", columns.join(", "), self.name, self.filter, self.sqlite_order)
    }

    fn pg_select(&self) -> String {
        format!("SELECT {} FROM {} {} ORDER BY {}", self.column_list(), self.name, self.filter, self.pg_order)
    }

    fn column_list(&self) -> String {
        self.columns.iter().map(|c| c.name).collect::<Vec<_>>().join(", ")
    }
}

/// A value of either database, as compared.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Value {
    Null,
    Int(i64),
    Text(String),
    Bytes(Vec<u8>),
}

impl Value {
    /// The value as a `COPY` parameter of `column`'s type.
    fn into_param(self, table: &Table, column: &Column) -> Result<Box<dyn ToSql + Sync + Send>, MigrateError> {
        Ok(match (column.kind, self) {
            (BigInt, Value::Null) => Box::new(None::<i64>),
            (Int, Value::Null) => Box::new(None::<i32>),
            (Text, Value::Null) => Box::new(None::<String>),
            (Bytes, Value::Null) => Box::new(None::<Vec<u8>>),
            (BigInt, Value::Int(n)) => Box::new(n),
            (Int, Value::Int(n)) => Box::new(i32::try_from(n).map_err(|_| {
                MigrateError::Source(format!("{}.{} holds {n}, too large for PostgreSQL", table.name, column.name))
            })?),
            (Text, Value::Text(s)) => Box::new(s),
            (Bytes, Value::Bytes(b)) => Box::new(b),
            (kind, value) => {
                return Err(MigrateError::Source(format!(
                    "{}.{} holds {value:?} where {kind:?} was expected: the database is damaged",
                    table.name, column.name
                )));
            }
        })
    }
}

fn sqlite_row(table: &Table, row: &rusqlite::Row<'_>) -> Result<Vec<Value>, MigrateError> {
    let mut values = Vec::with_capacity(table.columns.len());
    for (i, column) in table.columns.iter().enumerate() {
        let value = match row.get_ref(i).map_err(source_read)? {
            ValueRef::Null => Value::Null,
            ValueRef::Integer(n) => Value::Int(n),
            ValueRef::Text(t) => Value::Text(String::from_utf8(t.to_vec()).map_err(|_| {
                MigrateError::Source(format!("{}.{} holds text that is not UTF-8", table.name, column.name))
            })?),
            ValueRef::Blob(b) => Value::Bytes(b.to_vec()),
            ValueRef::Real(r) => {
                return Err(MigrateError::Source(format!(
                    "{}.{} holds the number {r}, which the hub never writes",
                    table.name, column.name
                )));
            }
        };
        values.push(value);
    }
    Ok(values)
}

fn pg_row(table: &Table, row: &tokio_postgres::Row) -> Result<Vec<Value>, tokio_postgres::Error> {
    let mut values = Vec::with_capacity(table.columns.len());
    for (i, column) in table.columns.iter().enumerate() {
        let value = match column.kind {
            BigInt => row.try_get::<_, Option<i64>>(i)?.map(Value::Int),
            Int => row.try_get::<_, Option<i32>>(i)?.map(|n| Value::Int(n.into())),
            Text => row.try_get::<_, Option<String>>(i)?.map(Value::Text),
            Bytes => row.try_get::<_, Option<Vec<u8>>>(i)?.map(Value::Bytes),
        };
        values.push(value.unwrap_or(Value::Null));
    }
    Ok(values)
}

/// Copies `table` from `source` into the target's transaction, streaming
/// (one row in memory at a time); returns the number of rows.
pub(super) async fn copy_table(
    source: &Connection,
    target: &tokio_postgres::Transaction<'_>,
    table: &Table,
) -> Result<u64, MigrateError> {
    let sink = target
        .copy_in(&format!("COPY {} ({}) FROM STDIN BINARY", table.name, table.column_list()))
        .await
        .map_err(super::pg_failed)?;
    let types: Vec<Type> = table.columns.iter().map(|c| c.kind.pg_type()).collect();
    let mut writer = pin!(BinaryCopyInWriter::new(sink, &types));
    let mut statement = source.prepare(&table.sqlite_select()).map_err(source_read)?;
    let mut rows = statement.query([]).map_err(source_read)?;
    let mut copied = 0;
    while let Some(row) = rows.next().map_err(source_read)? {
        let params = sqlite_row(table, row)?
            .into_iter()
            .zip(table.columns)
            .map(|(value, column)| value.into_param(table, column))
            .collect::<Result<Vec<_>, _>>()?;
        let params: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect();
        writer.as_mut().write(&params).await.map_err(super::pg_failed)?;
        copied += 1;
    }
    writer.finish().await.map_err(super::pg_failed)?;
    Ok(copied)
}

/// Reads `table` from both databases in the same order and compares every
/// row; returns the number of rows. A difference is a
/// [`MigrateError::Verify`] naming the table, row and column.
pub(super) async fn compare_table(
    source: &Connection,
    target: &tokio_postgres::Client,
    table: &Table,
) -> Result<u64, MigrateError> {
    let mut statement = source.prepare(&table.sqlite_select()).map_err(source_read)?;
    let mut source_rows = statement.query([]).map_err(source_read)?;
    let no_params: Vec<&(dyn ToSql + Sync)> = Vec::new();
    let mut target_rows = pin!(target.query_raw(&table.pg_select(), no_params).await.map_err(super::pg_failed)?);
    let mut compared = 0u64;
    loop {
        let left = source_rows.next().map_err(source_read)?.map(|row| sqlite_row(table, row)).transpose()?;
        let right = target_rows
            .try_next()
            .await
            .map_err(super::pg_failed)?
            .map(|row| pg_row(table, &row))
            .transpose()
            .map_err(super::pg_failed)?;
        let differs = |what: String| MigrateError::Verify(format!("table {}: {what}", table.name));
        match (left, right) {
            (None, None) => return Ok(compared),
            (Some(left), Some(right)) if left == right => compared += 1,
            (Some(left), Some(right)) => {
                let column = left.iter().zip(&right).zip(table.columns).find(|((l, r), _)| l != r).map(|(_, c)| c.name);
                return Err(differs(format!(
                    "row {} (in the source's order) differs in column {}",
                    compared + 1,
                    column.unwrap_or("?")
                )));
            }
            (Some(_), None) => {
                return Err(differs(format!("the copy has {compared} rows, the source more")));
            }
            (None, Some(_)) => {
                return Err(differs(format!("the source has {compared} rows, the copy more")));
            }
        }
    }
}

/// Whether any copied table of the target holds a row, or its log head
/// counts an entry: the name of the first that does.
pub(super) async fn first_non_empty(target: &tokio_postgres::Transaction<'_>) -> Result<Option<String>, MigrateError> {
    for table in TABLES {
        let query = format!("SELECT EXISTS (SELECT 1 FROM {})", table.name);
        let found: bool = target.query_one(&query, &[]).await.map_err(super::pg_failed)?.get(0);
        if found {
            return Ok(Some(table.name.to_owned()));
        }
    }
    let size: i64 = target.query_one("SELECT size FROM log_head", &[]).await.map_err(super::pg_failed)?.get(0);
    Ok((size != 0).then(|| "log_head".to_owned()))
}
