//! Tests of the settings' layering, parsing and description.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;
use crate::api::log_access::LogAccess;
use crate::hub::{DEFAULT_MAX_UPLOAD_BYTES, DEFAULT_SWEEP_INTERVAL};
use crate::rate_limit::{DEFAULT_PER_ADDRESS, Loopback, Rate};

fn layer(pairs: &[(&'static str, &str)]) -> Layer {
    pairs.iter().map(|(k, v)| (*k, (*v).to_owned())).collect()
}

fn sources(flags: &[(&'static str, &str)], env: &[(&'static str, &str)], file: &[(&'static str, &str)]) -> Sources {
    Sources { flags: layer(flags), env: layer(env), file: Some((PathBuf::from("/etc/sealdrop/hub.toml"), layer(file))) }
}

fn messages(errors: Vec<ConfigError>) -> String {
    errors.iter().map(|e| e.0.clone()).collect::<Vec<_>>().join("\n")
}

#[test]
fn flags_beat_the_environment_which_beats_the_file_which_beats_the_default() {
    fn all(v: &str) -> [(&'static str, &str); 1] {
        [("listen", v)]
    }
    let file = [("data", "/srv/hub"), ("listen", "127.0.0.1:3")];
    let r = sources(&all("127.0.0.1:1"), &all("127.0.0.1:2"), &file).resolve().unwrap();
    assert_eq!(r.settings.listen.port(), 1);
    assert_eq!(r.origins["listen"], Source::Flag);
    let r = sources(&[], &all("127.0.0.1:2"), &file).resolve().unwrap();
    assert_eq!((r.settings.listen.port(), &r.origins["listen"]), (2, &Source::Env));
    let r = sources(&[], &[], &file).resolve().unwrap();
    assert_eq!(r.settings.listen.port(), 3);
    assert_eq!(r.origins["listen"], Source::File("/etc/sealdrop/hub.toml".into()));
    let r = sources(&[], &[], &[("data", "/srv/hub")]).resolve().unwrap();
    assert_eq!(r.settings.listen, DEFAULT_LISTEN.parse().unwrap());
    assert_eq!(r.origins["listen"], Source::Default);
    // Each key on its own: a flag for one does not hide the file's others.
    let r = sources(
        &[("log_format", "json")],
        &[("shutdown_grace", "5")],
        &[("data", "/srv/hub"), ("log_format", "text"), ("shutdown_grace", "9"), ("sweep_interval", "2.5")],
    )
    .resolve()
    .unwrap();
    assert_eq!(r.settings.log_format, LogFormat::Json);
    assert_eq!(r.settings.shutdown_grace, Duration::from_secs(5));
    assert_eq!(r.settings.sweep_interval, Duration::from_millis(2500));
    assert_eq!(r.settings.data, PathBuf::from("/srv/hub"));
}

#[test]
fn defaults() {
    let r = sources(&[("data", "d")], &[], &[]).resolve().unwrap();
    let s = r.settings;
    assert_eq!(s.tls, None);
    assert_eq!(s.metrics_listen, None);
    assert_eq!(s.max_upload_bytes, DEFAULT_MAX_UPLOAD_BYTES);
    assert_eq!(s.sweep_interval, DEFAULT_SWEEP_INTERVAL);
    assert_eq!(s.shutdown_grace, DEFAULT_SHUTDOWN_GRACE);
    assert_eq!(s.header_read_timeout, Duration::from_secs(5));
    assert_eq!(s.body_idle_timeout, Duration::from_secs(60));
    assert_eq!(s.upload_resume_window, Duration::from_secs(86_400));
    assert_eq!((s.log_format, s.log_filter.as_str()), (LogFormat::Text, "info"));
    assert_eq!(s.rate_limits, RateLimits::default());
    assert_eq!(s.log_access, LogAccess::Members, "the log is for members unless the operator opts in");
    assert_eq!(s.rate_limits.loopback, Loopback::Limit, "nobody is exempt by default");
    assert!(s.trusted_proxies.is_empty());
    assert_eq!(s.connections, ConnectionLimits { total: 512, per_address: 64 });
    assert_eq!(s.quotas, Quotas { held_bytes: 128 << 30, open_uploads: 16 });
    assert_eq!(s.backends.blobs, BlobsLocation::Files, "the embedded default needs no server");
}

#[test]
fn blobs_go_to_files_or_an_s3_bucket_and_prefix() {
    let r = sources(&[], &[], &[("data", "d"), ("blobs", "s3://council-hub/london/")]).resolve().unwrap();
    let location = crate::storage::S3Location { bucket: "council-hub".into(), prefix: "london".into() };
    assert_eq!(r.settings.backends.blobs, BlobsLocation::S3(location));
    let text = r.describe();
    assert!(
        text.lines().any(|l| l.starts_with("blobs = \"s3://council-hub/london\"") && l.ends_with("key `blobs`")),
        "{text}"
    );
    let reparsed = parse_file(&text, Path::new("/etc/sealdrop/hub.toml")).unwrap();
    assert_eq!(reparsed["blobs"], "s3://council-hub/london");
    let r = sources(&[("blobs", "files")], &[("blobs", "s3://council-hub")], &[("data", "d")]).resolve().unwrap();
    assert_eq!((&r.settings.backends.blobs, &r.origins["blobs"]), (&BlobsLocation::Files, &Source::Flag));
    assert!(r.describe().lines().any(|l| l.starts_with("blobs = \"files\"") && l.ends_with("# --blobs")));

    let text = messages(
        sources(&[], &[("blobs", "s3://Council_Hub")], &[("data", "d"), ("blobs", "/srv/blobs")])
            .resolve()
            .unwrap_err(),
    );
    assert_eq!(text.lines().count(), 1, "the environment's value is the one used: {text}");
    assert!(
        text.contains("SEALDROP_HUB_BLOBS = \"s3://Council_Hub\" is not valid: `Council_Hub` is not a bucket"),
        "{text}"
    );
    let text = messages(sources(&[("blobs", "/srv/blobs")], &[], &[("data", "d")]).resolve().unwrap_err());
    assert!(text.contains("--blobs = \"/srv/blobs\" is not valid: give `files`"), "{text}");
    let text = messages(sources(&[("blobs", "s3://hub/a//b")], &[], &[("data", "d")]).resolve().unwrap_err());
    assert!(text.contains("is not a prefix"), "{text}");
}

#[test]
fn the_database_is_sqlite_or_postgres_and_its_password_is_never_shown() {
    let r = sources(&[], &[], &[("data", "d")]).resolve().unwrap();
    assert_eq!(r.settings.backends.database, DatabaseLocation::Sqlite, "the embedded default needs no server");
    let url = "postgres://hub:hunter2@db.internal:5432/sealdrop";
    let r = sources(&[], &[("database", url)], &[("data", "d")]).resolve().unwrap();
    assert!(r.settings.backends.database.is_shared());
    assert_eq!(r.origins["database"], Source::Env);
    let text = r.describe();
    assert!(
        text.lines().any(|l| l.starts_with("database = \"postgres://hub:***@db.internal:5432/sealdrop\"")
            && l.ends_with("# SEALDROP_HUB_DATABASE")),
        "{text}"
    );
    assert!(!text.contains("hunter2"), "{text}");
    let text = messages(
        sources(&[("database", "postgres://hub:hunter2@db:port/x")], &[], &[("data", "d")]).resolve().unwrap_err(),
    );
    assert!(text.contains("--database = \"postgres://hub:***@db:port/x\" is not valid"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
    let text = messages(sources(&[], &[], &[("data", "d"), ("database", "/srv/hub.db")]).resolve().unwrap_err());
    assert!(text.contains("is not valid: give `sqlite`"), "{text}");
}

#[test]
fn the_log_is_made_public_only_by_saying_so() {
    let r = sources(&[], &[], &[("data", "d"), ("log_access", "public")]).resolve().unwrap();
    assert_eq!(r.settings.log_access, LogAccess::Public);
    let r = sources(&[("log_access", "members")], &[], &[("data", "d"), ("log_access", "public")]).resolve().unwrap();
    assert_eq!((r.settings.log_access, &r.origins["log_access"]), (LogAccess::Members, &Source::Flag));
    assert!(r.describe().lines().any(|l| l.starts_with("log_access = \"members\"") && l.ends_with("# --log-access")));
    let text = messages(sources(&[], &[("log_access", "yes")], &[("data", "d")]).resolve().unwrap_err());
    assert!(text.contains("SEALDROP_HUB_LOG_ACCESS = \"yes\" is not valid: give `members`"), "{text}");
    assert_eq!(text.lines().count(), 1, "{text}");
}

#[test]
fn connection_caps_proxies_and_quotas_from_every_source() {
    let r = sources(
        &[("max_connections", "100"), ("trusted_proxies", "127.0.0.1, 10.0.0.0/8")],
        &[("max_connections_per_address", "4"), ("max_open_uploads_per_party", "3")],
        &[("data", "d"), ("max_held_bytes_per_party", "1048576")],
    )
    .resolve()
    .unwrap();
    let s = &r.settings;
    assert_eq!(s.connections, ConnectionLimits { total: 100, per_address: 4 });
    assert_eq!(s.quotas, Quotas { held_bytes: 1 << 20, open_uploads: 3 });
    assert!(s.trusted_proxies.contains("10.9.9.9".parse().unwrap()));
    let text = r.describe();
    assert!(text.contains("trusted_proxies = \"127.0.0.1/32, 10.0.0.0/8\""), "{text}");
    assert!(text.contains("max_connections = 100"), "{text}");
    assert!(text.contains("max_held_bytes_per_party = 1048576"), "{text}");
    let reparsed = parse_file(&text, Path::new("/etc/sealdrop/hub.toml")).unwrap();
    assert_eq!(reparsed["trusted_proxies"], "127.0.0.1/32, 10.0.0.0/8");
    let text = messages(
        sources(
            &[("trusted_proxies", "127.0.0.1, my-proxy")],
            &[("max_connections", "0"), ("max_open_uploads_per_party", "none")],
            &[("data", "d"), ("max_held_bytes_per_party", "0")],
        )
        .resolve()
        .unwrap_err(),
    );
    assert_eq!(text.lines().count(), 4, "{text}");
    assert!(text.contains("--trusted-proxies") && text.contains("\"my-proxy\" is not an IP address"), "{text}");
    assert!(text.contains("SEALDROP_HUB_MAX_CONNECTIONS = \"0\""), "{text}");
    assert!(text.contains("key `max_held_bytes_per_party`"), "{text}");
}

#[test]
fn rate_limits_from_every_source_and_zero_turns_one_off() {
    let r = sources(
        &[("rate_limit_per_party", "7")],
        &[("rate_limit_per_address_burst", "9"), ("rate_limit_loopback", "limit")],
        &[("data", "d"), ("rate_limit_per_address", "0"), ("rate_limit_per_party_burst", "11")],
    )
    .resolve()
    .unwrap();
    let limits = r.settings.rate_limits;
    assert_eq!(limits.per_address, None, "a rate of 0 turns the limit off");
    assert_eq!(limits.per_party, Some(Rate { per_second: 7.0, burst: 11 }));
    assert_eq!(limits.loopback, Loopback::Limit);
    assert_eq!(r.origins["rate_limit_per_party"], Source::Flag);
    // A burst alone keeps the default rate.
    let r = sources(&[], &[("rate_limit_per_address_burst", "9")], &[("data", "d")]).resolve().unwrap();
    assert_eq!(r.settings.rate_limits.per_address, Some(Rate { per_second: DEFAULT_PER_ADDRESS.per_second, burst: 9 }));
    let text = messages(
        sources(
            &[("rate_limit_per_address", "-1"), ("rate_limit_per_party_burst", "0")],
            &[("rate_limit_loopback", "yes")],
            &[("data", "d")],
        )
        .resolve()
        .unwrap_err(),
    );
    assert!(text.contains("--rate-limit-per-address = \"-1\" is not valid: give a number of requests"), "{text}");
    assert!(text.contains("--rate-limit-per-party-burst = \"0\""), "{text}");
    assert!(text.contains("SEALDROP_HUB_RATE_LIMIT_LOOPBACK = \"yes\"") && text.contains("`exempt`"), "{text}");
    assert_eq!(text.lines().count(), 3, "{text}");
}

#[test]
fn the_environment_layer_reads_only_sealdrop_hub_variables() {
    let env = |name: &str| match name {
        "SEALDROP_HUB_LISTEN" => Some(OsString::from("0.0.0.0:9000")),
        "SEALDROP_HUB_LOG_FORMAT" => Some(OsString::from("  ")),
        _ => None,
    };
    let layer = env_layer(env).unwrap();
    assert_eq!(layer, super::Layer::from([("listen", "0.0.0.0:9000".to_owned())]));
}

#[test]
fn every_bad_value_is_reported_with_its_source() {
    let errors = sources(
        &[("listen", "localhost")],
        &[("max_upload_bytes", "lots")],
        &[
            ("data", "/srv/hub"),
            ("sweep_interval", "0"),
            ("log_format", "xml"),
            ("shutdown_grace", "-1"),
            ("log_filter", "info,[[["),
        ],
    )
    .resolve()
    .unwrap_err();
    let text = messages(errors);
    for needle in [
        "--listen = \"localhost\" is not valid",
        "SEALDROP_HUB_MAX_UPLOAD_BYTES = \"lots\"",
        "/etc/sealdrop/hub.toml key `sweep_interval` = \"0\"",
        "key `log_format` = \"xml\" is not valid: give `text` or `json`",
        "key `shutdown_grace`",
        "key `log_filter`",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
    }
    assert_eq!(text.lines().count(), 6, "one line per problem:\n{text}");
}

#[test]
fn timeouts_and_the_resume_window_have_bounds() {
    let r = sources(
        &[("header_read_timeout", "0.5")],
        &[("body_idle_timeout", "2")],
        &[("data", "d"), ("upload_resume_window", "3600")],
    )
    .resolve()
    .unwrap();
    assert_eq!(r.settings.header_read_timeout, Duration::from_millis(500));
    assert_eq!(r.settings.body_idle_timeout, Duration::from_secs(2));
    assert_eq!(r.settings.upload_resume_window, Duration::from_secs(3600));
    let text = messages(
        sources(
            &[("header_read_timeout", "0")],
            &[("body_idle_timeout", "forever")],
            &[("data", "d"), ("upload_resume_window", "172800")],
        )
        .resolve()
        .unwrap_err(),
    );
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(text.contains("--header-read-timeout = \"0\""), "{text}");
    assert!(text.contains("SEALDROP_HUB_BODY_IDLE_TIMEOUT"), "{text}");
    assert!(text.contains("key `upload_resume_window`") && text.contains("from 60 to 86400"), "{text}");
}

#[test]
fn tls_needs_both_files_and_metrics_its_own_address() {
    let text = messages(sources(&[("tls_cert", "c.pem")], &[], &[("data", "d")]).resolve().unwrap_err());
    assert!(text.contains("no private key"), "{text}");
    let text = messages(sources(&[("tls_key", "k.pem")], &[], &[("data", "d")]).resolve().unwrap_err());
    assert!(text.contains("no certificate"), "{text}");
    let r = sources(&[("tls_key", "k.pem")], &[("tls_cert", "c.pem")], &[("data", "d")]).resolve().unwrap();
    assert_eq!(r.settings.tls, Some(TlsFiles { cert: "c.pem".into(), key: "k.pem".into() }));
    let same = [("listen", "127.0.0.1:8443"), ("metrics_listen", "127.0.0.1:8443")];
    let text = messages(sources(&same, &[], &[("data", "d")]).resolve().unwrap_err());
    assert!(text.contains("address of its own"), "{text}");
}

#[test]
fn a_data_directory_is_required() {
    let text = messages(Sources::default().resolve().unwrap_err());
    assert!(text.contains("no data directory") && text.contains("SEALDROP_HUB_DATA"), "{text}");
}

#[test]
fn the_file_refuses_unknown_keys_by_name_and_resolves_relative_paths() {
    let path = Path::new("/etc/sealdrop/hub.toml");
    let text = messages(parse_file("data = \"x\"\nlisten_addr = \"127.0.0.1:1\"\n", path).unwrap_err());
    assert!(text.contains("unknown key `listen_addr`") && text.contains("/etc/sealdrop/hub.toml"), "{text}");
    let text = messages(parse_file("listen = [1]\n", path).unwrap_err());
    assert!(text.contains("`listen` is a array") || text.contains("`listen` is an array"), "{text}");
    let text = messages(parse_file("listen = \n", path).unwrap_err());
    assert!(text.contains("line 1") && text.contains("not valid TOML"), "{text}");
    assert_eq!(text.lines().count(), 1, "{text}");

    let layer = parse_file(
            "data = \"hub-data\"\ntls_cert = \"/abs/cert.pem\"\ntls_key = \"tls/key.pem\"\nmax_upload_bytes = 1024\nsweep_interval = 0.5\n",
            path,
        )
        .unwrap();
    assert_eq!(layer["data"], "/etc/sealdrop/hub-data");
    assert_eq!(layer["tls_cert"], "/abs/cert.pem");
    assert_eq!(layer["tls_key"], "/etc/sealdrop/tls/key.pem");
    assert_eq!(layer["max_upload_bytes"], "1024");
    assert_eq!(layer["sweep_interval"], "0.5");
}

#[test]
fn describe_shows_each_value_and_its_source() {
    let r =
        sources(&[("listen", "127.0.0.1:9")], &[("log_format", "json")], &[("data", "/srv/hub")]).resolve().unwrap();
    let text = r.describe();
    let line = |key: &str| text.lines().find(|l| l.starts_with(key) || l.starts_with(&format!("# {key}"))).unwrap();
    assert!(line("listen").contains("\"127.0.0.1:9\"") && line("listen").ends_with("# --listen"), "{text}");
    assert!(line("log_format").ends_with("# SEALDROP_HUB_LOG_FORMAT"), "{text}");
    assert!(line("data").ends_with("key `data`"), "{text}");
    assert!(line("tls_cert").starts_with("# tls_cert (not set)"), "{text}");
    assert!(line("shutdown_grace").contains("= 30") && line("shutdown_grace").ends_with("# default"), "{text}");
    // The output is itself a valid hub.toml.
    let reparsed = parse_file(&text, Path::new("/etc/sealdrop/hub.toml")).unwrap();
    assert_eq!(reparsed["listen"], "127.0.0.1:9");
}
