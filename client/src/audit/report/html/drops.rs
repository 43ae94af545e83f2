//! The report's tables of drops: expired, ended and recalled drops, and those
//! still waiting.

use std::fmt::Write as _;

use sealdrop_proto::ids::PartyId;

use super::super::model::{NOT_DELIVERED, Report, UndeliveredDrop};
use super::super::text::{count_text, short};
use super::signing_keys::key_cell;
use super::{MAX_TABLE_ROWS, drop_cell, escape, more_rows, party_list, party_name_html};
use crate::fsutil::human_bytes;

/// Which kind of undelivered drop a table lists.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Undelivered {
    Expired,
    AgreementEnded,
    Recalled,
}

/// Each recipient that had not acknowledged, marked NOT DELIVERED.
fn not_delivered_list(r: &Report, ps: &[PartyId]) -> String {
    if ps.is_empty() {
        return "–".to_owned();
    }
    let items: String = ps
        .iter()
        .map(|p| format!("<li>{} <span class=\"pill bad\">{NOT_DELIVERED}</span></li>", party_name_html(r, p)))
        .collect();
    format!("<ul class=\"nd\">{items}</ul>")
}

fn undelivered_table(h: &mut String, r: &Report, drops: &[UndeliveredDrop], caption: &str, kind: Undelivered) {
    let (who, extra) = match kind {
        Undelivered::Expired => ("Not delivered to", ""),
        Undelivered::AgreementEnded => ("Not delivered to", "<th scope=\"col\">Agreement ended</th>"),
        Undelivered::Recalled => ("Never acknowledged by", "<th scope=\"col\">Recalled (by)</th>"),
    };
    let _ = write!(
        h,
        "<div class=\"tablebox\"><table><caption>{caption} (times UTC)</caption><thead><tr><th scope=\"col\">Drop</th>\
         <th scope=\"col\">Sender</th><th scope=\"col\">{who}</th>\
         <th scope=\"col\" class=\"num\">Size</th><th scope=\"col\">Committed</th><th scope=\"col\">Expiry</th>{extra}</tr></thead><tbody>",
    );
    for d in drops.iter().take(MAX_TABLE_ROWS) {
        let (recipients, extra) = match kind {
            Undelivered::Expired => (not_delivered_list(r, &d.unacknowledged), String::new()),
            Undelivered::AgreementEnded => {
                (not_delivered_list(r, &d.unacknowledged), format!("<td class=\"nowrap\">{}</td>", short(d.deleted)))
            }
            Undelivered::Recalled => {
                // When, and by which of the sender's members (a log without
                // the recall entry only says when the hub deleted it).
                let cell = match &d.recall {
                    Some(rc) => format!(
                        "<span class=\"nowrap\">{}</span><br><span class=\"id\">by</span> \
                         <span class=\"mono nowrap\">{}</span>",
                        short(rc.at),
                        escape(&rc.by)
                    ),
                    None => format!("<span class=\"nowrap\">{}</span>", short(d.deleted)),
                };
                (party_list(r, &d.unacknowledged), format!("<td>{cell}</td>"))
            }
        };
        let _ = write!(
            h,
            "<tr><td>{drop}</td><td>{sender}{key}</td><td>{recipients}</td><td class=\"num\">{size}</td>\
             <td class=\"nowrap\">{c}</td><td class=\"nowrap\">{e}</td>{extra}</tr>",
            drop = drop_cell(&d.drop, &d.agreement, d.log_index),
            sender = party_name_html(r, &d.sender),
            key = key_cell(d.manifest_key.as_ref()),
            size = escape(&human_bytes(d.bytes)),
            c = short(d.committed),
            e = short(d.expires),
        );
    }
    h.push_str("</tbody></table></div>");
    more_rows(h, drops.len());
}

pub(super) fn undelivered_section(h: &mut String, r: &Report) {
    h.push_str(
        "<section class=\"long\" aria-labelledby=\"u-h\"><h2 id=\"u-h\">Expired, ended and recalled drops</h2>\n\
         <p class=\"lead\">Drops the hub deleted before every recipient acknowledged them. A recipient marked \
         NOT DELIVERED never collected data it was sent, because the drop expired or its sharing agreement ended \
         first: check whether it was needed and was sent again.</p>\n",
    );
    let _ = write!(
        h,
        "<h3><span class=\"pill bad\">{}</span> Expired undelivered</h3>",
        count_text(r.expired.len() as u64)
    );
    if r.expired.is_empty() {
        h.push_str("<p class=\"empty\">None: no drop expired before its recipients acknowledged it.</p>");
    } else {
        undelivered_table(
            h,
            r,
            &r.expired,
            "Drops that expired before every recipient acknowledged",
            Undelivered::Expired,
        );
    }
    let _ = write!(
        h,
        "<h3><span class=\"pill ended\">{}</span> Deleted as their agreement ended</h3>",
        count_text(r.agreement_ended.len() as u64)
    );
    if r.agreement_ended.is_empty() {
        h.push_str("<p class=\"empty\">None: no agreement ended while a drop under it waited.</p>");
    } else {
        undelivered_table(
            h,
            r,
            &r.agreement_ended,
            "Drops deleted because their agreement ended (its end date passed, or a new directory version \
             ended or removed it) first",
            Undelivered::AgreementEnded,
        );
    }
    let _ = write!(h, "<h3><span class=\"pill recall\">{}</span> Recalled</h3>", count_text(r.recalled.len() as u64));
    if r.recalled.is_empty() {
        h.push_str("<p class=\"empty\">No drop was recalled.</p>");
    } else {
        undelivered_table(
            h,
            r,
            &r.recalled,
            "Drops their senders recalled, with the member whose signed request recalled each",
            Undelivered::Recalled,
        );
    }
    h.push_str("</section>\n");
}

pub(super) fn waiting_section(h: &mut String, r: &Report) {
    h.push_str(
        "<section class=\"long\" aria-labelledby=\"w-h\"><h2 id=\"w-h\">Still waiting</h2>\n<p class=\"lead\">Drops \
         committed but neither fully acknowledged nor deleted at the end of the log.</p>\n",
    );
    if r.waiting.is_empty() {
        h.push_str("<p class=\"empty\">Nothing is waiting on the hub.</p></section>\n");
        return;
    }
    h.push_str(
        "<div class=\"tablebox\"><table><caption>Drops on the hub at the end of the log (times UTC)</caption><thead><tr>\
         <th scope=\"col\">Drop</th><th scope=\"col\">Sender</th>\
         <th scope=\"col\">Waiting for</th><th scope=\"col\" class=\"num\">Size</th><th scope=\"col\">Committed</th>\
         <th scope=\"col\">Expires</th></tr></thead><tbody>",
    );
    for d in r.waiting.iter().take(MAX_TABLE_ROWS) {
        let overdue = if d.expires <= r.generated_at { " <span class=\"pill bad\">past expiry</span>" } else { "" };
        let _ = write!(
            h,
            "<tr><td>{drop}</td><td>{sender}{key}</td><td>{w}</td><td class=\"num\">{size}</td>\
             <td class=\"nowrap\">{c}</td><td class=\"nowrap\">{e}{overdue}</td></tr>",
            drop = drop_cell(&d.drop, &d.agreement, d.log_index),
            sender = party_name_html(r, &d.sender),
            key = key_cell(d.manifest_key.as_ref()),
            w = party_list(r, &d.waiting_for),
            size = escape(&human_bytes(d.bytes)),
            c = short(d.committed),
            e = short(d.expires)
        );
    }
    h.push_str("</tbody></table></div>");
    more_rows(h, r.waiting.len());
    h.push_str("</section>\n");
}
