//! sealdrop's wire protocol, shared by the hub and the client.
//!
//! Pure: no files or sockets. Which module to use when:
//! - [`ids`]: validated party ids, member names and drop ids.
//! - [`keys`]: member key pairs (age + Ed25519), public key cards, and
//!   Ed25519 keys in C2SP signed-note text forms; strict verification.
//! - [`note`]: signing and opening typed documents as C2SP signed notes.
//! - [`directory`]: the coordinator-signed directory of parties, keys and agreements.
//! - [`drop`](mod@drop): the sender's manifest and the recipient's receipt.
//! - [`policy`]: whether an agreement lets a drop move: membership, in
//!   force, expiry limits, clock skew and revocation cut-offs, decided alike
//!   by the hub, the client and the audit.
//! - [`padding`]: the size classes a drop's plaintext is padded to.
//! - [`request`]: signing and verifying HTTP requests to the hub.
//! - [`age_header`]: the recipient stanzas a drop's ciphertext may hold.
//! - [`api`]: the hub's routes' bodies.
//! - [`error_code`]: every stable error code of the hub and the client,
//!   with its HTTP status and exit status.
//! - [`clock`]: the time source tests control.
#![forbid(unsafe_code)]

pub mod age_header;
pub mod age_keys;
pub mod api;
pub mod clock;
pub mod directory;
pub mod drop;
pub mod error_code;
pub mod exit_kind;
pub mod ids;
pub mod keys;
pub mod note;
pub mod padding;
pub mod policy;
pub mod put_drop;
pub mod request;

pub use jiff::Timestamp;
