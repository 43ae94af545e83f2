//! The report's summary sections: who sent to whom, drops per agreement and
//! time to acknowledge.

use std::fmt::Write as _;

use sealdrop_proto::ids::PartyId;

use super::super::model::{AckTimes, Flow, Report};
use super::super::text::{count_text, duration_text, percent};
use super::charts::{svg_agreements, svg_heatmap, svg_histogram};
use super::{BUSIEST_PAIRS, escape, party_name_html};
use crate::fsutil::human_bytes;

pub(super) fn matrix_section(h: &mut String, r: &Report) {
    h.push_str(
        "<section aria-labelledby=\"m-h\"><h2 id=\"m-h\">Who sent to whom</h2>\n<p class=\"lead\">Drops per sender \
         (rows) and recipient (columns). A drop addressed to several parties counts once in each of their columns. \
         Darker cells carry more drops; hover a cell for its volume.</p>\n",
    );
    if r.matrix.is_empty() {
        h.push_str("<p class=\"empty\">No drops in the selected period.</p></section>\n");
        return;
    }
    h.push_str("<div class=\"matrix\"><div class=\"chartbox\">");
    h.push_str(&svg_heatmap(r));
    h.push_str("</div><div class=\"side\">");
    let mut pairs: Vec<(&(PartyId, PartyId), &Flow)> = r.matrix.iter().collect();
    pairs.sort_by(|a, b| b.1.drops.cmp(&a.1.drops).then(b.1.bytes.cmp(&a.1.bytes)).then(a.0.cmp(b.0)));
    let _ = write!(
        h,
        "<table><caption>Busiest pairs ({} of {} with traffic)</caption><thead><tr><th scope=\"col\">Sender</th>\
         <th scope=\"col\">Recipient</th><th scope=\"col\" class=\"num\">Drops</th><th scope=\"col\" class=\"num\">Volume</th>\
         </tr></thead><tbody>",
        pairs.len().min(BUSIEST_PAIRS),
        pairs.len()
    );
    for ((from, to), f) in pairs.iter().take(BUSIEST_PAIRS) {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            party_name_html(r, from),
            party_name_html(r, to),
            count_text(f.drops),
            escape(&human_bytes(f.bytes))
        );
    }
    h.push_str("</tbody></table></div></div></section>\n");
}

pub(super) fn agreements_section(h: &mut String, r: &Report) {
    h.push_str(
        "<section aria-labelledby=\"a-h\"><h2 id=\"a-h\">Drops per agreement</h2>\n<p class=\"lead\">Every drop travels \
         under one sharing agreement from the signed directory. Bars show what became of the drops.</p>\n",
    );
    if r.agreements.is_empty() {
        h.push_str("<p class=\"empty\">No drops in the selected period.</p></section>\n");
        return;
    }
    h.push_str("<div class=\"chartbox\">");
    h.push_str(&svg_agreements(r));
    h.push_str("</div>");
    h.push_str(
        "<table><caption>Totals per agreement</caption><thead><tr><th scope=\"col\">Agreement</th>\
         <th scope=\"col\" class=\"num\">Drops</th><th scope=\"col\" class=\"num\">Volume</th>\
         <th scope=\"col\" class=\"num\">Senders</th><th scope=\"col\" class=\"num\">Recipients</th>\
         <th scope=\"col\" class=\"num\">Acknowledged</th><th scope=\"col\" class=\"num\">Expired undelivered</th>\
         <th scope=\"col\" class=\"num\">Agreement ended</th><th scope=\"col\" class=\"num\">Recalled</th>\
         <th scope=\"col\" class=\"num\">Waiting</th></tr></thead><tbody>",
    );
    for a in &r.agreements {
        let t = &a.totals;
        let mut label = match &a.title {
            Some(title) => format!("{} <span class=\"id\">{}</span>", escape(title), escape(&a.id)),
            None => escape(&a.id),
        };
        if let Some(end) = &a.ended {
            let _ = write!(label, " <span class=\"pill ended\">{}</span>", escape(&end.describe()));
        }
        let _ = write!(
            h,
            "<tr><th scope=\"row\">{label}</th><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{} <span class=\"id\">{}</span></td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            count_text(t.drops),
            escape(&human_bytes(t.bytes)),
            t.senders,
            t.recipients,
            count_text(t.acknowledged),
            percent(t.acknowledged, t.drops),
            count_text(t.expired_undelivered),
            count_text(t.agreement_ended_undelivered),
            count_text(t.recalled),
            count_text(t.waiting),
        );
    }
    h.push_str("</tbody></table></section>\n");
}

pub(super) fn ack_section(h: &mut String, r: &Report) {
    h.push_str(
        "<section aria-labelledby=\"t-h\"><h2 id=\"t-h\">Time to acknowledge</h2>\n<p class=\"lead\">From the hub \
         committing a drop to each recipient's signed receipt. Long waits mean sensitive files sat on the hub \
         (encrypted) for longer than needed.</p>\n",
    );
    let Some(all) = r.ack_overall else {
        h.push_str("<p class=\"empty\">No acknowledgements in the selected period.</p></section>\n");
        return;
    };
    let within_day: u64 =
        r.ack_histogram.iter().filter(|b| b.upper_hours.is_some_and(|u| u <= 24.0)).map(|b| b.count).sum();
    let within_week: u64 =
        r.ack_histogram.iter().filter(|b| b.upper_hours.is_some_and(|u| u <= 168.0)).map(|b| b.count).sum();
    h.push_str("<div class=\"cols\"><div class=\"chartbox\">");
    h.push_str(&svg_histogram(r));
    let _ = write!(
        h,
        "</div><div><dl class=\"stats\">\
         <div><dt>Median</dt><dd>{}</dd></div><div><dt>90th percentile</dt><dd>{}</dd></div>\
         <div><dt>Longest</dt><dd>{}</dd></div><div><dt>Receipts</dt><dd>{}</dd></div></dl>\
         <p class=\"within\"><b>{}</b> of receipts came within a day of the commit, <b>{}</b> within a week.</p></div></div>",
        duration_text(all.median_hours),
        duration_text(all.p90_hours),
        duration_text(all.max_hours),
        count_text(all.count),
        percent(within_day, all.count),
        percent(within_week, all.count),
    );
    let scale = r.ack_by_recipient.iter().map(|(_, a)| a.p90_hours).fold(1.0, f64::max);
    h.push_str(
        "<div class=\"tablebox\"><table class=\"ack\"><caption>Per recipient: the bar shows the median (dark) and the \
         90th percentile (light)</caption><thead><tr><th scope=\"col\">Recipient</th>\
         <th scope=\"col\" class=\"num\">Receipts</th><th scope=\"col\" class=\"num\">Median</th>\
         <th scope=\"col\" class=\"num\">90th pct.</th><th scope=\"col\" class=\"num\">Longest</th>\
         <th scope=\"col\"><span class=\"sr\">Median and 90th percentile, as bars</span></th></tr></thead><tbody>",
    );
    let row = |h: &mut String, who: String, a: &AckTimes, bar: bool| {
        let bar = if bar {
            format!(
                "<div class=\"rng\" aria-hidden=\"true\"><span class=\"p90\" style=\"width:{:.1}%\"></span>\
                 <span class=\"med\" style=\"width:{:.1}%\"></span></div>",
                (a.p90_hours / scale * 100.0).clamp(0.5, 100.0),
                (a.median_hours / scale * 100.0).clamp(0.5, 100.0)
            )
        } else {
            String::new()
        };
        let _ = write!(
            h,
            "<tr><th scope=\"row\">{who}</th><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"barcell\">{bar}</td></tr>",
            count_text(a.count),
            duration_text(a.median_hours),
            duration_text(a.p90_hours),
            duration_text(a.max_hours)
        );
    };
    for (p, a) in &r.ack_by_recipient {
        row(h, party_name_html(r, p), a, true);
    }
    h.push_str("</tbody><tfoot>");
    row(h, "All recipients".to_owned(), &all, false);
    h.push_str("</tfoot></table></div></section>\n");
}
