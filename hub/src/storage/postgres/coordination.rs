//! [`Coordination`] on PostgreSQL: session advisory locks, each held on a
//! connection of its own (not the pool's, whose connections go back to the
//! pool between statements), so what an instance holds lasts exactly as
//! long as its session: when the process dies, or its connection breaks,
//! PostgreSQL ends the session and the lock passes to the next instance
//! that asks.
//!
//! - The log's turn ([`LOG_TURN_LOCK`]): an instance takes it (after its
//!   own sequencer's turn, so at most one connection per instance waits)
//!   before it reads the time for new entries, and reads the last entry's
//!   time under it; the append it then makes commits before the turn is
//!   given up. So entries' times never go back across instances, whatever
//!   their clocks say (see [`super::log`] for the check under the row lock).
//! - A drop's lock ([`DROP_LOCK_CLASS`], see [`crate::locks`]): every lock
//!   an instance holds is held on one session, taken with
//!   `pg_try_advisory_lock` and tried again after a short sleep while
//!   another instance holds it (waiting in PostgreSQL would stop the
//!   session for every other drop).
//! - The lead of periodic work ([`LEAD_LOCK`]): taken with
//!   `pg_try_advisory_lock`, never waited for, and kept while the
//!   connection lives. Two instances may briefly both believe they lead
//!   (the old leader's connection broke and it has not noticed yet); the
//!   work they then repeat is made of conditional updates, so that only
//!   costs a little.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use sealdrop_log::entry::LogEntry;
use sealdrop_proto::ids::DropId;
use sha2::Digest as _;
use tokio::sync::{Mutex, OwnedMutexGuard};
use tokio_postgres::{Client, Statement};

use super::PgMetaStore;
use crate::storage::coordination::{Coordination, Held, SharedTurn};
use crate::storage::meta::MetaError;

/// The advisory lock key of the log's turn (any constant no other
/// application on the database uses; the migration lock is `..01`).
const LOG_TURN_LOCK: i64 = 0x5ea1_d509_0000_0002;
/// The advisory lock key of the lead of periodic work.
const LEAD_LOCK: i64 = 0x5ea1_d509_0000_0003;
/// The class of drops' advisory locks (their two-key form, a space apart
/// from the one-key locks above); the second key is from the drop's id.
const DROP_LOCK_CLASS: i32 = 0x5ea1_d509;
/// How long, at most, a wait for another instance's drop lock sleeps
/// between tries (it starts at a hundredth of a second and doubles).
const DROP_LOCK_POLL_MAX: Duration = Duration::from_millis(250);

/// The dedicated sessions of one store (one instance).
pub(super) struct Sessions {
    /// Where to open them.
    config: tokio_postgres::Config,
    /// The session that takes the log's turn, with the statement reading
    /// the last entry; `None` until first used or after it failed.
    turn: Arc<Mutex<Option<TurnSession>>>,
    /// The session holding (or trying for) the lead.
    lead: Mutex<Option<LeadSession>>,
    /// The session holding every drop lock this instance holds (one
    /// session holds any number; PostgreSQL counts a key taken twice).
    drops: Mutex<Option<Arc<Client>>>,
}

impl Sessions {
    pub(super) fn new(config: tokio_postgres::Config) -> Self {
        Self { config, turn: Arc::default(), lead: Mutex::default(), drops: Mutex::default() }
    }

    async fn connect(&self) -> Result<Client, MetaError> {
        let (client, connection) = self.config.connect(tokio_postgres::NoTls).await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(error = %e, "a PostgreSQL session of the hub's coordination ended");
            }
        });
        Ok(client)
    }
}

struct TurnSession {
    client: Client,
    last_entry: Statement,
}

struct LeadSession {
    client: Client,
    /// Whether this session holds [`LEAD_LOCK`].
    leading: bool,
}

/// Gives the log's turn up when dropped: unlocks on the turn's session,
/// or, when that cannot be done, closes the session, which unlocks too.
struct TurnRelease {
    session: Option<OwnedMutexGuard<Option<TurnSession>>>,
}

impl Drop for TurnRelease {
    fn drop(&mut self) {
        let Some(mut session) = self.session.take() else { return };
        match tokio::runtime::Handle::try_current() {
            // The next turn waits for the session's mutex, which is let go
            // only once the unlock is done.
            Ok(runtime) => {
                runtime.spawn(async move {
                    let unlocked = match session.as_ref() {
                        Some(s) => s.client.batch_execute(&format!("SELECT pg_advisory_unlock({LOG_TURN_LOCK})")).await,
                        None => Ok(()),
                    };
                    if unlocked.is_err() {
                        *session = None;
                    }
                });
            }
            Err(_) => *session = None,
        }
    }
}

/// Gives a drop's lock up when dropped. Should the session have ended,
/// PostgreSQL gave the lock up already.
struct DropRelease {
    client: Arc<Client>,
    key: i32,
}

impl Drop for DropRelease {
    fn drop(&mut self) {
        let (client, key) = (Arc::clone(&self.client), self.key);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let unlock = format!("SELECT pg_advisory_unlock({DROP_LOCK_CLASS}, {key})");
                if let Err(e) = client.batch_execute(&unlock).await {
                    tracing::warn!(error = %e, "could not give a drop's lock up; it goes with the session");
                }
            });
        }
    }
}

/// The second key of drop `id`'s advisory lock: 32 bits of a hash of its
/// id (two drops sharing one only wait for each other).
fn drop_lock_key(id: &DropId) -> i32 {
    let digest = sha2::Sha256::digest(id.as_str().as_bytes());
    i32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

impl PgMetaStore {
    /// The session of this instance's drop locks, opened again if it ended
    /// (and with it every lock it held).
    async fn drop_session(&self) -> Result<Arc<Client>, MetaError> {
        let mut slot = self.sessions.drops.lock().await;
        if let Some(client) = slot.as_ref()
            && !client.is_closed()
        {
            return Ok(Arc::clone(client));
        }
        let client = Arc::new(self.sessions.connect().await?);
        *slot = Some(Arc::clone(&client));
        Ok(client)
    }
}

/// The time of a stored entry, if it is an entry this hub makes.
pub(super) fn entry_time(data: &[u8]) -> Option<Timestamp> {
    LogEntry::from_bytes(data).ok()?.time()
}

#[async_trait]
impl Coordination for PgMetaStore {
    fn shared(&self) -> bool {
        true
    }

    async fn log_turn(&self) -> Result<SharedTurn, MetaError> {
        let mut slot = Arc::clone(&self.sessions.turn).lock_owned().await;
        if slot.as_ref().is_none_or(|s| s.client.is_closed()) {
            let client = self.sessions.connect().await?;
            let last_entry = client.prepare("SELECT data FROM log_entries ORDER BY idx DESC LIMIT 1").await?;
            *slot = Some(TurnSession { client, last_entry });
        }
        let session = slot.as_ref().expect("connected above");
        let taken = async {
            session.client.batch_execute(&format!("SELECT pg_advisory_lock({LOG_TURN_LOCK})")).await?;
            // The previous holder's append committed before it unlocked.
            let last = session.client.query_opt(&session.last_entry, &[]).await?;
            Ok::<_, MetaError>(last.and_then(|row| entry_time(row.get(0))))
        }
        .await;
        match taken {
            Ok(last_entry_time) => Ok(SharedTurn {
                last_entry_time,
                held: Held::until_dropped(Box::new(TurnRelease { session: Some(slot) })),
            }),
            Err(e) => {
                // Closing the session gives up the lock if it was taken.
                *slot = None;
                Err(e)
            }
        }
    }

    async fn lead(&self) -> Result<bool, MetaError> {
        let mut slot = self.sessions.lead.lock().await;
        if slot.as_ref().is_none_or(|s| s.client.is_closed()) {
            *slot = Some(LeadSession { client: self.sessions.connect().await?, leading: false });
        }
        let session = slot.as_ref().expect("connected above");
        let was_leading = session.leading;
        let checked = if was_leading {
            // One round trip proves the session, and so the lock, alive.
            session.client.batch_execute("SELECT 1").await.map(|()| true)
        } else {
            let try_lock = format!("SELECT pg_try_advisory_lock({LEAD_LOCK})");
            session.client.query_one(&try_lock, &[]).await.map(|row| row.get::<_, bool>(0))
        };
        match checked {
            Ok(leading) => {
                if leading && !was_leading {
                    tracing::info!("this instance now leads the periodic work (sweeps, clean-up)");
                }
                if let Some(session) = slot.as_mut() {
                    session.leading = leading;
                }
                Ok(leading)
            }
            Err(e) => {
                // Closing the session gives up the lock if it held it.
                *slot = None;
                Err(e.into())
            }
        }
    }

    async fn lock_drop(&self, id: &DropId) -> Result<Held, MetaError> {
        let mut wait = Duration::from_millis(10);
        loop {
            if let Some(held) = self.try_lock_drop(id).await? {
                return Ok(held);
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(DROP_LOCK_POLL_MAX);
        }
    }

    async fn try_lock_drop(&self, id: &DropId) -> Result<Option<Held>, MetaError> {
        let client = self.drop_session().await?;
        let key = drop_lock_key(id);
        let try_lock = format!("SELECT pg_try_advisory_lock({DROP_LOCK_CLASS}, {key})");
        let taken: bool = client.query_one(&try_lock, &[]).await?.get(0);
        Ok(taken.then(|| Held::until_dropped(Box::new(DropRelease { client, key }))))
    }
}
