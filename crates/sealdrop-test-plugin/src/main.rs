//! `age-plugin-sealdroptest`: TEST ONLY. A software stand-in for a hardware token, so
//! sealdrop's end-to-end tests can prove plugin-held keys work without a YubiKey or TPM.
//! The tests build it and put its folder first on `PATH`, where age looks for plugins.
//!
//! Its secret travels inside the identity string (a real token keeps it on the device),
//! so it protects nothing: never use it for real keys.
//!
//! - `age-plugin-sealdroptest --generate [--pin PIN] [--touch]` prints a new identity and
//!   its recipient, as age-plugin-yubikey does.
//! - `--age-plugin=recipient-v1` / `identity-v1`: the age plugin protocol (run by age).
//!
//! An identity made with `--pin` asks its holder for the PIN through the client
//! (`request-secret`) before every unwrap and refuses a wrong one; one made with `--touch`
//! sends "touch your token" through the client (`msg`), as real tokens do.

#![forbid(unsafe_code)]

mod token;

use std::collections::HashMap;
use std::io;

use age_core_012::format::{FileKey as PluginFileKey, Stanza as PluginStanza};
use age_core_012::secrecy::ExposeSecret as _;
use age_plugin::{Callbacks, PluginHandler, identity, recipient, run_state_machine};
use clap::Parser;

use token::{PLUGIN_NAME, Policy, STANZA_TAG, Token, TokenRecipient};

/// What the tests type at the token's PIN prompt is compared with this prompt's answer.
const PIN_PROMPT: &str = "Enter the PIN of the sealdroptest token";
/// The message a token that wants a touch sends (tests look for it on the client's stderr).
const TOUCH_MESSAGE: &str = "Touch the sealdroptest token to decrypt";

/// TEST ONLY: a software age plugin that imitates a hardware token.
#[derive(Debug, Parser)]
#[command(name = "age-plugin-sealdroptest", version)]
struct Options {
    /// Run the given age plugin state machine (age passes this; not for people).
    #[arg(long, value_name = "STATE_MACHINE")]
    age_plugin: Option<String>,
    /// Print a new identity and its recipient.
    #[arg(long, conflicts_with = "age_plugin")]
    generate: bool,
    /// With --generate: the token asks for this PIN before each decryption.
    #[arg(long, requires = "generate")]
    pin: Option<String>,
    /// With --generate: the token asks to be touched before each decryption.
    #[arg(long, requires = "generate")]
    touch: bool,
}

fn main() -> io::Result<()> {
    let options = Options::parse();
    if let Some(state_machine) = options.age_plugin {
        return run_state_machine(&state_machine, Handler);
    }
    if !options.generate {
        eprintln!("age-plugin-sealdroptest: give --generate (or let age run it with --age-plugin)");
        std::process::exit(2);
    }
    let token = Token::generate(Policy { pin: options.pin, touch: options.touch });
    let identity = token.identity_bytes().map_err(io::Error::other)?;
    age_plugin::print_new_identity(PLUGIN_NAME, &identity, &token.recipient_bytes());
    Ok(())
}

struct Handler;

impl PluginHandler for Handler {
    type RecipientV1 = Wrapper;
    type IdentityV1 = Unwrapper;

    fn recipient_v1(self) -> io::Result<Wrapper> {
        Ok(Wrapper { recipients: Vec::new() })
    }

    fn identity_v1(self) -> io::Result<Unwrapper> {
        Ok(Unwrapper { tokens: Vec::new() })
    }
}

/// The `recipient-v1` side: what a sender's age runs.
struct Wrapper {
    recipients: Vec<TokenRecipient>,
}

impl recipient::RecipientPluginV1 for Wrapper {
    fn add_recipient(&mut self, index: usize, plugin_name: &str, bytes: &[u8]) -> Result<(), recipient::Error> {
        match (plugin_name == PLUGIN_NAME).then(|| TokenRecipient::from_bytes(bytes)) {
            Some(Ok(recipient)) => {
                self.recipients.push(recipient);
                Ok(())
            }
            Some(Err(message)) => Err(recipient::Error::Recipient { index, message }),
            None => Err(recipient::Error::Recipient { index, message: format!("not a {PLUGIN_NAME} recipient") }),
        }
    }

    fn add_identity(&mut self, index: usize, plugin_name: &str, bytes: &[u8]) -> Result<(), recipient::Error> {
        match (plugin_name == PLUGIN_NAME).then(|| Token::from_identity_bytes(bytes)) {
            Some(Ok(token)) => {
                self.recipients.push(TokenRecipient::of(&token));
                Ok(())
            }
            Some(Err(message)) => Err(recipient::Error::Identity { index, message }),
            None => Err(recipient::Error::Identity { index, message: format!("not a {PLUGIN_NAME} identity") }),
        }
    }

    fn labels(&mut self) -> std::collections::HashSet<String> {
        // A classic X25519 key: no label, like age's own X25519 recipient.
        std::collections::HashSet::new()
    }

    fn wrap_file_keys(
        &mut self,
        file_keys: Vec<PluginFileKey>,
        _callbacks: impl Callbacks<recipient::Error>,
    ) -> io::Result<Result<Vec<Vec<PluginStanza>>, Vec<recipient::Error>>> {
        let mut wrapped = Vec::with_capacity(file_keys.len());
        for file_key in &file_keys {
            let file_key = to_age_file_key(file_key);
            let mut stanzas = Vec::with_capacity(self.recipients.len());
            for (index, recipient) in self.recipients.iter().enumerate() {
                match recipient.wrap(&file_key) {
                    Ok(stanza) => stanzas.push(to_plugin_stanza(stanza)),
                    Err(message) => return Ok(Err(vec![recipient::Error::Recipient { index, message }])),
                }
            }
            wrapped.push(stanzas);
        }
        Ok(Ok(wrapped))
    }
}

/// The `identity-v1` side: what a recipient's age runs to decrypt.
struct Unwrapper {
    tokens: Vec<Token>,
}

impl identity::IdentityPluginV1 for Unwrapper {
    fn add_identity(&mut self, index: usize, plugin_name: &str, bytes: &[u8]) -> Result<(), identity::Error> {
        match (plugin_name == PLUGIN_NAME).then(|| Token::from_identity_bytes(bytes)) {
            Some(Ok(token)) => {
                self.tokens.push(token);
                Ok(())
            }
            Some(Err(message)) => Err(identity::Error::Identity { index, message }),
            None => Err(identity::Error::Identity { index, message: format!("not a {PLUGIN_NAME} identity") }),
        }
    }

    fn unwrap_file_keys(
        &mut self,
        files: Vec<Vec<PluginStanza>>,
        mut callbacks: impl Callbacks<identity::Error>,
    ) -> io::Result<HashMap<usize, Result<PluginFileKey, Vec<identity::Error>>>> {
        let mut results = HashMap::new();
        // A token, once unlocked, stays unlocked for the rest of this run (as a PIN does).
        let mut unlocked = vec![false; self.tokens.len()];
        for (file_index, stanzas) in files.iter().enumerate() {
            let ours: Vec<(usize, &PluginStanza)> =
                stanzas.iter().enumerate().filter(|(_, s)| s.tag == STANZA_TAG).collect();
            if ours.is_empty() {
                continue;
            }
            'tokens: for (index, token) in self.tokens.iter().enumerate() {
                if !unlocked[index] {
                    if let Err(error) = unlock(index, &token.policy, &mut callbacks)? {
                        if let Err(errors) = results.entry(file_index).or_insert_with(|| Err(Vec::new())) {
                            errors.push(error);
                        }
                        continue;
                    }
                    unlocked[index] = true;
                }
                for &(stanza_index, stanza) in &ours {
                    match token.unwrap(&to_age_stanza(stanza)) {
                        Some(Ok(file_key)) => {
                            results.insert(file_index, Ok(to_plugin_file_key(&file_key)));
                            break 'tokens;
                        }
                        Some(Err(message)) => {
                            let error = identity::Error::Stanza { file_index, stanza_index, message };
                            results.insert(file_index, Err(vec![error]));
                            break 'tokens;
                        }
                        None => {}
                    }
                }
            }
        }
        Ok(results)
    }
}

/// Asks what the token's policy wants (the PIN, a touch); an `Err` inside when the holder
/// could not be asked or gave the wrong PIN.
fn unlock(
    index: usize,
    policy: &Policy,
    callbacks: &mut impl Callbacks<identity::Error>,
) -> io::Result<Result<(), identity::Error>> {
    if let Some(pin) = &policy.pin {
        let given = match callbacks.request_secret(PIN_PROMPT)? {
            Ok(given) => given,
            Err(_) => {
                let message = "the token needs its PIN and the client could not ask for it".to_owned();
                return Ok(Err(identity::Error::Identity { index, message }));
            }
        };
        if given.expose_secret() != pin {
            return Ok(Err(identity::Error::Identity {
                index,
                message: "wrong PIN for the sealdroptest token".to_owned(),
            }));
        }
    }
    if policy.touch {
        // A real token blinks until touched; this one only says so.
        if callbacks.message(TOUCH_MESSAGE)?.is_err() {
            let message = "the token wants a touch and the client could not say so".to_owned();
            return Ok(Err(identity::Error::Identity { index, message }));
        }
    }
    Ok(Ok(()))
}

// age-plugin 0.7 speaks age-core 0.12's types and the workspace's age speaks 0.13's;
// the same bytes cross between them.

fn to_age_file_key(file_key: &PluginFileKey) -> age_core::format::FileKey {
    age_core::format::FileKey::new(Box::new(*file_key.expose_secret()))
}

fn to_plugin_file_key(file_key: &age_core::format::FileKey) -> PluginFileKey {
    use age::secrecy::ExposeSecret as _;
    PluginFileKey::new(Box::new(*file_key.expose_secret()))
}

fn to_age_stanza(stanza: &PluginStanza) -> age_core::format::Stanza {
    age_core::format::Stanza { tag: stanza.tag.clone(), args: stanza.args.clone(), body: stanza.body.clone() }
}

fn to_plugin_stanza(stanza: age_core::format::Stanza) -> PluginStanza {
    PluginStanza { tag: stanza.tag, args: stanza.args, body: stanza.body }
}
