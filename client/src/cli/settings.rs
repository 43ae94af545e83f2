//! The options every command takes, how they resolve into the settings
//! (flags, then environment, then the config file), and `sealdrop init`,
//! which saves them.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;

use super::GLOBAL_HEADING;
use crate::config::{ConfigFile, default_config_path, default_state_dir};
use crate::context::Settings;
use crate::error::{Error, ErrorCode, Result};

/// The options every command takes. They are listed under their own heading
/// in every command's help, after the command's own options, so a
/// subcommand's help starts with what is particular to it.
#[derive(Debug, Args)]
#[command(next_help_heading = GLOBAL_HEADING)]
pub(super) struct Global {
    /// The hub's base URL.
    #[arg(long, global = true, env = "SEALDROP_HUB")]
    hub: Option<String>,
    /// Your member secret key file.
    #[arg(long, global = true, env = "SEALDROP_IDENTITY")]
    identity: Option<PathBuf>,
    /// The coordinator's public key (verifier-key text or a file holding it), pinned.
    #[arg(long, global = true, env = "SEALDROP_AUTHORITY")]
    authority: Option<String>,
    /// Folder for local state (the newest verified directory).
    #[arg(long, global = true, env = "SEALDROP_STATE")]
    state_dir: Option<PathBuf>,
    /// Config file (default: the user's config dir, sealdrop/config.toml).
    #[arg(long, global = true, env = "SEALDROP_CONFIG")]
    config: Option<PathBuf>,
    /// Your party's witness key: when given, every command cosigns the hub's
    /// log checkpoint it verified (see `sealdrop witness`).
    #[arg(long, global = true, env = "SEALDROP_WITNESS_KEY")]
    witness_key: Option<PathBuf>,
    /// Accept a plain http:// hub URL to another machine. Without it only
    /// https:// is accepted, and http:// to this machine (localhost, 127.0.0.0/8, ::1);
    /// also `insecure_http = true` in the config file.
    #[arg(
        long,
        global = true,
        env = crate::hub_url::INSECURE_HTTP_ENV,
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    insecure_http: Option<bool>,
    /// A PEM file of CA certificates to trust for the hub's TLS certificate,
    /// beside the system's (for a hub whose certificate a private CA signed).
    #[arg(long, global = true, env = "SEALDROP_HUB_CA", value_name = "FILE")]
    hub_ca: Option<PathBuf>,
    /// Read the passphrase of a protected member key from this file
    /// descriptor (one line), e.g. `--passphrase-fd 3 3<file`. Without it the
    /// passphrase comes from the systemd credential `sealdrop-passphrase`
    /// ($CREDENTIALS_DIRECTORY) or is asked on the terminal. No environment
    /// variable holds a passphrase: the environment shows in process listings.
    #[arg(long, global = true, value_name = "FD")]
    passphrase_fd: Option<u32>,
    /// The age plugin identity file (what `age-plugin-yubikey --identity`
    /// prints, say) that opens a member key file encrypted to a plugin
    /// recipient (`sealdrop key protect`); also `key_plugin_identity` in the
    /// config file, which `init` saves.
    #[arg(long, global = true, env = "SEALDROP_KEY_PLUGIN_IDENTITY", value_name = "FILE")]
    key_plugin_identity: Option<PathBuf>,
    /// No progress bars.
    #[arg(long, short, global = true)]
    quiet: bool,
}

/// The settings a command runs with, and what `init` saves beside them.
#[derive(Debug)]
pub(super) struct Resolved {
    /// What every command runs with.
    pub settings: Settings,
    /// The config file they were read from, which `init` writes.
    pub config_path: PathBuf,
    /// Whether plain http to other machines is allowed, which `init` saves only when set.
    pub insecure_http: bool,
    /// `--hub-ca` as given (flag or environment), which `init` saves before the file's.
    pub hub_ca_flag: Option<PathBuf>,
}

impl Global {
    /// Resolves the settings (flags, then environment, then config file) and
    /// checks the hub URL (see [`crate::hub_url`]).
    pub(super) fn resolve(&self) -> Result<Resolved> {
        let config_path =
            self.config.clone().or_else(default_config_path).ok_or_else(|| {
                Error::new(ErrorCode::NoConfigDir, "cannot find your config folder; pass --config FILE")
            })?;
        let file = ConfigFile::load(&config_path)?;
        if let Some(ca) = self.hub_ca.as_ref().or(file.hub_ca.as_ref()) {
            crate::transport::trust_hub_ca(ca)?;
        }
        let state_dir = self.state_dir.clone().or(file.state_dir).or_else(default_state_dir).ok_or_else(|| {
            Error::new(ErrorCode::NoStateDir, "cannot find a folder for local state; pass --state-dir DIR")
        })?;
        let hub = self.hub.clone().or(file.hub);
        // Flag or environment (clap), then the config file.
        let insecure_http = self.insecure_http.or(file.insecure_http).unwrap_or(false);
        if let Some(url) = &hub {
            // Before anything can connect anywhere.
            crate::hub_url::check(url, insecure_http)?;
        }
        Ok(Resolved {
            settings: Settings {
                hub,
                identity: self.identity.clone().or(file.identity),
                authority: self.authority.clone().or(file.authority),
                state_dir,
                quiet: self.quiet,
                witness_key: self.witness_key.clone().or(file.witness_key),
                resume_min_bytes: crate::context::resume_min_bytes(file.resume_min_bytes)?,
                clock: sealdrop_proto::clock::clock_from_env(),
                key_unlock: crate::key_protection::KeyUnlock::new(
                    self.passphrase_fd,
                    self.key_plugin_identity.clone().or(file.key_plugin_identity),
                ),
            },
            config_path,
            insecure_http,
            hub_ca_flag: self.hub_ca.clone(),
        })
    }
}

/// `sealdrop init`: saves the resolved settings into the config file.
pub(super) fn init(resolved: &Resolved, out: &mut dyn Write) -> Result<()> {
    let Resolved { settings, config_path, insecure_http, hub_ca_flag } = resolved;
    let absolute = |p: Option<PathBuf>| p.map(|p| std::path::absolute(&p).unwrap_or(p));
    let before = ConfigFile::load(config_path)?;
    let cfg = ConfigFile {
        hub: settings.hub.clone(),
        identity: absolute(settings.identity.clone()),
        authority: settings.authority.as_deref().map(crate::context::authority_setting).transpose()?,
        state_dir: absolute(Some(settings.state_dir.clone())),
        witness_key: absolute(settings.witness_key.clone()),
        resume_min_bytes: (settings.resume_min_bytes != crate::context::DEFAULT_RESUME_MIN_BYTES)
            .then_some(settings.resume_min_bytes),
        // Saved only when needed: the hub URL was checked against it above.
        insecure_http: insecure_http.then_some(true),
        hub_ca: absolute(hub_ca_flag.clone().or(before.hub_ca)),
        key_plugin_identity: absolute(settings.key_unlock.plugin_identity.clone()),
        // Only edited by hand (docs/watch.md): kept as they are.
        watch: before.watch,
        notify: before.notify,
    };
    if let Some(a) = &cfg.authority {
        crate::context::parse_authority(a)?;
    }
    if cfg.identity.is_some() {
        settings.identity()?;
    }
    cfg.save(config_path)?;
    super::print(out, &format!("saved {}", config_path.display()))
}
