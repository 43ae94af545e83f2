//! The harnesses, grouped by who reads the input.

pub mod client;
pub mod docs;
pub mod hub;
pub mod log;
