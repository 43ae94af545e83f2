//! [`MetaStore`] on SQLite: one connection behind a mutex, WAL journal,
//! `synchronous=FULL` (a commit acknowledged to a sender survives a power
//! cut), foreign keys on, and the schema managed by `rusqlite_migration` so
//! later versions add migrations instead of editing this one.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, OptionalExtension as _, Row, Transaction, params};
use rusqlite_migration::{M, Migrations};
use sealdrop_proto::api::DropState;
use sealdrop_proto::ids::{DropId, PartyId};

use super::meta::{
    AckOutcome, AckRecord, CommitRecord, ContentDigest, DropRecord, MetaError, MetaStore, NewDrop, RecipientRecord,
    StoredDirectory,
};

/// The schema, one migration per released change. Never edit a released
/// migration: append a new one.
const MIGRATIONS: &[M<'static>] = &[M::up(
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
)];

const DROP_COLUMNS: &str = "id, sender, sender_member, agreement, created, expires, state, \
     upload_sha256, upload_len, sha256, size, committed, manifest";

/// The SQLite metadata store.
pub struct SqliteMetaStore {
    conn: Mutex<Connection>,
}

impl std::fmt::Debug for SqliteMetaStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteMetaStore")
    }
}

impl SqliteMetaStore {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Self, MetaError> {
        Self::setup(Connection::open(path)?)
    }

    /// An in-memory store, for tests.
    pub fn open_in_memory() -> Result<Self, MetaError> {
        Self::setup(Connection::open_in_memory()?)
    }

    fn setup(mut conn: Connection) -> Result<Self, MetaError> {
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") && !mode.eq_ignore_ascii_case("memory") {
            return Err(MetaError::Corrupt(format!("the database refused WAL mode (journal mode {mode:?})")));
        }
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        Migrations::from_slice(MIGRATIONS).to_latest(&mut conn)?;
        Ok(Self { conn: Mutex::new(conn) })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent (an
        // unfinished transaction rolls back when dropped), so carry on.
        self.conn.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn to_i64(n: u64, what: &str) -> Result<i64, MetaError> {
    i64::try_from(n).map_err(|_| MetaError::Corrupt(format!("{what} {n} is too large to store")))
}

fn to_u64(n: i64, what: &str) -> Result<u64, MetaError> {
    u64::try_from(n).map_err(|_| MetaError::Corrupt(format!("stored {what} {n} is negative")))
}

fn parse<T: std::str::FromStr>(s: String, what: &str) -> Result<T, MetaError>
where
    T::Err: std::fmt::Display,
{
    s.parse().map_err(|e| MetaError::Corrupt(format!("stored {what}: {e}")))
}

fn state_from_str(s: &str) -> Result<DropState, MetaError> {
    match s {
        "open" => Ok(DropState::Open),
        "committed" => Ok(DropState::Committed),
        "delivered" => Ok(DropState::Delivered),
        other => Err(MetaError::Corrupt(format!("unknown drop state {other:?}"))),
    }
}

fn digest(sha256: Option<String>, len: Option<i64>, what: &str) -> Result<Option<ContentDigest>, MetaError> {
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
);

fn raw_drop(r: &Row<'_>) -> rusqlite::Result<RawDrop> {
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
    ))
}

fn drop_from_raw(raw: RawDrop, recipients: Vec<RecipientRecord>) -> Result<DropRecord, MetaError> {
    let (id, sender, member, agreement, created, expires, state, up_sha, up_len, sha, size, committed, manifest) = raw;
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
        recipients,
    })
}

type RawRecipient = (String, Option<i64>, Option<i64>, Option<String>, Option<String>);

fn recipients_of(conn: &Connection, id: &str) -> Result<Vec<RecipientRecord>, MetaError> {
    let mut stmt = conn.prepare_cached(
        "SELECT party, fetched, acknowledged, ack_member, receipt FROM drop_recipients
         WHERE drop_id = ?1 ORDER BY rowid",
    )?;
    let raws = stmt
        .query_map([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?
        .collect::<Result<Vec<RawRecipient>, _>>()?;
    raws.into_iter()
        .map(|(party, fetched, acknowledged, member, receipt)| {
            Ok(RecipientRecord {
                party: parse(party, "recipient party")?,
                fetched,
                acknowledged,
                ack_member: member.map(|m| parse(m, "acknowledging member")).transpose()?,
                receipt,
            })
        })
        .collect()
}

fn load_drops(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> Result<Vec<DropRecord>, MetaError> {
    let raws = conn.prepare_cached(sql)?.query_map(params, raw_drop)?.collect::<Result<Vec<_>, _>>()?;
    raws.into_iter()
        .map(|raw| {
            let recipients = recipients_of(conn, &raw.0)?;
            drop_from_raw(raw, recipients)
        })
        .collect()
}

fn in_transaction<T>(
    conn: &mut Connection,
    f: impl FnOnce(&Transaction<'_>) -> Result<T, MetaError>,
) -> Result<T, MetaError> {
    let tx = conn.transaction()?;
    let out = f(&tx)?;
    tx.commit()?;
    Ok(out)
}

impl MetaStore for SqliteMetaStore {
    fn setting(&self, key: &str) -> Result<Option<String>, MetaError> {
        Ok(self.conn().query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| r.get(0)).optional()?)
    }

    fn set_setting(&self, key: &str, value: &str) -> Result<(), MetaError> {
        self.conn().execute(
            "INSERT INTO settings (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [key, value],
        )?;
        Ok(())
    }

    fn current_directory(&self) -> Result<Option<StoredDirectory>, MetaError> {
        let row = self
            .conn()
            .query_row(
                "SELECT serial, note, sha256, accepted_at FROM directories ORDER BY serial DESC LIMIT 1",
                [],
                |r| Ok((r.get::<_, i64>(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?;
        row.map(|(serial, note, sha256, accepted_at)| {
            Ok(StoredDirectory { serial: to_u64(serial, "directory serial")?, note, sha256, accepted_at })
        })
        .transpose()
    }

    fn insert_directory(&self, dir: &StoredDirectory) -> Result<(), MetaError> {
        self.conn().execute(
            "INSERT INTO directories (serial, note, sha256, accepted_at) VALUES (?1, ?2, ?3, ?4)",
            params![to_i64(dir.serial, "directory serial")?, dir.note, dir.sha256, dir.accepted_at],
        )?;
        Ok(())
    }

    fn create_drop(&self, drop: &NewDrop) -> Result<(), MetaError> {
        in_transaction(&mut self.conn(), |tx| {
            tx.execute(
                "INSERT INTO drops (id, sender, sender_member, agreement, created, expires, state)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'open')",
                params![
                    drop.id.as_str(),
                    drop.sender.as_str(),
                    drop.sender_member.as_str(),
                    drop.agreement,
                    drop.created,
                    drop.expires
                ],
            )?;
            let mut stmt = tx.prepare_cached("INSERT INTO drop_recipients (drop_id, party) VALUES (?1, ?2)")?;
            for party in &drop.recipients {
                stmt.execute([drop.id.as_str(), party.as_str()])?;
            }
            Ok(())
        })
    }

    fn drop_record(&self, id: &DropId) -> Result<Option<DropRecord>, MetaError> {
        let conn = self.conn();
        let sql = format!("SELECT {DROP_COLUMNS} FROM drops WHERE id = ?1");
        Ok(load_drops(&conn, &sql, [id.as_str()])?.pop())
    }

    fn drop_state(&self, id: &DropId) -> Result<Option<DropState>, MetaError> {
        let state: Option<String> =
            self.conn().query_row("SELECT state FROM drops WHERE id = ?1", [id.as_str()], |r| r.get(0)).optional()?;
        state.map(|s| state_from_str(&s)).transpose()
    }

    fn set_upload(&self, id: &DropId, upload: Option<&ContentDigest>) -> Result<bool, MetaError> {
        let (sha, len) = match upload {
            Some(d) => (Some(d.sha256.as_str()), Some(to_i64(d.len, "upload length")?)),
            None => (None, None),
        };
        let n = self.conn().execute(
            "UPDATE drops SET upload_sha256 = ?2, upload_len = ?3 WHERE id = ?1 AND state = 'open'",
            params![id.as_str(), sha, len],
        )?;
        Ok(n == 1)
    }

    fn commit_drop(&self, id: &DropId, commit: &CommitRecord) -> Result<bool, MetaError> {
        let len = to_i64(commit.content.len, "content length")?;
        in_transaction(&mut self.conn(), |tx| {
            let n = tx.execute(
                "UPDATE drops SET state = 'committed', committed = ?2, manifest = ?3, sha256 = ?4, size = ?5,
                     sender_member = ?6, upload_sha256 = NULL, upload_len = NULL
                 WHERE id = ?1 AND state = 'open' AND upload_sha256 = ?4 AND upload_len = ?5",
                params![
                    id.as_str(),
                    commit.committed,
                    commit.manifest,
                    commit.content.sha256,
                    len,
                    commit.sender_member.as_str()
                ],
            )?;
            Ok(n == 1)
        })
    }

    fn mark_fetched(&self, id: &DropId, party: &PartyId, at: i64) -> Result<(), MetaError> {
        self.conn().execute(
            "UPDATE drop_recipients SET fetched = ?3 WHERE drop_id = ?1 AND party = ?2 AND fetched IS NULL",
            params![id.as_str(), party.as_str(), at],
        )?;
        Ok(())
    }

    fn acknowledge(&self, id: &DropId, ack: &AckRecord) -> Result<AckOutcome, MetaError> {
        in_transaction(&mut self.conn(), |tx| {
            let state: Option<String> =
                tx.query_row("SELECT state FROM drops WHERE id = ?1", [id.as_str()], |r| r.get(0)).optional()?;
            if state.as_deref() != Some("committed") {
                return Ok(AckOutcome::NotCommitted);
            }
            let acked: Option<Option<i64>> = tx
                .query_row(
                    "SELECT acknowledged FROM drop_recipients WHERE drop_id = ?1 AND party = ?2",
                    [id.as_str(), ack.party.as_str()],
                    |r| r.get(0),
                )
                .optional()?;
            match acked {
                None => return Ok(AckOutcome::NotCommitted),
                Some(Some(_)) => return Ok(AckOutcome::AlreadyAcknowledged),
                Some(None) => {}
            }
            tx.execute(
                "UPDATE drop_recipients SET acknowledged = ?3, ack_member = ?4, receipt = ?5
                 WHERE drop_id = ?1 AND party = ?2 AND acknowledged IS NULL",
                params![id.as_str(), ack.party.as_str(), ack.at, ack.member.as_str(), ack.receipt],
            )?;
            let waiting: i64 = tx.query_row(
                "SELECT count(*) FROM drop_recipients WHERE drop_id = ?1 AND acknowledged IS NULL",
                [id.as_str()],
                |r| r.get(0),
            )?;
            let delivered = waiting == 0;
            if delivered {
                tx.execute("UPDATE drops SET state = 'delivered' WHERE id = ?1", [id.as_str()])?;
            }
            Ok(AckOutcome::Recorded { delivered })
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

    fn sent(&self, party: &PartyId, id: Option<&DropId>) -> Result<Vec<DropRecord>, MetaError> {
        let sql = format!(
            "SELECT {DROP_COLUMNS} FROM drops WHERE sender = ?1 AND (?2 IS NULL OR id = ?2)
             ORDER BY created DESC, rowid DESC"
        );
        load_drops(&self.conn(), &sql, params![party.as_str(), id.map(DropId::as_str)])
    }

    fn insert_nonce(&self, key: &str, nonce: &str, seen: i64) -> Result<bool, MetaError> {
        let n = self.conn().execute(
            "INSERT INTO nonces (key, nonce, seen) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
            params![key, nonce, seen],
        )?;
        Ok(n == 1)
    }

    fn purge_nonces(&self, before: i64) -> Result<usize, MetaError> {
        Ok(self.conn().execute("DELETE FROM nonces WHERE seen < ?1", [before])?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> SqliteMetaStore {
        SqliteMetaStore::open_in_memory().unwrap()
    }

    fn party(s: &str) -> PartyId {
        s.parse().unwrap()
    }

    fn new_drop(recipients: &[&str]) -> NewDrop {
        NewDrop {
            id: DropId::random(),
            sender: party("camden"),
            sender_member: "data-team".parse().unwrap(),
            agreement: "inner-fsm".into(),
            created: 1000,
            expires: 5000,
            recipients: recipients.iter().map(|p| party(p)).collect(),
        }
    }

    fn digest(s: &str, len: u64) -> ContentDigest {
        ContentDigest { sha256: s.repeat(64), len }
    }

    fn commit(store: &SqliteMetaStore, d: &NewDrop) {
        assert!(store.set_upload(&d.id, Some(&digest("a", 10))).unwrap());
        let c = CommitRecord {
            sender_member: "data-team".parse().unwrap(),
            manifest: "m".into(),
            content: digest("a", 10),
            committed: 2000,
        };
        assert!(store.commit_drop(&d.id, &c).unwrap());
    }

    fn ack(p: &str) -> AckRecord {
        AckRecord { party: party(p), member: "data-team".parse().unwrap(), receipt: "r".into(), at: 3000 }
    }

    #[test]
    fn settings_and_directories() {
        let s = store();
        assert_eq!(s.setting("origin").unwrap(), None);
        s.set_setting("origin", "a").unwrap();
        s.set_setting("origin", "b").unwrap();
        assert_eq!(s.setting("origin").unwrap().as_deref(), Some("b"));
        assert_eq!(s.current_directory().unwrap(), None);
        let d1 = StoredDirectory { serial: 1, note: "n1".into(), sha256: "h1".into(), accepted_at: 5 };
        let d2 = StoredDirectory { serial: 2, note: "n2".into(), sha256: "h2".into(), accepted_at: 6 };
        s.insert_directory(&d2).unwrap();
        s.insert_directory(&d1).unwrap();
        assert_eq!(s.current_directory().unwrap(), Some(d2.clone()));
        assert!(s.insert_directory(&d2).is_err(), "a serial is stored once");
    }

    #[test]
    fn commit_requires_open_and_matching_upload() {
        let s = store();
        let d = new_drop(&["islington"]);
        s.create_drop(&d).unwrap();
        let rec = s.drop_record(&d.id).unwrap().unwrap();
        assert_eq!(rec.state, DropState::Open);
        assert_eq!(rec.recipients.len(), 1);
        let c = CommitRecord {
            sender_member: "other".parse().unwrap(),
            manifest: "m".into(),
            content: digest("a", 10),
            committed: 2000,
        };
        assert!(!s.commit_drop(&d.id, &c).unwrap(), "no upload yet");
        s.set_upload(&d.id, Some(&digest("b", 10))).unwrap();
        assert!(!s.commit_drop(&d.id, &c).unwrap(), "upload changed");
        s.set_upload(&d.id, Some(&digest("a", 10))).unwrap();
        assert!(s.commit_drop(&d.id, &c).unwrap());
        let rec = s.drop_record(&d.id).unwrap().unwrap();
        assert_eq!(rec.state, DropState::Committed);
        assert_eq!(rec.content, Some(digest("a", 10)));
        assert_eq!(rec.upload, None);
        assert_eq!(rec.committed, Some(2000));
        assert_eq!(rec.sender_member.as_str(), "other");
        assert!(!s.commit_drop(&d.id, &c).unwrap(), "already committed");
        assert!(!s.set_upload(&d.id, Some(&digest("c", 1))).unwrap(), "no upload after commit");
    }

    #[test]
    fn ack_transaction_delivers_after_the_last_party() {
        let s = store();
        let d = new_drop(&["islington", "hackney"]);
        s.create_drop(&d).unwrap();
        assert_eq!(s.acknowledge(&d.id, &ack("islington")).unwrap(), AckOutcome::NotCommitted);
        commit(&s, &d);
        assert_eq!(s.acknowledge(&d.id, &ack("barnet")).unwrap(), AckOutcome::NotCommitted, "not a recipient");
        assert_eq!(s.acknowledge(&d.id, &ack("islington")).unwrap(), AckOutcome::Recorded { delivered: false });
        assert_eq!(s.acknowledge(&d.id, &ack("islington")).unwrap(), AckOutcome::AlreadyAcknowledged);
        assert_eq!(s.drop_state(&d.id).unwrap(), Some(DropState::Committed));
        assert_eq!(s.acknowledge(&d.id, &ack("hackney")).unwrap(), AckOutcome::Recorded { delivered: true });
        let rec = s.drop_record(&d.id).unwrap().unwrap();
        assert_eq!(rec.state, DropState::Delivered);
        let r = rec.recipient(&party("islington")).unwrap();
        assert_eq!(r.acknowledged, Some(3000));
        assert_eq!(r.receipt.as_deref(), Some("r"));
        assert_eq!(r.ack_member.as_ref().map(|m| m.as_str()), Some("data-team"));
    }

    #[test]
    fn inbox_and_sent() {
        let s = store();
        let a = new_drop(&["islington"]);
        let mut b = new_drop(&["islington", "hackney"]);
        b.created = 1500;
        let open = new_drop(&["islington"]);
        let mut expired = new_drop(&["islington"]);
        expired.expires = 2500;
        for d in [&a, &b, &open, &expired] {
            s.create_drop(d).unwrap();
        }
        commit(&s, &b);
        commit(&s, &a);
        commit(&s, &expired);
        let inbox: Vec<DropId> = s.inbox(&party("islington"), 3000).unwrap().into_iter().map(|d| d.id).collect();
        assert_eq!(inbox.len(), 2);
        assert!(inbox.contains(&a.id) && inbox.contains(&b.id), "open and expired drops are not listed");
        assert_eq!(s.inbox(&party("hackney"), 3000).unwrap().len(), 1);
        assert_eq!(s.inbox(&party("barnet"), 3000).unwrap().len(), 0);
        s.acknowledge(&a.id, &ack("islington")).unwrap();
        assert_eq!(s.inbox(&party("islington"), 3000).unwrap().len(), 1, "acknowledged drops leave the inbox");

        s.mark_fetched(&b.id, &party("hackney"), 2100).unwrap();
        s.mark_fetched(&b.id, &party("hackney"), 2200).unwrap();
        let sent = s.sent(&party("camden"), None).unwrap();
        assert_eq!(sent.len(), 4);
        assert_eq!(sent[0].id, b.id, "newest first");
        let one = s.sent(&party("camden"), Some(&b.id)).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].recipient(&party("hackney")).unwrap().fetched, Some(2100), "first fetch time kept");
        assert_eq!(one[0].recipients[0].party.as_str(), "islington", "recipients keep the sender's order");
        assert!(s.sent(&party("islington"), Some(&b.id)).unwrap().is_empty());
    }

    #[test]
    fn nonces_are_single_use_and_purged() {
        let s = store();
        assert!(s.insert_nonce("camden/a", "n1", 100).unwrap());
        assert!(!s.insert_nonce("camden/a", "n1", 101).unwrap());
        assert!(s.insert_nonce("camden/b", "n1", 101).unwrap(), "nonces are per key");
        assert_eq!(s.purge_nonces(101).unwrap(), 1);
        assert!(s.insert_nonce("camden/a", "n1", 102).unwrap());
    }

    #[test]
    fn reopening_a_file_keeps_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.db");
        let d = new_drop(&["islington"]);
        {
            let s = SqliteMetaStore::open(&path).unwrap();
            s.create_drop(&d).unwrap();
        }
        let s = SqliteMetaStore::open(&path).unwrap();
        assert_eq!(s.drop_state(&d.id).unwrap(), Some(DropState::Open));
    }
}
