//! The report's summary sections: who sent to whom, drops per agreement and
//! time to acknowledge.

use maud::{Markup, html};
use sealdrop_proto::ids::PartyId;

use super::super::model::{AckTimes, Flow, Report};
use super::super::text::{count_text, duration_text, percent};
use super::cells::{BUSIEST_PAIRS, NL, party_name_html};
use super::charts::{svg_agreements, svg_heatmap, svg_histogram};
use crate::fsutil::human_bytes;

/// Who sent to whom: the heatmap, and the busiest pairs beside it.
pub(super) fn matrix_section(r: &Report) -> Markup {
    let mut pairs: Vec<(&(PartyId, PartyId), &Flow)> = r.matrix.iter().collect();
    pairs.sort_by(|a, b| b.1.drops.cmp(&a.1.drops).then(b.1.bytes.cmp(&a.1.bytes)).then(a.0.cmp(b.0)));
    html! {
        section aria-labelledby="m-h" {
            h2 id="m-h" { "Who sent to whom" } (NL)
            p class="lead" {
                "Drops per sender (rows) and recipient (columns). A drop addressed to several parties counts once in \
                 each of their columns. Darker cells carry more drops; hover a cell for its volume."
            }
            (NL)
            @if r.matrix.is_empty() {
                p class="empty" { "No drops in the selected period." }
            } @else {
                div class="matrix" {
                    div class="chartbox" { (svg_heatmap(r)) }
                    div class="side" {
                        table {
                            caption { "Busiest pairs (" (pairs.len().min(BUSIEST_PAIRS)) " of " (pairs.len()) " with traffic)" }
                            thead {
                                tr {
                                    th scope="col" { "Sender" }
                                    th scope="col" { "Recipient" }
                                    th scope="col" class="num" { "Drops" }
                                    th scope="col" class="num" { "Volume" }
                                }
                            }
                            tbody {
                                @for ((from, to), f) in pairs.iter().take(BUSIEST_PAIRS) {
                                    tr {
                                        td { (party_name_html(r, from)) }
                                        td { (party_name_html(r, to)) }
                                        td class="num" { (count_text(f.drops)) }
                                        td class="num" { (human_bytes(f.bytes)) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        (NL)
    }
}

/// Drops per agreement: the stacked bars, and a table of totals.
pub(super) fn agreements_section(r: &Report) -> Markup {
    html! {
        section aria-labelledby="a-h" {
            h2 id="a-h" { "Drops per agreement" } (NL)
            p class="lead" {
                "Every drop travels under one sharing agreement from the signed directory. Bars show what became of \
                 the drops. Post-quantum: the drops whose every key was ML-KEM-768 + X25519, safe from ciphertext \
                 harvested now and decrypted later by a quantum computer; the others used classic or plugin keys."
            }
            (NL)
            @if r.agreements.is_empty() {
                p class="empty" { "No drops in the selected period." }
            } @else {
                div class="chartbox" { (svg_agreements(r)) }
                table {
                    caption { "Totals per agreement" }
                    thead {
                        tr {
                            th scope="col" { "Agreement" }
                            th scope="col" class="num" { "Drops" }
                            th scope="col" class="num" { "Volume" }
                            th scope="col" class="num" { "Senders" }
                            th scope="col" class="num" { "Recipients" }
                            th scope="col" class="num" { "Acknowledged" }
                            th scope="col" class="num" { "Expired undelivered" }
                            th scope="col" class="num" { "Agreement ended" }
                            th scope="col" class="num" { "Recalled" }
                            th scope="col" class="num" { "Waiting" }
                            th scope="col" class="num" { "Post-quantum" }
                        }
                    }
                    tbody {
                        @for a in &r.agreements {
                            @let t = &a.totals;
                            tr {
                                th scope="row" {
                                    @match &a.title {
                                        Some(title) => { (title) " " span class="id" { (a.id) } }
                                        None => { (a.id) }
                                    }
                                    @if let Some(end) = &a.ended {
                                        " " span class="pill ended" { (end.describe()) }
                                    }
                                }
                                td class="num" { (count_text(t.drops)) }
                                td class="num" { (human_bytes(t.bytes)) }
                                td class="num" { (t.senders) }
                                td class="num" { (t.recipients) }
                                td class="num" { (count_text(t.acknowledged)) " " span class="id" { (percent(t.acknowledged, t.drops)) } }
                                td class="num" { (count_text(t.expired_undelivered)) }
                                td class="num" { (count_text(t.agreement_ended_undelivered)) }
                                td class="num" { (count_text(t.recalled)) }
                                td class="num" { (count_text(t.waiting)) }
                                td class="num" { (count_text(t.post_quantum)) " " span class="id" { (percent(t.post_quantum, t.drops)) } }
                            }
                        }
                    }
                }
            }
        }
        (NL)
    }
}

/// One row of the time-to-acknowledge table, with the bar when `bar`.
fn ack_row(who: Markup, a: &AckTimes, bar: bool, scale: f64) -> Markup {
    html! {
        tr {
            th scope="row" { (who) }
            td class="num" { (count_text(a.count)) }
            td class="num" { (duration_text(a.median_hours)) }
            td class="num" { (duration_text(a.p90_hours)) }
            td class="num" { (duration_text(a.max_hours)) }
            td class="barcell" {
                @if bar {
                    div class="rng" aria-hidden="true" {
                        span class="p90" style=(format!("width:{:.1}%", (a.p90_hours / scale * 100.0).clamp(0.5, 100.0))) {}
                        span class="med" style=(format!("width:{:.1}%", (a.median_hours / scale * 100.0).clamp(0.5, 100.0))) {}
                    }
                }
            }
        }
    }
}

/// Time to acknowledge: the histogram, the overall figures, and a row per recipient.
pub(super) fn ack_section(r: &Report) -> Markup {
    let within = |hours: f64| -> u64 {
        r.ack_histogram.iter().filter(|b| b.upper_hours.is_some_and(|u| u <= hours)).map(|b| b.count).sum()
    };
    let scale = r.ack_by_recipient.iter().map(|(_, a)| a.p90_hours).fold(1.0, f64::max);
    html! {
        section aria-labelledby="t-h" {
            h2 id="t-h" { "Time to acknowledge" } (NL)
            p class="lead" {
                "From the hub committing a drop to each recipient's signed receipt. Long waits mean sensitive files \
                 sat on the hub (encrypted) for longer than needed."
            }
            (NL)
            @if let Some(all) = r.ack_overall {
                div class="cols" {
                    div class="chartbox" { (svg_histogram(r)) }
                    div {
                        dl class="stats" {
                            div { dt { "Median" } dd { (duration_text(all.median_hours)) } }
                            div { dt { "90th percentile" } dd { (duration_text(all.p90_hours)) } }
                            div { dt { "Longest" } dd { (duration_text(all.max_hours)) } }
                            div { dt { "Receipts" } dd { (count_text(all.count)) } }
                        }
                        p class="within" {
                            b { (percent(within(24.0), all.count)) } " of receipts came within a day of the commit, "
                            b { (percent(within(168.0), all.count)) } " within a week."
                        }
                    }
                }
                div class="tablebox" {
                    table class="ack" {
                        caption { "Per recipient: the bar shows the median (dark) and the 90th percentile (light)" }
                        thead {
                            tr {
                                th scope="col" { "Recipient" }
                                th scope="col" class="num" { "Receipts" }
                                th scope="col" class="num" { "Median" }
                                th scope="col" class="num" { "90th pct." }
                                th scope="col" class="num" { "Longest" }
                                th scope="col" { span class="sr" { "Median and 90th percentile, as bars" } }
                            }
                        }
                        tbody {
                            @for (p, a) in &r.ack_by_recipient {
                                (ack_row(party_name_html(r, p), a, true, scale))
                            }
                        }
                        tfoot { (ack_row(html! { "All recipients" }, &all, false, scale)) }
                    }
                }
            } @else {
                p class="empty" { "No acknowledgements in the selected period." }
            }
        }
        (NL)
    }
}
