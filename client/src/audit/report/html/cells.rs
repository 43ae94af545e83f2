//! Pieces the page's sections share: party names, drop ids, the note under
//! a table cut short, line breaks.

use maud::{Markup, PreEscaped, html};
use sealdrop_proto::ids::PartyId;

use super::super::model::{Encryption, Report};
use super::super::text::count_text;

/// At most this many rows in each HTML table of drops; the CSV has them all.
pub(super) const MAX_TABLE_ROWS: usize = 200;

/// Rows in the "busiest pairs" table beside the matrix.
pub(super) const BUSIEST_PAIRS: usize = 10;

/// A line break between blocks, so the page's source reads line by line.
pub(super) const NL: PreEscaped<&str> = PreEscaped("\n");

/// A party's display name, and its id beside it when the two differ.
pub(super) fn party_cell(r: &Report, p: &PartyId) -> Markup {
    let name = r.party_name(p);
    html! {
        (name)
        @if name != p.as_str() {
            " " span class="id" { (p.as_str()) }
        }
    }
}

/// A party's display name, with its id as a tooltip.
pub(super) fn party_name_html(r: &Report, p: &PartyId) -> Markup {
    html! { span title=(p.as_str()) { (r.party_name(p)) } }
}

/// Parties by display name, separated by commas; a dash for none.
pub(super) fn party_list(r: &Report, ps: &[PartyId]) -> Markup {
    html! {
        @if ps.is_empty() {
            "–"
        }
        @for (i, p) in ps.iter().enumerate() {
            @if i > 0 { ", " }
            (party_name_html(r, p))
        }
    }
}

/// An agreement's title with its id, or the id alone.
pub(super) fn agreement_label(r: &Report, id: &str) -> String {
    match r.agreement_titles.get(id) {
        Some(t) if t != id => format!("{t} ({id})"),
        _ => id.to_owned(),
    }
}

/// Under a table cut at [`MAX_TABLE_ROWS`]: how many rows the CSV adds.
pub(super) fn more_rows(total: usize) -> Markup {
    html! {
        @if total > MAX_TABLE_ROWS {
            p class="more" { "…and " (count_text((total - MAX_TABLE_ROWS) as u64)) " more; every one is in the CSV export." }
        }
    }
}

/// A drop's id, with its agreement and log entry beneath, and whether it
/// was encrypted to post-quantum keys.
pub(super) fn drop_cell(id: &str, agreement: &str, log_index: u64, encryption: Encryption) -> Markup {
    let class = if encryption == Encryption::PostQuantum { "pill pq" } else { "pill classic" };
    html! {
        span class="mono nowrap" { (id) } br; span class="id" { (agreement) " · log entry " (log_index) } br;
        span class=(class) title="the kind of keys it was encrypted to" { (encryption.label()) }
    }
}
