//! The database schema, one migration per released change.

use rusqlite_migration::M;

use super::{log, log_index};

/// The schema, one migration per released change. Never edit a released
/// migration: append a new one.
pub(super) const MIGRATIONS: &[M<'static>] = &[
    M::up(
        "CREATE TABLE settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    ) STRICT;
    CREATE TABLE directories (
        serial INTEGER PRIMARY KEY,
        note TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        accepted_at INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE drops (
        id TEXT PRIMARY KEY,
        sender TEXT NOT NULL,
        sender_member TEXT NOT NULL,
        agreement TEXT NOT NULL,
        created INTEGER NOT NULL,
        expires INTEGER NOT NULL,
        state TEXT NOT NULL,
        upload_sha256 TEXT,
        upload_len INTEGER,
        sha256 TEXT,
        size INTEGER,
        committed INTEGER,
        manifest TEXT
    ) STRICT;
    CREATE INDEX drops_by_sender ON drops (sender, created);
    CREATE TABLE drop_recipients (
        drop_id TEXT NOT NULL REFERENCES drops (id) ON DELETE CASCADE,
        party TEXT NOT NULL,
        fetched INTEGER,
        acknowledged INTEGER,
        ack_member TEXT,
        receipt TEXT,
        PRIMARY KEY (drop_id, party)
    ) STRICT;
    CREATE INDEX drop_recipients_by_party ON drop_recipients (party);
    CREATE TABLE nonces (
        key TEXT NOT NULL,
        nonce TEXT NOT NULL,
        seen INTEGER NOT NULL,
        PRIMARY KEY (key, nonce)
    ) STRICT;
    CREATE INDEX nonces_by_seen ON nonces (seen);",
    ),
    // The transfer log.
    M::up(log::MIGRATION),
    // Idempotent creation: at most one drop per sender party and key. Drops
    // from before have no key, and the partial index leaves them out.
    M::up(
        "ALTER TABLE drops ADD COLUMN idempotency_key TEXT;
    CREATE UNIQUE INDEX drops_by_idempotency_key ON drops (sender, idempotency_key)
        WHERE idempotency_key IS NOT NULL;",
    ),
    // Lifecycle: when the ciphertext was deleted (delivered, expired,
    // recalled), and an index the sweeper finds due drops by.
    M::up(
        "ALTER TABLE drops ADD COLUMN deleted INTEGER;
    CREATE INDEX drops_by_state_expiry ON drops (state, expires);",
    ),
    // Small ciphertexts kept in the database instead of a file each (see
    // `InlineBlobs`): an upload being written or a committed drop's blob.
    M::up(
        "CREATE TABLE inline_blobs (
        drop_id TEXT PRIMARY KEY,
        stage TEXT NOT NULL CHECK (stage IN ('upload', 'blob')),
        data BLOB NOT NULL
    ) STRICT;",
    ),
    // When an open drop's upload was last active (started again, continued,
    // cut off or finished), so the sweeper can remove an upload nobody came
    // back to within the resume window. NULL: no activity recorded since the
    // drop was created (a first upload writes nothing until it ends), so the
    // creation time stands for it.
    M::up("ALTER TABLE drops ADD COLUMN upload_active INTEGER;"),
    // Where the transfer log records each drop's life (see `log_index`);
    // filled from the log for older databases when the store opens.
    M::up(log_index::MIGRATION),
    // A party's drops by state, for its quotas (what it holds as a sender),
    // read each time it starts an upload.
    M::up("CREATE INDEX drops_by_sender_state ON drops (sender, state);"),
    // The same, with each drop's size: the sum of what a party holds is then
    // read from the index alone, not from rows that carry a manifest each
    // (it was 6 % of the hub's CPU on small drops; `bench/RESULTS.md`).
    M::up(
        "DROP INDEX drops_by_sender_state;
         CREATE INDEX drops_by_sender_state_size ON drops (sender, state, size);",
    ),
];
