//! The report as one self-contained HTML page (inline CSS and SVG, no
//! scripts, no external assets) that prints cleanly.
//!
//! The page is written with maud's `html!` templates, which escape every
//! value spliced into text or an attribute: nothing from the log or the
//! directory (party names, agreement titles, reasons) can add markup.

use std::path::Path;

use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::model::Report;
use super::text::{count_text, day, percent, when};
use crate::error::Result;
use crate::fsutil::{human_bytes, write_atomic};

mod cells;
mod charts;
mod directory;
mod drops;
mod sections;
mod signing_keys;

use cells::{NL, agreement_label};

/// The page's style sheet, inline so the page needs no other file.
const CSS: &str = include_str!("report.css");

/// Writes the report as one self-contained HTML page, atomically.
pub fn write_html(report: &Report, path: &Path) -> Result<()> {
    write_atomic(path, render_html(report).as_bytes(), false)
}

/// The whole page.
pub fn render_html(r: &Report) -> String {
    let title = format!("Transfer log report — {}", r.origin);
    let page = html! {
        (DOCTYPE) (NL)
        html lang="en-GB" {
            (NL)
            head {
                (NL)
                meta charset="utf-8"; (NL)
                meta name="viewport" content="width=device-width, initial-scale=1"; (NL)
                meta name="generator" content="sealdrop"; (NL)
                title { (title) } (NL)
                // Our own style sheet, fixed at compile time: escaping would break its `>` selectors.
                style { (NL) (PreEscaped(CSS)) } (NL)
            }
            (NL)
            body {
                (NL)
                (header(r))
                main class="wrap" {
                    (NL)
                    (tiles(r))
                    (sections::matrix_section(r))
                    (sections::agreements_section(r))
                    (sections::ack_section(r))
                    (drops::undelivered_section(r))
                    (drops::waiting_section(r))
                    (signing_keys::html_section(r))
                    (directory::directory_section(r))
                    footer {
                        "Made by sealdrop from the hub's signed transfer log. The log holds party ids, key names, \
                         agreement ids, hashes, sizes and times; never file names or content. One row per drop and \
                         recipient is in the CSV export."
                    }
                    (NL)
                }
                (NL)
            }
            (NL)
        }
        (NL)
    };
    page.into_string()
}

/// The page's header: what the report covers, and that the log verified.
fn header(r: &Report) -> Markup {
    let filter_agreement = match &r.agreement_filter {
        Some(a) => agreement_label(r, a),
        None => "all agreements".to_owned(),
    };
    let span = match r.log_span {
        Some((a, b)) => format!("{} → {}", day(a), day(b)),
        None => "empty".to_owned(),
    };
    let revoked = r.used_after_revocation.len();
    html! {
        header class="top" {
            div class="wrap" {
                (NL)
                p class="eyebrow" { "Information governance · transfer log report" } (NL)
                h1 { "Sensitive file exchange " span class="origin" { (r.origin) } } (NL)
                dl class="meta" {
                    div { dt { "Log size: " } dd { (count_text(r.checkpoint_size)) " entries" } }
                    div { dt { "Log covers: " } dd { (span) } }
                    div { dt { "Generated: " } dd { (when(r.generated_at)) } }
                    div { dt { "Agreement: " } dd { (filter_agreement) } }
                    div { dt { "Period: " } dd { (crate::audit::period::describe(r.since, r.until, when)) } }
                    div {
                        dt { "Directory: " }
                        dd {
                            @match r.current_directory_serial {
                                Some(s) => { "serial " (s) }
                                None => "none",
                            }
                        }
                    }
                }
                (NL)
                div class="verified" role="status" {
                    svg width="18" height="18" viewBox="0 0 18 18" aria-hidden="true" {
                        circle cx="9" cy="9" r="9" fill="#3fae6d" {}
                        path d="M5 9.3l2.6 2.6L13 6.5" fill="none" stroke="#fff" stroke-width="2" stroke-linecap="round"
                            stroke-linejoin="round" {}
                    }
                    span {
                        "Verified against checkpoint " b { (r.origin) } " at tree size " b { (count_text(r.checkpoint_size)) }
                        ": every entry, signature and directory version was checked before this report was made."
                    }
                }
                (NL)
                @if r.entries_read != r.checkpoint_size || r.unreadable_entries > 0 {
                    div class="warn" {
                        (count_text(r.entries_read)) " of " (count_text(r.checkpoint_size)) " entries were read; "
                        (count_text(r.unreadable_entries)) " could not be read."
                    }
                    (NL)
                }
                @if revoked > 0 {
                    div class="warn" role="alert" {
                        b {
                            (count_text(revoked as u64)) " " (if revoked == 1 { "entry was" } else { "entries were" })
                            " signed with keys revoked from before " (if revoked == 1 { "it" } else { "them" })
                        }
                        " (a lost or stolen key used before its revocation was published): "
                        (if revoked == 1 { "it counts" } else { "they count" })
                        " for nothing, and whoever used the key may not have been its owner."
                        ul {
                            @for u in &r.used_after_revocation {
                                li { (u) }
                            }
                        }
                    }
                    (NL)
                }
            }
        }
        (NL)
    }
}

/// The summary tiles under the header.
fn tiles(r: &Report) -> Markup {
    let t = &r.totals;
    let tiles = [
        ("", "Drops", count_text(t.drops), format!("{} deliveries", count_text(t.deliveries))),
        ("", "Data sent", human_bytes(t.bytes), "ciphertext".to_owned()),
        (
            "",
            "Parties",
            count_text(t.parties),
            format!("{} sending · {} receiving", count_text(t.senders), count_text(t.recipients)),
        ),
        (
            "ok",
            "Acknowledged",
            percent(t.acknowledged, t.drops),
            format!("{} of {} drops", count_text(t.acknowledged), count_text(t.drops)),
        ),
        (
            if t.expired_undelivered == 0 { "bad zero" } else { "bad" },
            "Expired undelivered",
            count_text(t.expired_undelivered),
            format!(
                "{} agreement ended · {} recalled",
                count_text(t.agreement_ended_undelivered),
                count_text(t.recalled)
            ),
        ),
        (
            if t.waiting == 0 { "wait zero" } else { "wait" },
            "Still waiting",
            count_text(t.waiting),
            "at the end of the log".to_owned(),
        ),
        (
            match (t.drops, t.post_quantum == t.drops) {
                (0, _) => "wait zero",
                (_, true) => "ok",
                (_, false) => "wait",
            },
            "Post-quantum",
            percent(t.post_quantum, t.drops),
            format!("{} of {} drops · ML-KEM-768 + X25519", count_text(t.post_quantum), count_text(t.drops)),
        ),
    ];
    html! {
        div class="tiles" role="list" aria-label="Summary" {
            @for (class, label, value, note) in tiles {
                div class={ "tile " (class) } role="listitem" {
                    div class="v" { (value) }
                    div class="l" { (label) }
                    div class="n" { (note) }
                }
            }
        }
        (NL)
    }
}

#[cfg(test)]
mod tests {
    use super::super::build::bin_of;
    use super::super::build::build;
    use super::super::fixture::*;
    use super::super::text::{compact_count, truncate};
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
        // Post-quantum: the share overall (a tile), per agreement (a column), and per drop.
        // Not every drop: the tile is amber.
        assert!(html.contains(
            "<div class=\"tile wait\" role=\"listitem\"><div class=\"v\">66.7%</div><div class=\"l\">Post-quantum</div>\
             <div class=\"n\">4 of 6 drops · ML-KEM-768 + X25519</div></div>"
        ));
        assert!(html.contains("<th scope=\"col\" class=\"num\">Post-quantum</th>"));
        assert!(html.contains("<td class=\"num\">3 <span class=\"id\">60%</span></td>"), "inner-fsm: 3 of 5");
        assert!(html.contains("<td class=\"num\">1 <span class=\"id\">100%</span></td>"), "sen-transfer: 1 of 1");
        // The expired drop (D2, to Camden's post-quantum key), in its table.
        let expired = &html[html.find("Expired undelivered</h3>").unwrap()..];
        let expired = &expired[..expired.find("</table>").unwrap()];
        assert!(
            expired
                .contains("<span class=\"pill pq\" title=\"the kind of keys it was encrypted to\">post-quantum</span>"),
            "{expired}"
        );
        // Balanced SVGs and one document.
        assert_eq!(html.matches("<svg").count(), html.matches("</svg>").count());
        assert_eq!(html.matches("<html").count(), 1);
    }

    #[test]
    fn small_helpers() {
        // maud escapes what could end a text or a (double-quoted) attribute.
        assert_eq!(html! { (r#"a<b>&"'"#) }.into_string(), "a&lt;b&gt;&amp;&quot;'");
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
