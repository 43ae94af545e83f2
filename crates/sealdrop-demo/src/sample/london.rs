//! The 33 London boroughs the generator places pupils in: the embedded
//! local-authority list with approximate centroids and postcode districts,
//! lookup by any of a borough's names, and the boroughs nearest a school's.

use std::sync::OnceLock;

use sealdrop::error::Result;

use super::bad_option;

/// The 33 London local authorities: name, GSS code, DfE LA number, inner/outer.
const LONDON_CSV: &str = include_str!("../../../../keys-example/london-local-authorities.csv");

/// A London borough, from the embedded local-authority list.
#[derive(Debug, Clone, PartialEq)]
pub struct Borough {
    /// Party id as in the example directory, e.g. `barking-and-dagenham`.
    pub id: String,
    /// Display name, e.g. `Barking and Dagenham`.
    pub name: String,
    /// ONS GSS code, e.g. `E09000002`.
    pub gss_code: String,
    /// DfE LA number, e.g. `301`.
    pub dfe_la_number: String,
    /// Approximate centroid latitude.
    pub lat: f64,
    /// Approximate centroid longitude.
    pub lon: f64,
    /// Some real postcode districts (outward codes) in the borough.
    pub postcode_districts: &'static [&'static str],
}

/// Approximate centroids and some postcode districts, by display name.
const GEO: [(&str, f64, f64, &[&str]); 33] = [
    ("City of London", 51.5155, -0.0922, &["EC1A", "EC2V", "EC3M", "EC4M"]),
    ("Barking and Dagenham", 51.5465, 0.1293, &["IG11", "RM8", "RM9", "RM10"]),
    ("Barnet", 51.6252, -0.1517, &["N3", "N12", "NW4", "EN5"]),
    ("Bexley", 51.4549, 0.1505, &["DA5", "DA6", "DA7", "DA15"]),
    ("Brent", 51.5588, -0.2817, &["NW10", "HA0", "HA9", "NW2"]),
    ("Bromley", 51.3727, 0.0476, &["BR1", "BR2", "BR3", "BR6"]),
    ("Camden", 51.5517, -0.1588, &["NW1", "NW3", "NW5", "WC1H"]),
    ("Croydon", 51.3714, -0.0977, &["CR0", "CR2", "CR7", "SE25"]),
    ("Ealing", 51.5130, -0.3089, &["W5", "W13", "UB1", "W3"]),
    ("Enfield", 51.6538, -0.0799, &["EN1", "EN2", "EN3", "N9"]),
    ("Greenwich", 51.4688, 0.0568, &["SE10", "SE18", "SE9", "SE3"]),
    ("Hackney", 51.5450, -0.0553, &["E8", "E5", "E9", "N16"]),
    ("Hammersmith and Fulham", 51.4927, -0.2339, &["W6", "W12", "SW6", "W14"]),
    ("Haringey", 51.5906, -0.1110, &["N8", "N15", "N17", "N22"]),
    ("Harrow", 51.5898, -0.3346, &["HA1", "HA2", "HA3", "HA7"]),
    ("Havering", 51.5779, 0.2121, &["RM1", "RM3", "RM11", "RM12"]),
    ("Hillingdon", 51.5352, -0.4482, &["UB8", "UB10", "HA4", "UB3"]),
    ("Hounslow", 51.4609, -0.3731, &["TW3", "TW4", "TW7", "W4"]),
    ("Islington", 51.5465, -0.1058, &["N1", "N5", "N7", "N19"]),
    ("Kensington and Chelsea", 51.5020, -0.1947, &["W8", "W10", "W11", "SW3"]),
    ("Kingston upon Thames", 51.3925, -0.2890, &["KT1", "KT2", "KT3", "KT6"]),
    ("Lambeth", 51.4571, -0.1231, &["SW2", "SW9", "SE11", "SE27"]),
    ("Lewisham", 51.4452, -0.0209, &["SE4", "SE6", "SE13", "SE23"]),
    ("Merton", 51.4014, -0.1958, &["SW19", "SW20", "CR4", "SM4"]),
    ("Newham", 51.5255, 0.0352, &["E6", "E7", "E13", "E15"]),
    ("Redbridge", 51.5901, 0.0819, &["IG1", "IG2", "IG4", "IG6"]),
    ("Richmond upon Thames", 51.4479, -0.3260, &["TW1", "TW2", "TW9", "TW10"]),
    ("Southwark", 51.4734, -0.0730, &["SE1", "SE5", "SE15", "SE16"]),
    ("Sutton", 51.3618, -0.1945, &["SM1", "SM2", "SM3", "SM5"]),
    ("Tower Hamlets", 51.5150, -0.0350, &["E1", "E2", "E3", "E14"]),
    ("Waltham Forest", 51.5908, -0.0134, &["E4", "E10", "E11", "E17"]),
    ("Wandsworth", 51.4567, -0.1910, &["SW11", "SW12", "SW15", "SW18"]),
    ("Westminster", 51.5120, -0.1520, &["W2", "W9", "SW1V", "NW8"]),
];

/// Home authorities that are not London boroughs, with postcode districts there.
pub(super) const UNROUTABLE: [(&str, &[&str]); 6] = [
    ("Hertfordshire", &["AL1", "SG1", "WD17"]),
    ("Essex", &["CM1", "CO1", "SS14"]),
    ("Kent", &["TN13", "CT1", "ME14"]),
    ("Surrey", &["GU1", "KT22", "RH1"]),
    ("Unknown", &[""]),
    ("", &[""]),
];

/// The 33 London boroughs from the embedded list, with centroids and postcode districts.
pub fn boroughs() -> &'static [Borough] {
    static BOROUGHS: OnceLock<Vec<Borough>> = OnceLock::new();
    BOROUGHS.get_or_init(|| {
        LONDON_CSV
            .lines()
            .skip(1)
            .filter(|l| !l.trim().is_empty())
            .map(|line| {
                let cols: Vec<&str> = line.trim_end_matches('\r').split(',').collect();
                let name = cols[0];
                let (_, lat, lon, districts) = GEO
                    .iter()
                    .find(|g| g.0 == name)
                    .copied()
                    .unwrap_or_else(|| panic!("no centroid for London borough {name}"));
                Borough {
                    id: name.to_lowercase().replace(' ', "-"),
                    name: name.to_owned(),
                    gss_code: cols[1].to_owned(),
                    dfe_la_number: cols[2].to_owned(),
                    lat,
                    lon,
                    postcode_districts: districts,
                }
            })
            .collect()
    })
}

/// Finds a borough by party id, name, GSS code or DfE LA number (case-insensitive).
pub(super) fn find_borough(text: &str) -> Result<&'static Borough> {
    let t = text.trim();
    boroughs()
        .iter()
        .find(|b| {
            b.id.eq_ignore_ascii_case(t)
                || b.name.eq_ignore_ascii_case(t)
                || b.gss_code.eq_ignore_ascii_case(t)
                || b.dfe_la_number == t
        })
        .ok_or_else(|| {
            bad_option(format!(
                "--school-la {text:?} is not a London borough; use a party id: {}",
                boroughs().iter().map(|b| b.id.as_str()).collect::<Vec<_>>().join(", ")
            ))
        })
}

/// Straight-line (equirectangular) distance in km.
pub(super) fn distance_km(a: &Borough, b: &Borough) -> f64 {
    let mean_lat = ((a.lat + b.lat) / 2.0).to_radians();
    let dx = (b.lon - a.lon).to_radians() * mean_lat.cos();
    let dy = (b.lat - a.lat).to_radians();
    6371.0 * dx.hypot(dy)
}

/// The `k` boroughs nearest `school` (excluding it), nearest first.
pub fn nearest_boroughs(school: &Borough, k: usize) -> Vec<&'static Borough> {
    let mut others: Vec<&Borough> = boroughs().iter().filter(|b| b.id != school.id).collect();
    others.sort_by(|a, b| distance_km(school, a).total_cmp(&distance_km(school, b)).then_with(|| a.id.cmp(&b.id)));
    others.truncate(k);
    others
}
