//! Turning directory keys into age encryptors and a member's key into an
//! age decryptor: native keys (post-quantum and classic) directly, keys held
//! by age plugins by running the plugin (`age-plugin-<name>` on `PATH`) with
//! [`PluginCallbacks`] for what it needs to say or ask.
//!
//! Which key kinds exist and how they mix is `sealdrop_proto::age_keys`;
//! this is where the client's I/O policy about them lives.

use std::collections::BTreeMap;

use age::secrecy::ExposeSecret as _;
use sealdrop_proto::age_keys::{AgeIdentity, AgeRecipient, DropKind, drop_kind};

use crate::error::{Error, ErrorCode, Result};

/// What a plugin may say or ask while it wraps or unwraps a file key (a
/// hardware token asks for its PIN or to be touched). Messages go to stderr;
/// questions are answered only on a terminal, and refused (so the plugin
/// fails cleanly) when nobody is there to answer.
#[derive(Clone, Copy, Debug, Default)]
pub struct PluginCallbacks;

impl age::Callbacks for PluginCallbacks {
    fn display_message(&self, message: &str) {
        eprintln!("{message}");
    }
    fn confirm(&self, message: &str, yes: &str, no: Option<&str>) -> Option<bool> {
        let choices = no.map_or_else(|| yes.to_owned(), |no| format!("{yes}/{no}"));
        let answer = crate::passphrase::ask(&format!("{message} [{choices}]: ")).ok().flatten()?;
        Some(answer.expose_secret().trim().eq_ignore_ascii_case(yes))
    }
    fn request_public_string(&self, description: &str) -> Option<String> {
        crate::passphrase::ask(&format!("{description}: ")).ok().flatten().map(|s| s.expose_secret().to_owned())
    }
    /// A token's PIN, asked without echo as a key's passphrase is.
    fn request_passphrase(&self, description: &str) -> Option<age::secrecy::SecretString> {
        crate::passphrase::ask(&format!("{description}: ")).ok().flatten()
    }
}

/// Whether one drop can be encrypted to `recipients` here, checked before
/// anything is sent: their kinds do not mix (the age spec forbids it), and
/// every plugin their keys need is installed (found on `PATH`, not run).
pub fn check_keys(recipients: &[(String, AgeRecipient)]) -> Result<DropKind> {
    let kind = drop_kind(recipients.iter().map(|(name, r)| (name.as_str(), r.kind())))
        .map_err(|e| Error::new(ErrorCode::MixedKeyKinds, format!("{e}; send to them in separate drops")))?;
    for (_, r) in recipients {
        if let AgeRecipient::Plugin(p) = r {
            age::plugin::RecipientPluginV1::new(p.plugin(), std::slice::from_ref(p), &[], PluginCallbacks)
                .map_err(|e| plugin_missing(p.plugin(), "encrypt to", &e))?;
        }
    }
    Ok(kind)
}

/// An encryptor to `recipients` (one drop's keys), after [`check_keys`].
pub fn encryptor(recipients: &[(String, AgeRecipient)]) -> Result<(age::Encryptor, DropKind)> {
    let kind = check_keys(recipients)?;
    let mut plugins: BTreeMap<&str, Vec<age::plugin::Recipient>> = BTreeMap::new();
    let mut natives: Vec<&dyn age::Recipient> = Vec::new();
    for (_, r) in recipients {
        match r {
            AgeRecipient::Plugin(p) => plugins.entry(p.plugin()).or_default().push(p.clone()),
            native => natives.push(native.native().expect("not a plugin key")),
        }
    }
    let mut runners = Vec::new();
    for (name, keys) in &plugins {
        let plugin = age::plugin::RecipientPluginV1::new(name, keys, &[], PluginCallbacks)
            .map_err(|e| plugin_missing(name, "encrypt to", &e))?;
        runners.push(plugin);
    }
    let all = natives.into_iter().chain(runners.iter().map(|r| r as &dyn age::Recipient));
    let encryptor = age::Encryptor::with_recipients(all).map_err(|e| {
        Error::new(ErrorCode::EncryptFailed, format!("age could not encrypt to the recipients' keys: {e}"))
    })?;
    Ok((encryptor, kind))
}

/// What decrypts with a member's key: the key itself, or the plugin that
/// holds it.
pub enum Decrypting<'a> {
    /// A native key.
    Native(&'a dyn age::Identity),
    /// A key a plugin holds, reached by running the plugin.
    Plugin(Box<age::plugin::IdentityPluginV1<PluginCallbacks>>),
}

impl Decrypting<'_> {
    /// As age's identity trait.
    pub fn as_identity(&self) -> &dyn age::Identity {
        match self {
            Decrypting::Native(id) => *id,
            Decrypting::Plugin(plugin) => plugin.as_ref(),
        }
    }
}

/// What decrypts with `id`. Fails (with [`ErrorCode::PluginMissing`]) when
/// the plugin holding the key is not installed here.
pub fn decrypting_identity(id: &AgeIdentity) -> Result<Decrypting<'_>> {
    match id {
        AgeIdentity::Plugin(p) => {
            let plugin = age::plugin::IdentityPluginV1::new(p.plugin(), std::slice::from_ref(p), PluginCallbacks)
                .map_err(|e| plugin_missing(p.plugin(), "decrypt with", &e))?;
            Ok(Decrypting::Plugin(Box::new(plugin)))
        }
        native => Ok(Decrypting::Native(native.native().expect("not a plugin key"))),
    }
}

fn plugin_missing(name: &str, what: &str, e: &age::plugin::ResolveError) -> Error {
    Error::new(
        ErrorCode::PluginMissing,
        format!(
            "cannot {what} a key held by the age plugin `{name}` ({e}): install `age-plugin-{name}` on this machine's PATH, or ask the key's owner for a post-quantum key card"
        ),
    )
}
