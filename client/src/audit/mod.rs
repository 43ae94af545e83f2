//! Reading a verified transfer log for people who answer for the sharing.
//!
//! - [`report`]: the information-governance report (who sent what to whom,
//!   acknowledgement times, drops not delivered because they expired or
//!   their agreement ended, recalls and who made them, key revocations, key
//!   and directory changes) as a [`report::Report`], a CSV file and a
//!   self-contained HTML page.
pub mod ended;
pub mod output;
pub mod period;
pub mod report;
pub mod signers;
pub mod warnings;
