//! The three sources of the settings, each read into the text of each key.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::{ConfigError, KEYS, Key, Source};

/// The raw text of each setting from one source, by key name.
pub type Layer = BTreeMap<&'static str, String>;

/// The values given on the command line (`None`: flag not given).
pub fn flag_layer(values: &[(Key, Option<String>)]) -> Layer {
    values.iter().filter_map(|(k, v)| v.clone().map(|v| (k.name, v))).collect()
}

/// The `SEALDROP_HUB_*` variables set in the environment (`lookup` is
/// `std::env::var_os` outside tests). An empty variable counts as unset.
pub fn env_layer(lookup: impl Fn(&str) -> Option<OsString>) -> Result<Layer, Vec<ConfigError>> {
    let mut layer = Layer::new();
    let mut errors = Vec::new();
    for k in KEYS {
        match lookup(k.env).map(OsString::into_string) {
            None => {}
            Some(Ok(v)) if v.trim().is_empty() => {}
            Some(Ok(v)) => {
                layer.insert(k.name, v);
            }
            Some(Err(_)) => errors.push(ConfigError(format!("{} is not valid UTF-8: set it again or unset it", k.env))),
        }
    }
    if errors.is_empty() { Ok(layer) } else { Err(errors) }
}

/// Reads a config file: a TOML table of known keys whose values are
/// strings or numbers. An unknown key is refused by name (a misspelt key
/// would otherwise be silently ignored). Relative paths are taken
/// relative to the file's folder.
pub fn file_layer(path: &Path) -> Result<Layer, Vec<ConfigError>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| vec![ConfigError(format!("cannot read the config file {}: {e}", path.display()))])?;
    parse_file(&text, path)
}

/// Parses a config file's text (see [`file_layer`]); `path` names it in errors.
pub fn parse_file(text: &str, path: &Path) -> Result<Layer, Vec<ConfigError>> {
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let line = e.span().map(|s| text[..s.start].lines().count().max(1));
        let at = line.map(|l| format!(" line {l}")).unwrap_or_default();
        vec![ConfigError(format!("{}{at} is not valid TOML: {}", path.display(), e.message().trim()))]
    })?;
    let base = path.parent().filter(|p| !p.as_os_str().is_empty());
    let mut layer = Layer::new();
    let mut errors = Vec::new();
    for (name, value) in &table {
        let Some(k) = KEYS.iter().find(|k| k.name == name) else {
            let known: Vec<&str> = KEYS.iter().map(|k| k.name).collect();
            errors.push(ConfigError(format!(
                "{}: unknown key `{name}`; the keys are {}",
                path.display(),
                known.join(", ")
            )));
            continue;
        };
        let text = match value {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            other => {
                errors.push(ConfigError(format!(
                    "{}: key `{name}` is a {}, but must be a string or a number",
                    path.display(),
                    other.type_str()
                )));
                continue;
            }
        };
        let text = match base {
            Some(base) if k.is_path && Path::new(&text).is_relative() => {
                base.join(&text).to_string_lossy().into_owned()
            }
            _ => text,
        };
        layer.insert(k.name, text);
    }
    if errors.is_empty() { Ok(layer) } else { Err(errors) }
}

/// The three sources, most important first.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// Command-line flags.
    pub flags: Layer,
    /// `SEALDROP_HUB_*` variables.
    pub env: Layer,
    /// The config file's values and its path.
    pub file: Option<(PathBuf, Layer)>,
}

impl Sources {
    /// The value of `key` and where it came from: flag, then environment,
    /// then file.
    pub fn get(&self, key: &Key) -> Option<(&str, Source)> {
        if let Some(v) = self.flags.get(key.name) {
            return Some((v, Source::Flag));
        }
        if let Some(v) = self.env.get(key.name) {
            return Some((v, Source::Env));
        }
        let (path, file) = self.file.as_ref()?;
        file.get(key.name).map(|v| (v.as_str(), Source::File(path.clone())))
    }
}
