//! The report as one self-contained HTML page (inline CSS and SVG, no
//! scripts, no external assets) that prints cleanly.

use std::fmt::Write as _;
use std::path::Path;

use sealdrop_proto::ids::PartyId;

use super::model::Report;
use super::text::{count_text, day, percent, when};
use crate::error::Result;
use crate::fsutil::{human_bytes, write_atomic};

mod charts;
mod directory;
mod drops;
mod sections;
mod signing_keys;

pub use charts::{svg_agreements, svg_heatmap, svg_histogram};

/// The page's style sheet, inline so the page needs no other file.
const CSS: &str = include_str!("report.css");

/// Writes the report as one self-contained HTML page, atomically.
pub fn write_html(report: &Report, path: &Path) -> Result<()> {
    write_atomic(path, render_html(report).as_bytes(), false)
}

/// At most this many rows in each HTML table of drops; the CSV has them all.
pub(super) const MAX_TABLE_ROWS: usize = 200;

/// Rows in the "busiest pairs" table beside the matrix.
pub(super) const BUSIEST_PAIRS: usize = 10;

/// Escapes text for HTML and SVG, in content and in quoted attributes.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

pub(super) fn party_cell(r: &Report, p: &PartyId) -> String {
    let name = r.party_name(p);
    if name == p.as_str() {
        escape(name)
    } else {
        format!("{} <span class=\"id\">{}</span>", escape(name), escape(p.as_str()))
    }
}

/// A party's display name, with its id as a tooltip.
pub(crate) fn party_name_html(r: &Report, p: &PartyId) -> String {
    format!("<span title=\"{}\">{}</span>", escape(p.as_str()), escape(r.party_name(p)))
}

pub(super) fn party_list(r: &Report, ps: &[PartyId]) -> String {
    if ps.is_empty() {
        return "–".to_owned();
    }
    ps.iter().map(|p| party_name_html(r, p)).collect::<Vec<_>>().join(", ")
}

pub(super) fn agreement_label(r: &Report, id: &str) -> String {
    match r.agreement_titles.get(id) {
        Some(t) if t != id => format!("{t} ({id})"),
        _ => id.to_owned(),
    }
}

/// The whole page.
pub fn render_html(r: &Report) -> String {
    let mut h = String::with_capacity(64 * 1024);
    let title = format!("Transfer log report — {}", r.origin);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en-GB\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"generator\" content=\"sealdrop\">\n<title>{}</title>\n<style>\n{CSS}</style>\n</head>\n<body>\n",
        escape(&title)
    );
    header(&mut h, r);
    h.push_str("<main class=\"wrap\">\n");
    tiles(&mut h, r);
    sections::matrix_section(&mut h, r);
    sections::agreements_section(&mut h, r);
    sections::ack_section(&mut h, r);
    drops::undelivered_section(&mut h, r);
    drops::waiting_section(&mut h, r);
    signing_keys::html_section(&mut h, r);
    directory::directory_section(&mut h, r);
    let _ = write!(
        h,
        "<footer>Made by sealdrop from the hub's signed transfer log. The log holds party ids, key names, \
         agreement ids, hashes, sizes and times; never file names or content. One row per drop and recipient \
         is in the CSV export.</footer>\n</main>\n</body>\n</html>\n"
    );
    h
}

fn header(h: &mut String, r: &Report) {
    let filter_agreement = match &r.agreement_filter {
        Some(a) => escape(&agreement_label(r, a)),
        None => "all agreements".to_owned(),
    };
    let filter_since = crate::audit::period::describe(r.since, r.until, |t| escape(&when(t)));
    let span = match r.log_span {
        Some((a, b)) => format!("{} → {}", day(a), day(b)),
        None => "empty".to_owned(),
    };
    let _ = write!(
        h,
        "<header class=\"top\"><div class=\"wrap\">\n<p class=\"eyebrow\">Information governance · transfer log report</p>\n\
         <h1>Sensitive file exchange <span class=\"origin\">{origin}</span></h1>\n<dl class=\"meta\">\
         <div><dt>Log size: </dt><dd>{size} entries</dd></div>\
         <div><dt>Log covers: </dt><dd>{span}</dd></div>\
         <div><dt>Generated: </dt><dd>{generated}</dd></div>\
         <div><dt>Agreement: </dt><dd>{filter_agreement}</dd></div>\
         <div><dt>Period: </dt><dd>{filter_since}</dd></div>\
         <div><dt>Directory: </dt><dd>{serial}</dd></div></dl>\n",
        origin = escape(&r.origin),
        size = count_text(r.checkpoint_size),
        generated = escape(&when(r.generated_at)),
        serial = r.current_directory_serial.map_or("none".to_owned(), |s| format!("serial {s}")),
    );
    let _ = writeln!(
        h,
        "<div class=\"verified\" role=\"status\"><svg width=\"18\" height=\"18\" viewBox=\"0 0 18 18\" aria-hidden=\"true\">\
         <circle cx=\"9\" cy=\"9\" r=\"9\" fill=\"#3fae6d\"/><path d=\"M5 9.3l2.6 2.6L13 6.5\" fill=\"none\" stroke=\"#fff\" \
         stroke-width=\"2\" stroke-linecap=\"round\" stroke-linejoin=\"round\"/></svg>\
         <span>Verified against checkpoint <b>{origin}</b> at tree size <b>{size}</b>: every entry, signature and \
         directory version was checked before this report was made.</span></div>",
        origin = escape(&r.origin),
        size = count_text(r.checkpoint_size),
    );
    if r.entries_read != r.checkpoint_size || r.unreadable_entries > 0 {
        let _ = writeln!(
            h,
            "<div class=\"warn\">{} of {} entries were read; {} could not be read.</div>",
            count_text(r.entries_read),
            count_text(r.checkpoint_size),
            count_text(r.unreadable_entries)
        );
    }
    if !r.used_after_revocation.is_empty() {
        let _ = write!(
            h,
            "<div class=\"warn\" role=\"alert\"><b>{} {} signed with keys revoked from before {}</b> (a lost or \
             stolen key used before its revocation was published): {} for nothing, and whoever used the key may not \
             have been its owner.<ul>",
            count_text(r.used_after_revocation.len() as u64),
            if r.used_after_revocation.len() == 1 { "entry was" } else { "entries were" },
            if r.used_after_revocation.len() == 1 { "it" } else { "them" },
            if r.used_after_revocation.len() == 1 { "it counts" } else { "they count" },
        );
        for u in &r.used_after_revocation {
            let _ = write!(h, "<li>{}</li>", escape(u));
        }
        h.push_str("</ul></div>\n");
    }
    h.push_str("</div></header>\n");
}

fn tiles(h: &mut String, r: &Report) {
    let t = &r.totals;
    let tile = |h: &mut String, class: &str, label: &str, value: String, note: String| {
        let _ = write!(
            h,
            "<div class=\"tile {class}\" role=\"listitem\"><div class=\"v\">{value}</div><div class=\"l\">{label}</div><div class=\"n\">{note}</div></div>"
        );
    };
    h.push_str("<div class=\"tiles\" role=\"list\" aria-label=\"Summary\">");
    tile(h, "", "Drops", count_text(t.drops), format!("{} deliveries", count_text(t.deliveries)));
    tile(h, "", "Data sent", escape(&human_bytes(t.bytes)), "ciphertext".to_owned());
    tile(
        h,
        "",
        "Parties",
        count_text(t.parties),
        format!("{} sending · {} receiving", count_text(t.senders), count_text(t.recipients)),
    );
    tile(
        h,
        "ok",
        "Acknowledged",
        percent(t.acknowledged, t.drops),
        format!("{} of {} drops", count_text(t.acknowledged), count_text(t.drops)),
    );
    let zero = |n: u64| if n == 0 { " zero" } else { "" };
    tile(
        h,
        &format!("bad{}", zero(t.expired_undelivered)),
        "Expired undelivered",
        count_text(t.expired_undelivered),
        format!("{} agreement ended · {} recalled", count_text(t.agreement_ended_undelivered), count_text(t.recalled)),
    );
    tile(
        h,
        &format!("wait{}", zero(t.waiting)),
        "Still waiting",
        count_text(t.waiting),
        "at the end of the log".to_owned(),
    );
    h.push_str("</div>\n");
}

pub(super) fn more_rows(h: &mut String, total: usize) {
    if total > MAX_TABLE_ROWS {
        let _ = write!(
            h,
            "<p class=\"more\">…and {} more; every one is in the CSV export.</p>",
            count_text((total - MAX_TABLE_ROWS) as u64)
        );
    }
}

pub(super) fn drop_cell(id: &str, agreement: &str, log_index: u64) -> String {
    format!(
        "<span class=\"mono nowrap\">{}</span><br><span class=\"id\">{} · log entry {log_index}</span>",
        escape(id),
        escape(agreement)
    )
}

#[cfg(test)]
mod tests {
    use super::super::build::bin_of;
    use super::super::fixture::*;
    use super::super::text::{compact_count, truncate};
    use super::super::{build, write_html};
    use super::charts::{blue, nice_step};
    use super::*;
    #[test]
    fn html_is_self_contained_and_escaped() {
        let (f, _) = fixture();
        let r = build(f.input(None, None));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.html");
        write_html(&r, &path).unwrap();
        let html = std::fs::read_to_string(&path).unwrap();
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains("<html lang=\"en-GB\">"));
        assert!(html.contains("<title>Transfer log report — hub.example/log</title>"));
        for name in ["Camden", "Islington", "Hackney &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"] {
            assert!(html.contains(name), "{name} missing");
        }
        assert!(!html.contains("<script"), "the party name must be escaped");
        assert!(!html.contains("alert(\"x\")"));
        // No external assets: only the SVG namespace URI, never a fetched URL.
        let without_ns = html.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
        assert!(!without_ns.contains("http://") && !without_ns.contains("https://"));
        assert!(!html.contains("src=") && !html.contains("href=") && !html.contains("@import"));
        assert!(!html.contains("url(http") && !html.contains("<link"));
        // The charts and tables are there, with accessible names.
        assert!(html.contains("id=\"matrix\"") && html.contains("<title id=\"matrix-title\">"));
        assert!(html.contains("id=\"agreements\"") && html.contains("id=\"ack-histogram\""));
        assert!(html.contains("Camden → Islington: 3 drops, 5.6 KiB"));
        assert!(html.contains("<th scope=\"col\">"));
        assert!(html.contains("Verified against checkpoint"));
        assert!(html.contains(&f.new_islington_fp) && html.contains(&f.old_islington_fp));
        // The expired drop's recipient is NOT DELIVERED; the recall names its member.
        assert!(html.contains("NOT DELIVERED</span>"));
        assert!(html.contains("<th scope=\"col\">Recalled (by)</th>"));
        assert!(html.contains(
            "2026-01-12 10:00</span><br><span class=\"id\">by</span> <span class=\"mono nowrap\">hackney/data-team</span>"
        ));
        assert!(html.contains("None: no agreement ended while a drop under it waited."));
        // The revocation, with the serial that made it.
        assert!(html.contains("Revoked keys</h3>") && html.contains("laptop lost"));
        assert!(html.contains("✕ key revoked</span> <span class=\"mono\">islington/data-team</span>"));
        assert!(html.contains("@media print"));
        // Balanced SVGs and one document.
        assert_eq!(html.matches("<svg").count(), html.matches("</svg>").count());
        assert_eq!(html.matches("<html").count(), 1);
    }

    #[test]
    fn small_helpers() {
        assert_eq!(escape("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&#39;");
        assert_eq!(count_text(1234567), "1,234,567");
        assert_eq!(compact_count(12_345), "12k");
        assert_eq!(percent(1, 3), "33.3%");
        assert_eq!(percent(2, 2), "100%");
        assert_eq!(percent(999_999, 1_000_000), "99.9%");
        assert_eq!(nice_step(7), 2);
        assert_eq!(nice_step(1), 1);
        assert_eq!(nice_step(230), 50);
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(bin_of(0.5), 0);
        assert_eq!(bin_of(24.0), 4);
        assert_eq!(bin_of(1000.0), 8);
        assert_eq!(blue(0.0), "#f7fbff");
        assert_eq!(blue(1.0), "#08306b");
    }
}
