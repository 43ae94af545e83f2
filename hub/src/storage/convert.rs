//! Converting between the hub's values and what a database stores (SQL
//! integers are signed; ids and keys are stored as text), shared by the
//! SQLite and PostgreSQL stores so both refuse the same bad values alike.

use super::meta::MetaError;

/// `n` as a SQL integer; refused if it does not fit.
pub(super) fn to_i64(n: u64, what: &str) -> Result<i64, MetaError> {
    i64::try_from(n).map_err(|_| MetaError::Corrupt(format!("{what} {n} is too large to store")))
}

/// A stored SQL integer as a count or size; refused if negative.
pub(super) fn to_u64(n: i64, what: &str) -> Result<u64, MetaError> {
    u64::try_from(n).map_err(|_| MetaError::Corrupt(format!("stored {what} {n} is negative")))
}

/// A stored text value parsed as `T` (an id, a key, a name).
pub(super) fn parse<T: std::str::FromStr>(s: String, what: &str) -> Result<T, MetaError>
where
    T::Err: std::fmt::Display,
{
    s.parse().map_err(|e| MetaError::Corrupt(format!("stored {what}: {e}")))
}
