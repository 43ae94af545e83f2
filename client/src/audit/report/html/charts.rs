//! The report's SVG charts: the sender × recipient heatmap, drops per
//! agreement by outcome, and the time-to-acknowledge histogram.

use std::collections::HashMap;
use std::fmt::Write as _;

use sealdrop_proto::ids::PartyId;

use super::super::model::{Flow, Report};
use super::super::text::{compact_count, count_text, truncate};
use super::escape;
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

/// The sender × recipient heatmap, legible up to a few dozen parties.
pub fn svg_heatmap(r: &Report) -> String {
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

    let mut s = String::with_capacity(4096 + n * n * 200);
    let _ = write!(
        s,
        "<svg class=\"chart\" id=\"matrix\" xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-labelledby=\"matrix-title matrix-desc\" \
         viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" style=\"max-width:{width}px\">\
         <title id=\"matrix-title\">Sender by recipient matrix of drops</title>\
         <desc id=\"matrix-desc\">{n} parties; rows are senders, columns are recipients; each cell gives the number of drops.</desc>\
         <defs><linearGradient id=\"blues\" x1=\"0\" x2=\"1\" y1=\"0\" y2=\"0\">"
    );
    for (i, _) in BLUES.iter().enumerate() {
        let t = i as f64 / (BLUES.len() - 1) as f64;
        let _ = write!(s, "<stop offset=\"{t:.3}\" stop-color=\"{}\"/>", blue(t));
    }
    s.push_str("</linearGradient></defs>");
    // Corner caption.
    let _ = write!(
        s,
        "<text x=\"{x}\" y=\"{y}\" text-anchor=\"end\" font-size=\"11\" fill=\"#5d6778\">sender ↓ · recipient →</text>",
        x = left - 8.0,
        y = top - 8.0
    );
    // Column labels.
    for (j, l) in labels.iter().enumerate() {
        let x = left + j as f64 * cell + cell / 2.0 + 3.0;
        let y = top - 6.0;
        let _ = write!(
            s,
            "<text x=\"{x:.1}\" y=\"{y:.1}\" font-size=\"{fs_label}\" fill=\"#1b2433\" transform=\"rotate(-45 {x:.1} {y:.1})\">\
             <title>{full}</title>{l}</text>",
            full = escape(r.party_name(&ps[j])),
            l = escape(l)
        );
    }
    let tx = left + grid + gap + tot_w / 2.0 + 3.0;
    let _ = write!(
        s,
        "<text x=\"{tx:.1}\" y=\"{y:.1}\" font-size=\"{fs_label}\" font-weight=\"600\" fill=\"#47516a\" \
         transform=\"rotate(-45 {tx:.1} {y:.1})\">Total sent</text>",
        y = top - 6.0
    );
    // Rows.
    for (i, l) in labels.iter().enumerate() {
        let y = top + i as f64 * cell;
        let sender = r.party_name(&ps[i]);
        let _ = write!(
            s,
            "<text x=\"{x}\" y=\"{ty:.1}\" text-anchor=\"end\" dominant-baseline=\"central\" font-size=\"{fs_label}\" fill=\"#1b2433\">\
             <title>{full}</title>{l}</text>",
            x = left - 8.0,
            ty = y + cell / 2.0,
            full = escape(sender),
            l = escape(l)
        );
        for (j, f) in counts[i].iter().enumerate() {
            let x = left + j as f64 * cell;
            let (fill, ink) = if f.drops == 0 {
                (if i == j { "#e4e8ee".to_owned() } else { "#f4f6f9".to_owned() }, "#1b2433")
            } else {
                let t = 0.12 + 0.88 * scale(f.drops);
                (blue(t), if t > 0.55 { "#ffffff" } else { "#10243f" })
            };
            let _ = write!(
                s,
                "<g><title>{from} → {to}: {d} drop{pl}, {b}</title>\
                 <rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{w:.1}\" rx=\"2\" fill=\"{fill}\" stroke=\"#ffffff\" stroke-width=\"1.5\"/>",
                from = escape(sender),
                to = escape(r.party_name(&ps[j])),
                d = count_text(f.drops),
                pl = if f.drops == 1 { "" } else { "s" },
                b = escape(&human_bytes(f.bytes)),
                w = cell
            );
            if f.drops > 0 {
                let _ = write!(
                    s,
                    "<text x=\"{cx:.1}\" y=\"{cy:.1}\" text-anchor=\"middle\" dominant-baseline=\"central\" font-size=\"{fs_cell:.1}\" \
                     font-weight=\"600\" fill=\"{ink}\">{c}</text>",
                    cx = x + cell / 2.0,
                    cy = y + cell / 2.0,
                    c = compact_count(f.drops)
                );
            }
            s.push_str("</g>");
        }
        // Row total.
        let row: Flow =
            counts[i].iter().fold(Flow::default(), |a, f| Flow { drops: a.drops + f.drops, bytes: a.bytes + f.bytes });
        total_cell(&mut s, left + grid + gap, y, tot_w, cell, row, &format!("{} sent", escape(sender)), fs_cell);
    }
    // Column totals.
    let ty = top + grid + gap;
    let _ = write!(
        s,
        "<text x=\"{x}\" y=\"{y:.1}\" text-anchor=\"end\" dominant-baseline=\"central\" font-size=\"{fs_label}\" font-weight=\"600\" fill=\"#47516a\">Total received</text>",
        x = left - 8.0,
        y = ty + cell / 2.0
    );
    for j in 0..ps.len() {
        let col = counts
            .iter()
            .fold(Flow::default(), |a, row| Flow { drops: a.drops + row[j].drops, bytes: a.bytes + row[j].bytes });
        let what = format!("{} received", escape(r.party_name(&ps[j])));
        total_cell(&mut s, left + j as f64 * cell, ty, cell, cell, col, &what, fs_cell);
    }
    // Legend.
    let ly = top + grid + gap + cell + 18.0;
    let lw = (grid * 0.5).clamp(160.0, 280.0);
    let _ = write!(
        s,
        "<g aria-hidden=\"true\"><text x=\"{left}\" y=\"{ty:.1}\" font-size=\"11\" fill=\"#5d6778\">Drops per pair</text>\
         <rect x=\"{lx:.1}\" y=\"{ly:.1}\" width=\"{lw:.1}\" height=\"10\" rx=\"2\" fill=\"url(#blues)\"/>\
         <text x=\"{lx:.1}\" y=\"{ny:.1}\" font-size=\"10.5\" fill=\"#5d6778\">1</text>\
         <text x=\"{rx:.1}\" y=\"{ny:.1}\" text-anchor=\"end\" font-size=\"10.5\" fill=\"#5d6778\">{max} (log scale)</text></g>",
        ty = ly + 9.0,
        lx = left + 92.0,
        rx = left + 92.0 + lw,
        ny = ly + 24.0,
        max = count_text(max)
    );
    s.push_str("</svg>");
    s
}

#[allow(clippy::too_many_arguments)]
fn total_cell(s: &mut String, x: f64, y: f64, w: f64, hgt: f64, f: Flow, what: &str, fs: f64) {
    let _ = write!(
        s,
        "<g><title>{what}: {d} drop{pl}, {b}</title><rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{hgt:.1}\" rx=\"2\" \
         fill=\"#eef1f5\" stroke=\"#ffffff\" stroke-width=\"1.5\"/><text x=\"{cx:.1}\" y=\"{cy:.1}\" text-anchor=\"middle\" \
         dominant-baseline=\"central\" font-size=\"{fs:.1}\" font-weight=\"650\" fill=\"#2d3850\">{c}</text></g>",
        d = count_text(f.drops),
        pl = if f.drops == 1 { "" } else { "s" },
        b = escape(&human_bytes(f.bytes)),
        cx = x + w / 2.0,
        cy = y + hgt / 2.0,
        c = compact_count(f.drops)
    );
}

fn legend(s: &mut String, x: f64, y: f64, items: &[(&str, &str)]) {
    let mut x = x;
    for (color, label) in items {
        let _ = write!(
            s,
            "<rect x=\"{x:.1}\" y=\"{ry:.1}\" width=\"11\" height=\"11\" rx=\"2\" fill=\"{color}\"/>\
             <text x=\"{tx:.1}\" y=\"{y:.1}\" font-size=\"11.5\" fill=\"#47516a\">{label}</text>",
            ry = y - 9.5,
            tx = x + 16.0
        );
        x += 16.0 + label.chars().count() as f64 * 6.6 + 18.0;
    }
}

/// Stacked horizontal bars: drops per agreement by outcome.
pub fn svg_agreements(r: &Report) -> String {
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
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg class=\"chart\" id=\"agreements\" xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-labelledby=\"ag-title\" \
         viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" style=\"max-width:{width}px\">\
         <title id=\"ag-title\">Drops per agreement, by outcome</title>"
    );
    legend(
        &mut s,
        label_w,
        14.0,
        &[
            (C_ACK, "Acknowledged"),
            (C_WAIT, "Waiting"),
            (C_EXPIRED, "Expired undelivered"),
            (C_ENDED, "Agreement ended"),
            (C_RECALLED, "Recalled"),
        ],
    );
    for (i, (a, label)) in rows.iter().zip(&labels).enumerate() {
        let t = &a.totals;
        let y = top + i as f64 * row_h;
        let _ = write!(
            s,
            "<text x=\"{x}\" y=\"{ly:.1}\" text-anchor=\"end\" font-size=\"12.5\" font-weight=\"600\" fill=\"#1b2433\">{l}</text>\
             <text x=\"{x}\" y=\"{iy:.1}\" text-anchor=\"end\" font-size=\"10.5\" fill=\"#5d6778\">{id}</text>",
            x = label_w - 12.0,
            ly = y + 14.0,
            iy = y + 27.0,
            l = escape(label),
            id = escape(&truncate(&a.id, 40))
        );
        let _ = write!(
            s,
            "<rect x=\"{label_w}\" y=\"{y:.1}\" width=\"{bar_w}\" height=\"24\" rx=\"3\" fill=\"#f1f3f7\"/>",
            y = y + 4.0
        );
        let other = t.drops.saturating_sub(
            t.acknowledged + t.waiting + t.expired_undelivered + t.agreement_ended_undelivered + t.recalled,
        );
        let mut x = label_w;
        for (n, color, what) in [
            (t.acknowledged, C_ACK, "acknowledged"),
            (t.waiting, C_WAIT, "waiting"),
            (t.expired_undelivered, C_EXPIRED, "expired undelivered"),
            (t.agreement_ended_undelivered, C_ENDED, "deleted undelivered as the agreement ended"),
            (t.recalled, C_RECALLED, "recalled"),
            (other, C_OTHER, "other"),
        ] {
            if n == 0 {
                continue;
            }
            let w = n as f64 / max * bar_w;
            let _ = write!(
                s,
                "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"24\" fill=\"{color}\"><title>{id}: {n} {what}</title></rect>",
                y = y + 4.0,
                id = escape(&a.id),
                n = count_text(n)
            );
            x += w;
        }
        let _ = write!(
            s,
            "<text x=\"{vx:.1}\" y=\"{vy:.1}\" font-size=\"12.5\" fill=\"#1b2433\"><tspan font-weight=\"700\">{d}</tspan> drop{pl} · {b}</text>",
            vx = x + 8.0,
            vy = y + 20.5,
            d = count_text(t.drops),
            pl = if t.drops == 1 { "" } else { "s" },
            b = escape(&human_bytes(t.bytes))
        );
    }
    s.push_str("</svg>");
    s
}

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
pub fn svg_histogram(r: &Report) -> String {
    let bins = &r.ack_histogram;
    let (width, height) = (560.0, 270.0);
    let (left, right, top, bottom) = (44.0, 10.0, 16.0, 46.0);
    let pw = width - left - right;
    let ph = height - top - bottom;
    let max = bins.iter().map(|b| b.count).max().unwrap_or(0).max(1);
    let step = nice_step(max);
    let ymax = max.div_ceil(step) * step;
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg class=\"chart\" id=\"ack-histogram\" xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-labelledby=\"hist-title\" \
         viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" style=\"max-width:{width}px\">\
         <title id=\"hist-title\">Histogram of time from commit to acknowledgement</title>"
    );
    let mut v = 0;
    while v <= ymax {
        let y = top + ph - v as f64 / ymax as f64 * ph;
        let _ = write!(
            s,
            "<line x1=\"{left}\" x2=\"{x2}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"{c}\" stroke-width=\"1\"/>\
             <text x=\"{tx}\" y=\"{y:.1}\" text-anchor=\"end\" dominant-baseline=\"central\" font-size=\"10.5\" fill=\"#5d6778\">{v}</text>",
            x2 = width - right,
            c = if v == 0 { "#9aa3b2" } else { "#e4e8ee" },
            tx = left - 6.0,
            v = compact_count(v)
        );
        v += step;
    }
    let bw = pw / bins.len().max(1) as f64;
    for (i, b) in bins.iter().enumerate() {
        let x = left + i as f64 * bw;
        let bh = b.count as f64 / ymax as f64 * ph;
        let y = top + ph - bh;
        let _ = write!(
            s,
            "<g><title>{label}: {n} acknowledgement{pl}</title><rect x=\"{rx:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{bh:.1}\" rx=\"2\" fill=\"{c}\"/>",
            label = escape(b.label),
            n = count_text(b.count),
            pl = if b.count == 1 { "" } else { "s" },
            rx = x + bw * 0.12,
            w = bw * 0.76,
            c = if b.lower_hours >= 168.0 { C_WAIT } else { "#2166ac" }
        );
        if b.count > 0 {
            let _ = write!(
                s,
                "<text x=\"{cx:.1}\" y=\"{ty:.1}\" text-anchor=\"middle\" font-size=\"11\" font-weight=\"600\" fill=\"#1b2433\">{n}</text>",
                cx = x + bw / 2.0,
                ty = y - 5.0,
                n = compact_count(b.count)
            );
        }
        let _ = write!(
            s,
            "<text x=\"{cx:.1}\" y=\"{ty:.1}\" text-anchor=\"middle\" font-size=\"11\" fill=\"#47516a\">{l}</text></g>",
            cx = x + bw / 2.0,
            ty = top + ph + 17.0,
            l = escape(b.label)
        );
    }
    let _ = write!(
        s,
        "<text x=\"{x:.1}\" y=\"{y}\" text-anchor=\"middle\" font-size=\"11\" fill=\"#5d6778\">time from commit to acknowledgement</text>",
        x = left + pw / 2.0,
        y = height - 6.0
    );
    s.push_str("</svg>");
    s
}
