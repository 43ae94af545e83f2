//! Deciding where each row goes: the split column's value is resolved to a
//! party through the signed directory (id, display name, full council name,
//! GSS code, DfE LA number; codes only exactly as written, see
//! [`Directory::resolve_party`]). Each distinct value is resolved once.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use sealdrop_proto::directory::Directory;
use sealdrop_proto::ids::PartyId;

/// Distinct values remembered; beyond this, values that resolve to nothing
/// are resolved again each time so a wrongly chosen column (one value per
/// row) cannot make memory grow with the number of rows.
const MAX_REMEMBERED: usize = 10_000;
/// Distinct unroutable values listed in the summary.
pub const MAX_LISTED: usize = 8;

/// Where a row goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// To the recipient at this index of [`Router::recipients`].
    To(usize),
    /// The sender's own party: the row stays here.
    Own,
    /// No party: the row is never sent.
    Unroutable,
}

/// Resolves values to routes and counts what it saw.
pub struct Router<'d> {
    dir: &'d Directory,
    me: PartyId,
    cache: HashMap<Box<[u8]>, Route, BuildHasherDefault<Fnv>>,
    /// Recipients in the order first seen.
    pub recipients: Vec<PartyId>,
    /// The first few distinct unroutable values and their row counts.
    pub unroutable_values: Vec<(String, u64)>,
    /// Rows whose unroutable value is not listed.
    pub unlisted_rows: u64,
}

impl<'d> Router<'d> {
    /// Routes for sender `me` through `dir`.
    pub fn new(dir: &'d Directory, me: PartyId) -> Self {
        Self {
            dir,
            me,
            cache: HashMap::default(),
            recipients: Vec::new(),
            unroutable_values: Vec::new(),
            unlisted_rows: 0,
        }
    }

    /// Where a row whose split column holds `value` goes. Looked up as the
    /// file's bytes first: converting each row's value to text and hashing
    /// it with the default (SipHash) hasher was a third of pass one's
    /// parsing thread (`perf record`, 1,000,000 rows). Text that is not
    /// UTF-8 is read with U+FFFD in place of bad bytes (the file was refused
    /// before then unless converted from another encoding).
    pub fn route(&mut self, value: impl AsRef<[u8]>) -> Route {
        let bytes = value.as_ref();
        if let Some(&r) = self.cache.get(bytes) {
            if r == Route::Unroutable {
                self.count_unroutable(&String::from_utf8_lossy(bytes));
            }
            return r;
        }
        let value = String::from_utf8_lossy(bytes);
        let route = match self.dir.resolve_party(&value) {
            Some(p) if p.id == self.me => Route::Own,
            Some(p) => match self.recipients.iter().position(|r| r == &p.id) {
                Some(i) => Route::To(i),
                None => {
                    self.recipients.push(p.id.clone());
                    Route::To(self.recipients.len() - 1)
                }
            },
            None => Route::Unroutable,
        };
        if route == Route::Unroutable {
            self.count_unroutable(&value);
        }
        if route != Route::Unroutable || self.cache.len() < MAX_REMEMBERED {
            self.cache.insert(bytes.into(), route);
        }
        route
    }

    fn count_unroutable(&mut self, value: &str) {
        let value = value.trim();
        if let Some(entry) = self.unroutable_values.iter_mut().find(|(v, _)| v == value) {
            entry.1 += 1;
        } else if self.unroutable_values.len() < MAX_LISTED {
            self.unroutable_values.push((value.to_owned(), 1));
        } else {
            self.unlisted_rows += 1;
        }
    }
}

/// FNV-1a, for the cache of values: keys are a few bytes, and the file is
/// the analyst's own (nobody else chooses them to collide), and the cache
/// is bounded anyway ([`MAX_REMEMBERED`]). Not used for anything else.
#[derive(Clone, Copy)]
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sealdrop_proto::directory::Party;
    use sealdrop_proto::keys::MemberSecretKey;

    fn dir() -> Directory {
        let party = |id: &str, name: &str, aliases: &[&str]| {
            let card = MemberSecretKey::generate(id.parse().unwrap(), "data-team".parse().unwrap()).public();
            Party { aliases: aliases.iter().map(|a| (*a).to_owned()).collect(), ..Party::with_member(name, card) }
        };
        Directory {
            serial: 1,
            issued_at: "2026-01-01T00:00:00Z".parse().unwrap(),
            hub: None,
            parties: vec![
                party("camden", "Camden", &["E09000007", "202"]),
                party("islington", "Islington", &["E09000019", "206"]),
                party("hackney", "Hackney", &["E09000012", "204"]),
            ],
            agreements: vec![],
        }
    }

    #[test]
    fn every_alias_form_routes_and_own_rows_stay() {
        let d = dir();
        let mut r = Router::new(&d, "camden".parse().unwrap());
        for v in ["islington", "Islington", "ISLINGTON ", "London Borough of Islington", "E09000019", "206"] {
            assert_eq!(r.route(v), Route::To(0), "{v}");
        }
        assert_eq!(r.route("Hackney"), Route::To(1));
        assert_eq!(r.route("202"), Route::Own);
        assert_eq!(r.route("London Borough of Camden"), Route::Own);
        assert_eq!(r.recipients, ["islington".parse::<PartyId>().unwrap(), "hackney".parse().unwrap()]);
    }

    #[test]
    fn a_reformatted_code_is_unroutable() {
        let d = dir();
        let mut r = Router::new(&d, "camden".parse().unwrap());
        for v in ["20.6", "2.06", "2/06", "206.0", "e09000019", "E09000019.", "2 06"] {
            assert_eq!(r.route(v), Route::Unroutable, "{v:?}");
        }
        assert_eq!(r.route(" 206 "), Route::To(0));
        assert!(r.recipients.len() == 1 && r.unroutable_values.len() == MAX_LISTED.min(7));
    }

    #[test]
    fn unroutable_values_are_counted_and_listed_with_a_bound() {
        let d = dir();
        let mut r = Router::new(&d, "camden".parse().unwrap());
        for v in ["", " ", "Hertfordshire", "Hertfordshire", "Unknown"] {
            assert_eq!(r.route(v), Route::Unroutable, "{v:?}");
        }
        assert_eq!(r.unroutable_values, [("".into(), 2), ("Hertfordshire".into(), 2), ("Unknown".into(), 1)]);
        for i in 0..20 {
            r.route(format!("nowhere {i}"));
        }
        assert_eq!(r.unroutable_values.len(), MAX_LISTED);
        assert_eq!(r.unlisted_rows, 15);
    }
}
