//! Turning directory keys into age encryptors and a member's key into an
//! age decryptor: native keys (post-quantum and classic) directly, keys held
//! by age plugins by running the plugin (`age-plugin-<name>` on `PATH`) with
//! [`PluginCallbacks`] for what it needs to say or ask.
//!
//! Which key kinds exist and how they mix is `sealdrop_proto::age_keys`;
//! this is where the client's I/O policy about them lives.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use age::secrecy::ExposeSecret as _;
use sealdrop_proto::age_keys::{AgeIdentity, AgeRecipient, DropKind, drop_kind};

use crate::error::{Error, ErrorCode, Result};

/// What a plugin may say or ask while it wraps or unwraps a file key (a
/// hardware token asks for its PIN or to be touched). Messages go to stderr;
/// questions are asked on the terminal without echo, as a key's passphrase is
/// (`crate::passphrase::ask`): in a run with nobody there (cron, a service)
/// they are refused at once, so the plugin fails rather than waits, and
/// [`Decrypting::plugin_failure`] says why with a stable code.
#[derive(Clone, Debug, Default)]
pub struct PluginCallbacks {
    /// Set when the plugin asked something and there was no terminal to ask
    /// on: its failure is then "run it on a terminal", not the plugin's words.
    unanswered: Arc<AtomicBool>,
}

impl PluginCallbacks {
    /// What is typed on the terminal after `prompt` (without echo), the way
    /// a key's passphrase is asked; `None`, remembered, when nobody is there.
    fn ask(&self, prompt: &str) -> Option<age::secrecy::SecretString> {
        match crate::passphrase::ask(prompt) {
            Ok(Some(answer)) => Some(answer),
            Ok(None) => {
                self.unanswered.store(true, Ordering::Relaxed);
                None
            }
            Err(e) => {
                eprintln!("warning: {}", e.message);
                None
            }
        }
    }
}

impl age::Callbacks for PluginCallbacks {
    fn display_message(&self, message: &str) {
        eprintln!("{message}");
    }
    fn confirm(&self, message: &str, yes: &str, no: Option<&str>) -> Option<bool> {
        let choices = no.map_or_else(|| yes.to_owned(), |no| format!("{yes}/{no}"));
        let answer = self.ask(&format!("{message} [{choices}]: "))?;
        Some(answer.expose_secret().trim().eq_ignore_ascii_case(yes))
    }
    fn request_public_string(&self, description: &str) -> Option<String> {
        self.ask(&format!("{description}: ")).map(|s| s.expose_secret().to_owned())
    }
    /// A token's PIN, asked without echo as a key's passphrase is.
    fn request_passphrase(&self, description: &str) -> Option<age::secrecy::SecretString> {
        self.ask(&format!("{description}: "))
    }
}

/// What a sender without a recipient's plugin is told to do.
const SENDER_ADVICE: &str = "install it here (a sender needs the plugin, not the token)";

/// Whether one drop can be encrypted to `recipients` here, checked before
/// anything is sent: their kinds do not mix (the age spec forbids it), and
/// every plugin their keys need is installed (found on `PATH`, not run).
pub fn check_keys(recipients: &[(String, AgeRecipient)]) -> Result<DropKind> {
    let kind = drop_kind(recipients.iter().map(|(name, r)| (name.as_str(), r.kind())))
        .map_err(|e| Error::new(ErrorCode::MixedKeyKinds, format!("{e}; send to them in separate drops")))?;
    for (key, r) in recipients {
        if let AgeRecipient::Plugin(p) = r {
            age::plugin::RecipientPluginV1::new(p.plugin(), std::slice::from_ref(p), &[], PluginCallbacks::default())
                .map_err(|e| plugin_missing(p.plugin(), &format!("encrypt to {key}'s key"), SENDER_ADVICE, &e))?;
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
        if let Some(native) = r.native() {
            natives.push(native);
        } else if let Some(p) = r.plugin() {
            plugins.entry(p.plugin()).or_default().push(p.clone());
        }
    }
    let mut runners = Vec::new();
    for (name, keys) in &plugins {
        let plugin = age::plugin::RecipientPluginV1::new(name, keys, &[], PluginCallbacks::default()).map_err(|e| {
            let whose: Vec<&str> = recipients
                .iter()
                .filter(|(_, r)| matches!(r, AgeRecipient::Plugin(p) if p.plugin() == *name))
                .map(|(key, _)| key.as_str())
                .collect();
            let what = format!("encrypt to {}'s key", whose.join(", "));
            plugin_missing(name, &what, SENDER_ADVICE, &e)
        })?;
        runners.push(plugin);
    }
    let all = natives.into_iter().chain(runners.iter().map(|r| r as &dyn age::Recipient));
    let encryptor = age::Encryptor::with_recipients(all).map_err(|e| {
        let e = one_line(&e.to_string());
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
    Plugin {
        /// The plugin, run once per file.
        plugin: Box<age::plugin::IdentityPluginV1<PluginCallbacks>>,
        /// Its name (`yubikey` for `age-plugin-yubikey`), for messages.
        name: String,
        /// The plugin's callbacks, which know whether it asked and nobody could answer.
        callbacks: PluginCallbacks,
    },
}

impl Decrypting<'_> {
    /// As age's identity trait.
    pub fn as_identity(&self) -> &dyn age::Identity {
        match self {
            Decrypting::Native(id) => *id,
            Decrypting::Plugin { plugin, .. } => plugin.as_ref(),
        }
    }

    /// The client's error when age failed to decrypt because the plugin
    /// failed (a wrong PIN, nobody to ask): the file is not at fault and may
    /// be fetched again. `None` for any other failure, which is the file's.
    pub fn plugin_failure(&self, e: &age::DecryptError) -> Option<Error> {
        let Decrypting::Plugin { name, callbacks, .. } = self else { return None };
        let age::DecryptError::Plugin(errors) = e else { return None };
        if callbacks.unanswered.load(Ordering::Relaxed) {
            return Some(Error::new(
                ErrorCode::PluginInputNeeded,
                format!(
                    "the age plugin `{name}` holding your key asked for a PIN or an answer and there is no terminal to ask on; run the command on a terminal"
                ),
            ));
        }
        let said: Vec<String> = errors.iter().map(|e| one_line(&e.to_string())).collect();
        Some(Error::new(
            ErrorCode::PluginFailed,
            format!(
                "the age plugin `{name}` holding your key failed: {}; check the token (inserted, the right PIN) and run the command again",
                said.join("; ")
            ),
        ))
    }
}

/// What decrypts with `id`. Fails (with [`ErrorCode::PluginMissing`]) when
/// the plugin holding the key is not installed here.
pub fn decrypting_identity(id: &AgeIdentity) -> Result<Decrypting<'_>> {
    if let Some(native) = id.native() {
        return Ok(Decrypting::Native(native));
    }
    let Some(p) = id.plugin() else {
        return Err(Error::new(
            ErrorCode::KeyInvalid,
            "the member key's age identity is of no kind sealdrop decrypts with",
        ));
    };
    let callbacks = PluginCallbacks::default();
    let plugin = age::plugin::IdentityPluginV1::new(p.plugin(), std::slice::from_ref(p), callbacks.clone())
        .map_err(|e| plugin_missing(p.plugin(), "decrypt with your key", "install it or put its folder on PATH", &e))?;
    Ok(Decrypting::Plugin { plugin: Box::new(plugin), name: p.plugin().to_owned(), callbacks })
}

fn plugin_missing(name: &str, what: &str, advice: &str, e: &age::plugin::ResolveError) -> Error {
    match e {
        age::plugin::ResolveError::MissingPlugin { binary_name } => Error::new(
            ErrorCode::PluginMissing,
            format!(
                "cannot {what}: it is held by the age plugin `{name}`, and `{binary_name}` is not on this machine's PATH; {advice}"
            ),
        ),
        other => Error::new(ErrorCode::PluginMissing, format!("cannot {what}: {}", one_line(&other.to_string()))),
    }
}

/// age's messages can span lines; the client's errors are one line.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
