//! Which key signed each manifest and receipt in the IG report.
//!
//! A member name is reused with a new key when a lost laptop's key is
//! replaced (`directory revoke --replace-with`), so the name alone does not
//! say which key signed. The key is the one the offline audit verified the
//! signature with: the member key of that name in the directory version in
//! force at the entry (the newest one the log published before it). The
//! report is only built from a log that passed the audit, so the signature
//! is not verified a second time here (that would double the report's cost
//! on a large log); the note must still carry a signature line with that
//! key's id, or no key is shown rather than a guessed one.

use std::collections::{BTreeMap, HashMap};

use jiff::Timestamp;
use sealdrop_proto::directory::SignedDirectory;
use sealdrop_proto::ids::PartyId;
use sealdrop_proto::keys::NoteVerifierKey;
use sealdrop_proto::note::signature_ids;

/// A member key that signed documents in the report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignerKey {
    /// The party the key belongs to.
    pub party: PartyId,
    /// The key's name, `<party>/<member>`.
    pub name: String,
    /// Its fingerprint (`SHA256:...`, as `key show` and `directory fingerprint` print it).
    pub fingerprint: String,
}

impl SignerKey {
    /// The fingerprint shortened for a table cell (`SHA256:` and 8 hex
    /// digits); the full one goes in the cell's title.
    pub fn short(&self) -> String {
        short_fingerprint(&self.fingerprint)
    }
}

/// `SHA256:` and the first 8 hex digits, then an ellipsis.
pub fn short_fingerprint(fingerprint: &str) -> String {
    const SHOWN: usize = "SHA256:".len() + 8;
    match fingerprint.get(..SHOWN) {
        Some(head) if fingerprint.len() > SHOWN => format!("{head}…"),
        _ => fingerprint.to_owned(),
    }
}

/// An index into the signer keys, or none: a plain `u32` (not an
/// `Option<u32>`, twice the size) keeps the report's per-drop summary small.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyIx(u32);

impl KeyIx {
    /// No key known.
    pub const NONE: KeyIx = KeyIx(u32::MAX);

    /// From [`Signers::signer`]'s answer.
    pub fn of(ix: Option<u32>) -> Self {
        ix.map_or(Self::NONE, KeyIx)
    }

    /// The index, if a key is known.
    pub fn get(self) -> Option<u32> {
        (self != Self::NONE).then_some(self.0)
    }
}

/// Finds each document's signing key while the entries stream by, keeping
/// each key once (drops hold 4-byte indexes).
#[derive(Debug, Default)]
pub struct Signers {
    /// Per directory serial: key name to (key index, key id).
    versions: HashMap<u64, HashMap<String, (u32, u32)>>,
    /// The serial of the directory in force.
    current: Option<u64>,
    keys: Vec<SignerKey>,
}

impl Signers {
    /// Indexes the member keys of every directory version.
    pub fn new(directories: &[SignedDirectory]) -> Self {
        let mut s = Signers::default();
        let mut seen: HashMap<(String, String), u32> = HashMap::new();
        for d in directories {
            let mut names = HashMap::new();
            for p in &d.directory.parties {
                for m in &p.members {
                    let k: &NoteVerifierKey = &m.signing_key;
                    let key =
                        SignerKey { party: p.id.clone(), name: k.name().to_owned(), fingerprint: k.fingerprint() };
                    let ix = *seen.entry((key.name.clone(), key.fingerprint.clone())).or_insert_with(|| {
                        s.keys.push(key);
                        u32::try_from(s.keys.len() - 1)
                            .ok()
                            .filter(|i| *i != u32::MAX)
                            .expect("fewer than 4 billion keys")
                    });
                    names.insert(k.name().to_owned(), (ix, k.id()));
                }
            }
            s.versions.insert(d.directory.serial, names);
        }
        s
    }

    /// The log published directory `serial`: it is in force from here on.
    pub fn published(&mut self, serial: u64) {
        self.current = Some(serial);
    }

    /// The key named `name` in the directory in force that signed `note`.
    pub fn signer(&self, note: &str, name: &str) -> Option<u32> {
        let &(ix, id) = self.versions.get(&self.current?)?.get(name)?;
        signature_ids(note).iter().any(|(n, i)| n == name && *i == id).then_some(ix)
    }

    /// Key `ix` (from [`Signers::signer`]).
    pub fn key(&self, ix: u32) -> &SignerKey {
        &self.keys[ix as usize]
    }

    /// Every key, by index.
    pub fn into_keys(self) -> Vec<SignerKey> {
        self.keys
    }
}

/// What one key signed among the report's drops.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyUse {
    /// The key.
    pub key: SignerKey,
    /// Manifests it signed (drops sent).
    pub manifests: u64,
    /// Receipts it signed (acknowledgements).
    pub receipts: u64,
    /// The first and last time it signed one, by the log.
    pub first: Timestamp,
    /// See `first`.
    pub last: Timestamp,
    /// When a directory version revokes it, from when and why.
    pub revoked: Option<(Timestamp, String)>,
    /// Whether the newest directory lists it as a member key.
    pub current: bool,
}

/// Tallies signatures per key: `uses` yields (key index, is a receipt, time).
pub fn key_uses(
    keys: &[SignerKey],
    uses: impl Iterator<Item = (u32, bool, Timestamp)>,
    directories: &[SignedDirectory],
) -> Vec<KeyUse> {
    let mut by_key: BTreeMap<u32, KeyUse> = BTreeMap::new();
    for (ix, receipt, at) in uses {
        let u = by_key.entry(ix).or_insert_with(|| KeyUse {
            key: keys[ix as usize].clone(),
            manifests: 0,
            receipts: 0,
            first: at,
            last: at,
            revoked: None,
            current: false,
        });
        if receipt {
            u.receipts += 1;
        } else {
            u.manifests += 1;
        }
        u.first = u.first.min(at);
        u.last = u.last.max(at);
    }
    let newest = directories.iter().max_by_key(|d| d.directory.serial);
    let mut out: Vec<KeyUse> = by_key.into_values().collect();
    for u in &mut out {
        let is = |k: &NoteVerifierKey| k.name() == u.key.name && k.fingerprint() == u.key.fingerprint;
        u.revoked = directories
            .iter()
            .flat_map(|d| d.directory.parties.iter().flat_map(|p| &p.revoked))
            .find(|r| is(&r.signing_key))
            .map(|r| (r.revoked_at, r.reason.clone()));
        u.current =
            newest.is_some_and(|d| d.directory.parties.iter().flat_map(|p| &p.members).any(|m| is(&m.signing_key)));
    }
    out.sort_by(|a, b| (&a.key.name, a.first).cmp(&(&b.key.name, b.first)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::report::fixture::fixture;
    use crate::audit::report::{build, render_html, row_json};

    #[test]
    fn a_reused_member_name_shows_the_key_that_signed_each_document() {
        // islington/data-team's key is replaced in directory 2: its receipts
        // of D1 and D6 (before) and D4 (after) name the same member with two keys.
        let (f, ids) = fixture();
        let (old, new) = (f.old_islington_fp.clone(), f.new_islington_fp.clone());
        assert_ne!(old, new);
        let r = build(f.input(None, None));
        let receipt = |drop: &str| {
            let row = r.rows().find(|row| row.drop == drop && row.recipient.as_str() == "islington").unwrap();
            let j = row_json(&row);
            (j["receipt_signer"].as_str().map(str::to_owned), j["receipt_key_fingerprint"].as_str().map(str::to_owned))
        };
        let name = Some("islington/data-team".to_owned());
        assert_eq!(receipt(ids[0].as_str()), (name.clone(), Some(old.clone())));
        assert_eq!(receipt(ids[5].as_str()), (name.clone(), Some(old.clone())));
        assert_eq!(receipt(ids[3].as_str()), (name, Some(new.clone())));
        // Islington's manifests: D2 with the old key, D5 with the new one.
        let manifest = |drop: &str| r.rows().find(|row| row.drop == drop).unwrap().manifest_key.unwrap().clone();
        assert_eq!(manifest(ids[1].as_str()).fingerprint, old);
        assert_eq!(manifest(ids[4].as_str()).fingerprint, new);
        // No receipt, no key.
        let waiting = r.rows().find(|row| row.drop == ids[4].as_str()).unwrap();
        assert!(waiting.receipt_key.is_none() && row_json(&waiting)["receipt_key_fingerprint"].is_null());

        // The key table: one row per key, the old one marked revoked.
        let isl: Vec<&KeyUse> = r.signing_keys.iter().filter(|u| u.key.name == "islington/data-team").collect();
        assert_eq!(isl.len(), 2, "{isl:?}");
        let by_fp = |fp: &str| *isl.iter().find(|u| u.key.fingerprint == fp).unwrap();
        assert_eq!((by_fp(&old).manifests, by_fp(&old).receipts), (1, 2));
        assert_eq!((by_fp(&new).manifests, by_fp(&new).receipts), (1, 1));
        assert!(by_fp(&old).revoked.as_ref().is_some_and(|(_, why)| why == "laptop lost") && !by_fp(&old).current);
        assert!(by_fp(&new).revoked.is_none() && by_fp(&new).current);

        let html = render_html(&r);
        let section = &html[html.find("<h2 id=\"k-h\">Signing keys</h2>").unwrap()..];
        let section = &section[..section.find("</section>").unwrap()];
        assert!(section.contains(&old) && section.contains(&new), "{section}");
        // The waiting drop D5's sender cell: short form, the full one in its title.
        let waiting = &html[html.find("<h2 id=\"w-h\">").unwrap()..];
        let waiting = &waiting[..waiting.find("</section>").unwrap()];
        assert!(waiting.contains(&format!("title=\"islington/data-team {new}\">{}</span>", short_fingerprint(&new))));
    }

    #[test]
    fn no_key_is_shown_for_a_signature_line_of_another_key() {
        // A note signed by a key of the same name that the directory in
        // force does not list: nothing, rather than the listed key's fingerprint.
        let (f, _) = fixture();
        let dirs = f.input(None, None).directories;
        let mut s = Signers::new(&dirs);
        let stranger = crate::audit::report::fixture::member("islington");
        let receipt = sealdrop_proto::drop::Receipt {
            drop: sealdrop_proto::ids::DropId::random(),
            recipient: "islington".parse().unwrap(),
            member: "data-team".parse().unwrap(),
            ciphertext_sha256: "00".repeat(32),
            ciphertext_len: 1,
            received: Timestamp::UNIX_EPOCH,
        };
        let note = sealdrop_proto::note::sign_doc(&receipt, &stranger.signing);
        assert_eq!(s.signer(&note, "islington/data-team"), None, "no directory in force yet");
        s.published(2);
        assert_eq!(s.signer(&note, "islington/data-team"), None);
        let note = sealdrop_proto::note::sign_doc(&receipt, &f.keys["islington"].signing);
        let ix = s.signer(&note, "islington/data-team").expect("the listed key's own signature");
        assert_eq!(s.key(ix).fingerprint, f.new_islington_fp);
        assert_eq!(short_fingerprint("SHA256:0123456789abcdef"), "SHA256:01234567…");
    }
}
