//! The PostgreSQL schema, one migration per released change, recorded in
//! `schema_version` (as SQLite's `user_version` records its migrations).
//!
//! The first migration mirrors the SQLite schema as its migrations leave it
//! (hub/src/storage/sqlite/schema.rs), with PostgreSQL's types: `BIGINT`
//! for SQLite's integers, `BYTEA` for its blobs. Small ciphertexts kept in
//! SQLite's `inline_blobs` have no table here: with PostgreSQL the blobs
//! live in a blob store. What only PostgreSQL needs is `log_head`, the one
//! row appends lock so instances sharing the database take turns.

use deadpool_postgres::Client;

use crate::storage::meta::MetaError;

/// The schema. Never edit a released migration: append a new one.
const MIGRATIONS: &[&str] = &[
    "CREATE TABLE settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE TABLE directories (
        serial BIGINT PRIMARY KEY,
        note TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        accepted_at BIGINT NOT NULL
    );
    CREATE TABLE drops (
        id TEXT PRIMARY KEY,
        sender TEXT NOT NULL,
        sender_member TEXT NOT NULL,
        agreement TEXT NOT NULL,
        created BIGINT NOT NULL,
        expires BIGINT NOT NULL,
        state TEXT NOT NULL,
        upload_sha256 TEXT,
        upload_len BIGINT,
        sha256 TEXT,
        size BIGINT,
        committed BIGINT,
        manifest TEXT,
        idempotency_key TEXT,
        deleted BIGINT,
        upload_active BIGINT,
        commit_index BIGINT,
        end_index BIGINT,
        -- The order drops were stored in (SQLite's rowid), which `sent`
        -- lists drops created in the same second by.
        stored BIGINT GENERATED ALWAYS AS IDENTITY
    );
    CREATE INDEX drops_by_sender ON drops (sender, created);
    CREATE UNIQUE INDEX drops_by_idempotency_key ON drops (sender, idempotency_key)
        WHERE idempotency_key IS NOT NULL;
    CREATE INDEX drops_by_state_expiry ON drops (state, expires);
    CREATE INDEX drops_by_sender_state ON drops (sender, state);
    CREATE TABLE drop_recipients (
        drop_id TEXT NOT NULL REFERENCES drops (id) ON DELETE CASCADE,
        party TEXT NOT NULL,
        fetched BIGINT,
        acknowledged BIGINT,
        ack_member TEXT,
        receipt TEXT,
        downloads BIGINT NOT NULL DEFAULT 0,
        fetch_index BIGINT,
        ack_index BIGINT,
        -- The sender's order of recipients (SQLite keeps it as rowid order).
        position INTEGER NOT NULL,
        PRIMARY KEY (drop_id, party)
    );
    CREATE INDEX drop_recipients_by_party ON drop_recipients (party);
    CREATE TABLE nonces (
        key TEXT NOT NULL,
        nonce TEXT NOT NULL,
        seen BIGINT NOT NULL,
        PRIMARY KEY (key, nonce)
    );
    CREATE INDEX nonces_by_seen ON nonces (seen);
    CREATE TABLE log_entries (
        idx BIGINT PRIMARY KEY,
        data BYTEA NOT NULL
    );
    CREATE TABLE log_hashes (
        idx BIGINT PRIMARY KEY,
        hash BYTEA NOT NULL
    );
    CREATE TABLE checkpoints (
        size BIGINT PRIMARY KEY,
        note TEXT NOT NULL
    );
    CREATE TABLE cosignatures (
        size BIGINT NOT NULL REFERENCES checkpoints (size),
        witness TEXT NOT NULL,
        line TEXT NOT NULL,
        PRIMARY KEY (size, witness)
    );
    -- The number of log entries, in one row that every append locks
    -- (SELECT ... FOR UPDATE) for its transaction: appends from every
    -- instance on this database are sequenced into one log.
    CREATE TABLE log_head (
        one BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
        size BIGINT NOT NULL
    );
    INSERT INTO log_head (size) VALUES (0);",
    // A party's committed bytes (its quota) read from the index alone.
    "DROP INDEX drops_by_sender_state;
    CREATE INDEX drops_by_sender_state_size ON drops (sender, state) INCLUDE (size);",
];

/// The advisory lock (any constant) instances starting together take
/// while they bring the schema up to date, so one migrates and the others
/// then find it done.
const MIGRATION_LOCK: i64 = 0x5ea1_d509_0000_0001;

/// Brings the schema up to date in one transaction.
pub(super) async fn migrate(client: &mut Client) -> Result<(), MetaError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await?;
    // Checked rather than `CREATE TABLE IF NOT EXISTS`, whose notice every start would log.
    let exists: bool = tx.query_one("SELECT to_regclass('schema_version') IS NOT NULL", &[]).await?.get(0);
    if !exists {
        tx.batch_execute("CREATE TABLE schema_version (version INTEGER NOT NULL)").await?;
    }
    let version: Option<i32> = tx.query_opt("SELECT version FROM schema_version", &[]).await?.map(|r| r.get(0));
    let applied = usize::try_from(version.unwrap_or(0))
        .map_err(|_| MetaError::PostgresConfig(format!("schema version {version:?} is negative")))?;
    if applied > MIGRATIONS.len() {
        return Err(MetaError::PostgresConfig(format!(
            "the database's schema is version {applied}, newer than this hub's {}: upgrade the hub",
            MIGRATIONS.len()
        )));
    }
    for migration in &MIGRATIONS[applied..] {
        tx.batch_execute(migration).await?;
    }
    let latest = i32::try_from(MIGRATIONS.len()).expect("fewer than 2^31 migrations");
    if version.is_none() {
        tx.execute("INSERT INTO schema_version (version) VALUES ($1)", &[&latest]).await?;
    } else {
        tx.execute("UPDATE schema_version SET version = $1", &[&latest]).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The database's schema version, changing nothing; an error unless it is
/// exactly this hub's (a database never migrated holds no hub yet).
pub(super) async fn current_version(client: &Client) -> Result<usize, MetaError> {
    let exists: bool = client.query_one("SELECT to_regclass('schema_version') IS NOT NULL", &[]).await?.get(0);
    let version: Option<i32> = match exists {
        true => client.query_opt("SELECT version FROM schema_version", &[]).await?.map(|r| r.get(0)),
        false => None,
    };
    let latest = MIGRATIONS.len();
    match version.map(usize::try_from) {
        None => Err(MetaError::PostgresConfig(
            "it holds no sealdrop schema yet: run `sealdrop-hub init` with this `database` first".to_owned(),
        )),
        Some(Ok(v)) if v == latest => Ok(v),
        Some(Ok(v)) if v < latest => Err(MetaError::PostgresConfig(format!(
            "its schema is version {v}, older than this hub's {latest}: `sealdrop-hub serve` brings it up to date"
        ))),
        Some(v) => Err(MetaError::PostgresConfig(format!(
            "its schema is version {v:?}, newer than this hub's {latest}: upgrade the hub"
        ))),
    }
}

/// The schema version this hub brings a database to.
#[cfg(test)]
pub(super) fn latest_version() -> usize {
    MIGRATIONS.len()
}
