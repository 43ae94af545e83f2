//! What hub instances sharing one set of stores agree on beyond the
//! stores' own conditional updates: whose turn it is at the transfer log,
//! and which instance runs the periodic work (the sweeper, forgetting old
//! nonces, cleaning up after a crash).
//!
//! On the embedded stores one process has the data directory to itself
//! (see [`crate::data_lock`]), so [`Exclusive`] grants both at once and
//! costs nothing. On PostgreSQL every instance asks the database
//! ([`crate::storage::postgres`]'s advisory locks), so a turn or the lead
//! held by an instance that dies passes on when its session ends.

use async_trait::async_trait;
use jiff::Timestamp;

use super::meta::MetaError;

/// An instance's turn at the log among every instance on the stores: held
/// until it is dropped (an append ends it once its transaction commits).
pub struct SharedTurn {
    /// The time of the log's last entry, read once the turn was taken, so
    /// the entries made in this turn are given no earlier time even when
    /// this instance's clock is behind the one that appended last; `None`
    /// when no other instance appends (or the log is empty).
    pub last_entry_time: Option<Timestamp>,
    /// Gives the turn up when dropped.
    _release: Option<Box<dyn Send + Sync>>,
}

impl SharedTurn {
    /// A turn nobody else takes: the only process on its stores.
    pub fn exclusive() -> Self {
        Self { last_entry_time: None, _release: None }
    }

    /// A turn that `release`, when dropped, gives up.
    pub fn held(last_entry_time: Option<Timestamp>, release: Box<dyn Send + Sync>) -> Self {
        Self { last_entry_time, _release: Some(release) }
    }
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
        Ok(SharedTurn::exclusive())
    }

    async fn lead(&self) -> Result<bool, MetaError> {
        Ok(true)
    }
}
