//! One byte range of a ciphertext, as a download that broke off asks for
//! it with an HTTP `Range` header: `bytes=START-`, `bytes=START-END` or the
//! last N bytes with `bytes=-N`, one range only. Pure, so the download
//! service judges it after its own checks, and the fuzzer drives it.

/// One range of bytes of a ciphertext, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    /// The first byte served.
    pub start: u64,
    /// The last byte served.
    pub end: u64,
}

impl ByteRange {
    /// How many bytes the range covers.
    pub fn len(&self) -> u64 {
        self.end - self.start + 1
    }

    /// Never true: a range covers at least one byte.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// Why a `Range` header cannot be served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeError {
    /// Not one of the forms the hub serves (the header as received).
    Malformed(String),
    /// More than one range, or more than one `Range` header.
    Multiple,
    /// Starts at or beyond the end (the first byte asked for).
    Unsatisfiable(u64),
}

/// Parses a `Range` header value for a ciphertext of `total` bytes:
/// `bytes=START-` (to the end), `bytes=START-END` (END past the end is cut
/// to the end) or `bytes=-N` (the last N bytes), one range only.
pub fn parse_range(value: &str, total: u64) -> Result<ByteRange, RangeError> {
    let malformed = || RangeError::Malformed(value.to_owned());
    let trimmed = value.trim();
    let spec = match trimmed.split_once('=') {
        Some((unit, spec)) if unit.trim().eq_ignore_ascii_case("bytes") => spec.trim(),
        _ => return Err(malformed()),
    };
    if spec.contains(',') {
        return Err(RangeError::Multiple);
    }
    let (first, last) = spec.split_once('-').ok_or_else(malformed)?;
    let number = |s: &str| -> Result<u64, RangeError> {
        let s = s.trim();
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(malformed());
        }
        s.parse().map_err(|_| malformed())
    };
    match (first.trim().is_empty(), last.trim().is_empty()) {
        (true, true) => Err(malformed()),
        (true, false) => {
            let suffix = number(last)?;
            if suffix == 0 || total == 0 {
                return Err(RangeError::Unsatisfiable(total));
            }
            Ok(ByteRange { start: total.saturating_sub(suffix), end: total - 1 })
        }
        (false, open) => {
            let start = number(first)?;
            let end = if open { u64::MAX } else { number(last)? };
            if end < start {
                return Err(malformed());
            }
            if start >= total {
                return Err(RangeError::Unsatisfiable(start));
            }
            Ok(ByteRange { start, end: end.min(total - 1) })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(start: u64, end: u64) -> Result<ByteRange, RangeError> {
        Ok(ByteRange { start, end })
    }

    #[test]
    fn open_ended_and_closed_ranges() {
        assert_eq!(parse_range("bytes=0-", 10), range(0, 9));
        assert_eq!(parse_range("bytes=4-", 10), range(4, 9));
        assert_eq!(parse_range("bytes=9-", 10), range(9, 9));
        assert_eq!(parse_range("bytes=2-5", 10), range(2, 5));
        assert_eq!(parse_range("bytes=3-3", 10), range(3, 3));
        assert_eq!(parse_range("bytes=2-5", 10).map(|r| r.len()), Ok(4));
        // An end past the last byte is cut to it (RFC 9110, 14.1.2).
        assert_eq!(parse_range("bytes=5-99", 10), range(5, 9));
        assert_eq!(parse_range(&format!("bytes=5-{}", u64::MAX), 10), range(5, 9));
        // The unit is case-insensitive; surrounding blanks are tolerated.
        assert_eq!(parse_range(" Bytes=1-2 ", 10), range(1, 2));
    }

    #[test]
    fn suffix_ranges_take_the_last_bytes() {
        assert_eq!(parse_range("bytes=-3", 10), range(7, 9));
        assert_eq!(parse_range("bytes=-30", 10), range(0, 9));
        assert_eq!(parse_range("bytes=-0", 10), Err(RangeError::Unsatisfiable(10)));
        assert_eq!(parse_range("bytes=-1", 0), Err(RangeError::Unsatisfiable(0)));
    }

    #[test]
    fn a_start_at_or_past_the_end_is_unsatisfiable() {
        assert_eq!(parse_range("bytes=10-", 10), Err(RangeError::Unsatisfiable(10)));
        assert_eq!(parse_range("bytes=11-20", 10), Err(RangeError::Unsatisfiable(11)));
        assert_eq!(parse_range("bytes=0-", 0), Err(RangeError::Unsatisfiable(0)));
    }

    #[test]
    fn several_ranges_are_refused() {
        assert_eq!(parse_range("bytes=0-1,5-6", 10), Err(RangeError::Multiple));
        assert_eq!(parse_range("bytes=0-1, 5-", 10), Err(RangeError::Multiple));
        assert_eq!(parse_range("bytes=0-,", 10), Err(RangeError::Multiple));
    }

    #[test]
    fn malformed_ranges_are_refused() {
        for bad in [
            "",
            "bytes",
            "bytes=",
            "bytes=-",
            "bytes=5",
            "bytes=a-",
            "bytes=1-b",
            "bytes=+1-",
            "bytes=-+1",
            "bytes=1--2",
            "bytes=5-4",
            "bytes=0x10-",
            "bytes=99999999999999999999-",
            "items=0-1",
            "0-1",
            "=0-1",
        ] {
            assert_eq!(parse_range(bad, 10), Err(RangeError::Malformed(bad.to_owned())), "{bad:?}");
        }
    }
}
