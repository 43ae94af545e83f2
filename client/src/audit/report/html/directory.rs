//! The report's directory section: each version, what changed from the one
//! before, and the keys the coordinator revoked.

use std::fmt::Write as _;

use super::super::directory_diff::{Change, KeyKind};
use super::super::model::Report;
use super::super::text::{count_text, short, when};
use super::{agreement_label, escape, party_cell, party_name_html};

/// Every revoked member key of the versions shown, once each.
fn revocations_table(h: &mut String, r: &Report) {
    let _ = write!(
        h,
        "<h3><span class=\"pill {}\">{}</span> Revoked keys</h3>",
        if r.revocations.is_empty() { "info" } else { "bad" },
        count_text(r.revocations.len() as u64)
    );
    if r.revocations.is_empty() {
        h.push_str("<p class=\"empty\">No directory version revokes a key.</p>");
        return;
    }
    h.push_str(
        "<div class=\"tablebox\"><table><caption>Member keys the coordinator revoked: the hub refuses them from the \
         version that revokes them on (times UTC)</caption><thead><tr><th scope=\"col\">Party</th>\
         <th scope=\"col\">Member</th><th scope=\"col\">Key</th><th scope=\"col\">Not trusted from</th>\
         <th scope=\"col\">Reason</th><th scope=\"col\" class=\"num\">Revoked in serial</th></tr></thead><tbody>",
    );
    for k in &r.revocations {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td><span class=\"mono\">{}</span><br><span class=\"mono id\">{}</span></td>\
             <td class=\"nowrap\">{}</td><td>{}</td><td class=\"num\">{}</td></tr>",
            party_name_html(r, &k.party),
            escape(&k.member),
            escape(&k.name),
            escape(&k.fingerprint),
            short(k.revoked_at),
            if k.reason.is_empty() { "–".to_owned() } else { escape(&k.reason) },
            k.serial
        );
    }
    h.push_str("</tbody></table></div>");
}

pub(super) fn directory_section(h: &mut String, r: &Report) {
    h.push_str(
        "<section class=\"long\" aria-labelledby=\"d-h\"><h2 id=\"d-h\">Directory and key changes</h2>\n<p class=\"lead\">\
         Each version of the coordinator-signed directory the hub enforced, with the keys and agreements that changed \
         from the version before, and the member keys the coordinator revoked. A key you do not recognise is worth a \
         phone call to the party.</p>\n",
    );
    if r.directory_versions.is_empty() {
        h.push_str("<p class=\"empty\">No directory version was published in the selected period.</p></section>\n");
        return;
    }
    h.push_str(
        "<table><caption>Directory versions</caption><thead><tr><th scope=\"col\" class=\"num\">Serial</th>\
         <th scope=\"col\">Published in log</th><th scope=\"col\">Signed</th><th scope=\"col\" class=\"num\">Parties</th>\
         <th scope=\"col\" class=\"num\">Member keys</th><th scope=\"col\" class=\"num\">Witness keys</th>\
         <th scope=\"col\" class=\"num\">Revoked keys</th><th scope=\"col\" class=\"num\">Agreements</th>\
         <th scope=\"col\">SHA-256</th></tr></thead><tbody>",
    );
    for v in &r.directory_versions {
        let published = match v.published {
            Some(t) => when(t),
            None => "<span class=\"pill wait\">not in log</span>".to_owned(),
        };
        let mismatch = if v.hash_mismatch { " <span class=\"pill bad\">hash differs from log</span>" } else { "" };
        let _ = write!(
            h,
            "<tr><th scope=\"row\" class=\"num\">{}</th><td class=\"nowrap\">{published}</td><td class=\"nowrap\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td><span class=\"mono\" title=\"{sha}\">{short}…</span>{mismatch}</td></tr>",
            v.serial,
            when(v.issued_at),
            v.parties,
            v.member_keys,
            v.witness_keys,
            v.revoked_keys,
            v.agreements,
            sha = escape(&v.sha256),
            short = escape(&v.sha256.chars().take(16).collect::<String>()),
        );
    }
    h.push_str("</tbody></table>");
    revocations_table(h, r);
    for v in &r.directory_versions {
        let _ = write!(
            h,
            "<div class=\"dirv\"><h3>Serial {}</h3><div class=\"sub\">{} · SHA-256 <span class=\"mono\">{}</span></div>",
            v.serial,
            v.published.map_or_else(|| format!("signed {}", when(v.issued_at)), |t| format!("published {}", when(t))),
            escape(&v.sha256)
        );
        let Some(d) = &v.changes else {
            h.push_str("<p class=\"empty\">The first directory version: the baseline for the changes below.</p></div>");
            continue;
        };
        if d.is_empty() {
            h.push_str("<p class=\"empty\">No change to parties, keys or agreements.</p></div>");
            continue;
        }
        h.push_str("<ul class=\"changes\">");
        for p in &d.parties_added {
            let _ = write!(h, "<li><span class=\"add\">+ party</span> {}</li>", party_cell(r, p));
        }
        for p in &d.parties_removed {
            let _ = write!(h, "<li><span class=\"rem\">− party</span> {}</li>", party_cell(r, p));
        }
        for n in &d.notes {
            let _ = write!(h, "<li><span class=\"chg\">~</span> {}</li>", escape(n));
        }
        for k in &d.revocations {
            let _ = write!(
                h,
                "<li><span class=\"rem\">✕ key revoked</span> <span class=\"mono\">{}</span> of {} \
                 (<span class=\"mono\">{}</span>), not to be trusted from {}{}</li>",
                escape(&k.name),
                party_name_html(r, &k.party),
                escape(&k.fingerprint),
                escape(&when(k.revoked_at)),
                if k.reason.is_empty() { String::new() } else { format!(": {}", escape(&k.reason)) }
            );
        }
        h.push_str("</ul>");
        if !d.keys.is_empty() {
            h.push_str(
                "<table><caption>Keys added and removed</caption><thead><tr><th scope=\"col\">Change</th>\
                 <th scope=\"col\">Party</th><th scope=\"col\">Kind</th><th scope=\"col\">Key name</th>\
                 <th scope=\"col\">Fingerprint</th></tr></thead><tbody>",
            );
            for k in &d.keys {
                let pill = match k.change {
                    Change::Added => "<span class=\"pill ok\">added</span>",
                    Change::Removed => "<span class=\"pill bad\">removed</span>",
                    Change::Changed => "<span class=\"pill info\">changed</span>",
                };
                let _ = write!(
                    h,
                    "<tr><td>{pill}</td><td>{}</td><td>{}</td><td class=\"mono\">{}</td><td class=\"mono\">{}</td></tr>",
                    party_name_html(r, &k.party),
                    match k.kind {
                        KeyKind::Member => "member",
                        KeyKind::Witness => "witness",
                    },
                    escape(&k.name),
                    escape(&k.fingerprint)
                );
            }
            h.push_str("</tbody></table>");
        }
        if !d.agreements.is_empty() {
            h.push_str("<ul class=\"changes\">");
            for a in &d.agreements {
                let (class, sign) = match a.change {
                    Change::Added => ("add", "+ agreement"),
                    Change::Removed => ("rem", "− agreement"),
                    Change::Changed => ("chg", "~ agreement"),
                };
                let details =
                    if a.details.is_empty() { String::new() } else { format!(": {}", escape(&a.details.join("; "))) };
                let _ = write!(
                    h,
                    "<li><span class=\"{class}\">{sign}</span> {}{details}</li>",
                    escape(&agreement_label(r, &a.id))
                );
            }
            h.push_str("</ul>");
        }
        h.push_str("</div>");
    }
    h.push_str("</section>\n");
}
