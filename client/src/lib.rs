//! sealdrop's client: the library behind the `sealdrop` command.
//!
//! Layers, each using only those below it (`tests/tests/module_graph.rs` checks
//! that no modules import each other in a cycle): transport ([`transport`], the only
//! code that knows the hub's paths) -> local state under the state dir
//! ([`trust`], [`logcheck`], [`journal`], [`outgoing`], [`staging`],
//! [`fetch_lock`], [`refused`], [`fetched_before`]), which takes what it
//! needs as arguments -> session ([`context`]) -> operations ([`send`] and
//! [`split`], both through [`deliver`]; [`fetch`], [`recall`], [`status`],
//! [`audit`]) -> [`cli`].
//!
//! Which module to use when:
//! - [`send`] and [`fetch`]: the streaming encrypt/upload and download/decrypt pipelines.
//! - [`trust`]: verifying the hub's directory against the pinned authority key and local state.
//! - [`archive`]: the tar inside each drop, with safe extraction; [`padding`]: its size class; [`staging`]: the private
//!   folder a drop is unpacked into, and cleaning up after a fetch that did not finish.
//! - [`names`]: which file names are refused, and how every untrusted name is shown.
//! - [`refused`]: drops refused for what their sender signed, or undeliverable, not downloaded again.
//! - [`undeliverable`]: drops encrypted only to keys the recipient party no longer has.
//! - [`fetch_lock`]: one fetch per state dir at a time; [`fetched_before`]: where a drop fetched before went.
//! - [`formulas`]: spreadsheet formulas in received CSV files (warned about, neutralised in merges).
//! - [`inbox`], [`status`] and [`recall`]: the drops waiting for you, the sender's view of its
//!   drops, and taking one back.
//! - [`journal`]: the local, append-only record of what this client sent and received.
//! - [`deliver`]: opening a drop and committing its signed manifest, for `send` and `split`, or
//!   a small drop in one request ([`send_small`] decides when);
//!   [`upload`]: streaming a new drop's ciphertext; [`outgoing`]: sends cut off, kept to continue.
//! - [`merge`]: combining fetched CSV parts into one file (`fetch --merge-csv`).
//! - [`notify`]: the `watch` service's notifications (a command, a chat webhook, e-mail), metadata only.
//! - [`transport`]: the hub's endpoints as typed, signed requests; [`hub_url`]: which hub URLs are accepted.
//! - [`context`]: resolved settings, key loading.
//! - [`cli`]: argument parsing and reporting only; [`usage`]: how a command line that does not parse is
//!   reported; [`stdout`]: standard output, and ending quietly when its reader closed it.
#![forbid(unsafe_code)]

pub mod age_keys;
pub mod archive;
pub mod audit;
pub mod audit_cmd;
pub mod cli;
pub mod config;
pub mod context;
pub mod deliver;
pub mod directory_cmd;
pub mod directory_setup;
pub mod drop_behind;
pub mod encoding;
pub mod error;
pub mod fetch;
pub mod fetch_lock;
pub mod fetched_before;
pub mod formulas;
pub mod fsutil;
pub mod hub_url;
pub mod inbox;
pub mod interrupt;
pub mod journal;
pub mod key_protection;
pub mod logcheck;
pub mod merge;
pub mod names;
pub mod notify;
pub mod outgoing;
pub mod padding;
pub mod passphrase;
pub mod pipe;
pub mod plugin_key;
pub mod preflight;
pub mod recall;
pub mod refused;
pub mod secret_out;
pub mod send;
pub mod send_small;
pub mod session_setup;
pub mod split;
pub mod staging;
pub mod status;
pub mod status_log;
pub mod stdout;
pub mod suggest;
pub mod transport;
pub mod trust;
pub mod undeliverable;
pub mod upload;
pub mod usage;
pub mod watch;
pub mod withdraw;
