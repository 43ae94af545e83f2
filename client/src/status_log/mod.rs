//! What the hub's signed transfer log backs of what the hub says about a
//! sender's drops (`sealdrop status`).
//!
//! `GET /v1/sent` is the hub's word: a hub that edits its database could
//! say "delivered, acknowledged by data-team" for a drop it deleted. So for
//! every fact it states (committed, fetched by a party, acknowledged by a
//! party, deleted and why) it names the log entry that records it, and the
//! client believes the fact only when it proves that entry is in the log
//! under the newest checkpoint it verified (signature, consistency with
//! every checkpoint it verified before, inclusion) and the entry says what
//! the hub claims: the right drop and party, a receipt signed by a key of
//! the recipient party that vouches for the entry's time
//! ([`sealdrop_log::policy::manifest_keys`]), a deletion statement signed
//! with the log key for the right reason. The times shown are the log's.
//!
//! Proved entries are kept as [`Fact`]s in `<state>/log/proven.json`, so a
//! repeated `status` asks the hub only for entries it has not proved yet
//! (two requests each: the entry and its inclusion proof); a sender's own
//! commits are taken from its journal (it verified them when it sent).
//! The signing key of each fact is kept and checked again against the
//! current directory on every use, so a later revocation is applied.

mod backing;
mod evidence;
mod prover;

pub use backing::{Backed, BackedRecipient, back};
pub use evidence::{Missing, keep_evidence, missing};
pub use prover::{Fact, Prover};
