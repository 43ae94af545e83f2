//! Where a hub's stores are (`database` and `blobs` in `hub.toml`): the
//! embedded default, a SQLite file and files in the data directory, or the
//! shared back ends several instances serve one hub from, PostgreSQL and an
//! S3-compatible object store.

use super::object::S3Location;

/// Where the hub's metadata is (`database`): drops, the transfer log,
/// nonces, the directories, settings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum DatabaseLocation {
    /// `sqlite`: the SQLite file in the data directory, the embedded
    /// default that needs no server (one instance per data directory).
    #[default]
    Sqlite,
    /// `postgres://...`: a PostgreSQL database that any number of instances
    /// share.
    Postgres(PostgresUrl),
}

impl DatabaseLocation {
    /// Parses `sqlite` or a `postgres://` (or `postgresql://`) URL; the
    /// error says what is expected and never repeats a password.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "sqlite" => Ok(Self::Sqlite),
            url if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                PostgresUrl::parse(url).map(Self::Postgres)
            }
            _ => Err("give `sqlite` (the default: a file in the data directory) or a PostgreSQL URL, \
                      postgres://USER@HOST:PORT/DATABASE"
                .to_owned()),
        }
    }

    /// Whether other hub instances may be serving from the same stores
    /// (a shared database): periodic work then takes turns.
    pub fn is_shared(&self) -> bool {
        matches!(self, Self::Postgres(_))
    }
}

impl std::fmt::Display for DatabaseLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sqlite => f.write_str("sqlite"),
            Self::Postgres(url) => url.fmt(f),
        }
    }
}

/// A PostgreSQL connection URL, checked when the settings are read. It is
/// shown (check-config, logs, errors) without its password.
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresUrl {
    /// The URL as given, password included: what the connection uses.
    url: String,
    /// The URL with any password replaced by `***`: what is shown.
    shown: String,
}

impl PostgresUrl {
    /// Checks `url` as the store reads it (libpq's TLS parameters included).
    pub fn parse(url: &str) -> Result<Self, String> {
        super::postgres::check_url(url)?;
        Ok(Self { url: url.to_owned(), shown: redact_password(url) })
    }

    /// The URL to connect with, password included: never print it.
    pub fn connect_string(&self) -> &str {
        &self.url
    }
}

impl std::fmt::Display for PostgresUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

impl std::fmt::Debug for PostgresUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PostgresUrl({})", self.shown)
    }
}

/// A URL with its password hidden; one implementation, beside the store
/// that reads the URL.
pub use super::postgres::redact_password;

/// Where the hub keeps ciphertexts (`blobs`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum BlobsLocation {
    /// `files`: in the data directory (small ones in its database), the
    /// embedded default that needs no server.
    #[default]
    Files,
    /// `s3://bucket/prefix`: in an S3-compatible object store, so several
    /// instances can share them; the endpoint, region and credentials come
    /// the standard AWS ways (`AWS_ENDPOINT_URL`, `AWS_REGION`,
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, instance roles).
    S3(S3Location),
}

impl BlobsLocation {
    /// Parses `files` or `s3://bucket/prefix`; the error says what is expected.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "files" => Ok(Self::Files),
            s3 if s3.starts_with("s3://") => S3Location::parse(s3).map(Self::S3),
            _ => Err("give `files` (the default: in the data directory) or s3://BUCKET/PREFIX (an S3-compatible \
                      object store; endpoint and credentials from the AWS_* variables)"
                .to_owned()),
        }
    }
}

impl std::fmt::Display for BlobsLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Files => f.write_str("files"),
            Self::S3(location) => location.fmt(f),
        }
    }
}

/// Where every store of a hub is: what `init`, `serve` and the tools open.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Backends {
    /// The metadata's database.
    pub database: DatabaseLocation,
    /// The ciphertexts' store.
    pub blobs: BlobsLocation,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_never_shown() {
        let url = "postgres://hub:s3cret@db.example:5432/sealdrop?sslmode=require&password=other";
        let parsed = DatabaseLocation::parse(url).unwrap();
        let shown = parsed.to_string();
        assert_eq!(shown, "postgres://hub:***@db.example:5432/sealdrop?sslmode=require&password=***");
        assert!(!format!("{parsed:?}").contains("s3cret") && !format!("{parsed:?}").contains("other"));
        let DatabaseLocation::Postgres(pg) = parsed else { panic!("a PostgreSQL URL") };
        assert_eq!(pg.connect_string(), url, "the connection keeps the password");
        assert_eq!(redact_password("postgres://hub@db/x"), "postgres://hub@db/x");
        assert_eq!(redact_password("postgresql://db/x?user=a"), "postgresql://db/x?user=a");
    }

    #[test]
    fn database_is_sqlite_or_a_postgres_url() {
        assert_eq!(DatabaseLocation::parse("sqlite").unwrap(), DatabaseLocation::Sqlite);
        assert!(DatabaseLocation::parse("postgresql://hub@localhost/hub").unwrap().is_shared());
        let err = DatabaseLocation::parse("mysql://x").unwrap_err();
        assert!(err.contains("give `sqlite`"), "{err}");
        let err = DatabaseLocation::parse("postgres://hub:pw@db:notaport/x").unwrap_err();
        assert!(
            err.contains("postgres://hub:***@db:notaport/x is not a PostgreSQL URL") && !err.contains("pw@"),
            "{err}"
        );
    }
}
