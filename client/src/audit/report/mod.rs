//! The information-governance (IG) report over a transfer log that the audit
//! has already verified: who sent how much to whom under which agreement, how
//! long recipients took to acknowledge, which drops expired or were deleted
//! because their agreement ended before every recipient acknowledged (each
//! such recipient shown as NOT DELIVERED), which were recalled (when, and by
//! which member of the sender), which drops are still waiting, which drops
//! were post-quantum (from the kind of keys each manifest lists in
//! `encrypted_to`) and what share of each agreement's drops, and how the
//! directory (keys, key revocations, witnesses, agreements) changed.
//!
//! [`build`] streams the entries once and keeps one compact summary per drop
//! (party and agreement ids interned, no manifests or receipts kept), so a
//! log of a million entries fits comfortably in memory. Documents inside the
//! entries are read with [`peek_doc`](sealdrop_proto::note::peek_doc): checking their signatures is the
//! audit's job, done before the report is built.
//!
//! [`write_csv`] writes one row per (drop, recipient) for spreadsheets;
//! [`write_html`] writes one self-contained page (inline CSS and SVG, no
//! scripts, no external assets) that prints cleanly.
//!
//! The pieces: `model` (the plain data), `build` (one pass over the log),
//! `directory_diff` (what changed between directory versions), `text`
//! (numbers and times as people read them), `csv_file`, `json_lines`, and
//! `html` (the page, its sections and its SVG charts).

mod build;
mod csv_file;
mod directory_diff;
#[cfg(test)]
pub(crate) mod fixture;
mod html;
mod json_lines;
mod model;
mod text;

pub use build::build;
pub use csv_file::{CSV_HEADER, write_csv};
pub use directory_diff::{
    AgreementChange, Change, DirectoryDiff, DirectoryVersion, KeyChange, KeyKind, KeyRevocation, diff,
};
pub use html::{render_html, write_html};
pub use json_lines::{row_json, write_json_lines};
pub use model::{
    AckTimes, AgreementTotals, DeliveryRow, Encryption, Flow, HistogramBin, NOT_DELIVERED, Outcome, Recall, Report,
    ReportInput, Totals, UndeliveredDrop, WaitingDrop, reason_word,
};
