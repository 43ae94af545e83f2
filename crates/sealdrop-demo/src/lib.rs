//! sealdrop's demonstration and synthetic data, apart from the client.
//!
//! - [`demo`]: the whole exchange on one machine, against a hub started in
//!   this process, with the published example keys compiled in.
//! - [`sample`]: invented free-school-meals pupil lists for the demo, the
//!   tests, the benchmarks and anyone trying `send --split-by`.
//!
//! Why a crate of its own: the demo runs a hub, so it links `sealdrop-hub`
//! (axum, bundled SQLite, prometheus, utoipa) and carries 33 example private
//! keys. Inside the `sealdrop` client that would put all of it in every
//! council's install, for a command no council needs in production. Here it
//! sits on top of the client library instead; `sealdrop demo` and
//! `sealdrop sample` run the `sealdrop-demo` executable when it is installed
//! (see `sealdrop::cli::external`), and the README's first command is
//! `cargo run --release -p sealdrop-demo`.
#![forbid(unsafe_code)]

pub mod cli;
pub mod demo;
pub mod sample;
