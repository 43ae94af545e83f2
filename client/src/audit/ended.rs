//! Which sharing agreements have ended, for the IG report: an agreement
//! whose end date (`valid_until`) has passed, or that a later directory
//! version no longer lists (ended by the coordinator), with the date.

use std::collections::BTreeMap;

use jiff::Timestamp;
use sealdrop_proto::directory::SignedDirectory;

/// How and when an agreement ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgreementEnd {
    /// When sharing under it stopped.
    pub at: Timestamp,
    /// The directory serial that no longer lists it, if it was removed
    /// (else its end date passed).
    pub removed_in: Option<u64>,
}

impl AgreementEnd {
    /// One line for people, e.g. `ended 2026-11-20 (removed by directory serial 3)`.
    pub fn describe(&self) -> String {
        let day = self.at.strftime("%Y-%m-%d");
        match self.removed_in {
            Some(serial) => format!("ended {day} (removed by directory serial {serial})"),
            None => format!("ended {day} (its end date passed)"),
        }
    }
}

/// Whether agreement `id` has ended by `now`, given every directory version
/// sorted by serial and the times the log published them (by serial).
pub fn ended(
    directories: &[SignedDirectory],
    published: &BTreeMap<u64, (Timestamp, String)>,
    id: &str,
    now: Timestamp,
) -> Option<AgreementEnd> {
    let last = directories.iter().rposition(|d| d.directory.agreements.iter().any(|a| a.id == id))?;
    let until = directories[last].directory.agreements.iter().find(|a| a.id == id)?.valid_until;
    match directories.get(last + 1) {
        Some(next) => {
            let serial = next.directory.serial;
            let removed = published.get(&serial).map_or(next.directory.issued_at, |(t, _)| *t);
            Some(AgreementEnd { at: until.min(removed), removed_in: (removed < until).then_some(serial) })
        }
        None => (until <= now).then_some(AgreementEnd { at: until, removed_in: None }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sealdrop_proto::directory::{Agreement, Directory};
    use sealdrop_proto::keys::NoteSigningKey;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn version(serial: u64, issued: &str, agreements: &[(&str, &str)]) -> SignedDirectory {
        let d = Directory {
            serial,
            issued_at: t(issued),
            hub: None,
            parties: vec![],
            agreements: agreements
                .iter()
                .map(|(id, until)| Agreement {
                    id: (*id).into(),
                    title: "t".into(),
                    purpose: "p".into(),
                    lawful_basis: "b".into(),
                    parties: vec![],
                    max_expiry_days: 5,
                    valid_from: t("2026-01-01T00:00:00Z"),
                    valid_until: t(until),
                    require_pq: false,
                })
                .collect(),
        };
        SignedDirectory::sign(d, &NoteSigningKey::generate("a").unwrap()).unwrap()
    }

    #[test]
    fn an_agreement_ends_when_its_date_passes_or_a_later_directory_drops_it() {
        let dirs = vec![
            version(1, "2026-02-01T00:00:00Z", &[("fsm", "2027-01-01T00:00:00Z"), ("old", "2026-06-01T00:00:00Z")]),
            version(2, "2026-09-01T00:00:00Z", &[("old", "2026-06-01T00:00:00Z")]),
        ];
        let mut published = BTreeMap::new();
        published.insert(2, (t("2026-09-02T10:00:00Z"), String::new()));
        let now = t("2026-12-01T00:00:00Z");
        let fsm = ended(&dirs, &published, "fsm", now).unwrap();
        assert_eq!(fsm, AgreementEnd { at: t("2026-09-02T10:00:00Z"), removed_in: Some(2) });
        assert_eq!(fsm.describe(), "ended 2026-09-02 (removed by directory serial 2)");
        let old = ended(&dirs, &published, "old", now).unwrap();
        assert_eq!(old.describe(), "ended 2026-06-01 (its end date passed)");
        assert_eq!(ended(&dirs, &published, "old", t("2026-05-01T00:00:00Z")), None, "not yet");
        assert_eq!(ended(&dirs, &published, "unknown", now), None);
    }
}
