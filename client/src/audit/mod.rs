//! Reading a verified transfer log for people who answer for the sharing.
//!
//! - [`report`]: the information-governance report (who sent what to whom,
//!   acknowledgement times, undelivered drops, key and directory changes) as
//!   a [`report::Report`], a CSV file and a self-contained HTML page.
pub mod report;
