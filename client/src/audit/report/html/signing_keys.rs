//! The report's "Signing keys" section, and the key under each sender in
//! its tables of drops ([`crate::audit::signers`] finds which key signed).

use maud::{Markup, html};

use super::super::model::Report;
use super::super::text::{count_text, short};
use super::cells::{NL, party_name_html};
use crate::audit::signers::SignerKey;

/// Under a sender in a table of drops: the manifest's key, short, with the
/// full fingerprint as its title.
pub(super) fn key_cell(key: Option<&SignerKey>) -> Markup {
    html! {
        @if let Some(k) = key {
            br; span class="id" { "key" } " "
            span class="mono id nowrap" title={ (k.name) " " (k.fingerprint) } { (k.short()) }
        }
    }
}

/// The "Signing keys" section: each key that signed a manifest or a receipt
/// of the selected drops, with its full fingerprint, so two keys of one
/// member name are told apart and each can be compared with what
/// `sealdrop directory fingerprint` prints for its card.
pub(super) fn html_section(r: &Report) -> Markup {
    html! {
        section class="long" aria-labelledby="k-h" {
            h2 id="k-h" { "Signing keys" } (NL)
            p class="lead" {
                "The member keys that signed the drops' manifests (sending) and receipts (acknowledging), as the \
                 audit verified them. A member name reused with a new key, after a lost or stolen one was replaced, \
                 shows once per key: compare each fingerprint with what " code { "sealdrop directory fingerprint" }
                " prints for the member's key card."
            }
            (NL)
            @if r.signing_keys.is_empty() {
                p class="empty" { "No manifest or receipt in the selected period." }
            } @else {
                div class="tablebox" {
                    table {
                        caption { "Keys that signed manifests and receipts (times UTC)" }
                        thead {
                            tr {
                                th scope="col" { "Party" }
                                th scope="col" { "Key name" }
                                th scope="col" { "Fingerprint" }
                                th scope="col" class="num" { "Manifests" }
                                th scope="col" class="num" { "Receipts" }
                                th scope="col" { "First used" }
                                th scope="col" { "Last used" }
                                th scope="col" { "Key now" }
                            }
                        }
                        tbody {
                            @for u in &r.signing_keys {
                                tr {
                                    td { (party_name_html(r, &u.key.party)) }
                                    td class="mono" { (u.key.name) }
                                    td class="mono nowrap" { (u.key.fingerprint) }
                                    td class="num" { (count_text(u.manifests)) }
                                    td class="num" { (count_text(u.receipts)) }
                                    td class="nowrap" { (short(u.first)) }
                                    td class="nowrap" { (short(u.last)) }
                                    td {
                                        @match (&u.revoked, u.current) {
                                            (Some((at, why)), _) => {
                                                span class="pill bad" { "revoked" } " "
                                                span class="id" { "from " (short(*at)) @if !why.is_empty() { ": " (why) } }
                                            }
                                            (None, true) => { span class="pill ok" { "current" } }
                                            (None, false) => { span class="pill info" { "no longer listed" } }
                                        }
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
