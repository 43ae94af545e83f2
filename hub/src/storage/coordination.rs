//! What hub instances sharing one set of stores agree on beyond the
//! stores' own conditional updates: whose turn it is at the transfer log,
//! who holds a drop's lock (see [`crate::locks`]), and which instance runs
//! the periodic work (the sweeper, forgetting old nonces, cleaning up
//! after a crash).
//!
//! On the embedded stores one process has the data directory to itself
//! (see [`crate::data_lock`]), so [`Exclusive`] grants both at once and
//! costs nothing. On PostgreSQL every instance asks the database
//! ([`crate::storage::postgres`]'s advisory locks), so a turn or the lead
//! held by an instance that dies passes on when its session ends.

use async_trait::async_trait;
use jiff::Timestamp;
use sealdrop_proto::ids::DropId;

use super::meta::MetaError;

/// Something held among the instances (a turn, a drop's lock), given up
/// when this is dropped.
pub struct Held {
    /// Gives it up when dropped; `None` when nothing is held outside this
    /// process (the embedded stores).
    _release: Option<Box<dyn Send + Sync>>,
}

impl Held {
    /// Nothing held outside this process.
    pub fn locally() -> Self {
        Self { _release: None }
    }

    /// Held until `release` is dropped.
    pub fn until_dropped(release: Box<dyn Send + Sync>) -> Self {
        Self { _release: Some(release) }
    }
}

/// An instance's turn at the log among every instance on the stores: held
/// until it is dropped (an append ends it once its transaction commits).
pub struct SharedTurn {
    /// The time of the log's last entry, read once the turn was taken, so
    /// the entries made in this turn are given no earlier time even when
    /// this instance's clock is behind the one that appended last; `None`
    /// when no other instance appends (or the log is empty).
    pub last_entry_time: Option<Timestamp>,
    /// The turn itself.
    pub held: Held,
}

/// Turns at the log and the lead of periodic work, across every instance
/// on the same stores.
#[async_trait]
pub trait Coordination: Send + Sync {
    /// Whether other processes may be using the same stores right now. When
    /// they may, start-up cleanup cannot assume that a drop's files are
    /// at rest (another instance may be between promoting a blob and
    /// committing its drop).
    fn shared(&self) -> bool;
    /// Waits for this instance's turn at the log (after its own requests'
    /// local turn, see [`crate::sequencer`]).
    async fn log_turn(&self) -> Result<SharedTurn, MetaError>;
    /// Whether this instance leads the periodic work now, taking the lead
    /// if no live instance holds it. Cheap when it already leads.
    async fn lead(&self) -> Result<bool, MetaError>;
    /// Takes drop `id`'s lock among the instances (after this instance's
    /// own, see [`crate::locks`]), waiting for another instance to give it up.
    async fn lock_drop(&self, id: &DropId) -> Result<Held, MetaError>;
    /// Takes drop `id`'s lock among the instances if none holds it.
    async fn try_lock_drop(&self, id: &DropId) -> Result<Option<Held>, MetaError>;
}

/// The embedded stores' coordination: one process, always its turn, always
/// the lead.
#[derive(Debug, Default, Clone, Copy)]
pub struct Exclusive;

#[async_trait]
impl Coordination for Exclusive {
    fn shared(&self) -> bool {
        false
    }

    async fn log_turn(&self) -> Result<SharedTurn, MetaError> {
        Ok(SharedTurn { last_entry_time: None, held: Held::locally() })
    }

    async fn lead(&self) -> Result<bool, MetaError> {
        Ok(true)
    }

    async fn lock_drop(&self, _id: &DropId) -> Result<Held, MetaError> {
        Ok(Held::locally())
    }

    async fn try_lock_drop(&self, _id: &DropId) -> Result<Option<Held>, MetaError> {
        Ok(Some(Held::locally()))
    }
}
