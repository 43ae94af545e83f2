//! How the directory changed from one version to the next: keys added and
//! removed, revocations, agreements added, removed and changed.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use sealdrop_proto::directory::{Directory, SignedDirectory};
use sealdrop_proto::ids::PartyId;

use super::text::day;
/// Whether something appeared or disappeared between directory versions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Change {
    /// New in this version.
    Added,
    /// Gone in this version.
    Removed,
    /// Present in both, different.
    Changed,
}

impl Change {
    /// Lowercase word.
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Added => "added",
            Change::Removed => "removed",
            Change::Changed => "changed",
        }
    }
}

/// Which kind of key changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum KeyKind {
    /// A member key (signs manifests, receipts, requests; receives drops).
    Member,
    /// A witness key (cosigns the hub's checkpoints).
    Witness,
}

/// A member key the coordinator revoked, as a directory version lists it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct KeyRevocation {
    /// The serial of the first directory version that lists the revocation.
    pub serial: u64,
    /// The party the key belonged to.
    pub party: PartyId,
    /// The member the key belonged to.
    pub member: String,
    /// The key's name (`<party>/<member>`).
    pub name: String,
    /// Its fingerprint (`SHA256:...`).
    pub fingerprint: String,
    /// From when the key is not to be trusted.
    pub revoked_at: Timestamp,
    /// Why, as the coordinator put it.
    pub reason: String,
}

/// A key added or removed between directory versions.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct KeyChange {
    /// The party the key belongs to.
    pub party: PartyId,
    /// Member or witness key.
    pub kind: KeyKind,
    /// Added or removed (a replaced key shows as one of each).
    pub change: Change,
    /// The key's name (`<party>/<member>` for member keys).
    pub name: String,
    /// Its fingerprint (`SHA256:...`).
    pub fingerprint: String,
    /// The age recipient, for member keys.
    pub age_recipient: Option<String>,
}

/// An agreement added, removed or changed between directory versions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgreementChange {
    /// The agreement id.
    pub id: String,
    /// What happened to it.
    pub change: Change,
    /// For changes: one line per changed field.
    pub details: Vec<String>,
}

/// What changed from the previous directory version.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DirectoryDiff {
    /// Parties new in this version.
    pub parties_added: Vec<PartyId>,
    /// Parties gone in this version.
    pub parties_removed: Vec<PartyId>,
    /// Member and witness keys added and removed.
    pub keys: Vec<KeyChange>,
    /// Agreements added, removed and changed.
    pub agreements: Vec<AgreementChange>,
    /// Member keys revoked in this version (not listed as revoked before).
    pub revocations: Vec<KeyRevocation>,
    /// Anything else people should notice (renamed parties, a new hub key).
    pub notes: Vec<String>,
}

impl DirectoryDiff {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.parties_added.is_empty()
            && self.parties_removed.is_empty()
            && self.keys.is_empty()
            && self.agreements.is_empty()
            && self.revocations.is_empty()
            && self.notes.is_empty()
    }
}

/// One directory version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectoryVersion {
    /// Its serial.
    pub serial: u64,
    /// When the coordinator signed it.
    pub issued_at: Timestamp,
    /// When the hub logged that it started enforcing it, if it did.
    pub published: Option<Timestamp>,
    /// SHA-256 of the signed directory note, hex.
    pub sha256: String,
    /// Whether the log names a different hash for this serial.
    pub hash_mismatch: bool,
    /// Parties listed.
    pub parties: usize,
    /// Member keys listed.
    pub member_keys: usize,
    /// Witness keys listed.
    pub witness_keys: usize,
    /// Revoked member keys listed (each version keeps every earlier revocation).
    pub revoked_keys: usize,
    /// Agreements listed.
    pub agreements: usize,
    /// Changes from the previous version; `None` for the first one.
    pub changes: Option<DirectoryDiff>,
}

/// The revocations a directory lists, each once.
fn revoked_in(dir: &Directory) -> impl Iterator<Item = KeyRevocation> + '_ {
    dir.parties.iter().flat_map(move |p| {
        p.revoked.iter().map(move |r| KeyRevocation {
            serial: dir.serial,
            party: p.id.clone(),
            member: r.member.to_string(),
            name: r.signing_key.name().to_owned(),
            fingerprint: r.signing_key.fingerprint(),
            revoked_at: r.revoked_at,
            reason: r.reason.clone(),
        })
    })
}

/// Every revocation in the directories (sorted by serial), each with the
/// first serial that lists it, in that order.
pub(super) fn revocations(directories: &[SignedDirectory]) -> Vec<KeyRevocation> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for d in directories {
        for r in revoked_in(&d.directory) {
            if seen.insert((r.party.clone(), r.fingerprint.clone())) {
                out.push(r);
            }
        }
    }
    out.sort();
    out
}

pub(super) fn directory_versions(
    directories: &[SignedDirectory],
    published: &BTreeMap<u64, (Timestamp, String)>,
    since: Option<Timestamp>,
    until: Option<Timestamp>,
) -> Vec<DirectoryVersion> {
    let mut out = Vec::new();
    for (i, d) in directories.iter().enumerate() {
        let dir = &d.directory;
        let logged = published.get(&dir.serial);
        let when = logged.map_or(dir.issued_at, |(t, _)| *t);
        if since.is_some_and(|s| when < s) || until.is_some_and(|u| when >= u) {
            continue;
        }
        let sha256 = d.sha256_hex();
        out.push(DirectoryVersion {
            serial: dir.serial,
            issued_at: dir.issued_at,
            published: logged.map(|(t, _)| *t),
            hash_mismatch: logged.is_some_and(|(_, h)| *h != sha256),
            sha256,
            parties: dir.parties.len(),
            member_keys: dir.parties.iter().map(|p| p.members.len()).sum(),
            witness_keys: dir.parties.iter().map(|p| p.witness_keys.len()).sum(),
            revoked_keys: dir.parties.iter().map(|p| p.revoked.len()).sum(),
            agreements: dir.agreements.len(),
            changes: i.checked_sub(1).map(|p| diff(&directories[p].directory, dir)),
        });
    }
    out
}

/// What changed from `old` to `new`.
pub fn diff(old: &Directory, new: &Directory) -> DirectoryDiff {
    let mut out = DirectoryDiff::default();
    let ids = |d: &Directory| d.parties.iter().map(|p| p.id.clone()).collect::<BTreeSet<_>>();
    let (old_ids, new_ids) = (ids(old), ids(new));
    out.parties_added = new_ids.difference(&old_ids).cloned().collect();
    out.parties_removed = old_ids.difference(&new_ids).cloned().collect();
    for p in &new.parties {
        if let Some(o) = old.party(&p.id)
            && o.name != p.name
        {
            out.notes.push(format!("party `{}` renamed from {:?} to {:?}", p.id, o.name, p.name));
        }
    }

    let keys = |d: &Directory| {
        let mut set = BTreeSet::new();
        for p in &d.parties {
            for m in &p.members {
                set.insert((
                    p.id.clone(),
                    KeyKind::Member,
                    m.signing_key.name().to_owned(),
                    m.signing_key.to_string(),
                    m.signing_key.fingerprint(),
                    Some(m.age_recipient.clone()),
                ));
            }
            for w in &p.witness_keys {
                set.insert((p.id.clone(), KeyKind::Witness, w.name().to_owned(), w.to_string(), w.fingerprint(), None));
            }
        }
        set
    };
    let (old_keys, new_keys) = (keys(old), keys(new));
    let change = |change: Change| {
        move |(party, kind, name, _, fingerprint, age_recipient): &(
            PartyId,
            KeyKind,
            String,
            String,
            String,
            Option<String>,
        )| KeyChange {
            party: party.clone(),
            kind: *kind,
            change,
            name: name.clone(),
            fingerprint: fingerprint.clone(),
            age_recipient: age_recipient.clone(),
        }
    };
    out.keys.extend(old_keys.difference(&new_keys).map(change(Change::Removed)));
    out.keys.extend(new_keys.difference(&old_keys).map(change(Change::Added)));
    out.keys.sort_by(|a, b| (&a.party, a.kind, &a.name, a.change).cmp(&(&b.party, b.kind, &b.name, b.change)));

    let before: BTreeSet<(PartyId, String)> = revoked_in(old).map(|r| (r.party, r.fingerprint)).collect();
    out.revocations = revoked_in(new).filter(|r| !before.contains(&(r.party.clone(), r.fingerprint.clone()))).collect();
    out.revocations.sort();

    for a in &new.agreements {
        let Some(o) = old.agreement(&a.id) else {
            out.agreements.push(AgreementChange { id: a.id.clone(), change: Change::Added, details: vec![] });
            continue;
        };
        let mut details = Vec::new();
        if o.title != a.title {
            details.push(format!("title: {:?} → {:?}", o.title, a.title));
        }
        if o.purpose != a.purpose {
            details.push("purpose reworded".to_owned());
        }
        if o.lawful_basis != a.lawful_basis {
            details.push(format!("lawful basis: {:?} → {:?}", o.lawful_basis, a.lawful_basis));
        }
        let joined = |v: Vec<&PartyId>| v.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(", ");
        let added: Vec<&PartyId> = a.parties.iter().filter(|p| !o.parties.contains(p)).collect();
        let removed: Vec<&PartyId> = o.parties.iter().filter(|p| !a.parties.contains(p)).collect();
        if !added.is_empty() {
            details.push(format!("parties added: {}", joined(added)));
        }
        if !removed.is_empty() {
            details.push(format!("parties removed: {}", joined(removed)));
        }
        if o.max_expiry_days != a.max_expiry_days {
            details.push(format!("longest expiry: {} → {} days", o.max_expiry_days, a.max_expiry_days));
        }
        if o.valid_from != a.valid_from {
            details.push(format!("valid from: {} → {}", day(o.valid_from), day(a.valid_from)));
        }
        if o.valid_until != a.valid_until {
            details.push(format!("valid until: {} → {}", day(o.valid_until), day(a.valid_until)));
        }
        if !details.is_empty() {
            out.agreements.push(AgreementChange { id: a.id.clone(), change: Change::Changed, details });
        }
    }
    for o in &old.agreements {
        if new.agreement(&o.id).is_none() {
            out.agreements.push(AgreementChange { id: o.id.clone(), change: Change::Removed, details: vec![] });
        }
    }
    out.agreements.sort_by(|a, b| a.id.cmp(&b.id));

    match (&old.hub, &new.hub) {
        (None, Some(h)) => out.notes.push(format!("hub listed: {} with log key {}", h.origin, h.log_key.fingerprint())),
        (Some(h), None) => out.notes.push(format!("hub {} no longer listed", h.origin)),
        (Some(a), Some(b)) if a != b => out.notes.push(format!(
            "hub changed: {} ({}) → {} ({})",
            a.origin,
            a.log_key.fingerprint(),
            b.origin,
            b.log_key.fingerprint()
        )),
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::build;
    use super::super::fixture::*;
    use super::*;
    use sealdrop_proto::keys::NoteSigningKey;

    #[test]
    fn directory_key_changes() {
        let (f, _) = fixture();
        let r = build(f.input(None, None));
        assert_eq!(r.directory_versions.len(), 2);
        let v1 = &r.directory_versions[0];
        assert_eq!((v1.serial, v1.published), (1, Some(ts("2026-01-01T09:00:00Z"))));
        assert_eq!(v1.sha256, f.dirs[0].sha256_hex());
        assert!(!v1.hash_mismatch);
        assert!(v1.changes.is_none(), "the first version is the baseline");
        let v2 = &r.directory_versions[1];
        assert_eq!((v2.serial, v2.published), (2, Some(ts("2026-02-01T09:00:00Z"))));
        assert_eq!((v2.parties, v2.member_keys, v2.witness_keys, v2.agreements), (3, 3, 1, 2));
        assert_eq!((v1.revoked_keys, v2.revoked_keys), (0, 1));
        let d = v2.changes.as_ref().unwrap();
        assert!(d.parties_added.is_empty() && d.parties_removed.is_empty());
        let keys: Vec<(&str, KeyKind, Change, &str)> =
            d.keys.iter().map(|k| (k.party.as_str(), k.kind, k.change, k.fingerprint.as_str())).collect();
        assert_eq!(
            keys,
            vec![
                ("hackney", KeyKind::Witness, Change::Added, f.hackney_witness_fp.as_str()),
                ("islington", KeyKind::Member, Change::Added, f.new_islington_fp.as_str()),
                ("islington", KeyKind::Member, Change::Removed, f.old_islington_fp.as_str()),
            ]
        );
        assert_eq!(d.keys[1].name, "islington/data-team");
        assert_eq!(d.agreements.len(), 2);
        assert_eq!((d.agreements[0].id.as_str(), d.agreements[0].change), ("inner-fsm", Change::Changed));
        assert_eq!(d.agreements[0].details, vec!["longest expiry: 30 → 14 days".to_owned()]);
        assert_eq!((d.agreements[1].id.as_str(), d.agreements[1].change), ("sen-transfer", Change::Added));
        assert_eq!(r.current_directory_serial, Some(2));
        // The revocation, in the version that made it and in the report's list.
        let revoked = KeyRevocation {
            serial: 2,
            party: pid("islington"),
            member: "data-team".into(),
            name: "islington/data-team".into(),
            fingerprint: f.old_islington_fp.clone(),
            revoked_at: ts("2026-01-31T17:00:00Z"),
            reason: "laptop lost".into(),
        };
        assert_eq!(d.revocations, vec![revoked.clone()]);
        assert_eq!(r.revocations, vec![revoked]);
        // A later version that keeps the revocation does not make it again.
        let mut v3 = f.dirs[1].directory.clone();
        v3.serial = 3;
        let d = diff(&f.dirs[1].directory, &v3);
        assert!(d.revocations.is_empty() && d.is_empty(), "{d:?}");
        let mut dirs = f.dirs.clone();
        dirs.push(SignedDirectory::sign(v3, &NoteSigningKey::generate("authority.example").unwrap()).unwrap());
        assert_eq!(revocations(&dirs).iter().map(|r| r.serial).collect::<Vec<_>>(), vec![2]);
    }
}
