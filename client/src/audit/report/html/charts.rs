//! The report's SVG charts: the sender × recipient heatmap, drops per
//! agreement by outcome, and the time-to-acknowledge histogram.

use std::collections::HashMap;

use maud::{Markup, html};
use sealdrop_proto::ids::PartyId;

use super::super::model::{Flow, Report, Totals};
use super::super::text::{compact_count, count_text, truncate};
use crate::fsutil::human_bytes;

/// ColorBrewer "Blues", light to dark.
const BLUES: [(u8, u8, u8); 9] = [
    (0xf7, 0xfb, 0xff),
    (0xde, 0xeb, 0xf7),
    (0xc6, 0xdb, 0xef),
    (0x9e, 0xca, 0xe1),
    (0x6b, 0xae, 0xd6),
    (0x42, 0x92, 0xc6),
    (0x21, 0x71, 0xb5),
    (0x08, 0x51, 0x9c),
    (0x08, 0x30, 0x6b),
];

/// The colour at `t` (0..=1) along [`BLUES`].
pub(super) fn blue(t: f64) -> String {
    let x = t.clamp(0.0, 1.0) * (BLUES.len() - 1) as f64;
    let i = (x.floor() as usize).min(BLUES.len() - 2);
    let f = x - i as f64;
    let (a, b) = (BLUES[i], BLUES[i + 1]);
    let mix = |p: u8, q: u8| (p as f64 + (q as f64 - p as f64) * f).round() as u8;
    format!("#{:02x}{:02x}{:02x}", mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

const C_ACK: &str = "#2e7d4f";
const C_WAIT: &str = "#d08a1c";
const C_EXPIRED: &str = "#c0392b";
const C_RECALLED: &str = "#7b5ea7";
const C_ENDED: &str = "#a3560f";
const C_OTHER: &str = "#9aa3b2";

/// A coordinate or size with one decimal, as the charts write them.
fn f1(x: f64) -> String {
    format!("{x:.1}")
}

/// `s` for a count other than one.
fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// The sender × recipient heatmap, legible up to a few dozen parties.
pub(super) fn svg_heatmap(r: &Report) -> Markup {
    let ps = &r.parties;
    let n = ps.len().max(1);
    let cell = (760.0 / (n as f64 + 1.6)).clamp(18.0, 50.0).floor();
    let fs_label = if cell >= 24.0 { 12.5 } else { 11.0 };
    let fs_cell = (cell * 0.4).clamp(9.0, 13.5);
    let labels: Vec<String> = ps.iter().map(|p| truncate(r.party_name(p), 24)).collect();
    // At least wide enough for the corner caption and "Total received".
    let chars = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0).max(18);
    let label_w = (chars as f64 * fs_label * 0.56 + 10.0).ceil();
    let sin = std::f64::consts::FRAC_1_SQRT_2;
    let left = label_w + 12.0;
    let top = (label_w * sin + 20.0).ceil();
    let grid = n as f64 * cell;
    let gap = 8.0;
    let tot_w = cell.max(46.0);
    let right = (label_w * sin - tot_w).max(0.0) + 14.0;
    let legend_h = 46.0;
    let width = (left + grid + gap + tot_w + right).ceil();
    let height = (top + grid + gap + cell + legend_h).ceil();

    let idx: HashMap<&PartyId, usize> = ps.iter().enumerate().map(|(i, p)| (p, i)).collect();
    let mut counts = vec![vec![Flow::default(); n]; n];
    for ((s, t), f) in &r.matrix {
        if let (Some(&i), Some(&j)) = (idx.get(s), idx.get(t)) {
            counts[i][j] = *f;
        }
    }
    let max = counts.iter().flatten().map(|f| f.drops).max().unwrap_or(0).max(1);
    let scale = |c: u64| (c as f64 + 1.0).ln() / (max as f64 + 1.0).ln();
    let sum = |a: Flow, f: &Flow| Flow { drops: a.drops + f.drops, bytes: a.bytes + f.bytes };
    let column_total = |j: usize| counts.iter().fold(Flow::default(), |a, row| sum(a, &row[j]));
    let col_y = top - 6.0;
    let tx = left + grid + gap + tot_w / 2.0 + 3.0;
    let totals_y = top + grid + gap;
    let legend_y = top + grid + gap + cell + 18.0;
    let legend_w = (grid * 0.5).clamp(160.0, 280.0);
    html! {
        svg class="chart" id="matrix" xmlns="http://www.w3.org/2000/svg" role="img"
            aria-labelledby="matrix-title matrix-desc" viewBox={ "0 0 " (width) " " (height) } width=(width)
            height=(height) style={ "max-width:" (width) "px" } {
            title id="matrix-title" { "Sender by recipient matrix of drops" }
            desc id="matrix-desc" {
                (n) " parties; rows are senders, columns are recipients; each cell gives the number of drops."
            }
            defs {
                linearGradient id="blues" x1="0" x2="1" y1="0" y2="0" {
                    @for i in 0..BLUES.len() {
                        @let t = i as f64 / (BLUES.len() - 1) as f64;
                        stop offset=(format!("{t:.3}")) stop-color=(blue(t)) {}
                    }
                }
            }
            // Corner caption.
            text x=(left - 8.0) y=(top - 8.0) text-anchor="end" font-size="11" fill="#5d6778" { "sender ↓ · recipient →" }
            // Column labels.
            @for (j, l) in labels.iter().enumerate() {
                @let x = left + j as f64 * cell + cell / 2.0 + 3.0;
                text x=(f1(x)) y=(f1(col_y)) font-size=(fs_label) fill="#1b2433"
                    transform=(format!("rotate(-45 {x:.1} {col_y:.1})")) {
                    title { (r.party_name(&ps[j])) } (l)
                }
            }
            text x=(f1(tx)) y=(f1(col_y)) font-size=(fs_label) font-weight="600" fill="#47516a"
                transform=(format!("rotate(-45 {tx:.1} {col_y:.1})")) { "Total sent" }
            // Rows.
            @for (i, l) in labels.iter().enumerate() {
                @let y = top + i as f64 * cell;
                @let sender = r.party_name(&ps[i]);
                text x=(left - 8.0) y=(f1(y + cell / 2.0)) text-anchor="end" dominant-baseline="central"
                    font-size=(fs_label) fill="#1b2433" {
                    title { (sender) } (l)
                }
                @for (j, f) in counts[i].iter().enumerate() {
                    @let x = left + j as f64 * cell;
                    @let (fill, ink) = if f.drops == 0 {
                        (if i == j { "#e4e8ee".to_owned() } else { "#f4f6f9".to_owned() }, "#1b2433")
                    } else {
                        let t = 0.12 + 0.88 * scale(f.drops);
                        (blue(t), if t > 0.55 { "#ffffff" } else { "#10243f" })
                    };
                    g {
                        title {
                            (sender) " → " (r.party_name(&ps[j])) ": " (count_text(f.drops)) " drop" (plural(f.drops))
                            ", " (human_bytes(f.bytes))
                        }
                        rect x=(f1(x)) y=(f1(y)) width=(f1(cell)) height=(f1(cell)) rx="2" fill=(fill) stroke="#ffffff"
                            stroke-width="1.5" {}
                        @if f.drops > 0 {
                            text x=(f1(x + cell / 2.0)) y=(f1(y + cell / 2.0)) text-anchor="middle"
                                dominant-baseline="central" font-size=(f1(fs_cell)) font-weight="600" fill=(ink) {
                                (compact_count(f.drops))
                            }
                        }
                    }
                }
                // Row total.
                (total_cell(
                    (left + grid + gap, y),
                    (tot_w, cell),
                    counts[i].iter().fold(Flow::default(), sum),
                    html! { (sender) " sent" },
                    fs_cell,
                ))
            }
            // Column totals.
            text x=(left - 8.0) y=(f1(totals_y + cell / 2.0)) text-anchor="end" dominant-baseline="central"
                font-size=(fs_label) font-weight="600" fill="#47516a" { "Total received" }
            @for j in 0..ps.len() {
                (total_cell(
                    (left + j as f64 * cell, totals_y),
                    (cell, cell),
                    column_total(j),
                    html! { (r.party_name(&ps[j])) " received" },
                    fs_cell,
                ))
            }
            // Legend.
            g aria-hidden="true" {
                text x=(left) y=(f1(legend_y + 9.0)) font-size="11" fill="#5d6778" { "Drops per pair" }
                rect x=(f1(left + 92.0)) y=(f1(legend_y)) width=(f1(legend_w)) height="10" rx="2" fill="url(#blues)" {}
                text x=(f1(left + 92.0)) y=(f1(legend_y + 24.0)) font-size="10.5" fill="#5d6778" { "1" }
                text x=(f1(left + 92.0 + legend_w)) y=(f1(legend_y + 24.0)) text-anchor="end" font-size="10.5"
                    fill="#5d6778" { (count_text(max)) " (log scale)" }
            }
        }
    }
}

/// A row or column total of the heatmap at `(x, y)`, `size` wide and high.
fn total_cell((x, y): (f64, f64), (w, h): (f64, f64), f: Flow, what: Markup, fs: f64) -> Markup {
    html! {
        g {
            title { (what) ": " (count_text(f.drops)) " drop" (plural(f.drops)) ", " (human_bytes(f.bytes)) }
            rect x=(f1(x)) y=(f1(y)) width=(f1(w)) height=(f1(h)) rx="2" fill="#eef1f5" stroke="#ffffff"
                stroke-width="1.5" {}
            text x=(f1(x + w / 2.0)) y=(f1(y + h / 2.0)) text-anchor="middle" dominant-baseline="central"
                font-size=(f1(fs)) font-weight="650" fill="#2d3850" { (compact_count(f.drops)) }
        }
    }
}

/// A row of coloured squares and their labels, from `(x, y)`.
fn legend(x: f64, y: f64, items: &[(&str, &str)]) -> Markup {
    let mut at = x;
    let placed: Vec<(f64, &str, &str)> = items
        .iter()
        .map(|(color, label)| {
            let here = at;
            at += 16.0 + label.chars().count() as f64 * 6.6 + 18.0;
            (here, *color, *label)
        })
        .collect();
    html! {
        @for (x, color, label) in placed {
            rect x=(f1(x)) y=(f1(y - 9.5)) width="11" height="11" rx="2" fill=(color) {}
            text x=(f1(x + 16.0)) y=(f1(y)) font-size="11.5" fill="#47516a" { (label) }
        }
    }
}

/// One outcome's part of an agreement's bar.
struct Segment {
    x: f64,
    width: f64,
    drops: u64,
    color: &'static str,
    what: &'static str,
}

/// One bar's segments by outcome, from `x` on, `bar_w` wide for `max`
/// drops, and where the bar ends.
fn bar_segments(t: &Totals, x: f64, max: f64, bar_w: f64) -> (Vec<Segment>, f64) {
    let other = t.drops.saturating_sub(
        t.acknowledged + t.waiting + t.expired_undelivered + t.agreement_ended_undelivered + t.recalled,
    );
    let mut end = x;
    let segments = [
        (t.acknowledged, C_ACK, "acknowledged"),
        (t.waiting, C_WAIT, "waiting"),
        (t.expired_undelivered, C_EXPIRED, "expired undelivered"),
        (t.agreement_ended_undelivered, C_ENDED, "deleted undelivered as the agreement ended"),
        (t.recalled, C_RECALLED, "recalled"),
        (other, C_OTHER, "other"),
    ]
    .into_iter()
    .filter(|(drops, ..)| *drops > 0)
    .map(|(drops, color, what)| {
        let segment = Segment { x: end, width: drops as f64 / max * bar_w, drops, color, what };
        end += segment.width;
        segment
    })
    .collect();
    (segments, end)
}

/// Stacked horizontal bars: drops per agreement by outcome.
pub(super) fn svg_agreements(r: &Report) -> Markup {
    let rows = &r.agreements;
    let labels: Vec<String> = rows.iter().map(|a| truncate(a.title.as_deref().unwrap_or(&a.id), 34)).collect();
    let chars = labels.iter().chain(rows.iter().map(|a| &a.id)).map(|l| l.chars().count()).max().unwrap_or(8);
    let label_w = (chars as f64 * 7.6 + 18.0).clamp(100.0, 290.0);
    let bar_w = 560.0;
    let value_w = 170.0;
    let row_h = 40.0;
    let top = 34.0;
    let width = label_w + bar_w + value_w;
    let height = top + rows.len() as f64 * row_h + 8.0;
    let max = rows.iter().map(|a| a.totals.drops).max().unwrap_or(1).max(1) as f64;
    html! {
        svg class="chart" id="agreements" xmlns="http://www.w3.org/2000/svg" role="img" aria-labelledby="ag-title"
            viewBox={ "0 0 " (width) " " (height) } width=(width) height=(height) style={ "max-width:" (width) "px" } {
            title id="ag-title" { "Drops per agreement, by outcome" }
            (legend(
                label_w,
                14.0,
                &[
                    (C_ACK, "Acknowledged"),
                    (C_WAIT, "Waiting"),
                    (C_EXPIRED, "Expired undelivered"),
                    (C_ENDED, "Agreement ended"),
                    (C_RECALLED, "Recalled"),
                ],
            ))
            @for (i, (a, label)) in rows.iter().zip(&labels).enumerate() {
                @let t = &a.totals;
                @let y = top + i as f64 * row_h;
                text x=(label_w - 12.0) y=(f1(y + 14.0)) text-anchor="end" font-size="12.5" font-weight="600"
                    fill="#1b2433" { (label) }
                text x=(label_w - 12.0) y=(f1(y + 27.0)) text-anchor="end" font-size="10.5" fill="#5d6778" {
                    (truncate(&a.id, 40))
                }
                rect x=(label_w) y=(f1(y + 4.0)) width=(bar_w) height="24" rx="3" fill="#f1f3f7" {}
                @let (segments, end) = bar_segments(t, label_w, max, bar_w);
                @for s in segments {
                    rect x=(f1(s.x)) y=(f1(y + 4.0)) width=(f1(s.width)) height="24" fill=(s.color) {
                        title { (a.id) ": " (count_text(s.drops)) " " (s.what) }
                    }
                }
                text x=(f1(end + 8.0)) y=(f1(y + 20.5)) font-size="12.5" fill="#1b2433" {
                    tspan font-weight="700" { (count_text(t.drops)) } " drop" (plural(t.drops)) " · " (human_bytes(t.bytes))
                }
            }
        }
    }
}

/// A round step for the histogram's axis: at most five steps to `max`.
pub(super) fn nice_step(max: u64) -> u64 {
    let mut step = 1;
    loop {
        for m in [1, 2, 5] {
            if max.div_ceil(step * m) <= 5 {
                return step * m;
            }
        }
        step *= 10;
    }
}

/// Histogram of hours from commit to acknowledgement.
pub(super) fn svg_histogram(r: &Report) -> Markup {
    let bins = &r.ack_histogram;
    let (width, height) = (560.0, 270.0);
    let (left, right, top, bottom) = (44.0, 10.0, 16.0, 46.0);
    let pw = width - left - right;
    let ph = height - top - bottom;
    let max = bins.iter().map(|b| b.count).max().unwrap_or(0).max(1);
    let step = nice_step(max);
    let ymax = max.div_ceil(step) * step;
    let bw = pw / bins.len().max(1) as f64;
    html! {
        svg class="chart" id="ack-histogram" xmlns="http://www.w3.org/2000/svg" role="img"
            aria-labelledby="hist-title" viewBox={ "0 0 " (width) " " (height) } width=(width) height=(height)
            style={ "max-width:" (width) "px" } {
            title id="hist-title" { "Histogram of time from commit to acknowledgement" }
            @for v in (0..=ymax).step_by(step as usize) {
                @let y = f1(top + ph - v as f64 / ymax as f64 * ph);
                line x1=(left) x2=(width - right) y1=(y) y2=(y) stroke=(if v == 0 { "#9aa3b2" } else { "#e4e8ee" })
                    stroke-width="1" {}
                text x=(left - 6.0) y=(y) text-anchor="end" dominant-baseline="central" font-size="10.5"
                    fill="#5d6778" { (compact_count(v)) }
            }
            @for (i, b) in bins.iter().enumerate() {
                @let x = left + i as f64 * bw;
                @let bh = b.count as f64 / ymax as f64 * ph;
                @let y = top + ph - bh;
                g {
                    title { (b.label) ": " (count_text(b.count)) " acknowledgement" (plural(b.count)) }
                    rect x=(f1(x + bw * 0.12)) y=(f1(y)) width=(f1(bw * 0.76)) height=(f1(bh)) rx="2"
                        fill=(if b.lower_hours >= 168.0 { C_WAIT } else { "#2166ac" }) {}
                    @if b.count > 0 {
                        text x=(f1(x + bw / 2.0)) y=(f1(y - 5.0)) text-anchor="middle" font-size="11" font-weight="600"
                            fill="#1b2433" { (compact_count(b.count)) }
                    }
                    text x=(f1(x + bw / 2.0)) y=(f1(top + ph + 17.0)) text-anchor="middle" font-size="11"
                        fill="#47516a" { (b.label) }
                }
            }
            text x=(f1(left + pw / 2.0)) y=(height - 6.0) text-anchor="middle" font-size="11" fill="#5d6778" {
                "time from commit to acknowledgement"
            }
        }
    }
}
