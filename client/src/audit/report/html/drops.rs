//! The report's tables of drops: expired, ended and recalled drops, and those
//! still waiting.

use maud::{Markup, html};
use sealdrop_proto::ids::PartyId;

use super::super::model::{NOT_DELIVERED, Report, UndeliveredDrop};
use super::super::text::{count_text, short};
use super::cells::{MAX_TABLE_ROWS, NL, drop_cell, more_rows, party_list, party_name_html};
use super::signing_keys::key_cell;
use crate::fsutil::human_bytes;

/// Which kind of undelivered drop a table lists.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Undelivered {
    Expired,
    AgreementEnded,
    Recalled,
}

/// Each recipient that had not acknowledged, marked NOT DELIVERED.
fn not_delivered_list(r: &Report, ps: &[PartyId]) -> Markup {
    html! {
        @if ps.is_empty() {
            "–"
        } @else {
            ul class="nd" {
                @for p in ps {
                    li { (party_name_html(r, p)) " " span class="pill bad" { (NOT_DELIVERED) } }
                }
            }
        }
    }
}

/// A table of drops the hub deleted before every recipient acknowledged.
fn undelivered_table(r: &Report, drops: &[UndeliveredDrop], caption: &str, kind: Undelivered) -> Markup {
    let who = match kind {
        Undelivered::Expired | Undelivered::AgreementEnded => "Not delivered to",
        Undelivered::Recalled => "Never acknowledged by",
    };
    html! {
        div class="tablebox" {
            table {
                caption { (caption) " (times UTC)" }
                thead {
                    tr {
                        th scope="col" { "Drop" }
                        th scope="col" { "Sender" }
                        th scope="col" { (who) }
                        th scope="col" class="num" { "Size" }
                        th scope="col" { "Committed" }
                        th scope="col" { "Expiry" }
                        @match kind {
                            Undelivered::Expired => {}
                            Undelivered::AgreementEnded => { th scope="col" { "Agreement ended" } }
                            Undelivered::Recalled => { th scope="col" { "Recalled (by)" } }
                        }
                    }
                }
                tbody {
                    @for d in drops.iter().take(MAX_TABLE_ROWS) {
                        tr {
                            td { (drop_cell(&d.drop, &d.agreement, d.log_index, d.encryption)) }
                            td { (party_name_html(r, &d.sender)) (key_cell(d.manifest_key.as_ref())) }
                            td {
                                @if kind == Undelivered::Recalled {
                                    (party_list(r, &d.unacknowledged))
                                } @else {
                                    (not_delivered_list(r, &d.unacknowledged))
                                }
                            }
                            td class="num" { (human_bytes(d.bytes)) }
                            td class="nowrap" { (short(d.committed)) }
                            td class="nowrap" { (short(d.expires)) }
                            @match kind {
                                Undelivered::Expired => {}
                                Undelivered::AgreementEnded => { td class="nowrap" { (short(d.deleted)) } }
                                // When, and by which of the sender's members (a log
                                // without the recall entry only says when the hub deleted it).
                                Undelivered::Recalled => {
                                    td {
                                        @match &d.recall {
                                            Some(rc) => {
                                                span class="nowrap" { (short(rc.at)) } br;
                                                span class="id" { "by" } " " span class="mono nowrap" { (rc.by) }
                                            }
                                            None => { span class="nowrap" { (short(d.deleted)) } }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        (more_rows(drops.len()))
    }
}

/// Expired, ended and recalled drops, each kind under its own heading.
pub(super) fn undelivered_section(r: &Report) -> Markup {
    html! {
        section class="long" aria-labelledby="u-h" {
            h2 id="u-h" { "Expired, ended and recalled drops" } (NL)
            p class="lead" {
                "Drops the hub deleted before every recipient acknowledged them. A recipient marked NOT DELIVERED \
                 never collected data it was sent, because the drop expired or its sharing agreement ended first: \
                 check whether it was needed and was sent again."
            }
            (NL)
            h3 { span class="pill bad" { (count_text(r.expired.len() as u64)) } " Expired undelivered" }
            @if r.expired.is_empty() {
                p class="empty" { "None: no drop expired before its recipients acknowledged it." }
            } @else {
                (undelivered_table(
                    r,
                    &r.expired,
                    "Drops that expired before every recipient acknowledged",
                    Undelivered::Expired,
                ))
            }
            h3 { span class="pill ended" { (count_text(r.agreement_ended.len() as u64)) } " Deleted as their agreement ended" }
            @if r.agreement_ended.is_empty() {
                p class="empty" { "None: no agreement ended while a drop under it waited." }
            } @else {
                (undelivered_table(
                    r,
                    &r.agreement_ended,
                    "Drops deleted because their agreement ended (its end date passed, or a new directory version \
                     ended or removed it) first",
                    Undelivered::AgreementEnded,
                ))
            }
            h3 { span class="pill recall" { (count_text(r.recalled.len() as u64)) } " Recalled" }
            @if r.recalled.is_empty() {
                p class="empty" { "No drop was recalled." }
            } @else {
                (undelivered_table(
                    r,
                    &r.recalled,
                    "Drops their senders recalled, with the member whose signed request recalled each",
                    Undelivered::Recalled,
                ))
            }
        }
        (NL)
    }
}

/// Drops still on the hub at the end of the log.
pub(super) fn waiting_section(r: &Report) -> Markup {
    html! {
        section class="long" aria-labelledby="w-h" {
            h2 id="w-h" { "Still waiting" } (NL)
            p class="lead" { "Drops committed but neither fully acknowledged nor deleted at the end of the log." }
            (NL)
            @if r.waiting.is_empty() {
                p class="empty" { "Nothing is waiting on the hub." }
            } @else {
                div class="tablebox" {
                    table {
                        caption { "Drops on the hub at the end of the log (times UTC)" }
                        thead {
                            tr {
                                th scope="col" { "Drop" }
                                th scope="col" { "Sender" }
                                th scope="col" { "Waiting for" }
                                th scope="col" class="num" { "Size" }
                                th scope="col" { "Committed" }
                                th scope="col" { "Expires" }
                            }
                        }
                        tbody {
                            @for d in r.waiting.iter().take(MAX_TABLE_ROWS) {
                                tr {
                                    td { (drop_cell(&d.drop, &d.agreement, d.log_index, d.encryption)) }
                                    td { (party_name_html(r, &d.sender)) (key_cell(d.manifest_key.as_ref())) }
                                    td { (party_list(r, &d.waiting_for)) }
                                    td class="num" { (human_bytes(d.bytes)) }
                                    td class="nowrap" { (short(d.committed)) }
                                    td class="nowrap" {
                                        (short(d.expires))
                                        @if d.expires <= r.generated_at {
                                            " " span class="pill bad" { "past expiry" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                (more_rows(r.waiting.len()))
            }
        }
        (NL)
    }
}
