//! Synthetic test data: free-school-meals (FSM) pupil lists, for the demo,
//! tests and benchmarks (`sealdrop sample fsm`).
//!
//! A London school borough's FSM list names pupils who live in other
//! boroughs; sharing each row with the borough where the child lives is the
//! exchange sealdrop exists for. This module makes lists shaped like the real
//! thing without a single real person in them:
//!
//! - `pupil_ref` is `SYN` + 9 digits, which can never be mistaken for a real
//!   unique pupil number (a UPN is a letter and 12 digits);
//! - surnames are invented from syllables ("Quenwick", "Dravello"), given names
//!   come from a fixed list that includes accented ones (Zoë, Łucja, Öykü) so
//!   that UTF-8 is exercised end to end;
//! - schools are invented places.
//!
//! Where pupils live follows the options: [`FsmOptions::local_share`] per cent
//! live in the school borough itself, [`FsmOptions::unroutable`] rows have a
//! home authority that is not a London borough (or none), and the rest are
//! spread over the [`FsmOptions::home_las`] boroughs nearest the school
//! borough (by straight-line distance between approximate centroids), nearer
//! boroughs getting more pupils (weight 1/rank). The counts in each of the
//! three groups are exact; which rows fall in which group is random.
//!
//! Output is deterministic: the same options and seed give byte-identical
//! files (ChaCha8, whose output is fixed, never `StdRng`). Rows are generated
//! one at a time ([`fsm_rows`]) and streamed to disk ([`write_fsm`]), so a
//! million rows take constant memory. Borough data is the embedded
//! `keys-example/london-local-authorities.csv`: no hub, directory, key or
//! config is needed.

use std::collections::BTreeMap;
use std::path::Path;

use rand::distributions::{Distribution, WeightedIndex};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use sealdrop::error::{Error, ErrorCode, Kind, Result};

mod london;
mod write;

pub use london::{Borough, boroughs, nearest_boroughs};
use london::{UNROUTABLE, find_borough};
pub use write::write_fsm;

/// The FSM list's header. The column names are a contract other code relies on.
pub const FSM_HEADER: [&str; 12] = [
    "pupil_ref",
    "first_name",
    "last_name",
    "date_of_birth",
    "school",
    "school_la",
    "home_la",
    "home_la_code",
    "home_postcode_district",
    "fsm_eligible",
    "fsm_start_date",
    "ehc_plan",
];

/// The most data rows an `.xlsx` sheet can hold (1,048,576 rows less the header).
pub const XLSX_MAX_ROWS: u64 = 1_048_575;

/// The most rows `pupil_ref` (`SYN` + 9 digits) can number.
pub const MAX_ROWS: u64 = 999_999_999;

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsmOptions {
    /// Number of pupil rows.
    pub rows: u64,
    /// Seed for the random generator; the same seed and options give the same output.
    pub seed: u64,
    /// The borough whose schools the pupils attend: party id (`camden`), or
    /// name, GSS code or DfE LA number.
    pub school_la: String,
    /// How many of the nearest other boroughs out-of-borough pupils live in (1..=32).
    pub home_las: usize,
    /// Percentage of (routable) pupils living in the school borough itself (0..=100).
    pub local_share: u8,
    /// Exactly this many rows get a home authority that is not a London borough.
    pub unroutable: u64,
}

impl Default for FsmOptions {
    fn default() -> Self {
        Self { rows: 1000, seed: 1, school_la: "camden".to_owned(), home_las: 12, local_share: 70, unroutable: 0 }
    }
}

/// One synthetic pupil: the fields in [`FSM_HEADER`] order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsmRecord {
    /// `SYN` + 9 digits, unique within a list.
    pub pupil_ref: String,
    /// Given name (may contain non-ASCII letters).
    pub first_name: String,
    /// Invented surname.
    pub last_name: String,
    /// ISO date, 2010-09-01 ..= 2022-08-31 (ages 4–16 in 2026/27).
    pub date_of_birth: String,
    /// Invented school in the school borough.
    pub school: String,
    /// The school borough's display name.
    pub school_la: String,
    /// The home borough's display name, or a non-London value (possibly empty) for unroutable rows.
    pub home_la: String,
    /// The home borough's DfE LA number; empty for unroutable rows.
    pub home_la_code: String,
    /// A postcode district in the home authority (possibly empty for unroutable rows).
    pub home_postcode_district: String,
    /// `Y` or `N`.
    pub fsm_eligible: String,
    /// ISO date when `fsm_eligible` is `Y`, else empty.
    pub fsm_start_date: String,
    /// `Y` or `N`.
    pub ehc_plan: String,
}

impl FsmRecord {
    /// The fields in [`FSM_HEADER`] order.
    pub fn fields(&self) -> [&str; 12] {
        [
            &self.pupil_ref,
            &self.first_name,
            &self.last_name,
            &self.date_of_birth,
            &self.school,
            &self.school_la,
            &self.home_la,
            &self.home_la_code,
            &self.home_postcode_district,
            &self.fsm_eligible,
            &self.fsm_start_date,
            &self.ehc_plan,
        ]
    }

    /// Whether the home authority is a London borough (so the row can be routed).
    pub fn routable(&self) -> bool {
        !self.home_la_code.is_empty()
    }
}

/// What [`write_fsm`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsmSummary {
    /// Data rows written.
    pub rows: u64,
    /// The school borough's display name.
    pub school_la: String,
    /// Rows per London home borough (display name), the school borough included.
    pub home_las: BTreeMap<String, u64>,
    /// Rows whose home authority is not a London borough.
    pub unroutable: u64,
}

impl FsmSummary {
    /// Rows living in the school borough.
    pub fn local(&self) -> u64 {
        self.home_las.get(&self.school_la).copied().unwrap_or(0)
    }

    /// `(rows, boroughs)` living in London boroughs other than the school borough.
    pub fn elsewhere(&self) -> (u64, usize) {
        self.home_las
            .iter()
            .filter(|(name, _)| **name != self.school_la)
            .fold((0, 0), |(rows, las), (_, n)| (rows + n, las + 1))
    }

    /// One line for people, e.g. `wrote 2,000 synthetic FSM records to fsm.csv (school LA Camden; ...)`.
    pub fn describe(&self, out: &Path) -> String {
        let (other_rows, other_las) = self.elsewhere();
        format!(
            "wrote {} synthetic FSM records to {} (school LA {}; {} living in {}, {} in {} other borough{}, {} unroutable)",
            thousands(self.rows),
            out.display(),
            self.school_la,
            thousands(self.local()),
            self.school_la,
            thousands(other_rows),
            other_las,
            if other_las == 1 { "" } else { "s" },
            thousands(self.unroutable)
        )
    }
}
/// Ordinary given names, some with accents so UTF-8 is exercised.
const FIRST_NAMES: [&str; 64] = [
    "Amelia", "Oliver", "Mohammed", "Aisha", "Olivia", "Noah", "Isla", "Leo", "Ava", "Muhammad", "Grace", "Yusuf",
    "Maryam", "Harry", "Sofia", "Adam", "Freya", "Jayden", "Amara", "Kwame", "Chidi", "Priya", "Arjun", "Mei", "Wei",
    "Daniel", "Hannah", "Theo", "Ella", "Omar", "Layla", "Kacper", "Zainab", "Ethan", "Ruby", "Tomasz", "Elif", "Emre",
    "Kofi", "Ada", "Niamh", "Saoirse", "Aoife", "Dmitri", "Anya", "Ibrahim", "Fatima", "Jack", "Zoë", "José", "Chloé",
    "Öykü", "Siobhán", "Łucja", "Ciarán", "Inês", "Anaïs", "Ayşe", "Léa", "Zoltán", "Renée", "Søren", "Maël", "Björn",
];

/// Syllables for invented surnames ("Quenwick", "Dravello").
const SURNAME_HEADS: [&str; 24] = [
    "Quen", "Drav", "Thrask", "Vell", "Orv", "Brisk", "Yarl", "Zend", "Kolv", "Mirv", "Plov", "Grisk", "Xan", "Wrel",
    "Sorv", "Tesk", "Frandl", "Jusk", "Nim", "Ulv", "Hesk", "Cravn", "Lorp", "Bexl",
];
const SURNAME_TAILS: [&str; 16] = [
    "wick", "ello", "arrow", "ithorpe", "ovane", "enhold", "ister", "undle", "ossa", "amere", "ingham", "etti", "oway",
    "ensk", "aby", "umber",
];

/// Syllables for invented place names, for schools.
const PLACE_HEADS: [&str; 16] = [
    "Ash", "Bram", "Cole", "Elder", "Fern", "Hollow", "Lark", "Quill", "Rook", "Thorn", "Wren", "Yew", "Brack",
    "Hazel", "Sedge", "Marl",
];
const PLACE_TAILS: [&str; 12] =
    ["brook", "field", "wick", "mere", "gate", "stead", "ley", "wood", "ford", "dene", "hurst", "combe"];
const SCHOOL_KINDS: [&str; 5] =
    ["Primary School", "Academy", "Park Primary School", "Church of England Primary School", "Community School"];

fn bad_option(message: String) -> Error {
    Error::new(ErrorCode::BadSampleOption, message)
}

/// Checks the options and resolves the school borough.
fn validate(opts: &FsmOptions) -> Result<&'static Borough> {
    let school = find_borough(&opts.school_la)?;
    if opts.rows > MAX_ROWS {
        return Err(bad_option(format!("--rows {} is too many; at most {MAX_ROWS}", opts.rows)));
    }
    let others = boroughs().len() - 1;
    if !(1..=others).contains(&opts.home_las) {
        return Err(bad_option(format!("--home-las {} is out of range; use 1 to {others}", opts.home_las)));
    }
    if opts.local_share > 100 {
        return Err(bad_option(format!("--local-share {} is not a percentage; use 0 to 100", opts.local_share)));
    }
    if opts.unroutable > opts.rows {
        return Err(bad_option(format!(
            "--unroutable {} is more than --rows {}; use at most {}",
            opts.unroutable, opts.rows, opts.rows
        )));
    }
    Ok(school)
}

/// Streaming generator of synthetic FSM rows; see [`fsm_rows`].
#[derive(Debug)]
pub struct FsmRows {
    rng: ChaCha8Rng,
    school: &'static Borough,
    schools: Vec<String>,
    nearby: Vec<&'static Borough>,
    nearby_weights: WeightedIndex<f64>,
    rows: u64,
    next: u64,
    left_unroutable: u64,
    left_local: u64,
}

/// Rows generated for `opts`, one at a time (constant memory). Fails with
/// `bad_sample_option` when the options are invalid.
pub fn fsm_rows(opts: &FsmOptions) -> Result<FsmRows> {
    let school = validate(opts)?;
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let schools = invent_schools(&mut rng);
    let nearby = nearest_boroughs(school, opts.home_las);
    let nearby_weights = WeightedIndex::new((1..=nearby.len()).map(|rank| 1.0 / rank as f64))
        .map_err(|e| Error::with_kind(Kind::Input, ErrorCode::Internal, e.to_string()))?;
    let routable = opts.rows - opts.unroutable;
    let left_local = (routable * u64::from(opts.local_share) + 50) / 100;
    Ok(FsmRows {
        rng,
        school,
        schools,
        nearby,
        nearby_weights,
        rows: opts.rows,
        next: 0,
        left_unroutable: opts.unroutable,
        left_local,
    })
}

impl FsmRows {
    /// The invented schools pupils are assigned to.
    pub fn schools(&self) -> &[String] {
        &self.schools
    }

    /// The school borough.
    pub fn school_la(&self) -> &'static Borough {
        self.school
    }

    /// The other boroughs out-of-borough pupils live in, nearest first.
    pub fn home_boroughs(&self) -> &[&'static Borough] {
        &self.nearby
    }
}

impl Iterator for FsmRows {
    type Item = FsmRecord;

    fn next(&mut self) -> Option<FsmRecord> {
        if self.next >= self.rows {
            return None;
        }
        let rng = &mut self.rng;
        // Draw this row's group so that the totals are exact: an urn of the rows left.
        let left = self.rows - self.next;
        let draw = rng.gen_range(0..left);
        let (home_la, home_la_code, district) = if draw < self.left_unroutable {
            self.left_unroutable -= 1;
            let (name, districts) = UNROUTABLE[rng.gen_range(0..UNROUTABLE.len())];
            (name.to_owned(), String::new(), districts[rng.gen_range(0..districts.len())])
        } else {
            let home = if draw < self.left_unroutable + self.left_local {
                self.left_local -= 1;
                self.school
            } else {
                self.nearby[self.nearby_weights.sample(rng)]
            };
            let districts = home.postcode_districts;
            (home.name.clone(), home.dfe_la_number.clone(), districts[rng.gen_range(0..districts.len())])
        };
        self.next += 1;

        let first_name = FIRST_NAMES[rng.gen_range(0..FIRST_NAMES.len())];
        let last_name = format!(
            "{}{}",
            SURNAME_HEADS[rng.gen_range(0..SURNAME_HEADS.len())],
            SURNAME_TAILS[rng.gen_range(0..SURNAME_TAILS.len())]
        );
        let dob = rng.gen_range(DOB_FIRST..=DOB_LAST);
        let school = &self.schools[rng.gen_range(0..self.schools.len())];
        let fsm = rng.gen_ratio(9, 10);
        let fsm_start_date = if fsm {
            // Not before the pupil's reception year (the September after they turn 4).
            let (y, m, _) = civil_from_days(dob);
            let birth_year = if m >= 9 { y } else { y - 1 };
            let earliest = FSM_FIRST.max(days_from_civil(birth_year + 5, 9, 1));
            iso_date(rng.gen_range(earliest..=FSM_LAST))
        } else {
            String::new()
        };
        let ehc = rng.gen_ratio(1, 25);
        Some(FsmRecord {
            pupil_ref: format!("SYN{:09}", self.next),
            first_name: first_name.to_owned(),
            last_name,
            date_of_birth: iso_date(dob),
            school: school.clone(),
            school_la: self.school.name.clone(),
            home_la,
            home_la_code,
            home_postcode_district: district.to_owned(),
            fsm_eligible: yn(fsm),
            fsm_start_date,
            ehc_plan: yn(ehc),
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = usize::try_from(self.rows - self.next).unwrap_or(usize::MAX);
        (left, Some(left))
    }
}

fn yn(b: bool) -> String {
    if b { "Y" } else { "N" }.to_owned()
}

/// 8 to 15 distinct invented schools.
fn invent_schools(rng: &mut ChaCha8Rng) -> Vec<String> {
    let n = rng.gen_range(8..=15);
    let mut schools: Vec<String> = Vec::with_capacity(n);
    while schools.len() < n {
        let name = format!(
            "{}{} {}",
            PLACE_HEADS[rng.gen_range(0..PLACE_HEADS.len())],
            PLACE_TAILS[rng.gen_range(0..PLACE_TAILS.len())],
            SCHOOL_KINDS[rng.gen_range(0..SCHOOL_KINDS.len())]
        );
        let place = name.split(' ').next().unwrap_or_default();
        if !schools.iter().any(|s| s.split(' ').next() == Some(place)) {
            schools.push(name);
        }
    }
    schools
}

// Dates as days since 1970-01-01.
const DOB_FIRST: i64 = days_from_civil(2010, 9, 1);
const DOB_LAST: i64 = days_from_civil(2022, 8, 31);
const FSM_FIRST: i64 = days_from_civil(2019, 9, 1);
const FSM_LAST: i64 = days_from_civil(2026, 10, 31);

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
const fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
const fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { yoe + era * 400 + 1 } else { yoe + era * 400 }, m, d)
}

fn iso_date(days: i64) -> String {
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// `1234567` as `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn opts(rows: u64) -> FsmOptions {
        FsmOptions { rows, ..FsmOptions::default() }
    }

    fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
        let mut r = csv::Reader::from_path(path).unwrap();
        let header = r.headers().unwrap().iter().map(str::to_owned).collect();
        let rows = r.records().map(|r| r.unwrap().iter().map(str::to_owned).collect()).collect();
        (header, rows)
    }

    #[test]
    fn borough_table_matches_the_directory() {
        let b = boroughs();
        assert_eq!(b.len(), 33);
        let ids: HashSet<_> = b.iter().map(|b| b.id.as_str()).collect();
        for id in ["barking-and-dagenham", "city-of-london", "kingston-upon-thames", "camden", "westminster"] {
            assert!(ids.contains(id), "{id}");
        }
        let dir: serde_json::Value =
            serde_json::from_str(include_str!("../../../../keys-example/directory.json")).unwrap();
        for p in dir["parties"].as_array().unwrap() {
            let id = p["id"].as_str().unwrap();
            if let Some(borough) = b.iter().find(|b| b.id == id) {
                assert_eq!(p["name"].as_str().unwrap(), borough.name);
            }
        }
        assert!(b.iter().all(|b| b.postcode_districts.len() >= 2));
        let camden = find_borough("camden").unwrap();
        assert_eq!(camden.dfe_la_number, "202");
        assert_eq!(find_borough("Camden").unwrap().id, "camden");
        assert_eq!(find_borough("E09000007").unwrap().id, "camden");
        assert_eq!(find_borough("202").unwrap().id, "camden");
        let near: Vec<_> = nearest_boroughs(camden, 3).iter().map(|b| b.id.as_str()).collect();
        assert!(near.contains(&"islington"), "{near:?}");
    }

    #[test]
    fn same_seed_same_bytes_and_different_seeds_differ() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.csv");
        let b = dir.path().join("b.csv");
        let c = dir.path().join("c.csv");
        write_fsm(&opts(500), &a).unwrap();
        write_fsm(&opts(500), &b).unwrap();
        write_fsm(&FsmOptions { seed: 2, ..opts(500) }, &c).unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        assert_ne!(std::fs::read(&a).unwrap(), std::fs::read(&c).unwrap());
        // The in-memory rows are the file's rows.
        let (_, rows) = read_csv(&a);
        let mem: Vec<Vec<String>> =
            fsm_rows(&opts(500)).unwrap().map(|r| r.fields().map(str::to_owned).to_vec()).collect();
        assert_eq!(rows, mem);
    }

    #[test]
    fn header_and_row_count_are_exact() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("fsm.csv");
        let summary = write_fsm(&opts(1234), &p).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.starts_with(
            "pupil_ref,first_name,last_name,date_of_birth,school,school_la,home_la,home_la_code,\
             home_postcode_district,fsm_eligible,fsm_start_date,ehc_plan\n"
        ));
        assert!(!text.contains('\r'));
        assert_eq!(text.lines().count(), 1235);
        assert_eq!(summary.rows, 1234);
        assert_eq!(summary.home_las.values().sum::<u64>() + summary.unroutable, 1234);
        let (header, rows) = read_csv(&p);
        assert_eq!(header, FSM_HEADER);
        assert_eq!(rows.len(), 1234);
        assert_eq!(fsm_rows(&opts(0)).unwrap().count(), 0);
    }

    #[test]
    fn fields_are_plausible_and_refs_unique() {
        let rows: Vec<FsmRecord> = fsm_rows(&FsmOptions { unroutable: 50, ..opts(5000) }).unwrap().collect();
        let refs: HashSet<_> = rows.iter().map(|r| r.pupil_ref.as_str()).collect();
        assert_eq!(refs.len(), rows.len());
        assert_eq!(rows[0].pupil_ref, "SYN000000001");
        let schools: HashSet<_> = rows.iter().map(|r| r.school.as_str()).collect();
        assert!((8..=15).contains(&schools.len()), "{}", schools.len());
        let mut fsm = 0;
        for r in &rows {
            assert!(r.pupil_ref.len() == 12 && r.pupil_ref[3..].bytes().all(|b| b.is_ascii_digit()));
            assert!(("2010-09-01"..="2022-08-31").contains(&r.date_of_birth.as_str()), "{}", r.date_of_birth);
            assert_eq!(r.school_la, "Camden");
            match r.fsm_eligible.as_str() {
                "Y" => {
                    fsm += 1;
                    assert!(("2019-09-01"..="2026-10-31").contains(&r.fsm_start_date.as_str()));
                    assert!(r.fsm_start_date > r.date_of_birth);
                }
                "N" => assert_eq!(r.fsm_start_date, ""),
                other => panic!("fsm_eligible {other}"),
            }
            assert!(r.ehc_plan == "Y" || r.ehc_plan == "N");
            if r.routable() {
                let b = boroughs().iter().find(|b| b.name == r.home_la).unwrap();
                assert_eq!(b.dfe_la_number, r.home_la_code);
                assert!(b.postcode_districts.contains(&r.home_postcode_district.as_str()));
            }
        }
        assert!((4300..4700).contains(&fsm), "{fsm}");
        let ehc = rows.iter().filter(|r| r.ehc_plan == "Y").count();
        assert!((120..300).contains(&ehc), "{ehc}");
        // Accents are present, so UTF-8 is exercised.
        let names: HashSet<_> = rows.iter().map(|r| r.first_name.as_str()).collect();
        assert!(names.iter().any(|n| !n.is_ascii()));
        assert!(["Zoë", "Łucja", "Öykü"].iter().all(|n| names.contains(n)));
    }

    #[test]
    fn local_share_is_about_right() {
        let s = write_summary(&opts(10_000));
        assert_eq!(s.local(), 7000);
        assert_eq!(s.elsewhere().0, 3000);
        let s = write_summary(&FsmOptions { local_share: 25, school_la: "islington".into(), ..opts(10_000) });
        assert_eq!(s.school_la, "Islington");
        assert_eq!(s.local(), 2500);
        let s = write_summary(&FsmOptions { local_share: 0, ..opts(1000) });
        assert_eq!(s.local(), 0);
        let s = write_summary(&FsmOptions { local_share: 100, ..opts(1000) });
        assert_eq!((s.local(), s.elsewhere()), (1000, (0, 0)));
    }

    fn write_summary(o: &FsmOptions) -> FsmSummary {
        let dir = tempfile::tempdir().unwrap();
        write_fsm(o, &dir.path().join("s.csv")).unwrap()
    }

    #[test]
    fn out_of_borough_rows_use_at_most_k_london_boroughs_nearer_ones_more() {
        let o = FsmOptions { home_las: 5, school_la: "hackney".into(), ..opts(10_000) };
        let generated = fsm_rows(&o).unwrap();
        let allowed: Vec<String> = generated.home_boroughs().iter().map(|b| b.name.clone()).collect();
        assert_eq!(allowed.len(), 5);
        assert!(!allowed.contains(&"Hackney".to_owned()));
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        for r in generated.filter(|r| r.home_la != "Hackney") {
            assert!(r.routable());
            assert!(allowed.contains(&r.home_la), "{}", r.home_la);
            *counts.entry(r.home_la).or_default() += 1;
        }
        assert_eq!(counts.len(), 5);
        assert!(counts[&allowed[0]] > counts[&allowed[4]]);

        // With all 32, every other borough gets some rows.
        let s = write_summary(&FsmOptions { home_las: 32, local_share: 0, ..opts(20_000) });
        assert_eq!(s.home_las.len(), 32);
        assert!(!s.home_las.contains_key("Camden"));
        assert!(s.describe(Path::new("x.csv")).contains("in 32 other boroughs"));
    }

    #[test]
    fn exactly_u_unroutable_rows() {
        for (rows, u) in [(1000, 0), (1000, 37), (100, 100), (10, 1)] {
            let recs: Vec<_> = fsm_rows(&FsmOptions { unroutable: u, ..opts(rows) }).unwrap().collect();
            let bad: Vec<_> = recs.iter().filter(|r| !r.routable()).collect();
            assert_eq!(bad.len() as u64, u);
            for r in bad {
                assert!(r.home_la_code.is_empty());
                assert!(!boroughs().iter().any(|b| b.name == r.home_la), "{}", r.home_la);
            }
        }
        let s = write_summary(&FsmOptions { unroutable: 100, ..opts(2000) });
        assert_eq!(s.unroutable, 100);
        assert_eq!(s.local(), 1330);
        assert!(s.describe(Path::new("f.csv")).ends_with("100 unroutable)"));
    }

    #[test]
    fn summary_line() {
        let s = write_summary(&opts(2000));
        assert_eq!(
            s.describe(Path::new("fsm.csv")),
            "wrote 2,000 synthetic FSM records to fsm.csv (school LA Camden; 1,400 living in Camden, \
             600 in 12 other boroughs, 0 unroutable)"
        );
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000_000), "1,000,000");
    }

    #[test]
    fn bad_options_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.csv");
        let code = |o: FsmOptions, p: &Path| write_fsm(&o, p).unwrap_err().code;
        let e = write_fsm(&FsmOptions { school_la: "hertfordshire".into(), ..opts(10) }, &p).unwrap_err();
        assert_eq!(e.code, "bad_sample_option");
        assert!(e.message.contains("barking-and-dagenham"), "{}", e.message);
        assert_eq!(code(FsmOptions { home_las: 0, ..opts(10) }, &p), "bad_sample_option");
        assert_eq!(code(FsmOptions { home_las: 33, ..opts(10) }, &p), "bad_sample_option");
        assert_eq!(code(FsmOptions { local_share: 101, ..opts(10) }, &p), "bad_sample_option");
        assert_eq!(code(FsmOptions { unroutable: 11, ..opts(10) }, &p), "bad_sample_option");
        assert_eq!(code(opts(10), &dir.path().join("x.txt")), "bad_sample_option");
        assert_eq!(code(opts(10), &dir.path().join("x")), "bad_sample_option");
        assert_eq!(code(opts(XLSX_MAX_ROWS + 1), &dir.path().join("x.xlsx")), "bad_sample_option");
        assert!(!p.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["f.csv", "f.xlsx"] {
            let p = dir.path().join(name);
            std::fs::write(&p, b"keep me").unwrap();
            let e = write_fsm(&opts(10), &p).unwrap_err();
            assert_eq!(e.code, "output_exists");
            assert!(e.message.contains("choose another name"));
            assert_eq!(std::fs::read(&p).unwrap(), b"keep me");
        }
        // No temporary files left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn xlsx_reads_back() {
        use calamine::{Data, Reader, Xlsx, open_workbook};
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("fsm.xlsx");
        let o = FsmOptions { unroutable: 3, ..opts(300) };
        let summary = write_fsm(&o, &p).unwrap();
        assert_eq!(summary.rows, 300);
        let mut wb: Xlsx<_> = open_workbook(&p).unwrap();
        assert_eq!(wb.sheet_names().first().map(String::as_str), Some("FSM"));
        let range = wb.worksheet_range("FSM").unwrap();
        let text = |c: &Data| match c {
            Data::String(s) => s.clone(),
            Data::Empty => String::new(),
            other => panic!("unexpected cell {other:?}"),
        };
        let mut rows = range.rows();
        assert_eq!(rows.next().unwrap().iter().map(text).collect::<Vec<_>>(), FSM_HEADER);
        let got: Vec<Vec<String>> =
            rows.map(|r| (0..12).map(|i| r.get(i).map(text).unwrap_or_default()).collect()).collect();
        let want: Vec<Vec<String>> = fsm_rows(&o).unwrap().map(|r| r.fields().map(str::to_owned).to_vec()).collect();
        assert_eq!(got, want);
        // Byte-identical for the same seed, too.
        let q = dir.path().join("again.xlsx");
        write_fsm(&o, &q).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), std::fs::read(&q).unwrap());
    }

    #[test]
    fn dates_round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(iso_date(DOB_FIRST), "2010-09-01");
        assert_eq!(iso_date(DOB_LAST), "2022-08-31");
        assert_eq!(iso_date(days_from_civil(2024, 2, 29) + 1), "2024-03-01");
        for d in DOB_FIRST..=FSM_LAST {
            let (y, m, dd) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, dd), d);
        }
    }
}
