//! The report's "Signing keys" section, and the key under each sender in
//! its tables of drops ([`crate::audit::signers`] finds which key signed).

use std::fmt::Write as _;

use super::super::model::Report;
use super::super::text::{count_text, short};
use super::{escape, party_name_html};
use crate::audit::signers::SignerKey;

/// Under a sender in a table of drops: the manifest's key, short, with the
/// full fingerprint as its title.
pub(super) fn key_cell(key: Option<&SignerKey>) -> String {
    key.map(|k| {
        format!(
            "<br><span class=\"id\">key</span> <span class=\"mono id nowrap\" title=\"{} {}\">{}</span>",
            escape(&k.name),
            escape(&k.fingerprint),
            escape(&k.short())
        )
    })
    .unwrap_or_default()
}

/// The "Signing keys" section: each key that signed a manifest or a receipt
/// of the selected drops, with its full fingerprint, so two keys of one
/// member name are told apart and each can be compared with what
/// `sealdrop directory fingerprint` prints for its card.
pub(super) fn html_section(h: &mut String, r: &Report) {
    h.push_str(
        "<section class=\"long\" aria-labelledby=\"k-h\"><h2 id=\"k-h\">Signing keys</h2>\n<p class=\"lead\">The member \
         keys that signed the drops' manifests (sending) and receipts (acknowledging), as the audit verified them. \
         A member name reused with a new key, after a lost or stolen one was replaced, shows once per key: compare \
         each fingerprint with what <code>sealdrop directory fingerprint</code> prints for the member's key card.</p>\n",
    );
    if r.signing_keys.is_empty() {
        h.push_str("<p class=\"empty\">No manifest or receipt in the selected period.</p></section>\n");
        return;
    }
    h.push_str(
        "<div class=\"tablebox\"><table><caption>Keys that signed manifests and receipts (times UTC)</caption><thead><tr>\
         <th scope=\"col\">Party</th><th scope=\"col\">Key name</th><th scope=\"col\">Fingerprint</th>\
         <th scope=\"col\" class=\"num\">Manifests</th><th scope=\"col\" class=\"num\">Receipts</th>\
         <th scope=\"col\">First used</th><th scope=\"col\">Last used</th><th scope=\"col\">Key now</th></tr></thead><tbody>",
    );
    for u in &r.signing_keys {
        let now = match (&u.revoked, u.current) {
            (Some((at, why)), _) => format!(
                "<span class=\"pill bad\">revoked</span> <span class=\"id\">from {}{}</span>",
                short(*at),
                if why.is_empty() { String::new() } else { format!(": {}", escape(why)) }
            ),
            (None, true) => "<span class=\"pill ok\">current</span>".to_owned(),
            (None, false) => "<span class=\"pill info\">no longer listed</span>".to_owned(),
        };
        let _ = write!(
            h,
            "<tr><td>{}</td><td class=\"mono\">{}</td><td class=\"mono nowrap\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"nowrap\">{}</td><td class=\"nowrap\">{}</td><td>{now}</td></tr>",
            party_name_html(r, &u.key.party),
            escape(&u.key.name),
            escape(&u.key.fingerprint),
            count_text(u.manifests),
            count_text(u.receipts),
            short(u.first),
            short(u.last),
        );
    }
    h.push_str("</tbody></table></div></section>\n");
}
