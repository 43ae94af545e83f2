//! Where the client's settings come from: command-line flags, then
//! environment variables (clap handles both), then the config file written by
//! `sealdrop init`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorCode, Result};
use crate::fsutil::write_atomic;

/// The config file's content.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// The hub's base URL.
    pub hub: Option<String>,
    /// The member secret key file.
    pub identity: Option<PathBuf>,
    /// The pinned authority key (verifier-key text or a file holding it).
    pub authority: Option<String>,
    /// Where local state (the newest verified directory and log checkpoint) is kept.
    pub state_dir: Option<PathBuf>,
    /// The party's witness key, to cosign verified checkpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub witness_key: Option<PathBuf>,
    /// Downloads (and, later, uploads) of ciphertexts at least this many
    /// bytes are spooled to the state dir so an interrupted transfer resumes
    /// (0: always). Default 8 MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume_min_bytes: Option<u64>,
    /// Accept a plain `http://` hub URL to another machine (see
    /// [`crate::hub_url`]); `--insecure-http` and `SEALDROP_INSECURE_HTTP`
    /// take precedence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insecure_http: Option<bool>,
    /// A PEM file of CA certificates trusted for the hub's TLS certificate
    /// beside the system's, for a hub whose certificate a private CA signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hub_ca: Option<PathBuf>,
    /// The age plugin identity file that opens a member key file encrypted
    /// to a plugin recipient (see [`crate::key_protection`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_plugin_identity: Option<PathBuf>,
    /// `sealdrop watch`'s settings (see [`crate::watch::WatchConfig`]);
    /// `init` keeps what is there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch: Option<crate::watch::WatchConfig>,
    /// Who `sealdrop watch` tells of what (see [`crate::notify::NotifyConfig`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<crate::notify::NotifyConfig>,
}

/// The default config file path (`~/.config/sealdrop/config.toml` on Linux).
pub fn default_config_path() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "sealdrop").map(|d| d.config_dir().join("config.toml"))
}

/// The default state dir (`~/.local/share/sealdrop` on Linux).
pub fn default_state_dir() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "sealdrop").map(|d| d.data_dir().to_path_buf())
}

impl ConfigFile {
    /// Reads the config file; a missing file is an empty config.
    pub fn load(path: &Path) -> Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(text) => toml::from_str(&text).map_err(|e| {
                Error::new(
                    ErrorCode::ConfigInvalid,
                    format!(
                        "config file {} is not valid: {}; fix it or run `sealdrop init` again",
                        path.display(),
                        e.message()
                    ),
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(Error::io(format!("cannot read config file {}", path.display()), e)),
        }
    }

    /// Writes the config file atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let text = toml::to_string_pretty(self).map_err(|e| Error::new(ErrorCode::ConfigInvalid, e.to_string()))?;
        write_atomic(path, text.as_bytes(), false)
    }
}
