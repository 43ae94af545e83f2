//! Creating a hub's data directory: the database with the hub's origin, the
//! authority key it trusts and the first directory, plus the log key.
//!
//! The authority key is fixed here for the hub's life; later directories are
//! accepted only if that key signed them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sealdrop_proto::clock::Clock;
use sealdrop_proto::directory::SignedDirectory;
use sealdrop_proto::keys::NoteVerifierKey;

use crate::error::HubError;
use crate::hub::{DB_FILE, block_on, whole_seconds};
use crate::storage::meta::{StoredDirectory, setting};
use crate::storage::postgres::PgMetaStore;
use crate::storage::{
    Backends, BlobsLocation, DatabaseLocation, DirectoryStore, FsBlobStore, PostgresUrl, SettingsStore, SqliteMetaStore,
};
use crate::{log_key, transfer_log};

/// What `init` needs.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// Where the hub keeps its database, log key and ciphertext.
    pub data_dir: PathBuf,
    /// The hub's origin name, also its transfer log's origin.
    pub origin: String,
    /// The key that signs directories (the agreement coordinator's).
    pub authority: NoteVerifierKey,
    /// The first signed directory note.
    pub directory_note: String,
    /// Where the hub's stores are: the database must hold no hub yet and
    /// an object store no objects under the prefix.
    pub backends: Backends,
}

/// The longest origin accepted.
pub const MAX_ORIGIN_LEN: usize = 200;

/// Checks an origin name: it names the hub's log, whose checkpoints start
/// with it, so it must not look like a sealdrop document type (`sealdrop/`).
pub fn validate_origin(origin: &str) -> Result<(), HubError> {
    let bad = |reason| Err(HubError::BadOrigin { origin: origin.to_owned(), reason });
    if origin.is_empty() {
        return bad("it is empty");
    }
    if origin.len() > MAX_ORIGIN_LEN {
        return bad("it is longer than 200 characters");
    }
    if origin.chars().any(char::is_whitespace) {
        return bad("it contains whitespace");
    }
    if origin.chars().any(char::is_control) {
        return bad("it contains control characters");
    }
    if origin.contains('+') {
        return bad("it contains '+', which signed-note key names may not");
    }
    if origin.starts_with("sealdrop/") {
        return bad("it starts with `sealdrop/`, which is reserved for sealdrop's signed documents");
    }
    Ok(())
}

/// Creates and initialises the hub's data directory (and, with PostgreSQL,
/// the hub in its database). Refuses a directory that is not empty, a
/// database that already holds a hub and an object store prefix that
/// already holds objects, so an existing hub is never overwritten and no
/// two hubs share a store. The first directory is stored together with
/// the transfer log's first entry and checkpoint.
pub fn init(opts: &InitOptions, clock: &dyn Clock) -> Result<(), HubError> {
    validate_origin(&opts.origin)?;
    let directory = SignedDirectory::verify(&opts.directory_note, &opts.authority).map_err(HubError::Directory)?;
    let data_dir = &opts.data_dir;
    block_on(|| async {
        // Every refusal before anything is written.
        let postgres = match &opts.backends.database {
            DatabaseLocation::Sqlite => None,
            DatabaseLocation::Postgres(url) => Some(empty_postgres(url).await?),
        };
        if let BlobsLocation::S3(location) = &opts.backends.blobs {
            let found = crate::storage::object::survey(location).await?;
            if found.blobs + found.uploads > 0 {
                return Err(HubError::BlobsNotEmpty {
                    blobs: location.to_string(),
                    count: found.blobs + found.uploads,
                });
            }
        }
        prepare_empty_dir(data_dir)?;
        let (settings, directories): (Arc<dyn SettingsStore>, Arc<dyn DirectoryStore>) = match postgres {
            None => {
                let store = Arc::new(SqliteMetaStore::open(&data_dir.join(DB_FILE))?);
                (store.clone(), store)
            }
            Some(store) => {
                let store = Arc::new(store);
                (store.clone(), store)
            }
        };
        let written = write_hub(opts, &directory, settings.as_ref(), directories.as_ref(), clock).await;
        if written.is_err() && opts.backends.database.is_shared() {
            // The database is untouched or rolled back: leave no key behind
            // that names a hub which does not exist.
            let _ = std::fs::remove_file(data_dir.join(log_key::LOG_KEY_FILE));
        }
        written
    })?;
    if opts.backends.blobs == BlobsLocation::Files {
        FsBlobStore::open(data_dir)?;
    }
    // An existing empty folder keeps the mode it was made with otherwise.
    crate::private_files::tighten(data_dir)?;
    Ok(())
}

/// Connects to the PostgreSQL database at `url` (creating the schema) and
/// checks it holds no hub.
async fn empty_postgres(url: &PostgresUrl) -> Result<PgMetaStore, HubError> {
    let store = PgMetaStore::connect(url.connect_string())
        .await
        .map_err(|source| HubError::Database { database: url.to_string(), source })?;
    if let Some(origin) = store.setting(setting::ORIGIN).await? {
        return Err(HubError::DatabaseHoldsAHub { database: url.to_string(), origin });
    }
    if store.current_directory().await?.is_some() {
        return Err(HubError::DatabaseHoldsAHub { database: url.to_string(), origin: "(no origin)".to_owned() });
    }
    Ok(store)
}

/// The hub's settings, log key and first directory (with the log's first
/// entry), and where its ciphertexts are.
async fn write_hub(
    opts: &InitOptions,
    directory: &SignedDirectory,
    settings: &dyn SettingsStore,
    directories: &dyn DirectoryStore,
    clock: &dyn Clock,
) -> Result<(), HubError> {
    let log_key = log_key::create(&opts.data_dir.join(log_key::LOG_KEY_FILE), &opts.origin)?;
    let now = whole_seconds(clock.now());
    let entry = transfer_log::directory_entry(&log_key, now, directory)?;
    let stored = StoredDirectory {
        serial: directory.directory.serial,
        note: directory.note.clone(),
        sha256: directory.sha256_hex(),
        accepted_at: now.as_second(),
    };
    settings.set_setting(setting::AUTHORITY, &opts.authority.to_string()).await?;
    settings.set_setting(setting::BLOBS, &opts.backends.blobs.to_string()).await?;
    directories.insert_directory(&stored, &entry, Box::new(log_key)).await?;
    // Last: with PostgreSQL the origin is what says the database holds a hub.
    settings.set_setting(setting::ORIGIN, &opts.origin).await?;
    Ok(())
}

fn prepare_empty_dir(dir: &Path) -> Result<(), HubError> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if dir.join(DB_FILE).exists() {
                return Err(HubError::AlreadyInitialised(dir.to_owned()));
            }
            if entries.next().is_some() {
                return Err(HubError::DataDirNotEmpty(dir.to_owned()));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut builder = std::fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::DirBuilderExt as _;
                builder.mode(0o700);
            }
            builder.create(dir).map_err(|e| HubError::io("create", dir, e))
        }
        Err(e) => Err(HubError::io("read", dir, e)),
    }
}

/// Reads `--authority`: a verifier key's text, or the path of a file whose
/// first line that is neither blank nor a `#` comment is one.
pub fn read_authority(arg: &str) -> Result<NoteVerifierKey, HubError> {
    if let Ok(key) = arg.trim().parse() {
        return Ok(key);
    }
    let text = std::fs::read_to_string(arg).map_err(|_| HubError::BadAuthority(arg.to_owned()))?;
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .and_then(|l| l.parse().ok())
        .ok_or_else(|| HubError::BadAuthority(arg.to_owned()))
}

/// Reads a signed directory note from a file.
pub fn read_directory_file(path: &Path) -> Result<String, HubError> {
    std::fs::read_to_string(path).map_err(|e| HubError::io("read the directory file", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sealdrop_proto::clock::SystemClock;
    use sealdrop_proto::directory::{Directory, Party};
    use sealdrop_proto::keys::{MemberSecretKey, NoteSigningKey};

    fn signed(authority: &NoteSigningKey) -> String {
        let k = MemberSecretKey::generate("camden".parse().unwrap(), "data-team".parse().unwrap());
        let card = k.public();
        let dir = Directory {
            serial: 1,
            issued_at: "2026-01-01T00:00:00Z".parse().unwrap(),
            hub: None,
            parties: vec![Party::with_member("Camden", card)],
            agreements: vec![],
        };
        SignedDirectory::sign(dir, authority).unwrap().note
    }

    #[test]
    fn origins() {
        for ok in ["hub.example.gov.uk/sealdrop", "x", &"a".repeat(200)] {
            validate_origin(ok).unwrap();
        }
        for bad in ["", "a b", "sealdrop/hub", "a+b", "tab\there", &"a".repeat(201)] {
            assert!(validate_origin(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn init_creates_and_refuses_twice() {
        let tmp = tempfile::tempdir().unwrap();
        let authority = NoteSigningKey::generate("authority").unwrap();
        let opts = InitOptions {
            data_dir: tmp.path().join("data"),
            origin: "hub.example".into(),
            authority: authority.verifier(),
            directory_note: signed(&authority),
            backends: Default::default(),
        };
        init(&opts, &SystemClock).unwrap();
        for f in [DB_FILE, log_key::LOG_KEY_FILE, "uploads", "blobs"] {
            assert!(opts.data_dir.join(f).exists(), "{f}");
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = |f: &str| std::fs::metadata(opts.data_dir.join(f)).unwrap().permissions().mode() & 0o777;
            assert_eq!((mode(""), mode(DB_FILE), mode("blobs")), (0o700, 0o600, 0o700));
        }
        let err = init(&opts, &SystemClock).unwrap_err();
        assert!(matches!(err, HubError::AlreadyInitialised(_)), "{err}");

        let other = tmp.path().join("other");
        std::fs::create_dir(&other).unwrap();
        std::fs::write(other.join("x"), "x").unwrap();
        let err = init(&InitOptions { data_dir: other, ..opts.clone() }, &SystemClock).unwrap_err();
        assert!(matches!(err, HubError::DataDirNotEmpty(_)), "{err}");
    }

    #[test]
    fn init_refuses_a_directory_not_signed_by_the_authority() {
        let tmp = tempfile::tempdir().unwrap();
        let authority = NoteSigningKey::generate("authority").unwrap();
        let impostor = NoteSigningKey::generate("authority").unwrap();
        let opts = InitOptions {
            data_dir: tmp.path().join("data"),
            origin: "hub.example".into(),
            authority: authority.verifier(),
            directory_note: signed(&impostor),
            backends: Default::default(),
        };
        let err = init(&opts, &SystemClock).unwrap_err();
        assert!(matches!(err, HubError::Directory(_)), "{err}");
        assert!(!opts.data_dir.exists(), "nothing is created for a refused directory");
    }

    #[test]
    fn authority_from_text_or_file() {
        let tmp = tempfile::tempdir().unwrap();
        let key = NoteSigningKey::generate("authority").unwrap().verifier();
        assert_eq!(read_authority(&key.to_string()).unwrap(), key);
        let file = tmp.path().join("authority.pub");
        std::fs::write(&file, format!("# the coordinator's key\n\n{key}\n")).unwrap();
        assert_eq!(read_authority(file.to_str().unwrap()).unwrap(), key);
        assert!(matches!(read_authority("nonsense"), Err(HubError::BadAuthority(_))));
    }
}
