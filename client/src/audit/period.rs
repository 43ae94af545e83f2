//! The period an IG report covers: `audit report --since` (inclusive) and
//! `--until` (exclusive), e.g. `--since 2026-11-01 --until 2026-12-01` for
//! November's return.

use jiff::Timestamp;

/// How the report's header names the period, each time shown by `show`.
pub fn describe(since: Option<Timestamp>, until: Option<Timestamp>, show: impl Fn(Timestamp) -> String) -> String {
    match (since, until) {
        (None, None) => "the whole log".to_owned(),
        (Some(s), None) => format!("drops committed since {}", show(s)),
        (None, Some(u)) => format!("drops committed before {}", show(u)),
        (Some(s), Some(u)) => format!("drops committed from {} until before {}", show(s), show(u)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_period_says_which_end_is_exclusive() {
        let t = |s: &str| s.parse::<Timestamp>().unwrap();
        let show = |t: Timestamp| t.to_string();
        assert_eq!(describe(None, None, show), "the whole log");
        assert_eq!(
            describe(Some(t("2026-11-01T00:00:00Z")), Some(t("2026-12-01T00:00:00Z")), show),
            "drops committed from 2026-11-01T00:00:00Z until before 2026-12-01T00:00:00Z"
        );
        assert_eq!(
            describe(None, Some(t("2026-12-01T00:00:00Z")), show),
            "drops committed before 2026-12-01T00:00:00Z"
        );
    }
}
