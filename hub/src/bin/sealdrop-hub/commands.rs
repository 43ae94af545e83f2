//! The one-shot commands: everything but `serve` and `check-config`.

use std::path::PathBuf;

use clap::CommandFactory as _;
use sealdrop_hub::config;
use sealdrop_hub::migrate::{MigrateOptions, MigrateReport};
use sealdrop_hub::storage::{DatabaseLocation, PostgresUrl, S3Location};
use sealdrop_hub::{Hub, InitOptions};
use sealdrop_proto::clock::clock_from_env;

use crate::Failure;
use crate::args::{Cli, Command, TlsCommand, resolve_layers};

/// `init --origin`: a URL (`https://hub.example/`) is refused, naming the
/// value meant. Refused rather than quietly trimmed because the origin is for
/// good: it names the transfer log in every checkpoint and in the log's
/// verifier key that coordinators and auditors pin, so the operator should
/// see and type exactly what is stored.
pub(crate) fn origin_name(text: &str) -> Result<String, String> {
    let name = text.split_once("://").map_or(text, |(_, rest)| rest).trim_end_matches('/');
    if name == text {
        return Ok(text.to_owned());
    }
    if name.is_empty() {
        return Err(
            "the origin is a name, not a URL: give the hub's host name, e.g. --origin hub.example.gov.uk".into()
        );
    }
    Err(format!(
        "the origin is a name, not a URL (no scheme, no trailing /): use --origin {name} (it names this hub's transfer log for good)"
    ))
}

/// `migrate --to`: a PostgreSQL URL (as `database` takes it).
pub(crate) fn postgres_url(text: &str) -> Result<PostgresUrl, String> {
    match DatabaseLocation::parse(text)? {
        DatabaseLocation::Postgres(url) => Ok(url),
        DatabaseLocation::Sqlite => {
            Err("migrate moves a hub to PostgreSQL: give postgres://USER@HOST:PORT/DATABASE".into())
        }
    }
}

/// `migrate --blobs`: a bucket prefix. Not `files`: the move is for a hub
/// several instances serve, and migrate never writes into the data
/// directory it reads (docs/operations.md, "Moving a hub to PostgreSQL and an object store").
pub(crate) fn bucket_prefix(text: &str) -> Result<S3Location, String> {
    if !text.starts_with("s3://") {
        return Err("migrate moves the ciphertexts into an S3-compatible object store: give s3://BUCKET/PREFIX".into());
    }
    S3Location::parse(text)
}

/// The data directory the flag, the environment or the config file names
/// (as `serve` finds it), for commands that work on the data directory
/// alone: an error for a hub whose database is PostgreSQL.
fn resolve_data(config: Option<PathBuf>, data: Option<String>) -> Result<PathBuf, Failure> {
    let flags = config::flag_layer(&[(config::DATA, data)]);
    let settings = resolve_layers(config, flags).map(|r| r.settings).map_err(|errors| {
        let lines: Vec<String> = errors.into_iter().map(|e| e.0).collect();
        Failure::from(lines.join("; "))
    })?;
    if let database @ config::DatabaseLocation::Postgres(_) = &settings.backends.database {
        return Err(Failure::from(format!(
            "this hub's database is {database}, which a copy of the data directory cannot hold: back it up with \
             PostgreSQL's own means (pg_dump, or base backups with WAL archiving) and the bucket with versioning, as \
             docs/operations.md says under \"Scaling out\""
        )));
    }
    Ok(settings.data)
}

/// `--database` and `--blobs` of the commands that take them outside the
/// serve settings, parsed as `serve` parses them.
fn backends(database: Option<&str>, blobs: Option<&str>) -> Result<config::Backends, Failure> {
    let database = database
        .map(config::DatabaseLocation::parse)
        .transpose()
        .map_err(|why| format!("--database is not valid: {why}"))?
        .unwrap_or_default();
    let blobs = blobs
        .map(config::BlobsLocation::parse)
        .transpose()
        .map_err(|why| format!("--blobs is not valid: {why}"))?
        .unwrap_or_default();
    Ok(config::Backends { database, blobs })
}

pub(crate) fn run(command: Command) -> Result<(), Failure> {
    match command {
        Command::Init { data, origin, authority, directory, database, blobs } => {
            let authority = sealdrop_hub::init::read_authority(&authority).map_err(|e| e.to_string())?;
            let directory_note = sealdrop_hub::init::read_directory_file(&directory).map_err(|e| e.to_string())?;
            let backends = backends(database.as_deref(), blobs.as_deref())?;
            let opts =
                InitOptions { data_dir: data.clone(), origin, authority, directory_note, backends: backends.clone() };
            // The test clock too, so a test's log starts at its clock's time.
            let clock = clock_from_env();
            sealdrop_hub::init(&opts, clock.as_ref()).map_err(|e| e.to_string())?;
            let hub = Hub::open_on(&data, clock, &backends).map_err(|e| e.to_string())?;
            println!("initialised hub {} in {}", hub.origin(), data.display());
            match &backends.database {
                config::DatabaseLocation::Sqlite => {
                    println!("  database:   {}", data.join(sealdrop_hub::hub::DB_FILE).display());
                }
                postgres => println!("  database:   {postgres} (every instance of this hub uses it)"),
            }
            println!("  ciphertexts: {}", backends.blobs);
            println!("  directory:  serial {} (authority {})", hub.directory().directory.serial, hub.authority());
            println!("  log key:    {} (private, mode 0600)", data.join(sealdrop_hub::log_key::LOG_KEY_FILE).display());
            if backends.database.is_shared() {
                println!(
                    "  every further instance needs its own data directory holding a copy of this log key \
                     (mode 0600) and the same `database` and `blobs`: see docs/operations.md, \"Scaling out\""
                );
            }
            println!("  log verifier key: {}", hub.log_verifier());
            println!(
                "  the coordinator can list it in the directory's `hub` field (origin {:?}, log_key as above) \
                 so clients and auditors can check this hub's transfer log; \
                 `sealdrop-hub verifier-key --data {}` prints it again",
                hub.origin(),
                data.display()
            );
            Ok(())
        }
        Command::VerifierKey { data, database } => {
            let backends = backends(database.as_deref(), None)?;
            let key = sealdrop_hub::read_log_verifier(&data, &backends).map_err(|e| e.to_string())?;
            println!("{key}");
            Ok(())
        }
        Command::Backup { config, data, to } => {
            let data = resolve_data(config, data)?;
            let clock = clock_from_env();
            let report = sealdrop_hub::backup::backup(&data, &to, clock.as_ref()).map_err(|e| e.to_string())?;
            println!("backed up hub {} into {}", report.origin, to.display());
            println!("  transfer log: {} entries (its newest checkpoint is in the manifest)", report.log_size);
            println!("  committed drops: {}", report.committed_drops);
            println!(
                "  files: {} ({} bytes), from {} database snapshot(s)",
                report.files, report.bytes, report.snapshots
            );
            println!("  the backup holds the hub's log key: store it encrypted and as guarded as the hub itself");
            Ok(())
        }
        Command::Restore { from, data } => {
            let report = sealdrop_hub::backup::restore(&from, &data, clock_from_env()).map_err(|e| e.to_string())?;
            println!("restored hub {} into {} from the backup of {}", report.origin, data.display(), report.created);
            println!("  transfer log: {} entries, verified against its signed checkpoint", report.log_size);
            println!(
                "  committed drops: {} (every ciphertext matches the hash it was committed with)",
                report.committed_drops
            );
            println!(
                "  directory: serial {}; if the coordinator published a newer one since the backup, clients refuse \
                 this hub (directory_rollback) until that directory is published to it again",
                report.directory_serial
            );
            println!(
                "  serve it with `sealdrop-hub serve --data {}`; drops committed after the backup are lost, and \
                 clients that saw a later checkpoint will report the log as rolled back (see docs/operations.md)",
                data.display()
            );
            Ok(())
        }
        Command::Migrate { data, to, blobs } => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start a runtime: {e}"))?;
            let options = MigrateOptions::new(data.clone(), to.clone(), blobs.clone());
            let report =
                runtime.block_on(sealdrop_hub::migrate::migrate(options)).map_err(|e| Failure::coded(e.code(), &e))?;
            print_migrate_report(&report, &data, &to, &blobs);
            Ok(())
        }
        Command::Tls { command: TlsCommand::SelfSigned { hosts, cert, key, days, port } } => {
            let made = sealdrop_hub::tls_cert::self_signed(&hosts, days, &cert, &key, clock_from_env().now())
                .map_err(|e| Failure::coded(e.code(), &e))?;
            println!(
                "wrote a self-signed TLS certificate for {} to {} (its key: {}, mode 0600), valid until {}",
                hosts.join(", "),
                cert.display(),
                key.display(),
                made.not_after
            );
            println!("  SHA-256 fingerprint: {}", made.fingerprint);
            println!("  serve with: sealdrop-hub serve --tls-cert {} --tls-key {}", cert.display(), key.display());
            println!(
                "  give each client the certificate (it is public), confirm this fingerprint with them by another \
                 channel, and have them trust it:"
            );
            println!("    sealdrop init --hub https://{}:{port} --hub-ca {} ...", url_host(&hosts[0]), cert.display());
            Ok(())
        }
        Command::Completions { shell } => {
            sealdrop_cli_docs::write_completions(Cli::command(), shell, &mut std::io::stdout().lock())
                .map_err(|e| format!("cannot write the completion script to stdout: {e}").into())
        }
        Command::Man { out } => {
            let pages = sealdrop_cli_docs::write_man_pages(Cli::command(), &out, &[]).map_err(|e| {
                format!("cannot write the man pages into {}: {e}; choose a folder you can write to", out.display())
            })?;
            println!("wrote {} man pages into {}", pages.len(), out.display());
            Ok(())
        }
        Command::Serve(_) | Command::CheckConfig(_) => Err("serve and check-config are run by main".to_owned().into()),
    }
}

fn print_migrate_report(report: &MigrateReport, data: &std::path::Path, database: &PostgresUrl, blobs: &S3Location) {
    println!("moved hub {} from {} and verified the copy", report.origin, data.display());
    let rows: Vec<String> = report.rows.iter().map(|(table, n)| format!("{table} {n}")).collect();
    println!("  rows: {}", rows.join(", "));
    println!("  into PostgreSQL at {database}");
    println!(
        "  ciphertexts: {} committed ({} bytes) and {} uploads in progress ({} bytes) into {blobs}",
        report.blobs, report.blob_bytes, report.uploads, report.upload_bytes
    );
    println!(
        "  transfer log: {} entries, root {} (the latest checkpoint is the source's)",
        report.log_size, report.log_root
    );
    println!(
        "  next: give each instance database = \"{database}\" (with its password: SEALDROP_HUB_DATABASE in \
         /etc/sealdrop/hub.env keeps it out of hub.toml) and blobs = \"{blobs}\"; copy {} into each instance's \
         data directory (mode 0600); keep {} as it is until the new hub serves (it is the way back)",
        data.join(sealdrop_hub::log_key::LOG_KEY_FILE).display(),
        data.display()
    );
}

/// A host as it goes in a URL: an IPv6 address in brackets.
fn url_host(host: &str) -> String {
    match host.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) => format!("[{v6}]"),
        _ => host.to_owned(),
    }
}
