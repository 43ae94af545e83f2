//! The report's directory section: each version, what changed from the one
//! before, and the keys the coordinator revoked.

use maud::{Markup, html};

use super::super::directory_diff::{Change, DirectoryVersion, KeyKind};
use super::super::model::Report;
use super::super::text::{count_text, short, when};
use super::cells::{NL, agreement_label, party_cell, party_name_html};

/// Every revoked member key of the versions shown, once each.
fn revocations_table(r: &Report) -> Markup {
    html! {
        h3 {
            span class={ "pill " (if r.revocations.is_empty() { "info" } else { "bad" }) } {
                (count_text(r.revocations.len() as u64))
            }
            " Revoked keys"
        }
        @if r.revocations.is_empty() {
            p class="empty" { "No directory version revokes a key." }
        } @else {
            div class="tablebox" {
                table {
                    caption {
                        "Member keys the coordinator revoked: the hub refuses them from the version that revokes \
                         them on (times UTC)"
                    }
                    thead {
                        tr {
                            th scope="col" { "Party" }
                            th scope="col" { "Member" }
                            th scope="col" { "Key" }
                            th scope="col" { "Not trusted from" }
                            th scope="col" { "Reason" }
                            th scope="col" class="num" { "Revoked in serial" }
                        }
                    }
                    tbody {
                        @for k in &r.revocations {
                            tr {
                                td { (party_name_html(r, &k.party)) }
                                td { (k.member) }
                                td { span class="mono" { (k.name) } br; span class="mono id" { (k.fingerprint) } }
                                td class="nowrap" { (short(k.revoked_at)) }
                                td { @if k.reason.is_empty() { "–" } @else { (k.reason) } }
                                td class="num" { (k.serial) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// One directory version and what changed from the one before it.
fn version_changes(r: &Report, v: &DirectoryVersion) -> Markup {
    html! {
        div class="dirv" {
            h3 { "Serial " (v.serial) }
            div class="sub" {
                @match v.published {
                    Some(t) => { "published " (when(t)) }
                    None => { "signed " (when(v.issued_at)) }
                }
                " · SHA-256 " span class="mono" { (v.sha256) }
            }
            @match &v.changes {
                None => {
                    p class="empty" { "The first directory version: the baseline for the changes below." }
                }
                Some(d) if d.is_empty() => {
                    p class="empty" { "No change to parties, keys or agreements." }
                }
                Some(d) => {
                    ul class="changes" {
                        @for p in &d.parties_added {
                            li { span class="add" { "+ party" } " " (party_cell(r, p)) }
                        }
                        @for p in &d.parties_removed {
                            li { span class="rem" { "− party" } " " (party_cell(r, p)) }
                        }
                        @for n in &d.notes {
                            li { span class="chg" { "~" } " " (n) }
                        }
                        @for k in &d.revocations {
                            li {
                                span class="rem" { "✕ key revoked" } " " span class="mono" { (k.name) } " of "
                                (party_name_html(r, &k.party)) " (" span class="mono" { (k.fingerprint) }
                                "), not to be trusted from " (when(k.revoked_at))
                                @if !k.reason.is_empty() { ": " (k.reason) }
                            }
                        }
                    }
                    @if !d.keys.is_empty() {
                        table {
                            caption { "Keys added and removed" }
                            thead {
                                tr {
                                    th scope="col" { "Change" }
                                    th scope="col" { "Party" }
                                    th scope="col" { "Kind" }
                                    th scope="col" { "Key name" }
                                    th scope="col" { "Fingerprint" }
                                }
                            }
                            tbody {
                                @for k in &d.keys {
                                    tr {
                                        td {
                                            @match k.change {
                                                Change::Added => { span class="pill ok" { "added" } }
                                                Change::Removed => { span class="pill bad" { "removed" } }
                                                Change::Changed => { span class="pill info" { "changed" } }
                                            }
                                        }
                                        td { (party_name_html(r, &k.party)) }
                                        td {
                                            @match k.kind {
                                                KeyKind::Member => "member",
                                                KeyKind::Witness => "witness",
                                            }
                                        }
                                        td class="mono" { (k.name) }
                                        td class="mono" { (k.fingerprint) }
                                    }
                                }
                            }
                        }
                    }
                    @if !d.agreements.is_empty() {
                        ul class="changes" {
                            @for a in &d.agreements {
                                @let (class, sign) = match a.change {
                                    Change::Added => ("add", "+ agreement"),
                                    Change::Removed => ("rem", "− agreement"),
                                    Change::Changed => ("chg", "~ agreement"),
                                };
                                li {
                                    span class=(class) { (sign) } " " (agreement_label(r, &a.id))
                                    @if !a.details.is_empty() { ": " (a.details.join("; ")) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The directory versions of the period, the keys revoked, and what changed.
pub(super) fn directory_section(r: &Report) -> Markup {
    html! {
        section class="long" aria-labelledby="d-h" {
            h2 id="d-h" { "Directory and key changes" } (NL)
            p class="lead" {
                "Each version of the coordinator-signed directory the hub enforced, with the keys and agreements that \
                 changed from the version before, and the member keys the coordinator revoked. A key you do not \
                 recognise is worth a phone call to the party."
            }
            (NL)
            @if r.directory_versions.is_empty() {
                p class="empty" { "No directory version was published in the selected period." }
            } @else {
                table {
                    caption { "Directory versions" }
                    thead {
                        tr {
                            th scope="col" class="num" { "Serial" }
                            th scope="col" { "Published in log" }
                            th scope="col" { "Signed" }
                            th scope="col" class="num" { "Parties" }
                            th scope="col" class="num" { "Member keys" }
                            th scope="col" class="num" { "Witness keys" }
                            th scope="col" class="num" { "Revoked keys" }
                            th scope="col" class="num" { "Agreements" }
                            th scope="col" { "SHA-256" }
                        }
                    }
                    tbody {
                        @for v in &r.directory_versions {
                            tr {
                                th scope="row" class="num" { (v.serial) }
                                td class="nowrap" {
                                    @match v.published {
                                        Some(t) => { (when(t)) }
                                        None => { span class="pill wait" { "not in log" } }
                                    }
                                }
                                td class="nowrap" { (when(v.issued_at)) }
                                td class="num" { (v.parties) }
                                td class="num" { (v.member_keys) }
                                td class="num" { (v.witness_keys) }
                                td class="num" { (v.revoked_keys) }
                                td class="num" { (v.agreements) }
                                td {
                                    span class="mono" title=(v.sha256) { (v.sha256.chars().take(16).collect::<String>()) "…" }
                                    @if v.hash_mismatch {
                                        " " span class="pill bad" { "hash differs from log" }
                                    }
                                }
                            }
                        }
                    }
                }
                (revocations_table(r))
                @for v in &r.directory_versions {
                    (version_changes(r, v))
                }
            }
        }
        (NL)
    }
}
